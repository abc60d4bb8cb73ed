"""Models of the process tools: pidof, pgrep, ps (queries) and pkill, killall (signals).

Offline no process of the image runs: the update is applied to a machine that is off, like a
chroot where nothing has been started. So a query finds nothing — ``pidof`` exits 1 with no
output, ``pgrep`` exits 1 (``-c`` prints ``0``) — and that answer is simulated: it is what
the script's question means for the machine it is patching (``dbus``'s postinst asks whether
an old daemon still runs to print "a reboot is required"; none does). ``pkill`` and
``killall`` only signal processes; with none to signal they end with status 1 and the
messages the real programs give when nothing matches. That is not a *dropped* action but the
complete, exact effect of these programs on a machine where nothing runs, so they are
recorded as simulated (a drop would also lose their stderr). Usage errors (an unknown user:
exit 2 for pkill, 1 for killall) are reproduced. Users and groups come from the image's
account files.

Versions: procps-ng 4.0.2 (pgrep, pkill, ps), sysvinit-utils 3.06 (pidof), psmisc 23.6 (killall).
``kill`` is a shell builtin (dash); the interpreter records it as dropped.
"""

from __future__ import annotations

import re

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB
from nuwa.script.commands._regex import RegexError, compile_posix
from nuwa.script.context import Defer, Invocation

_SIGNALS = {"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
            "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
            "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS"}


def _is_signal(s: str) -> bool:
    s = s.upper()
    s = s[3:] if s.startswith("SIG") else s
    return s.isdigit() and int(s) < 65 or s in _SIGNALS or bool(re.fullmatch(r"RTM(IN|AX)([+-]\d+)?", s))


# ---- pidof ---------------------------------------------------------------------------------------

_PIDOF = _args.spec("scnxo:qzd:", {})


def pidof(inv: Invocation) -> int:
    """``pidof [-s] [-c] [-x] [-o PID] PROGRAM...``: no process runs offline; exit 1, no output."""
    try:
        _args.parse(inv, _PIDOF)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    return 1


# ---- pgrep / pkill -------------------------------------------------------------------------------

_PGREP = _args.spec("d:lavwcfg:G:inoO:P:s:t:u:U:xF:LAr:qeH", {
    "delimiter": "d", "list-name": "l", "list-full": "a", "inverse": "v", "lightweight": "w", "count": "c",
    "full": "f", "pgroup": "g", "group": "G", "ignore-case": "i", "newest": "n", "oldest": "o", "older": "O",
    "parent": "P", "session": "s", "terminal": "t", "euid": "u", "uid": "U", "exact": "x", "pidfile": "F",
    "logpidfile": "L", "ignore-ancestors": "A", "runstates": "r", "ns": ("ns", _args.REQ),
    "nslist": ("nslist", _args.REQ), "signal": ("signal", _args.REQ), "echo": "e", "queue": "q",
    "require-handler": "H", "cgroup": ("cgroup", _args.REQ), "env": ("env", _args.REQ)})
_NS_KINDS = {"ipc", "mnt", "net", "pid", "user", "uts", "cgroup", "time"}


