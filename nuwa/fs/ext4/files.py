"""File contents: reading, writing (allocation, sparse writes, uninitialised extents),
truncation, inline-data conversion, and the open-file handle.

Data never goes through the metadata cache: reads and writes are large ``pread``/``pwrite``
calls on physically contiguous runs, processed in bounded chunks so memory stays flat for any
file size. Allocation prefers extending the previous extent (kernel ``ext4_ext_find_goal``).
Like the kernel, a write or truncate clears ``security.capability`` (``file_remove_privs``).
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from nuwa.errors import CorruptImageError, fs_error
from nuwa.fs.content import is_zeros, pieces
from nuwa.fs.ext4 import blockmap, extents
from nuwa.fs.ext4.c_ext4 import EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL
from nuwa.fs.ext4.inode import Inode
from nuwa.fs.model import FileHandle, check_path

_FT_REG = 1  # directory-entry file_type of a regular file

CHUNK_BLOCKS = 4096  # logical blocks per write/read step (16 MiB at 4 KiB)
MAX_READ = 64 << 20


class FileOps:
    """File-content operations, mixed into the filesystem class."""

    def max_file_blocks(self, node: Inode) -> int:
        """Logical blocks the inode's mapping can address."""
        if node.flags & EXT4_EXTENTS_FL:
            return (1 << 32) - 1
        return blockmap.max_blocks(self.bs)

    def max_file_size(self, node: Inode) -> int:
        """The largest i_size e2fsck accepts for the inode's mapping (pass 1's size check):
        2^32 blocks less a byte with extents, the blocks the indirect tree addresses without."""
        if node.flags & EXT4_EXTENTS_FL:
            return (1 << 32) * self.bs - 1
        return blockmap.max_blocks(self.bs) * self.bs

    def file_read(self, node: Inode, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (holes and uninitialised extents read as zeros)."""
        if node.is_dir:
            raise fs_error(errno.EISDIR, None)
        if offset < 0 or n < 0:
            raise fs_error(errno.EINVAL, None)
        size = node.size
        if offset >= size or n == 0:
            return b""
        if size > self.max_file_size(node):
            raise CorruptImageError(f"i_size {size} is larger than the {self.max_file_size(node)} bytes its block "
                                    "map can address (e2fsck: 'i_size is ..., should be ...')",
                                    where=f"ext4 inode {node.ino}")
        n = min(n, size - offset)
        if node.flags & EXT4_INLINE_DATA_FL:
            part = self.inline_bytes(node)[offset : offset + n]
            return part + bytes(n - len(part))  # zeros past the inline bytes, as the kernel reads
        if not self.has_blocks(node):
            return b""
        bs = self.bs
        fmap = self.map_of(node)
        first, last = offset // bs, (offset + n - 1) // bs
        parts = []
        for lblk, cnt, pblk, uninit in fmap.lookup(first, last - first + 1):
            if pblk is None or uninit:
                parts.append(bytes(cnt * bs))
            else:
                parts.append(self.dev.pread(pblk * bs, cnt * bs))
        data = b"".join(parts)
        skip = offset - first * bs
        return data[skip : skip + n]

    def put_file(self, path: str, reader, size: int, mode: int, uid: int, gid: int, atime_ns: int, mtime_ns: int,
                 replace: bool = False) -> None:
        """Make ``path`` a new regular file holding the first ``size`` bytes of ``reader`` (zero
        pieces left as holes) with this mode, owner and times, as one job.

        The effect is that of ``open(O_CREAT|O_EXCL)``, the writes, ``chown``, ``chmod`` and
        ``utime``; with ``replace``, an existing non-directory at ``path`` is replaced as
        ``rename(2)`` over it replaces it (dpkg's own way of installing a file: its entry is
        pointed at the new inode, the old one loses a link). Without ``replace`` an existing
        name is EEXIST; a directory there is EISDIR. The path is resolved once, the entry
        changed once and the inode's metadata set once (an overlay's commit writes thousands
        of files; each of those calls resolved the path and updated the inode again).
        """
        stripped = check_path(path).rstrip("/") or "/"
        if stripped != path:
            raise fs_error(errno.EISDIR, path)
        res = self._resolve(path, False)
        if res.name in ("", ".", ".."):
            raise fs_error(errno.EISDIR, path)  # a directory, as open(O_CREAT) answers
        old = None
        if res.node is not None:
            old = self.inode(res.node)
            if old.is_dir:
                raise fs_error(errno.EISDIR, path)
            if not replace:
                raise fs_error(errno.EEXIST, path)
        self.check_writable()
        perm = _stat.S_IFREG | (mode & 0o7777)

        def enter() -> int:
            if old is None:
                node = self._create(res.parent, res.name, perm, path)
            else:  # rename(2) over it: the name repointed, the old inode loses a link
                parent = self.inode(res.parent)
                if parent.links == 0:
                    raise fs_error(errno.ENOENT, path)
                node = self.new_inode(parent, perm)
                node.links = 1
                self.dir_repoint(parent, os.fsencode(res.name), node.ino, _FT_REG)
                old.links -= 1
                old.ctime = node.ctime
                self.dirty(old)
                if old.links == 0:
                    self.release_inode(old)
                parent.mtime = parent.ctime = node.ctime
                self.dirty(parent)
            node.uid, node.gid = uid & 0xFFFFFFFF, gid & 0xFFFFFFFF
            return node.ino

        # a cached path prefix goes through directories and symlinks only: replacing a file
        # leaves every cached resolution right
        ino = self._mutate(enter, names=old is not None and old.is_lnk, removes=old is not None)
        # each piece is its own operation, as a handle's writes are (a journal may commit
        # between them); the inode is looked up again in each (a flush may have dropped it)
        for off, chunk in pieces(reader, size):
            if not is_zeros(chunk):
                self._mutate(lambda: self.file_write(self.inode(ino), off, chunk))

        def finish() -> None:
            node = self.inode(ino)
            if node.size != size:
                self.file_truncate(node, size)  # a trailing hole (or a reader that ran dry)
            node.atime, node.mtime = self.time_trunc(atime_ns), self.time_trunc(mtime_ns)
            node.ctime = self.now()
            self.dirty(node)
        self._mutate(finish)

    def _drop_caps(self, node: Inode) -> None:
        # kernel file_remove_privs -> security_inode_killpriv: a data change drops file caps
        if node.file_acl or (len(node.raw) > 128 and node.raw[128 + node.extra_isize : 132 + node.extra_isize]
                             == b"\x00\x00\x02\xea"):
            try:
                self.xattr_remove(node, "security.capability")
            except OSError:
                pass

    def file_write(self, node: Inode, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``, allocating blocks as needed; returns ``len(data)``."""
        if node.is_dir:
            raise fs_error(errno.EISDIR, None)
        if offset < 0:
            raise fs_error(errno.EINVAL, None)
        if not data:
            return 0
        if node.flags & EXT4_INLINE_DATA_FL:
            self.drop_inline(node)
        bs = self.bs
        end = offset + len(data)
        first, last = offset // bs, (end - 1) // bs
        if last >= self.max_file_blocks(node):
            raise fs_error(errno.EFBIG, None)
        fmap = self.map_of(node)
        holes = sum(c for _l, c, p, _u in fmap.lookup(first, last - first + 1) if p is None)
        if holes + 8 > self.sb.free_blocks_count:
            raise fs_error(errno.ENOSPC, None)
        self._begin_write()
        mv = memoryview(data)
        for c0 in range(first, last + 1, CHUNK_BLOCKS):
            c1 = min(last + 1, c0 + CHUNK_BLOCKS)
            self._write_chunk(node, fmap, c0, c1, offset, end, mv)
        if end > node.size:
            node.size = end
            if end > 0x7FFFFFFF and not self.sb.ro_compat("large_file"):
                self.sb.f["s_feature_ro_compat"] |= 0x2
        node.mtime = node.ctime = self.now()
        self._drop_caps(node)
        self.dirty(node)
        return len(data)

    def _write_chunk(self, node: Inode, fmap, c0: int, c1: int, offset: int, end: int, mv) -> None:
        bs = self.bs
        before = fmap.lookup(c0, c1 - c0)
        buf = bytearray((c1 - c0) * bs)
        lo = max(offset, c0 * bs)
        hi = min(end, c1 * bs)
        # edge blocks keep their old initialised bytes
        for edge in {c0, c1 - 1}:
            if (edge == c0 and lo > c0 * bs) or (edge == c1 - 1 and hi < c1 * bs):
                for lblk, cnt, pblk, uninit in before:
                    if lblk <= edge < lblk + cnt and pblk is not None and not uninit:
                        old = self.dev.pread((pblk + edge - lblk) * bs, bs)
                        buf[(edge - c0) * bs : (edge - c0 + 1) * bs] = old
        buf[lo - c0 * bs : hi - c0 * bs] = mv[lo - offset : hi - offset]
        for lblk, cnt, pblk, _u in before:
            if pblk is None:
                cur = lblk
                remaining = cnt
                while remaining:
                    goal = self.data_goal(node, cur)
                    runs = self.alloc.alloc_blocks(goal, remaining)
                    for s, c in runs:
                        fmap.add(cur, c, s)
                        cur += c
                        remaining -= c
        fmap.mark_init(c0, c1 - c0)
        whole = memoryview(buf)  # one copy per run into bytes, not a bytearray slice and then bytes
        for lblk, cnt, pblk, _u in fmap.lookup(c0, c1 - c0):
            a = (lblk - c0) * bs
            self.dev.pwrite(pblk * bs, bytes(whole[a : a + cnt * bs]))

    def file_truncate(self, node: Inode, length: int) -> None:
        """Set the size; blocks past the new end are freed and the partial tail block zeroed."""
        if node.is_dir:
            raise fs_error(errno.EISDIR, None)
        if not node.is_reg:
            raise fs_error(errno.EINVAL, None)
        if length < 0:
            raise fs_error(errno.EINVAL, None)
        if length // self.bs >= self.max_file_blocks(node):
            raise fs_error(errno.EFBIG, None)
        if node.flags & EXT4_INLINE_DATA_FL:
            self.drop_inline(node)
        if length < node.size:
            self.release_past(node, length)
        node.size = length
        if length > 0x7FFFFFFF and not self.sb.ro_compat("large_file"):
            self.sb.f["s_feature_ro_compat"] |= 0x2
        node.mtime = node.ctime = self.now()
        self._drop_caps(node)
        self.dirty(node)

    def release_past(self, node: Inode, length: int) -> None:
        """Free the blocks wholly past ``length`` and zero the rest of the last one (kernel
        ``ext4_truncate`` / ``ext4_block_truncate_page``): the single path of truncation, for
        ``truncate(2)`` and for orphans left mid-truncate."""
        bs = self.bs
        fmap = self.map_of(node)
        freed = fmap.punch((length + bs - 1) // bs)
        self.alloc.free_blocks(freed)
        if length % bs and node.is_reg:
            seg = fmap.lookup(length // bs, 1)[0]
            if seg[2] is not None and not seg[3]:
                self._begin_write()
                p = seg[2]
                blk = bytearray(self.dev.pread(p * bs, bs))
                blk[length % bs :] = bytes(bs - length % bs)
                self.dev.pwrite(p * bs, bytes(blk))

    def drop_inline(self, node: Inode) -> bytes:
        """Convert an inline-data inode to a block-mapped one; regular files keep their bytes.

        Only the stored inline bytes are written (an ``i_size`` past them stays a hole, which
        reads as the same zeros); all-zero inline bytes need no block at all.
        """
        data = self.inline_bytes(node) if not node.is_dir else b""
        if not any(data):
            data = b""
        ib, bl, _hdr = self.xattr_lists(node)
        ib = [a for a in ib if not (a[0] == 7 and a[1] == b"data")]
        self.write_xattr_lists(node, ib, bl, _hdr)
        node.flags &= ~EXT4_INLINE_DATA_FL
        size = node.size
        if self.sb.incompat("extent"):
            node.flags |= EXT4_EXTENTS_FL
            node.i_block = extents.empty_root()
        else:
            node.i_block = bytes(60)
        node.size = 0
        self._maps[node.ino] = extents.FileMap()
        self.dirty(node)
        if node.is_reg or node.is_lnk:
            if data:
                self.file_write(node, 0, data)
            node.size = size
        return data


class Ext4Handle(FileHandle):
    """An open ext4 file (positional reads and writes)."""

    def __init__(self, fs, ino: int, writable: bool, path: str):
        self.fs = fs
        self.ino = ino
        self.writable = writable
        self.path = path
        self.closed = False
        fs._open_count[ino] = fs._open_count.get(ino, 0) + 1

    def _node(self) -> Inode:
        if self.closed:
            raise fs_error(errno.EBADF, self.path)
        return self.fs.inode(self.ino)

    def pread(self, offset: int, n: int) -> bytes:
        """Bytes at ``offset`` (short at end of file)."""
        return self.fs._guard(lambda: self.fs.file_read(self._node(), offset, n))

    def pwrite(self, offset: int, data: bytes) -> int:
        """Write at ``offset``."""
        if not self.writable:
            raise fs_error(errno.EBADF, self.path)
        return self.fs._mutate(lambda: self.fs.file_write(self._node(), offset, bytes(data)))

    def truncate(self, length: int) -> None:
        """``ftruncate``."""
        if not self.writable:
            raise fs_error(errno.EINVAL, self.path)
        self.fs._mutate(lambda: self.fs.file_truncate(self._node(), length))

    def size(self) -> int:
        """Current size."""
        return self._node().size

    def close(self) -> None:
        """Release; an unlinked file's inode is freed with its last handle."""
        if self.closed:
            return
        self.closed = True
        fs = self.fs
        left = fs._open_count.get(self.ino, 1) - 1
        if left:
            fs._open_count[self.ino] = left
            return
        fs._open_count.pop(self.ino, None)
        node = fs.inode(self.ino)
        if node.links == 0 and fs.writable and not fs._corrupt and node.mode:
            if node.dtime == 0:
                fs._mutate(lambda: fs.release_inode(node))
