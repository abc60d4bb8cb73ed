"""The shell interpreter: runs a parsed script against the image's filesystem model.

It follows dash's evaluator (``eval.c``): lists, and-or lists, pipelines (stages run in order,
each a subshell, bytes passed along), compound commands, functions with ``local``, and simple
commands looked up as special builtin, function, regular builtin, then through ``PATH`` *in
the image*. An external command runs only as a command model from the shell's
:class:`nuwa.script.context.ModelSet` (given by the caller; children and subshells share it);
without a model it is deferred. Nothing is executed on
the host, ever: every side effect goes through ``fs`` (the filesystem model) and the models.

``set -e`` is checked where dash checks it (after simple commands, pipelines and subshells
not in a tested context: ``if``/``while``/``until`` conditions, the left of ``&&``/``||``,
after ``!``). Deferral by data flow (see :mod:`nuwa.script.record`): a deferred command whose
output is captured, piped or stored, or whose status decides a condition, ``&&``/``||`` (other
than a no-op right side) or is read through ``$?``, defers the whole script.
"""

from __future__ import annotations

import posixpath
import sys

from nuwa.deb.arch import native_architecture
from nuwa.script import ast as A
from nuwa.script.arith import ArithError, evaluate
from nuwa.script.builtins import BUILTINS, SPECIAL, alias_words
from nuwa.script.context import SIMULATED, ModelSet
from nuwa.script.control import EXPORT, READONLY, BadWrite, ExitShell, LoopControl, Return
from nuwa.script.endless import EndlessOutput, device_input, run_endless, run_fed
from nuwa.script.expand import ExpansionError, Expander, match
from nuwa.script.fdtable import Desc, InBuf, Limits, NullDesc, OutBuf
from nuwa.script.guestdev import guest_view
from nuwa.script.external import DEFAULT_PATH, ExternalCommands
from nuwa.script.lexer import ParseError
from nuwa.script.parser import parse
from nuwa.script.redirect import RedirError, Redirections
from nuwa.script.record import CommandRecord, DeferredCommand, RunRecord, ScriptDeferred, ScriptResult
from nuwa.script.testexpr import double_bracket

OPTION_ORDER = "efIimnsxvVECabupq"  # dash's optlist; $- lists them in reverse
NOOP_NAMES = frozenset({"true", ":", "echo", "printf"})


