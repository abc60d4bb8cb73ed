"""How control leaves a command in the interpreter, and the flags of shell variables.

These are shared by the evaluator (:mod:`nuwa.script.interp`), the builtins
(:mod:`nuwa.script.builtins`) and the external-command mixin (:mod:`nuwa.script.external`).
They live here, below all three, so that none of them has to import another's module to
raise or catch them: ``exit``, ``return``, ``break``/``continue`` are builtins whose effect is
felt by the evaluator (dash's ``evalskip``/``exraise`` in ``eval.c`` and ``error.c``).
"""

from __future__ import annotations

#: flags of a shell variable (dash's ``VEXPORT``, ``VREADONLY`` in ``var.h``)
EXPORT, READONLY = 1, 2


class ExitShell(Exception):
    """``exit``, ``set -e`` or a fatal error: leave the (sub)shell with ``status``."""

    def __init__(self, status: int):
        self.status = status


class Return(Exception):
    """``return``: leave the current function (or dot script) with ``status``."""

    def __init__(self, status: int):
        self.status = status


class LoopControl(Exception):
    """``break N`` / ``continue N``: ``kind`` is the builtin's name, ``levels`` how many loops."""

    def __init__(self, kind: str, levels: int):
        self.kind = kind
        self.levels = levels


class BadWrite(Exception):
    """A builtin wrote to a closed standard output (dash: ``echo: I/O error``)."""
