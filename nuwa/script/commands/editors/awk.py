"""A model of awk (Debian 12's default, mawk 1.3.4) for the one-liners maintainer scripts use.

The subset: ``-F SEP``, ``-v var=value``, program text (no ``-f``); items ``BEGIN``, ``END``,
``pattern``, ``pattern { action }`` with patterns that are expressions or ``/regex/``;
statements ``print``, ``printf``, ``if``/``else``, ``next``, ``exit``, assignments and
``++``/``--`` (assigning ``NF`` truncates or pads the record); expressions with fields
(``$N``, ``$NF``), ``NR NF FS OFS ORS RS FILENAME``, user variables, string/number literals,
concatenation, arithmetic, comparisons, ``~ !~``, ``&& || !``, ``? :`` and the functions
``length substr index tolower toupper int sprintf sub gsub``.
Anything else (loops, arrays, user functions, getline, redirections, ``system``...) raises
Defer: the script is run at first boot instead of guessed at. Regexes are POSIX EREs through
:mod:`nuwa.script.commands._regex`.
"""

from __future__ import annotations

import re

from nuwa.script.commands._common import apath, err, errno_text
from nuwa.script.commands._regex import RegexError, compile_posix
from nuwa.script.context import Defer, Invocation

_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+|\\\n|\#[^\n]*)
  | (?P<nl>[\n;])
  | (?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\+\+|--|\+=|-=|\*=|/=|%=|==|!=|<=|>=|&&|\|\||!~|[-+*/%<>=!~?:(){},$])
