"""The ext2/3/4 superblock: decoding, validation, geometry and feature policy.

Pure: bytes in, objects out. Geometry facts (FORMAT-NOTES B2.1/B2.2): group ``g`` starts at
``s_first_data_block + g * s_blocks_per_group`` (first_data_block is 1 with 1 KiB blocks);
backups of the superblock and descriptors sit in groups 0, 1 and powers of 3, 5, 7 under
sparse_super, or in ``s_backup_bgs`` under sparse_super2.
"""

from __future__ import annotations

import struct

from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.fs.ext4 import csum
from nuwa.fs.ext4.c_ext4 import (
    COMPAT,
    EXT2_ERROR_FS,
    EXT2_GOOD_OLD_FIRST_INO,
    EXT2_GOOD_OLD_INODE_SIZE,
    EXT2_SUPER_BLOCK,
    EXT2_SUPER_MAGIC,
    EXT2_VALID_FS,
    INCOMPAT,
    RO_COMPAT,
    SUPERBLOCK_OFFSET,
    words,
)

WHERE = f"ext4 superblock @{SUPERBLOCK_OFFSET}"

#: incompat features the writer maintains (anything else is refused for writing)
WRITE_INCOMPAT = {"filetype", "needs_recovery", "extent", "64bit", "flex_bg", "metadata_csum_seed",
                  "large_dir", "inline_data"}
#: ro_compat features the writer maintains
WRITE_RO_COMPAT = {"sparse_super", "large_file", "huge_file", "uninit_bg", "dir_nlink", "extra_isize",
                   "metadata_csum", "orphan_present"}
#: incompat features the reader understands
READ_INCOMPAT = WRITE_INCOMPAT | {"meta_bg", "ea_inode", "mmp"}


def _names(value: int, table: dict[str, int]) -> list[str]:
    out = [n for n, bit in table.items() if value & bit]
    known = 0
    for bit in table.values():
        known |= bit
    rest = value & ~known
    bit = 1
    while rest:
        if rest & bit:
            out.append(f"unknown_0x{bit:x}")
            rest &= ~bit
        bit <<= 1
    return out


