"""systemd 252's ``hwdb.bin``: the string pool, the in-memory trie and the on-disk writer.

Layout (``src/libsystemd/sd-hwdb/hwdb-internal.h``), all little-endian, no alignment gaps:

- ``trie_header_f`` (80 bytes): ``signature`` ``KSLPHHRH``, ``tool_version`` (252),
  ``file_size``, ``header_size``, ``node_size``, ``child_entry_size``, ``value_entry_size``,
  ``nodes_root_off``, ``nodes_len``, ``strings_len``;
- ``trie_node_f`` (24): ``prefix_off``, ``children_count`` (u8, 7 bytes padding),
  ``values_count``; its ``trie_child_entry_f`` array (16 each: ``c``, 7 padding, ``child_off``)
  and ``trie_value_entry2_f`` array (32 each: ``key_off``, ``value_off``, ``filename_off``,
  ``line_number`` u32, ``file_priority`` u16, padding u16) follow it directly;
- the string pool after the last node: every offset above is ``strings_off + pool offset``.

The bytes depend on the *order* things were added, so this module follows the C code step by
step: ``StrBuf`` is ``src/basic/strbuf.c`` (a trie over reversed strings that returns the
offset of an earlier string whose tail equals the new one), ``Trie.insert`` is
``hwdb-util.c``'s ``trie_insert``/``trie_node_add_value`` (node splits add the parent's new
prefix to the pool; a new child adds the rest of the match string; a value adds key, value
and file name, in that order) and ``Trie.store`` is ``trie_store``/``trie_store_nodes``
(post-order: a node's children, in byte order, are written before it).
"""

from __future__ import annotations

import struct

# hwdb-internal.h: the structures, declared once here
HWDB_SIG = b"KSLPHHRH"
#: PROJECT_VERSION of the systemd whose writer this mirrors (systemd 252.x writes 252)
TOOL_VERSION = 252
HEADER = struct.Struct("<8s9Q")            # trie_header_f
NODE = struct.Struct("<QB7xQ")             # trie_node_f
CHILD = struct.Struct("<B7xQ")             # trie_child_entry_f
VALUE2 = struct.Struct("<QQQIH2x")         # trie_value_entry2_f
assert (HEADER.size, NODE.size, CHILD.size, VALUE2.size) == (80, 24, 16, 32)

# a strbuf node: [value_off, value_len, children {byte: node}]
_OFF, _LEN, _KIDS = 0, 1, 2
# a trie node: [prefix bytes, prefix_off, children {byte: node}, values {key: entry}]
_PREFIX, _POFF, _CHILDREN, _VALUES = 0, 1, 2, 3


class StrBuf:
    """``struct strbuf``: one buffer of NUL-terminated strings, equal strings and tails shared.

    ``add`` returns what ``strbuf_add_string`` returns. Its answer for a string it has seen
    before never changes (nodes are only ever added as new leaves, and no node's value
    changes), so exact repeats are answered from a dictionary: the same offsets, without
    walking the suffix trie again.
    """

    def __init__(self) -> None:
        self.buf = bytearray(b"\0")
        self.root: list = [0, 0, {}]
        #: every string added so far -> its offset (read directly by the trie's hot path)
        self.seen: dict[bytes, int] = {}

    def add(self, s: bytes) -> int:
        """``strbuf_add_string(str, s, len(s))``: the offset of ``s`` in the pool."""
        off = self.seen.get(s)
        if off is not None:
            return off
        n = len(s)
        if n == 0:
            return 0
        buf = self.buf
        node = self.root
        depth = 0
        while True:
            end = node[_OFF] + node[_LEN]
            # match against the current node: its string ends with s?
            if depth == n or (node[_LEN] >= n and buf[end - n:end] == s):
                off = end - n
                self.seen[s] = off
                return off
            c = s[n - 1 - depth]
            child = node[_KIDS].get(c)
            if child is None:
                break
            node = child
            depth += 1
        off = len(buf)
        buf += s
        buf.append(0)
        node[_KIDS][c] = [off, n, {}]
        self.seen[s] = off
        return off


