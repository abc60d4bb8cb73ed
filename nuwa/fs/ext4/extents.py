"""Extent trees (kernel ifork.rst; FORMAT-NOTES B2.6) and the in-memory file map.

A file's logical-to-physical map is held in memory as a sorted list of extents
``[lblk, length, pblk, uninit]`` (:class:`FileMap`); edits (allocation, punching, converting
uninitialised extents) change only that list. When the inode is flushed, the on-disk tree is
rebuilt compactly from the list (:func:`build_extent_tree`), reusing the old node blocks, so
growth and shrinking of the tree (any depth up to 5) follow from one encoder. Reading walks the
tree with loop, depth, range and checksum checks.
"""

from __future__ import annotations

import bisect

from nuwa.errors import CorruptImageError
from nuwa.fs.ext4 import csum
from nuwa.fs.ext4.c_ext4 import (
    EXT3_EXT_MAGIC,
    EXT4_MAX_EXTENT_DEPTH,
    EXT_INIT_MAX_LEN,
    EXT_UNINIT_MAX_LEN,
    S_EXTENT,
    S_EXTENT_HEADER,
    S_EXTENT_IDX,
)


class FileMap:
    """The block map of one inode: sorted, non-overlapping ``[lblk, len, pblk, uninit]``."""

    def __init__(self, extents: list[list] | None = None, meta: list[int] | None = None):
        self.ext: list[list] = extents or []
        self.meta: list[int] = meta or []  # tree (or indirect) blocks currently on disk
        self.dirty = False

    def _idx(self, lblk: int) -> int:
        # index of the last extent starting at or before lblk (-1 if none)
        return bisect.bisect_right(self.ext, lblk, key=lambda e: e[0]) - 1

    def lookup(self, lblk: int, n: int) -> list[tuple[int, int, int | None, bool]]:
        """Segments covering ``lblk .. lblk+n-1``: ``(lblk, count, pblk or None, uninit)``."""
        out = []
        end = lblk + n
        i = self._idx(lblk)
        cur = lblk
        if i < 0:
            i = 0
        while cur < end:
            if i < len(self.ext) and self.ext[i][0] <= cur < self.ext[i][0] + self.ext[i][1]:
                e = self.ext[i]
                cnt = min(end, e[0] + e[1]) - cur
                out.append((cur, cnt, e[2] + cur - e[0], e[3]))
                cur += cnt
                i += 1
                continue
            while i < len(self.ext) and self.ext[i][0] + self.ext[i][1] <= cur:
                i += 1
            nxt = self.ext[i][0] if i < len(self.ext) else end
            if nxt <= cur:
                continue
            cnt = min(end, nxt) - cur
            out.append((cur, cnt, None, False))
            cur += cnt
        return out

    def goal(self, lblk: int) -> int | None:
        """The physical block that would continue the mapping just before ``lblk``."""
        i = self._idx(lblk)
        if i < 0:
            return self.ext[0][2] if self.ext else None
        e = self.ext[i]
        return e[2] + (lblk - e[0])

    def add(self, lblk: int, n: int, pblk: int, uninit: bool = False) -> None:
        """Map the hole ``lblk .. lblk+n-1`` to ``pblk..``; merges with neighbours."""
        i = self._idx(lblk)
        if i >= 0:
            p = self.ext[i]
            if p[0] + p[1] > lblk:
                raise AssertionError("extent overlap")
            if p[0] + p[1] == lblk and p[2] + p[1] == pblk and p[3] == uninit:
                p[1] += n
                if i + 1 < len(self.ext):
                    q = self.ext[i + 1]
                    if q[0] == lblk + n and q[2] == pblk + n and q[3] == uninit:
                        p[1] += q[1]
                        del self.ext[i + 1]
                self.dirty = True
                return
        if i + 1 < len(self.ext):
            q = self.ext[i + 1]
            if q[0] < lblk + n:
                raise AssertionError("extent overlap")
            if q[0] == lblk + n and q[2] == pblk + n and q[3] == uninit:
                q[0], q[1], q[2] = lblk, q[1] + n, pblk
                self.dirty = True
                return
        self.ext.insert(i + 1, [lblk, n, pblk, uninit])
        self.dirty = True

    def mark_init(self, lblk: int, n: int) -> None:
        """Turn the uninitialised parts of ``lblk .. lblk+n-1`` into initialised extents."""
        end = lblk + n
        new = []
        changed = False
        for e in self.ext:
            s, ln, p, u = e
            if not u or s + ln <= lblk or s >= end:
                new.append(e)
                continue
            changed = True
            a, b = max(s, lblk), min(s + ln, end)
            if a > s:
                new.append([s, a - s, p, True])
            new.append([a, b - a, p + a - s, False])
            if s + ln > b:
                new.append([b, s + ln - b, p + b - s, True])
        if changed:
            self.ext = _merge(new)
            self.dirty = True

    def punch(self, start: int) -> list[tuple[int, int]]:
        """Unmap everything at or after ``start``; returns the freed physical runs."""
        freed = []
        keep = []
        for e in self.ext:
            s, ln, p, u = e
            if s + ln <= start:
                keep.append(e)
            elif s >= start:
                freed.append((p, ln))
            else:
                cut = start - s
                keep.append([s, cut, p, u])
                freed.append((p + cut, ln - cut))
        if freed:
            self.ext = keep
            self.dirty = True
        return freed

    def data_blocks(self) -> int:
        """Number of mapped blocks."""
        return sum(e[1] for e in self.ext)

    def end(self) -> int:
        """One past the last mapped logical block (0 if empty)."""
        return self.ext[-1][0] + self.ext[-1][1] if self.ext else 0


