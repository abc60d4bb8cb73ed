"""ext2/3/4 on-disk layouts, declared once, with the upstream C field names.

Layout only: no I/O and no logic beyond packing. Each structure cites the header or document
it mirrors; field offsets were checked against images made by e2fsprogs 1.47.0
(FORMAT-NOTES B2). All ext4 numbers are little-endian.

Structures are plain ``struct`` layouts wrapped in :class:`Layout`, which gives dict-based
``unpack``/``pack`` plus field offsets; the hot structures (extent entries, dirents,
dx entries) are also exported as precompiled ``struct.Struct`` objects for the inner loops.
"""

from __future__ import annotations

import struct


class Layout:
    """A named C structure (little-endian unless ``order=">"``): ``[(c_field_name, struct_format), ...]``.

    Array fields are declared as byte strings (``"16s"``) so that every field is a scalar;
    callers that need words split them (e.g. :func:`words`).
    """

    def __init__(self, cname: str, fields: list[tuple[str, str]], size: int | None = None, order: str = "<"):
        # order: "<" for ext4's little-endian structures, ">" for jbd2's big-endian ones
        self.cname = cname
        self.fields = fields
        self.names = tuple(n for n, _ in fields)
        self.struct = struct.Struct(order + "".join(f for _, f in fields))
        self.size = self.struct.size
        if size is not None and size != self.size:
            raise AssertionError(f"{cname}: layout is {self.size} bytes, expected {size}")
        self.offsets: dict[str, int] = {}
        off = 0
        for name, fmt in fields:
            self.offsets[name] = off
            off += struct.calcsize(order + fmt)

    def unpack(self, buf, offset: int = 0) -> dict:
        """Decode the structure at ``offset`` of ``buf`` into a dict keyed by C field name."""
        return dict(zip(self.names, self.struct.unpack_from(buf, offset)))

    def pack(self, values: dict) -> bytes:
        """Encode a dict holding every field (missing fields are an error)."""
        return self.struct.pack(*(values[n] for n in self.names))

    def pack_into(self, buf, offset: int, values: dict) -> None:
        """Encode into ``buf`` at ``offset``."""
        self.struct.pack_into(buf, offset, *(values[n] for n in self.names))

    def zero(self) -> dict:
        """A dict with every field zero (bytes fields as zero bytes)."""
        return self.unpack(bytes(self.size))


