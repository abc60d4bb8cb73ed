"""The awk model's lexer and parser: program text to a tree of tuples (see :mod:`awk`).

Expressions are tuples whose first item names the form: ``num str re var field elem``
(``a[i, j]``), ``cat arith neg num+ ! && || ~ !~ cmp ? assign incr call`` (a builtin)
``ucall`` (a user function) and ``in``. Statements: ``block print printf if next exit expr
while do for forin break continue return delete nop``. What the model does not cover
(getline, redirections, ``system``, ``srand``/``rand``, the maths functions) raises
:class:`Defer` here, before anything runs.
"""

from __future__ import annotations

import re

from nuwa.script.context import Defer

_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+|\\\n|\#[^\n]*)
  | (?P<nl>[\n;])
  | (?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\+\+|--|\+=|-=|\*=|/=|%=|\^=|\*\*|==|!=|<=|>=|&&|\|\||>>|!~|[-+*/%^<>=!~?:(){},$\[\]|])
""", re.X)

_UNSUPPORTED = {"getline", "system", "close", "fflush", "srand", "rand", "nextfile", "sin", "cos", "atan2",
                "exp", "log", "sqrt"}
BUILTINS = {"length", "substr", "index", "tolower", "toupper", "int", "sprintf", "sub", "gsub", "match", "split"}
_KEYWORDS = {"BEGIN", "END", "function", "func", "if", "else", "while", "for", "do", "break", "continue",
             "next", "exit", "return", "delete", "in", "print", "printf"} | BUILTINS
_LVALUES = ("var", "field", "elem")


def tokens(src: str) -> list[tuple[str, str]]:
    """Split program text into (kind, text) tokens; ``/re/`` where an operand is expected."""
    out: list[tuple[str, str]] = []
    i = 0
    prev = None
    while i < len(src):
        # '/' starts a regex where an operand is expected, else it divides
        if src[i] == "/" and (prev is None or prev[0] == "nl" or prev[1] in ("print", "printf", "return")
                              or (prev[0] == "op" and prev[1] not in (")", "]", "$"))):
            j = i + 1
            in_box = False
            while j < len(src) and (src[j] != "/" or in_box):
                if src[j] == "\n":
                    raise Defer("awk: newline in regex")
                if src[j] == "[":
                    in_box = True
                elif src[j] == "]":
                    in_box = False
                j += 2 if src[j] == "\\" else 1
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
        if kind == "name" and tok[1] in _UNSUPPORTED:
            raise Defer(f"awk: {tok[1]} is outside the modelled subset")
        out.append(tok)
        prev = tok
    return out


class Parser:
    """Recursive descent over :func:`tokens` (POSIX awk grammar, mawk's precedences)."""

    def __init__(self, toks):
        self.t, self.i = toks, 0
        # user functions may be called before their definition: know their names up front
        self.funcs = {toks[k + 1][1] for k in range(len(toks) - 1)
                      if toks[k][1] in ("function", "func") and toks[k][0] == "name"}
        self.defs: dict[str, tuple[list[str], list]] = {}
        self.loops = 0
        self.in_func = False

    def peek(self, k=0):
        """The token ``k`` places ahead (``("eof", "")`` past the end)."""
        return self.t[self.i + k] if self.i + k < len(self.t) else ("eof", "")

    def take(self, val=None):
        """Consume the next token (which must be ``val`` when given)."""
        tok = self.peek()
        if val is not None and tok[1] != val:
            raise Defer(f"awk: expected {val!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def skip_nl(self):
        """Skip statement terminators: newlines and ';'."""
        while self.peek()[0] == "nl":
            self.i += 1

    def skip_newlines(self):
        """Skip newlines only (where awk allows a line break but ';' would end a statement)."""
        # after ')' of if/while/for, ',' '{' '&&' '||' 'do' 'else': newlines only, not ';'
        while self.peek() == ("nl", "\n"):
            self.i += 1

    def program(self):
        """The list of items (kind, pattern, action); user functions land in ``self.defs``."""
        items = []
        self.skip_nl()
        while self.peek()[0] != "eof":
            v = self.peek()[1]
            if v in ("BEGIN", "END"):
                kind = self.take()[1]
                self.skip_newlines()
                items.append((kind, None, self.block()))
            elif v in ("function", "func"):
                self.function()
            else:
                pat = None if v == "{" else self.expr()
                if self.peek()[1] == ",":
                    raise Defer("awk range patterns")
                act = self.block() if self.peek()[1] == "{" else None
                items.append(("main", pat, act))
            self.skip_nl()
        return items

    def function(self):
        """``function NAME(PARAMS) { BODY }`` into ``self.defs``."""
        self.take()
        kind, name = self.take()
        if kind != "name" or name in _KEYWORDS or name in self.defs:
            raise Defer(f"awk: function name {name!r}")
        self.take("(")
        params: list[str] = []
        while self.peek()[1] != ")":
            self.skip_newlines()
            k, p = self.take()
            if k != "name" or p in _KEYWORDS or p in params or p in self.funcs:
                raise Defer(f"awk: function parameter {p!r}")
            params.append(p)
            self.skip_newlines()
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        self.skip_newlines()
        self.in_func = True
        self.defs[name] = (params, self.block())
        self.in_func = False

    def block(self):
        """``{ statements }``."""
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

    def body(self):
        """The statement a loop controls, with ``break``/``continue`` allowed inside it."""
        self.loops += 1
        try:
            return self.stmt()
        finally:
            self.loops -= 1

    def stmt(self):
        """One statement (a simple one ends at ';', a newline or '}', left for the caller)."""
        k, v = self.peek()
        if k == "nl":
            self.take()
            return ("nop",)
        if v == "{":
            return ("block", self.block())
        if v in ("print", "printf"):
            return self.print_stmt()
        if v == "if":
            self.take()
            self.take("(")
            cond = self.expr()
            self.take(")")
            self.skip_newlines()
            then = self.stmt()
            save = self.i
            self.skip_nl()
            if self.peek()[1] == "else":
                self.take()
                self.skip_newlines()
                return ("if", cond, then, self.stmt())
            self.i = save
            return ("if", cond, then, None)
        if v == "while":
            self.take()
            self.take("(")
            cond = self.expr()
            self.take(")")
            if self.peek() == ("nl", ";"):
                self.take()
                return ("while", cond, ("nop",))
            self.skip_newlines()
            return ("while", cond, self.body())
        if v == "do":
            self.take()
            self.skip_newlines()
            body = self.body()
            self.skip_nl()
            self.take("while")
            self.take("(")
            cond = self.expr()
            self.take(")")
            return ("do", body, cond)
        if v == "for":
            return self.for_stmt()
        if v in ("break", "continue"):
            if not self.loops:
                raise Defer(f"awk: {v} outside a loop")
            self.take()
            return (v,)
        if v == "next":
            if self.in_func:
                raise Defer("awk: next inside a function")
            self.take()
            return ("next",)
        if v in ("exit", "return"):
            if v == "return" and not self.in_func:
                raise Defer("awk: return outside a function")
            self.take()
            code = None if self.peek()[0] in ("nl", "eof") or self.peek()[1] == "}" else self.expr()
            return (v, code)
        if v == "delete":
            self.take()
            k, name = self.take()
            if k != "name" or name in _KEYWORDS:
                raise Defer("awk: delete form")
            if self.peek()[1] != "[":
                return ("delete", name, None)
            self.take("[")
            subs = self.exprlist("]")
            self.take("]")
            return ("delete", name, subs)
        return ("expr", self.expr())

    def print_stmt(self):
        """``print``/``printf`` with an expression list, parenthesised or not."""
        v = self.take()[1]
        args = []
        paren = self.peek()[1] == "(" and self._paren_list()
        if paren:
            self.take("(")
            args = self.exprlist(")")
            self.take(")")
        elif self.peek()[0] not in ("nl", "eof") and self.peek()[1] != "}":
            args = self.exprlist(None)
        if self.peek()[1] in (">", "|", ">>"):
            raise Defer("awk output redirection")
        return (v, args)

    def for_stmt(self):
        """``for (init; cond; step) body`` or ``for (var in array) body``."""
        self.take()
        self.take("(")
        if (self.peek()[0] == "name" and self.peek(1)[1] == "in" and self.peek(2)[0] == "name"
                and self.peek(3)[1] == ")"):
            var = self.take()[1]
            self.take()
            arr = self.take()[1]
            self.take(")")
            self.skip_newlines()
            return ("forin", ("var", var), arr, self.body())
        parts = []
        for end in (";", ";", ")"):
            self.skip_newlines()
            parts.append(None if self.peek()[1] == end else self.expr())
            self.skip_newlines()
            self.take(end)
        if self.peek() == ("nl", ";"):
            self.take()
            return ("for", parts[0], parts[1], parts[2], ("nop",))
        self.skip_newlines()
        return ("for", parts[0], parts[1], parts[2], self.body())

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
                    return nxt[0] in ("nl", "eof") or nxt[1] in ("}", ">", "|", ">>")
            j += 1
        return False

    def exprlist(self, end):
        """Comma-separated expressions (``>`` is a redirection, not a comparison, when ``end`` is None)."""
        out = [self.expr(no_gt=end is None)]
        while self.peek()[1] == ",":
            self.take()
            self.skip_newlines()
            out.append(self.expr(no_gt=end is None))
        return out

    def expr(self, no_gt=False):
        """An expression (the grammar's ``expr``)."""
        return self.ternary(no_gt)

    def ternary(self, no_gt):
        """``cond ? a : b`` and the assignments, the loosest-binding forms."""
        c = self.or_(no_gt)
        if self.peek()[1] == "?":
            self.take()
            self.skip_newlines()
            a = self.ternary(no_gt)
            self.skip_newlines()
            self.take(":")
            self.skip_newlines()
            b = self.ternary(no_gt)
            return ("?", c, a, b)
        if self.peek()[1] in ("=", "+=", "-=", "*=", "/=", "%=", "^=") and c[0] in _LVALUES:
            # assignment is right-associative and binds loosest (a = b ? c : d)
            op = self.take()[1]
            self.skip_newlines()
            return ("assign", op, c, self.ternary(no_gt))
        return c

    def or_(self, no_gt):
        """``a || b``."""
        left = self.and_(no_gt)
        while self.peek()[1] == "||":
            self.take()
            self.skip_newlines()
            left = ("||", left, self.and_(no_gt))
        return left

    def and_(self, no_gt):
        """``a && b``."""
        left = self.in_(no_gt)
        while self.peek()[1] == "&&":
            self.take()
            self.skip_newlines()
            left = ("&&", left, self.in_(no_gt))
        return left

    def in_(self, no_gt):
        """``key in array`` and ``(i, j) in array``."""
        left = self.match(no_gt)
        while self.peek()[1] == "in":
            self.take()
            k, name = self.take()
            if k != "name" or name in _KEYWORDS:
                raise Defer("awk: 'in' needs an array name")
            left = ("in", left[1] if left[0] == "group" else [left], name)
        if left[0] == "group":
            raise Defer("awk: a parenthesised list outside (i, j) in a")
        return left

    def match(self, no_gt):
        """``a ~ re`` and ``a !~ re``."""
        left = self.compare(no_gt)
        while self.peek()[1] in ("~", "!~"):
            op = self.take()[1]
            left = (op, left, self.compare(no_gt))
        return left

    def compare(self, no_gt):
        """``< <= == != >= >`` (non-associative)."""
        left = self.concat(no_gt)
        ops = ("<", "<=", "==", "!=", ">=") + (() if no_gt else (">",))
        if self.peek()[1] in ops:
            op = self.take()[1]
            left = ("cmp", op, left, self.concat(no_gt))
        return left

    def concat(self, no_gt):
        """Concatenation: operands side by side."""
        left = self.additive()
        while True:
            k, v = self.peek()
            starts_operand = (k in ("num", "str", "re") or v in ("$", "(", "!", "++", "--")
                              or (k == "name" and (v in BUILTINS or v not in _KEYWORDS)))
            if starts_operand:
                left = ("cat", left, self.additive())
            else:
                return left

    def additive(self):
        """``a + b``, ``a - b``."""
        left = self.mult()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left = ("arith", op, left, self.mult())
        return left

    def mult(self):
        """``a * b``, ``a / b``, ``a % b``."""
        left = self.unary()
        while self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            left = ("arith", op, left, self.unary())
        return left

    def unary(self):
        """``!a``, ``-a``, ``+a``."""
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
        return self.power()

    def power(self):
        """``a ^ b`` (right-associative, tighter than unary minus)."""
        base = self.postfix()
        if self.peek()[1] in ("^", "**"):
            self.take()
            # right-associative, and the exponent may carry its own sign: 2^-1
            return ("arith", "^", base, self.unary())
        return base

    def postfix(self):
        """``++a``, ``--a``, ``a++``, ``a--``."""
        v = self.peek()[1]
        if v in ("++", "--"):
            self.take()
            target = self.primary()
            if target[0] not in _LVALUES:
                raise Defer("awk: ++/-- needs a variable")
            return ("incr", v, target, True)
        p = self.primary()
        if self.peek()[1] in ("++", "--") and p[0] in _LVALUES:
            return ("incr", self.take()[1], p, False)
        return p

    def primary(self):
        """Literals, fields, variables, array elements, calls and parenthesised expressions."""
        k, v = self.take()
        if k == "num":
            return ("num", float(v))
        if k == "str":
            return ("str", unescape(v[1:-1]))
        if k == "re":
            return ("re", v)
        if v == "$":
            nk, nv = self.peek()
            if nv in ("++", "--", "-"):
                raise Defer("awk: complex field expression")
            return ("field", self.primary())
        if v == "(":
            self.skip_newlines()
            e = self.expr()
            if self.peek()[1] == ",":
                group = [e]
                while self.peek()[1] == ",":
                    self.take()
                    self.skip_newlines()
                    group.append(self.expr())
                self.take(")")
                if self.peek()[1] != "in":
                    raise Defer("awk: a parenthesised list outside (i, j) in a")
                return ("group", group)
            self.take(")")
            return ("paren", e)
        if k == "name":
            if v in BUILTINS and self.peek()[1] == "(":
                self.take("(")
                self.skip_newlines()
                args = self.exprlist(")") if self.peek()[1] != ")" else []
                self.take(")")
                return ("call", v, args)
            if v == "length":
                return ("call", "length", [])
            if v in self.funcs and self.peek()[1] == "(":
                self.take("(")
                self.skip_newlines()
                args = self.exprlist(")") if self.peek()[1] != ")" else []
                self.take(")")
                return ("ucall", v, args)
            if v in _KEYWORDS:
                raise Defer(f"awk: unexpected {v!r}")
            if self.peek()[1] == "[":
                self.take("[")
                subs = self.exprlist("]")
                self.take("]")
                return ("elem", v, subs)
            if self.peek()[1] == "(":
                raise Defer(f"awk function {v}")
            return ("var", v)
        raise Defer(f"awk: unexpected {v!r}")


def unescape(s: str) -> str:
    """An awk string literal's escapes (mawk's rm_escape): ``\\n``, octal, ``\\xHH``, ``\\"``..."""
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
            m = re.match(r"x([0-9A-Fa-f]{1,2})", s[i + 1:])  # mawk: one or two hex digits
            if m:
                out.append(chr(int(m.group(1), 16)))
                i += 1 + len(m.group(0))
                continue
            out.append(table.get(n, "\\" + n))
            i += 2
            continue
        out.append(s[i])
        i += 1
    return "".join(out)
