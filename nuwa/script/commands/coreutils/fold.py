"""``fold`` (coreutils 9.1): lines wrapped at a width, as ``fold.c``'s ``fold_file`` does it.

Bytes are columns (coreutils' fold is not multibyte-aware): a backspace moves one column back,
a carriage return to column 0, a tab to the next multiple of 8, any other byte one column on
(``adjust_column``); ``-b`` counts every byte as one. A byte that would pass the width ends the
line before it; with ``-s`` the line ends after its last blank (space or tab) instead, and the
rest starts the next line. postfix's postinst folds its closing message with ``fold -s``.
"""

from __future__ import annotations

import re

from nuwa.script.commands import _args
from nuwa.script.commands._common import err, quote
from nuwa.script.commands.coreutils.text import read_or_report
from nuwa.script.context import Invocation

_SPEC = _args.spec("bsw:", {"bytes": "b", "spaces": "s", "width": ("w", _args.REQ)})


def _adjust(column: int, c: int, count_bytes: bool) -> int:
    if count_bytes:
        return column + 1
    if c == 0x08:
        return column - 1 if column > 0 else 0
    if c == 0x0D:
        return 0
    if c == 0x09:
        return column + 8 - column % 8
    return column + 1


def fold_bytes(data: bytes, width: int, spaces: bool, count_bytes: bool) -> bytes:
    """``fold_file`` over one input."""
    out = bytearray()
    line = bytearray()
    column = 0
    for c in data:
        if c == 0x0A:
            out += line + b"\n"
            line.clear()
            column = 0
            continue
        while True:  # rescan
            column = _adjust(column, c, count_bytes)
            if column > width:
                if spaces:
                    end = max((i for i, b in enumerate(line) if b in (0x20, 0x09)), default=-1)
                    if end >= 0:
                        out += line[:end + 1] + b"\n"
                        del line[:end + 1]
                        column = 0
                        for b in line:
                            column = _adjust(column, b, count_bytes)
                        continue
                if not line:
                    line.append(c)
                    break
                out += line + b"\n"
                line.clear()
                column = 0
                continue
            line.append(c)
            break
    return bytes(out + line)


def fold(inv: Invocation) -> int:
    """``fold [-bs] [-w WIDTH] [-WIDTH] [FILE...]``."""
    argv = list(inv.argv)
    for i, a in enumerate(argv[1:], 1):  # the obsolete -WIDTH, as fold.c rewrites it
        if a == "--":
            break
        if re.fullmatch(r"-\d+", a):
            argv[i] = "-w" + a[1:]
    try:
        opts, ops = _args.parse(inv, _SPEC, argv[1:])
    except _args.UsageError as e:
        return _args.usage(inv, e)
    width, spaces, count_bytes = 80, False, False
    for k, v in opts:
        if k == "b":
            count_bytes = True
        elif k == "s":
            spaces = True
        else:
            # xdectoumax (1 .. SIZE_MAX - 9): a number out of range says so (ERANGE)
            if not re.fullmatch(r"\d+", v or ""):
                err(inv, f"invalid number of columns: {quote(v or '')}")
                return 1
            if not 0 < int(v) <= 2**64 - 10:
                err(inv, f"invalid number of columns: {quote(v)}: Numerical result out of range")
                return 1
            width = int(v)
    status = 0
    for name in ops or ["-"]:
        data = read_or_report(inv, name)
        if data is None:
            status = 1
            continue
        inv.out(fold_bytes(data, width, spaces, count_bytes))
    return status
