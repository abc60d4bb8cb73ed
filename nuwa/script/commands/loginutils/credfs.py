"""The image's filesystem as a process of another user sees it: what ``su USER -c CMD`` and
``runuser -u USER -- CMD`` change for the command they run.

:class:`UserView` wraps the run's filesystem model for the duration of the command. It applies
the kernel's discretionary checks (``generic_permission`` without capabilities: the owner's,
the group's or the others' bits, the supplementary groups counted) and makes what the command
creates belong to the user, with the kernel's group rule (the directory's group under a
set-group-id directory, else the user's primary group). Models and the shell see it as
``inv.fs``; ``creds`` tells ``id`` and ``test -O/-G/-r/-w/-x`` who is asking (``access``).

The checks are those of plain mode bits: search permission on every directory of the path as
written and of its canonical form, read/write on what is opened, write and search on the
directory whose entries change, the sticky-directory rule for removal and renaming, owner-only
``chmod``/``utime`` with explicit times, no ``chown`` of the owner. What the kernel decides by
other means is deferred (the whole ``su`` with it): POSIX ACLs on a path the command touches,
extended attributes, device nodes. Overlay savepoints pass through, so the command's child
shell stays atomic.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as _stat
from dataclasses import dataclass

from nuwa.fs.model import FileSystem
from nuwa.script.context import Defer

R, W, X = 4, 2, 1


@dataclass(frozen=True)
class Credentials:
    """Who a process is: ids, supplementary groups, and the names ``id`` prints."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    user: str


def _eacces(path: str) -> OSError:
    return OSError(errno.EACCES, os.strerror(errno.EACCES), path)


def _eperm(path: str) -> OSError:
    return OSError(errno.EPERM, os.strerror(errno.EPERM), path)


