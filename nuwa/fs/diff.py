"""Tree diffs: what differs between two filesystem trees, path by path.

``diff_trees(fs_a, fs_b)`` walks both trees together (two images, an image and a host
directory, a backend and its overlay) and reports every path that was added, removed or
changed, naming what changed: type, mode, uid, gid, size, content (sha256), link target,
device number, xattrs, hard-link group and, with ``times=True``, mtime. The output is grouped
like ``virt-diff`` (``-`` removed, ``+`` added, ``=`` changed) or a JSON document.

Speed. Contents are compared cheaply first: different sizes mean different contents (no
hashing needed to decide); otherwise both filesystems are asked for a *content fingerprint*
(an optional backend method, see :func:`fingerprint`), and only when those are missing or
differ are the contents read, side by side up to the first difference (:func:`same_bytes`),
and hashed only when they differ (a hash is reported for differing contents only). A backend whose files can share storage (an ext4 image over a
qcow2 backing file shared with the other image, or an overlay over its backend) can prove two
contents identical without reading them.
"""

from __future__ import annotations

import json
import stat as S
from dataclasses import dataclass, field

from nuwa.fs.content import same_pieces, sha256_hex
from nuwa.fs.model import FileSystem, join

_TYPES = {S.S_IFREG: "file", S.S_IFDIR: "dir", S.S_IFLNK: "symlink", S.S_IFIFO: "fifo",
          S.S_IFCHR: "chr", S.S_IFBLK: "blk", S.S_IFSOCK: "sock"}
#: one-letter types of virt-diff / ls -l
TYPE_CHAR = {"file": "-", "dir": "d", "symlink": "l", "fifo": "p", "chr": "c", "blk": "b", "sock": "s"}


def fingerprint(fs: FileSystem, path: str):
    """The backend's content fingerprint of ``path``, or None.

    The optional backend hook ``content_fingerprint(path) -> hashable | None`` returns a value
    such that two files (on any two filesystems) with equal non-None fingerprints have
    identical contents: e.g. the ext4 engine can return the identity of the shared backing
    file plus the file's physical extents when none of those clusters is allocated in either
    image's top layer. None means "unknown": the diff then hashes.
    """
    hook = getattr(fs, "content_fingerprint", None)
    if hook is None:
        return None
    try:
        return hook(path)
    except OSError:
        return None


def sha256_of(fs: FileSystem, path: str) -> str:
    """sha256 of a regular file's contents, read in 1 MiB pieces (never all at once)."""
    handle = fs.open_handle(path)
    try:
        return sha256_hex(handle, handle.size())
    finally:
        handle.close()


def same_bytes(fs_a: FileSystem, fs_b: FileSystem, path: str, size: int) -> bool:
    """Whether the first ``size`` bytes of ``path`` read the same in ``fs_a`` and ``fs_b``: read
    side by side in pieces, up to the first piece that differs. Cheaper than hashing both when
    they are equal (no hash computed), which is what most files a package upgrade rewrites are."""
    ha = fs_a.open_handle(path)
    try:
        hb = fs_b.open_handle(path)
        try:
            return same_pieces(ha, hb, size)
        finally:
            hb.close()
    finally:
        ha.close()


@dataclass
class Attrs:
    """What is compared of one path on one side."""

    type: str
    mode: int  # permission bits and setuid/setgid/sticky (07777)
    uid: int
    gid: int
    size: int | None  # None for directories (their size is a filesystem detail)
    nlink: int
    mtime_ns: int
    rdev: int = 0
    target: str | None = None
    xattrs: dict = field(default_factory=dict)
    sha256: str | None = None
    ino: int = 0
    links: tuple = ()  # the other paths of the same inode inside the compared region
    atime_ns: int = 0  # compared only when asked (``atimes``): not in the JSON document

    def to_json(self) -> dict:
        d = {"type": self.type, "mode": f"{self.mode:04o}", "uid": self.uid, "gid": self.gid}
        if self.size is not None:
            d["size"] = self.size
        if self.sha256:
            d["sha256"] = self.sha256
        if self.target is not None:
            d["target"] = self.target
        if self.type in ("chr", "blk"):
            d["rdev"] = [self.rdev >> 8 & 0xFFF, (self.rdev & 0xFF) | (self.rdev >> 12 & 0xFFF00)]
        if self.xattrs:
            d["xattrs"] = {k: v.hex() for k, v in sorted(self.xattrs.items())}
        if self.links:
            d["hardlinks"] = list(self.links)
        d["mtime_ns"] = self.mtime_ns
        return d


