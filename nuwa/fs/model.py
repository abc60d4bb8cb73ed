"""The filesystem-model protocol: POSIX-like calls on paths inside an image.

Everything above the filesystem (dpkg's unpacking, the script simulator, dry runs and diffs)
sees only this protocol. Backends: the ext4 engine, an in-memory tree, a host directory, and
the overlay transaction that wraps any of them.

Conventions (they mirror the Linux system calls coreutils and dpkg make):

- Paths are ``str`` (non-UTF-8 bytes carried with ``surrogateescape``, as ``os`` does) and are
  always interpreted inside the image: relative paths are relative to the image root, an
  absolute symlink resolves against the image root, ``..`` at the root stays at the root, and
  more than 40 symlinks in one resolution give ``ELOOP``. Nothing can name a host path.
- Errors are ``OSError`` with the errno Linux gives (see :func:`nuwa.errors.fs_error`);
  a path containing NUL is an ``InvalidInputError`` (a ``ValueError``, like ``os``).
- Calls that take ``follow_symlinks`` default to following, like their ``os`` counterparts;
  ``lstat``, ``readlink``, ``unlink``, ``rename`` and ``link`` never follow the last component.
- Times are integer nanoseconds since the epoch.
- ``readdir`` returns the names in a directory without ``.`` and ``..``, in the backend's
  order (ext4: on-disk order). Callers that need a stable order sort.
- Every mutator on a read-only filesystem raises ``OSError(EROFS)``.
"""

from __future__ import annotations

import errno
import io
import os
import stat as _stat
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator

from nuwa.errors import InvalidInputError, fs_error

#: Linux limits (include/uapi/linux/limits.h, fs/namei.c)
NAME_MAX = 255
PATH_MAX = 4096
MAXSYMLINKS = 40

#: setxattr flags (include/uapi/linux/xattr.h)
XATTR_CREATE = 1
XATTR_REPLACE = 2


@dataclass(frozen=True)
class Stat:
    """What ``lstat``/``stat`` return; field names follow ``os.stat_result``."""

    st_mode: int
    st_ino: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_atime_ns: int = 0
    st_mtime_ns: int = 0
    st_ctime_ns: int = 0
    st_rdev: int = 0
    st_blocks: int = 0  # 512-byte units, as stat(2)
    st_dev: int = 0

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.st_mode)

    @property
    def is_reg(self) -> bool:
        return _stat.S_ISREG(self.st_mode)

    @property
    def is_lnk(self) -> bool:
        return _stat.S_ISLNK(self.st_mode)

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9


@dataclass(frozen=True)
class StatVFS:
    """What ``statvfs`` returns; field names follow ``os.statvfs_result``."""

    f_bsize: int
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_favail: int
    f_flag: int = 0
    f_namemax: int = NAME_MAX


