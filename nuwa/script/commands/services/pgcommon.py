"""PgCommon.pm (postgresql-common 248) as the cluster tools read it: the cluster configuration
of an image, read from its files, with the answers a dormant image gives.

postgresql-common's Perl programs (``pg_lsclusters``, ``pg_conftool``, ``pg_updatedicts``,
``pgtools.py``) share this module; its functions mirror ``PgCommon.pm``'s of the same name:

- ``read_conf_file``: ``name = value`` lines (quoted string or simple value), ``include``,
  ``include_if_exists``, ``include_dir``; an unreadable file is an empty hash, a line that is
  neither is "Error: invalid line N in FILE: LINE" (exit 1);
- ``cluster_data_directory``, ``get_versions``, ``get_version_clusters``, ``cluster_info``;
- whether a server runs: PgCommon asks the pid file's ``/proc/PID`` entry, then connects to the
  socket ``SOCKETDIR/.s.PGSQL.PORT``. A dormant image has no process and nothing listening, so
  a cluster is "down"; an image whose ``/proc`` holds the pid's entry is deferred.

Perl's rules that change an answer are kept: truthiness (``"0"`` is false), byte strings (case
folding and ``\\w`` are ASCII only), the ``.`` and ``..`` entries ``readdir`` returns. Perl's
warnings (an undefined value printed, a non-numeric version compared) are not reproduced:
those inputs are deferred.
"""

from __future__ import annotations

import errno
import posixpath
import re
import stat as _stat

from nuwa.script.commands._common import UserDB
from nuwa.script.context import Defer, Invocation

A = re.ASCII
_BLANK = re.compile(r"\s*(?:#.*)?$", A)
_INCLUDE_DIR = re.compile(r"\s*include_dir\s*=?\s*'([^']+)'\s*(?:#.*)?$", A | re.I)
_INCLUDE = re.compile(r"\s*include(?:_if_exists)?\s*=?\s*'([^']+)'\s*(?:#.*)?$", A | re.I)
_STRING = re.compile(r"\s*([a-zA-Z0-9_.-]+)\s*(?:=|\s)\s*'((?:[^']|''|(?:(?<=\\)'))*)'\s*(?:#.*)?$", A | re.I)
_SIMPLE = re.compile(r"\s*([a-zA-Z0-9_.-]+)\s*(?:=|\s)\s*(-?[A-Za-z0-9][A-Za-z0-9._:/+-]*)\s*(?:\#.*)?$", A | re.I)
_VERSION_DIR = re.compile(r"(\d+\.?\d+)\Z", A)
DEFAULT_PORT = "5432"
BINROOT = "/usr/lib/postgresql/"


class PgError(Exception):
    """PgCommon's ``error``: "Error: MESSAGE" on stderr, exit status 1."""


def truthy(v: str | None) -> bool:
    """Perl's truth of a string: undef, "" and "0" are false."""
    return v is not None and v not in ("", "0")


