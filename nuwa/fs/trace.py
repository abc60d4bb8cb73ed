"""Traces: every call a job made on a filesystem, to check on another and replay there.

A fleet patches many images that are alike (overlays of one base, the same packages). The
patch job is a deterministic function of what it reads from the image's filesystem (and of
its inputs: the ``.deb`` files, the plan, the disk layout, which the caller compares itself).
So if a second image answers every read the first image's job made exactly as the first
image did, the job on the second image would make exactly the same calls -- and its effect
is the same sequence of writes. :class:`TracingFS` records that sequence on the first image;
:func:`replay` runs it against the second image's filesystem, comparing the outcome of every
call (reads *and* writes: a write's errno is an observation too) with the recorded one, and
stops at the first difference (:class:`TraceMismatch`), leaving the caller to discard what
was written and compute that image itself.

What is recorded, per call: the method, its arguments (write data included, so a trace holds
the bytes the job wrote) and a 16-byte digest of the outcome (the result, or the errno).
Contents read through a handle are also keyed by the backend's content fingerprint
(:func:`nuwa.fs.diff.fingerprint`): when the replaying backend gives the same non-None key,
the bytes are identical and need not be read again -- two overlays of one qcow2 base read
their shared files without touching a data cluster.

One read is not compared for equality: the free space an :class:`nuwa.fs.overlay.Overlay`
takes as its capacity when it starts (``capacity_statvfs``). The job only asks "does this
still fit?" of it, and the overlay tells its backend each new peak of what it uses
(``note_use``), so another image whose free space holds that peak (blocks and inodes)
answers every such question alike -- provided none of them was answered "no" on the first
image (an overlay that refuses tells its backend, :attr:`Trace.space_refused`). A ``statvfs``
a script makes (``df``) is compared exactly, like any other read.

Three more answers are compared for less than equality, each for a stated reason:

- A directory listing (``readdir_stat``: the overlay loads whole directories) is compared on
  its names, in order, and on the metadata of the names the job *looked up* (the overlay tells
  its backend each one, ``note_seen``); a name only listed, never looked up, is a difference
  the job did not see.
- Once the job has begun to write (the overlay's commit), an ``lstat`` is compared on the type,
  owner, mode and times it decides on, not on the inode number, blocks and ctime of what it
  has just written: those are the replaying filesystem's own allocation.
- The backend's own clock: the times it took while traced are given back, in order, to the
  replaying backend (``set_clock``), so the two end with the same time stamps.
"""

from __future__ import annotations

import abc
import hashlib
import os
import types

from nuwa.fs.diff import fingerprint
from nuwa.fs.memory import BLOCK
from nuwa.fs.model import FileHandle, FileSystem, join

#: methods that only read; everything else the trace forwards is a change of the filesystem
_READS = frozenset({"lstat", "stat", "readdir", "readlink", "statvfs", "getxattr", "listxattr", "readdir_stat",
                    "content_fingerprint"})
#: an lstat or stat once the job has begun to write: the overlay's commit, which decides only on
#: the type, owner, mode and times it returns (the inode number, blocks and ctime of what it
#: just wrote are the replaying filesystem's own allocation)
_META = {"lstat:meta": "lstat", "stat:meta": "stat"}
_READS = _READS | frozenset(_META)
#: optional backend methods the proxy offers only when the backend has them
_OPTIONAL = ("content_fingerprint",)


def digest(outcome) -> bytes:
    """16 bytes that name a call's outcome: its result, or ``("errno", n)`` for an OSError."""
    if isinstance(outcome, (bytes, bytearray, memoryview)):
        return hashlib.blake2b(bytes(outcome), digest_size=16, person=b"bytes").digest()
    return hashlib.blake2b(repr(outcome).encode("utf-8", "surrogateescape"), digest_size=16).digest()


def _failure(e: BaseException):
    """How an exception from the backend is recorded (a damaged image is not a shareable fact)."""
    if isinstance(e, OSError):
        return ("errno", e.errno)
    return ("exception", type(e).__name__, str(e))


