"""qcow2 on-disk layout, declared once (no I/O, no policy).

Spec: qemu ``docs/interop/qcow2.txt`` (section names cited per struct). Field names are the
upstream C names of qemu ``block/qcow2.h`` and ``block/qcow2-bitmap.c`` so the spec can be held
beside the code. Everything is big-endian. Facts checked against qemu-img 7.2 are in
FORMAT-NOTES B1.
"""

from __future__ import annotations

from construct import Bytes, Const, Int8ub, Int16ub, Int32ub, Int64ub, Struct

QCOW_MAGIC = b"QFI\xfb"

# --- "Header" (qcow2.txt, "Header"): the 72 bytes common to v2 and v3 --------------------------
QCowHeader = Struct(
    "magic" / Const(QCOW_MAGIC),
    "version" / Int32ub,
    "backing_file_offset" / Int64ub,
    "backing_file_size" / Int32ub,
    "cluster_bits" / Int32ub,
    "size" / Int64ub,
    "crypt_method" / Int32ub,
    "l1_size" / Int32ub,
    "l1_table_offset" / Int64ub,
    "refcount_table_offset" / Int64ub,
    "refcount_table_clusters" / Int32ub,
    "nb_snapshots" / Int32ub,
    "snapshots_offset" / Int64ub,
)
QCOW_HEADER_V2_SIZE = 72

# --- "Header", version 3 additional fields (bytes 72..103) ------------------------------------
QCowHeaderV3 = Struct(
    "incompatible_features" / Int64ub,
    "compatible_features" / Int64ub,
    "autoclear_features" / Int64ub,
    "refcount_order" / Int32ub,
    "header_length" / Int32ub,
)
QCOW_HEADER_V3_SIZE = 104
#: byte offset of the optional compression_type field ("Additional fields", byte 104)
OFF_COMPRESSION_TYPE = 104
#: what qemu writes as header_length for v3 (104 + compression_type + 7 bytes padding)
QCOW_HEADER_V3_QEMU_LENGTH = 112

# byte offsets of header fields rewritten in place (FORMAT-NOTES B1.6: 12-byte table switch)
OFF_REFCOUNT_TABLE_OFFSET = 48
OFF_INCOMPATIBLE_FEATURES = 72
OFF_AUTOCLEAR_FEATURES = 88

CRYPT_NONE, CRYPT_AES, CRYPT_LUKS = 0, 1, 2
COMPRESSION_ZLIB, COMPRESSION_ZSTD = 0, 1
COMPRESSION_NAMES = {COMPRESSION_ZLIB: "zlib", COMPRESSION_ZSTD: "zstd"}

# --- Feature bits (qcow2.txt, "Header", bytes 72-95) ------------------------------------------
QCOW2_INCOMPAT_DIRTY = 1 << 0
QCOW2_INCOMPAT_CORRUPT = 1 << 1
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_INCOMPAT_COMPRESSION = 1 << 3
QCOW2_INCOMPAT_EXTL2 = 1 << 4
QCOW2_INCOMPAT_MASK = 0x1F
QCOW2_COMPAT_LAZY_REFCOUNTS = 1 << 0
QCOW2_AUTOCLEAR_BITMAPS = 1 << 0
QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1 << 1

QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_FEAT_TYPE_COMPATIBLE, QCOW2_FEAT_TYPE_AUTOCLEAR = 0, 1, 2
#: the feature names qemu puts in its feature name table (type, bit) -> name
FEATURE_NAMES = {
    (QCOW2_FEAT_TYPE_INCOMPATIBLE, 0): "dirty bit",
    (QCOW2_FEAT_TYPE_INCOMPATIBLE, 1): "corrupt bit",
    (QCOW2_FEAT_TYPE_INCOMPATIBLE, 2): "external data file",
    (QCOW2_FEAT_TYPE_INCOMPATIBLE, 3): "compression type",
    (QCOW2_FEAT_TYPE_INCOMPATIBLE, 4): "extended L2 entries",
    (QCOW2_FEAT_TYPE_COMPATIBLE, 0): "lazy refcounts",
    (QCOW2_FEAT_TYPE_AUTOCLEAR, 0): "bitmaps",
    (QCOW2_FEAT_TYPE_AUTOCLEAR, 1): "raw external data",
}

# --- "Header extensions" ------------------------------------------------------------------------
QCowExtension = Struct("magic" / Int32ub, "len" / Int32ub)
QCOW2_EXT_MAGIC_END = 0
QCOW2_EXT_MAGIC_BACKING_FORMAT = 0xE2792ACA
QCOW2_EXT_MAGIC_FEATURE_TABLE = 0x6803F857
QCOW2_EXT_MAGIC_CRYPTO_HEADER = 0x0537BE77
QCOW2_EXT_MAGIC_BITMAPS = 0x23852875
QCOW2_EXT_MAGIC_DATA_FILE = 0x44415441
EXTENSION_NAMES = {
    QCOW2_EXT_MAGIC_BACKING_FORMAT: "backing format",
    QCOW2_EXT_MAGIC_FEATURE_TABLE: "feature name table",
    QCOW2_EXT_MAGIC_CRYPTO_HEADER: "full disk encryption header pointer",
    QCOW2_EXT_MAGIC_BITMAPS: "bitmaps",
    QCOW2_EXT_MAGIC_DATA_FILE: "external data file name",
}

