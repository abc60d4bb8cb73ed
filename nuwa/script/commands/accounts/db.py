"""The image's account databases, read and written the way shadow-utils 4.13 does it.

``/etc/passwd``, ``/etc/shadow``, ``/etc/group``, ``/etc/gshadow``, ``/etc/subuid`` and
``/etc/subgid`` are line files. shadow-utils' ``lib/commonio.c`` keeps every line it read as
text and writes an unchanged line back byte for byte; only changed or new entries are
formatted again. :class:`AccountFile` mirrors that:

- a line is an *entry* when it splits into the file's field count (and, for passwd/group,
  numeric ids); other lines (comments, junk, NIS ``+``/``-`` lines) are kept verbatim and are
  never found by name (``commonio_open``);
- a new entry goes before the first NIS line (``add_one_entry_nis``, KEEP_NIS_AT_END);
- closing a changed file (``commonio_close``): the old content is copied to ``FILE-`` (mode
  ``st_mode & 0664``, the original's owner, atime and mtime: ``create_backup`` with
  ``fopen_set_perms``), the new content is written to ``FILE+`` with the same mode and owner
  and renamed over ``FILE``. A file that was not changed is not touched at all.
- locking (``commonio_lock``) leaves no trace but ``/etc/.pwd.lock`` (``lckpwdf``, created
  0600 if missing); a stale ``FILE.lock`` left in the image is removed, as the real tool
  does when the PID in it is not running (nothing of the image runs offline).

``lastchg`` fields hold days since the epoch. Like shadow-utils' ``gettime()`` (and
systemd-sysusers), :func:`today` honours ``SOURCE_DATE_EPOCH`` from the environment, which
makes a simulation reproducible; without it the host clock gives "today", as the real tool
at boot would.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import posixpath
import re
import stat as _stat
import time

from nuwa.fs.model import FileSystem
from nuwa.fs.overlay import Overlay
from nuwa.script.context import Defer

PASSWD, SHADOW, GROUP, GSHADOW = "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"

#: field count of each file (passwd(5), shadow(5), group(5), gshadow(5), subuid(5))
NFIELDS = {PASSWD: 7, SHADOW: 9, GROUP: 4, GSHADOW: 4, SUBUID: 3, SUBGID: 3}
#: fields that must be numbers for the line to parse (sgetpwent/sgetgrent/subordinate parse)
NUMERIC = {PASSWD: (2, 3), GROUP: (2,), SUBUID: (1, 2), SUBGID: (1, 2)}

DAY = 86400


def today(env: dict[str, str]) -> int:
    """Days since the epoch as shadow-utils' ``gettime() / SCALE`` (SOURCE_DATE_EPOCH first)."""
    sde = env.get("SOURCE_DATE_EPOCH")
    if sde is not None and re.fullmatch(r"\d+", sde.strip() or "x"):
        return int(sde) // DAY
    return int(time.time()) // DAY


