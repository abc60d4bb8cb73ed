"""Allocation: finding free blocks and inodes, and accounting for them — kept apart.

Finding (``find_*``) only reads bitmaps. Accounting (``block_alloc_stats``,
``inode_alloc_stats``) is the single place that changes a bitmap bit, the group descriptor
counters and uninit flags, ``bg_itable_unused`` and the superblock totals, mirroring e2fsprogs
``lib/ext2fs/alloc_stats.c`` (FORMAT-NOTES B2.10). Checksums follow at flush time
(:meth:`GroupTable.flush_bitmaps` / ``flush_descs``).
"""

from __future__ import annotations

import errno
import re

from nuwa.errors import CorruptImageError, fs_error
from nuwa.fs.ext4.c_ext4 import EXT2_BG_BLOCK_UNINIT, EXT2_BG_INODE_UNINIT
from nuwa.fs.ext4.groups import GroupTable, set_bits


#: a byte with at least one clear bit / at least one set bit (the byte-level skips of _free_run)
_NOT_FULL = re.compile(rb"[^\xff]")
_NOT_EMPTY = re.compile(rb"[^\x00]")


def _free_run(bm: bytearray, start: int, limit: int) -> tuple[int, int] | None:
    """First run of clear bits at or after ``start`` (below ``limit``): ``(first, length)``.

    Whole bytes are skipped by a C-level regex search and only the two boundary bytes are
    looked at bit by bit (e2fsprogs ``ext2fs_find_first_zero/set`` do the same per word), so a
    search costs the distance it covers, not the bitmap's size: allocation asks for the next
    run many times per file in a fragmented group. Bits past the end of ``bm`` read as clear.
    """
    if start >= limit:
        return None
    nbytes = (limit + 7) // 8
    have = min(nbytes, len(bm))
    i = start >> 3
    byte = (bm[i] if i < have else 0) | ((1 << (start & 7)) - 1)  # bits below start: not wanted
    if byte == 0xFF:
        m = _NOT_FULL.search(bm, i + 1, have)
        if m is not None:
            i = m.start()
            byte = bm[i]
        elif have < nbytes:
            i, byte = have, 0
        else:
            return None
    free = ~byte & 0xFF
    lo = i * 8 + (free & -free).bit_length() - 1  # the lowest clear bit
    if lo >= limit:
        return None
    j = lo >> 3
    used = (bm[j] if j < have else 0) >> (lo & 7)
    if used:
        end = lo + (used & -used).bit_length() - 1
    else:
        m = _NOT_EMPTY.search(bm, j + 1, have)
        b = 0 if m is None else bm[m.start()]
        end = limit if m is None else m.start() * 8 + (b & -b).bit_length() - 1
    return lo, min(end, limit) - lo


