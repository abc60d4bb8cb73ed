"""ext4 metadata checksums: one pure function per structure, plus set/verify wrappers.

Mirrors e2fsprogs ``lib/ext2fs/csum.c`` and the table in FORMAT-NOTES B2.9. Every function
takes bytes and returns an int; nothing here does I/O. The convention (FORMAT-NOTES B0): the
kernel and e2fsprogs chain a *raw* CRC32C register (no final inversion), while the ``crc32c``
package computes the standard CRC, so ``crc32c_raw(seed, d) = ~crc32c(d, ~seed)``.

The ``set_*`` helpers always zero the checksum field, compute, then store.
"""

from __future__ import annotations

import struct

from nuwa.fs.ext4 import crc as _crc32c  # the C extension alone (see crc.py)
from nuwa.fs.ext4.c_ext4 import (
    DX_NODE_COUNT_OFFSET,
    DX_ROOT_COUNT_OFFSET,
    GD_CHECKSUM_OFFSET,
    I_CHECKSUM_HI_OFFSET,
    I_CHECKSUM_LO_OFFSET,
    XATTR_H_CHECKSUM_OFFSET,
)

_M32 = 0xFFFFFFFF
_crc = _crc32c.crc32c
_LE32 = struct.Struct("<I")
_LE64 = struct.Struct("<Q")


def crc32c_raw(seed: int, data) -> int:
    """The raw CRC32C register after ``data``, starting from ``seed`` (no final xor)."""
    return ~_crc(data, ~seed & _M32) & _M32


def _seed_ino_gen(csum_seed: int, ino: int, gen: int) -> int:
    return crc32c_raw(crc32c_raw(csum_seed, _LE32.pack(ino)), _LE32.pack(gen))


def uuid_seed(uuid: bytes) -> int:
    """The checksum seed derived from the filesystem UUID (used without metadata_csum_seed)."""
    return crc32c_raw(_M32, uuid)


# ---- crc16 (gdt_csum without metadata_csum): e2fsprogs lib/ext2fs/crc16.c, poly 0x8005 reflected
def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC16 = _crc16_table()


def crc16(crc: int, data) -> int:
    """CRC-16 (ANSI, reflected) continuing from ``crc``."""
    for b in bytes(data):
        crc = (crc >> 8) ^ _CRC16[(crc ^ b) & 0xFF]
    return crc & 0xFFFF


# ---- superblock
def superblock_csum(sb: bytes) -> int:
    """``s_checksum``: raw CRC32C from ~0 over the first 0x3FC bytes."""
    return crc32c_raw(_M32, sb[:0x3FC])


# ---- group descriptors
def group_desc_csum_crc32c(csum_seed: int, group: int, desc: bytes) -> int:
    """metadata_csum ``bg_checksum``: low 16 bits of crc32c(seed, le32 group, desc with csum 0)."""
    d = bytearray(desc)
    d[GD_CHECKSUM_OFFSET : GD_CHECKSUM_OFFSET + 2] = b"\0\0"
    return crc32c_raw(crc32c_raw(csum_seed, _LE32.pack(group)), d) & 0xFFFF


def group_desc_csum_crc16(uuid: bytes, group: int, desc: bytes) -> int:
    """gdt_csum (uninit_bg) ``bg_checksum``: crc16 over uuid, le32 group, desc minus the field."""
    crc = crc16(0xFFFF, uuid)
    crc = crc16(crc, _LE32.pack(group))
    crc = crc16(crc, desc[:GD_CHECKSUM_OFFSET])
    if len(desc) > GD_CHECKSUM_OFFSET + 2:
        crc = crc16(crc, desc[GD_CHECKSUM_OFFSET + 2 :])
    return crc


# ---- bitmaps (no group number: FORMAT-NOTES B2.9)
def bitmap_csum(csum_seed: int, bitmap, nbytes: int) -> int:
    """Block or inode bitmap checksum over its first ``nbytes`` (per_group / 8) bytes."""
    return crc32c_raw(csum_seed, bytes(bitmap[:nbytes]))


# ---- inodes
def inode_csum(csum_seed: int, ino: int, raw: bytes, has_hi: bool) -> int:
    """Inode checksum over the whole record with both checksum fields zero."""
    gen = _LE32.unpack_from(raw, 0x64)[0]
    r = bytearray(raw)
    r[I_CHECKSUM_LO_OFFSET : I_CHECKSUM_LO_OFFSET + 2] = b"\0\0"
    if has_hi:
        r[I_CHECKSUM_HI_OFFSET : I_CHECKSUM_HI_OFFSET + 2] = b"\0\0"
    crc = crc32c_raw(_seed_ino_gen(csum_seed, ino, gen), r)
    return crc if has_hi else crc & 0xFFFF


def inode_has_hi(raw: bytes) -> bool:
    """Whether the record stores ``i_checksum_hi`` (large inode with i_extra_isize >= 4)."""
    return len(raw) > 128 and struct.unpack_from("<H", raw, 0x80)[0] >= 4


def set_inode_csum(csum_seed: int, ino: int, raw: bytearray) -> None:
    """Store the inode checksum into ``raw`` in place."""
    hi = inode_has_hi(raw)
    c = inode_csum(csum_seed, ino, raw, hi)
    struct.pack_into("<H", raw, I_CHECKSUM_LO_OFFSET, c & 0xFFFF)
    if hi:
        struct.pack_into("<H", raw, I_CHECKSUM_HI_OFFSET, c >> 16)