@dataclass
class Entry:
    """One differing path: ``status`` is added, removed or changed; ``changes`` names what."""

    path: str
    status: str
    a: Attrs | None
    b: Attrs | None
    changes: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return (self.b or self.a).type

    def to_json(self) -> dict:
        d = {"path": self.path, "status": self.status, "type": self.type}
        if self.changes:
            d["changes"] = self.changes
        if self.a is not None:
            d["a"] = self.a.to_json()
        if self.b is not None:
            d["b"] = self.b.to_json()
        return d


def attrs_of(fs: FileSystem, path: str, st) -> Attrs:
    """Collect the compared attributes of ``path`` (``st`` is its lstat)."""
    kind = _TYPES.get(S.S_IFMT(st.st_mode), "unknown")
    xattrs = {}
    if kind != "symlink":  # user.* cannot exist on symlinks; trusted.* rarely does
        try:
            xattrs = {n: fs.getxattr(path, n, follow_symlinks=False) for n in fs.listxattr(path, follow_symlinks=False)}
        except OSError:
            xattrs = {}
    return Attrs(kind, S.S_IMODE(st.st_mode), st.st_uid, st.st_gid, None if kind == "dir" else st.st_size,
                 st.st_nlink, st.st_mtime_ns, st.st_rdev if kind in ("chr", "blk") else 0,
                 fs.readlink(path) if kind == "symlink" else None, xattrs, None, st.st_ino,
                 atime_ns=st.st_atime_ns)


def _selected(path: str, include, exclude) -> tuple[bool, bool]:
    """(report this path?, descend into it?) for include/exclude prefixes."""
    def under(p, prefix):
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else "/"
        return prefix == "/" or p == prefix or p.startswith(prefix + "/")

    if any(under(path, e) for e in exclude):
        return False, False
    if not include:
        return True, True
    if any(under(path, i) for i in include):
        return True, True
    # an ancestor of an included prefix: walk through it without reporting it
    return False, any(under("/" + i.strip("/"), path) for i in include)


