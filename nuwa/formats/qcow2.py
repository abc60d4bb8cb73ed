"""qcow2 images as block devices: ``Qcow2Image`` (reading; writing is delegated to
``qcow2_write.Qcow2Writer``).

Spec: qemu docs/interop/qcow2.txt; facts in FORMAT-NOTES B1. Reading is built for speed:
guest ranges are gathered into runs of contiguous host bytes read with one ``os.preadv`` straight
into the output buffer, L2 tables are cached as native-endian ``array('Q')`` in a bounded LRU,
compressed clusters are decompressed once into a small cache.
"""

from __future__ import annotations

import os
import re
import zlib
from array import array
from collections import OrderedDict

from nuwa.errors import CorruptImageError, InvalidInputError, UnsupportedFeatureError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.blockdev import BlockDevice, RawFile, RawImage
from nuwa.formats.qcow2_header import (
    Snapshot, be_array, decode_bitmap_directory, decode_snapshot, first_data_past_end, first_table_past_end,
    header_probe_length, parse_header, run_past_end, snapshot_entry_length)
from nuwa.formats.qcow2_repair import CheckReport, check_image
from nuwa.formats.qcow2_write import Qcow2Writer

#: byte budget of the L2 cache (entries are whole clusters)
L2_CACHE_BYTES = 32 * 1024 * 1024
#: decompressed clusters kept (reads smaller than a cluster hit the same one repeatedly)
DECOMPRESS_CACHE = 8


class _Plan:
    """The pieces of one guest read, merged into runs: contiguous host bytes become one op.

    Ops are ``(kind, pos, host_or_entry, n, inoff)``: kind 0 = host data run, 1 = backing run,
    2 = part of a compressed cluster. Zero ranges produce no op (the output starts zeroed).
    """

    __slots__ = ("ops", "kind", "pos", "host", "n")

    def __init__(self):
        self.ops: list = []
        self.kind = self.pos = self.host = self.n = 0

    def data(self, pos: int, host: int, n: int) -> None:
        if self.n and self.kind == 0 and self.host + self.n == host and self.pos + self.n == pos:
            self.n += n
            return
        self.push()
        self.kind, self.pos, self.host, self.n = 0, pos, host, n

    def backing(self, pos: int, n: int) -> None:
        if self.n and self.kind == 1 and self.pos + self.n == pos:
            self.n += n
            return
        self.push()
        self.kind, self.pos, self.host, self.n = 1, pos, 0, n

    def compressed(self, pos: int, entry: int, inoff: int, n: int) -> None:
        self.push()
        self.ops.append((2, pos, entry, n, inoff))

    def push(self) -> None:
        if self.n:
            self.ops.append((self.kind, self.pos, self.host, self.n, 0))
            self.n = 0


