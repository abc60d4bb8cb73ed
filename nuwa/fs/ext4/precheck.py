"""The check an ext4 filesystem must pass before Nuwa writes it: what the allocator trusts.

The allocator (:mod:`nuwa.fs.ext4.alloc`) hands out blocks and inodes whose bitmap bit is
clear, and skips groups by their descriptor's free counts. If a block that a file or the
filesystem's own metadata uses is marked free, the allocator gives it to a new file and both
share it: a write would then rewrite an unrelated file (issue 16 measured exactly that). So a
writable open first recomputes, like e2fsck's passes 1 and 5 (``e2fsck/pass1.c``,
``pass5.c``), what is in use and compares it with the bitmaps and the group counts:

- in use: each group's superblock copy, descriptors and reserved GDT blocks, its bitmaps and
  inode table; every block of every inode in use (``i_links_count`` > 0) as its extent tree or
  block map names it, with the tree/indirect blocks themselves and the xattr block; the resize
  inode's double-indirect block (its other blocks are reserved GDT blocks, counted above);
- the block bitmap of every group must mark all of those (checksum verified as when read), the
  inode bitmap every inode in use (reserved inodes aside);
- ``bg_free_blocks_count`` and ``bg_free_inodes_count`` must equal the clear bits of the
  group's bitmaps.

A block or inode marked used that nothing references (a leak) is accepted: the allocator only
loses it, as qemu accepts leaked clusters; e2fsck reclaims it. Superblock totals are not
compared (the kernel keeps them lazily too). The first finding is raised as
:class:`CorruptImageError` (exit 3) naming the group, the structure and the block or inode.

Cost: one sequential read of the initialised part of every inode table (``bg_itable_unused``
excluded) and of every extent-tree or indirect block; measured in ``benchmarks/bench_precheck.py``.
"""

from __future__ import annotations

import stat as _stat
import struct

from nuwa.errors import CorruptImageError
from nuwa.fs.ext4 import blockmap, extents
from nuwa.fs.ext4.c_ext4 import (
    EXT2_BG_INODE_UNINIT,
    EXT2_RESIZE_INO,
    EXT4_EXTENTS_FL,
    EXT4_INLINE_DATA_FL,
)
from nuwa.fs.ext4.groups import set_bits
from nuwa.fs.ext4.inode import Inode

# the inode fields the scan reads, at their ext4 offsets (c_ext4 EXT2_INODE): i_mode 0x00,
# i_links_count 0x1A
_MODE = struct.Struct("<H")
_LINKS_OFF = 0x1A
#: i_block[EXT2_DIND_BLOCK] of the resize inode
_DIND_OFF = 0x28 + 13 * 4


class _Used:
    """Per-group bitmaps of what the scan found in use, built lazily."""

    def __init__(self, sb):
        self.sb = sb
        self.maps: dict[int, bytearray] = {}

    def mark(self, start: int, n: int, what: str) -> None:
        sb = self.sb
        if start < sb.first_data_block or start + n > sb.blocks_count:
            raise CorruptImageError(f"blocks {start}..{start + n - 1} lie outside the filesystem "
                                    f"({sb.blocks_count} blocks)", where=f"ext4 {what}")
        while n > 0:
            g, off = divmod(start - sb.first_data_block, sb.blocks_per_group)
            k = min(n, sb.blocks_per_group - off)
            bm = self.maps.get(g)
            if bm is None:
                bm = self.maps[g] = bytearray(sb.block_size)
            set_bits(bm, off, k, True)
            start += k
            n -= k


def _mark_metadata(vol, used: _Used) -> None:
    sb = vol.sb
    itb = (sb.inodes_per_group * sb.inode_size + sb.block_size - 1) // sb.block_size
    for g, gd in enumerate(vol.groups.descs):
        over = sb.group_overhead(g)
        if over:
            used.mark(over[0], len(over), f"group {g} superblock/descriptor copy")
        used.mark(gd.block_bitmap, 1, f"group descriptor {g}, field bg_block_bitmap")
        used.mark(gd.inode_bitmap, 1, f"group descriptor {g}, field bg_inode_bitmap")
        used.mark(gd.inode_table, itb, f"group descriptor {g}, field bg_inode_table")


def _initialised(vol, g: int) -> int:
    """How many inodes of group ``g``'s table hold data (e2fsck skips the rest too)."""
    sb, gd = vol.sb, vol.groups.descs[g]
    if vol.groups.uninit(g, EXT2_BG_INODE_UNINIT):
        return 0
    if sb.gdt_csum:
        return max(0, sb.inodes_per_group - gd.itable_unused)
    return sb.inodes_per_group