def verify_inode_csum(csum_seed: int, ino: int, raw: bytes) -> bool:
    """True if the stored checksum matches (an all-zero record is accepted, as e2fsprogs does)."""
    hi = inode_has_hi(raw)
    stored = struct.unpack_from("<H", raw, I_CHECKSUM_LO_OFFSET)[0]
    if hi:
        stored |= struct.unpack_from("<H", raw, I_CHECKSUM_HI_OFFSET)[0] << 16
    if stored == inode_csum(csum_seed, ino, raw, hi):
        return True
    return not any(raw)


# ---- extent blocks: tail at 12 + 12 * eh_max
def extent_block_csum(csum_seed: int, ino: int, gen: int, block: bytes) -> int:
    """Checksum of a non-root extent-tree block."""
    eh_max = struct.unpack_from("<H", block, 4)[0]
    return crc32c_raw(_seed_ino_gen(csum_seed, ino, gen), block[: 12 + 12 * eh_max])


def extent_tail_offset(block: bytes) -> int:
    """Byte offset of ``ext3_extent_tail`` in an extent block."""
    return 12 + 12 * struct.unpack_from("<H", block, 4)[0]


def set_extent_block_csum(csum_seed: int, ino: int, gen: int, block: bytearray) -> None:
    """Store the extent-block tail checksum in place."""
    off = extent_tail_offset(block)
    if off + 4 <= len(block):
        _LE32.pack_into(block, off, extent_block_csum(csum_seed, ino, gen, block))


def verify_extent_block_csum(csum_seed: int, ino: int, gen: int, block: bytes) -> bool:
    """True if the extent-block tail matches."""
    off = extent_tail_offset(block)
    if off + 4 > len(block):
        return False
    return _LE32.unpack_from(block, off)[0] == extent_block_csum(csum_seed, ino, gen, block)


# ---- linear directory leaves: tail in the last 12 bytes
def dirent_csum(csum_seed: int, ino: int, gen: int, block: bytes) -> int:
    """Checksum of a directory leaf block (covers everything before the 12-byte tail)."""
    return crc32c_raw(_seed_ino_gen(csum_seed, ino, gen), block[: len(block) - 12])


def set_dirent_csum(csum_seed: int, ino: int, gen: int, block: bytearray) -> None:
    """Store the leaf tail checksum in place (the tail itself must already be present)."""
    _LE32.pack_into(block, len(block) - 4, dirent_csum(csum_seed, ino, gen, block))


def verify_dirent_csum(csum_seed: int, ino: int, gen: int, block: bytes) -> bool:
    """True if the leaf tail checksum matches."""
    return _LE32.unpack_from(block, len(block) - 4)[0] == dirent_csum(csum_seed, ino, gen, block)


# ---- htree nodes: dx_tail right after ``limit`` entries
def dx_csum(csum_seed: int, ino: int, gen: int, block: bytes, count_offset: int) -> int:
    """Checksum of a dx_root (count_offset 0x20) or dx_node (0x08) block."""
    limit, count = struct.unpack_from("<HH", block, count_offset)
    tail = count_offset + 8 * limit
    crc = crc32c_raw(_seed_ino_gen(csum_seed, ino, gen), block[: count_offset + 8 * count])
    return crc32c_raw(crc, bytes(block[tail : tail + 4]) + b"\0\0\0\0")


def dx_tail_offset(block: bytes, count_offset: int) -> int:
    """Byte offset of ``ext2_dx_tail`` (after ``limit`` entries)."""
    return count_offset + 8 * struct.unpack_from("<H", block, count_offset)[0]


def set_dx_csum(csum_seed: int, ino: int, gen: int, block: bytearray, count_offset: int) -> None:
    """Store the dx_tail checksum in place."""
    off = dx_tail_offset(block, count_offset)
    _LE32.pack_into(block, off + 4, dx_csum(csum_seed, ino, gen, block, count_offset))


def verify_dx_csum(csum_seed: int, ino: int, gen: int, block: bytes, count_offset: int) -> bool:
    """True if the dx_tail checksum matches."""
    off = dx_tail_offset(block, count_offset)
    if off + 8 > len(block):
        return False
    return _LE32.unpack_from(block, off + 4)[0] == dx_csum(csum_seed, ino, gen, block, count_offset)


DX_ROOT = DX_ROOT_COUNT_OFFSET
DX_NODE = DX_NODE_COUNT_OFFSET


# ---- xattr blocks: seeded with the le64 block number, not an inode
def xattr_block_csum(csum_seed: int, blocknr: int, block: bytes) -> int:
    """Checksum of an extended-attribute block."""
    b = bytearray(block)
    b[XATTR_H_CHECKSUM_OFFSET : XATTR_H_CHECKSUM_OFFSET + 4] = b"\0\0\0\0"
    return crc32c_raw(crc32c_raw(csum_seed, _LE64.pack(blocknr)), b)


def set_xattr_block_csum(csum_seed: int, blocknr: int, block: bytearray) -> None:
    """Store ``h_checksum`` in place."""
    _LE32.pack_into(block, XATTR_H_CHECKSUM_OFFSET, xattr_block_csum(csum_seed, blocknr, block))


def verify_xattr_block_csum(csum_seed: int, blocknr: int, block: bytes) -> bool:
    """True if ``h_checksum`` matches."""
    return _LE32.unpack_from(block, XATTR_H_CHECKSUM_OFFSET)[0] == xattr_block_csum(csum_seed, blocknr, block)


# ---- orphan-file blocks (e2fsprogs lib/ext2fs/orphan.c)
def orphan_block_csum(csum_seed: int, ino: int, gen: int, blocknr: int, block: bytes) -> int:
    """Checksum of an orphan-file block (physical block number included)."""
    crc = crc32c_raw(_seed_ino_gen(csum_seed, ino, gen), _LE64.pack(blocknr))
    return crc32c_raw(crc, block[: len(block) - 8])
