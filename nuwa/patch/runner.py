"""The script simulator as dpkg's maintainer-script runner (the runner protocol is in ``nuwa.deb.runner``).

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

Deferred work goes, in dpkg's order, into the image's first-boot job
(:class:`nuwa.script.firstboot.FirstBootJob`, read from the image on first use so that a
second run extends it): a whole script as a copy of the script with dpkg's arguments and
environment (with the package's ``config`` and ``templates`` beside it, for debconf), a
single command with its recorded context. :meth:`SimulatorRunner.commit` writes the job; the
dpkg engine calls it from ``Dpkg.commit``. Why the package is then recorded as if the script
had succeeded is explained in docs/dpkg.md ("Maintainer scripts in the simulator").
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from nuwa.script.commands import default_models, maintainer_stand_in
from nuwa.script.context import Defer, ModelSet
from nuwa.script.firstboot import FirstBootJob
from nuwa.script.interp import dpkg_environment, run_script
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
    #: the first-boot job deferred work goes to (loaded from the image at the first deferral)
    job: FirstBootJob | None = None
    #: (call index, job entry ids) for every call that added to the job
    job_entries: list = field(default_factory=list)
    #: FirstBootJob.load's time limits (``entry_timeout``, ``job_timeout``; empty: the defaults)
    job_limits: dict = field(default_factory=dict)
    #: the command models scripts run with; None: all of them,
    #: ``nuwa.script.commands.default_models()``, built at the first script
    models: ModelSet | None = None

    def run(self, package: str, script_name: str, args: list[str], env: dict[str, str], *,
            script: bytes = b"", fs=None, path: str = "") -> int:
        """Interpret ``script`` as dpkg would run it; returns the status dpkg sees."""
        if self.models is None:
            self.models = default_models()
        text = script.decode("utf-8", "surrogateescape")
        first = text.split("\n", 1)[0]
        full_env = dpkg_environment(script_name, package, env.get("DPKG_MAINTSCRIPT_ARCH", ""))
        full_env.update(env)
        if first.startswith("#!") and not _is_shell(first):
            # a non-shell script a model knows by its text starts as that model says (krb5-config's
            # Perl postinst: debconf's frontend exec'd on itself); any other is deferred whole
            reason = f"interpreter {first[2:].strip()!r} is not simulated"
            try:
                text = maintainer_stand_in(script, full_env)
            except Defer as d:
                text, reason = None, f"{reason}: {d.reason}"
            if text is None:
                self._defer_whole(fs, package, script_name, args, full_env, script, path, reason)
                return self._record(package, script_name, args, full_env, 0, None, True, reason)
            first = "#!/bin/sh"
        flags = [w for w in first[2:].split()[1:] if w.startswith("-")] if first.startswith("#!") else []
        if flags:  # "#!/bin/sh -e": the kernel passes the flags to the shell; line 1 is a comment anyway
            text = "set " + " ".join(flags) + text[len(first):]
        sp = fs.savepoint() if hasattr(fs, "savepoint") else None
        res = run_script(fs, text, argv=list(args), env=full_env, name=path or script_name, budget=self.budget,
                         model_state=self.model_state, bash="bash" in first, models=self.models, is_path=False)
        if res.deferred_whole:
            if sp is not None:
                fs.rollback_to(sp)
            self._defer_whole(fs, package, script_name, args, full_env, script, path, res.reason)
            return self._record(package, script_name, args, full_env, 0, res, True, res.reason)
        if sp is not None:
            fs.release(sp)
        if res.deferred_commands:
            job = self._job(fs)
            source = path or f"{package}.{script_name}"
            ids = [job.add_command(c, full_env, source, package).id for c in res.deferred_commands]
            self.job_entries.append((len(self.results), ids))
        return self._record(package, script_name, args, full_env, res.status, res, False)

    # ---- the first-boot job ------------------------------------------------------------------
    def _job(self, fs) -> FirstBootJob:
        if self.job is None:
            self.job = FirstBootJob.load(fs, **self.job_limits)
        return self.job

    def _defer_whole(self, fs, package, script_name, args, env, script: bytes, path: str, reason: str) -> None:
        """The whole invocation goes to the job: a copy of the script under dpkg's name, its
        arguments and environment, and the package's debconf files beside it."""
        info = posixpath.dirname(path) if path.startswith("/") else ""
        # info/PKG.preinst beside info/PKG.config, or dpkg's control area tmp.ci/preinst
        # beside tmp.ci/config (a new package's script), which the job names PKG.*
        in_cidir = "." not in posixpath.basename(path)
        stem = posixpath.basename(path).rsplit(".", 1)[0] if info and not in_cidir else \
            env.get("DPKG_MAINTSCRIPT_PACKAGE", package)
        extra = {}
        if info:
            for kind in ("config", "templates"):
                try:
                    extra[f"{stem}.{kind}"] = fs.read_bytes(f"{info}/{kind}" if in_cidir else f"{info}/{stem}.{kind}")
                except OSError:
                    pass
        e = self._job(fs).add_script(script, list(args), dict(env), f"{stem}.{script_name}", reason=reason,
                                     package=package, extra_files=extra)
        self.job_entries.append((len(self.results), [e.id]))

    def commit(self, fs) -> list[str]:
        """Write the first-boot job into ``fs`` if anything was deferred; returns its activations."""
        if self.job is None or not any(e.new for e in self.job.entries):
            return []
        return self.job.write(fs, self.models)

    def counts(self) -> dict[str, int]:
        """Script calls, whole deferrals, and commands simulated/dropped/deferred over the run."""
        out = {"scripts": len(self.results), "deferred_whole": sum(1 for c in self.results if c.deferred_whole),
               "simulated": 0, "dropped": 0, "deferred": 0}
        for c in self.results:
            if c.result is not None and not c.deferred_whole:  # a whole deferral's commands were undone
                for k in ("simulated", "dropped", "deferred"):
                    out[k] += c.result.record.counts.get(k, 0)
        return out

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
