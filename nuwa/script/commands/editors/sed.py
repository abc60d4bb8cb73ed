"""A model of GNU sed 4.9: the language maintainer scripts use, applied through ``inv.fs``.

Supported: ``-n -e -f -E/-r -i[SUFFIX] -s -z --follow-symlinks``; addresses (line numbers,
``$``, ``/re/`` and ``\\cREc`` with ``I``, ``first~step``, ``a,b``, ``a,+N``, ``a,~N``,
``0,/re/``, ``!``); commands ``{ } = a i c d D g G h H n N p P q Q s y x b t T : l= r w z #``.
``s`` flags ``g p N i I m M w``; replacement ``& \\1..\\9 \\n \\L \\U \\l \\u \\E``. Commands
that run programs (``e``, ``s///e``) and ``R``/``W``/``F``/``l`` are deferred. Text is
processed as latin-1 so every byte is a character (the C locale).

``-i`` writes a new file beside the original and renames it over, as sed does: the new file
gets the original's mode and owner, a symlink is replaced (not followed) unless
``--follow-symlinks``, and with SUFFIX the original is kept under the backup name.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, err, errno_text
from nuwa.script.commands._regex import RegexError, compile_posix
from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.context import Defer, Invocation


class SedError(Exception):
    """A script error, reported as ``sed: -e expression #N, char M: MSG`` (exit 1)."""


class _LabelError(Exception):
    """A jump to a missing label: sed reports it without the expression prefix, status 1."""


class _Quit(Exception):
    def __init__(self, status: int, print_ps: bool):
        self.status, self.print_ps = status, print_ps


class Cmd:
    __slots__ = ("a1", "a2", "neg", "name", "arg", "block_end", "range_state", "label")

    def __init__(self, name: str):
        self.name = name
        self.a1 = self.a2 = None
        self.neg = False
        self.arg = None
        self.block_end = -1
        self.range_state = None
        self.label = None


