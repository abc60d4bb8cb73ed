"""One image of a fleet: the task a worker runs, and what it hands back.

:func:`run_image` is the unit of work Dask schedules (one task per image). It takes an
:class:`ImageTask` (plain data: paths, the ``.deb`` list or a
:class:`nuwa.patch.upgrade.PreparedUpgrade` planned once on the client) and returns an
:class:`ImageOutcome`; it never raises for a problem of its image -- a corrupt image, an
unsatisfiable plan, a failed maintainer script become an outcome ``failed`` with the one-line
reason and the exit code the single-image command would have given -- so one image never stops
the others. Each run is the single-image job itself (:meth:`nuwa.api.Image.patch`,
:func:`nuwa.patch.upgrade.apply_prepared`): a fleet image equals the same image patched alone.

Idempotent: an image (or, with ``--output-dir``, its existing output) that already holds what
the run would install is reported ``up-to-date`` and not written. A task re-run after its
worker died first removes the temporary file the dead worker left beside the output.

Effect reuse (:mod:`nuwa.patch.effect`): a task marked ``lead`` records its job's effect and
hands it back with its outcome (:attr:`ImageOutcome.effect`); :func:`run_image` given such a
leader's outcome replays that effect into its own image instead of computing it, when the
image answers every call of the recorded job alike, and computes the image itself when not
(:attr:`ImageOutcome.sharing` says which, and why). A follower marked ``move`` (an overlay of a
rebased family with changes of its own, :mod:`nuwa.fleet.rebase`) is first offered to
:func:`nuwa.patch.move.move`: moved onto its leader's output (the patched base) when its own
changes touch nothing the leader's job touched, patched as a follower when not.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field, fields, replace

from nuwa import api
from nuwa.deb.status import list_packages
from nuwa.errors import EXIT_FAILED, EXIT_USAGE, NuwaError
from nuwa.fleet.images import debs_applied, remove_stale_temporaries, state_key
from nuwa.patch.debfiles import open_debs
from nuwa.patch.effect import reads_as, record, replay

#: the outcomes, in the order the summary lists them
OUTCOMES = ("patched", "up-to-date", "kept-back", "failed")


@dataclass
class ImageTask:
    """What one worker needs to patch one image (picklable: it travels to the worker).

    ``output`` is the new overlay to write (None: the image itself, ``in_place``); ``mode`` is
    ``deb`` (``debs``: paths every worker can read) or ``upgrade`` (``prepared``, and ``key``:
    the package state it was planned for, re-checked on the worker; ``salt`` as given to
    :func:`nuwa.fleet.images.state_key`).
    """

    index: int
    image: str
    output: str | None
    mode: str
    debs: list = field(default_factory=list)
    #: a :class:`nuwa.patch.upgrade.PreparedUpgrade` (``upgrade`` mode)
    prepared: object = None
    key: str | None = None
    salt: str = ""
    dry_run: bool = False
    partition: int | None = None
    unsafe_in_place: bool = False
    firstboot_timeout: int | None = None
    firstboot_job_timeout: int | None = None
    #: record the job's effect for the tasks that follow this one (effect reuse)
    lead: bool = False
    #: ``--rebase-onto-patched-base``: an overlay with changes of its own, moved onto its leader's
    #: output (the patched base) when they touch nothing the patch did (:mod:`nuwa.patch.move`)
    move: bool = False


@dataclass
class ImageOutcome:
    """What became of one image: ``outcome`` (one of :data:`OUTCOMES`), the one-line
    ``reason`` when failed, the ``exit_code`` ``nuwa patch`` would give for it alone, counts,
    and the image's own patch report (``report``: the ``nuwa patch --json`` document)."""

    index: int
    image: str
    outcome: str
    output: str | None = None
    reason: str | None = None
    exit_code: int = 0
    packages: int = 0
    kept_back: dict = field(default_factory=dict)
    firstboot_entries: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    worker: str = ""
    note: str | None = None
    report: dict | None = None
    #: effect reuse: ``recorded`` (a leader whose effect others replay), ``replayed from IMAGE``,
    #: ``computed: REASON`` (a follower that could not replay, or a leader that could not share)
    sharing: str | None = None
    #: a leader's :class:`nuwa.patch.effect.Effect` (None once stripped; never in the JSON)
    effect: object = None

    def to_json(self) -> dict:
        """The image's entry of the fleet document (docs/fleet.md): the fields but the effect, as
        they are (not copied: a fleet's reports are many and large)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "effect"}

    def without_effect(self) -> "ImageOutcome":
        """This outcome without the (large) effect: what the client collects."""
        return replace(self, effect=None)


def _allocated(path: str) -> int:
    """Bytes the file occupies on disk (for in-place runs: growth is what was added)."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _failed(task: ImageTask, reason: str, code: int, start: float) -> ImageOutcome:
    return ImageOutcome(task.index, task.image, "failed", output=task.output, reason=reason, exit_code=code,
                        seconds=time.monotonic() - start, worker=_worker())


