"""The awk model's interpreter: runs the tree :mod:`awk_parse` builds, as mawk 1.3.4 would.

Arrays are :class:`AwkArray` (mawk's own layout, so ``for (k in a)`` keeps mawk's order),
regular expressions are mawk's dialect (:mod:`awk_regex`). A run has a step budget (each
loop turn and each user-function call is a step) and a call-depth budget: a runaway loop or recursion
defers the script instead of hanging it (straight-line rules over a long input are not counted).
"""

from __future__ import annotations

import math
import re

from nuwa.script.commands.editors.awk_array import AwkArray, EnvArray
from nuwa.script.commands.editors.awk_regex import MawkRegex
from nuwa.script.commands.editors.awk_values import (UNINIT, StrNum, d_to_i, is_numeric, num, printf,
                                                      tostr, truth)
from nuwa.script.context import Defer, Invocation

MAX_STEPS = 1_000_000  # loop turns and calls: only those can run away; plain rules cannot
MAX_DEPTH = 40  # user-function nesting (Python's own stack is the limit behind it)


class Next(Exception):
    """``next``: on to the next record."""


class Exit(Exception):
    """``exit [status]``: END still runs (POSIX awk)."""

    def __init__(self, status: int):
        self.status = status


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value):
        self.value = value


def array_params(defs: dict) -> dict[str, set[int]]:
    """For each user function, the parameter positions it uses as arrays (also by passing one
    on to a function that does), so an unset variable passed there becomes the caller's array."""
    uses = {name: set() for name in defs}
    direct: dict[str, set[str]] = {}
    calls: dict[str, list[tuple[str, int, str]]] = {}
    for name, (params, body) in defs.items():
        names, passes = set(), []

        def walk(node):
            """Collect array uses and pass-ons in one function body."""
            if isinstance(node, tuple) and node:
                tag = node[0]
                if tag in ("elem", "in", "delete") or tag == "forin":
                    names.add(node[2] if tag in ("in", "forin") else node[1])
                if tag == "call" and node[1] == "split" and len(node[2]) > 1 and node[2][1][0] == "var":
                    names.add(node[2][1][1])
                if tag == "ucall":
                    passes.extend((node[1], k, a[1]) for k, a in enumerate(node[2]) if a[0] == "var")
                for child in node[1:]:
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk(body)
        direct[name], calls[name] = names, passes
        uses[name] = {k for k, p in enumerate(params) if p in names}
    changed = True
    while changed:
        changed = False
        for name, (params, _body) in defs.items():
            for callee, k, var in calls[name]:
                if callee in uses and k in uses[callee] and var in params:
                    pos = params.index(var)
                    if pos not in uses[name]:
                        uses[name].add(pos)
                        changed = True
    return uses