def _pgrep_common(inv: Invocation, kill: bool) -> tuple[int | None, bool]:
    """Parse and validate like procps; returns (status to return now, count flag)."""
    args = inv.argv[1:]
    if kill and args and args[0].startswith("-") and _is_signal(args[0][1:]):
        args = args[1:]  # pkill -HUP / -9: the signal comes first
    try:
        opts, ops = _args.parse(inv, _PGREP, args)
    except _args.UsageError as e:
        return _args.usage(inv, e, 2), False
    prog = inv.name
    keys = [k for k, _ in opts]
    if any(k in ("F", "L", "cgroup", "env") for k in keys):
        raise Defer(f"{prog} {' '.join(inv.argv[1:])}: pid files, cgroups and environments of processes")
    if not kill and any(k in ("signal", "e", "q") for k in keys) or kill and any(k in "dlavc" for k in keys):
        raise Defer(f"{prog}: option of the other program")
    db = UserDB(inv)
    for k, v in opts:
        if k in "uU":
            for name in v.split(","):
                if not name or db.uid(name) is None:
                    inv.err(f"{prog}: invalid user name: {name}\n")
                    return 2, False
        elif k == "G":
            for name in v.split(","):
                if not name or db.gid(name) is None:
                    inv.err(f"{prog}: invalid group name: {name}\n")
                    return 2, False
        elif k == "nslist":
            if any(n not in _NS_KINDS for n in v.split(",")):
                raise Defer(f"{prog} --nslist {v}")
        elif k == "signal" and not _is_signal(v):
            raise Defer(f"{prog} --signal {v}")
    if len(ops) > 1:
        inv.err(f"{prog}: only one pattern can be provided\nTry `{prog} --help' for more information.\n")
        return 2, False
    criteria = [k for k in keys if k in "gGPstuUr" or k in ("ns",)]
    if not ops and not criteria:
        inv.err(f"{prog}: no matching criteria specified\nTry `{prog} --help' for more information.\n")
        return 2, False
    if ops and "f" not in keys and len(ops[0]) > 15:
        inv.err(f"{prog}: pattern that searches for process name longer than 15 characters will result in zero "
                f"matches\nTry `{prog} -f' option to match against the complete command line.\n")
    if ops:
        try:
            compile_posix(ops[0], extended=True, icase="i" in keys)
        except RegexError:
            raise Defer(f"{prog}: pattern {ops[0]!r} is not a regex the model accepts") from None
    return None, "c" in keys


def pgrep(inv: Invocation) -> int:
    """``pgrep [OPTIONS] PATTERN``: nothing runs offline; exit 1 (``-c`` prints 0)."""
    st, count = _pgrep_common(inv, kill=False)
    if st is not None:
        return st
    if count:
        inv.out("0\n")
    return 1


def pkill(inv: Invocation) -> int:
    """``pkill [-SIGNAL] [OPTIONS] PATTERN``: no process to signal offline; exit 1."""
    st, _ = _pgrep_common(inv, kill=True)
    return 1 if st is None else st


# ---- killall -------------------------------------------------------------------------------------

_KILLALL = _args.spec("eIgy:o:iqrs:u:vwn:Z:lV", {
    "exact": "e", "ignore-case": "I", "process-group": "g", "younger-than": "y", "older-than": "o",
    "interactive": "i", "quiet": "q", "regexp": "r", "signal": "s", "user": "u", "verbose": "v", "wait": "w",
    "ns": "n", "context": "Z", "list": "l", "version": "V"})


def killall(inv: Invocation) -> int:
    """``killall [-q] [-u USER] [-SIGNAL] NAME...``: exit 1, "NAME: no process found"."""
    args = inv.argv[1:]
    if args and args[0].startswith("-") and _is_signal(args[0][1:]):
        args = args[1:]
    try:
        opts, ops = _args.parse(inv, _KILLALL, args)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = [k for k, _ in opts]
    if any(k in "lVZin" for k in keys) or not ops:
        raise Defer(f"killall {' '.join(inv.argv[1:])}: listing, usage or interactive forms")
    db = UserDB(inv)
    for k, v in opts:
        if k == "u" and db.uid(v) is None:
            inv.err(f"Cannot find user {v}\n")
            return 1
    if "q" not in keys:
        for name in ops:
            inv.err(f"{name}: no process found\n")
    return 1


# ---- ps ------------------------------------------------------------------------------------------

