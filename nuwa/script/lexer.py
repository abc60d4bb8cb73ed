"""The context-sensitive shell lexer: tokens, words with their inner structure, here-documents.

Token recognition follows POSIX XCU 2.3: operators by longest match, blanks separate, a
``#`` at the start of a word begins a comment, ``\\<newline>`` is a line continuation. A word
is scanned once into :mod:`nuwa.script.ast` parts (quotes, parameter expansions, command
substitutions, arithmetic), so nothing is re-scanned later. Command substitutions ``$(...)``
are parsed in place by the parser that owns this lexer (the lexer calls back into it), which
is how dash handles ``case ... )`` inside ``$( )``; backquoted commands are first unescaped
by the backquote rules (XCU 2.6.3) and then parsed as their own text.

Here-documents (XCU 2.7.4): the parser registers each ``<<``/``<<-`` with :meth:`Lexer.add_heredoc`
when it reads the delimiter; when the lexer next consumes a newline token it reads the pending
bodies, in order, from the following lines.

The lexer never decides whether a word is a reserved word: that depends on the grammar
position, which only the parser knows (XCU 2.4).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from nuwa.script.ast import ArithExp, ArrayLiteral, CommandSubst, DoubleQuoted, IoRedirect, Lit, ParamExp, Word

WORD = "WORD"
OP = "OP"
NEWLINE = "NEWLINE"
IO_NUMBER = "IO_NUMBER"
EOF = "EOF"

#: operators, longest first so that longest-match works by trying in order (XCU 2.10.1)
OPERATORS = (
    "<<<", ";;&", "<<-", "&&", "||", ";;", ";&", "<<", ">>", "<&", ">&", "<>", ">|", "&>", "|&",
    ";", "&", "|", "(", ")", "<", ">",
)
BASH_ONLY_OPS = {"<<<", ";;&", ";&", "&>", "|&"}
METACHARS = frozenset(" \t\n;&|()<>")
_PLAIN = re.compile(r"[^ \t\n;&|()<>\\'\"$`]+")
_DQ_PLAIN = re.compile(r'[^\\"$`]+')
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
SPECIAL_PARAMS = "@*#?-$!"


class ParseError(Exception):
    """A syntax error, with the line and column where it was found.

    ``message`` is the text dash prints after ``Syntax error: `` (or alone, for
    ``Bad substitution``); ``str()`` names line and column.
    """

    def __init__(self, message: str, line: int, col: int, syntax: bool = True):
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.syntax = syntax

    def __str__(self) -> str:
        return f"line {self.line}, column {self.col}: {self.message}"

    def dash_text(self) -> str:
        """The message as dash prints it after ``sh: LINE: ``."""
        return ("Syntax error: " + self.message) if self.syntax else self.message


@dataclass
class Token:
    """One token: ``kind`` is WORD, OP, NEWLINE, IO_NUMBER or EOF."""

    kind: str
    value: str
    word: Word | None = None
    line: int = 0
    col: int = 0
    pos: int = 0


@dataclass
class _PendingHeredoc:
    redirect: IoRedirect
    delimiter: str
    quoted: bool
    strip_tabs: bool


class Lexer:
    """Scans ``src``; ``base_line`` numbers the first line (sub-lexers of backquotes use it)."""

    def __init__(self, src: str, base_line: int = 1, bash: bool = False, subparse=None, parse_text=None):
        self.src = src
        self.pos = 0
        self.base_line = base_line
        self.bash = bash
        self._nl = [i for i, c in enumerate(src) if c == "\n"]
        self.pending: list[_PendingHeredoc] = []
        #: ``subparse(lexer) -> List``: parse a ``$(...)`` body up to its ``)`` (set by the parser)
        self.subparse = subparse
        #: ``parse_text(text, base_line) -> list``: parse a backquoted body (set by the parser;
        #: a callback, so that the lexer never imports the parser that imports it)
        self.parse_text = parse_text

    # ---- positions -----------------------------------------------------------------------
    def line_of(self, pos: int) -> int:
        """The line number of offset ``pos``."""
        return self.base_line + bisect.bisect_left(self._nl, pos)

    def col_of(self, pos: int) -> int:
        """The 1-based column of offset ``pos``."""
        i = bisect.bisect_left(self._nl, pos)
        start = self._nl[i - 1] + 1 if i > 0 else 0
        return pos - start + 1

    def error(self, message: str, pos: int | None = None, syntax: bool = True) -> ParseError:
        """A :class:`ParseError` at ``pos`` (default: the current position)."""
        p = self.pos if pos is None else pos
        return ParseError(message, self.line_of(p), self.col_of(p), syntax)

    # ---- tokens --------------------------------------------------------------------------
    def add_heredoc(self, redirect: IoRedirect, delimiter: str, quoted: bool, strip_tabs: bool) -> None:
        """Register a here-document whose body starts after the next newline token."""
        self.pending.append(_PendingHeredoc(redirect, delimiter, quoted, strip_tabs))

    def skip_blanks(self) -> None:
        """Skip blanks, line continuations and a comment (up to, not including, the newline)."""
        src, n = self.src, len(self.src)
        while self.pos < n:
            c = src[self.pos]
            if c == " " or c == "\t":
                self.pos += 1
            elif c == "\\" and src.startswith("\\\n", self.pos):
                self.pos += 2
            elif c == "#":
                j = src.find("\n", self.pos)
                self.pos = n if j < 0 else j
            else:
                break

    def next_token(self) -> Token:
        """The next token in ordinary (command) context."""
        self.skip_blanks()
        src, pos = self.src, self.pos
        line, col = self.line_of(pos), self.col_of(pos)
        if pos >= len(src):
            return Token(EOF, "", None, line, col, pos)
        c = src[pos]
        if c == "\n":
            self.pos += 1
            if self.pending:
                self.read_heredocs()
            return Token(NEWLINE, "\n", None, line, col, pos)
        if c in ";&|()<>":
            for op in OPERATORS:
                if src.startswith(op, pos) and (self.bash or op not in BASH_ONLY_OPS):
                    self.pos += len(op)
                    return Token(OP, op, None, line, col, pos)
        if c.isdigit():
            j = pos
            while j < len(src) and src[j].isdigit():
                j += 1
            if j < len(src) and src[j] in "<>":
                self.pos = j
                return Token(IO_NUMBER, src[pos:j], None, line, col, pos)
        word = self.read_word()
        return Token(WORD, word.text, word, line, col, pos)

    def dbracket_token(self) -> Token:
        """A token inside bash's ``[[ ]]``: ``&& || ( ) !`` are operators, ``< >`` words."""
        self.skip_blanks()
        while self.src.startswith("\n", self.pos):
            self.pos += 1
            self.skip_blanks()
        src, pos = self.src, self.pos
        line, col = self.line_of(pos), self.col_of(pos)
        if pos >= len(src):
            return Token(EOF, "", None, line, col, pos)
        for op in ("&&", "||", "(", ")"):
            if src.startswith(op, pos):
                self.pos += len(op)
                return Token(OP, op, None, line, col, pos)
        if src[pos] in "<>":
            self.pos += 1
            return Token(WORD, src[pos], Word([Lit(src[pos])], src[pos]), line, col, pos)
        word = self.read_word(dbracket=True)
        return Token(WORD, word.text, word, line, col, pos)

    # ---- words ---------------------------------------------------------------------------
    def read_word(self, dbracket: bool = False) -> Word:
        """Scan one word in command context (stops at an unquoted metacharacter)."""
        src, n = self.src, len(self.src)
        start = self.pos
        parts: list = []
        buf: list[str] = []

        def flush():
            if buf:
                parts.append(Lit("".join(buf)))
                buf.clear()

        while self.pos < n:
            c = src[self.pos]
            if c in METACHARS:
                if dbracket and c in "<>|" and not src.startswith("||", self.pos):
                    buf.append(c)  # inside [[ ]], =~ regexes may hold | < >
                    self.pos += 1
                    continue
                if (
                    self.bash and c == "(" and buf and not parts
                    and re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*\+?=", "".join(buf))
                ):
                    flush()
                    parts.append(self.read_array_literal())
                    continue
                break
            m = _PLAIN.match(src, self.pos)
            if m:
                buf.append(m.group())
                self.pos = m.end()
                continue
            if c == "\\":
                if src.startswith("\\\n", self.pos):
                    self.pos += 2
                elif self.pos + 1 >= n:
                    buf.append("\\")
                    self.pos += 1
                else:
                    flush()
                    parts.append(Lit(src[self.pos + 1], True))
                    self.pos += 2
            elif c == "'":
                flush()
                parts.append(self.read_single_quoted())
            elif c == '"':
                flush()
                parts.append(self.read_double_quoted())
            elif c == "$":
                part = self.read_dollar(False)
                if part is None:
                    buf.append("$")
                else:
                    flush()
                    parts.append(part)
            elif c == "`":
                flush()
                parts.append(self.read_backquote(False))
            else:  # pragma: no cover - _PLAIN covers every other character
                buf.append(c)
                self.pos += 1
        flush()
        return Word(parts, src[start : self.pos])

    def read_array_literal(self):
        """bash ``name=(w1 w2 ...)``: the element words, as an ``ArrayLiteral`` part."""
        self.pos += 1  # (
        words = []
        while True:
            self.skip_blanks()
            while self.src.startswith("\n", self.pos):
                self.pos += 1
                self.skip_blanks()
            if self.pos >= len(self.src):
                raise self.error("end of file unexpected (expecting \")\")")
            if self.src[self.pos] == ")":
                self.pos += 1
                return ArrayLiteral(words)
            words.append(self.read_word())

    def read_single_quoted(self) -> Lit:
        """``'...'``: everything literal up to the next quote."""
        j = self.src.find("'", self.pos + 1)
        if j < 0:
            raise self.error("Unterminated quoted string")
        text = self.src[self.pos + 1 : j]
        self.pos = j + 1
        return Lit(text, True)

    def read_double_quoted(self) -> DoubleQuoted:
        """``"..."``: backslash escapes only ``$ ` " \\`` and newline (XCU 2.2.3)."""
        start = self.pos
        self.pos += 1
        parts = self.read_dq_parts('"')
        if self.pos >= len(self.src):
            raise self.error("Unterminated quoted string", start)
        self.pos += 1
        return DoubleQuoted(parts)

    def read_dq_parts(self, end: str | None, escapable: str = '$`"\\') -> list:
        """Parts of double-quoted-like text up to ``end`` (None: to the end of the source).

        Used for the inside of ``"..."`` and of unquoted here-document bodies (where
        ``"`` is not special: ``escapable`` then omits it).
        """
        src, n = self.src, len(self.src)
        parts: list = []
        buf: list[str] = []

        def flush():
            if buf:
                parts.append(Lit("".join(buf), True))
                buf.clear()

        while self.pos < n:
            c = src[self.pos]
            if end is not None and c == end:
                break
            if c == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                if nxt == "\n":
                    self.pos += 2
                elif nxt and nxt in escapable:
                    buf.append(nxt)
                    self.pos += 2
                else:
                    buf.append("\\")
                    self.pos += 1
            elif c == "$":
                part = self.read_dollar(True)
                if part is None:
                    buf.append("$")
                else:
                    flush()
                    parts.append(part)
            elif c == "`":
                flush()
                parts.append(self.read_backquote(True))
            else:
                m = _DQ_PLAIN.match(src, self.pos)
                text = m.group() if m else c
                if end is not None and end in text:
                    text = text[: text.index(end)]
                buf.append(text)
                self.pos += len(text)
        flush()
        return parts

    # ---- expansions ----------------------------------------------------------------------
    def read_dollar(self, dq: bool):
        """The expansion at ``$`` (the current position), or None for a literal ``$``."""
        src, pos = self.src, self.pos
        nxt = src[pos + 1 : pos + 2]
        if nxt == "{":
            return self.read_braced_param(dq)
        if nxt == "(":
            if src.startswith("((", pos + 1):
                arith = self.try_arith()
                if arith is not None:
                    return arith
            self.pos = pos + 2
            body = self.subparse(self)
            return CommandSubst(body)
        if nxt and (nxt.isalpha() or nxt == "_"):
            m = _NAME.match(src, pos + 1)
            self.pos = m.end()
            return ParamExp(m.group())
        if nxt and (nxt.isdigit() or nxt in SPECIAL_PARAMS):
            self.pos = pos + 2
            return ParamExp(nxt)
        if self.bash and not dq and nxt == "'":
            self.pos = pos + 1
            return self.read_ansi_c()
        if self.bash and not dq and nxt == '"':
            self.pos = pos + 1
            return self.read_double_quoted()
        self.pos = pos + 1
        return None

    def try_arith(self) -> ArithExp | None:
        """``$((expr))`` if the parentheses close as ``))``, else None (then it is ``$( (..) )``)."""
        src, n = self.src, len(self.src)
        i = self.pos + 3
        depth = 0
        start = i
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    if src.startswith("))", i):
                        break
                    if self.bash:  # bash reads `$((cmd) ...)` as a command substitution
                        return None
                    raise self.error("Missing '))'", self.pos)  # dash: `$((` is arithmetic
                depth -= 1
            elif c in "'\"":
                j = src.find(c, i + 1)
                if j < 0:
                    break
                i = j
            i += 1
        else:
            raise self.error("Missing '))'", self.pos)
        if i >= n:
            raise self.error("Missing '))'", self.pos)
        sub = Lexer(src[start:i], self.line_of(start), self.bash, self.subparse, self.parse_text)
        parts = sub.read_dq_parts(None, escapable='$`"\\')
        self.pos = i + 2
        return ArithExp(Word(parts, src[start:i]))

    def read_braced_param(self, dq: bool) -> ParamExp:
        """``${...}`` in all its forms (XCU 2.6.2), plus bash's ``/``, ``:o:l`` and ``[i]``."""
        src, n = self.src, len(self.src)
        start = self.pos
        self.pos += 2

        def bad() -> ParamExp:
            # dash reports a malformed ${...} only when it is expanded ("Bad substitution"),
            # so `dash -n` accepts it: keep it as a node that fails at run time
            j = src.find("}", self.pos)
            if j < 0:
                raise self.error("Missing '}'", start)
            self.pos = j + 1
            return ParamExp("", "bad", Word([Lit(src[start : j + 1])], src[start : j + 1]))

        length = False
        if src.startswith("#", self.pos) and self.pos + 1 < n and src[self.pos + 1] != "}":
            c = src[self.pos + 1]
            if c.isalnum() or c == "_" or (c in SPECIAL_PARAMS and src[self.pos + 2 : self.pos + 3] == "}"):
                length = True
                self.pos += 1
        name = self._param_name()
        if name is None:
            if self.pos >= n:
                raise self.error("Missing '}'", start)
            return bad()
        index = None
        if self.bash and src.startswith("[", self.pos):
            self.pos += 1
            index = self.read_param_word("]", dq=True)
            self.pos += 1
        if self.pos >= n:
            raise self.error("Missing '}'", start)
        if length:
            if src[self.pos] != "}":
                return bad()
            self.pos += 1
            return ParamExp(name, "len", index=index)
        c = src[self.pos]
        if c == "}":
            self.pos += 1
            return ParamExp(name, index=index)
        colon = False
        if c == ":":
            colon = True
            self.pos += 1
            c = src[self.pos : self.pos + 1]
            if c not in ("-", "=", "?", "+"):
                if not self.bash:
                    return bad()
                off = self.read_param_word("}:", dq)
                ln = None
                if src.startswith(":", self.pos):
                    self.pos += 1
                    ln = self.read_param_word("}", dq)
                self._close_brace(start)
                return ParamExp(name, "slice", off, word2=ln, index=index)
        if c in ("-", "=", "?", "+"):
            self.pos += 1
            word = self.read_param_word("}", dq, pattern=False)
            self._close_brace(start)
            return ParamExp(name, c, word, colon, index=index)
        if colon:
            return bad()
        if c in ("%", "#"):
            op = c
            self.pos += 1
            if src.startswith(c, self.pos):
                op += c
                self.pos += 1
            word = self.read_param_word("}", dq, pattern=True)
            self._close_brace(start)
            return ParamExp(name, "rm" + op, word, index=index)
        if self.bash and c in "/^,":
            op = c
            self.pos += 1
            if src.startswith(c, self.pos) or (c == "/" and src[self.pos : self.pos + 1] in ("#", "%")):
                op += src[self.pos]
                self.pos += 1
            pat = self.read_param_word("/}" if c == "/" else "}", dq, pattern=True)
            rep = None
            if c == "/" and src.startswith("/", self.pos):
                self.pos += 1
                rep = self.read_param_word("}", dq)
            self._close_brace(start)
            return ParamExp(name, "sub" + op if c == "/" else "case" + op, pat, word2=rep, index=index)
        return bad()

    def _close_brace(self, start: int) -> None:
        if not self.src.startswith("}", self.pos):
            raise self.error("Missing '}'", start)
        self.pos += 1

    def _param_name(self) -> str | None:
        src = self.src
        m = _NAME.match(src, self.pos)
        if m:
            self.pos = m.end()
            return m.group()
        c = src[self.pos : self.pos + 1]
        if c.isdigit():
            j = self.pos
            while j < len(src) and src[j].isdigit():
                j += 1
            name = src[self.pos : j]
            self.pos = j
            return name
        if c and c in SPECIAL_PARAMS:
            self.pos += 1
            return c
        return None

    def read_param_word(self, ends: str, dq: bool, pattern: bool = False) -> Word:
        """The word operand of ``${x op word}``, up to an unmatched character of ``ends``.

        Blanks are literal here. Inside double quotes, single quotes are literal for the
        ``- = ? +`` forms (dash prints ``'b'`` for ``"${u-'b'}"``) but quote in patterns.
        """
        src, n = self.src, len(self.src)
        start = self.pos
        parts: list = []
        buf: list[str] = []
        depth = 0

        def flush():
            if buf:
                # inside "${x%pat}" the pattern is still a pattern (XCU 2.6.2)
                parts.append(Lit("".join(buf), dq and not pattern))
                buf.clear()

        while self.pos < n:
            c = src[self.pos]
            if c in ends and depth == 0:
                break
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            if c == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                if nxt == "\n":
                    self.pos += 2
                    continue
                if dq and nxt not in '$`"\\}':
                    # inside "...": a backslash before another character stays, and that
                    # character is taken literally with it: `"${x#\'}"` is not a quote and
                    # `\{` opens no brace (dash's readtoken1 reads both as plain characters)
                    buf.append("\\" + nxt)
                    self.pos += 1 + len(nxt)
                    continue
                flush()
                parts.append(Lit(nxt, True))
                self.pos += 2
            elif c == "'" and (not dq or pattern):
                flush()
                parts.append(self.read_single_quoted())
            elif c == '"':
                flush()
                parts.append(self.read_double_quoted())
            elif c == "$":
                part = self.read_dollar(dq)
                if part is None:
                    buf.append("$")
                else:
                    flush()
                    parts.append(part)
            elif c == "`":
                flush()
                parts.append(self.read_backquote(dq))
            else:
                buf.append(c)
                self.pos += 1
        if self.pos >= n:
            raise self.error("Missing '}'", start)
        flush()
        return Word(parts, src[start : self.pos])

    def read_ansi_c(self) -> Lit:
        """bash ``$'...'`` (the current position is at the quote): C escapes decoded."""
        src = self.src
        i = self.pos + 1
        out: list[str] = []
        esc = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
               "e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}
        while i < len(src) and src[i] != "'":
            c = src[i]
            if c == "\\" and i + 1 < len(src):
                d = src[i + 1]
                if d in esc:
                    out.append(esc[d])
                    i += 2
                elif d in "01234567":
                    m = re.match(r"[0-7]{1,3}", src[i + 1 :])
                    out.append(chr(int(m.group(), 8) & 0xFF))
                    i += 1 + len(m.group())
                elif d == "x":
                    m = re.match(r"[0-9a-fA-F]{1,2}", src[i + 2 :])
                    if m:
                        out.append(chr(int(m.group(), 16)))
                        i += 2 + len(m.group())
                    else:
                        out.append("\\x")
                        i += 2
                else:
                    out.append("\\" + d)
                    i += 2
            else:
                out.append(c)
                i += 1
        if i >= len(src):
            raise self.error("Unterminated quoted string")
        self.pos = i + 1
        return Lit("".join(out), True)

    def read_backquote(self, dq: bool) -> CommandSubst:
        """`` `...` ``: unescape ``\\$ \\` \\\\`` (and ``\\"`` inside double quotes), then parse."""
        src, n = self.src, len(self.src)
        start = self.pos
        i = self.pos + 1
        out: list[str] = []
        while i < n and src[i] != "`":
            c = src[i]
            if c == "\\" and i + 1 < n:
                d = src[i + 1]
                if d in "$`\\" or (dq and d == '"'):
                    out.append(d)
                    i += 2
                    continue
                if d == "\n":
                    i += 2
                    continue
                out.append(c)
                i += 1
                continue
            out.append(c)
            i += 1
        if i >= n:
            raise self.error("EOF in backquote substitution", start)
        self.pos = i + 1
        # the parser owns the grammar: it parses the unescaped body with a fresh parser
        return CommandSubst(self.parse_text("".join(out), self.line_of(start)), backquoted=True)

    # ---- here-documents ------------------------------------------------------------------
    def read_heredocs(self) -> None:
        """Read the bodies of the pending here-documents from the current line on."""
        pending, self.pending = self.pending, []
        src, n = self.src, len(self.src)
        for hd in pending:
            body_start = self.pos
            lines: list[str] = []
            while True:
                if self.pos >= n:
                    break  # dash takes the rest of the file as the body
                j = src.find("\n", self.pos)
                end = n if j < 0 else j
                line = src[self.pos : end]
                self.pos = end + 1 if j >= 0 else n
                if hd.strip_tabs:
                    line = line.lstrip("\t")
                if line == hd.delimiter:
                    break
                lines.append(line + ("\n" if j >= 0 else ""))
            text = "".join(lines)
            if hd.quoted:
                hd.redirect.heredoc = Word([Lit(text, True)], text)
            else:
                sub = Lexer(text, self.line_of(body_start), self.bash, self.subparse, self.parse_text)
                parts = sub.read_dq_parts(None, escapable="$`\\")
                hd.redirect.heredoc = Word(parts, text)
