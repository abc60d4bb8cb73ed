"""Directory blocks: parsing and editing ``ext2_dir_entry_2`` records (linear directories).

Pure functions on one block (``bytearray``); the engine supplies blocks and checksums.
Rules (kernel directory.rst; FORMAT-NOTES B2.7): ``rec_len`` is a multiple of 4, at least
``8 + name_len`` rounded up, and the entries tile the block exactly; with metadata_csum the
last 12 bytes are a fake entry holding the leaf checksum; the first entry of a block is never
removed but emptied (inode 0); a removed entry's space joins the previous entry.
"""

from __future__ import annotations

import struct

from nuwa.errors import CorruptImageError, quote
from nuwa.fs.ext4.c_ext4 import EXT2_FT_DIR_CSUM, S_DIRENT

TAIL_SIZE = 12
_TAIL = struct.Struct("<IHBBI")


def rec_len_for(name_len: int) -> int:
    """Minimal record length for a name (``EXT2_DIR_REC_LEN``)."""
    return (8 + name_len + 3) & ~3


def decode_rec_len(v: int, bs: int) -> int:
    """On-disk rec_len to bytes (65536-byte blocks encode it specially; ``ext2fs_get_rec_len``)."""
    if bs < 65536 or v < 65535:
        return v
    return 65536 if v in (0, 65535) else (v & 65532) | ((v & 3) << 16)


def has_tail(block) -> bool:
    """True if the block ends with a checksum tail entry."""
    ino, rl, nl, ft, _ = _TAIL.unpack_from(block, len(block) - TAIL_SIZE)
    return ino == 0 and rl == TAIL_SIZE and nl == 0 and ft == EXT2_FT_DIR_CSUM


def set_tail(block: bytearray) -> None:
    """Write an (unchecksummed) tail entry into the last 12 bytes."""
    _TAIL.pack_into(block, len(block) - TAIL_SIZE, 0, TAIL_SIZE, 0, EXT2_FT_DIR_CSUM, 0)


def _records(block, usable: int, where: str, start: int = 0):
    """``(offset, inode, rec_len, name_len, file_type)`` of each record from ``start``, each
    checked as it is reached: a truncated record, a rec_len that is not a multiple of 4, under
    8 or past the end, a live record's name longer than its record (CorruptImageError naming
    the offset and field)."""
    off = start
    unpack = S_DIRENT.unpack_from
    bs = len(block)
    while off < usable:
        if off + 8 > usable:
            raise CorruptImageError(f"directory entry at offset {off} is truncated", where=where)
        ino, rl, nl, ft = unpack(block, off)
        if bs >= 65536:
            rl = decode_rec_len(rl, bs)
        if rl < 8 or rl & 3 or off + rl > usable:
            raise CorruptImageError(f"rec_len {rl} at offset {off} is not valid", where=where + ", field rec_len")
        if ino and 8 + nl > rl:
            raise CorruptImageError(f"name_len {nl} at offset {off} exceeds rec_len {rl}",
                                    where=where + ", field name_len")
        yield off, ino, rl, nl, ft
        off += rl


def entries(block, usable: int, where: str, start: int = 0) -> list[tuple[int, int, int, int, bytes]]:
    """Records of a leaf: ``(offset, inode, rec_len, file_type, name)``, including empty ones.

    ``usable`` is the block size minus the tail, if any. Raises CorruptImageError naming the
    offset and field of the first broken record.
    """
    out = []
    for off, ino, rl, nl, ft in _records(block, usable, where, start):
        name = bytes(block[off + 8 : off + 8 + nl]) if ino else b""
        if ino and (not nl or b"\0" in name or b"/" in name):
            _bad_name(name, off, where)
        out.append((off, ino, rl, ft, name))
    return out


def _bad_name(name: bytes, off: int, where: str) -> None:
    """Refuse a live entry whose name no kernel could have written (the image is damaged).

    e2fsck pass 2 (``check_name``, problems PR_2_BAD_NAME and PR_2_NULL_NAME) reports a
    name that holds ``/`` or a NUL byte, or is empty; such a name cannot be a path component.
    """
    why = "is empty" if not name else "contains a NUL byte" if b"\0" in name else "contains '/'"
    raise CorruptImageError(f"directory entry name {quote(name)} at offset {off} {why}", where=where + ", field name")


