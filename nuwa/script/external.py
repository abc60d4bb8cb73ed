"""External commands for the interpreter: a mixin of :class:`nuwa.script.interp.Shell`.

A command name resolves through ``PATH`` *in the image* (dash's ``find_command``); the
program found runs as the command model registered under its basename, with an
:class:`nuwa.script.context.Invocation`. No model, or a model raising ``Defer``, makes a
deferral: recorded with its context, or -- when its output is used -- the whole script is
deferred (:class:`nuwa.script.record.ScriptDeferred`). Nothing is ever executed on the host.
"""

from __future__ import annotations

import posixpath

from nuwa.script.context import DEFERRED, DROPPED, REGISTRY, SIMULATED, Defer, Drop, Invocation
from nuwa.script.fdtable import InBuf, OutBuf
from nuwa.script.record import CommandRecord, DeferredCommand, ScriptDeferred

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ExternalCommands:
    """Mixin: PATH lookup in the image, model calls, deferral, ``Invocation.run``."""

    def find_command(self, name: str) -> str | None:
        """Resolve ``name`` through ``PATH`` in the image (dash's ``find_command``)."""
        if "/" in name:
            p = self.abspath(name)
            return p if self._executable(p) else None
        path = self.getvar("PATH")
        if path is None:
            path = DEFAULT_PATH
        for d in path.split(":"):
            p = posixpath.join(self.abspath(d or "."), name)
            if self._executable(p):
                return p
        return None

    def _executable(self, p: str) -> bool:
        try:
            st = self.fs.stat(p)
        except (OSError, ValueError):
            return False
        return st.is_reg and bool(st.st_mode & 0o111)

    def run_external(self, argv: list[str], assigns, nested: bool = False, prefix: str = "") -> int:
        name = argv[0]
        path = self.find_command(name)
        if path is None:
            self.error(f"{prefix}{name}: not found")
            self.record.add(CommandRecord(self.lineno, argv[:8], "missing", SIMULATED, "not found", 127))
            return 127
        env = self.environ()
        for n, v in assigns:
            env[n] = v
        stdin_desc = self.fds.get(0)
        stdin = stdin_desc.read(-1) if stdin_desc is not None else b""
        inv = Invocation(
            argv=list(argv), fs=self.fs, cwd=self.cwd, env=env, stdin=stdin, umask=self.umask,
            run=self._model_run, state=self.model_state,
        )
        model = REGISTRY.get(posixpath.basename(path))
        try:
            if model is None:
                raise Defer(f"no model for {posixpath.basename(path)}")
            st = int(model(inv))
        except Defer as d:
            if nested:
                raise
            return self.defer_command(argv, d.reason, env, stdin)
        except Drop as d:
            self.record.add(CommandRecord(self.lineno, argv[:8], "external", DROPPED, d.reason, d.status))
            return d.status
        self.write(1, bytes(inv.stdout))
        self.write(2, bytes(inv.stderr))
        self.record.add(CommandRecord(self.lineno, argv[:8], "external", SIMULATED, status=st))
        return st

    def defer_command(self, argv, reason: str, env: dict, stdin: bytes) -> int:
        """Record a deferred command, or defer the whole script if its output is used."""
        if getattr(self, "exec_mode", False):
            raise ScriptDeferred(f"`exec` of deferred `{argv[0]}` replaces the script ({reason})", self.lineno)
        out = self.fds.get(1)
        if out is not None and out.used:
            raise ScriptDeferred(f"the output of deferred `{argv[0]}` is {out.usage} ({reason})", self.lineno)
        diff = {k: v for k, v in env.items() if self.initial_env.get(k) != v}
        diff.update({k: None for k in self.initial_env if k not in env})
        self.deferred.append(DeferredCommand(list(argv), self.cwd, diff, self.umask, stdin, reason, self.lineno))
        self.record.add(CommandRecord(self.lineno, argv[:8], "external", DEFERRED, reason))
        self.tainted, self.tainted_by = True, argv[0]
        return 0

    def _model_run(self, argv: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
        """``Invocation.run``: a model runs another program (``xargs``, ``find -exec``)."""
        from nuwa.script.builtins import BUILTINS
        from nuwa.script.interp import ExitShell

        c = self.subshell()
        out, err = OutBuf(self.limits, "captured by a command model"), OutBuf(self.limits, "captured")
        c.fds = {0: InBuf(stdin), 1: out, 2: err}
        self.limits.step(self.lineno)
        try:
            if argv and argv[0] in ("echo", "printf", "test", "[", "true", "false") and c.find_command(argv[0]):
                st = BUILTINS[argv[0]](c, argv)
            else:
                st = c.run_external(argv, [], nested=True)
        except ExitShell as e:
            st = e.status
        return st, bytes(out.data), bytes(err.data)
