"""Probes of sockets and open files: ``ss``, ``netstat``, ``lsof``, ``fuser``.

A maintainer script asks these what the *running* system is doing (nginx's postinst:
``if [ -z "$(ss -nlt 'sport = 80' | grep -v ^State)" ]``, mariadb's ``lsof -nt FILE``). The
image being patched is dormant: no socket is open, no process holds a file. The models give the
answer such a system gives, byte for byte: the real programs' output when they find nothing
(headers included, for the option forms scripts use) and their exit status. That answer is the
complete effect of the program on a machine where nothing runs, so it is simulated, not
deferred (as ``pidof``/``pgrep`` in ``procs.py``). ``fuser -k`` signals nobody and is simulated
the same way.

Each model was judged against the real program run in an empty network and pid namespace
(``unshare --net --pid --fork --mount-proc``; tests/script/test_services_probes.py). Forms whose
"nothing" output was not judged, or that read state other than sockets and processes (routing
tables, interface counters, summaries, mounts, SELinux contexts, other namespaces), are
deferred.

Versions: iproute2 6.1 (ss), net-tools 2.10 (netstat), lsof 4.95, psmisc 23.6 (fuser).
"""

from __future__ import annotations

import re

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, errno_text
from nuwa.script.context import Defer, Invocation

# ---- ss --------------------------------------------------------------------------------------

_SS = _args.spec("altuwxn46pemioHf:A:", {
    "all": "a", "listening": "l", "tcp": "t", "udp": "u", "raw": "w", "unix": "x", "numeric": "n",
    "ipv4": "4", "ipv6": "6", "processes": "p", "extended": "e", "memory": "m", "info": "i",
    "options": "o", "no-header": "H", "family": "f", "query": "A", "socket": "A"})
#: ss's socket tables (``enum { TCP_DB, ... }``) behind each -A name the model accepts
_DBS = {"tcp": {"tcp"}, "udp": {"udp"}, "raw": {"raw"}, "unix_dgram": {"u_dgr"}, "unix_stream": {"u_str"},
        "unix_seqpacket": {"u_seq"}, "unix": {"u_dgr", "u_str", "u_seq"}}
_PORT_KEYS = {"sport", "dport"}
_OPS = {"=", "==", "eq", "!=", "neq", "ne", ">", "<", ">=", "<=", "gt", "lt", "ge", "le"}


def _ss_filter_ok(args: list[str]) -> bool:
    """True when ``args`` is a filter of numeric port conditions (``sport = :80 or dport 443``).

    ss joins its operands and parses them with its own grammar (``ssfilter.y``); only the port
    conditions are accepted here, whose syntax needs no address or service lookup. Anything
    else (addresses, ``state``, service names) is left to the real program.
    """
    toks = re.findall(r"[()]|[^\s()]+", " ".join(args))
    i, expect_term, depth = 0, True, 0
    while i < len(toks):
        t = toks[i]
        if expect_term:
            if t in ("not", "!"):
                i += 1
                continue
            if t == "(":
                depth, i = depth + 1, i + 1
                continue
            if t not in _PORT_KEYS:
                return False
            i += 1
            if i < len(toks) and toks[i] in _OPS:
                i += 1
            if i >= len(toks) or not re.fullmatch(r":?\d{1,5}", toks[i]) or int(toks[i].lstrip(":")) > 65535:
                return False
            i, expect_term = i + 1, False
        elif t == ")" and depth:
            depth, i = depth - 1, i + 1
        elif t in ("and", "&&", "&", "or", "||", "|"):
            i, expect_term = i + 1, True
        else:
            expect_term = True  # juxtaposed conditions are ANDed
    return not expect_term and depth == 0 or not toks


def ss(inv: Invocation) -> int:
    """``ss [-tuwx] [-l|-a] [-npemio] [-H] [-A Q] [-f F] [FILTER]``: no socket; the header only."""
    try:
        opts, ops = _args.parse(inv, _SS)
    except _args.UsageError as e:
        raise Defer(f"ss {' '.join(inv.argv[1:])}: {e.text}") from None
    dbs: set[str] = set()
    header = True
    for k, v in opts:
        if k in "tuwx":
            dbs |= _DBS[{"t": "tcp", "u": "udp", "w": "raw", "x": "unix"}[k]]
        elif k == "A":
            for q in v.split(","):
                if q not in _DBS:
                    raise Defer(f"ss -A {v}: socket tables the model does not answer for")
                dbs |= _DBS[q]
        elif k == "f":
            # inet families only narrow the named tables; alone they would query dccp, sctp and
            # mptcp too, whose answer depends on the booted kernel's modules
            if v not in ("inet", "inet6", "unix"):
                raise Defer(f"ss -f {v}")
            if v == "unix":
                dbs |= _DBS["unix"]
        elif k == "H":
            header = False
    if not dbs:
        # every table, netlink, packet, dccp and sctp included: not judged
        raise Defer("ss without a socket table (-t, -u, -w, -x, -A) is not modelled")
    if not _ss_filter_ok(ops):
        raise Defer(f"ss filter {' '.join(ops)!r} is not one the model parses")
    if header:
        # one table: no Netid column (ss.c: netid_width is 0 unless several dbs are shown)
        inv.out(("Netid " if len(dbs) > 1 else "")
                + "State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n")
    return 0


# ---- netstat ---------------------------------------------------------------------------------