class TraceMismatch(Exception):
    """The replaying filesystem answered a call differently from the traced one."""

    def __init__(self, index: int, call: str):
        super().__init__(f"call {index} ({call}) answered differently")
        self.index, self.call = index, call


class Trace:
    """The calls of one job, in order (see the module note).

    ``events`` holds tuples: ``("c", name, args, kwargs, digest)`` for a filesystem call,
    ``("o", handle, args, kwargs, digest, fingerprint)`` for ``open_handle``, ``("h", handle,
    name, args, digest)`` for a call on an open handle (a ``pwrite``'s data :class:`Packed`),
    ``("d", path, names digest, {name: lstat digest})`` for a directory listing, ``("cap",)`` where an overlay read its
    capacity (checked against :attr:`peak`). ``writes`` counts the changing calls; ``data`` the bytes they
    carry.
    """

    def __init__(self):
        self.events: list[tuple] = []
        self.writes = 0
        self.data = 0
        #: an overlay over the traced filesystem refused a write for want of space
        self.space_refused = False
        #: backend paths an overlay above looked up (their listed lstat is compared on replay)
        self.seen: set[str] = set()
        #: the most (blocks of nuwa.fs.memory.BLOCK, inodes) an overlay above ever used
        self.peak = (0, 0)
        #: every "now" the backend took while traced (its own timestamps of changed inodes)
        self.clock: list[int] = []


class Packed:
    """Bytes a job wrote, zstd-compressed while they sit in a trace."""

    __slots__ = ("blob",)

    def __init__(self, data: bytes):
        import zstandard  # late: only a fleet's trace packs bytes (start-up of every other job)

        self.blob = zstandard.ZstdCompressor(level=3).compress(data)

    def __getstate__(self):
        return self.blob

    def __setstate__(self, blob):
        self.blob = blob

    def unpack(self) -> bytes:
        """The bytes."""
        import zstandard  # (late, see __init__)

        return zstandard.ZstdDecompressor().decompress(self.blob)


class TracingHandle(FileHandle):
    """A handle of a :class:`TracingFS`: its calls go into the trace too."""

    def __init__(self, fs: "TracingFS", handle: FileHandle, hid: int):
        self._fs, self._h, self._id = fs, handle, hid

    def _call(self, name: str, *args):
        return self._fs._record(("h", self._id, name, args), getattr(self._h, name), args, {},
                                name not in ("pread", "size"))

    def pread(self, offset: int, n: int) -> bytes:
        return self._call("pread", offset, n)

    def pwrite(self, offset: int, data: bytes) -> int:
        data = bytes(data)
        # kept compressed: a trace holds every byte the job wrote (a kernel's modules...)
        packed = Packed(data)
        self._fs.trace.data += len(data)
        return self._fs._record(("h", self._id, "pwrite", (offset, packed)), lambda o, _p: self._h.pwrite(o, data),
                                (offset, packed), {}, True)

    def truncate(self, length: int) -> None:
        return self._call("truncate", length)

    def size(self) -> int:
        return self._call("size")

    def close(self) -> None:
        # recorded, not counted as a change: a closed handle writes what it holds on some backends
        self._fs._record(("h", self._id, "close", ()), self._h.close, (), {}, False)


def _traced(name: str):
    """A method that forwards ``name`` to the backend and records the call."""
    changes = name not in _READS
    meta = f"{name}:meta" if f"{name}:meta" in _META else None

    def method(self, *args, **kw):
        commit = meta is not None and self.trace.writes  # the commit's own lstat: compared on what it decides on
        return self._record(("c", meta if commit else name, args, tuple(sorted(kw.items()))),
                            getattr(self.backend, name), args, kw, changes, view=_meta if commit else None)
    method.__name__ = name
    method.__doc__ = f"The backend's ``{name}``, recorded."
    return method