def _merge(ext: list[list]) -> list[list]:
    out: list[list] = []
    for e in ext:
        if out:
            p = out[-1]
            if p[0] + p[1] == e[0] and p[2] + p[1] == e[2] and p[3] == e[3]:
                p[1] += e[1]
                continue
        out.append(list(e))
    return out


# ---- reading --------------------------------------------------------------------------------
def read_extent_tree(i_block: bytes, ino: int, gen: int, get_block, blocks_count: int,
                     csum_seed: int | None, forensic: bool = False) -> FileMap:
    """Walk the tree rooted in ``i_block``; ``get_block(n)`` returns a block's bytes."""
    ext: list[list] = []
    meta: list[int] = []
    seen: set[int] = set()
    where = f"ext4 inode {ino} extent tree"
    root_max = _check_header(i_block, 4, where + " root", None)
    depth = S_EXTENT_HEADER.unpack_from(i_block, 0)[3]
    last = [-1]

    def walk(node: bytes, depth: int, where: str, lo: int, hi: int | None) -> None:
        entries = S_EXTENT_HEADER.unpack_from(node, 0)[1]
        if depth == 0:
            for i in range(entries):
                lblk, ln, start_hi, start_lo = S_EXTENT.unpack_from(node, 12 + 12 * i)
                uninit = ln > EXT_INIT_MAX_LEN
                if uninit:
                    ln -= EXT_INIT_MAX_LEN
                pblk = start_hi << 32 | start_lo
                if ln == 0 or pblk + ln > blocks_count or pblk == 0:
                    raise CorruptImageError(f"extent {i} maps blocks {pblk}+{ln} outside the filesystem",
                                            where=where)
                if lblk <= last[0] or lblk < lo or (hi is not None and lblk + ln > hi):
                    raise CorruptImageError(f"extent {i} (logical {lblk}) is out of order", where=where)
                last[0] = lblk + ln - 1
                if ext and ext[-1][0] + ext[-1][1] == lblk and ext[-1][2] + ext[-1][1] == pblk \
                        and ext[-1][3] == uninit:
                    ext[-1][1] += ln
                else:
                    ext.append([lblk, ln, pblk, uninit])
            return
        idx = [S_EXTENT_IDX.unpack_from(node, 12 + 12 * i) for i in range(entries)]
        for i, (lblk, leaf_lo, leaf_hi, _) in enumerate(idx):
            child = leaf_hi << 32 | leaf_lo
            nxt = idx[i + 1][0] if i + 1 < entries else hi
            cwhere = f"ext4 inode {ino} extent block {child} (depth {depth - 1})"
            if child in seen:
                raise CorruptImageError(f"extent tree loops back to block {child}", where=where)
            if not (0 < child < blocks_count):
                raise CorruptImageError(f"index {i} points to block {child} outside the filesystem",
                                        where=where)
            if nxt is not None and nxt <= lblk:
                raise CorruptImageError(f"index {i} (logical {lblk}) is out of order", where=where)
            seen.add(child)
            meta.append(child)
            blk = get_block(child)
            _check_header(blk, None, cwhere, depth - 1)
            if csum_seed is not None and not forensic:
                if not csum.verify_extent_block_csum(csum_seed, ino, gen, blk):
                    raise CorruptImageError("extent block checksum mismatch", where=cwhere)
            walk(blk, depth - 1, cwhere, lblk, nxt)

    if root_max and depth:
        walk(i_block, depth, where + " root", 0, None)
    elif root_max:
        walk(i_block, 0, where + " root", 0, None)
    return FileMap(ext, meta)