# "Feature name table": 48-byte entries
Qcow2Feature = Struct("type" / Int8ub, "bit" / Int8ub, "name" / Bytes(46))
# "Full disk encryption header pointer"
Qcow2CryptoHeaderExtension = Struct("offset" / Int64ub, "length" / Int64ub)
# "Bitmaps extension"
Qcow2BitmapHeaderExt = Struct(
    "nb_bitmaps" / Int32ub,
    "reserved32" / Int32ub,
    "bitmap_directory_size" / Int64ub,
    "bitmap_directory_offset" / Int64ub,
)
# "Bitmap directory": fixed part of each entry, then extra data, name, padding to 8
Qcow2BitmapDirEntry = Struct(
    "bitmap_table_offset" / Int64ub,
    "bitmap_table_size" / Int32ub,
    "flags" / Int32ub,
    "type" / Int8ub,
    "granularity_bits" / Int8ub,
    "name_size" / Int16ub,
    "extra_data_size" / Int32ub,
)
BITMAP_DIR_ENTRY_SIZE = 24
#: bitmap table entry: bits 9-55 data cluster offset; bit 0 "all ones" when the offset is 0
BME_TABLE_ENTRY_OFFSET_MASK = 0x00FFFFFFFFFFFE00

# --- "Snapshots" (qcow2.txt, "Snapshot table") -------------------------------------------------
QCowSnapshotHeader = Struct(
    "l1_table_offset" / Int64ub,
    "l1_size" / Int32ub,
    "id_str_size" / Int16ub,
    "name_size" / Int16ub,
    "date_sec" / Int32ub,
    "date_nsec" / Int32ub,
    "vm_clock_nsec" / Int64ub,
    "vm_state_size" / Int32ub,
    "extra_data_size" / Int32ub,
)
QCOW_SNAPSHOT_HEADER_SIZE = 40
#: the known prefix of the snapshot extra data; unknown trailing bytes are kept verbatim
QCowSnapshotExtraData = Struct(
    "vm_state_size_large" / Int64ub,
    "disk_size" / Int64ub,
    "icount" / Int64ub,
)

# --- "Cluster mapping" -------------------------------------------------------------------------
L1E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L1E_RESERVED_MASK = 0x7F000000000001FF
L2E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
REFT_OFFSET_MASK = 0xFFFFFFFFFFFFFE00
QCOW_OFLAG_COPIED = 1 << 63
QCOW_OFLAG_COMPRESSED = 1 << 62
QCOW_OFLAG_ZERO = 1 << 0
#: standard cluster descriptor reserved bits (1-8 and 56-61)
L2E_STD_RESERVED_MASK = 0x3F000000000001FE
#: extended L2: subclusters per cluster; bitmap low half "allocated", high half "reads as zero"
QCOW_EXTL2_SUBCLUSTERS_PER_CLUSTER = 32
QCOW_L2_BITMAP_ALL_ALLOC = 0xFFFFFFFF
QCOW_L2_BITMAP_ALL_ZERO = 0xFFFFFFFF << 32

# limits qemu enforces on open (block/qcow2.h); used to refuse absurd headers before allocating
MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
QCOW_MAX_REFTABLE_SIZE = 8 * 1024 * 1024  # bytes
QCOW_MAX_L1_SIZE = 32 * 1024 * 1024  # bytes
QCOW_MAX_SNAPSHOTS = 65536
QCOW_MAX_SNAPSHOT_EXTRA_DATA = 1024
QCOW_MAX_BACKING_FILE_NAME = 1023
QCOW_MAX_SIZE = 1 << 61  # qemu: QCOW_MAX_... (offsets are 56 bits; keep guest < 2 EiB)


def compressed_layout(cluster_bits: int) -> tuple[int, int]:
    """(csize_shift, csize_mask) of a compressed descriptor ("Compressed Clusters Descriptor").

    x = 62 - (cluster_bits - 8): bits 0..x-1 hold the host byte offset, bits x..61 the number of
    additional 512-byte sectors.
    """
    shift = 62 - (cluster_bits - 8)
    return shift, (1 << (cluster_bits - 8)) - 1


def decode_compressed(entry: int, cluster_bits: int) -> tuple[int, int]:
    """(host byte offset, byte length to read) of a compressed L2 entry.

    Mirrors qemu ``qcow2_parse_compressed_l2_entry``: the range runs from the offset to the end
    of its last 512-byte sector.
    """
    shift, mask = compressed_layout(cluster_bits)
    off = entry & ((1 << shift) - 1)
    nb_csectors = ((entry >> shift) & mask) + 1
    return off, nb_csectors * 512 - (off & 511)


def encode_compressed(host_offset: int, csize: int, cluster_bits: int) -> int:
    """The L2 entry for a compressed cluster of ``csize`` bytes at byte ``host_offset``."""
    shift, _ = compressed_layout(cluster_bits)
    extra = ((host_offset + csize - 1) >> 9) - (host_offset >> 9)
    return QCOW_OFLAG_COMPRESSED | (extra << shift) | host_offset


def l2_geometry(cluster_bits: int, extended_l2: bool) -> tuple[int, int]:
    """(l2_bits, bytes per L2 entry): an L2 table is one cluster of 8- or 16-byte entries."""
    entry = 16 if extended_l2 else 8
    return cluster_bits - (4 if extended_l2 else 3), entry


def refcount_geometry(cluster_bits: int, refcount_order: int) -> int:
    """Entries per refcount block: cluster_size * 8 / refcount_bits."""
    return 1 << (cluster_bits + 3 - refcount_order)


def feature_name(kind: int, bit: int, table: dict | None = None) -> str:
    """Human name of a feature bit: the image's own feature table first, then the spec's."""
    if table and (kind, bit) in table:
        return table[(kind, bit)]
    return FEATURE_NAMES.get((kind, bit), f"unknown bit {bit}")


def pad8(n: int) -> int:
    """``n`` rounded up to a multiple of 8 (extensions and snapshot entries are 8-aligned)."""
    return (n + 7) & ~7