class Superblock:
    """A decoded superblock: the raw fields (``f``) plus derived geometry."""

    def __init__(self, raw: bytes):
        self.raw = bytearray(raw)
        self.f = EXT2_SUPER_BLOCK.unpack(raw)

    # ---- features
    def compat(self, name: str) -> bool:
        """True if compat feature ``name`` is set."""
        return bool(self.f["s_feature_compat"] & COMPAT[name])

    def ro_compat(self, name: str) -> bool:
        """True if ro_compat feature ``name`` is set."""
        return bool(self.f["s_feature_ro_compat"] & RO_COMPAT[name])

    def incompat(self, name: str) -> bool:
        """True if incompat feature ``name`` is set."""
        return bool(self.f["s_feature_incompat"] & INCOMPAT[name])

    def feature_names(self) -> list[str]:
        """Feature names as dumpe2fs prints them (unknown bits as ``unknown_0x..``)."""
        return (_names(self.f["s_feature_compat"], COMPAT) + _names(self.f["s_feature_incompat"], INCOMPAT)
                + _names(self.f["s_feature_ro_compat"], RO_COMPAT))

    @property
    def metadata_csum(self) -> bool:
        return self.ro_compat("metadata_csum")

    @property
    def gdt_csum(self) -> bool:
        """True if group descriptors carry a checksum (and the uninit flags are meaningful)."""
        return self.ro_compat("metadata_csum") or self.ro_compat("uninit_bg")

    # ---- geometry
    @property
    def block_size(self) -> int:
        return 1024 << self.f["s_log_block_size"]

    @property
    def blocks_count(self) -> int:
        hi = self.f["s_blocks_count_hi"] if self.incompat("64bit") else 0
        return self.f["s_blocks_count"] | hi << 32

    @property
    def r_blocks_count(self) -> int:
        hi = self.f["s_r_blocks_count_hi"] if self.incompat("64bit") else 0
        return self.f["s_r_blocks_count"] | hi << 32

    @property
    def free_blocks_count(self) -> int:
        hi = self.f["s_free_blocks_hi"] if self.incompat("64bit") else 0
        return self.f["s_free_blocks_count"] | hi << 32

    @free_blocks_count.setter
    def free_blocks_count(self, v: int) -> None:
        self.f["s_free_blocks_count"] = v & 0xFFFFFFFF
        if self.incompat("64bit"):
            self.f["s_free_blocks_hi"] = v >> 32

    @property
    def inodes_count(self) -> int:
        return self.f["s_inodes_count"]

    @property
    def free_inodes_count(self) -> int:
        return self.f["s_free_inodes_count"]

    @free_inodes_count.setter
    def free_inodes_count(self, v: int) -> None:
        self.f["s_free_inodes_count"] = v

    @property
    def inodes_per_group(self) -> int:
        return self.f["s_inodes_per_group"]

    @property
    def blocks_per_group(self) -> int:
        return self.f["s_blocks_per_group"]

    @property
    def first_data_block(self) -> int:
        return self.f["s_first_data_block"]

    @property
    def inode_size(self) -> int:
        return self.f["s_inode_size"] if self.f["s_rev_level"] else EXT2_GOOD_OLD_INODE_SIZE

    @property
    def first_ino(self) -> int:
        return self.f["s_first_ino"] if self.f["s_rev_level"] else EXT2_GOOD_OLD_FIRST_INO

    @property
    def desc_size(self) -> int:
        return self.f["s_desc_size"] if self.incompat("64bit") else 32

    @property
    def group_count(self) -> int:
        bpg = self.blocks_per_group
        return (self.blocks_count - self.first_data_block + bpg - 1) // bpg

    @property
    def descs_per_block(self) -> int:
        return self.block_size // self.desc_size

    @property
    def gdt_blocks(self) -> int:
        """Blocks holding the group descriptor table (``fs->desc_blocks``)."""
        return (self.group_count + self.descs_per_block - 1) // self.descs_per_block

    @property
    def groups_per_flex(self) -> int:
        return 1 << self.f["s_log_groups_per_flex"] if self.incompat("flex_bg") else 1

    @property
    def uuid(self) -> bytes:
        return self.f["s_uuid"]

    @property
    def csum_seed(self) -> int:
        """The metadata checksum seed (B0: read 0x270 when metadata_csum_seed is set)."""
        if self.incompat("metadata_csum_seed"):
            return self.f["s_checksum_seed"]
        return csum.uuid_seed(self.uuid)

    @property
    def hash_seed(self) -> tuple[int, int, int, int] | None:
        seed = words(self.f["s_hash_seed"])
        return tuple(seed) if any(seed) else None  # type: ignore[return-value]

    def group_first_block(self, g: int) -> int:
        """First block of group ``g``."""
        return self.first_data_block + g * self.blocks_per_group

    def blocks_in_group(self, g: int) -> int:
        """Blocks in group ``g`` (the last group may be short)."""
        if g == self.group_count - 1:
            return self.blocks_count - self.group_first_block(g)
        return self.blocks_per_group

    def has_super(self, g: int) -> bool:
        """Whether group ``g`` holds a superblock (and descriptor) copy (``ext2fs_bg_has_super``)."""
        if g == 0:
            return True
        if self.compat("sparse_super2"):
            bgs = struct.unpack("<II", self.f["s_backup_bgs"])
            return g in bgs
        if g <= 1 or not self.ro_compat("sparse_super"):
            return True
        if g & 1 == 0:
            return False
        for base in (3, 5, 7):
            n = base
            while n < g:
                n *= base
            if n == g:
                return True
        return False

    def group_overhead(self, g: int) -> list[int]:
        """Blocks of group ``g`` used by its superblock copy, descriptors and reserved GDT.

        Mirrors ``ext2fs_super_and_bgd_loc2`` / ``ext2fs_reserve_super_and_bgd`` without
        meta_bg (which the writer refuses).
        """
        if not self.has_super(g):
            return []
        start = self.group_first_block(g)
        n = 1 + self.gdt_blocks + self.f["s_reserved_gdt_blocks"]
        if g == 0 and self.first_data_block == 0 and self.block_size == 1024:
            n += 1  # pragma: no cover - 1 KiB blocks always have first_data_block 1
        return list(range(start, start + n))

    # ---- validation and encoding
    def validate(self, dev_size: int) -> None:
        """Sanity checks that make every later computation safe (CorruptImageError otherwise)."""
        f = self.f

        def bad(field: str, msg: str) -> CorruptImageError:
            return CorruptImageError(msg, where=f"{WHERE}, field {field}")

        if f["s_log_block_size"] > 6:
            raise bad("s_log_block_size", f"block size 1024<<{f['s_log_block_size']} is not valid")
        bs = self.block_size
        if f["s_log_cluster_size"] != f["s_log_block_size"] and not self.ro_compat("bigalloc"):
            raise bad("s_log_cluster_size", "cluster size differs from block size without bigalloc")
        if self.blocks_per_group == 0 or self.blocks_per_group > 8 * bs:
            raise bad("s_blocks_per_group", f"{self.blocks_per_group} blocks per group is not valid")
        if self.inodes_per_group == 0 or self.inodes_per_group > 8 * bs:
            raise bad("s_inodes_per_group", f"{self.inodes_per_group} inodes per group is not valid")
        isz = self.inode_size
        if isz < 128 or isz > bs or isz & (isz - 1):
            raise bad("s_inode_size", f"inode size {isz} is not valid")
        if self.incompat("64bit") and (self.desc_size < 32 or self.desc_size & (self.desc_size - 1)
                                       or self.desc_size > 1024):
            raise bad("s_desc_size", f"descriptor size {self.desc_size} is not valid")
        if self.first_data_block != (1 if bs == 1024 else 0) and self.first_data_block >= self.blocks_count:
            raise bad("s_first_data_block", f"first data block {self.first_data_block} is not valid")
        if self.blocks_count <= self.first_data_block:
            raise bad("s_blocks_count", f"{self.blocks_count} blocks is not valid")
        if self.blocks_count * bs > dev_size:
            raise bad("s_blocks_count",
                      f"{self.blocks_count} blocks of {bs} bytes exceed the device ({dev_size} bytes)")
        if self.inodes_count != self.inodes_per_group * self.group_count:
            raise bad("s_inodes_count",
                      f"{self.inodes_count} inodes != {self.inodes_per_group} per group x {self.group_count} groups")
        if self.first_ino < 11 or self.first_ino > self.inodes_count:
            raise bad("s_first_ino", f"first inode {self.first_ino} is not valid")
        if self.free_blocks_count > self.blocks_count or self.free_inodes_count > self.inodes_count:
            raise bad("s_free_blocks_count", "free counts exceed totals")

    def verify_csum(self) -> bool:
        """True if ``s_checksum`` matches (always True without metadata_csum)."""
        if not self.metadata_csum:
            return True
        return self.f["s_checksum"] == csum.superblock_csum(self.raw)

    def encode(self, group_nr: int | None = None, state: int | None = None) -> bytes:
        """The 1024 bytes to write, checksum set; ``group_nr``/``state`` override for backups."""
        f = dict(self.f)
        if group_nr is not None:
            f["s_block_group_nr"] = group_nr
        if state is not None:
            f["s_state"] = state
        raw = bytearray(EXT2_SUPER_BLOCK.pack(f))
        if self.metadata_csum:
            struct.pack_into("<I", raw, 0x3FC, csum.superblock_csum(raw))
        return bytes(raw)

    def write_refusal(self) -> str | None:
        """Why this filesystem may not be written, naming the feature or flag; None if it may."""
        for name in _names(self.f["s_feature_incompat"], INCOMPAT):
            if name not in WRITE_INCOMPAT:
                return f"feature {name!r} (incompat) is not supported for writing"
        for name in _names(self.f["s_feature_ro_compat"], RO_COMPAT):
            if name not in WRITE_RO_COMPAT:
                return f"feature {name!r} (ro_compat) is not supported for writing"
        if self.ro_compat("metadata_csum") and self.f["s_checksum_type"] != 1:
            return f"checksum type {self.f['s_checksum_type']} is not crc32c"
        if self.f["s_state"] & EXT2_ERROR_FS:
            return "the filesystem is marked as having errors (s_state ERROR); run e2fsck"
        if not self.f["s_state"] & EXT2_VALID_FS:
            return "the filesystem was not cleanly unmounted (s_state lacks VALID); run e2fsck"
        return None


