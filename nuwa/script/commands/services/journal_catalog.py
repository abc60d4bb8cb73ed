"""The journal's message catalog (systemd 252): ``journalctl --update-catalog``.

systemd's postinst (and its file trigger on ``/usr/lib/systemd/catalog``) runs
``journalctl --update-catalog``, which compiles the text catalogs into the binary index
``/var/lib/systemd/catalog/database`` that ``journalctl -x`` and ``sd_journal_get_catalog``
read. This module is that compiler, mirroring ``src/libsystemd/sd-journal/catalog.c``
(``catalog_update``, ``catalog_import_file``, ``finish_item``, ``combine_entries``,
``write_catalog``), ``src/basic/strbuf.c`` (the deduplicating string table) and
``read_line_full`` of ``src/basic/fileio.c`` (its line splitting), all at v252.

What the real program does, and so the model:

- The sources are the ``*.catalog`` files of ``/usr/local/lib/systemd/catalog/`` and
  ``/usr/lib/systemd/catalog/`` (``catalog_file_dirs``; systemd 252 reads no ``/etc`` or
  ``/run`` directory), listed as ``conf_files_list_strv`` does: hidden names (a leading
  dot) skipped, one file per basename (the ``/usr/local`` one wins), sorted by basename
  (``strcmp``). Every entry is opened, whatever its type.
- A file is read line by line (``\\n``, ``\\r``, NUL and their pairs end a line; a line of
  1 MiB or more fails with ENOBUFS). Empty lines separate, lines starting with ``#`` or
  ``;`` are comments. After an empty line (or at the start), ``-- ID`` or ``-- ID LANG``
  (32 hex digits) starts an entry; the ID is cut out of the line in place, so a ``--``
  line whose ID is not one is payload, truncated to its first 35 characters. Other lines
  are payload (a line after an empty one is preceded by one newline). The language is the
  header's (2 to 31 characters after stripping blanks; a warning when it repeats or differs
  from the file name's) or the file name's (``NAME.LANG.catalog``), or none.
- Entries are keyed by (ID, language) in first-seen order. A repeated key combines the new
  text with the old (``combine_entries``: the new header lines, then the old header lines,
  then the new body, or the old body when the new one is empty).
- The database: a 40-byte header (``RHHHKSLP``, flags 0, header size 40, the item count,
  item size 56), the items sorted by ID bytes then language (``strcmp``), each the 16 ID
  bytes, the language NUL-padded to 32 bytes and the le64 offset of its text in the string
  table, then the string table (``strbuf``: a NUL first, each text NUL-terminated, a text
  that is the tail of one stored before reuses its bytes). It is written to a temporary file
  in ``/var/lib/systemd/catalog`` (parents made 0755 under the umask), made 0644 and renamed
  over the database, every time (the old one is never compared).
- No entries at all: "No items in catalog." on stderr, nothing written, status 0.
- A file that cannot be read or parsed stops the run (nothing written): its message, then
  "Failed to import file 'PATH': ERROR" and "Failed to list catalog: ERROR", status 1.

Deferred with the reason: a one-character language taken from a file name (the real
program aborts on an assertion in ``finish_item``), a catalog that is a FIFO, socket or
device, a symlink in a catalog directory's path (the messages would name the resolved path),
a database path that is not a regular file, a missing or non-directory parent.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as _stat
import struct
from dataclasses import dataclass, field

from nuwa.script.context import Defer, Invocation

#: ``catalog_file_dirs`` (catalog.c), in priority order
CATALOG_DIRS = ("/usr/local/lib/systemd/catalog", "/usr/lib/systemd/catalog")
#: ``CATALOG_DATABASE`` (catalog.h)
DATABASE = "/var/lib/systemd/catalog/database"

# ---- layout (catalog.c: CatalogHeader, CatalogItem; little endian, no padding) ------------------
SIGNATURE = b"RHHHKSLP"
#: signature[8], le32 compatible_flags, le32 incompatible_flags, le64 header_size, le64 n_items,
#: le64 catalog_item_size
HEADER = struct.Struct("<8sIIQQQ")
#: sd_id128_t id (16 bytes), char language[32], le64 offset (into the string table)
ITEM = struct.Struct("<16s32sQ")

#: ``LONG_LINE_MAX`` (fileio.h): the longest line ``read_line`` accepts
LONG_LINE_MAX = 1024 * 1024
_COMMENTS = b"#;"
_HEX = frozenset(b"0123456789abcdefABCDEF")


class CatalogError(Exception):
    """A catalog file the real program refuses: ``message`` is its log line, ``err`` the errno
    its ``%m`` prints in the two lines that follow."""

    def __init__(self, message: str, err: int):
        super().__init__(message)
        self.message = message
        self.err = err


@dataclass
class Catalog:
    """The entries read so far: (16 ID bytes, language bytes) -> text, in first-seen order
    (systemd's ``OrderedHashmap``, whose ``update`` keeps an entry's place), and the warnings
    logged while reading."""

    items: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ---- reading --------------------------------------------------------------------------------------

_NUL, _LF, _CR = 1, 2, 4


def read_lines(data: bytes) -> list[bytes]:
    """The lines ``read_line_full(f, LONG_LINE_MAX, 0, &line)`` returns one by one: ``\\n``,
    ``\\r``, NUL and the pairs ``\\r\\n``, ``\\n\\r`` (each optionally followed by one NUL) end
    a line; a line of ``LONG_LINE_MAX`` characters or more raises ``OSError(ENOBUFS)``."""
    if b"\r" not in data and b"\0" not in data:
        # the usual text file: the same lines, without a Python loop per byte
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        if any(len(x) >= LONG_LINE_MAX for x in lines):
            raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
        return lines
    lines, i, n = [], 0, len(data)
    eol_of = {0: _NUL, 10: _LF, 13: _CR}
    while i < n:
        start, prev = i, 0
        chars = 0
        while True:
            if chars >= LONG_LINE_MAX:
                raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
            if i >= n:
                break
            eol = eol_of.get(data[i], 0)
            # the three "this line is over" cases of read_line_full, the byte put back
            if prev & _NUL or (eol == 0 and prev) or (eol and prev & eol):
                break
            i += 1
            if eol:
                prev |= eol
                continue
            chars += 1
        end = i
        while end > start and data[end - 1] in (0, 10, 13):
            end -= 1
        lines.append(data[start:end])
    # a final line of exactly LONG_LINE_MAX characters is refused at EOF too (the check comes
    # before the read that finds EOF); the loop above raised it already
    return lines


def file_language(path: str) -> bytes | None:
    """``catalog_file_lang``: LANG of ``.../NAME.LANG.catalog`` (1 to 31 characters), else None."""
    b = path.encode("utf-8", "surrogateescape")
    if not b.endswith(b".catalog"):
        return None
    end = len(b) - len(b".catalog")
    beg = end - 1
    while beg > 0 and b[beg] not in b"./" and end - beg < 32:
        beg -= 1
    if beg < 0 or b[beg:beg + 1] != b"." or end <= beg + 1:
        return None
    return b[beg + 1:end]


def parse_id(text: bytes) -> bytes | None:
    """``sd_id128_from_string`` on a 32-character string: 32 hex digits, either case."""
    if len(text) != 32 or not all(c in _HEX for c in text):
        return None
    return bytes.fromhex(text.decode("ascii"))


def _split_header(text: bytes) -> int:
    """``skip_header``: where the header lines end (the newline of the first empty line, or
    the end of the text)."""
    s = 0
    while True:
        e = text.find(b"\n", s)
        if e < 0 or e == s:
            return s
        s = e + 1


def combine_entries(one: bytes, two: bytes) -> bytes:
    """``combine_entries(one, two)``: ``one``'s headers, ``two``'s headers, then ``one``'s
    body, or ``two``'s when ``one`` has none."""
    b1, b2 = _split_header(one), _split_header(two)
    body = one[b1:] if len(one) > b1 else two[b2:]
    return one[:b1] + two[:b2] + body


