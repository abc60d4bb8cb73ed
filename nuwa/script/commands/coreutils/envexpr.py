"""``env``, ``expr`` and ``getconf``: small coreutils/glibc programs maintainer scripts call.

``expr`` follows GNU coreutils 9.1's recursive-descent grammar (``|`` ``&`` comparisons
``+ -`` ``* / %`` ``:`` then ``match length index substr + (``), with arbitrary-precision
integers (coreutils links GMP or mini-gmp) and the exit statuses 0 (non-null result),
1 (null: empty or a zero like ``0``/``-0``/``00``), 2 (invalid expression).

``env`` prints the environment in the order the model received it, or runs a command
through ``inv.run`` with the modified environment, looked up in the new ``PATH`` as
execvp(3) does (127 not found, 126 not executable, 125 env's own errors).

``getconf`` answers only the system variables whose value follows from the image's dpkg
architecture; anything machine-dependent (page size on arm64, ``_NPROCESSORS_ONLN``...) is
deferred to first boot.
"""

from __future__ import annotations

import posixpath

from nuwa.deb.arch import native_architecture
from nuwa.script.commands import _args
from nuwa.script.commands._regex import RegexError, compile_posix
from nuwa.script.context import Defer, Invocation

# --------------------------------------------------------------------------- expr


class _ExprError(Exception):
    """An invalid expression: message printed after ``expr: ``, exit status 2."""


