"""libmagic's built-in tests before the soft magic (file 5.44 ``file_buffer`` order): tar
(``is_tar.c``), JSON (``is_json.c``), CSV (``is_csv.c``), CDF (``readcdf.c``) and ELF
(``readelf.c``). CSV is answered; a buffer the others would recognise raises
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


def check_json(buf: bytes) -> None:
    """``file_is_json``: only a value that is (or holds) an object or array counts; a buffer
    whose first value starts otherwise is no JSON, one that starts with ``[`` or ``{`` is
    not modelled."""
    i = 0
    while i < len(buf) and buf[i] in b" \t\r\n":
        i += 1
    if i < len(buf) and buf[i] in b"[{":
        raise Unmodelled("text that may be JSON (libmagic's is_json)")


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
