"""update-alternatives' system layer: messages, paths, links, the log and the admin files.

What ``utils/update-alternatives.c`` (dpkg 1.21.22) does below its selection logic, over the
image's filesystem model (:mod:`nuwa.script.commands.dpkg.update_alternatives` builds on it):

- messages as ``error``/``syserr``/``badusage``/``warning``/``debug``/``verbose``/``info``
  print them (``--quiet`` silences warnings and notices, errors exit 2);
- paths as plain C strings: the installation directory (``DPKG_ROOT``, ``--root``) is
  prepended by concatenation (``fsys_get_path``), the admin directory and the log are used
  as given; relative ones resolve against the simulated working directory;
- ``fsys_pathname_is_missing`` (stat, following links inside the image), ``areadlink``,
  ``alternative_path_classify``, ``make_path`` (which skips the component before the first
  slash, as the C loop does), link creation (unlink then symlink), renames (a refusal other
  than ENOENT would make the real program run ``mv``: deferred), removals and ``lutimes``;
- the log (``log_msg``): ``update-alternatives YYYY-MM-DD HH:MM:SS: MSG`` appended to
  ``/var/log/alternatives.log`` (its directory made if missing; EACCES silently skips).
  The clock is the host's (the offline run happens now); the time zone is the one glibc
  would load in the image (``TZ`` naming a zoneinfo file, else ``/etc/localtime``), else UTC;
- the admin files: read by :func:`nuwa.deb.alternatives.parse_admin` (``FILE corrupt:
  REASON``; a choice whose file is gone dropped, with the warning unless all groups are
  being listed), written as ``alternative_save`` does (slaves no choice uses discarded,
  slaves sorted by name and choices by path in strcmp order, ``NAME.dpkg-tmp`` then rename,
  a line holding a newline refused after the lines before it were written);
- the commit pass of prepared link operations and the removal of a whole group.
"""

from __future__ import annotations

import datetime
import errno
import io
import os
import stat as st
import time
import zoneinfo

from nuwa.deb.alternatives import ALT_TMP_EXT, AdminFileError, Alternative, Choice, parse_admin
from nuwa.script.context import Defer, Invocation

PROG = "update-alternatives"
ADMINDIR = "/var/lib/dpkg"
LOGDIR = "/var/log"
ALTDIR = "/etc/alternatives"
QUIET, NORMAL, VERBOSE, DEBUG = -1, 0, 1, 2
SYMLINK, MISSING, OTHER = "symlink", "missing", "other"  # alternative_path_classify

class UAExit(Exception):
    """``exit(status)``: the messages are already written."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def cstr(v: str | None) -> str:
    """A C string argument of printf: NULL prints as glibc's ``(null)``."""
    return "(null)" if v is None else v


def pad(text: str, width: int) -> str:
    """printf ``%-Ns``: padding counts bytes."""
    return text + " " * max(0, width - len(text.encode("utf-8", "surrogateescape")))


def _key(text: str) -> bytes:
    """strcmp order (alphasort and qsort in the C locale)."""
    return text.encode("utf-8", "surrogateescape")


class Group:
    """``struct alternative``: the admin data plus what one run tracks about it."""

    def __init__(self, name: str):
        self.alt = Alternative(name, "", None)  # status "" is ALT_ST_UNKNOWN, link None is NULL
        self.updated: set[str] = set()  # slave names whose links changed in this run
        self.ops: list[tuple] = []  # commit operations
        self.modified = False
        self.known_current = False
        self.current: str | None = None

    @property
    def name(self) -> str:
        return self.alt.name

    def reset(self) -> None:
        """``alternative_reset``."""
        name = self.alt.name
        status = self.alt.status
        self.__init__(name)
        self.alt.status = status

    def slave_link(self, name: str) -> str | None:
        return next((lk for n, lk in self.alt.slaves if n == name), None)

    def add_slave(self, name: str, link: str) -> None:
        """``alternative_add_slave``: replace the link of a known name, else append."""
        for i, (n, _) in enumerate(self.alt.slaves):
            if n == name:
                self.alt.slaves[i] = (name, link)
                return
        self.alt.slaves.append((name, link))

    def add_choice(self, fs: Choice) -> None:
        """``alternative_add_choice``: replace in place, else append."""
        for i, ch in enumerate(self.alt.choices):
            if ch.path == fs.path:
                self.alt.choices[i] = fs
                break
        else:
            self.alt.choices.append(fs)
        self.modified = True