# ---- parsing -----------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str, extended: bool):
        self.s = text
        self.i = 0
        self.ext = extended

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def get(self) -> str:
        c = self.peek()
        self.i += 1
        return c

    def ws(self) -> None:
        while self.peek() in (" ", "\t"):
            self.i += 1

    def delimited(self, delim: str, regex: bool) -> str:
        """Text up to an unescaped ``delim``; ``\\delim`` becomes ``delim``, ``\\n`` a newline."""
        out = []
        in_bracket = False
        while True:
            c = self.get()
            if c == "":
                raise SedError("unterminated")
            if regex and c == "[" and not in_bracket:
                in_bracket = True
                out.append(c)
                # ']' right after '[' or '[^' is literal
                if self.peek() == "^":
                    out.append(self.get())
                if self.peek() == "]":
                    out.append(self.get())
                continue
            if in_bracket:
                if c == "]":
                    in_bracket = False
                elif c == "[" and self.peek() in ":.=":
                    kind = self.get()
                    end = self.s.find(kind + "]", self.i)
                    if end >= 0:
                        out.append("[" + kind + self.s[self.i:end + 2])
                        self.i = end + 2
                        continue
                    out.append("[" + kind)
                    continue
                out.append(c)
                continue
            if c == "\\":
                d = self.get()
                if d == delim:
                    out.append(delim if delim not in ".*[]^$\\+?(){}|" or not regex else "\\" + delim)
                elif d == "n" and not regex:
                    out.append("\n")
                elif d == "\n":
                    out.append("\n" if not regex else "\\n")
                else:
                    out.append("\\" + d)
                continue
            if c == delim:
                return "".join(out)
            if c == "\n" and regex:
                raise SedError("unterminated address regex")
            out.append(c)

    def address(self):
        c = self.peek()
        if c.isdigit():
            j = self.i
            while self.peek().isdigit():
                self.i += 1
            n = int(self.s[j:self.i])
            if self.peek() == "~":
                self.i += 1
                k = self.i
                while self.peek().isdigit():
                    self.i += 1
                return ("step", n, int(self.s[k:self.i] or 0))
            return ("line", n)
        if c == "$":
            self.i += 1
            return ("last",)
        if c in ("/", "\\"):
            self.i += 1
            delim = "/" if c == "/" else self.get()
            text = self.delimited(delim, True)
            flags = ""
            while self.peek() in ("I", "M"):
                flags += self.get()
            return ("re", text, flags)
        return None

    def label(self) -> str:
        # GNU sed 4.9 read_label: a label ends at white space or ';' (``:end q`` is the label
        # "end" and then the command q, as squid's postinst writes it)
        self.ws()
        j = self.i
        while self.peek() not in ("", "\n", ";") and not self.peek().isspace():
            self.i += 1
        return self.s[j:self.i]

    def text_arg(self) -> str:
        """The text of a/i/c: GNU one-liner (``a foo``) or POSIX (``a\\`` newline text)."""
        self.ws()
        if self.s.startswith("\\\n", self.i):
            self.i += 2
        elif self.peek() == "\\":
            self.i += 1
        out = []
        while True:
            c = self.get()
            if c == "":
                break
            if c == "\\":
                d = self.get()
                if d == "":
                    break
                out.append(d if d != "t" else "\t")
                continue
            if c == "\n":
                break
            out.append(c)
        return "".join(out)

    def filename(self) -> str:
        self.ws()
        j = self.i
        while self.peek() not in ("", "\n"):
            self.i += 1
        return self.s[j:self.i]

    def parse(self) -> list[Cmd]:
        cmds: list[Cmd] = []
        stack: list[int] = []
        while True:
            while self.peek() in (" ", "\t", "\n", ";"):
                self.i += 1
            if self.i >= len(self.s):
                break
            if self.peek() == "#":
                while self.peek() not in ("", "\n"):
                    self.i += 1
                continue
            a1 = self.address()
            a2 = None
            if a1 is not None:
                self.ws()
                if self.peek() == ",":
                    self.i += 1
                    self.ws()
                    if self.peek() in ("+", "~"):
                        kind = self.get()
                        j = self.i
                        while self.peek().isdigit():
                            self.i += 1
                        a2 = ("plus" if kind == "+" else "mult", int(self.s[j:self.i] or 0))
                    else:
                        a2 = self.address()
                        if a2 is None:
                            raise SedError("unexpected `,'")
            self.ws()
            neg = False
            while self.peek() == "!":
                neg = True
                self.i += 1
                self.ws()
            name = self.get()
            if name == "":
                raise SedError("missing command")
            cmd = Cmd(name)
            cmd.a1, cmd.a2, cmd.neg = a1, a2, neg
            if name == "{":
                stack.append(len(cmds))
                cmds.append(cmd)
                continue
            if name == "}":
                if not stack or a1 is not None:
                    raise SedError("unexpected `}'")
                cmds[stack.pop()].block_end = len(cmds)
                cmds.append(cmd)
                continue
            if name in "aic":
                cmd.arg = self.text_arg()
            elif name in ":":
                if a1 is not None:
                    raise SedError(": doesn't want any addresses")
                cmd.label = self.label()
                if not cmd.label:
                    raise SedError("\":\" lacks a label")
            elif name in "btT":
                cmd.label = self.label()
            elif name in "rwRW":
                cmd.arg = self.filename()
            elif name in "qQlL":
                self.ws()
                j = self.i
                while self.peek().isdigit():
                    self.i += 1
                cmd.arg = int(self.s[j:self.i]) if self.i > j else None
            elif name == "s":
                cmd.arg = self.subst()
            elif name == "y":
                delim = self.get()
                try:
                    src = self.delimited(delim, False)
                    dst = self.delimited(delim, False)
                except SedError:
                    raise SedError("unterminated `y' command") from None
                src, dst = _y_unescape(src), _y_unescape(dst)
                if len(src) != len(dst):
                    raise SedError("strings for `y' command are different lengths")
                cmd.arg = dict(zip(map(ord, src), dst))
            elif name in "=dDgGhHnNpPxzF":
                pass
            elif name == "e":
                raise Defer("sed e command runs a program")
            else:
                raise SedError(f"unknown command: `{name}'")
            self.ws()
            cmds.append(cmd)
            if self.peek() == "}" or name in ":btT":
                # compile.c has no read_end_of_cmd after a label: the next command may follow
                continue
            if self.peek() not in ("", "\n", ";", "#"):
                raise SedError("extra characters after command")
        if stack:
            raise SedError("unmatched `{'")
        return cmds

    def subst(self):
        delim = self.get()
        if delim in ("", "\n", "\\"):
            raise SedError("unterminated `s' command")
        try:
            pat = self.delimited(delim, True)
            repl = self.delimited(delim, False)
        except SedError:
            raise SedError("unterminated `s' command") from None
        flags = {"g": False, "p": False, "n": 1, "i": False, "m": False, "w": None, "e": False}
        while True:
            c = self.peek()
            if c == "g":
                flags["g"] = True
            elif c == "p":
                flags["p"] = True
            elif c in ("i", "I"):
                flags["i"] = True
            elif c in ("m", "M"):
                flags["m"] = True
            elif c.isdigit():
                j = self.i
                while self.peek().isdigit():
                    self.i += 1
                flags["n"] = int(self.s[j:self.i])
                if flags["n"] == 0:
                    raise SedError("number option to `s' command may not be zero")
                continue
            elif c == "w":
                self.i += 1
                flags["w"] = self.filename()
                break
            elif c == "e":
                flags["e"] = True  # run the pattern space as a shell command (GNU)
            else:
                break
            self.i += 1
        return (pat, repl, flags)


