"""Model of ``squid -k parse`` (squid 5.7, Debian 12): the configuration checked, not run.

squid's postinst reads ``cache_dir``, ``cache_effective_user`` and ``cache_effective_group``
out of ``squid -k parse 2>&1 | grep "Processing:"``. ``-k parse`` needs no running squid: it
reads the configuration (``-f FILE``, default ``/etc/squid/squid.conf``) with the debug level
``ALL,1``, so every directive line is logged, runs the checks made after parsing
(``configDoConfigure``) and exits with the number of unrecognized lines. Everything goes to
stderr, each line stamped ``YYYY/MM/DD HH:MM:SS| `` in the image's local time (the clock is
the host's, as for ``date``: :mod:`nuwa.script.commands.coreutils.datecmd`).

What is printed, in order (``src/main.cc`` ``SquidMain``, ``src/cache_cf.cc``):

- the six ``Startup:`` lines of the authentication schemes Debian's build has;
- the reading (:mod:`squidconf`): ``Processing Configuration File: FILE (depth N)`` per file,
  ``Processing: LINE`` per line, ``FILE(N): unrecognized: 'NAME'`` per unknown directive;
- ``configDoConfigure``: the host name check (``getMyHostname``) when ``visible_hostname`` is
  not set: the name the VM boots with (``/etc/hostname``) found in ``/etc/hosts`` prints
  nothing; one that needs DNS is deferred (:func:`miscutils.sysinfo.hosts_lookup`). Then
  ``requirePathnameExists`` of the MIME table, unlinkd, the log daemon (the default
  ``access_log`` is ``daemon:``) and the icon directory (``FATAL: NAME PATH: (errno) text``,
  which ``-k parse`` reports and goes on), the effective user (``getpwnam``, default
  ``proxy``) and group (``getgrnam``) in the image's account files, then ``Initializing
  https:// proxy context`` (the default ``tls_outgoing_options``).

The values checked (:data:`DIRECTIVES`, each after its ``parse_*`` function in
``cache_cf.cc`` or ``src/acl``): ``acl NAME src|port|method VALUE...`` (addresses, networks and
IPv4 ranges as the default configuration writes them, overlapping entries of one ACL deferred
since squid warns about them; ports and port ranges with ``xatos``' "No digits" error and
``ACLIntRange``'s "Invalid port value"), ``http_access allow|deny [!]ACL...`` ("ACL not found"),
``http_port PORT``, ``cache_dir ufs|aufs DIR MB L1 L2``, ``refresh_pattern [-i] REGEX MIN PCT%
MAX``, ``logfile_rotate N``, and the one-word strings ``coredump_dir``, ``visible_hostname``,
``cache_effective_user``, ``cache_effective_group`` (a missing word is ``Bungled``). Every
other form of these and every other directive squid knows defers.

A fatal error (``fatal()``) prints ``Not currently OK to rewrite swap log.``,
``storeDirWriteCleanLogs: Operation aborted.``, ``FATAL: MESSAGE``, ``Squid Cache (Version
5.7): Terminated abnormally.`` and ``PrintRusage``'s three lines, and exits 1. The three
rusage figures are the dying process's own CPU time, resident size and page faults: a
simulation has no such process, so they are printed as zero (a judge masks these numbers as it
masks the time stamps).

Deferred: every ``-k`` action but ``parse`` (they signal the running squid named by the pid
file), any other option (``-n`` changes ``${service_name}``, ``-v`` prints the build), and what
:mod:`squidconf` defers.
"""

from __future__ import annotations

import ipaddress
import re

from nuwa.script.commands import _args
from nuwa.script.commands._regex import compile_posix
from nuwa.script.commands._common import now_ns
from nuwa.script.commands.accounts.pwck import _lookup
from nuwa.script.commands.coreutils import datecmd
from nuwa.script.commands.miscutils.sysinfo import boot_hostname, hosts_lookup
from nuwa.script.commands.server.squidconf import WS, PREDEFINED, Fatal, Reader, xstrerr
from nuwa.script.context import Defer, Invocation

CONFIG = "/etc/squid/squid.conf"
STARTUP = ["Startup: Initializing Authentication Schemes ...",
           *(f"Startup: Initialized Authentication Scheme '{s}'" for s in ("basic", "digest", "negotiate", "ntlm")),
           "Startup: Initialized Authentication."]
