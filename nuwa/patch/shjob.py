"""One shell script run against an image in the simulator: the job of ``nuwa sh`` and ``Image.sh``.

The offline counterpart of virt-customize's ``--run``. The script text is interpreted by
:func:`nuwa.script.interp.run_script` against an overlay over the image's root filesystem
(:mod:`nuwa.patch.staging`); nothing runs on the host. Commands that cannot be simulated go
into the image's first-boot job (:mod:`nuwa.script.firstboot`); when the script's use of them
forces the whole script to first boot, its effects are rolled back and the whole script is
stored in the job instead. The result (:class:`ShRun`) carries the script's stdout, stderr and
status, the record of every command, and the changed paths; its :meth:`ShRun.to_json` is
exactly what ``nuwa sh --json`` prints.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from nuwa.script.commands import default_models
from nuwa.script.disklayout import STATE_KEY, describe_image
from nuwa.errors import InvalidInputError
from nuwa.image import Image
from nuwa.patch.staging import check_target, staged
from nuwa.script.firstboot import FirstBootJob
from nuwa.script.interp import run_script
from nuwa.script.parser import parse
from nuwa.script.record import ScriptResult

#: the environment a ``nuwa sh`` script starts with (a root login shell's basics, C locale)
SH_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C",
    "SHELL": "/bin/sh",
    "USER": "root",
    "LOGNAME": "root",
}


def parse_check(text: str, bash: bool = False, name: str = "sh") -> None:
    """Parse the script before anything is opened; raises :class:`nuwa.script.parser.ParseError`.

    dash prints a syntax error and exits 2 before running anything; so do Nuwa's callers.
    """
    try:
        parse(text, bash=bash)
    except RecursionError:
        raise InvalidInputError("the script nests too deeply to parse", where=name) from None


def stream_json(data: bytes) -> dict:
    """A byte stream in JSON: UTF-8 text as it is, anything else base64 (``encoding`` says which)."""
    try:
        return {"text": data.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def _deferred_json(d) -> dict:
    return {"argv": d.argv, "cwd": d.cwd, "env": d.env, "umask": f"{d.umask:04o}", "stdin_size": len(d.stdin),
            "reason": d.reason, "line": d.line}


def _words(argv: list[str]) -> str:
    return " ".join(argv)[:200]


@dataclass
class ShRun:
    """What one script run did (``nuwa.open(...).sh(...)`` returns it)."""

    image: str
    name: str
    args: list[str]
    result: ScriptResult
    job: FirstBootJob | None
    added: list
    changes: list
    target: str | None
    in_place: bool
    dry_run: bool

    @property
    def status(self) -> int:
        """The exit status ``nuwa sh`` returns (0 when the whole script went to first boot)."""
        return 0 if self.result.deferred_whole else self.result.status

    @property
    def stdout(self) -> bytes:
        """What the script wrote on its standard output."""
        return self.result.stdout

    @property
    def stderr(self) -> bytes:
        """What the script wrote on its standard error."""
        return self.result.stderr

    def to_json(self) -> dict:
        """The document ``nuwa sh --json`` prints."""
        r, job = self.result, self.job
        return {
            "script": self.name, "args": self.args, "status": None if r.deferred_whole else r.status,
            "stdout": stream_json(r.stdout), "stderr": stream_json(r.stderr),
            "deferred_whole": r.deferred_whole, "reason": r.reason,
            "record": r.record.to_json(),
            "deferred_commands": [] if r.deferred_whole else [_deferred_json(d) for d in r.deferred_commands],
            "firstboot": job.to_json() | {"new_entries": [e.id for e in self.added]} if job is not None else None,
            "changes": [c.to_json() for c in self.changes],
            "written": None if self.target is None else {"path": self.target, "in_place": bool(self.in_place)},
            "dry_run": self.dry_run,
        }

    def summary_lines(self) -> list[str]:
        """The ``nuwa sh:`` lines printed on stderr after the script's own output."""
        r, job, n_changes = self.result, self.job, len(self.changes)
        c = r.record.counts
        out = [f"nuwa sh: {sum(c.values())} commands: {c.get('simulated', 0)} simulated, {c.get('dropped', 0)} "
               f"dropped, {c.get('deferred', 0)} deferred to first boot"]
        for e in r.record.entries:
            if e.classification == "dropped":
                out.append(f"nuwa sh: dropped: line {e.line}: {_words(e.argv)}: {e.reason}")
        if r.deferred_whole:
            out.append(f"nuwa sh: the whole script is deferred to first boot (its effects were undone): {r.reason}")
        else:
            for d in r.deferred_commands:
                out.append(f"nuwa sh: deferred: line {d.line}: {_words(d.argv)}: {d.reason}")
        if job is not None:
            how = ("activated by " + " and ".join(job.activation)) if job.activation else \
                "NOT activated: the image has neither systemd nor /etc/init.d; run /var/lib/nuwa/firstboot/run at boot"
            out.append(f"nuwa sh: first-boot job: {len(job.entries)} entries ({len(self.added)} new) in "
                       f"/var/lib/nuwa/firstboot, {how}")
        if self.target is None:
            out.append(f"nuwa sh: dry run: nothing written ({n_changes} paths would change)")
        elif self.in_place:
            out.append(f"nuwa sh: {n_changes} paths changed in {self.target} (in place)")
        else:
            out.append(f"nuwa sh: wrote {self.target} ({n_changes} paths changed; {self.image} unchanged)")
        return out


def run_sh(image: Image, script: str, args=(), name: str = "sh", bash: bool = False, output: str | None = None,
           in_place: bool = False, dry_run: bool = False, guest_disk: str = "") -> ShRun:
    """Interpret ``script`` against ``image`` with positional parameters ``args`` ($0 is ``name``).

    Writes a new qcow2 overlay at ``output``, or the image with ``in_place`` (opened
    writable), or nothing with ``dry_run``. A script that does not parse raises
    :class:`nuwa.script.parser.ParseError` before anything is staged. ``guest_disk`` fixes the
    name the booted guest gives the disk (``/dev/sda``...) for ``grub-probe`` and its kind;
    empty: decided from the image (:func:`nuwa.script.disklayout.disk_name`).
    """
    argv = list(args)
    if not dry_run:
        check_target("sh", output, in_place)
    parse_check(script, bash, name)
    models = default_models()
    env = dict(SH_ENVIRONMENT)
    job, added = None, []
    with staged(image, "sh", output=output, in_place=in_place, dry_run=dry_run) as st:
        fs = st.fs
        sp = fs.savepoint()
        r = run_script(fs, script, argv, env=dict(env), name=name, bash=bash, models=models,
                       model_state={STATE_KEY: describe_image(image, disk=guest_disk)})
        if r.deferred_whole:
            fs.rollback_to(sp)
        else:
            fs.release(sp)
        if r.deferred_whole or r.deferred_commands:
            job = FirstBootJob.load(fs)
            added = job.add_result(r, script.encode("utf-8", "surrogateescape"), argv, env,
                                   os.path.basename(name) if name != "sh" else "nuwa-sh-c", cwd="/")
            job.write(fs, models)
        changes = fs.changes()
        target = st.target
    return ShRun(image.path, name, argv, r, job, added, changes, target, in_place, dry_run)