def _y_unescape(s: str) -> str:
    return s.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\")


# ---- execution ---------------------------------------------------------------------------------

class _Sed:
    def __init__(self, inv: Invocation, cmds: list[Cmd], quiet: bool, extended: bool, sep: str):
        self.inv = inv
        self.cmds = cmds
        self.quiet = quiet
        self.ext = extended
        self.sep = sep
        self.hold = ""
        self.last_re = None
        self.wfiles: dict[str, list[str]] = {}
        self.labels = {c.label: i for i, c in enumerate(cmds) if c.name == ":"}
        for c in cmds:
            if c.name in "btT" and c.label and c.label not in self.labels:
                raise _LabelError(f"can't find label for jump to `{c.label}'")
        self._cache: dict = {}
        for c in cmds:  # sed creates (truncates) every w file before reading input
            if c.name == "w":
                self.wfiles.setdefault(c.arg, [])
            elif c.name == "s" and c.arg[2]["w"] is not None:
                self.wfiles.setdefault(c.arg[2]["w"], [])

    def regex(self, text: str, flags: str):
        if text == "":
            if self.last_re is None:
                raise SedError("no previous regular expression")
            return self.last_re
        key = (text, flags)
        r = self._cache.get(key)
        if r is None:
            try:
                r = compile_posix(text, self.ext, "I" in flags or "i" in flags)
            except RegexError as e:
                raise SedError(str(e)) from None
            if "M" in flags or "m" in flags:
                r = re.compile(r.pattern.replace(r"\Z", "$").replace(r"\A", "^"), r.flags | re.MULTILINE)
            self._cache[key] = r
        self.last_re = r
        return r

    def match_addr(self, a, ps: str) -> bool:
        k = a[0]
        if k == "line":
            return self.lineno == a[1]
        if k == "last":
            return self.is_last()
        if k == "step":
            first, step = a[1], a[2]
            if step <= 0:
                return self.lineno == first
            return self.lineno >= first and (self.lineno - first) % step == 0
        return self.regex(a[1], a[2]).search(ps) is not None

    def selected(self, c: Cmd, ps: str) -> bool:
        if c.a1 is None:
            hit = True
        elif c.a2 is None:
            hit = self.match_addr(c.a1, ps)
        else:
            hit = self.range(c, ps)
        return hit != c.neg

    def range(self, c: Cmd, ps: str) -> bool:
        st = c.range_state
        if st is not None:
            kind = c.a2[0]
            if kind == "line":
                if self.lineno >= c.a2[1]:
                    c.range_state = None
                return True
            if kind == "plus":
                if self.lineno >= st + c.a2[1]:
                    c.range_state = None
                return True
            if kind == "mult":
                if c.a2[1] <= 0 or self.lineno % c.a2[1] == 0:
                    c.range_state = None
                return True
            if kind == "last":
                if self.is_last():
                    c.range_state = None
                return True
            if self.match_addr(c.a2, ps):
                c.range_state = None
            return True
        if c.a1 == ("line", 0):
            start = self.lineno == 1  # 0,/re/: active from the first line, never restarts
        else:
            start = self.match_addr(c.a1, ps)
        if not start:
            return False
        if c.a1 == ("line", 0):
            if self.match_addr(c.a2, ps):
                return True
            c.range_state = self.lineno
            return True
        kind = c.a2[0]
        if kind == "line" and c.a2[1] <= self.lineno:
            return True
        if kind == "plus" and c.a2[1] == 0:
            return True
        if kind == "mult" and (c.a2[1] <= 0 or self.lineno % c.a2[1] == 0):
            return True
        c.range_state = self.lineno
        return True

    def is_last(self) -> bool:
        return self.pos >= len(self.lines) and self.final_input

    def substitute(self, arg, ps: str) -> tuple[str, bool]:
        pat, repl, fl = arg
        r = self.regex(pat, ("i" if fl["i"] else "") + ("m" if fl["m"] else ""))
        count = 0
        out = []
        last = 0
        done = False
        for m in _matches(r, ps):
            count += 1
            if count < fl["n"]:
                continue
            out.append(ps[last:m.start()])
            out.append(_expand(repl, m))
            last = m.end()
            done = True
            if not fl["g"]:
                break
        if not done:
            return ps, False
        out.append(ps[last:])
        return "".join(out), True

    def run_file_lines(self, lines: list[str], final_input: bool, out: list[str], missing_nl: bool) -> None:
        """Run the script over ``lines``; output pieces are appended to ``out``."""
        self.lines, self.pos, self.final_input = lines, 0, final_input
        self.out = out
        self.missing_nl = missing_nl
        self.owe_nl = False
        while self.pos < len(self.lines):
            ps = self.lines[self.pos]
            self.pos += 1
            self.lineno += 1
            self.cycle(ps)

    def emit(self, text: str) -> None:
        """Output a pattern-space line; the input's last line keeps its missing newline."""
        self.write(text)
        if self.is_last() and self.missing_nl and self.pos >= len(self.lines):
            self.owe_nl = True
        else:
            self.out.append(self.sep)

    def write(self, text: str) -> None:
        # output_missing_newline(): later output first completes a line left open
        if self.owe_nl:
            self.out.append(self.sep)
            self.owe_nl = False
        self.out.append(text)

    def cycle(self, ps: str) -> None:
        append: list[str] = []
        tflag = False
        pc = 0
        autoprint = not self.quiet
        cmds = self.cmds
        while pc < len(cmds):
            c = cmds[pc]
            pc += 1
            if c.name == "}" or c.name == ":":
                continue
            if not self.selected(c, ps):
                if c.name == "{":
                    pc = c.block_end + 1
                continue
            n = c.name
            if n == "{":
                continue
            if n == "p":
                self.emit(ps)
            elif n == "d":
                autoprint = False
                break
            elif n == "D":
                if "\n" not in ps:
                    autoprint = False
                    break
                ps = ps[ps.index("\n") + 1:]
                self.flush_append(append)
                append = []
                pc = 0
                tflag = False
                continue
            elif n == "s":
                ps, did = self.substitute(c.arg, ps)
                if did:
                    tflag = True
                    if c.arg[2]["e"]:
                        ps = self.execute(ps)
                    if c.arg[2]["p"]:
                        self.emit(ps)
                    if c.arg[2]["w"] is not None:
                        self.write_to(c.arg[2]["w"], ps)
            elif n == "=":
                self.write(f"{self.lineno}\n")
            elif n == "a":
                # GNU: `$a\` with no text appends nothing but still completes an open last line
                append.append(c.arg + "\n" if c.arg else "")
            elif n == "i":
                self.write(c.arg + "\n")
            elif n == "c":
                if c.a2 is None or c.range_state is None or c.neg:
                    self.write(c.arg + "\n")
                autoprint = False
                break
            elif n == "y":
                ps = ps.translate(c.arg)
            elif n == "h":
                self.hold = ps
            elif n == "H":
                self.hold += "\n" + ps
            elif n == "g":
                ps = self.hold
            elif n == "G":
                ps += "\n" + self.hold
            elif n == "x":
                ps, self.hold = self.hold, ps
            elif n == "z":
                ps = ""
            elif n == "n":
                if self.pos >= len(self.lines):
                    if not self.quiet:
                        self.emit(ps)
                    autoprint = False
                    break
                if not self.quiet:
                    self.emit(ps)
                self.flush_append(append)
                append = []
                ps = self.lines[self.pos]
                self.pos += 1
                self.lineno += 1
            elif n == "N":
                if self.pos >= len(self.lines):
                    # GNU: at end of input N prints the pattern space (unless POSIXLY_CORRECT)
                    break
                self.flush_append(append)
                append = []
                ps += "\n" + self.lines[self.pos]
                self.pos += 1
                self.lineno += 1
            elif n == "P":
                self.emit(ps.split("\n", 1)[0])
            elif n in "qQ":
                if n == "q" and not self.quiet:
                    self.emit(ps)
                self.flush_append(append)
                raise _Quit(c.arg or 0, False)
            elif n in "bt" or n == "T":
                jump = n == "b" or (n == "t" and tflag) or (n == "T" and not tflag)
                if n in "tT" and (n == "t" and tflag or n == "T"):
                    tflag = False
                if jump:
                    if not c.label:
                        pc = len(cmds)
                    else:
                        pc = self.labels[c.label] + 1
            elif n == "r":
                try:
                    data = self.inv.fs.read_bytes(apath(self.inv, c.arg)).decode("latin-1")
                    append.append(data)
                except (OSError, ValueError):
                    pass
            elif n == "w":
                self.write_to(c.arg, ps)
            elif n == "l":
                raise Defer("sed l command")
            elif n in "RWF":
                raise Defer(f"sed {n} command")
        if autoprint:
            self.emit(ps)
        self.flush_append(append)

    def execute(self, command: str) -> str:
        """The ``e`` flag of ``s``: GNU sed runs the pattern space with ``/bin/sh -c`` (popen)
        and replaces it with the output, minus one trailing newline. The command runs through
        the interpreter (``inv.run``); the whole sed call is atomic (see :func:`sed`)."""
        status, out, errs = self.inv.run(["sh", "-c", command], b"")
        self.inv.err(errs)
        text = out.decode("latin-1")
        return text[:-1] if text.endswith("\n") else text

    def flush_append(self, append: list[str]) -> None:
        for a in append:
            self.write(a)

    def write_to(self, name: str, text: str) -> None:
        if name == "/dev/stdout":
            self.inv.out((text + "\n").encode("latin-1"))
            return
        self.wfiles.setdefault(name, []).append(text + "\n")


