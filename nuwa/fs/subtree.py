"""A directory of a filesystem model seen as the root of its own: what ``chroot(2)`` gives.

``ldconfig -r DIR`` chroots into ``DIR`` before it reads its configuration and libraries
(mkinitramfs runs it on the initramfs tree it builds). :class:`SubtreeFS` lets a model do the
same against any backend: every path names ``root + path``, and symbolic links inside are
resolved against ``root`` -- an absolute target starts again at ``root``, ``..`` at ``root``
stays there -- as the kernel's path walk does after chroot (``fs/namei.c``, ``nd->root``).
The base filesystem resolves nothing on its own: each call reaches it with a path whose
every directory component is a real directory, and whose last component is followed or
not as the call asks.
"""

from __future__ import annotations

import errno
import os
import posixpath

from nuwa.fs.model import FileHandle, FileSystem, Stat, StatVFS, fs_error

#: the kernel's MAXSYMLINKS (``include/linux/namei.h``)
MAXSYMLINKS = 40


class SubtreeFS(FileSystem):
    """``base`` seen from ``root`` (an absolute directory of ``base``) as from ``/``."""

    def __init__(self, base: FileSystem, root: str):
        self.base = base
        self.root = posixpath.normpath("/" + root.strip("/")) if root.strip("/") else "/"
        self.writable = getattr(base, "writable", True)

    # -- resolution ----------------------------------------------------------------------------

    def _base(self, rel: list[str]) -> str:
        return posixpath.join(self.root, *rel) if rel else self.root

    def _resolve(self, path: str, follow: bool) -> str:
        """The base path of ``path``; the last component followed when ``follow``."""
        if not path.startswith("/"):
            path = "/" + path
        todo = [c for c in path.split("/") if c not in ("", ".")]
        trailing = path.endswith("/") and todo
        done: list[str] = []
        links = 0
        while todo:
            c = todo.pop(0)
            if c == "..":
                if done:
                    done.pop()
                continue
            cand = done + [c]
            last = not todo
            if last and not follow and not trailing:
                done = cand
                break
            try:
                st = self.base.lstat(self._base(cand))
            except FileNotFoundError:
                if last:
                    done = cand
                    break
                raise fs_error(errno.ENOENT, path) from None
            if st.is_lnk:
                links += 1
                if links > MAXSYMLINKS:
                    raise fs_error(errno.ELOOP, path)
                target = self.base.readlink(self._base(cand))
                parts = [p for p in target.split("/") if p not in ("", ".")]
                if target.startswith("/"):
                    done = []
                todo = parts + todo
                continue
            if not last and not st.is_dir:
                raise fs_error(errno.ENOTDIR, path)
            done = cand
        return self._base(done)

    # -- reads ---------------------------------------------------------------------------------

    def lstat(self, path: str) -> Stat:
        """``lstat`` inside the subtree."""
        return self.base.lstat(self._resolve(path, False))

    def stat(self, path: str) -> Stat:
        """``stat`` inside the subtree (links followed within it)."""
        return self.base.lstat(self._resolve(path, True))

    def readdir(self, path: str) -> list[str]:
        """Names in a directory of the subtree."""
        return self.base.readdir(self._resolve(path, True))

    def readlink(self, path: str) -> str:
        """A link's target, as stored."""
        return self.base.readlink(self._resolve(path, False))

    def statvfs(self, path: str = "/") -> StatVFS:
        """The base filesystem's numbers."""
        return self.base.statvfs(self._resolve(path, True))

    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> FileHandle:
        """Open a file of the subtree (``O_NOFOLLOW`` keeps the last component unfollowed)."""
        return self.base.open_handle(self._resolve(path, not flags & os.O_NOFOLLOW), flags, mode)

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        """An extended attribute."""
        return self.base.getxattr(self._resolve(path, follow_symlinks), name, follow_symlinks)

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        """Extended attribute names."""
        return self.base.listxattr(self._resolve(path, follow_symlinks), follow_symlinks)

    # -- writes --------------------------------------------------------------------------------

    def truncate(self, path: str, length: int) -> None:
        """Truncate a file of the subtree."""
        self.base.truncate(self._resolve(path, True), length)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """Create a directory (an existing last component, even a link, gives EEXIST)."""
        self.base.mkdir(self._resolve(path, False), mode)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        self.base.rmdir(self._resolve(path, False))

    def unlink(self, path: str) -> None:
        """Remove a name."""
        self.base.unlink(self._resolve(path, False))

    def rename(self, src: str, dst: str, noreplace: bool = False) -> None:
        """Rename within the subtree."""
        self.base.rename(self._resolve(src, False), self._resolve(dst, False), noreplace)

    def symlink(self, target: str, path: str) -> None:
        """Create a symbolic link (its target is stored as given)."""
        self.base.symlink(target, self._resolve(path, False))

    def link(self, existing: str, new: str) -> None:
        """Create a hard link."""
        self.base.link(self._resolve(existing, False), self._resolve(new, False))

    def mknod(self, path: str, mode: int, rdev: int = 0) -> None:
        """Create a special file."""
        self.base.mknod(self._resolve(path, False), mode, rdev)

    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        """Change a mode."""
        self.base.chmod(self._resolve(path, follow_symlinks), mode, follow_symlinks)

    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """Change an owner."""
        self.base.chown(self._resolve(path, follow_symlinks), uid, gid, follow_symlinks)

    def utime(self, path: str, atime_ns: int | None, mtime_ns: int | None, follow_symlinks: bool = True) -> None:
        """Change times."""
        self.base.utime(self._resolve(path, follow_symlinks), atime_ns, mtime_ns, follow_symlinks)

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0, follow_symlinks: bool = True) -> None:
        """Set an extended attribute."""
        self.base.setxattr(self._resolve(path, follow_symlinks), name, value, flags, follow_symlinks)

    def removexattr(self, path: str, name: str, follow_symlinks: bool = True) -> None:
        """Remove an extended attribute."""
        self.base.removexattr(self._resolve(path, follow_symlinks), name, follow_symlinks)
