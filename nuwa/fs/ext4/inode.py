"""Inodes: decoding and encoding records of 128 or more bytes, times, and the inode table.

An :class:`Inode` keeps the raw record (so unknown fields and the in-inode xattr area survive)
and exposes the fields a writer changes as plain attributes; :meth:`Inode.encode` packs them
back. :class:`InodeTable` reads records through the block cache, verifies checksums, caches
decoded inodes (bounded) and writes dirty ones back in the ordered flush.
Layout: kernel inodes.rst; FORMAT-NOTES B2.5.
"""

from __future__ import annotations

import stat as _stat
import struct
from collections import OrderedDict

from nuwa.errors import CorruptImageError
from nuwa.fs.ext4 import csum
from nuwa.fs.ext4.cache import ORDER_INODE, BlockCache
from nuwa.fs.ext4.c_ext4 import (
    EXT2_BG_INODE_UNINIT,
    EXT2_INODE,
    EXT2_INODE_EXTRA,
    EXT4_HUGE_FILE_FL,
)

_S128 = EXT2_INODE.struct
_SEXTRA = EXT2_INODE_EXTRA.struct
_X_CTIME, _X_MTIME, _X_ATIME, _X_CRTIME, _X_CRTIME_EXTRA = (
    EXT2_INODE_EXTRA.names.index(n) for n in ("i_ctime_extra", "i_mtime_extra", "i_atime_extra", "i_crtime",
                                               "i_crtime_extra"))
_NS = 1_000_000_000


def decode_time(sec: int, extra: int | None) -> int:
    """Nanoseconds since the epoch from a 32-bit seconds field and its ``_extra`` word."""
    s = sec - (1 << 32) if sec & 0x80000000 else sec
    if extra is None:
        return s * _NS
    s += (extra & 3) << 32
    return s * _NS + (extra >> 2)


#: ext4's timestamp limits (kernel fs/ext4/ext4.h EXT4_TIMESTAMP_MIN, EXT4_EXTRA_TIMESTAMP_MAX,
#: EXT4_NON_EXTRA_TIMESTAMP_MAX): the extra epoch bits reach year 2446
TIME_MIN = -(1 << 31)
TIME_MAX_EXTRA = (1 << 34) - 1 - (1 << 31)
TIME_MAX_NON_EXTRA = (1 << 31) - 1


def clamp_time(ns: int, extra: bool = True) -> int:
    """``ns`` clamped like the VFS ``timestamp_truncate``: seconds into ext4's range, the
    nanoseconds dropped at either end of it, and always without ``extra`` time fields."""
    s, n = divmod(ns, _NS)
    hi = TIME_MAX_EXTRA if extra else TIME_MAX_NON_EXTRA
    if s <= TIME_MIN:
        return TIME_MIN * _NS
    if s >= hi:
        return hi * _NS
    return s * _NS + (n if extra else 0)


def encode_time(ns: int) -> tuple[int, int]:
    """``(seconds field, extra word)`` for nanoseconds since the epoch (clamped to the range)."""
    s, n = divmod(clamp_time(ns), _NS)
    lo = s & 0xFFFFFFFF
    slo = lo - (1 << 32) if lo & 0x80000000 else lo
    epoch = ((s - slo) >> 32) & 3
    return lo, (n << 2) | epoch


