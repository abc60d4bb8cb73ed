"""Model of ``chronyd -p`` (chrony 4.3): print the configuration and exit.

With ``-p`` chronyd (``main.c``) does not check for root, does not fork, logs to stderr at
severity "warning" and up, reads the configuration with ``CNF_ReadFile`` (``conf.c``) printing
each directive as it goes, and returns 0 before anything that touches the system (pid file,
user switch, sockets, the clock). That is a pure function of the image's files, so it is
answered here exactly:

- each line is read with ``fgets`` into a 2049-byte buffer (a line of 2048 bytes or more is
  "String too long"), normalised by ``CPS_NormalizeLine`` (leading white space dropped, runs of
  white space made one space, a trailing one dropped, a line whose first character is one of
  ``!;#%`` is a comment; a ``#`` later in a line is *not* a comment, and there is no line
  continuation) and printed as ``directive[ args]`` before its arguments are checked;
- ``include PATTERN`` (glibc ``glob`` with ``GLOB_NOMAGIC|GLOB_ERR``) and ``confdir DIR...``
  (the ``*.conf`` files of up to 10 directories, by file name, the first directory holding a
  name winning) read the files they name, nested up to 10 levels; they are not printed;
- ``sourcedir`` is only recorded with ``-p`` (its files are read when sources are added, after
  the point where ``-p`` returns);
- argument errors are fatal: ``<time> Fatal error : <message>`` on stderr and status 1, with
  the lines printed so far on stdout (stdio flushes them at ``exit``). The time stamp is
  ``gmtime`` of now, as the real program prints it.

Directives whose arguments are checked against host names, addresses or devices (``allow``,
``bindaddress``, ``refclock``, ``local``...) are deferred: their checks are not modelled.
Any form without ``-p`` starts the daemon or steps the clock and is deferred.
"""

from __future__ import annotations

import re
import time

from nuwa.script.commands import _args
from nuwa.script.context import Defer, Invocation, strerror
from nuwa.script.expand import has_glob, pattern_regex

DEFAULT_CONF_FILE = "/etc/chrony/chrony.conf"
MAX_LINE_LENGTH = 2048
MAX_CONF_DIRS = 10
MAX_INCLUDE_LEVEL = 10
#: C ``isspace`` in the C locale (chronyd never calls setlocale)
_SPACE = " \t\n\v\f\r"

# conf.c's CNF_ParseLine, by the parser each directive uses
_STRING = {"bindacqdevice", "bindcmddevice", "binddevice", "driftfile", "dumpdir", "hwclockfile", "keyfile",
           "leapsectz", "logdir", "ntpsigndsocket", "ntscachedir", "ntsdumpdir", "ntsntpserver", "pidfile",
           "rtcdevice", "rtcfile", "user", "ntsservercert", "ntsserverkey"}
_INT = {"acquisitionport", "cmdport", "dscp", "logbanner", "maxntsconnections", "maxsamples", "minsamples",
        "minsources", "nocerttimecheck", "ntsport", "ntsprocesses", "ntsrefresh", "ntsrotate", "port", "ptpport",
        "sched_priority"}
_DOUBLE = {"clockprecision", "combinelimit", "corrtimeratio", "logchange", "maxclockerror", "maxdistance",
           "maxdrift", "maxjitter", "maxslewrate", "maxupdateskew", "reselectdist", "rtcautotrim", "stratumweight"}
_NULL = {"lock_all", "manual", "noclientlog", "nosystemcert", "rtconutc", "rtcsync"}
_RATELIMIT = {"ratelimit", "cmdratelimit", "ntsratelimit"}
_SOURCE = {"server", "pool", "peer"}
_REMOVED = {"commandkey", "generatecommandkey", "linux_freq_scale", "linux_hz"}
_KEYWORDS = {"leapsecmode": {"system", "slew", "step", "ignore"},
             "authselectmode": {"require", "prefer", "mix", "ignore"}}
