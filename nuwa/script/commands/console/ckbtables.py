"""The data tables of console-setup 1.221's ``/usr/bin/ckbcomp``, read from the image's own
copy of the program.

ckbcomp holds its tables as Perl hash literals: ``%xkbsym_table`` (X keysym name -> kernel
keysym or 4-digit Unicode), the Linux additions to it (the ``else`` branch of ``if
($freebsd)``) and ``%at_scancodes`` (X key code -> AT kernel key code). They are data, not
code: this module reads them from the program text with a strict parser (every line of a
table must be ``'name' => 'value',`` or ``N => M,``, with an optional ``#`` comment) and only
for the text whose SHA-256 is known, so a changed program defers instead of being misread.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from nuwa.script.commands._memo import ContentMemo
from nuwa.script.context import Defer

#: SHA-256 of ``/usr/bin/ckbcomp`` as console-setup 1.221 (Debian 12) ships it
KNOWN_CKBCOMP = {"2a2c8d95973ad6b18d05a4667497d78e4bf97a0d69e4a1870750a19a2a75af6d"}

_PAIR = re.compile(r"\s*'([^'\\]*)' => '([^'\\]*)',?\s*(?:#.*)?", re.ASCII)
_NUMS = re.compile(r"\s*([0-9]+) => (-?[0-9]+),\s*(?:#.*)?", re.ASCII)
_SKIP = re.compile(r"\s*(?:#.*)?", re.ASCII)


@dataclass(frozen=True)
class Tables:
    """``xkbsym_base``: ``%xkbsym_table`` as declared; ``xkbsym_linux``: the pairs the Linux
    branch appends (later pairs win, as in a Perl list assigned to a hash);
    ``at_scancodes``: ``%at_scancodes``."""

    xkbsym_base: dict
    xkbsym_linux: dict
    at_scancodes: dict


def _block(lines: list[str], start: str, end: str, what: str) -> list[str]:
    try:
        i = lines.index(start)
        j = lines.index(end, i + 1)
    except ValueError:
        raise Defer(f"ckbcomp: the table {what} is not where console-setup 1.221 has it") from None
    return lines[i + 1:j]


def _pairs(lines: list[str], pattern: re.Pattern, what: str) -> dict:
    table: dict = {}
    for line in lines:
        m = pattern.fullmatch(line)
        if m:
            table[m.group(1)] = m.group(2)
        elif not _SKIP.fullmatch(line):
            raise Defer(f"ckbcomp: a line of {what} the model does not read: {line.strip()[:60]!r}")
    return table


def parse_tables(text: bytes) -> Tables:
    """The tables of a ckbcomp program text (console-setup 1.221's layout)."""
    lines = text.decode("latin-1").split("\n")
    base = _pairs(_block(lines, "my %xkbsym_table = (", ");", "%xkbsym_table"), _PAIR, "%xkbsym_table")
    try:
        at = lines.index("} else {", lines.index("if ($freebsd) {"))
    except ValueError:
        raise Defer("ckbcomp: the Linux keysym table is not where console-setup 1.221 has it") from None
    if lines[at + 1:at + 3] != ["    %xkbsym_table = ", "        (%xkbsym_table,"]:
        raise Defer("ckbcomp: the Linux keysym table is not where console-setup 1.221 has it")
    rest = lines[at + 3:]
    linux = _pairs(rest[:rest.index("        );")], _PAIR, "the Linux keysyms")
    scans = _pairs(_block(lines, "my %at_scancodes = (", ");", "%at_scancodes"), _NUMS, "%at_scancodes")
    return Tables(base, linux, {k: int(v) for k, v in scans.items()})


def _checked(text: bytes) -> Tables:
    if hashlib.sha256(text).hexdigest() not in KNOWN_CKBCOMP:
        raise Defer("ckbcomp: the image's program is not console-setup 1.221's ckbcomp, the text modelled")
    return parse_tables(text)


#: the tables of the last programs read, by content
TABLES = ContentMemo(_checked, size=2)
