"""``--rebase-onto-patched-base``: patch a family's base once, move its overlays onto it.

Most images of a cloud are qcow2 overlays of a few base images, and many of them never wrote
a byte of their own. Mirage's promise -- patch one file, protect all the machines that use it --
is this: the base is patched once, into a new overlay of it in ``--output-dir`` (named after
the base; nothing is ever written into the shared base itself), and each overlay that holds
nothing of its own gets as its output a new, empty overlay whose backing file is that patched
base. Such an overlay reads exactly as its base does (``BlockDevice.content_identity``), so
the patched base *is* what patching it alone would give, and its output costs a qcow2 header.

An overlay that holds clusters of its own cannot be stacked on the patched base block by
block: its clusters hold the ext4 bitmaps and inode tables of *its* filesystem, which the
patched base rewrote too. It is a follower of the base (the family's leader) marked ``move``:
on its worker, with the base's effect at hand, :mod:`nuwa.patch.move` compares its own changes
with what the patch wrote and read, by path, and moves it at file level (a new overlay of the
patched base holding its own changes) when they are disjoint; otherwise it is patched one by
one (:mod:`nuwa.fleet.task`: the base's job replayed into it when every read answers alike,
computed when not), its ``sharing`` naming the first conflicting path.

:func:`plan_rebase` groups the tasks by the bottom of their backing chains and makes one base
task per group (for ``--upgrade``, per group that has an untouched overlay: its package state is
the base's, and so its plan); :func:`finish_rebase` writes the untouched
overlays' outputs once their base is patched (on the client: a header each).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from nuwa.errors import InvalidInputError
from nuwa.fleet.images import output_name, remove_stale_temporaries
from nuwa.fleet.task import ImageOutcome, ImageTask, existing_output
from nuwa.formats.detect import open_disk
from nuwa.formats.qcow2_create import create_overlay
from nuwa.patch.debfiles import open_debs
from nuwa.patch.staging import publish, temporary_name


def plan_rebase(tasks: list[ImageTask], chains: list, output_dir: str, images: list[str], outputs: list[str],
                first_index: int):
    """Split ``tasks`` for a rebase (module note): returns ``(bases, moved, followers)`` --
    ``bases`` the new base tasks (indexes from ``first_index``; ``chains[i]`` is
    :func:`nuwa.fleet.images.chain_of` of task ``i``'s image), ``moved`` ``{task position:
    base position in bases}`` for the untouched overlays, ``followers`` the same for the other
    overlays of a rebased family. Refuses (exit 2) a patched base whose name would be an
    image's output or an input."""
    # a family: one bottom and, for --upgrade, one package state (an untouched overlay has its
    # base's; an overlay that upgraded or removed packages of its own has another plan)
    families: dict[tuple, list[tuple[int, bool]]] = {}
    for pos, (t, (bottom, untouched)) in enumerate(zip(tasks, chains)):
        if bottom is not None and bottom != os.path.realpath(t.image):  # an overlay, not a base itself
            families.setdefault((bottom, t.key), []).append((pos, untouched))
    taken = {os.path.realpath(o) for o in outputs if o}
    inputs = {os.path.realpath(p) for p in images}
    bases, moved, followers = [], {}, {}
    for (bottom, _key), members in families.items():
        first = next((pos for pos, untouched in members if untouched), None)
        if first is None and tasks[members[0][0]].mode == "deb":
            first = members[0][0]  # --deb: every member's job is the base's (the same .deb files)
        if first is None:
            # --upgrade: the base's own package state (and so its plan) is known from an untouched
            # overlay only; the family is an effect group as without the option
            continue
        out = os.path.join(output_dir, output_name(bottom))
        if os.path.realpath(out) in taken or os.path.realpath(out) in inputs:
            raise InvalidInputError(f"the patched base {out!r} would be written over an image's output or an "
                                    f"input; use another --output-dir", where=bottom)
        taken.add(os.path.realpath(out))
        b = len(bases)
        # the base task is an untouched overlay's (its plan is the base's own), or any member's for --deb
        bases.append(replace(tasks[first], index=first_index + b, image=bottom, output=out, lead=True, move=False))
        for pos, untouched in members:
            (moved if untouched else followers)[pos] = b
            tasks[pos].move = not untouched  # moved at file level when it touches nothing the patch did
    return bases, moved, followers


def finish_rebase(task: ImageTask, base_task: ImageTask, base: ImageOutcome,
                  sizes: dict | None = None) -> ImageOutcome:
    """The outcome of moving the untouched overlay of ``task`` onto its patched base (the
    outcome ``base`` of ``base_task``): a new empty overlay whose backing file is the patched
    base, written here. A patched base that exists already (a re-run) is used as it is.
    ``sizes``: the patched bases' guest sizes, kept by the caller across its overlays."""
    start = time.monotonic()
    done = ImageOutcome(task.index, task.image, base.outcome, output=None, reason=base.reason,
                        exit_code=base.exit_code, packages=base.packages, kept_back=dict(base.kept_back),
                        firstboot_entries=base.firstboot_entries, worker="client")
    if base.outcome == "failed":
        done.reason = f"its base {base.image} could not be patched: {base.reason}"
        return done
    patched = base_task.output if os.path.exists(base_task.output) else None
    if patched is None:  # nothing to do for the base: nothing for an overlay that reads as it does
        done.note = f"its base {base.image} needs nothing"
        return done
    remove_stale_temporaries(task.output)
    if os.path.lexists(task.output):  # a re-run: judged as any existing output is
        return existing_output(task, open_debs(task.debs) if task.mode == "deb" else [], start)
    tmp = temporary_name(task.output)
    try:
        os.unlink(tmp)  # create_overlay makes the file itself
        if sizes is not None and patched not in sizes:
            with open_disk(patched, format="qcow2") as dev:
                sizes[patched] = dev.size
        create_overlay(tmp, patched, "qcow2", backing_size=None if sizes is None else sizes[patched])
        publish(tmp, task.output)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    done.outcome, done.output = "patched", task.output
    done.bytes_written = os.path.getsize(task.output)
    done.sharing = f"rebased onto {patched}"
    if base.report is not None:
        doc = dict(base.report)  # only its top-level entries change: shared parts are never written
        doc["image"] = task.image
        doc["written"] = {"path": task.output, "in_place": False}
        done.report = doc
    done.seconds = time.monotonic() - start
    return done
