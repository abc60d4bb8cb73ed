"""Extended attributes: in-inode area and xattr blocks, plus POSIX ACL format conversion.

Layouts (kernel attributes.rst; FORMAT-NOTES B2.8): the in-inode area starts at
``128 + i_extra_isize`` with magic 0xEA020000, entries follow and values are packed from the
end of the inode (offsets relative to the first entry); an xattr block has a 32-byte header,
entries sorted by (index, name length, name), values packed from the block end (offsets from
the block start). Lists end with four zero bytes. Pure functions: the engine does the I/O.

ACLs: ext4 stores ``system.posix_acl_*`` in its own version-1 format with short entries for
USER_OBJ/GROUP_OBJ/MASK/OTHER; the VFS (getfattr, setfacl) uses version 2 with 8-byte entries.
"""

from __future__ import annotations

import errno
import struct

from nuwa.errors import CorruptImageError, fs_error
from nuwa.fs.ext4.c_ext4 import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_UNDEFINED_ID,
    ACL_USER,
    ACL_USER_OBJ,
    EXT2_EXT_ATTR_HEADER,
    EXT2_EXT_ATTR_MAGIC,
    EXT4_ACL_VERSION,
    POSIX_ACL_XATTR_VERSION,
    S_ACL_ENTRY,
    S_ACL_HEADER,
    S_ACL_SHORT,
    S_XATTR_ENTRY,
    XATTR_PREFIXES,
)

_M = 0xFFFFFFFF
ENTRY_SIZE = 16


def entry_len(name_len: int) -> int:
    """Bytes an entry header plus name takes (padded to 4)."""
    return (ENTRY_SIZE + name_len + 3) & ~3


def value_len(size: int) -> int:
    """Bytes a value takes (padded to 4)."""
    return (size + 3) & ~3


# ---- names -----------------------------------------------------------------------------------
def split_name(full: str) -> tuple[int, bytes]:
    """``(e_name_index, suffix)`` for a full attribute name; EOPNOTSUPP for unknown namespaces."""
    raw = full.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > 255:  # kernel setxattr/getxattr copy the name first: ERANGE
        raise fs_error(errno.ERANGE, None, "xattr name empty or too long")
    best = None
    for idx, prefix in XATTR_PREFIXES.items():
        p = prefix.encode()
        if raw.startswith(p) and (best is None or len(p) > len(XATTR_PREFIXES[best])):
            if idx in (2, 3, 8) and raw != p:
                continue
            best = idx
    if best is None:
        raise fs_error(errno.EOPNOTSUPP, None, f"unsupported xattr namespace: {full}")
    suffix = raw[len(XATTR_PREFIXES[best]):]
    if best in (1, 4, 6, 7) and not suffix:
        raise fs_error(errno.EINVAL, None, f"empty xattr name: {full}")
    if len(suffix) > 255:
        raise fs_error(errno.ERANGE, None, "xattr name too long")
    return best, suffix


def full_name(index: int, suffix: bytes) -> str:
    """The VFS name of an on-disk entry."""
    prefix = XATTR_PREFIXES.get(index)
    if prefix is None:
        return f"unknown{index}." + suffix.decode("utf-8", "surrogateescape")
    return prefix + suffix.decode("utf-8", "surrogateescape")


# ---- hashes (e2fsprogs ext2fs_ext_attr_hash_entry / block_rehash) ----------------------------
def entry_hash(name: bytes, value: bytes) -> int:
    """``e_hash`` of an entry (unsigned-char name variant)."""
    h = 0
    for c in name:
        h = ((h << 5) & _M) ^ (h >> 27) ^ c
    if value:
        padded = value + bytes(value_len(len(value)) - len(value))
        for (w,) in struct.iter_unpack("<I", padded):
            h = ((h << 16) & _M) ^ (h >> 16) ^ w
    return h


def entry_hash_signed(name: bytes, value: bytes) -> int:
    """``e_hash`` with the name bytes as signed chars (older kernels); accepted on read."""
    h = 0
    for c in name:
        sc = (c - 256) & _M if c >= 0x80 else c
        h = (((h << 5) & _M) ^ (h >> 27) ^ sc) & _M
    if value:
        padded = value + bytes(value_len(len(value)) - len(value))
        for (w,) in struct.iter_unpack("<I", padded):
            h = ((h << 16) & _M) ^ (h >> 16) ^ w
    return h


def block_hash(hashes: list[int]) -> int:
    """``h_hash`` of a block from its entries' hashes (0 if any entry hash is 0)."""
    h = 0
    for e in hashes:
        if e == 0:
            return 0
        h = ((h << 16) & _M) ^ (h >> 16) ^ e
    return h