class Qcow2Image(BlockDevice):
    """A qcow2 image (v2 or v3) with its backing chain, as a block device.

    ``Qcow2Image(path, writable=False)`` or ``Qcow2Image(rawfile)``. ``backing`` is the backing
    device or None; ``snapshots`` the internal snapshot table; ``open_snapshot`` a read-only
    view of one snapshot. ``close()`` writes pending metadata and header updates and flushes.
    """

    format = "qcow2"

    def __init__(self, source, writable: bool = False, *, backing_format: str | None = None,
                 _chain: frozenset = frozenset(), _snapshot: Snapshot | None = None, open_backing: bool = True,
                 check_bounds: bool = True, lock: str | None = "auto"):
        if isinstance(source, RawFile):
            self.file = source
            writable = source.writable
        else:
            self.file = RawFile(source, writable=writable, lock=lock)
        # QEMU's backing-chain locks under an image being written (nuwa.formats.locking)
        self._backing_lock = "shared" if self.file.lock else None
        self.path = self.file.path
        self.name = self.path
        self.writable = False  # becomes True once the writer accepted the image
        self._closed = False
        self.backing: BlockDevice | None = None
        self.data_file: RawFile | None = None
        self._writer = None
        # False only for check_qcow2, which reports clusters past the end instead of refusing
        self._check_bounds = check_bounds
        try:
            self._open(_chain, _snapshot, open_backing)
            if writable:
                if _snapshot is not None:
                    raise InvalidInputError("snapshots are opened read-only", where=self.path)
                self._writer = Qcow2Writer(self)
                self.writable = True
        except BaseException:
            self._release()
            raise

    # --- opening ---------------------------------------------------------------------------

    def _open(self, chain: frozenset, snapshot: Snapshot | None, open_backing: bool) -> None:
        fd = self.fd = self.file.fileno()
        self.file_size = self.file.file_size()
        probe = os.pread(fd, C.QCOW_HEADER_V2_SIZE, 0)
        head = os.pread(fd, header_probe_length(probe), 0)
        h = self.header = parse_header(head, self.file_size)
        self.version = h.version
        self.cluster_bits = cb = h.cluster_bits
        self.cluster_size = cs = 1 << cb
        self.extended_l2 = h.extended_l2
        self.l2_bits, self.l2_entry_size = C.l2_geometry(cb, self.extended_l2)
        self.l2_entries = 1 << self.l2_bits
        self.subcluster_bits = cb - 5 if self.extended_l2 else cb
        self.compression_type = h.compression_type
        self.encrypted = h.crypt_method != C.CRYPT_NONE
        self.size = h.size
        self.l1_table_offset = h.l1_table_offset
        self.l1 = be_array(os.pread(fd, h.l1_size * 8, h.l1_table_offset)) if h.l1_size else array("Q")
        self._meta = [(0, cs, "header cluster"),
                      (h.refcount_table_offset, h.refcount_table_clusters * cs, "refcount table")]
        if h.l1_size:
            self._meta.append((h.l1_table_offset, h.l1_size * 8, "L1 table"))
        self.snapshots = self._read_snapshots()
        self.snapshot_id = snapshot.id if snapshot is not None else None
        if snapshot is not None:
            self.size = snapshot.disk_size if snapshot.disk_size is not None else h.size
            self.l1 = be_array(os.pread(fd, snapshot.l1_size * 8, snapshot.l1_table_offset))
            self.name = f"{self.path}@snapshot {snapshot.id}"
        if self._check_bounds:
            self._check_tables_in_file(snapshot.l1_table_offset if snapshot is not None else h.l1_table_offset)
        self._l2_cache: OrderedDict = OrderedDict()
        self._l2_dirty: set = set()
        self._l2_cache_max = max(8, min(4096, L2_CACHE_BYTES // cs))
        self._zcache: OrderedDict = OrderedDict()
        self._zstd = None
        self.backing_file = h.backing_file
        fmt = h.extension(C.QCOW2_EXT_MAGIC_BACKING_FORMAT)
        self.backing_format = fmt.decode("utf-8", "replace") if fmt is not None else None
        self.chain = chain | {os.path.realpath(self.path)}
        if h.incompatible_features & C.QCOW2_INCOMPAT_DATA_FILE:
            self._open_data_file()
        if h.backing_file and open_backing:
            self.backing = open_backing_file(h.backing_file, self.backing_format, self.path, self.chain,
                                             lock=self._backing_lock)

    def _open_data_file(self) -> None:
        raw = self.header.extension(C.QCOW2_EXT_MAGIC_DATA_FILE)
        if raw is None:
            raise CorruptImageError("external data file bit is set but the data file name extension is missing",
                                    where="qcow2 header @0x48 (incompatible_features)")
        path = resolve_reference(raw.decode("utf-8", "surrogateescape"), self.path, "external data file")
        self.data_file = RawFile(path)

    def _read_snapshots(self) -> list:
        h, out = self.header, []
        off = h.snapshots_offset
        for i in range(h.nb_snapshots):
            fixed = os.pread(self.fd, C.QCOW_SNAPSHOT_HEADER_SIZE, off)
            if len(fixed) < C.QCOW_SNAPSHOT_HEADER_SIZE:
                raise CorruptImageError(f"snapshot table entry {i} lies past the end of the file",
                                        where=f"qcow2 snapshot table @0x{off:x}")
            n = snapshot_entry_length(fixed)
            buf = os.pread(self.fd, n, off)
            if len(buf) < n:
                raise CorruptImageError(f"snapshot table entry {i} is truncated", where=f"qcow2 snapshot table @0x{off:x}")
            out.append(decode_snapshot(buf, off, self.cluster_size, self.file_size))
            off += C.pad8(n)
        if h.nb_snapshots:
            self._meta.append((h.snapshots_offset, off - h.snapshots_offset, "snapshot table"))
        return out

    # --- snapshots -------------------------------------------------------------------------

    def find_snapshot(self, id_or_name: str) -> Snapshot:
        """The snapshot whose id (first) or name equals ``id_or_name``."""
        key = str(id_or_name)
        for s in self.snapshots:
            if s.id == key:
                return s
        for s in self.snapshots:
            if s.name == key:
                return s
        raise InvalidInputError(f"no snapshot with id or name {key!r}", where=self.path)

    def open_snapshot(self, id_or_name) -> "Qcow2Image":
        """A read-only device showing the guest content as it was when the snapshot was taken."""
        snap = self.find_snapshot(id_or_name)
        return Qcow2Image(self.path, writable=False, _chain=self.chain - {os.path.realpath(self.path)}, _snapshot=snap)

    # --- mapping ---------------------------------------------------------------------------

    def _current_file_size(self) -> int:
        # clusters this handle appended since open are in the file, past the size seen at open
        self.file_size = max(self.file_size, os.fstat(self.fd).st_size)
        return self.file_size

    def _check_tables_in_file(self, l1off: int) -> None:
        """Refuse an image whose L2 tables or refcount blocks lie past the end of the file
        (truncated), as ``qemu-img check`` does; data clusters are checked per L2 table."""
        cs, fs = self.cluster_size, self.file_size
        bad = first_table_past_end(self.l1, C.L1E_OFFSET_MASK, fs, cs)
        if bad is not None:
            raise CorruptImageError(f"lies past the end of the file ({fs} bytes): the image is truncated",
                                    where=f"qcow2 L1 table @0x{l1off:x} entry {bad[0]} -> L2 table @0x{bad[1]:x}")
        h = self.header
        reftable = be_array(os.pread(self.fd, h.refcount_table_clusters * cs, h.refcount_table_offset))
        bad = first_table_past_end(reftable, C.REFT_OFFSET_MASK, fs, cs)
        if bad is not None:
            raise CorruptImageError(f"lies past the end of the file ({fs} bytes): the image is truncated",
                                    where=f"qcow2 refcount table entry {bad[0]} -> refcount block @0x{bad[1]:x}")

    def _check_meta_overlap(self, host: int, n: int, what: str) -> None:
        for start, length, name in self._meta:
            if host < start + length and start < host + n:
                raise CorruptImageError(f"{what} at 0x{host:x} overlaps the {name} @0x{start:x}",
                                        where=f"qcow2 {what} @0x{host:x}")

    def l2_table(self, l2_offset: int, l1_index: int = -1) -> array:
        """The L2 table at ``l2_offset`` (cached; validated on first load)."""
        t = self._l2_cache.get(l2_offset)
        if t is not None:
            self._l2_cache.move_to_end(l2_offset)
            return t
        where = f"qcow2 L1 entry {l1_index} -> L2 table @0x{l2_offset:x}"
        if l2_offset & (self.cluster_size - 1):
            raise CorruptImageError("L2 table offset is not cluster-aligned", where=where)
        if l2_offset + self.cluster_size > self.file_size:
            raise CorruptImageError(f"L2 table lies past the end of the file ({self.file_size} bytes)", where=where)
        self._check_meta_overlap(l2_offset, self.cluster_size, "L2 table")
        t = be_array(os.pread(self.fd, self.cluster_size, l2_offset))
        bad = None if self.data_file is not None or not self._check_bounds else first_data_past_end(
            t, self.cluster_bits, self.extended_l2, self.file_size)
        if bad is not None and first_data_past_end(t, self.cluster_bits, self.extended_l2,
                                                   self._current_file_size()) is not None:
            raise CorruptImageError(f"data cluster @0x{bad[1]:x} of L2 entry {bad[0]} lies past the end of the file "
                                    f"({self.file_size} bytes): the image is truncated", where=where)
        self._l2_cache[l2_offset] = t
        if len(self._l2_cache) > self._l2_cache_max:
            self._evict_l2()
        return t

    def _evict_l2(self) -> None:
        for key in self._l2_cache:
            if key not in self._l2_dirty:
                del self._l2_cache[key]
                return
        # every cached table is dirty: the writer must write them out (in order) first
        self._writer.flush()
        self._l2_cache.popitem(last=False)

    def _check_host_run(self, host: int, n: int) -> None:
        if run_past_end(host, n, self.file_size, self.cluster_size) and \
                run_past_end(host, n, self._current_file_size(), self.cluster_size):
            raise CorruptImageError(f"data cluster lies past the end of the file ({self.file_size} bytes): "
                                    "the image is truncated", where=f"qcow2 data cluster @0x{host:x}")
        self._check_meta_overlap(host, n, "data cluster")

    def _read_host(self, mv: memoryview, host: int) -> None:
        if self.encrypted:
            raise UnsupportedFeatureError("the image is encrypted (crypt_method %d); Nuwa cannot decrypt it"
                                          % self.header.crypt_method, where="qcow2 header @0x20 (crypt_method)",
                                          feature="encryption")
        if self.data_file is not None:
            os.preadv(self.data_file.fileno(), [mv], host)
            return  # a short read of a raw data file is a sparse tail: zeros (already there)
        self._check_host_run(host, len(mv))
        os.preadv(self.fd, [mv], host)  # a tail beyond EOF reads as zeros, as in qemu

    def _read_backing(self, mv: memoryview, guest: int) -> None:
        b = self.backing
        if b is None or guest >= b.size:
            return
        n = min(len(mv), b.size - guest)
        if isinstance(b, Qcow2Image):
            b.readinto(mv[:n], guest)
        elif isinstance(b, RawFile):
            os.preadv(b.fileno(), [mv[:n]], guest)
        else:
            mv[:n] = b.pread(guest, n)

    def decompress(self, entry: int) -> bytes:
        """The guest bytes of the compressed cluster described by L2 ``entry`` (cached)."""
        d = self._zcache.get(entry)
        if d is not None:
            return d
        if self.data_file is not None:
            raise CorruptImageError("compressed cluster in an image with an external data file",
                                    where="qcow2 L2 entry 0x%x" % entry)
        host, n = C.decode_compressed(entry, self.cluster_bits)
        where = f"qcow2 compressed cluster @0x{host:x}"
        if host >= self.file_size:
            raise CorruptImageError("compressed data lies past the end of the file", where=where)
        self._check_meta_overlap(host, min(n, self.file_size - host), "compressed cluster")
        buf = os.pread(self.fd, n, host)
        cs = self.cluster_size
        try:
            if self.compression_type == C.COMPRESSION_ZLIB:
                # raw deflate; stop at cluster_size and ignore trailing slop (qemu qcow2_zlib_decompress)
                d = zlib.decompressobj(-12).decompress(buf, cs)
            else:
                import zstandard

                if self._zstd is None:
                    self._zstd = zstandard.ZstdDecompressor()
                try:
                    # one zstd frame, no length prefix; bytes after the frame are slop
                    d = self._zstd.decompress(buf, max_output_size=cs)
                except zstandard.ZstdError:
                    d = self._zstd.decompressobj().decompress(buf)  # streaming: slop -> unused_data
        except Exception as err:  # zlib.error, zstandard.ZstdError
            raise CorruptImageError(f"cannot decompress {n} bytes ({C.COMPRESSION_NAMES[self.compression_type]}): {err}",
                                    where=where) from None
        if len(d) < cs:
            raise CorruptImageError(f"compressed data decodes to {len(d)} bytes, not the cluster size {cs}", where=where)
        d = d[:cs]
        self._zcache[entry] = d
        if len(self._zcache) > DECOMPRESS_CACHE:
            self._zcache.popitem(last=False)
        return d

    # --- reading ---------------------------------------------------------------------------

    def _pread(self, offset: int, n: int) -> bytes:
        ops = self.plan(offset, n)
        if not ops:
            return bytes(n)  # all zeros: no buffer to fill and copy
        kind, pos, a, ln, inoff = ops[0]
        if len(ops) == 1 and ln == n and kind == 0 and self.data_file is None and not self.encrypted:
            # one contiguous host run (the common sequential case): read straight into bytes
            self._check_host_run(a, n)
            data = os.pread(self.fd, n, a)
            return data if len(data) == n else data + bytes(n - len(data))
        if len(ops) == 1 and kind == 2 and ln == n and n == self.cluster_size:
            return self.decompress(a)
        if len(ops) == 1 and kind == 1 and ln == n and offset + n <= self.backing.size:
            # all of it reads through (an overlay's unwritten clusters): the backing's own bytes,
            # without a buffer here to fill and copy
            return self.backing.pread(offset, n)
        out = bytearray(n)
        self._execute(ops, memoryview(out), offset)
        return bytes(out)

    def readinto(self, mv: memoryview, offset: int) -> None:
        """Fill ``mv`` (zero-initialised by the caller) with guest bytes starting at ``offset``."""
        self._execute(self.plan(offset, len(mv)), mv, offset)

    def _execute(self, ops: list, mv: memoryview, offset: int) -> None:
        for kind, pos, a, n, inoff in ops:
            if kind == 0:
                self._read_host(mv[pos : pos + n], a)
            elif kind == 1:
                self._read_backing(mv[pos : pos + n], offset + pos)
            else:
                mv[pos : pos + n] = memoryview(self.decompress(a))[inoff : inoff + n]

    def plan(self, offset: int, n: int) -> list:
        """The read ops for guest bytes [offset, offset+n) (see ``_Plan``)."""
        g = _Plan()
        cb, l2_bits = self.cluster_bits, self.l2_bits
        cmask = self.cluster_size - 1
        l2_mask = self.l2_entries - 1
        l1 = self.l1
        has_backing = self.backing is not None
        zero_flag = self.version >= 3 and not self.extended_l2
        pos = 0
        while pos < n:
            goff = offset + pos
            ci = goff >> cb
            l1i = ci >> l2_bits
            l1e = l1[l1i] if l1i < len(l1) else 0
            l2off = l1e & C.L1E_OFFSET_MASK
            span_end = min(n, ((l1i + 1) << (l2_bits + cb)) - offset)
            if not l2off:
                if has_backing:
                    g.backing(pos, span_end - pos)
                pos = span_end
                continue
            t = self.l2_table(l2off, l1i)
            idx = ci & l2_mask
            if self.extended_l2:
                pos = self._read_ext(g, t, idx, pos, span_end, offset, l2off)
                continue
            while pos < span_end:
                inoff = (offset + pos) & cmask
                chunk = min(cmask + 1 - inoff, span_end - pos)
                e = t[idx]
                if e & C.QCOW_OFLAG_COMPRESSED:
                    g.compressed(pos, e, inoff, chunk)
                elif zero_flag and e & C.QCOW_OFLAG_ZERO:
                    pass  # reads as zeros: the output buffer starts zeroed
                else:
                    host = e & C.L2E_OFFSET_MASK
                    # offset 0 is unallocated, except with COPIED in an external data file (qemu
                    # qcow2_get_cluster_type), where 0 is a valid guest-equals-host offset
                    if host or (e & C.QCOW_OFLAG_COPIED and self.data_file is not None):
                        if host & cmask:
                            raise CorruptImageError(f"data cluster offset 0x{host:x} is not cluster-aligned",
                                                    where=f"qcow2 L2 table @0x{l2off:x} entry {idx}")
                        g.data(pos, host + inoff, chunk)
                    elif has_backing:
                        g.backing(pos, chunk)
                pos += chunk
                idx += 1
        g.push()
        return g.ops

    def source_of(self, offset: int, length: int):
        """Key of the one chain layer providing guest bytes [offset, offset+length), or None.

        Read-only and cheap: only the mapping (L1 and cached L2 tables) is consulted, no data.
        When every cluster of the range is unallocated here, the bytes read through from the
        backing file and its answer is returned (recursively down the chain); when every
        cluster is allocated here (data or compressed), the key is this image's
        ``("qcow2", st_dev, st_ino, snapshot id, offset, length)``. Mixed ranges, zero clusters
        and ranges past a shorter backing file give None (see ``BlockDevice.source_of``).
        """
        if offset < 0 or length <= 0 or offset + length > self.size or self._closed:
            return None
        covered, kinds = 0, set()
        for kind, pos, _a, n, _inoff in self.plan(offset, length):
            if pos != covered:
                return None  # a zero gap: those bytes come from no layer's storage
            covered += n
            kinds.add(1 if kind == 1 else 0)
        if covered != length or len(kinds) != 1:
            return None
        if kinds == {1}:
            hook = getattr(self.backing, "source_of", None)
            if hook is None or offset + length > self.backing.size:
                return None
            return hook(offset, length)
        st = os.fstat(self.fd)
        return ("qcow2", st.st_dev, st.st_ino, self.snapshot_id, offset, length)

    def content_identity(self):
        """An overlay that allocated nothing reads as its backing file does (up to its own size):
        the backing file's identity and this size. An image with clusters of its own: the file's
        identity (``st_dev``, ``st_ino``, size, ``st_mtime_ns``) when it has no backing file,
        else None (its clusters would have to be compared). An external data file: None."""
        if self._closed or self.data_file is not None or (self.backing is not None and any(self.l1)):
            return None
        if self.backing is not None:
            hook = getattr(self.backing, "content_identity", None)
            key = hook() if hook else None
            return None if key is None else ("overlay", key, self.size, self.backing.size)
        st = os.fstat(self.fd)
        return ("qcow2", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, self.snapshot_id, self.size)

    def _read_ext(self, g: _Plan, t: array, idx: int, pos: int, span_end: int, offset: int, l2off: int) -> int:
        """Extended L2 (subclusters): one 128-bit entry per cluster, 32 subclusters each."""
        cmask = self.cluster_size - 1
        sb = self.subcluster_bits
        has_backing = self.backing is not None
        while pos < span_end:
            inoff = (offset + pos) & cmask
            chunk = min(cmask + 1 - inoff, span_end - pos)
            e, bm = t[2 * idx], t[2 * idx + 1]
            where = f"qcow2 L2 table @0x{l2off:x} entry {idx}"
            if e & C.QCOW_OFLAG_COMPRESSED:
                g.compressed(pos, e, inoff, chunk)
            else:
                host = e & C.L2E_OFFSET_MASK
                alloc, zero = bm & 0xFFFFFFFF, bm >> 32
                if alloc & zero:
                    raise CorruptImageError(f"subcluster bitmap 0x{bm:016x} marks subclusters both allocated and zero",
                                            where=where)
                if host & cmask or (alloc and not host and self.data_file is None):
                    raise CorruptImageError(f"bad host offset 0x{host:x} for bitmap 0x{bm:016x}", where=where)
                if alloc == 0xFFFFFFFF:
                    g.data(pos, host + inoff, chunk)
                elif alloc == 0 and (zero == 0xFFFFFFFF or not has_backing):
                    pass
                else:
                    p, end = inoff, inoff + chunk
                    while p < end:
                        sc = p >> sb
                        q = min(end, (sc + 1) << sb)
                        if alloc >> sc & 1:
                            g.data(pos + p - inoff, host + p, q - p)
                        elif not (zero >> sc & 1) and has_backing:
                            g.backing(pos + p - inoff, q - p)
                        p = q
            pos += chunk
            idx += 1
        return pos

    # --- writing, flushing, closing --------------------------------------------------------

    def _pwrite(self, offset: int, data: bytes) -> None:
        self._writer.write(offset, data)

    def defer_syncs(self) -> None:
        """This new file is published (renamed into place) only after :meth:`close`: write it
        without ordering fsyncs, and fsync it once when it is closed (``Qcow2Writer.defer_syncs``)."""
        if self._writer is not None:
            self._writer.defer_syncs()

    def flush(self) -> None:
        """Write pending metadata in crash-safe order and fsync (FORMAT-NOTES B1.7)."""
        if self._writer is not None and not self._closed:
            self._writer.flush()

    def close(self) -> None:
        """Flush, finish the header (clear the dirty bit) and release every file of the chain."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._release()

    def _release(self) -> None:
        self._closed = True
        for dev in (self.backing, self.data_file):
            if dev is not None:
                dev.close()
        if not self.file._closed:
            os.close(self.file._fd)  # the writer already fsynced; RawFile.close would fsync again
            self.file._closed = True

    # --- description -----------------------------------------------------------------------

    def backing_chain(self) -> list:
        """[{filename, path, format}] for each image below this one, nearest first."""
        out, dev = [], self
        while isinstance(dev, Qcow2Image) and dev.backing is not None:
            b = dev.backing
            out.append(dict(filename=dev.backing_file, path=b.path, format=getattr(b, "format", "raw"),
                            virtual_size=b.size))
            dev = b
        return out

    def info(self) -> dict:
        """What ``nuwa info --json`` prints for the disk layer (names as in qemu-img info)."""
        h = self.header
        table = h.feature_table()

        def names(kind: int, bits: int) -> list:
            return [C.feature_name(kind, b, table) for b in range(64) if bits >> b & 1]

        bitmaps = []
        bm = h.extension(C.QCOW2_EXT_MAGIC_BITMAPS)
        if bm is not None and len(bm) >= 24:
            e = C.Qcow2BitmapHeaderExt.parse(bm[:24])
            if e.bitmap_directory_size <= 64 * 1024 * 1024 and e.bitmap_directory_offset < self.file_size:
                raw = os.pread(self.fd, e.bitmap_directory_size, e.bitmap_directory_offset)
                bitmaps = [dict(name=x[2], granularity=1 << x[4], flags=x[3])
                           for x in decode_bitmap_directory(raw, e.nb_bitmaps, e.bitmap_directory_offset)]
        return dict(
            format="qcow2", filename=self.path, virtual_size=self.size, actual_size=self.file_size,
            cluster_size=self.cluster_size, version=h.version, compat="1.1" if h.version == 3 else "0.10",
            compression_type=C.COMPRESSION_NAMES.get(h.compression_type, str(h.compression_type)),
            backing_file=h.backing_file, backing_format=self.backing_format,
            backing_chain=self.backing_chain(),
            snapshots=[s.as_dict() for s in self.snapshots],
            dirty=bool(h.incompatible_features & C.QCOW2_INCOMPAT_DIRTY),
            corrupt=bool(h.incompatible_features & C.QCOW2_INCOMPAT_CORRUPT),
            lazy_refcounts=bool(h.compatible_features & C.QCOW2_COMPAT_LAZY_REFCOUNTS),
            incompatible_features=names(C.QCOW2_FEAT_TYPE_INCOMPATIBLE, h.incompatible_features),
            compatible_features=names(C.QCOW2_FEAT_TYPE_COMPATIBLE, h.compatible_features),
            autoclear_features=names(C.QCOW2_FEAT_TYPE_AUTOCLEAR, h.autoclear_features),
            refcount_bits=h.refcount_bits, extended_l2=self.extended_l2,
            encrypted={0: None, 1: "aes", 2: "luks"}.get(h.crypt_method, str(h.crypt_method)),
            data_file=(h.extension(C.QCOW2_EXT_MAGIC_DATA_FILE) or b"").decode("utf-8", "replace") or None,
            data_file_raw=bool(h.autoclear_features & C.QCOW2_AUTOCLEAR_DATA_FILE_RAW),
            bitmaps=bitmaps, header_length=h.header_length,
            extensions=[dict(magic=f"0x{m:08x}", name=C.EXTENSION_NAMES.get(m, "unknown"), length=len(d))
                        for m, d in h.extensions],
        )


# --- the backing chain: names stored in an image -> devices ----------------------------------
# Kept beside the reader because only a qcow2 image stores such names, and opening a chain
# member may open another Qcow2Image (detect.open_disk, the user's entry point, sits above).

#: qemu's protocol syntax: "proto:rest" where proto has no '/' (qemu ``path_has_protocol``)
_PROTOCOL = re.compile(r"^([A-Za-z0-9+._-]+):")
#: longest chain we follow; each level holds a file descriptor
MAX_CHAIN_DEPTH = 256


def probe_format(path: str) -> str:
    """'qcow2' if the file starts with the qcow2 magic, else 'raw'."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise InvalidInputError(f"cannot open: {err.strerror}", where=path) from err
    return "qcow2" if magic == C.QCOW_MAGIC else "raw"


def open_chain_member(path: str, fmt: str, writable: bool, chain: frozenset, lock: str | None = "auto") -> BlockDevice:
    """Open ``path`` as ``fmt`` ('qcow2' or 'raw'); ``chain`` holds the realpaths above it;
    ``lock`` as for :class:`RawFile` (the default: QEMU's write locks iff ``writable``)."""
    if fmt == "qcow2":
        return Qcow2Image(path, writable=writable, _chain=chain, lock=lock)
    if fmt == "raw":
        return RawImage(path, writable=writable, lock=lock)
    raise UnsupportedFeatureError(f"image format {fmt!r} is not supported (qcow2 and raw are)", where=path,
                                  feature=f"format {fmt}")


def resolve_reference(name: str, referrer: str, what: str) -> str:
    """Resolve a file name stored in an image (backing or data file) like qemu does.

    Relative names are relative to the directory of the image that stores them; protocol
    names are refused.
    """
    m = _PROTOCOL.match(name)
    if m and not name.startswith(("/", "./")):
        proto = m.group(1)
        if proto != "file":
            raise UnsupportedFeatureError(f"{what} {name!r} uses the {proto!r} protocol; only local files are supported",
                                          where=f"{referrer}: qcow2 {what} name", feature=f"protocol {proto}")
        name = name[len("file:"):]
    if not name:
        raise CorruptImageError(f"empty {what} name", where=f"{referrer}: qcow2 {what} name")
    if "\0" in name:
        raise CorruptImageError(f"{what} name contains a NUL byte", where=f"{referrer}: qcow2 {what} name")
    if not os.path.isabs(name):
        name = os.path.join(os.path.dirname(os.path.abspath(referrer)), name)
    if not os.path.exists(name):
        raise CorruptImageError(f"{what} {name!r} does not exist", where=f"{referrer}: qcow2 {what} name")
    return name


def open_backing_file(name: str, fmt: str | None, referrer: str, chain: frozenset,
                      lock: str | None = None) -> BlockDevice:
    """Open the backing file ``name`` of image ``referrer`` read-only (``chain``: realpaths above it).

    ``lock="shared"`` (the chain under an image being written) takes QEMU's backing-file locks.
    """
    path = resolve_reference(name, referrer, "backing file")
    real = os.path.realpath(path)
    if real in chain:
        raise CorruptImageError(f"backing chain loop: {name!r} is already in the chain above it",
                                where=f"{referrer}: qcow2 backing file name")
    if len(chain) >= MAX_CHAIN_DEPTH:
        raise UnsupportedFeatureError(f"backing chain deeper than {MAX_CHAIN_DEPTH}", where=referrer,
                                      feature="backing chain depth")
    if fmt is None:
        fmt = probe_format(path)
    elif fmt not in ("qcow2", "raw"):
        raise UnsupportedFeatureError(f"backing format {fmt!r} is not supported (qcow2 and raw are)",
                                      where=f"{referrer}: qcow2 backing format extension", feature=f"format {fmt}")
    return open_chain_member(path, fmt, False, chain, lock=lock)


def check_qcow2(path) -> CheckReport:
    """Check a qcow2 image's refcounts and COPIED flags read-only (like ``qemu-img check``).

    Raises ``CorruptImageError`` only when the header itself cannot be parsed.
    """
    img = Qcow2Image(os.fspath(path), writable=False, open_backing=False, check_bounds=False)
    try:
        return check_image(img)
    finally:
        img.close()