class Shell(Redirections, ExternalCommands):
    """One shell execution environment (a subshell is a copy sharing fs, record and budgets)."""

    #: a ``#!/bin/bash`` script: the parser reads bash's extra syntax, and ``set -o pipefail``
    #: (internally the option letter ``P``, which no ``set`` flag spells) is accepted
    bash = False

    def __init__(self, fs, limits: Limits, record: RunRecord, deferred: list, model_state: dict, models: ModelSet):
        self.fs = fs
        self.models = models
        self.limits = limits
        self.record = record
        self.deferred = deferred
        self.model_state = model_state
        self.vars: dict[str, tuple[str | None, int]] = {}
        self.positional: list[str] = []
        self.arg0 = "sh"
        self.opts: set[str] = set()
        self.functions: dict[str, A.FunctionDefinition] = {}
        self.aliases: dict[str, str] = {}  # a new shell process starts without any
        self.traps: dict[str, str] = {}
        self.cwd = "/"
        self.umask = 0o022
        self.fds: dict[int, Desc] = {}
        self.status = 0
        self.tainted = False  # the last status came from a deferred command
        self.tainted_by = ""
        self.lineno = 0
        self.e_suppress = 0
        self.locals: list[dict] = []
        self.loop_depth = 0
        self.depth = 0
        self.bg_pid = None
        self.jobs: dict[int, int] = {}
        # dash's command hash table: (name, PATH) -> where PATH search found it (see
        # ExternalCommands.find_command); a new shell process starts without one
        self.hashed: dict[tuple[str, str], str] = {}
        self.next_pid = 4242
        self.subst_status: int | None = None
        self.initial_env: dict[str, str] = {}
        self.exp = Expander(self)
        self.in_subshell = False

    # ---- environment ---------------------------------------------------------------------
    def getvar(self, name: str) -> str | None:
        """A named variable's value (None when unset)."""
        v = self.vars.get(name)
        return None if v is None else v[0]

    def param(self, name: str, index=None) -> str | None:
        """Any parameter by name: special, positional, or variable (XCU 2.5.2)."""
        if name.isdigit():
            n = int(name)
            if n == 0:
                return self.arg0
            return self.positional[n - 1] if n <= len(self.positional) else None
        if name == "?":
            if self.tainted:
                raise ScriptDeferred(f"$? reads the status of deferred `{self.tainted_by}`", self.lineno)
            return str(self.status)
        if name == "#":
            return str(len(self.positional))
        if name == "$":
            return "4200"
        if name == "!":
            return None if self.bg_pid is None else str(self.bg_pid)
        if name == "-":
            return "".join(c for c in reversed(OPTION_ORDER) if c in self.opts)
        if name in ("@", "*"):
            return " ".join(self.positional) if self.positional else None
        if index is not None:
            idx = self.exp.string(index)
            if idx not in ("0", "@", "*"):
                return None
        return self.getvar(name)

    def setvar(self, name: str, value: str | None, flags: int = 0) -> None:
        """Assign (or with ``value`` None, only add ``flags``); readonly raises ExpansionError."""
        old = self.vars.get(name)
        if old is not None and old[1] & READONLY and (value is not None or flags & ~old[1]):
            if value is not None:
                raise ExpansionError(f"{name}: is read only")
        if value is not None and len(value) > (16 << 20):
            raise self.limit("a variable exceeds 16 MiB")
        oflags = old[1] if old else 0
        if "a" in self.opts and value is not None:
            flags |= EXPORT
        self.vars[name] = (value if value is not None else (old[0] if old else None), oflags | flags)
        if name == "PATH" and value is not None:
            self.hashed.clear()  # dash's changepath: any assignment, even of the same value

    def setvar_checked(self, name: str, value: str) -> None:
        """Assignment from an expansion (``${x=..}``, arithmetic)."""
        self.setvar(name, value)

    def unsetvar(self, name: str) -> None:
        v = self.vars.get(name)
        if v is not None and v[1] & READONLY:
            raise ExpansionError(f"{name}: is read only")
        self.vars.pop(name, None)
        if name == "PATH":
            self.hashed.clear()

    def environ(self) -> dict[str, str]:
        """The exported variables (what an external command receives)."""
        return {k: v[0] for k, v in self.vars.items() if v[1] & EXPORT and v[0] is not None}

    def user_home(self, user: str) -> str | None:
        """``~user``: the home directory in the image's ``/etc/passwd``."""
        try:
            data = self.fs.read_bytes("/etc/passwd").decode("utf-8", "surrogateescape")
        except OSError:
            return None
        for line in data.splitlines():
            f = line.split(":")
            if len(f) >= 6 and f[0] == user:
                return f[5]
        return None

    def abspath(self, path: str) -> str:
        """A script path made absolute against the simulated working directory."""
        if path.startswith("/"):
            return path
        return posixpath.join(self.cwd, path) if path else self.cwd

    def limit(self, what: str) -> ScriptDeferred:
        return ScriptDeferred(what, self.lineno)

    # ---- output ----------------------------------------------------------------------------
    def write(self, fd: int, data: bytes | str) -> None:
        """Write to descriptor ``fd``; a closed one raises BadWrite (EBADF), as write(2) fails."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        d = self.fds.get(fd)
        if d is None:
            if data and fd == 1:
                raise BadWrite()
            return
        if data:
            d.write(data)

    def error(self, msg: str) -> None:
        """``sh: LINE: msg`` on stderr, as dash prints its diagnostics."""
        self.write(2, f"{self.arg0}: {self.lineno}: {msg}\n")

    # ---- subshells ------------------------------------------------------------------------
    def start_shell(self, **kw) -> "Shell":
        """A new ``sh`` process started by this one (:func:`new_shell`), sharing its filesystem,
        run record, deferral list, budgets, model state and models; ``kw`` as for :func:`new_shell`."""
        return new_shell(self.fs, self.limits, self.record, self.deferred, self.model_state, models=self.models, **kw)

    def subshell(self) -> "Shell":
        """A copy of this environment (XCU 2.12): changes in it never come back."""
        c = Shell.__new__(Shell)
        c.__dict__.update(self.__dict__)
        c.vars = dict(self.vars)
        c.positional = list(self.positional)
        c.opts = set(self.opts)
        c.functions = dict(self.functions)
        c.aliases = dict(self.aliases)
        c.traps = {k: v for k, v in self.traps.items() if v == ""}  # ignored traps stay ignored
        c.fds = dict(self.fds)
        c.locals = []
        c.jobs = dict(self.jobs)
        c.hashed = dict(self.hashed)
        c.exp = Expander(c)
        c.in_subshell = True
        c.depth = self.depth + 1
        if c.depth > self.limits.max_depth:
            raise ScriptDeferred(f"nesting deeper than {self.limits.max_depth} (subshells/functions)", self.lineno)
        return c

    def run_subshell(self, node, fds: dict | None = None) -> int:
        """Run ``node`` in a subshell; returns its status (its EXIT trap runs at its end)."""
        c = self.subshell()
        if fds:
            c.fds.update(fds)
        try:
            st = c.ended(c.run_node, node)
            self.tainted, self.tainted_by = c.tainted, c.tainted_by
        finally:
            c.discard()
        return st

    def discard(self) -> None:
        """Done with this shell: break its only reference cycle (it and its expander), so that
        reference counting frees it at once. A pipeline stage or ``$( )`` is a subshell each:
        left to the cyclic collector, their copies made it run ten times per mkinitramfs, a
        tenth of the interpretation's CPU (measured)."""
        self.exp = None

    def command_subst(self, body: A.List) -> str:
        """``$(...)``: the body's output in a subshell, trailing newlines removed (XCU 2.6.3)."""
        out = OutBuf(self.limits, "captured by $( )")
        st = self.run_subshell(body, {1: out})
        if self.tainted:
            raise ScriptDeferred(f"the status of deferred `{self.tainted_by}` is used by $( )", self.lineno)
        self.status = self.subst_status = st
        return bytes(out.data).decode("utf-8", "surrogateescape").rstrip("\n")

    def run_exit_trap(self, status: int) -> int:
        """Run the EXIT trap once (``$?`` is the exit status); returns the final status."""
        action = self.traps.pop("EXIT", None)
        if not action:
            return status
        self.status = status
        try:
            self.eval_text(action)
        except ExitShell as e:
            return e.status
        return status

    def run_to_end(self, prog: A.Program) -> int:
        """Run a whole program as a process would: ``exit``, a stray ``return``/``break`` and
        the EXIT trap end it; returns its exit status (ScriptDeferred propagates)."""
        return self.ended(self.run_program, prog)

    def ended(self, run, node) -> int:
        """``run(node)`` as a process ends (:meth:`run_to_end`; a subshell ends the same way)."""
        try:
            st = run(node)
        except ExitShell as e:
            st = e.status
        except (Return, LoopControl):
            st = self.status
        return self.run_exit_trap(st)

    def eval_text(self, text: str, where: str = "") -> int:
        """Parse and run ``text`` in this shell (``eval``, traps)."""
        try:
            prog = parse(text)
        except ParseError as e:
            self.error((where + ": " if where else "") + e.dash_text())
            raise ExitShell(2) from None
        except RecursionError:
            raise self.limit("script nesting too deep to parse") from None
        return self.run_node(prog.body)

    # ---- evaluation -----------------------------------------------------------------------
    def run_node(self, node) -> int:
        """Evaluate any node; returns (and stores in ``status``) its exit status."""
        if isinstance(node, A.List):
            return self.run_list(node)
        if isinstance(node, A.AndOr):
            return self.run_and_or(node)
        if isinstance(node, A.Pipeline):
            return self.run_pipeline(node)
        return self.run_command(node)

    def run_program(self, prog: A.Program) -> int:
        """The top level: like :meth:`run_list`, echoing source lines under ``set -v`` as
        dash does when it reads a script file (each line once, when the parser reads it)."""
        lines = None
        printed = 0
        st = 0
        for item in prog.body.items:
            if "v" in self.opts:
                if lines is None:
                    lines = prog.text.splitlines(keepends=True)
                upto = item.end_line or len(lines)
                text = "".join(lines[printed:upto])
                if text and not text.endswith("\n"):
                    text += "\n"
                self.write(2, text)
            printed = max(printed, item.end_line or len(lines or prog.text.splitlines()))
            if "n" in self.opts:
                return self.status
            st = self.run_background(item.and_or) if item.background else self.run_and_or(item.and_or)
        return st

    def run_list(self, lst: A.List) -> int:
        st = self.status
        for item in lst.items:
            if "n" in self.opts:
                return self.status
            if item.background:
                st = self.run_background(item.and_or)
            else:
                st = self.run_and_or(item.and_or)
        return st

    def run_background(self, ao: A.AndOr) -> int:
        """``cmd &``: run to completion now in a subshell (stdin from /dev/null, as dash)."""
        self.next_pid += 1
        pid = self.next_pid
        st = self.run_subshell(ao, {0: NullDesc()})
        self.jobs[pid] = st
        self.bg_pid = pid
        self.status = 0
        self.tainted = False
        return 0

    def run_and_or(self, ao: A.AndOr) -> int:
        n = len(ao.pipelines)
        if n == 1:  # most lists are one pipeline
            st = self.status = self.run_pipeline(ao.pipelines[0])
            return st
        st = 0
        i = 0
        while i < n:
            last = i == n - 1
            if not last:
                self.e_suppress += 1
                try:
                    st = self.run_pipeline(ao.pipelines[i])
                finally:
                    self.e_suppress -= 1
                if self.tainted and not _noop_rest(ao.pipelines[i + 1 :]):
                    raise ScriptDeferred(
                        f"the status of deferred `{self.tainted_by}` decides `{ao.ops[i]}`", self.lineno)
            else:
                st = self.run_pipeline(ao.pipelines[i])
            # skip pipelines until the operator matches the status
            while i < n - 1:
                op = ao.ops[i]
                i += 1
                if (op == "&&") == (st == 0):
                    break
            else:
                break
        self.status = st
        return st

    def run_pipeline(self, p: A.Pipeline) -> int:
        cmds = p.commands
        if len(cmds) == 1 and not p.bang:  # most pipelines: one command, no `!`
            cmd = cmds[0]
            t = type(cmd)
            if t is A.SimpleCommand:
                if cmd.redirects and device_input(self, cmd):
                    return self._run_pipeline(p)
                st = self.status = self.run_simple(cmd)
            else:
                st = self.status = self.run_command(cmd)
            if st and "e" in self.opts and (t is A.SimpleCommand or t is A.Subshell) \
                    and not self.e_suppress and not self.tainted:
                raise ExitShell(st)
            return st
        return self._run_pipeline(p)

    def _run_pipeline(self, p: A.Pipeline) -> int:
        if p.bang:
            self.e_suppress += 1
        try:
            fed = device_input(self, p.commands[0]) if len(p.commands) == 1 else None
            if fed:  # `od -N 2 < /dev/urandom`: see nuwa.script.endless
                self.lineno = p.commands[0].line
                st = run_fed(self, p.commands, 0, fed)[-1]
            elif len(p.commands) == 1:
                st = self.run_command(p.commands[0])
            else:
                data, statuses = None, []
                for i, cmd in enumerate(p.commands):
                    self.lineno = getattr(cmd, "line", self.lineno)
                    fds = {}
                    if data is not None:
                        fds[0] = InBuf(data)
                    out = None
                    if i < len(p.commands) - 1:
                        out = OutBuf(self.limits, "piped to the next command")
                        fds[1] = out
                    fed = device_input(self, cmd)
                    if fed:
                        statuses += run_fed(self, p.commands, i, fed)
                        break
                    try:
                        statuses.append(self.run_subshell(cmd, fds))
                    except EndlessOutput as e:  # `cat /dev/urandom | ...`: see nuwa.script.endless
                        if out is None or not e.cut_by(cmd, out, self.depth + 1):
                            raise
                        statuses += run_endless(self, p.commands, i, e)
                        break
                    data = bytes(out.data) if out is not None else None
                st = statuses[-1]
                if "P" in self.opts:  # bash's pipefail: the last command that failed
                    st = next((s for s in reversed(statuses) if s), 0)
        finally:
            if p.bang:
                self.e_suppress -= 1
        if p.bang:
            st = 0 if st else 1
        self.status = st
        checked = len(p.commands) > 1 or isinstance(p.commands[0], (A.SimpleCommand, A.Subshell))
        if st and checked and not p.bang and "e" in self.opts and not self.e_suppress and not self.tainted:
            raise ExitShell(st)
        return st

    def run_command(self, cmd) -> int:
        t = type(cmd)
        if t is A.SimpleCommand:
            return self.run_simple(cmd)
        if t is A.FunctionDefinition:
            self.functions[cmd.name] = cmd
            self.status = 0
            self.tainted = False
            return 0
        saved = self.redirect(cmd.redirects) if cmd.redirects else None
        if saved is RedirError:
            self.status = 2
            return 2
        try:
            if t is A.BraceGroup:
                st = self.run_list(cmd.body)
            elif t is A.Subshell:
                st = self.run_subshell(cmd.body)
            elif t is A.IfClause:
                st = self.run_if(cmd)
            elif t is A.WhileClause:
                st = self.run_while(cmd)
            elif t is A.ForClause:
                st = self.run_for(cmd)
            elif t is A.CaseClause:
                st = self.run_case(cmd)
            elif t is A.DoubleBracket:
                self.lineno = cmd.line
                st = double_bracket(self, cmd.words)
            elif t is A.ArithCommand:
                try:
                    st = 0 if evaluate(self.exp.string(cmd.expr), self.getvar, self.setvar_checked) else 1
                except ArithError as e:
                    self.fatal(str(e))
            else:  # pragma: no cover
                raise TypeError(t)
        finally:
            if saved:
                self.restore(saved)
        self.status = st
        return st

    def condition(self, lst: A.List) -> int:
        """A tested list (``if``/``while``/``until``): ``set -e`` is off inside."""
        self.e_suppress += 1
        try:
            st = self.run_list(lst)
        finally:
            self.e_suppress -= 1
        if self.tainted:
            raise ScriptDeferred(f"the status of deferred `{self.tainted_by}` decides a condition", self.lineno)
        return st

    def run_if(self, cmd: A.IfClause) -> int:
        for cond, body in cmd.branches:
            if self.condition(cond) == 0:
                return self.run_list(body)
        if cmd.else_body is not None:
            return self.run_list(cmd.else_body)
        self.tainted = False
        return 0

    def _loop_body(self, body: A.List) -> tuple[int, str | None]:
        try:
            return self.run_list(body), None
        except LoopControl as lc:
            if lc.levels > 1:
                lc.levels -= 1
                raise
            # the builtin's own status (0) ends the body, as dash's evalloop takes it
            # (`while read x; do false || continue; done` exits 0)
            self.status = 0
            return 0, lc.kind

    def run_while(self, cmd: A.WhileClause) -> int:
        st = 0
        self.loop_depth += 1
        try:
            while True:
                self.limits.step(cmd.line)
                c = self.condition(cmd.condition)
                if (c == 0) == cmd.until:
                    break
                st, ctl = self._loop_body(cmd.body)
                if ctl == "break":
                    break
        finally:
            self.loop_depth -= 1
        self.tainted = False
        return st

    def run_for(self, cmd: A.ForClause) -> int:
        self.lineno = cmd.line
        items = list(self.positional) if cmd.words is None else self.expand_fields(cmd.words)
        st = 0
        self.loop_depth += 1
        try:
            for v in items:
                self.limits.step(cmd.line)
                self.setvar_or_die(cmd.name, v)
                st, ctl = self._loop_body(cmd.body)
                if ctl == "break":
                    break
        finally:
            self.loop_depth -= 1
        return st

    def run_case(self, cmd: A.CaseClause) -> int:
        self.lineno = cmd.line
        word = self.expand_string(cmd.word)
        falling = False
        for item in cmd.items:
            if not falling:
                hit = False
                for p in item.patterns:
                    try:
                        pat = self.exp.pattern(p)
                    except ExpansionError as e:
                        self.fatal(str(e))
                    if match(pat, word):
                        hit = True
                        break
                if not hit:
                    continue
            st = self.run_list(item.body) if item.body else 0
            if not item.fallthrough:
                return st
            falling = True
        self.tainted = False
        return 0

    # ---- helpers that turn expansion errors into a fatal shell error ---------------------
    def fatal(self, msg: str, status: int = 2):
        """An error that makes a non-interactive shell exit (XCU 2.8.1)."""
        self.error(msg)
        raise ExitShell(status)

    def expand_fields(self, words) -> list[str]:
        try:
            return self.exp.fields(words)
        except ExpansionError as e:
            self.fatal(str(e), e.status)

    def expand_string(self, word, assignment: bool = False) -> str:
        try:
            return self.exp.string(word, assignment)
        except ExpansionError as e:
            self.fatal(str(e), e.status)

    def setvar_or_die(self, name: str, value: str | None, flags: int = 0) -> None:
        try:
            self.setvar(name, value, flags)
        except ExpansionError as e:
            self.fatal(str(e))

    # ---- simple commands (XCU 2.9.1) ------------------------------------------------------
    def run_simple(self, cmd: A.SimpleCommand) -> int:
        self.lineno = cmd.line
        self.limits.step(cmd.line)
        self.subst_status = None
        words = alias_words(self, cmd.words) if self.aliases and cmd.words and not self.bash else cmd.words
        argv = self.expand_fields(words) if words else []
        if argv:
            assigns = [(a.name, self._assign_value(a)) for a in cmd.assigns]
        else:  # `a=1 b=$a`: each assignment sees the ones before it
            assigns = []
            for a in cmd.assigns:
                v = self._assign_value(a)
                self.setvar_or_die(a.name, v)
                assigns.append((a.name, v))
        self.tainted = False  # after expansion: `$?` above may still read a deferred status
        if self.deferred and argv:
            self.check_pending(argv)
        if "x" in self.opts:
            ps4 = self.getvar("PS4")
            trace = [f"{n}={v}" for n, v in assigns] + argv
            self.write(2, (ps4 if ps4 is not None else "+ ") + " ".join(trace) + "\n")
        if not argv:
            saved = self.redirect(cmd.redirects) if cmd.redirects else None
            if saved is RedirError:
                self.status = 2
                return 2
            if saved:
                self.restore(saved)
            st = self.subst_status or 0
            self.status = st
            return st
        name = argv[0]
        if name in SPECIAL:
            saved = self.redirect(cmd.redirects) if cmd.redirects else None
            if saved is RedirError:
                raise ExitShell(2)
            try:
                for n, v in assigns:
                    self.setvar_or_die(n, v)
                st = self.call_builtin(name, argv, SPECIAL)
            finally:
                if saved and not (name == "exec" and len(argv) == 1):  # `exec >f` keeps them
                    self.restore(saved)
            self.status = st
            return st
        saved = self.redirect(cmd.redirects) if cmd.redirects else None
        if saved is RedirError:
            self.status = 2
            return 2
        try:
            if name in self.functions:
                st = self.call_function(self.functions[name], argv, assigns)
            elif name in BUILTINS:
                old = self._push_temp(assigns)
                try:
                    st = self.call_builtin(name, argv, BUILTINS)
                finally:
                    self._pop_temp(old)
            else:
                st = self.run_external(argv, assigns)
        finally:
            if saved:
                self.restore(saved)
        self.status = st
        return st

    def _assign_value(self, a: A.Assignment) -> str:
        if a.array is not None:  # bash arrays: kept as their first element (enough for scripts seen)
            vals = self.expand_fields(a.array)
            return vals[0] if vals else ""
        v = self.expand_string(a.value, assignment=True)
        if a.append:
            v = (self.getvar(a.name) or "") + v
        return v

    def _push_temp(self, assigns):
        old = []
        for n, v in assigns:
            old.append((n, self.vars.get(n)))
            self.setvar_or_die(n, v, EXPORT)
        return old

    def _pop_temp(self, old) -> None:
        for n, prev in reversed(old):
            self._restore_var(n, prev)

    def _restore_var(self, n: str, prev) -> None:
        """Put back a variable saved by a temporary assignment or ``local``."""
        if prev is None:
            self.vars.pop(n, None)
        else:
            self.vars[n] = prev
        if n == "PATH":
            self.hashed.clear()

    def call_builtin(self, name: str, argv: list[str], table) -> int:
        try:
            st = table[name](self, argv)
        except ExpansionError as e:
            self.fatal(str(e), e.status)
        except BadWrite:
            self.error(f"{name}: {name}: I/O error")
            st = 1
        self.record.add(CommandRecord(self.lineno, argv[:8], "builtin", SIMULATED, status=st))
        return st

    def call_function(self, fn: A.FunctionDefinition, argv: list[str], assigns) -> int:
        self.record.add(CommandRecord(self.lineno, argv[:8], "function", SIMULATED))
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise ScriptDeferred(f"function nesting deeper than {self.limits.max_depth}", self.lineno)
        saved_pos = self.positional
        self.positional = argv[1:]
        frame: dict = {}
        self.locals.append(frame)
        for n, v in assigns:
            frame.setdefault(n, self.vars.get(n))
            self.setvar_or_die(n, v, EXPORT)
        try:
            st = self.run_command(fn.body)
        except Return as r:
            st = r.status
        finally:
            self.locals.pop()
            for n, prev in frame.items():
                self._restore_var(n, prev)
            self.positional = saved_pos
            self.depth -= 1
        self.status = st
        return st

    def make_local(self, name: str) -> None:
        """``local name``: save the current value, restored when the function returns."""
        if not self.locals:
            raise ExpansionError("local: not in a function")
        self.locals[-1].setdefault(name, self.vars.get(name))