# ---- decoding --------------------------------------------------------------------------------
def _parse_entries(buf, start: int, end: int, value_base: int, value_end: int, where: str,
                   read_inode_value=None) -> list[tuple[int, bytes, bytes]]:
    out = []
    off = start
    while off + 4 <= end and struct.unpack_from("<I", buf, off)[0] != 0:
        if off + ENTRY_SIZE > end:
            raise CorruptImageError(f"entry at offset {off} is truncated", where=where)
        nl, idx, voff, vinum, vsize, _h = S_XATTR_ENTRY.unpack_from(buf, off)
        name = bytes(buf[off + ENTRY_SIZE : off + ENTRY_SIZE + nl])
        if off + entry_len(nl) > end:
            raise CorruptImageError(f"entry name at offset {off} runs past the area", where=where)
        if vinum:
            if read_inode_value is None:
                raise CorruptImageError("value stored in an inode (ea_inode) is not supported", where=where)
            value = read_inode_value(vinum, vsize)
        else:
            a = value_base + voff
            if vsize and (a < off or a + vsize > value_end):
                raise CorruptImageError(f"value of entry at offset {off} lies outside the area "
                                        f"(offset {voff}, size {vsize})", where=where + ", field e_value_offs")
            value = bytes(buf[a : a + vsize])
        out.append((idx, name, value))
        off += entry_len(nl)
    return out


def parse_ibody(raw, extra_isize: int, where: str, read_inode_value=None) -> list[tuple[int, bytes, bytes]]:
    """Attributes stored in the inode record ``raw`` (empty if there is no in-inode area)."""
    start = 128 + extra_isize
    if len(raw) <= 128 or start + 4 > len(raw):
        return []
    if struct.unpack_from("<I", raw, start)[0] != EXT2_EXT_ATTR_MAGIC:
        return []
    first = start + 4
    return _parse_entries(raw, first, len(raw), first, len(raw), where + " in-inode xattrs", read_inode_value)


def parse_block(block, where: str, read_inode_value=None) -> tuple[dict, list[tuple[int, bytes, bytes]]]:
    """``(header, attributes)`` of an xattr block."""
    hdr = EXT2_EXT_ATTR_HEADER.unpack(block, 0)
    if hdr["h_magic"] != EXT2_EXT_ATTR_MAGIC:
        raise CorruptImageError(f"bad magic 0x{hdr['h_magic']:08x}", where=where + ", field h_magic")
    if hdr["h_blocks"] != 1:
        raise CorruptImageError(f"h_blocks {hdr['h_blocks']} is not 1", where=where + ", field h_blocks")
    return hdr, _parse_entries(block, 32, len(block), 0, len(block), where, read_inode_value)


# ---- encoding --------------------------------------------------------------------------------
def ibody_space(isz: int, extra_isize: int) -> int:
    """Bytes available for in-inode attributes (magic included)."""
    return max(0, isz - 128 - extra_isize)


def fits_ibody(attrs, space: int) -> bool:
    """Whether ``attrs`` fit an in-inode area of ``space`` bytes."""
    if not attrs:
        return True
    need = 4 + 4 + sum(entry_len(len(n)) + value_len(len(v)) for _, n, v in attrs)
    return need <= space


def encode_ibody(attrs, space: int) -> bytes:
    """The in-inode area (``space`` bytes) holding ``attrs``; all zero if there are none."""
    area = bytearray(space)
    if not attrs:
        return bytes(area)
    struct.pack_into("<I", area, 0, EXT2_EXT_ATTR_MAGIC)
    first = 4
    off = first
    vend = space
    for idx, name, value in attrs:
        vend -= value_len(len(value))
        S_XATTR_ENTRY.pack_into(area, off, len(name), idx, (vend - first) if value else 0, 0, len(value),
                                entry_hash(name, value))
        area[off + ENTRY_SIZE : off + ENTRY_SIZE + len(name)] = name
        area[vend : vend + len(value)] = value
        off += entry_len(len(name))
    if off + 4 > vend:
        raise AssertionError("in-inode xattrs do not fit")
    return bytes(area)


def sort_key(a) -> tuple:
    """Block entry order: (name_index, name_len, name)."""
    return (a[0], len(a[1]), a[1])


def fits_block(attrs, bs: int) -> bool:
    """Whether ``attrs`` fit one xattr block."""
    need = 32 + 4 + sum(entry_len(len(n)) + value_len(len(v)) for _, n, v in attrs)
    return need <= bs