_LOGS = {"rawmeasurements", "measurements", "selection", "statistics", "tracking", "rtc", "refclocks", "tempcomp"}
#: checked against addresses, host names (DNS), interfaces or devices: not modelled
_UNCHECKED = {"allow", "deny", "cmdallow", "cmddeny", "bindacqaddress", "bindaddress", "bindcmdaddress",
              "broadcast", "hwtimestamp", "initstepslew", "local", "refclock", "smoothtime", "tempcomp"}
# cmdparse.c's CPS_ParseNTPSourceAdd: flag options, and options with a value of a scanf type
_SRC_FLAGS = {"auto_offline", "burst", "copy", "iburst", "offline", "noselect", "prefer", "require", "trust",
              "nts", "xleave"}
_SRC_VALUES = {"certset": "u", "key": "u", "asymmetry": "f", "extfield": "x", "filter": "d", "maxdelay": "f",
               "maxdelayratio": "f", "maxdelaydevratio": "f", "maxdelayquant": "f", "maxpoll": "d",
               "maxsamples": "d", "maxsources": "d", "mindelay": "f", "minpoll": "d", "minsamples": "d",
               "minstratum": "d", "ntsport": "d", "offset": "f", "port": "d", "polltarget": "d", "presend": "d",
               "version": "d"}
NTP_EF_EXP1 = 0xF323

_INT_RX = re.compile(r"[+-]?[0-9]+")
_HEX_RX = re.compile(r"[+-]?(?:0[xX])?[0-9a-fA-F]+")
#: infinities, NaNs, hex floats and an exponent without digits: glibc's scanf outcome not modelled
_FLOAT_ODD = re.compile(r"[+-]?(?:inf|nan|0[xX])", re.I)
_FLOAT_BARE_E = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE](?![+-]?[0-9])")
_FLOAT_RX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class _Fatal(Exception):
    """``LOG_FATAL``: chronyd prints the message and exits with status 1."""


def _lower(s: str) -> str:
    """ASCII-only case folding, as ``strcasecmp`` in the C locale."""
    return s.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalize_line(line: str) -> str:
    """``CPS_NormalizeLine``: white space squeezed to single spaces, comments dropped."""
    out: list[str] = []
    space = first = True
    for c in line:
        if c in _SPACE:
            if not space:
                out.append(" ")
            space = True
            continue
        if first and c in "!;#%":
            break
        out.append(c)
        space = first = False
    if out and out[-1] == " ":
        out.pop()
    return "".join(out)


def split_word(s: str) -> tuple[str, str]:
    """``CPS_SplitWord``: the first word and the rest after the white space that follows it."""
    s = s.lstrip(_SPACE)
    i = 0
    while i < len(s) and s[i] not in _SPACE:
        i += 1
    return s[:i], s[i:].lstrip(_SPACE)


def _scan(s: str, kind: str) -> int | None:
    """One scanf conversion (``%d``/``%u``/``%lu`` ``d``/``u``, ``%x`` ``x``, ``%lf`` ``f``) at
    the start of ``s``: the number of characters it consumes (leading white space included),
    or None when it fails. Forms whose glibc outcome is not certain here are deferred."""
    body = s.lstrip(_SPACE)
    skip = len(s) - len(body)
    if kind == "f":
        if _FLOAT_ODD.match(body) or _FLOAT_BARE_E.match(body):
            raise Defer(f"chronyd -p: number {body.split(' ')[0]!r} (glibc's scanf of this form is not modelled)")
        m = _FLOAT_RX.match(body)
    elif kind == "x":
        if re.match(r"[+-]?0[xX](?![0-9a-fA-F])", body):
            raise Defer(f"chronyd -p: number {body.split(' ')[0]!r} (glibc's scanf of this form is not modelled)")
        m = _HEX_RX.match(body)
    else:
        m = _INT_RX.match(body)
    return skip + m.end() if m else None


def _scan_seq(s: str, kinds: str) -> int:
    """``sscanf(s, "%a %b ...")``: how many conversions succeed (a space in the format matches
    any amount of white space, none included)."""
    done = 0
    for k in kinds:
        n = _scan(s, k)
        if n is None:
            break
        done += 1
        s = s[n:]
    return done


