"""Checking qcow2 refcounts and rebuilding them for a dirty image.

``check_image(img)`` (``qcow2.check_qcow2(path)`` opens the file for it) is a read-only consistency check in the spirit of ``qemu-img check``: it
counts every reference to every host cluster and compares the counts with the stored refcounts
(stored < references is a corruption, stored > references a leak), checks the COPIED flags of
the active tables, and reports what is wrong beyond refcounts (references past the end of the
file, unaligned offsets, overlapping metadata, reserved bits, bad subcluster bitmaps).

``repair_dirty(img)`` is what a writable open of an image with the dirty bit (incompatible bit
0, FORMAT-NOTES B1.2) runs before any write, like qemu's automatic ``check -r all`` of a dirty
image. It refuses (``CorruptImageError``) if the metadata is inconsistent beyond refcounts.
Otherwise, if any refcount is wrong, it writes a complete new refcount table and blocks past
the end of the file, syncs, switches to them with one 12-byte header write, syncs; then it sets
COPIED exactly where the refcount is 1 in the active L1/L2 tables, syncs, and clears the dirty
bit with one header write. Until that last write the image stays dirty, and the refcounts in
effect never drop below the references (the old refcount structures are counted 0 in the new
ones only because nothing references them once the header points at the new table).

Reference counting follows qcow2.txt "Host cluster management" and qemu
``block/qcow2-refcount.c`` (``calculate_refcounts``): the header cluster, every L1 table, every
L2 table once per L1 entry naming it, every data cluster once per L2 entry naming it (also
preallocated zero clusters), every host cluster a compressed cluster's sectors overlap, the
snapshot table, the refcount table and blocks, the bitmap directory, tables and data, the
encryption header. A range may end less than one cluster past the end of the file (the last
cluster can be partly written), as qemu allows.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from dataclasses import dataclass, field

from nuwa.errors import CorruptImageError, OperationFailedError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.qcow2_header import be_array, decode_bitmap_directory

_SWAP = sys.byteorder == "little"
#: the most clusters a check will account for (memory: a few bytes per cluster)
MAX_CHECK_CLUSTERS = 1 << 26
#: the most message lines a report keeps (the counts go on)
MAX_MESSAGES = 1000

# what a host cluster is used as; every kind but L2 tables, data and compressed data is exclusive
K_FREE, K_HEADER, K_L1, K_L2, K_DATA, K_COMPRESSED, K_SNAPTABLE, K_REFTABLE, K_REFBLOCK, K_BITMAP = range(10)
KIND_NAMES = {K_HEADER: "the header", K_L1: "an L1 table", K_L2: "an L2 table", K_DATA: "a data cluster",
              K_COMPRESSED: "compressed data", K_SNAPTABLE: "the snapshot table", K_REFTABLE: "the refcount table",
              K_REFBLOCK: "a refcount block", K_BITMAP: "bitmap metadata or data"}


# --- refcount blocks as arrays (pure) ------------------------------------------------------------


def count_typecode(order: int) -> str:
    """The array typecode that holds one refcount of ``1 << order`` bits."""
    return "B" if order <= 3 else {4: "H", 5: "I", 6: "Q"}[order]


def decode_refblock(block: bytes, order: int) -> array:
    """All entries of a refcount block (big-endian words, or LSB-first bit fields below 8 bits)."""
    tc = count_typecode(order)
    if order >= 3:
        a = array(tc, block)
        if _SWAP and order > 3:
            a.byteswap()
        return a
    bits = 1 << order
    per, mask = 8 // bits, (1 << bits) - 1
    out = array("B", bytes(len(block) * per))
    for i, byte in enumerate(block):
        if byte:
            for k in range(per):
                out[i * per + k] = (byte >> (k * bits)) & mask
    return out


def encode_refblock(values: array, order: int, entries: int) -> bytes:
    """A refcount block of ``entries`` entries from ``values`` (zero-padded); inverse of decode."""
    tc = count_typecode(order)
    if order >= 3:
        a = array(tc, values)
        a.extend(array(tc, bytes(a.itemsize * (entries - len(a)))))
        if _SWAP and order > 3:
            a.byteswap()
        return a.tobytes()
    bits = 1 << order
    out = bytearray(entries * bits // 8)
    for i, v in enumerate(values):
        if v:
            out[(i * bits) >> 3] |= v << ((i * bits) & 7)
    return bytes(out)


def plan_refcount_layout(used_groups: set, start: int, cluster_bits: int, order: int) -> tuple[int, list]:
    """Place a new refcount table and blocks at cluster ``start`` and after.

    ``used_groups`` are the refcount-block indices that must exist for the counts outside the new
    structures. Returns ``(table_clusters, groups)``: the table takes ``table_clusters`` clusters
    from ``start``, then one block per group of ``groups`` (sorted) follows. The blocks and table
    lie inside groups that get a block, so they can count themselves (self-describing blocks).
    """
    shift = cluster_bits + 3 - order
    per_table_cluster = 1 << (cluster_bits - 3)
    tclusters, nblocks = 1, 0
    while True:
        end = start + tclusters + nblocks
        groups = set(used_groups) | set(range(start >> shift, ((end - 1) >> shift) + 1))
        need_t = -(-(max(groups) + 1) // per_table_cluster)
        if len(groups) <= nblocks and need_t <= tclusters:
            return tclusters, sorted(groups)
        nblocks, tclusters = max(nblocks, len(groups)), max(tclusters, need_t)


# --- the report ------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What ``check_image`` found, with counts named as in ``qemu-img check --output=json``."""

    filename: str
    corruptions: int = 0
    leaks: int = 0
    check_errors: int = 0
    image_end_offset: int = 0
    total_clusters: int = 0
    allocated_clusters: int = 0
    compressed_clusters: int = 0
    dirty: bool = False
    #: one line per finding (capped at MAX_MESSAGES)
    messages: list = field(default_factory=list)
    #: (message, where) of problems beyond refcounts and COPIED flags: a rebuild refuses these
    problems: list = field(default_factory=list)
    #: clusters whose stored refcount differs from the references (refcount repair needed)
    refcount_mismatches: int = 0
    #: L1/L2 entries whose COPIED flag is wrong
    copied_errors: int = 0

    @property
    def clean(self) -> bool:
        """No corruption, no leak, no check error."""
        return not (self.corruptions or self.leaks or self.check_errors)

    def as_dict(self) -> dict:
        """The counts under the keys ``qemu-img check --output=json`` uses."""
        return {"filename": self.filename, "format": "qcow2", "corruptions": self.corruptions,
                "leaks": self.leaks, "check-errors": self.check_errors,
                "image-end-offset": self.image_end_offset, "total-clusters": self.total_clusters,
                "allocated-clusters": self.allocated_clusters, "compressed-clusters": self.compressed_clusters}

    def summary(self) -> str:
        """One line: counts and the first problem."""
        s = f"{self.filename}: {self.corruptions} corruptions, {self.leaks} leaked clusters"
        if self.problems:
            msg, where = self.problems[0]
            s += f"; first: {where}: {msg}"
        return s


