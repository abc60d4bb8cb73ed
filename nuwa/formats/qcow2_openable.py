"""Would qemu open this image? The header checks of qemu's open that reading does not need.

Nuwa's reader is lenient where the content can still be read (DESIGN: read-only commands keep
working on a damaged image wherever they can). Writing is another matter: an image that qemu
refuses to open (``qcow2_do_open`` and ``qcow2_read_extensions`` in qemu ``block/qcow2.c``) is a
damaged image, and Nuwa does not write into it. The checks here are the ones ``parse_header``
does not already make; each names the header field at fault.
"""

from __future__ import annotations

import struct

from nuwa.formats import c_qcow2 as C

INT64_MAX = (1 << 63) - 1
BACKING_FORMAT_MAX = 1023  # qemu keeps the name in a 1024-byte buffer with its NUL
BITMAPS_EXT_SIZE = 24
QCOW2_MAX_BITMAPS = 65535
QCOW2_MAX_BITMAP_DIRECTORY_SIZE = 64 * 1024 * 1024


def _table_place_ok(offset: int, size: int, cluster_size: int) -> bool:
    """qemu's ``qcow2_validate_table`` place rule, applied even to an empty table."""
    return offset % cluster_size == 0 and offset <= INT64_MAX - size


def qemu_open_refusal(h) -> tuple[str, str] | None:
    """``(message, where)`` when qemu would not open the image with header ``h``, else None."""
    cs = h.cluster_size
    if not h.nb_snapshots and not _table_place_ok(h.snapshots_offset, 0, cs):
        return (f"snapshots_offset 0x{h.snapshots_offset:x} is not a cluster-aligned offset below 2^63",
                "qcow2 header @0x40 (snapshots_offset)")
    if not h.l1_size and not _table_place_ok(h.l1_table_offset, 0, cs):
        return (f"l1_table_offset 0x{h.l1_table_offset:x} is not a cluster-aligned offset below 2^63",
                "qcow2 header @0x28 (l1_table_offset)")
    if h.autoclear_features & C.QCOW2_AUTOCLEAR_DATA_FILE_RAW and not h.incompatible_features & C.QCOW2_INCOMPAT_DATA_FILE:
        return ("autoclear bit 1 (raw external data) is set but the image has no external data file",
                "qcow2 header @0x58 (autoclear_features)")
    for magic, data in h.extensions:
        problem = _extension_problem(h, magic, data)
        if problem:
            return problem, f"qcow2 header extension 0x{magic:08x}"
    return None


def _extension_problem(h, magic: int, data: bytes) -> str | None:
    if magic == C.QCOW2_EXT_MAGIC_BACKING_FORMAT and len(data) > BACKING_FORMAT_MAX:
        return f"backing format name of {len(data)} bytes (at most {BACKING_FORMAT_MAX})"
    if magic == C.QCOW2_EXT_MAGIC_CRYPTO_HEADER and h.crypt_method != C.CRYPT_LUKS:
        return f"encryption header pointer in an image whose crypt_method is {h.crypt_method}, not LUKS"
    if magic != C.QCOW2_EXT_MAGIC_BITMAPS:
        return None
    if len(data) != BITMAPS_EXT_SIZE:
        return f"bitmaps extension of {len(data)} bytes (it has {BITMAPS_EXT_SIZE})"
    if not h.autoclear_features & C.QCOW2_AUTOCLEAR_BITMAPS:
        return None  # qemu takes the bitmaps for inconsistent and opens the image
    nb, reserved, dir_size, dir_off = struct.unpack(">IIQQ", data)
    if reserved:
        return "bitmaps extension: the reserved field is not zero"
    if not 0 < nb <= QCOW2_MAX_BITMAPS:
        return f"bitmaps extension with {nb} bitmaps (1 to {QCOW2_MAX_BITMAPS})"
    if dir_off % h.cluster_size:
        return f"bitmap directory offset 0x{dir_off:x} is not cluster-aligned"
    if dir_size > QCOW2_MAX_BITMAP_DIRECTORY_SIZE:
        return f"bitmap directory of {dir_size} bytes (at most {QCOW2_MAX_BITMAP_DIRECTORY_SIZE})"
    return None