def words(raw: bytes) -> tuple[int, ...]:
    """Split a byte-array field into little-endian 32-bit words."""
    return struct.unpack("<%dI" % (len(raw) // 4), raw)


# ---- superblock: e2fsprogs lib/ext2fs/ext2_fs.h ``struct ext2_super_block``; kernel super.rst
EXT2_SUPER_BLOCK = Layout(
    "ext2_super_block",
    [
        ("s_inodes_count", "I"), ("s_blocks_count", "I"), ("s_r_blocks_count", "I"),
        ("s_free_blocks_count", "I"), ("s_free_inodes_count", "I"), ("s_first_data_block", "I"),
        ("s_log_block_size", "I"), ("s_log_cluster_size", "I"), ("s_blocks_per_group", "I"),
        ("s_clusters_per_group", "I"), ("s_inodes_per_group", "I"), ("s_mtime", "I"),
        ("s_wtime", "I"), ("s_mnt_count", "H"), ("s_max_mnt_count", "h"), ("s_magic", "H"),
        ("s_state", "H"), ("s_errors", "H"), ("s_minor_rev_level", "H"), ("s_lastcheck", "I"),
        ("s_checkinterval", "I"), ("s_creator_os", "I"), ("s_rev_level", "I"),
        ("s_def_resuid", "H"), ("s_def_resgid", "H"),
        # EXT2_DYNAMIC_REV fields
        ("s_first_ino", "I"), ("s_inode_size", "H"), ("s_block_group_nr", "H"),
        ("s_feature_compat", "I"), ("s_feature_incompat", "I"), ("s_feature_ro_compat", "I"),
        ("s_uuid", "16s"), ("s_volume_name", "16s"), ("s_last_mounted", "64s"),
        ("s_algorithm_usage_bitmap", "I"),
        ("s_prealloc_blocks", "B"), ("s_prealloc_dir_blocks", "B"), ("s_reserved_gdt_blocks", "H"),
        # journaling
        ("s_journal_uuid", "16s"), ("s_journal_inum", "I"), ("s_journal_dev", "I"),
        ("s_last_orphan", "I"), ("s_hash_seed", "16s"), ("s_def_hash_version", "B"),
        ("s_jnl_backup_type", "B"), ("s_desc_size", "H"), ("s_default_mount_opts", "I"),
        ("s_first_meta_bg", "I"), ("s_mkfs_time", "I"), ("s_jnl_blocks", "68s"),
        # 64bit
        ("s_blocks_count_hi", "I"), ("s_r_blocks_count_hi", "I"), ("s_free_blocks_hi", "I"),
        ("s_min_extra_isize", "H"), ("s_want_extra_isize", "H"), ("s_flags", "I"),
        ("s_raid_stride", "H"), ("s_mmp_update_interval", "H"), ("s_mmp_block", "Q"),
        ("s_raid_stripe_width", "I"), ("s_log_groups_per_flex", "B"), ("s_checksum_type", "B"),
        ("s_encryption_level", "B"), ("s_reserved_pad", "B"), ("s_kbytes_written", "Q"),
        ("s_snapshot_inum", "I"), ("s_snapshot_id", "I"), ("s_snapshot_r_blocks_count", "Q"),
        ("s_snapshot_list", "I"), ("s_error_count", "I"), ("s_first_error_time", "I"),
        ("s_first_error_ino", "I"), ("s_first_error_block", "Q"), ("s_first_error_func", "32s"),
        ("s_first_error_line", "I"), ("s_last_error_time", "I"), ("s_last_error_ino", "I"),
        ("s_last_error_line", "I"), ("s_last_error_block", "Q"), ("s_last_error_func", "32s"),
        ("s_mount_opts", "64s"), ("s_usr_quota_inum", "I"), ("s_grp_quota_inum", "I"),
        ("s_overhead_clusters", "I"), ("s_backup_bgs", "8s"), ("s_encrypt_algos", "4s"),
        ("s_encrypt_pw_salt", "16s"), ("s_lpf_ino", "I"), ("s_prj_quota_inum", "I"),
        ("s_checksum_seed", "I"), ("s_wtime_hi", "B"), ("s_mtime_hi", "B"), ("s_mkfs_time_hi", "B"),
        ("s_lastcheck_hi", "B"), ("s_first_error_time_hi", "B"), ("s_last_error_time_hi", "B"),
        ("s_first_error_errcode", "B"), ("s_last_error_errcode", "B"), ("s_encoding", "H"),
        ("s_encoding_flags", "H"), ("s_orphan_file_inum", "I"), ("s_reserved", "376s"),
        ("s_checksum", "I"),
    ],
    size=1024,
)

SUPERBLOCK_OFFSET = 1024
EXT2_SUPER_MAGIC = 0xEF53
EXT2_VALID_FS = 0x1
EXT2_ERROR_FS = 0x2
EXT3_ORPHAN_FS = 0x4

# s_feature_compat (ext2_fs.h)
COMPAT = {
    "dir_prealloc": 0x1, "imagic_inodes": 0x2, "has_journal": 0x4, "ext_attr": 0x8,
    "resize_inode": 0x10, "dir_index": 0x20, "lazy_bg": 0x40, "exclude_bitmap": 0x100,
    "sparse_super2": 0x200, "fast_commit": 0x400, "stable_inodes": 0x800, "orphan_file": 0x1000,
}
# s_feature_ro_compat
RO_COMPAT = {
    "sparse_super": 0x1, "large_file": 0x2, "btree_dir": 0x4, "huge_file": 0x8,
    "uninit_bg": 0x10, "dir_nlink": 0x20, "extra_isize": 0x40, "has_snapshot": 0x80,
    "quota": 0x100, "bigalloc": 0x200, "metadata_csum": 0x400, "replica": 0x800,
    "read-only": 0x1000, "project": 0x2000, "shared_blocks": 0x4000, "verity": 0x8000,
    "orphan_present": 0x10000,
}
# s_feature_incompat
INCOMPAT = {
    "compression": 0x1, "filetype": 0x2, "needs_recovery": 0x4, "journal_dev": 0x8,
    "meta_bg": 0x10, "extent": 0x40, "64bit": 0x80, "mmp": 0x100, "flex_bg": 0x200,
    "ea_inode": 0x400, "dirdata": 0x1000, "metadata_csum_seed": 0x2000, "large_dir": 0x4000,
    "inline_data": 0x8000, "encrypt": 0x10000, "casefold": 0x20000,
}

# s_flags
EXT2_FLAGS_SIGNED_HASH = 0x1
EXT2_FLAGS_UNSIGNED_HASH = 0x2

# ---- group descriptor: ext2_fs.h ``struct ext4_group_desc`` (32 bytes without 64bit)
EXT4_GROUP_DESC = Layout(
    "ext4_group_desc",
    [
        ("bg_block_bitmap_lo", "I"), ("bg_inode_bitmap_lo", "I"), ("bg_inode_table_lo", "I"),
        ("bg_free_blocks_count_lo", "H"), ("bg_free_inodes_count_lo", "H"),
        ("bg_used_dirs_count_lo", "H"), ("bg_flags", "H"), ("bg_exclude_bitmap_lo", "I"),
        ("bg_block_bitmap_csum_lo", "H"), ("bg_inode_bitmap_csum_lo", "H"),
        ("bg_itable_unused_lo", "H"), ("bg_checksum", "H"),
        ("bg_block_bitmap_hi", "I"), ("bg_inode_bitmap_hi", "I"), ("bg_inode_table_hi", "I"),
        ("bg_free_blocks_count_hi", "H"), ("bg_free_inodes_count_hi", "H"),
        ("bg_used_dirs_count_hi", "H"), ("bg_itable_unused_hi", "H"),
        ("bg_exclude_bitmap_hi", "I"), ("bg_block_bitmap_csum_hi", "H"),
        ("bg_inode_bitmap_csum_hi", "H"), ("bg_reserved", "I"),
    ],
    size=64,
)
EXT2_GROUP_DESC_SIZE = 32  # the first 32 bytes of the layout above
GD_CHECKSUM_OFFSET = 0x1E
EXT2_BG_INODE_UNINIT = 0x1
EXT2_BG_BLOCK_UNINIT = 0x2
EXT2_BG_INODE_ZEROED = 0x4

# ---- inode: ext2_fs.h ``struct ext2_inode_large``; kernel inodes.rst
EXT2_INODE = Layout(
    "ext2_inode",
    [
        ("i_mode", "H"), ("i_uid", "H"), ("i_size", "I"), ("i_atime", "I"), ("i_ctime", "I"),
        ("i_mtime", "I"), ("i_dtime", "I"), ("i_gid", "H"), ("i_links_count", "H"),
        ("i_blocks", "I"), ("i_flags", "I"), ("l_i_version", "I"), ("i_block", "60s"),
        ("i_generation", "I"), ("i_file_acl", "I"), ("i_size_high", "I"), ("i_faddr", "I"),
        ("l_i_blocks_hi", "H"), ("l_i_file_acl_high", "H"), ("l_i_uid_high", "H"),
        ("l_i_gid_high", "H"), ("l_i_checksum_lo", "H"), ("l_i_reserved", "H"),
    ],
    size=128,
)
EXT2_GOOD_OLD_INODE_SIZE = 128
# The large-inode extension; a field exists only if ``128 + i_extra_isize`` covers it.
EXT2_INODE_EXTRA = Layout(
    "ext2_inode_large_extra",
    [
        ("i_extra_isize", "H"), ("i_checksum_hi", "H"), ("i_ctime_extra", "I"),
        ("i_mtime_extra", "I"), ("i_atime_extra", "I"), ("i_crtime", "I"),
        ("i_crtime_extra", "I"), ("i_version_hi", "I"), ("i_projid", "I"),
    ],
    size=32,
)
I_CHECKSUM_LO_OFFSET = 0x7C
I_CHECKSUM_HI_OFFSET = 0x82
EXT4_INODE_CSUM_HI_EXTRA_END = 4  # i_extra_isize must reach past i_checksum_hi

# i_flags
EXT2_SECRM_FL = 0x1
EXT2_IMMUTABLE_FL = 0x10
EXT2_APPEND_FL = 0x20
EXT2_INDEX_FL = 0x1000
EXT4_HUGE_FILE_FL = 0x40000
EXT4_EXTENTS_FL = 0x80000
EXT4_VERITY_FL = 0x100000
EXT4_EA_INODE_FL = 0x200000
EXT4_ENCRYPT_FL = 0x800
EXT4_INLINE_DATA_FL = 0x10000000
EXT4_CASEFOLD_FL = 0x40000000

# reserved inode numbers
EXT2_BAD_INO = 1
EXT2_ROOT_INO = 2
EXT2_RESIZE_INO = 7
EXT2_JOURNAL_INO = 8
EXT2_GOOD_OLD_FIRST_INO = 11
EXT4_LINK_MAX = 65000

# ---- extent tree: kernel ifork.rst; e2fsprogs lib/ext2fs/ext3_extents.h
EXT3_EXTENT_HEADER = Layout(
    "ext3_extent_header",
    [("eh_magic", "H"), ("eh_entries", "H"), ("eh_max", "H"), ("eh_depth", "H"), ("eh_generation", "I")],
    size=12,
)
EXT3_EXTENT_IDX = Layout(
    "ext3_extent_idx", [("ei_block", "I"), ("ei_leaf", "I"), ("ei_leaf_hi", "H"), ("ei_unused", "H")], size=12
)
EXT3_EXTENT = Layout(
    "ext3_extent", [("ee_block", "I"), ("ee_len", "H"), ("ee_start_hi", "H"), ("ee_start", "I")], size=12
)
EXT3_EXTENT_TAIL = Layout("ext3_extent_tail", [("et_checksum", "I")], size=4)
EXT3_EXT_MAGIC = 0xF30A
EXT_INIT_MAX_LEN = 1 << 15
EXT_UNINIT_MAX_LEN = EXT_INIT_MAX_LEN - 1
EXT4_MAX_EXTENT_DEPTH = 5
# hot-path codecs
S_EXTENT_HEADER = EXT3_EXTENT_HEADER.struct
S_EXTENT = EXT3_EXTENT.struct
S_EXTENT_IDX = EXT3_EXTENT_IDX.struct

# ---- directories: kernel directory.rst; ext2_fs.h ``struct ext2_dir_entry_2``
EXT2_DIR_ENTRY_2 = Layout(
    "ext2_dir_entry_2", [("inode", "I"), ("rec_len", "H"), ("name_len", "B"), ("file_type", "B")], size=8
)
S_DIRENT = EXT2_DIR_ENTRY_2.struct
EXT2_DIR_ENTRY_TAIL = Layout(
    "ext2_dir_entry_tail",
    [("det_reserved_zero1", "I"), ("det_rec_len", "H"), ("det_reserved_zero2", "B"),
     ("det_reserved_ft", "B"), ("det_checksum", "I")],
    size=12,
)
EXT2_DIR_NAME_LEN_CSUM = 0xDE00  # name_len 0, file_type 0xDE, read as one le16
EXT2_FT = {"unknown": 0, "reg": 1, "dir": 2, "chrdev": 3, "blkdev": 4, "fifo": 5, "sock": 6, "symlink": 7}
EXT2_FT_DIR_CSUM = 0xDE
EXT2_NAME_LEN = 255

# htree: ext2_fs.h ``struct ext2_dx_root_info``, ``ext2_dx_entry``, ``ext2_dx_countlimit``,
# ``ext2_dx_tail``; dx_node counts sit at 0x08 (FORMAT-NOTES B2.7)
EXT2_DX_ROOT_INFO = Layout(
    "ext2_dx_root_info",
    [("reserved_zero", "I"), ("hash_version", "B"), ("info_length", "B"),
     ("indirect_levels", "B"), ("unused_flags", "B")],
    size=8,
)
EXT2_DX_COUNTLIMIT = Layout("ext2_dx_countlimit", [("limit", "H"), ("count", "H")], size=4)
EXT2_DX_ENTRY = Layout("ext2_dx_entry", [("hash", "I"), ("block", "I")], size=8)
EXT2_DX_TAIL = Layout("ext2_dx_tail", [("dt_reserved", "I"), ("dt_checksum", "I")], size=8)
DX_ROOT_INFO_OFFSET = 0x18
DX_ROOT_COUNT_OFFSET = 0x20
DX_NODE_COUNT_OFFSET = 0x08
EXT4_HTREE_LEVEL_COMPAT = 2
EXT4_HTREE_LEVEL = 3  # with large_dir

# ---- extended attributes: kernel attributes.rst; ext2_ext_attr.h
EXT2_EXT_ATTR_HEADER = Layout(
    "ext2_ext_attr_header",
    [("h_magic", "I"), ("h_refcount", "I"), ("h_blocks", "I"), ("h_hash", "I"),
     ("h_checksum", "I"), ("h_reserved", "12s")],
    size=32,
)
EXT2_EXT_ATTR_ENTRY = Layout(
    "ext2_ext_attr_entry",
    [("e_name_len", "B"), ("e_name_index", "B"), ("e_value_offs", "H"), ("e_value_inum", "I"),
     ("e_value_size", "I"), ("e_hash", "I")],
    size=16,
)
S_XATTR_ENTRY = EXT2_EXT_ATTR_ENTRY.struct
EXT2_EXT_ATTR_MAGIC = 0xEA020000
XATTR_H_CHECKSUM_OFFSET = 0x10
# e_name_index prefixes (ext2_ext_attr.h / kernel xattr.h)
XATTR_PREFIXES = {
    1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default",
    4: "trusted.", 6: "security.", 7: "system.", 8: "system.richacl",
}

# on-disk POSIX ACL (e2fsprogs lib/ext2fs/ext4_acl.h) and the VFS form (linux/posix_acl_xattr.h)
EXT4_ACL_VERSION = 1
POSIX_ACL_XATTR_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
S_ACL_HEADER = struct.Struct("<I")
S_ACL_SHORT = struct.Struct("<HH")
S_ACL_ENTRY = struct.Struct("<HHI")

# ---- orphan file block tail (kernel orphan.rst; e2fsprogs ext2_fs.h ``ext4_orphan_block_tail``)
EXT4_ORPHAN_BLOCK_TAIL = Layout("ext4_orphan_block_tail", [("ob_magic", "I"), ("ob_checksum", "I")], size=8)
EXT4_ORPHAN_BLOCK_MAGIC = 0x0B10CA04
