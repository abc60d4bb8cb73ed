"""A qcow2 overlay copied onto another backing file that reads alike.

:func:`copy_onto` copies an overlay file and names another backing file in the copy's header,
changing nothing else -- what ``cp`` followed by ``qemu-img rebase -u`` (the "unsafe" rebase,
which rewrites the name without comparing any data) does. The copy reads exactly as the
original does only if the new backing file reads exactly as the old one: the caller vouches for
that. A fleet does it for an image whose disk has the content identity of the disk a job ran
on (``nuwa.patch.effect``): that job's output, copied onto the image, is what the job would
have written there.
"""

from __future__ import annotations

import errno
import os
import shutil

from nuwa.errors import InvalidInputError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.qcow2 import probe_format
from nuwa.formats.qcow2_create import backing_reference
from nuwa.formats.qcow2_header import build_header, header_probe_length, parse_header


def copy_onto(source: str, dest: str, backing_path: str, final_path: str | None = None) -> None:
    """Copy the qcow2 overlay ``source`` into ``dest`` (created or truncated) with
    ``backing_path`` as its backing file, stored relative to ``final_path``'s directory (the
    name ``dest`` will be published under; default ``dest``), as ``create_overlay`` stores it.

    Refused (InvalidInputError; ``dest`` is then left for the caller to remove): a source
    without a backing file, with an external data file, or whose recorded backing format is not
    ``backing_path``'s; a header that would not fit in cluster 0 with the new name.
    """
    with open(source, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        probe = os.pread(src.fileno(), C.QCOW_HEADER_V2_SIZE, 0)
        head = os.pread(src.fileno(), header_probe_length(probe), 0)
        h = parse_header(head, size)
        if not h.backing_file:
            raise InvalidInputError("not an overlay: it has no backing file", where=source)
        if h.incompatible_features & C.QCOW2_INCOMPAT_DATA_FILE:
            raise InvalidInputError("an overlay with an external data file is not copied", where=source)
        fmt = h.extension(C.QCOW2_EXT_MAGIC_BACKING_FORMAT)
        new_fmt = probe_format(backing_path)
        if fmt is not None and fmt.decode("utf-8", "replace") != new_fmt:
            raise InvalidInputError(f"its backing format is {fmt.decode('utf-8', 'replace')}, "
                                    f"{backing_path} is {new_fmt}", where=source)
        old_end = h.backing_file_offset + h.backing_file_size
        h.backing_file = backing_reference(final_path or dest, backing_path)
        new = build_header(h)
        with open(dest, "wb") as out:
            _copy(src, out, size, source)
            os.pwrite(out.fileno(), new + bytes(max(0, old_end - len(new))), 0)
            out.flush()
            os.fsync(out.fileno())


def _copy(src, out, size: int, source: str) -> None:
    """``size`` bytes of ``src`` into ``out``, in the kernel where it can (``copy_file_range``)."""
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(src.fileno(), out.fileno(), size - done, done, done)
            if n == 0:
                raise InvalidInputError("the file shrank while it was copied", where=source)
            done += n
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL) or done:
            raise
    src.seek(0)
    out.seek(0)
    shutil.copyfileobj(src, out, 8 << 20)
