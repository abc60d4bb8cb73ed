"""Hash-indexed ("htree") directories: lookup, insertion with leaf and node splits, growth of
the index by a level, removal, and conversion of a full one-block directory.

Layout (kernel directory.rst, fs/ext4/namei.c; FORMAT-NOTES B2.7): block 0 is the dx_root
(``.``, ``..`` stretched over the rest, ``dx_root_info`` at 0x18, limit/count at 0x20,
entries from 0x20 whose first hash is overlaid by limit/count); interior dx_node blocks are a
fake empty dirent with limit/count at 0x08; with metadata_csum a ``dx_tail`` follows ``limit``
entries, so the limits shrink by one entry. Leaves are ordinary directory blocks.

The functions work on a directory accessor ``d`` supplied by the engine (see
``fs.DirAccess``): ``d.bs``, ``d.csum``, ``d.where``, ``d.leaf(lblk)``, ``d.dx(lblk, off)``,
``d.raw(lblk)``, ``d.dirty_leaf(lblk)``, ``d.dirty_dx(lblk, off)``, ``d.append()``,
``d.hash(name, version)``, ``d.max_levels``, ``d.nblocks``, ``d.def_hash_version``.
"""

from __future__ import annotations

import errno
import struct

from nuwa.errors import CorruptImageError, InternalError, fs_error
from nuwa.fs.ext4 import dirs
from nuwa.fs.ext4.c_ext4 import (
    DX_NODE_COUNT_OFFSET,
    DX_ROOT_COUNT_OFFSET,
    DX_ROOT_INFO_OFFSET,
    EXT2_DX_ROOT_INFO,
    S_DIRENT,
)

ROOT = DX_ROOT_COUNT_OFFSET
NODE = DX_NODE_COUNT_OFFSET
_CL = struct.Struct("<HH")
_ENT = struct.Struct("<II")


def limit_for(bs: int, coff: int, csum: bool) -> int:
    """Entries a root (coff 0x20) or node (coff 0x08) block holds."""
    return (bs - coff - (8 if csum else 0)) // 8


class Frame:
    """One level of a probe: the index block, its entries and the entry chosen."""

    __slots__ = ("lblk", "coff", "limit", "ents", "idx")

    def __init__(self, lblk: int, coff: int, limit: int, ents: list[list[int]], idx: int):
        self.lblk, self.coff, self.limit, self.ents, self.idx = lblk, coff, limit, ents, idx

    @property
    def count(self) -> int:
        return len(self.ents)

    @property
    def child(self) -> int:
        return self.ents[self.idx][1]


def read_entries(block, coff: int) -> tuple[int, list[list[int]]]:
    """``(limit, [[hash, block], ...])`` of an index block (entry 0's hash reads as 0)."""
    limit, count = _CL.unpack_from(block, coff)
    ents = [[0, struct.unpack_from("<I", block, coff + 4)[0]]]
    for i in range(1, count):
        ents.append(list(_ENT.unpack_from(block, coff + 8 * i)))
    return limit, ents


def write_entries(block: bytearray, coff: int, limit: int, ents: list[list[int]]) -> None:
    """Store entries (count updated; the tail area beyond ``limit`` untouched)."""
    if len(ents) > limit:
        raise InternalError("dx entries exceed limit", where="htree")
    _CL.pack_into(block, coff, limit, len(ents))
    struct.pack_into("<I", block, coff + 4, ents[0][1])
    for i in range(1, len(ents)):
        _ENT.pack_into(block, coff + 8 * i, ents[i][0], ents[i][1])
    end = coff + 8 * len(ents)
    block[end : coff + 8 * limit] = bytes(coff + 8 * limit - end)


def root_info(d) -> dict:
    """Validated ``dx_root_info`` of the directory."""
    root = d.raw(0)
    where = d.where + " dx_root"
    ino0, rl0, nl0, _ = S_DIRENT.unpack_from(root, 0)
    _, rl1, nl1, _ = S_DIRENT.unpack_from(root, 12)
    if rl0 != 12 or nl0 != 1 or root[8:9] != b"." or nl1 != 2 or root[20:22] != b".." or rl1 != d.bs - 12:
        raise CorruptImageError("'.' and '..' do not frame the dx_root", where=where)
    info = EXT2_DX_ROOT_INFO.unpack(root, DX_ROOT_INFO_OFFSET)
    if info["reserved_zero"] != 0 or info["info_length"] != 8:
        raise CorruptImageError(f"info_length {info['info_length']} is not 8", where=where + ", field info_length")
    if info["hash_version"] > 5:
        raise CorruptImageError(f"hash version {info['hash_version']} is not valid",
                                where=where + ", field hash_version")
    if info["indirect_levels"] >= d.max_levels:
        raise CorruptImageError(f"indirect_levels {info['indirect_levels']} exceeds {d.max_levels - 1}",
                                where=where + ", field indirect_levels")
    return info