class Inode:
    """A decoded inode. Times are integer nanoseconds; sizes and ids are full width."""

    __slots__ = ("ino", "raw", "mode", "uid", "gid", "size", "links", "blocks512", "flags", "i_block",
                 "generation", "file_acl", "atime", "ctime", "mtime", "crtime", "dtime", "extra_isize",
                 "_huge")

    def __init__(self, ino: int, raw: bytes, huge_file: bool = True, block_size: int = 4096):
        self.ino = ino
        self.raw = bytearray(raw)
        f = _S128.unpack_from(raw, 0)
        (mode, uid, size_lo, atime, ctime, mtime, dtime, gid, links, blocks_lo, flags, _ver, iblock,
         gen, acl_lo, size_hi, _faddr, blocks_hi, acl_hi, uid_hi, gid_hi, _cs, _res) = f
        self._huge = huge_file
        self.mode = mode
        self.uid = uid | uid_hi << 16
        self.gid = gid | gid_hi << 16
        self.size = size_lo | size_hi << 32
        self.links = links
        blocks = blocks_lo | ((blocks_hi << 32) if huge_file else 0)
        if flags & EXT4_HUGE_FILE_FL and huge_file:
            blocks *= block_size // 512  # HUGE_FILE_FL counts filesystem blocks; we store 512s
        self.blocks512 = blocks
        self.flags = flags
        self.i_block = iblock
        self.generation = gen
        self.file_acl = acl_lo | acl_hi << 32
        self.dtime = dtime
        self.extra_isize = 0
        ext = None
        if len(raw) > 128:
            self.extra_isize = struct.unpack_from("<H", raw, 128)[0]
            if 128 + self.extra_isize <= len(raw) and self.extra_isize >= 32:
                ext = _SEXTRA.unpack_from(raw, 128)  # a tuple: every inode read decodes one
        if ext is not None:
            self.atime = decode_time(atime, ext[_X_ATIME])
            self.ctime = decode_time(ctime, ext[_X_CTIME])
            self.mtime = decode_time(mtime, ext[_X_MTIME])
            self.crtime = decode_time(ext[_X_CRTIME], ext[_X_CRTIME_EXTRA])
        else:
            self.atime = decode_time(atime, None)
            self.ctime = decode_time(ctime, None)
            self.mtime = decode_time(mtime, None)
            self.crtime = 0

    # ---- derived
    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return _stat.S_ISREG(self.mode)

    @property
    def is_lnk(self) -> bool:
        return _stat.S_ISLNK(self.mode)

    @property
    def has_extra_times(self) -> bool:
        return self.extra_isize >= 24 and len(self.raw) >= 128 + self.extra_isize

    # ---- encoding
    def encode(self) -> bytearray:
        """The record with every attribute packed in (checksum not yet set)."""
        raw = self.raw
        atime, a_x = encode_time(self.atime)
        ctime, c_x = encode_time(self.ctime)
        mtime, m_x = encode_time(self.mtime)
        blocks = self.blocks512
        flags = self.flags & ~EXT4_HUGE_FILE_FL
        if blocks >= 1 << 48:
            raise CorruptImageError("file too large for i_blocks", where=f"ext4 inode {self.ino}")
        old = _S128.unpack_from(raw, 0)
        _S128.pack_into(
            raw, 0, self.mode, self.uid & 0xFFFF, self.size & 0xFFFFFFFF, atime, ctime, mtime, self.dtime,
            self.gid & 0xFFFF, self.links, blocks & 0xFFFFFFFF, flags, old[11], bytes(self.i_block),
            self.generation, self.file_acl & 0xFFFFFFFF, self.size >> 32, old[16], blocks >> 32 & 0xFFFF,
            self.file_acl >> 32 & 0xFFFF, self.uid >> 16 & 0xFFFF, self.gid >> 16 & 0xFFFF, old[21], old[22])
        if len(raw) > 128 and self.extra_isize >= 4:
            off = 128
            e = self.extra_isize
            if e >= 8:
                struct.pack_into("<I", raw, off + 4, c_x)
            if e >= 12:
                struct.pack_into("<I", raw, off + 8, m_x)
            if e >= 16:
                struct.pack_into("<I", raw, off + 12, a_x)
            if e >= 24:
                cr, cr_x = encode_time(self.crtime)
                struct.pack_into("<II", raw, off + 16, cr, cr_x)
        return raw


