"""Creating qcow2 images: a new empty image, or an overlay over an existing image.

The layout is qemu-img's (FORMAT-NOTES B1.10): header in cluster 0, then the refcount table,
the refcount blocks covering all of this metadata, then the zeroed L1 table. Version 3 images
carry the feature name table; overlays always record the backing format (B1.8) and store the
backing name relative to the overlay's directory.
"""

from __future__ import annotations

import os
import struct

from nuwa.errors import InvalidInputError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.detect import open_disk, probe_format
from nuwa.formats.qcow2_header import Qcow2Header, build_header, feature_table_extension
from nuwa.formats.qcow2_refcount import set_entry


def _layout(size: int, cb: int, refcount_order: int, extended_l2: bool) -> tuple[int, int, int, int]:
    """(l1_size, l1_clusters, reftable_clusters, refblocks) for a fresh image."""
    cs = 1 << cb
    l2_bits, _ = C.l2_geometry(cb, extended_l2)
    l1_size = -(-size // (cs << l2_bits))
    l1_clusters = -(-l1_size * 8 // cs)
    rb_entries = C.refcount_geometry(cb, refcount_order)
    k = m = 1
    while True:
        total = 1 + k + m + l1_clusters
        m2 = -(-total // rb_entries)
        k2 = max(1, -(-m2 * 8 // cs))
        if (m2, k2) == (m, k):
            return l1_size, l1_clusters, k, m
        m, k = m2, k2


def create_qcow2(path, size: int, cluster_size: int = 65536, compression_type: str | None = None, *,
                 version: int = 3, refcount_bits: int = 16, extended_l2: bool = False,
                 lazy_refcounts: bool = False, backing_file: str | None = None,
                 backing_format: str | None = None) -> str:
    """Create (or overwrite) ``path`` as an empty qcow2 image of ``size`` guest bytes.

    ``backing_file`` is stored verbatim (see ``create_overlay`` for the usual way to make an
    overlay). Returns the path.
    """
    path = os.fspath(path)
    if size < 0 or size > C.QCOW_MAX_SIZE:
        raise InvalidInputError(f"image size {size} is out of range", where=path)
    cb = cluster_size.bit_length() - 1
    if cluster_size != 1 << cb or not C.MIN_CLUSTER_BITS <= cb <= C.MAX_CLUSTER_BITS:
        raise InvalidInputError(f"cluster size {cluster_size} must be a power of two from 512 to 2 MiB", where=path)
    order = refcount_bits.bit_length() - 1
    if refcount_bits != 1 << order or order > 6:
        raise InvalidInputError(f"refcount_bits {refcount_bits} must be a power of two up to 64", where=path)
    ctype = {None: C.COMPRESSION_ZLIB, "zlib": C.COMPRESSION_ZLIB, "zstd": C.COMPRESSION_ZSTD}.get(compression_type)
    if ctype is None:
        raise InvalidInputError(f"unknown compression type {compression_type!r} (zlib or zstd)", where=path)
    if version == 2 and (order != 4 or extended_l2 or lazy_refcounts or ctype != C.COMPRESSION_ZLIB):
        raise InvalidInputError("version 2 (compat=0.10) images have 16-bit refcounts, zlib and no "
                                "extended L2 or lazy refcounts", where=path)
    if version not in (2, 3):
        raise InvalidInputError(f"qcow2 version {version} (2 or 3)", where=path)
    if extended_l2 and cb < 14:
        raise InvalidInputError("extended L2 needs clusters of at least 16 KiB", where=path)
    l1_size, l1_clusters, k, m = _layout(size, cb, order, extended_l2)
    cs = 1 << cb
    if l1_size * 8 > C.QCOW_MAX_L1_SIZE:
        raise InvalidInputError(f"size {size} needs an L1 table beyond qemu's limit; use bigger clusters", where=path)
    incompat = 0
    if ctype != C.COMPRESSION_ZLIB:
        incompat |= C.QCOW2_INCOMPAT_COMPRESSION
    if extended_l2:
        incompat |= C.QCOW2_INCOMPAT_EXTL2
    h = Qcow2Header(
        version=version, backing_file_offset=0, backing_file_size=0, cluster_bits=cb, size=size, crypt_method=0,
        l1_size=l1_size, l1_table_offset=(1 + k + m) * cs if l1_size else 0,
        refcount_table_offset=cs, refcount_table_clusters=k, nb_snapshots=0, snapshots_offset=0,
        incompatible_features=incompat, compatible_features=C.QCOW2_COMPAT_LAZY_REFCOUNTS if lazy_refcounts else 0,
        autoclear_features=0, refcount_order=order,
        header_length=C.QCOW_HEADER_V3_QEMU_LENGTH if version == 3 else C.QCOW_HEADER_V2_SIZE,
        compression_type=ctype, backing_file=backing_file)
    if backing_file and backing_format:
        h.extensions.append((C.QCOW2_EXT_MAGIC_BACKING_FORMAT, backing_format.encode()))
    if version == 3:
        h.extensions.append((C.QCOW2_EXT_MAGIC_FEATURE_TABLE, feature_table_extension()))
    if backing_file and len(backing_file.encode("utf-8", "surrogateescape")) > C.QCOW_MAX_BACKING_FILE_NAME:
        raise InvalidInputError("backing file name longer than 1023 bytes", where=path)
    header = build_header(h)

    total = 1 + k + m + l1_clusters
    table = struct.pack(f">{m}Q", *[(1 + k + i) * cs for i in range(m)])
    blocks = bytearray(m * cs)
    for ci in range(total):
        # the blocks are contiguous and full, so cluster ci is entry ci of their concatenation
        set_entry(blocks, ci, order, 1)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        os.pwrite(fd, header, 0)
        os.pwrite(fd, table, cs)
        os.pwrite(fd, bytes(blocks), (1 + k) * cs)
        os.ftruncate(fd, total * cs)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def backing_reference(path: str, backing_path: str) -> str:
    """The name to store for ``backing_path`` in an overlay at ``path``: relative when possible."""
    overlay_dir = os.path.dirname(os.path.abspath(path))
    target = os.path.abspath(backing_path)
    try:
        rel = os.path.relpath(target, overlay_dir)
    except ValueError:  # different drives (not on POSIX)
        return target
    if ":" in rel.split("/", 1)[0]:
        rel = "./" + rel  # "a:b" would read as a protocol name
    return rel


def create_overlay(path, backing_path, backing_format: str | None = None, *, cluster_size: int = 65536,
                   extended_l2: bool = False, compression_type: str | None = None,
                   backing_size: int | None = None) -> str:
    """Create ``path`` as an empty qcow2 overlay of ``backing_path`` (same guest size).

    The backing format is detected from content unless given, and recorded in the backing
    format extension; the backing name is stored relative to the overlay's directory.
    ``backing_size``: the backing file's guest size when the caller knows it (many overlays
    of one file), else it is opened to read it.
    """
    path, backing_path = os.fspath(path), os.fspath(backing_path)
    if os.path.exists(path) and os.path.exists(backing_path) and os.path.samefile(path, backing_path):
        raise InvalidInputError("the overlay would overwrite its own backing file", where=path)
    detected = probe_format(backing_path)
    fmt = backing_format or detected
    if fmt not in ("qcow2", "raw"):
        raise InvalidInputError(f"backing format {fmt!r} is not supported (qcow2 or raw)", where=backing_path)
    if fmt == "qcow2" and detected != "qcow2":
        raise InvalidInputError("backing file is not a qcow2 image", where=backing_path)
    size = backing_size
    if size is None:
        with open_disk(backing_path, format=fmt) as b:
            size = b.size
    return create_qcow2(path, size, cluster_size, compression_type, extended_l2=extended_l2,
                        backing_file=backing_reference(path, backing_path), backing_format=fmt)
