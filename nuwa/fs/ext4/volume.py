"""The ext4 volume: open-for-write protocol, caches, inode life cycle, block maps, ordered flush.

This is the core under :class:`nuwa.fs.ext4.fs.Ext4FS`. It owns

- the open protocol (FORMAT-NOTES B2.11, STYLE 8): refuse unknown features for writing,
  replay a journal that needs recovery (writable) or refuse (read-only), clear
  ``EXT2_VALID_FS`` before the first write and set it again on a clean close (pending orphans
  are then processed or refused by :mod:`nuwa.fs.ext4.orphan`);
- the caches (block cache, inode table, per-inode block maps) and the single ordered flush:
  block maps are encoded first (they allocate tree blocks), then inodes, then bitmaps and
  descriptors; the block cache writes bitmaps, inode tables, tree blocks and directories in
  that order; the superblock goes last;
- inode creation and release, and the per-inode map load/store for extents and block maps.
"""

from __future__ import annotations

import errno
import random
import stat as _stat
import struct
import time
from collections import OrderedDict

from nuwa.errors import CorruptImageError, InvalidInputError, UnsupportedFeatureError, fs_error
from nuwa.fs.ext4 import blockmap, csum, extents, inline, jbd2, jbd2_write, xattr
from nuwa.fs.ext4.alloc import Allocator
from nuwa.fs.ext4.cache import ORDER_TREE, BlockCache
from nuwa.fs.ext4.c_ext4 import (
    EXT2_BG_BLOCK_UNINIT,
    EXT2_BG_INODE_ZEROED,
    EXT2_JOURNAL_INO,
    EXT2_ROOT_INO,
    EXT2_VALID_FS,
    EXT4_EXTENTS_FL,
    EXT4_INLINE_DATA_FL,
    SUPERBLOCK_OFFSET,
)
from nuwa.fs.ext4.groups import GroupTable
from nuwa.fs.ext4.inode import Inode, InodeTable, clamp_time
from nuwa.fs.ext4.precheck import check_allocation
from nuwa.fs.ext4.superblock import Superblock, parse_superblock


def _read_sb(dev, forensic: bool) -> Superblock:
    if dev.size < SUPERBLOCK_OFFSET + 1024:
        raise CorruptImageError(f"device of {dev.size} bytes is too small for an ext4 superblock",
                                where="ext4 superblock @1024")
    return parse_superblock(dev.pread(SUPERBLOCK_OFFSET, 1024), dev.size, forensic)


