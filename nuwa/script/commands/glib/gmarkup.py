"""A GMarkup event reader for schema files (glib 2.74 ``gmarkup.c``), strict by design.

glib-compile-schemas parses with ``G_MARKUP_TREAT_CDATA_AS_TEXT | G_MARKUP_PREFIX_ERROR_POSITION
| G_MARKUP_IGNORE_QUALIFIED``. This reader yields the callbacks GMarkup would make (start
element with its attributes, text, end element) and the position GMarkup reports at each
callback, so that an error raised by a callback can be printed as the real program does
("Error on line L char C: ..."). Positions follow ``advance_char``: the column counts bytes,
and a newline starts a new line at column 1 when the cursor *lands on* it.

Anything GMarkup itself would reject (malformed markup, bad entities, invalid UTF-8) raises
:class:`MarkupUnsupported`: GMarkup's own parse errors are not reproduced, the caller defers.
The reader is stricter than GMarkup where that is simpler (it only defers more often).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(rb"[A-Za-z_:][-A-Za-z0-9_:.]*")
_SPACE = b" \t\n\r"
_ENTITIES = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"', b"apos": "'"}


class MarkupUnsupported(Exception):
    """Markup GMarkup would reject, or that this reader does not handle: defer."""


class MarkupError(Exception):
    """A GMarkup parse error this reader reproduces: ``pos`` and GMarkup's full message."""

    def __init__(self, pos: tuple[int, int], message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = f"Error on line {pos[0]} char {pos[1]}: {message}"  # set_error's prefix


@dataclass
class Event:
    """One GMarkup callback: ``kind`` is "start", "end", "text" or "cdata" (text from a CDATA
    section); ``pos`` is (line, char)."""

    kind: str
    name: str
    attrs: list
    text: str
    pos: tuple[int, int]
    stack: tuple[str, ...]  # the element stack, innermost first (after a start, it is included)


class _Pos:
    """Incremental ``advance_char`` line/char bookkeeping over a byte string."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.line = 1
        self.char = 1

    def to(self, p: int) -> tuple[int, int]:
        """Move the cursor to byte ``p`` (forward only) and return GMarkup's (line, char)."""
        seg = self.data[self.at + 1:p + 1]
        nl = seg.rfind(b"\n")
        if nl >= 0:
            self.line += seg.count(b"\n")
            self.char = p - (self.at + 1 + nl) + 1
        else:
            self.char += p - self.at
        self.at = p
        return self.line, self.char


def _unescape(raw: bytes, attribute: bool) -> str:
    """``unescape_gstring_inplace``: entities, CR/CRLF folding, attribute whitespace."""
    if attribute:
        raw = re.sub(rb"\r\n?|[\t\n]", b" ", raw)
    else:
        raw = re.sub(rb"\r\n?", b"\n", raw)
    out, i = bytearray(), 0
    while True:
        j = raw.find(b"&", i)
        if j < 0:
            out += raw[i:]
            break
        out += raw[i:j]
        k = raw.find(b";", j)
        if k < 0:
            raise MarkupUnsupported("an unterminated entity")
        ent = raw[j + 1:k]
        if ent in _ENTITIES:
            out += _ENTITIES[ent].encode()
        elif re.fullmatch(rb"#[0-9]+|#x[0-9A-Fa-f]+", ent):
            cp = int(ent[2:], 16) if ent[1:2] == b"x" else int(ent[1:])
            if not (0 < cp < 0xD800 or 0xE000 <= cp < 0xFFFE or 0x10000 <= cp <= 0x10FFFF):
                raise MarkupUnsupported("a character reference out of range")
            out += chr(cp).encode()
        else:
            raise MarkupUnsupported(f"the entity &{ent.decode(errors='replace')};")
        i = k + 1
    return out.decode()


def events(data: bytes):
    """Yield the :class:`Event` s of a document, in GMarkup's order."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise MarkupUnsupported("invalid UTF-8") from None
    if b"\0" in data:
        raise MarkupUnsupported("a NUL byte")
    pos = _Pos(data)
    first = len(data) - len(data.lstrip(_SPACE))
    if first == len(data):
        raise MarkupError(pos.to(len(data)), "Document was empty or contained only whitespace")
    if data[first:first + 1] != b"<":
        raise MarkupError(pos.to(first), "Document must begin with an element (e.g. <book>)")
    stack: list[str] = []
    ignoring = 0  # depth inside an element with a qualified name (G_MARKUP_IGNORE_QUALIFIED)
    seen_root = False
    i, n = 0, len(data)
    while i < n:
        lt = data.find(b"<", i)
        if lt < 0:
            lt = n
        if lt > i:
            chunk = data[i:lt]
            if not stack and chunk.strip(_SPACE):
                raise MarkupUnsupported("text outside the root element")
            # text is handed to the callback when a "<" ends it; at the end of the document
            # it never is (end_parse reports the open elements instead)
            if stack and not ignoring and lt < n:
                yield Event("text", "", [], _unescape(chunk, False), pos.to(lt), tuple(reversed(stack)))
        if lt >= n:
            break
        if data.startswith(b"<!--", lt):
            end = data.find(b"-->", lt + 4)
            if end < 0:
                raise MarkupUnsupported("an unterminated comment")
            i = end + 3
        elif data.startswith(b"<?", lt):
            end = data.find(b"?>", lt + 2)
            if end < 0 or stack:
                raise MarkupUnsupported("a processing instruction")
            i = end + 2
        elif data.startswith(b"<![CDATA[", lt):
            end = data.find(b"]]>", lt + 9)
            if end < 0 or not stack:
                raise MarkupUnsupported("a CDATA section")
            if not ignoring:
                text = data[lt + 9:end].decode()
                yield Event("cdata", "", [], text, pos.to(end + 3), tuple(reversed(stack)))
            i = end + 3
        elif data.startswith(b"<!DOCTYPE", lt) and not stack and not seen_root:
            end = data.find(b">", lt)
            if end < 0 or b"[" in data[lt:end]:
                raise MarkupUnsupported("a DOCTYPE with an internal subset")
            i = end + 1
        elif data.startswith(b"</", lt):
            m = _NAME.match(data, lt + 2)
            if not m or data[m.end():m.end() + 1] != b">":
                raise MarkupUnsupported("a malformed end tag")
            if not stack:
                raise MarkupError(pos.to(m.end()), f"Element \u201c{m.group().decode()}\u201d was closed, "
                                                   "no element is currently open")
            if stack[-1] != m.group().decode():
                raise MarkupError(pos.to(m.end()), f"Element \u201c{m.group().decode()}\u201d was closed, but "
                                                   f"the currently open element is \u201c{stack[-1]}\u201d")
            name = stack[-1]
            p = pos.to(m.end() + 1)
            outer = tuple(reversed(stack))
            stack.pop()
            if ignoring:
                ignoring -= 1
            else:
                yield Event("end", name, [], "", p, outer)
            i = m.end() + 1
        else:
            m = _NAME.match(data, lt + 1)
            if not m or (seen_root and not stack):
                raise MarkupUnsupported("a malformed start tag")
            name = m.group().decode()
            j, attrs = m.end(), []
            while True:
                k = j
                while k < n and data[k] in _SPACE:
                    k += 1
                if data.startswith(b"/>", k) or data.startswith(b">", k):
                    break
                am = _NAME.match(data, k)
                if k == j or not am or data[am.end():am.end() + 1] != b"=" \
                        or data[am.end() + 1:am.end() + 2] not in (b'"', b"'"):
                    raise MarkupUnsupported("a malformed attribute")
                q = data[am.end() + 1:am.end() + 2]
                vend = data.find(q, am.end() + 2)
                if vend < 0 or b"<" in data[am.end() + 2:vend]:
                    raise MarkupUnsupported("a malformed attribute value")
                aname = am.group().decode()
                if any(a == aname for a, _ in attrs):
                    raise MarkupUnsupported("a duplicate attribute")
                attrs.append((aname, _unescape(data[am.end() + 2:vend], True)))
                j = vend + 1
            empty = data.startswith(b"/>", k)
            seen_root = True
            stack.append(name)
            if ignoring or ":" in name:
                ignoring += 1
            else:
                attrs = [(a, v) for a, v in attrs if ":" not in a]
                yield Event("start", name, attrs, "", pos.to(k + 1), tuple(reversed(stack)))
            if empty:
                outer = tuple(reversed(stack))
                stack.pop()
                if ignoring:
                    ignoring -= 1
                else:
                    yield Event("end", name, [], "", pos.to(k + 2), outer)
                i = k + 2
            else:
                i = k + 1
    if stack:
        # end_parse in STATE_AFTER_CLOSE_ANGLE or STATE_INSIDE_TEXT
        raise MarkupError(pos.to(n), "Document ended unexpectedly with elements still open \u2014 "
                                     f"\u201c{stack[-1]}\u201d was the last element opened")
    if not seen_root:
        raise MarkupUnsupported("a document without an element")