class Parser:
    """chronyd's configuration reader in print mode: ``CNF_ReadFile``/``CNF_ParseLine``."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.level = 0
        self.file: str | None = None
        self.number = 0
        self.command = ""

    def _where(self) -> str:
        return f" at line {self.number}" + (f" in file {self.file}" if self.file is not None else "")

    def command_error(self):
        """``command_parse_error``."""
        raise _Fatal(f"Could not parse {self.command} directive{self._where()}")

    def other_error(self, message: str):
        """``other_parse_error``."""
        raise _Fatal(f"{message}{self._where()}")

    def check_args(self, args: str, num: int) -> None:
        """``check_number_of_args`` on a normalised argument string."""
        have = 0 if not args else args.count(" ") + 1
        if have != num:
            raise _Fatal(f"{'Missing' if have < num else 'Too many'} arguments for {self.command} directive"
                         f"{self._where()}")

    def read_file(self, path: str) -> None:
        """``CNF_ReadFile``: every line of ``path``; a file that cannot be opened is fatal."""
        self.level += 1
        if self.level > MAX_INCLUDE_LEVEL:
            raise _Fatal("Maximum include level reached")
        try:
            data = self.inv.fs.read_bytes(self.inv.path(path))
        except IsADirectoryError:
            data = b""  # open(2) of a directory succeeds; the first fgets fails with EISDIR
        except OSError as e:
            raise _Fatal(f"Could not open {path} : {strerror(e)}") from None
        text = data.decode("latin-1")
        pos, number = 0, 0
        while pos < len(text):
            # fgets into a buffer of MAX_LINE_LENGTH + 1 bytes
            end = text.find("\n", pos, pos + MAX_LINE_LENGTH)
            end = pos + MAX_LINE_LENGTH if end < 0 else end + 1
            chunk, pos = text[pos:end], end
            number += 1
            self.parse_line(path, number, chunk.split("\0", 1)[0])
        self.level -= 1

    def parse_line(self, filename: str | None, number: int, line: str) -> None:
        """``CNF_ParseLine``: print the directive, then check its arguments."""
        self.file, self.number = filename, number
        if len(line) >= MAX_LINE_LENGTH:
            self.other_error("String too long")
        line = normalize_line(line)
        if not line:
            self.file = None
            return
        command, args = split_word(line)
        self.command = command
        name = _lower(command)
        if name not in ("include", "confdir"):
            self.inv.out((f"{command} {args}\n" if args else f"{command}\n").encode("latin-1"))
        self.check(name, args)
        self.file = None

    def check(self, name: str, args: str) -> None:
        """The directive's own parser, as far as it can fail."""
        if name in _STRING:
            self.check_args(args, 1)
        elif name in _INT:
            self.check_args(args, 1)
            if _scan(args, "d") is None:
                self.command_error()
        elif name in _DOUBLE:
            self.check_args(args, 1)
            if _scan(args, "f") is None:
                self.command_error()
        elif name in _NULL:
            self.check_args(args, 0)
        elif name in ("dumponexit", "sourcedir"):
            pass  # silently ignored / only recorded
        elif name in _SOURCE:
            if not self.source_ok(args):
                self.command_error()
        elif name in _RATELIMIT:
            self.ratelimit(args)
        elif name == "makestep":
            self.check_args(args, 2)
            if _scan_seq(args, "fd") != 2:
                self.command_error()
        elif name == "maxchange":
            self.check_args(args, 3)
            if _scan_seq(args, "fdd") != 3:
                self.command_error()
        elif name == "fallbackdrift":
            self.check_args(args, 2)
            if _scan_seq(args, "dd") != 2:
                self.command_error()
        elif name == "clientloglimit":
            self.check_args(args, 1)
            if _scan(args, "u") is None:
                self.command_error()
        elif name == "mailonchange":
            self.check_args(args, 2)
            if _scan(split_word(args)[1], "f") is None:
                self.command_error()
        elif name in _KEYWORDS:
            if _lower(args) not in _KEYWORDS[name]:
                self.command_error()
        elif name == "log":
            for word in args.split(" ") if args else []:
                if word not in _LOGS:
                    self.other_error("Invalid log parameter")
        elif name == "ntstrustedcerts":
            if args.count(" ") == 1:
                if _scan(args, "u") is None:
                    self.command_error()
            else:
                self.check_args(args, 1)
        elif name == "include":
            self.include(args)
        elif name == "confdir":
            self.confdir(args)
        elif name in _REMOVED:
            # LOG(LOGS_WARN): printed at the -p log level, not fatal
            self.inv.err(f"{_stamp()}{self.command} directive is no longer supported\n".encode("latin-1"))
        elif name in _UNCHECKED:
            raise Defer(f"chronyd -p: the arguments of the {self.command} directive (addresses, host names or"
                        " devices) are not checked by the model")
        else:
            self.other_error("Invalid directive")

    def source_ok(self, args: str) -> bool:
        """``CPS_ParseNTPSourceAdd``: a host name, then options (a value is read with
        ``sscanf("%x%n")`` and parsing resumes right after the characters it consumed)."""
        host, line = split_word(args)
        if not host:
            return False
        while line:
            cmd, line = split_word(line)
            key = _lower(cmd)
            if key in _SRC_FLAGS:
                continue
            kind = _SRC_VALUES.get(key)
            if kind is None:
                return False
            n = _scan(line, "u" if kind == "u" else kind)
            if n is None:
                return False
            value = line[:n].strip(_SPACE)
            if key == "key" and int(value) % (1 << 32) == 0:
                return False  # INACTIVE_AUTHKEY
            if key == "extfield" and int(value, 16) % (1 << 32) != NTP_EF_EXP1:
                return False
            line = line[n:]
        return True

    def ratelimit(self, args: str) -> None:
        """``parse_ratelimit``: ``interval|burst|leak N`` pairs."""
        line = args
        while line:
            opt, line = split_word(line)
            n = _scan(line, "d")
            if n is None:
                self.command_error()
            line = line[n:]
            if _lower(opt) not in ("interval", "burst", "leak"):
                self.command_error()

    def include(self, args: str) -> None:
        """``parse_include``: each file ``glob`` finds for the pattern, in sorted order."""
        self.check_args(args, 1)
        found = self.glob(args)
        if found is None:
            raise _Fatal(f"Could not search for files matching {args}")
        for path in found:
            self.read_file(path)

    def glob(self, pattern: str) -> list[str] | None:
        """glibc ``glob(pattern, GLOB_NOMAGIC | GLOB_ERR)``: the sorted matches (``[]`` for
        GLOB_NOMATCH), or None for GLOB_ABORTED (a directory that cannot be read)."""
        if "\\" in pattern:
            raise Defer(f"chronyd -p: include pattern {pattern!r} with a backslash (glob escapes not modelled)")
        if not has_glob(pattern):
            return [pattern]  # GLOB_NOMAGIC: the pattern itself, whether it exists or not
        out = self._glob(pattern, onlydir=False)
        return None if out is None else sorted(out, key=lambda p: p.encode("latin-1"))

    def _glob(self, pattern: str, onlydir: bool) -> list[str] | None:
        cut = pattern.rfind("/")
        if cut < 0:
            dirs, base = ["."], pattern
        else:
            dirname, base = (pattern[:cut] or "/"), pattern[cut + 1:]
            if not base:
                raise Defer(f"chronyd -p: include pattern {pattern!r} ends in '/' (not modelled)")
            if has_glob(dirname):
                # the directory part is globbed first (GLOB_ONLYDIR, without GLOB_NOMAGIC)
                dirs = self._glob(dirname, onlydir=True)
                if dirs is None:
                    return None
            else:
                dirs = [dirname]
        found: list[str] = []
        for d in dirs:
            names = self._glob_in_dir(base, d, onlydir)
            if names is None:
                return None
            found += [n if cut < 0 else ("/" if d == "/" else d + "/") + n for n in names]
        return found

    def _glob_in_dir(self, base: str, d: str, onlydir: bool) -> list[str] | None:
        fs, path = self.inv.fs, self.inv.path
        full = base if d == "." else ("/" if d == "/" else d + "/") + base
        if not has_glob(base):
            # a plain last component after a globbed directory is looked up (lstat), as
            # glibc 2.36 does even under GLOB_NOMAGIC
            try:
                fs.lstat(path(full))
                return [base]
            except OSError:
                return []
        try:
            names = fs.readdir(path(d))
        except NotADirectoryError:
            return []
        except OSError:
            return None  # GLOB_ERR
        rx = pattern_regex(base)
        out = []
        for n in names:
            if n.startswith(".") and not base.startswith("."):
                continue
            if not rx.fullmatch(n):
                continue
            if onlydir:
                try:
                    st = fs.lstat(path(("/" if d == "/" else d + "/") + n if d != "." else n))
                except OSError:
                    continue
                if not (st.is_dir or st.is_lnk):
                    continue  # d_type tells a plain file apart; links are kept, as glibc does
            out.append(n)
        return out

    def confdir(self, args: str) -> None:
        """``parse_confdir``/``search_dirs``: the ``*.conf`` files of the directories, one per
        file name (the first directory that has it), in ``strcmp`` order of the names."""
        dirs = args.split(" ") if args else []
        if not 1 <= len(dirs) <= MAX_CONF_DIRS:
            self.command_error()
        paths: list[str] = []
        for d in dirs:
            if has_glob(d) or "\\" in d:
                raise Defer(f"chronyd -p: confdir {d!r} holds glob characters (not modelled)")
            pattern = f"{d}/*.conf"
            dirname = pattern[:pattern.rfind("/")] or "/"
            try:
                names = self.inv.fs.readdir(self.inv.path(dirname))
            except OSError:
                continue
            rx = pattern_regex("*.conf")
            paths += [("/" if dirname == "/" else dirname + "/") + n for n in names
                      if not n.startswith(".") and rx.fullmatch(n)]

        def base(p: str) -> str:
            return p[p.rfind("/") + 1:]

        for name in sorted({base(p) for p in paths}, key=lambda s: s.encode("latin-1")):
            holders = [p for p in paths if base(p) == name]
            for d in dirs:
                hit = next((p for p in holders if p.startswith(d) and len(d) + 1 + len(name) == len(p)), None)
                if hit is not None:
                    self.read_file(hit)
                    break


