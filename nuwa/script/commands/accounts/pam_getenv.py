"""Model of ``pam_getenv`` (libpam-runtime 1.5.2, Debian 12): a variable of PAM's environment.

postgresql-common's ``set_system_locale`` runs ``val=`pam_getenv -l $v``` for each locale
variable. The program is a Perl script (``/usr/sbin/pam_getenv``, run by ``perl -w``); this
mirrors it statement by statement, judged against the script itself in a chroot
(tests/script/test_pam_getenv.py):

- arguments: ``-s`` and ``-l`` are skipped (they do nothing), the first other argument is the
  name and the rest are ignored; an empty or ``0`` argument ends the loop (Perl's ``while ($_ =
  shift)``), so no name is found: ``die`` "Usage: ..." with status 255;
- ``/etc/security/pam_env.conf`` must open (else "Cannot open environment file: ERROR", status
  errno). ``read_line``: leading white space and everything from ``#`` go, empty lines are
  skipped, a line ending in ``\\`` (white space after it allowed) continues on the next.
  ``parse_line``: the name runs to the first white space (a line without any ends the whole
  file's reading), the rest is split on ``=VALUE`` (``VALUE`` unquoted to the next white space
  or ``"..."`` kept with its quotes); the last DEFAULT and OVERRIDE win. The value is the
  expanded OVERRIDE, or if that is false in Perl's sense ("" or "0") the expanded DEFAULT:
  expansion turns ``${VAR}`` (no backslash before ``$``) into the environment's VAR, or "" when
  that is false; it is not attempted on a false value, and if the *name looked up* holds an
  ``@`` without a backslash before it, the first attempt dies "Cannot handle PAM items"
  (the script tests ``$_``, which holds the name), status 25 (the ENOTTY left by opening the file);
- ``/etc/environment`` (silently skipped if it does not open): lines as above, read up to the
  first false line; ``export `` dropped; ``NAME=VALUE`` at the first ``=`` that has a character
  after it; a leading quote and a trailing one dropped (either kind); it overrides pam_env.conf;
- output: the value and a newline, status 0; nothing when the name is unknown; a name whose
  value is undefined prints an empty line and Perl's "Use of uninitialized value" warning,
  with the last-read file and its line count as Perl gives them.

The script is recognised by its content (libpam-runtime 1.5.2's, unchanged in its Debian 12
updates): another version, a file not regular or a name Perl would escape in its warning
(controls, bytes above 127) defers.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re

from nuwa.script.context import Defer, Invocation

#: sha256 of libpam-runtime 1.5.2's /usr/sbin/pam_getenv, the script this module mirrors
SCRIPT_SHA256 = "982cca7d6a9afe07d7ba3fc929082ef11ed1cadb88d253f6464bfc0a19730674"
CONF = "/etc/security/pam_env.conf"
ENVIRONMENT = "/etc/environment"
PRINT_LINE = 121  # the script's line of `print $allvars{$lookup}, "\n";`
ENOTTY = 25  # errno after the open of CONFIGFILE (PerlIO's isatty check), which die reports
_SPLIT = re.compile(rb'=([^"\s]\S*|"[^"]*")\s*')
_EXPAND = re.compile(rb"(?<!\\)\$\{([^}]+)\}")


class _Die(Exception):
    """Perl's ``die``: the message, and the exit status ($! or 255)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def _true(v: bytes | None) -> bool:
    """Perl's truth of a string: undef, "" and "0" are false."""
    return v is not None and v not in (b"", b"0")


class _Handle:
    """A file read with ``<FH>`` (chomped lines); ``lines`` is Perl's ``$.`` for it."""

    def __init__(self, name: str, data: bytes):
        self.name = name
        self.rows = data.split(b"\n")
        if self.rows[-1] == b"":
            self.rows.pop()  # the newline ending the last line, or an empty file
        self.lines = 0

    def read_line(self) -> bytes | None:
        """The script's ``read_line``: one logical line, or None at the end of the file."""
        line = None
        while self.lines < len(self.rows):
            text = self.rows[self.lines]
            self.lines += 1
            text = re.sub(rb"^\s+", b"", text)
            text = re.sub(rb"#.*", b"", text, count=1)
            if text == b"":
                continue
            cont = re.search(rb"\\\s*$", text)
            line = (line or b"") + (text[:cont.start()] if cont else text)
            if not cont:
                break
        return line


def _parse_line(line: bytes | None) -> tuple[bytes, bytes | None, bytes | None] | None:
    """The script's ``parse_line``: (name, DEFAULT, OVERRIDE), or None (which ends the file)."""
    if line is None:
        return None
    m = re.search(rb"(\S+)\s", line)
    if not m:
        return None
    rest = re.sub(rb"^\s*", b"", line[:m.start()] + line[m.end():])
    parts: list[bytes | None] = list(_SPLIT.split(rest))
    while parts and parts[-1] == b"":
        parts.pop()  # Perl's split drops trailing empty fields
    if len(parts) % 2:
        parts.append(None)
    x = dict(zip(parts[::2], parts[1::2]))
    return m.group(1), x.get(b"DEFAULT"), x.get(b"OVERRIDE")