class _Differ:
    def __init__(self, fs_a, fs_b, include=(), exclude=(), times=False, hashes=True, same_content=None,
                 atimes=False, sha256_b=None):
        self.atimes = atimes
        self.sha256_b = sha256_b
        self.a, self.b = fs_a, fs_b
        self.include, self.exclude = tuple(include), tuple(exclude)
        self.times, self.hashes = times, hashes
        self.same_content = same_content
        self.entries: list[Entry] = []
        self.inos_a: dict[int, list[str]] = {}
        self.inos_b: dict[int, list[str]] = {}
        self.both: list[tuple[str, Attrs, Attrs, list]] = []

    def run(self) -> list[Entry]:
        self.dir("/", self.a.lstat("/"), self.b.lstat("/"))
        self.hardlinks()
        self.entries.sort(key=lambda e: e.path)
        return self.entries

    def _note(self, table, path, at: Attrs) -> None:
        if at.type != "dir" and at.nlink > 1:
            table.setdefault(at.ino, []).append(path)

    def side(self, fs, path, st, status, table) -> None:
        """Report ``path`` (and, for a directory, everything below it) as added or removed."""
        report, descend = _selected(path, self.include, self.exclude)
        at = attrs_of(fs, path, st)
        self._note(table, path, at)
        if report:
            if at.type == "file" and self.hashes:
                at.sha256 = self._sha256(fs, path)
            self.entries.append(Entry(path, status, at if status == "removed" else None,
                                      at if status == "added" else None))
        if at.type == "dir" and descend:
            for name in sorted(fs.readdir(path)):
                p = join(path, name)
                self.side(fs, p, fs.lstat(p), status, table)

    def dir(self, path: str, st_a, st_b) -> None:
        names_a, names_b = set(self.a.readdir(path)), set(self.b.readdir(path))
        for name in sorted(names_a | names_b):
            p = join(path, name)
            report, descend = _selected(p, self.include, self.exclude)
            if not report and not descend:
                continue
            if name not in names_b:
                self.side(self.a, p, self.a.lstat(p), "removed", self.inos_a)
            elif name not in names_a:
                self.side(self.b, p, self.b.lstat(p), "added", self.inos_b)
            else:
                self.pair(p, self.a.lstat(p), self.b.lstat(p), report, descend)

    def pair(self, path: str, st_a, st_b, report: bool, descend: bool) -> None:
        if S.S_IFMT(st_a.st_mode) != S.S_IFMT(st_b.st_mode):
            self.side(self.a, path, st_a, "removed", self.inos_a)
            self.side(self.b, path, st_b, "added", self.inos_b)
            return
        at, bt = attrs_of(self.a, path, st_a), attrs_of(self.b, path, st_b)
        self._note(self.inos_a, path, at)
        self._note(self.inos_b, path, bt)
        if report:
            changes = []
            for f in ("mode", "uid", "gid", "rdev", "target", "xattrs"):
                if getattr(at, f) != getattr(bt, f):
                    changes.append(f)
            if at.type == "file":
                if at.size != bt.size:
                    changes.append("size")
                    changes.append("content")
                    if self.hashes:
                        at.sha256, bt.sha256 = sha256_of(self.a, path), self._sha256(self.b, path)
                elif not self._same(path, st_a, st_b, at.size):
                    ha, hb = sha256_of(self.a, path), self._sha256(self.b, path)
                    if ha != hb:  # hashes are reported only for contents that differ
                        at.sha256, bt.sha256 = ha, hb
                        changes.append("content")
            if self.times and at.mtime_ns != bt.mtime_ns:
                changes.append("mtime")
            if self.atimes and at.atime_ns != bt.atime_ns:
                changes.append("atime")
            self.both.append((path, at, bt, changes))
        if at.type == "dir" and descend:
            self.dir(path, st_a, st_b)

    def _sha256(self, fs, path: str) -> str:
        """sha256 of ``path`` in ``fs``; on the new side, the writer's own when it kept one."""
        if fs is self.b and self.sha256_b is not None:
            known = self.sha256_b(path)
            if known is not None:
                return known
        return sha256_of(fs, path)

    def _same(self, path, st_a, st_b, size: int) -> bool:
        """Whether ``path`` (``size`` bytes on both sides) holds the same bytes on both."""
        verdict = self._same_content(path, st_a, st_b)
        return same_bytes(self.a, self.b, path, size) if verdict is None else verdict

    def _same_content(self, path, st_a, st_b) -> bool | None:
        """True: the same bytes; False: known to differ (the caller's verdict, which read them);
        None: not known without reading both sides."""
        if self.same_content is not None:
            verdict = self.same_content(path, st_a, st_b)
            if verdict is not None:
                return verdict
        fa = fingerprint(self.a, path)
        return True if fa is not None and fa == fingerprint(self.b, path) else None

    def hardlinks(self, group_a=None, group_b=None) -> None:
        """Changed hard-link groups, then the changed-entries list. ``group_a(ino)``/``group_b``
        give an inode's paths on each side (default: the paths this diff visited)."""
        group_a = group_a or (lambda ino: self.inos_a.get(ino, ()))
        group_b = group_b or (lambda ino: self.inos_b.get(ino, ()))
        for path, at, bt, changes in self.both:
            at.links = tuple(p for p in sorted(group_a(at.ino)) if p != path) if at.nlink > 1 and at.type != "dir" else ()
            bt.links = tuple(p for p in sorted(group_b(bt.ino)) if p != path) if bt.nlink > 1 and bt.type != "dir" else ()
            if at.links != bt.links:
                changes.append("hardlinks")
            if changes:
                if "content" in changes and at.type == "file" and self.hashes and at.sha256 is None:
                    at.sha256, bt.sha256 = sha256_of(self.a, path), self._sha256(self.b, path)
                self.entries.append(Entry(path, "changed", at, bt, changes))


def diff_trees(fs_a: FileSystem, fs_b: FileSystem, include=(), exclude=(), times: bool = False,
               hashes: bool = True, same_content=None, atimes: bool = False) -> list[Entry]:
    """Every path added, removed or changed from ``fs_a`` to ``fs_b``, sorted by path.

    ``include``/``exclude`` are path prefixes (component-wise). ``times`` adds mtime changes.
    ``hashes`` fills in sha256 for added, removed and content-changed files (set False when
    only the list of paths matters). ``same_content(path, st_a, st_b)`` may return True/False
    to decide content equality without hashing (None: not known). ``atimes`` adds access-time
    changes (``atime``; a change set to carry elsewhere needs them, a diff to read rarely does).
    """
    return _Differ(fs_a, fs_b, include, exclude, times, hashes, same_content, atimes).run()


