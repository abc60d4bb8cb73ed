"""The values libmagic's soft magic compares and prints (file 5.44 ``softmagic.c``
``file_strncmp``, ``funcs.c`` ``file_printable``/``file_strtrim``, ``print.c``
``file_fmtdatetime``, ``der.c``), for :mod:`softmagic`."""

from __future__ import annotations

import re

from nuwa.formats import magicdb as M

C_SPACE = b" \t\n\v\f\r"
DER_TAGS = ("eoc", "bool", "int", "bit_str", "octet_str", "null", "obj_id", "obj_desc", "ext", "real", "enum",
            "embed", "utf8_str", "rel_oid", "time", "res2", "seq", "set", "num_str", "prt_str", "t61_str",
            "vid_str", "ia5_str", "utc_time", "gen_time", "gr_str", "vis_str", "gen_str", "univ_str", "char_str",
            "bmp_str", "date", "tod", "datetime", "duration", "oid-iri", "rel-oid-iri")


class Unmodelled(Exception):
    """Evaluation reached something this engine does not implement (the message says what)."""

def sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def isprint(c: int) -> bool:
    return 0x20 <= c < 0x7F


def printable(s: bytes) -> str:
    """``file_printable`` (not raw, C locale): up to the first NUL, non-printing bytes as
    ``\\ooo``; the 512-byte buffer bounds it."""
    out = []
    n = 0
    for c in s:
        if not c:
            break
        if isprint(c):
            if n >= 511:
                break
            out.append(chr(c))
            n += 1
        else:
            if n >= 511 - 3:
                break
            out.append("\\%03o" % c)
            n += 4
    return "".join(out)


_LATIN1: dict[int, tuple[bytes, str]] = {}
_SEARCH_RX: dict[tuple[bytes, int], "re.Pattern"] = {}
_SP = "[ \\t\\n\\r\\f\\v]"


def latin1(buf: bytes) -> str:
    """The buffer as latin-1 text (one character per byte), kept for the next entry."""
    hit = _LATIN1.get(id(buf))
    if hit is None or hit[0] is not buf:
        _LATIN1.clear()
        hit = _LATIN1[id(buf)] = (buf, buf.decode("latin-1"))
    return hit[1]


def search_regex(pat: bytes, flags: int) -> "re.Pattern":
    """A regex that matches where ``file_strncmp(pat, here, len(pat), rest, flags)`` is 0:
    case flags as character pairs, ``W`` (compact whitespace: a pattern blank matches one
    blank, and all that follow when the next pattern byte is no blank), ``w`` (optional
    whitespace: any run of blanks), ``f`` (full word: a blank or NUL must follow)."""
    key = (pat, flags)
    rx = _SEARCH_RX.get(key)
    if rx is not None:
        return rx
    parts = []
    n = len(pat)
    for i, c in enumerate(pat):
        ch = chr(c)
        if flags & M.STRING_IGNORE_LOWERCASE and 0x61 <= c <= 0x7A:
            parts.append("[" + ch + ch.upper() + "]")
        elif flags & M.STRING_IGNORE_UPPERCASE and 0x41 <= c <= 0x5A:
            parts.append("[" + ch + ch.lower() + "]")
        elif flags & M.STRING_COMPACT_WHITESPACE and c in C_SPACE:
            nxt = pat[i + 1] if i + 1 < n else 0
            parts.append(_SP + ("" if nxt in C_SPACE and nxt else "+"))
        elif flags & M.STRING_COMPACT_OPTIONAL_WHITESPACE and c in C_SPACE:
            parts.append(_SP + "*")
        else:
            parts.append(re.escape(ch))
    if flags & M.STRING_FULL_WORD:
        parts.append("(?![^\\x00 \\t\\n\\r\\f\\v])")
    rx = _SEARCH_RX[key] = re.compile("".join(parts), re.DOTALL)
    return rx