def _mark_inode(vol, used: _Used, ino: int, raw: bytes, xattr_seen: set) -> None:
    sb, bs = vol.sb, vol.bs
    if ino == EXT2_RESIZE_INO:
        dind = struct.unpack_from("<I", raw, _DIND_OFF)[0]
        if dind:
            used.mark(dind, 1, f"inode {ino} (resize inode) double-indirect block")
        return
    node = Inode(ino, raw, sb.ro_compat("huge_file"), bs)
    if node.file_acl and node.file_acl not in xattr_seen:
        xattr_seen.add(node.file_acl)
        used.mark(node.file_acl, 1, f"inode {ino}, field i_file_acl")
    if node.flags & EXT4_INLINE_DATA_FL or not vol.has_blocks(node):
        return
    m = _stat.S_IFMT(node.mode)
    if m not in (_stat.S_IFREG, _stat.S_IFDIR, _stat.S_IFLNK):
        return

    def get_block(b: int) -> bytes:
        return vol.dev.pread(b * bs, bs)

    if node.flags & EXT4_EXTENTS_FL:
        fmap = extents.read_extent_tree(node.i_block, ino, node.generation, get_block, sb.blocks_count,
                                        vol.seed, False)
    else:
        fmap = blockmap.read_block_map(node.i_block, get_block, bs, sb.blocks_count, ino)
    what = f"inode {ino} block map"
    for _lblk, n, pblk, _uninit in fmap.ext:
        used.mark(pblk, n, what)
    for b in fmap.meta:
        used.mark(b, 1, what)


def _scan_inodes(vol, used: _Used) -> dict[int, tuple[int, int]]:
    """Mark every in-use inode's blocks; return {group: (first inode in use but free, its links)}."""
    sb, bs = vol.sb, vol.bs
    ipg, isz = sb.inodes_per_group, sb.inode_size
    xattr_seen: set = set()
    bad_inodes: dict[int, tuple[int, int]] = {}
    for g in range(vol.groups.count):
        n = _initialised(vol, g)
        if not n:
            continue
        table = vol.dev.pread(vol.groups.descs[g].inode_table * bs, (n * isz + bs - 1) // bs * bs)
        ibm = None
        for idx in range(n):
            off = idx * isz
            links = table[off + _LINKS_OFF] | table[off + _LINKS_OFF + 1] << 8
            if not links:
                continue
            ino = g * ipg + idx + 1
            if not _MODE.unpack_from(table, off)[0] and ino >= sb.first_ino:
                continue  # a link count without a mode: e2fsck clears it; nothing allocated
            if ino >= sb.first_ino:
                if ibm is None:
                    ibm = vol.groups.inode_bitmap(g)
                if not ibm[idx >> 3] >> (idx & 7) & 1 and g not in bad_inodes:
                    bad_inodes[g] = (ino, links)
            _mark_inode(vol, used, ino, bytes(table[off : off + isz]), xattr_seen)
    return bad_inodes


def _clear_bits(bm: bytes, n: int) -> int:
    return n - (int.from_bytes(bm[: (n + 7) // 8], "little") & ((1 << n) - 1)).bit_count()


def check_allocation(vol) -> dict:
    """Refuse (``CorruptImageError``) a filesystem whose bitmaps or group counts are wrong.

    ``vol`` is an opened :class:`nuwa.fs.ext4.volume.Volume`. Returns what was checked
    (``groups``, ``inodes_in_use``, ``blocks_in_use``) for benchmarks and tests.
    """
    sb = vol.sb
    used = _Used(sb)
    _mark_metadata(vol, used)
    bad_inodes = _scan_inodes(vol, used)
    blocks_in_use = inodes_in_use = 0
    for g in range(vol.groups.count):
        gd = vol.groups.descs[g]
        nblocks = sb.blocks_in_group(g)
        disk = vol.groups.block_bitmap(g)
        mine = used.maps.get(g)
        if mine is not None:
            want = int.from_bytes(mine, "little") & ((1 << nblocks) - 1)
            missing = want & ~int.from_bytes(disk, "little")
            if missing:
                bit = (missing & -missing).bit_length() - 1
                blk = sb.group_first_block(g) + bit
                raise CorruptImageError(
                    f"block {blk} is in use but marked free ({missing.bit_count()} such blocks in the group); "
                    "refusing to write (run e2fsck)", where=f"ext4 group {g} block bitmap (block {gd.block_bitmap})")
            blocks_in_use += want.bit_count()
        free = _clear_bits(disk, nblocks)
        if free != gd.free_blocks:
            raise CorruptImageError(
                f"bg_free_blocks_count is {gd.free_blocks} but the block bitmap has {free} free blocks; "
                "refusing to write (run e2fsck)", where=f"ext4 group descriptor {g}, field bg_free_blocks_count")
        if g in bad_inodes:
            ino, links = bad_inodes[g]
            raise CorruptImageError(
                f"inode {ino} is in use (i_links_count {links}) but marked free; refusing to write (run e2fsck)",
                where=f"ext4 group {g} inode bitmap (block {gd.inode_bitmap})")
        ifree = _clear_bits(vol.groups.inode_bitmap(g), sb.inodes_per_group)
        if ifree != gd.free_inodes:
            raise CorruptImageError(
                f"bg_free_inodes_count is {gd.free_inodes} but the inode bitmap has {ifree} free inodes; "
                "refusing to write (run e2fsck)", where=f"ext4 group descriptor {g}, field bg_free_inodes_count")
        inodes_in_use += sb.inodes_per_group - ifree
    return {"groups": vol.groups.count, "inodes_in_use": inodes_in_use, "blocks_in_use": blocks_in_use}
