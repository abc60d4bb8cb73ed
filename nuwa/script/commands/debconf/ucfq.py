"""``ucfq`` (ucf 3.0043, Debian 12): which package registered a configuration file with ucf,
whether the file exists and whether it differs from the maintainer's version.

ucfq is a Perl program (``/usr/bin/ucfq``); the model follows its text step by step and is
used only when the image's ucfq is that very text (its SHA-256 is checked; any other defers):

- options through ``Getopt::Long::Parser`` configured with ``bundling`` (Getopt::Long 2.52):
  ``-h``/``--help`` prints the usage and exits 0 where it is met, ``-w``/``--with-colons``
  (negatable: ``--no-with-colons``, ``--nowith-colons``, ``--no-w``, ``--now``),
  ``--state-dir DIR``/``--state-dir=DIR``, ``-d``/``--debug`` and ``-v``/``--verbose`` (which
  change nothing). Long names are case-insensitive and may be abbreviated; single letters
  bundle (``-wd``) and are case-sensitive; ``+`` starts a long option too. Unknown options
  and missing values only warn (``Unknown option: x``, ``Option state-dir requires an
  argument``, ``Option debug does not take an argument``): ucfq ignores ``getoptions``'
  result, so the query still runs and the status is 0. Arguments are permuted; ``--`` ends
  the options.
- an argument without ``/`` is a package, one with ``/`` a configuration file; a file that
  is not absolute makes ucfq warn ``Need a fully qualified path name for config file "X"``
  and exit 0 with nothing else printed;
- ``STATEDIR/registry`` (``PKG FILE`` lines) and ``STATEDIR/hashfile`` (``MD5 FILE``) are read
  when they exist (a line that is not two fields is ignored; the last line for a file wins);
  a package's registered files join the query; a file's package is the package asked for
  that lists it, else its registry owner;
- a file exists if ``-e`` says so (symbolic links followed), and is then shown by its
  canonical path (``Cwd::abs_path``); when the hashfile has a hash for it, ucfq runs
  ``/usr/bin/md5sum FILE`` (the image's, through the md5sum model: a directory prints
  md5sum's error) and the file is "changed" when the sums differ;
- output sorted by the name asked for (byte order): ``FILE:PKG:EXISTS:CHANGED`` lines with
  ``-w``, else Perl's ``format``: a header, columns of 45/19/4/4 bytes (longer values cut,
  control characters blanked, a value stops at a newline, trailing spaces removed, the last
  two columns centred), 59 rows per page and a form feed before each further header.

Deferred with the reason: ``POSIXLY_CORRECT`` (Getopt::Long's other configuration), a
package argument ``""`` or ``"0"`` and an empty or ``"0"`` state directory (Perl dies),
registered names that are false in Perl, a registry or hashfile that is not a regular file
or a directory, a file registered by two of the packages asked for, two relative files
(which one ucfq names depends on Perl's hash order), two md5sum errors (their order
likewise), a name the md5sum command line would hand to ``sh`` (white space or shell
metacharacters) or take as an option, an existing file that is neither a regular file nor
a directory, an image without an executable ``/usr/bin/md5sum`` (Perl dies with ``$!``), and
ucfq run as a user other than root.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import stat as _stat
from collections import deque

from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.context import Defer, Invocation

#: SHA-256 of ``/usr/bin/ucfq`` as ucf 3.0043 (and 3.0043+nmu1+deb12u1) ships it
KNOWN_UCFQ = {"b1e4a6d73b74e73ba6f1b2ff45093127a7f11b4e59443df43c008edb8e9f4cc8"}

_USAGE = """Usage: {name} [options]
Author: Manoj Srivastava <srivasta@debian.org>
  where options are:
 --help                This message.
 --debug               Turn on debugging mode.
 --verbose             Make the script more verbose.
 --with-colons         A compact, machine readable version of the output.
 --state-dir </path/>  Set the state directory to /path/ instead of the
                       default /var/lib/ucf.

