"""Writing qcow2 images: allocation, copy-on-write, and the ordered flush.

Spec: qemu docs/interop/qcow2.txt; FORMAT-NOTES B1.2 (features), B1.4 (COPIED), B1.5 (compressed),
B1.7 (crash-consistency order). The policy mirrors qemu ``block/qcow2-cluster.c``:

- A cluster is written in place only when its L2 entry carries COPIED (refcount exactly 1);
  everything else (unallocated, backing, zero, compressed, shared with a snapshot) is copied
  into a newly allocated cluster. Shared L2 tables are copied the same way through their L1
  entry. New entries always carry COPIED; the old cluster's refcount is decremented only after
  the new reference is on disk.
- In extended-L2 images only the touched subclusters are allocated; a partial subcluster is
  completed from its previous content (backing file or zeros).
- Dirty metadata lives in the L2 and refcount-block caches and reaches the disk in one ordered
  flush: refcount increments, sync, L2 tables, sync, L1 entries, sync, refcount decrements,
  sync. A crash between two steps can only leak clusters (``qemu-img check`` exit 3, repairable),
  never make a refcount smaller than its references.
- With lazy refcounts (compatible bit 0) the dirty bit is set before the first write and cleared
  on close, as qemu does; a crash then leaves an image qemu repairs on open, and so does Nuwa
  (``qcow2_repair.repair_dirty`` runs when a dirty image is opened writable).
"""

from __future__ import annotations

import os
import struct
from array import array

from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.qcow2_header import array_be, build_header, decode_bitmap_directory
from nuwa.formats.qcow2_openable import qemu_open_refusal
from nuwa.formats.qcow2_refcount import Refcounts
from nuwa.formats.qcow2_repair import check_before_write, repair_dirty


def refuse_write_reason(img) -> tuple[str, str, str] | None:
    """(message, where, feature) if the image must not be written, else None (B1.2, B4.12)."""
    h = img.header
    if h.crypt_method:
        return (f"the image is encrypted (crypt_method {h.crypt_method}); refusing to write",
                "qcow2 header @0x20 (crypt_method)", "encryption")
    if h.incompatible_features & C.QCOW2_INCOMPAT_CORRUPT:
        return ("the corrupt bit (incompatible bit 1) is set; refusing to write (repair with qemu-img check -r all)",
                "qcow2 header @0x48 (incompatible_features)", "corrupt bit")
    if h.incompatible_features & C.QCOW2_INCOMPAT_DATA_FILE:
        return ("the image uses an external data file (incompatible bit 2); refusing to write",
                "qcow2 header @0x48 (incompatible_features)", "external data file")
    return None


