"""A model of GNU grep 3.8 for the forms maintainer scripts use.

Options: ``-E -F -G -P -e -f -i -v -w -x -c -l -L -n -h -H -o -q -s -r -R -m -z -a --color=never``.
``-P`` (PCRE2) is modelled for the patterns whose meaning Python's ``re`` shares exactly (see
:func:`perl_pattern`) on ASCII text, where the locale cannot matter; other uses are deferred.
Exit status 0 when a line is selected, 1 when none, 2 on trouble (unless ``-q`` found a match).
Patterns go through :mod:`nuwa.script.commands._regex`; text is latin-1 (the C locale).
A file holding a NUL byte is "binary": a match prints ``grep: NAME: binary file matches`` on stderr.
"""

from __future__ import annotations

import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, err, errno_text
from nuwa.script.commands._regex import RegexError, compile_posix
from nuwa.script.context import Defer, Invocation

_GREP = _args.spec("EFGPe:f:iyvwxclLnhHoqsrRm:zaAB:C:bU", {
    "extended-regexp": "E", "fixed-strings": "F", "basic-regexp": "G", "perl-regexp": "P", "regexp": "e", "file": "f",
    "ignore-case": "i", "invert-match": "v", "word-regexp": "w", "line-regexp": "x", "count": "c",
    "files-with-matches": "l", "files-without-match": "L", "line-number": "n", "no-filename": "h",
    "with-filename": "H", "only-matching": "o", "quiet": "q", "silent": "q", "no-messages": "s",
    "recursive": "r", "dereference-recursive": "R", "max-count": "m", "null-data": "z", "text": "a",
    "color": ("color", _args.OPT), "colour": ("color", _args.OPT), "binary-files": ("binary-files", _args.REQ),
    "include": ("include", _args.REQ), "exclude": ("exclude", _args.REQ), "label": ("label", _args.REQ)})


def grep(inv: Invocation) -> int:
    """``grep [OPTION]... PATTERNS [FILE...]``."""
    try:
        opts, ops = _args.parse(inv, _GREP)
    except _args.UsageError as e:
        inv.err(f"{inv.argv[0]}: {e.text}\nUsage: grep [OPTION]... PATTERNS [FILE]...\n"
                f"Try 'grep --help' for more information.\n")
        return 2
    mode = {"egrep": "E", "fgrep": "F"}.get(inv.name, "G")
    pats: list[str] | None = None
    o = {k: False for k in "ivwxclLnhHoqsrRza"}
    max_count = None
    label = "(standard input)"  # --label: the name standard input is shown as (zgrep passes the file's)
    for k, v in opts:
        if k in ("E", "F", "G", "P"):
            mode = k
        elif k == "e":
            pats = (pats or []) + v.encode("utf-8", "surrogateescape").decode("latin-1").split("\n")
        elif k == "f":
            try:
                data = inv.stdin if v == "-" else inv.fs.read_bytes(apath(inv, v))
            except OSError as e:
                err(inv, f"{v}: {errno_text(e)}")
                return 2
            text = bytes(data).decode("latin-1")
            lst = text.split("\n")
            if text.endswith("\n"):
                lst.pop()
            pats = (pats or []) + lst
        elif k == "y":
            o["i"] = True
        elif k == "m":
            if not v.lstrip("-").isdigit():
                err(inv, "invalid max count")
                return 2
            max_count = int(v)
        elif k == "label":
            label = v
        elif k in ("color", "binary-files") and v in (None, "never", "auto", "binary"):
            pass
        elif k in ("A", "B", "C", "b", "U", "color", "binary-files", "include", "exclude"):
            raise Defer(f"grep option {k} is not modelled")
        else:
            o[k] = True
    if pats is None:
        if not ops:
            inv.err("Usage: grep [OPTION]... PATTERNS [FILE]...\nTry 'grep --help' for more information.\n")
            return 2
        pats = ops.pop(0).encode("utf-8", "surrogateescape").decode("latin-1").split("\n")
    if mode == "P":
        if len(pats) > 1:
            err(inv, "the -P option only supports a single pattern")
            return 2
        if o["i"] or o["z"]:
            raise Defer("grep -P with -i or -z is not modelled (PCRE2 caseless UTF / multiline)")
    try:
        rx = _compile(pats, mode, o["i"], o["w"], o["x"])
    except RegexError as e:
        err(inv, str(e))
        return 2
    recursive = o["r"] or o["R"]
    files = ops or (["."] if recursive else ["-"])
    with_name = o["H"] or (not o["h"] and (len(files) > 1 or recursive))
    if o["h"]:
        with_name = False
    state = {"matched": False, "trouble": False}

    def one(name: str, data: bytes) -> None:
        if mode == "P" and not bytes(data).isascii():
            # PCRE2 in a UTF-8 locale matches code points and calls invalid UTF-8 binary
            raise Defer(f"grep -P over non-ASCII text ({name})")
        _search(inv, rx, name, data, o, with_name, max_count, state)

    for name in files:
        if state["matched"] and o["q"]:
            break
        if name == "-":
            one(label, bytes(inv.stdin))
            continue
        p = apath(inv, name)
        try:
            st = inv.fs.stat(p)
        except OSError as e:
            if not o["s"]:
                err(inv, f"{name}: {errno_text(e)}")
            state["trouble"] = True
            continue
        if _stat.S_ISDIR(st.st_mode):
            if recursive:
                _walk(inv, name, p, o["R"], one, state, o)
                continue
            if not o["s"]:
                err(inv, f"{name}: Is a directory")
            state["trouble"] = True
            continue
        if not _stat.S_ISREG(st.st_mode):
            raise Defer(f"grep reads a special file {name!r}")
        one(name, inv.fs.read_bytes(p))
    if state["matched"] and o["q"]:
        return 0
    if state["trouble"]:
        return 2
    return 0 if state["matched"] else 1