"""

#: the option table ``ParseOptionSpec`` builds from ucfq's ``Optdesc`` (bundling: one-letter
#: names keep their case; ``!`` adds ``no``/``no-`` forms of every name): name -> action
_NAMES = {
    "help": "help", "h": "help", "with-colons": "colons", "w": "colons",
    "nowith-colons": "nocolons", "no-with-colons": "nocolons", "now": "nocolons", "no-w": "nocolons",
    "state-dir": "state", "debug": "debug", "d": "debug", "verbose": "verbose", "v": "verbose",
}
_FLAG_ACTIONS = {"help", "colons", "nocolons", "debug", "verbose"}
#: what ``@hits = keys(%hit)`` leaves when several names of one option match: its canonical
#: name, ``no``-prefixed for the negated forms
_CANONICAL = {"help": "help", "colons": "with-colons", "nocolons": "nowith-colons", "state": "state-dir",
              "debug": "debug", "verbose": "verbose"}

#: Perl's ``open(F, "CMD |")`` hands a command line holding one of these to ``/bin/sh -c``
_SHELL_META = set("$&*(){}[]'\";\\|?<>~`\n") | set(" \t\r\f\v")

#: the report format's columns: (width, centred)
_COLUMNS = ((45, False), (19, False), (4, True), (4, True))
_HEADER = b"Configuration file                            Package             Exists Changed\n"
_PAGE_ROWS = 59  # $= is 60 lines; the header takes one


class _Exit(Exception):
    """A callback ended ucfq (``--help``: ``exit 0``)."""


def _lc(s: str) -> str:
    """Perl's ``lc`` on a byte string: ASCII letters only."""
    return s.translate(_LOWER)


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _bytes_of(arg: str) -> str:
    """An argument as Perl sees it, one character per byte (latin-1 text of its bytes)."""
    return arg.encode("utf-8", "surrogateescape").decode("latin-1")


def _fs_path(p: str) -> str:
    """A byte-per-character name back to the filesystem model's text form."""
    return p.encode("latin-1").decode("utf-8", "surrogateescape")


