"""Overlay transactions: a change set over any backend.

``Overlay(backend)`` is a filesystem whose reads see pending changes and whose writes never
reach the backend until :meth:`Overlay.commit`. It is :class:`~nuwa.fs.memory.MemoryFS` (so it
has exactly the kernel semantics the behaviour suite checks) over *lazily loaded* nodes: a
directory's entries, a node's xattrs and a file's bytes are fetched from the backend the first
time they are needed. Unmodified contents are read from the backend on demand; modified
contents live in a ``SpooledTemporaryFile`` (memory up to ``spool_max``, then a temporary
file), so unpacking a large package does not hold it in memory.

Savepoints (``sp = ov.savepoint()``; ``ov.rollback_to(sp)``; ``ov.release(sp)``) nest. They
work with an undo log: the first change of each field of each node after a savepoint records
the old value (whole ``entries``/``xattrs`` dicts and contents are copied once per savepoint),
so rolling back restores the tree exactly, as dpkg's error unwinding needs.

``changes()`` lists every effect as :class:`nuwa.fs.diff.Entry` (a diff of the backend against
the overlay that only visits what was loaded). ``commit()`` applies everything in one ordered
flush: nodes that moved are set aside first, then removals (deepest first), then creations
top-down (directories before their contents; hard links as links), then contents, then
metadata (owner before mode, since chown clears setuid), then times last; then the backend is
flushed. A new file that replaces a backend file holding exactly its bytes (that file's only
name) keeps the old inode and blocks, given the new owner, mode, xattrs and times
(:meth:`Overlay._same_file`; docs/fs-model.md). ``discard()`` forgets everything: the backend
was never written.
"""

from __future__ import annotations

import errno
import os
import stat as S
import tempfile
import time
from types import SimpleNamespace

from nuwa.errors import InvalidInputError, OperationFailedError, fs_error
from nuwa.fs.content import copy_content, fill, pieces, same_pieces, sha256_hex
from nuwa.fs.diff import Entry, diff_paths, diff_trees
from nuwa.fs.memory import BLOCK, MemoryFS, MemoryHandle, Node, on_paths
from nuwa.fs.model import FileSystem, Resolver, StatVFS, join
from nuwa.fs.overlay_changes import KnownStats, NodeReads, link_groups, touched_paths

_STAGING = "/.nuwa-overlay-commit"
#: the overlay numbers the nodes it makes from here up: above any backend inode number
_NEW_INO = 1 << 48
#: how many bytes of written files an overlay holds in memory before new files go to its arena
MEMORY_BUDGET = 16 << 20


class Origin:
    """Where a node came from: its backend path, inode number, stat, and (dirs) the backend's
    listing as loaded (name -> lstat)."""

    __slots__ = ("path", "ino", "st", "names")

    def __init__(self, path: str, st):
        self.path, self.ino, self.st, self.names = path, st.st_ino, st, None


class OriginContent:
    """An unmodified file: read from the backend on demand."""

    def __init__(self, backend: FileSystem, path: str, size: int, blocks: int):
        self.backend, self.path, self.size, self._blocks = backend, path, size, blocks

    def pread(self, offset: int, n: int) -> bytes:
        h = self.backend.open_handle(self.path)
        try:
            return h.pread(offset, n)
        finally:
            h.close()

    def allocated(self) -> int:
        return self._blocks // (BLOCK // 512)


#: large writes go to a file this much at a time: one write(2) of 50 MB into the page cache
#: took 0.09-0.13 s where fifty of 1 MiB took 0.011 s (measured on this project's build
#: machines; 8 MiB pieces were as slow as one), and mkinitramfs writes its 51 MB archive at once
WRITE_PIECE = 1 << 20


def pwrite_pieces(fd: int, data, offset: int) -> int:
    """``os.pwrite`` of all of ``data`` at ``offset``, :data:`WRITE_PIECE` at a time."""
    if len(data) <= WRITE_PIECE:
        return os.pwrite(fd, data, offset)
    mv = memoryview(data)
    done = 0
    while done < len(mv):
        done += os.pwrite(fd, mv[done:done + WRITE_PIECE], offset + done)
    return done


def write_pieces(f, data) -> int:
    """``f.write`` of all of ``data``, :data:`WRITE_PIECE` at a time (see there)."""
    if len(data) <= WRITE_PIECE:
        return f.write(data)
    mv = memoryview(data)
    for o in range(0, len(mv), WRITE_PIECE):
        f.write(mv[o:o + WRITE_PIECE])
    return len(mv)