#: requirePathnameExists's names and Debian's compiled-in paths, in configDoConfigure's order
REQUIRED = [("MIME Config Table", "/usr/share/squid/mime.conf"), ("unlinkd_program", "/usr/lib/squid/unlinkd"),
            ("logfile_daemon", "/usr/lib/squid/log_file_daemon"), ("Icon Directory", "/usr/share/squid/icons")]
#: the -k words in the order mainHandleCommandLineOption tries them (a prefix picks the first)
_K_WORDS = ["reconfigure", "rotate", "debug", "shutdown", "interrupt", "kill", "restart", "check", "parse"]
_SPEC = _args.spec("f:k:")


def squid(inv: Invocation) -> int:
    """``squid -k parse [-f FILE]``; see the module note."""
    try:
        opts, operands = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        raise Defer(f"squid: {e.text} (squid's usage text is not modelled)") from None
    config, action = CONFIG, None
    for key, value in opts:
        if key == "f":
            config = value
        else:
            action = next((w for w in _K_WORDS if w.startswith(value)), None)
    if operands or action != "parse":
        raise Defer(f"squid {' '.join(inv.argv[1:])}: only -k parse is modelled "
                    "(the other actions signal a running squid)")
    lines = list(STARTUP)
    reader = Reader(inv.fs, DIRECTIVES, inv.cwd)
    status, died = 0, False
    # StoreController::store_dirs_rebuilding: set until configDoConfigure finds no cache_dir
    rebuilding = True
    try:
        try:
            reader.read(config)
        finally:
            lines += reader.log
        rebuilding = bool(reader.conf.cache_dirs)
        _after_parse(inv, reader, lines)
        status = reader.errors & 0xFF
    except Fatal as f:
        # fatal() -> storeDirWriteCleanLogs: refused while "rebuilding", else a run over no
        # cache directory whose duration (microseconds) squid prints with two decimals
        lines += (["Not currently OK to rewrite swap log.", "storeDirWriteCleanLogs: Operation aborted."]
                  if rebuilding else ["storeDirWriteCleanLogs: Starting...", "  Finished.  Wrote 0 entries.",
                                      "  Took 0.00 seconds (  0.00 entries/sec)."])
        lines += [f"FATAL: {f}", "Squid Cache (Version 5.7): Terminated abnormally."]
        status, died = 1, True
    stamp = datecmd.strftime("%Y/%m/%d %H:%M:%S| ", now_ns() // 10**9, 0, datecmd.image_zone(inv, inv.env))
    inv.err("".join(stamp + ln + "\n" for ln in lines))
    if died:
        # PrintRusage writes to the debug log without a stamp (see the module note)
        inv.err("CPU Usage: 0.000 seconds = 0.000 user + 0.000 sys\nMaximum Resident Size: 0 KB\n"
                "Page faults with physical i/o: 0\n")
    return status


def _after_parse(inv: Invocation, reader: Reader, out: list[str]) -> None:
    """``configDoConfigure``'s messages (appended to ``out``) for the configurations the
    reader accepts; raises :class:`Fatal` as squid dies."""
    conf = reader.conf
    if conf.visible_hostname is None:
        name = boot_hostname(inv)
        if hosts_lookup(inv, name) is None:
            raise Defer(f"squid -k parse: the host name {name!r} is not in /etc/hosts; DNS answers at boot")
    for what, path in REQUIRED:
        try:
            inv.fs.stat(path)
        except OSError as e:
            out.append(f"FATAL: {what} {path}: {xstrerr(e)}")
    if not _lookup(inv, "/etc/passwd", "passwd", 0, conf.effective_user, 7):
        raise Fatal(f"getpwnam failed to find userid for effective user '{conf.effective_user}'")
    if conf.effective_group is not None and not _lookup(inv, "/etc/group", "group", 0, conf.effective_group, 4):
        raise Fatal(f"getgrnam failed to find groupid for effective group '{conf.effective_group}'")
    out.append("Initializing https:// proxy context")


# ---- the directives modelled ----------------------------------------------------------------
# Each gets the tokens after the name (ConfigParser::NextToken / strtokFile, no quoted values)

def _string(attr: str | None):
    """``parse_string``: one token, required (the rest of the line is ignored)."""
    def check(r: Reader, args: list[str]) -> None:
        if not args:
            raise r.bungled()
        if attr:
            setattr(r.conf, attr, args[0])
    return check


def _number_error(r: Reader, token: str) -> None:
    """``xatoll``'s complaints for a token strtoll reads no digits from."""
    if not token or token[0] not in "0123456789+-" + WS:
        r.log.append(f"ERROR: No digits were found in the input value '{token}'.")
        raise r.bungled()
    raise Defer(f"squid -k parse: the number {token!r} is not modelled")


def _int(r: Reader, args: list[str]) -> None:
    """``parse_int`` (``GetInteger``, ``xatoi``)."""
    if not args:
        raise r.bungled()
    if not re.fullmatch(r"[0-9]{1,9}", args[0]):
        _number_error(r, args[0])


def _acl(r: Reader, args: list[str]) -> None:
    """``ACL::ParseAclLine`` for the types ``src``, ``port`` and ``method``."""
    if len(args) < 3:
        raise Defer("squid -k parse: an acl line without a name, a type or a value")
    name, kind, values = args[0], args[1], args[2:]
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,31}", name) or name in PREDEFINED:
        raise Defer(f"squid -k parse: acl name {name!r} (predefined or unusual)")
    if any(v.startswith("-") for v in values):
        raise Defer(f"squid -k parse: acl {name} options")
    known = r.conf.acls.get(name)
    if known is not None and known != kind:
        raise Defer(f"squid -k parse: acl {name} redefined with another type")
    if kind == "port":
        for v in values:
            lo, dash, hi = v.partition("-")
            nums = []
            for part in (lo, hi) if dash else (lo,):
                if not re.fullmatch(r"[0-9]{1,5}", part) or int(part) > 65535:
                    _number_error(r, part)
                nums.append(int(part))
            if nums[-1] < nums[0]:
                r.log.append("ACLIntRange::parse: Invalid port value")
                raise r.bungled()
    elif kind == "method":
        if not all(re.fullmatch(r"[A-Z]+", v) and v != "PURGE" for v in values):
            raise Defer(f"squid -k parse: acl {name} method {' '.join(values)}")
    elif kind == "src":
        nets = r.conf.nets.setdefault(name, [])
        for v in values:
            nets.append(_network(v))
        # squid warns about overlapping entries of one ACL (ACLIP's splay tree); not modelled
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a[0].version == b[0].version and a[0] <= b[1] and b[0] <= a[1]:
                    raise Defer(f"squid -k parse: acl {name}: overlapping addresses (squid warns)")
    else:
        raise Defer(f"squid -k parse: acl type {kind} is not modelled")
    r.conf.acls[name] = kind


