""".deb binary packages: the member sequence, decompression, and validated tar members.

A .deb (deb(5)) is an ar archive holding, in this order: ``debian-binary`` (``2.x\\n``),
optional members whose names start with ``_`` (ignored), ``control.tar[.gz|.xz|.zst]`` and
``data.tar[.gz|.xz|.zst|.bz2|.lzma]`` — the rules of dpkg-deb's ``extracthalf``
(``src/deb/extract.c``). The control tar is small and read into memory (bounded);
the data tar is streamed with :mod:`tarfile` in stream mode and never written to the host:
each member's bytes go straight to the caller (dpkg's unpacker writes them into the image's
filesystem model).

Tar members are checked as dpkg's ``tar_extractor``/``tarobject`` would and more strictly
where a member could escape the package's tree: absolute names, ``..`` components, newlines,
hard links to anything but an earlier member, paths that pass through a symlink made by an
earlier member, unknown types and sparse members are refused with an error naming the
package, the member and the reason.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import queue
import stat as _stat
import tarfile
import threading
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from nuwa.deb.ar import ArReader
from nuwa.deb.control import Paragraph, parse_control
from nuwa.deb.xzblocks import hand_on, open_xz_blocks, parallel_layout
from nuwa.errors import InvalidInputError, quote

#: dpkg-deb's limits on what it reads into memory; a control.tar is a few kB in practice
CONTROL_TAR_LIMIT = 64 << 20
DEBIAN_BINARY_LIMIT = 1024
#: the longest file name component Linux filesystems hold (ext4 EXT4_NAME_LEN)
NAME_MAX = 255

#: compressions by member-name extension (dpkg lib/dpkg/compress.c compressor table)
CONTROL_COMPRESSIONS = ("", ".gz", ".xz", ".zst")
DATA_COMPRESSIONS = ("", ".gz", ".xz", ".zst", ".bz2", ".lzma")

# member types as dpkg names them (lib/dpkg/tarfn.h enum tar_filetype)
REG, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIR, FIFO = "file", "hardlink", "symlink", "chardev", "blockdev", "dir", "fifo"
_TAR_TYPES = {
    tarfile.REGTYPE: REG, tarfile.AREGTYPE: REG, tarfile.CONTTYPE: REG, tarfile.LNKTYPE: HARDLINK,
    tarfile.SYMTYPE: SYMLINK, tarfile.CHRTYPE: CHARDEV, tarfile.BLKTYPE: BLOCKDEV, tarfile.DIRTYPE: DIR,
    tarfile.FIFOTYPE: FIFO,
}
#: st_mode type bits per member type
TYPE_BITS = {REG: _stat.S_IFREG, HARDLINK: _stat.S_IFREG, SYMLINK: _stat.S_IFLNK, CHARDEV: _stat.S_IFCHR,
             BLOCKDEV: _stat.S_IFBLK, DIR: _stat.S_IFDIR, FIFO: _stat.S_IFIFO}


#: zstandard's error class once the module is loaded (:func:`_zstd`)
_ZSTD_ERRORS: tuple = ()


def _zstd():
    """The zstandard module, loaded at the first .zst member: Debian's archives use xz, and
    loading it cost every run 1.7 ms of start-up."""
    global _ZSTD_ERRORS
    import zstandard

    _ZSTD_ERRORS = (zstandard.ZstdError,)
    return zstandard


#: compressed bytes read, and most decoded bytes made, per call of an xz, lzma or bz2 decompressor
IN_PIECE = 1 << 18
OUT_PIECE = 1 << 20


class _Decompressed(io.RawIOBase):
    """A streaming decompressor over a byte stream; corrupt or truncated input is an error."""

    def __init__(self, src: BinaryIO, ext: str, where: str):
        self._src = src
        self._where = where
        self._ext = ext
        self._buf = b""
        self._eof = False
        self._bounded = ext in (".xz", ".lzma", ".bz2")  # decompressors with max_length and needs_input
        if ext == ".gz":
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif ext in (".xz", ".lzma"):
            self._d = lzma.LZMADecompressor(lzma.FORMAT_XZ if ext == ".xz" else lzma.FORMAT_ALONE)
        elif ext == ".bz2":
            self._d = bz2.BZ2Decompressor()
        elif ext == ".zst":
            self._d = _zstd().ZstdDecompressor().decompressobj()
        else:
            raise InvalidInputError(f"unknown compression {ext!r}", where=where)

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        try:
            while not self._buf and not self._eof:
                if self._d.eof:
                    # end of one compressed stream; gzip may hold several members (gzip -c a b)
                    rest = self._d.unused_data
                    if self._ext != ".gz":
                        self._eof = True
                        return
                    if not rest:
                        rest = self._src.read(1 << 16)
                    if not rest:
                        self._eof = True
                        return
                    self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._buf = self._d.decompress(rest)
                    continue
                if self._bounded:
                    # large pieces in, a bounded piece out: few calls, each long without the GIL
                    # (a read-ahead thread waits for the GIL after every call while the unpack
                    # runs Python on the other core), and never more than OUT_PIECE held
                    chunk = self._src.read(IN_PIECE) if self._d.needs_input else b""
                    if not chunk and self._d.needs_input:
                        raise InvalidInputError(f"compressed stream ({self._ext}) ends early: truncated",
                                                where=self._where)
                    self._buf = self._d.decompress(chunk, OUT_PIECE)
                    continue
                chunk = self._src.read(1 << 16)
                if not chunk:
                    raise InvalidInputError(f"compressed stream ({self._ext}) ends early: truncated", where=self._where)
                self._buf = self._d.decompress(chunk)
        except (zlib.error, lzma.LZMAError, EOFError, *_ZSTD_ERRORS) as e:
            raise InvalidInputError(f"corrupt {self._ext} data: {e}", where=self._where) from None
        except OSError as e:  # bz2 reports corruption as OSError
            if isinstance(e, InvalidInputError):
                raise
            raise InvalidInputError(f"corrupt {self._ext} data: {e}", where=self._where) from None

    def readinto(self, b) -> int:
        self._fill()
        n, self._buf = hand_on(memoryview(self._buf), b)
        return n


def decompressing_reader(src: BinaryIO, ext: str, where: str) -> BinaryIO:
    """``src`` decompressed by the method of member-name extension ``ext`` ("" = none)."""
    if ext == "":
        return src
    return io.BufferedReader(_Decompressed(src, ext, where), buffer_size=1 << 17)


class _ReadAhead(io.RawIOBase):
    """Reads ``inner`` in a thread, a few chunks ahead of the consumer.

    The decompressors (liblzma, zlib, libzstd) release the GIL while they work, so a package's
    data.tar is decompressed on a second core while this one writes its members into the image:
    the unpack costs max(decompress, write) instead of their sum. The thread alone reads
    ``inner``; errors it meets are raised in the consumer, at the point of the stream where they
    happened. ``close`` stops the thread (a consumer that gives up early leaves no reader behind).
    """

    CHUNK = 1 << 18
    DEPTH = 8

    def __init__(self, inner: BinaryIO, depth: int = DEPTH):
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._started = False
        self._thread = threading.Thread(target=self._run, args=(inner,), name="nuwa-deb-readahead", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, inner: BinaryIO) -> None:
        try:
            while not self._stop.is_set():
                chunk = inner.read(self.CHUNK)
                if not self._put(chunk) or not chunk:
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if not self._started:
            # a prefetch (a deeper queue) is read now: back to DEPTH chunks ahead as it drains
            self._started = True
            with self._q.mutex:
                self._q.maxsize = min(self._q.maxsize, self.DEPTH)
        if not self._buf:
            if self._done:
                return 0
            item = self._q.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:
                self._done = True
                return 0
            self._buf = memoryview(item)
        n, self._buf = hand_on(self._buf, b)
        return n

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            self._thread.join()
        super().close()


#: not read yet (DebArchive._xz_layout)
_UNREAD = object()


#: a data.tar smaller than this is decompressed inline (a thread costs more than it saves)
READ_AHEAD_MIN = 256 << 10


#: decoded bytes a prefetched data.tar may hold before its unpack starts (:meth:`DebArchive.prefetch`)
PREFETCH_AHEAD = 16 << 20


def read_ahead(stream: BinaryIO, size: int, depth: int = _ReadAhead.DEPTH) -> BinaryIO:
    """``stream`` read ahead in a thread when ``size`` (its compressed size) makes it worth it,
    up to ``depth`` chunks ahead of the consumer (until it starts reading: then the usual)."""
    if size < READ_AHEAD_MIN:
        return stream
    return io.BufferedReader(_ReadAhead(stream, depth), buffer_size=1 << 17)


@dataclass
class ControlMember:
    """One file of control.tar (control, md5sums, conffiles, maintainer scripts...)."""

    name: str
    data: bytes
    mode: int
    mtime: int


@dataclass
class DataMember:
    """One validated member of data.tar, in archive order.

    ``path`` is the absolute path inside the image (``./usr/bin/x`` -> ``/usr/bin/x``, the root
    itself is ``/.`` as dpkg records it). For regular files :meth:`read` streams the content; it
    is valid only until the next member is requested.
    """

    path: str
    type: str
    mode: int  # permission bits (07777)
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: int
    size: int = 0
    linkname: str = ""  # symlink target as stored; hardlink target as an image path
    rdev: int = 0
    _reader: object = field(default=None, repr=False)

    def read(self, n: int = -1) -> bytes:
        """Read the member's content (regular files)."""
        if self._reader is None:
            return b""
        return self._reader.read(n)


