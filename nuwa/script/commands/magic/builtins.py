"""libmagic's built-in tests before the soft magic (file 5.44 ``file_buffer`` order): tar
(``is_tar.c``), JSON (``is_json.c``), CSV (``is_csv.c``), CDF (``readcdf.c``) and ELF
(``readelf.c``). JSON and CSV are answered; a buffer the others would recognise raises
:class:`Unmodelled`; the rest are told apart here exactly by the tests' first steps."""

from __future__ import annotations

from nuwa.script.commands.magic.softmagic import Unmodelled

_C_SPACE = b" \t\n\v\f\r"
CSV_LINES = 10


def _from_oct(where: bytes) -> int:
    """is_tar.c's ``from_oct`` over the 8-byte checksum field."""
    digs = len(where)
    i = 0
    while i < len(where) and where[i] in _C_SPACE:
        i += 1
        if digs == 0:
            return -1
        digs -= 1
    value = 0
    while digs > 0 and i < len(where) and 0x30 <= where[i] <= 0x37:
        value = (value << 3) | (where[i] - 0x30)
        i += 1
        digs -= 1
    if digs > 0 and i < len(where) and where[i] and where[i] not in _C_SPACE:
        return -1
    return value


def check_tar(buf: bytes) -> None:
    """``file_is_tar``: raises when the first 512 bytes carry a valid tar checksum."""
    if len(buf) < 512:
        return
    name = buf[:100]
    nul = name.find(b"\0")
    if nul >= 7 and name[nul - 7:nul] == b"/gpkg-1":
        return
    recsum = _from_oct(buf[148:156])
    total = sum(buf[:512]) - sum(buf[148:156]) + 8 * 0x20
    if total == recsum:
        raise Unmodelled("a tar archive (libmagic's is_tar)")


_JSON_SPACE = b" \n\r\t"
_OBJECT, _ARRAY, _STRING, _CONSTANT, _NUMBER, _ARRAYN = range(6)


