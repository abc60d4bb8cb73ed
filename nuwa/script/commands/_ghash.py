"""GLib's ``GHashTable`` slot layout, to reproduce its iteration order (glib 2.74 ``ghash.c``).

Two models write files in the order ``g_hash_table_foreach`` visits a string-keyed table:
glib-compile-schemas (the GVDB writer chains items into buckets in that order, so the byte
layout of ``gschemas.compiled`` depends on where GHashTable put each key) and
update-mime-database (``subclasses``, ``icons``, ``generic-icons``, equal-weight glob lines,
``mime.cache``'s string pool and suffix-tree leaves). This module keeps the same
open-addressing table as ``ghash.c``: a table of ``1 << shift`` buckets (shift at least 3),
each with a 32-bit hash (0 unused, 1 a tombstone, real hashes 0 and 1 stored as 2); the first
probe ``(hash * 11) % prime_mod[shift]`` (``g_hash_table_hash_to_index``), quadratic probing by
the mask; tombstones left by removals; the grow/shrink rule of ``g_hash_table_maybe_resize``
(the new shift is that of ``int(nnodes * 1.333)``) and the in-place reshuffle of
``resize_map`` (eviction order matters: it decides which key lands in which slot); an
insertion of a present key keeps its bucket and old key. Keys are ``str`` (hashed as UTF-8)
or ``bytes``, as ``g_str_hash`` sees them.
"""

from __future__ import annotations

MIN_SHIFT = 3
UNUSED = 0
TOMBSTONE = 1

# ghash.c prime_mod: the first prime below each power of two
PRIME_MOD = (1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521,
             131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393,
             67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647)


def str_hash(key: str | bytes) -> int:
    """``g_str_hash``: djb2 over the (UTF-8) bytes read as *signed* chars, 32-bit."""
    h = 5381
    for b in key.encode() if isinstance(key, str) else key:
        h = (h * 33 + (b - 256 if b >= 128 else b)) & 0xFFFFFFFF
    return h


class GHashTable:
    """A string-keyed map whose :meth:`items` order is the order of ``g_hash_table_foreach``."""

    def __init__(self) -> None:
        self._set_shift(MIN_SHIFT)
        self.hashes = [UNUSED] * self.size
        self.keys: list = [None] * self.size
        self.values: list = [None] * self.size
        self.nnodes = 0
        self.noccupied = 0

    def _set_shift(self, shift: int) -> None:
        self.size = 1 << shift
        self.mod = PRIME_MOD[shift]
        self.mask = self.size - 1

    def _lookup_node(self, key: str | bytes) -> tuple[int, int]:
        """``g_hash_table_lookup_node``: the key's slot, or the slot an insert would use."""
        h = str_hash(key)
        if h < 2:  # !HASH_IS_REAL: 0 and 1 mean unused and tombstone
            h = 2
        index = (h * 11 & 0xFFFFFFFF) % self.mod
        node_hash = self.hashes[index]
        first_tombstone = None
        step = 0
        while node_hash != UNUSED:
            if node_hash == h and self.keys[index] == key:
                return index, h
            if node_hash == TOMBSTONE and first_tombstone is None:
                first_tombstone = index
            step += 1
            index = (index + step) & self.mask
            node_hash = self.hashes[index]
        return (first_tombstone if first_tombstone is not None else index), h

    def get(self, key: str | bytes, default=None):
        """``g_hash_table_lookup``."""
        index, _ = self._lookup_node(key)
        return self.values[index] if self.hashes[index] >= 2 else default

    def __contains__(self, key: str | bytes) -> bool:
        index, _ = self._lookup_node(key)
        return self.hashes[index] >= 2

    def __len__(self) -> int:
        return self.nnodes

    def insert(self, key: str | bytes, value) -> None:
        """``g_hash_table_insert``: an existing key keeps its slot (and key), gets the value."""
        index, h = self._lookup_node(key)
        old = self.hashes[index]
        if old >= 2:
            self.values[index] = value
            return
        self.hashes[index] = h
        self.keys[index] = key
        self.values[index] = value
        self.nnodes += 1
        if old == UNUSED:  # a tombstone reused does not count as newly occupied
            self.noccupied += 1
            self._maybe_resize()

    def remove(self, key: str | bytes) -> bool:
        """``g_hash_table_remove``: leave a tombstone, then maybe shrink."""
        index, _ = self._lookup_node(key)
        if self.hashes[index] < 2:
            return False
        self.hashes[index] = TOMBSTONE
        self.keys[index] = self.values[index] = None
        self.nnodes -= 1
        self._maybe_resize()
        return True

    def items(self) -> list:
        """(key, value) pairs in slot order, as ``g_hash_table_foreach`` visits them."""
        return [(self.keys[i], self.values[i]) for i in range(self.size) if self.hashes[i] >= 2]

    def _maybe_resize(self) -> None:
        size, occ = self.size, self.noccupied
        if (size > self.nnodes * 4 and size > 1 << MIN_SHIFT) or size <= occ + occ // 16:
            self._resize()

    def _resize(self) -> None:
        """``g_hash_table_resize`` with ``resize_map``'s in-place eviction walk."""
        old_size = self.size
        n = int(self.nnodes * 1.333)  # the C code converts the double back to gint
        shift = 0
        while n:
            shift += 1
            n >>= 1
        self._set_shift(max(shift, MIN_SHIFT))
        if self.size > old_size:
            grow = self.size - old_size
            self.hashes += [UNUSED] * grow
            self.keys += [None] * grow
            self.values += [None] * grow
        placed = [False] * max(self.size, old_size)
        for i in range(old_size):
            node_hash = self.hashes[i]
            if node_hash < 2:
                self.hashes[i] = UNUSED
                continue
            if placed[i]:
                continue
            self.hashes[i] = UNUSED
            key, value = self.keys[i], self.values[i]
            self.keys[i] = self.values[i] = None
            while True:
                pos = (node_hash * 11 & 0xFFFFFFFF) % self.mod
                step = 0
                while placed[pos]:
                    step += 1
                    pos = (pos + step) & self.mask
                placed[pos] = True
                replaced = self.hashes[pos]
                self.hashes[pos] = node_hash
                if replaced < 2:
                    self.keys[pos], self.values[pos] = key, value
                    break
                node_hash = replaced
                key, self.keys[pos] = self.keys[pos], key
                value, self.values[pos] = self.values[pos], value
        if self.size < old_size:
            del self.hashes[self.size:], self.keys[self.size:], self.values[self.size:]
        self.noccupied = self.nnodes