def _walk(inv, display, p, follow, one, state, o) -> None:
    try:
        names = inv.fs.readdir(p)
    except OSError as e:
        if not o["s"]:
            err(inv, f"{display}: {errno_text(e)}")
        state["trouble"] = True
        return
    for n in names:  # fts order: the directory's own order
        cd = display + n if display.endswith("/") else display + "/" + n
        cp = p.rstrip("/") + "/" + n
        try:
            st = inv.fs.lstat(cp)
            if _stat.S_ISLNK(st.st_mode):
                if not follow:
                    continue
                st = inv.fs.stat(cp)
        except OSError as e:
            if not o["s"]:
                err(inv, f"{cd}: {errno_text(e)}")
            state["trouble"] = True
            continue
        if _stat.S_ISDIR(st.st_mode):
            _walk(inv, cd, cp, follow, one, state, o)
        elif _stat.S_ISREG(st.st_mode):
            one(cd, inv.fs.read_bytes(cp))


def _compile(pats: list[str], mode: str, icase: bool, word: bool, line: bool) -> re.Pattern:
    parts = []
    for p in pats:
        if mode == "F":
            src = re.escape(p)
        elif mode == "P":
            src = perl_pattern(p)
        else:
            src = compile_posix(p, mode == "E", icase).pattern
        parts.append(src)
    src = "|".join(f"(?:{s})" for s in parts) if len(parts) > 1 else parts[0]
    if line:
        src = f"^(?:{src})\\Z"
    elif word:
        src = f"(?<![A-Za-z0-9_])(?:{src})(?![A-Za-z0-9_])"
    try:
        return re.compile(src, re.ASCII | re.DOTALL | (re.IGNORECASE if icase else 0))
    except re.error as e:
        raise RegexError(str(e)) from None


_PERL_ESCAPES = set("dDwWsSbB")
_PERL_LITERAL = set(" !\"#%&',-/:;<=>@_`~]}")