class AccountFile:
    """One line file of the account database, edited round-trip safely (see module doc)."""

    def __init__(self, path: str, data: bytes | None, st=None):
        self.path = path
        self.exists = data is not None
        self.original = data or b""
        self.st = st
        text = self.original.decode("utf-8", "surrogateescape")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the newline ending the last line (a missing one is added on write)
        #: each line: its text and whether it was changed (formatted anew on write)
        self.lines: list[str] = lines
        self.changed = False

    @classmethod
    def load(cls, fs: FileSystem, path: str) -> "AccountFile":
        """Read ``path`` from the image (an absent file is empty and not written back)."""
        try:
            st = fs.stat(path)
            data = fs.read_bytes(path)
        except FileNotFoundError:
            return cls(path, None)
        return cls(path, data, st)

    # ---- reading ---------------------------------------------------------------------------

    def parse(self, line: str) -> list[str] | None:
        """The fields of ``line`` if commonio would parse it as an entry, else None.

        As shadow-utils' parsers: passwd needs exactly 7 fields with numeric ids
        (``sgetpwent``); a group line may lack its member list (``sgetgrent``); a shadow line
        has 9 fields, or 8 (no reserved field) or the old 5 (``sgetspent``). Short forms come
        back padded, as the tool would write them once changed.
        """
        if not line or line[0] in "+-":
            return None
        f = line.split(":")
        n = NFIELDS[self.path]
        if self.path == GROUP and len(f) == 3:
            f.append("")
        elif self.path == SHADOW and len(f) in (5, 8):
            f += [""] * (9 - len(f))
        if len(f) != n:
            return None
        for i in NUMERIC.get(self.path, ()):
            if not f[i].isdigit():
                return None
        return f

    def entries(self) -> list[list[str]]:
        """All parsed entries in file order."""
        return [f for f in (self.parse(x) for x in self.lines) if f is not None]

    def _index(self, name: str) -> int | None:
        for i, line in enumerate(self.lines):
            f = self.parse(line)
            if f is not None and f[0] == name:
                return i
        return None

    def get(self, name: str) -> list[str] | None:
        """The entry named ``name`` (first one), or None."""
        i = self._index(name)
        return None if i is None else self.parse(self.lines[i])

    def by_id(self, num: int, field: int = 2) -> list[str] | None:
        """The first entry whose numeric ``field`` equals ``num``."""
        for f in self.entries():
            if f[field].isdigit() and int(f[field]) == num:
                return f
        return None

    def ids(self, field: int = 2) -> list[int]:
        """Every numeric id in ``field``, file order."""
        return [int(f[field]) for f in self.entries() if f[field].isdigit()]

    # ---- changing --------------------------------------------------------------------------

    def put(self, fields: list[str]) -> None:
        """Replace the entry of the same name, or add it before the NIS lines (commonio_update)."""
        line = ":".join(fields)
        i = self._index(fields[0])
        if i is not None:
            self.lines[i] = line
        else:
            at = next((k for k, x in enumerate(self.lines) if x[:1] in ("+", "-")), len(self.lines))
            self.lines.insert(at, line)
        self.changed = True

    def append(self, fields: list[str]) -> None:
        """Add an entry at the end, before the NIS lines, even if the name exists (subuid ranges)."""
        at = next((k for k, x in enumerate(self.lines) if x[:1] in ("+", "-")), len(self.lines))
        self.lines.insert(at, ":".join(fields))
        self.changed = True

    def remove(self, name: str) -> bool:
        """Remove the entry named ``name`` (commonio_remove); True if there was one."""
        i = self._index(name)
        if i is None:
            return False
        del self.lines[i]
        self.changed = True
        return True

    def remove_all(self, name: str) -> bool:
        """Remove every entry named ``name`` (subordinate id ranges of one owner)."""
        keep = [x for x in self.lines if (self.parse(x) or [None])[0] != name]
        hit = len(keep) != len(self.lines)
        if hit:
            self.lines = keep
            self.changed = True
        return hit

    def content(self) -> bytes:
        """The bytes ``write_all`` would produce."""
        return "".join(x + "\n" for x in self.lines).encode("utf-8", "surrogateescape")

    # ---- writing ---------------------------------------------------------------------------

    def save(self, fs: FileSystem, backup: bool = True) -> None:
        """Write a changed file as ``commonio_close`` does (backup ``FILE-``, ``FILE+``, rename)."""
        if not self.changed or not self.exists:
            return
        if _stat.S_ISLNK(fs.lstat(self.path).st_mode):
            # commonio's lrename() would replace the link's target; not modelled
            raise Defer(f"{self.path} is a symbolic link")
        st = self.st
        mode = _stat.S_IMODE(st.st_mode) & 0o664
        if backup:
            bk = self.path + "-"
            _write_file(fs, bk, self.original, mode, st.st_uid, st.st_gid)
            fs.utime(bk, st.st_atime_ns, st.st_mtime_ns)
        tmp = self.path + "+"
        _write_file(fs, tmp, self.content(), mode, st.st_uid, st.st_gid)
        fs.rename(tmp, self.path)
        self.changed = False
        self.original = self.content()
        self.st = fs.stat(self.path)


def _write_file(fs: FileSystem, path: str, data: bytes, mode: int, uid: int, gid: int) -> None:
    """``fopen_set_perms``: open for writing (umask 0777 while creating), chown, chmod, write."""
    fs.write_bytes(path, data, 0)
    fs.chown(path, uid, gid)
    fs.chmod(path, mode)


def take_locks(fs: FileSystem, paths: list[str]) -> None:
    """What ``commonio_lock`` leaves behind: ``/etc/.pwd.lock``; stale ``FILE.lock`` removed."""
    if fs.exists("/etc") and not fs.lexists("/etc/.pwd.lock"):
        fs.write_bytes("/etc/.pwd.lock", b"", 0)
        fs.chmod("/etc/.pwd.lock", 0o600)
    for p in paths:
        if fs.lexists(p + ".lock"):
            fs.unlink(p + ".lock")


