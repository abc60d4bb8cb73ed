"""Directory operations over linear and hash-indexed directories (and inline ones, read).

:class:`DirAccess` gives :mod:`htree` and the linear code one view of a directory: its blocks
by logical number (checksums verified on first read, set when marked dirty), appending a
block, and the hash the directory uses. :class:`DirOps` (mixed into the filesystem) looks up,
lists, adds, removes and re-points entries. Like the kernel (``ext4_add_entry``), a full
one-block linear directory becomes an htree when ``dir_index`` is on; a multi-block linear
directory grows by appending a block; an indexed directory never gets a plain block.
"""

from __future__ import annotations

import errno
import os
import struct
from collections import OrderedDict

from nuwa.errors import CorruptImageError, fs_error
from nuwa.fs.ext4 import csum, dirs, htree, inline
from nuwa.fs.ext4.cache import ORDER_DIR
from nuwa.fs.ext4.c_ext4 import (
    EXT2_FLAGS_UNSIGNED_HASH,
    EXT2_INDEX_FL,
    EXT4_HTREE_LEVEL,
    EXT4_HTREE_LEVEL_COMPAT,
    EXT4_INLINE_DATA_FL,
)
from nuwa.fs.ext4.dirhash import dirhash
from nuwa.fs.ext4.inode import Inode


class DirAccess:
    """Block-level view of one directory for the linear and htree code."""

    def __init__(self, fs, node: Inode):
        self.fs = fs
        self.node = node
        self.fmap = fs.map_of(node)
        self.bs = fs.bs
        self.csum = fs.csum
        self.usable = self.bs - dirs.TAIL_SIZE if self.csum else self.bs
        self.ino = node.ino
        self.where = f"ext4 directory inode {node.ino}"
        consts = fs.__dict__.get("_dir_consts")
        if consts is None:
            sb = fs.sb
            consts = fs.__dict__["_dir_consts"] = (
                EXT4_HTREE_LEVEL if sb.incompat("large_dir") else EXT4_HTREE_LEVEL_COMPAT,
                sb.f["s_def_hash_version"], bool(sb.f["s_flags"] & EXT2_FLAGS_UNSIGNED_HASH), sb.hash_seed)
        self.max_levels, self.def_hash_version, self._unsigned, self._seed = consts

    @property
    def nblocks(self) -> int:
        return self.node.size // self.bs

    def pblk(self, lblk: int) -> int:
        """Physical block of directory block ``lblk`` (holes are corruption)."""
        if lblk >= self.nblocks:
            raise CorruptImageError(f"block {lblk} is past the directory's size", where=self.where)
        seg = self.fmap.lookup(lblk, 1)[0]
        if seg[2] is None:
            raise CorruptImageError(f"directory has a hole at block {lblk}", where=self.where)
        return seg[2]

    def raw(self, lblk: int) -> bytearray:
        """The cached block, unverified."""
        return self.fs.cache.get(self.pblk(lblk))

    def leaf(self, lblk: int) -> bytearray:
        """A leaf block, its tail checksum verified on first read."""
        p = self.pblk(lblk)
        b = self.fs.cache.get(p)
        if self.csum and p not in self.fs._verified:
            where = f"{self.where} block {lblk} (physical {p})"
            if not dirs.has_tail(b):
                if not self.fs.forensic:
                    raise CorruptImageError("directory block has no checksum tail", where=where)
            elif not csum.verify_dirent_csum(self.fs.seed, self.ino, self.node.generation, b):
                if not self.fs.forensic:
                    raise CorruptImageError("directory block checksum mismatch", where=where)
            self.fs._verified.add(p)
        return b

    def dx(self, lblk: int, coff: int) -> bytearray:
        """An index block (root or node), its dx_tail checksum verified on first read."""
        p = self.pblk(lblk)
        b = self.fs.cache.get(p)
        if self.csum and p not in self.fs._verified:
            where = f"{self.where} dx block {lblk} (physical {p})"
            limit = struct.unpack_from("<H", b, coff)[0]
            if coff + 8 * limit + 8 > self.bs or not csum.verify_dx_csum(self.fs.seed, self.ino, self.node.generation,
                                                                         b, coff):
                if not self.fs.forensic:
                    raise CorruptImageError("htree block checksum mismatch or bad limit", where=where)
            self.fs._verified.add(p)
        return b

    def dirty_leaf(self, lblk: int) -> None:
        """Set the leaf's tail checksum and queue it for writing."""
        p = self.pblk(lblk)
        b = self.fs.cache.get(p)
        if self.csum:
            if not dirs.has_tail(b):
                dirs.set_tail(b)
            csum.set_dirent_csum(self.fs.seed, self.ino, self.node.generation, b)
        self.fs._verified.add(p)
        self.fs.cache.mark_dirty(p, ORDER_DIR)

    def dirty_dx(self, lblk: int, coff: int) -> None:
        """Set the dx_tail checksum and queue the block for writing."""
        p = self.pblk(lblk)
        b = self.fs.cache.get(p)
        if self.csum:
            csum.set_dx_csum(self.fs.seed, self.ino, self.node.generation, b, coff)
        self.fs._verified.add(p)
        self.fs.cache.mark_dirty(p, ORDER_DIR)

    def append(self) -> tuple[int, bytearray]:
        """A new zeroed block at the end of the directory: ``(lblk, cached block)``."""
        lblk = self.nblocks
        if lblk >= (1 << 21) // (self.bs // 1024) and not self.fs.sb.incompat("large_dir"):
            raise fs_error(errno.ENOSPC, None, "directory is at its maximum size")
        goal = self.fs.data_goal(self.node, lblk)
        (p, _n), = self.fs.alloc.alloc_blocks(goal, 1)
        self.fmap.add(lblk, 1, p)
        self.node.size += self.bs
        self.fs.dirty(self.node)
        b = self.fs.cache.put(p, bytes(self.bs), ORDER_DIR)
        self.fs._verified.add(p)
        return lblk, b

    def hash(self, name: bytes, version: int) -> int:
        """The major hash of ``name`` for this directory's hash version."""
        if version <= 2 and self._unsigned:
            version += 3
        return dirhash(name, version, self._seed)[0]

    def set_indexed(self) -> None:
        """Flag the directory as hash-indexed."""
        self.node.flags |= EXT2_INDEX_FL
        self.fs.dirty(self.node)