class TracingFS(FileSystem):
    """``backend`` as it is, every call recorded into ``trace`` (see the module note)."""

    def __init__(self, backend: FileSystem, trace: Trace):
        self.backend, self.trace = backend, trace
        self._handles = 0
        self._fingerprints: dict[str, object] = {}
        for name in _OPTIONAL:  # present only when the backend has them: callers probe with getattr
            if hasattr(backend, name):
                setattr(self, name, types.MethodType(_traced(name), self))
        if hasattr(backend, "set_clock"):  # the backend's own times (ctime...) are recorded too
            self._clock = backend.set_clock(self._tick)

    def _tick(self) -> int:
        t = self._clock()
        self.trace.clock.append(t)
        return t

    @property
    def writable(self) -> bool:  # noqa: D401 - the backend's
        return self.backend.writable

    def _record(self, head: tuple, fn, args, kw, changes: bool, view=None):
        """Call ``fn``, appending ``head`` and the digest of its outcome (of ``view(outcome)``)."""
        if changes:
            self._fingerprints.clear()
            self.trace.writes += 1
            self.trace.data += sum(len(a) for a in args if isinstance(a, bytes))
        try:
            out = fn(*args, **kw)
        except BaseException as e:
            self.trace.events.append(head + (digest(_failure(e)),))
            raise
        self.trace.events.append(head + (digest(out if view is None else view(out)),))
        return out

    def capacity_statvfs(self, path: str = "/"):
        """The backend's ``statvfs``, recorded as a lower bound (see the module note)."""
        v = self.backend.statvfs(path)
        self.trace.events.append(("cap",))
        return v

    def readdir_stat(self, path: str):
        """The backend's names and lstats of a directory, recorded name by name (module note)."""
        try:
            out = _listing(self.backend, path)
        except BaseException as e:
            self.trace.events.append(("c", "readdir_stat", (path,), (), digest(_failure(e))))
            raise
        self.trace.events.append(("d", path, digest([n for n, _ in out]), {n: digest(st) for n, st in out}))
        return out

    def note_seen(self, path: str) -> None:
        """An overlay above looked ``path`` up: its metadata, as listed, is part of the job's input."""
        self.trace.seen.add(path)

    def note_use(self, blocks: int, inodes: int) -> None:
        """An overlay above uses this much now, more than ever before (see the module note)."""
        self.trace.peak = (max(blocks, self.trace.peak[0]), max(inodes, self.trace.peak[1]))

    def note_no_space(self) -> None:
        """An overlay above refused a write (ENOSPC): the capacity bound does not hold."""
        self.trace.space_refused = True

    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> FileHandle:
        """The backend's handle, wrapped; a read-only open records the content fingerprint."""
        self._handles += 1
        hid = self._handles
        fp = None
        if _reading(flags):
            if path not in self._fingerprints:
                self._fingerprints[path] = fingerprint(self.backend, path)
            fp = self._fingerprints[path]
        else:
            self._fingerprints.clear()
            self.trace.writes += 1
        head = ("o", hid, (path, flags, mode), ())
        try:
            h = self.backend.open_handle(path, flags, mode)
        except BaseException as e:
            self.trace.events.append(head + (digest(_failure(e)), fp))
            raise
        self.trace.events.append(head + (digest("open"), fp))
        return TracingHandle(self, h, hid)


for _name in ("lstat", "stat", "readdir", "readlink", "statvfs", "getxattr", "listxattr", "truncate", "mkdir",
              "rmdir", "unlink", "rename", "symlink", "link", "mknod", "chmod", "chown", "utime", "setxattr",
              "removexattr", "flush"):
    setattr(TracingFS, _name, _traced(_name))
del _name
abc.update_abstractmethods(TracingFS)


def _listing(fs, path: str) -> list:
    """``readdir_stat`` of ``fs``, or the same made of ``readdir`` and ``lstat``."""
    scan = getattr(fs, "readdir_stat", None)
    if scan is not None:
        return scan(path)
    return [(n, fs.lstat(join(path, n))) for n in fs.readdir(path)]