def has_slave(fs: Choice, name: str) -> bool:
    """``fileset_has_slave``: a non-empty path."""
    return bool(fs.slaves.get(name))


class AltSystem:
    """The state of one run below the selection logic: options, directories, messages."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.fs = inv.fs
        root = inv.env.get("DPKG_ROOT")
        self.instdir = root if root is not None else ""
        self.instdir_len = len(self.instdir)
        adm = inv.env.get("DPKG_ADMINDIR")
        self.admdir = adm + "/alternatives" if adm is not None else self.instdir + ADMINDIR + "/alternatives"
        self.log_file = self.instdir + LOGDIR + "/alternatives.log"
        self.altdir = ALTDIR
        self.verbosity = NORMAL
        self.force = False
        self.action = ""

    # ---- messages (error/syserr/badusage/warning/debug/verbose/info/pr) ----------------------
    def error(self, msg: str) -> UAExit:
        self.inv.err(f"{PROG}: error: {msg}\n")
        raise UAExit(2)

    def syserr(self, msg: str, e: OSError | int) -> UAExit:
        code = e if isinstance(e, int) else e.errno
        return self.error(f"{msg}: {os.strerror(code)}")

    def badusage(self, msg: str) -> UAExit:
        self.inv.err(f"{PROG}: {msg}\n\nUse '{PROG} --help' for program usage information.\n")
        raise UAExit(2)

    def warning(self, msg: str) -> None:
        if self.verbosity >= NORMAL:
            self.inv.err(f"{PROG}: warning: {msg}\n")

    def debug(self, msg: str) -> None:
        if self.verbosity >= DEBUG:
            self.inv.err(f"DEBUG: {msg}\n")

    def verbose(self, msg: str) -> None:
        if self.verbosity >= VERBOSE:
            self.inv.out(f"{PROG}: {msg}\n")

    def info(self, msg: str) -> None:
        if self.verbosity >= NORMAL:
            self.inv.out(f"{PROG}: {msg}\n")

    def pr(self, msg: str) -> None:
        self.inv.out(msg + "\n")

    # ---- paths -----------------------------------------------------------------------------
    def host(self, path: str) -> str:
        """A path the C program hands to the kernel, as a path of the filesystem model."""
        return self.inv.path(path)

    def root(self, path: str) -> str:
        """``fsys_get_path``: the installation directory prepended, as a plain string."""
        return self.instdir + path

    def missing(self, path: str) -> bool:
        """``fsys_pathname_is_missing`` (stat, following symlinks)."""
        try:
            self.fs.stat(self.host(self.root(path)))
        except FileNotFoundError:
            return True
        except OSError as e:
            self.syserr(f"cannot stat file '{self.root(path)}'", e)
        return False

    def areadlink(self, path: str) -> tuple[str | None, int]:
        """``fsys_areadlink``: (target, 0) or (None, errno)."""
        p = self.host(self.root(path))
        try:
            if not self.fs.lstat(p).is_lnk:
                return None, errno.EINVAL
            return self.fs.readlink(p), 0
        except OSError as e:
            return None, e.errno

    def classify(self, link: str) -> str:
        """``alternative_path_classify``."""
        try:
            s = self.fs.lstat(self.host(self.root(link)))
        except FileNotFoundError:
            return MISSING
        except OSError as e:
            self.syserr(f"cannot stat file '{self.instdir}{link}'", e)
        return SYMLINK if st.S_ISLNK(s.st_mode) else OTHER

    def make_path(self, pathname: str) -> int:
        """``make_path(pathname, 0755)``: mkdir each prefix after the first slash; 0 or errno."""
        first = pathname.find("/")
        if first < 0:
            return 0
        cuts = [i for i in range(first + 1, len(pathname)) if pathname[i] == "/"] + [len(pathname)]
        for cut in cuts:
            try:
                self.fs.mkdir(self.host(pathname[:cut]), 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                return e.errno
        return 0

    def fsys_symlink(self, target: str, link: str) -> None:
        p = self.host(self.root(link))
        try:
            self.fs.unlink(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            self.syserr(f"unable to remove '{self.root(link)}'", e)
        try:
            self.fs.symlink(target, p)
        except OSError as e:
            self.syserr(f"error creating symbolic link '{self.root(link)[:255]}'", e)

    def xrename(self, src: str, dst: str) -> None:
        """``xrename`` of two kernel paths; a refusal other than ENOENT would run ``mv``."""
        try:
            self.fs.rename(self.host(src), self.host(dst))
        except FileNotFoundError:
            self.syserr(f"unable to install '{src[:250]}' as '{dst[:250]}'", errno.ENOENT)
        except OSError as e:
            raise Defer(f"update-alternatives: rename('{src}', '{dst}') failed ({e.strerror}); "
                        "the real program falls back to mv") from None

    def fsys_rm(self, path: str) -> None:
        try:
            self.fs.unlink(self.host(self.root(path)))
        except FileNotFoundError:
            pass
        except OSError as e:
            self.syserr(f"unable to remove '{self.root(path)}'", e)

    def set_ref_time(self, link: str, target: str) -> None:
        """``fsys_set_ref_time``: a new link gets its target's mtime (whole seconds, lutimes)."""
        try:
            s = self.fs.lstat(self.host(self.root(target)))
        except FileNotFoundError:
            return
        except OSError as e:
            self.syserr(f"unable to get file '{self.instdir}{target}' metadata", e)
        sec = (s.st_mtime_ns // 10**9) * 10**9
        try:
            self.fs.utime(self.host(self.root(link)), sec, sec, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENOSYS:
                self.syserr(f"cannot set symlink '{self.root(link)}' timestamp", e)

    # ---- the log ---------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        """``log_msg``: one timestamped line appended to the log file."""
        path = self.host(self.log_file)
        data = f"{PROG} {self.timestamp()}: {msg}\n".encode("utf-8", "surrogateescape")
        for attempt in (0, 1):
            try:
                with self.fs.open(path, "ab", 0o644) as f:
                    f.write(data)
                return
            except FileNotFoundError:
                if attempt:
                    self.syserr(f"cannot append to '{self.log_file}'", errno.ENOENT)
                slash = self.log_file.rfind("/")
                log_dir = self.log_file[:slash] if slash >= 0 else "."
                rc = self.make_path(log_dir)
                if rc:
                    self.syserr(f"cannot create log directory '{log_dir}'", rc)
            except PermissionError:
                return  # EACCES: the real program logs nothing
            except OSError as e:
                self.syserr(f"cannot append to '{self.log_file}'", e)

    def timestamp(self) -> str:
        """``strftime("%Y-%m-%d %H:%M:%S", localtime(now))`` in the image's time zone."""
        now = time.time()
        zone = self.zone()
        if zone is None:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        return datetime.datetime.fromtimestamp(int(now), zone).strftime("%Y-%m-%d %H:%M:%S")

    def zone(self):
        """The tzfile glibc would load (``TZ``, else ``/etc/localtime``) as a ZoneInfo, or None (UTC)."""
        tz = self.inv.env.get("TZ")
        if tz is None:
            path = "/etc/localtime"
        else:
            tz = tz[1:] if tz.startswith(":") else tz
            if not tz:
                return None
            path = tz if tz.startswith("/") else "/usr/share/zoneinfo/" + tz
        try:
            data = self.fs.read_bytes(path)
            return zoneinfo.ZoneInfo.from_file(io.BytesIO(data))
        except (OSError, ValueError):
            return None

    # ---- loading and saving ----------------------------------------------------------------
    def load(self, g: Group, lax: bool) -> bool:
        """``alternative_load`` (``lax``: ALTDB_LAX_PARSER, else ALTDB_WARN_PARSER)."""
        filename = f"{self.admdir}/{g.name}"
        try:
            data = self.fs.read_bytes(self.host(filename))
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            # fopen(dir, "r") succeeds; the first fgets fails with EISDIR
            if lax:
                g.reset()
                return False
            self.error(f"{filename} corrupt: while reading status: Is a directory")
        except OSError as e:
            self.syserr(f"unable to open file '{filename}'", e)
        dropped = []

        def on_missing(path: str) -> None:
            dropped.append(path)
            if not lax:
                self.warning(f"alternative {path} (part of link group {g.name}) doesn't exist; "
                             "removing from list of alternatives")

        try:
            alt = parse_admin(g.name, data, filename, self.missing, on_missing)
        except AdminFileError as e:
            if lax:
                g.reset()
                return False
            self.error(f"{filename} corrupt: {e.reason}")
        if alt is None:
            g.reset()
            return False
        g.reset()
        g.alt = alt
        g.modified = bool(dropped)
        return True

    def save(self, g: Group) -> None:
        """``alternative_save``."""
        a = g.alt
        kept = []
        for name, link in a.slaves:
            if any(has_slave(fs, name) for fs in a.choices):
                kept.append((name, link))
            else:
                self.verbose(f"discarding obsolete slave link {name} ({link})")
        a.slaves = sorted(kept, key=lambda s: _key(s[0]))
        a.choices.sort(key=lambda c: _key(c.path))
        file = f"{self.admdir}/{a.name}"
        new = file + ALT_TMP_EXT
        lines = a.lines()
        bad = next((i for i, ln in enumerate(lines) if "\n" in ln), None)
        data = "".join(ln + "\n" for ln in lines[:bad])
        for attempt in (0, 1):
            try:
                with self.fs.open(self.host(new), "wb", 0o644) as f:
                    f.write(data.encode("utf-8", "surrogateescape"))
                break
            except FileNotFoundError:
                if attempt:
                    self.syserr(f"unable to create file '{new}'", errno.ENOENT)
                rc = self.make_path(self.admdir)
                if rc:
                    self.syserr(f"cannot create administrative directory '{self.admdir}'", rc)
            except OSError as e:
                self.syserr(f"unable to create file '{new}'", e)
        if bad is not None:
            self.error(f"newlines prohibited in update-alternatives files ({lines[bad]})")
        self.xrename(new, file)

    def load_all(self) -> list[Group]:
        """``alternative_map_load_names``: every loadable group, in name order."""
        try:
            names = self.fs.readdir(self.host(self.admdir))
        except FileNotFoundError:
            names = []
        except OSError as e:
            self.syserr(f"cannot scan directory '{self.admdir[:255]}'", e)
        out = []
        for n in sorted(names, key=_key):
            if len(n) > len(ALT_TMP_EXT) and n.endswith(ALT_TMP_EXT):
                continue
            g = Group(n)
            if self.load(g, lax=True):
                out.append(g)
        return out


    def commit(self, g: Group) -> None:
        """``alternative_commit``: the prepared renames, removals and times, in order."""
        for op in g.ops:
            if op[0] == "rm":
                self.fsys_rm(op[1])
            elif op[0] == "mv":
                self.xrename(self.root(op[1]), self.root(op[2]))
            else:
                self.set_ref_time(op[1], op[2])
        g.ops = []

    def remove_files(self, g: Group) -> None:
        """``alternative_remove_files``: every link of the group and its admin file."""
        a = g.alt
        self.fsys_rm(a.link + ALT_TMP_EXT)
        if self.can_remove(a.link):
            self.fsys_rm(a.link)
        self.fsys_rm(f"{self.altdir}/{a.name}{ALT_TMP_EXT}")
        self.fsys_rm(f"{self.altdir}/{a.name}")
        for sname, slink in a.slaves:
            self.fsys_rm(slink + ALT_TMP_EXT)
            if self.can_remove(slink):
                self.fsys_rm(slink)
            self.fsys_rm(f"{self.altdir}/{sname}{ALT_TMP_EXT}")
            self.fsys_rm(f"{self.altdir}/{sname}")
        admin = f"{self.admdir}/{a.name}"
        try:
            self.fs.unlink(self.host(admin))
        except FileNotFoundError:
            pass
        except OSError as e:
            self.syserr(f"unable to remove '{admin}'", e)

    def broken_link(self, link: str, target: str) -> bool:
        """``alternative_has_broken_symlink``."""
        cur, _ = self.areadlink(link)
        return cur is None or cur != target


__all__ = ["AltSystem", "Group", "UAExit", "cstr", "has_slave", "pad"]
