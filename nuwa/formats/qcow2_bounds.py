"""Which mapped clusters of a qcow2 image lie past the end of its file (a truncated image).

qemu reads a cluster past the end of the file as zeros without a word, so a truncated image
reads as a disk of zeros where its data used to be. ``qemu-img check`` calls such an image
corrupt: ``qcow2_inc_refcounts_imrt`` (block/qcow2-refcount.c) reports "counting reference
for region exceeding the end of the file by one cluster or more" for every referenced region
with ``offset + size - file_length >= cluster_size``. The last cluster may be short (a
compressed cluster ends mid-sector, a file may end mid-cluster): less than one cluster past
the end is allowed, as there.

Pure functions over the tables already in memory; :class:`nuwa.formats.qcow2.Qcow2Image`
applies them to the L1 table and the refcount table when it opens an image, and to each L2
table the first time it loads it, so every mapped cluster is checked before it is read.
"""

from __future__ import annotations

from array import array

from nuwa.formats import c_qcow2 as C


def past_end(offset: int, size: int, file_size: int, cluster_size: int) -> bool:
    """qemu's rule: does the region ``[offset, offset + size)`` end a cluster or more past EOF?"""
    return offset + size - file_size >= cluster_size


def first_table_past_end(table: array, mask: int, file_size: int, cluster_size: int) -> tuple[int, int] | None:
    """``(index, offset)`` of the first entry of an L1 or refcount table whose one-cluster
    table (L2 table, refcount block) lies past the end of the file, or None.

    ``mask`` extracts the offset (``L1E_OFFSET_MASK``, ``REFT_OFFSET_MASK``); 0 is unallocated.
    """
    for i, e in enumerate(table):
        off = e & mask
        if off and past_end(off, cluster_size, file_size, cluster_size):
            return i, off
    return None


def first_data_past_end(l2: array, cluster_bits: int, extended_l2: bool,
                        file_size: int) -> tuple[int, int, int] | None:
    """``(entry index, host offset, size)`` of the first data cluster of an L2 table that lies
    past the end of the file, or None.

    Standard clusters count as one cluster at their offset; a compressed cluster counts as its
    512-byte sectors (qemu ``qcow2_parse_compressed_l2_entry``). With extended L2 entries the
    table holds (descriptor, bitmap) pairs: only descriptors are looked at.
    """
    cs = 1 << cluster_bits
    step = 2 if extended_l2 else 1
    comp = C.QCOW_OFLAG_COMPRESSED
    mask = C.L2E_OFFSET_MASK
    # fast pass (a table is 8,192 entries): only entries that might be past the end are decoded
    suspects = [i for i in range(0, len(l2), step) if l2[i] & comp or (l2[i] & mask) >= file_size]
    for i in suspects:
        e = l2[i]
        if e & comp:
            host, n = C.decode_compressed(e, cluster_bits)
            start, size = host & ~511, n + (host & 511)
            if past_end(start, size, file_size, cs):
                return i // step, host, size
        else:
            host = e & mask
            if host and past_end(host, cs, file_size, cs):
                return i // step, host, cs
    return None


def run_past_end(host: int, n: int, file_size: int, cluster_size: int) -> bool:
    """Does a contiguous host run ``[host, host + n)`` hold a cluster that starts at or past EOF?"""
    last_cluster = (host + n - 1) & ~(cluster_size - 1)
    return last_cluster >= file_size