class Qcow2Writer:
    """Write path of one ``Qcow2Image`` opened writable."""

    def __init__(self, img):
        reason = refuse_write_reason(img)
        if reason:
            msg, where, feature = reason
            raise UnsupportedFeatureError(msg, where=where, feature=feature)
        refusal = qemu_open_refusal(img.header)
        if refusal:
            # an image qemu will not open is a damaged image, whatever Nuwa can still read of it
            msg, where = refusal
            raise CorruptImageError(f"{msg} (qemu will not open the image); refusing to write", where=where)
        if img.header.incompatible_features & C.QCOW2_INCOMPAT_DIRTY:
            # hook (qcow2_repair): refcounts may be stale after a crash in lazy-refcount mode;
            # rebuild them and clear the dirty bit before anything else is written (B1.2)
            repair_dirty(img)
        else:
            # the allocator trusts refcounts and COPIED flags: check them before any write
            check_before_write(img)
        self.img = img
        self.fd = img.fd
        self.rc = Refcounts(img)
        self.l1_dirty: set = set()
        self.started = False
        self.lazy = bool(img.header.compatible_features & C.QCOW2_COMPAT_LAZY_REFCOUNTS) and img.version >= 3
        self.deferred = False
        self.header_dirty_bit = False
        self.data_written = False

    # --- host I/O ----------------------------------------------------------------------------

    def pwrite_host(self, off: int, data) -> None:
        """Write ``data`` at host offset ``off`` of the image file."""
        view = memoryview(data)
        end = off + len(view)
        while view:
            done = os.pwrite(self.fd, view, off)
            view = view[done:]
            off += done
        if end > self.img.file_size:
            self.img.file_size = end

    def sync(self) -> None:
        """An ordering point (fsync); skipped in lazy-refcount mode, where the dirty bit covers
        crashes, and for an unpublished file (:meth:`defer_syncs`), which a crash leaves unused."""
        if not self.lazy and not self.deferred:
            os.fsync(self.fd)

    def defer_syncs(self) -> None:
        """The file is not in use until it is closed (a new output under a temporary name, renamed
        after :meth:`close`): no ordering fsync while it is written, one fsync when it is closed."""
        self.deferred = True

    # --- first write: header feature bits ----------------------------------------------------

    def _begin(self) -> None:
        """Before the first write: drop what we do not maintain, mark lazy images dirty (B1.2)."""
        self.started = True
        h = self.img.header
        if h.version < 3:
            return
        if h.autoclear_features:
            # we maintain no autoclear feature: persistent bitmaps would go stale, so they are
            # dropped (their clusters freed) rather than left as leaks behind a cleared bit
            if h.autoclear_features & C.QCOW2_AUTOCLEAR_BITMAPS and h.extension(C.QCOW2_EXT_MAGIC_BITMAPS):
                self._drop_bitmaps()
            h.autoclear_features = 0
            self.pwrite_host(C.OFF_AUTOCLEAR_FEATURES, struct.pack(">Q", 0))
            os.fsync(self.fd)
        if self.lazy:
            h.incompatible_features |= C.QCOW2_INCOMPAT_DIRTY
            self.pwrite_host(C.OFF_INCOMPATIBLE_FEATURES, struct.pack(">Q", h.incompatible_features))
            os.fsync(self.fd)
            self.header_dirty_bit = True

    def _drop_bitmaps(self) -> None:
        img, h = self.img, self.img.header
        ext = C.Qcow2BitmapHeaderExt.parse(h.extension(C.QCOW2_EXT_MAGIC_BITMAPS)[:24])
        raw = os.pread(self.fd, ext.bitmap_directory_size, ext.bitmap_directory_offset)
        for table_off, table_size, _name, _f, _g in decode_bitmap_directory(raw, ext.nb_bitmaps,
                                                                             ext.bitmap_directory_offset):
            tbl = os.pread(self.fd, table_size * 8, table_off)
            for (e,) in struct.iter_unpack(">Q", tbl):
                if e & C.BME_TABLE_ENTRY_OFFSET_MASK:
                    self.rc.free_later(e & C.BME_TABLE_ENTRY_OFFSET_MASK, img.cluster_size)
            self.rc.free_later(table_off, table_size * 8)
        self.rc.free_later(ext.bitmap_directory_offset, ext.bitmap_directory_size)
        old_len = len(build_header(h))
        h.extensions = [(m, d) for m, d in h.extensions if m != C.QCOW2_EXT_MAGIC_BITMAPS]
        h.autoclear_features = 0
        new = build_header(h)
        self.pwrite_host(0, new + bytes(max(0, old_len - len(new))))
        os.fsync(self.fd)
        self.rc.apply_pending()
        self.rc.write_dirty()
        os.fsync(self.fd)

    # --- mapping for write -------------------------------------------------------------------

    def _put_l2(self, off: int, t: array) -> None:
        img = self.img
        img._l2_cache[off] = t
        img._l2_cache.move_to_end(off)
        img._l2_dirty.add(off)

    def _l2_for_write(self, l1i: int) -> tuple[int, array]:
        """The active L2 table for L1 index ``l1i``, allocated or un-shared (COPIED) as needed."""
        img = self.img
        l1e = img.l1[l1i]
        off = l1e & C.L1E_OFFSET_MASK
        if off and l1e & C.QCOW_OFLAG_COPIED:
            return off, img.l2_table(off, l1i)
        if off:
            t = array("Q", img.l2_table(off, l1i))  # shared with a snapshot: copy it
        else:
            t = array("Q", bytes(img.cluster_size))
        new = self.rc.alloc(1)
        self._put_l2(new, t)
        img.l1[l1i] = new | C.QCOW_OFLAG_COPIED
        self.l1_dirty.add(l1i)
        if off:
            self.rc.free_later(off, img.cluster_size)
        return new, t

    def _guest_content(self, goff: int, n: int) -> bytearray:
        """The current guest bytes [goff, goff+n) (backing, zeros, compressed or data)."""
        buf = bytearray(n)
        self.img.readinto(memoryview(buf), goff)
        return buf

    def _old_host_range(self, e: int) -> tuple[int, int] | None:
        if e & C.QCOW_OFLAG_COMPRESSED:
            return C.decode_compressed(e, self.img.cluster_bits)
        host = e & C.L2E_OFFSET_MASK
        return (host, self.img.cluster_size) if host else None

    # --- writing -----------------------------------------------------------------------------

    def write(self, offset: int, data: bytes) -> None:
        """Write guest bytes (the range was checked by ``BlockDevice.pwrite``)."""
        if not self.started:
            self._begin()
        img = self.img
        cb, cs = img.cluster_bits, img.cluster_size
        mv = memoryview(data)
        pos, n = 0, len(data)
        while pos < n:
            goff = offset + pos
            inoff = goff & (cs - 1)
            chunk = min(cs - inoff, n - pos)
            ci = goff >> cb
            if img.extended_l2:
                self._write_ext(ci, inoff, mv[pos : pos + chunk])
            else:
                self._write_std(ci, inoff, mv[pos : pos + chunk])
            pos += chunk
        self.data_written = True

    def _write_std(self, ci: int, inoff: int, piece: memoryview) -> None:
        img = self.img
        cs = img.cluster_size
        l2off, t = self._l2_for_write(ci >> img.l2_bits)
        idx = ci & (img.l2_entries - 1)
        e = t[idx]
        host = e & C.L2E_OFFSET_MASK
        zero = img.version >= 3 and e & C.QCOW_OFLAG_ZERO
        if host and e & C.QCOW_OFLAG_COPIED and not e & C.QCOW_OFLAG_COMPRESSED:
            if not zero:
                self.pwrite_host(host + inoff, piece)
                return
            # a preallocated zero cluster we own: fill it, then clear the zero flag
            buf = bytearray(cs)
            buf[inoff : inoff + len(piece)] = piece
            self.pwrite_host(host, buf)
            self._set_l2(l2off, t, idx, host | C.QCOW_OFLAG_COPIED)
            return
        if len(piece) == cs:
            buf = piece
        else:
            buf = self._guest_content(ci << img.cluster_bits, cs)
            buf[inoff : inoff + len(piece)] = piece
        new = self.rc.alloc(1)
        self.pwrite_host(new, buf)
        self._set_l2(l2off, t, idx, new | C.QCOW_OFLAG_COPIED)
        old = self._old_host_range(e)
        if old:
            self.rc.free_later(*old)

    def _set_l2(self, l2off: int, t: array, idx: int, value: int) -> None:
        t[idx] = value
        self._put_l2(l2off, t)

    def _write_ext(self, ci: int, inoff: int, piece: memoryview) -> None:
        """Extended L2: allocate and write only the touched subclusters (qemu ``handle_alloc``)."""
        img = self.img
        cs, sb = img.cluster_size, img.subcluster_bits
        l2off, t = self._l2_for_write(ci >> img.l2_bits)
        idx = ci & (img.l2_entries - 1)
        e, bm = t[2 * idx], t[2 * idx + 1]
        gbase = ci << img.cluster_bits
        if e & C.QCOW_OFLAG_COMPRESSED:
            buf = self._guest_content(gbase, cs)
            buf[inoff : inoff + len(piece)] = piece
            new = self.rc.alloc(1)
            self.pwrite_host(new, buf)
            t[2 * idx], t[2 * idx + 1] = new | C.QCOW_OFLAG_COPIED, C.QCOW_L2_BITMAP_ALL_ALLOC
            self._put_l2(l2off, t)
            self.rc.free_later(*C.decode_compressed(e, img.cluster_bits))
            return
        host = e & C.L2E_OFFSET_MASK
        first, last = inoff >> sb, (inoff + len(piece) - 1) >> sb
        rstart, rend = first << sb, (last + 1) << sb
        if rstart == inoff and rend == inoff + len(piece):
            buf = piece
        else:
            # complete the edge subclusters from what the guest sees there now
            buf = self._guest_content(gbase + rstart, rend - rstart)
            buf[inoff - rstart : inoff - rstart + len(piece)] = piece
        old = None
        if host and not e & C.QCOW_OFLAG_COPIED:
            # shared with a snapshot: copy the whole host cluster (allocated subclusters keep data)
            new = self.rc.alloc(1)
            self.pwrite_host(new, os.pread(self.fd, cs, host))
            old, host = host, new
        elif not host:
            host = self.rc.alloc(1)
        self.pwrite_host(host + rstart, buf)
        mask = ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)
        alloc = (bm & 0xFFFFFFFF) | mask
        zero = (bm >> 32) & ~mask
        t[2 * idx], t[2 * idx + 1] = host | C.QCOW_OFLAG_COPIED, alloc | (zero << 32)
        self._put_l2(l2off, t)
        if old:
            self.rc.free_later(old, cs)

    # --- flushing ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write dirty metadata in crash-safe order (module docstring) and sync."""
        img, rc = self.img, self.rc
        if not (rc.dirty or img._l2_dirty or self.l1_dirty or rc.pending or self.data_written):
            return
        cs = img.cluster_size
        if img.file_size < rc.host_end * cs:
            os.ftruncate(self.fd, rc.host_end * cs)  # every allocated cluster lies inside the file
            img.file_size = rc.host_end * cs
        rc.write_dirty()
        self.sync()  # refcount increments and guest data before any reference to them
        if img._l2_dirty:
            for off in sorted(img._l2_dirty):
                t = img._l2_cache[off]
                self.pwrite_host(off, _be(t))
            img._l2_dirty.clear()
            self.sync()  # L2 tables before the L1 entries that point at them
        if self.l1_dirty:
            self._write_l1()
            self.sync()
        if rc.pending:
            for off in rc.apply_pending():
                img._l2_cache.pop(off, None)
            img._zcache.clear()
            rc.write_dirty()
        if not self.deferred:
            os.fsync(self.fd)
        self.data_written = False

    def _write_l1(self) -> None:
        img = self.img
        idxs = sorted(self.l1_dirty)
        run = [idxs[0]]
        for i in idxs[1:] + [None]:
            if i is not None and i == run[-1] + 1:
                run.append(i)
                continue
            vals = [img.l1[j] for j in run]
            self.pwrite_host(img.l1_table_offset + run[0] * 8, struct.pack(f">{len(vals)}Q", *vals))
            if i is not None:
                run = [i]
        self.l1_dirty.clear()

    def close(self) -> None:
        """Final flush; then clear the dirty bit set for lazy refcounts."""
        self.flush()
        if self.deferred:
            os.fsync(self.fd)  # the one sync of an unpublished file: all of it, before its rename
        if self.header_dirty_bit:
            h = self.img.header
            h.incompatible_features &= ~C.QCOW2_INCOMPAT_DIRTY
            self.pwrite_host(C.OFF_INCOMPATIBLE_FEATURES, struct.pack(">Q", h.incompatible_features))
            os.fsync(self.fd)
            self.header_dirty_bit = False


def _be(t: array) -> bytes:
    return array_be(t)
