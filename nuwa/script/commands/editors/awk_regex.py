"""mawk 1.3.4's own regular-expression dialect, translated to Python ``re``.

mawk (rexp*.c, 1.3.4-20200120) is not a POSIX/GNU regcomp, and its dialect differs from
:mod:`nuwa.script.commands._regex` in ways maintainer scripts hit, all judged against the
real mawk:

- a backslash escapes the next character everywhere, inside brackets too: ``\\n \\t \\f \\b
  \\r \\a \\v`` and octal ``\\ooo`` are control characters, any other ``\\c`` is the literal
  ``c``. So ``\\s`` is the letter ``s`` (auditd's ``match($0, "^\\\\s*#")`` never matches an
  indented comment), ``\\y``/``\\<`` are ``y``/``<``, ``[\\]]`` is a bracket holding ``]``;
- ``{`` and ``}`` are literals (no interval expressions in this version);
- ``^`` and ``$`` anchor wherever they appear (``a^b`` never matches); ``.`` matches newline;
- a match is leftmost-*longest* (``match("ab", /a|ab/)`` sets RLENGTH 2), which Python's
  leftmost-first search is corrected to where the expression can be ambiguous;
- a missing operand (``*a``, ``a|``, ``()``) or an unbalanced group is a compile error in
  mawk: those raise :class:`Defer`, as does a ``\\-`` in brackets (mawk's reading unjudged).
"""

from __future__ import annotations

import re

from nuwa.script.context import Defer

_ESC = {"n": "\n", "t": "\t", "f": "\f", "b": "\b", "r": "\r", "a": "\a", "v": "\v"}
_CLASSES = {
    "alpha": "a-zA-Z", "upper": "A-Z", "lower": "a-z", "digit": "0-9", "alnum": "0-9a-zA-Z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": "!-/:-@\\[-`{-~", "print": " -~",
    "graph": "!-~", "cntrl": "\\x00-\\x1f\\x7f", "xdigit": "0-9A-Fa-f",
}
_LONGEST_SPAN = 4096
_END = "\x00$END\x00"  # placeholder for '$' until the two compiled variants are made


def _escape(src: str, i: int) -> tuple[str, int]:
    """The character a backslash at ``src[i]`` stands for, and the index after it."""
    if i + 1 >= len(src):
        return "\\", i + 1
    c = src[i + 1]
    if c in _ESC:
        return _ESC[c], i + 2
    m = re.match(r"[0-7]{1,3}", src[i + 1:])
    if m:
        return chr(int(m.group(0), 8) & 0xFF), i + 1 + len(m.group(0))
    return c, i + 2


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _bracket(src: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at ``src[i] == '['``."""
    j = i + 1
    neg = j < len(src) and src[j] == "^"
    if neg:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= len(src):
            raise Defer(f"awk regex {src!r}: unterminated bracket expression")
        c = src[j]
        if c == "]" and not first:
            j += 1
            break
        first = False
        if c == "[" and src.startswith("[:", j):
            end = src.find(":]", j + 2)
            name = src[j + 2:end] if end > 0 else ""
            if name not in _CLASSES:
                raise Defer(f"awk regex {src!r}: bracket class")
            items.append(_CLASSES[name])
            j = end + 2
            continue
        if c == "\\":
            if src[j + 1:j + 2] == "-":
                raise Defer(f"awk regex {src!r}: \\- in a bracket expression")
            c, j = _escape(src, j)
        else:
            j += 1
        if src[j:j + 1] == "-" and j + 1 < len(src) and src[j + 1] != "]":
            hi = src[j + 1]
            if hi == "\\":
                hi, j = _escape(src, j + 1)
            else:
                j += 2
            if ord(hi) < ord(c):
                raise Defer(f"awk regex {src!r}: reversed range")
            items.append(_class_char(c) + "-" + _class_char(hi))
        else:
            items.append(_class_char(c))
    return ("[^" if neg else "[") + "".join(items) + "]", j


class MawkRegex:
    """One compiled mawk regex: ``search`` (does it match) and ``find`` (leftmost-longest)."""

    def __init__(self, src: str):
        out: list[str] = []
        operand = False  # is there an operand before this point (for '*', '|', ')')
        depth = 0
        i = 0
        while i < len(src):
            c = src[i]
            if c == "\\":
                ch, i = _escape(src, i)
                out.append(re.escape(ch))
                operand = True
                continue
            i += 1
            if c == "[":
                part, i = _bracket(src, i - 1)
                out.append(part)
                operand = True
            elif c in "*+?":
                if not operand:
                    raise Defer(f"awk regex {src!r}: missing operand")
                out.append(c)
            elif c == "(":
                depth += 1
                out.append("(?:")
                operand = False
            elif c == ")":
                if not operand or depth == 0:
                    raise Defer(f"awk regex {src!r}: bad group")
                depth -= 1
                out.append(")")
                operand = True
            elif c == "|":
                if not operand:
                    raise Defer(f"awk regex {src!r}: missing operand")
                out.append("|")
                operand = False
            elif c == "^":
                out.append("^")
                operand = True  # a lone anchor is a whole expression ("^" matches everywhere)
            elif c == "$":
                out.append(_END)
                operand = True
            elif c == ".":
                out.append(".")
                operand = True
            else:
                out.append(re.escape(c))
                operand = True
        if depth or (src and not operand):
            raise Defer(f"awk regex {src!r}: missing operand or ')'")
        body = "".join(out)
        # an ambiguous expression is one where leftmost-first may stop short of the longest
        self.ambiguous = "|" in src or "?" in src or bool(re.search(r"\)[*+]", src))
        try:
            self.at_end = re.compile(body.replace(_END, r"\Z"), re.S)
            self.inside = re.compile(body.replace(_END, "(?!)"), re.S)
        except re.error:
            raise Defer(f"awk regex {src!r}") from None
        self.empty = src == ""

    def search(self, text: str) -> bool:
        """Whether the expression matches anywhere in ``text``."""
        return self.at_end.search(text) is not None

    def find(self, text: str, pos: int = 0) -> tuple[int, int] | None:
        """The leftmost-longest match at or after ``pos``: (start, end), or None."""
        m = self.at_end.search(text, pos)
        if m is None:
            return None
        if not self.ambiguous:
            return m.start(), m.end()
        if len(text) - m.end() > _LONGEST_SPAN:
            # the search for the longest end tries every end: bounded so a long line cannot stall
            raise Defer("awk: a leftmost-longest match over more than 4096 characters")
        for end in range(len(text), m.end(), -1):
            # a match ending before the text's end must not use '$' (endpos would fake one)
            r = self.at_end if end == len(text) else self.inside
            if r.fullmatch(text, m.start(), end):
                return m.start(), end
        return m.start(), m.end()