def _network(v: str):
    """An ``acl src`` value as (first, last) address: ADDR, ADDR/BITS or ADDR-ADDR, written as
    the default configuration writes them (anything else is deferred)."""
    if "%" in v or (":" in v and "." in v):
        # a scoped or IPv4-mapped IPv6 address (squid folds ::ffff:a.b.c.d into IPv4)
        raise Defer(f"squid -k parse: acl src value {v!r} is not modelled")
    try:
        if "-" in v:
            a, b = (ipaddress.ip_address(x) for x in v.split("-", 1))
            if a.version != b.version or a > b or a.version != 4:
                raise ValueError(v)
            return a, b
        if "/" in v:
            addr, bits = v.split("/", 1)
            if not bits.isdigit():
                raise ValueError(v)
            net = ipaddress.ip_network(v, strict=True)  # host bits set: squid warns; deferred
            if addr != str(net.network_address) and ":" not in addr:
                raise ValueError(v)
            return net.network_address, net.broadcast_address
        a = ipaddress.ip_address(v)
        return a, a
    except ValueError:
        raise Defer(f"squid -k parse: acl src value {v!r} is not modelled") from None


def _access(r: Reader, args: list[str]) -> None:
    """``parse_acl_access`` for ``allow``/``deny`` and a list of named ACLs."""
    if not args or args[0] not in ("allow", "deny") or len(args) < 2:
        raise Defer("squid -k parse: an http_access line other than allow|deny ACL...")
    names = [a[1:] if a.startswith("!") else a for a in args[1:]]
    if "" in names:
        raise Defer("squid -k parse: a lone '!' in an http_access line")
    if "all" in names and len(names) > 1:
        raise Defer("squid -k parse: 'all' among other ACLs (squid warns)")
    for n in names:
        if n not in r.conf.acls:
            r.log.append(f"ACL not found: {n}")
            raise r.bungled()