def strncmp(a: bytes, b: bytes, bpos: int, length: int, maxlen: int, flags: int) -> int:
    """``file_strncmp(a, b + bpos, len, maxlen, flags)``: 0 when equal, else the (signed)
    difference of the first differing bytes, or 1; bytes past ``b``'s end read as NUL
    (libmagic's buffers end in zeroes)."""
    def at(i: int) -> int:
        return b[i] if i < len(b) else 0
    ws = flags & (M.STRING_COMPACT_WHITESPACE | M.STRING_COMPACT_OPTIONAL_WHITESPACE)
    eb = bpos + (maxlen if ws else length)
    v = 0
    ai, bi = 0, bpos
    if not flags:
        for ai in range(length):
            v = at(bi + ai) - (a[ai] if ai < len(a) else 0)
            if v:
                return v
        return 0
    left = length
    while left > 0:
        left -= 1
        if bi >= eb:
            return 1
        ca = a[ai] if ai < len(a) else 0
        if flags & M.STRING_IGNORE_LOWERCASE and 0x61 <= ca <= 0x7A:
            cb = at(bi)
            v = (cb + 32 if 0x41 <= cb <= 0x5A else cb) - ca
            ai += 1
            bi += 1
            if v:
                break
        elif flags & M.STRING_IGNORE_UPPERCASE and 0x41 <= ca <= 0x5A:
            cb = at(bi)
            v = (cb - 32 if 0x61 <= cb <= 0x7A else cb) - ca
            ai += 1
            bi += 1
            if v:
                break
        elif flags & M.STRING_COMPACT_WHITESPACE and ca in C_SPACE:
            ai += 1
            if at(bi) in C_SPACE and at(bi) != 0:
                bi += 1
                na = a[ai] if ai < len(a) else 0
                if not (na in C_SPACE and na != 0):
                    while bi < eb and at(bi) in C_SPACE and at(bi) != 0:
                        bi += 1
            else:
                v = 1
                break
        elif flags & M.STRING_COMPACT_OPTIONAL_WHITESPACE and ca in C_SPACE and ca != 0:
            ai += 1
            while bi < eb and at(bi) in C_SPACE and at(bi) != 0:
                bi += 1
        else:
            v = at(bi) - ca
            ai += 1
            bi += 1
            if v:
                break
    if left == 0 and v == 0 and flags & M.STRING_FULL_WORD:
        if at(bi) and at(bi) not in C_SPACE:
            v = 1
    return v


def strtrim(p: bytes) -> bytes:
    """``file_strtrim``: the C string without its leading and trailing C-locale blanks."""
    nul = p.find(b"\0")
    return (p if nul < 0 else p[:nul]).strip(C_SPACE)


def has_s_conversion(fmt: str) -> bool:
    """``check_fmt``: does the format hold ``%[-0-9.]*s``?"""
    return "%" in fmt and re.search(r"%[-0-9.]*s", fmt) is not None


_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def asctime_utc(t: int) -> str:
    """``file_fmtdatetime(v, 0)``: glibc's asctime of gmtime, without the newline."""
    import datetime  # only a date entry that matched prints one: loaded then

    try:
        d = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=t)
    except OverflowError:
        raise Unmodelled(f"a date out of Python's range ({t})") from None
    wday = (d.weekday() + 1) % 7
    return "%s %s%3d %02d:%02d:%02d %d" % (_DAYS[wday], _MONTHS[d.month - 1], d.day, d.hour, d.minute, d.second,
                                           d.year)


def der_header(b: bytes, length: int) -> tuple[int, int, int] | None:
    """der.c's ``gettag`` and ``getlength`` over ``b`` (``length`` bytes may be read):
    (tag, content length, offset of the content) or None for DER_BAD."""
    pos = 0
    if pos >= length or pos >= len(b):
        return None
    tag = b[pos] & 0x1F
    pos += 1
    if tag == 0x1F:
        if pos >= length:
            return None
        while b[pos] >= 0x80:
            tag = tag * 128 + b[pos] - 0x80
            pos += 1
            if pos >= length:
                return None
        # (gettag returns the accumulated tag without consuming its last byte)
    if pos >= length:
        return None
    onebyte = not b[pos] & 0x80
    digits = b[pos] & 0x7F
    pos += 1
    if pos + digits >= length:
        return None
    if onebyte:
        return tag, digits, pos
    n = 0
    for _ in range(digits):
        n = n << 8 | b[pos]
        pos += 1
    if n > 0xFFFFFFFF - pos or pos + n > length:
        return None
    return tag, n, pos


def der_data(tag: int, d: bytes, n: int) -> str:
    """der.c's ``der_data``: strings as text (up to a NUL), UTC times spelled out,
    anything else as hex (at most 127 characters)."""
    if tag in (0x13, 0x0C, 0x16):
        text = d[:n]
        nul = text.find(b"\0")
        return (text if nul < 0 else text[:nul])[:127].decode("latin-1")
    if tag == 0x17 and n >= 12:
        c = d.decode("latin-1")
        return f"20{c[0]}{c[1]}-{c[2]}{c[3]}-{c[4]}{c[5]} {c[6]}{c[7]}:{c[8]}{c[9]}:{c[10]}{c[11]} GMT"
    return "".join("%02x" % x for x in d[:min(n, 63)])  # snprintf stops below blen - 2
