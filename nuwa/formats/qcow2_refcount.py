"""qcow2 refcounts: reading, allocating and accounting for host clusters.

Spec: qemu docs/interop/qcow2.txt "Host cluster management"; FORMAT-NOTES B1.6/B1.7.
Finding a free cluster (``find_free``) is separate from accounting for it (``update``), the
split of e2fsprogs alloc.c / alloc_stats.c. Ordering rules this module keeps:

- Refcount *increments* may reach the disk at any time before the reference does (a crash then
  only leaks). Dirty blocks hold increments only: decrements are queued by the writer and applied
  (``apply_pending``) after the references were removed on disk.
- A new refcount block is written and synced before the table entry that points at it; a block
  that falls inside the range it covers counts itself (qemu ``alloc_refcount_block``).
- Growing the table writes the new table and the blocks describing it past the end of the file,
  syncs, switches with one 12-byte header write, syncs, and only then frees the old table.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections import OrderedDict

from nuwa.errors import CorruptImageError, OperationFailedError
from nuwa.formats import c_qcow2 as C

BLOCK_CACHE_BYTES = 16 * 1024 * 1024


def get_entry(block: bytes | bytearray, i: int, order: int) -> int:
    """Refcount entry ``i`` of a refcount block with ``1 << order``-bit entries."""
    if order >= 3:
        w = 1 << (order - 3)
        return int.from_bytes(block[i * w : i * w + w], "big")
    bits = 1 << order
    bit = i * bits
    return (block[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1)


def set_entry(block: bytearray, i: int, order: int, value: int) -> None:
    """Store ``value`` in entry ``i`` (sub-byte widths are packed LSB-first within a byte)."""
    if order >= 3:
        w = 1 << (order - 3)
        block[i * w : i * w + w] = value.to_bytes(w, "big")
        return
    bits = 1 << order
    bit = i * bits
    mask = ((1 << bits) - 1) << (bit & 7)
    block[bit >> 3] = (block[bit >> 3] & ~mask) | ((value << (bit & 7)) & mask)


class Refcounts:
    """The refcount table and a bounded cache of refcount blocks of one writable image."""

    def __init__(self, img):
        self.img = img
        h = img.header
        self.fd = img.fd
        self.cb = img.cluster_bits
        self.cs = img.cluster_size
        self.order = h.refcount_order
        self.max_count = (1 << (1 << self.order)) - 1
        self.rb_entries = C.refcount_geometry(self.cb, self.order)
        self.rb_shift = self.rb_entries.bit_length() - 1
        self.table_offset = h.refcount_table_offset
        self.table_clusters = h.refcount_table_clusters
        raw = os.pread(self.fd, self.table_clusters * self.cs, self.table_offset)
        self.table = array("Q", struct.unpack(f">{len(raw) // 8}Q", raw))
        self.blocks: OrderedDict = OrderedDict()
        self.dirty: set = set()
        self.reserved: set = set()
        self.pending: list = []  # (host_offset, length) to decrement after references are gone
        self.free_hint = 1
        self.host_end = -(-img.file_size // self.cs)
        self.cache_max = max(8, min(4096, BLOCK_CACHE_BYTES // self.cs))
        self._validate_table()

    def _validate_table(self) -> None:
        """Refuse a table whose entries point outside the file or into other metadata."""
        for rti, e in enumerate(self.table):
            off = e & C.REFT_OFFSET_MASK
            if not off:
                continue
            where = f"qcow2 refcount table entry {rti} -> refcount block @0x{off:x}"
            if off & (self.cs - 1):
                raise CorruptImageError("refcount block offset is not cluster-aligned", where=where)
            if off + self.cs > self.img.file_size:
                raise CorruptImageError(f"refcount block lies past the end of the file ({self.img.file_size} bytes)",
                                        where=where)
            self.img._check_meta_overlap(off, self.cs, "refcount block")

    # --- reading ---------------------------------------------------------------------------

    def _block(self, off: int, rti: int) -> bytearray:
        b = self.blocks.get(off)
        if b is not None:
            self.blocks.move_to_end(off)
            return b
        where = f"qcow2 refcount table entry {rti} -> refcount block @0x{off:x}"
        if off & (self.cs - 1):
            raise CorruptImageError("refcount block offset is not cluster-aligned", where=where)
        if off + self.cs > max(self.img.file_size, self.host_end * self.cs):
            raise CorruptImageError("refcount block lies past the end of the file", where=where)
        self.img._check_meta_overlap(off, self.cs, "refcount block")
        b = bytearray(os.pread(self.fd, self.cs, off))
        b += bytes(self.cs - len(b))
        self.blocks[off] = b
        if len(self.blocks) > self.cache_max:
            self._evict()
        return b

    def _evict(self) -> None:
        for key in self.blocks:
            if key not in self.dirty:
                del self.blocks[key]
                return
        self.img._writer.flush()  # writes every dirty block in order
        self.blocks.popitem(last=False)

    def get(self, ci: int) -> int:
        """Refcount of host cluster ``ci`` (0 where no refcount block exists)."""
        rti = ci >> self.rb_shift
        if rti >= len(self.table):
            return 0
        off = self.table[rti] & C.REFT_OFFSET_MASK
        if not off:
            return 0
        return get_entry(self._block(off, rti), ci & (self.rb_entries - 1), self.order)

    # --- finding -----------------------------------------------------------------------------

    def find_free(self, n: int = 1) -> int:
        """First run of ``n`` free, unreserved host clusters at or after the hint (cluster index)."""
        c = max(self.free_hint, 1)
        while True:
            for k in range(n):
                # past the end of the file too: a refcount there (a leak qemu-img check does not
                # see, as it counts only to the file's end) makes the cluster in use for qemu's
                # allocator as well (fuzz finding: a new cluster got refcount 8193, COPIED set)
                if (c + k) in self.reserved or self.get(c + k):
                    c += k + 1
                    break
            else:
                if n == 1:
                    self.free_hint = c
                return c

    def alloc(self, n: int = 1) -> int:
        """Allocate ``n`` contiguous clusters (refcount 1 each); return the host byte offset."""
        c = self.find_free(n)
        self.reserved.update(range(c, c + n))
        try:
            for k in range(n):
                self.update(c + k, 1)
        finally:
            self.reserved.difference_update(range(c, c + n))
        self.host_end = max(self.host_end, c + n)
        if n == 1:
            self.free_hint = c + 1
        return c << self.cb

    # --- accounting --------------------------------------------------------------------------

    def update(self, ci: int, addend: int) -> int:
        """Add ``addend`` to the refcount of host cluster ``ci``; return the new count."""
        rti = ci >> self.rb_shift
        if rti >= len(self.table):
            self._grow_table(rti)
        off = self.table[rti] & C.REFT_OFFSET_MASK
        if not off:
            off = self._new_block(rti)
        b = self._block(off, rti)
        i = ci & (self.rb_entries - 1)
        v = get_entry(b, i, self.order) + addend
        if v < 0:
            raise CorruptImageError(f"refcount of cluster 0x{ci << self.cb:x} would drop below 0",
                                    where=f"qcow2 refcount block @0x{off:x} entry {i}")
        if v > self.max_count:
            raise OperationFailedError(f"refcount of cluster 0x{ci << self.cb:x} would exceed "
                                       f"{self.max_count} ({1 << self.order}-bit refcounts)",
                                       where=f"qcow2 refcount block @0x{off:x} entry {i}")
        set_entry(b, i, self.order, v)
        self.blocks[off] = b  # re-insert in case a flush evicted it meanwhile
        self.dirty.add(off)
        if v == 0:
            self.free_hint = min(self.free_hint, ci)
        return v

    def free_later(self, host: int, length: int) -> None:
        """Queue a decrement of every cluster overlapping [host, host+length)."""
        self.pending.append((host, length))

    def apply_pending(self) -> list:
        """Apply queued decrements (the references are gone on disk); return freed offsets."""
        freed = []
        pending, self.pending = self.pending, []
        for host, length in pending:
            for ci in range(host >> self.cb, ((host + length - 1) >> self.cb) + 1):
                if self.update(ci, -1) == 0:
                    freed.append(ci << self.cb)
        return freed

    def write_dirty(self) -> bool:
        """Write every dirty refcount block; True if anything was written."""
        if not self.dirty:
            return False
        for off in sorted(self.dirty):
            self.img._writer.pwrite_host(off, self.blocks[off])
        self.dirty.clear()
        return True

    # --- growth ------------------------------------------------------------------------------

    def _new_block(self, rti: int) -> int:
        """Create the refcount block for table index ``rti``; written and hooked in, synced."""
        w = self.img._writer
        p = self.find_free(1)
        self.reserved.add(p)
        try:
            block = bytearray(self.cs)
            if p >> self.rb_shift == rti:
                set_entry(block, p & (self.rb_entries - 1), self.order, 1)  # counts itself
            else:
                self.update(p, 1)
            self.host_end = max(self.host_end, p + 1)
            off = p << self.cb
            self.blocks[off] = block
            # the block and its own count must be on disk before the table points at it
            self.dirty.add(off)
            self.write_dirty()
            w.sync()
            self.table[rti] = off
            w.pwrite_host(self.table_offset + rti * 8, struct.pack(">Q", off))
            w.sync()
            return off
        finally:
            self.reserved.discard(p)

    def _grow_table(self, need_rti: int) -> None:
        """Move the refcount table to a bigger one past the end of the file (B1.6)."""
        w = self.img._writer
        per_cluster = self.cs // 8
        start = max([self.host_end, -(-self.img.file_size // self.cs)] + [c + 1 for c in self.reserved])
        want = max(need_rti + 1, len(self.table) * 3 // 2 + 1)
        nblocks = 0
        while True:
            tclusters = -(-want // per_cluster)
            end = start + tclusters + nblocks
            groups = [g for g in range(start >> self.rb_shift, ((end - 1) >> self.rb_shift) + 1)
                      if g >= len(self.table) or not self.table[g] & C.REFT_OFFSET_MASK]
            if len(groups) == nblocks and max(groups, default=0) < tclusters * per_cluster:
                break
            nblocks = len(groups)
            want = max(want, max(groups, default=0) + 1)
        if tclusters * self.cs > C.QCOW_MAX_REFTABLE_SIZE:
            raise OperationFailedError("the refcount table would exceed qemu's 8 MiB limit",
                                       where="qcow2 refcount table")
        new_table = array("Q", self.table) + array("Q", bytes(8 * (tclusters * per_cluster - len(self.table))))
        bstart = start + tclusters
        new_blocks = {}
        for k, g in enumerate(groups):
            new_table[g] = (bstart + k) << self.cb
            new_blocks[g] = bytearray(self.cs)
        # count the new table and blocks: in new blocks directly, in existing ones via the cache
        for ci in range(start, end):
            g = ci >> self.rb_shift
            if g in new_blocks:
                set_entry(new_blocks[g], ci & (self.rb_entries - 1), self.order, 1)
            else:
                self.host_end = max(self.host_end, end)
                self.update(ci, 1)
        self.write_dirty()
        for g, blk in new_blocks.items():
            w.pwrite_host(new_table[g], blk)
        w.pwrite_host(start << self.cb, struct.pack(f">{len(new_table)}Q", *new_table))
        w.sync()
        old_off, old_clusters = self.table_offset, self.table_clusters
        w.pwrite_host(C.OFF_REFCOUNT_TABLE_OFFSET, struct.pack(">QI", start << self.cb, tclusters))
        w.sync()
        self.table, self.table_offset, self.table_clusters = new_table, start << self.cb, tclusters
        self.host_end = max(self.host_end, end)
        h = self.img.header
        h.refcount_table_offset, h.refcount_table_clusters = self.table_offset, tclusters
        self.img._meta = [m for m in self.img._meta if m[2] != "refcount table"]
        self.img._meta.append((self.table_offset, tclusters * self.cs, "refcount table"))
        # nothing points at the old table any more: free it now
        for ci in range(old_off >> self.cb, (old_off >> self.cb) + old_clusters):
            self.update(ci, -1)