def _finish(cat: Catalog, ident: bytes, lang: bytes | None, payload: bytes, path: str) -> None:
    """``finish_item``: add the entry, or combine it with the one of the same key."""
    lang = lang or b""
    if len(lang) == 1:
        raise Defer(f"journalctl --update-catalog: {path} has a one-character language in its name; the real"
                    " program aborts on an assertion in finish_item() (not modelled)")
    key = (ident, lang)
    prev = cat.items.get(key)
    cat.items[key] = payload if prev is None else combine_entries(payload, prev)


def import_file(cat: Catalog, path: str, data: bytes) -> None:
    """``catalog_import_file``: add the entries of catalog ``path`` (its bytes ``data``) to
    ``cat``; raises :class:`CatalogError` where the real program gives up on the file."""
    deflang = file_language(path)
    try:
        lines = read_lines(data)
    except OSError as e:
        raise CatalogError(f"Failed to read file {path}: {os.strerror(e.errno)}", e.errno) from None
    payload = bytearray()
    ident: bytes | None = None
    lang: bytes | None = None
    empty_line = True
    for n, line in enumerate(lines, 1):
        if not line:
            empty_line = True
            continue
        if line[0] in _COMMENTS:
            continue
        if empty_line and len(line) >= 35 and line[:3] == b"-- " and (len(line) == 35 or line[35] == 0x20):
            with_language = len(line) > 35
            # catalog.c writes the NUL terminating the ID into the line before parsing it
            line = line[:35] + (b"\0" + line[36:] if with_language else b"")
            jd = parse_id(line[3:35])
            if jd is not None:
                if ident is not None:
                    if not payload:
                        raise CatalogError(f"[{path}:{n}] No payload text.", errno.EINVAL)
                    _finish(cat, ident, lang or deflang, bytes(payload), path)
                    lang = None
                    payload.clear()
                if with_language:
                    lang = _entry_language(cat, path, n, line[36:].strip(b" \t\n\r"), deflang)
                ident = jd
                empty_line = False
                continue
            line = line[:35]
        if ident is None:
            raise CatalogError(f"[{path}:{n}] Got payload before ID.", errno.EINVAL)
        if empty_line:
            payload += b"\n"
        payload += line + b"\n"
        empty_line = False
    if ident is not None:
        if not payload:
            raise CatalogError(f"[{path}:{len(lines)}] No payload text.", errno.EINVAL)
        _finish(cat, ident, lang or deflang, bytes(payload), path)