def perl_pattern(p: str) -> str:
    r"""A ``grep -P`` pattern as Python ``re`` source, if it is in the subset where PCRE2 (no
    UCP, as grep 3.8 builds it) and Python's ``re.ASCII`` mean the same: literals, ``.``,
    ``^ $``, groups ``( )`` without ``?``, ``|``, ``* + ?`` (and lazy ``*? +? ??``), simple
    bracket classes, and the escapes ``\d \w \s \b`` (and capitals) or an escaped
    punctuation character. Anything else defers; so does a pattern Python rejects, since
    PCRE2's error messages are not modelled."""
    i, n = 0, len(p)
    prev_atom = False  # may a quantifier follow?
    while i < n:
        c = p[i]
        if not (" " <= c <= "~"):
            raise Defer(f"grep -P: pattern {p!r} holds a non-ASCII or control character")
        if c == "\\":
            e = p[i + 1:i + 2]
            if not e or not (e in _PERL_ESCAPES or (e.isascii() and not e.isalnum() and e >= " ")):
                raise Defer(f"grep -P: escape \\{e} in {p!r} is not modelled")
            prev_atom = e not in "bB"
            i += 2
            continue
        if c == "[":
            j = i + 1
            if p[j:j + 1] == "^":
                j += 1
            if p[j:j + 1] == "]":
                j += 1
            k = p.find("]", j)
            body = p[i + 1:k] if k > 0 else ""
            if k < 0 or any(x in body for x in ("[", "\\", "&&", "||", "~~", "--")):
                raise Defer(f"grep -P: bracket expression in {p!r} is not modelled")
            prev_atom = True
            i = k + 1
            continue
        if c in "*+?":
            if not prev_atom:
                raise Defer(f"grep -P: quantifier in {p!r} is not modelled")
            i += 1
            if p[i:i + 1] == "?":
                i += 1  # lazy: the same in both
            prev_atom = False
            continue
        if c == "(":
            if p[i + 1:i + 2] == "?":
                raise Defer(f"grep -P: (? group in {p!r} is not modelled")
            prev_atom = False
        elif c in "^$|":
            prev_atom = False
        elif c == ")" or c == "." or c.isalnum() or c in _PERL_LITERAL:
            prev_atom = True
        else:
            raise Defer(f"grep -P: {c!r} in {p!r} is not modelled")
        i += 1
    try:
        re.compile(p, re.ASCII)
    except re.error as e:
        raise Defer(f"grep -P: {p!r} does not compile ({e}); PCRE2's message is not modelled") from None
    return p


def _search(inv, rx, name, data: bytes, o, with_name, max_count, state) -> None:
    sep = b"\0" if o["z"] else b"\n"
    text = data.decode("latin-1")
    lines = text.split(sep.decode())
    if lines and lines[-1] == "":
        lines.pop()
    binary = not o["a"] and not o["z"] and "\0" in text
    count = 0
    prefix = f"{name}:" if with_name else ""
    out = []
    for i, line in enumerate(lines, 1):
        if max_count is not None and count >= max_count:
            break
        hit = rx.search(line) is not None
        if hit == o["v"]:
            continue
        count += 1
        if o["q"] or o["l"] or o["L"] or o["c"] or binary:
            continue
        pre = prefix + (f"{i}:" if o["n"] else "")
        if o["o"]:
            if not o["v"]:
                for m in rx.finditer(line):
                    if m.group(0):
                        out.append(pre + m.group(0) + sep.decode())
            continue
        out.append(pre + line + sep.decode())
    if count:
        state["matched"] = True
    if o["q"]:
        return
    if o["l"]:
        if count:
            inv.out(name.encode("latin-1", "replace") + b"\n")
        return
    if o["L"]:
        if not count:
            inv.out(name.encode("latin-1", "replace") + b"\n")
        return
    if o["c"]:
        inv.out(f"{prefix}{count}\n".encode("latin-1"))
        return
    if binary:
        if count:  # grep >= 3.5 says so on stderr
            err(inv, f"{name}: binary file matches")
        return
    inv.out("".join(out).encode("latin-1"))
