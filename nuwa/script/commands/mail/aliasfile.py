"""The aliases(5) file as Postfix 3.7's ``postalias`` reads it: logical lines, RFC 822 tokens,
``name: value`` pairs.

- ``readllines`` (util/readlline.c): physical lines joined *without* a separator when the next
  one starts with white space; comment lines (first non-space ``#``) and blank lines dropped
  (also between continuations); a logical line starting with white space is warned about and
  skipped; a warning names the logical line's first line number.
- ``tok822_scan`` (global/tok822_parse.c): white space separates; ``"..."`` a quoted string,
  ``[...]`` a domain literal (white space inside becomes one space); each of
  ``|%!()<>@,;:\\".[]`` an operator; anything else an atom.
- postalias.c: the first ``:`` splits; no ``:``, nothing before or after it, or a ``,`` before
  it: "need name:value pair"; an ``@`` or ``%`` before it: "name must be local". The key is
  ``tok822_internalize``\\ d (quoted strings unquoted), the value ``tok822_externalize``\\ d
  (``, `` after each comma, one space between two words, before ``<``).

Raises :class:`~nuwa.script.context.Defer` for what is not modelled: comments in parentheses
(nested, and moved by the parser), backslashes (escapes), control characters other than tab,
carriage returns and form feeds, bytes outside ASCII (UTF-8 checks and case folding).
"""

from __future__ import annotations

import re

from nuwa.script.context import Defer

#: ``tok822_opchar``: "|%!" and LEX_822_SPECIALS
OPCHARS = '|%!()<>@,;:\\".[]'
_BAD = re.compile(rb"[^\t\n\x20-\x7e]|[(\\]")


def logical_lines(text: str, path: str, warn) -> list[tuple[int, str]]:
    """``readllines``: (first line number, logical line) of the non-comment lines."""
    out: list[tuple[int, str]] = []
    cur: list[str] | None = None
    first = 0
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in " \t" and cur is not None:
            cur.append(line)
            continue
        if cur is not None:
            out.append((first, "".join(cur)))
        cur, first = [line], number
    if cur is not None:
        out.append((first, "".join(cur)))
    kept = []
    for number, line in out:
        if line[0] in " \t":
            shown = line[:30] + ("..." if len(line) > 30 else "")
            warn(f"{path}: logical line must not start with whitespace: \"{shown}\"")
            continue
        kept.append((number, line))
    return kept


def tokens(line: str) -> list[tuple[str, str]]:
    """``tok822_scan``: (type, text) with type ``atom``, ``qstring``, ``domlit`` or the operator."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch in " \t":
            i += 1
        elif ch in '"[':
            close = '"' if ch == '"' else "]"
            j = line.find(close, i + 1)
            j = n if j < 0 else j
            out.append(("qstring" if ch == '"' else "domlit", line[i + 1:j].replace("\t", " ")))
            i = j + 1
        elif ch in OPCHARS:
            out.append((ch, ch))
            i += 1
        else:
            j = i
            while j < n and line[j] not in " \t" and line[j] not in OPCHARS:
                j += 1
            out.append(("atom", line[i:j]))
            i = j
    return out


def _word(tok: tuple[str, str]) -> bool:
    return tok[0] in ("atom", "qstring", "domlit")


def internalize(toks: list[tuple[str, str]]) -> str:
    """``tok822_internalize`` of a flat token list."""
    out = []
    for i, tok in enumerate(toks):
        out.append(f"[{tok[1]}]" if tok[0] == "domlit" else tok[1])
        if i + 1 < len(toks) and _word(tok) and _word(toks[i + 1]):
            out.append(" ")
    return "".join(out)


def externalize(toks: list[tuple[str, str]]) -> str:
    """``tok822_externalize`` of a flat token list (``TOK822_STR_DEFL``)."""
    out = []
    for i, tok in enumerate(toks):
        kind, text = tok
        if kind == ",":
            out.append(", ")
            continue
        out.append({"qstring": f'"{text}"', "domlit": f"[{text}]"}.get(kind, text))
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and (nxt[0] == "<" or (_word(tok) and _word(nxt))):
            out.append(" ")
    return "".join(out)


def parse(data: bytes, path: str, warn, store) -> None:
    """Each (key, value) pair ``postalias`` stores from the aliases file's bytes to ``store``
    (keys not yet case-folded), each warning's text to ``warn``, in the order postalias meets
    them."""
    m = _BAD.search(data)
    if m:
        raise Defer(f"postalias: {path} holds {m.group(0)!r} at byte {m.start()} (comments, escapes, "
                    "control or non-ASCII bytes are not modelled)")
    for number, line in logical_lines(data.decode("ascii"), path, warn):
        toks = tokens(line)
        if not toks:
            continue
        colon = next((i for i, t in enumerate(toks) if t[0] == ":"), None)
        if colon is None or colon == 0 or colon == len(toks) - 1 or any(t[0] == "," for t in toks[:colon]):
            warn(f"{path}, line {number}: need name:value pair")
            continue
        if any(t[0] in "@%" for t in toks[:colon]):
            warn(f"{path}, line {number}: name must be local")
            continue
        store(internalize(toks[:colon]), externalize(toks[colon + 1:]))