def _entry_language(cat: Catalog, path: str, n: int, t: bytes, deflang: bytes | None) -> bytes | None:
    """``catalog_entry_lang``: the header's language (None when it repeats the file's)."""
    if len(t) < 2:
        raise CatalogError(f"[{path}:{n}] Language too short.", errno.EINVAL)
    if len(t) > 31:
        raise CatalogError(f"[{path}:{n}] language too long.", errno.EINVAL)
    if deflang is not None:
        if t == deflang:
            cat.warnings.append(f"[{path}:{n}] language specified unnecessarily")
            return None
        cat.warnings.append(f"[{path}:{n}] language differs from default for file")
    return t


# ---- writing --------------------------------------------------------------------------------------

class StrBuf:
    """``struct strbuf`` (strbuf.c): one buffer of NUL-terminated strings, starting with a NUL;
    a string equal to the tail of one stored before is not stored again. The trie of reversed
    strings is walked exactly as ``strbuf_add_string`` walks it, because which earlier string
    a tail is found in decides the offsets written."""

    def __init__(self) -> None:
        self.buf = bytearray(b"\0")
        # a node: [value_off, value_len, {byte: child node}]
        self.root: list = [0, 0, {}]

    def add(self, s: bytes) -> int:
        """``strbuf_add_string``: the offset of ``s`` in the buffer."""
        n = len(s)
        if n == 0:
            return 0
        node = self.root
        c = 0
        for depth in range(n + 1):
            off = node[0] + node[1] - n
            if depth == n or (node[1] >= n and self.buf[off:off + n] == s):
                return off
            c = s[n - 1 - depth]
            child = node[2].get(c)
            if child is None:
                break
            node = child
        off = len(self.buf)
        self.buf += s + b"\0"
        node[2][c] = [off, n, {}]
        return off


def encode_database(items: dict[tuple[bytes, bytes], bytes]) -> bytes:
    """The database ``catalog_update`` writes for ``items`` (in first-seen order)."""
    sb = StrBuf()
    rows = [(ident, lang, sb.add(text)) for (ident, lang), text in items.items()]
    rows.sort(key=lambda r: (r[0], r[1]))
    out = bytearray(HEADER.pack(SIGNATURE, 0, 0, HEADER.size, len(rows), ITEM.size))
    for ident, lang, off in rows:
        out += ITEM.pack(ident, lang, off)
    return bytes(out + sb.buf)


