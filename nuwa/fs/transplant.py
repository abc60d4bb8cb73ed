"""One filesystem's changes over another, carried onto a third, file by file.

A qcow2 overlay of a base holds *its own filesystem's* blocks: its bitmaps, inode tables and
directories, not a list of file changes. To put what an overlay changed on top of another
version of its base (the base patched: ``nuwa.patch.move``) the changes must be taken at file
level. :func:`change_set` is that list: the tree comparison of :mod:`nuwa.fs.diff` between the
base and the overlay (modification and access times included), plus what that comparison does not say itself -- the
directories whose names changed (the parent of each name added or removed) and the root
directory's own attributes. :func:`apply_changes` makes a third filesystem hold the overlay's
version of every one of those paths, through the filesystem model's calls only (the caller
gives an :class:`nuwa.fs.overlay.Overlay` and commits it):

1. removals, each removed subtree from its top;
2. creations and changed contents, parents first: regular files (contents copied, holes left
   as holes), directories, symlinks, device nodes, fifos and sockets; a name whose type,
   symlink target or device number changed is removed and made again; a name whose hard-link
   group changed is made again, as a link of the group's first name made in this pass;
3. owner, then mode (a chown clears setuid bits), then xattrs, of every path of the set;
4. times (access and modification) of every path of the set, last: the creations above
   changed their parents' times.

What cannot be carried: the inode change time (no call sets it: each path made or changed here
has the time of the commit) and inode numbers (the third filesystem allocates its own).
"""

from __future__ import annotations

import os
import stat as S
from dataclasses import dataclass, field

from nuwa.fs.content import fill
from nuwa.fs.diff import Entry, attrs_of, diff_trees
from nuwa.fs.model import FileSystem

_KINDS = {"fifo": S.S_IFIFO, "chr": S.S_IFCHR, "blk": S.S_IFBLK, "sock": S.S_IFSOCK}
#: changes of a non-directory that are made by removing the name and making it again
_REMAKE = frozenset({"target", "rdev", "hardlinks"})


@dataclass
class ChangeSet:
    """What one filesystem changed over another (:func:`change_set`)."""

    #: the tree comparison's entries, sorted by path
    entries: list[Entry] = field(default_factory=list)
    #: every path of the set: the entries' paths and the directories whose names changed
    paths: set[str] = field(default_factory=set)
    #: directories whose names changed (the parents of names added or removed)
    renamed: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.paths)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def change_set(base: FileSystem, own: FileSystem) -> ChangeSet:
    """The paths ``own`` added, removed or changed over ``base`` (module note)."""
    entries = diff_trees(base, own, times=True, hashes=False, atimes=True)
    cs = ChangeSet(entries, {e.path for e in entries})
    for e in entries:
        if e.status != "changed":
            cs.renamed.add(_parent(e.path))
    cs.paths |= cs.renamed
    a, b = attrs_of(base, "/", base.lstat("/")), attrs_of(own, "/", own.lstat("/"))
    if any(getattr(a, f) != getattr(b, f) for f in ("mode", "uid", "gid", "mtime_ns", "atime_ns", "xattrs")):
        cs.paths.add("/")  # the walk compares what is below the root, not the root itself
    return cs


def _rmtree(fs: FileSystem, path: str) -> None:
    if S.S_ISDIR(fs.lstat(path).st_mode):
        for name in fs.readdir(path):
            _rmtree(fs, path.rstrip("/") + "/" + name)
        fs.rmdir(path)
    else:
        fs.unlink(path)


def _copy_content(src: FileSystem, dst: FileSystem, path: str, flags: int) -> None:
    h_in = src.open_handle(path)
    try:
        h_out = dst.open_handle(path, flags, 0o600)
        try:
            fill(h_out, h_in, h_in.size())
        finally:
            h_out.close()
    finally:
        h_in.close()


def _make(src: FileSystem, dst: FileSystem, path: str, st, placed: dict) -> None:
    """Make ``path`` in ``dst`` as ``src`` has it (``st``: its lstat there)."""
    kind = S.S_IFMT(st.st_mode)
    if kind != S.S_IFDIR and st.st_nlink > 1:
        first = placed.get(st.st_ino)
        if first is not None:  # another name of an inode made in this pass
            dst.link(first, path)
            return
        placed[st.st_ino] = path
    if kind == S.S_IFDIR:
        dst.mkdir(path, 0o700)
    elif kind == S.S_IFREG:
        _copy_content(src, dst, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    elif kind == S.S_IFLNK:
        dst.symlink(src.readlink(path), path)
    elif kind in _KINDS.values():
        dst.mknod(path, kind | 0o600, st.st_rdev)
    else:
        raise ValueError(f"{path}: a file type Nuwa cannot make ({kind:#o})")


def apply_changes(cs: ChangeSet, src: FileSystem, dst: FileSystem) -> None:
    """Make ``dst`` hold ``src``'s version of every path of ``cs`` (module note). Errors of
    ``dst`` (ENOSPC...) propagate: the caller discards what was staged."""
    removed = {e.path for e in cs.entries if e.status == "removed"}
    for path in sorted(removed):
        if _parent(path) not in removed or path == "/":
            _rmtree(dst, path)
    placed: dict[int, str] = {}
    for e in cs.entries:  # sorted by path: parents first
        if e.status == "removed":
            continue
        st = src.lstat(e.path)
        if e.status == "added":
            _make(src, dst, e.path, st, placed)
        elif e.type != "dir" and _REMAKE & set(e.changes):
            dst.unlink(e.path)
            _make(src, dst, e.path, st, placed)
        elif "content" in e.changes or "size" in e.changes:
            _copy_content(src, dst, e.path, os.O_WRONLY | os.O_TRUNC)
    # a name whose type changed is both removed and added: it is there, with its new attributes
    gone = removed - {e.path for e in cs.entries if e.status == "added"}
    done = sorted(p for p in cs.paths if p not in gone)
    for path in done:
        st = src.lstat(path)
        have = dst.lstat(path)
        if (have.st_uid, have.st_gid) != (st.st_uid, st.st_gid):
            dst.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
        if not S.S_ISLNK(st.st_mode) and S.S_IMODE(dst.lstat(path).st_mode) != S.S_IMODE(st.st_mode):
            dst.chmod(path, S.S_IMODE(st.st_mode), follow_symlinks=False)
        if not S.S_ISLNK(st.st_mode):
            want = {n: src.getxattr(path, n, follow_symlinks=False) for n in src.listxattr(path, follow_symlinks=False)}
            have_x = set(dst.listxattr(path, follow_symlinks=False))
            for name in sorted(have_x - set(want)):
                dst.removexattr(path, name, follow_symlinks=False)
            for name, value in sorted(want.items()):
                if name not in have_x or dst.getxattr(path, name, follow_symlinks=False) != value:
                    dst.setxattr(path, name, value, follow_symlinks=False)
    for path in reversed(done):
        st = src.lstat(path)
        dst.utime(path, st.st_atime_ns, st.st_mtime_ns, follow_symlinks=False)
