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
  group's bitmaps;
- no block may have two owners (e2fsck's "multiply-claimed blocks": a file whose extent points
  into an inode table or another file would overwrite it when written);
- the reserved-blocks count (``s_r_blocks_count``) must be at most half the blocks, as e2fsck
  requires (a larger one makes every allocation fail);
- every bitmap block's padding (the bits past the group's blocks or inodes) must be set, as
  the kernel leaves it and e2fsck requires; in the last group a clear bit there is a block
  past the end of the disk.

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
    EXT2_BG_BLOCK_UNINIT,
    EXT2_BG_INODE_UNINIT,
    EXT2_RESIZE_INO,
    EXT4_EXTENTS_FL,
    EXT4_INLINE_DATA_FL,
)

# the inode fields the scan reads, at their ext4 offsets (c_ext4 EXT2_INODE): i_mode 0x00,
# i_links_count 0x1A, i_blocks_lo 0x1C, i_flags 0x20, i_block 0x28 (60 bytes), i_generation
# 0x64, i_file_acl_lo 0x68, l_i_blocks_high 0x74, l_i_file_acl_high 0x76
_HEAD = struct.Struct("<H24xHII")  # i_mode .. i_flags
_TAIL = struct.Struct("<II8xHH")  # i_generation, i_file_acl_lo, l_i_blocks_high, l_i_file_acl_high
_LINKS_OFF = 0x1A
_IBLOCK = 0x28
#: i_block[EXT2_DIND_BLOCK] of the resize inode
_DIND_OFF = _IBLOCK + 13 * 4
_EXTENT = struct.Struct("<IHHI")  # ee_block, ee_len, ee_start_hi, ee_start_lo
_HUGE_FILE_FL = 0x40000
_BLOCKS_TYPES = (_stat.S_IFREG, _stat.S_IFDIR, _stat.S_IFLNK)


def _mark_metadata(vol, ranges: list) -> None:
    sb = vol.sb
    itb = (sb.inodes_per_group * sb.inode_size + sb.block_size - 1) // sb.block_size
    for g, gd in enumerate(vol.groups.descs):
        over = sb.group_overhead(g)
        if over:
            ranges.append((over[0], len(over), f"group {g} superblock/descriptor copy"))
        ranges.append((gd.block_bitmap, 1, f"group descriptor {g}, field bg_block_bitmap"))
        ranges.append((gd.inode_bitmap, 1, f"group descriptor {g}, field bg_inode_bitmap"))
        ranges.append((gd.inode_table, itb, f"group descriptor {g}, field bg_inode_table"))


def _initialised(vol, g: int) -> int:
    """How many inodes of group ``g``'s table hold data (e2fsck skips the rest too)."""
    sb, gd = vol.sb, vol.groups.descs[g]
    if vol.groups.uninit(g, EXT2_BG_INODE_UNINIT):
        return 0
    if sb.gdt_csum:
        return max(0, sb.inodes_per_group - gd.itable_unused)
    return sb.inodes_per_group