def _stamp() -> str:
    """The time stamp chronyd's stderr log lines start with (``gmtime``, ISO 8601)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime())


#: every option of chronyd 4.3's getopt string
SPEC = _args.spec("46df:F:hl:L:mnpP:qQrRst:u:Uvx")
#: options that change what ``-p`` prints or writes (log file, debug output, help, version) or
#: whose argument chronyd checks: not modelled
_UNMODELLED = {"d", "F", "h", "l", "L", "P", "t", "v"}
_DAEMON = "chronyd without -p starts the NTP daemon or sets the clock: only a running system can"


def chronyd(inv: Invocation) -> int:
    """``chronyd -p [-f FILE] [CONFIG-LINE...]`` (chrony 4.3 ``main.c``): the configuration as
    chronyd reads it, printed; any other use starts the daemon and is deferred."""
    if any(a in ("--help", "--version") for a in inv.argv[1:]):
        raise Defer("chronyd --help/--version: chrony's feature list is not modelled")
    try:
        opts, operands = _args.parse(inv, SPEC)
    except _args.UsageError:
        raise Defer("chronyd: a usage error prints chronyd's help (not modelled)") from None
    keys = {k for k, _ in opts}
    if "p" not in keys:
        raise Defer(_DAEMON)
    if keys & _UNMODELLED:
        raise Defer(f"chronyd -p with -{sorted(keys & _UNMODELLED)[0]} is not modelled")
    conf = DEFAULT_CONF_FILE
    for k, v in opts:
        if k == "f":
            conf = v
    p = Parser(inv)
    try:
        if not operands:
            p.read_file(conf)
        else:
            for i, line in enumerate(operands, 1):
                p.parse_line(None, i, line)
    except _Fatal as e:
        inv.err(f"{_stamp()}Fatal error : {e}\n".encode("latin-1"))
        return 1
    return 0
