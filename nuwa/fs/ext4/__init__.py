"""The ext2/3/4 engine: read and write ext filesystems in user space.

``open_ext4(dev, writable=False, forensic=False)`` returns an :class:`Ext4FS` implementing the
filesystem-model protocol (:mod:`nuwa.fs.model`) plus ``info()`` and ``close()``;
``probe(dev)`` says whether a device holds an ext2/3/4 superblock. See docs/ext4.md.
"""

from __future__ import annotations

import struct

from nuwa.errors import InvalidInputError
from nuwa.fs.ext4.c_ext4 import EXT2_SUPER_MAGIC, SUPERBLOCK_OFFSET
from nuwa.fs.ext4.fs import Ext4FS


def probe(dev) -> bool:
    """True if ``dev`` carries the ext2/3/4 superblock magic at byte 1024 + 0x38."""
    if dev.size < SUPERBLOCK_OFFSET + 1024:
        return False
    return struct.unpack("<H", dev.pread(SUPERBLOCK_OFFSET + 0x38, 2))[0] == EXT2_SUPER_MAGIC


def open_ext4(dev, writable: bool = False, forensic: bool = False, clock=None, journal: bool = True):
    """Open the filesystem on ``dev``.

    ``writable`` replays a journal that needs recovery and refuses features, flags or pending
    orphans the writer does not handle (``UnsupportedFeatureError`` naming them); ``forensic``
    reads despite checksum mismatches (never together with writing). ``clock`` returns "now"
    in nanoseconds (tests pin it). With ``journal`` (the default) a writable filesystem that
    has a journal is written crash-atomically: each ``flush()`` (and ``close()``) commits the
    changes since the last one as one jbd2 transaction (:mod:`nuwa.fs.ext4.jbd2_write`);
    ``journal=False`` writes in place directly (marked not clean until ``close()``).
    """
    if writable and forensic:
        raise InvalidInputError("forensic mode is read-only", where="open_ext4")
    return Ext4FS(dev, writable=writable, forensic=forensic, clock=clock, journal=journal)
