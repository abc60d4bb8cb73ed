"""A reference for the index writer's layout: the trie built node by node as kmod's
``index_insert`` does (``tools/depmod.c``), kept here so a property test can check that
:class:`nuwa.script.commands.kmod.kmod_index.IndexBuilder`, which builds the same trie from
the sorted keys at write time, writes the same bytes for any keys."""

from __future__ import annotations

import bisect
import struct

from nuwa.script.commands.kmod.kmod_index import (INDEX_MAGIC, INDEX_NODE_CHILDS, INDEX_NODE_PREFIX,
                                                  INDEX_NODE_VALUES, INDEX_VERSION)

_U32 = struct.Struct(">I")


class _Node:
    __slots__ = ("prefix", "children", "prios", "values")

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.children: dict[str, _Node] = {}
        self.prios: list[int] = []
        self.values: list[str] = []

    def add_value(self, value: str, priority: int) -> bool:
        """``index_add_value``: insert before the first value of equal or higher priority;
        returns whether the value was already there (depmod's duplicate warning)."""
        duplicate = value in self.values
        i = bisect.bisect_left(self.prios, priority)
        self.prios.insert(i, priority)
        self.values.insert(i, value)
        return duplicate


class TrieIndexBuilder:
    """depmod's own way: insert key by key into a path-compressed trie (splitting a node where
    a key leaves its prefix), write post-order."""

    def __init__(self):
        self.root = _Node()

    def insert(self, key: str, value: str, priority: int) -> bool:
        """Add ``value`` under ``key``; returns True when ``key`` already held ``value``."""
        for s in (key, value):
            if not s.isascii():
                raise ValueError(f"Module index: bad character in {s!r} - only 7-bit ASCII is supported")
        node, i = self.root, 0
        while True:
            prefix = node.prefix
            # make node.prefix a prefix of key[i:], splitting the node where they differ
            # (the common case, a full match, is one C-level comparison)
            n = len(prefix)
            j = n if key.startswith(prefix, i) else 0
            while j < n:
                if i + j >= len(key) or prefix[j] != key[i + j]:
                    child = _Node(prefix[j + 1:])
                    child.children, child.prios, child.values = node.children, node.prios, node.values
                    node.prefix = prefix[:j]
                    node.children, node.prios, node.values = {prefix[j]: child}, [], []
                    break
                j += 1
            i += j
            if i == len(key):
                return node.add_value(value, priority)
            ch = key[i]
            child = node.children.get(ch)
            if child is None:
                child = node.children[ch] = _Node(key[i + 1:])
                child.add_value(value, priority)
                return False
            node, i = child, i + 1

    def write(self) -> bytes:
        """The index file, byte for byte as depmod writes it."""
        out = bytearray(12)
        root = self._write_node(self.root, out)
        out[0:12] = struct.pack(">III", INDEX_MAGIC, INDEX_VERSION, root)
        return bytes(out)

    def _write_node(self, node: _Node, out: bytearray) -> int:
        child_offs = b""
        first = last = 0
        if node.children:
            codes = [ord(c) for c in node.children]
            first, last = min(codes), max(codes)
            offs = [0] * (last - first + 1)
            # children in character order: their offsets follow the file layout depmod makes
            for code in range(first, last + 1):
                child = node.children.get(chr(code))
                if child is not None:
                    offs[code - first] = self._write_node(child, out)
            child_offs = struct.pack(f">{len(offs)}I", *offs)
        offset = len(out)
        if node.prefix:
            out += node.prefix.encode("ascii") + b"\0"
            offset |= INDEX_NODE_PREFIX
        if node.children:
            out += bytes((first, last)) + child_offs
            offset |= INDEX_NODE_CHILDS
        if node.values:
            out += _U32.pack(len(node.values))
            for prio, value in zip(node.prios, node.values):
                out += _U32.pack(prio) + value.encode("ascii") + b"\0"
            offset |= INDEX_NODE_VALUES
        return offset