class Trie:
    """hwdb-util.c's ``struct trie``: the match strings' radix trie with its string pool."""

    def __init__(self) -> None:
        self.strings = StrBuf()
        self.root: list = [b"", 0, {}, {}]

    def insert(self, search: bytes, key: bytes, value: bytes, filename: bytes, priority: int, line: int) -> None:
        """``trie_insert``: add property ``key``=``value`` (from ``filename`` line ``line``,
        file ``priority``) under the match string ``search``."""
        add = self.strings.add
        node = self.root
        n = len(search)
        i = 0
        while True:
            prefix = node[_PREFIX]
            if prefix:
                if search.startswith(prefix, i):
                    i += len(prefix)
                else:
                    # split the node where the prefix and the search string part
                    p = 0
                    m = min(len(prefix), n - i)
                    while p < m and prefix[p] == search[i + p]:
                        p += 1
                    moved = [prefix[p + 1:], node[_POFF] + p + 1, node[_CHILDREN], node[_VALUES]]
                    node[_PREFIX] = prefix[:p]
                    node[_POFF] = add(prefix[:p])
                    node[_CHILDREN] = {prefix[p]: moved}
                    node[_VALUES] = {}
                    i += p
            if i == n:
                self._add_value(node, key, value, filename, priority, line)
                return
            c = search[i]
            child = node[_CHILDREN].get(c)
            if child is None:
                rest = search[i + 1:]
                child = [rest, add(rest), {}, {}]
                node[_CHILDREN][c] = child
                self._add_value(child, key, value, filename, priority, line)
                return
            node = child
            i += 1

    def _add_value(self, node: list, key: bytes, value: bytes, filename: bytes, priority: int, line: int) -> None:
        """``trie_node_add_value``: pool the three strings; a key already on the node keeps its
        place and takes the new value (files are read in order: the later one wins)."""
        # most keys, values and file names repeat: the dictionary answers before a call
        seen, add = self.strings.seen, self.strings.add
        k = seen.get(key)
        if k is None:
            k = add(key)
        v = seen.get(value)
        if v is None:
            v = add(value)
        fn = seen.get(filename)
        if fn is None:
            fn = add(filename)
        node[_VALUES][key] = (k, v, fn, line, priority)

    def store(self) -> bytes:
        """``trie_store``: the whole ``hwdb.bin`` file."""
        # trie_store_nodes_size: where the string pool will start
        strings_off = HEADER.size
        stack = [self.root]
        while stack:
            node = stack.pop()
            strings_off += NODE.size + CHILD.size * len(node[_CHILDREN]) + VALUE2.size * len(node[_VALUES])
            stack.extend(node[_CHILDREN].values())
        out = bytearray(HEADER.size)
        root_off = self._store_nodes(out, strings_off)
        nodes_len = len(out) - HEADER.size
        assert len(out) == strings_off
        out += self.strings.buf
        out[:HEADER.size] = HEADER.pack(HWDB_SIG, TOOL_VERSION, len(out), HEADER.size, NODE.size, CHILD.size,
                                        VALUE2.size, root_off, nodes_len, len(self.strings.buf))
        return bytes(out)

    def _store_nodes(self, out: bytearray, base: int) -> int:
        """``trie_store_nodes`` without recursion: each node's children (in byte order) are
        written before the node, its child array and its value array (keys in strcmp order)."""
        # frames: [node, sorted (c, child) list, next index, [(c, child_off)...]]
        frames = [[self.root, sorted(self.root[_CHILDREN].items()), 0, []]]
        node_off = 0
        while frames:
            top = frames[-1]
            kids = top[1]
            if top[2] < len(kids):
                child = kids[top[2]][1]
                frames.append([child, sorted(child[_CHILDREN].items()), 0, []])
                continue
            node = top[0]
            values = node[_VALUES]
            node_off = len(out)
            out += NODE.pack(base + node[_POFF], len(kids), len(values))
            for c, off in top[3]:
                out += CHILD.pack(c, off)
            for key in sorted(values):
                k, v, fn, line, priority = values[key]
                out += VALUE2.pack(base + k, base + v, base + fn, line, priority)
            frames.pop()
            if frames:
                parent = frames[-1]
                parent[3].append((parent[1][parent[2]][0], node_off))
                parent[2] += 1
        return node_off
