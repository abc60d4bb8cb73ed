"""Pending orphans: finding them, refusing them read-only, processing them when writable.

An orphan is an inode the kernel was still working on when the filesystem stopped: a file
unlinked while open (``i_links_count`` 0, blocks still allocated) or one being truncated
(links left, blocks past ``i_size``). They are recorded in two places (FORMAT-NOTES B2.12,
kernel orphan.rst):

- the legacy list: ``s_last_orphan`` names the first, each orphan's ``i_dtime`` the next;
- the orphan file (compat ``orphan_file``, inode ``s_orphan_file_inum``): blocks of le32 inode
  numbers ending in ``ext4_orphan_block_tail`` (magic, checksum), with ro_compat
  ``orphan_present`` set while it may hold entries.

Processing mirrors the kernel's ``ext4_orphan_cleanup`` / ``ext4_process_orphan`` (and
e2fsck's ``release_orphan_inodes``): the list first, then the file; an inode without links is
freed (blocks, extent or indirect blocks, its xattr block reference, the inode), one with
links is truncated to ``i_size`` (``ext4_truncate``: blocks past the end freed, the tail of the
last block zeroed; its xattrs stay — e2fsck 1.47's ``release_inode_blocks`` also drops the
xattr block of a truncated orphan, the kernel does not). Then ``s_last_orphan`` is cleared,
every orphan-file block rewritten empty (zeros, magic, checksum: what e2fsck's
``check_init_orphan_file`` expects) and ``orphan_present`` cleared. Everything goes through
the volume's single accounting path, and every structure involved is read and verified
before the first change, so a damaged list refuses the open without touching the image.
"""

from __future__ import annotations

import stat as _stat
import struct
from dataclasses import dataclass, field

from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.fs.ext4 import csum
from nuwa.fs.ext4.cache import ORDER_DIR
from nuwa.fs.ext4.c_ext4 import EXT4_INLINE_DATA_FL, EXT4_ORPHAN_BLOCK_MAGIC, EXT4_ORPHAN_BLOCK_TAIL, RO_COMPAT

_SB = "ext4 superblock @1024"


@dataclass
class OrphanFileBlock:
    """One block of the orphan file: its logical and physical number and its entries."""

    lblk: int
    pblk: int
    entries: list[int]
    clean: bool  # already exactly what an empty block looks like


@dataclass
class Orphans:
    """What is pending: the legacy chain, the orphan file's blocks, and the flag."""

    legacy: list[int] = field(default_factory=list)
    file_blocks: list[OrphanFileBlock] = field(default_factory=list)
    present_flag: bool = False

    @property
    def inodes(self) -> list[int]:
        """Every orphan, in processing order (list first, then file), each once."""
        out, seen = [], set()
        for ino in self.legacy + [i for b in self.file_blocks for i in b.entries]:
            if ino not in seen:
                seen.add(ino)
                out.append(ino)
        return out

    def describe(self) -> str | None:
        """A one-line reason, or None when nothing is pending."""
        parts = []
        if self.legacy:
            parts.append(f"{len(self.legacy)} on the orphan list (s_last_orphan = {self.legacy[0]})")
        n = sum(len(b.entries) for b in self.file_blocks)
        if n:
            parts.append(f"{n} in the orphan file")
        if self.present_flag and not parts:
            parts.append("orphan_present is set")
        return ", ".join(parts) or None


@dataclass
class OrphanReport:
    """What processing did (``info()`` shows it)."""

    cleared: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)


def empty_orphan_block(bs: int, csum_seed: int | None, ino: int, gen: int, pblk: int) -> bytearray:
    """An orphan-file block with no entries: zeros, the tail magic and (metadata_csum) checksum."""
    b = bytearray(bs)
    EXT4_ORPHAN_BLOCK_TAIL.pack_into(b, bs - 8, {"ob_magic": EXT4_ORPHAN_BLOCK_MAGIC, "ob_checksum": 0})
    if csum_seed is not None:
        struct.pack_into("<I", b, bs - 4, csum.orphan_block_csum(csum_seed, ino, gen, pblk, b))
    return b