def normalize_member_name(name: str, package: str) -> str:
    """dpkg's path for a tar member name, refusing names that could escape the tree."""
    where = f"package {package}: data.tar member {name!r}"
    if "\n" in name:
        raise InvalidInputError("newline not allowed in archive object name", where=where)
    if name.startswith("/"):
        raise InvalidInputError("absolute path in archive object name", where=where)
    comps = [c for c in name.split("/") if c not in ("", ".")]
    if ".." in comps:
        raise InvalidInputError("'..' component in archive object name", where=where)
    if any(len(c.encode("utf-8", "surrogateescape")) > NAME_MAX for c in comps):
        # no Linux filesystem can hold it: dpkg fails creating it ("File name too long")
        raise InvalidInputError(f"a component of the archive object name is longer than {NAME_MAX} bytes",
                                where=where)
    return "/" + "/".join(comps) if comps else "/."


class DebArchive:
    """A .deb package file on the host, opened for reading.

    ``control`` is the parsed control paragraph, ``control_files`` every member of control.tar.
    :meth:`members` streams data.tar.
    """

    def __init__(self, path: str):
        self.path = path
        self.where = os.path.basename(path)
        self._data_member = None
        self._data_ext = ""
        self._prefetched = None  # (file, stream) of a data.tar already being decompressed
        self._layout = _UNREAD  # data.tar's Blocks, read once (_xz_layout)
        self.control_files: dict[str, ControlMember] = {}
        with open(path, "rb") as f:
            ar = ArReader(f, self.where)
            self._scan(ar)
        ctl = self.control_files.get("control")
        if ctl is None:
            raise InvalidInputError("control.tar has no 'control' file", where=self.where)
        self.control: Paragraph = parse_control(ctl.data, where=f"{self.where}: control")
        self.package = self.control.get("Package", "")
        self.where = f"{self.where} (package {self.package})"

    # ---- the ar member sequence (dpkg-deb extracthalf) -----------------------------------
    def _scan(self, ar: ArReader) -> None:
        seen_header = False
        control = None
        for m in ar.members():
            if not seen_header:
                if m.name != "debian-binary":
                    raise InvalidInputError(f"first ar member is {m.name!r}, not 'debian-binary': not a Debian binary archive", where=self.where)
                text = ar.read(m, DEBIAN_BINARY_LIMIT).decode("ascii", "replace")
                if "\n" not in text:
                    raise InvalidInputError("archive has no newlines in header (debian-binary)", where=self.where)
                ver = text.split("\n", 1)[0]
                major = ver.split(".", 1)[0]
                if not major.isdigit() or "." not in ver:
                    raise InvalidInputError(f"archive has invalid format version {ver!r} (debian-binary)", where=self.where)
                if int(major) != 2:
                    raise InvalidInputError(f"archive is format version {ver}; only 2.x is supported (debian-binary)", where=self.where)
                seen_header = True
                continue
            if m.name.startswith("_"):
                continue
            if m.name.startswith("control.tar"):
                ext = m.name[len("control.tar"):]
                if ext not in CONTROL_COMPRESSIONS:
                    raise InvalidInputError(f"unknown compression for member {m.name!r}", where=self.where)
                if control is not None:
                    raise InvalidInputError("archive contains two control members", where=self.where)
                control = (m, ext)
                self._read_control(ar, m, ext)
                continue
            if control is None:
                raise InvalidInputError(f"premature member {m.name!r} before 'control.tar'", where=self.where)
            if m.name.startswith("data.tar"):
                ext = m.name[len("data.tar"):]
                if ext not in DATA_COMPRESSIONS:
                    raise InvalidInputError(f"unknown compression for member {m.name!r}", where=self.where)
                self._data_member, self._data_ext = m, ext
                return
            raise InvalidInputError(f"premature member {m.name!r} before 'data.tar'", where=self.where)
        if not seen_header:
            raise InvalidInputError("empty archive: no 'debian-binary' member", where=self.where)
        if control is None:
            raise InvalidInputError("archive has no 'control.tar' member", where=self.where)
        raise InvalidInputError("archive has no 'data.tar' member", where=self.where)

    def _read_control(self, ar: ArReader, m, ext: str) -> None:
        where = f"{self.where}: {m.name}"
        stream = decompressing_reader(ar.open(m), ext, where)
        total = 0
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tf:
                for ti in tf:
                    name = ti.name[2:] if ti.name.startswith("./") else ti.name
                    name = name.rstrip("/")
                    if ti.isdir() and name in ("", "."):
                        continue
                    if name.startswith("/") or "/" in name or name in ("..", "."):
                        raise InvalidInputError(f"control member {ti.name!r} is not a plain file name", where=where)
                    if ti.isdir():
                        raise InvalidInputError(f"package control info contained directory {ti.name!r}", where=where)
                    if not ti.isreg():
                        raise InvalidInputError(f"control member {ti.name!r} is not a regular file", where=where)
                    total += ti.size
                    if total > CONTROL_TAR_LIMIT:
                        raise InvalidInputError(f"control.tar contents exceed {CONTROL_TAR_LIMIT} bytes", where=where)
                    data = tf.extractfile(ti).read()
                    if len(data) != ti.size:
                        raise InvalidInputError(f"control member {ti.name!r} is truncated", where=where)
                    self.control_files[name] = ControlMember(name, data, ti.mode & 0o7777, int(ti.mtime))
        except tarfile.TarError as e:
            raise InvalidInputError(f"corrupt control tar: {e}", where=where) from None

    # ---- data.tar --------------------------------------------------------------------------
    @property
    def data_member_name(self) -> str:
        """``data.tar.xz`` etc."""
        return self._data_member.name

    def prefetch(self) -> None:
        """Start decompressing data.tar now, ahead of a reader that has not come yet: for the
        archive unpacked next, while the one before it is unpacked and its scripts run (two
        cores: the main thread seldom waits for the decompressor then). One stream is decoded
        in the read-ahead thread up to :data:`PREFETCH_AHEAD` decoded bytes; a multi-block .xz
        (a kernel's) by its early decoder, its first Blocks whole (``xzblocks.EARLY_BUDGET``).
        The next :meth:`members` reads that stream; :meth:`drop_prefetch` stops it unread.
        Nothing for a member too small to read ahead."""
        m = self._data_member
        if self._prefetched is not None or m is None or m.size < READ_AHEAD_MIN:
            return
        f = open(self.path, "rb")
        try:
            where = f"{self.where}: {m.name}"
            blocks = self._blocks(f, where, early=True)
            if blocks is not None:
                self._prefetched = (f, blocks)
                return
            inner = decompressing_reader(ArReader(f, self.where).open(m), self._data_ext, where)
            self._prefetched = (f, read_ahead(inner, m.size, PREFETCH_AHEAD // _ReadAhead.CHUNK))
        except BaseException:
            f.close()
            raise

    def multi_block(self) -> bool:
        """Whether data.tar is a .xz of Blocks decoded on threads (a kernel's: the longest
        decode of an upgrade, worth starting long before its turn)."""
        return self._xz_layout() is not None

    def _xz_layout(self, f: BinaryIO | None = None):
        """data.tar's ``xzblocks.parallel_layout`` (None: not a .xz of Blocks to decode on
        threads), its Index read once for :meth:`multi_block`, :meth:`prefetch` and
        :meth:`members` (``f``: the archive already open, else opened here)."""
        if self._layout is _UNREAD:
            m = self._data_member
            self._layout = None
            if m is not None and self._data_ext == ".xz":
                if f is not None:
                    self._layout = parallel_layout(f, m.offset, m.size)
                else:
                    with open(self.path, "rb") as g:
                        self._layout = parallel_layout(g, m.offset, m.size)
        return self._layout

    def _blocks(self, f: BinaryIO, where: str, early: bool = False) -> BinaryIO | None:
        """data.tar decoded Block by Block on threads (``xzblocks.open_xz_blocks``), or None."""
        layout = self._xz_layout(f)
        if layout is None:
            return None
        m = self._data_member
        return open_xz_blocks(f, m.offset, m.size, where, early=early, layout=layout)

    def drop_prefetch(self) -> None:
        """Stop a prefetch that will not be read (its thread ends, its file is closed)."""
        pre, self._prefetched = self._prefetched, None
        if pre is not None:
            pre[1].close()
            pre[0].close()

    def _data_stream(self, f: BinaryIO, ar: ArReader, where: str) -> BinaryIO:
        """data.tar decompressed, read ahead: a multi-block .xz on several threads, anything
        else by one decoder in the read-ahead thread."""
        m = self._data_member
        stream = self._blocks(f, where)
        if stream is None:
            stream = read_ahead(decompressing_reader(ar.open(m), self._data_ext, where), m.size)
        return stream

    def members(self) -> Iterator[DataMember]:
        """Stream data.tar's members, validated, in archive order."""
        m = self._data_member
        where = f"{self.where}: {m.name}"
        seen: set[str] = set()
        symlinks: set[str] = set()
        seen_dirs: set[str] = set()
        pre, self._prefetched = self._prefetched, None
        with (pre[0] if pre is not None else open(self.path, "rb")) as f:
            stream = pre[1] if pre is not None else self._data_stream(f, ArReader(f, self.where), where)
            try:
                try:
                    tf = tarfile.open(fileobj=stream, mode="r|")
                except tarfile.TarError as e:
                    raise InvalidInputError(f"corrupt data tar: {e}", where=where) from None
                count = 0
                try:
                    for ti in tf:
                        count += 1
                        yield self._member(tf, ti, where, seen, symlinks, seen_dirs)
                except tarfile.TarError as e:
                    raise InvalidInputError(f"corrupt data tar after {count} members: {e}", where=where) from None
            finally:
                stream.close()
            if count == 0:
                # an empty but valid tar is fine; a stream with no tar header at all is not
                pass

    def _member(self, tf: tarfile.TarFile, ti: tarfile.TarInfo, where: str, seen: set, symlinks: set,
                seen_dirs: set) -> DataMember:
        path = normalize_member_name(ti.name, self.package)
        mwhere = f"package {self.package}: data.tar member {ti.name!r}"
        if ti.type == tarfile.GNUTYPE_SPARSE or getattr(ti, "sparse", None):
            raise InvalidInputError("sparse tar member (dpkg does not extract sparse members)", where=mwhere)
        kind = _TAR_TYPES.get(ti.type)
        if kind is None:
            raise InvalidInputError(f"archive contained object of unknown type {ti.type!r}", where=mwhere)
        # a path through a symlink this package made: dpkg would write wherever it points
        parts = path.split("/")
        for i in range(2, len(parts)):
            if "/".join(parts[:i]) in symlinks:
                raise InvalidInputError(f"member goes through symlink {'/'.join(parts[:i])!r} made by an earlier member", where=mwhere)
        dm = DataMember(path=path, type=kind, mode=ti.mode & 0o7777, uid=ti.uid, gid=ti.gid,
                        uname=ti.uname or "", gname=ti.gname or "", mtime=int(ti.mtime))
        if kind == REG:
            dm.size = ti.size
            dm._reader = _CheckedReader(tf.extractfile(ti), ti.size, mwhere)
        elif kind == HARDLINK:
            target = normalize_member_name(ti.linkname, self.package)
            if target not in seen:
                raise InvalidInputError(f"hard link to {ti.linkname!r}, which is not an earlier member of the package", where=mwhere)
            if target in seen_dirs:
                # link(2) refuses directories (EPERM): dpkg fails making it
                raise InvalidInputError(f"hard link to {ti.linkname!r}, which is a directory", where=mwhere)
            dm.linkname = target
        elif kind == SYMLINK:
            if "\n" in ti.linkname or ti.linkname == "":
                raise InvalidInputError("invalid symlink target", where=mwhere)
            dm.linkname = ti.linkname
            symlinks.add(path)
        elif kind in (CHARDEV, BLOCKDEV):
            dm.rdev = os.makedev(ti.devmajor, ti.devminor)
        elif kind == DIR:
            seen_dirs.add(path)
        seen.add(path)
        return dm


class _CheckedReader:
    """Reads exactly ``size`` bytes of a member; a short stream is a truncated archive."""

    def __init__(self, f, size: int, where: str):
        self._f = f
        self._left = size
        self._where = where

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        try:
            data = self._f.read(want)
        except tarfile.TarError as e:
            raise InvalidInputError(f"corrupt data: {e}", where=self._where) from None
        if len(data) < want:
            raise InvalidInputError("unexpected end of data.tar: member truncated", where=self._where)
        self._left -= len(data)
        return data


def open_deb(path: str) -> DebArchive:
    """Open a .deb on the host (reads control.tar; data.tar is streamed later)."""
    try:
        return DebArchive(path)
    except FileNotFoundError:
        raise InvalidInputError("no such file", where=path) from None
    except IsADirectoryError:
        raise InvalidInputError("is a directory, not a .deb", where=path) from None


#: (earlier type, later type) of one path held twice in a data.tar that real dpkg 1.21
#: installs (measured with ``dpkg -i`` in a chroot): the later member wins, except that a
#: directory stays when a symlink follows it (tarobject's ``existingdir``).
_DUPLICATES_DPKG_INSTALLS = {
    (REG, REG), (REG, HARDLINK), (HARDLINK, REG), (HARDLINK, HARDLINK),
    (SYMLINK, SYMLINK), (HARDLINK, SYMLINK), (DIR, DIR), (DIR, REG), (DIR, HARDLINK),
    (DIR, SYMLINK), (SYMLINK, DIR),
}


def check_duplicate_member(earlier: str | None, later: str, path: str, where: str) -> None:
    """Refuse a path the archive holds twice in a way dpkg cannot install (bad input, exit 2).

    dpkg 1.21 fails on a regular file followed by a directory or a symlink, a symlink
    followed by a regular file, and a hard link followed by a directory ("unable to open
    '...dpkg-new'": its deferred fsync/rename flags outlive the member that set them). A
    symlink followed by a hard link leaves the symlink in place under dpkg, which Nuwa does
    not imitate: refused too, as is any pair involving device nodes or FIFOs. The unpacker
    calls this for each member, with the type of the path's previous member (None if first).
    """
    if earlier is None or (earlier, later) in _DUPLICATES_DPKG_INSTALLS:
        return
    raise InvalidInputError(f"data.tar holds {quote(path)} twice (a {earlier}, then a {later}), which dpkg does "
                            "not install consistently; refusing the package", where=where)