def decode_database(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """The (ID, language, text) rows of a database in file order (``catalog_get``'s reading);
    raises ValueError on a bad header or an offset outside the string table."""
    if len(data) < HEADER.size:
        raise ValueError("catalog database: shorter than its header")
    sig, _compat, incompat, hsize, count, isize = HEADER.unpack_from(data)
    if sig != SIGNATURE or incompat or hsize < HEADER.size or isize < ITEM.size:
        raise ValueError("catalog database: bad signature, flags or sizes in the header")
    strings = hsize + count * isize
    if strings > len(data):
        raise ValueError(f"catalog database: {count} items do not fit in {len(data)} bytes")
    rows = []
    for k in range(count):
        ident, lang, off = ITEM.unpack_from(data, hsize + k * isize)
        end = data.find(b"\0", strings + off)
        if off >= len(data) - strings or end < 0:
            raise ValueError(f"catalog database: item {k} points outside the string table")
        rows.append((ident, lang.rstrip(b"\0"), data[strings + off:end]))
    return rows


# ---- the command ----------------------------------------------------------------------------------

def catalog_files(inv: Invocation) -> list[str]:
    """``conf_files_list_strv(&files, ".catalog", NULL, 0, catalog_file_dirs)``: the catalog
    paths to read, sorted by basename, one per basename (the first directory's)."""
    found: dict[str, str] = {}
    for d in CATALOG_DIRS:
        _no_symlink_on_the_way(inv, d)
        try:
            names = inv.fs.readdir(d)
        except FileNotFoundError:
            continue
        except OSError as e:
            # files_add logs this at debug level only and goes on with the next directory
            if e.errno in (errno.ENOTDIR,):
                continue
            raise Defer(f"journalctl --update-catalog: {d}: {os.strerror(e.errno)} (not modelled)") from None
        for name in names:
            if name.startswith(".") or not name.endswith(".catalog") or name in found:
                continue
            found[name] = f"{d}/{name}"
    return [found[k] for k in sorted(found, key=lambda s: s.encode("utf-8", "surrogateescape"))]


def _no_symlink_on_the_way(inv: Invocation, d: str) -> None:
    """Defer when a component of directory ``d`` is a symlink: systemd resolves it
    (``path_strv_resolve_uniq``, ``chase_symlinks``) and names files by the resolved path."""
    cur = ""
    for comp in d.strip("/").split("/"):
        cur += "/" + comp
        try:
            st = inv.fs.lstat(cur)
        except OSError:
            return
        if _stat.S_ISLNK(st.st_mode):
            raise Defer(f"journalctl --update-catalog: {cur} is a symlink (systemd names the catalogs by the"
                        " resolved path; not modelled)")


def _read_catalog(inv: Invocation, path: str) -> bytes:
    """The bytes of one catalog as ``fopen`` + ``read_line`` get them, or CatalogError."""
    try:
        st = inv.fs.stat(path)
    except OSError as e:
        raise CatalogError(f"Failed to open file {path}: {os.strerror(e.errno)}", e.errno) from None
    if _stat.S_ISDIR(st.st_mode):
        # fopen() of a directory for reading succeeds; the first read fails
        raise CatalogError(f"Failed to read file {path}: {os.strerror(errno.EISDIR)}", errno.EISDIR)
    if not _stat.S_ISREG(st.st_mode):
        raise Defer(f"journalctl --update-catalog: {path} is not a regular file (reading it is not modelled)")
    return inv.fs.read_bytes(path)


def update_catalog(inv: Invocation) -> int:
    """``catalog_update(DATABASE, NULL, catalog_file_dirs)`` as ``journalctl --update-catalog``
    runs it: read the catalogs, write the database, print what the real program prints
    (see the module note); returns the exit status."""
    cat = Catalog()
    for path in catalog_files(inv):
        try:
            import_file(cat, path, _read_catalog(inv, path))
        except CatalogError as e:
            for w in cat.warnings:
                inv.err(w + "\n")
            text = os.strerror(e.err)
            inv.err(f"{e.message}\nFailed to import file '{path}': {text}\nFailed to list catalog: {text}\n")
            return 1
    for w in cat.warnings:
        inv.err(w + "\n")
    if not cat.items:
        inv.err("No items in catalog.\n")
        return 0
    _write_database(inv, encode_database(cat.items))
    return 0


def _write_database(inv: Invocation, data: bytes) -> None:
    """``write_catalog``: parents made (``mkdir_parents(database, 0755)``), a temporary file
    beside the database made 0644 and renamed over it."""
    fs = inv.fs
    parent = posixpath.dirname(DATABASE)
    cur = ""
    for comp in parent.strip("/").split("/"):
        cur += "/" + comp
        try:
            st = fs.stat(cur)
        except FileNotFoundError:
            if fs.lexists(cur):
                raise Defer(f"journalctl --update-catalog: {cur} is a dangling symlink (not modelled)") from None
            fs.mkdir(cur, 0o755 & ~inv.umask)
            continue
        if not _stat.S_ISDIR(st.st_mode):
            raise Defer(f"journalctl --update-catalog: {cur} is not a directory (the error is not modelled)")
    try:
        st = fs.lstat(DATABASE)
    except FileNotFoundError:
        st = None
    if st is not None and _stat.S_ISDIR(st.st_mode):
        raise Defer(f"journalctl --update-catalog: {DATABASE} is a directory (the rename error is not modelled)")
    # fopen_temporary's ".#databaseXXXXXX": the name never survives the rename
    k = 0
    while fs.lexists(tmp := f"{parent}/.#database{k:06d}"):
        k += 1
    fs.write_bytes(tmp, data, 0o600 & ~inv.umask)
    fs.chmod(tmp, 0o644)
    fs.rename(tmp, DATABASE)
