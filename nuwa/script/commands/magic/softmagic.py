"""libmagic's soft magic (file 5.44 ``src/softmagic.c``): the entries of the compiled
database (``nuwa.formats.magicdb``) evaluated against a buffer, printing what matches.

Mirrors ``match``, ``msetoffset``, ``mget``/``mcopy``/``mconvert``, ``magiccheck``,
``moffset`` and ``mprint`` for the types, operators and formats implemented here; whenever
evaluation reaches anything else (an ``indirect`` entry, a float, a local or Windows date
printed, an indirect offset of another kind, a format this printf does not render, a regex
the translator refuses) it raises :class:`Unmodelled` and the caller defers the whole
invocation: an answer is either libmagic's or none.
"""

from __future__ import annotations

from nuwa.formats import magicdb as M
from nuwa.script.commands.magic import ere
from nuwa.script.commands.magic.cprintf import Unrendered, cprintf
from nuwa.script.commands.magic.mvalues import (C_SPACE, DER_TAGS, Unmodelled, asctime_utc, der_data, der_header,
                                                has_s_conversion, isprint, latin1, printable, search_regex, sext,
                                                strncmp, strtrim)

T = M.T
MASK64 = (1 << 64) - 1
MAXSTRING = M.MAXSTRING
FILE_REGEX_MAX = 8192
FLT = M.STRING_BINTEST | M.STRING_TEXTTEST
_WIDTH = {T["byte"]: 1, T["short"]: 2, T["beshort"]: 2, T["leshort"]: 2, T["long"]: 4, T["belong"]: 4,
          T["lelong"]: 4, T["quad"]: 8, T["bequad"]: 8, T["lequad"]: 8}
_ORDER = {T["byte"]: "little", T["short"]: "little", T["long"]: "little", T["quad"]: "little",
          T["beshort"]: "big", T["belong"]: "big", T["bequad"]: "big",
          T["leshort"]: "little", T["lelong"]: "little", T["lequad"]: "little"}
#: the date types: compared as the integers they are, printed as dates (UTC: asctime of
#: gmtime; the local-time and Windows kinds are not printed here)
_DATES = {T["date"]: (4, "little", "utc"), T["bedate"]: (4, "big", "utc"), T["ledate"]: (4, "little", "utc"),
          T["ldate"]: (4, "little", "local"), T["beldate"]: (4, "big", "local"), T["leldate"]: (4, "little", "local"),
          T["qdate"]: (8, "little", "utc"), T["beqdate"]: (8, "big", "utc"), T["leqdate"]: (8, "little", "utc"),
          T["qldate"]: (8, "little", "local"), T["beqldate"]: (8, "big", "local"),
          T["leqldate"]: (8, "little", "local"), T["qwdate"]: (8, "little", "windows"),
          T["beqwdate"]: (8, "big", "windows"), T["leqwdate"]: (8, "little", "windows")}
for _t, (_w, _o, _k) in _DATES.items():
    _WIDTH[_t] = _w
    _ORDER[_t] = _o
_STRINGISH = (T["string"], T["pstring"], T["bestring16"], T["lestring16"])

def _next_entry(magic: list, idx: int) -> int:
    """The index of the top-level entry after ``magic[idx]`` and its continuations (the
    flush of libmagic's ``match``)."""
    n = len(magic)
    while idx < n - 1 and magic[idx + 1].cont_level != 0:
        idx += 1
    return idx + 1

class Buffer:
    """``struct buffer``: the bytes looked at (``data``, ``fbuf``) and, for entries at
    negative offsets (``buffer_fill``), ``tail(n)``: the last ``min(st_size, n)`` bytes of the
    regular file behind the buffer, or None when there is none (a decompressed buffer):
    those entries are then skipped, as libmagic's fail."""

    def __init__(self, data: bytes, tail=None):
        self.data = data
        self._tail = tail
        self._got: bytes | None = None

    def tail(self) -> bytes | None:
        if self._tail is None:
            return None
        if self._got is None:
            self._got = self._tail(len(self.data))
        return self._got