class _Json:
    """is_json.c's parser over ``buf``: positions move as its pointers do."""

    def __init__(self, buf: bytes):
        self.b = buf
        self.n = len(buf)
        self.st = [0] * 6

    def skip(self, i: int) -> int:
        while i < self.n and self.b[i] in _JSON_SPACE:
            i += 1
        return i

    def value(self, i: int, lvl: int) -> tuple[int, int]:
        """``json_parse``: (result, position)."""
        b, n = self.b, self.n
        ouc = i = self.skip(i)
        rv = 0
        if i != n:
            if lvl > 500:
                return 0, i
            if lvl > 150:
                raise Unmodelled("JSON nested deeper than this model recurses")
            c = b[i]
            i += 1
            if c == 0x22:
                rv, i = self.string(i)
                t = _STRING
            elif c == 0x5B:
                rv, i = self.array(i, lvl + 1)
                t = _ARRAY
            elif c == 0x7B:
                rv, i = self.obj(i, lvl + 1)
                t = _OBJECT
            elif c in b"tfn":
                word = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c]
                rv, i = self.const(i, word)
                t = _CONSTANT
            else:
                rv, i = self.number(i - 1)
                t = _NUMBER
            if rv:
                self.st[t] += 1
            i = self.skip(i)
        if lvl == 0:
            if not rv:
                return 0, i
            if i == n:
                return (1 if self.st[_ARRAYN] or self.st[_OBJECT] else 0), i
            if b[ouc] == b[i]:
                r, i = self.value(i, 1)
                if r:
                    return (2 if self.st[_ARRAYN] or self.st[_OBJECT] else 0), i
            return 0, i
        return rv, i

    def string(self, i: int) -> tuple[int, int]:
        b, n = self.b, self.n
        while i < n:
            c = b[i]
            i += 1
            if c == 0:
                return 0, i
            if c == 0x5C:
                if i == n:
                    return 0, i
                d = b[i]
                i += 1
                if d == 0:
                    return 0, i
                if d in b'"\\/bfnrt':
                    continue
                if d == 0x75:
                    if n - i < 4:
                        return 0, n
                    for _ in range(4):
                        x = b[i]
                        i += 1
                        if x not in b"0123456789abcdefABCDEF":
                            return 0, i
                    continue
                return 0, i
            if c == 0x22:
                return 1, i
        return 0, i

    def array(self, i: int, lvl: int) -> tuple[int, int]:
        b, n = self.b, self.n
        while i < n:
            i = self.skip(i)
            if i == n:
                return 0, i
            if b[i] == 0x5D:
                self.st[_ARRAYN] += 1
                return 1, i + 1
            r, i = self.value(i, lvl + 1)
            if not r or i == n:
                return 0, i
            if b[i] == 0x2C:
                i += 1
                continue
            if b[i] == 0x5D:
                self.st[_ARRAYN] += 1
                return 1, i + 1
            return 0, i
        return 0, i

    def obj(self, i: int, lvl: int) -> tuple[int, int]:
        b, n = self.b, self.n
        while i < n:
            i = self.skip(i)
            if i == n:
                return 0, i
            if b[i] == 0x7D:
                return 1, i + 1
            c = b[i]
            i += 1
            if c != 0x22:
                return 0, i
            r, i = self.string(i)
            if not r:
                return 0, i
            i = self.skip(i)
            if i == n:
                return 0, i
            c = b[i]
            i += 1
            if c != 0x3A:
                return 0, i
            r, i = self.value(i, lvl + 1)
            if not r or i == n:
                return 0, i
            c = b[i]
            i += 1
            if c == 0x2C:
                continue
            if c == 0x7D:
                return 1, i
            return 0, i - 1
        return 0, i

    def number(self, i: int) -> tuple[int, int]:
        b, n = self.b, self.n
        got = False
        if i == n:
            return 0, i
        if b[i] == 0x2D:
            i += 1
        while i < n and 0x30 <= b[i] <= 0x39:
            i += 1
            got = True
        if i < n:
            if b[i] == 0x2E:
                i += 1
            while i < n and 0x30 <= b[i] <= 0x39:
                i += 1
                got = True
            if i < n and got and b[i] in b"eE":
                i += 1
                got = False
                if i < n:
                    if b[i] in b"+-":
                        i += 1
                    while i < n and 0x30 <= b[i] <= 0x39:
                        i += 1
                        got = True
        return (1 if got else 0), i

    def const(self, i: int, word: bytes) -> tuple[int, int]:
        """``json_parse_const``: the position moves past the word whatever follows; the
        bytes there are compared while the buffer lasts."""
        end = min(i + len(word) - 1, self.n)
        for k in range(1, len(word)):
            if i >= self.n:
                break
            if self.b[i] != word[k]:
                return 0, end
            i += 1
        return 1, end


def json_type(buf: bytes) -> str | None:
    """``file_is_json``: "JSON text data", "New Line Delimited JSON text data" or None."""
    jt, _ = _Json(buf).value(0, 0)
    if not jt:
        return None
    return "JSON text data" if jt == 1 else "New Line Delimited JSON text data"


def is_csv(buf: bytes, looks_text: bool) -> bool:
    """``file_is_csv``'s ``csv_parse``: the same number (> 0) of commas on each of the first
    lines, over more than two lines (or the first CSV_LINES)."""
    if not looks_text:
        return False
    nf = tf = nl = 0
    i, n = 0, len(buf)
    while i < n:
        c = buf[i]
        i += 1
        if c == 0x22:
            quote = False
            while i < n:
                d = buf[i]
                i += 1
                if d != 0x22:
                    if quote:
                        i -= 1
                        break
                    continue
                quote = not quote
            else:
                i = n
        elif c == 0x2C:
            nf += 1
        elif c == 0x0A:
            nl += 1
            if nl == CSV_LINES:
                return tf != 0 and tf == nf
            if tf == 0:
                if nf == 0:
                    return False
                tf = nf
            elif tf != nf:
                return False
            nf = 0
    return bool(tf) and nl > 2


def check_cdf(buf: bytes) -> None:
    """``file_trycdf``: a buffer with the CDF header magic is not modelled."""
    if len(buf) >= 512 and buf[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise Unmodelled("a CDF document (libmagic's readcdf)")


def check_elf(buf: bytes) -> None:
    """``file_tryelf``: an ELF file's notes and sections are not modelled."""
    if buf[:4] == b"\x7fELF":
        raise Unmodelled("an ELF file (libmagic's readelf)")
