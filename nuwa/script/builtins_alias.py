"""dash's aliases: the ``alias``/``unalias`` builtins and substitution of a command word.

Aliases live in ``Shell.aliases`` (copied into subshells, empty in a new shell process).
"""

from __future__ import annotations

import re

from nuwa.script import ast as A
from nuwa.script.lexer import ParseError
from nuwa.script.parser import parse


def b_alias(sh, argv):
    """dash's ``alias``: define ``name=value``, print ``name`` (or all) as ``name='value'``."""
    if sh.bash:
        return _bash_alias(sh, argv)
    if len(argv) == 1:
        if len(sh.aliases) > 1:
            # dash lists its hash table in bucket order, which is not modelled
            raise sh.limit("alias: listing several aliases is not modelled")
        for n, v in sh.aliases.items():
            sh.write(1, f"{n}={_alias_quote(v)}\n")
        return 0
    st = 0
    for a in argv[1:]:
        eq = a.find("=", 1)  # dash looks from the second character: `alias =x` is a lookup
        if eq < 0:
            if a in sh.aliases:
                sh.write(1, f"{a}={_alias_quote(sh.aliases[a])}\n")
            else:
                sh.write(2, f"alias: {a} not found\n")
                st = 1
        else:
            sh.aliases[a[:eq]] = a[eq + 1:]
    return st


def _bash_alias(sh, argv) -> int:
    """bash's ``alias``: the same table (never substituted in a non-interactive bash), listed
    sorted as ``alias name='value'`` with ``'`` written ``'\\''``."""
    def show(n: str) -> None:
        sh.write(1, f"alias {n}='" + sh.aliases[n].replace("'", "'\\''") + "'\n")
    if len(argv) == 1:
        for n in sorted(sh.aliases):
            show(n)
        return 0
    st = 0
    for a in argv[1:]:
        eq = a.find("=")
        if eq > 0:
            sh.aliases[a[:eq]] = a[eq + 1:]
        elif a in sh.aliases:
            show(a)
        else:
            sh.write(2, f"{sh.arg0}: line {sh.lineno}: alias: {a}: not found\n")
            st = 1
    return st


def b_unalias(sh, argv):
    """dash's ``unalias [-a] name...``."""
    args = argv[1:]
    if args and args[0] == "-a":
        sh.aliases.clear()
        return 0
    if args and args[0] == "--":
        args = args[1:]
    st = 0
    for a in args:
        if sh.aliases.pop(a, None) is None:
            sh.write(2, f"{sh.arg0}: line {sh.lineno}: unalias: {a}: not found\n" if sh.bash
                     else f"unalias: {a} not found\n")
            st = 1
    return st


def alias_words(sh, words: list) -> list:
    """The words of a simple command after alias substitution of its command word.

    dash substitutes an unquoted command word that names an alias by the alias's text
    (read again, so its own first word is checked too, except an alias already being
    substituted), and checks the next word as well when the text ends in a blank. dash does
    this while reading the script; here it happens when the command runs, which gives
    the same words for the way scripts use aliases (defined at top level before the lines
    that use them, as exim4-config's ``config`` does). Non-interactive bash does not
    substitute (no ``expand_aliases``); the caller skips bash scripts. A text that is not
    plain words (operators, redirections, assignments, reserved words) is deferred.
    """
    return _alias_sub(sh, list(words), frozenset())[0]


def _alias_sub(sh, words: list, seen: frozenset) -> tuple[list, bool]:
    """``words`` with its first word alias-substituted, and whether the word after them is
    checked too (all of them came from alias texts and the last text ended in a blank)."""
    if not words:
        return [], True  # an empty alias text leaves the next word in command position
    name = words[0].literal()
    if name is None or name not in sh.aliases or name in seen:
        return words, False
    value = sh.aliases[name]
    try:
        body = parse(value).body
    except ParseError:
        raise sh.limit(f"alias {name}: text {value!r} is not a plain command (not modelled)") from None
    vwords: list = []
    if body.items:
        cmd = _plain_command(body.items)
        if cmd is None:
            raise sh.limit(f"alias {name}: text {value!r} is not a plain command (not modelled)")
        vwords = list(cmd.words)
    # the alias's own text is read with the alias in use (no recursion into itself) ...
    vout, vopen = _alias_sub(sh, vwords, seen | {name})
    if not (vopen or value[-1:] in (" ", "\t")):
        return vout + words[1:], False
    # ... the word after it is read once the text is used up, when the alias is free again
    rout, ropen = _alias_sub(sh, words[1:], seen)
    return vout + rout, ropen


def _alias_quote(v: str) -> str:
    """dash's ``single_quote``: runs without ``'`` in single quotes, runs of ``'`` in double quotes."""
    if not v:
        return "''"
    return "".join(f'"{r}"' if r[0] == "'" else f"'{r}'" for r in re.findall(r"'+|[^']+", v))


def _plain_command(items):
    """The one simple command of words only that ``items`` (a parsed alias text) holds, else None."""
    if len(items) != 1 or items[0].background:
        return None
    ao = items[0].and_or
    if len(ao.pipelines) != 1 or ao.pipelines[0].bang or len(ao.pipelines[0].commands) != 1:
        return None
    node = ao.pipelines[0].commands[0]
    if not isinstance(node, A.SimpleCommand) or node.assigns or node.redirects or not node.words:
        return None
    return node
