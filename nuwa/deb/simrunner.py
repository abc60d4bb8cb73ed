"""The script simulator as dpkg's maintainer-script runner.

:class:`SimulatorRunner` implements :class:`nuwa.deb.runner.ScriptRunner`: each maintainer
script dpkg's operations call is interpreted by :func:`nuwa.script.interp.run_script` against
the same filesystem model (the overlay dpkg works in), with dpkg's arguments and environment.
Command models do the work (dpkg-divert, dpkg-trigger, dpkg-maintscript-helper, rm, sed...);
nothing runs on the host.

Outcomes, per call, in :attr:`SimulatorRunner.results`:

- simulated: the script's exit status goes back to dpkg (a failure makes dpkg unwind);
- some commands deferred (no model, or one that cannot be simulated): their effects are
  kept for the first-boot job, the status of the simulated rest goes back to dpkg;
- the whole script deferred (a deferred command's output or status was used, a budget was
  exceeded, a Perl script...): its partial effects are rolled back when the filesystem is an
  overlay with savepoints, and dpkg is told it succeeded (it will really run at first boot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.script.record import ScriptResult


@dataclass
class SimulatedCall:
    """One maintainer-script invocation and what the simulator made of it."""

    package: str
    script_name: str
    args: list[str]
    env: dict[str, str]
    status: int
    result: ScriptResult | None
    deferred_whole: bool
    reason: str = ""


@dataclass
class SimulatorRunner:
    """A :class:`nuwa.deb.runner.ScriptRunner` that interprets scripts (see the module note)."""

    budget: int = 200_000
    results: list[SimulatedCall] = field(default_factory=list)
    #: shared by the command models across the scripts of one run (debconf, ucf registries...)
    model_state: dict = field(default_factory=dict)

    def run(self, package: str, script_name: str, args: list[str], env: dict[str, str], *,
            script: bytes = b"", fs=None, path: str = "") -> int:
        """Interpret ``script`` as dpkg would run it; returns the status dpkg sees."""
        import nuwa.script.commands  # noqa: F401  (registers every command model)
        from nuwa.script.interp import dpkg_environment, run_script

        text = script.decode("utf-8", "surrogateescape")
        first = text.split("\n", 1)[0]
        full_env = dpkg_environment(script_name, package, env.get("DPKG_MAINTSCRIPT_ARCH", ""))
        full_env.update(env)
        if first.startswith("#!") and not _is_shell(first):
            return self._record(package, script_name, args, full_env, 0, None, True,
                                f"interpreter {first[2:].strip()!r} is not simulated")
        flags = [w for w in first[2:].split()[1:] if w.startswith("-")] if first.startswith("#!") else []
        if flags:  # "#!/bin/sh -e": the kernel passes the flags to the shell; line 1 is a comment anyway
            text = "set " + " ".join(flags) + text[len(first):]
        sp = fs.savepoint() if hasattr(fs, "savepoint") else None
        res = run_script(fs, text, argv=list(args), env=full_env, name=path or script_name, budget=self.budget,
                         model_state=self.model_state, bash="bash" in first)
        if res.deferred_whole:
            if sp is not None:
                fs.rollback_to(sp)
            return self._record(package, script_name, args, full_env, 0, res, True, res.reason)
        if sp is not None:
            fs.release(sp)
        return self._record(package, script_name, args, full_env, res.status, res, False)

    def _record(self, package, script_name, args, env, status, res, whole, reason="") -> int:
        self.results.append(SimulatedCall(package, script_name, list(args), dict(env), status, res, whole, reason))
        return status

    def deferred(self) -> list[SimulatedCall]:
        """Calls that (wholly or partly) must run at first boot."""
        return [c for c in self.results if c.deferred_whole or (c.result and c.result.deferred_commands)]

    def lines(self) -> list[str]:
        """``package script args -> status`` per call (whole deferrals marked)."""
        out = []
        for c in self.results:
            s = f"{c.package} {c.script_name} {' '.join(c.args)}".rstrip() + f" -> {c.status}"
            if c.deferred_whole:
                s += f" (deferred: {c.reason})"
            out.append(s)
        return out


def _is_shell(shebang: str) -> bool:
    """``#!/bin/sh``, ``#!/bin/bash``, ``#! /bin/sh -e``...: the shells the simulator runs."""
    words = shebang[2:].split()
    return bool(words) and words[0].rsplit("/", 1)[-1] in ("sh", "dash", "bash")