#: procps ``format_array`` entries the model prints a header for: name -> (header, width, right
#: aligned); width None means the pid width (see ``_pid_width``)
_PS_FIELDS = {
    "pid": ("PID", None, True), "ppid": ("PPID", None, True), "pgid": ("PGID", None, True),
    "sid": ("SID", None, True), "lwp": ("LWP", None, True), "comm": ("COMMAND", 15, False),
    "args": ("COMMAND", 27, False), "command": ("COMMAND", 27, False), "cmd": ("CMD", 27, False),
    "ucmd": ("CMD", 15, False), "user": ("USER", 8, False), "euser": ("EUSER", 8, False),
    "ruser": ("RUSER", 8, False), "group": ("GROUP", 8, False), "uid": ("UID", 5, True),
    "euid": ("EUID", 5, True), "gid": ("GID", 5, True), "etime": ("ELAPSED", 11, True),
    "etimes": ("ELAPSED", 7, True), "stat": ("STAT", 4, False), "state": ("S", 1, False), "s": ("S", 1, False),
    "tty": ("TT", 8, False), "tt": ("TT", 8, False), "time": ("TIME", 8, True), "cputime": ("TIME", 8, True),
    "rss": ("RSS", 5, True), "vsz": ("VSZ", 6, True), "sz": ("SZ", 5, True), "%cpu": ("%CPU", 4, True),
    "pcpu": ("%CPU", 4, True), "%mem": ("%MEM", 4, True), "pmem": ("%MEM", 4, True),
    "lstart": ("STARTED", 24, True), "start": ("STARTED", 8, True), "start_time": ("START", 5, False),
    "stime": ("STIME", 5, False), "nlwp": ("NLWP", 4, True), "psr": ("PSR", 3, True), "pri": ("PRI", 3, True),
    "ni": ("NI", 3, True), "nice": ("NI", 3, True), "wchan": ("WCHAN", 6, False), "f": ("F", 1, True),
    "c": ("C", 2, True),
}
#: the named formats: UNIX default, -f, BSD default (a/x), BSD u
_PS_DEFAULT = [("PID", None, True), ("TTY", 8, False), ("TIME", 8, True), ("CMD", 0, False)]
_PS_FULL = [("UID", 8, False), ("PID", None, True), ("PPID", None, True), ("C", 2, True), ("STIME", 5, False),
            ("TTY", 8, False), ("TIME", 8, True), ("CMD", 0, False)]
_PS_BSD = [("PID", None, True), ("TTY", 8, False), ("STAT", 4, False), ("TIME", 6, True), ("COMMAND", 0, False)]
_PS_USER = [("USER", 8, False), ("PID", None, True), ("%CPU", 4, True), ("%MEM", 4, True), ("VSZ", 6, True),
            ("RSS", 5, True), ("TTY", 8, False), ("STAT", 4, False), ("START", 5, False), ("TIME", 6, True),
            ("COMMAND", 0, False)]
_SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")