class _Query:
    """One run: the options, the state files read, the files gathered."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.colons = "0"
        self.state_dir = "/var/lib/ucf"

    # ---- Getopt::Long ---------------------------------------------------------------------
    def getoptions(self, argv: list[str]) -> list[str]:
        """``GetOptions`` with ``bundling`` (see the module note); returns ``@ARGV`` after it."""
        args = deque(argv)
        rest: list[str] = []
        while args:
            a = args.popleft()
            if a == "--":
                break
            m = re.match(r"(--|-|\+)(.*)\Z", a, re.S)
            if not m or a == "-":
                rest.append(a)  # not an option: permuted into @ARGV
                continue
            starter, opt = m.group(1), m.group(2)
            if starter == "-":
                # bundling: one letter, the rest goes back as "-REST" (so "-w-x" continues
                # as "--x", a long option, and "-w-" as "--", the terminator)
                letter, more = opt[:1], opt[1:]
                action = _NAMES.get(letter) if len(letter) == 1 else None
                if action is None:
                    if more:
                        args.appendleft("-" + more)
                    self.inv.err(f"Unknown option: {letter}\n".encode("latin-1"))
                    continue
                if more:
                    args.appendleft("-" + more)
                self.act(action, "1")
                continue
            optarg = None
            if starter == "--" and opt.find("=", 1) > 0:
                opt, optarg = opt[:opt.find("=", 1)], opt[opt.find("=", 1) + 1:]
            if opt == "":
                self.inv.err(f"Missing option after {starter}\n".encode("latin-1"))
                continue
            opt = _lc(opt)
            name = self.lookup(opt, a)
            if name is None:
                # "+" is one character: Getopt::Long then names only the first letter
                self.inv.err(f"Unknown option: {opt[:1] if starter == '+' else opt}\n".encode("latin-1"))
                continue
            action = _NAMES[name]
            if action in _FLAG_ACTIONS:
                if optarg is not None:
                    self.inv.err(f"Option {name} does not take an argument\n".encode("latin-1"))
                    continue
                self.act(action, "1")
                continue
            if optarg == "" or (optarg is None and not args):
                self.inv.err(f"Option {name} requires an argument\n".encode("latin-1"))
                continue
            self.act(action, optarg if optarg is not None else args.popleft())
        return rest + list(args)

    @staticmethod
    def lookup(opt: str, arg: str) -> str | None:
        """FindOption's auto-abbreviation: the exact name, the one name ``opt`` begins, or
        the canonical name when all the names it begins are one option's; else None."""
        if opt in _NAMES:
            return opt
        hits = sorted(n for n in _NAMES if n.startswith(opt))
        if len(hits) == 1:
            return hits[0]
        actions = {_NAMES[h] for h in hits}
        if len(actions) == 1:
            return _CANONICAL[actions.pop()]
        if hits:
            raise Defer(f"ucfq: option {arg} is ambiguous")  # no prefix is, with ucfq's names
        return None

    def act(self, action: str, value: str) -> None:
        """The callbacks of ucfq's ``Optdesc``."""
        if action == "help":
            self.inv.out(_USAGE.format(name=self.inv.name))
            raise _Exit()
        if action == "colons":
            self.colons = value
        elif action == "nocolons":
            self.colons = "0"
        elif action == "state":
            self.state_dir = value
        # debug and verbose only count; nothing reads them

    # ---- the state files ------------------------------------------------------------------
    def table(self, leaf: str) -> list[tuple[str, str]]:
        """``STATEDIR/LEAF`` as (first field, second field) pairs, malformed lines left out."""
        path = self.inv.path(_fs_path(f"{self.state_dir}/{leaf}"))
        try:
            st = self.inv.fs.stat(path)
        except OSError:
            return []  # -e is false: nothing is read
        if _stat.S_ISDIR(st.st_mode):
            return []  # open(2) succeeds, the first read fails: no lines
        if not _stat.S_ISREG(st.st_mode):
            raise Defer(f"ucfq: {path} is not a regular file")
        try:
            data = self.inv.fs.read_bytes(path)
        except OSError as e:
            raise Defer(f"ucfq: {path} cannot be read ({e.strerror}): Perl dies") from None
        out = []
        for line in data.split(b"\n"):
            m = re.fullmatch(rb"([^ \t\n\r\f\v]+)[ \t\n\r\f\v]+([^ \t\n\r\f\v]+)", line)
            if m:
                out.append((m.group(1).decode("latin-1"), m.group(2).decode("latin-1")))
        return out

    # ---- files ----------------------------------------------------------------------------
    def stat(self, name: str):
        """Perl's ``-e NAME`` (symbolic links followed): the stat result, or None."""
        try:
            return self.inv.fs.stat(self.inv.path(_fs_path(name)))
        except (OSError, ValueError):
            return None

    def abs_path(self, name: str) -> str:
        """``Cwd::abs_path`` of an existing file."""
        return _bytes_of(canonicalize(self.inv, self.inv.path(_fs_path(name)), "e"))

    def md5(self, name: str) -> tuple[str | None, bytes]:
        """``open(NEWHASH, "/usr/bin/md5sum NAME |")``: the sum read back (None when md5sum
        printed no line) and what md5sum wrote on stderr."""
        if set(name) & _SHELL_META or name.startswith("-"):
            raise Defer(f"ucfq: {name!r} on md5sum's command line (Perl's shell rules)")
        st = self.stat("/usr/bin/md5sum")
        if st is None or not _stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            raise Defer("ucfq: no executable /usr/bin/md5sum in the image (ucfq dies with Perl's $!)")
        if self.inv.run is None:
            raise Defer("ucfq: no way to run md5sum here")
        _status, out, err = self.inv.run(["/usr/bin/md5sum", _fs_path(name)], b"", dict(self.inv.env))
        # Perl does not look at md5sum's status: only at what it printed
        digest = None
        lines = out.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the records <NEWHASH> returns: none for no output
        for line in lines:
            m = re.fullmatch(rb"([^ \t\n\r\f\v]+)[ \t\n\r\f\v]+([^ \t\n\r\f\v]+)", line)
            digest = m.group(1).decode("latin-1") if m else ""
        return digest, err


class _Conf:
    """A ``conffile`` object: the name shown, whether it exists, its package, changed or not."""

    def __init__(self, q: _Query, key: str):
        st = q.stat(key)
        self.exists = st is not None
        self.name = q.abs_path(key) if self.exists else key
        self.st = st
        self.package = ""
        self.modified = ""


def _true(s: str | None) -> bool:
    """Perl's truth of a string: defined, not ``""`` and not ``"0"``."""
    return s not in (None, "", "0")


def _image_ucfq(inv: Invocation) -> str | None:
    """The file the shell ran for ``argv[0]`` (execvp's search of PATH)."""
    name = inv.argv[0]
    cands = [name] if "/" in name else [
        posixpath.join(d or ".", name) for d in inv.env.get("PATH", "/bin:/usr/bin").split(":")]
    for c in cands:
        try:
            st = inv.fs.stat(inv.path(c))
        except (OSError, ValueError):
            continue
        if _stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return inv.path(c)
    return None


def _check_program(inv: Invocation) -> None:
    path = _image_ucfq(inv)
    try:
        digest = hashlib.sha256(inv.fs.read_bytes(path)).hexdigest() if path else None
    except OSError:
        digest = None
    if digest not in KNOWN_UCFQ:
        raise Defer(f"ucfq: the image's {path or inv.argv[0]} is not ucf 3.0043's ucfq, the text modelled")