def find(block, usable: int, name: bytes, where: str, start: int = 0) -> tuple[int, int, int] | None:
    """``(offset, inode, file_type)`` of ``name`` in the block, or None (records validated)."""
    if block.find(name) < 0:  # quick reject: the name bytes must appear somewhere
        _walk_check(block, usable, where, start)
        return None
    for off, ino, _rl, ft, nm in entries(block, usable, where, start):
        if ino and nm == name:
            return off, ino, ft
    return None


def _walk_check(block, usable: int, where: str, start: int = 0) -> None:
    """The same record checks as entries(), without building the list (hot path)."""
    for _rec in _records(block, usable, where, start):
        pass


def insert(block: bytearray, usable: int, name: bytes, ino: int, ftype: int, where: str) -> bool:
    """Add an entry where it fits (first fit, splitting a record's slack); False if no room."""
    need = (8 + len(name) + 3) & ~3
    for off, eino, rl, nl, _ft in _records(block, usable, where):
        if eino == 0:
            if rl >= need:
                S_DIRENT.pack_into(block, off, ino, rl, len(name), ftype)
                block[off + 8 : off + 8 + len(name)] = name
                return True
        else:
            used = (8 + nl + 3) & ~3
            if rl - used >= need:
                struct.pack_into("<H", block, off + 4, used)
                new = off + used
                S_DIRENT.pack_into(block, new, ino, rl - used, len(name), ftype)
                block[new + 8 : new + 8 + len(name)] = name
                return True
    return False


def locate(block, usable: int, name: bytes, where: str,
           start: int = 0) -> tuple[int, int | None, int, int, int] | None:
    """``(offset, previous record's offset or None, inode, file_type, record length)`` of
    ``name``, or None.

    Every record of the block is checked (as :func:`_walk_check` does), but names are only
    compared, never validated nor listed: for removing or repointing a name, which the lookup
    before it found (and that lookup checked the names: entries() of the whole linear
    directory, or find() on an htree leaf). A commit that replaces thousands of files asks this
    once per file; building the list of every record was most of its cost.
    """
    if block.find(name) < 0:  # quick reject, as in find()
        _walk_check(block, usable, where, start)
        return None
    n = len(name)
    prev = None
    for off, ino, rl, nl, ft in _records(block, usable, where, start):
        if ino and nl == n and block[off + 8 : off + 8 + n] == name:
            _walk_check(block, usable, where, off + rl)  # the rest of the block too
            return off, prev, ino, ft, rl
        prev = off
    return None


def remove(block: bytearray, usable: int, name: bytes, where: str, start: int = 0) -> int | None:
    """Delete ``name``; returns its inode number or None. The first record is emptied in place."""
    r = locate(block, usable, name, where, start)
    if r is None:
        return None
    off, prev, ino, _ft, rl = r
    if prev is None:
        struct.pack_into("<I", block, off, 0)
    else:
        prl = struct.unpack_from("<H", block, prev + 4)[0]
        struct.pack_into("<H", block, prev + 4, prl + rl)
    return ino


def set_inode(block: bytearray, off: int, ino: int, ftype: int | None = None) -> None:
    """Point the record at ``off`` at another inode (rename over a target, ``..`` updates)."""
    struct.pack_into("<I", block, off, ino)
    if ftype is not None:
        block[off + 7] = ftype


def pack(bs: int, recs: list[tuple[int, int, bytes]], csum: bool) -> bytearray:
    """A fresh leaf holding ``recs`` = ``[(inode, file_type, name), ...]`` (must fit)."""
    block = bytearray(bs)
    usable = bs - TAIL_SIZE if csum else bs
    off = 0
    for i, (ino, ft, name) in enumerate(recs):
        rl = rec_len_for(len(name)) if i < len(recs) - 1 else usable - off
        if off + rl > usable:
            raise AssertionError("entries do not fit in a block")
        S_DIRENT.pack_into(block, off, ino, rl, len(name), ft)
        block[off + 8 : off + 8 + len(name)] = name
        off += rl
    if not recs:
        S_DIRENT.pack_into(block, 0, 0, usable, 0, 0)
    if csum:
        set_tail(block)
    return block


def used_bytes(recs: list[tuple[int, int, bytes]]) -> int:
    """Bytes the records need when packed."""
    return sum(rec_len_for(len(n)) for _, _, n in recs)


def new_dir_block(bs: int, ino: int, parent: int, csum: bool) -> bytearray:
    """Block 0 of a new directory: ``.`` and ``..``."""
    return pack(bs, [(ino, 2, b"."), (parent, 2, b"..")], csum)
