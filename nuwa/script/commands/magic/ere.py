"""glibc's POSIX extended regular expressions as libmagic compiles them (file 5.44
``alloc_regex``: ``REG_EXTENDED | REG_NEWLINE`` and ``REG_ICASE`` for ``/c``, in the C
locale), translated to Python ``re`` over latin-1 text (one character per byte).

Only the forms whose meaning is certain are translated; anything else raises
:class:`Unsupported` and the caller defers. ``REG_NEWLINE``: ``.`` and a non-matching list
do not match a newline, ``^``/``$`` match at line starts and ends. A match's *start* is the
same in both engines (leftmost); its *length* may differ (POSIX leftmost-longest against
Python's leftmost-first), which callers must not rely on.
"""

from __future__ import annotations

import re

_CLASSES = {
    "alpha": "a-zA-Z", "upper": "A-Z", "lower": "a-z", "digit": "0-9", "alnum": "0-9a-zA-Z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": "!-/:-@\\[-`{-~", "print": " -~",
    "graph": "!-~", "cntrl": "\\x00-\\x1f\\x7f", "xdigit": "0-9A-Fa-f",
}


class Unsupported(ValueError):
    """A form this translator does not model (the reason is the message)."""


def _esc(c: str) -> str:
    return "\\x%02x" % ord(c) if not c.isalnum() else c


def _bracket(p: str, i: int) -> tuple[str, int]:
    j = i + 1
    neg = j < len(p) and p[j] == "^"
    if neg:
        j += 1
    items = []
    first = True
    while True:
        if j >= len(p):
            raise Unsupported("unterminated bracket expression")
        c = p[j]
        if c == "]" and not first:
            j += 1
            break
        first = False
        if c == "[" and j + 1 < len(p) and p[j + 1] in ":=.":
            kind = p[j + 1]
            end = p.find(kind + "]", j + 2)
            if kind != ":" or end < 0 or p[j + 2:end] not in _CLASSES:
                raise Unsupported(f"bracket element {p[j:j + 8]!r}")
            items.append(_CLASSES[p[j + 2:end]])
            j = end + 2
            continue
        if j + 2 < len(p) and p[j + 1] == "-" and p[j + 2] != "]":
            hi = p[j + 2]
            if hi == "[" or ord(hi) < ord(c):
                raise Unsupported(f"range {p[j:j + 3]!r}")
            items.append(_esc(c) + "-" + _esc(hi))
            j += 3
            continue
        items.append(_esc(c))
        j += 1
    body = "".join(items)
    # REG_NEWLINE: a non-matching list never matches a newline
    return ("[^\\n" + body + "]") if neg else ("[" + body + "]"), j


def translate(p: str) -> str:
    """The Python pattern for the ERE ``p`` (raises :class:`Unsupported`)."""
    out: list[str] = []
    i, n = 0, len(p)
    # can the next token be quantified (an atom just ended)?
    atom = False
    depth = 0
    while i < n:
        c = p[i]
        if c == "\\":
            if i + 1 >= n:
                raise Unsupported("trailing backslash")
            d = p[i + 1]
            if d.isalnum():
                raise Unsupported(f"escape \\{d}")
            out.append(_esc(d))
            i += 2
            atom = True
        elif c == "[":
            text, i = _bracket(p, i)
            out.append(text)
            atom = True
        elif c == ".":
            out.append("[^\\n]")
            i += 1
            atom = True
        elif c == "(":
            if i + 1 < n and p[i + 1] in "*+?{)":
                raise Unsupported(f"group starting {p[i:i + 2]!r}")
            out.append("(?:")
            depth += 1
            i += 1
            atom = False
        elif c == ")":
            if not depth:
                raise Unsupported("unmatched )")
            out.append(")")
            depth -= 1
            i += 1
            atom = True
        elif c == "|":
            if i + 1 < n and p[i + 1] in "|)*+?{" or not out or out[-1] in ("(?:", "|"):
                raise Unsupported("empty alternative")
            out.append("|")
            i += 1
            atom = False
        elif c in "*+?":
            if not atom:
                raise Unsupported(f"{c!r} without an operand")
            out.append(c)
            i += 1
            if i < n and p[i] in "*+?{":
                raise Unsupported("repeated repetition operators")
            atom = False
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", p[i:])
            if not atom or not m:
                raise Unsupported(f"interval {p[i:i + 8]!r}")
            lo, hi = int(m.group(1)), m.group(3)
            if lo > 255 or (hi and (int(hi) < lo or int(hi) > 255)):
                raise Unsupported(f"interval {m.group(0)!r}")
            out.append(m.group(0))
            i += len(m.group(0))
            if i < n and p[i] in "*+?{":
                raise Unsupported("repeated repetition operators")
            atom = False
        elif c == "^":
            out.append("^")
            i += 1
            atom = False
        elif c == "$":
            out.append("$")
            i += 1
            atom = False
        else:
            out.append(_esc(c))
            i += 1
            atom = True
    if depth:
        raise Unsupported("unmatched (")
    return "".join(out)


_CACHE: dict[tuple[bytes, bool], tuple] = {}


def compile_ere(pattern: bytes, icase: bool) -> "Ere":
    """The compiled form of a magic entry's regex (kept for the next file)."""
    key = (pattern, icase)
    rx = _CACHE.get(key)
    if rx is None:
        rx = _CACHE[key] = Ere(pattern.decode("latin-1"), icase)
    return rx


class Ere:
    """One ERE: ``search`` finds the leftmost match's start; ``longest_end`` its POSIX
    (leftmost-longest) end."""

    def __init__(self, pattern: str, icase: bool):
        flags = re.MULTILINE | re.ASCII | (re.IGNORECASE if icase else 0)
        text = translate(pattern)
        self.rx = re.compile(text, flags)
        # for an end that is neither a newline nor the subject's end, '$' must not match
        # there: Python's '$' would match at the end of a search window
        self.rx_inner = re.compile(_dollar_to_newline(text), flags)
        self.no_newline = not _may_match_newline(pattern)

    def search(self, subject: str):
        return self.rx.search(subject)

    def longest_end(self, subject: str, start: int, first_end: int) -> int:
        """The longest end of a match at ``start`` (Python's first end ``first_end`` is a
        match, so the longest is at least that): each longer candidate end is tried with a
        full match of the window ``[start, end)``."""
        limit = len(subject)
        if self.no_newline:
            nl = subject.find("\n", first_end)
            if nl >= 0:
                limit = nl
        for end in range(limit, first_end, -1):
            rx = self.rx if end == len(subject) or subject[end] == "\n" else self.rx_inner
            if rx.fullmatch(subject, start, end):
                return end
        return first_end


def _dollar_to_newline(text: str) -> str:
    """The translated pattern with each ``$`` anchor (never escaped by translate, never in
    a bracket: translate writes literals as hex escapes) as "a newline follows"."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            out.append(text[i:i + 2] if text[i + 1] != "x" else text[i:i + 4])
            i += 2 if text[i + 1] != "x" else 4
            continue
        if c == "[":
            j = text.index("]", i + 2)
            out.append(text[i:j + 1])
            i = j + 1
            continue
        out.append("(?=\n)" if c == "$" else c)
        i += 1
    return "".join(out)


def _may_match_newline(pattern: str) -> bool:
    """Could the ERE match a newline? (``.`` and non-matching lists cannot, REG_NEWLINE);
    conservative: a literal newline, the space or control classes, or a range starting
    at or below it say yes."""
    if "\n" in pattern or "[:space:]" in pattern or "[:cntrl:]" in pattern:
        return True
    return re.search(r"[\x00-\x0a]-", pattern) is not None
