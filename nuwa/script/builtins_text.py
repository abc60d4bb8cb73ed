"""dash's text builtins: ``echo`` (escapes always on, only ``-n``), ``printf`` (format
reuse, ``%b``, ``\\c``, numeric arguments with ``'c`` constants) and ``read`` (IFS
splitting, backslash processing unless ``-r``, the last name keeps the rest).

Registered by :mod:`nuwa.script.builtins`; each is ``f(sh, argv) -> status``.
"""

from __future__ import annotations

import functools
import re

from nuwa.script.arith import parse_number


def _byte(value: int) -> str:
    """One output byte as a str char: bytes >= 0x80 as surrogate escapes, so that the
    shell's ``surrogateescape`` encoding writes exactly that byte (``\\377`` is 0xff, as
    in dash, not the UTF-8 of U+00FF)."""
    value &= 0xFF
    return chr(value) if value < 0x80 else chr(0xDC00 + value)

def b_echo(sh, argv):
    args = argv[1:]
    nl = True
    if args and args[0] == "-n":
        nl = False
        args = args[1:]
    out = []
    for i, a in enumerate(args):
        text, stop = _escapes(a, echo=True)
        out.append(text)
        if stop:
            sh.write(1, " ".join(out))
            return 0
    sh.write(1, " ".join(out) + ("\n" if nl else ""))
    return 0


def _escapes(s: str, echo: bool) -> tuple[str, bool]:
    """Backslash escapes of dash's echo and printf %b; returns (text, stop-at-\\c)."""
    if "\\" not in s:
        return s, False
    out = []
    i, n = 0, len(s)
    table = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = s[i + 1]
        if d == "c":
            return "".join(out), True
        if d in table:
            out.append(table[d])
            i += 2
        elif d == "0":
            m = re.match(r"[0-7]{0,3}", s[i + 2 :])
            out.append(_byte(int(m.group() or "0", 8)))
            i += 2 + len(m.group())
        elif not echo and d in "1234567":
            m = re.match(r"[0-7]{1,3}", s[i + 1 :])
            out.append(_byte(int(m.group(), 8)))
            i += 1 + len(m.group())
        else:
            out.append("\\" + d)
            i += 2
    return "".join(out), False


def b_printf(sh, argv):
    if len(argv) < 2:
        sh.error("printf: usage: printf format [arg ...]")
        return 2
    fmt = argv[1]
    args = argv[2:]
    if fmt == "--" and args:
        fmt, args = args[0], args[1:]
    out: list[str] = []
    state = {"st": 0, "i": 0}
    total = [0]

    def nxt() -> str | None:
        if state["i"] < len(args):
            state["i"] += 1
            return args[state["i"] - 1]
        return None

    def number(a: str | None, conv) -> int | float:
        if a is None or a == "":
            return 0
        if a[0] in "'\"":
            return ord(a[1]) if len(a) > 1 else 0
        try:
            if conv is float:
                return float(a)
            v = parse_number(a)
            if v is None:
                m = re.match(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)", a)
                v = parse_number(m.group()) if m else 0
                sh.error(f"printf: {a}: {'expected numeric value' if not m else 'not completely converted'}")
                state["st"] = 1
            return v
        except ValueError:
            sh.error(f"printf: {a}: expected numeric value")
            state["st"] = 1
            return 0

    spec = re.compile(r"%([-+ #0]*)(\*|[0-9]*)(?:\.(\*|[0-9]*))?([a-zA-Z%])")
    while True:
        used_before = state["i"]
        i = 0
        while i < len(fmt):
            c = fmt[i]
            if c == "\\":
                j = i + 1
                if j < len(fmt) and fmt[j] == "c":
                    sh.write(1, "".join(out))
                    return state["st"]
                m = re.match(r"\\([0-7]{1,3}|.)", fmt[i:], re.S)
                text, _ = _escapes(m.group(), echo=False) if m else ("\\", False)
                out.append(text)
                i += len(m.group()) if m else 1
                continue
            if c != "%":
                j = fmt.find("%", i)
                k = fmt.find("\\", i)
                ends = [x for x in (j, k) if x >= 0]
                e = min(ends) if ends else len(fmt)
                out.append(fmt[i:e])
                i = e
                continue
            m = spec.match(fmt, i)
            if not m:
                sh.error(f"printf: %{fmt[i + 1 : i + 2]}: invalid directive")
                sh.write(1, "".join(out))
                return 1
            i = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue
            if width == "*":
                width = str(number(nxt(), int))
            if prec == "*":
                prec = str(number(nxt(), int))
            if width and width.lstrip("-").isdigit() and int(width.lstrip("-")) > 1 << 20:
                raise sh.limit("printf field width over 1 MiB")
            if prec and prec.isdigit() and int(prec) > 1 << 20:
                raise sh.limit("printf precision over 1 MiB")
            a = nxt()
            pyspec = "%" + flags + (width or "") + (("." + prec) if prec is not None else "")
            if conv == "s":
                out.append((pyspec + "s") % (a or ""))
            elif conv == "b":
                text, stop = _escapes(a or "", echo=False)
                out.append(_pad(flags, width, prec, text))
                if stop:
                    sh.write(1, "".join(out))
                    return state["st"]
            elif conv == "c":
                out.append(_pad(flags, width, None, (a or "")[:1]))
            elif conv in "diouxX":
                v = number(a, int)
                if conv in "ouxX" and v < 0:
                    v += 1 << 64
                out.append((pyspec + conv.replace("i", "d").replace("u", "d")) % v)
            elif conv in "eEfFgGaA":
                out.append((pyspec + conv) % float(number(a, float)))
            else:
                sh.error(f"printf: %{conv}: invalid directive")
                sh.write(1, "".join(out))
                return 1
            total[0] += len(out[-1])
            if total[0] > (16 << 20):
                raise sh.limit("printf output over 16 MiB")
        if state["i"] >= len(args) or state["i"] == used_before:
            break
    sh.write(1, "".join(out))
    return state["st"]


