"""HostDirFS: a directory on the host used as the root of an image tree.

Used by tests (the behaviour suite compares every backend with the host kernel) and for
patching an unpacked root tree. The one rule that matters here is confinement: the tree may
contain absolute symlinks such as ``/etc/alternatives/x -> /usr/bin/y`` that must resolve
against the *tree's* root, never the host's. So the host kernel never resolves more than one
component of a path:

- every component is looked up by :class:`nuwa.fs.model.Resolver` with ``fstatat`` on a
  directory file descriptor (``dir_fd=``, ``follow_symlinks=False``);
- directory descriptors are opened one component at a time with ``O_NOFOLLOW|O_DIRECTORY``,
  so a directory swapped for a symlink behind our back fails instead of escaping;
- every final operation is an ``*at`` call on the parent's descriptor with a single name that
  is never ``.`` or ``..``, and never follows a symlink (``AT_SYMLINK_NOFOLLOW``/``O_NOFOLLOW``).

Errors the host kernel reports for the final step are re-raised with the image path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as S

from nuwa.errors import InvalidInputError, fs_error
from nuwa.fs.memory import MemoryFS
from nuwa.fs.model import FileHandle, FileSystem, Resolver, Stat, StatVFS, check_path, check_rmdir_name

_SPECIAL = ("", ".", "..")
_RENAME_NOREPLACE = 1  # include/uapi/linux/fs.h
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FD_CACHE_MAX = 256

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


class _HNode:
    """A resolved entry: its components below the root and the ``lstat`` taken when found."""

    __slots__ = ("comps", "st")

    def __init__(self, comps: tuple, st: os.stat_result):
        self.comps = comps
        self.st = st


def _to_stat(st: os.stat_result) -> Stat:
    return Stat(st.st_mode, st.st_ino, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
                st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_rdev, st.st_blocks, st.st_dev)


class _HostHandle(FileHandle):
    """An open regular file of the host tree (a real descriptor, opened with O_NOFOLLOW)."""

    def __init__(self, fd: int, path: str):
        self.fd, self.path = fd, path

    def pread(self, offset: int, n: int) -> bytes:
        try:
            out = []
            while n > 0:
                chunk = os.pread(self.fd, min(n, 1 << 24), offset)
                if not chunk:
                    break
                out.append(chunk)
                offset += len(chunk)
                n -= len(chunk)
            return b"".join(out)
        except OSError as e:
            raise fs_error(e.errno, self.path) from None

    def pwrite(self, offset: int, data: bytes) -> int:
        view, done = memoryview(bytes(data)), 0
        try:
            while done < len(view):
                done += os.pwrite(self.fd, view[done:], offset + done)
        except OSError as e:
            raise fs_error(e.errno, self.path) from None
        return done

    def truncate(self, length: int) -> None:
        try:
            os.ftruncate(self.fd, length)
        except OSError as e:
            raise fs_error(e.errno, self.path) from None

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _DirHandle(FileHandle):
    """``open(dir, O_RDONLY)`` succeeds on Linux; reading it is EISDIR."""

    def __init__(self, path: str):
        self.path = path

    def pread(self, offset: int, n: int) -> bytes:
        raise fs_error(errno.EISDIR, self.path)

    def pwrite(self, offset: int, data: bytes) -> int:
        raise fs_error(errno.EBADF, self.path)

    def truncate(self, length: int) -> None:
        raise fs_error(errno.EINVAL, self.path)

    def size(self) -> int:
        return 0


class HostDirFS(FileSystem):
    """The tree under ``path`` on the host; ``writable=False`` makes every mutator EROFS."""

    def __init__(self, path: str, writable: bool = False):
        self.path = os.path.abspath(path)
        self.writable = writable
        try:
            self._root_fd = os.open(self.path, _DIR_FLAGS)
        except OSError as e:
            raise InvalidInputError(f"cannot open directory: {e.strerror}", where=self.path) from None
        self._fds: dict[tuple, int] = {(): self._root_fd}
        self._resolver = Resolver(_HNode((), os.fstat(self._root_fd)), self._lookup, self._parent,
                                  lambda n: n.st.st_mode, self._readlink_node)

    # ---- descriptors and resolution --------------------------------------------------------
    def _dirfd(self, comps: tuple) -> int:
        fd = self._fds.get(comps)
        if fd is not None:
            return fd
        parent = self._dirfd(comps[:-1])
        fd = os.open(comps[-1], _DIR_FLAGS, dir_fd=parent)
        if len(self._fds) >= _FD_CACHE_MAX:
            self._drop_fds()
        self._fds[comps] = fd
        return fd

    def _drop_fds(self) -> None:
        """Forget cached directory descriptors (after a directory moved or vanished)."""
        for comps, fd in list(self._fds.items()):
            if comps:
                os.close(fd)
        self._fds = {(): self._root_fd}

    def _lookup(self, d: _HNode, name: str):
        try:
            st = os.lstat(name, dir_fd=self._dirfd(d.comps))
        except FileNotFoundError:
            return None
        return _HNode(d.comps + (name,), st)

    def _parent(self, n: _HNode) -> _HNode:
        comps = n.comps[:-1]
        return _HNode(comps, os.fstat(self._dirfd(comps)))

    def _readlink_node(self, n: _HNode) -> str:
        return os.readlink(n.comps[-1], dir_fd=self._dirfd(n.comps[:-1]))

    def _resolve(self, path: str, follow: bool):
        try:
            return self._resolver.resolve(path, follow)
        except OSError as e:  # a host error names one component; report the image path
            raise fs_error(e.errno, path) from None

    def _node(self, path: str, follow: bool) -> _HNode:
        n = self._resolve(path, follow).node
        if n is None:
            raise fs_error(errno.ENOENT, path)
        if not n.comps:  # the root's cached stat is stale
            n = _HNode((), os.fstat(self._root_fd))
        return n

    def _last(self, path: str):
        """Parent, name, node (unfollowed) and trailing-slash flag, as in MemoryFS._last."""
        path = check_path(path)
        if path == "":
            raise fs_error(errno.ENOENT, path)
        stripped = path.rstrip("/")
        trailing = stripped != path and stripped != ""
        r = self._resolve(stripped or "/", False)
        return r.parent, r.name, r.node, trailing

    def _at(self, n: _HNode):
        """(dir_fd, name) for an ``*at`` call on ``n``; name None means "the root fd itself"."""
        if not n.comps:
            return self._root_fd, None
        return self._dirfd(n.comps[:-1]), n.comps[-1]

    def _create_checks(self, path: str, want_dir: bool = False):
        parent, name = self._filename_create(path, want_dir)
        return self._dirfd(parent.comps), name

    @staticmethod
    def _host(path: str, fn, *args, **kw):
        """Run one host call; its OSError is re-raised naming the image path."""
        try:
            return fn(*args, **kw)
        except OSError as e:
            raise fs_error(e.errno, path) from None

    # ---- metadata --------------------------------------------------------------------------
    def lstat(self, path: str) -> Stat:
        """Metadata of ``path`` without following a final symlink."""
        return _to_stat(self._node(path, False).st)

    def stat(self, path: str) -> Stat:
        """Metadata of ``path`` following symlinks (inside the tree)."""
        return _to_stat(self._node(path, True).st)

    def readdir(self, path: str) -> list[str]:
        """Names in directory ``path`` (host order)."""
        n = self._node(path, True)
        if not S.S_ISDIR(n.st.st_mode):
            raise fs_error(errno.ENOTDIR, path)
        return self._host(path, os.listdir, self._dirfd(n.comps))

    def readdir_stat(self, path: str) -> list[tuple[str, Stat]]:
        """``readdir`` with each name's ``lstat``: one resolution of ``path``, then one
        ``fstatat(dir_fd, name, AT_SYMLINK_NOFOLLOW)`` per entry on that directory's
        descriptor (``scandir``), the same host calls ``lstat`` ends in, without walking the
        path again for each name. Nothing is kept after the call."""
        n = self._node(path, True)
        if not S.S_ISDIR(n.st.st_mode):
            raise fs_error(errno.ENOTDIR, path)
        fd = self._dirfd(n.comps)

        def scan():
            with os.scandir(fd) as it:
                return [(e.name, _to_stat(e.stat(follow_symlinks=False))) for e in it]
        return self._host(path, scan)

    def readlink(self, path: str) -> str:
        """Target of symlink ``path``."""
        n = self._node(path, False)
        if not S.S_ISLNK(n.st.st_mode):
            raise fs_error(errno.EINVAL, path)
        return self._readlink_node(n)

    def statvfs(self, path: str = "/") -> StatVFS:
        """The host filesystem's counts (read-only flag reflects this handle)."""
        self._node(path, True)
        v = os.statvfs(self._root_fd)
        flag = v.f_flag | (0 if self.writable else os.ST_RDONLY)
        return StatVFS(v.f_bsize, v.f_frsize, v.f_blocks, v.f_bfree, v.f_bavail, v.f_files,
                       v.f_ffree, v.f_favail, flag, v.f_namemax)

    # ---- contents --------------------------------------------------------------------------
    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> FileHandle:
        """``open(2)`` with MemoryFS's error order; the host opens only regular files."""
        acc = flags & os.O_ACCMODE
        creat, excl = bool(flags & os.O_CREAT), bool(flags & os.O_EXCL)
        parent, name, node, trailing = self._last(path)
        if creat and (trailing or name in _SPECIAL):
            raise fs_error(errno.EISDIR, path)
        if node is not None and S.S_ISLNK(node.st.st_mode) and not (creat and excl) and not flags & os.O_NOFOLLOW:
            r = self._resolve(path, True)
            parent, name, node = r.parent, r.name, r.node
            if node is None and not creat:
                raise fs_error(errno.ENOENT, path)
        host_flags = acc | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
        if node is None:
            if not creat:
                raise fs_error(errno.ENOENT, path)
            self._ro(path)
            pfd = self._dirfd(parent.comps)
            fd = self._host(path, os.open, name, host_flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=pfd)
            os.fchmod(fd, mode & 0o7777)  # exact mode: no umask, as the protocol says
            return _HostHandle(fd, path)
        if creat and excl:
            raise fs_error(errno.EEXIST, path)
        kind = S.S_IFMT(node.st.st_mode)
        if trailing and kind not in (S.S_IFDIR, S.S_IFLNK):
            raise fs_error(errno.ENOTDIR, path)
        if kind == S.S_IFLNK:
            raise fs_error(errno.ELOOP, path)
        if kind == S.S_IFDIR:
            if creat or acc != os.O_RDONLY:
                raise fs_error(errno.EISDIR, path)
            return _DirHandle(path)
        if flags & os.O_DIRECTORY:
            raise fs_error(errno.ENOTDIR, path)
        if kind != S.S_IFREG:
            raise fs_error(errno.ENXIO, path)  # never open a host device or FIFO
        if acc != os.O_RDONLY or flags & os.O_TRUNC:
            self._ro(path)
        dfd, nm = self._at(node)
        if acc == os.O_RDONLY and not flags & os.O_TRUNC:
            host_flags |= os.O_NOATIME  # reading the tree leaves it byte-identical, atimes included
        try:
            fd = os.open(nm, host_flags | (flags & os.O_TRUNC), dir_fd=dfd)
        except PermissionError:  # O_NOATIME needs ownership or CAP_FOWNER
            fd = self._host(path, os.open, nm, (host_flags & ~os.O_NOATIME) | (flags & os.O_TRUNC), dir_fd=dfd)
        except OSError as e:
            raise fs_error(e.errno, path) from None
        if not S.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise fs_error(errno.ENXIO, path)
        return _HostHandle(fd, path)

    def truncate(self, path: str, length: int) -> None:
        """``truncate(2)``."""
        if length < 0:
            raise fs_error(errno.EINVAL, path)
        n = self._node(path, True)
        if S.S_ISDIR(n.st.st_mode):
            raise fs_error(errno.EISDIR, path)
        if not S.S_ISREG(n.st.st_mode):
            raise fs_error(errno.EINVAL, path)
        self._ro(path)
        h = self.open_handle(path, os.O_WRONLY)
        try:
            h.truncate(length)
        finally:
            h.close()

    # ---- namespace -------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """``mkdir(2)`` with the exact mode (the host umask is undone)."""
        pfd, name = self._create_checks(path, want_dir=True)
        self._host(path, os.mkdir, name, 0o700, dir_fd=pfd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            inherited = os.fstat(fd).st_mode & S.S_ISGID
            os.fchmod(fd, (mode & 0o1777) | inherited)
        finally:
            os.close(fd)

    def rmdir(self, path: str) -> None:
        """``rmdir(2)``."""
        parent, name, node, _ = self._last(path)
        check_rmdir_name(name, path)
        self._ro(path)
        if node is None:
            raise fs_error(errno.ENOENT, path)
        self._host(path, os.rmdir, name, dir_fd=self._dirfd(parent.comps))
        self._drop_fds()

    def unlink(self, path: str) -> None:
        """``unlink(2)``."""
        parent, name, node, trailing = self._last(path)
        if name in _SPECIAL:
            raise fs_error(errno.EISDIR, path)
        self._ro(path)
        if node is None:
            raise fs_error(errno.ENOENT, path)
        if S.S_ISDIR(node.st.st_mode):
            raise fs_error(errno.EISDIR, path)
        if trailing:
            raise fs_error(errno.ENOTDIR, path)
        self._host(path, os.unlink, name, dir_fd=self._dirfd(parent.comps))

    def rename(self, src: str, dst: str, noreplace: bool = False) -> None:
        """``renameat2(2)``; ancestor and emptiness checks are the host kernel's."""
        op, oname, onode, otrail = self._last(src)
        np_, nname, nnode, ntrail = self._last(dst)
        if oname in _SPECIAL:
            raise fs_error(errno.EBUSY, src)
        if nname in _SPECIAL:
            raise fs_error(errno.EEXIST if noreplace else errno.EBUSY, dst)
        self._ro(src)
        if onode is None:
            raise fs_error(errno.ENOENT, src)
        if not S.S_ISDIR(onode.st.st_mode) and (otrail or ntrail):
            raise fs_error(errno.ENOTDIR, src if otrail else dst)
        ofd, nfd = self._dirfd(op.comps), self._dirfd(np_.comps)
        if noreplace or _renameat2 is not None:
            if _renameat2 is None:
                raise fs_error(errno.ENOSYS, src)
            rc = _renameat2(ofd, os.fsencode(oname), nfd, os.fsencode(nname),
                            _RENAME_NOREPLACE if noreplace else 0)
            if rc != 0:
                raise fs_error(ctypes.get_errno(), src)
        else:
            self._host(src, os.rename, oname, nname, src_dir_fd=ofd, dst_dir_fd=nfd)
        if S.S_ISDIR(onode.st.st_mode):
            self._drop_fds()

    def symlink(self, target: str, path: str) -> None:
        """``symlink(2)``."""
        if target == "":
            raise fs_error(errno.ENOENT, target)
        check_path(target)
        pfd, name = self._create_checks(path)
        self._host(path, os.symlink, target, name, dir_fd=pfd)

    def link(self, existing: str, new: str) -> None:
        """``link(2)`` without following a final symlink in ``existing``."""
        node = self._node(existing, False)
        pfd, name = self._create_checks(new)
        if S.S_ISDIR(node.st.st_mode):
            raise fs_error(errno.EPERM, existing)
        ofd, oname = self._at(node)
        self._host(new, os.link, oname, name, src_dir_fd=ofd, dst_dir_fd=pfd, follow_symlinks=False)

    def mknod(self, path: str, mode: int, rdev: int = 0) -> None:
        """``mknod(2)`` with the exact mode."""
        kind = S.S_IFMT(mode)
        if kind == S.S_IFDIR:
            raise fs_error(errno.EPERM, path)
        if kind not in (0, S.S_IFREG, S.S_IFCHR, S.S_IFBLK, S.S_IFIFO, S.S_IFSOCK):
            raise fs_error(errno.EINVAL, path)
        pfd, name = self._create_checks(path)
        self._host(path, os.mknod, name, (kind or S.S_IFREG) | 0o600, rdev, dir_fd=pfd)
        self._host(path, os.chmod, name, mode & 0o7777, dir_fd=pfd, follow_symlinks=False)

    # ---- attributes ------------------------------------------------------------------------
    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        """``chmod(2)``; EOPNOTSUPP on a symlink itself."""
        n = self._node(path, follow_symlinks)
        if S.S_ISLNK(n.st.st_mode):
            raise fs_error(errno.EOPNOTSUPP, path)
        self._ro(path)
        dfd, name = self._at(n)
        if name is None:
            self._host(path, os.chmod, dfd, mode & 0o7777)
        else:
            self._host(path, os.chmod, name, mode & 0o7777, dir_fd=dfd, follow_symlinks=False)

    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """``chown(2)``/``lchown(2)``."""
        n = self._node(path, follow_symlinks)
        self._ro(path)
        dfd, name = self._at(n)
        if name is None:
            self._host(path, os.chown, dfd, uid, gid)
        else:
            self._host(path, os.chown, name, uid, gid, dir_fd=dfd, follow_symlinks=False)

    def utime(self, path: str, atime_ns: int | None, mtime_ns: int | None, follow_symlinks: bool = True) -> None:
        """``utimensat(2)``; None keeps the current value."""
        n = self._node(path, follow_symlinks)
        self._ro(path)
        ns = (n.st.st_atime_ns if atime_ns is None else atime_ns, n.st.st_mtime_ns if mtime_ns is None else mtime_ns)
        dfd, name = self._at(n)
        if name is None:
            self._host(path, os.utime, dfd, ns=ns)
        else:
            self._host(path, os.utime, name, ns=ns, dir_fd=dfd, follow_symlinks=False)

    def _xpath(self, n: _HNode):
        """What the ``*xattr`` calls take: the root fd, or ``/proc/self/fd/<parent>/<name>``.

        Python's xattr functions have no ``dir_fd``; the ``/proc`` magic link pins the parent
        directory we resolved, and ``follow_symlinks=False`` keeps the last name unfollowed.
        """
        dfd, name = self._at(n)
        return dfd if name is None else f"/proc/self/fd/{dfd}/{name}"

    def _x(self, path: str, fn, n: _HNode, *args):
        """One xattr call on ``n`` (an fd takes no ``follow_symlinks``)."""
        target = self._xpath(n)
        if isinstance(target, int):
            return self._host(path, fn, target, *args)
        return self._host(path, fn, target, *args, follow_symlinks=False)

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        """Value of xattr ``name``."""
        MemoryFS._xattr_name(name, path)
        n = self._node(path, follow_symlinks)
        return self._x(path, os.getxattr, n, name)

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0, follow_symlinks: bool = True) -> None:
        """Set xattr ``name`` (XATTR_CREATE / XATTR_REPLACE)."""
        if flags & ~3:
            raise fs_error(errno.EINVAL, path)
        MemoryFS._xattr_name(name, path)
        if len(value) > 65536:
            raise fs_error(errno.E2BIG, path)
        n = self._node(path, follow_symlinks)
        self._ro(path)
        self._x(path, os.setxattr, n, name, bytes(value), flags)

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        """Names of the xattrs of ``path``."""
        n = self._node(path, follow_symlinks)
        return self._x(path, os.listxattr, n)

    def removexattr(self, path: str, name: str, follow_symlinks: bool = True) -> None:
        """Remove xattr ``name``."""
        MemoryFS._xattr_name(name, path)
        n = self._node(path, follow_symlinks)
        self._ro(path)
        self._x(path, os.removexattr, n, name)

    # ---- lifecycle -------------------------------------------------------------------------
    def flush(self) -> None:
        """Make written data durable (``syncfs`` is not exposed; fsync the root is enough here)."""
        if self.writable and self._root_fd >= 0:
            os.fsync(self._root_fd)

    def close(self) -> None:
        """Close every descriptor."""
        if self._root_fd >= 0:
            self.flush()
            self._drop_fds()
            os.close(self._root_fd)
            self._root_fd = -1
            self._fds = {}

    def __del__(self) -> None:
        # An unclosed HostDirFS must not leak its directory descriptors (up to 256 each).
        try:
            if getattr(self, "_root_fd", -1) >= 0:
                for comps, fd in self._fds.items():
                    if comps:
                        os.close(fd)
                os.close(self._root_fd)
                self._root_fd = -1
        except OSError:
            pass
