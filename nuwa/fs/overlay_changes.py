"""What an overlay changed, for :meth:`nuwa.fs.overlay.Overlay.changes`.

The overlay records, as it makes them, the names each directory put or deleted (its slots)
and the nodes it changed. :func:`touched_paths` turns that record into the paths where the
overlay may differ from its backend, without a backend call or a path resolution;
:func:`nuwa.fs.diff.diff_paths` compares just those, reading both sides through
:class:`KnownStats` (the backend's lstats from the listings the overlay loaded) and
:class:`NodeReads` (the overlay's nodes already found); :func:`link_groups` gives the hard-link
groups, which reach outside the touched paths.
"""

from __future__ import annotations

import errno
import os
import stat as S

from nuwa.errors import fs_error
from nuwa.fs.memory import MemoryHandle, Node
from nuwa.fs.model import FileSystem, join


def touched_paths(root: Node, slots: dict, dirty: dict):
    """``(path, deep)`` for every path where an overlay may differ from its backend, and what
    is known of those paths: ``{path: node}`` in the overlay, ``{path: lstat or None}`` in the
    backend. ``root`` is the overlay's root node, ``slots`` maps ``id(directory)`` to
    ``(directory, names it put or deleted)``, ``dirty`` maps ``id(node)`` to every node changed.

    Only the overlay's own record is read (no backend call, no path resolution): walking
    down from the root through directories that are still the backend's directory at the
    same path, a name is a candidate when its directory put or deleted it or its node was
    changed. Every other name holds what the backend holds there.
    A directory that is not at its backend path (new, or moved there) is compared whole
    (``deep``); one that is goes on being walked. Directories never loaded are unchanged.
    """
    out: list[tuple[str, bool]] = []
    nodes: dict[str, Node] = {}
    backend: dict[str, object] = {}
    stack = [("/", root)]
    while stack:
        path, d = stack.pop()
        es = d.entries
        if es is None:
            continue
        listing = d.origin.names  # an in-place directory: the backend's listing of ``path``
        slot = slots.get(id(d))
        names = slot[1] if slot is not None else ()
        for name in names:
            c, st = es.get(name), listing.get(name)
            if c is None and st is None:
                continue  # made and removed again (dpkg's NAME.dpkg-new): in neither tree
            p = join(path, name)
            in_place = (c is not None and S.S_ISDIR(c.mode) and c.origin is not None
                        and c.origin.path == p)
            out.append((p, not in_place))
            backend[p] = st
            if c is not None:
                nodes[p] = c
            if in_place:
                stack.append((p, c))
        for name, c in es.items():
            if name in names:
                continue
            if id(c) in dirty:
                p = join(path, name)
                out.append((p, False))
                nodes[p], backend[p] = c, listing[name]
            if c.entries is not None:  # an untouched name: the backend's directory, same path
                stack.append((join(path, name), c))
    return out, nodes, backend


def link_groups(backend: FileSystem, loaded: dict, nlink: dict, inos, first_new: int) -> dict[int, set[str]]:
    """Every path in ``backend`` of each inode of ``inos`` (hard links): from ``loaded`` (inode ->
    the paths an overlay loaded) when it holds all of the inode's ``nlink`` links, else from one
    walk of the backend. Inode numbers above ``first_new`` are the overlay's own nodes: none."""
    out, missing = {}, set()
    for ino in inos:
        paths = loaded.get(ino)
        if paths is not None and len(paths) >= nlink.get(ino, 0):
            out[ino] = set(paths)
        elif ino <= first_new:
            missing.add(ino)
    if missing:
        out.update(_walk_groups(backend, missing))
    return out


class KnownStats:
    """The backend, with the lstat of the paths whose listing the overlay loaded (None: not
    there) answered from that listing: the backend has not changed since. A path's xattrs
    (not following symlinks) are read once, for both sides (:meth:`backend_xattrs`)."""

    def __init__(self, fs: FileSystem, known: dict):
        self.fs, self.known = fs, known
        self._xattrs: dict[str, dict] = {}

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def lstat(self, path: str):
        if path not in self.known:
            return self.fs.lstat(path)
        st = self.known[path]
        if st is None:
            raise fs_error(errno.ENOENT, path)
        return st

    def backend_xattrs(self, path: str) -> dict:
        """The backend's xattrs of ``path`` itself (name -> value), read once."""
        xs = self._xattrs.get(path)
        if xs is None:
            b = self.fs
            xs = self._xattrs[path] = {n: b.getxattr(path, n, follow_symlinks=False)
                                       for n in b.listxattr(path, follow_symlinks=False)}
        return xs

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        return self.fs.listxattr(path, True) if follow_symlinks else list(self.backend_xattrs(path))

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        xs = None if follow_symlinks else self.backend_xattrs(path)
        return self.fs.getxattr(path, name, follow_symlinks) if xs is None or name not in xs else xs[name]


class NodeReads:
    """The overlay, with the paths whose nodes :func:`touched_paths` found read from
    those nodes (no path resolution). A node's xattrs never loaded are its backend inode's,
    read through ``backend_xattrs(backend path)`` (shared with the backend's side) and not
    loaded into the node: the commit then has nothing to compare for them."""

    def __init__(self, ov, nodes: dict, backend_xattrs=None):
        self.ov, self.nodes, self.backend_xattrs = ov, nodes, backend_xattrs

    def __getattr__(self, name):
        return getattr(self.ov, name)

    def lstat(self, path: str):
        n = self.nodes.get(path)
        return self.ov.lstat(path) if n is None else self.ov._stat_of(n)

    def readlink(self, path: str) -> str:
        n = self.nodes.get(path)
        return self.ov.readlink(path) if n is None or not S.S_ISLNK(n.mode) else n.target

    def _node_xattrs(self, n) -> dict:
        if n.xattrs is None and self.backend_xattrs is not None:
            return self.backend_xattrs(n.origin.path)  # unchanged since loaded (lazily) from there
        return self.ov._xattrs(n)

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        n = self.nodes.get(path)
        return self.ov.listxattr(path, follow_symlinks) if n is None or follow_symlinks else list(self._node_xattrs(n))

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        n = self.nodes.get(path)
        xs = None if n is None or follow_symlinks else self._node_xattrs(n)
        if xs is None or name not in xs:
            return self.ov.getxattr(path, name, follow_symlinks)
        return xs[name]

    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666):
        n = self.nodes.get(path)
        if n is None or flags != os.O_RDONLY or not S.S_ISREG(n.mode):
            return self.ov.open_handle(path, flags, mode)
        return MemoryHandle(self.ov, n, True, False, path)


def _walk_groups(b: FileSystem, inos: set) -> dict[int, set[str]]:
    """Every path of each inode in ``inos`` (non-directories) in ``b``, found by walking it all."""
    out: dict[int, set[str]] = {}
    scan = getattr(b, "readdir_stat", None)
    stack = ["/"]
    while stack:
        base = stack.pop()
        for name, st in (scan(base) if scan else [(n, b.lstat(join(base, n))) for n in b.readdir(base)]):
            if S.S_ISDIR(st.st_mode):
                stack.append(join(base, name))
            elif st.st_ino in inos and st.st_nlink > 1:
                out.setdefault(st.st_ino, set()).add(join(base, name))
    return out