def _matches(r: re.Pattern, s: str):
    """Successive matches as GNU re_search finds them: no empty match right after a match."""
    pos, prev_end = 0, -1
    while pos <= len(s):
        m = r.search(s, pos)
        if m is None:
            return
        if m.start() == m.end() == prev_end:
            pos = m.start() + 1
            continue
        yield m
        prev_end = m.end()
        pos = m.end() if m.end() > m.start() else m.end() + 1


def _expand(repl: str, m: re.Match) -> str:
    out = []
    case = None  # "U" / "L" until \E
    one = None  # "u" / "l" for the next character
    i = 0

    def put(s: str) -> None:
        nonlocal one
        if not s:
            return
        if case == "U":
            s = s.upper()
        elif case == "L":
            s = s.lower()
        if one:
            s = (s[0].upper() if one == "u" else s[0].lower()) + s[1:]
            one = None
        out.append(s)

    while i < len(repl):
        c = repl[i]
        if c == "\\" and i + 1 < len(repl):
            d = repl[i + 1]
            i += 2
            if d.isdigit():
                g = int(d)
                if g > (m.re.groups):
                    raise SedError(f"invalid reference \\{g} on `s' command's RHS")
                put(m.group(g) or "")
            elif d == "n":
                put("\n")
            elif d == "t":
                put("\t")
            elif d == "&":
                put("&")
            elif d in "UL":
                case, one = d, None
            elif d in "ul":
                one = d
            elif d == "E":
                case = None
                one = None
            elif d == "\n":
                put("\n")
            else:
                put(d)
            continue
        if c == "&":
            put(m.group(0))
        else:
            put(c)
        i += 1
    return "".join(out)