def diff_paths(fs_a: FileSystem, fs_b: FileSystem, paths, group, times: bool = False,
               same_content=None, sha256_b=None) -> list[Entry]:
    """What :func:`diff_trees` gives for ``fs_b`` made from ``fs_a``, comparing only ``paths``.

    For a writer that recorded what it changed (the overlay): ``paths`` are ``(path, deep)``
    pairs, each path's parent a directory on both sides; everything not at or below them must
    be identical on both sides (the same inode at the same path). ``deep`` compares the whole
    subtree below a directory present on both sides (one that moved there); otherwise only the
    path itself. Inode numbers are shared: an equal number on both sides is the same inode.

    Hard-link groups reach outside ``paths``: ``group(inos)`` returns every path of each of
    those inode numbers in ``fs_a`` (a dict; the writer may have to walk ``fs_a`` for it). An
    inode's paths in ``fs_b`` are then the ones visited there plus its unvisited paths in
    ``fs_a`` (those are identical on both sides); such an unvisited path is compared too (its
    group, or its inode, changed).

    ``sha256_b(path)`` may give the sha256 (hex) of a regular file of ``fs_b`` without reading
    it (the writer hashed it as it wrote it; None: not known, it is read).
    """
    d = _Differ(fs_a, fs_b, times=times, same_content=same_content, sha256_b=sha256_b)
    for path, deep in paths:
        st_a, st_b = _lstat_or_none(fs_a, path), _lstat_or_none(fs_b, path)
        if st_b is None:
            if st_a is not None:
                d.side(fs_a, path, st_a, "removed", d.inos_a)
        elif st_a is None:
            d.side(fs_b, path, st_b, "added", d.inos_b)
        else:
            d.pair(path, st_a, st_b, True, deep)
    full_a = group(set(d.inos_a) | set(d.inos_b))
    seen_a, seen_b = {k: set(v) for k, v in d.inos_a.items()}, {k: set(v) for k, v in d.inos_b.items()}
    full_b = {ino: seen_b.get(ino, set()) | (full_a.get(ino, set()) - seen_a.get(ino, set()))
              for ino in set(seen_a) | set(seen_b)}
    for ino in sorted(full_a):
        for path in sorted(full_a[ino] - seen_a.get(ino, set())):  # outside ``paths``: same inode on both sides
            d.pair(path, fs_a.lstat(path), fs_b.lstat(path), True, False)
    d.hardlinks(lambda ino: full_a.get(ino, ()), lambda ino: full_b.get(ino, ()))
    d.entries.sort(key=lambda e: e.path)
    return d.entries


def _lstat_or_none(fs: FileSystem, path: str):
    try:
        return fs.lstat(path)
    except FileNotFoundError:
        return None


def _line(sign: str, at: Attrs, path: str) -> str:
    size = "" if at.size is None else str(at.size)
    tail = f" -> {at.target}" if at.target is not None else ""
    return f"{sign} {TYPE_CHAR.get(at.type, '?')} {at.mode:04o} {size:>10} {path}{tail}"


def format_human(entries: list[Entry]) -> str:
    """virt-diff-like text: removed (-), added (+), then changed (=) with what changed."""
    out = []
    for e in entries:
        if e.status == "removed":
            out.append(_line("-", e.a, e.path))
    for e in entries:
        if e.status == "added":
            out.append(_line("+", e.b, e.path))
    for e in entries:
        if e.status == "changed":
            out.append(_line("=", e.b, e.path))
            details = []
            for c in e.changes:
                av, bv = _show(e.a, c), _show(e.b, c)
                details.append(f"{c}: {av} -> {bv}" if av is not None else c)
            out.append("    " + "; ".join(details))
    return "\n".join(out) + ("\n" if out else "")


def _show(at: Attrs, what: str):
    if what == "mode":
        return f"{at.mode:04o}"
    if what in ("uid", "gid", "size", "target", "mtime_ns"):
        return getattr(at, what)
    if what == "mtime":
        return at.mtime_ns
    if what == "atime":
        return at.atime_ns
    if what == "content":
        return at.sha256[:16] if at.sha256 else None
    if what == "xattrs":
        return ",".join(sorted(at.xattrs)) or "(none)"
    if what == "hardlinks":
        return ",".join(at.links) or "(none)"
    if what == "rdev":
        return f"{at.rdev:#x}"
    return None


def to_doc(entries: list[Entry], **meta) -> dict:
    """The document ``nuwa diff --json`` prints, as a dict: ``meta``, a summary, every entry."""
    counts = {s: sum(1 for e in entries if e.status == s) for s in ("added", "removed", "changed")}
    return {**meta, "summary": counts, "entries": [e.to_json() for e in entries]}


def to_json(entries: list[Entry], **meta) -> str:
    """The JSON document ``nuwa diff --json`` prints."""
    return json.dumps(to_doc(entries, **meta), indent=1)