""", re.X)

_UNSUPPORTED = {"for", "while", "do", "function", "func", "getline", "delete", "in", "system", "split",
                "match", "close", "fflush", "srand", "rand", "break", "continue", "return",
                "nextfile", "printf_", "sin", "cos", "atan2", "exp", "log", "sqrt"}


class _Next(Exception):
    pass


class _Exit(Exception):
    def __init__(self, status: int):
        self.status = status


def _tokens(src: str) -> list[tuple[str, str]]:
    out, i = [], 0
    prev = None
    while i < len(src):
        # '/' starts a regex where an operand is expected, else it divides
        if src[i] == "/" and (prev is None or prev[0] == "nl" or (prev[0] == "op" and prev[1] != ")")):
            j = i + 1
            while j < len(src) and src[j] != "/":
                j += 2 if src[j] == "\\" else 1
                if j <= len(src) and src[j - 1] == "\n":
                    raise Defer("awk: newline in regex")
            if j >= len(src):
                raise Defer("awk: unterminated regex")
            tok = ("re", src[i + 1:j].replace("\\/", "/"))
            out.append(tok)
            prev = tok
            i = j + 1
            continue
        m = _TOKEN.match(src, i)
        if not m:
            raise Defer(f"awk: cannot parse {src[i:i + 10]!r}")
        i = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        tok = (kind, m.group(0))
        if kind == "name" and tok[1] in _UNSUPPORTED or (kind == "op" and tok[1] in ("[", "]")):
            raise Defer(f"awk: {tok[1]} is outside the modelled subset")
        out.append(tok)
        prev = tok
    return out


class _Parser:
    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else ("eof", "")

    def take(self, val=None):
        tok = self.peek()
        if val is not None and tok[1] != val:
            raise Defer(f"awk: expected {val!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def skip_nl(self):
        while self.peek()[0] == "nl":
            self.i += 1

    def program(self):
        items = []
        self.skip_nl()
        while self.peek()[0] != "eof":
            if self.peek()[1] in ("BEGIN", "END"):
                kind = self.take()[1]
                self.skip_nl()
                items.append((kind, None, self.block()))
            else:
                pat = None if self.peek()[1] == "{" else self.expr()
                if self.peek()[1] == ",":
                    raise Defer("awk range patterns")
                act = self.block() if self.peek()[1] == "{" else None
                items.append(("main", pat, act))
            self.skip_nl()
        return items

    def block(self):
        self.take("{")
        stmts = []
        self.skip_nl()
        while self.peek()[1] != "}":
            if self.peek()[0] == "eof":
                raise Defer("awk: unterminated block")
            stmts.append(self.stmt())
            self.skip_nl()
        self.take("}")
        return stmts

    def stmt(self):
        v = self.peek()[1]
        if v == "{":
            return ("block", self.block())
        if v in ("print", "printf"):
            self.take()
            args = []
            paren = self.peek()[1] == "(" and self._paren_list()
            if paren:
                self.take("(")
                args = self.exprlist(")")
                self.take(")")
            elif self.peek()[0] not in ("nl", "eof") and self.peek()[1] != "}":
                args = self.exprlist(None)
            if self.peek()[1] in (">", "|") or self.peek()[1] == ">>":
                raise Defer("awk output redirection")
            return (v, args)
        if v == "if":
            self.take()
            self.take("(")
            cond = self.expr()
            self.take(")")
            self.skip_nl()
            then = self.stmt()
            save = self.i
            self.skip_nl()
            if self.peek()[1] == "else":
                self.take()
                self.skip_nl()
                return ("if", cond, then, self.stmt())
            self.i = save
            return ("if", cond, then, None)
        if v == "next":
            self.take()
            return ("next",)
        if v == "exit":
            self.take()
            code = None if self.peek()[0] in ("nl", "eof") or self.peek()[1] == "}" else self.expr()
            return ("exit", code)
        return ("expr", self.expr())

    def _paren_list(self) -> bool:
        depth, j = 0, self.i
        while j < len(self.t):
            v = self.t[j][1]
            if v == "(":
                depth += 1
            elif v == ")":
                depth -= 1
                if depth == 0:
                    nxt = self.t[j + 1] if j + 1 < len(self.t) else ("eof", "")
                    return nxt[0] in ("nl", "eof") or nxt[1] in ("}", ">", "|")
            j += 1
        return False

    def exprlist(self, end):
        out = [self.expr(no_gt=end is None)]
        while self.peek()[1] == ",":
            self.take()
            self.skip_nl()
            out.append(self.expr(no_gt=end is None))
        return out

    def expr(self, no_gt=False):
        return self.ternary(no_gt)

    def ternary(self, no_gt):
        c = self.assign(no_gt)
        if self.peek()[1] == "?":
            self.take()
            a = self.ternary(no_gt)
            self.take(":")
            b = self.ternary(no_gt)
            return ("?", c, a, b)
        return c

    def assign(self, no_gt):
        left = self.or_(no_gt)
        if self.peek()[1] in ("=", "+=", "-=", "*=", "/=", "%=") and left[0] in ("var", "field"):
            op = self.take()[1]
            return ("assign", op, left, self.assign(no_gt))
        return left

    def or_(self, no_gt):
        left = self.and_(no_gt)
        while self.peek()[1] == "||":
            self.take()
            self.skip_nl()
            left = ("||", left, self.and_(no_gt))
        return left

    def and_(self, no_gt):
        left = self.match(no_gt)
        while self.peek()[1] == "&&":
            self.take()
            self.skip_nl()
            left = ("&&", left, self.match(no_gt))
        return left

    def match(self, no_gt):
        left = self.compare(no_gt)
        while self.peek()[1] in ("~", "!~"):
            op = self.take()[1]
            left = (op, left, self.compare(no_gt))
        return left

    def compare(self, no_gt):
        left = self.concat(no_gt)
        ops = ("<", "<=", "==", "!=", ">=") + (() if no_gt else (">",))
        if self.peek()[1] in ops:
            op = self.take()[1]
            left = ("cmp", op, left, self.concat(no_gt))
        return left

    def concat(self, no_gt):
        left = self.additive()
        while True:
            k, v = self.peek()
            if k in ("num", "str", "name", "re") or v in ("$", "(", "!", "++", "--"):
                left = ("cat", left, self.additive())
            else:
                return left

    def additive(self):
        left = self.mult()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left = ("arith", op, left, self.mult())
        return left

    def mult(self):
        left = self.unary()
        while self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            left = ("arith", op, left, self.unary())
        return left

    def unary(self):
        v = self.peek()[1]
        if v == "!":
            self.take()
            return ("!", self.unary())
        if v == "-":
            self.take()
            return ("neg", self.unary())
        if v == "+":
            self.take()
            return ("num+", self.unary())
        return self.postfix()

    def postfix(self):
        v = self.peek()[1]
        if v in ("++", "--"):
            self.take()
            target = self.primary()
            return ("incr", v, target, True)
        p = self.primary()
        if self.peek()[1] in ("++", "--") and p[0] in ("var", "field"):
            return ("incr", self.take()[1], p, False)
        return p

    def primary(self):
        k, v = self.take()
        if k == "num":
            return ("num", float(v))
        if k == "str":
            return ("str", _unescape(v[1:-1]))
        if k == "re":
            return ("re", v)
        if v == "$":
            return ("field", self.primary_for_field())
        if v == "(":
            e = self.expr()
            self.take(")")
            return e
        if k == "name":
            if self.peek()[1] == "(" and v in ("length", "substr", "index", "tolower", "toupper", "int", "sprintf",
                                               "sub", "gsub"):
                self.take("(")
                args = self.exprlist(")") if self.peek()[1] != ")" else []
                self.take(")")
                return ("call", v, args)
            if v == "length":
                return ("call", "length", [])
            if self.peek()[1] == "(":
                raise Defer(f"awk function {v}")
            return ("var", v)
        raise Defer(f"awk: unexpected {v!r}")

    def primary_for_field(self):
        k, v = self.peek()
        if v in ("++", "--", "-"):
            raise Defer("awk: complex field expression")
        return self.primary()


def _unescape(s: str) -> str:
    table = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "/": "/", "a": "\a", "b": "\b", "r": "\r", "f": "\f", "v": "\v"}
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            n = s[i + 1]
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            if m:
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            out.append(table.get(n, "\\" + n))
            i += 2
            continue
        out.append(s[i])
        i += 1
    return "".join(out)


_NUMLIKE = re.compile(r"[ \t\n]*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)[ \t\n]*\Z")


class _StrNum(str):
    """A field or -v value: compares as a number when it looks like one (POSIX strnum)."""


class _Uninit(_StrNum):
    """An unset variable: "" as a string, 0 as a number, and numeric in comparisons."""


_UNINIT = _Uninit("")


def _num(v) -> float:
    if isinstance(v, float):
        return v
    m = re.match(r"[ \t\n]*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))", v)
    return float(m.group(1)) if m else 0.0


def _str(v, convfmt: str = "%.6g") -> str:
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e16:
            return str(int(v))
        return convfmt % v
    return v


class _Awk:
    def __init__(self, inv: Invocation, items, fs: str, variables: dict):
        self.inv = inv
        self.items = items
        self.vars = {"FS": fs, "OFS": " ", "ORS": "\n", "NR": 0.0, "NF": 0.0, "FNR": 0.0, "FILENAME": "",
                     "SUBSEP": "\x1c", "RS": "\n", "OFMT": "%.6g", "CONVFMT": "%.6g"}
        self.vars.update(variables)
        self.fields: list[str] = [""]
        self.res: dict[str, re.Pattern] = {}

    def regex(self, src: str) -> re.Pattern:
        r = self.res.get(src)
        if r is None:
            try:
                r = compile_posix(src, True)
            except RegexError:
                raise Defer(f"awk regex {src!r}") from None
            self.res[src] = r
        return r

    def set_record(self, line: str) -> None:
        fs = _str(self.vars["FS"])
        if fs == " ":
            parts = line.split()
        elif len(fs) == 1 and fs != "\\":
            parts = line.split(fs) if line else []
        else:
            parts = self.regex(fs).split(line) if line else []
        self.fields = [line] + parts
        self.vars["NF"] = float(len(parts))

    def get_field(self, i: int) -> str:
        if i < 0:
            raise Defer("awk negative field")
        return _StrNum(self.fields[i]) if i < len(self.fields) else _StrNum("")

    def set_field(self, i: int, val: str) -> None:
        if i == 0:
            self.set_record(val)
            return
        while len(self.fields) <= i:
            self.fields.append("")
        self.fields[i] = val
        self.vars["NF"] = float(len(self.fields) - 1)
        self.fields[0] = _str(self.vars["OFS"]).join(self.fields[1:])

    def set_nf(self, n: int) -> None:
        """Assigning NF truncates or pads the fields and rebuilds $0 with OFS (POSIX awk)."""
        if n < 0:
            raise Defer("awk: negative NF")
        fields = (self.fields[1:] + [""] * n)[:n]
        self.fields = [_str(self.vars["OFS"]).join(fields)] + fields
        self.vars["NF"] = float(n)

    def substitute(self, global_: bool, args) -> float:
        """``sub``/``gsub(ERE, REPL [, LVALUE])``: returns the number of replacements.

        ``&`` in REPL is the matched text, ``\\&`` a literal ``&``; an empty match is
        replaced only where it does not touch the end of the previous match (mawk's rule:
        ``gsub(/x*/, "-", "abxd")`` gives ``-a-b-d-``).
        """
        if len(args) not in (2, 3):
            raise Defer("awk: sub/gsub argument count")
        target = args[2] if len(args) == 3 else ("field", ("num", 0.0))
        if target[0] not in ("var", "field"):
            raise Defer("awk: sub/gsub on a non-lvalue")
        r = self.regex(args[0][1] if args[0][0] == "re" else _str(self.ev(args[0])))
        repl = _str(self.ev(args[1]))
        text = _str(self.ev(target))
        out, pos, count, last_end = [], 0, 0, -1
        while pos <= len(text):
            m = r.search(text, pos)
            if m is None:
                break
            if m.start() == m.end() and m.start() == last_end:
                # an empty match right after the previous match: skip one character
                if m.start() < len(text):
                    out.append(text[pos:m.start() + 1])
                pos = m.start() + 1
                if pos > len(text):
                    break
                continue
            out.append(text[pos:m.start()])
            out.append(_repl(repl, m.group(0)))
            count += 1
            last_end = m.end()
            if m.end() == m.start():
                if m.start() < len(text):
                    out.append(text[m.start()])
                pos = m.start() + 1
            else:
                pos = m.end()
            if not global_:
                break
        if count == 0:
            return 0.0
        out.append(text[pos:])
        self._store(target, "".join(out))
        return float(count)

    def ev(self, e):
        k = e[0]
        if k == "num":
            return e[1]
        if k == "str":
            return e[1]
        if k == "re":
            return 1.0 if self.regex(e[1]).search(self.fields[0]) else 0.0
        if k == "field":
            return self.get_field(int(_num(self.ev(e[1]))))
        if k == "var":
            return self.vars.get(e[1], _UNINIT)
        if k == "cat":
            return _str(self.ev(e[1])) + _str(self.ev(e[2]))
        if k == "arith":
            a, b = _num(self.ev(e[2])), _num(self.ev(e[3]))
            if e[1] == "+":
                return a + b
            if e[1] == "-":
                return a - b
            if e[1] == "*":
                return a * b
            if b == 0:
                raise Defer("awk division by zero")
            return a / b if e[1] == "/" else float(a - b * int(a / b))
        if k == "neg":
            return -_num(self.ev(e[1]))
        if k == "num+":
            return _num(self.ev(e[1]))
        if k == "!":
            return 0.0 if self._true(self.ev(e[1])) else 1.0
        if k == "&&":
            return 1.0 if self._true(self.ev(e[1])) and self._true(self.ev(e[2])) else 0.0
        if k == "||":
            return 1.0 if self._true(self.ev(e[1])) or self._true(self.ev(e[2])) else 0.0
        if k in ("~", "!~"):
            s = _str(self.ev(e[1]))
            r = e[2][1] if e[2][0] == "re" else _str(self.ev(e[2]))
            hit = self.regex(r).search(s) is not None
            return 1.0 if hit == (k == "~") else 0.0
        if k == "cmp":
            a, b = self.ev(e[2]), self.ev(e[3])
            if self._numeric(a) and self._numeric(b):
                x, y = _num(a), _num(b)
            else:
                x, y = _str(a), _str(b)
            return 1.0 if {"<": x < y, "<=": x <= y, "==": x == y, "!=": x != y, ">=": x >= y, ">": x > y}[e[1]] else 0.0
        if k == "?":
            return self.ev(e[2]) if self._true(self.ev(e[1])) else self.ev(e[3])
        if k == "assign":
            op, target, val = e[1], e[2], self.ev(e[3])
            if op != "=":
                val = self.ev(("arith", op[0], target, ("num", _num(val))))
            self._store(target, val)
            return val
        if k == "incr":
            old = _num(self.ev(e[2]))
            new = old + (1 if e[1] == "++" else -1)
            self._store(e[2], new)
            return new if e[3] else old
        if k == "call":
            if e[1] in ("sub", "gsub"):
                return self.substitute(e[1] == "gsub", e[2])
            return self.call(e[1], [self.ev(a) for a in e[2]])
        raise Defer(f"awk expression {k}")

    def _store(self, target, val) -> None:
        if target[0] == "var":
            if target[1] == "NF":
                self.set_nf(int(_num(val)))
                return
            self.vars[target[1]] = val
        else:
            self.set_field(int(_num(self.ev(target[1]))), _str(val))

    def _numeric(self, v) -> bool:
        return isinstance(v, (float, _Uninit)) or (isinstance(v, _StrNum) and bool(_NUMLIKE.match(v)))

    def _true(self, v) -> bool:
        if isinstance(v, float):
            return v != 0
        if isinstance(v, _StrNum) and _NUMLIKE.match(v):
            return _num(v) != 0
        return v != ""

    def call(self, name: str, args: list):
        if name == "length":
            return float(len(_str(args[0]) if args else self.fields[0]))
        if name == "tolower":
            return _str(args[0]).lower()
        if name == "toupper":
            return _str(args[0]).upper()
        if name == "int":
            return float(int(_num(args[0])))
        if name == "sprintf":
            if not args:
                raise Defer("awk: sprintf without a format")
            return _printf(_str(args[0]), args[1:])
        if name == "index":
            return float(_str(args[0]).find(_str(args[1])) + 1)
        if name == "substr":
            s = _str(args[0])
            start = _round(_num(args[1]))
            if len(args) > 2:
                length = _round(_num(args[2]))
                end = start + length
            else:
                end = len(s) + 1
            start = max(start, 1)
            end = min(end, len(s) + 1)
            return s[start - 1:end - 1] if end > start else ""
        raise Defer(f"awk function {name}")

    def run_stmts(self, stmts) -> None:
        for s in stmts:
            self.run_stmt(s)

    def run_stmt(self, s) -> None:
        k = s[0]
        if k == "block":
            self.run_stmts(s[1])
        elif k == "print":
            vals = [self.ev(a) for a in s[1]] if s[1] else [self.fields[0]]
            ofmt = _str(self.vars["OFMT"])
            text = _str(self.vars["OFS"]).join(_str(v, ofmt) for v in vals) + _str(self.vars["ORS"])
            self.inv.out(text.encode("latin-1", "replace"))
        elif k == "printf":
            if not s[1]:
                raise Defer("awk printf without a format")
            vals = [self.ev(a) for a in s[1]]
            self.inv.out(_printf(_str(vals[0]), vals[1:]).encode("latin-1", "replace"))
        elif k == "if":
            if self._true(self.ev(s[1])):
                self.run_stmt(s[2])
            elif s[3] is not None:
                self.run_stmt(s[3])
        elif k == "next":
            raise _Next()
        elif k == "exit":
            raise _Exit(int(_num(self.ev(s[1]))) if s[1] is not None else 0)
        else:
            self.ev(s[1])


def _repl(repl: str, matched: str) -> str:
    out, i = [], 0
    while i < len(repl):
        c = repl[i]
        if c == "\\" and i + 1 < len(repl) and repl[i + 1] in "&\\":
            out.append(repl[i + 1])
            i += 2
            continue
        out.append(matched if c == "&" else c)
        i += 1
    return "".join(out)


def _round(x: float) -> int:
    # mawk rounds substr() positions to the nearest integer, halves to even (d_to_I of rint)
    return int(round(x))


def _printf(fmt: str, vals: list) -> str:
    out, i, vi = [], 0, 0
    for m in re.finditer(r"%(?P<flags>[-+ #0]*)(?P<w>\*|\d+)?(?:\.(?P<p>\*|\d+))?(?P<c>[diouxXeEfgGcs%])|%", fmt):
        out.append(fmt[i:m.start()])
        i = m.end()
        c = m.group("c")
        if c is None:
            raise Defer("awk printf: bad format")
        if c == "%":
            out.append("%")
            continue
        if m.group("w") == "*" or m.group("p") == "*":
            raise Defer("awk printf *")
        v = vals[vi] if vi < len(vals) else ""
        vi += 1
        spec = "%" + (m.group("flags") or "") + (m.group("w") or "") + (("." + m.group("p")) if m.group("p") else "")
        if c in "diouxX":
            n = int(_num(v))
            out.append((spec + ("d" if c == "i" else c)) % n)
        elif c in "eEfgG":
            out.append((spec + c) % _num(v))
        elif c == "c":
            out.append((spec + "s") % (chr(int(v)) if isinstance(v, float) else _str(v)[:1]))
        else:
            out.append((spec + "s") % _str(v))
    out.append(fmt[i:])
    return "".join(out)


def awk(inv: Invocation) -> int:
    """``awk [-F SEP] [-v VAR=VAL]... 'PROGRAM' [FILE...]`` (the subset in the module doc)."""
    argv = list(inv.argv[1:])
    fs = " "
    variables: dict[str, object] = {}
    while argv and argv[0].startswith("-") and argv[0] != "-":
        a = argv.pop(0)
        if a == "--":
            break
        if a.startswith("-F"):
            val = a[2:] or (argv.pop(0) if argv else None)
            if val is None:
                raise Defer("awk -F without a value")
            fs = "\t" if val == "t" else _unescape(val)
        elif a.startswith("-v"):
            val = a[2:] or (argv.pop(0) if argv else "")
            name, eq, value = val.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise Defer("awk -v form")
            variables[name] = _StrNum(_unescape(value))
        else:
            raise Defer(f"awk option {a} is not modelled")
    if not argv:
        raise Defer("awk without a program prints its usage")
    src = argv.pop(0)
    items = _Parser(_tokens(src)).program()
    files = []
    for a in argv:
        if re.fullmatch(r"[A-Za-z_]\w*=.*", a, re.S):
            raise Defer("awk command-line assignments")
        files.append(a)
    machine = _Awk(inv, items, fs, variables)
    status = 0
    try:
        for kind, _pat, act in items:
            if kind == "BEGIN":
                machine.run_stmts(act)
        mains = [(p, a) for k, p, a in items if k == "main"]
        if mains or any(k == "END" for k, _, _ in items):
            status = _main_loop(inv, machine, mains, files)
    except _Exit as e:
        status = e.status  # exit in BEGIN or a rule still runs END (POSIX awk)
    try:
        for kind, _pat, act in items:
            if kind == "END":
                machine.run_stmts(act)
    except _Exit as e:
        status = e.status
    return status


def _main_loop(inv: Invocation, machine: _Awk, mains, files: list[str]) -> int:
    for name in files or ["-"]:
        if name == "-":
            data = bytes(inv.stdin)
        else:
            try:
                data = inv.fs.read_bytes(apath(inv, name))
            except OSError as e:
                err(inv, f"cannot open {name} ({errno_text(e)})")
                return 2
        machine.vars["FILENAME"] = name if name != "-" else ""
        machine.vars["FNR"] = 0.0
        lines = data.decode("latin-1").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for line in lines:
            machine.vars["NR"] = _num(machine.vars["NR"]) + 1
            machine.vars["FNR"] = _num(machine.vars["FNR"]) + 1
            machine.set_record(line)
            try:
                for pat, act in mains:
                    if pat is not None and not machine._true(machine.ev(pat)):
                        continue
                    if act is None:
                        machine.run_stmt(("print", []))
                    else:
                        machine.run_stmts(act)
            except _Next:
                continue
    return 0
