"""GLib 2.74's ``GHashTable`` with ``g_str_hash`` keys, as far as its iteration order goes.

update-mime-database (shared-mime-info 2.2) writes several files in the order
``g_hash_table_foreach`` visits a table: ``subclasses``, ``icons``, ``generic-icons``, the
order of equal-weight lines of ``globs``/``globs2``, the string pool of ``mime.cache`` and the
order of same-character leaves of its suffix tree. To write the same bytes the model keeps
those tables exactly as GLib lays them out (glib/ghash.c, 2.74.6, Debian 12):

- a table of ``1 << shift`` buckets (shift at least 3), each holding a 32-bit hash, 0 for an
  unused bucket and 1 for a tombstone (real hashes 0 and 1 are stored as 2);
- the first bucket is ``(hash * 11) % prime_mod[shift]`` (the largest prime below the size);
  collisions probe quadratically: ``index += ++step``, masked to the size;
- after an insertion into an unused bucket the table grows when
  ``size <= noccupied + noccupied / 16``: the new shift is that of ``int(nnodes * 1.333)``,
  and the buckets are relocated *in place* in index order, an entry whose new home is taken
  by an entry not yet relocated evicting it (``resize_map``);
- an insertion of a key already present keeps the old key and its bucket;
- ``foreach`` visits the buckets in index order.

The update program never removes entries, so tombstones never appear; they are still
honoured by the lookup so that the structure stays the one GLib has.
"""

from __future__ import annotations

from typing import Any, Iterator

_PRIME_MOD = (1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749,
              65521, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213,
              33554393, 67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647)
_MIN_SHIFT = 3
_UNUSED, _TOMBSTONE = 0, 1
_MASK32 = 0xFFFFFFFF


def str_hash(key: bytes) -> int:
    """``g_str_hash``: djb2 over the bytes taken as *signed* chars, 32 bits."""
    h = 5381
    for c in key:
        if c >= 0x80:
            c -= 0x100
        h = (h * 33 + c) & _MASK32
    return h


def _closest_shift(n: int) -> int:
    i = 0
    while n:
        n >>= 1
        i += 1
    return i


class GStrHashTable:
    """A ``g_hash_table_new(g_str_hash, g_str_equal)`` keyed by bytes, values any object."""

    def __init__(self) -> None:
        self._set_shift(_MIN_SHIFT)
        self.hashes = [_UNUSED] * self.size
        self.keys: list[Any] = [None] * self.size
        self.values: list[Any] = [None] * self.size
        self.nnodes = 0
        self.noccupied = 0

    def _set_shift(self, shift: int) -> None:
        self.size = 1 << shift
        self.mod = _PRIME_MOD[shift]
        self.mask = self.size - 1

    def _lookup_node(self, key: bytes) -> tuple[int, int]:
        """``g_hash_table_lookup_node``: (bucket of key or where it would go, its hash)."""
        h = str_hash(key)
        if h < 2:
            h = 2
        index = (h * 11 & _MASK32) % self.mod
        node_hash = self.hashes[index]
        step = 0
        first_tombstone = None
        while node_hash != _UNUSED:
            if node_hash == h and self.keys[index] == key:
                return index, h
            if node_hash == _TOMBSTONE and first_tombstone is None:
                first_tombstone = index
            step += 1
            index = (index + step) & self.mask
            node_hash = self.hashes[index]
        return (first_tombstone if first_tombstone is not None else index), h

    def __contains__(self, key: bytes) -> bool:
        index, _ = self._lookup_node(key)
        return self.hashes[index] >= 2

    def get(self, key: bytes, default: Any = None) -> Any:
        """``g_hash_table_lookup`` (``default`` where GLib would return NULL)."""
        index, _ = self._lookup_node(key)
        return self.values[index] if self.hashes[index] >= 2 else default

    def insert(self, key: bytes, value: Any) -> None:
        """``g_hash_table_insert``: a present key keeps its bucket (and old key), gets the value."""
        index, h = self._lookup_node(key)
        old = self.hashes[index]
        if old >= 2:
            self.values[index] = value
            return
        self.hashes[index] = h
        self.keys[index] = key
        self.values[index] = value
        self.nnodes += 1
        if old == _UNUSED:
            self.noccupied += 1
            self._maybe_resize()

    def _maybe_resize(self) -> None:
        if ((self.size > self.nnodes * 4 and self.size > 1 << _MIN_SHIFT)
                or self.size <= self.noccupied + self.noccupied // 16):
            self._resize()

    def _resize(self) -> None:
        """``g_hash_table_resize`` with ``resize_map``'s in-place relocation."""
        old_size = self.size
        self._set_shift(max(_closest_shift(int(self.nnodes * 1.333)), _MIN_SHIFT))
        if self.size > old_size:
            grow = self.size - old_size
            self.hashes += [_UNUSED] * grow
            self.keys += [None] * grow
            self.values += [None] * grow
        moved = [False] * max(self.size, old_size)
        hashes, keys, values = self.hashes, self.keys, self.values
        for i in range(old_size):
            node_hash = hashes[i]
            if node_hash < 2:
                hashes[i] = _UNUSED
                continue
            if moved[i]:
                continue
            hashes[i] = _UNUSED
            key, value = keys[i], values[i]
            keys[i] = values[i] = None
            while True:
                step = 0
                hv = (node_hash * 11 & _MASK32) % self.mod
                while moved[hv]:
                    step += 1
                    hv = (hv + step) & self.mask
                moved[hv] = True
                replaced = hashes[hv]
                hashes[hv] = node_hash
                if replaced < 2:
                    keys[hv], values[hv] = key, value
                    break
                node_hash = replaced
                keys[hv], key = key, keys[hv]
                values[hv], value = value, values[hv]
        if self.size < old_size:
            del hashes[self.size:], keys[self.size:], values[self.size:]
        self.noccupied = self.nnodes

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """``g_hash_table_foreach``'s order: (key, value) by bucket index."""
        for i in range(self.size):
            if self.hashes[i] >= 2:
                yield self.keys[i], self.values[i]

    def __len__(self) -> int:
        return self.nnodes
