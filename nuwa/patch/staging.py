"""The writing commands' common path: stage in an overlay, commit once, or write nothing.

``copy-in`` and ``sh`` (and any command that changes an image) follow DESIGN.md's rule:
by default the changes go into a **new qcow2 overlay** at ``--output`` whose backing file is
IMAGE, which stays byte-identical; ``--in-place`` writes IMAGE itself; one of the two is
required. Everything is staged in an :class:`nuwa.fs.overlay.Overlay` and committed in one
ordered flush, so a failure leaves nothing behind: a created output file is removed and the
image was never written. A dry run opens the image read-only and discards the overlay.

    with staged(args, "copy-in") as st:
        copy_in(st.fs, srcs, destdir)       # st.fs is the Overlay; committed at the end
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from nuwa.errors import InvalidInputError


@dataclass
class Staging:
    """An overlay over the image's root filesystem, and where a commit will write it."""

    fs: object  # nuwa.fs.overlay.Overlay
    image: object  # nuwa.image.Image
    #: the file a commit writes (the new overlay, or IMAGE with --in-place); None for a dry run
    target: str | None
    cancelled: bool = False

    def cancel(self) -> None:
        """Do not commit: nothing is written, and a created output file is removed."""
        self.cancelled = True


def check_target(args, command: str) -> None:
    """``--output OUT`` (not existing) or ``--in-place`` must be given (InvalidInputError, exit 2)."""
    if not getattr(args, "output", None) and not getattr(args, "in_place", False):
        raise InvalidInputError(f"{command} writes a new overlay: give --output OUT (or --in-place to modify IMAGE)")
    if args.output and os.path.lexists(args.output):
        raise InvalidInputError("output exists (refusing to overwrite it)", where=args.output)


def open_image(args, writable: bool = False, path: str | None = None):
    """``nuwa.open`` on IMAGE (or ``path``) with the command's ``--partition``."""
    import nuwa

    return nuwa.open(path or args.image, writable=writable, partition=getattr(args, "partition", None))


@contextlib.contextmanager
def staged(args, command: str, dry_run: bool = False):
    """Yield a :class:`Staging`; commit its overlay when the block ends without an error.

    Without ``dry_run``: checks the target first (:func:`check_target`), creates the qcow2
    overlay at ``--output`` (backing file = IMAGE) or opens IMAGE for writing, and on any
    exception (or :meth:`Staging.cancel`) removes what it created. With ``dry_run`` the image
    is opened read-only and nothing is ever written.
    """
    from nuwa.fs.overlay import Overlay

    if dry_run:
        with open_image(args) as image:
            st = Staging(Overlay(image.root()), image, None)
            try:
                yield st
            finally:
                st.fs.discard()
        return
    check_target(args, command)
    target, created = args.image, None
    if args.output:
        from nuwa.formats.qcow2_create import create_overlay

        with open_image(args) as probe:  # errors name IMAGE, not the overlay about to be made
            probe.root()
        create_overlay(args.output, args.image)
        created = target = args.output
    try:
        with open_image(args, writable=True, path=target) as image:
            st = Staging(Overlay(image.root()), image, target)
            yield st
            if not st.cancelled:
                st.fs.commit()
                image.flush()
            else:
                st.fs.discard()
    except BaseException:
        if created:
            os.unlink(created)  # nothing half-written is left behind
        raise
    if st.cancelled and created:
        os.unlink(created)
