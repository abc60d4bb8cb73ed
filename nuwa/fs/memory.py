"""MemoryFS: a complete in-memory implementation of the filesystem-model protocol.

It is the fast backend for unit tests and the semantic core of the overlay transaction
(:mod:`nuwa.fs.overlay` subclasses it with lazily loaded nodes). Every call mirrors what Linux
does for the same system call, including the order in which errors are detected, so a
simulated ``mv``/``rm``/``ln`` fails with the same errno as the real one. The references are
the kernel's ``fs/namei.c`` (``filename_create``, ``do_rmdir``, ``do_unlinkat``,
``do_renameat2``, ``open_last_lookups``), ``fs/attr.c`` and ``fs/xattr.c``; the behaviour suite
(``tests/fs/test_behaviour.py``) checks the result against the host kernel.

Nodes are plain objects; a directory's ``entries`` maps names to nodes (insertion order is the
readdir order) and ``parent`` points up (directories cannot be hard-linked, so it is unique).
Regular-file contents are sparse 4 KiB blocks, so a sparse write or a large ``truncate`` costs
no memory for the holes.
"""

from __future__ import annotations

import errno
import os
import stat as S
import time

from nuwa.errors import fs_error
from nuwa.fs.model import (
    NAME_MAX,
    XATTR_CREATE,
    XATTR_REPLACE,
    FileHandle,
    FileSystem,
    Resolver,
    Stat,
    StatVFS,
    check_path,
    check_rmdir_name,
    split_components,
)

BLOCK = 4096
#: ext4's EXT4_LINK_MAX (fs/ext4/ext4.h): link() beyond it gives EMLINK
LINK_MAX = 65000
#: include/uapi/linux/limits.h XATTR_SIZE_MAX / XATTR_NAME_MAX
XATTR_SIZE_MAX = 65536
XATTR_NAME_MAX = 255
_XATTR_PREFIXES = ("user.", "trusted.", "security.")
_XATTR_SYSTEM = ("system.posix_acl_access", "system.posix_acl_default")
_SPECIAL = ("", ".", "..")


