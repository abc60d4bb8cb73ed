"""Run one sequence of filesystem calls against the host kernel or a model backend.

The reference is the real kernel: a forked child chroots into an empty host directory (so
absolute symlinks resolve inside it, as they must in an image), sets umask 0 (the protocol
applies none) and makes the calls through the ``os`` module. A backend runs the same steps
through the protocol. Both produce a list of results (values or errno names) and a snapshot of
the final tree; the behaviour suite compares them.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import pickle
import stat as S

_libc = ctypes.CDLL(None, use_errno=True)
IGNORED = {"lost+found"}  # mkfs.ext4 makes it; the host reference has none


def summary(st) -> tuple:
    """What the suite compares of a stat result (dir sizes and blocks differ by backend)."""
    kind = S.S_IFMT(st.st_mode)
    size = None if kind == S.S_IFDIR else st.st_size
    return (oct(kind), oct(S.S_IMODE(st.st_mode)), st.st_nlink, st.st_uid, st.st_gid, size, st.st_rdev)


class OsTarget:
    """The steps through the ``os`` module (inside the chrooted child)."""

    def lstat(self, p):
        return summary(os.lstat(p))

    def stat(self, p):
        return summary(os.stat(p))

    def times(self, p):
        st = os.lstat(p)
        return (st.st_atime_ns, st.st_mtime_ns)

    def blocks(self, p):
        return os.lstat(p).st_blocks

    def listdir(self, p):
        return sorted(set(os.listdir(p)) - IGNORED)

    def readlink(self, p):
        return os.readlink(p)

    def open(self, p, flags, mode=0o666):
        os.close(os.open(p, flags, mode))
        return "ok"

    def write(self, p, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644):
        fd = os.open(p, flags, mode)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)

    def pwrite(self, p, offset, data):
        fd = os.open(p, os.O_WRONLY)
        try:
            return os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def read(self, p):
        fd = os.open(p, os.O_RDONLY)
        try:
            out = b""
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return out
                out += chunk
        finally:
            os.close(fd)

    def truncate(self, p, n):
        os.truncate(p, n)

    def mkdir(self, p, mode=0o755):
        os.mkdir(p, mode)

    def rmdir(self, p):
        os.rmdir(p)

    def unlink(self, p):
        os.unlink(p)

    def rename(self, a, b, noreplace=False):
        if not noreplace:
            os.rename(a, b)
            return
        AT_FDCWD = -100
        if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), 1) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), a)

    def symlink(self, target, p):
        os.symlink(target, p)

    def link(self, a, b):
        os.link(a, b, follow_symlinks=False)

    def mknod(self, p, mode, rdev=0):
        os.mknod(p, mode, rdev)

    def chmod(self, p, mode):
        os.chmod(p, mode)

    def chown(self, p, uid, gid):
        os.chown(p, uid, gid)

    def lchown(self, p, uid, gid):
        os.chown(p, uid, gid, follow_symlinks=False)

    def utime(self, p, atime, mtime, follow=True):
        os.utime(p, ns=(atime, mtime), follow_symlinks=follow)

    def getxattr(self, p, name, follow=True):
        return os.getxattr(p, name, follow_symlinks=follow)

    def setxattr(self, p, name, value, flags=0, follow=True):
        os.setxattr(p, name, value, flags, follow_symlinks=follow)

    def listxattr(self, p, follow=True):
        return sorted(n for n in os.listxattr(p, follow_symlinks=follow) if not n.startswith("security.selinux"))

    def removexattr(self, p, name, follow=True):
        os.removexattr(p, name, follow_symlinks=follow)

    def namemax(self, p):
        return os.statvfs(p).f_namemax


class FsTarget(OsTarget):
    """The same steps through a :class:`nuwa.fs.model.FileSystem`."""

    def __init__(self, fs):
        self.fs = fs

    def lstat(self, p):
        return summary(self.fs.lstat(p))

    def stat(self, p):
        return summary(self.fs.stat(p))

    def times(self, p):
        st = self.fs.lstat(p)
        return (st.st_atime_ns, st.st_mtime_ns)

    def blocks(self, p):
        return self.fs.lstat(p).st_blocks

    def listdir(self, p):
        return sorted(set(self.fs.readdir(p)) - IGNORED)

    def readlink(self, p):
        return self.fs.readlink(p)

    def open(self, p, flags, mode=0o666):
        self.fs.open_handle(p, flags, mode).close()
        return "ok"

    def write(self, p, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644):
        h = self.fs.open_handle(p, flags, mode)
        try:
            return h.pwrite(h.size() if flags & os.O_APPEND else 0, data)
        finally:
            h.close()

    def pwrite(self, p, offset, data):
        h = self.fs.open_handle(p, os.O_WRONLY)
        try:
            return h.pwrite(offset, data)
        finally:
            h.close()

    def read(self, p):
        h = self.fs.open_handle(p, os.O_RDONLY)
        try:
            return h.pread(0, max(h.size(), 1 << 20))
        finally:
            h.close()

    def truncate(self, p, n):
        self.fs.truncate(p, n)

    def copy(self, src, dst):
        """``cp``'s data copy: shared when the filesystem can (``clone_content``), else every byte."""
        from nuwa.fs.content import copy_content

        s = self.fs.open_handle(src, os.O_RDONLY)
        try:
            s.pread(0, 1)  # a directory fails here (EISDIR), as cp's first read(2) does
            d = self.fs.open_handle(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                if not self.fs.clone_content(s, d):
                    copy_content(s, d, s.size(), holes=False)
            finally:
                d.close()
        finally:
            s.close()

    def mkdir(self, p, mode=0o755):
        self.fs.mkdir(p, mode)

    def rmdir(self, p):
        self.fs.rmdir(p)

    def unlink(self, p):
        self.fs.unlink(p)

    def rename(self, a, b, noreplace=False):
        self.fs.rename(a, b, noreplace=noreplace)

    def symlink(self, target, p):
        self.fs.symlink(target, p)

    def link(self, a, b):
        self.fs.link(a, b)

    def mknod(self, p, mode, rdev=0):
        self.fs.mknod(p, mode, rdev)

    def chmod(self, p, mode):
        self.fs.chmod(p, mode)

    def chown(self, p, uid, gid):
        self.fs.chown(p, uid, gid)

    def lchown(self, p, uid, gid):
        self.fs.chown(p, uid, gid, follow_symlinks=False)

    def utime(self, p, atime, mtime, follow=True):
        self.fs.utime(p, atime, mtime, follow_symlinks=follow)

    def getxattr(self, p, name, follow=True):
        return self.fs.getxattr(p, name, follow_symlinks=follow)

    def setxattr(self, p, name, value, flags=0, follow=True):
        self.fs.setxattr(p, name, value, flags, follow_symlinks=follow)

    def listxattr(self, p, follow=True):
        return sorted(self.fs.listxattr(p, follow_symlinks=follow))

    def removexattr(self, p, name, follow=True):
        self.fs.removexattr(p, name, follow_symlinks=follow)

    def namemax(self, p):
        return self.fs.statvfs(p).f_namemax


def run_steps(target, steps) -> list:
    """Each step's result: ("ok", value) or ("err", errno name) or ("ValueError",)."""
    out = []
    for step in steps:
        op, args = step[0], step[1:]
        try:
            out.append(("ok", getattr(target, op)(*args)))
        except OSError as e:
            out.append(("err", errno.errorcode.get(e.errno, e.errno)))
        except ValueError:
            out.append(("ValueError",))
    return out


def snapshot(target, top="/") -> dict:
    """path -> (stat summary, link target, content sha256, sorted xattrs) for the whole tree."""
    tree = {}

    def visit(path):
        st = target.lstat(path)
        kind = int(st[0], 8)
        xattrs = ()
        if kind != S.S_IFLNK:
            try:
                xattrs = tuple((n, target.getxattr(path, n, False)) for n in target.listxattr(path, False))
            except OSError:
                xattrs = ("?",)
        extra = None
        if kind == S.S_IFLNK:
            extra = target.readlink(path)
        elif kind == S.S_IFREG:
            extra = hashlib.sha256(target.read(path)).hexdigest()
        tree[path] = (st, extra, xattrs)
        if kind == S.S_IFDIR:
            for name in target.listdir(path):
                visit(path.rstrip("/") + "/" + name)

    visit(top)
    return tree


def run_reference(root: str, steps) -> tuple[list, dict]:
    """Run ``steps`` in a child chrooted into ``root``; return (results, snapshot)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 0
        try:
            os.close(rfd)
            os.chmod(root, 0o755)
            os.chroot(root)
            os.chdir("/")
            os.umask(0)
            t = OsTarget()
            data = pickle.dumps((run_steps(t, steps), snapshot(t)))
        except BaseException as e:  # report instead of dying silently
            data = pickle.dumps(("child-error", repr(e)))
            code = 1
        with os.fdopen(wfd, "wb") as w:
            w.write(data)
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        data = r.read()
    os.waitpid(pid, 0)
    result = pickle.loads(data)
    if result[0] == "child-error":
        raise RuntimeError(f"reference run failed: {result[1]}")
    return result