# ---- the command -------------------------------------------------------------------------------

_SED = _args.spec("ne:f:Eri::szu", {"quiet": "n", "silent": "n", "expression": "e", "file": "f",
                                   "regexp-extended": "E", "in-place": ("i", _args.OPT), "separate": "s",
                                   "null-data": "z", "unbuffered": "u", "posix": ("posix", _args.NO),
                                   "follow-symlinks": ("follow-symlinks", _args.NO),
                                   "debug": ("debug", _args.NO), "sandbox": ("sandbox", _args.NO)})


def sed(inv: Invocation) -> int:
    """``sed [-nEsz] [-i[SUFFIX]] [--follow-symlinks] {-e SCRIPT | -f FILE | SCRIPT} [FILE...]``."""
    try:
        opts, ops = _args.parse(inv, _SED)
    except _args.UsageError as e:
        return _args.usage(inv, e, 1)
    quiet = extended = separate = follow = False
    inplace = None
    zero = False
    scripts: list[str] = []
    for k, v in opts:
        if k == "n":
            quiet = True
        elif k == "e":
            scripts.append(v)
        elif k == "f":
            try:
                data = inv.stdin if v == "-" else inv.fs.read_bytes(apath(inv, v))
            except OSError as e:
                err(inv, f"couldn't open file {v}: {errno_text(e)}")
                return 1
            text = bytes(data).decode("latin-1")
            scripts.append(text[:-1] if text.endswith("\n") else text)
        elif k in ("E", "r"):
            extended = True
        elif k == "i":
            inplace = v or ""
            separate = True
        elif k == "s":
            separate = True
        elif k == "z":
            zero = True
        elif k == "follow-symlinks":
            follow = True
        elif k == "debug":
            raise Defer("sed --debug")
    if not scripts:
        if not ops:
            raise Defer("sed without a script prints its usage text")
        scripts.append(ops.pop(0))
    script = "\n".join(scripts)
    parser = _Parser(script.encode("utf-8", "surrogateescape").decode("latin-1"), extended)
    try:
        cmds = parser.parse()
        machine = _Sed(inv, cmds, quiet, extended, "\0" if zero else "\n")
    except _LabelError as e:
        err(inv, str(e))
        return 4  # check_final_program() panics
    except SedError as e:
        where = 0 if "unmatched `{'" in str(e) else min(parser.i, len(parser.s))
        err(inv, f"-e expression #1, char {where}: {e}")
        return 1
    machine.lineno = 0
    if any(c.name == "s" and c.arg[2]["e"] for c in cmds):
        # s///e runs commands mid-stream: all or nothing, so a deferral inside never leaves
        # half of them done (dh_python3's prerm removes __pycache__ files this way)
        if inv.run is None or not hasattr(inv.fs, "savepoint"):
            raise Defer("sed s///e runs commands; no interpreter or savepoint to run them atomically")
        sp = inv.fs.savepoint()
        try:
            status = _run_files(inv, machine, ops, inplace, separate, follow, zero)
        except Defer:
            inv.fs.rollback_to(sp)
            raise
        inv.fs.release(sp)
        return status
    return _run_files(inv, machine, ops, inplace, separate, follow, zero)