class Accounts:
    """The six files loaded together, with the lookups the tools make."""

    def __init__(self, fs: FileSystem, root: str = "/"):
        self.fs = fs
        self.root = root
        self.files = {p: AccountFile.load(fs, self._p(p)) for p in NFIELDS}
        for p, f in self.files.items():
            f.path = p  # parse rules are keyed by the canonical name

    def _p(self, p: str) -> str:
        return posixpath.join(self.root, p.lstrip("/")) if self.root != "/" else p

    @property
    def passwd(self) -> AccountFile:
        return self.files[PASSWD]

    @property
    def shadow(self) -> AccountFile:
        return self.files[SHADOW]

    @property
    def group(self) -> AccountFile:
        return self.files[GROUP]

    @property
    def gshadow(self) -> AccountFile:
        return self.files[GSHADOW]

    def user(self, name: str) -> list[str] | None:
        return self.passwd.get(name)

    def user_by_uid(self, uid: int) -> list[str] | None:
        return self.passwd.by_id(uid)

    def grp(self, name: str) -> list[str] | None:
        return self.group.get(name)

    def grp_by_gid(self, gid: int) -> list[str] | None:
        return self.group.by_id(gid)

    def grp_nam_gid(self, s: str) -> list[str] | None:
        """``getgr_nam_gid``: a number names a gid, anything else a group name."""
        if re.fullmatch(r"\d+", s):
            return self.grp_by_gid(int(s))
        return self.grp(s)

    def members(self, name: str) -> list[str]:
        """The member list of group ``name`` (empty items dropped)."""
        g = self.grp(name)
        return [m for m in g[3].split(",") if m] if g else []

    def save(self) -> None:
        """Close every changed file the way ``commonio_close`` does, in shadow-utils' order."""
        changed = [p for p, f in self.files.items() if f.changed and f.exists]
        if not changed:
            return
        take_locks(self.fs, [self._p(p) for p in changed])
        for p in (SHADOW, PASSWD, SUBUID, SUBGID, GSHADOW, GROUP):
            f = self.files[p]
            if f.changed and f.exists:
                f.path = self._p(p)
                try:
                    f.save(self.fs)
                finally:
                    f.path = p


# ---- /etc/login.defs ---------------------------------------------------------------------------

class LoginDefs:
    """``/etc/login.defs`` as shadow-utils' ``getdef.c`` reads it, plus ``-K`` overrides."""

    def __init__(self, fs: FileSystem, path: str = "/etc/login.defs"):
        self.values: dict[str, str] = {}
        try:
            text = fs.read_bytes(path).decode("utf-8", "surrogateescape")
        except (OSError, ValueError):
            text = ""
        for line in text.split("\n"):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = re.match(r"(\S+)\s*(.*)", s)
            key, val = m.group(1), m.group(2).strip()
            if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                val = val[1:-1]
            self.values[key] = val

    def str(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def num(self, key: str, default: int) -> int:
        """``getdef_num``/``getdef_ulong``: C ``strtol`` with base 0 (``022`` is octal)."""
        v = self.values.get(key)
        if v is None:
            return default
        try:
            if re.fullmatch(r"0[xX][0-9a-fA-F]+", v):
                return int(v, 16)
            if re.fullmatch(r"0[0-7]*", v):
                return int(v, 8)
            if re.fullmatch(r"-?\d+", v):
                return int(v)
        except ValueError:
            pass
        return default

    def bool(self, key: str) -> bool:
        """``getdef_bool``: true only for "yes" (case-insensitive)."""
        return (self.values.get(key) or "").lower() == "yes"


def now_ns() -> int:
    """The host clock (for file times the real tool would stamp with "now")."""
    return time.time_ns()


def strerror(e: OSError) -> str:
    return os.strerror(e.errno) if e.errno else str(e)


def all_or_nothing(model):
    """Wrap a model so that a :class:`Defer` raised part-way leaves the image as it was.

    These tools change several files per run (adduser calls groupadd then useradd; tmpfiles
    applies line after line), and a deferred invocation runs again at first boot, so its
    partial effects must not stay. On an overlay (what maintainer scripts run on) the run sits
    inside a savepoint; on other backends it runs on an overlay committed only on success.
    """
    @functools.wraps(model)
    def run(inv):
        fs = inv.fs
        if hasattr(fs, "savepoint") and hasattr(fs, "rollback_to"):
            sp = fs.savepoint()
            try:
                status = model(inv)
            except BaseException:
                fs.rollback_to(sp)
                fs.release(sp)
                raise
            fs.release(sp)
            return status
        ov = Overlay(fs)
        try:
            status = model(dataclasses.replace(inv, fs=ov))
        except Defer:
            ov.discard()
            raise
        ov.commit()
        return status

    return run