class FileHandle(ABC):
    """An open file: positional primitives that backends implement."""

    @abstractmethod
    def pread(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (short at end of file, empty past it)."""

    @abstractmethod
    def pwrite(self, offset: int, data: bytes) -> int:
        """Write at ``offset``, extending the file (a gap reads as zeros); returns ``len(data)``."""

    @abstractmethod
    def truncate(self, length: int) -> None:
        """Set the file's size, like ``ftruncate``."""

    @abstractmethod
    def size(self) -> int:
        """The file's current size."""

    def close(self) -> None:
        """Release the handle (the base class has nothing to release)."""


class FileObject(io.RawIOBase):
    """A Python file object over a :class:`FileHandle` (``read``/``write``/``seek``/``tell``)."""

    def __init__(self, handle: FileHandle, readable: bool, writable: bool, append: bool, name: str):
        self._h = handle
        self._readable = readable
        self._writable = writable
        self._append = append
        self._pos = 0
        self.name = name

    def readable(self) -> bool:
        return self._readable

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if not self._readable:
            raise fs_error(errno.EBADF, self.name)
        data = self._h.pread(self._pos, len(b))
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if not self._readable:
            raise fs_error(errno.EBADF, self.name)
        if size is None or size < 0:
            size = max(0, self._h.size() - self._pos)
        data = self._h.pread(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def write(self, b) -> int:
        if not self._writable:
            raise fs_error(errno.EBADF, self.name)
        if self._append:
            self._pos = self._h.size()
        n = self._h.pwrite(self._pos, bytes(b))
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._h.size() + offset
        else:
            raise fs_error(errno.EINVAL, self.name)
        if pos < 0:
            raise fs_error(errno.EINVAL, self.name)
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        if not self._writable:
            raise fs_error(errno.EBADF, self.name)
        size = self._pos if size is None else size
        self._h.truncate(size)
        return size

    def close(self) -> None:
        if not self.closed:
            self._h.close()
        super().close()


def check_path(path: str) -> str:
    """Validate a path argument: ``str``, no NUL, not longer than PATH_MAX bytes."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be str, not {type(path).__name__}")
    if "\0" in path:
        raise InvalidInputError("embedded null byte in path", where=repr(path))
    # an ASCII string is its own encoding: no need to build the bytes to count them
    if (len(path) if path.isascii() else len(os.fsencode(path))) >= PATH_MAX:
        raise fs_error(errno.ENAMETOOLONG, path)
    return path


def split_components(path: str) -> list[str]:
    """The non-empty components of ``path`` (``.`` kept: resolution handles it)."""
    return [c for c in path.split("/") if c]


def check_rmdir_name(name: str, path: str) -> None:
    """rmdir(2)'s answers for the special last components, before anything else: the root
    (``name`` "") is EBUSY, ``.`` is EINVAL, ``..`` is ENOTEMPTY (fs/namei.c do_rmdir)."""
    if name == "":
        raise fs_error(errno.EBUSY, path)
    if name == ".":
        raise fs_error(errno.EINVAL, path)
    if name == "..":
        raise fs_error(errno.ENOTEMPTY, path)


def check_name(name: str, path: str) -> None:
    """ENAMETOOLONG for a component over NAME_MAX bytes."""
    if (len(name) if name.isascii() else len(os.fsencode(name))) > NAME_MAX:
        raise fs_error(errno.ENAMETOOLONG, path)


@dataclass
class Resolved:
    """The result of resolving a path: the parent directory and the last entry.

    ``node`` is None when the last component does not exist (the caller decides whether that
    is ENOENT or a place to create). ``name`` is "" when the path names the root itself, and
    may be "." or ".." when the path ends in one (creation there gives EEXIST).
    """

    parent: object
    name: str
    node: object | None
    trailing_slash: bool = False


@dataclass
class Resolver:
    """Generic confined path resolution over any node-based backend.

    A backend supplies four callbacks on its own node handles (ext4 inode numbers, memory
    objects, ...): ``lookup(dir, name) -> node | None`` (``name`` never "." or ".."),
    ``parent(dir) -> node`` (the root's parent is the root), ``mode(node) -> st_mode``,
    ``readlink(node) -> str``. Mirrors the kernel's ``link_path_walk``.

    With ``cache=True`` it keeps a dentry cache, as the kernel's dcache does for the same
    reason (a dpkg run resolves the same few hundred directories tens of thousands of times):
    the directory every path's *parent part* (all components but the last, symlinks followed)
    resolves to, with the symlink hops spent getting there, so a later path under it walks
    only its last component. Only successful resolutions to a directory are kept, so creating
    a name never makes an entry wrong; the backend calls :meth:`invalidate` whenever a name
    is removed or replaced, a directory moves or a symlink's target changes.
    """

    root: object
    lookup: Callable[[object, str], object | None]
    parent: Callable[[object], object]
    mode: Callable[[object], int]
    readlink: Callable[[object], str]
    _hops: int = field(default=0, repr=False)
    cache: bool = False
    _dirs: dict = field(default_factory=dict, repr=False)
    #: the same entries keyed by the path's own text before its last slash, so a hit costs one
    #: ``rpartition`` instead of splitting and re-joining the components
    _heads: dict = field(default_factory=dict, repr=False)

    #: entries kept before the cache starts over (bounds its memory on huge trees)
    CACHE_MAX = 1 << 16

    def invalidate(self) -> None:
        """Forget every cached resolution (a name was removed or replaced somewhere)."""
        self._dirs.clear()
        self._heads.clear()

    def resolve(self, path: str, follow: bool = True) -> Resolved:
        """Resolve ``path``; ``follow`` says whether a symlink in the last component is followed.

        A trailing slash forces following (as the kernel does) and requires a directory.
        """
        path = check_path(path)
        if self.cache:
            head, _sep, last = path.rpartition("/")
            hit = self._heads.get(head) if last and last != "." and last != ".." else None
            if hit is not None:  # no trailing slash, a plain last name: look up only that
                cur = hit[0]  # a directory (only those are kept)
                check_name(last, path)
                nxt = self.lookup(cur, last)
                if nxt is None:
                    return Resolved(cur, last, None)
                if not follow or not _stat.S_ISLNK(self.mode(nxt)):
                    return Resolved(cur, last, nxt)
                return self._walk(cur, [last], follow, [hit[1]], path)  # a symlink to follow
        if path == "":
            raise fs_error(errno.ENOENT, path)
        hops = [0]
        trailing = path.endswith("/") and path.strip("/") != ""
        comps = split_components(path)
        if self.cache and len(comps) > 1:
            start = self._prefix(comps, hops, path)
            if not trailing and comps[-1] not in (".", "..") and "/".join(comps[:-1]) in self._dirs:
                # _prefix kept it (a directory): remember it under this path's own head too
                if len(self._heads) >= self.CACHE_MAX:
                    self._heads.clear()
                self._heads[path.rpartition("/")[0]] = (start, hops[0])
            res = self._walk(start, comps[-1:], follow or trailing, hops, path)
        else:
            res = self._walk(self.root, comps, follow or trailing, hops, path)
        res.trailing_slash = trailing
        if trailing and res.node is not None and not _stat.S_ISDIR(self.mode(res.node)):
            raise fs_error(errno.ENOTDIR, path)
        return res

    def _prefix(self, comps: list[str], hops: list[int], path: str):
        """The node all but the last of ``comps`` resolve to (symlinks followed), from the
        cache or walked and cached; raises what the full walk would raise on the way there.
        ``hops`` receives the symlinks followed to get there (ELOOP counts the whole path)."""
        key = "/".join(comps[:-1])
        hit = self._dirs.get(key)
        if hit is not None:
            hops[0] = hit[1]
            return hit[0]
        res = self._walk(self.root, comps[:-1], True, hops, path)
        if res.node is None:  # a missing directory on the way: the full walk's ENOENT
            raise fs_error(errno.ENOENT, path)
        if _stat.S_ISDIR(self.mode(res.node)):  # a non-directory is not kept: ENOTDIR comes next
            if len(self._dirs) >= self.CACHE_MAX:
                self._dirs.clear()
            self._dirs[key] = (res.node, hops[0])
        return res.node

    def _walk(self, start, comps: list[str], follow_last: bool, hops: list[int], path: str) -> Resolved:
        cur = start
        if not comps:
            return Resolved(self.parent(cur), "", cur)
        for i, name in enumerate(comps):
            last = i == len(comps) - 1
            check_name(name, path)
            if not _stat.S_ISDIR(self.mode(cur)):
                raise fs_error(errno.ENOTDIR, path)
            if name == ".":
                nxt = cur
            elif name == "..":
                nxt = self.parent(cur)
            else:
                nxt = self.lookup(cur, name)
            if nxt is None:
                if last:
                    return Resolved(cur, name, None)
                raise fs_error(errno.ENOENT, path)
            if _stat.S_ISLNK(self.mode(nxt)) and (not last or follow_last):
                hops[0] += 1
                if hops[0] > MAXSYMLINKS:
                    raise fs_error(errno.ELOOP, path)
                target = self.readlink(nxt)
                if target == "":
                    raise fs_error(errno.ENOENT, path)
                base = self.root if target.startswith("/") else cur
                sub = self._walk(base, split_components(target), True, hops, path)
                if last:
                    return sub
                if sub.node is None:
                    raise fs_error(errno.ENOENT, path)
                cur = sub.node
                continue
            if last:
                return Resolved(cur, name, nxt)
            cur = nxt
        raise AssertionError("unreachable")


class FileSystem(ABC):
    """The protocol. Backends implement the abstract methods; the rest is built on them."""

    #: False when every mutator raises EROFS
    writable: bool = False

    # ---- metadata -------------------------------------------------------------------------
    @abstractmethod
    def lstat(self, path: str) -> Stat:
        """Metadata of ``path`` without following a final symlink."""

    @abstractmethod
    def stat(self, path: str) -> Stat:
        """Metadata of ``path`` following symlinks."""

    @abstractmethod
    def readdir(self, path: str) -> list[str]:
        """Names in directory ``path`` (no ``.``/``..``)."""

    @abstractmethod
    def readlink(self, path: str) -> str:
        """The target of symlink ``path`` (EINVAL if it is not a symlink)."""

    @abstractmethod
    def statvfs(self, path: str = "/") -> StatVFS:
        """Filesystem-wide counts."""

    # ---- contents -------------------------------------------------------------------------
    @abstractmethod
    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> FileHandle:
        """Open like ``open(2)``: ``os.O_*`` flags (O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, ...).

        ``mode`` is used when creating (no umask is applied: callers apply their own).
        """

    @abstractmethod
    def truncate(self, path: str, length: int) -> None:
        """``truncate(2)``."""

    # ---- namespace ------------------------------------------------------------------------
    @abstractmethod
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """``mkdir(2)`` (no umask applied)."""

    @abstractmethod
    def rmdir(self, path: str) -> None:
        """``rmdir(2)``."""

    @abstractmethod
    def unlink(self, path: str) -> None:
        """``unlink(2)``."""

    @abstractmethod
    def rename(self, src: str, dst: str, noreplace: bool = False) -> None:
        """``rename(2)``; ``noreplace`` is ``renameat2(RENAME_NOREPLACE)``."""

    @abstractmethod
    def symlink(self, target: str, path: str) -> None:
        """``symlink(2)``: create ``path`` pointing at ``target``."""

    @abstractmethod
    def link(self, existing: str, new: str) -> None:
        """``link(2)`` (does not follow a final symlink in ``existing``, like linkat without flags)."""

    @abstractmethod
    def mknod(self, path: str, mode: int, rdev: int = 0) -> None:
        """``mknod(2)``: FIFOs, sockets, character and block devices (``mode`` includes the type)."""

    # ---- attributes -----------------------------------------------------------------------
    @abstractmethod
    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        """``chmod(2)``; permission bits and setuid/setgid/sticky (07777)."""

    @abstractmethod
    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """``chown(2)``/``lchown(2)``; -1 leaves a value unchanged."""

    @abstractmethod
    def utime(self, path: str, atime_ns: int | None, mtime_ns: int | None, follow_symlinks: bool = True) -> None:
        """``utimensat(2)``; None leaves a time unchanged. ctime becomes "now"."""

    @abstractmethod
    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        """Value of xattr ``name`` (``ENODATA`` if absent)."""

    @abstractmethod
    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0, follow_symlinks: bool = True) -> None:
        """Set xattr ``name``; ``flags`` is XATTR_CREATE or XATTR_REPLACE."""

    @abstractmethod
    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        """Names of the xattrs of ``path``."""

    @abstractmethod
    def removexattr(self, path: str, name: str, follow_symlinks: bool = True) -> None:
        """Remove xattr ``name`` (``ENODATA`` if absent)."""

    # ---- checks shared by node-based backends ---------------------------------------------
    def _ro(self, path: str) -> None:
        """EROFS for a mutator on a read-only filesystem."""
        if not self.writable:
            raise fs_error(errno.EROFS, path)

    def _filename_create(self, path: str, want_dir: bool = False):
        """``filename_create``'s checks in the kernel's order: EEXIST (an existing entry or a
        special name), then ENOENT for a trailing slash on a non-directory, then EROFS.

        Uses the backend's ``_last(path) -> (parent, name, node, trailing_slash)``; returns
        ``(parent, name)``.
        """
        parent, name, node, trailing = self._last(path)
        if name in ("", ".", "..") or node is not None:
            raise fs_error(errno.EEXIST, path)
        if trailing and not want_dir:
            raise fs_error(errno.ENOENT, path)
        self._ro(path)
        return parent, name

    # ---- lifecycle ------------------------------------------------------------------------
    def flush(self) -> None:
        """Write pending state to the device below (no-op for backends without caches)."""

    def close(self) -> None:
        """Flush and release."""
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- conveniences built on the protocol (backends need not override) -----------------
    def open(self, path: str, mode: str = "rb", perm: int = 0o666) -> FileObject:
        """A binary file object; ``mode`` as for builtins.open ("rb", "wb", "ab", "r+b", "xb")."""
        m = mode.replace("b", "")
        plus = "+" in m
        base = m.replace("+", "")
        table = {
            "r": os.O_RDWR if plus else os.O_RDONLY,
            "w": (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_TRUNC,
            "a": (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_APPEND,
            "x": (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_EXCL,
        }
        if base not in table:
            raise ValueError(f"invalid mode: {mode!r}")
        flags = table[base]
        handle = self.open_handle(path, flags, perm)
        readable = base == "r" or plus
        writable = base != "r" or plus
        return FileObject(handle, readable, writable, base == "a", path)

    def read_bytes(self, path: str) -> bytes:
        """The whole content of a file (following symlinks)."""
        h = self.open_handle(path, os.O_RDONLY)
        try:
            return h.pread(0, h.size())
        finally:
            h.close()

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Create or replace the content of ``path`` (O_WRONLY|O_CREAT|O_TRUNC)."""
        h = self.open_handle(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            if data:
                h.pwrite(0, data)
        finally:
            h.close()

    def clone_content(self, src: FileHandle, dst: FileHandle) -> bool:
        """Make the empty file open as ``dst`` hold ``src``'s bytes without copying them, if
        this filesystem can (the overlay shares its content until either side is written);
        False when it cannot, and then nothing was changed: copy the bytes instead. The
        result is what copying every byte would give (contents, size, allocated blocks, the
        destination's times), never a reflink on the image: the image's filesystem gets its
        own copy when it is written."""
        return False

    def listdir(self, path: str = "/") -> list[str]:
        """Alias of ``readdir``."""
        return self.readdir(path)

    def exists(self, path: str) -> bool:
        """True if ``path`` resolves (following symlinks)."""
        try:
            self.stat(path)
            return True
        except OSError:
            return False

    def lexists(self, path: str) -> bool:
        """True if ``path`` exists, even as a dangling symlink."""
        try:
            self.lstat(path)
            return True
        except OSError:
            return False

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like ``os.walk`` (top-down, never following symlinks), names sorted."""
        try:
            names = sorted(self.readdir(top))
        except OSError:
            return
        dirs, files = [], []
        for n in names:
            p = join(top, n)
            try:
                st = self.lstat(p)
            except OSError:
                continue
            (dirs if _stat.S_ISDIR(st.st_mode) else files).append(n)
        yield top, dirs, files
        for d in dirs:
            yield from self.walk(join(top, d))

    def makedirs(self, path: str, mode: int = 0o755, exist_ok: bool = True) -> None:
        """``mkdir -p``."""
        comps = split_components(path)
        cur = ""
        for i, c in enumerate(comps):
            cur = cur + "/" + c
            try:
                self.mkdir(cur, mode)
            except FileExistsError:
                if not self.stat(cur).is_dir:
                    raise fs_error(errno.ENOTDIR, cur) from None
                if i == len(comps) - 1 and not exist_ok:
                    raise


def join(a: str, b: str) -> str:
    """Join image paths (``b`` is a single name or a relative path)."""
    return a.rstrip("/") + "/" + b if a not in ("", "/") else "/" + b
