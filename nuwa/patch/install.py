"""``dpkg -i`` of local .debs with maintainer scripts simulated, and the patch job around it.

:func:`install_debs` is the one wiring of the engine: the package engine
(:class:`nuwa.deb.operations.Dpkg`) and the script simulator
(:class:`nuwa.patch.runner.SimulatorRunner`) are wired the same way by the patch job and by
the end-to-end tests: one runner for the whole run (so the command models share their state
and deferred work lands in one first-boot job), ``install`` (unpack all, configure all, process
triggers), then ``Dpkg.commit`` -- the package database and the first-boot job go into ``fs``.
``fs`` is normally an :class:`nuwa.fs.overlay.Overlay`; committing *that* (to the image) is
the caller's business, so a failure here leaves nothing but the overlay to discard.

:func:`patch_image` is the applying half of every patch job (``nuwa patch --deb`` and
``--upgrade``, through :mod:`nuwa.patch.upgrade`, which plans and orders; called without
``steps`` it is ``dpkg -i`` of the files): check the target and the report path, open every
.deb, stage an overlay over the image (:mod:`nuwa.patch.staging`), run apt's dpkg calls (or
``dpkg -i``), build the report (:mod:`nuwa.patch.report`), write it beside (before the
commit, so that "nothing written" holds for the report too), commit. Any package error
discards the overlay and names the package (exit 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nuwa.deb.operations import Dpkg
from nuwa.deb.status import StatusFile
from nuwa.errors import InternalError, InvalidInputError, NuwaError, OperationFailedError
from nuwa.image import Image
from nuwa.patch.report import (REBOOT_FILES, REBOOT_PKGS_FILES, PatchReport, build_report, check_report_path,
                               installed_sources, previous_firstboot, write_report)
from nuwa.patch.debfiles import open_debs
from nuwa.patch.runner import SimulatorRunner
from nuwa.patch.staging import check_target, staged
from nuwa.script.disklayout import STATE_KEY, describe_image


@dataclass
class Applied:
    """What :func:`install_debs` did: the engine (database, report) and the script runner."""

    dpkg: Dpkg
    runner: SimulatorRunner

    @property
    def report(self):
        """The engine's :class:`nuwa.deb.operations.Report` (actions, conffiles, triggers...)."""
        return self.dpkg.report


def install_debs(fs, debs, runner=None, **dpkg_options) -> Applied:
    """``dpkg -i debs`` on ``fs`` with scripts interpreted; the database and job are written to ``fs``.

    ``debs`` are paths or opened :class:`nuwa.deb.archive.DebArchive`; ``dpkg_options`` go to
    :class:`nuwa.deb.operations.Dpkg` (``conffile_policy``, ``admindir``...). Any package error
    propagates (a :class:`nuwa.errors.NuwaError`); ``fs`` then holds partial work to discard.
    """
    runner = runner if runner is not None else SimulatorRunner()
    d = Dpkg(fs, runner, **dpkg_options)
    d.install(debs)
    d.commit()
    return Applied(d, runner)


def install_steps(fs, steps, runner=None, progress=None, **dpkg_options) -> Applied:
    """apt's sequence of dpkg calls on ``fs``, each its own dpkg run, scripts interpreted.

    ``steps`` are ``(action, operands)`` as :func:`nuwa.apt.order.order` gives them, with the
    unpack operands opened (paths or :class:`DebArchive`): ``unpack``, ``configure``,
    ``remove`` and ``purge`` with ``--no-triggers`` (as apt 2.6 calls dpkg), and
    ``configure-pending``, which processes the triggers. The database and job are written to
    ``fs`` at the end, as in :func:`install_debs`. ``progress`` (a
    :class:`nuwa.apt.progress.Stages`) is shown each step.
    """
    runner = runner if runner is not None else SimulatorRunner()
    d = Dpkg(fs, runner, **dpkg_options)
    totals: dict[str, int] = {}
    for action, operands in steps:
        totals[action] = totals.get(action, 0) + max(len(operands), 1)
    done: dict[str, int] = {}
    d.read_ahead([a for action, operands in steps if action == "unpack" for a in operands])
    try:
        _run_steps(d, steps, progress, totals, done)
    finally:
        d.drop_read_ahead()
    d.commit()
    return Applied(d, runner)


def _run_steps(d: Dpkg, steps, progress, totals: dict, done: dict) -> None:
    for action, operands in steps:
        if progress is not None:
            done[action] = done.get(action, 0) + max(len(operands), 1)
            name = {"configure-pending": "triggers"}.get(action, action)
            first = operands[0] if operands else ""
            label = getattr(first, "package", None) or os.path.basename(str(first)).split("_")[0]
            progress.stage(name, done[action], totals[action], label)
        if action == "unpack":
            d.unpack(operands)
        elif action == "configure":
            d.configure(list(operands), triggers=False)
        elif action == "configure-pending":
            d.configure_pending(triggers=True)
        elif action in ("remove", "purge"):
            d.remove(list(operands), purge=action == "purge", triggers=False)
        else:
            raise InternalError(f"unknown dpkg step {action!r}")
        d.end_run()