def _q(s: str) -> str:
    """gnulib ``locale_quoting_style`` in the C locale."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_int(v) -> bool:
    if isinstance(v, int):
        return True
    s = v[1:] if v.startswith("-") else v
    return s != "" and all("0" <= c <= "9" for c in s)


def _null(v) -> bool:
    if isinstance(v, int):
        return v == 0
    if v == "":
        return True
    s = v[1:] if v.startswith("-") else v
    return s != "" and all(c == "0" for c in s)


def _arith(v) -> int:
    if not _is_int(v):
        raise _ExprError("non-integer argument")
    return int(v)


def _size(v) -> int | None:
    """coreutils ``getsize``: a non-negative integer operand, None if unusable."""
    if not _is_int(v):
        return None
    n = int(v)
    return n if n >= 0 else None


class _Expr:
    """One evaluation over the argument list (``args``, cursor ``i``)."""

    def __init__(self, args: list[str]):
        self.args, self.i = args, 0

    def more(self) -> bool:
        return self.i < len(self.args)

    def next_is(self, tok: str) -> bool:
        if self.i < len(self.args) and self.args[self.i] == tok:
            self.i += 1
            return True
        return False

    def missing(self) -> _ExprError:
        return _ExprError(f"syntax error: missing argument after {_q(self.args[self.i - 1])}")

    def eval(self, ev: bool):
        left = self.eval1(ev)
        while self.next_is("|"):
            right = self.eval1(ev and _null(left))
            if ev and _null(left):
                left = 0 if _null(right) else right
        return left

    def eval1(self, ev: bool):
        left = self.eval2(ev)
        while self.next_is("&"):
            right = self.eval2(ev and not _null(left))
            if ev and (_null(left) or _null(right)):
                left = 0
        return left

    def eval2(self, ev: bool):
        left = self.eval3(ev)
        while True:
            for op in ("<", "<=", "=", "==", "!=", ">=", ">"):
                if self.next_is(op):
                    break
            else:
                return left
            right = self.eval3(ev)
            if ev:
                if _is_int(left) and _is_int(right):
                    a, b = int(left), int(right)
                else:  # strcoll in the C locale: byte order
                    a, b = (str(left).encode("utf-8", "surrogateescape"),
                            str(right).encode("utf-8", "surrogateescape"))
                res = {"<": a < b, "<=": a <= b, "=": a == b, "==": a == b, "!=": a != b,
                       ">=": a >= b, ">": a > b}[op]
                left = int(res)

    def eval3(self, ev: bool):
        left = self.eval4(ev)
        while True:
            op = "+" if self.next_is("+") else "-" if self.next_is("-") else None
            if op is None:
                return left
            right = self.eval4(ev)
            if ev:
                a, b = _arith(left), _arith(right)
                left = a + b if op == "+" else a - b

    def eval4(self, ev: bool):
        left = self.eval5(ev)
        while True:
            op = next((o for o in ("*", "/", "%") if self.next_is(o)), None)
            if op is None:
                return left
            right = self.eval5(ev)
            if ev:
                a, b = _arith(left), _arith(right)
                if op == "*":
                    left = a * b
                    continue
                if b == 0:
                    raise _ExprError("division by zero")
                q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # C truncation
                left = q if op == "/" else a - b * q

    def eval5(self, ev: bool):
        left = self.eval6(ev)
        while self.next_is(":"):
            right = self.eval6(ev)
            if ev:
                left = _colon(left, right)
        return left

    def eval6(self, ev: bool):
        if self.next_is("+"):
            if not self.more():
                raise self.missing()
            self.i += 1
            return self.args[self.i - 1]
        if self.next_is("length"):
            v = self.eval6(ev)
            return len(str(v)) if ev else 0
        if self.next_is("match"):
            s, r = self.eval6(ev), self.eval6(ev)
            return _colon(s, r) if ev else 0
        if self.next_is("index"):
            s, chars = self.eval6(ev), self.eval6(ev)
            if not ev:
                return 0
            s, chars = str(s), str(chars)
            return next((k + 1 for k, c in enumerate(s) if c in chars), 0)
        if self.next_is("substr"):
            s, p, n = self.eval6(ev), self.eval6(ev), self.eval6(ev)
            if not ev:
                return 0
            s, pos, ln = str(s), _size(p), _size(n)
            if pos is None or ln is None or pos == 0 or ln == 0 or pos > len(s):
                return ""
            return s[pos - 1 : pos - 1 + ln]
        return self.eval7(ev)

    def eval7(self, ev: bool):
        if not self.more():
            raise self.missing()
        if self.next_is("("):
            v = self.eval(ev)
            if not self.more():
                raise _ExprError(f"syntax error: expecting ')' after {_q(self.args[self.i - 1])}")
            if not self.next_is(")"):
                raise _ExprError(f"syntax error: expecting ')' instead of {_q(self.args[self.i])}")
            return v
        if self.next_is(")"):
            raise _ExprError("syntax error: unexpected ')'")
        self.i += 1
        return self.args[self.i - 1]


def _colon(s, pattern):
    """``STRING : REGEX``: anchored BRE match; the first group or the match length."""
    s, pattern = str(s), str(pattern)
    if pattern.startswith("*"):  # RE_CONTEXT_INDEP_OPS unset: a leading * is literal
        pattern = "\\" + pattern
    try:
        rx = compile_posix(pattern.encode("utf-8", "surrogateescape").decode("latin-1"), False)
    except RegexError as e:
        raise _ExprError(str(e)) from None
    m = rx.match(s.encode("utf-8", "surrogateescape").decode("latin-1"))
    if rx.groups > 0:
        if m is None or m.group(1) is None:
            return ""
        return m.group(1).encode("latin-1").decode("utf-8", "surrogateescape")
    return 0 if m is None else m.end()


def expr(inv: Invocation) -> int:
    """GNU ``expr EXPRESSION``: evaluate, print the value, exit 0/1 (null) or 2 (invalid)."""
    args = inv.argv[1:]
    if len(args) == 1 and args[0] in ("--help", "--version"):  # parse_long_options: only as the sole argument
        raise Defer(f"expr {args[0]} is not modelled")
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        return _args.missing(inv, status=2)
    e = _Expr(args)
    try:
        v = e.eval(True)
        if e.more():
            raise _ExprError(f"syntax error: unexpected argument {_q(args[e.i])}")
    except _ExprError as x:
        return inv.fail(str(x), 2)
    inv.out(f"{v}\n")
    return 1 if _null(v) else 0


# --------------------------------------------------------------------------- env

_ENV_SPEC = _args.spec("iu:0", {"ignore-environment": "i", "unset": "u", "null": "0"}, in_order=True)


def _lookup(inv: Invocation, name: str, env: dict[str, str]) -> tuple[str | None, int]:
    """execvp(3) in the image: (path, 0), or (None, errno-like status 126/127)."""
    cands = [name] if "/" in name else [
        posixpath.join(d or ".", name) for d in env.get("PATH", "/bin:/usr/bin").split(":")]
    denied = False
    for c in cands:
        try:
            st = inv.fs.stat(inv.path(c))
        except (OSError, ValueError):
            continue
        if st.is_reg and st.st_mode & 0o111:
            return c, 0
        denied = True
    return None, 126 if denied else 127


def env(inv: Invocation) -> int:
    """GNU ``env [-i] [-u NAME]... [-0] [-] [NAME=VALUE]... [COMMAND [ARG]...]``."""
    try:
        opts, rest = _args.parse(inv, _ENV_SPEC)
    except _args.UsageError as e:
        return _args.usage(inv, e, 125)
    newenv = dict(inv.env)
    null = False
    unset: list[str] = []
    for k, v in opts:
        if k == "i":
            newenv = {}
        elif k == "0":
            null = True
        else:
            unset.append(v or "")
    if rest and rest[0] == "-":  # env.c checks the first operand, even after `--`
        newenv = {}
        rest = rest[1:]
    for name in unset:
        if name == "" or "=" in name:
            return inv.fail(f"cannot unset {_q(name)}: Invalid argument", 125)
        newenv.pop(name, None)
    while rest and "=" in rest[0]:
        n, _, val = rest.pop(0).partition("=")
        newenv[n] = val  # glibc putenv accepts an empty name ("=x" is printed as is)
    if not rest:
        end = "\0" if null else "\n"
        inv.out("".join(f"{k}={v}{end}" for k, v in newenv.items()))
        return 0
    if null:
        return _args.usage(inv, _args.UsageError("cannot specify --null (-0) with command"), 125)
    path, status = _lookup(inv, rest[0], newenv)
    if path is None:
        why = "Permission denied" if status == 126 else "No such file or directory"
        return inv.fail(f"{_q(rest[0])}: {why}", status)
    if inv.run is None:
        raise Defer("env: no way to run a command here")
    # env execs the program: it reads env's own standard input, live (not a copy read ahead)
    stdin = inv.stdin_fd if inv.stdin_fd is not None else inv.stdin
    st, out, err = inv.run(rest, stdin, newenv)
    inv.out(out)
    inv.err(err)
    return st


# --------------------------------------------------------------------------- getconf

#: values fixed by the ABI of a Debian architecture (glibc's sysconf/confstr on Linux)
_LONG_BIT = {"amd64": 64, "arm64": 64, "ppc64el": 64, "s390x": 64, "riscv64": 64, "mips64el": 64,
             "i386": 32, "armhf": 32, "armel": 32, "mipsel": 32}
#: page size where the ABI fixes it (arm64/ppc64el kernels may use 16k/64k pages: deferred)
_PAGESIZE = {"amd64": 4096, "i386": 4096, "s390x": 4096, "armhf": 4096, "armel": 4096}
#: glibc constants identical on every Linux architecture
_FIXED = {"CHAR_BIT": 8, "INT_MAX": 2147483647,
          "UINT_MAX": 4294967295, "NZERO": 20, "LINE_MAX": 2048, "LOGIN_NAME_MAX": 256,
          "HOST_NAME_MAX": 64, "NGROUPS_MAX": 65536, "_POSIX_VERSION": 200809}


def _arch(inv: Invocation) -> str | None:
    """The image's native Debian architecture (:func:`nuwa.deb.arch.native_architecture`: the
    ``dpkg`` package's, else ``/var/lib/dpkg/arch``, else its programs' ELF headers), or None."""
    return native_architecture(inv.fs)


def getconf(inv: Invocation) -> int:
    """``getconf NAME``: the few system variables the image's architecture decides."""
    args = inv.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if len(args) != 1 or args[0].startswith("-"):
        raise Defer(f"getconf {' '.join(args)}: only `getconf NAME` is modelled")
    name = args[0]
    arch = _arch(inv)
    if name == "LONG_BIT" and arch in _LONG_BIT:
        val = _LONG_BIT[arch]
    elif name in ("PAGESIZE", "PAGE_SIZE") and arch in _PAGESIZE:
        val = _PAGESIZE[arch]
    elif name in _FIXED:
        val = _FIXED[name]
    else:
        raise Defer(f"getconf {name}: machine-dependent value (architecture {arch or 'unknown'})")
    inv.out(f"{val}\n")
    return 0