def _noop_rest(pipes: list[A.Pipeline]) -> bool:
    """True if the rest of an and-or list has no effect worth deciding (``|| true``), or is a
    failure handler: ``|| (printf 'failed' >&2; exit 1)`` (see :func:`_failure_handler`)."""
    for p in pipes:
        if len(p.commands) != 1:
            return False
        c = p.commands[0]
        if isinstance(c, (A.Subshell, A.BraceGroup)) and not c.redirects and _failure_handler(c.body):
            continue
        if isinstance(c, A.SimpleCommand) and _exit_command(c):
            continue
        if not isinstance(c, A.SimpleCommand) or not _quiet_command(c):
            return False
    return True


def _exit_command(c: A.SimpleCommand) -> bool:
    """``exit`` or ``exit N`` (N literal), no redirections."""
    if c.assigns or c.redirects or not c.words or c.words[0].literal() != "exit" or len(c.words) > 2:
        return False
    return len(c.words) == 1 or (c.words[1].literal() or "").isdigit()


def _quiet_command(c: A.SimpleCommand) -> bool:
    """A command whose only effect is a message (``echo``, ``printf``, ``:``, ``true``)."""
    if c.assigns or not c.words or c.words[0].literal() not in NOOP_NAMES:
        return False
    for r in c.redirects:
        if not (r.op in (">&",) and r.target.literal() == "2") and r.target.literal() != "/dev/null":
            return False
    return True