def parse_superblock(raw: bytes, dev_size: int, forensic: bool = False) -> Superblock:
    """Decode and check the primary superblock (``raw`` is the 1024 bytes at offset 1024)."""
    sb = Superblock(raw)
    if sb.f["s_magic"] != EXT2_SUPER_MAGIC:
        raise CorruptImageError(f"bad magic 0x{sb.f['s_magic']:04x} (expected 0xef53)",
                                where=f"{WHERE}, field s_magic")
    if not sb.verify_csum() and not forensic:
        raise CorruptImageError(
            f"checksum mismatch (stored 0x{sb.f['s_checksum']:08x}, computed 0x{csum.superblock_csum(raw):08x})",
            where=f"{WHERE}, field s_checksum")
    if sb.ro_compat("bigalloc"):
        # cluster-granular bitmaps and group geometry: not read or written by this engine
        raise UnsupportedFeatureError("feature 'bigalloc' (ro_compat) is not supported", where=WHERE,
                                      feature="bigalloc")
    sb.validate(dev_size)
    for name in _names(sb.f["s_feature_incompat"], INCOMPAT):
        if name not in READ_INCOMPAT:
            raise UnsupportedFeatureError(f"feature {name!r} (incompat) is not supported", where=WHERE,
                                          feature=name)
    return sb
