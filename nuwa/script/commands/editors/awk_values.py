"""The awk model's values: numbers, strings, strnums, unset cells, and ``printf`` formatting.

A cell is a Python ``float`` (a number), ``str`` (a string), :class:`StrNum` (input: a field,
a ``split()`` piece, a ``-v`` value, which compares as a number when it looks like one) or
:data:`UNINIT` (never assigned: ``""`` and ``0`` at once).
"""

from __future__ import annotations

import math
import re

from nuwa.script.commands.editors.awk_array import d_to_i
from nuwa.script.context import Defer

NUMLIKE = re.compile(r"[ \t\n]*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)[ \t\n]*\Z")
_NUMPREFIX = re.compile(r"[ \t\n]*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))")


class StrNum(str):
    """A field or -v value: compares as a number when it looks like one (POSIX strnum)."""


class Uninit(StrNum):
    """An unset variable: "" as a string, 0 as a number, and numeric in comparisons."""


UNINIT = Uninit("")


def num(v) -> float:
    """The numeric value of a cell (strtod of a string's leading number, else 0)."""
    if isinstance(v, float):
        return v
    m = _NUMPREFIX.match(v)
    return float(m.group(1)) if m else 0.0


def tostr(v, fmt: str = "%.6g") -> str:
    """The string value of a cell: a number that fits a C int prints as one, else ``fmt``
    (CONVFMT, or OFMT for print), as mawk's cast does (so 2^31 prints ``2.14748e+09``)."""
    if isinstance(v, float):
        if v == v and float(d_to_i(v)) == v:
            return str(d_to_i(v))
        if math.isinf(v) or v != v:
            return ("-" if v < 0 else "") + ("inf" if math.isinf(v) else "nan")
        try:
            return fmt % v
        except (TypeError, ValueError):
            raise Defer(f"awk: number format {fmt!r}") from None
    return v


def is_numeric(v) -> bool:
    """Does a comparison treat this cell as a number (number, unset, numeric-looking strnum)."""
    return isinstance(v, (float, Uninit)) or (isinstance(v, StrNum) and bool(NUMLIKE.match(v)))


def truth(v) -> bool:
    """awk's truth of a cell: non-zero number, numeric strnum non-zero, non-empty string."""
    if isinstance(v, float):
        return v != 0
    if isinstance(v, StrNum) and NUMLIKE.match(v):
        return num(v) != 0
    return v != ""


def printf(fmt: str, vals: list) -> str:
    """``printf``/``sprintf`` with C conversions over cells (``*`` widths deferred)."""
    out, i, vi = [], 0, 0
    for m in re.finditer(r"%(?P<flags>[-+ #0]*)(?P<w>\*|\d+)?(?:\.(?P<p>\*|\d+))?(?P<c>[diouxXeEfgGcs%])|%", fmt):
        out.append(fmt[i:m.start()])
        i = m.end()
        c = m.group("c")
        if c is None:
            raise Defer("awk printf: bad format")
        if c == "%":
            out.append("%")
            continue
        if m.group("w") == "*" or m.group("p") == "*":
            raise Defer("awk printf *")
        v = vals[vi] if vi < len(vals) else ""
        vi += 1
        spec = "%" + (m.group("flags") or "") + (m.group("w") or "") + (("." + m.group("p")) if m.group("p") else "")
        if c in "diouxX":
            n = num(v)
            if n != n or math.isinf(n):
                raise Defer("awk printf of inf/nan")
            out.append((spec + ("d" if c == "i" else c)) % int(n))
        elif c in "eEfgG":
            out.append((spec + c) % num(v))
        elif c == "c":
            out.append((spec + "s") % (chr(int(v) & 0xFF) if isinstance(v, float) else tostr(v)[:1]))
        else:
            out.append((spec + "s") % tostr(v))
    out.append(fmt[i:])
    return "".join(out)