def _failure_handler(body: A.List) -> bool:
    """Messages, then optionally ``exit N``: what a script runs when the command before ``||``
    failed. Its outcome is the script's failure, which the first-boot job reports for the
    deferred command itself (its entry fails); offline the command is taken to succeed, as
    every deferred command is (a ``set -e`` script stops at a failure the same way), so the
    handler never runs. ``return`` and ``false`` are not accepted: a function's or subshell's
    status may decide something later."""
    items = body.items
    if not items:
        return False
    for k, it in enumerate(items):
        if it.background or len(it.and_or.pipelines) != 1:
            return False
        p = it.and_or.pipelines[0]
        if p.bang or len(p.commands) != 1 or not isinstance(p.commands[0], A.SimpleCommand):
            return False
        c = p.commands[0]
        if k == len(items) - 1 and _exit_command(c):
            continue
        if not _quiet_command(c):
            return False
    return True


# ---------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------


def dpkg_environment(script_name: str = "", package: str = "", arch: str = "") -> dict[str, str]:
    """The environment dpkg gives maintainer scripts (dpkg's ``maintscript_set_env``);
    ``arch`` is the package's architecture (the image's, never the host's)."""
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": "/root",
        "DPKG_ROOT": "",
        "DPKG_ADMINDIR": "/var/lib/dpkg",
        "DPKG_RUNNING_VERSION": "1.21.22",
        "DPKG_MAINTSCRIPT_ARCH": arch,
        "DPKG_MAINTSCRIPT_NAME": script_name,
        "DPKG_MAINTSCRIPT_PACKAGE": package,
        "DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT": "1",
        "DPKG_MAINTSCRIPT_DEBUG": "0",
        "DPKG_FRONTEND_LOCKED": "true",
        "LANG": "C",
    }
    return env