def _pid_max(inv: Invocation) -> int:
    """``kernel.pid_max`` as the image sets it at boot (systemd-sysctl's order), else 32768.

    procps sizes every pid column by the digits of pid_max. Debian 12's systemd ships
    ``50-pid-max.conf`` (4194304); without it the kernel's PID_MAX_DEFAULT (32768) holds on
    machines with up to 32 CPUs (the kernel raises it to 1024 per CPU above that).
    """
    files: dict[str, str] = {}
    for d in reversed(_SYSCTL_DIRS):  # earlier directories override files of the same name
        try:
            for n in inv.fs.readdir(d):
                if n.endswith(".conf"):
                    files[n] = f"{d}/{n}"
        except OSError:
            continue
    value = 32768
    for path in [files[n] for n in sorted(files)] + ["/etc/sysctl.conf"]:
        try:
            text = inv.fs.read_bytes(path).decode("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = re.fullmatch(r"\s*-?\s*kernel[./]pid_max\s*=\s*(\d+)\s*", line)
            if m:
                value = int(m.group(1))
    return value


def _ps_header(cols: list[tuple[str, int | None, bool]], pidw: int) -> str:
    out = []
    for i, (head, width, right) in enumerate(cols):
        w = pidw if width is None else width
        out.append(head.rjust(w) if right else head.ljust(w) if i < len(cols) - 1 else head)
    return " ".join(out).rstrip()


_PS_SELECT = {"-p": "p", "--pid": "p", "-q": "p", "--quick-pid": "p", "-C": "C", "-u": "u", "-U": "u",
              "--user": "u", "-g": "g", "-G": "g", "--group": "g", "-s": "s", "--sid": "s", "-t": "t",
              "--tty": "t", "--ppid": "P"}


def _ps_format(spec: str) -> list[tuple[str, str | None]]:
    """The fields of ``-o SPEC``: (name, header override or None)."""
    items = spec.replace(" ", ",").split(",")
    if any("=" in it for it in items):
        # `pid=X,comm` names the pid column "X,comm": only all-empty headers are modelled
        if not all(it.endswith("=") and it.count("=") == 1 for it in items):
            raise Defer(f"ps -o {spec}: renamed headers")
        return [(it[:-1], "") for it in items]
    return [(it, None) for it in items if it]


def _ps_select(inv: Invocation, opt: str, value: str) -> None:
    """Check a selection list as procps does where the answer could differ (unknown users)."""
    if _PS_SELECT[opt] == "u":
        db = UserDB(inv)
        if any(not n.isdigit() and db.uid(n) is None for n in value.split(",")):
            raise Defer(f"ps {opt} {value}: a user the image does not know (ps prints its usage)")


def ps(inv: Invocation) -> int:
    """``ps`` with the selections and formats scripts use: no process runs; header, exit 1."""
    args = inv.argv[1:]
    fmt = None
    cols: list = []
    header = True
    bsd = False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a in ("--no-headers", "--no-heading", "--noheaders", "--noheading"):
            header = False
        elif a in ("o", "--format") or a.startswith("--format="):
            spec = a.split("=", 1)[1] if "=" in a else None
            if spec is None:
                if i >= len(args):
                    raise Defer(f"ps {a} without a format")
                spec, i = args[i], i + 1
            cols += _ps_format(spec)
            fmt = "o"
        elif a in _PS_SELECT and a.startswith("--"):
            if i >= len(args):
                raise Defer(f"ps {a} without a list")
            _ps_select(inv, a, args[i])
            i += 1
        elif a.startswith("--sort"):
            if a == "--sort":
                i += 1
        elif a == "-aux":
            fmt, bsd = "u", True  # procps reads "-aux" as BSD "aux" when no user "x" exists
        elif a.startswith("-") and len(a) > 1:
            for j, c in enumerate(a[1:], 2):
                if c == "f":
                    fmt = fmt or "f"
                elif c in "eAadHw":
                    continue
                elif c == "o" or f"-{c}" in _PS_SELECT:
                    value = a[j:]  # the rest of the cluster, or the next word
                    if not value:
                        if i >= len(args):
                            raise Defer(f"ps {a} without an argument")
                        value, i = args[i], i + 1
                    if c == "o":
                        cols += _ps_format(value)
                        fmt = "o"
                    else:
                        _ps_select(inv, f"-{c}", value)
                    break
                else:
                    raise Defer(f"ps {a} is not modelled")
        elif a.isdigit() or re.fullmatch(r"\d+(,\d+)*", a):
            pass  # a pid list
        else:
            for c in a:
                if c == "u":
                    fmt = "u"
                elif c == "h":
                    header = False
                elif c not in "axw":
                    raise Defer(f"ps {a} is not modelled")
            bsd = True
    if fmt == "o":
        out_cols = []
        for name, head in cols:
            if name not in _PS_FIELDS:
                raise Defer(f"ps -o {name}: a field the model has no header for")
            h, w, right = _PS_FIELDS[name]
            out_cols.append((h if head is None else head, w, right))
        if all(c[0] == "" for c in out_cols):
            header = False
    else:
        out_cols = {"f": _PS_FULL, "u": _PS_USER}.get(fmt) or (_PS_BSD if bsd else _PS_DEFAULT)
    if header:
        inv.out(_ps_header(out_cols, len(str(_pid_max(inv) - 1))) + "\n")
    return 1