def ucfq(inv: Invocation) -> int:
    """``ucfq [-w] [--state-dir DIR] (FILE|PACKAGE)...``: mirrors ucf 3.0043's ``/usr/bin/ucfq``
    (``ucf::process`` and ``ucf::report``); see the module note."""
    _check_program(inv)
    creds = getattr(inv.fs, "creds", None)  # run through su/runuser/setpriv as another user
    if creds is not None and creds.uid != 0:
        raise Defer(f"ucfq run as {creds.user}: Perl's -r and -x as a user (and its dying) are not modelled")
    if "POSIXLY_CORRECT" in inv.env:
        raise Defer("ucfq: Getopt::Long under POSIXLY_CORRECT")
    q = _Query(inv)
    try:
        args = q.getoptions([_bytes_of(a) for a in inv.argv[1:]])
    except _Exit:
        return 0
    if not _true(q.state_dir):
        raise Defer(f"ucfq: state directory {q.state_dir!r} (Perl dies: Missing required parameter StateDir)")
    packages = list(dict.fromkeys(a for a in args if "/" not in a))
    configs = list(dict.fromkeys(a for a in args if "/" in a))
    if any(not _true(p) for p in packages):
        raise Defer("ucfq: a package argument that is false in Perl (pkg->new dies)")
    registry = q.table("registry")
    hashes = dict((f, h) for h, f in q.table("hashfile"))
    owner = dict((f, p) for p, f in registry)
    relative = [c for c in configs if not c.startswith("/")]
    if len(relative) > 1:
        raise Defer("ucfq: several relative file names (which one ucfq names depends on Perl's hash order)")
    if relative:
        inv.err(f'Need a fully qualified path name for config file "{relative[0]}"\n'.encode("latin-1"))
        return 0
    files = {c: _Conf(q, c) for c in configs}
    claims: dict[str, set[str]] = {}
    for p in packages:
        for pkg, f in registry:
            if pkg != p:
                continue
            if not _true(f):
                raise Defer(f"ucfq: {p} registers a file named {f!r} (object_list dies)")
            claims.setdefault(f, set()).add(p)
            if f not in files:
                files[f] = _Conf(q, f)
    for f, ps in claims.items():
        if len(ps) > 1:
            raise Defer(f"ucfq: {f} is registered by {', '.join(sorted(ps))} (the last in Perl's hash order wins)")
        files[f].package = next(iter(ps))
    errors = []
    for f, conf in files.items():
        value = hashes.get(f)
        if _true(value) and conf.exists:
            if not (_stat.S_ISREG(conf.st.st_mode) or _stat.S_ISDIR(conf.st.st_mode)):
                raise Defer(f"ucfq: md5sum would read {f}, which is not a regular file")
            digest, err = q.md5(f)
            if err:
                errors.append(err)
            if digest is not None:
                conf.modified = "Yes" if digest != value else "No"
        if not conf.package and _true(owner.get(f)):
            conf.package = owner[f]
    if len(errors) > 1:
        raise Defer("ucfq: md5sum fails on several files (their order is Perl's hash order)")
    for e in errors:
        inv.err(e)
    inv.out(_report(files, _true(q.colons)))
    return 0


def _report(files: dict[str, _Conf], colons: bool) -> bytes:
    """``ucf::report``: colon lines, or the ``STDOUT``/``STDOUT_TOP`` formats."""
    out = bytearray()
    for i, key in enumerate(sorted(files)):
        c = files[key]
        values = (c.name, c.package, "Yes" if c.exists else "", c.modified)
        if colons:
            out += ":".join(values).encode("latin-1") + b"\n"
            continue
        if i % _PAGE_ROWS == 0:
            out += (b"\f" if i else b"") + _HEADER
        line = " ".join(_field(v, w, centre) for v, (w, centre) in zip(values[:3], _COLUMNS))
        line += "   " + _field(values[3], *_COLUMNS[3])
        out += line.rstrip(" ").encode("latin-1") + b"\n"
    return bytes(out)


def _field(value: str, width: int, centre: bool) -> str:
    """A ``@<<<``/``@|||`` field: up to a newline or the width, control characters blanked."""
    v = value.split("\n", 1)[0][:width]
    v = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in v)
    if centre:
        left = (width - len(v)) // 2
        return (" " * left + v).ljust(width)
    return v.ljust(width)
