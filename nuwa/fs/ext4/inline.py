"""Inline data (incompat ``inline_data``; kernel inlinedata.rst, FORMAT-NOTES B2.8).

A small file's bytes live in ``i_block`` (60 bytes) and continue in the in-inode xattr
``system.data``. An inline directory starts with the parent's inode number (4 bytes) and
continues with ordinary dirents in the rest of ``i_block`` and in ``system.data``.

The engine reads inline files and directories. It does not create new inline inodes; when an
inline file or directory is modified it is first converted to a block-mapped one (what the
kernel does when inline space runs out), so every inline inode on disk stays valid.
"""

from __future__ import annotations

import struct

from nuwa.errors import CorruptImageError
from nuwa.fs.ext4 import dirs

INLINE_INDEX = 7  # system.
INLINE_NAME = b"data"
I_BLOCK_SIZE = 60


def system_data(attrs) -> bytes | None:
    """The ``system.data`` value among parsed in-inode attributes (None if absent)."""
    for idx, name, value in attrs:
        if idx == INLINE_INDEX and name == INLINE_NAME:
            return value
    return None


def file_bytes(i_block: bytes, size: int, attrs, where: str) -> bytes:
    """The stored bytes of an inline regular file or symlink: at most ``size``, and fewer when
    ``i_size`` reaches past the inline area (``mke2fs -d`` stores an all-hole file that way; the
    kernel's ``ext4_read_inline_folio`` reads zeros past the inline bytes, and so do callers)."""
    extra = system_data(attrs)
    if extra is None:
        raise CorruptImageError("inline inode lacks its system.data attribute", where=where)
    return (bytes(i_block) + extra)[:size]


def dir_entries(i_block: bytes, attrs, where: str) -> tuple[int, list[tuple[int, int, bytes]]]:
    """``(parent inode, [(inode, file_type, name), ...])`` of an inline directory."""
    parent = struct.unpack_from("<I", i_block, 0)[0]
    out = []
    part = bytes(i_block[4:])
    for _off, ino, _rl, ft, name in dirs.entries(part, len(part), where + " (i_block)"):
        if ino:
            out.append((ino, ft, name))
    extra = system_data(attrs)
    if extra:
        for _off, ino, _rl, ft, name in dirs.entries(extra, len(extra), where + " (system.data)"):
            if ino:
                out.append((ino, ft, name))
    return parent, out