def encode_block(attrs, bs: int, refcount: int) -> bytearray:
    """An xattr block (checksum left zero) holding ``attrs`` sorted as the kernel keeps them."""
    attrs = sorted(attrs, key=sort_key)
    block = bytearray(bs)
    off = 32
    vend = bs
    hashes = []
    for idx, name, value in attrs:
        vend -= value_len(len(value))
        h = entry_hash(name, value)
        hashes.append(h)
        S_XATTR_ENTRY.pack_into(block, off, len(name), idx, vend if value else 0, 0, len(value), h)
        block[off + ENTRY_SIZE : off + ENTRY_SIZE + len(name)] = name
        block[vend : vend + len(value)] = value
        off += entry_len(len(name))
    if off + 4 > vend:
        raise AssertionError("xattr block overflow")
    EXT2_EXT_ATTR_HEADER.pack_into(block, 0, {"h_magic": EXT2_EXT_ATTR_MAGIC, "h_refcount": refcount,
                                              "h_blocks": 1, "h_hash": block_hash(hashes), "h_checksum": 0,
                                              "h_reserved": bytes(12)})
    return block


# ---- POSIX ACLs ------------------------------------------------------------------------------
def acl_disk_to_vfs(value: bytes, where: str) -> bytes:
    """ext4 on-disk ACL (version 1) to the VFS xattr form (version 2)."""
    if len(value) < 4 or S_ACL_HEADER.unpack_from(value, 0)[0] != EXT4_ACL_VERSION:
        raise CorruptImageError("ACL header is not ext4 version 1", where=where)
    out = [S_ACL_HEADER.pack(POSIX_ACL_XATTR_VERSION)]
    off = 4
    while off < len(value):
        if off + 4 > len(value):
            raise CorruptImageError(f"ACL entry at offset {off} is truncated", where=where)
        tag, perm = S_ACL_SHORT.unpack_from(value, off)
        if tag in (ACL_USER, ACL_GROUP):
            if off + 8 > len(value):
                raise CorruptImageError(f"ACL entry at offset {off} is truncated", where=where)
            eid = struct.unpack_from("<I", value, off + 4)[0]
            off += 8
        elif tag in (ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER):
            eid = ACL_UNDEFINED_ID
            off += 4
        else:
            raise CorruptImageError(f"ACL tag 0x{tag:x} is not valid", where=where)
        out.append(S_ACL_ENTRY.pack(tag, perm, eid))
    return b"".join(out)


def acl_vfs_to_disk(value: bytes) -> bytes:
    """VFS ACL (version 2) to the ext4 on-disk form; EINVAL for malformed input."""
    if len(value) < 4 or (len(value) - 4) % 8 or S_ACL_HEADER.unpack_from(value, 0)[0] != POSIX_ACL_XATTR_VERSION:
        raise fs_error(errno.EINVAL, None, "malformed POSIX ACL")
    out = [S_ACL_HEADER.pack(EXT4_ACL_VERSION)]
    for tag, perm, eid in struct.iter_unpack("<HHI", value[4:]):
        if tag in (ACL_USER, ACL_GROUP):
            out.append(S_ACL_ENTRY.pack(tag, perm, eid))
        elif tag in (ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER):
            out.append(S_ACL_SHORT.pack(tag, perm))
        else:
            raise fs_error(errno.EINVAL, None, "malformed POSIX ACL")
    return b"".join(out)


def acl_chmod(disk_value: bytes, mode: int) -> bytes:
    """Update an on-disk access ACL for a new mode (kernel ``posix_acl_chmod``)."""
    out = bytearray(disk_value)
    off = 4
    has_mask = False
    group_obj_at = None
    while off + 4 <= len(out):
        tag, _perm = S_ACL_SHORT.unpack_from(out, off)
        if tag == ACL_USER_OBJ:
            struct.pack_into("<H", out, off + 2, (mode >> 6) & 7)
        elif tag == ACL_OTHER:
            struct.pack_into("<H", out, off + 2, mode & 7)
        elif tag == ACL_MASK:
            struct.pack_into("<H", out, off + 2, (mode >> 3) & 7)
            has_mask = True
        elif tag == ACL_GROUP_OBJ:
            group_obj_at = off
        off += 8 if tag in (ACL_USER, ACL_GROUP) else 4
    if not has_mask and group_obj_at is not None:
        struct.pack_into("<H", out, group_obj_at + 2, (mode >> 3) & 7)
    return bytes(out)
