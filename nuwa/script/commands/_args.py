"""A small GNU ``getopt_long`` for command models.

It follows glibc's ``getopt_long`` as coreutils use it: short options cluster (``-rf``), a
short option's argument may be glued (``-n5``) or separate (``-n 5``), long options take
``--name=value`` or ``--name value`` and may be abbreviated to a unique prefix, ``--`` ends
the options, a lone ``-`` is an operand, and options and operands may be mixed (argument
permutation) unless ``POSIXLY_CORRECT`` is set or the spec starts with ``+``.

An option the model does not declare raises :class:`Defer`: the real program may know it (we
only declare what we simulate exactly), so the honest answer is to run it at first boot.
Usage errors the real program would report for *declared* options (a missing argument, an
ambiguous abbreviation) are reported exactly as glibc prints them, with coreutils' "Try
'PROG --help'" line, via :class:`UsageError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.script.context import Defer, Invocation

#: takes no argument / requires one / takes an optional one (only as --name=value or -xVALUE)
NO, REQ, OPT = 0, 1, 2


class UsageError(Exception):
    """A usage error the real program reports; ``text`` is the message without the prefix."""

    def __init__(self, text: str, hint: bool = True):
        super().__init__(text)
        self.text = text
        self.hint = hint


@dataclass
class Spec:
    """Declared options: ``short`` maps a letter to (key, kind); ``long`` a name to (key, kind)."""

    short: dict[str, tuple[str, int]] = field(default_factory=dict)
    long: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: stop at the first operand (POSIX order), as for ``find``-like or ``xargs``-like commands
    in_order: bool = False


def spec(short: str = "", long: dict[str, str | tuple[str, int]] | None = None, in_order: bool = False) -> Spec:
    """Build a :class:`Spec` from a getopt string and a long-option table.

    ``short`` is like getopt's optstring: ``"fn:"`` declares ``-f`` and ``-n ARG``; the key of
    a short option is the letter itself. ``long`` maps a long name to its key (a short letter
    it is a synonym of, or any name) or to ``(key, kind)``; a plain key inherits the kind of
    the short option it names, otherwise NO.
    """
    s = Spec(in_order=in_order)
    i = 0
    while i < len(short):
        c = short[i]
        kind = NO
        if short[i + 1 : i + 3] == "::":
            kind, i = OPT, i + 2
        elif short[i + 1 : i + 2] == ":":
            kind, i = REQ, i + 1
        s.short[c] = (c, kind)
        i += 1
    for name, v in (long or {}).items():
        if isinstance(v, tuple):
            s.long[name] = v
        else:
            s.long[name] = (v, s.short[v][1] if v in s.short else NO)
    return s


def parse(inv: Invocation, sp: Spec, args: list[str] | None = None) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Parse ``inv.argv[1:]`` (or ``args``): returns ``(options, operands)``.

    ``options`` is the list of ``(key, value)`` in command-line order (value None for flags).
    """
    opts: list[tuple[str, str | None]] = []
    for ev in events(inv, sp, args, in_order=sp.in_order or "POSIXLY_CORRECT" in inv.env):
        if ev[0] == "error":
            raise ev[1]
        if ev[0] == "operands":
            return opts, ev[1]
        opts.append((ev[1], ev[2]))
    raise AssertionError("events() always ends with its operands")


def events(inv: Invocation, sp: Spec, args: list[str] | None = None, in_order: bool = False,
           unknown_is_error: bool = False):
    """The parse as glibc's ``getopt_long`` meets the arguments: yields ``("opt", key, value)`` in
    command-line order, then ``("operands", list)``; a usage error is yielded as ``("error",
    UsageError)`` where getopt meets it, and ends the parse, so a caller can act on the options
    before it first (``-h -x`` prints a program's help, ``-x -h`` the error).

    An option not in ``sp`` raises :class:`Defer`, or, with ``unknown_is_error`` (a model that
    declares every option its program has), is glibc's "invalid option"/"unrecognized option"
    error.
    """
    argv = list(inv.argv[1:] if args is None else args)
    operands: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            operands.extend(argv[i:])
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            try:
                key, kind, full = _long(sp, name, a)
            except UsageError as e:
                yield "error", e
                return
            except Defer:
                if not unknown_is_error:
                    raise
                yield "error", UsageError(f"unrecognized option '{a}'")
                return
            if kind == NO and eq:
                yield "error", UsageError(f"option '--{full}' doesn't allow an argument")
                return
            if kind == REQ and not eq:
                if i >= len(argv):
                    yield "error", UsageError(f"option '--{full}' requires an argument")
                    return
                val, eq = argv[i], "="
                i += 1
            yield "opt", key, val if eq else None
            continue
        if a.startswith("-") and a != "-":
            j = 1
            while j < len(a):
                c = a[j]
                j += 1
                if c not in sp.short:
                    if not unknown_is_error:
                        raise Defer(f"{inv.name}: option -{c} is not modelled")
                    yield "error", UsageError(f"invalid option -- '{c}'")
                    return
                key, kind = sp.short[c]
                if kind == NO:
                    yield "opt", key, None
                    continue
                if j < len(a):
                    yield "opt", key, a[j:]
                elif kind == REQ:
                    if i >= len(argv):
                        yield "error", UsageError(f"option requires an argument -- '{c}'")
                        return
                    yield "opt", key, argv[i]
                    i += 1
                else:
                    yield "opt", key, None
                break
            continue
        operands.append(a)
        if in_order:
            operands.extend(argv[i:])
            break
    yield "operands", operands


def _long(sp: Spec, name: str, arg: str) -> tuple[str, int, str]:
    if name in sp.long:
        return (*sp.long[name], name)
    cands = [n for n in sp.long if n.startswith(name)]
    keys = {sp.long[n] for n in cands}
    if len(keys) == 1:
        return (*sp.long[cands[0]], cands[0])
    if len(cands) > 1:
        poss = " ".join(f"'--{n}'" for n in cands)
        raise UsageError(f"option '{arg.partition('=')[0]}' is ambiguous; possibilities: {poss}")
    raise Defer(f"option {arg.partition('=')[0]} is not modelled")


def usage(inv: Invocation, e: UsageError, status: int = 1) -> int:
    """Report a usage error the way coreutils do (message, then the --help hint)."""
    prog = inv.argv[0] if inv.argv else inv.name
    inv.err(f"{prog}: {e.text}\n")
    if e.hint:
        inv.err(f"Try '{prog} --help' for more information.\n")
    return status


def missing(inv: Invocation, what: str = "missing operand", status: int = 1) -> int:
    """coreutils' "missing operand" usage error."""
    return usage(inv, UsageError(what), status)