class OrphanOps:
    """Orphan handling, mixed into the filesystem class (needs the volume and file operations)."""

    # ---- finding -----------------------------------------------------------------------------
    def _orphan_ino_ok(self, ino: int) -> bool:
        return self.sb.first_ino <= ino <= self.sb.inodes_count

    def _inode_in_use(self, ino: int) -> bool:
        g, idx = divmod(ino - 1, self.sb.inodes_per_group)
        return bool(self.groups.inode_bitmap(g)[idx >> 3] >> (idx & 7) & 1)

    def _legacy_orphans(self) -> list[int]:
        sb = self.sb
        ino = sb.f["s_last_orphan"]
        where, fieldname = _SB, "s_last_orphan"
        chain: list[int] = []
        seen: set[int] = set()
        while ino:
            if not self._orphan_ino_ok(ino):
                raise CorruptImageError(f"orphan inode number {ino} is out of range "
                                        f"({sb.first_ino}..{sb.inodes_count})", where=f"{where}, field {fieldname}")
            if ino in seen:
                raise CorruptImageError(f"the orphan list loops back to inode {ino}", where=f"{where}, field {fieldname}")
            seen.add(ino)
            chain.append(ino)
            ino = self.inode(ino).dtime  # the next orphan (kernel NEXT_ORPHAN)
            where, fieldname = f"ext4 orphan inode {chain[-1]}", "i_dtime"
        return chain

    def _orphan_file(self) -> list[OrphanFileBlock]:
        sb = self.sb
        if not sb.compat("orphan_file"):
            return []
        ofino = sb.f["s_orphan_file_inum"]
        where = f"ext4 orphan file (inode {ofino})"
        if not 1 <= ofino <= sb.inodes_count:
            raise CorruptImageError(f"orphan file inode {ofino} is out of range", where=f"{_SB}, field s_orphan_file_inum")
        node = self.inode(ofino)
        if node.size % self.bs:
            raise CorruptImageError(f"i_size {node.size} is not a multiple of the block size", where=where)
        fmap = self.map_of(node)
        nblocks = node.size // self.bs
        seed = self.seed
        tail = self.bs - EXT4_ORPHAN_BLOCK_TAIL.size
        out = []
        for lblk in range(nblocks):
            (_l, _n, pblk, _u), = fmap.lookup(lblk, 1)
            if pblk is None:
                raise CorruptImageError(f"hole at block {lblk}", where=where)
            raw = self.cache.get(pblk)
            bwhere = f"{where} block {lblk} (physical {pblk})"
            t = EXT4_ORPHAN_BLOCK_TAIL.unpack(raw, tail)
            if t["ob_magic"] != EXT4_ORPHAN_BLOCK_MAGIC:
                raise CorruptImageError(f"bad magic 0x{t['ob_magic']:08x}", where=f"{bwhere}, field ob_magic")
            if seed is not None and not self.forensic and (
                    t["ob_checksum"] != csum.orphan_block_csum(seed, ofino, node.generation, pblk, raw)):
                raise CorruptImageError("orphan block checksum mismatch", where=f"{bwhere}, field ob_checksum")
            entries = [i for i in struct.unpack_from(f"<{tail // 4}I", raw, 0) if i]
            for ino in entries:
                if not self._orphan_ino_ok(ino):
                    raise CorruptImageError(f"orphan inode number {ino} is out of range", where=bwhere)
            clean = bytes(raw) == bytes(empty_orphan_block(self.bs, seed, ofino, node.generation, pblk))
            out.append(OrphanFileBlock(lblk, pblk, entries, clean))
        return out

    def find_orphans(self) -> Orphans:
        """Every pending orphan (the structures are verified; nothing is changed)."""
        return Orphans(self._legacy_orphans(), self._orphan_file(),
                       bool(self.sb.f["s_feature_ro_compat"] & RO_COMPAT["orphan_present"]))

    # ---- processing --------------------------------------------------------------------------
    def open_orphans(self, writable: bool) -> OrphanReport | None:
        """At open: process pending orphans (writable) or refuse them (read-only, not forensic)."""
        if self.forensic:
            return None
        pending = self.find_orphans()
        why = pending.describe()
        if why is None:
            return None
        if not writable:
            raise UnsupportedFeatureError(
                f"orphan inodes are pending ({why}); open the image writable to process them, "
                "or run e2fsck -fy on a copy", where=_SB, feature="orphan_present")
        return self.process_orphans(pending)

    def process_orphans(self, pending: Orphans) -> OrphanReport:
        """Free or truncate every orphan, then empty the list and the orphan file."""
        nodes = []
        for ino in pending.inodes:  # verify everything before the first change
            node = self.inode(ino)
            if not self._inode_in_use(ino) or not node.mode:
                raise CorruptImageError("orphan inode is not in use", where=f"ext4 orphan inode {ino}")
            self.map_of(node)
            self.xattr_lists(node)
            nodes.append(node)
        report = OrphanReport()
        for node in nodes:
            if node.links == 0:
                self.release_inode(node)
                report.cleared.append(node.ino)
            else:
                self._truncate_orphan(node)
                report.truncated.append(node.ino)
        sb = self.sb
        sb.f["s_last_orphan"] = 0
        if pending.file_blocks:
            ofino = sb.f["s_orphan_file_inum"]
            gen = self.inode(ofino).generation
            for blk in pending.file_blocks:
                if not blk.clean:
                    self.cache.put(blk.pblk, empty_orphan_block(self.bs, self.seed, ofino, gen, blk.pblk),
                                   ORDER_DIR)
        sb.f["s_feature_ro_compat"] &= ~RO_COMPAT["orphan_present"]
        self._begin_write()  # the superblock changed even if nothing else did
        self.flush()
        return report

    def _truncate_orphan(self, node) -> None:
        """``ext4_truncate`` to ``i_size``: blocks past it freed, the last block's tail zeroed,
        mtime and ctime set to now (only for what ``ext4_can_truncate`` accepts: regular files,
        directories and slow symlinks; inline data keeps its times)."""
        node.dtime = 0  # it held the next orphan on the legacy list
        self.dirty(node)
        m = _stat.S_IFMT(node.mode)
        if node.flags & EXT4_INLINE_DATA_FL or m not in (_stat.S_IFREG, _stat.S_IFDIR, _stat.S_IFLNK):
            return
        if m == _stat.S_IFLNK and not self.has_blocks(node):
            return  # a fast symlink
        if self.has_blocks(node):
            self.release_past(node, node.size)
        node.mtime = node.ctime = self.now()