class Volume:
    """Open filesystem state shared by the file, directory and xattr operations."""

    def _open(self, dev, writable: bool, forensic: bool, clock=None, journal: bool = True) -> None:
        self.dev = dev
        self.journal: jbd2_write.JournalWriter | None = None
        self.atomic = False
        self.forensic = forensic
        self._clock = clock or time.time_ns
        if writable and not dev.writable:
            raise InvalidInputError("cannot open the filesystem for writing on a read-only device",
                                    where=getattr(dev, "name", "device"))
        sb = _read_sb(dev, forensic)
        self.recovered = None
        if sb.incompat("needs_recovery"):
            if writable:
                self._init_state(sb, forensic=True)
                self.recovered = self._replay_journal()
                sb = _read_sb(dev, forensic)
            elif not forensic:
                raise UnsupportedFeatureError(
                    "the journal needs recovery (needs_recovery is set); open the image writable to replay it, "
                    "or run e2fsck -fy on a copy", where="ext4 superblock @1024", feature="needs_recovery")
        self._init_state(sb, forensic)
        self.writable = False
        if writable:
            why = sb.write_refusal() or self._pending_state()
            if why:
                raise UnsupportedFeatureError(f"refusing to write: {why}", where="ext4 superblock @1024",
                                              feature=why.split("'")[1] if "'" in why else None)
            # what the allocator trusts (bitmaps, group counts) must be right before any write
            self.precheck = check_allocation(self)
            # the totals the allocator checks space against are the groups' (now verified)
            # counts, as the kernel sums them at mount; a superblock copy that lags or was
            # damaged would otherwise make every write fail with ENOSPC
            sb.free_blocks_count = sum(d.free_blocks for d in self.groups.descs)
            sb.free_inodes_count = sum(d.free_inodes for d in self.groups.descs)
            self.writable = True
            if journal and sb.compat("has_journal") and sb.f["s_journal_inum"]:
                self._start_journal(forensic)

    def _start_journal(self, forensic: bool) -> None:
        """Route every later write through a :class:`jbd2_write.StagedDevice` (crash-atomic
        commits, see :meth:`flush`); the caches are rebuilt over it."""
        writer = jbd2_write.JournalWriter(self.dev, self.bs, self._journal_blocks())
        self._raw_dev = self.dev
        # the before-state: descriptor flags and bitmap locations as on disk now
        self._before_desc = [(d.flags, d.block_bitmap) for d in self.groups.descs]
        self._before_bm: dict[int, bytes] = {}
        self.dev = jbd2_write.StagedDevice(self._raw_dev, self.bs, self._in_use_before, None)
        self._init_state(self.sb, forensic)
        self.journal = writer
        self.alloc.busy_before = self._before_bitmap

    def begin_atomic(self) -> bool:
        """Make everything up to the next :meth:`flush` one transaction, or nothing at all.

        Without this, a journalled filesystem commits a transaction whenever the pending
        changes approach the journal's room (after a whole operation, so each one leaves a
        consistent tree). With it, more than the journal holds is refused
        (``InvalidInputError``, nothing in use written). False when there is no journal.
        """
        if self.journal is None:
            return False
        self.atomic = True
        self.dev.limit = self.journal.room
        return True

    def _before_bitmap(self, g: int) -> bytes:
        """Group ``g``'s block bitmap as it was at open (read from the device: bitmaps are only
        rewritten in place by a checkpoint, after which the before-state is gone anyway)."""
        bm = self._before_bm.get(g)
        if bm is None:
            flags, where = self._before_desc[g]
            if self.sb.gdt_csum and flags & EXT2_BG_BLOCK_UNINIT:
                bm = bytes(self.groups._materialise_block_bitmap(g))
            else:
                bm = self._raw_dev.pread(where * self.bs, self.bs)
            self._before_bm[g] = bm
        return bm

    def _in_use_before(self, blk: int) -> bool:
        """Whether fs block ``blk`` was in use at open (anything outside the groups counts)."""
        sb = self.sb
        if blk < sb.first_data_block or blk >= sb.blocks_count:
            return True
        g, off = divmod(blk - sb.first_data_block, sb.blocks_per_group)
        return bool(self._before_bitmap(g)[off >> 3] >> (off & 7) & 1)

    def _init_state(self, sb: Superblock, forensic: bool) -> None:
        self.sb = sb
        self.bs = sb.block_size
        self.csum = sb.metadata_csum
        self.seed = sb.csum_seed if self.csum else None
        self.cache = BlockCache(self.dev, self.bs)
        self.cache.before_write = self._begin_write
        self.groups = GroupTable(sb, self.cache, forensic)
        self.alloc = Allocator(self.groups, on_free_blocks=self._on_free_blocks)
        self.itable = InodeTable(sb, self.groups, self.cache, forensic)
        self._maps: OrderedDict[int, extents.FileMap] = OrderedDict()
        self._verified: set[int] = set()
        self._began = False
        self._corrupt: str | None = None
        self._open_count: dict[int, int] = {}
        self._rng = random.Random(int.from_bytes(sb.uuid, "little"))
        self._closed = False

    # ---- open-time checks --------------------------------------------------------------------
    def _journal_blocks(self) -> list[int]:
        node = self.itable.get(self.sb.f["s_journal_inum"] or EXT2_JOURNAL_INO)
        fmap = self.map_of(node)
        out = []
        for lblk, ln, pblk, _u in fmap.ext:
            if lblk != len(out):
                raise CorruptImageError("the journal inode has a hole", where=f"ext4 inode {node.ino}")
            out.extend(range(pblk, pblk + ln))
        return out

    def _replay_journal(self):
        if self.sb.f["s_journal_inum"] == 0:
            raise UnsupportedFeatureError("needs_recovery with an external journal device is not supported",
                                          where="ext4 superblock", feature="journal_dev")
        result = jbd2.replay(self.dev, self.bs, self._journal_blocks(), fs_blocks_count=self.sb.blocks_count)
        jbd2.finish_recovery(self.dev, result)
        return result

    def _pending_state(self) -> str | None:
        """Why in-place writing would be unsafe (journal data left without needs_recovery), or
        None. (Pending orphans are processed: :mod:`nuwa.fs.ext4.orphan`.)"""
        sb = self.sb
        if sb.compat("has_journal") and sb.f["s_journal_inum"]:
            blocks = self._journal_blocks()
            if blocks:
                raw = self.dev.pread(blocks[0] * self.bs, 1024)
                magic, _bt, _seq, _bsz, _maxlen, _first, _sseq, start = struct.unpack_from(">8I", raw, 0)
                if magic == 0xC03B3998 and start != 0:
                    return "the journal holds transactions but needs_recovery is clear; run e2fsck"
        return None

    # ---- write protocol ------------------------------------------------------------------------
    def now(self) -> int:
        """Current time in nanoseconds (injectable for tests), as an inode can hold it."""
        return self.time_trunc(self._clock())

    def set_clock(self, clock):
        """Make ``clock()`` (nanoseconds) the source of "now" from here on; returns the previous
        one (a trace records the times a job's writes took, and its replay gives them back:
        ``nuwa.fs.trace``)."""
        old, self._clock = self._clock, clock
        return old

    def time_trunc(self, ns: int) -> int:
        """A timestamp as the kernel stores it (VFS ``timestamp_truncate`` with ext4's limits).

        Inodes large enough for ``i_atime_extra`` (``s_inode_size`` >= 144) keep nanoseconds
        within [-2**31, 2**34 - 2**31 - 1] s; smaller ones keep whole seconds within the signed
        32-bit range (``ext4_fill_super``: ``s_time_gran``, ``s_time_min``/``s_time_max``).
        At either end of the range the nanoseconds are dropped.
        """
        return clamp_time(ns, self.sb.inode_size >= 144)

    def _begin_write(self) -> None:
        # Clear VALID on disk before the first metadata or data write (B2.11 mitigation 1);
        # with a journal the disk stays clean until a commit (the kernel's way).
        if self._began:
            return
        self._began = True
        if self.journal is not None:
            return
        self.dev.pwrite(SUPERBLOCK_OFFSET, self.sb.encode(state=self.sb.f["s_state"] & ~EXT2_VALID_FS))
        self.dev.flush()

    def check_writable(self) -> None:
        """EROFS on a read-only handle; refuse once corruption was found."""
        if not self.writable:
            raise fs_error(errno.EROFS, None)
        if self._corrupt:
            raise CorruptImageError(f"refusing to modify a filesystem found corrupt ({self._corrupt})",
                                    where="ext4")

    def note_corrupt(self, err: Exception) -> None:
        """Remember that the filesystem is corrupt: every later write is refused."""
        if self._corrupt is None:
            self._corrupt = str(err)
            if self.writable:
                self.cache.drop_dirty()
                self.itable.dirty.clear()
                if self.journal is not None:
                    self.dev.held.clear()  # nothing in use is written: the before-state stays

    def _on_free_blocks(self, start: int, count: int) -> None:
        self.cache.discard(start, count)
        if self._verified:
            for b in range(start, start + min(count, 4096)):
                self._verified.discard(b)

    def flush(self) -> None:
        """Make every change so far durable: the ordered pass (:meth:`_flush_pass`), then, with a
        journal, one committed and checkpointed transaction (crash-atomic)."""
        if not getattr(self, "writable", False) or self._corrupt or self._closed:
            return
        self._flush_pass()
        if self.journal is not None and self.dev.held:
            self._write_backups()
            raw, held = self._raw_dev, self.dev.held
            if self.journal.log_blocks(len(held)) <= self.journal.j.last - self.journal.j.first:
                self.journal.commit(held, jbd2_write.with_needs_recovery(raw.pread(SUPERBLOCK_OFFSET, 1024)))
            elif self.atomic:
                raise jbd2_write.journal_full_error(len(held), self.journal.room)
            else:
                # one operation changed more than the log holds: written as without a journal
                # (marked not clean meanwhile), the only way left to write it
                raw.pwrite(SUPERBLOCK_OFFSET, self.sb.encode(state=self.sb.f["s_state"] & ~EXT2_VALID_FS))
                raw.flush()
                jbd2_write.write_home(raw, self.bs, held)
                raw.flush()
            # the home superblock came from the log with needs_recovery set: clear it last
            raw.pwrite(SUPERBLOCK_OFFSET, self.sb.encode(state=self.sb.f["s_state"]))
            raw.flush()
            held.clear()
            # what is on disk now is the next transaction's before-state (blocks allocated by
            # this one are in use, blocks it freed may be reused)
            self._before_desc = [(d.flags, d.block_bitmap) for d in self.groups.descs]
            self._before_bm.clear()

    def _sb_bytes(self) -> bytes:
        # Legacy: VALID cleared while writing. Journal: the logged copy carries needs_recovery,
        # as the kernel's live superblock does, so that a crash after the checkpoint wrote it
        # home still replays.
        f = self.sb.f
        if self.journal is None:
            return self.sb.encode(state=f["s_state"] & ~EXT2_VALID_FS)
        incompat = f["s_feature_incompat"]
        f["s_feature_incompat"] = incompat | jbd2_write.EXT4_INCOMPAT_RECOVER
        try:
            return self.sb.encode(state=f["s_state"])
        finally:
            f["s_feature_incompat"] = incompat

    def _sb_changed(self) -> bool:
        """Whether the in-memory superblock differs from the one on the device (journal mode)."""
        return self.sb.encode(state=self.sb.f["s_state"]) != self.dev.pread(SUPERBLOCK_OFFSET, 1024)

    def _flush_pass(self) -> None:
        """One ordered pass: maps -> inodes -> bitmaps/descriptors -> cache (ordered) -> sb."""
        for ino in [i for i, m in self._maps.items() if m.dirty]:
            self.store_map(self.itable.get(ino), self._maps[ino])
        self.itable.flush()
        self.groups.flush_bitmaps()
        self.groups.flush_descs()
        # without a journal the superblock (VALID cleared, s_wtime) goes out on every flush once
        # writing began; with one only when something changed (no superblock-only transaction
        # for a flush without changes, but one for a superblock-only change such as clearing
        # orphan_present)
        if self.cache.dirty_count or (self._began if self.journal is None else self._sb_changed()):
            self.cache.flush()
            self._begin_write()
            sec = self.now() // 10**9
            self.sb.f["s_wtime"], self.sb.f["s_wtime_hi"] = sec & 0xFFFFFFFF, (sec >> 32) & 0xFF
            self.dev.pwrite(SUPERBLOCK_OFFSET, self._sb_bytes())
            self.dev.flush()

    def maybe_checkpoint(self) -> None:
        """Flush when pending state grows (keeps memory bounded; the flush stays ordered)."""
        if self.journal is not None and not self.atomic:
            # split into transactions at operation boundaries, before the log overflows
            pending = len(self.dev.held) + self.cache.dirty_count + len(self.itable.dirty) + len(self.groups.dirty)
            if pending > self.journal.room // 2:
                self.flush()
        if self.cache.dirty_count > 8192 or len(self.itable.dirty) > 20000 or len(self._maps) > 4096:
            self._flush_pass()
            for ino in list(self._maps)[: len(self._maps) // 2]:
                if not self._maps[ino].dirty:
                    del self._maps[ino]

    def close(self) -> None:
        """Flush, write backup superblocks/descriptors, then mark the filesystem clean."""
        if self._closed:
            return
        try:
            if getattr(self, "writable", False) and not self._corrupt:
                # files unlinked while open are released now: nothing may stay orphaned on disk
                for ino in list(self._open_count):
                    node = self.itable.get(ino)
                    self._open_count.pop(ino, None)
                    if node.links == 0 and node.mode and node.dtime == 0:
                        self.release_inode(node)
                self.flush()
            if getattr(self, "writable", False) and not self._corrupt and self._began and self.journal is None:
                self._write_backups()
                self.dev.flush()
                self.dev.pwrite(SUPERBLOCK_OFFSET, self.sb.encode(state=self.sb.f["s_state"] | EXT2_VALID_FS))
                self.dev.flush()
        finally:
            self._closed = True

    def abandon(self) -> None:
        """Give up a failed run: pending changes are dropped and nothing more is written.

        With a journal the image stays exactly as before (only free blocks were written);
        without one it stays marked not clean, as after a crash."""
        if getattr(self, "writable", False) and not self._closed:
            self.cache.drop_dirty()
            self.itable.dirty.clear()
            if self.journal is not None:
                self.dev.held.clear()
        self._closed = True

    def _write_backups(self) -> None:
        # e2fsprogs ext2fs_flush2: backups carry their group number, VALID and needs_recovery clear.
        sb = self.sb
        gdt = None
        state = sb.f["s_state"] & ~EXT2_VALID_FS
        if sb.incompat("meta_bg"):
            return
        for g in range(1, self.groups.count):
            if not sb.has_super(g):
                continue
            if gdt is None:
                gdt = b"".join(self.groups.gdt_image())
            start = sb.group_first_block(g)
            f_incompat = sb.f["s_feature_incompat"]
            sb.f["s_feature_incompat"] = f_incompat & ~0x4
            raw = sb.encode(group_nr=g, state=state)
            sb.f["s_feature_incompat"] = f_incompat
            self.dev.pwrite(start * self.bs, raw)
            self.dev.pwrite((start + 1) * self.bs, gdt)

    # ---- inodes ----------------------------------------------------------------------------------
    def inode(self, ino: int) -> Inode:
        """Inode ``ino`` (CorruptImageError if the number is out of range)."""
        return self.itable.get(ino)

    def dirty(self, node: Inode) -> None:
        """Schedule an inode write."""
        self.itable.mark_dirty(node)

    def new_inode(self, parent: Inode, mode: int) -> Inode:
        """Allocate and initialise an inode near ``parent`` (accounting included)."""
        sb = self.sb
        g = (parent.ino - 1) // sb.inodes_per_group
        ino = self.alloc.find_inode(g)
        is_dir = _stat.S_ISDIR(mode)
        newly = self.alloc.inode_alloc_stats(ino, +1, is_dir)
        gi = (ino - 1) // sb.inodes_per_group
        if newly and newly[0] < newly[1] and not self.groups.descs[gi].flags & EXT2_BG_INODE_ZEROED:
            self.itable.zero_records(gi, newly[0], newly[1])
        node = self.itable.new(ino)
        node.generation = self._rng.getrandbits(32)
        node.mode = mode
        now = self.now()
        node.atime = node.ctime = node.mtime = node.crtime = now
        node.uid = 0
        node.gid = 0
        if parent.mode & _stat.S_ISGID:
            node.gid = parent.gid
            if is_dir:
                node.mode |= _stat.S_ISGID
        if sb.incompat("extent") and (_stat.S_ISREG(mode) or is_dir):
            node.flags |= EXT4_EXTENTS_FL
            node.i_block = extents.empty_root()
        else:
            node.i_block = bytes(60)
        self._maps[ino] = extents.FileMap()
        self.dirty(node)
        return node

    def release_inode(self, node: Inode) -> None:
        """Free an inode whose last link is gone: its blocks, xattr block, then the inode."""
        if self._open_count.get(node.ino):
            return  # freed when the last handle closes (the kernel's orphan semantics)
        fmap = self.map_of(node)
        self.alloc.free_blocks([(p, n) for _, n, p, _ in fmap.ext])
        self.alloc.free_blocks([(b, 1) for b in fmap.meta])
        fmap.ext, fmap.meta, fmap.dirty = [], [], False
        if node.file_acl:
            self.release_xattr_block(node.file_acl)
            node.file_acl = 0
        self.alloc.inode_alloc_stats(node.ino, -1, node.is_dir)
        node.links = 0
        node.dtime = (self.now() // 10**9) & 0xFFFFFFFF or 1
        node.size = 0
        node.blocks512 = 0
        if node.flags & EXT4_EXTENTS_FL:
            node.i_block = extents.empty_root()
        self._maps.pop(node.ino, None)
        if node.is_dir:
            self.dc_forget(node.ino)
        self.dirty(node)

    def release_xattr_block(self, blk: int) -> None:
        """Drop one reference to an xattr block (free it at zero)."""
        b = self.cache.get(blk)
        ref = struct.unpack_from("<I", b, 4)[0]
        if ref <= 1:
            self.alloc.free_blocks([(blk, 1)])
        else:
            struct.pack_into("<I", b, 4, ref - 1)
            if self.csum:
                csum.set_xattr_block_csum(self.seed, blk, b)
            self.cache.mark_dirty(blk, ORDER_TREE)

    # ---- block maps --------------------------------------------------------------------------------
    def has_blocks(self, node: Inode) -> bool:
        """Whether ``i_block`` holds a block map (not a fast symlink, device, or inline data)."""
        if node.flags & EXT4_INLINE_DATA_FL:
            return False
        m = _stat.S_IFMT(node.mode)
        if m in (_stat.S_IFREG, _stat.S_IFDIR):
            return True
        if m == _stat.S_IFLNK:
            # kernel ext4_inode_is_fast_symlink: a symlink without data blocks keeps its target
            # in i_block (the xattr block, if any, is not a data block)
            return node.blocks512 - (self.bs // 512 if node.file_acl else 0) > 0
        return False

    def map_of(self, node: Inode) -> extents.FileMap:
        """The (cached) block map of ``node``."""
        fmap = self._maps.get(node.ino)
        if fmap is not None:
            self._maps.move_to_end(node.ino)
            return fmap
        if not self.has_blocks(node):
            fmap = extents.FileMap()
        elif node.flags & EXT4_EXTENTS_FL:
            fmap = extents.read_extent_tree(node.i_block, node.ino, node.generation, self._tree_block,
                                            self.sb.blocks_count, self.seed, self.forensic)
        else:
            fmap = blockmap.read_block_map(node.i_block, self._tree_block, self.bs, self.sb.blocks_count, node.ino)
        self._maps[node.ino] = fmap
        if len(self._maps) > 8192:
            for k in list(self._maps)[:2048]:
                if not self._maps[k].dirty:
                    del self._maps[k]
        return fmap

    def _tree_block(self, blk: int) -> bytes:
        return self.cache.get(blk)

    def data_goal(self, node: Inode, lblk: int) -> int:
        """Where a new block for ``node`` at ``lblk`` should go (kernel ``ext4_ext_find_goal``)."""
        fmap = self.map_of(node)
        g = fmap.goal(lblk)
        if g is not None:
            return g
        sb = self.sb
        grp = (node.ino - 1) // sb.inodes_per_group
        flex = sb.groups_per_flex
        if flex >= 4:
            grp &= ~(flex - 1)
            if node.is_reg and grp + 1 < self.groups.count:
                grp += 1
        return sb.group_first_block(grp)

    def store_map(self, node: Inode, fmap: extents.FileMap) -> None:
        """Encode ``fmap`` into ``node`` (tree or indirect blocks rebuilt, i_blocks recomputed)."""
        if node.flags & EXT4_EXTENTS_FL:
            need = sum(extents.tree_shape(len(extents.split_for_tree(fmap.ext)), self.bs))
        else:
            need = blockmap.meta_needed(fmap.ext, self.bs)
        blocks = fmap.meta[:need]
        if len(blocks) < need:
            goal = fmap.ext[-1][2] + fmap.ext[-1][1] if fmap.ext else self.data_goal(node, 0)
            for s, c in self.alloc.alloc_blocks(goal, need - len(blocks)):
                blocks.extend(range(s, s + c))
        extra = fmap.meta[need:]
        if extra:
            self.alloc.free_blocks([(b, 1) for b in extra])
        if node.flags & EXT4_EXTENTS_FL:
            root, nodes = extents.build_extent_tree(fmap.ext, self.bs, node.ino, node.generation, self.seed, blocks)
        else:
            root, nodes = blockmap.build_block_map(fmap.ext, self.bs, blocks)
        for blk, data in nodes.items():
            self.cache.put(blk, data, ORDER_TREE)
        node.i_block = root
        fmap.meta = blocks
        fmap.dirty = False
        per = self.bs // 512
        node.blocks512 = (fmap.data_blocks() + len(blocks) + (1 if node.file_acl else 0)) * per
        self.dirty(node)

    def pending_blocks512(self, node: Inode) -> int:
        """``i_blocks`` as it will be after the next flush (stat must not lag behind writes)."""
        fmap = self._maps.get(node.ino)
        if fmap is None or not fmap.dirty:
            return node.blocks512
        if node.flags & EXT4_EXTENTS_FL:
            meta = sum(extents.tree_shape(len(extents.split_for_tree(fmap.ext)), self.bs))
        else:
            meta = blockmap.meta_needed(fmap.ext, self.bs)
        return (fmap.data_blocks() + meta + (1 if node.file_acl else 0)) * (self.bs // 512)

    # ---- xattrs of an inode (decoding; editing lives in fs.py) -------------------------------------
    def xattr_lists(self, node: Inode):
        """``(in-inode attrs, block attrs, block header or None)`` of ``node``."""
        where = f"ext4 inode {node.ino}"
        ib = xattr.parse_ibody(node.raw, node.extra_isize, where) if len(node.raw) > 128 else []
        bl, hdr = [], None
        if node.file_acl:
            blk = node.file_acl
            if blk >= self.sb.blocks_count:
                raise CorruptImageError(f"xattr block {blk} lies outside the filesystem",
                                        where=where + ", field i_file_acl")
            b = self.cache.get(blk)
            bwhere = f"ext4 xattr block {blk} (inode {node.ino})"
            if self.csum and not self.forensic and blk not in self._verified:
                if not csum.verify_xattr_block_csum(self.seed, blk, b):
                    raise CorruptImageError("xattr block checksum mismatch", where=bwhere)
                self._verified.add(blk)
            hdr, bl = xattr.parse_block(b, bwhere)
        return ib, bl, hdr

    def inline_bytes(self, node: Inode) -> bytes:
        """Content of an inline-data file or symlink."""
        ib, _bl, _hdr = self.xattr_lists(node)
        return inline.file_bytes(node.i_block, node.size, ib, f"ext4 inode {node.ino} inline data")

    def root_ino(self) -> int:
        """The root directory's inode number."""
        return EXT2_ROOT_INO