def _meta(st):
    """The fields of a Stat the overlay's commit decides on."""
    return (st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns)


def _reading(flags: int) -> bool:
    return flags & os.O_ACCMODE == os.O_RDONLY and not flags & (os.O_CREAT | os.O_TRUNC)


def replay(trace: Trace, fs: FileSystem, trusted: bool = False) -> int:
    """Make every call of ``trace`` on ``fs``, in order; returns how many were made.

    Raises :class:`TraceMismatch` at the first call whose outcome differs from the recorded
    one (``fs`` then holds the writes made before it: the caller discards them). A read of
    contents whose fingerprint on ``fs`` equals the recorded one is not made again. A backend
    with a clock (``set_clock``) is given the times the traced one took, in order.

    ``trusted``: the caller knows ``fs`` reads exactly as the traced filesystem did (equal
    device content identities): reads are not made; the writes and their outcomes are.
    """
    old_clock = None
    if hasattr(fs, "set_clock"):  # the backend's "now" as it was when the trace was taken
        times = iter(trace.clock)
        old_clock = fs.set_clock(lambda: next(times, None) or old_clock())
    try:
        return _replay(trace, fs, trusted)
    finally:
        if old_clock is not None:
            fs.set_clock(old_clock)


def _replay(trace: Trace, fs: FileSystem, trusted: bool) -> int:
    handles: dict[int, tuple] = {}
    fps: dict[str, object] = {}
    for i, ev in enumerate(trace.events):
        kind = ev[0]
        if trusted and (kind in ("d", "cap") or (kind == "c" and ev[1] in _READS)):
            continue
        if kind == "cap":  # the overlay's capacity: it must hold what the traced overlay used
            v = fs.statvfs("/")
            if v.f_bavail * v.f_frsize // BLOCK < trace.peak[0] or v.f_favail < trace.peak[1]:
                raise TraceMismatch(i, "free space")
            continue
        if kind == "d":  # a listing: the names in order, and the lstat of each name looked up
            _, path, names, stats = ev
            try:
                listing = _listing(fs, path)
            except OSError:
                raise TraceMismatch(i, f"readdir_stat {path}") from None
            if digest([n for n, _ in listing]) != names or any(
                    digest(st) != stats[n] for n, st in listing if join(path, n) in trace.seen):
                raise TraceMismatch(i, f"readdir_stat {path}")
            continue
        if kind == "c":
            _, name, args, kw, want = ev
            if name not in _READS:
                fps.clear()
            if name in _META:  # an lstat of the commit: only the fields it decides on
                got = _outcome(lambda *a, **k: _meta(getattr(fs, _META[name])(*a, **k)), args, dict(kw))
            else:
                got = _outcome(getattr(fs, name), args, dict(kw))
        elif kind == "o":
            _, hid, (path, flags, mode), _kw, want, fp = ev
            if trusted and _reading(flags):
                handles[hid] = (None, True)  # its reads are not made (``trusted``)
                continue
            if _reading(flags) and fp is not None:
                if path not in fps:
                    fps[path] = fingerprint(fs, path)
                if fps[path] == fp:  # identical contents: its reads need not be made
                    handles[hid] = (None, True)
                    continue
            elif not _reading(flags):
                fps.clear()
            try:
                h = fs.open_handle(path, flags, mode)
                got = digest("open")
            except OSError as e:
                h, got = None, digest(_failure(e))
            handles[hid] = (h, False)
            name = f"open_handle {path}"
        else:
            _, hid, name, args, want = ev
            h, same = handles.get(hid, (None, False))
            if h is None and same:  # a read-only handle of identical contents: not opened
                continue
            if h is None:
                raise TraceMismatch(i, f"{name} on a handle that did not open")
            if name == "pwrite":
                args = (args[0], args[1].unpack())
            got = _outcome(getattr(h, name), args, {})
            if name == "close":
                handles[hid] = (None, False)
        if got != want:
            raise TraceMismatch(i, f"{name} {ev[2] if kind == 'c' else ''}".strip())
    for h, _same in handles.values():  # handles the traced job left open (none, normally)
        if h is not None:
            h.close()
    return len(trace.events)


