"""Shell arithmetic ``$(( ))`` (XCU 2.6.4): C integer expressions on signed 64-bit values.

dash evaluates with ``intmax_t``; results wrap like two's-complement 64-bit integers. The
grammar (precedence climbing, C's table) supports every operator POSIX lists, including the
assignment operators, ``?:`` with short-circuit evaluation, and bash's ``++``/``--``. A
variable's value must itself be a number (decimal, octal ``0..``, hex ``0x..``); an unset or
empty variable is 0. Errors are :class:`ArithError` with dash's wording.
"""

from __future__ import annotations

import re
from typing import Callable

_MASK = (1 << 64) - 1
_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|[0-9]+[A-Za-z0-9_]*)|([A-Za-z_][A-Za-z_0-9]*)|"
    r"(<<=|>>=|\+\+|--|\*\*|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&^|]=|[-+*/%<>=!~&^|?:()]))"
)
_BINARY = {  # operator -> precedence (higher binds tighter), C's table
    "*": 11, "/": 11, "%": 11, "+": 10, "-": 10, "<<": 9, ">>": 9,
    "<": 8, "<=": 8, ">": 8, ">=": 8, "==": 7, "!=": 7, "&": 6, "^": 5, "|": 4,
    "&&": 3, "||": 2,
}
_ASSIGN = {"=", "*=", "/=", "%=", "+=", "-=", "<<=", ">>=", "&=", "^=", "|="}


class ArithError(Exception):
    """An arithmetic error; ``str()`` is dash's message after ``sh: LINE: ``."""


def wrap(v: int) -> int:
    """Reduce to a signed 64-bit value."""
    v &= _MASK
    return v - (1 << 64) if v >> 63 else v


def parse_number(text: str) -> int | None:
    """A C integer constant (decimal, octal, hex) as dash's ``strtoimax`` base 0 reads it."""
    t = text.strip()
    neg = False
    if t[:1] in "+-":
        neg = t[0] == "-"
        t = t[1:]
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
            v = int(t, 16)
        elif re.fullmatch(r"0[0-7]*", t):
            v = int(t, 8)
        elif re.fullmatch(r"[1-9][0-9]*", t):
            v = int(t)
        else:
            return None
    except ValueError:
        return None
    return wrap(-v if neg else v)


class _Eval:
    def __init__(self, text: str, get: Callable[[str], str | None], set_: Callable[[str, str], None]):
        self.text = text
        self.get = get
        self.set = set_
        self.toks: list[tuple[str, str]] = []
        pos = 0
        while True:
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip():
                    raise ArithError(f'arithmetic expression: expecting EOF: "{text}"')
                break
            pos = m.end()
            if m.group(1):
                self.toks.append(("num", m.group(1)))
            elif m.group(2):
                self.toks.append(("name", m.group(2)))
            else:
                self.toks.append(("op", m.group(3)))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def err(self, what: str) -> ArithError:
        return ArithError(f'arithmetic expression: {what}: "{self.text}"')

    def var(self, name: str) -> int:
        v = self.get(name)
        if v is None or v == "":
            return 0
        n = parse_number(v)
        if n is None:
            raise ArithError(f"Illegal number: {v}")
        return n

    def run(self) -> int:
        if not self.toks:
            return 0
        v = self.assign(True)
        if self.peek() is not None:
            raise self.err("expecting EOF")
        return v

    def assign(self, live: bool) -> int:
        t = self.peek()
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if t and t[0] == "name" and nxt and nxt[0] == "op" and nxt[1] in _ASSIGN:
            self.i += 2
            rhs = self.assign(live)
            if nxt[1] != "=":
                rhs = self.binop(nxt[1][:-1], self.var(t[1]) if live else 0, rhs, live)
            if live:
                self.set(t[1], str(rhs))
            return rhs
        return self.ternary(live)

    def ternary(self, live: bool) -> int:
        c = self.binary(0, live)
        t = self.peek()
        if t == ("op", "?"):
            self.i += 1
            a = self.assign(live and c != 0)
            if self.peek() != ("op", ":"):
                raise self.err("expecting ':'")
            self.i += 1
            b = self.ternary(live and c == 0)
            return a if c != 0 else b
        return c

    def binary(self, minprec: int, live: bool) -> int:
        left = self.unary(live)
        while True:
            t = self.peek()
            if not t or t[0] != "op" or t[1] not in _BINARY or _BINARY[t[1]] <= minprec:
                return left
            op = t[1]
            self.i += 1
            if op == "&&":
                right = self.binary(_BINARY[op], live and left != 0)
                left = int(left != 0 and right != 0)
            elif op == "||":
                right = self.binary(_BINARY[op], live and left == 0)
                left = int(left != 0 or right != 0)
            else:
                right = self.binary(_BINARY[op], live)
                left = self.binop(op, left, right, live)

    def binop(self, op: str, a: int, b: int, live: bool) -> int:
        if op in ("/", "%"):
            if b == 0:
                if not live:
                    return 0
                raise ArithError("arithmetic expression: division by zero: \"%s\"" % self.text)
            q = abs(a) // abs(b)
            q = q if (a >= 0) == (b >= 0) else -q  # C truncates toward zero
            return wrap(q) if op == "/" else wrap(a - q * b)
        if op == "<<":
            return wrap(a << (b & 63))
        if op == ">>":
            return a >> (b & 63)
        return wrap({
            "*": lambda: a * b, "+": lambda: a + b, "-": lambda: a - b,
            "<": lambda: int(a < b), "<=": lambda: int(a <= b), ">": lambda: int(a > b),
            ">=": lambda: int(a >= b), "==": lambda: int(a == b), "!=": lambda: int(a != b),
            "&": lambda: a & b, "^": lambda: a ^ b, "|": lambda: a | b,
        }[op]())

    def unary(self, live: bool) -> int:
        t = self.peek()
        if t is None:
            raise self.err("expecting primary")
        if t[0] == "op" and t[1] in ("+", "-", "!", "~"):
            self.i += 1
            v = self.unary(live)
            return {"+": v, "-": wrap(-v), "!": int(v == 0), "~": wrap(~v)}[t[1]]
        if t[0] == "op" and t[1] in ("++", "--"):
            self.i += 1
            n = self.next_name()
            v = wrap(self.var(n) + (1 if t[1] == "++" else -1)) if live else 0
            if live:
                self.set(n, str(v))
            return v
        return self.postfix(live)

    def next_name(self) -> str:
        t = self.peek()
        if not t or t[0] != "name":
            raise self.err("expecting primary")
        self.i += 1
        return t[1]

    def postfix(self, live: bool) -> int:
        t = self.peek()
        self.i += 1
        if t[0] == "num":
            v = parse_number(t[1])
            if v is None:
                raise ArithError(f"Illegal number: {t[1]}" if False else f'arithmetic expression: expecting primary: "{self.text}"')
            return v
        if t[0] == "name":
            nt = self.peek()
            if nt in (("op", "++"), ("op", "--")):
                self.i += 1
                v = self.var(t[1]) if live else 0
                if live:
                    self.set(t[1], str(wrap(v + (1 if nt[1] == "++" else -1))))
                return v
            return self.var(t[1]) if live else 0
        if t == ("op", "("):
            v = self.assign(live)
            if self.peek() != ("op", ")"):
                raise self.err("expecting ')'")
            self.i += 1
            return v
        raise self.err("expecting primary")


def evaluate(text: str, get: Callable[[str], str | None], set_: Callable[[str, str], None]) -> int:
    """Evaluate an (already expanded) arithmetic expression; ``get``/``set_`` access variables."""
    return _Eval(text, get, set_).run()
