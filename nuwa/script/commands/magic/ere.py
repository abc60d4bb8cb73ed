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


class _Group:
    """What translate knows of a group's body: whether some alternative can match the
    empty string, whether it has alternatives, how many atoms it repeats without bound."""

    __slots__ = ("alt", "nonempty", "empty_alt", "unbounded", "atoms", "single", "start", "dot")

    def __init__(self, start: int = 0):
        self.start = start  # where its "(?:" is in the output
        self.dot = False  # does it repeat "." without bound?
        self.alt = False
        self.nonempty = False
        self.empty_alt = False
        self.unbounded = 0
        # this alternative's atoms so far (-1 once one is a group or quantified), and whether
        # every alternative is one character: then the alternation is a character class
        self.atoms = 0
        self.single = True

    def end_alternative(self) -> None:
        if self.atoms != 1:
            self.single = False
        self.atoms = 0


def translate(p: str) -> str:
    """The Python pattern for the ERE ``p`` (raises :class:`Unsupported`).

    Python's engine backtracks where glibc's does not: a repeated group whose body can
    match the empty string, has alternatives, or repeats two atoms without bound (``(.*x*)*``)
    can take exponential time on a failing search, so such a pattern is refused."""
    out: list[str] = []
    i, n = 0, len(p)
    frames = [_Group()]
    # the atom just ended, if any: (can it match something non-empty?, the group it closed)
    atom: tuple[bool, _Group | None] | None = None

    def quantified(lo: int, hi: int | None, text: str) -> bool:
        """The quantifier ``text`` after the atom just ended; False when it was rewritten."""
        nonempty, group = atom
        frame = frames[-1]
        if lo > 0 and nonempty:
            frame.nonempty = True
        if hi is None:
            frame.unbounded += 1
            if out and out[-1] == "[^\\n]":
                frame.dot = True
        frame.atoms = -1
        if group is not None and (hi is None or hi > 1):
            body = "".join(out[group.start + 1:-1])
            if text == "*" and body in ("[^\\n]*[\\x0a]*", "[\\x0a]*[^\\n]*"):
                # (.*[\n]*)* is any string at all: the same language, without the backtracking
                del out[group.start:]
                out.append("[\\s\\S]*")
                return False
            if ((group.alt and not group.single) or group.empty_alt or not group.nonempty
                    or (group.unbounded > 1 and group.dot)):
                raise Unsupported("a repeated group that backtracks in Python's engine")
            if hi is None and group.unbounded:
                frame.unbounded += 1
        return True

    def ended(nonempty: bool, group: _Group | None = None) -> None:
        nonlocal atom
        if atom is not None and atom[0]:
            frames[-1].nonempty = True
        atom = (nonempty, group)
        frame = frames[-1]
        frame.atoms = -1 if group is not None or frame.atoms < 0 else frame.atoms + 1
        if group is not None:
            frames[-1].unbounded += group.unbounded
            frames[-1].dot = frames[-1].dot or group.dot

    while i < n:
        c = p[i]
        if c == "\\":
            if i + 1 >= n:
                raise Unsupported("trailing backslash")
            d = p[i + 1]
            if d.isalnum():
                raise Unsupported(f"escape \\{d}")
            ended(True)
            out.append(_esc(d))
            i += 2
        elif c == "[":
            text, i = _bracket(p, i)
            ended(True)
            out.append(text)
        elif c == ".":
            ended(True)
            out.append("[^\\n]")
            i += 1
        elif c == "(":
            if i + 1 < n and p[i + 1] in "*+?{)":
                raise Unsupported(f"group starting {p[i:i + 2]!r}")
            if atom is not None and atom[0]:
                frames[-1].nonempty = True
            atom = None
            out.append("(?:")
            frames.append(_Group(len(out) - 1))
            i += 1
        elif c == ")":
            if len(frames) == 1:
                raise Unsupported("unmatched )")
            if atom is not None and atom[0]:
                frames[-1].nonempty = True
            atom = None
            group = frames.pop()
            group.end_alternative()
            group.empty_alt = group.empty_alt or not group.nonempty
            out.append(")")
            ended(not group.empty_alt, group)
            i += 1
        elif c == "|":
            if i + 1 < n and p[i + 1] in "|)*+?{" or not out or out[-1] in ("(?:", "|"):
                raise Unsupported("empty alternative")
            if atom is not None and atom[0]:
                frames[-1].nonempty = True
            atom = None
            frame = frames[-1]
            frame.alt = True
            frame.end_alternative()
            frame.empty_alt = frame.empty_alt or not frame.nonempty
            frame.nonempty = False
            out.append("|")
            i += 1
        elif c in "*+?":
            if atom is None:
                raise Unsupported(f"{c!r} without an operand")
            keep = quantified(1 if c == "+" else 0, 1 if c == "?" else None, c)
            atom = None
            if keep:
                out.append(c)
            i += 1
            if i < n and p[i] in "*+?{":
                raise Unsupported("repeated repetition operators")
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", p[i:])
            if atom is None or not m:
                raise Unsupported(f"interval {p[i:i + 8]!r}")
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            if lo > 255 or (hi is not None and (hi < lo or hi > 255)):
                raise Unsupported(f"interval {m.group(0)!r}")
            keep = quantified(lo, hi, m.group(0))
            atom = None
            if keep:
                out.append(m.group(0))
            i += len(m.group(0))
            if i < n and p[i] in "*+?{":
                raise Unsupported("repeated repetition operators")
        elif c in "^$":
            if atom is not None and atom[0]:
                frames[-1].nonempty = True
            atom = None
            out.append(c)
            i += 1
        else:
            ended(True)
            out.append(_esc(c))
            i += 1
    if len(frames) > 1:
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
