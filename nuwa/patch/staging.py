"""Every writing job's common path: stage in an overlay, commit once, or write nothing.

``copy-in``, ``sh`` and ``patch`` (and any job that changes an image) follow DESIGN.md's rule:
by default the changes go into a **new qcow2 overlay** at ``output`` whose backing file is the
image, which stays byte-identical; ``in_place`` writes the image itself; one of the two is
required unless it is a dry run. Everything is staged in an :class:`nuwa.fs.overlay.Overlay`
and committed in one ordered flush, so a failure leaves nothing behind: a created output file
is removed and the image was never written. A dry run stages over the image as opened and
discards the overlay.

    with nuwa.open("disk.qcow2") as image:
        with staged(image, "copy-in", output="new.qcow2") as st:
            copy_in(st.fs, srcs, destdir)       # st.fs is the Overlay; committed at the end
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import tempfile
from dataclasses import dataclass

from nuwa.errors import InvalidInputError
from nuwa.formats.qcow2_copy import copy_onto
from nuwa.formats.qcow2_create import create_overlay
from nuwa.fs.overlay import Overlay
from nuwa.fs.trace import Trace, TracingFS
from nuwa.image import Image

#: the trace the staged jobs of this context record into (:func:`tracing`); None: no tracing
_TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("nuwa_staging_trace", default=None)


@contextlib.contextmanager
def tracing(trace: Trace):
    """Within the block, every staged job's overlay reads and writes the image's root
    filesystem through a :class:`nuwa.fs.trace.TracingFS` recording into ``trace`` (a fleet
    records one image's job to replay it into the others: ``nuwa.fleet``)."""
    token = _TRACE.set(trace)
    try:
        yield trace
    finally:
        _TRACE.reset(token)


def _overlay(root) -> Overlay:
    """The overlay a job stages in: over ``root``, or over a tracing view of it (:func:`tracing`)."""
    trace = _TRACE.get()
    return Overlay(root if trace is None else TracingFS(root, trace))


@dataclass
class Staging:
    """An overlay over the image's root filesystem, and where a commit will write it."""

    fs: Overlay
    image: Image
    #: the file a commit writes (the new overlay, or the image with in_place); None for a dry run
    target: str | None
    cancelled: bool = False

    def cancel(self) -> None:
        """Do not commit: nothing is written, and a created output file is removed."""
        self.cancelled = True


def check_target(command: str, output: str | None, in_place: bool) -> None:
    """``output`` (not existing) or ``in_place`` must be given (InvalidInputError, exit 2)."""
    if not output and not in_place:
        raise InvalidInputError(f"{command} writes a new overlay: give --output OUT (or --in-place to modify IMAGE)")
    if output and os.path.lexists(output):
        raise InvalidInputError("output exists (refusing to overwrite it)", where=output)


@contextlib.contextmanager
def staged(image: Image, command: str, output: str | None = None, in_place: bool = False, dry_run: bool = False):
    """Yield a :class:`Staging` over ``image``; commit its overlay when the block ends without an error.

    Without ``dry_run``: checks the target first (:func:`check_target`). With ``output``, the
    image's root filesystem is opened first (so its errors name the image, not the overlay
    about to be made), the qcow2 overlay is created (backing file = the image) and opened for
    writing; on any exception (or :meth:`Staging.cancel`) it is removed. The overlay is
    written under a temporary name beside ``output`` and renamed to ``output`` only after its
    final flush and close, so an interrupted run (even SIGKILL) never leaves a partial file
    under the output name. With ``in_place`` the
    image must have been opened writable, and its root filesystem is written crash-atomically: the
whole commit is one jbd2 transaction (``begin_atomic``), refused if the journal cannot hold it;
a filesystem without a journal is refused unless the image was opened with
``unsafe_in_place``. With ``dry_run`` nothing is ever written.
    """
    if dry_run:
        st = Staging(_overlay(image.root()), image, None)
        try:
            yield st
        finally:
            st.fs.discard()
        return
    check_target(command, output, in_place)
    if in_place:
        if not image.writable:
            raise InvalidInputError(f"{command} in place needs the image opened writable "
                                    "(nuwa.open(path, writable=True))", where=image.path)
        root = image.root()
        begin = getattr(root, "begin_atomic", None)
        if not (begin is not None and begin()) and not image.unsafe_in_place:
            raise InvalidInputError(f"{command} --in-place: the root filesystem has no journal, so an interrupted run "
                                    "could leave it damaged; write a new overlay with --output, or accept the risk "
                                    "with --unsafe-in-place", where=image.path)
        st = Staging(_overlay(root), image, image.path)
        try:
            yield st
        except BaseException:
            st.fs.discard()
            raise
        if st.cancelled:
            st.fs.discard()
        else:
            try:
                st.fs.commit()  # with a journal: one transaction, committed by the flush below
                image.flush()
            except BaseException:
                image.abandon()  # nothing half-done is committed: the image stays as before
                raise
        return
    image.root()  # errors name IMAGE, not the overlay about to be made
    tmp = temporary_name(output)
    try:
        create_overlay(tmp, image.path)  # same directory: the backing name stored is the same
        with Image.open(tmp, writable=True, partition=image.partition) as new:
            new.journal_writes = False  # unpublished until complete: the journal would add nothing
            defer = getattr(new.device, "defer_syncs", None)
            if defer is not None:  # for the same reason: one fsync at the close, not one per flush
                defer()
            st = Staging(_overlay(new.root()), new, output)
            yield st
            if not st.cancelled:
                st.fs.commit()
                new.flush()
            else:
                st.fs.discard()
        if not st.cancelled:
            publish(tmp, output)  # closed (flushed, fsynced) above: the rename is the very last step
    except BaseException:
        _remove(tmp)  # nothing half-written is left behind, under either name
        raise
    if st.cancelled:
        _remove(tmp)


def stage_copy(image: Image, source: str, output: str) -> None:
    """Write ``output`` as a copy of the qcow2 overlay ``source`` whose backing file is
    ``image`` (:func:`nuwa.formats.qcow2_copy.copy_onto`: ``qemu-img rebase -u`` of a copy) --
    which reads exactly as ``source`` does when ``image``'s disk reads exactly as ``source``'s
    backing file, as the caller must know. The same rules as :func:`staged`'s new overlay: a
    temporary name beside ``output``, fsynced, published by :func:`publish`; removed on any error."""
    check_target("patch", output, False)
    tmp = temporary_name(output)
    try:
        copy_onto(source, tmp, image.path, final_path=output)
        publish(tmp, output)
    except BaseException:
        _remove(tmp)
        raise


def temporary_name(output: str) -> str:
    """A new empty file ``.OUT.nuwa-XXXXXXXX`` beside ``output`` (same directory, so same
    filesystem for the final rename, and the same relative backing-file name)."""
    d = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.nuwa-", dir=d)
    try:
        mask = os.umask(0o022)
        os.umask(mask)
        os.fchmod(fd, 0o644 & ~mask)  # the mode the output would have had if created directly
    finally:
        os.close(fd)
    return tmp


def publish(tmp: str, output: str) -> None:
    """Give the finished file ``tmp`` its final name ``output`` atomically, never over a file.

    ``link`` then ``unlink`` fails with EEXIST where ``rename`` would replace a file created at
    ``output`` since :func:`check_target` looked; filesystems without hard links fall back to
    ``rename`` after a last check. The directory is fsynced so the new name is durable too.
    """
    try:
        os.link(tmp, output)
    except FileExistsError:
        raise InvalidInputError("output exists (refusing to overwrite it)", where=output) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(output):
            raise InvalidInputError("output exists (refusing to overwrite it)", where=output) from None
        os.rename(tmp, output)
    else:
        os.unlink(tmp)
    dfd = os.open(os.path.dirname(os.path.abspath(output)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