class Awk:
    """One awk run: variables, the current record, user functions and budgets."""

    def __init__(self, inv: Invocation, defs: dict, fs: str, variables: dict, dialect: str = "mawk"):
        self.inv = inv
        #: which awk runs: the model is mawk's; under another one (gawk) the constructs whose
        #: results differ between them (for-in order, regex escapes and braces) defer
        self.dialect = dialect
        self.defs = defs
        self.array_params = array_params(defs)
        self.vars: dict = {"FS": fs, "OFS": " ", "ORS": "\n", "NR": 0.0, "NF": 0.0, "FNR": 0.0, "FILENAME": "",
                           "SUBSEP": "\x1c", "RS": "\n", "OFMT": "%.6g", "CONVFMT": "%.6g",
                           "RSTART": 0.0, "RLENGTH": -1.0}
        self.vars.update(variables)
        self.frame: dict | None = None
        self.depth = 0
        self.steps = 0
        self.fields: list[str] = [""]
        self.res: dict[str, MawkRegex] = {}

    # -- budgets, regexes, records ------------------------------------------------------
    def step(self) -> None:
        """Count one loop turn or call; past the budget the script is deferred."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Defer(f"awk: step budget of {MAX_STEPS} exceeded (a runaway loop?)")

    def regex(self, src: str) -> MawkRegex:
        """The compiled mawk regex for ``src`` (cached)."""
        r = self.res.get(src)
        if r is None:
            if self.dialect != "mawk" and re.search(r"\\[A-Za-z<>`']|[{}]", src):
                raise Defer(f"awk is {self.dialect} here: regex {src!r} reads differently than in mawk")
            r = self.res[src] = MawkRegex(src)
        return r

    def convfmt(self) -> str:
        """The current CONVFMT (number-to-string conversion format)."""
        return tostr(self.vars["CONVFMT"])

    def split_text(self, text: str, sep) -> list[str]:
        """Split ``text`` as mawk's split()/field splitting does for separator ``sep``: ``" "``
        on runs of space/tab/newline, ``""`` into characters, one character literally (meta
        characters too), anything longer (or a ``("re", src)``) as a regex, empty pieces kept."""
        if text == "":
            return []
        if isinstance(sep, tuple):
            r = self.regex(sep[1])
        elif sep == " ":
            return [p for p in _SPACES.split(text) if p != ""]
        elif sep == "":
            return list(text)
        elif len(sep) == 1 and sep != "\\":
            return text.split(sep)
        else:
            r = self.regex(sep)
        if r.empty:
            return list(text)
        out, pos = [], 0
        while pos < len(text):
            hit = self._positive_match(r, text, pos)
            if hit is None:
                out.append(text[pos:])
                return out
            out.append(text[pos:hit[0]])
            pos = hit[1]
        out.append("")
        return out

    @staticmethod
    def _positive_match(r: MawkRegex, text: str, pos: int):
        # re_pos_match: only matches of positive length separate fields
        while pos < len(text):
            hit = r.find(text, pos)
            if hit is None:
                return None
            if hit[1] > hit[0]:
                return hit
            pos = hit[0] + 1
        return None

    def set_record(self, line: str) -> None:
        """Make ``line`` $0 and split it into fields with FS."""
        parts = self.split_text(line, tostr(self.vars["FS"]))
        self.fields = [line] + parts
        self.vars["NF"] = float(len(parts))

    def get_field(self, i: int) -> str:
        """``$i`` (a strnum; past NF an empty one)."""
        if i < 0:
            raise Defer("awk negative field")
        return StrNum(self.fields[i]) if i < len(self.fields) else StrNum("")

    def set_field(self, i: int, val: str) -> None:
        """``$i = val``: pads with empty fields and rebuilds $0 with OFS."""
        if i < 0:
            raise Defer("awk negative field")
        if i == 0:
            self.set_record(val)
            return
        while len(self.fields) <= i:
            self.fields.append("")
        self.fields[i] = val
        self.vars["NF"] = float(len(self.fields) - 1)
        self.fields[0] = tostr(self.vars["OFS"]).join(self.fields[1:])

    def set_nf(self, n: int) -> None:
        """Assigning NF truncates or pads the fields and rebuilds $0 with OFS (POSIX awk)."""
        if n < 0:
            raise Defer("awk: negative NF")
        fields = (self.fields[1:] + [""] * n)[:n]
        self.fields = [tostr(self.vars["OFS"]).join(fields)] + fields
        self.vars["NF"] = float(n)

    # -- variables and arrays -----------------------------------------------------------
    def _scope(self, name: str) -> dict:
        return self.frame if self.frame is not None and name in self.frame else self.vars

    def scalar(self, name: str):
        """A scalar variable's cell (a function's local or parameter before a global)."""
        v = self._scope(name).get(name, UNINIT)
        if v is UNINIT and name in ("ENVIRON", "ARGV", "ARGC") and self._scope(name) is self.vars:
            raise Defer(f"awk: {name} is not modelled")
        if isinstance(v, AwkArray):
            raise Defer(f"awk: array {name} used as a scalar")
        return v

    def array(self, name: str) -> AwkArray:
        """The array ``name`` (an unset name becomes an empty array, as mawk types it)."""
        scope = self._scope(name)
        v = scope.get(name)
        if isinstance(v, AwkArray):
            return v
        if v is None or v is UNINIT:
            if name == "ENVIRON" and scope is self.vars:  # loaded from the process's environment
                a = scope[name] = EnvArray(self.inv.env)
                return a
            if name in self.defs or name in _SPECIAL:
                raise Defer(f"awk: {name} used as an array")
            a = scope[name] = AwkArray()
            return a
        raise Defer(f"awk: scalar {name} used as an array")

    def key(self, subs: list):
        """The array subscript: one expression's cell, or several joined by SUBSEP."""
        if len(subs) == 1:
            v = self.ev(subs[0])
            return v if isinstance(v, float) else str(v)
        fmt = self.convfmt()
        return tostr(self.vars["SUBSEP"], fmt).join(tostr(self.ev(s), fmt) for s in subs)

    def store(self, target, val) -> None:
        """Assign ``val`` to an lvalue (variable, field or array element)."""
        if target[0] == "var":
            name = target[1]
            if name == "NF" and self._scope(name) is self.vars:
                self.set_nf(int(num(val)))
                return
            scope = self._scope(name)
            if isinstance(scope.get(name), AwkArray):
                raise Defer(f"awk: assignment to array {name}")
            scope[name] = val
        elif target[0] == "elem":
            k = self.key(target[2])
            self.array(target[1]).set(k, val, self.convfmt())
        else:
            self.set_field(int(num(self.ev(target[1]))), tostr(val, self.convfmt()))

    # -- expressions --------------------------------------------------------------------
    def ev(self, e):
        """The value of expression ``e``."""
        k = e[0]
        if k in ("num", "str"):
            return e[1]
        if k == "paren":
            return self.ev(e[1])
        if k == "re":
            return 1.0 if self.regex(e[1]).search(self.fields[0]) else 0.0
        if k == "field":
            return self.get_field(int(num(self.ev(e[1]))))
        if k == "var":
            return self.scalar(e[1])
        if k == "elem":
            key = self.key(e[2])
            return self.array(e[1]).get(key, self.convfmt(), UNINIT)
        if k == "in":
            key = self.key(e[1])
            return 1.0 if self.array(e[2]).contains(key, self.convfmt()) else 0.0
        if k == "cat":
            fmt = self.convfmt()
            return tostr(self.ev(e[1]), fmt) + tostr(self.ev(e[2]), fmt)
        if k == "arith":
            return _arith(e[1], num(self.ev(e[2])), num(self.ev(e[3])))
        if k == "neg":
            return -num(self.ev(e[1]))
        if k == "num+":
            return num(self.ev(e[1]))
        if k == "!":
            return 0.0 if truth(self.ev(e[1])) else 1.0
        if k == "&&":
            return 1.0 if truth(self.ev(e[1])) and truth(self.ev(e[2])) else 0.0
        if k == "||":
            return 1.0 if truth(self.ev(e[1])) or truth(self.ev(e[2])) else 0.0
        if k in ("~", "!~"):
            s = tostr(self.ev(e[1]), self.convfmt())
            hit = self.regex_of(e[2]).search(s)
            return 1.0 if hit == (k == "~") else 0.0
        if k == "cmp":
            a, b = self.ev(e[2]), self.ev(e[3])
            if is_numeric(a) and is_numeric(b):
                x, y = num(a), num(b)
            else:
                x, y = tostr(a, self.convfmt()), tostr(b, self.convfmt())
            return 1.0 if {"<": x < y, "<=": x <= y, "==": x == y, "!=": x != y, ">=": x >= y, ">": x > y}[e[1]] else 0.0
        if k == "?":
            return self.ev(e[2]) if truth(self.ev(e[1])) else self.ev(e[3])
        if k == "assign":
            op, target = e[1], e[2]
            if target[0] == "elem":
                # mawk finds the element first (AE_PUSHA), then runs the right-hand side
                arr = self.array(target[1])
                h = arr.handle(self.key(target[2]), self.convfmt())
                val = self.ev(e[3])
                if op != "=":
                    val = _arith(op[0], num(arr.read(h, UNINIT)), num(val))
                arr.write(h, val)
                return val
            val = self.ev(e[3])
            if op != "=":
                val = _arith(op[0], num(self.ev(target)), num(val))
            self.store(target, val)
            return val
        if k == "incr":
            if e[2][0] == "elem":
                arr = self.array(e[2][1])
                h = arr.handle(self.key(e[2][2]), self.convfmt())
                old = num(arr.read(h, UNINIT))
                new = old + (1 if e[1] == "++" else -1)
                arr.write(h, new)
                return new if e[3] else old
            old = num(self.ev(e[2]))
            new = old + (1 if e[1] == "++" else -1)
            self.store(e[2], new)
            return new if e[3] else old
        if k == "call":
            return self.builtin(e[1], e[2])
        if k == "ucall":
            return self.call_user(e[1], e[2])
        raise Defer(f"awk expression {k}")

    def regex_of(self, e) -> MawkRegex:
        """A regex operand: ``/re/`` as written, any other expression as a dynamic regex."""
        if e[0] == "re":
            return self.regex(e[1])
        return self.regex(tostr(self.ev(e), self.convfmt()))

    def builtin(self, name: str, args: list):
        """The builtin functions (sub/gsub/match/split/length need their unevaluated args)."""
        if name in ("sub", "gsub"):
            return self.substitute(name == "gsub", args)
        if name == "match":
            if len(args) != 2:
                raise Defer("awk: match argument count")
            text = tostr(self.ev(args[0]), self.convfmt())
            hit = self.regex_of(args[1]).find(text)
            start, length = (float(hit[0] + 1), float(hit[1] - hit[0])) if hit else (0.0, -1.0)
            self.vars["RSTART"], self.vars["RLENGTH"] = start, length
            return start
        if name == "split":
            if len(args) not in (2, 3) or args[1][0] != "var":
                raise Defer("awk: split form")
            text = tostr(self.ev(args[0]), self.convfmt())
            target = self.array(args[1][1])
            if len(args) == 3:
                sep = args[2] if args[2][0] == "re" else tostr(self.ev(args[2]), self.convfmt())
            else:
                sep = tostr(self.vars["FS"])
            pieces = self.split_text(text, sep)
            target.load([StrNum(p) for p in pieces])
            return float(len(pieces))
        if name == "length" and len(args) == 1 and args[0][0] == "var":
            v = self._scope(args[0][1]).get(args[0][1])
            if isinstance(v, AwkArray):
                return float(len(v))
        vals = [self.ev(a) for a in args]
        fmt = self.convfmt()
        if name == "length":
            return float(len(tostr(vals[0], fmt) if vals else self.fields[0]))
        if name == "tolower":
            return tostr(vals[0], fmt).lower()
        if name == "toupper":
            return tostr(vals[0], fmt).upper()
        if name == "int":
            return float(int(num(vals[0])))
        if name == "sprintf":
            if not vals:
                raise Defer("awk: sprintf without a format")
            return printf(tostr(vals[0], fmt), vals[1:])
        if name == "index":
            return float(tostr(vals[0], fmt).find(tostr(vals[1], fmt)) + 1)
        if name == "substr":
            return _substr(tostr(vals[0], fmt), num(vals[1]), num(vals[2]) if len(vals) > 2 else None)
        raise Defer(f"awk function {name}")

    def substitute(self, global_: bool, args) -> float:
        """``sub``/``gsub(ERE, REPL [, LVALUE])``: returns the number of replacements.

        ``&`` in REPL is the matched text, ``\\&`` a literal ``&``; an empty match is
        replaced only where it does not touch the end of the previous match (mawk's rule:
        ``gsub(/x*/, "-", "abxd")`` gives ``-a-b-d-``).
        """
        if len(args) not in (2, 3):
            raise Defer("awk: sub/gsub argument count")
        target = args[2] if len(args) == 3 else ("field", ("num", 0.0))
        if target[0] not in ("var", "field", "elem"):
            raise Defer("awk: sub/gsub on a non-lvalue")
        r = self.regex_of(args[0])
        repl = tostr(self.ev(args[1]), self.convfmt())
        text = tostr(self.ev(target), self.convfmt())
        out, pos, count, last_end = [], 0, 0, -1
        while pos <= len(text):
            hit = r.find(text, pos)
            if hit is None:
                break
            start, end = hit
            if start == end and start == last_end:
                # an empty match right after the previous match: skip one character
                if start < len(text):
                    out.append(text[pos:start + 1])
                pos = start + 1
                continue
            out.append(text[pos:start])
            out.append(_repl(repl, text[start:end]))
            count += 1
            last_end = end
            if end == start:
                if start < len(text):
                    out.append(text[start])
                pos = start + 1
            else:
                pos = end
            if not global_:
                break
        if count == 0:
            return 0.0
        out.append(text[pos:])
        self.store(target, "".join(out))
        return float(count)

    def call_user(self, name: str, args: list):
        """Call a user function: arrays by reference, scalars by value, extra params local."""
        params, body = self.defs[name]
        if len(args) > len(params):
            raise Defer(f"awk: too many arguments to {name}")
        self.step()
        if self.depth >= MAX_DEPTH:
            raise Defer(f"awk: call depth budget of {MAX_DEPTH} exceeded (recursion)")
        frame: dict = {}
        for pos, a in enumerate(args):
            if a[0] == "var":
                v = self._scope(a[1]).get(a[1])
                if isinstance(v, AwkArray):
                    if pos not in self.array_params[name]:
                        # mawk types parameters statically: "type error in arg(N) in call to f"
                        raise Defer(f"awk: array passed to {name}, which does not use {params[pos]} as one")
                    frame[params[pos]] = v
                    continue
                if (v is None or v is UNINIT) and pos in self.array_params[name]:
                    frame[params[pos]] = self.array(a[1])
                    continue
            v = self.ev(a)
            if pos in self.array_params[name]:
                raise Defer(f"awk: {name} needs an array for {params[pos]}")
            frame[params[pos]] = v
        for p in params[len(args):]:
            frame[p] = UNINIT
        saved = self.frame
        self.frame, self.depth = frame, self.depth + 1
        try:
            self.run_stmts(body)
            return UNINIT
        except _Return as r:
            return r.value
        finally:
            self.frame, self.depth = saved, self.depth - 1

    # -- statements ---------------------------------------------------------------------
    def run_stmts(self, stmts) -> None:
        """Run a statement list."""
        for s in stmts:
            self.run_stmt(s)

    def run_stmt(self, s) -> None:
        """Run one statement."""
        k = s[0]
        if k == "block":
            self.run_stmts(s[1])
        elif k == "print":
            vals = [self.ev(a) for a in s[1]] if s[1] else [self.fields[0]]
            ofmt = tostr(self.vars["OFMT"])
            text = tostr(self.vars["OFS"]).join(tostr(v, ofmt) for v in vals) + tostr(self.vars["ORS"])
            self.inv.out(text.encode("latin-1", "replace"))
        elif k == "printf":
            if not s[1]:
                raise Defer("awk printf without a format")
            vals = [self.ev(a) for a in s[1]]
            self.inv.out(printf(tostr(vals[0], self.convfmt()), vals[1:]).encode("latin-1", "replace"))
        elif k == "if":
            if truth(self.ev(s[1])):
                self.run_stmt(s[2])
            elif s[3] is not None:
                self.run_stmt(s[3])
        elif k in ("while", "do", "for"):
            self.loop(s)
        elif k == "forin":
            if self.dialect != "mawk":
                raise Defer(f"awk is {self.dialect} here: its for-in order is not mawk's")
            arr = self.array(s[2])
            for key in arr.loop_keys():
                self.step()
                self.store(s[1], key)
                try:
                    self.run_stmt(s[3])
                except _Break:
                    break
                except _Continue:
                    continue
        elif k == "break":
            raise _Break()
        elif k == "continue":
            raise _Continue()
        elif k == "next":
            raise Next()
        elif k == "exit":
            raise Exit(int(num(self.ev(s[1]))) & 0xFF if s[1] is not None else 0)
        elif k == "return":
            raise _Return(self.ev(s[1]) if s[1] is not None else UNINIT)
        elif k == "delete":
            arr = self.array(s[1])
            if s[2] is None:
                arr.clear()
            else:
                arr.delete(self.key(s[2]), self.convfmt())
        elif k == "expr":
            self.ev(s[1])
        elif k != "nop":
            raise Defer(f"awk statement {k}")

    def loop(self, s) -> None:
        """``while``, ``do``-``while`` and ``for (init; cond; step)``."""
        k = s[0]
        if k == "for" and s[1] is not None:
            self.ev(s[1])
        first = True
        while True:
            self.step()
            if k == "while" and not truth(self.ev(s[1])):
                return
            if k == "for" and s[2] is not None and not truth(self.ev(s[2])):
                return
            if k == "do" and not first and not truth(self.ev(s[2])):
                return
            first = False
            try:
                self.run_stmt(s[1] if k == "do" else s[2] if k == "while" else s[4])
            except _Break:
                return
            except _Continue:
                pass
            if k == "for" and s[3] is not None:
                self.ev(s[3])


_SPECIAL = {"NR", "NF", "FNR", "FS", "OFS", "ORS", "RS", "FILENAME", "SUBSEP", "OFMT", "CONVFMT", "RSTART",
            "RLENGTH", "ENVIRON", "ARGV", "ARGC"}


def _arith(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "^":
        try:
            return math.pow(a, b)
        except (ValueError, OverflowError):
            raise Defer("awk: ^ outside the reals") from None
    if b == 0:
        raise Defer("awk division by zero")
    return a / b if op == "/" else math.fmod(a, b)


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


def _substr(s: str, start: float, length: float | None) -> str:
    """mawk 1.3.4-20200120's bi_substr: positions truncated (d_to_i), a start before 1 eats
    into the length (substr(s, -1, 3) is the first 4 characters... less 2: "hell" of "hello")."""
    if s == "":
        return ""
    n = len(s) if length is None else d_to_i(length)
    i = d_to_i(start) - 1
    if i > len(s):
        n = 0
    if i < 0:
        n -= i + 1
        i = 0
    n = min(n, len(s) - i)
    return s[i:i + n] if n > 0 else ""


# mawk's space split: runs of space, tab and newline only (its scan_code SC_SPACE), not \v\f\r
_SPACES = re.compile(r"[ \t\n]+")