# --- scanning --------------------------------------------------------------------------------------


class _Scanner:
    """Counts references of one open image (read-only; ``Qcow2Image`` with its header parsed)."""

    def __init__(self, img):
        self.img = img
        self.fd = img.fd
        h = self.h = img.header
        self.cb, self.cs = img.cluster_bits, img.cluster_size
        self.order = h.refcount_order
        self.max_count = (1 << (1 << self.order)) - 1
        self.rb_entries = C.refcount_geometry(self.cb, self.order)
        self.rb_shift = self.rb_entries.bit_length() - 1
        self.file_size = os.fstat(self.fd).st_size
        self.file_clusters = -(-self.file_size // self.cs)
        n = self.file_clusters + 1  # a range may end less than a cluster past the end of the file
        if n > MAX_CHECK_CLUSTERS:
            raise OperationFailedError(f"the image file has {n} clusters; checking more than "
                                       f"{MAX_CHECK_CLUSTERS} is refused (memory)", where=f"qcow2 {img.path}")
        tc = count_typecode(self.order)
        self.counts = array(tc, bytes(array(tc).itemsize * n))
        self.kind = bytearray(n)
        self.tree_seen = bytearray(n)  # L2 tables / data clusters seen in the tree being walked
        self.tree = 0
        self.data_file = bool(h.incompatible_features & C.QCOW2_INCOMPAT_DATA_FILE)
        self.extended = img.extended_l2
        self.step = 2 if self.extended else 1
        self.report = CheckReport(img.path, dirty=bool(h.incompatible_features & C.QCOW2_INCOMPAT_DIRTY),
                                  total_clusters=-(-h.size // self.cs))
        #: clusters of the old refcount table and blocks that were counted (a rebuild drops them)
        self.old_refcount_clusters: list = []
        #: L2 tables holding compressed entries with COPIED (any tree): the repair clears the bit
        self.compressed_copied: set = set()
        self.refblock_errors = 0
        self.table = array("Q")
        self.valid_blocks: dict = {}  # refcount table index -> block offset, for readable entries
        self._decoded: dict = {}

    # --- findings ---

    def say(self, line: str) -> None:
        if len(self.report.messages) < MAX_MESSAGES:
            self.report.messages.append(line)

    def problem(self, msg: str, where: str) -> None:
        """Something wrong beyond refcounts (counted as a corruption, refused by the repair)."""
        self.report.corruptions += 1
        self.report.problems.append((msg, where))
        self.say(f"ERROR {where}: {msg}")

    # --- reading ---

    def read(self, off: int, n: int) -> bytes:
        data = os.pread(self.fd, n, off)
        return data + bytes(n - len(data))  # past the end of the file reads as zeros

    def words(self, off: int, count: int) -> array:
        a = array("Q", self.read(off, count * 8))
        if _SWAP:
            a.byteswap()
        return a

    # --- counting ---

    def ref(self, off: int, size: int, kind: int, where: str) -> bool:
        """Count one reference to every cluster of [off, off+size); False if it lies past EOF."""
        if size <= 0:
            return True
        if off + size - self.file_size >= self.cs:
            self.problem(f"[0x{off:x}, 0x{off + size:x}) lies past the end of the file ({self.file_size} bytes)", where)
            return False
        counts, kinds, seen = self.counts, self.kind, self.tree_seen
        for c in range(off >> self.cb, ((off + size - 1) >> self.cb) + 1):
            prev = kinds[c]
            if prev == K_FREE:
                kinds[c] = kind
            elif prev != kind or kind not in (K_L2, K_DATA, K_COMPRESSED):
                self.problem(f"cluster 0x{c << self.cb:x} is used as {KIND_NAMES[kind]} and as {KIND_NAMES[prev]}",
                             where)
                continue
            if kind in (K_L2, K_DATA):
                if seen[c]:
                    self.problem(f"{KIND_NAMES[kind]} at 0x{c << self.cb:x} is referenced twice in one L1 tree", where)
                    continue
                seen[c] = 1
            if counts[c] >= self.max_count:
                self.problem(f"cluster 0x{c << self.cb:x} has more references than {1 << self.order}-bit "
                             f"refcounts can hold", where)
                continue
            counts[c] += 1
        return True

    def run(self) -> CheckReport:
        """Count everything, compare with the stored refcounts, check COPIED (no writes)."""
        img, h, cs = self.img, self.h, self.cs
        self.ref(0, cs, K_HEADER, "qcow2 header cluster")
        self.walk_l1(h.l1_table_offset, h.l1_size, "qcow2 L1 table", active=True)
        if self.data_file and img.snapshots:
            self.problem(f"{len(img.snapshots)} internal snapshots in an image with an external data file",
                         "qcow2 header @0x3c (nb_snapshots)")
        for s in img.snapshots:
            self.tree += 1
            self.walk_l1(s.l1_table_offset, s.l1_size, f"qcow2 snapshot {s.id!r} L1 table", active=False)
        for start, length, name in img._meta:
            if name == "snapshot table":  # its size as measured when the entries were read at open
                self.ref(start, length, K_SNAPTABLE, f"qcow2 snapshot table @0x{start:x}")
        self.ref(h.refcount_table_offset, h.refcount_table_clusters * cs, K_REFTABLE,
                 f"qcow2 refcount table @0x{h.refcount_table_offset:x}")
        first = h.refcount_table_offset >> self.cb
        self.old_refcount_clusters.extend(range(first, first + h.refcount_table_clusters))
        crypt = h.extension(C.QCOW2_EXT_MAGIC_CRYPTO_HEADER)
        if crypt is not None and len(crypt) >= 16:
            e = C.Qcow2CryptoHeaderExtension.parse(crypt[:16])
            self.ref(e.offset, e.length, K_BITMAP, "qcow2 encryption header")
        self.bitmaps()
        self.refblocks()
        self.compare()
        self.check_copied()
        return self.report

    def walk_l1(self, l1_off: int, l1_size: int, where: str, active: bool) -> None:
        if not l1_size:
            return
        where = f"{where} @0x{l1_off:x}"
        self.tree_seen[:] = bytes(len(self.tree_seen))
        if not self.ref(l1_off, l1_size * 8, K_L1, where):
            return
        for i, e in enumerate(self.words(l1_off, l1_size)):
            if not e:
                continue
            w = f"{where} entry {i}"
            if e & C.L1E_RESERVED_MASK:
                self.problem(f"L1 entry 0x{e:016x} has reserved bits set", w)
            # a non-zero entry names an L2 table even when its offset is 0 (flags alone): qemu-img
            # check then counts cluster 0 (the header) as that table and reads it as one, so
            # the image is corrupt to qemu although its reader sees the range unallocated
            l2 = e & C.L1E_OFFSET_MASK
            if l2 & (self.cs - 1):
                self.problem(f"L2 table offset 0x{l2:x} is not cluster-aligned", w)
                continue
            if self.ref(l2, self.cs, K_L2, w):
                self.walk_l2(l2, f"qcow2 L2 table @0x{l2:x}", active)

    def walk_l2(self, l2: int, where: str, active: bool) -> None:
        t, step, cs, rep = self.words(l2, self.cs // 8), self.step, self.cs, self.report
        for idx in range(len(t) // step):
            e = t[idx * step]
            bm = t[idx * step + 1] if step == 2 else 0
            if not (e or bm):
                continue
            w = f"{where} entry {idx}"
            if e & C.QCOW_OFLAG_COMPRESSED:
                if e & C.QCOW_OFLAG_COPIED:
                    rep.corruptions += 1
                    rep.copied_errors += 1
                    self.compressed_copied.add(l2)
                    self.say(f"ERROR {w}: COPIED is set on a compressed cluster")
                if self.data_file:
                    self.problem("compressed cluster in an image with an external data file", w)
                    continue
                if bm:
                    self.problem(f"compressed cluster with a non-zero subcluster bitmap 0x{bm:016x}", w)
                    continue
                off, n = C.decode_compressed(e, self.cb)
                self.ref(off, n, K_COMPRESSED, w)
                if active:
                    rep.allocated_clusters += 1
                    rep.compressed_clusters += 1
                continue
            if e & C.L2E_STD_RESERVED_MASK:
                self.problem(f"L2 entry 0x{e:016x} has reserved bits set", w)
            off = e & C.L2E_OFFSET_MASK
            if not off and not (self.data_file and e & C.QCOW_OFLAG_COPIED):
                if bm & C.QCOW_L2_BITMAP_ALL_ALLOC:
                    self.problem(f"unallocated cluster with subclusters marked allocated (bitmap 0x{bm:016x})", w)
                continue
            if (bm >> 32) & bm:
                self.problem(f"subcluster bitmap 0x{bm:016x} marks subclusters both allocated and zero", w)
            if off & (cs - 1):
                self.problem(f"data cluster offset 0x{off:x} is not cluster-aligned", w)
                continue
            if active:
                rep.allocated_clusters += 1
            if not self.data_file:
                self.ref(off, cs, K_DATA, w)

    def bitmaps(self) -> None:
        """Persistent bitmaps count only while their autoclear bit says they are consistent (qemu)."""
        h = self.h
        raw = h.extension(C.QCOW2_EXT_MAGIC_BITMAPS)
        if raw is None or len(raw) < 24 or not h.autoclear_features & C.QCOW2_AUTOCLEAR_BITMAPS:
            return
        ext = C.Qcow2BitmapHeaderExt.parse(raw[:24])
        where = f"qcow2 bitmap directory @0x{ext.bitmap_directory_offset:x}"
        if ext.bitmap_directory_size > 64 * 1024 * 1024 or ext.bitmap_directory_offset & (self.cs - 1):
            self.problem(f"bitmap directory of {ext.bitmap_directory_size} bytes is absurd or unaligned", where)
            return
        if not self.ref(ext.bitmap_directory_offset, ext.bitmap_directory_size, K_BITMAP, where):
            return
        directory = self.read(ext.bitmap_directory_offset, ext.bitmap_directory_size)
        try:
            entries = decode_bitmap_directory(directory, ext.nb_bitmaps, ext.bitmap_directory_offset)
        except CorruptImageError as err:
            self.problem(str(err), where)
            return
        for table_off, table_size, name, _flags, _g in entries:
            w = f"qcow2 bitmap {name!r} table @0x{table_off:x}"
            if table_off & (self.cs - 1) or table_size * 8 > C.QCOW_MAX_L1_SIZE:
                self.problem("bitmap table is unaligned or absurdly large", w)
                continue
            if not self.ref(table_off, table_size * 8, K_BITMAP, w):
                continue
            for i, e in enumerate(self.words(table_off, table_size)):
                off = e & C.BME_TABLE_ENTRY_OFFSET_MASK
                if off:
                    if off & (self.cs - 1):
                        self.problem(f"bitmap data offset 0x{off:x} is not cluster-aligned", f"{w} entry {i}")
                    else:
                        self.ref(off, self.cs, K_BITMAP, f"{w} entry {i}")

    # --- the stored refcounts ---

    def refblocks(self) -> None:
        """Count the refcount blocks; remember which table entries can be read."""
        h = self.h
        self.table = self.words(h.refcount_table_offset, h.refcount_table_clusters * self.cs // 8)
        for i, e in enumerate(self.table):
            off = e & C.REFT_OFFSET_MASK
            w = f"qcow2 refcount table entry {i} -> refcount block @0x{off:x}"
            if e & 0x1FF or off & (self.cs - 1):
                self.refblock_errors += 1
                self.report.corruptions += 1
                self.say(f"ERROR {w}: reserved bits set or block not cluster-aligned")
                continue
            if not off:
                continue
            if off >> self.cb >= self.file_clusters:
                self.refblock_errors += 1
                self.report.corruptions += 1
                self.say(f"ERROR {w}: refcount block lies outside the image")
                continue
            self.ref(off, self.cs, K_REFBLOCK, w)
            self.old_refcount_clusters.append(off >> self.cb)
            self.valid_blocks[i] = off

    def stored_block(self, g: int) -> array | None:
        """Decoded refcount block ``g`` as stored, or None where there is none (all zero)."""
        off = self.valid_blocks.get(g)
        return None if off is None else decode_refblock(self.read(off, self.cs), self.order)

    def stored(self, c: int) -> int:
        """Stored refcount of cluster ``c`` (decoded blocks kept in a small cache)."""
        g = c >> self.rb_shift
        if g not in self._decoded:
            if len(self._decoded) >= 64:
                self._decoded.clear()
            self._decoded[g] = self.stored_block(g)
        b = self._decoded[g]
        return 0 if b is None else b[c & (self.rb_entries - 1)]

    def compare(self) -> None:
        """Stored refcounts against references, cluster by cluster (qemu ``compare_refcounts``)."""
        rep, counts, E = self.report, self.counts, self.rb_entries
        nb = len(counts)
        while nb > self.file_clusters and not counts[nb - 1]:
            nb -= 1
        highest = -1
        for g in range(-(-nb // E)):
            lo, hi = g * E, min(nb, (g + 1) * E)
            want = counts[lo:hi]
            have = self.stored_block(g)
            have = have[: hi - lo] if have is not None else array(want.typecode, bytes(want.itemsize * (hi - lo)))
            if have != want:
                for i in range(hi - lo):
                    a, b = have[i], want[i]
                    if a != b:
                        rep.refcount_mismatches += 1
                        if a < b:
                            rep.corruptions += 1
                            self.say(f"ERROR cluster {lo + i} (0x{(lo + i) << self.cb:x}): refcount {a} < {b} references")
                        else:
                            rep.leaks += 1
                            self.say(f"Leaked cluster {lo + i} (0x{(lo + i) << self.cb:x}): refcount {a} > {b} references")
            for i in range(hi - lo - 1, -1, -1):
                if have[i] or want[i]:
                    highest = lo + i
                    break
        rep.image_end_offset = (highest + 1) << self.cb

    def check_copied(self) -> None:
        """COPIED in the active tables must be set exactly where the stored refcount is 1."""
        h, rep = self.h, self.report
        if not h.l1_size:
            return
        for i, e in enumerate(self.words(h.l1_table_offset, h.l1_size)):
            l2 = e & C.L1E_OFFSET_MASK
            if not l2 or l2 & (self.cs - 1) or l2 >> self.cb >= self.file_clusters:
                continue
            rc = self.stored(l2 >> self.cb)
            if (rc == 1) != bool(e & C.QCOW_OFLAG_COPIED):
                rep.corruptions += 1
                rep.copied_errors += 1
                self.say(f"ERROR qcow2 L1 table entry {i}: COPIED is {'set' if rc != 1 else 'clear'} but the "
                         f"L2 table at 0x{l2:x} has refcount {rc}")
            for _idx, e2, off in self.data_entries(l2):
                rc = 1 if self.data_file else self.stored(off >> self.cb)
                if (rc == 1) != bool(e2 & C.QCOW_OFLAG_COPIED):
                    rep.corruptions += 1
                    rep.copied_errors += 1
                    self.say(f"ERROR qcow2 L2 table @0x{l2:x}: entry 0x{e2:016x} has COPIED "
                             f"{'set' if rc != 1 else 'clear'}, refcount {rc}")

    def data_entries(self, l2: int):
        """(index, entry, host offset) of the normal and preallocated-zero entries of an L2 table."""
        t, step = self.words(l2, self.cs // 8), self.step
        for idx in range(len(t) // step):
            e = t[idx * step]
            if e & C.QCOW_OFLAG_COMPRESSED:
                continue
            off = e & C.L2E_OFFSET_MASK
            if off or (self.data_file and e & C.QCOW_OFLAG_COPIED):
                yield idx, e, off


def check_image(img) -> CheckReport:
    """Check an opened (read-only) ``Qcow2Image``'s refcounts and COPIED flags, like ``qemu-img check``.

    ``nuwa.formats.qcow2.check_qcow2(path)`` opens the file and calls this.
    """
    return _Scanner(img).run()


def check_before_write(img) -> CheckReport:
    """Refuse to write an image whose allocator metadata is wrong (``CorruptImageError``, exit 3).

    The writer allocates clusters whose stored refcount is 0 and writes in place where COPIED
    says the refcount is 1: a refcount below its references, a cluster used as two things
    (an L2 entry pointing into an L2 table, the refcount table, the header...) or a wrong COPIED
    flag would make it overwrite data still in use. So before the first write of a clean
    image the whole check runs (a dirty image gets :func:`repair_dirty` instead). Leaked
    clusters are accepted: they only waste space, and qemu writes such images too. The
    message names the first finding's structure and offset.
    """
    rep = check_image(img)
    if not (rep.corruptions or rep.check_errors):
        return rep
    if rep.problems:
        msg, where = rep.problems[0]
    else:
        first = next((m for m in rep.messages if m.startswith("ERROR")), "inconsistent metadata")
        msg, where = first.removeprefix("ERROR "), "qcow2 refcounts"
    raise CorruptImageError(f"{msg}; refusing to write ({rep.corruptions} corruptions found, as qemu-img check "
                            "reports them; repair a copy with qemu-img check -r all)", where=where)


# --- repairing ---------------------------------------------------------------------------------------


def _pwrite(fd: int, off: int, data) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, off)
        view, off = view[done:], off + done


def repair_dirty(img) -> CheckReport:
    """Rebuild the refcounts of a dirty image opened writable, then clear its dirty bit.

    Called by the writer before anything else is written (FORMAT-NOTES B1.2). Returns the report
    of the check that preceded the repair. Refuses, with nothing written, when the metadata is
    inconsistent beyond refcounts and COPIED flags.
    """
    sc = _Scanner(img)
    rep = sc.run()
    if rep.problems:
        msg, where = rep.problems[0]
        more = f" (and {len(rep.problems) - 1} more problems)" if len(rep.problems) > 1 else ""
        raise CorruptImageError(f"dirty image cannot be repaired: {msg}{more}", where=where)
    counts = sc.counts
    if rep.refcount_mismatches or sc.refblock_errors:
        for c in sc.old_refcount_clusters:
            counts[c] -= 1  # the new structures replace them: unreferenced once the header switches
        _rebuild(img, sc, counts)
    _fix_copied(img, sc, counts)
    h = img.header
    h.incompatible_features &= ~C.QCOW2_INCOMPAT_DIRTY
    _pwrite(img.fd, C.OFF_INCOMPATIBLE_FEATURES, struct.pack(">Q", h.incompatible_features))
    os.fsync(img.fd)
    return rep


def _rebuild(img, sc: _Scanner, counts: array) -> None:
    """Write new refcount structures past the end of the file and switch to them (B1.6)."""
    fd, cb, cs, order, E = img.fd, sc.cb, sc.cs, sc.order, sc.rb_entries
    highest = len(counts) - 1
    while highest >= 0 and not counts[highest]:
        highest -= 1
    start = max(sc.file_clusters, highest + 1)
    used = {g for g in range(-(-(highest + 1) // E))
            if counts[g * E : (g + 1) * E].count(0) != len(counts[g * E : (g + 1) * E])}
    tclusters, groups = plan_refcount_layout(used, start, cb, order)
    if tclusters * cs > C.QCOW_MAX_REFTABLE_SIZE:
        raise OperationFailedError("the rebuilt refcount table would exceed qemu's 8 MiB limit",
                                   where="qcow2 refcount table")
    end = start + tclusters + len(groups)
    need = (max(groups) + 1) * E
    if len(counts) < need:
        counts.extend(array(counts.typecode, bytes(counts.itemsize * (need - len(counts)))))
    for c in range(start, end):
        counts[c] = 1  # the new table and blocks, each referenced once
    table = array("Q", bytes(tclusters * cs))
    for k, g in enumerate(groups):
        off = (start + tclusters + k) << cb
        table[g] = off
        _pwrite(fd, off, encode_refblock(counts[g * E : (g + 1) * E], order, E))
    if _SWAP:
        table.byteswap()
    _pwrite(fd, start << cb, table.tobytes())
    os.fsync(fd)  # the new structures are complete before the header names them
    _pwrite(fd, C.OFF_REFCOUNT_TABLE_OFFSET, struct.pack(">QI", start << cb, tclusters))
    os.fsync(fd)
    h = img.header
    h.refcount_table_offset, h.refcount_table_clusters = start << cb, tclusters
    img._meta = [m for m in img._meta if m[2] != "refcount table"]
    img._meta.append((start << cb, tclusters * cs, "refcount table"))
    img.file_size = os.fstat(fd).st_size


def _fix_copied(img, sc: _Scanner, counts: array) -> None:
    """Set COPIED exactly where the refcount is 1 in the active tables; never on compressed."""
    fd, cb, cs, h, step = img.fd, sc.cb, sc.cs, img.header, sc.step
    l1 = sc.words(h.l1_table_offset, h.l1_size) if h.l1_size else array("Q")
    l1_changed = False
    tables = set(sc.compressed_copied)
    for i, e in enumerate(l1):
        l2 = e & C.L1E_OFFSET_MASK
        if not l2:
            continue
        want = counts[l2 >> cb] == 1
        if want != bool(e & C.QCOW_OFLAG_COPIED):
            l1[i] = e ^ C.QCOW_OFLAG_COPIED
            l1_changed = True
        tables.add(l2)
    active = {e & C.L1E_OFFSET_MASK for e in l1}
    for l2 in sorted(tables):
        t = sc.words(l2, cs // 8)
        changed = False
        for idx in range(len(t) // step):
            e = t[idx * step]
            if e & C.QCOW_OFLAG_COMPRESSED:
                new = e & ~C.QCOW_OFLAG_COPIED
            elif l2 in active and e & C.L2E_OFFSET_MASK:
                new = e | C.QCOW_OFLAG_COPIED if counts[(e & C.L2E_OFFSET_MASK) >> cb] == 1 else e & ~C.QCOW_OFLAG_COPIED
            else:
                continue
            if new != e:
                t[idx * step] = new
                changed = True
        if changed:
            if _SWAP:
                t.byteswap()
            _pwrite(fd, l2, t.tobytes())
    if l1_changed:
        img.l1 = array("Q", l1)
        if _SWAP:
            l1.byteswap()
        _pwrite(fd, h.l1_table_offset, l1.tobytes())
    os.fsync(fd)
    img._l2_cache.clear()
    img._zcache.clear()
    img.l1 = be_array(os.pread(fd, h.l1_size * 8, h.l1_table_offset)) if h.l1_size else array("Q")
