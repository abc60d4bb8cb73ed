"""kmod's index file format (the ``modules.*.bin`` tries) and kmod's hash-table order.

Layout (kmod 30, ``libkmod/libkmod-index.c`` and the writer in ``tools/depmod.c``, which
kept module-init-tools' ``index.c``), all integers big-endian::

    u32 magic 0xB007F457, u32 version 0x00020001, u32 root-node offset
    node:  [prefix bytes NUL]            if offset & INDEX_NODE_PREFIX
           [u8 first, u8 last, u32 child_offset * (last - first + 1)]  if & INDEX_NODE_CHILDS
           [u32 count, (u32 priority, value bytes NUL) * count]       if & INDEX_NODE_VALUES

A node offset carries its flags in the top nibble; nodes are written post-order (children
before their parent), so the root is last. Keys and values are 7-bit ASCII.

depmod also iterates two of kmod's hash tables (``shared/hash.c``) when it writes
``modules.symbols`` and when it builds its module array: :func:`hash_order` gives that
iteration order (bucket by ``hash_superfast``, then ``strcmp`` order inside a bucket).
"""

from __future__ import annotations

import bisect
import fnmatch
import re
import struct

INDEX_MAGIC = 0xB007F457
INDEX_VERSION = (0x0002 << 16) | 0x0001
INDEX_CHILDMAX = 128
INDEX_NODE_PREFIX = 0x80000000
INDEX_NODE_VALUES = 0x40000000
INDEX_NODE_CHILDS = 0x20000000
INDEX_NODE_MASK = 0x0FFFFFFF

_U32 = struct.Struct(">I")


class IndexError_(ValueError):
    """A key or value the index format cannot hold, or a corrupt index file."""


class IndexBuilder:
    """The index depmod builds (``index_create``/``index_insert``/``index_write``).

    depmod inserts key by key into a path-compressed trie and writes it post-order. That trie
    depends only on the set of keys (a node where keys branch or one ends, its prefix the text
    they share up to there), so the model keeps each key's values as they arrive and builds
    the nodes at :meth:`write` from the sorted keys: the same file, without a node object per
    character range (a full module tree inserts ~9,000 keys)."""

    def __init__(self):
        self._values: dict[str, tuple[list[int], list[str]]] = {}

    def insert(self, key: str, value: str, priority: int) -> bool:
        """Add ``value`` under ``key`` (``index_add_value``: before the first value of equal
        or higher priority); returns True when ``key`` already held ``value`` (depmod's
        duplicate warning)."""
        if not key.isascii() or not value.isascii():
            bad = key if not key.isascii() else value
            raise IndexError_(f"Module index: bad character in {bad!r} - only 7-bit ASCII is supported")
        got = self._values.get(key)
        if got is None:
            self._values[key] = ([priority], [value])
            return False
        prios, values = got
        duplicate = value in values
        i = bisect.bisect_left(prios, priority)
        prios.insert(i, priority)
        values.insert(i, value)
        return duplicate

    def write(self) -> bytes:
        """The index file, byte for byte as depmod writes it."""
        out = bytearray(12)
        keys = sorted(self._values)  # code point order: ASCII, as the trie orders children
        bkeys = [k.encode("ascii") for k in keys]
        blocks = [_values_block(*self._values[k]) for k in keys]
        root = self._write_node(bkeys, blocks, 0, len(keys), 0, out) if keys else len(out)
        out[0:12] = struct.pack(">III", INDEX_MAGIC, INDEX_VERSION, root)
        return bytes(out)

    @staticmethod
    def _write_node(keys: list[bytes], blocks: list[bytes], lo: int, hi: int, depth: int, out: bytearray) -> int:
        """Write the node holding ``keys[lo:hi]`` (all sharing ``keys[lo][:depth]``) after its
        children; returns its offset with the flags. ``blocks[i]`` is key ``i``'s values as
        the file holds them. A child holding one key (a leaf: its prefix and its values) is
        written here, without a call of its own."""
        first = keys[lo]
        if depth == 0:
            end = 0  # the root's prefix is always empty (index_create)
        elif hi - lo == 1:
            end = len(first)
        else:
            last, end = keys[hi - 1], depth
            stop = min(len(first), len(last))
            while end < stop and first[end] == last[end]:
                end += 1
        has_values = len(first) == end  # the key equal to the prefix sorts first
        i = lo + 1 if has_values else lo
        child_offs = b""
        first_ch = last_ch = 0
        if i < hi:
            head = first[:end]
            offs: dict[int, int] = {}
            write_node = IndexBuilder._write_node
            while i < hi:
                code = keys[i][end]
                j = bisect.bisect_left(keys, head + bytes((code + 1,)), i + 1, hi)
                if j == i + 1:  # a leaf
                    off = len(out) | INDEX_NODE_VALUES
                    rest = keys[i][end + 1:]
                    if rest:
                        out += rest
                        out += b"\0"
                        off |= INDEX_NODE_PREFIX
                    out += blocks[i]
                    offs[code] = off
                else:
                    offs[code] = write_node(keys, blocks, i, j, end + 1, out)
                i = j
            first_ch, last_ch = min(offs), max(offs)
            table = [0] * (last_ch - first_ch + 1)  # 0 for a character no key continues with
            for code, off in offs.items():
                table[code - first_ch] = off
            child_offs = struct.pack(f">{len(table)}I", *table)
        offset = len(out)
        if end > depth:
            out += first[depth:end]
            out += b"\0"
            offset |= INDEX_NODE_PREFIX
        if child_offs:
            out += bytes((first_ch, last_ch))
            out += child_offs
            offset |= INDEX_NODE_CHILDS
        if has_values:
            out += blocks[lo]
            offset |= INDEX_NODE_VALUES
        return offset