def _from_report(task: ImageTask, doc: dict, written: int, start: float) -> ImageOutcome:
    kept = dict((doc.get("plan") or {}).get("kept_back") or {})
    if doc.get("nothing_to_do") or not doc.get("packages"):
        outcome = "kept-back" if kept else "up-to-date"
    else:
        outcome = "patched"
    job = doc.get("firstboot") or {}
    return ImageOutcome(task.index, task.image, outcome, output=doc["written"]["path"] if doc.get("written") else None,
                        packages=len(doc.get("packages") or []), kept_back=kept,
                        firstboot_entries=len(job.get("new_entries") or []), bytes_written=written,
                        seconds=time.monotonic() - start, worker=_worker(), report=doc)


def _up_to_date(task: ImageTask, start: float, note: str) -> ImageOutcome:
    return ImageOutcome(task.index, task.image, "up-to-date", output=None, seconds=time.monotonic() - start,
                        worker=_worker(), note=note)


def existing_output(task: ImageTask, archives, start: float) -> ImageOutcome:
    """The output is there already (a finished earlier run: outputs appear only complete)."""
    if task.mode == "deb":
        with api.open(task.output, partition=task.partition) as out:
            if debs_applied(list_packages(out.root()), archives):
                return _up_to_date(task, start, f"already patched: {task.output} holds every package")
    # an --upgrade output that still has work was refused on the client; anything else is a clash
    return _failed(task, f"{task.output}: output exists (refusing to overwrite it)", EXIT_USAGE, start)


def _settled(task: ImageTask, image, archives, start: float) -> ImageOutcome | None:
    """The outcome of an image with nothing to do, or whose state moved since planning; else None."""
    if task.mode == "deb":
        if debs_applied(list_packages(image.root()), archives):
            return _up_to_date(task, start, "every package is installed at its version already")
    elif task.key is not None and state_key(image.root(), task.salt) != task.key:
        return _failed(task, "the image's package state changed since the fleet was planned; run again",
                       EXIT_FAILED, start)
    return None


def _compute(task: ImageTask, image, archives, in_place: bool):
    """The image's own job; returns ``(report, effect, why not shared)`` (an effect only for a leader)."""
    # late: the package engine and the script simulator load only where an image is computed (a
    # worker that only replays effects never needs them)
    from nuwa.patch.upgrade import apply_prepared

    opts = {"firstboot_timeout": task.firstboot_timeout, "firstboot_job_timeout": task.firstboot_job_timeout}

    def job():
        if task.mode == "deb":
            return image.patch(archives, output=task.output, in_place=in_place, dry_run=task.dry_run, **opts)
        return apply_prepared(image, task.prepared, output=task.output, in_place=in_place, dry_run=task.dry_run,
                              **opts)
    if not task.lead:
        return job(), None, ""
    return record(image, job, in_place=in_place, dry_run=task.dry_run)


