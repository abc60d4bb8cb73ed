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
- a match is meant to be leftmost-longest, which Python's leftmost-first search is corrected
  to where the expression can be ambiguous, but mawk's matcher departs from it in some forms
  (see :class:`MawkRegex`): those defer wherever the extent of a match matters;
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


def _translate(src: str) -> tuple[str, bool]:
    """The Python source for mawk regex ``src`` (with :data:`_END` where ``$`` stands), and
    whether its match extents are unsure (forms where mawk's matcher is wrong: see MawkRegex).

    Besides mawk's compile errors, two forms whose results mawk's own matcher gets wrong
    are deferred rather than imitated: a ``$`` with more expression after it (``$(a)`` and
    ``$$`` make mawk 1.3.4 panic) and an alternation with a branch that can match the empty
    string (``b*(b|a*)`` on "aab" matches "b" at 3 in mawk, not "aa" at 1).
    """
    out: list[str] = []
    optional = [False]
    repeats = [0]
    # one frame per open group: [branches' nullability so far, this branch's atoms' nullability]
    frames: list[list] = [[[], []]]
    i = 0
    while i < len(src):
        c = src[i]
        branch = frames[-1][1]
        if c == "\\":
            ch, i = _escape(src, i)
            out.append(re.escape(ch))
            branch.append(False)
            continue
        i += 1
        if c == "$" and i < len(src) and src[i] not in ")|":
            raise Defer(f"awk regex {src!r}: '$' before more expression (mawk's matcher fails on it)")
        if c == "[":
            part, i = _bracket(src, i - 1)
            out.append(part)
            branch.append(False)
        elif c in "*+?":
            if not branch:
                raise Defer(f"awk regex {src!r}: missing operand")
            out.append(c)
            if c == "?":
                optional[0] = True
            else:
                repeats[0] += 1
            if c != "+":
                branch[-1] = True
        elif c == "(":
            out.append("(?:")
            frames.append([[], []])
        elif c in "|)":
            if not branch:
                raise Defer(f"awk regex {src!r}: missing operand")
            frames[-1][0].append(all(branch))
            frames[-1][1] = []
            if c == "|":
                out.append("|")
                continue
            if len(frames) == 1:
                raise Defer(f"awk regex {src!r}: unmatched ')'")
            done = frames.pop()
            _check_alternation(src, done[0])
            out.append(")")
            frames[-1][1].append(any(done[0]))
        elif c in "^$":
            out.append("^" if c == "^" else _END)
            branch.append(True)  # an anchor consumes nothing
        else:
            out.append("." if c == "." else re.escape(c))
            branch.append(False)
    if len(frames) != 1:
        raise Defer(f"awk regex {src!r}: missing ')'")
    if src:
        if not frames[0][1]:
            raise Defer(f"awk regex {src!r}: missing operand")
        frames[0][0].append(all(frames[0][1]))
        _check_alternation(src, frames[0][0])
    # extents are unsure with '?', '|', or two repeated atoms unless anchored at both ends
    both_ends = src.startswith("^") and src.endswith("$") and not src.endswith("\\$")
    return "".join(out), optional[0] or "|" in src or (repeats[0] > 1 and not both_ends)


def _check_alternation(src: str, branches: list[bool]) -> None:
    if len(branches) > 1 and any(branches):
        raise Defer(f"awk regex {src!r}: an alternative that matches the empty string (mawk's matcher "
                    "misses some of its matches)")


class MawkRegex:
    """One compiled mawk regex: ``search`` (does it match) and ``find`` (leftmost-longest)."""

    def __init__(self, src: str):
        body, unsure = _translate(src)
        self.src = src
        # mawk's matcher (rexp*.c) is not leftmost-longest in general: it ends some matches
        # early after an optional atom (match("b.b..", ".*.b?") sets RLENGTH 3, not 5), skips
        # some alternatives (match("a.bb", "[.x]b*b*|a+") is 2, not 1) and with two repeated
        # atoms may start late or stop short (match("xxaaba", "b*b*") is 5; "x*.+x*" on
        # "b.bxxba" has RLENGTH 5). Found by differential fuzzing against the real mawk;
        # rather than port its matcher, where a match's extent matters (match, sub, gsub,
        # split, FS) those forms defer: a '?', a '|', or two repeated atoms unless the
        # expression is anchored at both ends. Whether it matches at all (~, /re/) is kept.
        self.extent_unsure = unsure
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
        if self.extent_unsure:
            raise Defer(f"awk regex {self.src!r}: mawk's match extent for this form is not modelled")
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
