"""A hand-written recursive-descent parser for POSIX sh as dash accepts it (XCU 2.10).

``parse(text)`` returns a :class:`nuwa.script.ast.Program` or raises
:class:`nuwa.script.lexer.ParseError` naming the line and column. Reserved words are
recognised only where the grammar allows them (XCU 2.4: the first word of a command, and
``in``/``do`` in ``for``/``case``), so ``echo if`` is a plain command. With ``bash=True`` the
few bash forms Debian's bash maintainer scripts use are accepted too: ``[[ ]]``, ``(( ))``,
``function name``, ``$'...'``, arrays, ``<<<``, ``&>``, ``;&``.

The grammar functions carry the names of the productions they implement.
"""

from __future__ import annotations

import functools
import re

from nuwa.script.ast import (
    AndOr, ArithCommand, Assignment, BraceGroup, CaseClause, CaseItem, DoubleBracket, ForClause,
    FunctionDefinition, IfClause, IoRedirect, List, ListItem, Lit, Pipeline, Program,
    SimpleCommand, Subshell, WhileClause, Word,
)
from nuwa.script.ast import ArrayLiteral
from nuwa.script.lexer import EOF, IO_NUMBER, NEWLINE, OP, WORD, Lexer, ParseError, Token

__all__ = ["parse", "Parser", "ParseError"]

RESERVED = frozenset(
    "if then else elif fi do done case esac while until for { } ! in".split()
)
BASH_RESERVED = frozenset({"function", "[["})
#: words that end a compound list; meeting one where a command should start is an error
_CLOSERS = frozenset("then else elif fi do done esac } )".split())
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)(\+?)=")
REDIRECT_OPS = frozenset({"<", ">", ">>", ">|", "<>", "<&", ">&", "<<", "<<-", "<<<", "&>"})


def parse(text: str, bash: bool = False) -> Program:
    """Parse a whole script (pure: no I/O). Raises ParseError on a syntax error.

    Trees are memoised by text: a patch run interprets the same scripts over and over
    (``dpkg-maintscript-helper`` once per call, ``confmodule`` and ``init-functions`` in every
    script that sources them), the interpreter never changes a tree, and a syntax error is
    not memoised (it is raised again).
    """
    return _parse_memo(text, bash)


@functools.lru_cache(maxsize=256)
def _parse_memo(text: str, bash: bool) -> Program:
    return Parser(text, bash=bash).parse_program()


def is_name(s: str) -> bool:
    """XCU 3.235 Name: letters, digits, underscore, not starting with a digit."""
    return bool(_NAME_RE.match(s))


