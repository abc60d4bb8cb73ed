"""gnulib ``human_readable`` (``lib/human.c``, as coreutils 9.1 builds it) for whole numbers:
the sizes ``df -h``/``-H`` and ``dd``'s transfer line print.

Only the autoscaling form is here (``human_autoscale | human_SI``), with the three rounding
styles and the ``human_space_before_unit``, ``human_B``, ``human_suppress_point_zero``
options. The arithmetic is human.c's own (integer amount, tenths and a rounding state), so
the results round exactly as the C code does, not as floating point would.
"""

from __future__ import annotations

CEILING, NEAREST, FLOOR = "ceiling", "nearest", "floor"
_PREFIXES = "KMGTPEZYRQ"
_EXPONENT_MAX = 8


def human_readable(n: int, base: int = 1024, rounding_style: str = CEILING, space: bool = False,
                   unit_b: bool = False, suppress_point_zero: bool = False) -> str:
    """``n`` scaled by powers of ``base`` (1000 or 1024) with one decimal below 10.

    ``unit_b`` appends "B" ("iB" for base 1024 with a prefix), ``space`` puts a space before
    the unit, as ``human_space_before_unit``."""
    amt, tenths, rounding, exponent = n, 0, 0, 0
    text = None
    if base <= amt:
        while True:
            r10 = (amt % base) * 10 + tenths
            r2 = (r10 % base) * 2 + (rounding >> 1)
            amt //= base
            tenths = r10 // base
            rounding = (int(r2 + rounding != 0) if r2 < base else 2 + int(base < r2 + rounding))
            exponent += 1
            if not (base <= amt and exponent < _EXPONENT_MAX):
                break
        if amt < 10:
            if _round_up_tenths(rounding_style, tenths, rounding):
                tenths, rounding = tenths + 1, 0
                if tenths == 10:
                    amt, tenths = amt + 1, 0
            if amt < 10 and (tenths or not suppress_point_zero):
                text = f".{tenths}"
                tenths = rounding = 0
    if _round_up_amount(rounding_style, tenths, rounding, amt):
        amt += 1
        if exponent and amt == base and exponent < _EXPONENT_MAX:
            exponent += 1
            text = None if suppress_point_zero else ".0"
            amt = 1
    out = str(amt) + (text or "")
    unit = ""
    if exponent:
        prefix = _PREFIXES[exponent - 1]
        unit = ("k" if prefix == "K" and base == 1000 else prefix) + ("i" if base == 1024 and unit_b else "")
    if unit_b:
        unit += "B"
    if unit and space:
        out += " "
    return out + unit


def _round_up_tenths(style: str, tenths: int, rounding: int) -> bool:
    if style == NEAREST:
        return 2 < rounding + (tenths & 1)
    return style == CEILING and 0 < rounding


def _round_up_amount(style: str, tenths: int, rounding: int, amt: int) -> bool:
    if style == NEAREST:
        return 5 < tenths + int(0 < rounding + (amt & 1))
    return style == CEILING and 0 < tenths + rounding
