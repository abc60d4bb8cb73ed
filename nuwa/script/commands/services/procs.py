"""Models of the process tools: pidof, pgrep (queries) and pkill, killall (signals).

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

Versions: procps-ng 4.0.2 (pgrep, pkill), sysvinit-utils 3.06 (pidof), psmisc 23.6 (killall).
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