class UserView:
    """``fs`` seen by a process with ``creds`` (see the module note)."""

    def __init__(self, fs, creds: Credentials):
        self._fs = fs
        self.creds = creds

    # overlay transactions and plain facts pass through; anything else unknown is absent
    _PASS = ("savepoint", "rollback_to", "release", "statvfs", "content_fingerprint", "writable", "flush")

    def __getattr__(self, name):
        if name in self._PASS:
            return getattr(self._fs, name)
        raise AttributeError(name)

    # ---- the checks ---------------------------------------------------------------------------
    def _allowed(self, st, want: int) -> bool:
        """``generic_permission`` for an unprivileged process: one class of bits decides."""
        if self.creds.uid == 0:
            return not (want & X) or bool(st.st_mode & 0o111) or _stat.S_ISDIR(st.st_mode)
        m = st.st_mode
        if st.st_uid == self.creds.uid:
            bits = (m >> 6) & 7
        elif st.st_gid in self.creds.groups:
            bits = (m >> 3) & 7
        else:
            bits = m & 7
        return bits & want == want

    def _acl(self, path: str, follow: bool = True) -> None:
        try:
            names = self._fs.listxattr(path, follow_symlinks=follow)
        except (OSError, NotImplementedError, AttributeError):
            return
        if any(n.startswith("system.posix_acl") for n in names):
            raise Defer(f"{path} has a POSIX ACL: the access of user {self.creds.user} is not modelled")

    def _search(self, path: str) -> None:
        """Search permission on each directory above ``path`` (as written and canonical)."""
        if self.creds.uid == 0:
            return
        p = posixpath.normpath("/" + path.lstrip("/"))
        dirs = set()
        parent = posixpath.dirname(p)
        while True:
            dirs.add(parent)
            if parent == "/":
                break
            parent = posixpath.dirname(parent)
        for d in sorted(dirs, key=len):
            try:
                st = self._fs.stat(d)
            except OSError:
                return  # the operation itself reports the missing or looping part
            if _stat.S_ISDIR(st.st_mode):
                self._acl(d)
                if not self._allowed(st, X):
                    raise _eacces(path)
        canon = self._canonical(posixpath.dirname(p))
        if canon is not None and canon != posixpath.dirname(p):
            self._search(posixpath.join(canon, "x"))

    def _canonical(self, d: str) -> str | None:
        parts, out, hops = [c for c in d.split("/") if c], "/", 0
        while parts:
            c = parts.pop(0)
            nxt = posixpath.normpath(posixpath.join(out, c))
            try:
                st = self._fs.lstat(nxt)
            except OSError:
                return None
            if _stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    return None
                target = self._fs.readlink(nxt)
                parts = [x for x in target.split("/") if x] + parts
                out = "/" if target.startswith("/") else out
                continue
            out = nxt
        return out

    def _need(self, path: str, want: int, follow: bool = True) -> None:
        st = self._fs.stat(path) if follow else self._fs.lstat(path)
        self._acl(path, follow)
        if not self._allowed(st, want):
            raise _eacces(path)

    def _parent_write(self, path: str) -> None:
        parent = posixpath.dirname(posixpath.normpath("/" + path.lstrip("/")))
        self._need(parent, W | X)

    def _sticky(self, path: str) -> None:
        """``may_delete``: in a sticky directory only the entry's or the directory's owner."""
        if self.creds.uid == 0:
            return
        parent = posixpath.dirname(posixpath.normpath("/" + path.lstrip("/")))
        pst, st = self._fs.stat(parent), self._fs.lstat(path)
        if pst.st_mode & _stat.S_ISVTX and self.creds.uid not in (st.st_uid, pst.st_uid):
            raise _eperm(path)

    def _own(self, path: str, follow: bool = True) -> None:
        """A new entry belongs to the user; its group is the directory's under set-gid."""
        parent = posixpath.dirname(posixpath.normpath("/" + path.lstrip("/")))
        pst = self._fs.stat(parent)
        gid = pst.st_gid if pst.st_mode & _stat.S_ISGID else self.creds.gid
        if self.creds.uid != 0 or gid != 0:
            self._fs.chown(path, self.creds.uid, gid, follow_symlinks=follow)

    def access(self, path: str, op: str) -> bool:
        """``test -r/-w/-x/-O/-G`` for this user (the shell's ``test`` asks the view)."""
        try:
            self._search(path)
            st = self._fs.stat(path)
        except OSError:
            return False
        if op == "O":
            return st.st_uid == self.creds.uid
        if op == "G":
            return st.st_gid == self.creds.gid
        self._acl(path)
        return self._allowed(st, {"r": R, "w": W, "x": X}[op])

    # ---- reads --------------------------------------------------------------------------------
    def lstat(self, path: str):
        """``lstat`` after the search checks."""
        self._search(path)
        return self._fs.lstat(path)

    def stat(self, path: str):
        """``stat`` after the search checks."""
        self._search(path)
        return self._fs.stat(path)

    def readlink(self, path: str) -> str:
        """``readlink`` after the search checks."""
        self._search(path)
        return self._fs.readlink(path)

    def readdir(self, path: str) -> list[str]:
        """Listing a directory needs read permission on it."""
        self._search(path)
        self._need(path, R)
        return self._fs.readdir(path)

    # ---- contents -----------------------------------------------------------------------------
    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666):
        """``open(2)``: read/write permission on an existing file, create rights otherwise."""
        self._search(path)
        acc = flags & os.O_ACCMODE
        try:
            st = self._fs.stat(path) if not flags & os.O_NOFOLLOW else self._fs.lstat(path)
        except OSError:
            st = None
        if st is not None and not (flags & os.O_CREAT and flags & os.O_EXCL):
            if not _stat.S_ISREG(st.st_mode) and not _stat.S_ISDIR(st.st_mode):
                raise Defer(f"opening the special file {path} as user {self.creds.user}")
            want = (R if acc in (os.O_RDONLY, os.O_RDWR) else 0) | (W if acc != os.O_RDONLY or flags & os.O_TRUNC else 0)
            self._acl(path)
            if not self._allowed(st, want):
                raise _eacces(path)
            return self._fs.open_handle(path, flags, mode)
        if flags & os.O_CREAT:
            self._parent_write(path)
            h = self._fs.open_handle(path, flags, mode)
            self._own(path)
            return h
        return self._fs.open_handle(path, flags, mode)

    def truncate(self, path: str, length: int) -> None:
        """``truncate(2)`` needs write permission."""
        self._search(path)
        self._need(path, W)
        self._fs.truncate(path, length)

    # ---- namespace ----------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """A new directory, the user's (set-gid inherited from a set-gid parent)."""
        self._search(path)
        self._parent_write(path)
        self._fs.mkdir(path, mode)
        self._own(path)
        pst = self._fs.stat(posixpath.dirname(posixpath.normpath("/" + path.lstrip("/"))))
        if pst.st_mode & _stat.S_ISGID:
            self._fs.chmod(path, _stat.S_IMODE(self._fs.stat(path).st_mode) | _stat.S_ISGID)

    def rmdir(self, path: str) -> None:
        """Removal needs write and search on the parent (and the sticky rule)."""
        self._search(path)
        self._parent_write(path)
        self._sticky(path)
        self._fs.rmdir(path)

    def unlink(self, path: str) -> None:
        """Removal needs write and search on the parent (and the sticky rule)."""
        self._search(path)
        self._parent_write(path)
        self._sticky(path)
        self._fs.unlink(path)

    def rename(self, src: str, dst: str, noreplace: bool = False) -> None:
        """Both parents writable; the sticky rule on the source and a replaced target."""
        for p in (src, dst):
            self._search(p)
            self._parent_write(p)
        self._sticky(src)
        try:
            self._fs.lstat(dst)
            self._sticky(dst)
        except OSError:
            pass
        self._fs.rename(src, dst, noreplace)

    def symlink(self, target: str, path: str) -> None:
        """A new link, the user's."""
        self._search(path)
        self._parent_write(path)
        self._fs.symlink(target, path)
        self._own(path, follow=False)

    def link(self, existing: str, new: str) -> None:
        """Hard links of files the user does not own are refused (``protected_hardlinks``)."""
        raise Defer(f"a hard link made as user {self.creds.user} (protected_hardlinks) is not modelled")

    def mknod(self, path: str, mode: int, rdev: int = 0) -> None:
        """Only FIFOs and sockets are allowed without privilege; not modelled."""
        raise Defer(f"mknod as user {self.creds.user} is not modelled")

    # ---- attributes ---------------------------------------------------------------------------
    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        """Only the owner; set-gid is dropped on a file whose group the user is not in."""
        self._search(path)
        st = self._fs.stat(path) if follow_symlinks else self._fs.lstat(path)
        if self.creds.uid not in (0, st.st_uid):
            raise _eperm(path)
        if self.creds.uid and st.st_gid not in self.creds.groups and not _stat.S_ISDIR(st.st_mode):
            mode &= ~_stat.S_ISGID
        self._fs.chmod(path, mode, follow_symlinks)

    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """Without privilege: the owner may only change the group to one of the user's."""
        self._search(path)
        st = self._fs.stat(path) if follow_symlinks else self._fs.lstat(path)
        if self.creds.uid:
            if (uid not in (-1, st.st_uid) or st.st_uid != self.creds.uid
                    or gid not in (-1, st.st_gid) and gid not in self.creds.groups):
                raise _eperm(path)
            if _stat.S_ISREG(st.st_mode) and st.st_mode & 0o6000:
                raise Defer(f"chown of a set-id file as user {self.creds.user} (the kernel clears the bits)")
        self._fs.chown(path, uid, gid, follow_symlinks)

    def utime(self, path: str, atime_ns, mtime_ns, follow_symlinks: bool = True) -> None:
        """The owner may set any time; others only "now", with write permission."""
        self._search(path)
        st = self._fs.stat(path) if follow_symlinks else self._fs.lstat(path)
        if self.creds.uid not in (0, st.st_uid):
            raise Defer(f"utime of another user's file as user {self.creds.user} is not modelled")
        self._fs.utime(path, atime_ns, mtime_ns, follow_symlinks)

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        """Extended attributes as another user are not modelled."""
        raise Defer(f"extended attributes as user {self.creds.user} are not modelled")

    setxattr = removexattr = getxattr

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        """Extended attributes as another user are not modelled (``ls -l`` asks for them)."""
        raise Defer(f"extended attributes as user {self.creds.user} are not modelled")

    # the protocol's own helpers, run against this view's checked primitives
    open = FileSystem.open
    read_bytes = FileSystem.read_bytes
    write_bytes = FileSystem.write_bytes
    listdir = FileSystem.listdir
    exists = FileSystem.exists
    lexists = FileSystem.lexists
    walk = FileSystem.walk
    makedirs = FileSystem.makedirs
