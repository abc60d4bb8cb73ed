"""An overlay's own changes moved onto its base patched: when they touch nothing the patch did.

``--rebase-onto-patched-base`` (``nuwa.fleet.rebase``) patches a base once and records the
job's effect (:mod:`nuwa.patch.effect`). An overlay of that base with changes of its own
cannot be stacked on the patched base block by block (its clusters hold its own bitmaps and
inode tables). :func:`move` moves it at file level instead: its output is a new qcow2 overlay
of the patched base into which the overlay's own changes are written, when those changes and
the patch's cannot have seen each other. Then the result is what patching the overlay alone
gives: the job is a deterministic function of what it read (``nuwa.fs.trace``), the overlay
answers every one of those reads as the base did, so the job would have made the same writes;
those writes and the overlay's own changes fall on different paths, so either order ends alike.

The two change sets, at file level:

- **D**, the overlay's own (:func:`nuwa.fs.transplant.change_set`): every path added,
  removed or changed (type, mode, owner, content, modification and access times, xattrs,
  symlink target, device number, hard-link group) from the base to the overlay; the parent of each name added
  or removed (its listing changed); the root's own attributes.
- **W** and **R**, the patch's (:func:`nuwa.fs.trace.footprint` of the base's trace): the paths
  it wrote, created, removed, renamed or changed the metadata of, with the parents of the names
  it created or removed; the paths it read (lstat, readlink, xattrs, contents, every name the
  overlay looked up); the directories it was given listings of.

The overlay is **not** moved (the first reason is given; the fleet patches it one by one) when:

1. a path of D is in W: both changed it (the patch's version or the overlay's would be lost);
2. a path of D is in R: the patch read it, and on the overlay would have read something else;
3. a directory of D whose names changed was listed by the patch: a name it looked for and did
   not find leaves no trace but the listing (the overlay model loads whole directories), so
   any listing of it counts as a read of every name, present or not;
4. a path of D lies on the way to a path of W or R (an ancestor: a directory whose mode,
   owner or type changed changes what resolving through it gives) -- implied by rule 2, as the
   model looks every component up, and checked on its own in case it ever is not;
5. a path of D lies below a path the patch renamed or removed (the overlay's version would be
   written where the patch took the directory away);
6. the patch's outcome depends on the filesystem as a whole (a script asked ``statvfs``; a
   call the footprint does not account for);
7. the overlay's disk layout differs from the base's (the models answer from it), or its free
   space does not hold what the patch used at its peak (patched alone it would have run out);
8. D cannot be applied: space runs out in the new overlay, or D holds a file type the model
   cannot make.

What the move cannot carry (:mod:`nuwa.fs.transplant`): inode numbers and change times -- the
moved overlay's files are new inodes of the patched base's filesystem. The tree comparison of
the fleet's judges (type, mode, owner, size, contents, link target, xattrs, hard links) does
not see those, nor does anything the patch or a package reads.
"""

from __future__ import annotations

import copy
import errno
import time

from nuwa.errors import NuwaError
from nuwa.fs.memory import BLOCK
from nuwa.fs.trace import footprint
from nuwa.fs.transplant import apply_changes, change_set
from nuwa.image import Image
from nuwa.patch.report import PatchReport
from nuwa.patch.staging import staged
from nuwa.script.disklayout import describe_image


def _ancestors(path: str):
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        yield path


def conflict(cs, fp) -> str | None:
    """The first rule of the module note that ``cs`` (the overlay's :class:`ChangeSet`) and
    ``fp`` (the patch's :class:`nuwa.fs.trace.Footprint`) break, as a reason; None when none."""
    if fp.whole:
        return fp.whole
    if not cs.paths:
        return None
    on_way: set[str] = set()
    for p in fp.written | fp.read | fp.listed:
        on_way.update(_ancestors(p))
    for p in sorted(cs.paths):
        if p in fp.written:
            return f"{p} (changed here and written by the update)"
        if p in fp.read:
            return f"{p} (changed here and read by the update)"
        if p in cs.renamed and p in fp.listed:
            return f"{p} (its names changed here and the update listed it)"
        if p in on_way:
            return f"{p} (changed here and the update went through it)"
        moved = next((a for a in _ancestors(p) if a in fp.moved), None)
        if moved is not None:
            return f"{p} (changed here, below {moved}, which the update renamed or removed)"
    return None


def move(image, effect, patched: str, output: str):
    """Move ``image`` (an opened overlay of the base ``effect`` was recorded on) onto
    ``patched`` (that base patched by the job of ``effect``): a new overlay of ``patched`` at
    ``output`` holding the image's own changes (module note). Returns ``(report, cost)`` --
    this image's report and ``{"paths", "seconds"}`` of the change set -- or ``(None, reason)``
    when it is not moved (nothing was written)."""
    if describe_image(image) != effect.layout:
        return None, f"its disk layout differs from {effect.image}'s"
    fp = footprint(effect.trace)
    if fp.whole:
        return None, fp.whole
    own = image.root()
    start = time.monotonic()
    with Image.open(effect.image, partition=image.partition) as base:
        cs = change_set(base.root(), own)
    seconds = time.monotonic() - start
    why = conflict(cs, fp)
    if why is not None:
        return None, why
    v = own.statvfs("/")
    if v.f_bavail * v.f_frsize // BLOCK < effect.trace.peak[0] or v.f_favail < effect.trace.peak[1]:
        return None, "its free space does not hold what the update used at its peak"
    try:
        with Image.open(patched, partition=image.partition) as target:
            with staged(target, "patch", output=output) as st:
                apply_changes(cs, own, st.fs)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            return None, "its own changes do not fit in the patched base's free space"
        return None, f"its own changes cannot be applied ({e.strerror or e}: {e.filename})"
    except (ValueError, NuwaError) as e:  # a file type the model cannot make; a refused write
        return None, f"its own changes cannot be applied ({e})"
    doc = copy.deepcopy(effect.doc)
    doc["image"] = image.path
    doc["written"] = {"path": output, "in_place": False}
    return PatchReport(doc), {"paths": len(cs.paths), "seconds": round(seconds, 3)}