class _Scan:
    """Collects ``(first block, count, owner)`` for everything in use; parses inodes directly
    (only the fields that locate blocks) because a full :class:`Inode` per inode costs 5x more."""

    def __init__(self, vol):
        self.vol = vol
        sb = vol.sb
        self.bs = vol.bs
        self.blocks_count = sb.blocks_count
        self.huge = sb.ro_compat("huge_file")
        self.ranges: list = []
        self.xattr_seen: set = set()

    def get_block(self, b: int) -> bytes:
        return self.vol.dev.pread(b * self.bs, self.bs)

    def inode(self, ino: int, raw: bytes) -> None:
        ranges = self.ranges
        if ino == EXT2_RESIZE_INO:
            dind = struct.unpack_from("<I", raw, _DIND_OFF)[0]
            if dind:
                ranges.append((dind, 1, f"inode {ino} (resize inode) double-indirect block"))
            return
        mode, _links, blocks_lo, flags = _HEAD.unpack_from(raw, 0)
        gen, acl_lo, blocks_hi, acl_hi = _TAIL.unpack_from(raw, 0x64)
        acl = acl_lo | acl_hi << 32
        if acl and acl not in self.xattr_seen:
            self.xattr_seen.add(acl)
            ranges.append((acl, 1, f"inode {ino}, field i_file_acl"))
        fmt = _stat.S_IFMT(mode)
        if flags & EXT4_INLINE_DATA_FL or fmt not in _BLOCKS_TYPES:
            return
        if fmt == _stat.S_IFLNK:
            # a fast symlink keeps its target in i_block (kernel ext4_inode_is_fast_symlink)
            blocks = blocks_lo | blocks_hi << 32
            if self.huge and flags & _HUGE_FILE_FL:
                blocks *= self.bs // 512
            if blocks - (self.bs // 512 if acl else 0) <= 0:
                return
        i_block = raw[_IBLOCK : _IBLOCK + 60]
        what = f"inode {ino} block map"
        if flags & EXT4_EXTENTS_FL:
            magic, entries, _max, depth = struct.unpack_from("<HHHH", i_block, 0)
            if magic == 0xF30A and depth == 0 and entries <= 4:
                for i in range(entries):  # the common case: the whole tree in the inode
                    _lblk, ln, hi, lo = _EXTENT.unpack_from(i_block, 12 + 12 * i)
                    if ln > 32768:
                        ln -= 32768  # an uninitialised extent: allocated all the same
                    if ln:
                        ranges.append((hi << 32 | lo, ln, what))
                return
            fmap = extents.read_extent_tree(i_block, ino, gen, self.get_block, self.blocks_count,
                                            self.vol.seed, False)
        else:
            fmap = blockmap.read_block_map(i_block, self.get_block, self.bs, self.blocks_count, ino)
        for _lblk, n, pblk, _uninit in fmap.ext:
            ranges.append((pblk, n, what))
        for b in fmap.meta:
            ranges.append((b, 1, what))


def _scan_inodes(vol, scan: _Scan) -> dict[int, tuple[int, int]]:
    """Collect every in-use inode's blocks; return {group: (first inode in use but free, its links)}."""
    sb, bs = vol.sb, vol.bs
    ipg, isz, first_ino = sb.inodes_per_group, sb.inode_size, sb.first_ino
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
            if ino >= first_ino:
                if not (table[off] | table[off + 1]):
                    continue  # a link count without a mode: e2fsck clears it; nothing allocated
                if ibm is None:
                    ibm = vol.groups.inode_bitmap(g)
                if not ibm[idx >> 3] >> (idx & 7) & 1 and g not in bad_inodes:
                    bad_inodes[g] = (ino, links)
            scan.inode(ino, table[off : off + isz])
    return bad_inodes


def _check_ranges(vol, ranges: list) -> int:
    """Every block of ``ranges`` must be marked in its group's block bitmap; returns how many
    block references were checked."""
    sb = vol.sb
    first, per, total = sb.first_data_block, sb.blocks_per_group, sb.blocks_count
    disk: dict[int, bytes] = {}
    checked = 0
    ranges.sort(key=lambda r: r[0])
    end, owner = -1, ""
    for start, n, what in ranges:
        if start < end:
            # e2fsck pass 1B "multiply-claimed blocks": writing one owner would change the other
            raise CorruptImageError(f"block {start} is used by {what} and by {owner}; refusing to write (run e2fsck)",
                                    where=f"ext4 {what}")
        if start + n > end:
            end, owner = start + n, what
        if start < first or start + n > total:
            raise CorruptImageError(f"blocks {start}..{start + n - 1} lie outside the filesystem ({total} blocks)",
                                    where=f"ext4 {what}")
        checked += n
        while n > 0:
            g, off = divmod(start - first, per)
            k = min(n, per - off)
            bm = disk.get(g)
            if bm is None:
                bm = disk[g] = bytes(vol.groups.block_bitmap(g))
            # only the bytes holding the range: shifting the group's whole bitmap per range
            # would cost a 4 KiB copy each time
            mask = (1 << k) - 1
            missing = ~(int.from_bytes(bm[off >> 3 : (off + k + 7) >> 3], "little") >> (off & 7)) & mask
            if missing:
                blk = start + (missing & -missing).bit_length() - 1
                gd = vol.groups.descs[g]
                raise CorruptImageError(
                    f"block {blk} is in use ({what}) but marked free ({missing.bit_count()} such blocks there); "
                    "refusing to write (run e2fsck)", where=f"ext4 group {g} block bitmap (block {gd.block_bitmap})")
            start += k
            n -= k
    return checked


def _clear_bits(bm: bytes, n: int) -> int:
    return n - (int.from_bytes(bm[: (n + 7) // 8], "little") & ((1 << n) - 1)).bit_count()


def _check_padding(bitmap: bytes, n: int, what: str, g: int, block: int) -> None:
    """The bits of a bitmap block past the group's ``n`` blocks or inodes must all be set, as the
    kernel leaves them (``ext4_mark_bitmap_end``) and e2fsck requires ("Padding at end of ...
    bitmap is not set"); in the last group they stand for blocks past the end of the disk."""
    width = len(bitmap) * 8 - n
    if width > 0 and (int.from_bytes(bitmap, "little") >> n).bit_count() != width:
        raise CorruptImageError(f"the {what} bitmap's padding (the bits past the group's {n} {what}s) is not set; "
                                "refusing to write (run e2fsck)", where=f"ext4 group {g} {what} bitmap (block {block})")


def check_allocation(vol) -> dict:
    """Refuse (``CorruptImageError``) a filesystem whose bitmaps or group counts are wrong.

    ``vol`` is an opened :class:`nuwa.fs.ext4.volume.Volume`. Returns what was checked
    (``groups``, ``inodes_in_use``, ``block_refs``) for benchmarks and tests.
    """
    sb = vol.sb
    if sb.r_blocks_count > sb.blocks_count // 2:
        # the allocator keeps the reserve free: a reserve past the disk makes every write ENOSPC.
        # e2fsck (check_super_block) calls more than half the blocks "Corruption found in
        # superblock"; reading is unaffected, so only writing refuses (found by tools/fuzz.py)
        raise CorruptImageError(f"{sb.r_blocks_count} reserved blocks exceed half of the {sb.blocks_count} blocks; "
                                "refusing to write (run e2fsck)", where="ext4 superblock @1024, field s_r_blocks_count")
    last = vol.groups.count - 1
    if vol.groups.uninit(last, EXT2_BG_BLOCK_UNINIT):
        # mke2fs and the kernel never leave the last group's block bitmap uninitialised (its
        # padding must cover the blocks past the end of the disk); e2fsck: "Last group block
        # bitmap uninitialized" (a fuzz finding: Nuwa wrote into such a filesystem)
        raise CorruptImageError("the last group's block bitmap is marked uninitialised (BLOCK_UNINIT); refusing to "
                                "write (run e2fsck)", where=f"ext4 group descriptor {last}, field bg_flags")
    scan = _Scan(vol)
    _mark_metadata(vol, scan.ranges)
    bad_inodes = _scan_inodes(vol, scan)
    block_refs = _check_ranges(vol, scan.ranges)
    inodes_in_use = 0
    for g in range(vol.groups.count):
        gd = vol.groups.descs[g]
        bitmap, n = vol.groups.block_bitmap(g), sb.blocks_in_group(g)
        free = _clear_bits(bitmap, n)
        _check_padding(bitmap, n, "block", g, gd.block_bitmap)
        if free != gd.free_blocks:
            raise CorruptImageError(
                f"bg_free_blocks_count is {gd.free_blocks} but the block bitmap has {free} free blocks; "
                "refusing to write (run e2fsck)", where=f"ext4 group descriptor {g}, field bg_free_blocks_count")
        if g in bad_inodes:
            ino, links = bad_inodes[g]
            raise CorruptImageError(
                f"inode {ino} is in use (i_links_count {links}) but marked free; refusing to write (run e2fsck)",
                where=f"ext4 group {g} inode bitmap (block {gd.inode_bitmap})")
        ibitmap = vol.groups.inode_bitmap(g)
        _check_padding(ibitmap, sb.inodes_per_group, "inode", g, gd.inode_bitmap)
        ifree = _clear_bits(ibitmap, sb.inodes_per_group)
        if ifree != gd.free_inodes:
            raise CorruptImageError(
                f"bg_free_inodes_count is {gd.free_inodes} but the inode bitmap has {ifree} free inodes; "
                "refusing to write (run e2fsck)", where=f"ext4 group descriptor {g}, field bg_free_inodes_count")
        inodes_in_use += sb.inodes_per_group - ifree
    return {"groups": vol.groups.count, "inodes_in_use": inodes_in_use, "block_refs": block_refs}