class Allocator:
    """Block and inode allocation over a :class:`GroupTable`."""

    def __init__(self, groups: GroupTable, on_free_blocks=None):
        self.groups = groups
        self.sb = groups.sb
        # called with (start, count) whenever blocks are released, so caches drop stale copies
        self.on_free_blocks = on_free_blocks
        # per group: no free block lies below this offset (a search hint, never a promise of one)
        self._hint: dict[int, int] = {}
        #: with a journal (jbd2_write): g -> the group's block bitmap as it was at open. Blocks
        #: in use then are never handed out, as jbd2 keeps blocks freed by a running
        #: transaction from reuse until it commits (a freed block stays intact until then)
        self.busy_before = None

    # ---- finding -------------------------------------------------------------------------
    def _group_of(self, blk: int) -> int:
        return (blk - self.sb.first_data_block) // self.sb.blocks_per_group

    def find_blocks(self, goal: int, n: int) -> list[tuple[int, int]]:
        """Free runs totalling ``n`` blocks, preferring a run starting at ``goal``, then one run
        long enough, then first fit from the goal onwards. Raises ENOSPC if there is no room."""
        sb = self.sb
        if n <= 0:
            return []
        if n > sb.free_blocks_count:
            raise fs_error(errno.ENOSPC, None)
        if not (sb.first_data_block <= goal < sb.blocks_count):
            goal = sb.first_data_block
        ng = self.groups.count
        g0 = self._group_of(goal)
        runs: list[tuple[int, int]] = []
        want = n
        # 1. contiguous with the goal (appends stay in one extent)
        r = self._run_in_group(g0, goal - sb.group_first_block(g0))
        if r is not None and r[0] == goal - sb.group_first_block(g0):
            take = min(r[1], want)
            runs.append((goal, take))
            want -= take
            if not want:
                return runs
        # 2. one run long enough (capped: large requests accept half-group pieces)
        need = min(want, sb.blocks_per_group // 2)
        taken = {s for s, _ in runs}
        for i in range(ng):
            g = (g0 + i) % ng
            if self.groups.descs[g].free_blocks < need:
                continue
            base = sb.group_first_block(g)
            for r in self._runs_in_group(g, goal - base if i == 0 else 0):
                start = base + r[0]
                if r[1] >= need and start not in taken:
                    take = min(r[1], want)
                    runs.append((start, take))
                    want -= take
                    if not want:
                        return runs
                    need = min(want, sb.blocks_per_group // 2)
                    taken.add(start)
        # 3. first fit, fragments accepted (skip what was already taken above)
        busy = list(runs)
        for i in range(ng + 1):
            g = (g0 + i) % ng
            if self.groups.descs[g].free_blocks == 0:
                continue
            base = sb.group_first_block(g)
            for r in self._runs_in_group(g, 0):
                start, length = base + r[0], r[1]
                for bs_, bl in busy:  # remove overlap with runs already chosen
                    if bs_ <= start < bs_ + bl:
                        cut = bs_ + bl - start
                        start, length = start + cut, length - cut
                if length <= 0:
                    continue
                take = min(length, want)
                runs.append((start, take))
                busy.append((start, take))
                want -= take
                if not want:  # before the next run is searched for (a search moves the hint)
                    break
            if not want:
                return runs
        raise fs_error(errno.ENOSPC, None)

    def _runs_in_group(self, g: int, off: int):
        """The free runs of group ``g`` from offset ``off`` on, each where the previous one
        ends: what calling :meth:`_run_in_group` again and again gives (the same hints kept),
        with the bitmap and the group's size read once (nothing is allocated during a search,
        and a fragmented group is asked for many runs per file)."""
        if self.groups.descs[g].free_blocks == 0:
            return
        bm = self.groups.block_bitmap(g)
        if self.busy_before is not None:
            before = self.busy_before(g)
            bm = (int.from_bytes(bm, "little") | int.from_bytes(before, "little")).to_bytes(len(bm), "little")
        limit = self.sb.blocks_in_group(g)
        hints = self._hint
        while True:
            hint = hints.get(g, 0)
            r = _free_run(bm, max(off, hint, 0), limit)
            if r is None:
                return
            if off <= hint:
                hints[g] = r[0]
            yield r
            off = r[0] + r[1]

    def _run_in_group(self, g: int, off: int) -> tuple[int, int] | None:
        if self.groups.descs[g].free_blocks == 0:
            return None
        bm = self.groups.block_bitmap(g)
        if self.busy_before is not None:
            before = self.busy_before(g)
            bm = (int.from_bytes(bm, "little") | int.from_bytes(before, "little")).to_bytes(len(bm), "little")
        r = _free_run(bm, max(off, self._hint.get(g, 0), 0), self.sb.blocks_in_group(g))
        if r is not None and off <= self._hint.get(g, 0):
            self._hint[g] = r[0]
        return r

    def find_inode(self, goal_group: int) -> int:
        """A free inode number, searching groups from ``goal_group``; ENOSPC if none."""
        sb = self.sb
        if sb.free_inodes_count == 0:
            raise fs_error(errno.ENOSPC, None)
        ng = self.groups.count
        ipg = sb.inodes_per_group
        for i in range(ng):
            g = (goal_group + i) % ng
            if self.groups.descs[g].free_inodes == 0:
                continue
            bm = self.groups.inode_bitmap(g)
            start = sb.first_ino - 1 if g == 0 else 0
            r = _free_run(bm, start, ipg)
            if r is not None:
                return g * ipg + r[0] + 1
        raise fs_error(errno.ENOSPC, None)

    # ---- accounting (the only code that touches bitmaps, counters and flags) -------------
    def block_alloc_stats(self, start: int, count: int, inuse: int) -> None:
        """Mark ``count`` blocks from ``start`` used (``inuse`` = +1) or free (-1)."""
        sb = self.sb
        while count > 0:
            g = self._group_of(start)
            first = sb.group_first_block(g)
            off = start - first
            n = min(count, sb.blocks_per_group - off)
            if g >= self.groups.count or start + n > sb.blocks_count or start < sb.first_data_block:
                raise CorruptImageError(f"block range {start}+{n} lies outside the filesystem",
                                        where="ext4 block allocation")
            bm = self.groups.block_bitmap(g)
            gd = self.groups.descs[g]
            if inuse > 0:
                if _free_run(bm, off, off + n) != (off, n):
                    raise CorruptImageError(f"blocks {start}..{start + n - 1} are already in use",
                                            where=f"ext4 group {g} block bitmap")
                set_bits(bm, off, n, True)
                gd.free_blocks -= n
                gd.flags &= ~EXT2_BG_BLOCK_UNINIT
                sb.free_blocks_count = sb.free_blocks_count - n
            else:
                set_bits(bm, off, n, False)
                if off < self._hint.get(g, 0):
                    self._hint[g] = off
                gd.free_blocks += n
                sb.free_blocks_count = sb.free_blocks_count + n
                if self.on_free_blocks is not None:
                    self.on_free_blocks(start, n)
            self.groups.mark_bitmap_dirty("b", g)
            start += n
            count -= n

    def inode_alloc_stats(self, ino: int, inuse: int, is_dir: bool) -> tuple[int, int] | None:
        """Mark inode ``ino`` used (+1) or free (-1), keeping dirs and itable_unused right.

        Returns the range of inode indexes ``(lo, hi)`` in the group that became newly
        scanned by e2fsck (raised high-water mark) and must hold valid (zero) records, or None.
        """
        sb = self.sb
        ipg = sb.inodes_per_group
        g, idx = divmod(ino - 1, ipg)
        bm = self.groups.inode_bitmap(g)
        gd = self.groups.descs[g]
        newly = None
        if inuse > 0:
            set_bits(bm, idx, 1, True)
            gd.free_inodes -= 1
            if is_dir:
                gd.used_dirs += 1
            was_uninit = self.groups.uninit(g, EXT2_BG_INODE_UNINIT)
            gd.flags &= ~EXT2_BG_INODE_UNINIT
            if sb.gdt_csum:
                hwm = 0 if was_uninit else ipg - gd.itable_unused
                if idx >= hwm:
                    gd.itable_unused = ipg - idx - 1
                    newly = (hwm, idx)
            sb.free_inodes_count = sb.free_inodes_count - 1
        else:
            set_bits(bm, idx, 1, False)
            gd.free_inodes += 1
            if is_dir:
                gd.used_dirs -= 1
            sb.free_inodes_count = sb.free_inodes_count + 1
        self.groups.mark_bitmap_dirty("i", g)
        return newly

    # ---- convenience: find + account ------------------------------------------------------
    def alloc_blocks(self, goal: int, n: int) -> list[tuple[int, int]]:
        """Find and mark ``n`` blocks near ``goal``."""
        runs = self.find_blocks(goal, n)
        for s, c in runs:
            self.block_alloc_stats(s, c, +1)
        return runs

    def free_blocks(self, runs) -> None:
        """Release runs ``[(start, count), ...]``."""
        for s, c in runs:
            if c:
                self.block_alloc_stats(s, c, -1)
