"""What the registry updaters (Perl programs) share: Getopt::Long's rules, Perl's ``die``,
``chop``/``split`` on lines, and file writes as Perl's two-argument ``open(F, ">path")`` does them.

The programs modelled in this family are Perl scripts of Debian 12. Their observable
behaviour depends on a few of Perl's own rules, reproduced here once:

- ``GetOptions`` with the default configuration (Getopt::Long 2.52: ``-`` and ``--``
  prefixes, case-insensitive names, unique abbreviations, permutation, ``--`` ends the
  options, a mandatory string value takes the next argument whatever it looks like);
- ``die "msg"`` without a final newline: ``msg at SCRIPT line N.`` on stderr and the exit
  status ``$!`` (the errno of the failed call), as ``perl -e 'open(F,"<x") or die "..."'``;
- ``open(F, ">path")``: ``O_WRONLY|O_CREAT|O_TRUNC`` with mode 0666 under the umask, so an
  existing file keeps its mode and owner.
"""

from __future__ import annotations

import os
import re

from nuwa.script.context import Defer, Invocation

ENC = "utf-8"
ERRORS = "surrogateescape"


def b(s: str) -> bytes:
    """An argument (str, decoded with surrogateescape) back to the bytes the program saw."""
    return s.encode(ENC, ERRORS)


def s(data: bytes) -> str:
    """Bytes as the str the models print through ``inv.out``/``inv.err`` (lossless)."""
    return data.decode(ENC, ERRORS)


class Options:
    """The result of :func:`getoptions`: option name -> value (last one wins; lists append)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.rest: list[str] = []

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.values


class UsageError(Exception):
    """GetOptions returned false: Getopt::Long already warned with this text."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def getoptions(inv: Invocation, spec: dict[str, str]) -> Options:
    """``GetOptions`` in Getopt::Long's default configuration.

    ``spec`` maps option names to ``""`` (a flag), ``"s"`` (a mandatory string), ``"i"`` (a
    mandatory integer) or ``"s@"`` (a string pushed onto a list each time). Unknown options
    raise :class:`UsageError` with Getopt::Long's warning ("Unknown option: x"); forms whose
    outcome depends on rules not reproduced here (an ambiguous abbreviation, a value given to
    a flag, a malformed number) raise ``Defer``.
    """
    out = Options()
    args = list(inv.argv[1:])
    errors = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            out.rest.extend(args[i:])
            break
        if not a.startswith("-") or a == "-":
            out.rest.append(a)  # permute: non-options stay in @ARGV
            continue
        body = a[2:] if a.startswith("--") else a[1:]
        name, eq, value = body.partition("=")
        low = name.lower()
        cands = [k for k in spec if k == low] or [k for k in spec if k.startswith(low)]
        if not cands:
            errors.append(f"Unknown option: {low}\n")
            continue
        if len(cands) > 1:
            raise Defer(f"{inv.name}: option {a} is ambiguous (Getopt::Long's message is not modelled)")
        key = cands[0]
        kind = spec[key]
        if not kind:
            if eq:
                raise Defer(f"{inv.name}: option {a} takes no value (Getopt::Long's message is not modelled)")
            out.values[key] = 1
            continue
        if not eq:
            if i >= len(args):
                errors.append(f"Option {key} requires an argument\n")
                continue
            value = args[i]
            i += 1
        elif value == "":
            raise Defer(f"{inv.name}: option {a} with an empty value is not modelled")
        if kind == "i":
            if not re.fullmatch(r"[-+]?[0-9]+", value):
                raise Defer(f"{inv.name}: option {a} with a non-numeric value is not modelled")
            out.values[key] = int(value)
        elif kind == "s@":
            out.values.setdefault(key, []).append(value)  # type: ignore[union-attr]
        else:
            out.values[key] = value
    if errors:
        raise UsageError("".join(errors))
    return out


def die(inv: Invocation, script: str, line: int, msg: str, e: OSError | None) -> int:
    """Perl's ``die "msg: $!"``: ``msg: ERROR at SCRIPT line N.`` on stderr; the status is
    the errno (``$!``) when there is one, else 255, as perl's ``my_failure_exit``."""
    text = msg + (os.strerror(e.errno) if e is not None and e.errno else "")
    inv.err(f"{text} at {script} line {line}.\n")
    return (e.errno & 0xFF) if e is not None and e.errno else 255


def records(data: bytes) -> list[bytes]:
    """The records ``<FH>`` returns with Perl's default ``$/ = "\\n"``: each keeps its
    newline; the last may lack one."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def chop(line: bytes) -> bytes:
    """Perl's ``chop``: the last character goes, whatever it is."""
    return line[:-1]


def chomp(line: bytes) -> bytes:
    """Perl's ``chomp``: one trailing ``\\n`` goes."""
    return line[:-1] if line.endswith(b"\n") else line


def split_fields(pattern: bytes, text: bytes) -> list[bytes]:
    """Perl's ``split(/PATTERN/, TEXT)``: trailing empty fields are dropped (an empty
    TEXT gives no fields); the pattern must not match the empty string."""
    parts = re.split(pattern, text)
    while parts and parts[-1] == b"":
        parts.pop()
    return parts


def is_file(inv: Invocation, path: str) -> bool:
    """Perl's ``-f``: a regular file after following links."""
    try:
        return inv.fs.stat(path).is_reg
    except OSError:
        return False


def exists(inv: Invocation, path: str) -> bool:
    """Perl's ``-e``."""
    try:
        inv.fs.stat(path)
        return True
    except OSError:
        return False


def read_file(inv: Invocation, path: str) -> bytes:
    """The content of ``path`` as ``open(F, "<path")`` then reading it whole would see it.

    A directory opens (``O_RDONLY``) but reading it fails with EISDIR: Perl's readline then
    returns nothing, so the content is empty.
    """
    st = inv.fs.stat(path)
    if st.is_dir:
        return b""
    return inv.fs.read_bytes(path)


def write_file(inv: Invocation, path: str, data: bytes) -> None:
    """``open(F, ">path")``, print, ``close``: an existing file is truncated and keeps its
    mode and owner; a new one gets 0666 under the umask."""
    h = inv.fs.open_handle(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 & ~inv.umask)
    try:
        if data:
            h.pwrite(0, data)
    finally:
        h.close()


def perl_regex(inv: Invocation, pattern: str, why: str) -> re.Pattern:
    """A Perl pattern built from data (a path, a media type) as Python ``re``, for the subset
    where both engines agree: letters, digits and ``. / _ - : * + @ ~ ,`` and spaces; anything
    else (classes, groups, escapes, anchors, braces) is deferred with ``why``."""
    if not re.fullmatch(r"[A-Za-z0-9./_:*+@~, -]*", pattern) or "**" in pattern or "++" in pattern \
            or "*+" in pattern or "+*" in pattern or pattern.startswith(("*", "+")):
        raise Defer(f"{inv.name}: {why} {pattern!r} is used as a Perl regular expression; "
                    "only plain names are modelled")
    try:
        return re.compile(b(pattern))
    except re.error as e:
        raise Defer(f"{inv.name}: {why} {pattern!r} is not a regular expression Python reads ({e})")
