"""POSIX basic and extended regular expressions (with GNU extensions) translated to Python ``re``.

grep and sed share this. Text is handled as latin-1 ``str`` so every byte is one character
(the C locale), and patterns compile with ``re.ASCII | re.DOTALL`` (in sed's pattern space
``.`` matches a newline, as GNU sed's does). Translation rules (POSIX XBD 9.3/9.4, GNU regex):

- BRE: ``\\( \\) \\{ \\} \\| \\+ \\?`` are operators and ``( ) { } | + ?`` literals; ``*`` is
  literal at the start of an RE or group; ``^``/``$`` anchor only at the ends of an RE or group.
- ERE: ``( ) { } | + ?`` are operators; ``^``/``$`` always anchor.
- GNU escapes: ``\\w \\W \\s \\S \\b \\B \\< \\> \\` \\'`` and ``\\n``/``\\t``.
- Bracket expressions keep ``]`` first, ranges, ``[:class:]``, ``[=c=]``, ``[.c.]``; a
  backslash inside brackets is literal.
- ``$`` becomes ``\\Z`` (Python's ``$`` would also match before a final newline).

Python's leftmost-first alternation differs from POSIX leftmost-longest only when
alternatives overlap at the same start; the forms maintainer scripts use do not rely on it.
"""

from __future__ import annotations

import re

_CLASSES = {
    "alpha": "a-zA-Z", "upper": "A-Z", "lower": "a-z", "digit": "0-9", "alnum": "0-9a-zA-Z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": "!-/:-@\\[-`{-~", "print": " -~",
    "graph": "!-~", "cntrl": "\\x00-\\x1f\\x7f", "xdigit": "0-9A-Fa-f",
}


class RegexError(ValueError):
    """The expression is invalid (message as GNU regcomp words it)."""


def _bracket(p: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at ``p[i] == '['``; returns (text, next index)."""
    j = i + 1
    out = ["["]
    if j < len(p) and p[j] == "^":
        out.append("^")
        j += 1
    first = True
    if j >= len(p):
        raise RegexError("Invalid regular expression")  # GNU dfa: a '[' ending the pattern
    while True:
        if j >= len(p):
            raise RegexError("Unmatched [, [^, [:, [., or [=")
        c = p[j]
        if c == "]" and not first:
            out.append("]")
            j += 1
            break
        first = False
        if c == "[" and j + 1 < len(p) and p[j + 1] in ":=.":
            kind = p[j + 1]
            end = p.find(kind + "]", j + 2)
            if end < 0:
                raise RegexError("Unmatched [, [^, [:, [., or [=")
            name = p[j + 2:end]
            if kind == ":":
                if name not in _CLASSES:
                    raise RegexError("Invalid character class name")
                out.append(_CLASSES[name])
            else:
                out.append(re.escape(name))
            j = end + 2
            continue
        if c == "-" and out[-1] not in ("[", "^") and j + 1 < len(p) and p[j + 1] != "]":
            out.append("-")
            j += 1
            continue
        out.append("\\" + c if c in "\\[]^-" else c)
        j += 1
    return "".join(out), j


def translate(p: str, extended: bool) -> str:
    """The Python ``re`` source for POSIX pattern ``p`` (BRE unless ``extended``)."""
    out: list[str] = []
    i, n = 0, len(p)
    depth = 0
    # "at start" positions: where '*' is literal (BRE) and '^' anchors (BRE)
    at_start = True
    while i < n:
        c = p[i]
        start_here = at_start
        at_start = False
        if c == "\\":
            if i + 1 >= n:
                raise RegexError("Trailing backslash")
            d = p[i + 1]
            i += 2
            if not extended and d in "(){}|+?":
                if d == "(":
                    out.append("(")
                    depth += 1
                    at_start = True
                elif d == ")":
                    if depth == 0:
                        raise RegexError("Unmatched ) or \\)")
                    depth -= 1
                    out.append(")")
                elif d == "|":
                    out.append("|")
                    at_start = True
                elif d == "{":
                    end = p.find("\\}", i)
                    if end < 0:
                        raise RegexError("Unmatched \\{")
                    out.append("{" + _interval(p[i:end]) + "}")
                    i = end + 2
                elif d in "+?":
                    if start_here:
                        out.append("\\" + d)
                    else:
                        out.append(d)
                else:
                    out.append("\\" + d)
                continue
            if d.isdigit() and d != "0":
                out.append("\\" + d)
            elif d in "wWsSbB":
                out.append("\\" + d)
            elif d == "<":
                out.append(r"\b(?=\w)")
            elif d == ">":
                out.append(r"\b(?<=\w)")
            elif d == "`":
                out.append(r"\A")
            elif d == "'":
                out.append(r"\Z")
            elif d == "n":
                out.append("\\n")
            elif d == "t":
                out.append("\\t")
            else:
                out.append(re.escape(d))
            continue
        i += 1
        if c == "[":
            text, i = _bracket(p, i - 1)
            out.append(text)
        elif c == ".":
            out.append(".")
        elif c == "*":
            # literal where it cannot repeat anything: start of the RE or of a group
            out.append("\\*" if start_here else "*")
        elif c == "^":
            if extended or start_here:
                out.append("^")
                at_start = True
            else:
                out.append("\\^")
        elif c == "$":
            if extended or i == n or p.startswith("\\)", i) or p.startswith("\\|", i):
                out.append(r"\Z")
            else:
                out.append("\\$")
        elif extended and c in "(){}|+?":
            if c == "(":
                depth += 1
                out.append("(")
                at_start = True
            elif c == ")":
                if depth == 0:
                    out.append("\\)")
                else:
                    depth -= 1
                    out.append(")")
            elif c == "|":
                out.append("|")
                at_start = True
            elif c == "{":
                end = p.find("}", i)
                body = p[i:end] if end >= 0 else ""
                if end >= 0 and re.fullmatch(r"\d*(,\d*)?", body) and body not in ("", ","):
                    out.append("{" + _interval(body) + "}")
                    i = end + 1
                else:
                    out.append("\\{")
            elif c == "}":
                out.append("\\}")
            else:
                out.append(c if not start_here else "\\" + c)
        else:
            out.append(re.escape(c))
    if depth:
        raise RegexError("Unmatched ( or \\(")
    return "".join(out)


def _interval(body: str) -> str:
    if not re.fullmatch(r"\d*(,\d*)?", body) or body in ("", ","):
        raise RegexError("Invalid content of \\{\\}")
    lo, _, hi = body.partition(",")
    if "," in body and lo == "":
        lo = "0"
    if hi and lo and int(hi) < int(lo):
        raise RegexError("Invalid content of \\{\\}")
    return body if "," not in body else f"{lo},{hi}"


def compile_posix(p: str, extended: bool, icase: bool = False) -> re.Pattern:
    """Compile a POSIX pattern (str over latin-1) to a Python pattern; RegexError if invalid."""
    src = translate(p, extended)
    try:
        return re.compile(src, re.ASCII | re.DOTALL | (re.IGNORECASE if icase else 0))
    except re.error as e:
        raise RegexError(str(e)) from None