def _values_block(prios: list[int], values: list[str]) -> bytes:
    """A node's values as the file holds them: the count, then each priority and value."""
    if len(values) == 1:
        return _TWO_U32.pack(1, prios[0]) + values[0].encode("ascii") + b"\0"
    return _U32.pack(len(values)) + b"".join(_U32.pack(p) + v.encode("ascii") + b"\0" for p, v in zip(prios, values))


_TWO_U32 = struct.Struct(">II")


class Index(dict):
    """A decoded index: key -> ``[(priority, value)]`` in the file's stored order, with what
    :func:`lookup_wild` needs worked out once (the keys that are patterns with their literal
    heads, and each key's position). Read-only once made: a changed index must be decoded
    again."""

    _patterns: list | None = None
    _positions: dict | None = None
    _by_head: dict | None = None

    def patterns(self) -> list[tuple[int, str, str]]:
        """``(position, key, head)`` of every key holding ``*?[``; ``head`` is the literal text
        before the first of them, which any name the key matches starts with."""
        if self._patterns is None:
            self._patterns = [(i, k, _HEAD.match(k).group()) for i, k in enumerate(self)
                              if "*" in k or "?" in k or "[" in k]
        return self._patterns

    def candidates(self, name: str) -> list[tuple[int, str, str]]:
        """The pattern keys that may match ``name``, in position order: those whose head is
        shorter than ``_HEAD_KEY`` characters, and those whose head starts as ``name`` does
        (modules.alias holds ~20,000 patterns, mostly under a few heads like ``pci:v0000``,
        and modprobe looks names up hundreds of times in an initramfs build)."""
        if self._by_head is None:
            by_head: dict[str, list] = {}
            for p in self.patterns():
                by_head.setdefault(p[2][:_HEAD_KEY] if len(p[2]) >= _HEAD_KEY else "", []).append(p)
            self._by_head = by_head
        short = self._by_head.get("", [])
        same = self._by_head.get(name[:_HEAD_KEY], []) if len(name) >= _HEAD_KEY else []
        return sorted(short + same) if short and same else short or same

    def position(self, key: str) -> int:
        if self._positions is None:
            self._positions = {k: i for i, k in enumerate(self)}
        return self._positions[key]


_HEAD = re.compile(r"[^*?\[]*")
#: how many leading characters of a pattern's head group it (Index.candidates)
_HEAD_KEY = 3