def _outcome(fn, args, kw) -> bytes:
    try:
        return digest(fn(*args, **kw))
    except OSError as e:
        return digest(_failure(e))


class Footprint:
    """What a traced job touched, by path (:func:`footprint`): a fleet moves an image's own
    changes over the job's result only where they touch none of it (``nuwa.patch.move``).

    ``written``: every path a changing call named -- the path written, created, removed, renamed
    (both names), linked (the new name), its metadata or xattrs changed -- and the parent of each
    name created or removed (its listing and times changed). ``read``: every path whose answer
    the job took -- an ``lstat``, ``readlink``, xattr, content read or fingerprint, and every
    name the overlay looked up in a listing (:attr:`Trace.seen`). ``listed``: every directory
    whose names the job was given (the overlay loads whole directories: a name the job looked
    for and did not find leaves no other trace than this listing). ``whole``: why the job's
    outcome may depend on the filesystem as a whole (a ``statvfs`` a script made, a ``stat``
    that followed a symlink to a path not named, a changing call not accounted for), or None.
    ``moved``: the paths of ``written`` renamed away or removed (what was below them is gone
    from there).
    """

    def __init__(self):
        self.moved: set[str] = set()
        self.written: set[str] = set()
        self.read: set[str] = set()
        self.listed: set[str] = set()
        self.whole: str | None = None


#: changing calls, and which of their arguments are paths whose parent's names change with them
_PATH_ARGS = {"truncate": (0,), "mkdir": (0,), "rmdir": (0,), "unlink": (0,), "rename": (0, 1), "symlink": (1,),
              "link": (1,), "mknod": (0,), "chmod": (0,), "chown": (0,), "utime": (0,), "setxattr": (0,),
              "removexattr": (0,)}
_NAMES_CHANGE = frozenset({"mkdir", "rmdir", "unlink", "rename", "symlink", "link", "mknod"})


def _parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def footprint(trace: Trace) -> Footprint:
    """The paths ``trace``'s job wrote, read and listed (see :class:`Footprint`)."""
    fp = Footprint()
    opened: dict[int, str] = {}
    for ev in trace.events:
        kind = ev[0]
        if kind == "d":
            fp.listed.add(ev[1])
        elif kind == "o":
            _, hid, (path, flags, _mode), _kw, _want, _fp = ev
            opened[hid] = path
            if _reading(flags):
                fp.read.add(path)
            else:  # written (and perhaps created: its parent's names may change)
                fp.written.update((path, _parent(path)))
        elif kind == "c":
            name, args = ev[1], ev[2]
            if name == "statvfs":
                fp.whole = fp.whole or "the update asked for the free space (statvfs)"
            elif name == "stat":
                fp.whole = fp.whole or f"the update followed a symlink below the overlay (stat {args[0]})"
            elif name in ("readdir", "readdir_stat"):
                fp.listed.add(args[0])
            elif name in _READS:
                if args:
                    fp.read.add(args[0])
            elif name in _PATH_ARGS:
                if name in ("rename", "rmdir", "unlink"):
                    fp.moved.update(args[:2] if name == "rename" else args[:1])
                for i in _PATH_ARGS[name]:
                    fp.written.add(args[i])
                    if name in _NAMES_CHANGE:
                        fp.written.add(_parent(args[i]))
            elif name != "flush":  # a changing call this table does not know: nothing is assumed
                fp.whole = fp.whole or f"the update made a call not accounted for ({name})"
        # "h" (a handle's calls) is the path it was opened on; "cap" is the capacity bound
    fp.read.update(trace.seen)
    return fp
