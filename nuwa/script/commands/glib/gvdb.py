"""A GVDB file writer (gvdb ``gvdb-builder.c`` and ``gvdb-format.h`` as bundled by glib 2.74).

The layout, little-endian (``gvdb-format.h``):

- header, 24 bytes: ``signature`` "GVariant", ``version`` 0, ``options`` 0, ``root`` pointer;
- a hash table: ``n_bloom_words`` (with ``bloom_shift`` 5 in the top 5 bits; no bloom words are
  written), ``n_buckets``, the buckets (index of each bucket's first item), then one 24-byte
  ``gvdb_hash_item`` per item: ``hash_value``, ``parent``, ``key_start``, ``key_size`` (u16),
  ``type`` ('v' value, 'H' nested table, 'L' list of children, or 0), ``unused``, ``value``
  pointer;
- the item's key (its name relative to its parent) and its value follow the table, in
  the order ``file_builder_add_hash`` appends them: values aligned to 8 and stored as a
  serialised ``v``, child lists and tables aligned to 4, keys unaligned.

Byte identity with the real writer needs its iteration order: items are taken from the
table in ``g_hash_table_foreach`` order (:class:`~nuwa.script.commands.glib.ghash.GHashTable`)
and *prepended* to their bucket (``hash_table_insert``).
"""

from __future__ import annotations

import struct

from nuwa.script.commands._ghash import GHashTable, str_hash
from nuwa.script.commands.glib.gvariant import Variant, serialise

GVDB_SIGNATURE0 = 1918981703
GVDB_SIGNATURE1 = 1953390953
HEADER_SIZE = 24
HASH_ITEM_SIZE = 24


class Item:
    """``GvdbItem``: one key of a table, holding a value, a nested table or children."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.hash_value = str_hash(key)  # djb_hash is g_str_hash
        self.assigned_index = 0
        self.parent: Item | None = None
        self.children: list[Item] = []
        self.value: tuple[str, object] | None = None  # (GVariant type, value)
        self.table: GHashTable | None = None


def table_insert(table: GHashTable, key: str) -> Item:
    """``gvdb_hash_table_insert``: a new item under ``key`` (replacing one of the same key)."""
    item = Item(key)
    table.insert(key, item)
    return item


def insert_string(table: GHashTable, key: str, value: str) -> None:
    """``gvdb_hash_table_insert_string``."""
    table_insert(table, key).value = ("s", value)


def set_parent(item: Item, parent: Item) -> None:
    """``gvdb_item_set_parent``: children are kept sorted by ``strcmp`` of their full keys."""
    item.parent = parent
    kids = parent.children
    k = item.key.encode()
    pos = next((i for i, c in enumerate(kids) if c.key.encode() > k), len(kids))
    kids.insert(pos, item)


class _Builder:
    """``FileBuilder``: chunks at growing offsets, each a mutable bytearray."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytearray]] = []
        self.offset = HEADER_SIZE

    def allocate(self, alignment: int, size: int) -> tuple[bytearray | None, tuple[int, int]]:
        """``file_builder_allocate``: an empty request allocates nothing (pointer stays 0)."""
        if size == 0:
            return None, (0, 0)
        self.offset += (-self.offset) & (alignment - 1)
        data = bytearray(size)
        start = self.offset
        self.chunks.append((start, data))
        self.offset += size
        return data, (start, self.offset)

    def add_value(self, vtype: str, value) -> tuple[int, int]:
        """``file_builder_add_value``: the value boxed in a ``v``, aligned to 8."""
        raw = serialise("v", Variant(vtype, value))
        data, ptr = self.allocate(8, len(raw))
        if data is not None:
            data[:] = raw
        return ptr

    def add_string(self, s: str) -> tuple[int, int]:
        """``file_builder_add_string``: unaligned, no terminator; (start, size)."""
        raw = s.encode()
        start = self.offset
        self.chunks.append((start, bytearray(raw)))
        self.offset += len(raw)
        return start, len(raw)

    def add_hash(self, table: GHashTable) -> tuple[int, int]:
        """``file_builder_add_hash``: the table, then each item's key and value in order."""
        entries = table.items()
        n_buckets = len(entries)
        buckets: list[list[Item]] = [[] for _ in range(n_buckets)]
        for key, item in entries:
            buckets[str_hash(key) % n_buckets].insert(0, item)
        order = [item for b in buckets for item in b]
        for i, item in enumerate(order):
            item.assigned_index = i
        size = 8 + 4 * n_buckets + HASH_ITEM_SIZE * len(order)
        data, ptr = self.allocate(4, size)
        struct.pack_into("<II", data, 0, 5 << 27, n_buckets)
        first = 0
        for b, items in enumerate(buckets):
            struct.pack_into("<I", data, 8 + 4 * b, first)
            first += len(items)
        base = 8 + 4 * n_buckets
        for i, item in enumerate(order):
            parent = item.parent.assigned_index if item.parent is not None else 0xFFFFFFFF
            name = item.key[len(item.parent.key):] if item.parent is not None else item.key
            key_start, key_size = self.add_string(name)
            kind, vptr = 0, (0, 0)
            if item.value is not None:
                kind, vptr = ord("v"), self.add_value(*item.value)
            if item.children:
                kind = ord("L")
                offs, vptr = self.allocate(4, 4 * len(item.children))
                for j, child in enumerate(item.children):
                    struct.pack_into("<I", offs, 4 * j, child.assigned_index)
            if item.table is not None:
                kind, vptr = ord("H"), self.add_hash(item.table)
            struct.pack_into("<IIIHBBII", data, base + HASH_ITEM_SIZE * i, item.hash_value, parent,
                             key_start, key_size, kind, 0, *vptr)
        return ptr

    def serialise(self, root: tuple[int, int]) -> bytes:
        """``file_builder_serialise``: the header, then every chunk with zero padding."""
        out = bytearray(struct.pack("<IIIIII", GVDB_SIGNATURE0, GVDB_SIGNATURE1, 0, 0, *root))
        for start, data in self.chunks:
            out += b"\0" * (start - len(out))
            out += data
        return bytes(out)


def write_contents(table: GHashTable) -> bytes:
    """``gvdb_table_write_contents``'s bytes for a little-endian machine (no byteswap)."""
    fb = _Builder()
    root = fb.add_hash(table)
    return fb.serialise(root)
