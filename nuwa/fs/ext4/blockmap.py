"""ext2/ext3 indirect block maps, read and write (kernel blockmap.rst).

``i_block[0..11]`` map the first twelve blocks directly; ``i_block[12]``, ``[13]`` and ``[14]``
point to single, double and triple indirect blocks of ``block_size / 4`` little-endian block
numbers. Zero means a hole. Reading produces the same :class:`FileMap` as extent trees;
writing rebuilds the indirect blocks from the map (reusing the old ones), so the engine edits
block-mapped and extent-mapped files the same way.
"""

from __future__ import annotations

import errno
import struct

from nuwa.errors import CorruptImageError, fs_error
from nuwa.fs.ext4.extents import FileMap

NDIR = 12


def _spans(per: int) -> list[tuple[int, int, int]]:
    """``(i_block slot, first logical block, levels)`` of the three indirect trees."""
    return [(12, NDIR, 1), (13, NDIR + per, 2), (14, NDIR + per + per * per, 3)]


def max_blocks(block_size: int) -> int:
    """Largest number of logical blocks a block map can address."""
    per = block_size // 4
    return NDIR + per + per ** 2 + per ** 3


def read_block_map(i_block: bytes, get_block, block_size: int, blocks_count: int, ino: int) -> FileMap:
    """Decode the indirect map rooted in ``i_block``."""
    per = block_size // 4
    ptrs = struct.unpack("<15I", i_block)
    ext: list[list] = []
    meta: list[int] = []
    seen: set[int] = set()
    where = f"ext4 inode {ino} block map"

    def add(lblk: int, pblk: int) -> None:
        if pblk >= blocks_count:
            raise CorruptImageError(f"logical block {lblk} maps to block {pblk} outside the filesystem",
                                    where=where)
        if ext and ext[-1][0] + ext[-1][1] == lblk and ext[-1][2] + ext[-1][1] == pblk:
            ext[-1][1] += 1
        else:
            ext.append([lblk, 1, pblk, False])

    def walk(blk: int, level: int, base: int) -> None:
        if blk >= blocks_count or blk in seen:
            raise CorruptImageError(f"indirect block {blk} is outside the filesystem or repeated", where=where)
        seen.add(blk)
        meta.append(blk)
        entries = struct.unpack("<%dI" % per, get_block(blk))
        span = per ** (level - 1)
        for j, e in enumerate(entries):
            if not e:
                continue
            if level == 1:
                add(base + j, e)
            else:
                walk(e, level - 1, base + j * span)

    for i in range(NDIR):
        if ptrs[i]:
            add(i, ptrs[i])
    for slot, base, levels in _spans(per):
        if ptrs[slot]:
            walk(ptrs[slot], levels, base)
    return FileMap(ext, meta)


def _pairs(fmap_ext: list[list]):
    for lblk, ln, pblk, _u in fmap_ext:
        for i in range(ln):
            yield lblk + i, pblk + i


def meta_needed(ext: list[list], block_size: int) -> int:
    """Number of indirect blocks a map needs."""
    per = block_size // 4
    need: set[tuple] = set()
    for lblk, _ in _pairs(ext):
        _path(lblk, per, need)
    return len(need)


def _path(lblk: int, per: int, acc: set) -> None:
    # identifies each indirect block by (slot, index path) so shared parents are counted once
    if lblk < NDIR:
        return
    for slot, base, levels in _spans(per):
        span = per ** levels
        if base <= lblk < base + span:
            off = lblk - base
            path = (slot,)
            acc.add(path)
            for lv in range(levels - 1, 0, -1):
                path = path + (off // per ** lv,)
                off %= per ** lv
                acc.add(path)
            return
    raise fs_error(errno.EFBIG, None)


def build_block_map(ext: list[list], block_size: int, blocks: list[int]) -> tuple[bytes, dict[int, bytearray]]:
    """Encode the map: ``i_block`` plus indirect blocks placed at ``blocks``."""
    per = block_size // 4
    ptrs = [0] * 15
    nodes: dict[tuple, list[int]] = {}
    order: list[tuple] = []
    for lblk, pblk in _pairs(ext):
        if lblk < NDIR:
            ptrs[lblk] = pblk
            continue
        for slot, base, levels in _spans(per):
            span = per ** levels
            if base <= lblk < base + span:
                off = lblk - base
                path = (slot,)
                chain = [path]
                idxs = []
                for lv in range(levels - 1, 0, -1):
                    i, off = divmod(off, per ** lv)
                    idxs.append(i)
                    path = path + (i,)
                    chain.append(path)
                idxs.append(off)
                for p in chain:
                    if p not in nodes:
                        nodes[p] = [0] * per
                        order.append(p)
                nodes[chain[-1]][idxs[-1]] = pblk
                break
        else:
            raise fs_error(errno.EFBIG, None)
    if len(order) != len(blocks):
        raise AssertionError("indirect block count mismatch")
    where = dict(zip(order, blocks))
    for p, blk in where.items():
        if len(p) == 1:
            ptrs[p[0]] = blk
        else:
            nodes[p[:-1]][p[-1]] = blk
    out = {where[p]: bytearray(struct.pack("<%dI" % per, *nodes[p])) for p in order}
    return struct.pack("<15I", *ptrs), out