def _root_dots(d: DirAccess) -> list[tuple[int, int, bytes]]:
    # the dx_root's '.' and '..' (validated by htree.root_info); '..' spans the index data
    htree.root_info(d)
    b = d.dx(0, htree.ROOT)
    dot = struct.unpack_from("<IHBB", b, 0)
    dotdot = struct.unpack_from("<IHBB", b, 12)
    return [(dot[0], dot[3], b"."), (dotdot[0], dotdot[3], b"..")]


class DirOps:
    """Directory-level operations, mixed into the filesystem class.

    Lookups go through a bounded per-directory name cache (the kernel's dcache, in effect):
    a linear directory is parsed once and then answered from a dict; an indexed directory is
    searched through its htree and each answer (found or not) is remembered. Every insert,
    removal and re-point updates the cache, so it never disagrees with the blocks.
    """

    _DCACHE_MAX_NAMES = 400_000

    def _dcache(self) -> OrderedDict:
        c = self.__dict__.get("_dc")
        if c is None:
            c = self.__dict__["_dc"] = OrderedDict()
            self.__dict__["_dc_names"] = 0
        return c

    def _dc_get(self, ino: int):
        c = self._dcache()
        ent = c.get(ino)
        if ent is not None:
            c.move_to_end(ino)
        return ent

    def _dc_put(self, ino: int, complete: bool, names: dict) -> None:
        c = self._dcache()
        c[ino] = (complete, names)
        self.__dict__["_dc_names"] += len(names)
        if self.__dict__["_dc_names"] > self._DCACHE_MAX_NAMES:
            while len(c) > 1 and self.__dict__["_dc_names"] > self._DCACHE_MAX_NAMES // 2:
                _k, (_cp, nm) = c.popitem(last=False)
                self.__dict__["_dc_names"] -= len(nm)

    def _dc_set(self, ino: int, name: bytes, value) -> None:
        ent = self._dcache().get(ino)
        if ent is not None:
            if value is None and ent[0]:
                ent[1].pop(name, None)
            else:
                ent[1][name] = value
                self.__dict__["_dc_names"] += 1

    def dc_forget(self, ino: int) -> None:
        """Drop a directory's cached names (it was removed or rewritten)."""
        ent = self._dcache().pop(ino, None)
        if ent is not None:
            self.__dict__["_dc_names"] -= len(ent[1])

    def is_indexed(self, node: Inode) -> bool:
        """Whether lookups go through the htree (the kernel also needs dir_index on)."""
        return bool(node.flags & EXT2_INDEX_FL) and self.sb.compat("dir_index")

    def dir_lookup(self, node: Inode, name: bytes) -> tuple[int, int] | None:
        """``(inode, file_type)`` of ``name`` in directory ``node``, or None."""
        ent = self._dc_get(node.ino)
        if ent is not None:
            complete, names = ent
            if name in names:
                return names[name]
            if complete:
                return None
        if ent is None and not self.is_indexed(node):
            names = {nm: (i, ft) for i, ft, nm in self.dir_entries(node)}
            self._dc_put(node.ino, True, names)
            return names.get(name)
        r = self._dir_lookup_disk(node, name)
        if ent is None:
            self._dc_put(node.ino, False, {name: r})
        else:
            self._dc_set(node.ino, name, r)
        return r

    def _dir_lookup_disk(self, node: Inode, name: bytes) -> tuple[int, int] | None:
        if node.flags & EXT4_INLINE_DATA_FL:
            ib, _bl, _h = self.xattr_lists(node)
            parent, recs = inline.dir_entries(node.i_block, ib, f"ext4 inline directory {node.ino}")
            if name == b"..":
                return parent, 2
            for ino, ft, nm in recs:
                if nm == name:
                    return ino, ft
            return None
        d = DirAccess(self, node)
        if self.is_indexed(node):
            if name in (b".", b".."):
                for ino, ft, nm in _root_dots(d):
                    if nm == name:
                        return ino, ft
                return None
            r = htree.lookup(d, name)
            return None if r is None else (r[2], r[3])
        for lblk in range(d.nblocks):
            r = dirs.find(d.leaf(lblk), d.usable, name, f"{d.where} block {lblk}")
            if r is not None:
                return r[1], r[2]
        return None

    def dir_entries(self, node: Inode) -> list[tuple[int, int, bytes]]:
        """Every live entry ``(inode, file_type, name)`` including ``.`` and ``..``."""
        if node.flags & EXT4_INLINE_DATA_FL:
            ib, _bl, _h = self.xattr_lists(node)
            parent, recs = inline.dir_entries(node.i_block, ib, f"ext4 inline directory {node.ino}")
            return [(node.ino, 2, b"."), (parent, 2, b"..")] + recs
        d = DirAccess(self, node)
        out = []
        skip: set[int] = set()
        if self.is_indexed(node):
            skip = htree.node_blocks(d)
            out.extend(_root_dots(d))
        for lblk in range(d.nblocks):
            if lblk in skip:
                continue
            b = d.leaf(lblk)
            for _off, ino, _rl, ft, nm in dirs.entries(b, d.usable, f"{d.where} block {lblk}"):
                if ino:
                    out.append((ino, ft, nm))
        return out

    def dir_is_empty(self, node: Inode) -> bool:
        """True if only ``.`` and ``..`` remain."""
        return all(nm in (b".", b"..") for _i, _f, nm in self.dir_entries(node))

    def dir_add(self, node: Inode, name: bytes, ino: int, ftype: int) -> None:
        """Insert an entry (the name must be absent)."""
        if node.flags & EXT4_INLINE_DATA_FL:
            self.uninline_dir(node)
        self._dc_set(node.ino, name, (ino, ftype))
        d = DirAccess(self, node)
        if self.is_indexed(node):
            htree.insert(d, name, ino, ftype)
            return
        n = d.nblocks
        for lblk in range(n):
            b = d.leaf(lblk)
            if dirs.insert(b, d.usable, name, ino, ftype, f"{d.where} block {lblk}"):
                d.dirty_leaf(lblk)
                return
        if n == 1 and self.sb.compat("dir_index"):
            parent = self.dir_lookup(node, b"..")
            htree.make_indexed(d, parent[0] if parent else node.ino)
            htree.insert(d, name, ino, ftype)
            return
        lblk, b = d.append()
        b[:] = dirs.pack(self.bs, [(ino, ftype, name)], self.csum)
        d.dirty_leaf(lblk)

    def dir_remove(self, node: Inode, name: bytes) -> int | None:
        """Remove an entry; returns its inode number or None."""
        if node.flags & EXT4_INLINE_DATA_FL:
            self.uninline_dir(node)
        self._dc_set(node.ino, name, None)
        d = DirAccess(self, node)
        if self.is_indexed(node):
            return htree.remove(d, name)
        for lblk in range(d.nblocks):
            r = dirs.remove(d.leaf(lblk), d.usable, name, f"{d.where} block {lblk}")
            if r is not None:
                d.dirty_leaf(lblk)
                return r
        return None

    def dir_repoint(self, node: Inode, name: bytes, ino: int, ftype: int) -> None:
        """Point an existing entry at another inode (rename over a target, or ``..``)."""
        if node.flags & EXT4_INLINE_DATA_FL:
            self.uninline_dir(node)
        self._dc_set(node.ino, name, (ino, ftype))
        d = DirAccess(self, node)
        if name == b".." and self.is_indexed(node):
            b = d.dx(0, htree.ROOT)
            dirs.set_inode(b, 12, ino, ftype)
            d.dirty_dx(0, htree.ROOT)
            return
        if self.is_indexed(node) and name != b".":
            r = htree.lookup(d, name)
            if r is None:
                raise fs_error(errno.ENOENT, os.fsdecode(name))
            dirs.set_inode(d.leaf(r[0]), r[1], ino, ftype)
            d.dirty_leaf(r[0])
            return
        for lblk in range(d.nblocks):
            b = d.leaf(lblk)
            r = dirs.locate(b, d.usable, name, f"{d.where} block {lblk}")
            if r is not None:
                dirs.set_inode(b, r[0], ino, ftype)
                d.dirty_leaf(lblk)
                return
        raise fs_error(errno.ENOENT, os.fsdecode(name))

    def init_dir_block(self, node: Inode, parent_ino: int) -> None:
        """Give a new directory its first block with ``.`` and ``..``."""
        d = DirAccess(self, node)
        lblk, b = d.append()
        b[:] = dirs.new_dir_block(self.bs, node.ino, parent_ino, self.csum)
        d.dirty_leaf(lblk)

    def uninline_dir(self, node: Inode) -> None:
        """Move an inline directory into a block (as the kernel does when it outgrows i_block)."""
        ib, _bl, _h = self.xattr_lists(node)
        parent, recs = inline.dir_entries(node.i_block, ib, f"ext4 inline directory {node.ino}")
        self.drop_inline(node)
        d = DirAccess(self, node)
        lblk, b = d.append()
        b[:] = dirs.pack(self.bs, [(node.ino, 2, b"."), (parent, 2, b"..")] + recs, self.csum)
        d.dirty_leaf(lblk)
