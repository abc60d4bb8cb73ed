"""Block groups: descriptors (32/64-bit), their checksums, and the two bitmaps per group.

Descriptors are decoded once at open and kept in memory (64 bytes each); bitmaps are loaded on
demand through the block cache. A ``BLOCK_UNINIT`` group's bitmap is materialised from the
group geometry (FORMAT-NOTES B2.3): its superblock/descriptor copy, and every bitmap or inode
table of *any* group that lies inside it (flex_bg places them all in the flex group's first
group); an ``INODE_UNINIT`` bitmap is zero. The last group's bits past the end are set
(B2.4). Checksums of bitmaps and descriptors are computed when they are written.
"""

from __future__ import annotations

from nuwa.errors import CorruptImageError
from nuwa.fs.ext4 import csum
from nuwa.fs.ext4.cache import ORDER_BITMAP, BlockCache
from nuwa.fs.ext4.c_ext4 import (
    EXT2_BG_BLOCK_UNINIT,
    EXT2_BG_INODE_UNINIT,
    EXT4_GROUP_DESC,
)
from nuwa.fs.ext4.superblock import Superblock

_GD_FIELDS = [
    ("block_bitmap", "bg_block_bitmap_lo", "bg_block_bitmap_hi", 32),
    ("inode_bitmap", "bg_inode_bitmap_lo", "bg_inode_bitmap_hi", 32),
    ("inode_table", "bg_inode_table_lo", "bg_inode_table_hi", 32),
    ("free_blocks", "bg_free_blocks_count_lo", "bg_free_blocks_count_hi", 16),
    ("free_inodes", "bg_free_inodes_count_lo", "bg_free_inodes_count_hi", 16),
    ("used_dirs", "bg_used_dirs_count_lo", "bg_used_dirs_count_hi", 16),
    ("itable_unused", "bg_itable_unused_lo", "bg_itable_unused_hi", 16),
    ("exclude_bitmap", "bg_exclude_bitmap_lo", "bg_exclude_bitmap_hi", 32),
    ("block_bitmap_csum", "bg_block_bitmap_csum_lo", "bg_block_bitmap_csum_hi", 16),
    ("inode_bitmap_csum", "bg_inode_bitmap_csum_lo", "bg_inode_bitmap_csum_hi", 16),
]


class GroupDesc:
    """One group descriptor with lo/hi halves combined."""

    __slots__ = ("raw", "flags", "checksum") + tuple(n for n, *_ in _GD_FIELDS)

    def __init__(self, raw: bytes):
        self.raw = bytes(raw)
        f = EXT4_GROUP_DESC.unpack(raw.ljust(64, b"\0"))
        wide = len(raw) >= 64
        for name, lo, hi, bits in _GD_FIELDS:
            setattr(self, name, f[lo] | ((f[hi] << bits) if wide else 0))
        self.flags = f["bg_flags"]
        self.checksum = f["bg_checksum"]

    def encode(self) -> bytearray:
        """The descriptor bytes (``len(raw)`` long) without the checksum recomputed."""
        f = EXT4_GROUP_DESC.unpack(self.raw.ljust(64, b"\0"))
        for name, lo, hi, bits in _GD_FIELDS:
            v = getattr(self, name)
            f[lo] = v & ((1 << bits) - 1)
            f[hi] = (v >> bits) & ((1 << bits) - 1)
        f["bg_flags"] = self.flags
        f["bg_checksum"] = self.checksum
        out = bytearray(self.raw)
        packed = EXT4_GROUP_DESC.pack(f)
        out[: min(64, len(out))] = packed[: min(64, len(out))]
        return out


