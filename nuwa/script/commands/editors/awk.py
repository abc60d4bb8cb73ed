"""A model of awk (Debian 12's default, mawk 1.3.4-20200120) for maintainer scripts' programs.

The subset: ``-F SEP``, ``-v var=value``, program text (no ``-f``); items ``BEGIN``, ``END``,
``pattern``, ``pattern { action }`` (patterns are expressions or ``/regex/``) and
``function f(a, b,   local) { ... }``; statements ``print``, ``printf``, ``if``/``else``,
``while``, ``do``-``while``, ``for (;;)``, ``for (k in a)``, ``break``, ``continue``,
``next``, ``exit``, ``return``, ``delete a[k]``/``delete a``, assignments and ``++``/``--``
(assigning ``NF`` truncates or pads the record); expressions with fields, the special
variables, user variables and arrays (``a[k]``, ``a[i, j]`` with SUBSEP, ``(k in a)``),
literals, concatenation, arithmetic (``^`` too), comparisons, ``~ !~``, ``&& || !``, ``? :``
and the functions ``length`` (of a string or an array) ``substr index tolower toupper int
sprintf sub gsub match split`` and user functions (arrays by reference, scalars by value).

The parts: :mod:`awk_parse` (lexer, parser), :mod:`awk_eval` (interpreter and budgets),
:mod:`awk_array` (mawk's hash tables, for mawk's ``for (k in a)`` order), :mod:`awk_regex`
(mawk's regex dialect: ``\\s`` is a literal ``s``, braces are literal; forms whose match
extents mawk's own matcher gets wrong defer),
:mod:`awk_values` (cells and printf). Anything else (getline, redirections, pipes,
``system``, ``srand``/``rand``, the maths functions, ``ARGV``, ``for (k in ENVIRON)``) raises Defer:
the script is run at first boot instead of guessed at.
"""

from __future__ import annotations

import posixpath
import re

from nuwa.script.commands._common import apath, err, errno_text
from nuwa.script.commands.editors.awk_eval import Awk, Exit, Next
from nuwa.script.commands.editors.awk_parse import Parser, tokens, unescape
from nuwa.script.commands.editors.awk_values import StrNum, num, truth
from nuwa.script.context import Defer, Invocation


def awk(inv: Invocation) -> int:
    """``awk [-F SEP] [-v VAR=VAL]... 'PROGRAM' [FILE...]`` (the subset in the module doc)."""
    argv = list(inv.argv[1:])
    fs = " "
    variables: dict[str, object] = {}
    while argv and argv[0].startswith("-") and argv[0] != "-":
        a = argv.pop(0)
        if a == "--":
            break
        if a.startswith("-F"):
            val = a[2:] or (argv.pop(0) if argv else None)
            if val is None:
                raise Defer("awk -F without a value")
            fs = "\t" if val == "t" else unescape(val)
        elif a.startswith("-v"):
            val = a[2:] or (argv.pop(0) if argv else "")
            name, eq, value = val.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise Defer("awk -v form")
            variables[name] = StrNum(unescape(value))
        else:
            raise Defer(f"awk option {a} is not modelled")
    if not argv:
        raise Defer("awk without a program prints its usage")
    src = argv.pop(0)
    parser = Parser(tokens(src))
    items = parser.program()
    files = []
    for a in argv:
        if re.fullmatch(r"[A-Za-z_]\w*=.*", a, re.S):
            raise Defer("awk command-line assignments")
        files.append(a)
    machine = Awk(inv, parser.defs, fs, variables, _dialect(inv))
    status = 0
    try:
        for kind, _pat, act in items:
            if kind == "BEGIN":
                machine.run_stmts(act)
        mains = [(p, a) for k, p, a in items if k == "main"]
        if mains or any(k == "END" for k, _, _ in items):
            status = _main_loop(inv, machine, mains, files)
    except Exit as e:
        status = e.status  # exit in BEGIN or a rule still runs END (POSIX awk)
    try:
        for kind, _pat, act in items:
            if kind == "END":
                machine.run_stmts(act)
    except Exit as e:
        status = e.status
    return status


def _dialect(inv: Invocation) -> str:
    """Which awk the image runs for this name: ``mawk`` (Debian 12's, Priority: required, the
    default of the ``awk``/``nawk`` alternatives; also assumed when no alternatives link
    exists) or the basename of what the alternative points at (``gawk``, ``original-awk``)."""
    name = inv.name
    if name in ("gawk", "original-awk"):
        return name
    if name not in ("awk", "nawk"):
        return "mawk"
    try:
        target = inv.fs.readlink(f"/etc/alternatives/{name}")
    except OSError:
        return "mawk"
    return posixpath.basename(target) or "mawk"


def _main_loop(inv: Invocation, machine: Awk, mains, files: list[str]) -> int:
    for name in files or ["-"]:
        if name == "-":
            data = bytes(inv.stdin)
        else:
            try:
                data = inv.fs.read_bytes(apath(inv, name))
            except OSError as e:
                err(inv, f"cannot open {name} ({errno_text(e)})")
                return 2
        machine.vars["FILENAME"] = name if name != "-" else ""
        machine.vars["FNR"] = 0.0
        lines = data.decode("latin-1").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for line in lines:
            if machine.vars["RS"] != "\n":
                # records are read as lines; paragraph mode or another separator is not modelled
                raise Defer("awk: RS other than a newline")
            machine.vars["NR"] = num(machine.vars["NR"]) + 1
            machine.vars["FNR"] = num(machine.vars["FNR"]) + 1
            machine.set_record(line)
            try:
                for pat, act in mains:
                    if pat is not None and not truth(machine.ev(pat)):
                        continue
                    if act is None:
                        machine.run_stmt(("print", []))
                    else:
                        machine.run_stmts(act)
            except Next:
                continue
    return 0