class SpoolArena:
    """Where an overlay keeps the bytes of the files it writes: each file in its own
    ``SpooledTemporaryFile`` (memory up to ``spool_max``) while the files held in memory total
    less than ``budget``; past it, new files are appended to one shared temporary file (the
    arena) instead, so a package of thousands of small files (a kernel's modules: 3,500
    files, 69 MB) is not held in memory until the commit, and costs one descriptor, not one
    each. The in-memory total is kept exact: a content gives its bytes back when it is dropped
    or moves to disk.
    """

    def __init__(self, spool_max: int, budget: int):
        self.spool_max = spool_max
        self.budget = budget
        self.in_memory = 0
        self._file = None  # made at the first file past the budget
        self.end = 0  # the arena's length: the next append goes there

    def file(self):
        """A new, empty spool file: in memory while the budget lasts, else in the arena."""
        if self.in_memory < self.budget:
            return tempfile.SpooledTemporaryFile(max_size=self.spool_max)
        return ArenaFile(self)

    @property
    def fd(self) -> int:
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # unlinked at once: nothing is left behind
        return self._file.fileno()


class ArenaFile:
    """A spool file kept in its overlay's arena, with the file interface :class:`SpoolContent`
    uses (``seek``/``read``/``write``/``truncate``/``rollover``). A file's bytes are one run
    of the arena. A write inside the run is made in place; a write past its end is appended
    while the run is the arena's last one (an unpacked file written front to back, holes
    included: the arena past its end was never written, so a hole reads as zeros). A file
    that grows after another was appended, or is truncated shorter, moves to a temporary file
    of its own first (a shortened run would show its old bytes when it grows again)."""

    __slots__ = ("arena", "start", "length", "pos", "own")

    def __init__(self, arena: SpoolArena):
        self.arena = arena
        self.start = -1  # no run yet
        self.length = 0
        self.pos = 0
        self.own = None

    def seek(self, pos: int) -> None:
        if self.own is not None:
            self.own.seek(pos)
        self.pos = pos

    def read(self, n: int) -> bytes:
        if self.own is not None:
            return self.own.read(n)
        n = max(0, min(n, self.length - self.pos))
        data = os.pread(self.arena.fd, n, self.start + self.pos) if n else b""
        self.pos += len(data)
        return data

    def write(self, data) -> int:
        if self.own is None:
            a = self.arena
            if self.start < 0:
                self.start = a.end
            last = a.end == self.start + self.length
            if last or self.pos + len(data) <= self.length:
                n = pwrite_pieces(a.fd, data, self.start + self.pos)
                self.pos += n
                if self.pos > self.length:
                    self.length = self.pos
                    a.end = self.start + self.length
                return n
            self._move_out()
        return write_pieces(self.own, data)

    def _move_out(self) -> None:
        """Copy the run to a temporary file of this file's own (the run is left unused)."""
        own = tempfile.TemporaryFile()
        fd, start = self.arena.fd, self.start
        for _off, piece in pieces(SimpleNamespace(pread=lambda off, n: os.pread(fd, n, start + off)), self.length):
            own.write(piece)
        own.truncate(self.length)
        own.seek(self.pos)
        self.own = own

    def truncate(self, length: int) -> None:
        if self.own is None:
            if length >= self.length:
                return  # SpoolContent keeps the logical size; a shorter read is zeros past it
            if length == 0:
                # emptied (a file opened with O_TRUNC, written again whole: dpkg's status
                # after each package): nothing to keep, so no copy; its next write starts a
                # run at the arena's end. The old run is left unused, never given back: the
                # arena past its end must read as zeros for a hole
                self.start, self.length = -1, 0
                return
            self._move_out()
        self.own.truncate(length)

    def rollover(self) -> None:
        """Already on disk."""