def _check_header(node: bytes, max_limit: int | None, where: str, want_depth: int | None) -> int:
    magic, entries, emax, depth, _gen = S_EXTENT_HEADER.unpack_from(node, 0)
    if magic != EXT3_EXT_MAGIC:
        raise CorruptImageError(f"bad extent header magic 0x{magic:04x}", where=where + ", field eh_magic")
    if depth > EXT4_MAX_EXTENT_DEPTH:
        raise CorruptImageError(f"extent tree depth {depth} exceeds {EXT4_MAX_EXTENT_DEPTH}",
                                where=where + ", field eh_depth")
    if want_depth is not None and depth != want_depth:
        raise CorruptImageError(f"node depth {depth}, expected {want_depth}", where=where + ", field eh_depth")
    limit = max_limit if max_limit is not None else (len(node) - 12) // 12
    if emax > limit or emax == 0 or entries > emax:
        raise CorruptImageError(f"eh_entries {entries} / eh_max {emax} not valid (limit {limit})",
                                where=where + ", field eh_max")
    return emax


# ---- writing ---------------------------------------------------------------------------------
def split_for_tree(ext: list[list]) -> list[tuple[int, int, int, bool]]:
    """Extents cut to the on-disk maximum lengths (32768 initialised, 32767 uninitialised)."""
    out = []
    for lblk, ln, pblk, u in ext:
        mx = EXT_UNINIT_MAX_LEN if u else EXT_INIT_MAX_LEN
        while ln > 0:
            c = min(ln, mx)
            out.append((lblk, c, pblk, u))
            lblk, ln, pblk = lblk + c, ln - c, pblk + c
    return out


def tree_shape(n_entries: int, block_size: int) -> list[int]:
    """Node counts per level below the root (leaves first) for ``n_entries`` leaf entries."""
    per = (block_size - 12) // 12
    levels = []
    n = n_entries
    while n > 4:
        n = (n + per - 1) // per
        levels.append(n)
    if len(levels) > EXT4_MAX_EXTENT_DEPTH:
        raise CorruptImageError("file too fragmented for an extent tree of depth 5", where="extent tree")
    return levels


def build_extent_tree(ext: list[list], block_size: int, ino: int, gen: int, csum_seed: int | None,
                      blocks: list[int]) -> tuple[bytes, dict[int, bytearray]]:
    """Encode ``ext`` as a root (60 bytes) plus node blocks placed at ``blocks`` (leaves first).

    ``blocks`` must hold exactly ``sum(tree_shape(...))`` block numbers.
    """
    entries = split_for_tree(ext)
    per = (block_size - 12) // 12
    shape = tree_shape(len(entries), block_size)
    if sum(shape) != len(blocks):
        raise AssertionError("block count does not match the tree shape")
    out: dict[int, bytearray] = {}
    # leaf level payloads: (first lblk, packed entries)
    level = []
    for lblk, ln, pblk, u in entries:
        level.append((lblk, S_EXTENT.pack(lblk, ln + (EXT_INIT_MAX_LEN if u else 0), pblk >> 32, pblk & 0xFFFFFFFF)))
    depth = 0
    bi = 0
    while len(level) > 4:
        nxt = []
        for c in range(0, len(level), per):
            chunk = level[c : c + per]
            blk = blocks[bi]
            bi += 1
            node = bytearray(block_size)
            S_EXTENT_HEADER.pack_into(node, 0, EXT3_EXT_MAGIC, len(chunk), per, depth, 0)
            node[12 : 12 + 12 * len(chunk)] = b"".join(p for _, p in chunk)
            if csum_seed is not None:
                csum.set_extent_block_csum(csum_seed, ino, gen, node)
            out[blk] = node
            nxt.append((chunk[0][0], S_EXTENT_IDX.pack(chunk[0][0], blk & 0xFFFFFFFF, blk >> 32, 0)))
        level = nxt
        depth += 1
    root = bytearray(60)
    S_EXTENT_HEADER.pack_into(root, 0, EXT3_EXT_MAGIC, len(level), 4, depth, 0)
    root[12 : 12 + 12 * len(level)] = b"".join(p for _, p in level)
    if level and depth:
        # the first index of every level must start at the first mapped block; a root index's
        # first ei_block is kept as the child's first lblk (kernel keeps 0 only after punching)
        pass
    return bytes(root), out


def empty_root() -> bytes:
    """``i_block`` of an extent-mapped inode with no blocks."""
    root = bytearray(60)
    S_EXTENT_HEADER.pack_into(root, 0, EXT3_EXT_MAGIC, 0, 4, 0, 0)
    return bytes(root)