class SparseContent:
    """File bytes as a dict of 4 KiB blocks; missing blocks read as zeros."""

    __slots__ = ("blocks", "size")

    def __init__(self, data: bytes = b""):
        self.blocks: dict[int, bytearray] = {}
        self.size = 0
        if data:
            self.pwrite(0, data)

    def pread(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (short at the end of the file)."""
        end = min(self.size, offset + n)
        if offset >= end:
            return b""
        out = bytearray()
        pos = offset
        while pos < end:
            bno, boff = divmod(pos, BLOCK)
            take = min(BLOCK - boff, end - pos)
            blk = self.blocks.get(bno)
            out += blk[boff : boff + take] if blk is not None else bytes(take)
            pos += take
        return bytes(out)

    def new_blocks(self, offset: int, n: int) -> int:
        """How many blocks a write of ``n`` bytes at ``offset`` would allocate."""
        if n <= 0:
            return 0
        first, last = offset // BLOCK, (offset + n - 1) // BLOCK
        return sum(1 for b in range(first, last + 1) if b not in self.blocks)

    def pwrite(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``, growing the file; returns ``len(data)``."""
        pos, view = offset, memoryview(data)
        i = 0
        while i < len(view):
            bno, boff = divmod(pos, BLOCK)
            take = min(BLOCK - boff, len(view) - i)
            blk = self.blocks.get(bno)
            if blk is None:
                blk = self.blocks[bno] = bytearray(BLOCK)
            blk[boff : boff + take] = view[i : i + take]
            pos += take
            i += take
        self.size = max(self.size, offset + len(data))
        return len(data)

    def truncate(self, length: int) -> None:
        """Set the size; bytes beyond a shrink are forgotten (a later grow reads zeros)."""
        if length < self.size:
            keep = (length + BLOCK - 1) // BLOCK
            for bno in [b for b in self.blocks if b >= keep]:
                del self.blocks[bno]
            tail = length % BLOCK
            if tail and (length // BLOCK) in self.blocks:
                blk = self.blocks[length // BLOCK]
                blk[tail:] = bytes(BLOCK - tail)
        self.size = length

    def allocated(self) -> int:
        """Allocated 4 KiB blocks (what ``st_blocks`` counts)."""
        return len(self.blocks)

    def clone(self) -> "SparseContent":
        """An independent copy."""
        c = SparseContent()
        c.blocks = {k: bytearray(v) for k, v in self.blocks.items()}
        c.size = self.size
        return c

    def close(self) -> None:
        """Nothing to release."""


class Node:
    """One inode: type and permissions in ``mode``, plus whatever its type needs."""

    __slots__ = ("ino", "mode", "uid", "gid", "nlink", "atime", "mtime", "ctime", "rdev",
                 "xattrs", "content", "target", "entries", "parent", "origin", "__weakref__")

    def __init__(self, ino: int, mode: int, uid: int = 0, gid: int = 0, now: int = 0):
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = 2 if S.S_ISDIR(mode) else 1
        self.atime = self.mtime = self.ctime = now
        self.rdev = 0
        self.xattrs: dict[str, bytes] | None = {}
        self.content = SparseContent() if S.S_ISREG(mode) else None
        self.target: str | None = None
        self.entries: dict[str, Node] | None = {} if S.S_ISDIR(mode) else None
        self.parent: Node | None = None
        self.origin = None  # used by the overlay: where the node came from in its backend


class MemoryHandle(FileHandle):
    """An open file of a :class:`MemoryFS` (or overlay)."""

    def __init__(self, fs: "MemoryFS", node: Node, readable: bool, writable: bool, path: str):
        self.fs, self.node, self.readable, self.writable, self.path = fs, node, readable, writable, path

    def pread(self, offset: int, n: int) -> bytes:
        if S.S_ISDIR(self.node.mode):
            raise fs_error(errno.EISDIR, self.path)
        if not self.readable:
            raise fs_error(errno.EBADF, self.path)
        if offset < 0:
            raise fs_error(errno.EINVAL, self.path)
        return self.fs._content(self.node).pread(offset, n)

    def pwrite(self, offset: int, data: bytes) -> int:
        if not self.writable:
            raise fs_error(errno.EBADF, self.path)
        if offset < 0:
            raise fs_error(errno.EINVAL, self.path)
        # both content kinds copy what they are given: a bytes or bytearray is passed as it is
        # (an archive of tens of MB written at once is not copied once more on the way)
        return self.fs._write(self.node, offset, data if isinstance(data, (bytes, bytearray)) else bytes(data),
                              self.path)

    def truncate(self, length: int) -> None:
        if not self.writable or length < 0:
            raise fs_error(errno.EINVAL, self.path)
        self.fs._truncate_node(self.node, length, self.path)

    def size(self) -> int:
        if S.S_ISDIR(self.node.mode):
            return 0
        return self.fs._content(self.node).size


def on_paths(node: "Node") -> bool:
    """Whether a cached resolution can go through ``node`` (a directory or a symlink): removing
    or replacing anything else never makes the resolver's cache wrong."""
    return S.S_ISDIR(node.mode) or S.S_ISLNK(node.mode)


class MemoryFS(FileSystem):
    """The in-memory tree. ``capacity`` (bytes) bounds file data: writes beyond it give ENOSPC."""

    def __init__(self, writable: bool = True, capacity: int = 1 << 40, max_inodes: int = 1 << 32,
                 clock=time.time_ns):
        self.writable = writable
        self._clock = clock
        self._capacity_blocks = capacity // BLOCK
        self._max_inodes = max_inodes
        self._used_blocks = 0
        self._inodes = 1
        self._next_ino = 3
        self.root_node = Node(2, S.S_IFDIR | 0o755, now=clock())
        self.root_node.parent = self.root_node
        self._resolver = Resolver(self.root_node, self._lookup, lambda n: n.parent,
                                  lambda n: n.mode, self._readlink_node, cache=True)

    # ---- hooks the overlay overrides (lazy loading, undo logging) -------------------------
    def _entries(self, node: Node) -> dict:
        return node.entries

    def _xattrs(self, node: Node) -> dict:
        return node.xattrs

    def _xattrs_w(self, node: Node) -> dict:
        return node.xattrs

    def _content(self, node: Node):
        return node.content

    def _content_w(self, node: Node):
        return node.content

    def _new_content(self):
        return SparseContent()

    def _set(self, node: Node, **attrs) -> None:
        if "target" in attrs or "parent" in attrs:
            self._resolver.invalidate()  # a symlink now points elsewhere / a directory moved
        for k, v in attrs.items():
            setattr(node, k, v)

    def _put_entry(self, parent: Node, name: str, node: Node) -> None:
        es = self._entries(parent)
        old = es.get(name)
        if old is not None and on_paths(old):  # replaced: cached resolutions through it are stale
            self._resolver.invalidate()
        es[name] = node

    def _del_entry(self, parent: Node, name: str) -> None:
        es = self._entries(parent)
        if on_paths(es[name]):
            self._resolver.invalidate()
        del es[name]

    def _readlink_node(self, node: Node) -> str:
        return node.target

    def _new_ino(self) -> int:
        ino = self._next_ino
        self._next_ino += 1
        return ino

    def _account_inode(self, delta: int) -> None:
        self._inodes += delta

    def _account_blocks(self, delta: int) -> None:
        self._used_blocks += delta

    # ---- resolution ----------------------------------------------------------------------
    def _lookup(self, d: Node, name: str):
        return self._entries(d).get(name)

    def set_clock(self, clock):
        """Make ``clock()`` the source of "now"; returns the previous one (``nuwa.fs.trace``)."""
        old, self._clock = self._clock, clock
        return old

    def _now(self) -> int:
        return self._clock()

    def _node(self, path: str, follow: bool) -> Node:
        r = self._resolver.resolve(path, follow)
        if r.node is None:
            raise fs_error(errno.ENOENT, path)
        return r.node

    def _last(self, path: str):
        """Resolve all but the last component; the last is looked up but never followed.

        Returns (parent, name, node, trailing_slash). This is the kernel's ``*_parentat``
        step: trailing slashes are remembered, not used to follow a symlink.
        """
        path = check_path(path)
        if path == "":
            raise fs_error(errno.ENOENT, path)
        stripped = path.rstrip("/")
        trailing = stripped != path and stripped != ""
        r = self._resolver.resolve(stripped or "/", follow=False)
        return r.parent, r.name, r.node, trailing

    def _no_space(self, path: str) -> OSError:
        """The ENOSPC error for ``path`` (an overlay also tells its backend that it refused)."""
        return fs_error(errno.ENOSPC, path)

    def _create_checks(self, path: str, want_dir: bool = False):
        """``filename_create`` (see the model), then ENOSPC when no inode is left."""
        parent, name = self._filename_create(path, want_dir)
        if self._inodes >= self._max_inodes:
            raise self._no_space(path)
        return parent, name

    def _make(self, parent: Node, name: str, mode: int) -> Node:
        now = self._now()
        gid = 0
        if parent.mode & S.S_ISGID:  # inode_init_owner: setgid directories pass on their group
            gid = parent.gid
            if S.S_ISDIR(mode):
                mode |= S.S_ISGID
        node = Node(self._new_ino(), mode, 0, gid, now)
        if S.S_ISREG(mode):
            node.content = self._new_content()
        if S.S_ISDIR(mode):
            node.parent = parent
            self._set(parent, nlink=parent.nlink + 1)
        self._account_inode(1)
        self._put_entry(parent, name, node)
        self._set(parent, mtime=now, ctime=now)
        return node

    # ---- metadata --------------------------------------------------------------------------
    def _stat_of(self, n: Node) -> Stat:
        if S.S_ISREG(n.mode):
            c = self._content(n)
            size, blocks = c.size, c.allocated() * (BLOCK // 512)
        elif S.S_ISDIR(n.mode):
            size, blocks = BLOCK, BLOCK // 512
        elif S.S_ISLNK(n.mode):
            size, blocks = len(os.fsencode(n.target)), 0
        else:
            size, blocks = 0, 0
        return Stat(n.mode, n.ino, n.nlink, n.uid, n.gid, size, n.atime, n.mtime, n.ctime,
                    n.rdev, blocks, 0)

    def lstat(self, path: str) -> Stat:
        """Metadata of ``path`` without following a final symlink."""
        return self._stat_of(self._node(path, False))

    def stat(self, path: str) -> Stat:
        """Metadata of ``path`` following symlinks."""
        return self._stat_of(self._node(path, True))

    def readdir(self, path: str) -> list[str]:
        """Names in directory ``path`` in creation order."""
        n = self._node(path, True)
        if not S.S_ISDIR(n.mode):
            raise fs_error(errno.ENOTDIR, path)
        return list(self._entries(n))

    def readlink(self, path: str) -> str:
        """Target of the symlink ``path``; EINVAL for anything else."""
        n = self._node(path, False)
        if not S.S_ISLNK(n.mode):
            raise fs_error(errno.EINVAL, path)
        return self._readlink_node(n)

    def statvfs(self, path: str = "/") -> StatVFS:
        """Block and inode counts against the configured capacity."""
        self._node(path, True)
        free = max(0, self._capacity_blocks - self._used_blocks)
        ifree = max(0, self._max_inodes - self._inodes)
        flag = 0 if self.writable else os.ST_RDONLY
        return StatVFS(BLOCK, BLOCK, self._capacity_blocks, free, free, self._max_inodes, ifree, ifree,
                       flag, NAME_MAX)

    # ---- contents --------------------------------------------------------------------------
    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> FileHandle:
        """``open(2)``, following ``open_last_lookups``/``do_open`` for error order."""
        acc = flags & os.O_ACCMODE
        creat, excl = bool(flags & os.O_CREAT), bool(flags & os.O_EXCL)
        parent, name, node, trailing = self._last(path)
        if creat and (trailing or name in _SPECIAL):
            raise fs_error(errno.EISDIR, path)
        if node is not None and S.S_ISLNK(node.mode) and not (creat and excl) and not flags & os.O_NOFOLLOW:
            r = self._resolver.resolve(path, follow=True)
            parent, name, node = r.parent, r.name, r.node
            if node is None and not creat:
                raise fs_error(errno.ENOENT, path)
        if node is None:
            if not creat:
                raise fs_error(errno.ENOENT, path)
            if trailing:
                raise fs_error(errno.EISDIR, path)
            self._ro(path)
            if self._inodes >= self._max_inodes:
                raise self._no_space(path)
            node = self._make(parent, name, S.S_IFREG | (mode & 0o7777))
            return MemoryHandle(self, node, acc != os.O_WRONLY, acc != os.O_RDONLY, path)
        if creat and excl:
            raise fs_error(errno.EEXIST, path)
        if trailing and not S.S_ISDIR(node.mode) and not S.S_ISLNK(node.mode):
            raise fs_error(errno.ENOTDIR, path)
        if S.S_ISLNK(node.mode):
            raise fs_error(errno.ELOOP, path)
        if S.S_ISDIR(node.mode):
            if creat or acc != os.O_RDONLY:
                raise fs_error(errno.EISDIR, path)
            return MemoryHandle(self, node, True, False, path)
        if flags & os.O_DIRECTORY:
            raise fs_error(errno.ENOTDIR, path)
        if not S.S_ISREG(node.mode):
            # FIFOs, sockets and device nodes have no contents in an image: opening them is
            # what a real open would do to the *host's* devices, so it is refused.
            raise fs_error(errno.ENXIO, path)
        if acc != os.O_RDONLY or flags & os.O_TRUNC:
            self._ro(path)
        if flags & os.O_TRUNC:
            self._truncate_node(node, 0, path)
        return MemoryHandle(self, node, acc != os.O_WRONLY, acc != os.O_RDONLY, path)

    def _kill_priv(self, node: Node) -> None:
        """``security_inode_killpriv``: a write, a truncate or a chown of a non-directory
        removes its file capabilities (the ``security.capability`` attribute)."""
        if "security.capability" in self._xattrs(node):
            del self._xattrs_w(node)["security.capability"]

    def _write(self, node: Node, offset: int, data: bytes, path: str) -> int:
        if not data:
            return 0
        self._kill_priv(node)
        c = self._content_w(node)
        need = c.new_blocks(offset, len(data))
        if self._used_blocks + need > self._capacity_blocks:
            raise self._no_space(path)
        before = c.allocated()
        c.pwrite(offset, data)
        self._account_blocks(c.allocated() - before)
        now = self._now()
        self._set(node, mtime=now, ctime=now)
        return len(data)

    def _truncate_node(self, node: Node, length: int, path: str) -> None:
        self._kill_priv(node)
        c = self._content_w(node)
        before = c.allocated()
        c.truncate(length)
        self._account_blocks(c.allocated() - before)
        now = self._now()
        self._set(node, mtime=now, ctime=now)

    def truncate(self, path: str, length: int) -> None:
        """``truncate(2)``: EINVAL for a negative length or a non-regular file."""
        if length < 0:
            raise fs_error(errno.EINVAL, path)
        node = self._node(path, True)
        if S.S_ISDIR(node.mode):
            raise fs_error(errno.EISDIR, path)
        if not S.S_ISREG(node.mode):
            raise fs_error(errno.EINVAL, path)
        self._ro(path)
        self._truncate_node(node, length, path)

    # ---- namespace -------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """``mkdir(2)``: ``vfs_mkdir`` keeps only the permission and sticky bits of ``mode``."""
        parent, name = self._create_checks(path, want_dir=True)
        self._make(parent, name, S.S_IFDIR | (mode & 0o1777))

    def rmdir(self, path: str) -> None:
        """``rmdir(2)``: EBUSY for the root, EINVAL for ``.``, ENOTEMPTY for ``..``."""
        parent, name, node, _ = self._last(path)
        check_rmdir_name(name, path)
        self._ro(path)
        if node is None:
            raise fs_error(errno.ENOENT, path)
        if not S.S_ISDIR(node.mode):
            raise fs_error(errno.ENOTDIR, path)
        if self._entries(node):
            raise fs_error(errno.ENOTEMPTY, path)
        self._remove(parent, name, node)

    def unlink(self, path: str) -> None:
        """``unlink(2)``: EISDIR for directories, ENOTDIR for ``file/``."""
        parent, name, node, trailing = self._last(path)
        if name in _SPECIAL:
            raise fs_error(errno.EISDIR, path)
        self._ro(path)
        if node is None:
            raise fs_error(errno.ENOENT, path)
        if S.S_ISDIR(node.mode):
            raise fs_error(errno.EISDIR, path)
        if trailing:
            raise fs_error(errno.ENOTDIR, path)
        self._remove(parent, name, node)

    def _remove(self, parent: Node, name: str, node: Node) -> None:
        """Drop one directory entry and account for the inode's links."""
        now = self._now()
        self._del_entry(parent, name)
        self._set(parent, mtime=now, ctime=now)
        if S.S_ISDIR(node.mode):
            self._set(parent, nlink=parent.nlink - 1)
            self._set(node, nlink=0)
        else:
            self._set(node, nlink=node.nlink - 1, ctime=now)
        if node.nlink == 0:
            self._account_inode(-1)
            if S.S_ISREG(node.mode):
                self._account_blocks(-self._content(node).allocated())

    def _is_ancestor(self, a: Node, b: Node) -> bool:
        """True if directory ``a`` is ``b`` or one of its ancestors."""
        cur = b
        while True:
            if cur is a:
                return True
            if cur is self.root_node:
                return False
            cur = cur.parent

    def rename(self, src: str, dst: str, noreplace: bool = False) -> None:
        """``renameat2(2)`` with the error order of ``do_renameat2`` and ``vfs_rename``."""
        op, oname, onode, otrail = self._last(src)
        np_, nname, nnode, ntrail = self._last(dst)
        if oname in _SPECIAL:
            raise fs_error(errno.EBUSY, src)
        if nname in _SPECIAL:
            raise fs_error(errno.EEXIST if noreplace else errno.EBUSY, dst)
        self._ro(src)
        if onode is None:
            raise fs_error(errno.ENOENT, src)
        if noreplace and nnode is not None:
            raise fs_error(errno.EEXIST, dst)
        odir = S.S_ISDIR(onode.mode)
        if not odir and (otrail or ntrail):
            raise fs_error(errno.ENOTDIR, src if otrail else dst)
        if odir and self._is_ancestor(onode, np_):
            raise fs_error(errno.EINVAL, src)
        if nnode is not None and S.S_ISDIR(nnode.mode) and self._is_ancestor(nnode, op):
            raise fs_error(errno.ENOTEMPTY, dst)
        if onode is nnode:
            return
        if nnode is not None:
            if odir and not S.S_ISDIR(nnode.mode):
                raise fs_error(errno.ENOTDIR, dst)
            if not odir and S.S_ISDIR(nnode.mode):
                raise fs_error(errno.EISDIR, dst)
            if odir and self._entries(nnode):
                raise fs_error(errno.ENOTEMPTY, dst)
            self._remove(np_, nname, nnode)
        now = self._now()
        self._del_entry(op, oname)
        self._put_entry(np_, nname, onode)
        if odir and op is not np_:
            self._set(onode, parent=np_)
            self._set(op, nlink=op.nlink - 1)
            self._set(np_, nlink=np_.nlink + 1)
        self._set(op, mtime=now, ctime=now)
        self._set(np_, mtime=now, ctime=now)
        self._set(onode, ctime=now)

    def symlink(self, target: str, path: str) -> None:
        """``symlink(2)``; an empty target is ENOENT, as ``getname`` makes it."""
        if target == "":
            raise fs_error(errno.ENOENT, target)
        check_path(target)
        parent, name = self._create_checks(path)
        node = self._make(parent, name, S.S_IFLNK | 0o777)
        self._set(node, target=target)

    def link(self, existing: str, new: str) -> None:
        """``link(2)``: EPERM for directories, EMLINK past ext4's 65000 links."""
        node = self._node(existing, False)
        parent, name = self._create_checks(new)
        if S.S_ISDIR(node.mode):
            raise fs_error(errno.EPERM, existing)
        if node.nlink >= LINK_MAX:
            raise fs_error(errno.EMLINK, existing)
        now = self._now()
        self._put_entry(parent, name, node)
        self._set(parent, mtime=now, ctime=now)
        self._set(node, nlink=node.nlink + 1, ctime=now)

    def mknod(self, path: str, mode: int, rdev: int = 0) -> None:
        """``mknod(2)``: EPERM for directories, EINVAL for an unknown type (checked first)."""
        kind = S.S_IFMT(mode)
        if kind == S.S_IFDIR:
            raise fs_error(errno.EPERM, path)
        if kind not in (0, S.S_IFREG, S.S_IFCHR, S.S_IFBLK, S.S_IFIFO, S.S_IFSOCK):
            raise fs_error(errno.EINVAL, path)
        parent, name = self._create_checks(path)
        node = self._make(parent, name, (kind or S.S_IFREG) | (mode & 0o7777))
        if kind in (S.S_IFCHR, S.S_IFBLK):
            self._set(node, rdev=rdev)

    # ---- attributes ------------------------------------------------------------------------
    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        """``chmod(2)``; a symlink itself cannot be chmodded (EOPNOTSUPP, as fchmodat2)."""
        node = self._node(path, follow_symlinks)
        if S.S_ISLNK(node.mode):
            raise fs_error(errno.EOPNOTSUPP, path)
        self._ro(path)
        self._set(node, mode=S.S_IFMT(node.mode) | (mode & 0o7777), ctime=self._now())

    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """``chown(2)``: like the kernel, clears setuid (and setgid with group-exec) on non-dirs."""
        node = self._node(path, follow_symlinks)
        self._ro(path)
        mode = node.mode
        if not S.S_ISDIR(mode):  # chown_common: ATTR_KILL_SUID | ATTR_KILL_SGID | ATTR_KILL_PRIV
            mode &= ~S.S_ISUID
            if mode & S.S_IXGRP:
                mode &= ~S.S_ISGID
            self._kill_priv(node)
        self._set(node, uid=node.uid if uid == -1 else uid, gid=node.gid if gid == -1 else gid,
                  mode=mode, ctime=self._now())

    def utime(self, path: str, atime_ns: int | None, mtime_ns: int | None, follow_symlinks: bool = True) -> None:
        """``utimensat(2)``; None is UTIME_OMIT. ctime becomes now."""
        node = self._node(path, follow_symlinks)
        self._ro(path)
        self._set(node, atime=node.atime if atime_ns is None else atime_ns,
                  mtime=node.mtime if mtime_ns is None else mtime_ns, ctime=self._now())

    @staticmethod
    def _xattr_name(name: str, path: str) -> None:
        """Name checks done before the path lookup (``setxattr`` copies the name first)."""
        if not name or len(os.fsencode(name)) > XATTR_NAME_MAX:
            raise fs_error(errno.ERANGE, path)

    @staticmethod
    def _xattr_handler(node: Node, name: str, path: str, write: bool) -> None:
        """``xattr_permission`` and ``xattr_resolve_name``: which names this inode accepts."""
        if name.startswith("user.") and not (S.S_ISREG(node.mode) or S.S_ISDIR(node.mode)):
            raise fs_error(errno.EPERM if write else errno.ENODATA, path)
        if name in _XATTR_SYSTEM:
            return
        for p in _XATTR_PREFIXES:
            if name.startswith(p):
                if name == p:
                    raise fs_error(errno.EINVAL, path)
                return
        raise fs_error(errno.EOPNOTSUPP, path)

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        """Value of xattr ``name``; ENODATA if absent."""
        self._xattr_name(name, path)
        node = self._node(path, follow_symlinks)
        self._xattr_handler(node, name, path, False)
        value = self._xattrs(node).get(name)
        if value is None:
            raise fs_error(errno.ENODATA, path)
        return value

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0, follow_symlinks: bool = True) -> None:
        """Set xattr ``name``: EEXIST with XATTR_CREATE, ENODATA with XATTR_REPLACE."""
        if flags & ~(XATTR_CREATE | XATTR_REPLACE):
            raise fs_error(errno.EINVAL, path)
        self._xattr_name(name, path)
        if len(value) > XATTR_SIZE_MAX:
            raise fs_error(errno.E2BIG, path)
        node = self._node(path, follow_symlinks)
        self._ro(path)
        self._xattr_handler(node, name, path, True)
        present = name in self._xattrs(node)
        if flags & XATTR_CREATE and present:
            raise fs_error(errno.EEXIST, path)
        if flags & XATTR_REPLACE and not present:
            raise fs_error(errno.ENODATA, path)
        self._xattrs_w(node)[name] = bytes(value)
        self._set(node, ctime=self._now())

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        """Names of the xattrs of ``path``."""
        return list(self._xattrs(self._node(path, follow_symlinks)))

    def removexattr(self, path: str, name: str, follow_symlinks: bool = True) -> None:
        """Remove xattr ``name``; ENODATA if absent."""
        self._xattr_name(name, path)
        node = self._node(path, follow_symlinks)
        self._ro(path)
        self._xattr_handler(node, name, path, True)
        if name not in self._xattrs(node):
            raise fs_error(errno.ENODATA, path)
        del self._xattrs_w(node)[name]
        self._set(node, ctime=self._now())


def populate(fs: FileSystem, spec: dict, base: str = "/") -> None:
    """Build a tree from a nested dict: str/bytes values are files, dicts are directories,
    ``("->", target)`` tuples are symlinks. A small helper for tests and examples."""
    for name, value in spec.items():
        path = base.rstrip("/") + "/" + name
        if isinstance(value, dict):
            fs.mkdir(path, 0o755)
            populate(fs, value, path)
        elif isinstance(value, tuple) and value[0] == "->":
            fs.symlink(value[1], path)
        else:
            fs.write_bytes(path, value.encode() if isinstance(value, str) else value)


__all__ = ["MemoryFS", "MemoryHandle", "Node", "SparseContent", "populate", "split_components"]