def _http_port(r: Reader, args: list[str]) -> None:
    """``parse_port_cfg`` for a bare port number (no address, no options)."""
    if len(args) != 1 or not re.fullmatch(r"[1-9][0-9]{0,4}", args[0]) or int(args[0]) > 65535:
        raise Defer(f"squid -k parse: http_port {' '.join(args)} (only a bare port is modelled)")


def _cache_dir(r: Reader, args: list[str]) -> None:
    """``parse_cachedir`` for a new ``ufs``/``aufs`` DIR, then ``UFSSwapDir::parseSizeL1L2``:
    MBYTES, L1, L2 read one by one (a missing one is ``Bungled``, zero is fatal); options
    after them are deferred."""
    if (len(args) < 2 or len(args) > 5 or args[0] not in ("ufs", "aufs") or not args[1].startswith("/")
            # the same path again (strcasecmp) reconfigures the first; 63 at most
            or _ascii_lower(args[1]) in r.conf.cache_dirs or len(r.conf.cache_dirs) >= 63):
        raise Defer(f"squid -k parse: cache_dir {' '.join(args)} (only a new ufs|aufs DIR MB L1 L2 is modelled)")
    r.conf.cache_dirs.add(_ascii_lower(args[1]))
    for i, what in enumerate(("size", "level 1 directories", "level 2 directories")):
        if i + 2 >= len(args):
            raise r.bungled()
        token = args[i + 2]
        if not re.fullmatch(r"[0-9]{1,7}", token):
            _number_error(r, token)
        if int(token) == 0:
            raise Fatal(f"UFSSwapDir::parseSizeL1L2: invalid {what} value")


def _ascii_lower(s: str) -> str:
    """What ``strcasecmp`` folds in the C locale: A-Z only."""
    return s.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def _refresh_pattern(r: Reader, args: list[str]) -> None:
    """``parse_refreshpattern`` for ``[-i] REGEX MIN PERCENT% MAX`` without options."""
    icase = bool(args) and args[0] == "-i"
    rest = args[1:] if icase else args
    if (len(rest) != 4 or rest[0].startswith("-") or not re.fullmatch(r"[0-9]{1,6}", rest[1])
            or not re.fullmatch(r"[0-9]{1,3}%", rest[2]) or not re.fullmatch(r"[0-9]{1,6}", rest[3])
            # over a year (525600 minutes) squid warns and crops
            or max(int(rest[1]), int(rest[3])) > 60 * 24 * 365):
        raise Defer(f"squid -k parse: refresh_pattern {' '.join(args)} (options or unusual numbers)")
    rx = rest[0]
    # The regex token is read with quoted pairs (ConfigParser::RegexPattern): a backslash before
    # white space joins the tokens, one at the end is fatal. glibc's regcomp refuses what
    # compile_posix may take: a repetition with nothing before it; braces are its own syntax.
    # Such patterns, and those compile_posix refuses (squid logs regerror's text and goes on),
    # are deferred: only patterns regcomp surely accepts are modelled.
    if (any(a.endswith("\\") for a in args) or "{" in rx or "}" in rx
            or re.search(r"(^|[(|^])[*+?]", rx)):
        raise Defer(f"squid -k parse: refresh_pattern regex {rx!r} (a form regcomp may refuse)")
    try:
        compile_posix(rx, extended=True, icase=icase)
    except Exception:  # noqa: BLE001 -- regcomp's own message is not modelled
        raise Defer(f"squid -k parse: refresh_pattern regex {rx!r} that regcomp may refuse") from None


DIRECTIVES = {
    "acl": _acl, "http_access": _access, "http_port": _http_port, "cache_dir": _cache_dir,
    "refresh_pattern": _refresh_pattern, "logfile_rotate": _int, "coredump_dir": _string(None),
    "visible_hostname": _string("visible_hostname"), "cache_effective_user": _string("effective_user"),
    "cache_effective_group": _string("effective_group"),
}
