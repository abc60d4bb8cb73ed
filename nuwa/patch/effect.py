"""A patch job's effect, recorded on one image and replayed into others that answer alike.

:func:`record` runs a patch job (any of :mod:`nuwa.patch`'s: ``--deb``, ``--upgrade``...) with
its overlay over a tracing view of the image (:func:`nuwa.patch.staging.tracing`), and
returns the job's report with an :class:`Effect`: the trace of every call the job made on the
image's root filesystem (reads with their answers, writes with their data), the report, and
the inputs the job took from the image outside that filesystem (the disk layout grub-probe
and friends answer from). :func:`replay` stages the same job's target on another image and
replays the trace there (:func:`nuwa.fs.trace.replay`): every read must be answered as on the
first image, every write must end alike, else nothing of it is kept and the caller computes
that image itself. Why that is the same result as the job run on the second image is in
``nuwa.fs.trace``.

An effect is not recorded (:func:`record` gives its reason instead) when it belongs to its
image alone: a model drew random bytes (a key, a machine id, a password salt:
``nuwa.script.entropy``), or the overlay refused a write for want of space (the capacity
bound of ``nuwa.fs.trace`` would not hold). The ``.deb`` files, the plan and the options are
the caller's to keep equal (a fleet replays only within one run's task group).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nuwa.errors import NuwaError
from nuwa.fs.trace import Trace, TraceMismatch
from nuwa.fs.trace import replay as replay_trace
from nuwa.patch.report import PatchReport
from nuwa.patch.staging import stage_copy, staged, tracing
from nuwa.script import entropy
from nuwa.script.disklayout import describe_image


#: how :func:`replay` says it copied the recorded job's output instead of replaying the trace
COPIED = "its output copied: the disks read alike"


@dataclass
class Effect:
    """One image's patch job, as :func:`record` kept it (picklable: a fleet sends it to workers)."""

    trace: Trace
    #: the job's report document (``nuwa patch --json``)
    doc: dict
    #: the disk layout the job's models saw (``nuwa.script.disklayout``)
    layout: object
    #: the image it was computed on
    image: str
    in_place: bool
    dry_run: bool
    #: the image's disk content identity before the job (``BlockDevice.content_identity``)
    identity: object = None
    #: the new overlay the job wrote, as it was when the job ended: ``(path, (st_dev, st_ino,
    #: st_size, st_mtime_ns))``; None when the job wrote none (in place, dry run, nothing to do)
    output: tuple | None = None


def record(image, job, in_place: bool = False, dry_run: bool = False):
    """Run ``job()`` (a patch job on ``image`` returning a PatchReport) recording its effect.

    Returns ``(report, effect, reason)``: ``effect`` is None, and ``reason`` says why, when the
    effect belongs to this image alone (module note). Exceptions of the job propagate.
    """
    trace = Trace()
    layout = describe_image(image)
    identity = _identity(image)
    draws = entropy.draws()
    with tracing(trace):
        rep = job()
    if entropy.draws() != draws:
        return rep, None, "a maintainer script made a secret or an identifier from random bytes: each image makes its own"
    if trace.space_refused:
        return rep, None, "a write was refused for want of space: another image's free space would change the outcome"
    doc = rep.to_json()
    written = doc.get("written") or {}
    output = None
    if written.get("path") and not written.get("in_place"):
        output = (written["path"], _stamp(written["path"]))
    return rep, Effect(trace, doc, layout, image.path, in_place, dry_run, identity, output), ""


def _stamp(path: str):
    """What tells a file apart from itself changed: device, inode, size, modification time (None: gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def reads_as(image, effect: Effect) -> bool:
    """Whether ``image``'s disk reads exactly as the one ``effect`` was recorded on did (equal
    content identities): every read of the job, and any other, answers alike."""
    return effect.identity is not None and _identity(image) == effect.identity


def _identity(image):
    hook = getattr(image.device, "content_identity", None)
    return hook() if hook is not None else None


def replay(image, effect: Effect, output: str | None = None, in_place: bool = False, dry_run: bool = False,
           copy_layer: bool = True):
    """Apply ``effect`` to ``image`` (a new overlay at ``output``, the image ``in_place``, or
    nothing with ``dry_run``, as :func:`nuwa.patch.staging.staged` does).

    An image whose disk reads exactly as the recorded one's did (equal content identities:
    e.g. two overlays that allocated nothing, over one base) is not asked the trace's reads;
    its writes are still checked -- or, for a new overlay, not made at all: the job's own
    output, still as the job left it, holds the guest data the job would write here too, and
    its layer is copied over this image (:func:`nuwa.patch.staging.stage_copy`; ``copy_layer=False``
    replays the trace instead). Returns ``(report, how)`` with this image's report (``how``:
    ``"trace"`` or :data:`COPIED`), or
    ``(None, reason)`` when the image answers differently (nothing was written: the output is removed; in place, the image is
    abandoned and must be opened again before anything else is done with it).
    """
    if (in_place, dry_run) != (effect.in_place, effect.dry_run):
        return None, "recorded for another kind of target"
    same_disk = reads_as(image, effect)
    source = effect.output
    # the same bytes are the same disk layout too: described only when the disks differ
    if copy_layer and same_disk and output and source is not None and source[1] is not None \
            and _stamp(source[0]) == source[1]:
        try:
            stage_copy(image, source[0], output)
        except (OSError, NuwaError):
            pass  # the job's output could not be read after all: the trace is replayed instead
        else:
            return _report(image, effect, output, False), COPIED
    if describe_image(image) != effect.layout:
        return None, f"its disk layout differs from {effect.image}'s"
    why = None
    try:
        with staged(image, "patch", output=output, in_place=in_place, dry_run=dry_run) as st:
            try:
                replay_trace(effect.trace, st.fs.backend, trusted=same_disk)
            except (TraceMismatch, OSError, NuwaError) as e:
                why = f"it answers differently from {effect.image} ({e})"
                if in_place:
                    image.abandon()  # the writes made so far are dropped, not committed
                    raise _Abandoned() from None
                st.cancel()
            target = st.target
    except _Abandoned:
        return None, why
    if why is not None:
        return None, why
    return _report(image, effect, target, in_place), "trace"


def _report(image, effect: Effect, target: str | None, in_place: bool) -> PatchReport:
    """The recorded job's report, as ``image``'s own (written to ``target``)."""
    doc = dict(effect.doc)  # only its top-level entries change: shared parts are never written
    doc["image"] = image.path
    doc["written"] = None if target is None else {"path": target, "in_place": bool(in_place)}
    return PatchReport(doc)


class _Abandoned(Exception):
    """Raised through :func:`staged` to leave an in-place replay without committing."""
