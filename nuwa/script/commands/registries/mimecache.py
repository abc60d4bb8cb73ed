"""``mime.cache`` as update-mime-database (shared-mime-info 2.2) writes it: format 1.2.

The layout is the Shared MIME-info Database specification's "The mime.cache file" section;
the order of its parts follows the program's ``write_cache``: a 44-byte header (major 1,
minor 2, ten big-endian offsets), the string pool, then the alias, parent, literal-glob,
suffix-tree, full-glob, magic, namespace, icon, generic-icon and type lists. All numbers are
CARD32/CARD16 big-endian; strings are NUL-terminated and padded to 4 bytes.

Where the program's order is a GLib hash table's, the tables are
:mod:`nuwa.script.commands._ghash`'s emulation
(the string pool: every string collected from the other tables, in ``foreach`` order; the
suffix tree's leaves for one character, in the order the glob table is visited).
With ``-V`` the program reports each part's extent with ``g_message``; :func:`build`
returns those lines too.
"""

from __future__ import annotations

import struct

from nuwa.script.commands._ghash import GHashTable as GStrHashTable
from nuwa.script.commands.registries.mimedb_parse import Database, Magic, Match
from nuwa.script.context import Defer

MAJOR_VERSION, MINOR_VERSION = 1, 2
LITERAL, SIMPLE, FULL = 0, 1, 2


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _c32(n: int) -> bytes:
    return struct.pack(">I", n & 0xFFFFFFFF)


def glob_type(pattern: bytes) -> int:
    """``glob_type``: '*' first only -> SIMPLE; any of ``\\ [ ? *`` elsewhere -> FULL."""
    text = pattern.decode("utf-8", "surrogateescape")
    simple = False
    for i, c in enumerate(text):
        if c == "*" and i == 0:
            simple = True
        elif c in "\\[?*":
            return FULL
    return SIMPLE if simple else LITERAL


def _mimetype(t) -> bytes:
    return t.name


def _collect_strings(db: Database) -> GStrHashTable:
    """``collect_strings``: the pool's table, filled in the program's order."""
    strings = GStrHashTable()
    for alias, t in db.aliases.items():
        strings.insert(alias, None)
        strings.insert(_mimetype(t), None)
    for key, parents in db.subclasses.items():
        strings.insert(key, None)
        for p in parents:
            strings.insert(p, None)
    for pattern, globs in db.globs.items():
        if glob_type(pattern) != SIMPLE:
            strings.insert(pattern, None)
        for g in globs:
            strings.insert(_mimetype(g.type), None)
    for m in db.magic:
        strings.insert(_mimetype(m.type), None)
    for ns, t in db.namespaces.items():
        strings.insert(_mimetype(t), None)
        uri, _, local = ns.partition(b" ")
        strings.insert(uri, None)
        strings.insert(local, None)
    for table in (db.generic_icons, db.icons):
        for key, icon in table.items():
            strings.insert(key, None)
            strings.insert(icon, None)
    return strings


