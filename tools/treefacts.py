"""The facts of a tree, path by path, read from a host directory or from an image.

One definition of what "the same tree" means, shared by the standalone tools (``tools/``
cannot import the tests) and the tests' helpers (``tests/helpers/hashing.py`` and
``trees.py`` re-export :func:`file_sha256` and :func:`full_facts` from here, so a tree
compared by a test and by ``tools/fidelity.py`` is compared on the same facts).

A host directory is read with ``os.lstat`` and friends (never following symlinks); an image
(qcow2 or raw, a partitioned disk or a bare filesystem) with Nuwa's own reader,
``nuwa.open(path).root()``, through the filesystem model's ``lstat``/``readdir``/
``readlink``/``listxattr``. Both give the same :class:`Facts` record per path.
"""

from __future__ import annotations

import hashlib
import os
import stat as S
import sys
from dataclasses import dataclass, field

_CHUNK = 1 << 20

#: the fields a difference can name, in report order
FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "target", "xattrs", "rdev", "links")
_TYPES = {S.S_IFREG: "file", S.S_IFDIR: "dir", S.S_IFLNK: "symlink", S.S_IFIFO: "fifo",
          S.S_IFCHR: "chr", S.S_IFBLK: "blk", S.S_IFSOCK: "sock"}


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a whole host file, read in 1 MiB chunks (images are hundreds of MiB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def full_facts(path: str, st: os.stat_result) -> tuple:
    """(type, permission bits, uid, gid, size, sha256, link target, xattrs, rdev) of a host
    path: everything dpkg could have set (a directory's size is the filesystem's business and
    reads 0)."""
    digest = file_sha256(path) if S.S_ISREG(st.st_mode) else ""
    target = os.readlink(path) if S.S_ISLNK(st.st_mode) else ""
    try:
        xattrs = tuple(sorted((k, os.getxattr(path, k, follow_symlinks=False))
                              for k in os.listxattr(path, follow_symlinks=False)))
    except OSError:
        xattrs = ()
    size = st.st_size if not S.S_ISDIR(st.st_mode) else 0
    rdev = st.st_rdev if (S.S_ISCHR(st.st_mode) or S.S_ISBLK(st.st_mode)) else 0
    return (S.S_IFMT(st.st_mode), S.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, digest, target,
            xattrs, rdev)


@dataclass
class Facts:
    """What is compared of one path. ``sha256`` is filled lazily (:meth:`Tree.sha256`): two
    files of different sizes differ without hashing; ``links`` are the other paths of the same
    inode (hard links), filled by :meth:`Tree.walk`."""

    type: str
    mode: int
    uid: int
    gid: int
    size: int  # 0 for directories: their size is the filesystem's business
    target: str = ""
    xattrs: tuple = ()
    rdev: int = 0
    ino: int = 0
    links: tuple = field(default=())


class Tree:
    """A tree to compare: a host directory, or an image read with Nuwa's reader."""

    def __init__(self, path: str):
        self.path = path
        self.fs = None
        self._image = None
        if not os.path.isdir(path):
            checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            if os.path.isdir(os.path.join(checkout, "nuwa")) and checkout not in sys.path:
                # the checkout's own reader, not another installed copy of the package
                sys.path.insert(0, checkout)
            import nuwa
            self._image = nuwa.open(path)
            self.fs = self._image.root()

    def close(self) -> None:
        """Close the image, if one was opened."""
        if self._image is not None:
            self._image.close()
            self._image = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the two readers -------------------------------------------------------------------
    def _host(self, rel: str) -> str:
        return os.path.join(self.path, rel.lstrip("/"))

    def _lstat(self, rel: str):
        return self.fs.lstat(rel) if self.fs is not None else os.lstat(self._host(rel))

    def _listdir(self, rel: str) -> list[str]:
        if self.fs is not None:
            return [n for n in self.fs.readdir(rel) if n not in (".", "..")]
        return os.listdir(self._host(rel))

    def _facts(self, rel: str, st) -> Facts:
        kind = _TYPES.get(S.S_IFMT(st.st_mode), "unknown")
        target, xattrs = "", ()
        if kind == "symlink":
            target = self.fs.readlink(rel) if self.fs is not None else os.readlink(self._host(rel))
        try:
            if self.fs is not None:
                names = self.fs.listxattr(rel, follow_symlinks=False)
                xattrs = tuple(sorted((n, self.fs.getxattr(rel, n, follow_symlinks=False)) for n in names))
            else:
                h = self._host(rel)
                xattrs = tuple(sorted((n, os.getxattr(h, n, follow_symlinks=False))
                                      for n in os.listxattr(h, follow_symlinks=False)))
        except OSError:  # a symlink carries none on most hosts
            xattrs = ()
        rdev = st.st_rdev if kind in ("chr", "blk") else 0
        return Facts(kind, S.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0 if kind == "dir" else st.st_size,
                     target, xattrs, rdev, st.st_ino)

    def walk(self, prune: tuple[str, ...] = ()) -> dict[str, Facts]:
        """Absolute path in the tree -> :class:`Facts` for every entry (the root itself is
        ``/``); ``prune`` names paths left out with everything below them."""
        out: dict[str, Facts] = {}
        pruned = {"/" + p.strip("/") for p in prune}
        stack = ["/"]
        out["/"] = self._facts("/", self._lstat("/"))
        while stack:
            d = stack.pop()
            for name in sorted(self._listdir(d)):
                rel = (d.rstrip("/") + "/" + name)
                if rel in pruned:
                    continue
                f = self._facts(rel, self._lstat(rel))
                out[rel] = f
                if f.type == "dir":
                    stack.append(rel)
        groups: dict[int, list[str]] = {}
        for p, f in out.items():
            if f.type != "dir":
                groups.setdefault(f.ino, []).append(p)
        for paths in groups.values():
            if len(paths) > 1:
                for p in paths:
                    out[p].links = tuple(sorted(q for q in paths if q != p))
        return out

    def sha256(self, rel: str) -> str:
        """SHA-256 of a regular file's contents."""
        if self.fs is None:
            return file_sha256(self._host(rel))
        from nuwa.fs.diff import sha256_of  # the image side only: a host tree needs no nuwa import

        return sha256_of(self.fs, rel)

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        try:
            if self.fs is not None:
                return self.fs.read_bytes(rel)
            with open(self._host(rel), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
