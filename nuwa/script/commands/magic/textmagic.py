"""libmagic's text checks (file 5.44 ``src/encoding.c`` ``file_encoding``, ``src/ascmagic.c``
``file_ascmagic``): which character set a buffer looks like, the text soft magic on its
UTF-8 form, and the "ASCII text, with CRLF line terminators" words.

UTF-7, UTF-16 and UTF-32 (recognised by their byte order marks) and the EBCDIC guesses
are not modelled: a buffer that reaches them raises :class:`Unmodelled`.
"""

from __future__ import annotations

from nuwa.script.commands.magic.softmagic import Buffer, SoftMagic, Unmodelled
from nuwa.formats.magicdb import TEXTTEST

FILE_ENCODING_MAX = 64 * 1024
FILE_BYTES_MAX = 7 * 1024 * 1024
MAXLINELEN = 300

# text_chars: F never in text, T plain ASCII text, I ISO-8859 text, X non-ISO extended ASCII
_T = frozenset([7, 8, 9, 10, 11, 12, 13, 27] + list(range(0x20, 0x7F)) + [0x85])
_I = frozenset(range(0xA0, 0x100))
_X = frozenset(range(0x80, 0xA0)) - {0x85}
_ASCII_OK = bytes(c for c in range(256) if c in _T)
_LATIN1_OK = bytes(c for c in range(256) if c in _T or c in _I)
_EXT_OK = bytes(c for c in range(256) if c in _T or c in _I or c in _X)


def _only(buf: bytes, allowed: bytes) -> bool:
    return not buf.translate(None, allowed)


def looks_utf8(buf: bytes) -> tuple[int, str]:
    """``file_looks_utf8``: -1 invalid, 0 valid but with odd control characters, 1 7-bit
    text, 2 UTF-8 text; and the characters decoded (a sequence cut by the end of the
    buffer is dropped, as libmagic's loop stops there)."""
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason != "unexpected end of data" or e.end != len(buf):
            return -1, ""
        text = buf[:e.start].decode("utf-8")
    ctrl = any(ord(c) < 0x80 and ord(c) not in _T for c in text) if not _only(buf, _ASCII_OK) else False
    if ctrl:
        return 0, text
    return (2 if any(ord(c) >= 0x80 for c in text) else 1), text


def encoding(buf: bytes) -> tuple[bool, str, str, str]:
    """``file_encoding``: (looks like text, code, type, the characters read) over the
    first FILE_ENCODING_MAX bytes."""
    b = buf[:FILE_ENCODING_MAX]
    if _only(b, _ASCII_OK):
        if len(b) > 4 and b[:3] == b"+/v":
            raise Unmodelled("text that may be UTF-7")
        return True, "ASCII", "text", b.decode("latin-1")
    if len(b) > 3 and b[:3] == b"\xef\xbb\xbf":
        r, text = looks_utf8(b[3:])
        if r > 0:
            return True, "Unicode text, UTF-8 (with BOM)", "text", text
    r, text = looks_utf8(b)
    if r > 1:
        return True, "Unicode text, UTF-8", "text", text
    if b[:2] in (b"\xff\xfe", b"\xfe\xff") or b[:4] == b"\x00\x00\xfe\xff":
        raise Unmodelled("text that may be UTF-16 or UTF-32 (a byte order mark)")
    if _only(b, _LATIN1_OK):
        return True, "ISO-8859", "text", b.decode("latin-1")
    if _only(b, _EXT_OK):
        return True, "Non-ISO extended-ASCII", "text", b.decode("latin-1")
    # EBCDIC: bytes 0-3 stand for the controls 0-3 there too, never text
    if b.translate(None, b"\0\1\2\3") != b:
        return False, "unknown", "binary", ""
    raise Unmodelled("data that may be EBCDIC text")


def trim_nuls(buf: bytes) -> int:
    n = len(buf)
    while n > 1 and buf[n - 1] == 0:
        n -= 1
    return n


def ascmagic(sm: SoftMagic, buf: bytes, looks_text: bool, tail, file_size: int) -> bool:
    """``file_ascmagic``: True when it printed (into ``sm``), False when the buffer is no text."""
    flen = trim_nuls(buf)
    if flen & 1 and not len(buf) & 1:
        flen += 1
    bb = buf[:flen]
    is_text, code, typ, ubuf = encoding(bb)
    if not is_text:
        return False
    nbytes = trim_nuls(bb)
    if nbytes <= 1:
        return False
    if ubuf:
        utf8 = ubuf.encode("utf-8", "surrogatepass")
        sm.softmagic(Buffer(utf8, tail), TEXTTEST, looks_text)
    n_crlf = n_lf = n_cr = n_nel = 0
    seen_cr = False
    last_line_end = -1
    has_long_lines = 0
    has_escapes = "\x1b" in ubuf
    has_backspace = "\b" in ubuf
    for i, c in enumerate(ubuf):
        if c == "\n":
            if seen_cr:
                n_crlf += 1
            else:
                n_lf += 1
            last_line_end = i
        elif seen_cr:
            n_cr += 1
        seen_cr = c == "\r"
        if seen_cr:
            last_line_end = i
        if c == "\x85":
            n_nel += 1
            last_line_end = i
        if i > last_line_end + MAXLINELEN:
            ll = i - last_line_end
            if ll > has_long_lines:
                has_long_lines = ll
    if seen_cr and nbytes < FILE_BYTES_MAX:
        n_cr += 1
    out = sm.text()
    executable = False
    if out:
        if out.endswith(" text"):
            sm.out = [out[:-5] + ", "]
        elif out.endswith(" text executable"):
            sm.out = [out[:-16] + ", "]
            executable = True
        else:
            sm.printf(", ")
    sm.printf(code)
    sm.printf(" " + typ)
    if executable:
        sm.printf(" executable")
    if has_long_lines:
        sm.printf(f", with very long lines ({has_long_lines})")
    if (n_crlf == 0 and n_cr == 0 and n_nel == 0 and n_lf == 0) or n_crlf or n_cr or n_nel:
        words = []
        if not (n_crlf or n_cr or n_nel or n_lf):
            words.append(" no")
        else:
            if n_crlf:
                words.append(" CRLF" + ("," if n_cr or n_lf or n_nel else ""))
            if n_cr:
                words.append(" CR" + ("," if n_lf or n_nel else ""))
            if n_lf:
                words.append(" LF" + ("," if n_nel else ""))
            if n_nel:
                words.append(" NEL")
        sm.printf(", with" + "".join(words) + " line terminators")
    if has_escapes:
        sm.printf(", with escape sequences")
    if has_backspace:
        sm.printf(", with overstriking")
    return True