def _run_files(inv: Invocation, machine, ops, inplace, separate, follow, zero) -> int:
    """Feed the input files (or stdin) through ``machine``; in-place edits written back."""
    files = ops or ["-"]
    if inplace is not None and not ops:
        err(inv, "no input files")
        return 4
    status = 0
    sep = "\0" if zero else "\n"
    try:
        if inplace is not None or separate:
            for name in files:
                data = _read(inv, name, inplace is not None, follow)
                if isinstance(data, int):
                    if data == 4 and inplace is None:
                        return 4
                    status = data
                    continue
                machine.lineno = 0  # -s and -i: each file is its own stream
                out: list[str] = []
                lines, missing = _split(data, sep)
                try:
                    machine.run_file_lines(lines, True, out, missing)
                except _Quit as q:
                    if inplace is not None:
                        _write_back(inv, name, "".join(out), inplace, follow)
                    else:
                        inv.out("".join(out).encode("latin-1"))
                    _flush_w(inv, machine)
                    return q.status
                if inplace is not None:
                    _write_back(inv, name, "".join(out), inplace, follow)
                else:
                    inv.out("".join(out).encode("latin-1"))
        else:
            chunks = []
            readable = []
            aborted = False
            for name in files:
                data = _read(inv, name, False, follow)
                if isinstance(data, int):
                    if data == 4:
                        aborted = True  # sed panics on a read error, after the lines before it
                        break
                    status = 2
                    continue
                readable.append(data)
            joined_lines: list[str] = []
            missing = False
            for d in readable:
                ls, miss = _split(d, sep)
                joined_lines.extend(ls)
                missing = miss
            out: list[str] = []
            try:
                machine.run_file_lines(joined_lines, not aborted, out, missing)
            except _Quit as q:
                inv.out("".join(out).encode("latin-1"))
                _flush_w(inv, machine)
                return q.status
            chunks.append("".join(out))
            inv.out("".join(chunks).encode("latin-1"))
            if aborted:
                return 4
    except SedError as e:
        err(inv, f"-e expression #1, char 0: {e}")
        return 1
    _flush_w(inv, machine)
    return status