def _named(err: NuwaError, archives) -> NuwaError:
    """The error, with the package named if its message does not name one already."""
    msg = str(err)
    names = [a.package for a in archives] + [os.path.basename(a.where) for a in archives]
    if any(n and n in msg for n in names):
        return err
    cls = type(err)
    try:
        return cls(f"{msg} (while installing {', '.join(a.package for a in archives)})")
    except TypeError:  # an error class with another signature: keep it as it is
        return err


def patch_image(image: Image, debs, output: str | None = None, in_place: bool = False, dry_run: bool = False,
                report: str | None = None, firstboot_timeout: int | None = None,
                firstboot_job_timeout: int | None = None, steps=None, finish=None,
                extra: dict | None = None, progress=None, changes: bool = True) -> PatchReport:
    """Install ``debs`` (paths or opened archives) into ``image``; see the module note.

    Writes a new qcow2 overlay at ``output`` (backing file = the image), or the image itself
    with ``in_place`` (opened writable), or nothing with ``dry_run``; ``report`` is a host
    file that receives the JSON document too. ``firstboot_timeout`` and
    ``firstboot_job_timeout`` (seconds) bound each deferred entry and the whole first-boot job
    (docs/firstboot.md; defaults there). Returns the :class:`PatchReport`, which also says what
    an earlier first-boot job left in the image.

    ``steps`` (apt's dpkg call sequence, :func:`install_steps`; its unpack operands among
    ``debs``) replaces ``dpkg -i``; ``finish(fs)`` runs in the same overlay after the packages
    (apt's own state: ``extended_states``); ``extra`` is merged into the report document;
    ``progress`` (:class:`nuwa.apt.progress.Stages`) shows the unpack, configure and write
    stages on a terminal. ``changes=False`` leaves the report's ``changes`` None: the paths
    the run touched are not compared with the image (a tenth of a minbase update's time,
    measured; ``nuwa patch --quiet`` without ``--json`` or ``--report`` shows no report), and
    ``reboot`` is answered from the reboot files' own entries.
    """
    check_report_path(report)
    if not debs:
        raise InvalidInputError("nothing to apply: give --deb FILE (one or more)")
    if not dry_run:
        check_target("patch", output, in_place)
    archives = open_debs(debs)
    wrote_report = False
    try:
        with staged(image, "patch", output=output, in_place=in_place, dry_run=dry_run) as st:
            previous = previous_firstboot(st.fs)
            before = installed_sources(StatusFile.load(st.fs, "/var/lib/dpkg/status"))
            limits = {k: v for k, v in (("entry_timeout", firstboot_timeout),
                                        ("job_timeout", firstboot_job_timeout)) if v}
            try:
                runner = SimulatorRunner(job_limits=limits)
                # what grub-probe & co. answer about "the machine's" disk: the image's own
                runner.model_state[STATE_KEY] = describe_image(image)
                if steps is None:
                    applied = install_debs(st.fs, archives, runner=runner)
                else:
                    # the unpack operands are the paths given in ``debs``: each opened once, above
                    opened = {os.fspath(d): a for d, a in zip(debs, archives) if isinstance(d, (str, os.PathLike))}
                    opened.update({a.path: a for a in archives})
                    applied = install_steps(st.fs, [(act, [opened.get(o, o) for o in ops] if act == "unpack" else ops)
                                                    for act, ops in steps], runner=runner, progress=progress)
                if finish is not None:
                    finish(st.fs)
            except NuwaError as e:
                raise _named(e, archives) from None
            except OSError as e:  # the filesystem model's errno (ENOSPC...): one line, exit 1
                where = f": {e.filename}" if getattr(e, "filename", None) else ""
                raise _named(OperationFailedError(f"{e.strerror or e}{where}"), archives) from None
            listed = st.fs.changes() if changes else st.fs.changes(only=REBOOT_FILES + REBOOT_PKGS_FILES)
            doc = build_report(image.path, archives, applied, listed, st.target, dry_run, in_place,
                               previous, before=before, read=st.fs.read_bytes)
            if not changes:
                doc["changes"] = None
            doc.update(extra or {})
            if report:  # before the commit: a report that cannot be written cancels the run
                write_report(report, doc)
                wrote_report = True
            if progress is not None and not dry_run:
                progress.stage("write", item=st.target or "")
    except BaseException:
        if progress is not None:
            progress.close()
        if wrote_report:  # the commit failed: no report of a run that wrote nothing
            os.unlink(report)
        raise
    if progress is not None:
        progress.close()
    return PatchReport(doc)
