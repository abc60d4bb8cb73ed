"""The shell syntax tree, named after the productions of the POSIX shell grammar.

POSIX.1-2017 XCU 2.10.2 ("Shell Grammar Rules") names the productions this module mirrors:
``complete_command``/``list`` -> :class:`List`, ``and_or`` -> :class:`AndOr`, ``pipeline`` ->
:class:`Pipeline`, ``simple_command`` -> :class:`SimpleCommand`, ``brace_group``,
``subshell``, ``if_clause``, ``while_clause``/``until_clause``, ``for_clause``,
``case_clause``/``case_item``, ``function_definition``, ``io_redirect``/``io_here``.
Words keep their inner structure (XCU 2.6: expansions and quoting) as a list of parts so the
expander never re-scans text. Two bash forms used by a few maintainer scripts are added:
:class:`DoubleBracket` (``[[ ]]``) and :class:`ArithCommand` (``(( ))``).

Every command node carries ``line``: the line the shell reports in its messages (dash's
``lineno``, the line of the command's first word).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

# ---------------------------------------------------------------------------------------
# word parts (XCU 2.2 quoting, 2.6 expansions)
# ---------------------------------------------------------------------------------------


@dataclass
class Lit:
    """Literal text. ``quoted`` text came from quoting (``'..'``, ``\\x``, ``$'..'``, or
    inside double quotes): it is neither field-split nor a pattern character."""

    text: str
    quoted: bool = False


@dataclass
class DoubleQuoted:
    """``"..."``: its parts expand but are not split or globbed (XCU 2.2.3)."""

    parts: list


@dataclass
class ParamExp:
    """``$name``, ``${name}`` and ``${name<op>word}`` (XCU 2.6.2).

    ``op`` is one of ``""`` (plain), ``"#"`` (length, ``${#x}``), ``"-" "=" "?" "+"``
    (with ``colon`` for the ``:-`` forms), ``"%" "%%" "#" "##"`` as ``"%", "%%", "#pat",
    "##"`` -- the pattern operators are spelt ``"rm%" "rm%%" "rm#" "rm##"`` to keep them
    apart from the length form. bash's ``${x/p/r}`` and ``${x:o:l}`` are ``"sub"``/``"slice"``.
    """

    name: str
    op: str = ""
    word: "Word | None" = None
    colon: bool = False
    #: second operand of bash's ``${x/p/r}`` (replacement) and ``${x:o:l}`` (length)
    word2: "Word | None" = None
    #: bash array subscript ``${a[i]}`` (``None`` for a plain name)
    index: "Word | None" = None


@dataclass
class CommandSubst:
    """``$(...)`` or a backquoted command (XCU 2.6.3); ``body`` is already parsed."""

    body: "List"
    backquoted: bool = False


@dataclass
class ArithExp:
    """``$((...))`` (XCU 2.6.4): ``expr`` is a word, expanded then evaluated."""

    expr: "Word"


@dataclass
class ArrayLiteral:
    """bash ``(w1 w2 ...)`` on the right of an assignment (a word part until the parser
    turns it into :attr:`Assignment.array`)."""

    words: list


WordPart = Union[Lit, DoubleQuoted, ParamExp, CommandSubst, ArithExp]


@dataclass
class Word:
    """One shell word: its parts and the source text it was scanned from."""

    parts: list
    text: str = ""

    def literal(self) -> str | None:
        """The word's text if it holds no expansion and no quoting at all, else None."""
        if all(isinstance(p, Lit) and not p.quoted for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None

    def has_quotes(self) -> bool:
        """True if any part is quoted (here-document delimiters, reserved-word checks)."""
        for p in self.parts:
            if isinstance(p, DoubleQuoted) or (isinstance(p, Lit) and p.quoted):
                return True
        return False


# ---------------------------------------------------------------------------------------
# redirections (XCU 2.7)
# ---------------------------------------------------------------------------------------


@dataclass
class IoRedirect:
    """``io_redirect``: ``[n]op target``. ``op`` is one of ``< > >> >| <> <& >& << <<-``.

    For here-documents (``io_here``) ``target`` is the delimiter word as written and
    ``heredoc`` the body: a :class:`Word` to expand when the delimiter was unquoted, or a
    quoted :class:`Lit`-only word when it was quoted.
    """

    op: str
    target: Word
    fd: int | None = None
    heredoc: Word | None = None
    line: int = 0


# ---------------------------------------------------------------------------------------
# commands (XCU 2.9)
# ---------------------------------------------------------------------------------------


@dataclass
class Assignment:
    """``name=value`` in a simple command prefix (bash: ``name+=value``, ``a=(x y)``)."""

    name: str
    value: Word
    append: bool = False
    array: "list[Word] | None" = None


@dataclass
class SimpleCommand:
    """``simple_command``: assignments, words, and redirections in source order."""

    assigns: list[Assignment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class BraceGroup:
    """``{ compound_list ; }``."""

    body: "List"
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class Subshell:
    """``( compound_list )``."""

    body: "List"
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class IfClause:
    """``if c; then b; [elif c; then b;]... [else b;] fi`` as (condition, body) pairs."""

    branches: list[tuple["List", "List"]]
    else_body: "List | None" = None
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class WhileClause:
    """``while_clause`` and ``until_clause`` (``until`` set)."""

    condition: "List"
    body: "List"
    until: bool = False
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class ForClause:
    """``for name [in words]; do body; done``; ``words`` None means ``"$@"``."""

    name: str
    words: list[Word] | None
    body: "List"
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class CaseItem:
    """``case_item``: patterns, body, and whether it ended in ``;;`` (bash ``;&`` falls through)."""

    patterns: list[Word]
    body: "List | None"
    fallthrough: bool = False


@dataclass
class CaseClause:
    """``case word in case_item... esac``."""

    word: Word
    items: list[CaseItem]
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class FunctionDefinition:
    """``fname() compound_command [redirects]`` (and bash's ``function fname``)."""

    name: str
    body: object
    line: int = 0


@dataclass
class DoubleBracket:
    """bash ``[[ expression ]]``: the words between the brackets, evaluated as a test
    expression with pattern matching on ``==``/``!=`` and no field splitting."""

    words: list[Word]
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


@dataclass
class ArithCommand:
    """bash ``(( expression ))``: status 0 when the value is non-zero."""

    expr: Word
    redirects: list[IoRedirect] = field(default_factory=list)
    line: int = 0


Command = Union[
    SimpleCommand, BraceGroup, Subshell, IfClause, WhileClause, ForClause, CaseClause,
    FunctionDefinition, DoubleBracket, ArithCommand,
]


@dataclass
class Pipeline:
    """``pipeline``: ``[!] command [| command]...``."""

    commands: list
    bang: bool = False
    line: int = 0


@dataclass
class AndOr:
    """``and_or``: pipelines joined by ``&&``/``||`` (``ops[i]`` joins i and i+1)."""

    pipelines: list[Pipeline]
    ops: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class ListItem:
    """One ``and_or`` of a list, run asynchronously when it ended with ``&``."""

    and_or: AndOr
    background: bool = False
    #: last source line read when the item was complete (what ``set -v`` has echoed by then)
    end_line: int = 0


@dataclass
class List:
    """``list``/``compound_list``/``complete_command``: and_or items run in sequence."""

    items: list[ListItem] = field(default_factory=list)


@dataclass
class Program:
    """A whole script: its complete commands as one list."""

    body: List
    text: str = ""


def walk(node):
    """Yield every node of the tree (commands, words, parts), depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        yield n
        if isinstance(n, (list, tuple)):
            stack.extend(reversed(n))
            continue
        d = getattr(n, "__dict__", None)
        if d is None:
            continue
        for v in reversed(list(d.values())):
            if isinstance(v, (list, tuple)) or hasattr(v, "__dict__"):
                stack.append(v)