def _split(data: str, sep: str) -> tuple[list[str], bool]:
    if data == "":
        return [], False
    parts = data.split(sep)
    if parts[-1] == "":
        return parts[:-1], False
    return parts, True


def _read(inv: Invocation, name: str, inplace: bool, follow: bool):
    if name == "-" and not inplace:
        return bytes(inv.stdin).decode("latin-1")
    p = apath(inv, name)
    try:
        st = inv.fs.stat(p)
        if inplace and not _stat.S_ISREG(st.st_mode):
            err(inv, f"couldn't edit {name}: not a regular file")
            return 4
        if _stat.S_ISDIR(st.st_mode):
            err(inv, f"read error on {name}: Is a directory")
            return 4
        if _stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            # the image's /dev/null (char 1:3) reads as empty on any Linux kernel (ca-certificates'
            # config: ``sed -ne ... /dev/null`` when there is no ca-certificates.conf yet); the
            # filesystem model cannot open a device node (ENXIO), so its content is known here
            return ""
        if not _stat.S_ISREG(st.st_mode):
            raise Defer(f"sed reads a special file {name!r}")
        return inv.fs.read_bytes(p).decode("latin-1")
    except OSError as e:
        err(inv, f"can't read {name}: {errno_text(e)}")
        return 2


def _write_back(inv: Invocation, name: str, text: str, suffix: str, follow: bool) -> None:
    """Replace ``name`` like sed -i: new file, original's mode and owner, rename over."""
    p = apath(inv, name)
    if follow:
        p = canonicalize(inv, p, "e")
    st = inv.fs.lstat(p) if not follow else inv.fs.stat(p)
    if _stat.S_ISLNK(st.st_mode):
        st = inv.fs.stat(p)
    d = posixpath.dirname(p) or "/"
    tmp = posixpath.join(d, "sedXXXXXX")
    n = 0
    while inv.fs.lexists(tmp):
        n += 1
        tmp = posixpath.join(d, f"sed{n:06d}")
    inv.fs.write_bytes(tmp, text.encode("latin-1"), 0o600)
    try:
        inv.fs.chown(tmp, st.st_uid, st.st_gid)
    except OSError:
        pass
    inv.fs.chmod(tmp, _stat.S_IMODE(st.st_mode))
    if suffix:
        base = posixpath.basename(p)
        bname = suffix.replace("*", base) if "*" in suffix else base + suffix
        bpath = bname if bname.startswith("/") else posixpath.join(d, bname)
        inv.fs.rename(p, bpath)
    inv.fs.rename(tmp, p)


def _flush_w(inv: Invocation, machine: _Sed) -> None:
    for name, lines in machine.wfiles.items():
        if name == "/dev/stdout":
            continue
        inv.fs.write_bytes(apath(inv, name), "".join(lines).encode("latin-1"), 0o666 & ~inv.umask)