class SpoolContent:
    """A modified file: bytes in a SpooledTemporaryFile, holes tracked by the logical size.
    ``shared``: more than one file holds it (:meth:`Overlay.clone_content`), so a write to
    either copies it first.

    :meth:`sha256` hashes the spooled bytes directly (no handle, no path) and keeps the hash
    until the next write, for :meth:`Overlay.changes`.
    """

    shared = False
    _held = 0
    #: bumped by every write and truncation: a verdict about the bytes holds for one generation
    gen = 0

    def __init__(self, arena: SpoolArena):
        self.arena = arena
        self.f = arena.file()
        self._in_memory = isinstance(self.f, tempfile.SpooledTemporaryFile)
        self._held = 0  # the bytes counted in arena.in_memory for this content
        self.size = 0
        self.blocks: set[int] = set()
        self._sha256: str | None = None

    def __del__(self):
        if self._held:
            self.arena.in_memory -= self._held

    @classmethod
    def copy_of(cls, src, arena: SpoolArena) -> "SpoolContent":
        """A private copy of ``src`` (an OriginContent or SpoolContent), read in pieces."""
        c = cls(arena)
        copy_content(src, c, src.size)  # holes stay holes
        c.size = src.size
        if isinstance(src, SpoolContent):
            c.blocks = set(src.blocks)  # a written block of zeros stays allocated, as it was
        return c

    def pread(self, offset: int, n: int) -> bytes:
        return self._read(offset, n)

    def _read(self, offset: int, n: int) -> bytes:
        end = min(self.size, offset + n)
        if offset >= end:
            return b""
        self.f.seek(offset)
        data = self.f.read(end - offset)
        return data + bytes(end - offset - len(data))

    def new_blocks(self, offset: int, n: int) -> int:
        if n <= 0:
            return 0
        return sum(1 for b in range(offset // BLOCK, (offset + n - 1) // BLOCK + 1) if b not in self.blocks)

    def pwrite(self, offset: int, data: bytes) -> int:
        self._sha256 = None
        self.gen += 1
        if self._in_memory and offset + len(data) > self.arena.spool_max:
            self.f.rollover()  # to disk before, not after: a 50 MB write is not held twice
            self._in_memory = False
        self.f.seek(offset)
        write_pieces(self.f, data)
        self.blocks.update(range(offset // BLOCK, (offset + len(data) - 1) // BLOCK + 1))
        self.size = max(self.size, offset + len(data))
        self._count()
        return len(data)

    def _count(self) -> None:
        """Keep the arena's in-memory total exact for this content."""
        held = self.size if self._in_memory else 0
        if held != self._held:
            self.arena.in_memory += held - self._held
            self._held = held

    def truncate(self, length: int) -> None:
        self._sha256 = None
        self.gen += 1
        if length < self.size:
            self.f.truncate(length)
            self.blocks = {b for b in self.blocks if b * BLOCK < length}
        self.size = length
        self._count()

    def allocated(self) -> int:
        return len(self.blocks)

    def sha256(self) -> str:
        """The sha256 of the contents (hex), read from the spool in pieces; kept until a write.

        Hashed when asked, not as written: a job writes far more than it leaves (a kernel
        update wrote 353 MB into files and left 127 MB: a hash kept while writing cost more
        than reading the survivors back, measured)."""
        if self._sha256 is None:
            self._sha256 = sha256_hex(SimpleNamespace(pread=self._read), self.size)  # the spool itself
        return self._sha256


class Savepoint:
    """A handle returned by :meth:`Overlay.savepoint`."""

    __slots__ = ("log_len", "used", "inodes", "alive")

    def __init__(self, log_len: int, used: int, inodes: int):
        self.log_len, self.used, self.inodes, self.alive = log_len, used, inodes, True


class Overlay(MemoryFS):
    """A transaction over ``backend`` (which is only read until :meth:`commit`)."""

    def __init__(self, backend: FileSystem, spool_max: int = 1 << 20, clock=time.time_ns,
                 memory_budget: int = MEMORY_BUDGET):
        self.backend = backend
        self.spool_max = spool_max
        self.memory_budget = memory_budget
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        b = self.backend
        self.writable = True  # a dry run over a read-only image works; commit() needs a writable one
        try:
            # a tracing backend records this read as a bound, not a value (nuwa.fs.trace)
            vfs = getattr(b, "capacity_statvfs", b.statvfs)("/")
            self._capacity_blocks = vfs.f_bavail * vfs.f_frsize // BLOCK
            self._max_inodes = vfs.f_favail
        except OSError:
            self._capacity_blocks, self._max_inodes = 1 << 40, 1 << 32
        self._used_blocks = 0
        self._inodes = 0
        self._arena = SpoolArena(self.spool_max, self.memory_budget)
        # the most blocks and inodes ever used: a tracing backend learns each new peak
        self._peak = [0, 0]
        self._note_use = getattr(b, "note_use", None)
        # a tracing backend learns which loaded nodes the job looked up (nuwa.fs.trace)
        self._note_seen = getattr(b, "note_seen", None)
        self._next_ino = _NEW_INO
        self._by_ino: dict[int, Node] = {}
        self._ino_paths: dict[int, set[str]] = {}
        self._log: list[tuple] = []
        self._sps: list[Savepoint] = []
        self._touched: set = set()
        self._dirty: dict[int, Node] = {}
        # id(content) -> (content, its write generation, backend path, same bytes?): _same_bytes
        self._same_memo: dict[int, tuple] = {}
        # the names each directory had put or deleted (kept through rollbacks: a superset is
        # fine): with _dirty, where the overlay can differ from the backend (changes())
        self._slots: dict[int, tuple[Node, set[str]]] = {}
        self._nlink: dict[int, int] = {}  # backend inode -> its link count, for inodes with several
        root = self._load("/", b.lstat("/"))
        root.parent = root
        self.root_node = root
        self._resolver = Resolver(root, self._lookup, lambda n: n.parent, lambda n: n.mode, self._readlink_node,
                                  cache=True)

    # ---- lazy loading -------------------------------------------------------------------------
    def _load(self, path: str, st) -> Node:
        if not S.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            self._ino_paths.setdefault(st.st_ino, set()).add(path)
            self._nlink[st.st_ino] = st.st_nlink
            if st.st_ino in self._by_ino:
                return self._by_ino[st.st_ino]
        n = Node.__new__(Node)
        n.ino, n.mode, n.uid, n.gid, n.nlink = st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_nlink
        n.atime, n.mtime, n.ctime, n.rdev = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_rdev
        n.xattrs = n.entries = n.parent = n.target = None
        n.content = OriginContent(self.backend, path, st.st_size, st.st_blocks) if S.S_ISREG(st.st_mode) else None
        if S.S_ISLNK(st.st_mode):
            n.target = self.backend.readlink(path)
        n.origin = Origin(path, st)
        if not S.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            self._by_ino[st.st_ino] = n
        return n

    def _lookup(self, d: Node, name: str):
        n = self._entries(d).get(name)
        if n is not None and self._note_seen is not None and n.origin is not None:
            self._note_seen(n.origin.path)
            if d.origin is not None and d.origin.names is not None and name in d.origin.names:
                self._note_seen(join(d.origin.path, name))  # the listed name itself (a hard link's other name)
        return n

    def _entries(self, d: Node) -> dict:
        if d.entries is None:
            base = d.origin.path
            entries, names = {}, {}
            scan = getattr(self.backend, "readdir_stat", None)  # optional: names and lstats at once
            listing = scan(base) if scan else [(n, self.backend.lstat(join(base, n))) for n in self.backend.readdir(base)]
            for name, st in listing:
                p = join(base, name)
                child = self._load(p, st)
                if S.S_ISDIR(st.st_mode):
                    child.parent = d
                entries[name] = child
                names[name] = st
            d.entries, d.origin.names = entries, names
        return d.entries

    def _xattrs(self, node: Node) -> dict:
        if node.xattrs is None:
            p, b = node.origin.path, self.backend
            node.xattrs = {n: b.getxattr(p, n, follow_symlinks=False) for n in b.listxattr(p, follow_symlinks=False)}
        return node.xattrs

    # ---- change tracking (undo log) -----------------------------------------------------------
    def _first_touch(self, node: Node, what: str) -> bool:
        key = (id(node), what)
        if not self._sps or key in self._touched:
            return False
        self._touched.add(key)
        return True

    def _dirty_node(self, node: Node) -> None:
        self._dirty[id(node)] = node

    def _set(self, node: Node, **attrs) -> None:
        if "target" in attrs or "parent" in attrs:
            self._resolver.invalidate()  # a symlink now points elsewhere / a directory moved
        nid = id(node)
        self._dirty[nid] = node
        if not self._sps:
            for k, v in attrs.items():
                setattr(node, k, v)
            return
        # _first_touch inline: an unpack sets owner, mode and times of every file it writes
        # (40,000 calls for the minbase upgrade)
        touched, log = self._touched, self._log
        for k, v in attrs.items():
            key = (nid, k)
            if key not in touched:
                touched.add(key)
                log.append((node, k, getattr(node, k)))
            setattr(node, k, v)

    def _slot(self, parent: Node, name: str) -> None:
        slot = self._slots.get(id(parent))
        if slot is None:
            slot = self._slots[id(parent)] = (parent, set())
        slot[1].add(name)

    def _put_entry(self, parent: Node, name: str, node: Node) -> None:
        es = self._entries(parent)
        if self._first_touch(parent, "entries"):
            self._log.append((parent, "entries", dict(es)))
        self._dirty_node(parent)
        self._slot(parent, name)
        self._dirty_node(node)
        old = es.get(name)
        if old is not None and on_paths(old):  # replaced: cached resolutions through it are stale
            self._resolver.invalidate()
        es[name] = node

    def _del_entry(self, parent: Node, name: str) -> None:
        es = self._entries(parent)
        if self._first_touch(parent, "entries"):
            self._log.append((parent, "entries", dict(es)))
        self._dirty_node(parent)
        self._slot(parent, name)
        if on_paths(es[name]):
            self._resolver.invalidate()
        del es[name]

    def _xattrs_w(self, node: Node) -> dict:
        xs = self._xattrs(node)
        if self._first_touch(node, "xattrs"):
            self._log.append((node, "xattrs", dict(xs)))
        self._dirty_node(node)
        return xs

    def _content_w(self, node: Node):
        c = node.content
        first = self._first_touch(node, "content")
        if isinstance(c, OriginContent) or first or c.shared:
            if first:
                self._log.append((node, "content", c))
            node.content = SpoolContent.copy_of(c, self._arena) if c.size else SpoolContent(self._arena)
        self._dirty_node(node)
        return node.content

    def _new_content(self):
        return SpoolContent(self._arena)

    def clone_content(self, src, dst) -> bool:
        """Share ``src``'s content with the empty new file ``dst`` (both handles of this
        overlay): ``cp`` of a module into an initramfs tree copies no bytes. The content is
        marked shared, so the first write through either file copies it (``_content_w``).
        Blocks are counted as a copy's would be; the commit writes each file's own bytes.
        Only spooled contents are shared (an unmodified file's bytes are read from the backend,
        which the commit changes as it goes); only files made in this overlay receive one (the
        commit writes an existing file's content only when it is spooled); only sources with every block
        allocated and no more are shared (a copy writes every byte: a hole would stay one)."""
        if not (isinstance(src, MemoryHandle) and isinstance(dst, MemoryHandle)) or src.fs is not self \
                or dst.fs is not self or not src.readable or not dst.writable:
            return False
        sn, dn = src.node, dst.node
        if sn is dn or dn.origin is not None or not S.S_ISREG(sn.mode) or not S.S_ISREG(dn.mode):
            return False
        c, old = self._content(sn), self._content(dn)
        if not isinstance(c, SpoolContent):
            return False  # the backend's own bytes: the commit may move or remove them first
        need = (c.size + BLOCK - 1) // BLOCK
        if old.size or not c.size or c.allocated() != need:
            return False
        if self._used_blocks + need > self._capacity_blocks:
            raise self._no_space(dst.path)
        self._kill_priv(dn)
        if self._first_touch(dn, "content"):
            self._log.append((dn, "content", old))
        c.shared = True
        dn.content = c
        self._dirty_node(dn)
        self._account_blocks(need - old.allocated())
        now = self._now()
        self._set(dn, mtime=now, ctime=now)
        return True

    def _account_blocks(self, delta: int) -> None:
        self._used_blocks += delta
        if self._used_blocks > self._peak[0]:
            self._new_peak()

    def _account_inode(self, delta: int) -> None:
        self._inodes += delta
        if self._inodes > self._peak[1]:
            self._new_peak()

    def _new_peak(self) -> None:
        self._peak = [max(self._peak[0], self._used_blocks), max(self._peak[1], self._inodes)]
        if self._note_use is not None:
            self._note_use(*self._peak)

    def _no_space(self, path: str) -> OSError:
        note = getattr(self.backend, "note_no_space", None)  # a trace is then not shareable
        if note is not None:
            note()
        return super()._no_space(path)

    def _new_ino(self) -> int:
        self._next_ino += 1
        return self._next_ino

    def savepoint(self) -> Savepoint:
        """Mark the current state; :meth:`rollback_to` returns to it. Savepoints nest."""
        sp = Savepoint(len(self._log), self._used_blocks, self._inodes)
        self._sps.append(sp)
        self._touched = set()
        return sp

    def _index(self, sp: Savepoint) -> int:
        if not sp.alive or sp not in self._sps:
            raise InvalidInputError("savepoint was released or rolled back past", where="overlay")
        return self._sps.index(sp)

    def rollback_to(self, sp: Savepoint) -> None:
        """Undo everything done since ``sp`` was taken (``sp`` stays valid; inner ones die)."""
        i = self._index(sp)
        self._resolver.invalidate()  # entries, targets and parents go back to older values
        while len(self._log) > sp.log_len:
            node, what, old = self._log.pop()
            setattr(node, what, old)
        for inner in self._sps[i + 1:]:
            inner.alive = False
        del self._sps[i + 1:]
        self._used_blocks, self._inodes = sp.used, sp.inodes
        self._touched = set()

    def release(self, sp: Savepoint) -> None:
        """Forget ``sp`` and the savepoints inside it, keeping their changes."""
        i = self._index(sp)
        for s in self._sps[i:]:
            s.alive = False
        del self._sps[i:]
        if not self._sps:
            self._log.clear()
        self._touched = set()

    # ---- reads that differ from MemoryFS --------------------------------------------------------
    def statvfs(self, path: str = "/") -> StatVFS:
        """The backend's counts, minus what the pending changes use."""
        self._node(path, True)
        v = self.backend.statvfs("/")
        used = self._used_blocks * BLOCK // max(1, v.f_frsize)
        return StatVFS(v.f_bsize, v.f_frsize, v.f_blocks, max(0, v.f_bfree - used), max(0, v.f_bavail - used),
                       v.f_files, max(0, v.f_ffree - self._inodes), max(0, v.f_favail - self._inodes),
                       v.f_flag & ~os.ST_RDONLY, v.f_namemax)

    def _backend_paths(self, node: Node) -> set:
        if node.origin is None:
            return set()
        return self._ino_paths.get(node.origin.ino) or {node.origin.path}

    def content_fingerprint(self, path: str):
        """The backend's fingerprint for contents the overlay has not modified."""
        node = self._node(path, False)
        if isinstance(node.content, OriginContent):
            hook = getattr(self.backend, "content_fingerprint", None)
            return hook(node.content.path) if hook else None
        return None

    # ---- changes --------------------------------------------------------------------------------
    def _groups(self, inos) -> dict[int, set[str]]:
        """Every backend path of each of ``inos`` (see :func:`nuwa.fs.overlay_changes.link_groups`)."""
        return link_groups(self.backend, self._ino_paths, self._nlink, inos, _NEW_INO)

    def changes(self, times: bool = True, only=None) -> list[Entry]:
        """Every pending effect, as diff entries (backend -> overlay), sorted by path.

        Exactly what ``diff_trees(backend, overlay)`` gives, comparing only the paths the
        overlay recorded as touched (:func:`nuwa.fs.overlay_changes.touched_paths`). A rename
        shows as a removal and an addition with the same sha256.

        ``only`` (paths): the entries of those paths alone, for a caller that asks whether a
        few named paths changed (a report left without its list of changes): ``diff_trees``
        walks from the root down to them only (its ``include``), no other path is compared. A
        change of such a path that is only a hard link to it made or lost under another name
        goes unseen (the walk sees no other name).
        """
        if only is not None:
            only = set(only)
            note, self._note_seen = self._note_seen, None  # (as below: not the job's reading)
            try:
                return [e for e in diff_trees(self.backend, self, include=sorted(only), times=times) if e.path in only]
            finally:
                self._note_seen = note
        paths, nodes, known = touched_paths(self.root_node, self._slots, self._dirty)

        def same_content(path, st_a, st_b):
            n = nodes[path] if path in nodes else self._node_at(path)
            if n is not None and isinstance(n.content, OriginContent) and path in self._backend_paths(n):
                return True
            if n is not None and isinstance(n.content, SpoolContent):
                # no fingerprint can match spooled bytes: compare them with the backend's file
                # here (what the diff would do), and keep the verdict for the commit
                return self._same_bytes(path, n.content)
            return None

        def sha256_b(path):  # hashed from the spool, not read back through a handle
            n = nodes[path] if path in nodes else self._node_at(path)
            return n.content.sha256() if n is not None and isinstance(n.content, SpoolContent) else None

        # what the diff looks up in the overlay is not the job's reading: it reads the backend
        # itself for everything else (and a trace records that)
        note, self._note_seen = self._note_seen, None
        try:
            old = KnownStats(self.backend, known)
            return diff_paths(old, NodeReads(self, nodes, old.backend_xattrs), paths, self._groups,
                              times=times, same_content=same_content, sha256_b=sha256_b)
        finally:
            self._note_seen = note

    def _node_at(self, path: str):
        try:
            return self._node(path, False)
        except OSError:
            return None

    def discard(self) -> None:
        """Drop every pending change (the backend was never written)."""
        self._reset()

    # ---- commit ---------------------------------------------------------------------------------
    def commit(self) -> None:
        """Apply every pending change to the backend in one ordered flush, then flush it."""
        b = self.backend
        if not b.writable:
            raise fs_error(errno.EROFS, "/")
        final: dict[str, Node] = {}
        order: list[str] = []

        def walk(path: str, d: Node) -> None:
            for name, child in d.entries.items():
                p = join(path, name)
                final[p] = child
                order.append(p)
                if S.S_ISDIR(child.mode) and child.entries is not None:
                    walk(p, child)

        if self.root_node.entries is not None:
            walk("/", self.root_node)
        paths_of: dict[int, list[str]] = {}
        for p in order:
            paths_of.setdefault(id(final[p]), []).append(p)

        def anchored(p: str, n: Node) -> bool:
            return p in self._backend_paths(n)

        # 1. set aside backend nodes that survive only at new places
        moved = []
        for key, ps in paths_of.items():
            n = final[ps[0]]
            if n.origin is not None and not any(anchored(p, n) for p in ps):
                moved.append(n)
        # a node that a directory set aside takes along to one of its places (a hard link's
        # other name inside it, a child under a directory moved whole) stays where it is
        ends = {n.origin.path: paths_of[id(n)][0] for n in moved}

        def taken_along(n: Node) -> bool:
            for bp in self._backend_paths(n):
                q = _innermost(bp.rpartition("/")[0] or "/", ends)
                if q is not None and ends[q] + bp[len(q):] in paths_of[id(n)]:
                    return True
            return False

        moved = [n for n in moved if not taken_along(n)]
        staged: dict[int, str] = {}
        # a set-aside directory takes along the backend entries not set aside before it:
        # backend path prefix -> (where it is set aside, where it ends up)
        carried: dict[str, tuple[str, str]] = {}
        if moved:
            if b.lexists(_STAGING):
                raise OperationFailedError(f"{_STAGING} exists (left by an interrupted commit?)", where="overlay commit")
            b.mkdir(_STAGING, 0o700)
            for i, n in enumerate(sorted(moved, key=lambda n: -n.origin.path.count("/"))):
                staged[id(n)] = f"{_STAGING}/{i}"
                b.rename(n.origin.path, staged[id(n)])
                carried[n.origin.path] = (staged[id(n)], paths_of[id(n)][0])
        staged_origins = {final[paths_of[k][0]].origin.path for k in staged}

        landed: set[str] = set()  # backend paths of set-aside nodes already renamed into place (step 3)

        def moved_to(bp: str, which: int | None) -> str:
            """Where backend path ``bp`` is once set aside (0), once placed (1), or at this
            point of step 3 (None: its set-aside node may be in the staging directory still, or
            placed): under the innermost set-aside node it was in, if any."""
            if not carried:  # nothing set aside (most commits): every path is where it was
                return bp
            q = _innermost(bp, carried)
            if q is None:
                return bp
            if which is None:
                which = 1 if q in landed else 0
            return carried[q][which] + bp[len(q):]

        def in_place(p: str, n: Node) -> bool:
            """``n`` is at ``p`` once the set-aside nodes are placed, with nothing to do."""
            if not carried:
                return p in self._backend_paths(n)
            return any(moved_to(bp, 1) == p for bp in self._backend_paths(n))

        # 2. removals, deepest first: names no longer there under each directory that keeps
        # its backend entries (in place, or set aside whole). A backend that writes a whole
        # file at once (put_file) replaces a non-directory by the new file made at its place
        # in step 3, as rename(2) over it would: that name is not removed first
        put = self._put = getattr(b, "put_file", None)
        self._replacing: set[str] = set()
        self._kept: set[str] = set()
        self._complete: set[int] = set()
        removals = []
        for p in ["/"] + order:
            d = self.root_node if p == "/" else final[p]
            if not S.S_ISDIR(d.mode) or d.entries is None or d.origin is None:
                continue
            # its backend entries are here once placed: in place, set aside whole and put here,
            # or taken along here by a directory above it that was set aside
            if not in_place(p, d):
                continue
            for name, st in (d.origin.names or {}).items():
                bp = join(d.origin.path, name)
                if bp in staged_origins:
                    continue
                fp = join(p, name)
                cur = final.get(fp)  # where that entry will be once placed
                if cur is None or bp not in self._backend_paths(cur):
                    if put is not None and cur is not None and cur.origin is None and moved_to(bp, 1) == fp:
                        # a new node over that entry; "only": its sole name, at the entry's own path
                        only = bp == fp and len(paths_of[id(cur)]) == 1
                        if S.S_ISREG(cur.mode) and not S.S_ISDIR(st.st_mode) and paths_of[id(cur)][0] == fp:
                            if only and self._same_file(bp, st, cur):
                                self._kept.add(fp)  # its inode stays; step 5 and 6 set owner, mode, xattrs, times
                            else:
                                self._replacing.add(fp)  # created there in step 3, not linked to
                            continue
                        if (only and S.S_ISLNK(cur.mode) and S.S_ISLNK(st.st_mode) and st.st_nlink == 1
                                and b.readlink(bp) == cur.target):
                            self._kept.add(fp)  # a symlink to the same target: kept, as a file of the same bytes
                            continue
                    removals.append((moved_to(bp, 0), st.st_mode))
        for bp, mode in sorted(removals, key=lambda x: -x[0].count("/")):
            _rmtree(b, bp, mode)

        # 3. creations, top-down; contents of new files written as they are created
        self._created: set[int] = set()
        placed: dict[int, str] = {}
        for p in order:
            n = final[p]
            if id(n) in staged and id(n) not in placed:
                b.rename(staged[id(n)], p)
                landed.add(n.origin.path)
            elif in_place(p, n):
                pass
            elif id(n) in placed:
                b.link(placed[id(n)], p)
            elif n.origin is not None and (bp := next((bp for bp in self._backend_paths(n)
                                                       if moved_to(bp, 1) in paths_of[id(n)]), None)) is not None:
                # a name kept by a directory set aside: linked from where it is now (the
                # directory may be placed after this path)
                b.link(moved_to(bp, None), p)
            else:
                self._create(p, n)
            placed.setdefault(id(n), p)
        if staged:
            b.rmdir(_STAGING)

        # 4. contents of modified existing files; 5. metadata; 6. times
        targets = [(placed.get(id(n)) or ("/" if n is self.root_node else None), n) for n in self._dirty.values()]
        targets = [(p, n) for p, n in targets if p is not None and id(n) not in self._complete]
        for p, n in targets:
            if isinstance(n.content, SpoolContent) and n.origin is not None and id(n) not in self._created:
                _write_content(b, p, n.content, os.O_WRONLY | os.O_TRUNC)
        # chown, chmod and xattrs change no atime or mtime: each stat _apply_meta ends with is
        # still right for the times pass (one lstat per path fewer)
        after = [(p, n, self._apply_meta(p, n)) for p, n in targets]
        for p, n, st in after:
            if (st.st_atime_ns, st.st_mtime_ns) != (n.atime, n.mtime):
                b.utime(p, n.atime, n.mtime, follow_symlinks=False)
        b.flush()
        self._reset()

    def _create(self, p: str, n: Node) -> None:
        b, put = self.backend, self._put
        kind = S.S_IFMT(n.mode)
        if p in self._kept:
            pass  # the backend's file there holds these bytes (or symlink this target) already (step 2)
        elif kind == S.S_IFDIR:
            b.mkdir(p, 0o700)
        elif kind == S.S_IFLNK:
            b.symlink(n.target, p)
        elif kind == S.S_IFREG and put is not None:
            # contents, owner, mode and times in one call: only xattrs are left for step 5
            put(p, n.content, n.content.size, n.mode, n.uid, n.gid, n.atime, n.mtime, replace=p in self._replacing)
            if not n.xattrs:
                self._complete.add(id(n))
        elif kind == S.S_IFREG:
            _write_content(b, p, n.content, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        else:
            b.mknod(p, kind | 0o600, n.rdev)
        self._created.add(id(n))
        self._dirty_node(n)

    def _same_file(self, bp: str, st, n: Node) -> bool:
        """Whether the backend's regular file ``bp`` (lstat ``st``, its only name) already holds
        exactly the bytes of the new file ``n`` that replaces it: then the commit keeps that
        inode and its blocks instead of writing the same bytes into new ones and freeing the
        old (an upgrade rewrites every file of a package, and most are byte-identical: 2,988
        of the minbase upgrade's 3,748 files, 46 of its 67 MB). What a rename over it would
        leave is still what one sees: the same type, size and bytes at the path, then owner,
        mode, xattrs and times set as the new file has them (steps 5 and 6); only the inode
        number and the blocks are the old ones. A file with other names (hard links) is
        always replaced, as rename(2) leaves those names on the old bytes."""
        c = n.content
        if (not S.S_ISREG(st.st_mode) or st.st_nlink != 1 or not isinstance(c, SpoolContent)
                or c.size != st.st_size or n.nlink != 1):
            return False
        return self._same_bytes(bp, c)

    def _same_bytes(self, bp: str, c: "SpoolContent") -> bool:
        """Whether the backend's file ``bp`` holds exactly the bytes of ``c`` (the same size
        asked first). Remembered for ``c`` as it is now (its write generation) and ``bp``: the
        diff of :meth:`changes` compares the files a commit then asks about, and the backend
        does not change until the commit."""
        memo = self._same_memo.get(id(c))
        if memo is not None and memo[0] is c and memo[1] == c.gen and memo[2] == bp:
            return memo[3]
        verdict = False
        try:
            h = self.backend.open_handle(bp)
        except OSError:
            h = None
        if h is not None:
            try:
                verdict = h.size() == c.size and same_pieces(h, c, c.size)
            finally:
                h.close()
        self._same_memo[id(c)] = (c, c.gen, bp, verdict)
        return verdict

    def _apply_meta(self, p: str, n: Node):
        """Owner, mode and xattrs of ``p`` as ``n`` has them; returns the backend's lstat of
        ``p`` (times as they were before: none of these calls changes them)."""
        b = self.backend
        st = b.lstat(p)
        if (st.st_uid, st.st_gid) != (n.uid, n.gid):
            b.chown(p, n.uid, n.gid, follow_symlinks=False)
            st = b.lstat(p)
        if not S.S_ISLNK(n.mode) and S.S_IMODE(st.st_mode) != S.S_IMODE(n.mode):
            b.chmod(p, S.S_IMODE(n.mode), follow_symlinks=False)
        if n.xattrs is not None or n.origin is None:
            want = n.xattrs or {}
            have = set(b.listxattr(p, follow_symlinks=False))
            for name in sorted(have - set(want)):
                b.removexattr(p, name, follow_symlinks=False)
            for name, value in want.items():
                if name not in have or b.getxattr(p, name, follow_symlinks=False) != value:
                    b.setxattr(p, name, value, follow_symlinks=False)
        return st


def _innermost(path: str, table: dict) -> str | None:
    """``path`` or its nearest ancestor that is a key of ``table`` (None: neither is)."""
    q = path
    while q not in table:
        if q == "/":
            return None
        q = q.rpartition("/")[0] or "/"
    return q


def _write_content(b: FileSystem, p: str, content, flags: int) -> None:
    h = b.open_handle(p, flags, 0o600)
    try:
        fill(h, content, content.size)
    finally:
        h.close()


def _rmtree(b: FileSystem, p: str, mode: int | None = None) -> None:
    """Remove ``p`` from the backend, children first. ``mode``: its type as the overlay loaded
    it (the backend is not asked again; nothing but the commit changes it meanwhile)."""
    if mode is None:
        mode = b.lstat(p).st_mode
    if S.S_ISDIR(mode):
        for name in b.readdir(p):
            _rmtree(b, join(p, name))
        b.rmdir(p)
    else:
        b.unlink(p)