class InodeTable:
    """Reads and writes inode records; a bounded cache of decoded inodes plus a dirty set."""

    def __init__(self, sb, groups, cache: BlockCache, forensic: bool = False, max_cached: int = 20000):
        self.sb = sb
        self.groups = groups
        self.cache = cache
        self.forensic = forensic
        self.isz = sb.inode_size
        self.bs = sb.block_size
        self.ipg = sb.inodes_per_group
        self.huge = sb.ro_compat("huge_file")
        self._cache: OrderedDict[int, Inode] = OrderedDict()
        self.dirty: dict[int, Inode] = {}
        self.max_cached = max_cached
        # read per inode on every miss; fixed for the life of the volume (as Volume.seed)
        self._seed = sb.csum_seed if sb.metadata_csum else None
        self._gdt_csum = sb.gdt_csum

    def location(self, ino: int) -> tuple[int, int]:
        """``(block, byte offset in block)`` of inode ``ino``."""
        if not 1 <= ino <= self.sb.inodes_count:
            raise CorruptImageError(f"inode number {ino} is out of range (1..{self.sb.inodes_count})",
                                    where="ext4 inode table")
        g, idx = divmod(ino - 1, self.ipg)
        blk, off = divmod(idx * self.isz, self.bs)
        return self.groups.descs[g].inode_table + blk, off

    def get(self, ino: int) -> Inode:
        """The decoded inode ``ino`` (checksum verified)."""
        # every dirty inode is also in _cache, as the same object (new, mark_dirty; eviction
        # keeps dirty ones), so one lookup answers both
        node = self._cache.get(ino)
        if node is not None:
            self._cache.move_to_end(ino)
            return node
        blk, off = self.location(ino)
        g, idx = divmod(ino - 1, self.ipg)
        if self.groups.uninit(g, EXT2_BG_INODE_UNINIT) or (
                self._gdt_csum and idx >= self.ipg - self.groups.descs[g].itable_unused):
            raw = bytes(self.isz)  # never initialised: reads as an unused inode
        else:
            raw = bytes(self.cache.get(blk)[off : off + self.isz])
            if self._seed is not None and not csum.verify_inode_csum(self._seed, ino, raw):
                if not self.forensic:
                    raise CorruptImageError("inode checksum mismatch", where=f"ext4 inode {ino} (block {blk})")
        node = Inode(ino, raw, self.huge, self.bs)
        self._cache[ino] = node
        if len(self._cache) > self.max_cached:
            for k in list(self._cache)[: self.max_cached // 4]:
                if k not in self.dirty:
                    del self._cache[k]
        return node

    def new(self, ino: int) -> Inode:
        """A zeroed record for a freshly allocated inode (caller sets fields, then marks dirty)."""
        raw = bytearray(self.isz)
        if self.isz > 128:
            struct.pack_into("<H", raw, 128, self._new_extra_isize())
        node = Inode(ino, bytes(raw), self.huge, self.bs)  # the caller sets i_generation
        self._cache[ino] = node
        self.dirty[ino] = node
        return node

    def _new_extra_isize(self) -> int:
        """``i_extra_isize`` of a new inode: the superblock's ``s_want_extra_isize`` when e2fsck
        accepts it (a multiple of 4, from 4 up to what the record leaves past 128 bytes), else
        32 (the kernel's own record past 128 bytes) within that room. A superblock asking for
        33 made the writer create inodes e2fsck calls invalid (and the kernel's iget refuses:
        "bad extra_isize")."""
        room = self.isz - 128
        want = self.sb.f["s_want_extra_isize"]
        if want and want % 4 == 0 and 4 <= want <= room:
            return want
        return min(32, room)

    def mark_dirty(self, node: Inode) -> None:
        """Schedule ``node`` for writing in the next flush."""
        self.dirty[node.ino] = node
        self._cache[node.ino] = node

    def zero_records(self, g: int, lo: int, hi: int) -> None:
        """Zero inode records ``lo..hi-1`` of group ``g`` (a raised itable high-water mark)."""
        for idx in range(lo, hi):
            ino = g * self.ipg + idx + 1
            blk, off = self.location(ino)
            b = self.cache.get(blk)
            b[off : off + self.isz] = bytes(self.isz)
            self.cache.mark_dirty(blk, ORDER_INODE)

    def flush(self) -> None:
        """Encode dirty inodes into their table blocks (checksums set) in the cache."""
        seed = self.sb.csum_seed if self.sb.metadata_csum else None
        for ino in sorted(self.dirty):
            node = self.dirty[ino]
            raw = node.encode()
            if seed is not None:
                csum.set_inode_csum(seed, ino, raw)
            blk, off = self.location(ino)
            b = self.cache.get(blk)
            b[off : off + self.isz] = raw
            self.cache.mark_dirty(blk, ORDER_INODE)
        self.dirty.clear()
