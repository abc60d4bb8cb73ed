"""A file's contents read and copied in pieces: the one loop every reader and copier shares.

A *reader* is anything with ``pread(offset, n) -> bytes`` (a :class:`nuwa.fs.model.FileHandle`,
an overlay's content object); a *writer* anything with ``pwrite(offset, data)``. Contents are
never read whole: one piece is at most :data:`CHUNK` bytes. A reader that returns nothing
before ``size`` (a file that shrank under it) ends the loop, never spins on it.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

#: the largest piece read or written at once
CHUNK = 1 << 20
#: a whole piece of zeros, compared against (memcmp) rather than counted byte by byte
_ZEROS = bytes(CHUNK)


def pieces(reader, size: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` of the first ``size`` bytes of ``reader``, in order."""
    off = 0
    while off < size:
        chunk = reader.pread(off, min(CHUNK, size - off))
        if not chunk:
            return
        yield off, chunk
        off += len(chunk)


def sha256_hex(reader, size: int) -> str:
    """sha256 (hex) of the first ``size`` bytes of ``reader``, read in pieces."""
    h = hashlib.sha256()
    for _off, chunk in pieces(reader, size):
        h.update(chunk)
    return h.hexdigest()


def same_pieces(a, b, size: int) -> bool:
    """Whether readers ``a`` and ``b`` hold the same first ``size`` bytes: read side by side in
    pieces up to the first piece that differs (cheaper than hashing both when they are equal,
    which most files a package upgrade rewrites are). A reader that ends early is equal only
    to one that ends at the same point."""
    off = 0
    while off < size:
        n = min(CHUNK, size - off)
        chunk = a.pread(off, n)
        if chunk != b.pread(off, n):
            return False
        if not chunk:
            break
        off += len(chunk)
    return True


def is_zeros(chunk: bytes) -> bool:
    """A piece that holds only zero bytes (a hole, where the destination may leave one).

    An equality test against zeros is a ``memcmp`` (about 60x faster than ``bytes.count``
    on a 1 MiB piece, which counted every byte of every file a commit writes); a piece that
    starts or ends with data is told at once."""
    n = len(chunk)
    if n and (chunk[0] or chunk[-1]):
        return False
    return chunk == (_ZEROS if n == CHUNK else bytes(n))


def copy_content(reader, writer, size: int, holes: bool = True) -> int:
    """Copy the first ``size`` bytes of ``reader`` into ``writer`` at the same offsets; returns
    how many were read. ``holes``: a piece of zeros is not written (the destination stays a
    hole there; the caller sets its size). Without, every byte is written (``cp``'s model)."""
    done = 0
    for off, chunk in pieces(reader, size):
        if not holes or not is_zeros(chunk):
            writer.pwrite(off, chunk)
        done = off + len(chunk)
    return done


def fill(handle, reader, size: int) -> None:
    """Make the open, empty file ``handle`` (new, or opened with ``O_TRUNC``) hold the first
    ``size`` bytes of ``reader``: copied with holes kept, then set to that size (a trailing
    hole, or a reader that ran dry)."""
    copy_content(reader, handle, size)
    if handle.size() != size:
        handle.truncate(size)