def _move(task: ImageTask, image, lead: ImageOutcome | None, start: float):
    """``(outcome, None)`` when ``image`` was moved onto its leader's output (the patched base),
    else ``(None, why not)`` (``why not`` empty when no move was asked for)."""
    if not task.move or lead is None or task.output is None:
        return None, ""
    if lead.effect is None:
        return None, f"{lead.image} left no effect to compare with ({lead.sharing or lead.reason})"
    if lead.outcome != "patched" or not lead.output or not os.path.exists(lead.output):
        return None, f"{lead.image} was not patched ({lead.outcome})"
    # late: the move loads the tree comparison and the staging only where a move is asked for
    from nuwa.patch.move import move

    rep, cost = move(image, lead.effect, lead.output, task.output)
    if rep is None:
        return None, cost
    out = _from_report(task, rep.to_json(), os.path.getsize(task.output), start)
    out.sharing = f"moved onto {lead.output}"
    out.note = f"{cost['paths']} paths of its own moved (found in {cost['seconds']} s)"
    return out, None


def run_image(task: ImageTask, lead: ImageOutcome | None = None) -> ImageOutcome:
    """Patch one image as the single-image command would; never raises for the image's own
    problems (see the module note). ``lead``: the outcome of this task's leader, whose
    effect (if it has one) is replayed here when this image answers alike."""
    start = time.monotonic()
    effect = lead.effect if lead is not None else None
    try:
        opened: list = []

        def archives() -> list:  # opened when needed: a follower given a copy never reads them
            if task.mode == "deb" and not opened:
                opened.extend(open_debs(task.debs))
            return opened

        if task.output is not None:
            remove_stale_temporaries(task.output)
            if os.path.lexists(task.output):
                return existing_output(task, archives(), start)
        in_place = task.output is None and not task.dry_run
        before = _allocated(task.image) if in_place else 0
        made, sharing, rep, why_not = None, None, None, ""
        with api.open(task.image, writable=in_place, partition=task.partition,
                      unsafe_in_place=task.unsafe_in_place) as image:
            # an image that reads exactly as its leader's did is settled as the leader was: not yet
            settled = None if effect is not None and reads_as(image, effect) else _settled(task, image, archives(), start)
            if settled is not None:
                return settled
            moved, why_not = _move(task, image, lead, start)
            if moved is not None:
                return moved
            if effect is not None:
                rep, why = replay(image, effect, output=task.output, in_place=in_place, dry_run=task.dry_run)
                if rep is None:
                    sharing = f"computed: {why}"
                else:  # the copy of a layer is said: that image's disk read as this one's
                    sharing = f"replayed from {effect.image}" + (f" ({why})" if why != "trace" else "")
            elif lead is not None:
                sharing = f"computed: {lead.image} left no effect to replay ({lead.sharing or lead.reason})"
            if rep is None and not (in_place and effect is not None):
                rep, made, why = _compute(task, image, archives(), in_place)
        if rep is None:  # in place, a replay that did not match abandoned the opened image: open it anew
            with api.open(task.image, writable=True, partition=task.partition,
                          unsafe_in_place=task.unsafe_in_place) as image:
                rep, made, why = _compute(task, image, archives(), in_place)
        if task.lead:
            sharing = "recorded" if made is not None else f"computed: {why}"
        if why_not:
            sharing = f"patched one by one: {why_not}; {sharing}"
        doc = rep.to_json()
        if doc.get("written") is None:
            written = 0
        elif in_place:
            written = max(0, _allocated(task.image) - before)
        else:
            written = os.path.getsize(task.output)
        out = _from_report(task, doc, written, start)
        out.sharing, out.effect = sharing, made
        return out
    except NuwaError as e:
        return _failed(task, str(e), e.exit_code, start)
    except OSError as e:  # an errno from the filesystem model or the host, named path included
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        return _failed(task, f"{e.strerror or e}{where}", EXIT_FAILED, start)
    except Exception as e:  # a bug must not stop the fleet: reported as this image's failure
        return _failed(task, f"internal error: {type(e).__name__}: {e}", EXIT_FAILED, start)


def strip(outcome: ImageOutcome) -> ImageOutcome:
    """A leader's outcome without its effect (the Dask task the client waits on)."""
    return outcome.without_effect()
