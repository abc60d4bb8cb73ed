"""Pure decoding/encoding of qcow2 metadata.

The header with its extensions, the snapshot table entries and the bitmap directory: bytes in,
objects out (and back); and the big-endian table codec (``be_array``/``array_be``) that the
reader, the writer and the repair code share (kept here, below all three, so none of them
imports another for it). No file I/O here; ``qcow2.py`` reads the bytes. Every check names the
structure, its file offset and the field (the error style of ``nuwa.errors``).
Spec: qemu docs/interop/qcow2.txt; facts in FORMAT-NOTES B1.1-B1.3, B1.9.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass, field

from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.formats import c_qcow2 as C

_SWAP = sys.byteorder == "little"


def be_array(data: bytes) -> array:
    """Big-endian 64-bit words as a native ``array('Q')``."""
    a = array("Q", data)
    if _SWAP:
        a.byteswap()
    return a


def array_be(a: array) -> bytes:
    """Inverse of ``be_array``."""
    if _SWAP:
        a = array("Q", a)
        a.byteswap()
    return a.tobytes()


@dataclass
class Qcow2Header:
    """The decoded header ("Header" + "Header extensions" + backing file name)."""

    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    nb_snapshots: int
    snapshots_offset: int
    incompatible_features: int = 0
    compatible_features: int = 0
    autoclear_features: int = 0
    refcount_order: int = 4
    header_length: int = C.QCOW_HEADER_V2_SIZE
    compression_type: int = C.COMPRESSION_ZLIB
    #: header extensions in on-disk order, (magic, data) without padding; unknown ones included
    extensions: list = field(default_factory=list)
    backing_file: str | None = None
    #: the header bytes [0, header_length) exactly as read, so unknown v3 fields survive rewrites
    raw: bytes = b""

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    @property
    def refcount_bits(self) -> int:
        return 1 << self.refcount_order

    @property
    def extended_l2(self) -> bool:
        return bool(self.incompatible_features & C.QCOW2_INCOMPAT_EXTL2)

    def extension(self, magic: int) -> bytes | None:
        """Data of the first extension of type ``magic``, or None."""
        for m, data in self.extensions:
            if m == magic:
                return data
        return None

    def feature_table(self) -> dict:
        """(type, bit) -> name from the image's feature name table extension."""
        data = self.extension(C.QCOW2_EXT_MAGIC_FEATURE_TABLE) or b""
        names = {}
        for i in range(len(data) // 48):
            f = C.Qcow2Feature.parse(data[i * 48 : i * 48 + 48])
            names[(f.type, f.bit)] = f.name.split(b"\0", 1)[0].decode("utf-8", "replace")
        return names


def _bad(msg: str, off: int, fieldname: str) -> CorruptImageError:
    return CorruptImageError(msg, where=f"qcow2 header @0x{off:x} ({fieldname})")


def header_probe_length(buf: bytes) -> int:
    """How many bytes of the file the header needs: all of cluster 0 (capped for absurd values)."""
    if len(buf) < 24:
        return C.QCOW_HEADER_V2_SIZE
    cluster_bits = struct.unpack_from(">I", buf, 20)[0]
    if C.MIN_CLUSTER_BITS <= cluster_bits <= C.MAX_CLUSTER_BITS:
        return 1 << cluster_bits
    return C.QCOW_HEADER_V2_SIZE


def parse_header(buf: bytes, file_size: int) -> Qcow2Header:
    """Decode and validate the header from the bytes of cluster 0 (or as much as exists).

    Validation follows the checks of qemu ``qcow2_do_open`` so an absurd header is refused before
    any table is allocated.
    """
    if len(buf) < C.QCOW_HEADER_V2_SIZE:
        raise _bad(f"truncated header: file has {len(buf)} bytes, need {C.QCOW_HEADER_V2_SIZE}", 0, "magic")
    if buf[:4] != C.QCOW_MAGIC:
        raise _bad(f"bad magic {buf[:4].hex()}", 0, "magic")
    base = C.QCowHeader.parse(buf[: C.QCOW_HEADER_V2_SIZE])
    h = Qcow2Header(**{k: v for k, v in base.items() if not k.startswith("_") and k != "magic"})
    if h.version not in (2, 3):
        raise UnsupportedFeatureError(f"qcow2 version {h.version} (only 2 and 3 exist)",
                                      where="qcow2 header @0x4 (version)", feature="version")
    if not C.MIN_CLUSTER_BITS <= h.cluster_bits <= C.MAX_CLUSTER_BITS:
        raise _bad(f"cluster_bits {h.cluster_bits} outside {C.MIN_CLUSTER_BITS}..{C.MAX_CLUSTER_BITS}", 0x14, "cluster_bits")
    cs = h.cluster_size
    if h.version == 3:
        if len(buf) < C.QCOW_HEADER_V3_SIZE:
            raise _bad(f"truncated v3 header: {len(buf)} bytes, need {C.QCOW_HEADER_V3_SIZE}", 0x48, "incompatible_features")
        v3 = C.QCowHeaderV3.parse(buf[C.QCOW_HEADER_V2_SIZE : C.QCOW_HEADER_V3_SIZE])
        h.incompatible_features = v3.incompatible_features
        h.compatible_features = v3.compatible_features
        h.autoclear_features = v3.autoclear_features
        h.refcount_order = v3.refcount_order
        h.header_length = v3.header_length
        if h.header_length < C.QCOW_HEADER_V3_SIZE or h.header_length % 8 or h.header_length > cs:
            raise _bad(f"header_length {h.header_length} must be >= 104, a multiple of 8 and <= the cluster size", 0x64, "header_length")
        if len(buf) < h.header_length:
            raise _bad(f"truncated header: {len(buf)} bytes, header_length is {h.header_length}", 0x64, "header_length")
        if h.header_length > C.OFF_COMPRESSION_TYPE:
            h.compression_type = buf[C.OFF_COMPRESSION_TYPE]
    if h.refcount_order > 6:
        raise _bad(f"refcount_order {h.refcount_order} > 6", 0x60, "refcount_order")
    h.raw = bytes(buf[: h.header_length])

    _check_features(h)
    if h.size > C.QCOW_MAX_SIZE:
        raise _bad(f"virtual size {h.size} is absurd", 0x18, "size")
    if h.extended_l2 and h.cluster_bits < 14:
        raise _bad(f"extended L2 needs cluster_bits >= 14, has {h.cluster_bits}", 0x14, "cluster_bits")
    l2_bits, _ = C.l2_geometry(h.cluster_bits, h.extended_l2)
    need_l1 = -(-h.size // (cs << l2_bits))
    if h.l1_size * 8 > C.QCOW_MAX_L1_SIZE:
        raise _bad(f"l1_size {h.l1_size} is absurd (max {C.QCOW_MAX_L1_SIZE // 8})", 0x24, "l1_size")
    if h.l1_size < need_l1:
        raise _bad(f"l1_size {h.l1_size} too small for virtual size {h.size} (needs {need_l1})", 0x24, "l1_size")
    _check_table(h.l1_table_offset, h.l1_size * 8, cs, file_size, 0x28, "l1_table_offset", allow_empty=h.l1_size == 0)
    if h.refcount_table_clusters == 0 or h.refcount_table_clusters * cs > C.QCOW_MAX_REFTABLE_SIZE:
        raise _bad(f"refcount_table_clusters {h.refcount_table_clusters} is absurd", 0x38, "refcount_table_clusters")
    _check_table(h.refcount_table_offset, h.refcount_table_clusters * cs, cs, file_size, 0x30, "refcount_table_offset")
    if h.nb_snapshots > C.QCOW_MAX_SNAPSHOTS:
        raise _bad(f"nb_snapshots {h.nb_snapshots} is absurd", 0x3C, "nb_snapshots")
    if h.nb_snapshots:
        _check_table(h.snapshots_offset, C.QCOW_SNAPSHOT_HEADER_SIZE, cs, file_size, 0x40, "snapshots_offset")

    ext_end = _parse_extensions(h, buf)
    if h.backing_file_offset:
        if h.backing_file_size > C.QCOW_MAX_BACKING_FILE_NAME:
            raise _bad(f"backing_file_size {h.backing_file_size} > {C.QCOW_MAX_BACKING_FILE_NAME}", 0x10, "backing_file_size")
        end = h.backing_file_offset + h.backing_file_size
        if end > cs or end > len(buf) or h.backing_file_offset < ext_end:
            raise _bad(f"backing file name [{h.backing_file_offset}, {end}) is not inside cluster 0 after the extensions", 0x8, "backing_file_offset")
        name = bytes(buf[h.backing_file_offset : end])
        h.backing_file = name.decode("utf-8", "surrogateescape")
    return h


def _check_features(h: Qcow2Header) -> None:
    unknown = h.incompatible_features & ~C.QCOW2_INCOMPAT_MASK
    if unknown:
        bit = (unknown & -unknown).bit_length() - 1
        name = C.feature_name(C.QCOW2_FEAT_TYPE_INCOMPATIBLE, bit, None)
        raise UnsupportedFeatureError(
            f"unknown incompatible feature bit {bit} ({name}) is set; refusing to open",
            where="qcow2 header @0x48 (incompatible_features)", feature=f"incompatible bit {bit}")
    has_bit = bool(h.incompatible_features & C.QCOW2_INCOMPAT_COMPRESSION)
    if h.compression_type not in C.COMPRESSION_NAMES:
        raise UnsupportedFeatureError(f"unknown compression_type {h.compression_type}",
                                      where="qcow2 header @0x68 (compression_type)", feature="compression type")
    if has_bit != (h.compression_type != C.COMPRESSION_ZLIB):
        raise _bad(f"compression_type {h.compression_type} disagrees with incompatible bit 3", 0x68, "compression_type")


def _check_table(off: int, length: int, cs: int, file_size: int, hoff: int, name: str, allow_empty=False) -> None:
    if allow_empty and length == 0:
        return
    if off % cs or off == 0:
        raise _bad(f"{name} 0x{off:x} is not a non-zero multiple of the cluster size {cs}", hoff, name)
    if off + length > file_size:
        raise _bad(f"{name} 0x{off:x} + {length} bytes lies past the end of the file ({file_size} bytes)", hoff, name)


def _parse_extensions(h: Qcow2Header, buf: bytes) -> int:
    """Fill ``h.extensions``; return the byte offset after the end marker."""
    off = h.header_length if h.version == 3 else C.QCOW_HEADER_V2_SIZE
    limit = h.backing_file_offset if h.backing_file_offset else min(len(buf), h.cluster_size)
    limit = min(limit, len(buf), h.cluster_size)
    seen_end = False
    while off + 8 <= limit:
        magic, length = struct.unpack_from(">II", buf, off)
        if magic == C.QCOW2_EXT_MAGIC_END:
            seen_end = True
            off += 8
            break
        if off + 8 + length > limit:
            raise CorruptImageError(f"extension 0x{magic:08x} of {length} bytes runs past the header cluster",
                                    where=f"qcow2 header extension @0x{off:x} (len)")
        h.extensions.append((magic, bytes(buf[off + 8 : off + 8 + length])))
        off += 8 + C.pad8(length)
    if not seen_end and off < limit:
        raise CorruptImageError("header extension area is not terminated", where=f"qcow2 header extension @0x{off:x}")
    return off


def build_header(h: Qcow2Header) -> bytes:
    """Encode the header, its extensions and the backing file name (the cluster-0 prefix).

    Bytes of ``h.raw`` beyond the fields we know (unknown v3 additional fields) are kept.
    ``backing_file_offset``/``backing_file_size`` are recomputed.
    """
    ext = bytearray()
    for magic, data in h.extensions:
        ext += struct.pack(">II", magic, len(data)) + data + bytes(C.pad8(len(data)) - len(data))
    ext += bytes(8)  # end marker
    start = h.header_length if h.version == 3 else C.QCOW_HEADER_V2_SIZE
    name = h.backing_file.encode("utf-8", "surrogateescape") if h.backing_file else b""
    h.backing_file_offset = start + len(ext) if name else 0
    h.backing_file_size = len(name)
    if start + len(ext) + len(name) > h.cluster_size:
        raise UnsupportedFeatureError("header, extensions and backing file name do not fit in cluster 0",
                                      where="qcow2 header", feature="header size")
    fields = {k: getattr(h, k) for k in (
        "version", "backing_file_offset", "backing_file_size", "cluster_bits", "size", "crypt_method",
        "l1_size", "l1_table_offset", "refcount_table_offset", "refcount_table_clusters",
        "nb_snapshots", "snapshots_offset")}
    out = bytearray(C.QCowHeader.build(fields))
    if h.version == 3:
        out += C.QCowHeaderV3.build(dict(
            incompatible_features=h.incompatible_features, compatible_features=h.compatible_features,
            autoclear_features=h.autoclear_features, refcount_order=h.refcount_order,
            header_length=h.header_length))
        tail = bytearray(h.raw[C.QCOW_HEADER_V3_SIZE : h.header_length])
        tail += bytes(h.header_length - C.QCOW_HEADER_V3_SIZE - len(tail))
        if h.header_length > C.OFF_COMPRESSION_TYPE:
            tail[0] = h.compression_type
        out += tail
    return bytes(out + ext + name)


def feature_table_extension() -> bytes:
    """The feature name table qemu writes (8 entries of 48 bytes)."""
    return b"".join(
        C.Qcow2Feature.build(dict(type=t, bit=b, name=n.encode().ljust(46, b"\0")))
        for (t, b), n in sorted(C.FEATURE_NAMES.items()))


# --- snapshots -------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """One entry of the snapshot table ("Snapshot table entry")."""

    l1_table_offset: int
    l1_size: int
    id: str
    name: str
    date_sec: int
    date_nsec: int
    vm_clock_nsec: int
    vm_state_size: int
    extra_data: bytes = b""
    #: file offset of this entry (for messages)
    offset: int = 0

    @property
    def disk_size(self) -> int | None:
        """Guest size when the snapshot was taken (extra data), or None if not recorded."""
        if len(self.extra_data) >= 16:
            return struct.unpack_from(">Q", self.extra_data, 8)[0]
        return None

    @property
    def vm_state_size_large(self) -> int:
        if len(self.extra_data) >= 8:
            return struct.unpack_from(">Q", self.extra_data, 0)[0]
        return self.vm_state_size

    def as_dict(self) -> dict:
        """The public description used by ``info()``."""
        d = dict(id=self.id, name=self.name, vm_state_size=self.vm_state_size_large,
                 date_sec=self.date_sec, date_nsec=self.date_nsec, vm_clock_nsec=self.vm_clock_nsec,
                 l1_size=self.l1_size)
        d["date"] = self.date_sec
        if self.disk_size is not None:
            d["disk_size"] = self.disk_size
        if len(self.extra_data) >= 24:
            d["icount"] = struct.unpack_from(">Q", self.extra_data, 16)[0]
        return d


def snapshot_entry_length(fixed: bytes) -> int:
    """Length of a snapshot entry without its trailing padding, given its 40-byte fixed part.

    The next entry starts at ``pad8`` of this; the last entry's padding may lie past the end
    of the file (qemu-img 7.2 writes it that way).
    """
    s = C.QCowSnapshotHeader.parse(fixed)
    return C.QCOW_SNAPSHOT_HEADER_SIZE + s.extra_data_size + s.id_str_size + s.name_size


def decode_snapshot(buf: bytes, offset: int, cluster_size: int, file_size: int) -> Snapshot:
    """Decode one snapshot entry from its bytes (``offset`` is its file offset, for messages)."""
    s = C.QCowSnapshotHeader.parse(buf[: C.QCOW_SNAPSHOT_HEADER_SIZE])
    where = f"qcow2 snapshot table entry @0x{offset:x}"
    if s.extra_data_size > C.QCOW_MAX_SNAPSHOT_EXTRA_DATA:
        raise CorruptImageError(f"extra_data_size {s.extra_data_size} is absurd", where=where + " (extra_data_size)")
    if s.l1_size * 8 > C.QCOW_MAX_L1_SIZE:
        raise CorruptImageError(f"l1_size {s.l1_size} is absurd", where=where + " (l1_size)")
    if s.l1_size and (s.l1_table_offset % cluster_size or s.l1_table_offset + s.l1_size * 8 > file_size):
        raise CorruptImageError(f"l1_table_offset 0x{s.l1_table_offset:x} is unaligned or past the end of the file",
                                where=where + " (l1_table_offset)")
    p = C.QCOW_SNAPSHOT_HEADER_SIZE
    extra = bytes(buf[p : p + s.extra_data_size])
    p += s.extra_data_size
    sid = bytes(buf[p : p + s.id_str_size]).decode("utf-8", "replace")
    p += s.id_str_size
    name = bytes(buf[p : p + s.name_size]).decode("utf-8", "replace")
    return Snapshot(s.l1_table_offset, s.l1_size, sid, name, s.date_sec, s.date_nsec, s.vm_clock_nsec,
                    s.vm_state_size, extra, offset)


def encode_snapshot(s: Snapshot) -> bytes:
    """Encode one snapshot entry, padded to 8 bytes (inverse of ``decode_snapshot``)."""
    sid, name = s.id.encode(), s.name.encode()
    fixed = C.QCowSnapshotHeader.build(dict(
        l1_table_offset=s.l1_table_offset, l1_size=s.l1_size, id_str_size=len(sid), name_size=len(name),
        date_sec=s.date_sec, date_nsec=s.date_nsec, vm_clock_nsec=s.vm_clock_nsec,
        vm_state_size=s.vm_state_size, extra_data_size=len(s.extra_data)))
    body = fixed + s.extra_data + sid + name
    return body + bytes(C.pad8(len(body)) - len(body))


# --- bitmaps -----------------------------------------------------------------------------------


def decode_bitmap_directory(buf: bytes, nb_bitmaps: int, offset: int) -> list:
    """Entries of the bitmap directory: list of (bitmap_table_offset, bitmap_table_size, name)."""
    out, p = [], 0
    for _ in range(nb_bitmaps):
        if p + C.BITMAP_DIR_ENTRY_SIZE > len(buf):
            raise CorruptImageError("bitmap directory is truncated", where=f"qcow2 bitmap directory @0x{offset + p:x}")
        e = C.Qcow2BitmapDirEntry.parse(buf[p : p + C.BITMAP_DIR_ENTRY_SIZE])
        q = p + C.BITMAP_DIR_ENTRY_SIZE + e.extra_data_size
        name = bytes(buf[q : q + e.name_size]).decode("utf-8", "replace")
        out.append((e.bitmap_table_offset, e.bitmap_table_size, name, e.flags, e.granularity_bits))
        p = C.pad8(q + e.name_size)
    return out


# --- clusters past the end of the file (a truncated image) ------------------------------------
# qemu reads a cluster past the end of the file as zeros without a word, so a truncated image
# reads as a disk of zeros where its data used to be. ``qemu-img check`` calls such an image
# corrupt: ``qcow2_inc_refcounts_imrt`` (block/qcow2-refcount.c) reports "counting reference
# for region exceeding the end of the file by one cluster or more" for every referenced region
# with ``offset + size - file_length >= cluster_size``; the last cluster may be short (a
# compressed cluster ends mid-sector, a file may end mid-cluster). Qcow2Image applies these
# pure functions to the L1 and refcount tables on open and to each L2 table on first load.
def past_end(offset: int, size: int, file_size: int, cluster_size: int) -> bool:
    """qemu's rule: does the region ``[offset, offset + size)`` end a cluster or more past EOF?"""
    return offset + size - file_size >= cluster_size


def first_table_past_end(table: array, mask: int, file_size: int, cluster_size: int) -> tuple[int, int] | None:
    """``(index, offset)`` of the first entry of an L1 or refcount table whose one-cluster
    table (L2 table, refcount block) lies past the end of the file, or None.

    ``mask`` extracts the offset (``L1E_OFFSET_MASK``, ``REFT_OFFSET_MASK``); 0 is unallocated.
    """
    for i, e in enumerate(table):
        off = e & mask
        if off and past_end(off, cluster_size, file_size, cluster_size):
            return i, off
    return None


def first_data_past_end(l2: array, cluster_bits: int, extended_l2: bool,
                        file_size: int) -> tuple[int, int, int] | None:
    """``(entry index, host offset, size)`` of the first data cluster of an L2 table that lies
    past the end of the file, or None.

    Standard clusters count as one cluster at their offset; a compressed cluster counts as its
    512-byte sectors (qemu ``qcow2_parse_compressed_l2_entry``). With extended L2 entries the
    table holds (descriptor, bitmap) pairs: only descriptors are looked at.
    """
    cs = 1 << cluster_bits
    step = 2 if extended_l2 else 1
    comp = C.QCOW_OFLAG_COMPRESSED
    mask = C.L2E_OFFSET_MASK
    # fast pass (a table is 8,192 entries): only entries that might be past the end are decoded
    suspects = [i for i in range(0, len(l2), step) if l2[i] & comp or (l2[i] & mask) >= file_size]
    for i in suspects:
        e = l2[i]
        if e & comp:
            host, n = C.decode_compressed(e, cluster_bits)
            start, size = host & ~511, n + (host & 511)
            if past_end(start, size, file_size, cs):
                return i // step, host, size
        else:
            host = e & mask
            if host and past_end(host, cs, file_size, cs):
                return i // step, host, cs
    return None


def run_past_end(host: int, n: int, file_size: int, cluster_size: int) -> bool:
    """Does a contiguous host run ``[host, host + n)`` hold a cluster that starts at or past EOF?"""
    last_cluster = (host + n - 1) & ~(cluster_size - 1)
    return last_cluster >= file_size