_NETSTAT = _args.spec("tuwxlanpe46A:", {
    "tcp": "t", "udp": "u", "raw": "w", "unix": "x", "listening": "l", "all": "a", "numeric": "n",
    "numeric-hosts": "n", "numeric-ports": "n", "numeric-users": "n", "programs": "p", "extend": "e",
    "protocol": "A"})


def netstat(inv: Invocation) -> int:
    """``netstat [-tuwx] [-l|-a] [-n] [-p] [-e]``: no socket; titles and headers only."""
    try:
        opts, ops = _args.parse(inv, _NETSTAT)
    except _args.UsageError as e:
        raise Defer(f"netstat {' '.join(inv.argv[1:])}: {e.text}") from None
    if ops:
        raise Defer(f"netstat {' '.join(inv.argv[1:])}: operands")
    keys = {k for k, _ in opts}
    inet = bool(keys & set("tuw46"))
    unix = "x" in keys
    for k, v in opts:
        if k == "A":
            for fam in v.split(","):
                if fam in ("inet", "inet6"):
                    inet = True
                elif fam == "unix":
                    unix = True
                else:
                    raise Defer(f"netstat -A {v}")
    if not inet and not unix:
        inet = unix = True  # net-tools: no protocol named shows every family
    what = "servers and established" if "a" in keys else "only servers" if "l" in keys else "w/o servers"
    if inet:
        inv.out(f"Active Internet connections ({what})\n"
                "Proto Recv-Q Send-Q Local Address           Foreign Address         State      "
                + (" User       Inode     " if "e" in keys else "")
                + (" PID/Program name    " if "p" in keys else "") + "\n")
    if unix:
        inv.out(f"Active UNIX domain sockets ({what})\n"
                "Proto RefCnt Flags       Type       State         I-Node   "
                + ("PID/Program name     " if "p" in keys else "") + "Path\n")
    return 0


# ---- lsof ------------------------------------------------------------------------------------

_INET_SPEC = re.compile(r"[46]?((tcp|udp|TCP|UDP)?(:\d{1,5})?)")


def lsof(inv: Invocation) -> int:
    """``lsof [-nPtwlb] [-i[SPEC]] [+D DIR] FILE...``: nothing is open; exit 1, no output.

    lsof parses its own options (no getopt). A file operand that does not exist is reported
    as lsof does ("status error on NAME"); without any selection lsof would list every open
    file of the system, which is deferred rather than answered.
    """
    args = inv.argv[1:]
    names: list[str] = []
    selected = False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            names += args[i:]
            break
        if a.startswith("-i"):
            spec = a[2:]
            if not spec and i < len(args) and not args[i].startswith(("-", "+")):
                spec = args[i]  # lsof takes the next word as -i's address
                i += 1
            if not _INET_SPEC.fullmatch(spec):
                raise Defer(f"lsof -i {spec}: an address the model does not parse")
            selected = True
        elif a in ("+D", "+d"):
            if i >= len(args):
                raise Defer(f"lsof {a} without a directory")
            try:
                inv.fs.stat(apath(inv, args[i]))
            except OSError:
                raise Defer(f"lsof {a} {args[i]}: a directory that does not exist") from None
            selected = True
            i += 1
        elif a.startswith("-") and len(a) > 1:
            if any(c not in "nPtwlb" for c in a[1:]):
                raise Defer(f"lsof {a} is not modelled")
        else:
            names.append(a)
    missing = False
    for n in names:
        try:
            inv.fs.stat(apath(inv, n))
        except OSError as e:
            inv.err(f"lsof: status error on {n}: {errno_text(e)}\n")
            missing = True
    if not names and not selected and not missing:
        raise Defer("lsof without a file or -i selection lists the whole running system")
    return 1


# ---- fuser -----------------------------------------------------------------------------------

_SIGNALS = {"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
            "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
            "XFSZ", "VTALRM", "PROF", "WINCH", "POLL", "PWR", "SYS"}


def fuser(inv: Invocation) -> int:
    """``fuser [-s|-v] [-k [-SIGNAL]] [-u] [-w] [-n SPACE] NAME...``: nobody uses anything; exit 1.

    ``-k`` has nobody to signal: with no process found, fuser prints nothing and exits 1,
    which is the whole effect. A file that does not exist is reported as psmisc does.
    """
    args = inv.argv[1:]
    space = "file"
    names: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            names += args[i:]
            break
        if a == "-n":
            if i >= len(args) or args[i] not in ("file", "tcp", "udp"):
                raise Defer(f"fuser -n {args[i] if i < len(args) else ''}")
            space = args[i]
            i += 1
        elif a.startswith("-") and len(a) > 1:
            body = a[1:]
            if body.upper() in _SIGNALS or body.isdigit() and int(body) < 65:
                continue
            if any(c not in "svkuwi46" for c in body):
                raise Defer(f"fuser {a} is not modelled")
        else:
            names.append(a)
    if not names:
        raise Defer("fuser without a name prints its usage")
    for n in names:
        m = re.fullmatch(r"(\d{1,5})?(?:,[^/]*)?/(tcp|udp)", n)
        if space in ("tcp", "udp") and re.fullmatch(r"\d{1,5}", n) or space == "file" and m and m.group(1):
            continue  # a port: no socket is open on a dormant system
        if space != "file":
            raise Defer(f"fuser -n {space} {n}")
        try:
            inv.fs.stat(apath(inv, n))
        except OSError:
            inv.err(f"Specified filename {n} does not exist.\n")
    return 1