class _Out:
    """The file being built and its current offset."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def add(self, data: bytes) -> None:
        """Append bytes, advancing the offset."""
        self.parts.append(data)
        self.offset += len(data)


def _write_map(out: _Out, pool: dict, entries: list[tuple[bytes, list]], per: int) -> None:
    """``write_map``: keys sorted bytewise; each value a pool offset, or (every third of a
    weighted map) a weight-and-flags word."""
    entries.sort(key=lambda kv: kv[0])
    count = sum(len(v) // per for _, v in entries)
    out.add(_c32(count))
    for _, values in entries:
        for i, v in enumerate(values):
            out.add(_c32(v) if isinstance(v, int) else _c32(pool.get(v, 0)))


def _glob_values(globs) -> list:
    vals: list = []
    for g in globs:
        vals += [g.pattern, _mimetype(g.type), (g.weight & 0xFF) | (0x100 if g.case_sensitive else 0)]
    return vals


class _Suffix:
    __slots__ = ("character", "mimetype", "weight", "flags", "children")

    def __init__(self, character: int, mimetype: bytes | None = None, weight: int = 0, flags: int = 0):
        self.character, self.mimetype, self.weight, self.flags = character, mimetype, weight, flags
        self.children: list[_Suffix] = []


def _insert_suffix(suffix: list[int], mimetype: bytes, weight: int, flags: int, nodes: list[_Suffix]) -> None:
    """``insert_suffix``: one reversed suffix into the sorted tree; leaves (character 0)
    first under their node, a repeated type keeping its highest weight."""
    s = None
    for idx, node in enumerate(nodes):
        if node.character > suffix[0]:
            s = _Suffix(suffix[0])
            nodes.insert(idx, s)
            break
        if node.character == suffix[0]:
            s = node
            break
    if s is None:
        s = _Suffix(suffix[0])
        nodes.append(s)
    if len(suffix) == 1:
        pos = 0
        for pos, leaf in enumerate(s.children):
            if leaf.character != 0:
                break
            if leaf.mimetype == mimetype:
                leaf.weight = max(leaf.weight, weight)
                return
        else:
            pos = len(s.children)
        s.children.insert(pos, _Suffix(0, mimetype, weight, flags))
    else:
        _insert_suffix(suffix[1:], mimetype, weight, flags, s.children)


def _depth(node: _Suffix) -> int:
    return max((_depth(c) + 1 for c in node.children), default=0)


def _write_suffixes(out: _Out, pool: dict, db: Database) -> None:
    """``write_suffix_cache``: the reversed-suffix tree of the ``*.ext`` globs, breadth first."""
    roots: list[_Suffix] = []
    for pattern, globs in db.globs.items():
        if glob_type(pattern) != SIMPLE:
            continue
        text = pattern[1:].decode("utf-8", "surrogateescape")
        if not text:
            raise Defer("update-mime-database: the glob '*' (its suffix walk reads past the pattern's end)")
        suffix = [ord(c) for c in reversed(text)]
        for g in globs:
            _insert_suffix(suffix, _mimetype(g.type), g.weight, 0x100 if g.case_sensitive else 0, roots)
    start = out.offset + 8
    child_offset = [start + 12 * len(roots)]
    out.add(_c32(len(roots)) + _c32(start))
    depth = max((_depth(r) + 1 for r in roots), default=0)

    def entries(node: _Suffix, d: int) -> None:
        if d > 0:
            for c in node.children:
                entries(c, d - 1)
            return
        moff = pool.get(node.mimetype, 0) if node.mimetype else 0
        if node.character == 0:
            out.add(_c32(0) + _c32(moff) + _c32((node.weight & 0xFF) | node.flags))
        else:
            out.add(_c32(node.character) + _c32(len(node.children)) + _c32(child_offset[0]))
        child_offset[0] += 12 * len(node.children)

    for d in range(depth):
        for r in roots:
            entries(r, d)


def _collect_matches(lst: list[Match], into: list[Match]) -> None:
    into.extend(lst)
    for m in lst:
        _collect_matches(m.matches, into)


def _write_magic(out: _Out, pool: dict, magic: list[Magic]) -> None:
    """``write_magic_cache``: entries, then every matchlet (32 bytes), then their data."""
    matches: list[Match] = []
    for mg in magic:
        _collect_matches(mg.matches, matches)
    index = {id(m): i for i, m in reversed(list(enumerate(matches)))}
    max_extent = 0
    for m in matches:
        extent = len(m.data) + m.range_start + m.range_length
        max_extent = (max_extent if max_extent > extent else extent) & 0xFFFFFFFF
    out.add(_c32(len(magic)) + _c32(max_extent) + _c32(out.offset + 12))
    base = out.offset + 16 * len(magic)
    for mg in magic:
        out.add(_c32(mg.priority) + _c32(pool.get(_mimetype(mg.type), 0)) + _c32(len(mg.matches))
                + _c32(base + 32 * index[id(mg.matches[0])]))
    data_off = base + 32 * len(matches)
    for m in matches:
        n = len(m.data)
        rec = _c32(m.range_start) + _c32(m.range_length) + _c32(m.word_size) + _c32(n) + _c32(data_off)
        data_off = _align4(data_off + n)
        if m.mask is not None:
            rec += _c32(data_off)
            data_off = _align4(data_off + n)
        else:
            rec += _c32(0)
        if m.matches:
            rec += _c32(len(m.matches)) + _c32(base + 32 * index[id(m.matches[0])])
        else:
            rec += _c32(0) + _c32(0)
        out.add(rec)
    for m in matches:
        out.add(m.data + b"\0" * (_align4(len(m.data)) - len(m.data)))
        if m.mask is not None:
            out.add(m.mask + b"\0" * (_align4(len(m.mask)) - len(m.mask)))


def build(db: Database) -> tuple[bytes, list[str]]:
    """The bytes of ``mime.cache`` for ``db`` (whose magic list is already sorted), and the
    ``-V`` messages ``write_cache`` logs."""
    out = _Out()
    out.add(b"\0" * 44)
    strings = _collect_strings(db)
    pool: dict[bytes, int] = {}
    start = out.offset
    for s, _ in strings.items():
        pool[s] = out.offset
        out.add(s + b"\0" * (_align4(len(s) + 1) - len(s)))
    msgs = [f"Wrote {len(strings)} strings at {start:x} - {out.offset:x}"]
    offsets = []

    def part(label: str, fn) -> None:
        begin = out.offset
        offsets.append(begin)
        fn()
        msgs.append(f"Wrote {label} at {begin:x} - {out.offset:x}")

    def parents() -> None:
        keys = sorted(k for k, _ in db.subclasses.items())
        out.add(_c32(len(keys)))
        lists_at = out.offset + 8 * len(keys)
        for k in keys:
            out.add(_c32(pool.get(k, 0)) + _c32(lists_at))
            lists_at += 4 + 4 * len(db.subclasses.get(k))
        for k in keys:
            plist = db.subclasses.get(k)
            out.add(_c32(len(plist)) + b"".join(_c32(pool.get(p, 0)) for p in plist))

    part("aliases", lambda: _write_map(out, pool, [(k, [k, _mimetype(t)]) for k, t in db.aliases.items()], 2))
    part("parents", parents)
    part("literal globs", lambda: _write_map(
        out, pool, [(k, _glob_values(v)) for k, v in db.globs.items() if glob_type(k) == LITERAL], 3))
    part("suffix globs", lambda: _write_suffixes(out, pool, db))
    part("full globs", lambda: _write_map(
        out, pool, [(k, _glob_values(v)) for k, v in db.globs.items() if glob_type(k) == FULL], 3))
    part("magic", lambda: _write_magic(out, pool, db.magic))
    part("namespace list", lambda: _write_map(
        out, pool, [(k, [*k.split(b" ", 1), _mimetype(t)]) for k, t in db.namespaces.items()], 2))
    part("icons list", lambda: _write_map(out, pool, [(k, [k, v]) for k, v in db.icons.items()], 2))
    part("generic icons list", lambda: _write_map(out, pool, [(k, [k, v]) for k, v in db.generic_icons.items()], 2))

    def types() -> None:
        # the program looks up its "TYPE\n" lines (add_type's), which the pool does not
        # hold: every offset is 0 unless some string really ends in a newline
        lines = sorted(k + b"\n" for k, _ in db.types.items())
        out.add(_c32(len(lines)) + b"".join(_c32(pool.get(n, 0)) for n in lines))

    part("types list", types)
    header = struct.pack(">HH", MAJOR_VERSION, MINOR_VERSION) + b"".join(_c32(o) for o in offsets)
    data = b"".join(out.parts)
    return header + data[44:], msgs
