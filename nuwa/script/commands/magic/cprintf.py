"""The C ``printf`` of one magic description (file 5.44 ``mprint`` hands ``file_printf``
the description as the format and one value): ``%%`` and one conversion among ``d i u x X o
c s`` with flags, width and precision; anything else raises :class:`Unrendered`."""

from __future__ import annotations

import re

_SPEC = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d*))?(hh|h|ll|l|j|z|t|q)?([diouxXcs%])")


class Unrendered(ValueError):
    """A conversion this printf does not render exactly."""


def cprintf(fmt: str, value, argbits: int = 32) -> str:
    """``fmt`` with its conversion applied to ``value`` (an int, passed as a C ``int`` when
    ``argbits`` is 32 or a ``long long`` when 64, or a str for ``%s``)."""
    out = []
    pos = 0
    used = False
    for m in re.finditer(r"%", fmt):
        if m.start() < pos:
            continue
        spec = _SPEC.match(fmt, m.start())
        if spec is None:
            raise Unrendered(f"conversion at {fmt[m.start():m.start() + 6]!r}")
        out.append(fmt[pos:m.start()])
        pos = spec.end()
        flags, width, prec, _length, conv = spec.groups()
        if conv == "%":
            if flags or width or prec is not None:
                raise Unrendered("a %% with flags")
            out.append("%")
            continue
        if used:
            raise Unrendered("two conversions")
        used = True
        out.append(_one(flags, width, prec, conv, value, argbits))
    out.append(fmt[pos:])
    return "".join(out)


def _one(flags: str, width: str, prec: str | None, conv: str, value, argbits: int) -> str:
    py = "%" + flags + width + ("." + prec if prec is not None else "")
    if conv == "s":
        if not isinstance(value, str):
            raise Unrendered("%s of a number")
        if set(flags) - {"-"}:
            raise Unrendered(f"%s with flags {flags!r}")
        return (py + "s") % value
    if isinstance(value, str):
        raise Unrendered(f"%{conv} of a string")
    full = (1 << argbits) - 1
    if conv in "di":
        v = value & full
        if v >> (argbits - 1):
            v -= 1 << argbits
        return (py + "d") % v
    if conv == "c":
        if flags or prec is not None:
            raise Unrendered("%c with flags")
        ch = value & 0xFF
        if not 0x20 <= ch < 0x7F:
            raise Unrendered("%c of a non-printing byte")
        return (py + "s") % chr(ch)
    v = value & full
    if "#" in flags and (conv == "o" or v == 0):
        raise Unrendered(f"%#{conv} of {v}")
    if conv == "u":
        return (py + "d") % v
    return (py + conv) % v