def _frame(d, lblk: int, coff: int, h: int | None, where: str) -> Frame:
    block = d.dx(lblk, coff)
    limit, ents = read_entries(block, coff)
    want = limit_for(d.bs, coff, d.csum)
    if limit != want:
        raise CorruptImageError(f"limit {limit}, expected {want}", where=where + ", field limit")
    if not 0 < len(ents) <= limit:
        raise CorruptImageError(f"count {len(ents)} is not valid (limit {limit})", where=where + ", field count")
    for i, (hh, blk) in enumerate(ents):
        if blk == 0 or blk >= d.nblocks:
            raise CorruptImageError(f"entry {i} points to block {blk} outside the directory", where=where)
        if i > 1 and hh < ents[i - 1][0]:
            raise CorruptImageError(f"entry {i} hash is out of order", where=where)
    idx = 0
    if h is not None:
        lo, hi = 1, len(ents) - 1
        while lo <= hi:  # last entry whose hash <= h (entry 0 matches everything)
            mid = (lo + hi) // 2
            if ents[mid][0] > h:
                hi = mid - 1
            else:
                lo = mid + 1
        idx = lo - 1
    return Frame(lblk, coff, limit, ents, idx)


def probe(d, name: bytes) -> tuple[list[Frame], int]:
    """Walk from the root to the leaf that should hold ``name``: ``(frames, hash)``."""
    info = root_info(d)
    h = d.hash(name, info["hash_version"])
    frames = [_frame(d, 0, ROOT, h, d.where + " dx_root")]
    seen = {0}
    for level in range(info["indirect_levels"]):
        blk = frames[-1].child
        if blk in seen:
            raise CorruptImageError(f"index loops back to block {blk}", where=d.where + " htree")
        seen.add(blk)
        _check_node_header(d, blk)
        frames.append(_frame(d, blk, NODE, h, f"{d.where} dx_node {blk}"))
    return frames, h


def _check_node_header(d, blk: int) -> None:
    b = d.raw(blk)
    ino, rl, nl, _ = S_DIRENT.unpack_from(b, 0)
    if ino != 0 or dirs.decode_rec_len(rl, d.bs) != d.bs:
        raise CorruptImageError("dx_node does not start with an empty full-block entry",
                                where=f"{d.where} dx_node {blk}")


def _next_leaf(d, frames: list[Frame], h: int) -> bool:
    # kernel ext4_htree_next_block: continue only while the next leaf starts with our hash
    k = len(frames) - 1
    while k >= 0 and frames[k].idx + 1 >= frames[k].count:
        k -= 1
    if k < 0:
        return False
    frames[k].idx += 1
    if frames[k].ents[frames[k].idx][0] & ~1 != h:
        return False
    for j in range(k + 1, len(frames)):
        frames[j] = _frame(d, frames[j - 1].child, NODE, None, f"{d.where} dx_node {frames[j - 1].child}")
    return True


def lookup(d, name: bytes) -> tuple[int, int, int, int] | None:
    """``(leaf lblk, offset, inode, file_type)`` of ``name``, or None."""
    frames, h = probe(d, name)
    while True:
        lblk = frames[-1].child
        leaf = d.leaf(lblk)
        r = dirs.find(leaf, d.usable, name, f"{d.where} block {lblk}")
        if r is not None:
            return lblk, r[0], r[1], r[2]
        if not _next_leaf(d, frames, h):
            return None


def remove(d, name: bytes) -> int | None:
    """Delete ``name`` from its leaf; returns its inode or None. Leaves are never merged."""
    r = lookup(d, name)
    if r is None:
        return None
    lblk = r[0]
    ino = dirs.remove(d.leaf(lblk), d.usable, name, f"{d.where} block {lblk}")
    d.dirty_leaf(lblk)
    return ino


def insert(d, name: bytes, ino: int, ftype: int) -> None:
    """Add ``name`` (absent), splitting leaves and index nodes and growing the index."""
    for _ in range(16):
        frames, h = probe(d, name)
        lblk = frames[-1].child
        leaf = d.leaf(lblk)
        if dirs.insert(leaf, d.usable, name, ino, ftype, f"{d.where} block {lblk}"):
            d.dirty_leaf(lblk)
            return
        k = len(frames) - 1
        while k >= 0 and frames[k].count >= frames[k].limit:
            k -= 1
        if k == len(frames) - 1:
            _split_leaf(d, frames[-1], lblk, leaf)
        elif k < 0:
            if len(frames) >= d.max_levels:
                raise fs_error(errno.ENOSPC, None, "directory index full")
            _add_level(d, frames[0])
        else:
            _split_node(d, frames[k], frames[k + 1])
    raise InternalError("htree insertion did not converge", where=d.where)


def _insert_index(d, fr: Frame, pos: int, h: int, blk: int) -> None:
    fr.ents.insert(pos, [h, blk])
    b = d.dx(fr.lblk, fr.coff)
    write_entries(b, fr.coff, fr.limit, fr.ents)
    d.dirty_dx(fr.lblk, fr.coff)