def ascii_lower(s: str) -> str:
    """Perl's ``lc`` of a byte string: only A-Z change."""
    return s.translate(_LOWER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def bkey(s: str) -> bytes:
    """Perl's ``sort``/``cmp`` order of a name: its bytes."""
    return s.encode("utf-8", "surrogateescape")


def perl_number(v: str) -> float | None:
    """Perl's numeric value of a string (its leading decimal number, 0 without one), or None
    when Perl would warn that it "isn't numeric" (under ``-w``)."""
    m = re.match(r"[ \t\n\r\f\v]*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", v, A)
    if m and m.end() == len(v.rstrip(" \t\n\r\f\v")) and v.rstrip(" \t\n\r\f\v") != "":
        return float(m.group(1))
    return None


def numeric(v: str) -> float:
    """The value Perl compares, warnings aside: the leading number, else 0."""
    m = re.match(r"[ \t\n\r\f\v]*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", v, A)
    return float(m.group(1)) if m else 0.0


def config_bool(v: str | None) -> bool | None:
    """``config_bool``: on/true/yes/1 -> True, off/false/no/0 -> False (any case), else None."""
    if v is None:
        return None
    if re.fullmatch(r"(?:on|true|yes|1)\n?", v, A | re.I):
        return True
    if re.fullmatch(r"(?:off|false|no|0)\n?", v, A | re.I):
        return False
    return None


def quote_conf_value(v: str) -> str:
    """``quote_conf_value``: numbers and plain words as they are, anything else in quotes."""
    if re.fullmatch(r"-?[\d.]+\n?", v, A) or re.fullmatch(r"\w+\n?", v, A):
        return v
    return "'" + v.replace("'", "''") + "'"


def perl_records(data: bytes) -> list[str]:
    """The lines ``<F>`` returns, each with its newline (the last may lack one), as str."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return [p.decode("utf-8", "surrogateescape") for p in out]


class Pg:
    """PgCommon's view of one image: ``$confroot``, ``$common_confdir`` and the lookups."""

    def __init__(self, inv: Invocation, warnings: bool):
        self.inv = inv
        #: run under ``perl -w`` (pg_lsclusters): PgCommon's own code warns too
        self.warnings = warnings
        # PgCommon.pm: $confroot = $ENV{PG_CLUSTER_CONF_ROOT} || '/etc/postgresql' (same for PGSYSCONFDIR)
        self.confroot = inv.env.get("PG_CLUSTER_CONF_ROOT") or "/etc/postgresql"
        self.common_confdir = inv.env.get("PGSYSCONFDIR") or "/etc/postgresql-common"
        self._users: UserDB | None = None

    # ---- Perl's file tests, on the image (a relative path is the program's cwd) ----

    def _st(self, p: str, follow: bool = True):
        try:
            return self.inv.fs.stat(self.inv.path(p)) if follow else self.inv.fs.lstat(self.inv.path(p))
        except (OSError, ValueError):
            return None

    def e(self, p: str) -> bool:
        return self._st(p) is not None

    def d(self, p: str) -> bool:
        st = self._st(p)
        return st is not None and st.is_dir

    def f(self, p: str) -> bool:
        st = self._st(p)
        return st is not None and st.is_reg

    def l(self, p: str) -> bool:  # noqa: E743 -- Perl's -l
        st = self._st(p, follow=False)
        return st is not None and st.is_lnk

    def x(self, p: str) -> bool:
        """Perl's ``-x`` as root: a directory, or a file with any execute bit."""
        st = self._st(p)
        return st is not None and (st.is_dir or bool(st.st_mode & 0o111))

    def readlink(self, p: str) -> str | None:
        try:
            return self.inv.fs.readlink(self.inv.path(p))
        except (OSError, ValueError):
            return None

    def readdir(self, p: str) -> list[str] | None:
        """``opendir``/``readdir``: the names with ``.`` and ``..``; None if it cannot be opened."""
        try:
            return [".", "..", *self.inv.fs.listdir(self.inv.path(p))]
        except (OSError, ValueError):
            return None

    def slurp(self, p: str) -> bytes | None:
        """What reading ``open F, p`` gives: None if the open fails; a directory opens but
        reads nothing. Other read errors are not modelled."""
        if p != p.strip(" \t\n\r\f\v") or p.startswith(("<", ">", "|", "+")) or p.endswith("|") or p == "-":
            # two-argument open: blanks are trimmed and these characters are modes
            raise Defer(f"{self.inv.name}: {p!r} opened by Perl's two-argument open (a mode or blanks)")
        st = self._st(p)
        if st is None:
            return None
        if st.is_dir:
            return b""
        try:
            return self.inv.fs.read_bytes(self.inv.path(p))
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.ELOOP):
                return None
            raise Defer(f"{self.inv.name}: reading {p} failed ({e.strerror})") from None

    def version_number(self, v: str) -> float:
        """``$version`` in a numeric comparison inside PgCommon."""
        n = perl_number(v)
        if n is None and self.warnings:
            raise Defer(f"{self.inv.name}: version {v!r} is compared as a number (Perl's warning is not reproduced)")
        return numeric(v) if n is None else n

    def user_name(self, uid: int) -> str:
        """``(getpwuid UID)[0]``; a uid without an entry would print undef with a warning."""
        if self._users is None:
            self._users = UserDB(self.inv)
        name = self._users.user_name(uid)
        if name is None:
            raise Defer(f"{self.inv.name}: uid {uid} has no passwd entry (Perl's warning is not reproduced)")
        return name

    # ---- configuration files ----

    def read_conf_file(self, path: str, depth: int = 0) -> dict[str, str]:
        """``read_conf_file``: the settings of a ``name = value`` file (``{}`` if unreadable)."""
        if depth > 40:
            raise Defer(f"{self.inv.name}: includes nested deeper than 40 at {path} (Perl's deep recursion)")
        conf: dict[str, str] = {}
        data = self.slurp(path)
        if data is None:
            return conf
        lower = bool(re.search(r"\.conf\n?\Z", path))
        for n, line in enumerate(perl_records(data), 1):
            if _BLANK.match(line):
                continue
            m = _INCLUDE_DIR.match(line)
            if m:
                d = self._absolute(m.group(1), path)
                if not (self.e(d) and self.d(d)):
                    continue
                names = self.readdir(d)
                for name in sorted(names or [], key=bkey):
                    if name.startswith(".") or not re.search(r"\.conf\n?\Z", name):
                        continue
                    conf.update(self.read_conf_file(f"{d}/{name}", depth + 1))
                continue
            m = _INCLUDE.match(line)
            if m:
                conf.update(self.read_conf_file(self._absolute(m.group(1), path), depth + 1))
                continue
            m = _STRING.match(line)
            if m:
                k, v = m.group(1), m.group(2)
                v = re.sub(r"\\(.)", r"\1", v)  # s/\\(.)/$1/g, then s/''/'/g
                v = v.replace("''", "'")
            else:
                m = _SIMPLE.match(line)
                if not m:
                    raise PgError(f"invalid line {n} in {path}: {line[:-1] if line.endswith(chr(10)) else line}")
                k, v = m.group(1), m.group(2)
            conf[ascii_lower(k) if lower else k] = v
        return conf

    @staticmethod
    def _absolute(path: str, parent: str) -> str:
        """``get_absolute_path``: a relative include is taken beside the including file."""
        if path.startswith("/"):
            return path
        return re.sub(r"/[^/]*\Z", "", parent, count=1) + "/" + path

    def cluster_conf_filename(self, v: str, c: str, name: str) -> str:
        """``cluster_conf_filename``: the cluster's file, else the one in postgresql-common's."""
        if name == "postgresql.auto.conf":
            return f"{self._undef_ok(self.cluster_data_directory(v, c), 0)}/{name}"
        fname = f"{self.confroot}/{v}/{c}/{name}"
        return fname if self.e(fname) else f"{self.common_confdir}/{name}"

    def read_cluster_conf_file(self, v: str, c: str, name: str) -> dict[str, str]:
        """``read_cluster_conf_file``: with ``postgresql.auto.conf`` merged in (9.4 and later)."""
        conf = self.read_conf_file(self.cluster_conf_filename(v, c, name))
        if self.version_number(v) >= 9.4 and name == "postgresql.conf":
            d = self._undef_ok(self.cluster_data_directory(v, c, conf), 285)
            for k, val in self.read_conf_file(f"{d}/postgresql.auto.conf").items():
                if k != "data_directory":
                    conf[k] = val
        return conf

    def _undef_ok(self, d: str | None, line: int) -> str:
        """An undefined data directory in a string: "" (and, under ``-w``, the warning Perl
        gives at PgCommon.pm line ``line``; 0: a place where it is not reproduced)."""
        if d is None and self.warnings:
            if not line:
                raise Defer(f"{self.inv.name}: an undefined data directory in a path "
                            "(Perl's warning is not reproduced)")
            self.inv.err("Use of uninitialized value $data_directory in concatenation (.) or string at "
                         f"/usr/share/perl5/PgCommon.pm line {line}.\n")
        return d or ""

    def get_conf_value(self, v: str, c: str, name: str, key: str) -> str | None:
        return self.read_cluster_conf_file(v, c, name).get(key)

    def cluster_data_directory(self, v: str, c: str, conf: dict | None = None) -> str | None:
        """``cluster_data_directory``: data_directory, else the pgdata link, else the conf dir."""
        d = conf.get("data_directory") if conf is not None else \
            self.get_conf_value(v, c, "postgresql.conf", "data_directory")
        confdir = f"{self.confroot}/{v}/{c}"
        if not truthy(d):
            d = self.readlink(f"{confdir}/pgdata")
        if not truthy(d) and self.l(confdir) and self.f(f"{confdir}/PG_VERSION"):
            d = self.readlink(confdir)
        if not truthy(d) and self.f(f"{confdir}/PG_VERSION"):
            d = confdir
        return d

    # ---- versions and clusters ----

    def get_versions(self) -> list[str]:
        """``get_versions``: versions with a server binary or a cluster, in numeric order."""
        found: set[str] = set()
        for entry in self.readdir(BINROOT) or []:
            m = _VERSION_DIR.match(entry)
            if m and self.x(f"{BINROOT}{m.group(1)}/bin/postgres"):
                found.add(m.group(1))
        for entry in self.readdir(self.confroot) or []:
            m = _VERSION_DIR.match(entry)
            if not m:
                continue
            v = m.group(1)
            # readdir's "." and ".." count too: a postgresql.conf in CONFROOT/V or CONFROOT
            if any(self.e(f"{self.confroot}/{v}/{c}/postgresql.conf") for c in self.readdir(f"{self.confroot}/{v}") or []):
                found.add(v)
        nums = [float(v) for v in found]
        if len(set(nums)) != len(nums):
            raise Defer(f"{self.inv.name}: two version names of equal value ({sorted(found)}): Perl's sort order "
                        "of equal keys follows its hash order")
        return sorted(found, key=float)

    def get_version_clusters(self, v: str) -> list[str]:
        """``get_version_clusters``: the names with a ``postgresql.conf`` (or a dangling link)."""
        vdir = f"{self.confroot}/{v}/"
        out = []
        for entry in self.readdir(vdir) or []:
            if entry in (".", ".."):
                continue
            conf = f"{vdir}{entry}/postgresql.conf"
            if self.e(conf) or self.l(conf):
                out.append(entry)
        return sorted(out, key=bkey)

    def cluster_exists(self, v: str, c: str) -> bool:
        return c in self.get_version_clusters(v)

    def user_cluster_map(self) -> tuple[str | None, str | None]:
        """``user_cluster_map`` for root: (version, cluster) from ``~/.postgresqlrc``, then
        ``user_clusters`` (its "Warning: ..." lines on stdout), else the only cluster, the one
        on the default port, or (the newest psql, None) when there is none."""
        if self._users is None:
            self._users = UserDB(self.inv)
        me = self._users.user_by_uid(0)
        grp = self._users.grp_by_gid(int(me[3])) if me and len(me) > 3 and me[3].isdigit() else None
        if me is None or grp is None or len(me) < 6:
            raise Defer(f"{self.inv.name}: uid 0 or its group has no entry (the default cluster's lookup)")
        home = self.inv.env.get("HOME") or me[5]
        for path, nfields in ((f"{home}/.postgresqlrc", 3), (f"{self.common_confdir}/user_clusters", 5)):
            data = self.slurp(path)
            for n, line in enumerate(perl_records(data or b""), 1):
                line = re.sub(r"#.*", "", line, count=1)
                if re.fullmatch(r"\s*", line, A):
                    continue
                # split: fields between blanks; missing ones are undef, which PgCommon (no
                # warnings) reads as "" in these tests and messages
                fields = [f for f in re.split(r"[ \t\n\r\f\v]+", line) if f] + [""] * nfields
                if nfields == 3:
                    u, g, (v, c, db) = "", "", fields[:3]
                else:
                    u, g, v, c, db = fields[:5]
                    if not truthy(db):
                        self.inv.out(f"Warning: ignoring invalid line {n} in {path}\n")
                        continue
                if not self.x(f"{BINROOT}{v}/bin/psql"):
                    self.inv.out(f"Warning: {path} line {n}: version {v} does not exist\n")
                    continue
                if not self.cluster_exists(v, c) and not re.fullmatch(r"\S+:\d*\n?", c, A):
                    self.inv.out(f"Warning: {path} line {n}: cluster {v}/{c} does not exist\n")
                    continue
                if nfields == 3:
                    if truthy(db):
                        return v, c
                    self.inv.out(f"Warning: ignoring invalid line {n} in {path}\n")
                    continue
                if u in ("*", me[0]) and g in ("*", grp[0]):
                    return v, c
        clusters = [(v, c) for v in self.get_versions() for c in self.get_version_clusters(v)]
        if len(clusters) == 1:
            return clusters[0]
        if not clusters:
            return None, None  # the newest psql's version, no cluster: pg_conftool's error
        default = None
        for v, c in clusters:
            port = self.get_conf_value(v, c, "postgresql.conf", "port")
            if numeric(port if truthy(port) else DEFAULT_PORT) == float(DEFAULT_PORT):
                default = (v, c)
        return default or (None, None)

    def get_cluster_socketdir(self, v: str, c: str) -> str:
        """``get_cluster_socketdir``, with its errors (a missing ``/var/run/postgresql``...)."""
        key = "unix_socket_directories" if self.version_number(v) >= 9.3 else "unix_socket_directory"
        sd = self.get_conf_value(v, c, "postgresql.conf", key)
        if truthy(sd):
            sd = re.sub(r"\s*,.*", "", sd, count=1, flags=A)
        if truthy(sd):
            return sd
        sd = "/var/run/postgresql"
        sdst = self._st(sd)
        if sdst is None:
            raise PgError(f"Cannot stat {sd}")
        if truthy(v) and truthy(c):
            datadir = self.cluster_data_directory(v, c)
            if not truthy(datadir):
                raise PgError(f"Invalid data directory for cluster {v} {c}")
            ddst = self._st(datadir)
            if ddst is None:
                p = datadir.split("/")
                while p and p[-1] == "":
                    p.pop()  # split drops trailing empty fields
                parent = "/".join(p[:-1])
                raise PgError(f"{datadir} is not accessible; please fix the directory permissions "
                              f"({parent}/ should be world readable)")
            if sdst.st_uid != ddst.st_uid:
                sd = "/tmp"
        return sd

    def start_conf(self, v: str, c: str) -> str:
        """``get_cluster_start_conf``: auto, manual or disabled (auto without the file)."""
        path = f"{self.confroot}/{v}/{c}/start.conf"
        if not self.e(path):
            return "auto"
        data = self.slurp(path)
        if data is None:
            raise Defer(f"{self.inv.name}: {path} exists but cannot be opened (the error text is $!)")
        for line in perl_records(data):
            # s/#.*$//; s/^\s*//; s/\s*$//: the comment, then the blanks on both sides
            line = re.sub(r"#.*", "", line, count=1).strip(" \t\n\r\f\v")
            if not truthy(line):
                continue
            m = re.match(r"(auto|manual|disabled)", line)
            if m:
                return m.group(1)
            raise PgError(f"Invalid mode in {path}, must be one of auto, manual, disabled")
        return "auto"

    def cluster_info(self, v: str, c: str) -> dict:
        """``cluster_info``: what pg_lsclusters shows of a cluster; ``running`` is always false
        on a dormant image (no server process, nothing listening on its socket)."""
        info: dict = {"configdir": f"{self.confroot}/{v}/{c}"}
        conf = self.read_cluster_conf_file(v, c, "postgresql.conf")
        info["config"] = conf
        info["pgdata"] = self.cluster_data_directory(v, c, conf)
        if not conf:
            return info
        info["port"] = conf["port"] if truthy(conf.get("port")) else DEFAULT_PORT
        self.get_cluster_socketdir(v, c)
        pidfile = conf.get("external_pid_file")
        running = None
        if truthy(pidfile) and pidfile != "(none)":
            running = self._pidfile_running(pidfile)
        if running is None:
            # cluster_port_running: the port must hold a digit, then the socket directory is
            # looked up again (its reads, warnings and errors again); nothing listens there
            if not re.search(r"\d", info["port"], A):
                raise Defer(f"{self.inv.name}: port {info['port']!r} of cluster {v} {c} makes PgCommon die "
                            "(its exit status is the errno left over)")
            self.get_cluster_socketdir(v, c)
        info["running"] = False
        if truthy(info["pgdata"]):
            st = self._st(info["pgdata"])
            info["owneruid"] = st.st_uid if st is not None else None
            pg = info["pgdata"]
            if self.version_number(v) >= 12:
                info["recovery"] = self.e(f"{pg}/recovery.signal") or self.e(f"{pg}/standby.signal")
            else:
                info["recovery"] = self.e(f"{pg}/recovery.conf")
        info["start"] = self.start_conf(v, c)
        link = info["configdir"] + "/log"
        info["logfile"] = self.readlink(link) if self.l(link) else f"/var/log/postgresql/postgresql-{v}-{c}.log"
        return info

    def _pidfile_running(self, pidfile: str) -> int | None:
        """``check_pidfile_running``: 0 without the pid file; with one, the process's
        ``/proc/PID`` entry decides, and a dormant image has none (undef: ask the socket)."""
        if not self.e(pidfile):
            return 0
        data = self.slurp(pidfile)
        if not data:
            return None
        first = perl_records(data)[0]
        if not truthy(first):
            return None
        m = re.fullmatch(r"(\d+)\s*", first.rstrip("\n") if first.endswith("\n") else first, A)
        if m and self._st(f"/proc/{m.group(1)}", follow=False) is not None:
            raise Defer(f"{self.inv.name}: the image has /proc/{m.group(1)}, the pid in {pidfile}")
        return None


def which(inv: Invocation, name: str) -> str | None:
    """execvp's search: the first executable regular file ``DIR/name`` of PATH, or None."""
    for d in inv.env.get("PATH", "").split(":"):
        p = f"{d or '.'}/{name}"
        try:
            st = inv.fs.stat(inv.path(p))
        except (OSError, ValueError):
            continue
        if _stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return p
    return None


def perl_dollar0(inv: Invocation) -> str:
    """Perl's ``$0`` for a script the shell ran: the path it executed (found through PATH)."""
    name = inv.argv[0]
    if "/" in name:
        return name
    return which(inv, name) or posixpath.join("/usr/bin", name)
