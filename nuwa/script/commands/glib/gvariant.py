"""GVariant types and their serialised form (glib 2.74 ``gvarianttypeinfo.c``,
``gvariant-serialiser.c``; the format of the GVariant specification, "Serialisation").

Values are plain Python objects typed by a GVariant type string carried beside them:

- ``b`` bool; ``y n q i u x t h`` int; ``d`` float; ``s o g`` str;
- ``v`` a :class:`Variant` (type string + value);
- ``mT`` ``None`` (Nothing) or a 1-tuple ``(value,)`` (Just);
- ``aT`` a list; ``a{KV}`` a list of 2-tuples;
- ``(...)`` and ``{KV}`` tuples.

Only the little-endian normal form is produced (what ``g_variant_get_normal_form`` gives on
x86-64, and what GVDB stores when it does not byteswap).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

# fixed-size basic types: (struct format, size == alignment)
BASIC_FIXED = {"b": ("<?", 1), "y": ("<B", 1), "n": ("<h", 2), "q": ("<H", 2), "i": ("<i", 4),
               "u": ("<I", 4), "h": ("<i", 4), "x": ("<q", 8), "t": ("<Q", 8), "d": ("<d", 8)}
BASIC_STRING = "sog"
BASIC = set(BASIC_FIXED) | set(BASIC_STRING)


@dataclass(frozen=True)
class Variant:
    """A value of type ``v``: the boxed value's type string and value."""

    type: str
    value: object


def type_end(t: str, i: int = 0) -> int:
    """Index just past the single complete type starting at ``t[i]`` (ValueError if none)."""
    if i >= len(t):
        raise ValueError("incomplete type")
    c = t[i]
    if c in BASIC or c == "v":
        return i + 1
    if c in "am":
        return type_end(t, i + 1)
    if c == "(":
        i += 1
        while i < len(t) and t[i] != ")":
            i = type_end(t, i)
        if i >= len(t):
            raise ValueError("unterminated tuple")
        return i + 1
    if c == "{":
        if i + 1 >= len(t) or t[i + 1] not in BASIC:
            raise ValueError("dict entry key must be basic")
        j = type_end(t, type_end(t, i + 1))
        if j >= len(t) or t[j] != "}":
            raise ValueError("bad dict entry")
        return j + 1
    raise ValueError(f"invalid type character {c!r}")


def is_valid_type(t: str) -> bool:
    """``g_variant_type_string_is_valid`` for definite types (no ``*``, ``?``, ``r``)."""
    try:
        return type_end(t) == len(t)
    except (ValueError, RecursionError):
        return False


def members(t: str) -> list[str]:
    """The member types of a tuple or dict entry type."""
    out, i = [], 1
    while t[i] not in ")}":
        j = type_end(t, i)
        out.append(t[i:j])
        i = j
    return out


@lru_cache(maxsize=None)
def info(t: str) -> tuple[int, int]:
    """(alignment, fixed size or 0 for variable-size) of a type (``g_variant_type_info_query``)."""
    c = t[0]
    if c in BASIC_FIXED:
        size = BASIC_FIXED[c][1]
        return size, size
    if c in BASIC_STRING:
        return 1, 0
    if c == "v":
        return 8, 0
    if c in "am":
        return info(t[1:])[0], 0
    # tuple or dict entry (gvarianttypeinfo.c tuple_set_base_info / tuple_align)
    align, size, fixed = 1, 0, True
    for m in members(t):
        a, s = info(m)
        align = max(align, a)
        if fixed and s:
            size += (-size) % a
            size += s
        else:
            fixed = False
    if not fixed:
        return align, 0
    size += (-size) % align
    return align, size or 1  # the unit tuple "()" is one zero byte


def offset_size(body: int, n_offsets: int) -> int:
    """``gvs_calculate_total_size``: the width of each framing offset for a container."""
    if body + n_offsets <= 0xFF:
        return 1
    if body + 2 * n_offsets <= 0xFFFF:
        return 2
    if body + 4 * n_offsets <= 0xFFFFFFFF:
        return 4
    return 8


def _frame(body: bytearray, ends: list[int]) -> bytes:
    """Append framing offsets (``gvs_write_unaligned_le``) to a variable-size container body."""
    if not ends:
        return bytes(body)
    w = offset_size(len(body), len(ends))
    for e in ends:
        body += e.to_bytes(w, "little")
    return bytes(body)


def serialise(t: str, value) -> bytes:
    """The serialised bytes of ``value`` of type ``t`` (``g_variant_store`` of its normal form)."""
    c = t[0]
    if c in BASIC_FIXED:
        return struct.pack(BASIC_FIXED[c][0], value)
    if c in BASIC_STRING:
        return value.encode() + b"\0"
    if c == "v":
        return serialise(value.type, value.value) + b"\0" + value.type.encode()
    if c == "m":
        if value is None:
            return b""
        inner = serialise(t[1:], value[0])
        return inner if info(t[1:])[1] else inner + b"\0"
    if c == "a":
        et = t[1:]
        align, fixed = info(et)
        if fixed:
            return b"".join(serialise(et, v) for v in value)
        body, ends = bytearray(), []
        for v in value:
            body += b"\0" * ((-len(body)) % align)
            body += serialise(et, v)
            ends.append(len(body))
        return _frame(body, ends)
    # tuple / dict entry: members aligned, the end offset of every variable-size member but
    # the last stored, in reverse order, after the body (gvs_tuple_serialise)
    mts = members(t)
    body, ends = bytearray(), []
    for k, (mt, v) in enumerate(zip(mts, value)):
        a, s = info(mt)
        body += b"\0" * ((-len(body)) % a)
        body += serialise(mt, v)
        if not s and k != len(mts) - 1:
            ends.append(len(body))
    align, fixed = info(t)
    if fixed:
        body += b"\0" * (fixed - len(body))
        return bytes(body)
    return _frame(body, ends[::-1])


def compare(a, b) -> int:
    """``g_variant_compare`` for the numeric basic types ranges use: -1, 0 or 1."""
    return (a > b) - (a < b)