def new_shell(fs, limits: Limits, record: RunRecord, deferred: list, model_state: dict, *, models: ModelSet,
              arg0: str, positional: list[str], fds: dict, cwd: str, umask: int, env: dict[str, str],
              initial_env: dict[str, str], opts: set[str] | None = None, depth: int = 0) -> Shell:
    """A shell as a newly started ``sh`` process: exported environment, default IFS/PS4/OPTIND.

    Used for the top-level script and for every child shell the simulator starts (a script
    of the image, ``sh -c``); ``initial_env`` is what deferred commands' environments are
    compared with.
    """
    sh = Shell(fs, limits, record, deferred, model_state, models)
    sh.arg0 = arg0
    sh.positional = list(positional)
    sh.fds = fds
    sh.cwd, sh.umask, sh.depth = cwd, umask, depth
    for k, v in env.items():
        sh.vars[k] = (v, EXPORT)
    sh.initial_env = initial_env
    sh.vars.setdefault("IFS", (" \t\n", 0))
    sh.vars.setdefault("PS4", ("+ ", 0))
    sh.vars["PWD"] = (cwd, EXPORT)
    sh.vars.setdefault("OPTIND", ("1", 0))
    sh.opts = set(opts or ())
    return sh


def run_script(fs, script, argv: list[str] | None = None, env: dict[str, str] | None = None,
               name: str = "sh", budget: int = 200_000, stdin: bytes = b"", umask: int = 0o022,
               cwd: str = "/", max_output: int = 64 << 20, max_depth: int = 100,
               model_state: dict | None = None, bash: bool = False, *, models: ModelSet,
               is_path: bool | None = None) -> ScriptResult:
    """Interpret a script against ``fs``; never runs anything on the host.

    ``script`` is the text (``str``) or a path in the image; ``is_path`` says which (None: a
    one-line ``str`` naming an existing file is a path; a maintainer script's text is passed
    with ``is_path=False``, since a script whose whole text is ``/`` or ``/bin/true`` is text). ``argv`` are the positional
    parameters, ``name`` is ``$0`` (and the prefix of error messages). ``env`` defaults to
    what dpkg gives maintainer scripts. ``budget`` bounds the number of commands run; a script
    beyond it, or beyond the output or nesting caps, is deferred whole. ``models`` are the
    programs it can simulate (``nuwa.script.commands.default_models()`` for all of them); any
    other program is deferred.
    """
    record = RunRecord(name)
    deferred: list[DeferredCommand] = []
    limits = Limits(budget, max_output, max_depth)
    out, err = OutBuf(limits), OutBuf(limits)
    environment = dpkg_environment(arch=native_architecture(fs) or "") if env is None else dict(env)
    # the disk and partition nodes the booted guest's /dev would hold (when the caller
    # described the image's disk): scripts test for /dev/disk/by-uuid/... as they would there
    fs = guest_view(fs, model_state)
    sh = new_shell(fs, limits, record, deferred, model_state if model_state is not None else {}, models=models,
                   arg0=name, positional=list(argv or []), fds={0: InBuf(stdin), 1: out, 2: err},
                   cwd=cwd, umask=umask, env=environment, initial_env=dict(environment))
    sh.bash = bash

    def result(status: int, whole: bool = False, reason: str = "") -> ScriptResult:
        return ScriptResult(status, bytes(out.data), bytes(err.data), record, deferred, whole, reason)

    if is_path or (is_path is None and (not isinstance(script, str) or (
            "\n" not in script and script.startswith("/") and fs.exists(script)))):
        script = fs.read_bytes(script).decode("utf-8", "surrogateescape")
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 20000))
    try:
        try:
            prog = parse(script, bash=bash)
        except ParseError as e:
            sh.lineno = e.line
            sh.error(e.dash_text())
            return result(2, True, f"parse error: {e}")
        except RecursionError:
            return result(2, True, "parse error: nesting too deep")
        try:
            st = sh.run_to_end(prog)
        except ScriptDeferred as d:
            return result(0, True, f"line {d.line}: {d.reason}" if d.line else d.reason)
        except RecursionError:
            return result(0, True, "nesting too deep")
        return result(st)
    finally:
        sys.setrecursionlimit(old_limit)
        sh.discard()