class Parser:
    """One parser over one lexer; ``$(...)`` bodies are parsed by child parsers on the same lexer."""

    def __init__(self, text: str | None = None, base_line: int = 1, bash: bool = False, lexer: Lexer | None = None):
        self.bash = bash
        self.lx = lexer if lexer is not None else Lexer(text, base_line, bash, self._subparse, self._parse_backquoted)
        if self.lx.subparse is None:
            self.lx.subparse = self._subparse
        if self.lx.parse_text is None:
            self.lx.parse_text = self._parse_backquoted
        self.tok: Token | None = None

    # ---- token plumbing ------------------------------------------------------------------
    def peek(self) -> Token:
        if self.tok is None:
            self.tok = self.lx.next_token()
        return self.tok

    def next(self) -> Token:
        t = self.peek()
        self.tok = None
        return t

    def _reserved(self, t: Token) -> str | None:
        """The reserved word ``t`` spells (unquoted literal), else None."""
        if t.kind != WORD:
            return None
        lit = t.word.literal()
        if lit in RESERVED or (self.bash and lit in BASH_RESERVED):
            return lit
        return None

    def _describe(self, t: Token) -> str:
        if t.kind == EOF:
            return "end of file"
        if t.kind == NEWLINE:
            return "newline"
        return f'"{t.value}"'

    def unexpected(self, t: Token, expecting: str | None = None) -> ParseError:
        """dash's message: ``"X" unexpected`` or ``... unexpected (expecting "Y")``."""
        msg = f"{self._describe(t)} unexpected"
        if expecting:
            msg += f' (expecting "{expecting}")'
        return ParseError(msg, t.line, t.col)

    def expect_word(self, word: str) -> Token:
        t = self.next()
        if self._reserved(t) != word:
            raise self.unexpected(t, word)
        return t

    def expect_op(self, op: str) -> Token:
        t = self.next()
        if t.kind != OP or t.value != op:
            raise self.unexpected(t, op)
        return t

    def linebreak(self) -> None:
        """``linebreak``: any number of newlines."""
        while self.peek().kind == NEWLINE:
            self.next()

    # ---- programs and lists --------------------------------------------------------------
    def parse_program(self) -> Program:
        """``program``: complete commands separated by newlines, to end of input."""
        body = self.compound_list(top=True)
        t = self.peek()
        if t.kind != EOF:
            raise self.unexpected(t)
        return Program(body, self.lx.src)

    def _parse_backquoted(self, text: str, base_line: int) -> list:
        """The body of a backquoted substitution (already unescaped by the lexer), as commands."""
        return Parser(text, base_line=base_line, bash=self.bash).parse_program().body

    def _subparse(self, lexer: Lexer) -> List:
        """Parse a ``$(...)`` body on ``lexer`` up to and including its ``)``."""
        child = Parser(bash=self.bash, lexer=lexer)
        body = child.compound_list(allow_empty=True)
        t = child.next()
        if t.kind != OP or t.value != ")":
            raise child.unexpected(t, ")")
        return body

    def _at_end(self, t: Token, top: bool) -> bool:
        if t.kind == EOF:
            return True
        if t.kind == OP and t.value in (")", ";;", ";&", ";;&") and not top:
            return True
        if not top and t.kind == WORD and t.word.literal() in _CLOSERS:
            return True
        return False

    def compound_list(self, top: bool = False, allow_empty: bool = False, expect: str | None = None) -> List:
        """``compound_list`` (and ``complete_command``s at top level): and_or items with separators.

        ``expect`` names the word that should close the list, for dash's message at end of file.
        """
        items: list[ListItem] = []
        self.linebreak()
        while True:
            t = self.peek()
            if t.kind == EOF and expect is not None:
                raise self.unexpected(t, expect)
            if self._at_end(t, top):
                break
            ao = self.and_or()
            t = self.peek()
            bg = False
            if t.kind == OP and t.value in (";", "&"):
                self.next()
                bg = t.value == "&"
                items.append(ListItem(ao, bg, t.line))
                if self.peek().kind == NEWLINE:
                    self.next()
                    items[-1].end_line = self.lx.line_of(max(0, self.lx.pos - 1))
                self.linebreak()
                continue
            items.append(ListItem(ao, bg, t.line))
            if t.kind == NEWLINE:
                self.next()  # reading the newline also reads pending here-document bodies
                items[-1].end_line = self.lx.line_of(max(0, self.lx.pos - 1))
                self.linebreak()
                continue
            if self._at_end(t, top):
                break
            raise self.unexpected(t)
        if not items and not top and not allow_empty:
            raise self.unexpected(self.peek())
        return List(items)

    def and_or(self) -> AndOr:
        """``and_or``: pipelines joined by ``&&`` and ``||``."""
        first = self.pipeline()
        node = AndOr([first], [], first.line)
        while True:
            t = self.peek()
            if t.kind == OP and t.value in ("&&", "||"):
                self.next()
                self.linebreak()
                node.ops.append(t.value)
                node.pipelines.append(self.pipeline())
            else:
                return node

    def pipeline(self) -> Pipeline:
        """``pipeline``: ``[!] command [| command]...``."""
        t = self.peek()
        bang = False
        line = t.line
        if self._reserved(t) == "!":
            self.next()
            bang = True
        cmds = [self.command()]
        while True:
            t = self.peek()
            if t.kind == OP and t.value in ("|", "|&"):
                self.next()
                self.linebreak()
                cmds.append(self.command())
            else:
                return Pipeline(cmds, bang, line)

    # ---- commands ------------------------------------------------------------------------
    def command(self):
        """``command``: a compound command (with redirections), a function definition, or a simple command."""
        t = self.peek()
        if t.kind == OP and t.value == "(":
            if self.bash and self.lx.src.startswith("(", t.pos + 1):
                node = self.arith_command()
            else:
                node = self.subshell()
            return self._redirects_after(node)
        rw = self._reserved(t)
        if rw is not None:
            handler = {
                "if": self.if_clause, "while": self.while_clause, "until": self.while_clause,
                "for": self.for_clause, "case": self.case_clause, "{": self.brace_group,
                "function": self.bash_function, "[[": self.double_bracket,
            }.get(rw)
            if handler is None:
                raise self.unexpected(t)
            node = handler()
            if isinstance(node, FunctionDefinition):
                return node
            return self._redirects_after(node)
        if t.kind in (EOF, NEWLINE) or (t.kind == OP and t.value not in REDIRECT_OPS):
            raise self.unexpected(t)
        return self.simple_command()

    def _redirects_after(self, node):
        while True:
            t = self.peek()
            if t.kind == IO_NUMBER or (t.kind == OP and t.value in REDIRECT_OPS):
                node.redirects.append(self.io_redirect())
            else:
                return node

    def simple_command(self):
        """``simple_command`` (or ``function_definition`` when ``name ( )`` follows)."""
        first = self.peek()
        node = SimpleCommand(line=first.line)
        while True:
            t = self.peek()
            if t.kind == IO_NUMBER or (t.kind == OP and t.value in REDIRECT_OPS):
                node.redirects.append(self.io_redirect())
                continue
            if t.kind != WORD:
                break
            self.next()
            w = t.word
            if not node.words:
                a = self._assignment(w)
                if a is not None:
                    node.assigns.append(a)
                    continue
                if not node.assigns and not node.redirects:
                    nt = self.peek()
                    if nt.kind == OP and nt.value == "(":
                        return self.function_definition(t)
            node.words.append(w)
        if not node.words and not node.assigns and not node.redirects:
            raise self.unexpected(self.peek())
        return node

    def _assignment(self, w: Word) -> Assignment | None:
        """``ASSIGNMENT_WORD`` (XCU 2.10.2 rule 7): an unquoted ``name=`` prefix."""
        if not w.parts or not isinstance(w.parts[0], Lit) or w.parts[0].quoted:
            return None
        m = _ASSIGN_RE.match(w.parts[0].text)
        if not m or (m.group(2) and not self.bash):
            return None
        rest_text = w.parts[0].text[m.end():]
        rest = ([Lit(rest_text)] if rest_text else []) + list(w.parts[1:])
        if rest and isinstance(rest[0], ArrayLiteral):
            return Assignment(m.group(1), Word([], ""), bool(m.group(2)), rest[0].words)
        return Assignment(m.group(1), Word(rest, w.text[m.end():]), bool(m.group(2)))

    def io_redirect(self) -> IoRedirect:
        """``io_redirect``: ``[IO_NUMBER] op word``; here-documents are registered with the lexer."""
        t = self.next()
        fd = None
        if t.kind == IO_NUMBER:
            fd = int(t.value)
            t = self.next()
            if t.kind != OP or t.value not in REDIRECT_OPS:
                raise self.unexpected(t)
        op = t.value
        wt = self.next()
        if wt.kind != WORD:
            raise self.unexpected(wt)
        r = IoRedirect(op, wt.word, fd, line=t.line)
        if op in ("<<", "<<-"):
            delim = "".join(_unquoted_text(p) for p in wt.word.parts)
            self.lx.add_heredoc(r, delim, wt.word.has_quotes(), op == "<<-")
        return r

    def function_definition(self, name_tok: Token) -> FunctionDefinition:
        """``function_definition``: ``fname ( ) linebreak compound_command``."""
        name = name_tok.word.literal()
        if name is None or not is_name(name):
            raise ParseError("Bad function name", name_tok.line, name_tok.col)
        self.expect_op("(")
        self.expect_op(")")
        self.linebreak()
        return FunctionDefinition(name, self._function_body(), name_tok.line)

    def _function_body(self):
        # POSIX asks for a compound command; dash takes any command (``f() echo hi``)
        return self.command()

    def bash_function(self) -> FunctionDefinition:
        """bash ``function name [()] compound_command``."""
        self.next()
        t = self.next()
        if t.kind != WORD or t.word.literal() is None:
            raise self.unexpected(t)
        nt = self.peek()
        if nt.kind == OP and nt.value == "(":
            self.next()
            self.expect_op(")")
        self.linebreak()
        return FunctionDefinition(t.word.literal(), self._function_body(), t.line)

    def brace_group(self) -> BraceGroup:
        """``brace_group``: ``{ compound_list }``."""
        t = self.next()
        body = self.compound_list(expect="}")
        self.expect_word("}")
        return BraceGroup(body, line=t.line)

    def subshell(self) -> Subshell:
        """``subshell``: ``( compound_list )``."""
        t = self.next()
        body = self.compound_list(expect=")")
        self.expect_op(")")
        return Subshell(body, line=t.line)

    def if_clause(self) -> IfClause:
        """``if_clause``/``else_part``."""
        t = self.next()
        branches = []
        cond = self.compound_list(expect="then")
        self.expect_word("then")
        branches.append((cond, self.compound_list(expect="fi")))
        else_body = None
        while True:
            nt = self.next()
            rw = self._reserved(nt)
            if rw == "elif":
                cond = self.compound_list(expect="then")
                self.expect_word("then")
                branches.append((cond, self.compound_list(expect="fi")))
            elif rw == "else":
                else_body = self.compound_list(expect="fi")
                self.expect_word("fi")
                break
            elif rw == "fi":
                break
            else:
                raise self.unexpected(nt, "fi")
        return IfClause(branches, else_body, line=t.line)

    def while_clause(self) -> WhileClause:
        """``while_clause``/``until_clause``."""
        t = self.next()
        cond = self.compound_list(expect="do")
        body = self.do_group()
        return WhileClause(cond, body, until=t.word.literal() == "until", line=t.line)

    def do_group(self) -> List:
        """``do_group``: ``do compound_list done``."""
        self.expect_word("do")
        body = self.compound_list(expect="done")
        self.expect_word("done")
        return body

    def for_clause(self) -> ForClause:
        """``for_clause``: ``for name [in words] (; | newline) do_group`` (``in`` optional)."""
        t = self.next()
        nt = self.next()
        if nt.kind != WORD or not is_name(nt.word.literal() or ""):
            raise ParseError(f"Bad for loop variable", nt.line, nt.col)
        name = nt.word.literal()
        self.linebreak()
        words = None
        t2 = self.peek()
        if self._reserved(t2) == "in":
            self.next()
            words = []
            while self.peek().kind == WORD:
                words.append(self.next().word)
            t3 = self.next()
            if not (t3.kind == NEWLINE or (t3.kind == OP and t3.value == ";")):
                raise self.unexpected(t3, "do")
            self.linebreak()
        elif t2.kind == OP and t2.value == ";":
            self.next()
            self.linebreak()
        body = self.do_group()
        return ForClause(name, words, body, line=t.line)

    def case_clause(self) -> CaseClause:
        """``case_clause``: ``case word linebreak in linebreak case_item... esac``."""
        t = self.next()
        wt = self.next()
        if wt.kind != WORD:
            raise self.unexpected(wt, "word")
        self.linebreak()
        self.expect_word("in")
        self.linebreak()
        items: list[CaseItem] = []
        while True:
            pt = self.peek()
            if self._reserved(pt) == "esac":
                self.next()
                break
            if pt.kind == OP and pt.value == "(":
                self.next()
            patterns = []
            while True:
                p = self.next()
                if p.kind != WORD:
                    raise self.unexpected(p, ")" if p.kind == EOF else None)
                patterns.append(p.word)
                sep = self.next()
                if sep.kind == OP and sep.value == "|":
                    continue
                if sep.kind == OP and sep.value == ")":
                    break
                raise self.unexpected(sep, ")")
            body = self.compound_list(allow_empty=True)
            item = CaseItem(patterns, body if body.items else None)
            items.append(item)
            et = self.peek()
            if et.kind == OP and et.value in (";;", ";&", ";;&"):
                self.next()
                item.fallthrough = et.value == ";&"
                self.linebreak()
                continue
            if self._reserved(et) == "esac":
                self.next()
                break
            raise self.unexpected(et, "esac" if et.kind == EOF else None)
        return CaseClause(wt.word, items, line=t.line)

    # ---- bash extensions -----------------------------------------------------------------
    def double_bracket(self) -> DoubleBracket:
        """bash ``[[ words ]]``."""
        t = self.next()
        words: list[Word] = []
        while True:
            nt = self.lx.dbracket_token()
            if nt.kind == EOF:
                raise self.unexpected(nt, "]]")
            if nt.kind == WORD and nt.word.literal() == "]]":
                break
            if nt.kind == OP:
                words.append(Word([Lit(nt.value)], nt.value))
            else:
                words.append(nt.word)
        return DoubleBracket(words, line=t.line)

    def arith_command(self) -> ArithCommand:
        """bash ``(( expression ))``: the text up to the matching ``))``."""
        t = self.next()  # the first "("
        src = self.lx.src
        i = self.lx.pos + 1  # past the second "("
        depth = 0
        start = i
        while i < len(src):
            c = src[i]
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0 and src.startswith("))", i):
                    break
                depth -= 1
            i += 1
        else:
            raise ParseError("Missing '))'", t.line, t.col)
        sub = Lexer(src[start:i], self.lx.line_of(start), True, self.lx.subparse, self.lx.parse_text)
        parts = sub.read_dq_parts(None)
        self.lx.pos = i + 2
        return ArithCommand(Word(parts, src[start:i]), line=t.line)


def _unquoted_text(part) -> str:
    """A here-document delimiter after quote removal (XCU 2.7.4)."""
    if isinstance(part, Lit):
        return part.text
    parts = getattr(part, "parts", None)
    if parts is not None:
        return "".join(_unquoted_text(p) for p in parts)
    if getattr(part, "name", None) is not None:
        return "$" + part.name
    return ""