def read_index(data: bytes) -> Index:
    """Every key of an index file with its ``(priority, value)`` list, in stored order.

    Raises :class:`IndexError_` naming the offset and structure when the file is corrupt.
    """
    if len(data) < 12:
        raise IndexError_("index file shorter than its 12-byte header")
    magic, version, root = struct.unpack_from(">III", data, 0)
    if magic != INDEX_MAGIC:
        raise IndexError_(f"bad index magic {magic:#x} at offset 0 (expected {INDEX_MAGIC:#x})")
    if version >> 16 != INDEX_VERSION >> 16:
        raise IndexError_(f"unsupported index version {version:#x} at offset 4")
    result = Index()
    stack = [(root, "")]
    while stack:
        off, key = stack.pop()
        pos = off & INDEX_NODE_MASK
        try:
            if off & INDEX_NODE_PREFIX:
                end = data.index(b"\0", pos)
                key += data[pos:end].decode("ascii")
                pos = end + 1
            if off & INDEX_NODE_CHILDS:
                first, last = data[pos], data[pos + 1]
                n = last - first + 1
                offs = struct.unpack_from(f">{n}I", data, pos + 2)
                pos += 2 + 4 * n
                for k, child in enumerate(offs):
                    if child:
                        stack.append((child, key + chr(first + k)))
            if off & INDEX_NODE_VALUES:
                (count,) = _U32.unpack_from(data, pos)
                pos += 4
                vals = []
                for _ in range(count):
                    (prio,) = _U32.unpack_from(data, pos)
                    end = data.index(b"\0", pos + 4)
                    vals.append((prio, data[pos + 4:end].decode("ascii")))
                    pos = end + 1
                result[key] = vals
        except (ValueError, struct.error, IndexError, UnicodeDecodeError) as exc:
            raise IndexError_(f"corrupt index node at offset {pos}: {exc}") from None
    return result


def lookup_wild(index: dict[str, list[tuple[int, str]]], name: str) -> list[str]:
    """``index_searchwild``: values of every key that equals ``name`` or matches it as an
    fnmatch pattern (keys holding ``*?[``), lowest priority first (ties in the index's order).
    Only the pattern keys whose literal head starts ``name`` are tried (found through
    :meth:`Index.candidates`; fnmatch keeps each compiled pattern)."""
    if not isinstance(index, Index):
        index = Index(index)
    hits = [(pos, key) for pos, key, head in index.candidates(name)
            if key != name and name.startswith(head) and fnmatch.fnmatchcase(name, key)]
    if name in index:
        hits.append((index.position(name), name))
        hits.sort()
    found = [pv for _pos, key in hits for pv in index[key]]
    found.sort(key=lambda pv: pv[0])
    return [v for _, v in found]


def hash_superfast(key: bytes) -> int:
    """Paul Hsieh's SuperFastHash as kmod computes it (``shared/hash.c``; x86: signed char)."""
    n = len(key)
    h = n
    rem = n & 3
    m = 0xFFFFFFFF
    q = n >> 2
    if q:
        # the 16-bit halves of each 4-byte block, read at once (get16bits: little-endian);
        # h may pass 32 bits inside the loop: only its low 32 bits feed each step
        w = struct.unpack_from(f"<{2 * q}H", key)
        for k in range(0, 2 * q, 2):
            h += w[k]
            h = ((h << 16) ^ (w[k + 1] << 11) ^ h) & m
            h += h >> 11
        h &= m
    i = 4 * q
    if rem == 3:
        h = (h + (key[i] | key[i + 1] << 8)) & m
        h ^= (h << 16) & m
        c = key[i + 2] - 256 if key[i + 2] > 127 else key[i + 2]
        h ^= (c << 18) & m
        h = (h + (h >> 11)) & m
    elif rem == 2:
        h = (h + (key[i] | key[i + 1] << 8)) & m
        h ^= (h << 11) & m
        h = (h + (h >> 17)) & m
    elif rem == 1:
        c = key[i] - 256 if key[i] > 127 else key[i]
        h = (h + c) & m
        h ^= (h << 10) & m
        h = (h + (h >> 1)) & m
    h ^= (h << 3) & m
    h = (h + (h >> 5)) & m
    h ^= (h << 4) & m
    h = (h + (h >> 17)) & m
    h ^= (h << 25) & m
    h = (h + (h >> 6)) & m
    return h


def hash_order(keys, n_buckets: int) -> list[str]:
    """``keys`` in the order ``hash_iter_next`` visits a kmod hash of ``n_buckets`` buckets
    (rounded up to a power of two, as ``hash_new`` does)."""
    size = 1
    while size < n_buckets:
        size <<= 1
    mask = size - 1
    decorated = []
    for k in keys:
        b = k.encode("utf-8", "surrogateescape")
        decorated.append((hash_superfast(b) & mask, b, k))
    decorated.sort()
    return [k for _, _, k in decorated]
