"""The awk model's values: numbers, strings, strnums, unset cells, and ``printf`` formatting.

A cell is a Python ``float`` (a number), ``str`` (a string), :class:`StrNum` (input: a field,
a ``split()`` piece, a ``-v`` value, which compares as a number when it looks like one) or
:data:`UNINIT` (never assigned: ``""`` and ``0`` at once).
"""

from __future__ import annotations

import math
import re

from nuwa.script.context import Defer

_MAX_INT = 2**31 - 1  # mawk's Int is a C int on amd64 (sizes.h)


def d_to_i(d: float) -> int:
    """mawk's ``d_to_I``: truncate toward zero, clamped to ``[-Max_Int, Max_Int]``; NaN -> -Max_Int."""
    if d != d:
        return -_MAX_INT
    if d >= _MAX_INT:
        return _MAX_INT
    if d > -_MAX_INT:
        return int(d)
    return -_MAX_INT


NUMLIKE = re.compile(r"[ \t\n]*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)[ \t\n]*\Z")
# what glibc's strtod reads (mawk converts strings with it): hex, inf/infinity, nan too
_STRTOD = re.compile(r"""[ \t\n\v\f\r]*(?P<sign>[-+]?)(?:
    (?P<hex>0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][-+]?\d+)?)
  | (?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)
  | (?P<nan>[nN][aA][nN])
  | (?P<dec>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))""", re.X)
_FLOATFMT = re.compile(r"[^%]*(?:%%[^%]*)*%[-+ #0]*\d*(?:\.\d*)?[eEfgG](?:[^%]|%%)*\Z")


class StrNum(str):
    """A field or -v value: compares as a number when it looks like one (POSIX strnum)."""


class Uninit(StrNum):
    """An unset variable: "" as a string, 0 as a number, and numeric in comparisons."""


UNINIT = Uninit("")


def num(v) -> float:
    """The numeric value of a cell (strtod of a string's leading number, else 0)."""
    if isinstance(v, float):
        return v
    m = _STRTOD.match(v)
    if not m:
        return 0.0
    sign = -1.0 if m.group("sign") == "-" else 1.0
    if m.group("hex"):
        return sign * float.fromhex(m.group("hex"))
    if m.group("inf"):
        return sign * math.inf
    if m.group("nan"):
        return math.copysign(math.nan, sign)
    return sign * float(m.group("dec"))


def tostr(v, fmt: str = "%.6g") -> str:
    """The string value of a cell: a number that fits a C int prints as one, else ``fmt``
    (CONVFMT, or OFMT for print), as mawk's cast does (so 2^31 prints ``2.14748e+09``)."""
    if isinstance(v, float):
        if v == v and float(d_to_i(v)) == v:
            return str(d_to_i(v))
        if math.isinf(v) or v != v:
            return ("-" if math.copysign(1.0, v) < 0 else "") + ("inf" if math.isinf(v) else "nan")
        if not _FLOATFMT.match(fmt):
            # C's printf of a double through %d or %s is undefined: nothing to agree with
            raise Defer(f"awk: CONVFMT/OFMT {fmt!r} is not one floating conversion")
        return fmt % v
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
        if vi >= len(vals):
            # mawk stops with "not enough arguments passed to printf" (status 2)
            raise Defer("awk printf: fewer arguments than conversions")
        v = vals[vi]
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
            # a number (a numeric-looking field, an unset cell too) is a character code; a string
            # gives its first character, an empty one C's NUL byte
            numeric = isinstance(v, (float, Uninit)) or (isinstance(v, StrNum) and NUMLIKE.match(v))
            out.append((spec + "s") % (chr(int(num(v)) & 0xFF) if numeric else (tostr(v)[:1] or "\0")))
        else:
            out.append((spec + "s") % tostr(v))
    out.append(fmt[i:])
    return "".join(out)