def _script(inv: Invocation) -> str:
    """The path the shell runs (the name Perl reports), after checking it is the modelled script."""
    name = inv.argv[0]
    if "/" in name:
        path = name
    else:
        path = None
        for d in inv.env.get("PATH", "").split(":"):
            cand = posixpath.join(d, name) if d else name
            try:
                if inv.fs.stat(inv.path(cand)).is_reg:
                    path = cand
                    break
            except OSError:
                continue
        if path is None:
            raise Defer(f"pam_getenv: {name} is not found on PATH (the script is what is modelled)")
    try:
        data = inv.fs.read_bytes(inv.path(path))
    except OSError as e:
        raise Defer(f"pam_getenv: {path} cannot be read ({os.strerror(e.errno)})") from None
    if hashlib.sha256(data).hexdigest() != SCRIPT_SHA256:
        raise Defer(f"pam_getenv: {path} is not libpam-runtime 1.5.2's script, the one modelled")
    return path


def _open(inv: Invocation, path: str) -> _Handle | int:
    """Perl's ``open(FH, path)`` for reading: a handle, or the errno of the failure."""
    try:
        st = inv.fs.stat(path)
    except OSError as e:
        return e.errno
    if not st.is_reg:
        raise Defer(f"pam_getenv: {path} is not a regular file")
    return _Handle(posixpath.basename(path), inv.fs.read_bytes(path))


def _perl_key(key: bytes) -> str:
    """The key as Perl's warning shows it (pv_pretty, 32 characters, then ``...``)."""
    if any(b < 0x20 or b > 0x7e for b in key):
        raise Defer("pam_getenv: Perl's warning for a name with control or non-ASCII bytes is not modelled")
    out, done = "", 0
    for b in key:
        c = chr(b)
        piece = "\\" + c if c in '"\\' else c
        if len(out) + len(piece) > 32:
            break
        out += piece
        done += 1
    return f'"{out}"' + ("..." if done < len(key) else "")


def pam_getenv(inv: Invocation) -> int:
    """See the module note."""
    script = _script(inv)
    try:
        return _run(inv, script)
    except _Die as e:
        inv.err(e.message)
        return e.status


def _run(inv: Invocation, script: str) -> int:
    lookup = None
    for a in inv.argv[1:]:
        if a in ("", "0"):
            break
        if a in ("-s", "-l"):
            continue
        lookup = a.encode("utf-8", "surrogateescape")
        break
    if lookup is None:
        raise _Die("Usage: pam_getenv [-l] [-s] env_var\n", 255)
    conf = _open(inv, CONF)
    if isinstance(conf, int):
        raise _Die(f"Cannot open environment file: {os.strerror(conf)}\n", conf)
    env = {k.encode("utf-8", "surrogateescape"): v.encode("utf-8", "surrogateescape") for k, v in inv.env.items()}
    pam_items = re.search(rb"(?<!\\)@", lookup) is not None

    def expand(val: bytes | None) -> bytes | None:
        if not _true(val):
            return None
        if pam_items:
            raise _Die("Cannot handle PAM items\n", ENOTTY)

        def sub(m: re.Match) -> bytes:
            v = env.get(m.group(1))
            return v if _true(v) else b""
        return _EXPAND.sub(sub, val)

    allvars: dict[bytes, bytes | None] = {}
    while (var := _parse_line(conf.read_line())) is not None:
        name, default, override = var
        val = expand(override)
        if not _true(val):
            val = expand(default)
        allvars[name] = val
    last = conf
    envfile = _open(inv, ENVIRONMENT)
    if isinstance(envfile, _Handle):
        last = envfile
        while _true(line := envfile.read_line()):
            line = re.sub(rb"^export ", b"", line, count=1)
            eq = line.find(b"=")
            if eq < 0 or eq == len(line) - 1:  # /(.*?)=(.+)/ needs a character after the first '='
                continue
            val = line[eq + 1:]
            if val[:1] in (b'"', b"'"):
                val = val[1:-1] if len(val) > 1 and val[-1:] in (b'"', b"'") else val[1:]
            allvars[line[:eq]] = val
    if lookup not in allvars:
        return 0
    value = allvars[lookup]
    if value is None:
        where = f", <{'ENVFILE' if last is not conf else 'CONFIGFILE'}> line {last.lines}" if last.lines else ""
        inv.err(f"Use of uninitialized value $allvars{{{_perl_key(lookup)}}} in print at {script} line "
                f"{PRINT_LINE}{where}.\n")
        value = b""
    inv.out(value + b"\n")
    return 0