class _Shared:
    """What match() shares with the match() of a ``use`` (pointers in libmagic)."""

    __slots__ = ("printed_something", "need_separator", "returnval")

    def __init__(self):
        self.printed_something = False
        self.need_separator = False
        self.returnval = 0


_FLIP = {}
for _a, _b in (("beshort", "leshort"), ("belong", "lelong"), ("bedate", "ledate"), ("beldate", "leldate"),
               ("bequad", "lequad"), ("beqdate", "leqdate"), ("beqldate", "leqldate"), ("beqwdate", "leqwdate"),
               ("befloat", "lefloat"), ("bedouble", "ledouble")):
    _FLIP[T[_a]], _FLIP[T[_b]] = T[_b], T[_a]


def _flipped(t: int, flip: bool) -> int:
    """``cvt_flip``: big- and little-endian types swapped inside a ``use ^name``."""
    return _FLIP.get(t, t) if flip else t


class Level:
    __slots__ = ("off", "got_match", "last_match")

    def __init__(self):
        self.off = 0
        self.got_match = 0
        self.last_match = 0


class SoftMagic:
    """One evaluation context (``struct magic_set``'s matching state) over a database's
    set 0 entries; ``mode`` is the file's ``st_mode`` (``${x?...:...}`` descriptions)."""

    def __init__(self, entries: list, named: dict, mode: int = 0):
        self.entries = entries
        self.named = named
        self.mode = mode
        self.out: list[str] = []
        self.levels: list[Level] = []

    # -- the output buffer (file_printf)
    def printf(self, s: str) -> None:
        self.out.append(s)

    def text(self) -> str:
        return "".join(self.out)

    def _level(self, n: int) -> Level:
        while len(self.levels) <= n:
            self.levels.append(Level())
        lv = self.levels[n]
        lv.got_match = 0
        lv.last_match = 0
        return lv

    # -- file_softmagic / match
    def softmagic(self, b: Buffer, mode: int, text: bool) -> int:
        """``file_softmagic(ms, b, NULL, NULL, mode, text)`` without MAGIC_CONTINUE."""
        self.firstline = True
        self.names = 0
        return self.match(self.entries, b, 0, mode, text, False, _Shared(), [False])

    def match(self, magic: list, b: Buffer, o: int, mode: int, text: bool, flip: bool, sh: "_Shared",
              found: list) -> int:
        """``match``: ``sh`` holds what the caller shares (printed_something,
        need_separator, returnval), ``found[0]`` is this call's found_match."""
        n = len(magic)
        idx = 0
        cont_level = 0
        self._level(0)
        while idx < n:
            m = magic[idx]
            flush = False
            if m.type != T["name"] and (
                    (m.type in M.STRING_TYPES and ((text and (m.str_flags & FLT) == M.STRING_BINTEST)
                                                   or (not text and (m.str_flags & FLT) == M.STRING_TEXTTEST)))
                    or (m.flag & mode) != mode):
                flush = True
            bb = None
            if not flush:
                bb = self.setoffset(m, b, None, 0, o)
                if bb is None:
                    flush = True
            if not flush:
                r = self.mget(m, b, bb, o, 0, mode, text, flip, sh, found)
                if r == 0:
                    flush = m.reln != 0x21  # '!'
                else:
                    flush = not self.magiccheck(m)
            if flush:
                idx = _next_entry(magic, idx)
                cont_level = 0
                continue
            if m.desc:
                found[0] = True
                sh.returnval = 1
                sh.need_separator = True
                sh.printed_something = True
                self.mprint(m)
            off = self.moffset(m, bb)
            if off is None or off == -1:
                if m.desc:
                    # libmagic goes on with the next top-level entry after printing
                    raise Unmodelled(f"magic line {m.lineno}: its end offset is past the buffer")
                idx = _next_entry(magic, idx)
                cont_level = 0
                continue
            self.levels[cont_level].off = off
            cont_level += 1
            self._level(cont_level)
            flushed = False
            while idx + 1 < n and magic[idx + 1].cont_level != 0:
                idx += 1
                m = magic[idx]
                if cont_level < m.cont_level:
                    continue
                if cont_level > m.cont_level:
                    cont_level = m.cont_level
                nbb = self.setoffset(m, b, bb, cont_level, o)
                if nbb is None:
                    # match()'s "goto flush": on with the next top-level entry, what was
                    # printed stays and found_match is not looked at
                    flushed = True
                    break
                bb = nbb
                if m.flag & M.OFFADD:
                    self.offset = (self.offset + self.levels[cont_level - 1].off) & 0xFFFFFFFF
                if m.cond in (M.COND_ELSE, M.COND_ELIF):
                    if self.levels[cont_level].last_match == 1:
                        continue
                r = self.mget(m, b, bb, o, cont_level, mode, text, flip, sh, found)
                if r == 0:
                    if m.reln != 0x21:
                        continue
                    ok = True
                else:
                    ok = self.magiccheck(m)
                lv = self.levels[cont_level]
                if not ok:
                    lv.last_match = 0
                    continue
                lv.last_match = 1
                if m.type == T["clear"]:
                    lv.got_match = 0
                elif lv.got_match:
                    if m.type == T["default"]:
                        continue
                else:
                    lv.got_match = 1
                if m.desc:
                    found[0] = True
                    sh.returnval = 1
                    if not sh.printed_something:
                        sh.printed_something = True
                    if sh.need_separator and not m.flag & M.NOSPACE:
                        self.printf(" ")
                    self.mprint(m)
                    sh.need_separator = True
                off = self.moffset(m, bb)
                if off is None:
                    cont_level -= 1
                elif off == -1:
                    lv.off = 0
                    cont_level -= 1
                else:
                    lv.off = off
                cont_level += 1
                self._level(cont_level)
            if flushed:
                idx = _next_entry(magic, idx)
                cont_level = 0
                continue
            if sh.printed_something:
                self.firstline = False
            if found[0]:
                return sh.returnval
            cont_level = 0
            idx += 1
        return sh.returnval

    def use(self, m, b: Buffer, offset: int, o: int, mode: int, text: bool, flip: bool, sh: "_Shared",
            found: list) -> int:
        """mget's FILE_USE: the named entries (set 1) matched from ``offset + o``, with the
        caller's levels saved and restored; the value is whether anything matched."""
        if len(b.data) < offset:
            return 0
        name = m.value[:m.value.find(b"\0")]
        if name.startswith(b"^"):
            name = name[1:]
            flip = not flip
        block = self.named.get(name)
        if block is None:
            raise Unmodelled(f"magic line {m.lineno}: no entry named {name!r}")
        if self.names >= 50:
            raise Unmodelled(f"magic line {m.lineno}: name use count exceeded")
        saved = [(lv.off, lv.got_match, lv.last_match) for lv in self.levels]
        oneed = sh.need_separator
        if m.flag & M.NOSPACE:
            sh.need_separator = False
        nfound = [False]
        self.names += 1
        eoffset = self.eoffset
        rv = self.match(block, b, (offset + o) & 0xFFFFFFFF, mode, text, flip, sh, nfound)
        self.value = 1 if nfound[0] else 0
        self.names -= 1
        found[0] = found[0] or nfound[0]
        del self.levels[len(saved):]
        for lv, (a, g, l) in zip(self.levels, saved):
            lv.off, lv.got_match, lv.last_match = a, g, l
        if rv != 1:
            sh.need_separator = oneed
        self.offset = offset
        self.eoffset = eoffset
        return 1 if (rv or found[0]) else 0

    # -- msetoffset
    def setoffset(self, m, b: Buffer, bb: Buffer | None, cont_level: int, o: int) -> Buffer | None:
        if m.flag & M.OFFNEGATIVE and not (cont_level > 0 and m.flag & (M.OFFADD | M.INDIROFFADD)):
            if o:
                raise Unmodelled(f"magic line {m.lineno}: a negative offset inside a named block")
            # the last bytes of the file become the buffer, for this entry and (as
            # msetoffset leaves bb and eoffset) for the continuations after it
            tail = b.tail()
            if tail is None or m.offset > len(tail):
                return None
            self.offset = self.eoffset = len(tail) - m.offset
            return Buffer(tail)
        if cont_level == 0 or m.flag & M.OFFNEGATIVE:
            # (a negative offset relative to the level above: "normal", from the buffer start)
            self.offset = (-m.offset if m.flag & M.OFFNEGATIVE else m.offset) & 0xFFFFFFFF
            self.eoffset = 0
            return b
        self.offset = (self.eoffset + m.offset) & 0xFFFFFFFF
        return bb

    # -- mget (with mcopy and mconvert)
    def mget(self, m, b: Buffer, bb: Buffer, o: int, cont_level: int, mode: int, text: bool, flip: bool,
             sh: "_Shared", found: list) -> int:
        """``mget``: the value at the entry's offset (``o`` is added where libmagic adds it:
        to the bytes copied, not to the bounds checks), 0 when the data is too short."""
        s = bb.data
        nbytes = len(s)
        offset = self.offset
        at = (offset + o) & 0xFFFFFFFF
        t = _flipped(m.type, flip)
        if m.flag & M.INDIR:
            offset = self._indirect(m, s, offset, at, cont_level, flip)
            if offset is None:
                return 0
            self.offset = offset
            at = offset
        if t in _WIDTH:
            w = _WIDTH[t]
            if nbytes < offset or w > nbytes - offset:
                return 0
            v = int.from_bytes(s[at:at + w].ljust(w, b"\0"), _ORDER[t])
            bits = 8 * w
            if m.num_mask or m.mask_op & M.FILE_OPINVERSE:
                v = self._mask(m, v, bits)
            self.value = v
            return 1
        if t == T["use"]:
            return self.use(m, b, offset, o, mode, text, flip, sh, found)
        if t in (T["string"], T["pstring"]):
            # mcopy copies at offset + o; the bounds are checked at offset
            if nbytes < offset or m.vallen > nbytes - offset:
                return 0
            size = m.str_range if 0 < m.str_range < MAXSTRING else MAXSTRING
            p = bytearray(s[at:at + size] if at < nbytes else b"")
            p += bytes(MAXSTRING - len(p))
            if t == T["pstring"]:
                sz, length = self._pstring_len(m, p)
                room = MAXSTRING - sz
                if length >= room:
                    length = room
                p[:length] = p[sz:sz + length]
                p[length] = 0
            p[MAXSTRING - 1] = 0
            self.value = bytes(p)
            return 1
        if t in (T["bestring16"], T["lestring16"]):
            self.value = self._string16(t, s, at)
            return 1
        if t == T["search"] or t == T["der"]:
            start = min(at, nbytes)
            self.search = (s, start, nbytes - start)  # buffer, start, length
            self.search_offset = start
            self.rm_len = 0
            if t == T["search"] and (nbytes < offset or m.vallen > nbytes - offset):
                return 0
            return 1
        if t == T["regex"]:
            if at > nbytes:
                self.search = None
            else:
                self._regex_window(m, s, at)
            if nbytes < offset:
                return 0
            return 1
        if t == T["guid"]:
            if nbytes < offset or 16 > nbytes - offset:
                return 0
            self.value = s[at:at + 16].ljust(16, b"\0")
            return 1
        if t in (T["default"], T["clear"]):
            return 1
        if t == T["name"]:
            if m.desc:
                raise Unmodelled(f"magic line {m.lineno}: a named entry with a description")
            return 1
        if t == T["offset"]:
            self.value = offset
            return 1
        raise Unmodelled(f"magic line {m.lineno}: type {M.TYPE_NAMES[t]}")

    def _mask(self, m, v: int, bits: int) -> int:
        """DO_CVT: the mask operator in the type's width, then ``~`` for ``FILE_OPINVERSE``."""
        full = (1 << bits) - 1
        mask = m.num_mask & full
        if m.num_mask:
            op = m.mask_op & M.FILE_OPS_MASK
            if op == 0:
                v &= mask
            elif op == 1:
                v |= mask
            elif op == 2:
                v ^= mask
            elif op == 3:
                v += mask
            elif op == 4:
                v -= mask
            elif op == 5:
                v *= mask
            else:
                if not mask:
                    raise Unmodelled(f"magic line {m.lineno}: a division by zero")
                v = v // mask if op == 6 else v % mask
        if m.mask_op & M.FILE_OPINVERSE:
            v = ~v
        return v & full

    def _indirect(self, m, s: bytes, offset: int, at: int, cont_level: int, flip: bool) -> int | None:
        """mget's ``INDIR`` branch for the plain cases: the pointer read at ``offset`` as
        ``in_type``, ``in_op`` with ``in_offset``; None when out of the buffer."""
        it = _flipped(m.in_type, flip)
        if it not in _WIDTH or it in _DATES:
            raise Unmodelled(f"magic line {m.lineno}: an indirect offset of type {M.TYPE_NAMES[it]}")
        w = _WIDTH[it]
        nbytes = len(s)
        off = m.in_offset
        if m.in_op & M.FILE_OPINDIRECT:
            # the operand itself is read (as in_type) at offset + in_offset
            q = (offset + off) & 0xFFFFFFFF
            if nbytes < q or w > nbytes - q:
                return None
            raw = int.from_bytes(s[q:q + w].ljust(w, b"\0"), _ORDER[it])
            off = sext(raw, 8 * w) if m.in_op & M.FILE_OPSIGNED else raw
        if nbytes < offset or w > nbytes - offset:
            return None
        raw = int.from_bytes(s[at:at + w].ljust(w, b"\0"), _ORDER[it])
        lhs = sext(raw, 8 * w) if m.in_op & M.FILE_OPSIGNED else raw
        if lhs >= 0xFFFFFFFF or lhs <= -0x80000000 or off >= 0xFFFFFFFF or off <= -0x80000000:
            raise Unmodelled(f"magic line {m.lineno}: an indirect offset overflows (libmagic reports it)")
        if off:
            op = m.in_op & M.FILE_OPS_MASK
            if op in (6, 7):
                q = abs(lhs) // abs(off) * (1 if (lhs >= 0) == (off >= 0) else -1)
                res = q if op == 6 else lhs - q * off
            else:
                res = (lhs & off, lhs | off, lhs ^ off, lhs + off, lhs - off, lhs * off)[op]
        else:
            res = lhs
        if m.in_op & M.FILE_OPINVERSE:
            res = ~res
        if res >= 0xFFFFFFFF:
            raise Unmodelled(f"magic line {m.lineno}: an indirect offset overflows (libmagic reports it)")
        res &= 0xFFFFFFFF
        if m.flag & M.INDIROFFADD:
            # '>&(...)': the pointer is relative to the level above's end
            if cont_level == 0:
                return None
            res = (res + self.levels[cont_level - 1].off) & 0xFFFFFFFF
            if res == 0:
                return None
        return res

    def _pstring_len(self, m, p) -> tuple[int, int]:
        f = m.str_flags & (M.PSTRING_1 | M.PSTRING_2_BE | M.PSTRING_2_LE | M.PSTRING_4_BE | M.PSTRING_4_LE)
        if f == M.PSTRING_1:
            sz, n = 1, p[0]
        elif f == M.PSTRING_2_LE:
            sz, n = 2, p[0] | p[1] << 8
        elif f == M.PSTRING_2_BE:
            sz, n = 2, p[0] << 8 | p[1]
        elif f == M.PSTRING_4_LE:
            sz, n = 4, int.from_bytes(p[:4], "little")
        elif f == M.PSTRING_4_BE:
            sz, n = 4, int.from_bytes(p[:4], "big")
        else:
            raise Unmodelled(f"magic line {m.lineno}: a pascal string without a length size")
        if m.str_flags & M.PSTRING_LENGTH_INCLUDES_ITSELF:
            raise Unmodelled(f"magic line {m.lineno}: a pascal string length that includes itself")
        return sz, n

    def _string16(self, t: int, s: bytes, offset: int) -> bytes:
        p = bytearray(MAXSTRING)
        nbytes = len(s)
        if offset < nbytes:
            src = offset + (1 if t == T["bestring16"] else 0)
            d = 0
            while src < nbytes:
                if d >= MAXSTRING - 1:
                    break
                p[d] = s[src]
                if p[d] == 0:
                    if t == T["bestring16"]:
                        if s[src - 1] != 0:
                            p[d] = 0x20
                    elif src + 1 < nbytes and s[src + 1] != 0:
                        p[d] = 0x20
                src += 2
                d += 1
        else:
            # mcopy breaks out, then copies the union from an offset past the end: zeroes
            pass
        p[MAXSTRING - 1] = 0
        return bytes(p)

    def _regex_window(self, m, s: bytes, offset: int) -> None:
        nbytes = len(s)
        if m.str_flags & M.REGEX_LINE_COUNT:
            linecnt = m.str_range
            bytecnt = linecnt * 80
        else:
            linecnt = 0
            bytecnt = m.str_range
        if bytecnt == 0 or bytecnt > nbytes - offset:
            bytecnt = nbytes - offset
        if bytecnt > FILE_REGEX_MAX:
            bytecnt = FILE_REGEX_MAX
        start = offset
        end = last = offset + bytecnt
        lines = linecnt
        pos = start
        while lines and pos < end:
            nl = s.find(b"\n", pos, end)
            if nl < 0:
                nl = s.find(b"\r", pos, end)
                if nl < 0:
                    break
            bpos = nl
            if bpos < end - 1 and s[bpos] == 0x0D and s[bpos + 1] == 0x0A:
                bpos += 1
            if bpos < end - 1 and s[bpos] == 0x0A:
                bpos += 1
            last = bpos
            lines -= 1
            pos = bpos + 1
        if lines:
            last = end
        self.search = (s, start, last - start)
        self.search_offset = offset
        self.rm_len = 0

    # -- magiccheck
    def magiccheck(self, m) -> bool:
        t = m.type
        reln = m.reln
        l = m.num_value
        if t in _WIDTH:
            v = self.value
            if not m.flag & M.UNSIGNED:
                v = sext(v, 8 * _WIDTH[t]) & MASK64
        elif t in (T["default"], T["clear"]):
            l = v = 0
        elif t in (T["string"], T["pstring"]):
            l = 0
            v = strncmp(m.value, self.value, 0, m.vallen, MAXSTRING, m.str_flags) & MASK64
        elif t in (T["bestring16"], T["lestring16"]):
            l = 0
            v = strncmp(m.value, self.value, 0, m.vallen, MAXSTRING, 0) & MASK64
        elif t == T["search"]:
            if reln not in (0x3D, 0x21):
                raise Unmodelled(f"magic line {m.lineno}: a search with relation {chr(reln)!r}")
            l = 0
            v = self._search(m)
        elif t == T["regex"]:
            if self.search is None:
                return False
            l = 0
            v = self._regex(m)
        elif t == T["der"]:
            return self._der(m)
        elif t == T["use"]:
            return self.value != 0
        elif t == T["guid"]:
            l = 0
            v = 0 if self.value == m.value[:16] else 1
            if reln not in (0x3D, 0x21, 0x78):
                raise Unmodelled(f"magic line {m.lineno}: a guid compared other than for equality")
        elif t == T["name"]:
            return True
        elif t == T["offset"]:
            v = self.value
            if not m.flag & M.UNSIGNED:
                v = sext(v, 64) & MASK64
        else:
            raise Unmodelled(f"magic line {m.lineno}: type {M.TYPE_NAMES[t]}")
        if reln == 0x78:  # x
            return True
        if reln == 0x21:  # !
            return v != l
        if reln == 0x3D:  # =
            return v == l
        if reln in (0x3E, 0x3C):  # > <
            if not m.flag & M.UNSIGNED:
                v, l = sext(v, 64), sext(l, 64)
            return v > l if reln == 0x3E else v < l
        if reln == 0x26:  # &
            return (v & l) == l
        if reln == 0x5E:  # ^
            return (v & l) != l
        raise Unmodelled(f"magic line {m.lineno}: relation {reln!r}")

    def _search(self, m) -> int:
        """magiccheck's FILE_SEARCH: 0 when the string is found (the search offset moves to
        it), else nonzero (only equality is asked of a search, see magiccheck)."""
        buf, start, s_len = self.search
        slen = min(m.vallen, MAXSTRING)
        pat = m.value[:slen]
        if slen > 0 and m.str_flags == 0:
            idx = m.str_range + slen
            if m.str_range == 0 or s_len < idx:
                idx = s_len
            found = buf.find(pat, start, start + idx)
            if found < 0:
                return 1
            found -= start
        else:
            # the loop of file_strncmp calls, as one Python regex over the same window:
            # leftmost position whose compare succeeds
            rx = search_regex(m.value[:slen], m.str_flags)
            hit = rx.search(latin1(buf), start, start + s_len) if slen <= s_len else None
            if hit is None:
                return 1
            found = hit.start() - start
            if m.str_range and found >= m.str_range:
                return 1
        self.search_offset += found
        self.rm_len = s_len - found
        return 0

    def _regex(self, m) -> int:
        buf, start, s_len = self.search
        pat = m.value[:m.value.find(b"\0")] if b"\0" in m.value else m.value
        prev = 0
        for c in pat:
            if c == prev and c in b"?*+{":
                raise Unmodelled(f"magic line {m.lineno}: regex {pat!r} (libmagic refuses it)")
            prev = c
            if not (isprint(c) or c in C_SPACE or c in (0x08, 0x8A)):
                raise Unmodelled(f"magic line {m.lineno}: regex {pat!r} (libmagic refuses it)")
        try:
            rx = ere.compile_ere(pat, bool(m.str_flags & M.STRING_IGNORE_CASE))
        except ere.Unsupported as e:
            raise Unmodelled(f"magic line {m.lineno}: regex {pat!r}: {e}") from None
        # the window, its last byte replaced by NUL, read as a C string
        subject = buf[start:start + s_len - 1] if s_len else b""
        nul = subject.find(b"\0")
        if nul >= 0:
            subject = subject[:nul]
        text = subject.decode("latin-1")
        hit = rx.search(text)
        if hit is None:
            return 1
        end = rx.longest_end(text, hit.start(), hit.end())
        self.search = (buf, start + hit.start(), s_len - hit.start())
        self.search_offset += hit.start()
        self.rm_len = end - hit.start()
        return 0

    def _der(self, m) -> bool:
        """der.c's ``der_cmp``: the tag's name, then an optional length and ``=value``."""
        buf, start, s_len = self.search
        b = buf[start:start + s_len]
        got = der_header(b, len(b))
        if got is None:
            return False
        tag, tlen, offs = got
        name = DER_TAGS[tag] if tag < len(DER_TAGS) else "%#x" % tag
        want = m.value[:m.value.find(b"\0")].decode("latin-1")
        if not want.startswith(name):
            return False
        rest = want[len(name):]
        while rest and rest[0] != "=":
            digits = len(rest) - len(rest.lstrip("0123456789"))
            if not digits:
                return False
            if tlen != int(rest[:digits]):
                return False
            rest = rest[digits:]
        if not rest:
            return True
        data = der_data(tag, b[offs:offs + tlen], tlen)
        if data != rest[1:] and rest[1:] != "x":
            return False
        self.value = data.encode("latin-1")[:MAXSTRING - 1].ljust(MAXSTRING, b"\0")
        return True

    def _der_offs(self, m, nbytes: int) -> int | None:
        """der.c's ``der_offs``: the offset after the element's header (continuations also
        move the level above to the element's end); None when it does not parse."""
        buf, start, s_len = self.search
        length = s_len if s_len else nbytes
        got = der_header(buf[start:start + length], length)
        if got is None:
            return None
        _tag, tlen, offs = got
        offs += self.offset + m.offset
        if m.cont_level != 0:
            if offs + tlen > nbytes:
                return None
            self.levels[m.cont_level - 1].off = offs + tlen
        return offs

    # -- moffset
    def moffset(self, m, bb: Buffer) -> int | None:
        nbytes = len(bb.data)
        t = m.type
        if t in _WIDTH:
            o = self.offset + _WIDTH[t]
        elif t in _STRINGISH:
            if m.reln in (0x3D, 0x21):
                o = self.offset + m.vallen
            else:
                p = self.value
                if not m.value[:1].strip(b"\0"):
                    cut = min([i for i in (p.find(b"\r"), p.find(b"\n")) if i >= 0] or [len(p)])
                    p = p[:cut]
                o = self.offset + (p.find(b"\0") if b"\0" in p else len(p))
                if t == T["pstring"]:
                    raise Unmodelled(f"magic line {m.lineno}: the end of a pascal string")
        elif t == T["regex"]:
            o = self.search_offset if m.str_flags & M.REGEX_OFFSET_START else self.search_offset + self.rm_len
        elif t == T["search"]:
            o = self.search_offset if m.str_flags & M.REGEX_OFFSET_START else self.search_offset + m.vallen
        elif t in (T["clear"], T["default"], T["offset"], T["use"]):
            o = self.offset
        elif t == T["guid"]:
            o = self.offset + 16
        elif t == T["der"]:
            o = self._der_offs(m, nbytes)
            if o is None or o > nbytes:
                return -1  # moffset's "*op = 0; return 0"
        else:
            o = 0
        o &= 0xFFFFFFFF
        if o > nbytes:
            return None
        return o

    # -- mprint
    def mprint(self, m) -> None:
        desc = self._varexpand(m.desc.decode("latin-1"))
        t = m.type
        try:
            if t in _DATES:
                if _DATES[t][2] != "utc":
                    raise Unmodelled(f"magic line {m.lineno}: a {_DATES[t][2]} date")
                self.printf(cprintf(desc, asctime_utc(self.value)))
            elif t in _WIDTH:
                bits = 8 * _WIDTH[t]
                v = self.value if m.flag & M.UNSIGNED else sext(self.value, bits)
                argbits = 64 if bits == 64 else 32
                if has_s_conversion(desc):
                    num = str(v)
                    self.printf(cprintf(desc, num))
                else:
                    self.printf(cprintf(desc, v, argbits))
            elif t in _STRINGISH:
                if m.reln in (0x3D, 0x21):
                    self.printf(cprintf(desc, printable(m.value)))
                else:
                    p = self.value
                    if not m.value[:1].strip(b"\0"):
                        cut = min([i for i in (p.find(b"\r"), p.find(b"\n")) if i >= 0] or [len(p)])
                        p = p[:cut]
                    if m.str_flags & M.STRING_TRIM:
                        p = strtrim(p)
                    self.printf(cprintf(desc, printable(p)))
            elif t in (T["search"], T["regex"]):
                if "%" not in desc:
                    self.printf(desc)
                else:
                    buf, start, _ = self.search
                    cp = buf[start:start + self.rm_len]
                    if m.str_flags & M.STRING_TRIM:
                        cp = strtrim(cp)
                    self.printf(cprintf(desc, printable(cp)))
            elif t in (T["default"], T["clear"]):
                self.printf(m.desc.decode("latin-1"))
            elif t in (T["use"], T["name"]):
                pass
            elif t == T["der"] and m.reln == 0x3D and "=" in m.value[:m.value.find(b"\0")].decode("latin-1"):
                self.printf(cprintf(desc, printable(self.value)))
            elif t in (T["der"], T["guid"], T["offset"]):
                if "%" in desc:
                    raise Unmodelled(f"magic line {m.lineno}: a {M.TYPE_NAMES[t]} value printed with a format")
                self.printf(desc)
            else:
                raise Unmodelled(f"magic line {m.lineno}: printing type {M.TYPE_NAMES[t]}")
        except Unrendered as e:
            raise Unmodelled(f"magic line {m.lineno}: format {desc!r}: {e}") from None

    def _varexpand(self, s: str) -> str:
        """``varexpand``: ``${x?A:B}``, A when the file has an execute bit."""
        out = []
        while True:
            i = s.find("${")
            if i < 0:
                out.append(s)
                return "".join(out)
            out.append(s[:i])
            rest = s[i + 2:]
            if len(rest) < 2 or rest[1] != "?" or rest[0] != "x":
                raise Unmodelled(f"description {s!r}: variable {rest[:2]!r}")
            colon = rest.find(":", 2)
            close = rest.find("}", colon + 1) if colon >= 0 else -1
            if colon < 0 or close < 0:
                raise Unmodelled(f"description {s!r}: an unterminated variable")
            out.append(rest[2:colon] if self.mode & 0o111 else rest[colon + 1:close])
            s = rest[close + 1:]
