"""``test``/``[`` as dash implements them, and bash's ``[[ ]]``.

POSIX's rules decide up to four arguments by count; beyond that (and for ``-a``/``-o``/
parentheses) a recursive-descent parser runs, as in dash's ``bltin/test.c``. File tests ask
the filesystem model; the simulation runs as root, so ``-r``/``-w`` hold for any existing
file and ``-x`` needs an execute bit (or a directory).
"""

from __future__ import annotations

import re
import stat as _stat

from nuwa.script.ast import Lit
from nuwa.script.expand import match


_UNARY = set("bcdefghkLprsStuwxznOGN")
_BINARY = {"=", "!=", "==", "<", ">", "-eq", "-ne", "-gt", "-ge", "-lt", "-le", "-nt", "-ot", "-ef"}


class _TestError(Exception):
    pass


def b_test(sh, argv):
    name = argv[0]
    args = argv[1:]
    if name == "[":
        if not args or args[-1] != "]":
            sh.error("[: missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if _TestEval(sh, args, name).run() else 1
    except _TestError as e:
        sh.error(f"{name}: {e}")
        return 2


class _TestEval:
    """dash's test(1): POSIX's rules for up to four arguments, recursive descent beyond."""

    def __init__(self, sh, args: list[str], name: str, dbracket: bool = False):
        self.sh = sh
        self.a = args
        self.i = 0
        self.name = name
        self.dbracket = dbracket

    def run(self) -> bool:
        a = self.a
        n = len(a)
        if n == 0:
            return False
        if n == 1:
            return a[0] != ""
        if n == 2 and a[0] == "!":
            return a[1] == ""
        if n == 2 and _is_unary(a[0]):
            return self.unary(a[0][1], a[1])
        if n == 3 and a[1] in _BINARY | {"-a", "-o"}:
            return self.binary(a[0], a[1], a[2])
        if n == 3 and a[0] == "!":
            return not _TestEval(self.sh, a[1:], self.name).run()
        if n == 4 and a[0] == "!":
            return not _TestEval(self.sh, a[1:], self.name).run()
        v = self.oexpr()
        if self.i < n:
            # dash names the argument before the first one left over
            raise _TestError(f"{a[max(0, self.i - 1)]}: unexpected operator")
        return v

    def peek(self) -> str | None:
        return self.a[self.i] if self.i < len(self.a) else None

    def oexpr(self) -> bool:
        v = self.aexpr()
        while self.peek() in ("-o", "||") and (self.peek() == "-o" or self.dbracket):
            self.i += 1
            r = self.aexpr()
            v = v or r
        return v

    def aexpr(self) -> bool:
        v = self.nexpr()
        while self.peek() in ("-a", "&&") and (self.peek() == "-a" or self.dbracket):
            self.i += 1
            r = self.nexpr()
            v = v and r
        return v

    def nexpr(self) -> bool:
        if self.peek() == "!":
            self.i += 1
            return not self.nexpr()
        return self.primary()

    def primary(self) -> bool:
        t = self.peek()
        if t is None:
            raise _TestError("argument expected")
        if t == "(":
            self.i += 1
            v = self.oexpr()
            if self.peek() != ")":
                raise _TestError("closing paren expected")
            self.i += 1
            return v
        rest = len(self.a) - self.i
        if rest >= 3 and self.a[self.i + 1] in _BINARY:
            l, op, r = self.a[self.i : self.i + 3]
            self.i += 3
            return self.binary(l, op, r)
        if _is_unary(t) and rest >= 2:
            self.i += 2
            return self.unary(t[1], self.a[self.i - 1])
        self.i += 1
        return t != ""

    def num(self, s: str) -> int:
        t = s.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", t):
            raise _TestError(f"Illegal number: {s}")
        return int(t)

    def binary(self, l: str, op: str, r: str) -> bool:
        if op == "=" or op == "==":
            return match(r, l) if self.dbracket and getattr(self, "pattern_rhs", False) else l == r
        if op == "!=":
            return not match(r, l) if self.dbracket and getattr(self, "pattern_rhs", False) else l != r
        if op == "<":
            return l.encode("utf-8", "surrogateescape") < r.encode("utf-8", "surrogateescape")
        if op == ">":
            return l.encode("utf-8", "surrogateescape") > r.encode("utf-8", "surrogateescape")
        if op == "-a":
            return l != "" and r != ""
        if op == "-o":
            return l != "" or r != ""
        if op in ("-nt", "-ot", "-ef"):
            a, b = self.stat(l), self.stat(r)
            if op == "-ef":
                return a is not None and b is not None and (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
            if a is None or b is None:  # dash needs both files
                return False
            return a.st_mtime_ns > b.st_mtime_ns if op == "-nt" else a.st_mtime_ns < b.st_mtime_ns
        x, y = self.num(l), self.num(r)
        return {"-eq": x == y, "-ne": x != y, "-gt": x > y, "-ge": x >= y, "-lt": x < y, "-le": x <= y}[op]

    def stat(self, p: str, follow: bool = True):
        if p == "":
            return None
        try:
            path = self.sh.abspath(p)
            return self.sh.fs.stat(path) if follow else self.sh.fs.lstat(path)
        except (OSError, ValueError):
            return None

    def unary(self, op: str, arg: str) -> bool:
        if op == "z":
            return arg == ""
        if op == "n":
            return arg != ""
        if op == "t":
            return False  # no terminal in a simulation
        if op in "hL":
            st = self.stat(arg, follow=False)
            return st is not None and _stat.S_ISLNK(st.st_mode)
        st = self.stat(arg)
        if st is None:
            return False
        access = getattr(self.sh.fs, "access", None)
        if access is not None and op in "rwxOG":
            # a command run as another user (su): its view answers with that user's rights
            return access(self.sh.abspath(arg), op)
        m = st.st_mode
        return {
            "e": True, "f": _stat.S_ISREG(m), "d": _stat.S_ISDIR(m), "b": _stat.S_ISBLK(m),
            "c": _stat.S_ISCHR(m), "p": _stat.S_ISFIFO(m), "S": _stat.S_ISSOCK(m),
            "s": st.st_size > 0, "g": bool(m & 0o2000), "u": bool(m & 0o4000), "k": bool(m & 0o1000),
            # the simulation runs as root: read/write always, execute if any x bit or a directory
            "r": True, "w": True, "x": bool(m & 0o111) or _stat.S_ISDIR(m),
            "O": st.st_uid == 0, "G": st.st_gid == 0, "N": st.st_mtime_ns > st.st_atime_ns,
        }[op]


def _is_unary(t: str) -> bool:
    return len(t) == 2 and t[0] == "-" and t[1] in _UNARY


def double_bracket(sh, words) -> int:
    """bash ``[[ ]]``: no splitting or globbing; ``==``/``!=`` match the right side as a pattern."""
    args = []
    pattern_positions = set()
    for i, w in enumerate(words):
        if i > 0 and words[i - 1].text in ("==", "!=", "=") and not (len(w.parts) == 1 and isinstance(w.parts[0], Lit) and w.parts[0].quoted):
            args.append(sh.exp.pattern(w))
            pattern_positions.add(i)
        else:
            args.append(sh.exp.string(w))
    ev = _TestEval(sh, args, "[[", dbracket=True)
    ev.pattern_rhs = True
    try:
        return 0 if ev.oexpr() and ev.i >= len(args) else (1 if ev.i >= len(args) else 2)
    except _TestError as e:
        sh.error(f"[[: {e}")
        return 2