def _split_leaf(d, fr: Frame, lblk: int, leaf) -> None:
    recs = [(e[1], e[3], e[4]) for e in dirs.entries(leaf, d.usable, f"{d.where} block {lblk}") if e[1]]
    hv = root_info(d)["hash_version"]
    keyed = sorted(((d.hash(n, hv), (i, f, n)) for i, f, n in recs), key=lambda t: t[0])
    # like the kernel's do_split: move records from the end until half the block is moved
    size, move = 0, 0
    for hh, rec in reversed(keyed):
        sz = dirs.rec_len_for(len(rec[2]))
        if size + sz // 2 > d.bs // 2:
            break
        size += sz
        move += 1
    split = min(max(len(keyed) - move, 1), len(keyed) - 1)
    h2 = keyed[split][0]
    cont = 1 if h2 == keyed[split - 1][0] else 0
    new_lblk, nb = d.append()
    leaf[:] = dirs.pack(d.bs, [r for _, r in keyed[:split]], d.csum)
    nb[:] = dirs.pack(d.bs, [r for _, r in keyed[split:]], d.csum)
    d.dirty_leaf(lblk)
    d.dirty_leaf(new_lblk)
    _insert_index(d, fr, fr.idx + 1, h2 | cont, new_lblk)


def init_node(bs: int, csum: bool, ents: list[list[int]]) -> bytearray:
    """A dx_node block holding ``ents``."""
    b = bytearray(bs)
    S_DIRENT.pack_into(b, 0, 0, bs if bs < 65536 else 0, 0, 0)
    write_entries(b, NODE, limit_for(bs, NODE, csum), ents)
    return b


def _split_node(d, parent: Frame, node: Frame) -> None:
    n1 = node.count // 2
    left, right = node.ents[:n1], node.ents[n1:]
    new_lblk, nb = d.append()
    nb[:] = init_node(d.bs, d.csum, right)
    d.dirty_dx(new_lblk, NODE)
    b = d.dx(node.lblk, NODE)
    write_entries(b, NODE, node.limit, left)
    d.dirty_dx(node.lblk, NODE)
    _insert_index(d, parent, parent.idx + 1, right[0][0], new_lblk)


def _add_level(d, root: Frame) -> None:
    new_lblk, nb = d.append()
    nb[:] = init_node(d.bs, d.csum, [list(e) for e in root.ents])
    d.dirty_dx(new_lblk, NODE)
    b = d.dx(0, ROOT)
    b[DX_ROOT_INFO_OFFSET + 6] += 1  # indirect_levels
    write_entries(b, ROOT, root.limit, [[0, new_lblk]])
    d.dirty_dx(0, ROOT)


def make_indexed(d, parent_ino: int) -> None:
    """Turn a full one-block linear directory into an htree (kernel ``make_indexed_dir``).

    Block 0's entries other than ``.``/``..`` move to a new leaf (block 1); block 0 becomes
    the dx_root with one entry. The caller then inserts the new name with :func:`insert`.
    """
    b0 = d.leaf(0)
    recs = [(e[1], e[3], e[4]) for e in dirs.entries(b0, d.usable, f"{d.where} block 0")
            if e[1] and e[4] not in (b".", b"..")]
    new_lblk, nb = d.append()
    nb[:] = dirs.pack(d.bs, recs, d.csum)
    d.dirty_leaf(new_lblk)
    root = bytearray(d.bs)
    S_DIRENT.pack_into(root, 0, d.ino, 12, 1, 2)
    root[8:9] = b"."
    S_DIRENT.pack_into(root, 12, parent_ino, d.bs - 12, 2, 2)
    root[20:22] = b".."
    EXT2_DX_ROOT_INFO.pack_into(root, DX_ROOT_INFO_OFFSET, {
        "reserved_zero": 0, "hash_version": d.def_hash_version, "info_length": 8,
        "indirect_levels": 0, "unused_flags": 0})
    write_entries(root, ROOT, limit_for(d.bs, ROOT, d.csum), [[0, new_lblk]])
    b0[:] = root
    d.set_indexed()
    d.dirty_dx(0, ROOT)


def node_blocks(d) -> set[int]:
    """Logical blocks of the index itself (root and dx_nodes), for readdir to skip."""
    info = root_info(d)
    out = {0}
    level = [0]
    for depth in range(info["indirect_levels"]):
        nxt = []
        for blk in level:
            coff = ROOT if blk == 0 else NODE
            _, ents = read_entries(d.dx(blk, coff), coff)
            for _, child in ents:
                if child in out or child >= d.nblocks:
                    raise CorruptImageError(f"index block {child} repeated or outside the directory",
                                            where=d.where + " htree")
                out.add(child)
                nxt.append(child)
        level = nxt
    return out