def _pad(flags: str, width: str | None, prec: str | None, text: str) -> str:
    if prec:
        text = text[: int(prec)]
    w = int(width) if width else 0
    return text.ljust(w) if "-" in flags else text.rjust(w)


def b_read(sh, argv):
    args = argv[1:]
    raw = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        opt = args.pop(0)
        if opt == "--":
            break
        if opt == "-r":
            raw = True
        elif opt == "-p":
            if args:
                args.pop(0)  # dash prompts only when stdin is a terminal: never here
        else:
            sh.error(f"read: Illegal option {opt}")
            return 2
    if not args:
        sh.error("read: arg count")
        return 2
    d = sh.fds.get(0)
    data = []
    eof = True
    while d is not None:
        try:
            line = d.readline()
        except OSError:  # dash's read: a failed read(2) (`read x < /`: EISDIR) ends it, status 1, no message
            break
        if not line:
            break
        text = line.decode("utf-8", "surrogateescape")
        if text.endswith("\n"):
            text = text[:-1]
            if not raw and len(text) - len(text.rstrip("\\")) % 2 == 1 and text.endswith("\\"):
                pass
            if not raw and _odd_backslash(text):
                data.append(text[:-1])
                continue
            data.append(text)
            eof = False
            break
        data.append(text)
        break
    line = "".join(data)
    ifs = sh.getvar("IFS")
    if ifs is None:
        ifs = " \t\n"
    fields = _read_split(line, ifs, len(args), raw)
    for i, name in enumerate(args):
        sh.setvar_or_die(name, fields[i] if i < len(fields) else "")
    return 1 if eof else 0


@functools.lru_cache(maxsize=8)
def _ws_splitter(ifs: str) -> re.Pattern:
    return re.compile("[" + re.escape(ifs) + "]+")


def _odd_backslash(text: str) -> bool:
    n = len(text) - len(text.rstrip("\\"))
    return n % 2 == 1


def _read_split(line: str, ifs: str, n: int, raw: bool) -> list[str]:
    """Split a line read by ``read`` into at most ``n`` fields (the last keeps the rest)."""
    if ifs and (raw or "\\" not in line) and not ifs.strip(" \t\n"):
        # the usual case: whitespace separators and nothing escaped; runs of them separate
        # fields, and the ends are trimmed (an empty list: every name gets "")
        line = line.strip(ifs)
        return _ws_splitter(ifs).split(line, n - 1) if line and n > 1 else ([line] if line else [])
    return read_split_chars(line, ifs, n, raw)


def read_split_chars(line: str, ifs: str, n: int, raw: bool) -> list[str]:
    """:func:`_read_split` character by character: any IFS, backslash escapes."""
    ws = "".join(c for c in ifs if c in " \t\n")
    # backslash removal (not with -r): the escaped character is literal, never a separator
    chars: list[tuple[str, bool]] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and not raw and i + 1 < len(line):
            chars.append((line[i + 1], True))
            i += 2
            continue
        if c == "\\" and not raw:
            i += 1
            continue
        chars.append((c, False))
        i += 1
    fields: list[str] = []
    i = 0
    m = len(chars)
    while i < m and chars[i][0] in ws and not chars[i][1]:
        i += 1
    while i < m:
        if len(fields) == n - 1:
            rest = chars[i:]
            while rest and rest[-1][0] in ws and not rest[-1][1]:
                rest.pop()
            fields.append("".join(c for c, _ in rest))
            return fields
        cur = []
        while i < m and not (chars[i][0] in ifs and not chars[i][1]):
            cur.append(chars[i][0])
            i += 1
        fields.append("".join(cur))
        # skip one separator with surrounding whitespace
        while i < m and chars[i][0] in ws and not chars[i][1]:
            i += 1
        if i < m and chars[i][0] in ifs and chars[i][0] not in ws and not chars[i][1]:
            i += 1
            while i < m and chars[i][0] in ws and not chars[i][1]:
                i += 1
    return fields