def set_bits(bm: bytearray, start: int, n: int, value: bool) -> None:
    """Set (or clear) ``n`` bits from bit ``start`` of a LSB-first bitmap."""
    end = start + n
    while start < end and start & 7:
        _bit(bm, start, value)
        start += 1
    full = (end - start) // 8
    if full > 0:
        bm[start // 8 : start // 8 + full] = (b"\xff" if value else b"\0") * full
        start += full * 8
    while start < end:
        _bit(bm, start, value)
        start += 1


def _bit(bm: bytearray, i: int, value: bool) -> None:
    if value:
        bm[i >> 3] |= 1 << (i & 7)
    else:
        bm[i >> 3] &= ~(1 << (i & 7)) & 0xFF


def test_bit(bm, i: int) -> bool:
    """True if bit ``i`` is set."""
    return bool(bm[i >> 3] >> (i & 7) & 1)


class GroupTable:
    """Descriptors of every group, bitmap access, and descriptor-table writing."""

    def __init__(self, sb: Superblock, cache: BlockCache, forensic: bool = False):
        self.sb = sb
        self.cache = cache
        self.forensic = forensic
        self.count = sb.group_count
        self.descs: list[GroupDesc] = []
        self.dirty: set[int] = set()
        self._bitmaps: dict[tuple[str, int], bytearray] = {}  # materialised/loaded, by (kind, g)
        self.dirty_bitmaps: set[tuple[str, int]] = set()
        self._meta_by_group: dict[int, list[int]] | None = None
        self._load()

    # ---- descriptor table
    def gdt_block(self, i: int) -> int:
        """Block number of descriptor-table block ``i`` (primary copy)."""
        sb = self.sb
        if sb.incompat("meta_bg") and i >= sb.f["s_first_meta_bg"]:
            g = i * sb.descs_per_block
            return sb.group_first_block(g) + (1 if sb.has_super(g) else 0)
        return sb.first_data_block + 1 + i

    def _load(self) -> None:
        sb = self.sb
        ds = sb.desc_size
        blocks = [self.cache.dev.pread(self.gdt_block(i) * sb.block_size, sb.block_size)
                  for i in range(sb.gdt_blocks)]
        table = b"".join(blocks)
        nblocks = sb.blocks_count
        for g in range(self.count):
            gd = GroupDesc(table[g * ds : (g + 1) * ds])
            where = f"ext4 group descriptor {g}"
            if sb.gdt_csum:
                want = self._desc_csum(g, gd.raw)
                if want != gd.checksum and not self.forensic:
                    raise CorruptImageError(
                        f"checksum mismatch (stored 0x{gd.checksum:04x}, computed 0x{want:04x})",
                        where=f"{where}, field bg_checksum")
            itb = (sb.inodes_per_group * sb.inode_size + sb.block_size - 1) // sb.block_size
            for field, v, n in (("bg_block_bitmap", gd.block_bitmap, 1), ("bg_inode_bitmap", gd.inode_bitmap, 1),
                                ("bg_inode_table", gd.inode_table, itb)):
                if v < sb.first_data_block or v + n > nblocks:
                    raise CorruptImageError(f"block {v} lies outside the filesystem ({nblocks} blocks)",
                                            where=f"{where}, field {field}")
            if gd.free_blocks > sb.blocks_per_group or gd.free_inodes > sb.inodes_per_group:
                raise CorruptImageError(f"free counts {gd.free_blocks}/{gd.free_inodes} exceed the group size",
                                        where=f"{where}, field bg_free_blocks_count")
            self.descs.append(gd)

    def _desc_csum(self, g: int, raw: bytes) -> int:
        if self.sb.metadata_csum:
            return csum.group_desc_csum_crc32c(self.sb.csum_seed, g, raw)
        return csum.group_desc_csum_crc16(self.sb.uuid, g, raw)

    def encode_desc(self, g: int) -> bytes:
        """Descriptor ``g`` with its checksum set."""
        gd = self.descs[g]
        raw = gd.encode()
        if self.sb.gdt_csum:
            gd.checksum = self._desc_csum(g, raw)
            raw[0x1E:0x20] = gd.checksum.to_bytes(2, "little")
        gd.raw = bytes(raw)
        return gd.raw

    def gdt_image(self) -> list[bytes]:
        """The whole descriptor table, block by block, checksums set (for backups)."""
        bs = self.sb.block_size
        table = b"".join(self.encode_desc(g) for g in range(self.count))
        return [table[i * bs : (i + 1) * bs].ljust(bs, b"\0") for i in range(self.sb.gdt_blocks)]

    def flush_descs(self) -> None:
        """Put dirty descriptors into their table blocks in the cache (bitmap class)."""
        if not self.dirty:
            return
        bs, ds = self.sb.block_size, self.sb.desc_size
        for g in sorted(self.dirty):
            i, off = divmod(g * ds, bs)
            blk = self.gdt_block(i)
            b = self.cache.get(blk)
            b[off : off + ds] = self.encode_desc(g)
            self.cache.mark_dirty(blk, ORDER_BITMAP)
        self.dirty.clear()

    # ---- bitmaps
    def uninit(self, g: int, flag: int) -> bool:
        """True if group ``g`` has ``flag`` set and the flags are meaningful (gdt_csum)."""
        return self.sb.gdt_csum and bool(self.descs[g].flags & flag)

    def _metadata_blocks(self) -> dict[int, list[int]]:
        # Bitmaps and inode tables of every group, bucketed by the group they lie in.
        if self._meta_by_group is None:
            sb = self.sb
            itb = (sb.inodes_per_group * sb.inode_size + sb.block_size - 1) // sb.block_size
            m: dict[int, list[int]] = {}
            for gd in self.descs:
                for start, n in ((gd.block_bitmap, 1), (gd.inode_bitmap, 1), (gd.inode_table, itb)):
                    for b in range(start, start + n):
                        m.setdefault((b - sb.first_data_block) // sb.blocks_per_group, []).append(b)
            self._meta_by_group = m
        return self._meta_by_group

    def _materialise_block_bitmap(self, g: int) -> bytearray:
        sb = self.sb
        bm = bytearray(sb.block_size)
        first = sb.group_first_block(g)
        for b in sb.group_overhead(g):
            set_bits(bm, b - first, 1, True)
        for b in self._metadata_blocks().get(g, []):
            set_bits(bm, b - first, 1, True)
        self._pad(bm, sb.blocks_in_group(g), sb.blocks_per_group)
        return bm

    @staticmethod
    def _pad(bm: bytearray, used: int, per_group: int) -> None:
        if used < per_group:
            set_bits(bm, used, per_group - used, True)
        bm[(per_group + 7) // 8 :] = b"\xff" * (len(bm) - (per_group + 7) // 8)

    def block_bitmap(self, g: int) -> bytearray:
        """Block bitmap of group ``g`` (materialised if BLOCK_UNINIT; checksum verified)."""
        key = ("b", g)
        bm = self._bitmaps.get(key)
        if bm is not None:
            return bm
        gd = self.descs[g]
        if self.uninit(g, EXT2_BG_BLOCK_UNINIT):
            bm = self._materialise_block_bitmap(g)
        else:
            bm = bytearray(self.cache.get(gd.block_bitmap))
            if self.sb.metadata_csum:
                n = self.sb.f["s_clusters_per_group"] // 8
                got = csum.bitmap_csum(self.sb.csum_seed, bm, n)
                want = gd.block_bitmap_csum if self.sb.desc_size >= 64 else gd.block_bitmap_csum & 0xFFFF
                if (got if self.sb.desc_size >= 64 else got & 0xFFFF) != want and not self.forensic:
                    raise CorruptImageError(f"block bitmap checksum mismatch (block {gd.block_bitmap})",
                                            where=f"ext4 group {g} block bitmap")
        self._remember(key, bm)
        return bm

    def inode_bitmap(self, g: int) -> bytearray:
        """Inode bitmap of group ``g`` (zero if INODE_UNINIT; checksum verified)."""
        key = ("i", g)
        bm = self._bitmaps.get(key)
        if bm is not None:
            return bm
        gd = self.descs[g]
        if self.uninit(g, EXT2_BG_INODE_UNINIT):
            bm = bytearray(self.sb.block_size)
            self._pad(bm, self.sb.inodes_per_group, self.sb.inodes_per_group)
        else:
            bm = bytearray(self.cache.get(gd.inode_bitmap))
            if self.sb.metadata_csum:
                n = self.sb.inodes_per_group // 8
                got = csum.bitmap_csum(self.sb.csum_seed, bm, n)
                want = gd.inode_bitmap_csum if self.sb.desc_size >= 64 else gd.inode_bitmap_csum & 0xFFFF
                if (got if self.sb.desc_size >= 64 else got & 0xFFFF) != want and not self.forensic:
                    raise CorruptImageError(f"inode bitmap checksum mismatch (block {gd.inode_bitmap})",
                                            where=f"ext4 group {g} inode bitmap")
        self._remember(key, bm)
        return bm

    def _remember(self, key, bm: bytearray) -> None:
        # Bounded: clean bitmaps beyond 2048 are dropped (they are re-read on demand).
        if len(self._bitmaps) >= 2048:
            for k in list(self._bitmaps):
                if k not in self.dirty_bitmaps:
                    del self._bitmaps[k]
                if len(self._bitmaps) < 1024:
                    break
        self._bitmaps[key] = bm

    def mark_bitmap_dirty(self, kind: str, g: int) -> None:
        """Record that bitmap ``kind`` ('b' or 'i') of group ``g`` changed."""
        self.dirty_bitmaps.add((kind, g))
        self.dirty.add(g)

    def flush_bitmaps(self) -> None:
        """Write dirty bitmaps into the cache and refresh their checksums in the descriptors."""
        sb = self.sb
        for kind, g in sorted(self.dirty_bitmaps):
            bm = self._bitmaps[(kind, g)]
            gd = self.descs[g]
            if kind == "b":
                self._pad(bm, sb.blocks_in_group(g), sb.blocks_per_group)
                blk, n = gd.block_bitmap, sb.f["s_clusters_per_group"] // 8
            else:
                self._pad(bm, sb.inodes_per_group, sb.inodes_per_group)
                blk, n = gd.inode_bitmap, sb.inodes_per_group // 8
            if sb.metadata_csum:
                c = csum.bitmap_csum(sb.csum_seed, bm, n)
                if sb.desc_size < 64:
                    c &= 0xFFFF
                if kind == "b":
                    gd.block_bitmap_csum = c
                else:
                    gd.inode_bitmap_csum = c
            self.cache.put(blk, bm, ORDER_BITMAP)
            self.dirty.add(g)
        self.dirty_bitmaps.clear()
