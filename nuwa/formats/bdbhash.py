"""A writer of Berkeley DB 5.3 hash databases, as a fresh ``DB_HASH`` file created by one
process with no transactions (``db->open(..., DB_CREATE | DB_TRUNCATE)``) and filled by
``put(..., DB_NOOVERWRITE)``: what Postfix's ``postalias``/``postmap`` write for ``hash:``
maps (Postfix's ``dict_db.c`` sets ``h_nelem`` 4096 and no fill factor).

The file is built byte for byte as libdb 5.3.28 leaves it (sources: ``hash/hash_open.c``
``__ham_init_meta`` and ``__ham_new_file``; ``hash/hash_page.c`` ``__ham_add_el`` and
``__ham_insertpair``; ``hash/hash.c`` ``__ham_lookup`` and ``__ham_call_hash``;
``hash/hash_func.c`` ``__ham_func5``; layouts in ``dbinc/db_page.h``):

- page 0, the hash meta page (``HMETA33``): ``DBMETA`` (LSN "not logged" {0, 1}, magic
  0x061561, version 9, page size, type 8, ``last_pgno``, the 20-byte file id ``uid``), then
  ``max_bucket``, ``high_mask``, ``low_mask``, ``ffactor`` (0), ``nelem`` (the hint plus one per
  pair stored), ``h_charkey`` (the hash of ``"%$sniglet^&"``), ``spares[32]``; zeros after;
- with ``h_nelem`` set and no fill factor the table starts with two buckets (pages 1 and 2).
  ``__ham_new_file`` writes page 2 from the very buffer it built the meta page in, changing
  only the 26-byte page header: the bytes after the header of the last bucket page hold a copy
  of the meta page *as created* (``nelem`` the hint, the same file id) wherever items and their
  index do not cover them. Page 1 is a hole until a pair lands in it;
- a bucket page (``P_HASH``, type 13) keeps its pairs sorted by key (``__bam_defcmp``: bytes,
  then length), index ``inp[]`` after the header and items packed from the page's end in index
  order (``__ham_insertpair`` moves later items down to keep it so); an item is ``H_KEYDATA``
  (type byte 1, then the bytes). The bucket of a key is ``__ham_func5`` (FNV-1 style) masked
  by ``high_mask``, then ``low_mask`` when above ``max_bucket``.

Not written (raises :class:`Unsupported`, naming it): a pair that does not fit in its bucket
page (libdb would chain an overflow page and then split a bucket, ``__ham_expand_table``), an
item larger than a quarter page (an off-page ``H_OFFPAGE`` item on overflow pages). Byte order
is the host's in libdb: little-endian here, as on amd64 and arm64.
"""

from __future__ import annotations

import struct

DB_HASHMAGIC = 0x061561
DB_HASHVERSION = 9
P_HASH = 13
P_HASHMETA = 8
H_KEYDATA = 1
#: the key whose hash the meta page records (``CHARKEY``, dbinc/hash.h; ``sizeof`` counts its NUL)
CHARKEY = b"%$sniglet^&\0"
#: ``SIZEOF_PAGE``: lsn 8, pgno 4, prev_pgno 4, next_pgno 4, entries 2, hf_offset 2, level 1, type 1
PAGE_HEADER = struct.Struct("<IIIIIHHBB")
#: DBMETA (db_page.h): lsn, pgno, magic, version, pagesize, encrypt_alg, type, metaflags,
#: unused1, free, last_pgno, nparts, key_count, record_count, flags, uid[20]
DBMETA = struct.Struct("<IIIIIIBBBBIIIIII20s")
#: HMETA33 after DBMETA: max_bucket, high_mask, low_mask, ffactor, nelem, h_charkey, spares[32]
HMETA = struct.Struct("<IIIIII32I")
FILE_ID_LEN = 20
#: ``MINFILL``: an item longer than pagesize / 4 goes off page (``ISBIG``)
MINFILL = 4


class Unsupported(ValueError):
    """The database would need a structure this writer does not build."""


def hash5(data: bytes) -> int:
    """``__ham_func5``: ``h = h * 16777619 ^ byte`` over the bytes, 32-bit."""
    h = 0
    for b in data:
        h = ((h * 16777619) & 0xFFFFFFFF) ^ b
    return h


def _meta(pagesize: int, fileid: bytes, last_pgno: int, max_bucket: int, high_mask: int, low_mask: int,
          nelem: int, spares: list[int]) -> bytes:
    head = DBMETA.pack(0, 1, 0, DB_HASHMAGIC, DB_HASHVERSION, pagesize, 0, P_HASHMETA, 0, 0, 0, last_pgno,
                       0, 0, 0, 0, fileid)
    body = HMETA.pack(max_bucket, high_mask, low_mask, 0, nelem, hash5(CHARKEY), *spares)
    return (head + body).ljust(pagesize, b"\0")


class HashDB:
    """A new hash database filled in put order; :meth:`image` gives the file's bytes."""

    def __init__(self, fileid: bytes, pagesize: int = 4096, nelem: int = 4096):
        if len(fileid) != FILE_ID_LEN:
            raise ValueError(f"a Berkeley DB file id is {FILE_ID_LEN} bytes, not {len(fileid)}")
        self.pagesize, self.fileid, self.nelem = pagesize, fileid, nelem
        # __ham_init_meta with h_nelem set and h_ffactor 0: l2 = 1, two buckets on pages 1-2
        self.max_bucket, self.high_mask, self.low_mask = 1, 1, 0
        self.spares = [1, 1] + [0] * 30
        self.buckets: list[list[tuple[bytes, bytes]]] = [[], []]

    def bucket(self, key: bytes) -> int:
        """``__ham_call_hash``."""
        b = hash5(key) & self.high_mask
        return b & self.low_mask if b > self.max_bucket else b

    def _free(self, pairs: list[tuple[bytes, bytes]]) -> int:
        """``P_FREESPACE`` of a page holding ``pairs``."""
        used = sum(len(k) + len(d) + 2 + 2 * 2 for k, d in pairs)
        return self.pagesize - PAGE_HEADER.size - used

    def put(self, key: bytes, data: bytes) -> bool:
        """``DB->put(key, data, DB_NOOVERWRITE)``: False (nothing stored) when the key exists."""
        pairs = self.buckets[self.bucket(key)]
        if any(k == key for k, _ in pairs):
            return False
        for item in (key, data):
            if len(item) > self.pagesize // MINFILL:
                raise Unsupported(f"an item of {len(item)} bytes goes on overflow pages (H_OFFPAGE), "
                                  "not written")
        # __ham_add_el: HKEYDATA_PSIZE of each = len + 1 type byte + a 2-byte index entry
        if self._free(pairs) < len(key) + len(data) + 6:
            raise Unsupported("a bucket page is full: libdb would chain an overflow page and split a "
                              "bucket, not written")
        pairs.append((key, data))
        # sorted by __bam_defcmp (bytes, then the shorter first): Python's bytes order
        pairs.sort(key=lambda p: p[0])
        self.nelem += 1
        return True

    def _page(self, pgno: int, pairs: list[tuple[bytes, bytes]], under: bytes) -> bytes:
        page = bytearray(under)
        offset = self.pagesize
        inp = []
        for key, data in pairs:
            for item in (key, data):
                offset -= len(item) + 1
                page[offset:offset + len(item) + 1] = bytes([H_KEYDATA]) + item
                inp.append(offset)
        # LSN_NOT_LOGGED {0, 1}; P_INIT's prev/next PGNO_INVALID, level 0
        page[:PAGE_HEADER.size] = PAGE_HEADER.pack(0, 1, pgno, 0, 0, len(inp), offset, 0, P_HASH)
        page[PAGE_HEADER.size:PAGE_HEADER.size + 2 * len(inp)] = struct.pack(f"<{len(inp)}H", *inp)
        return bytes(page)

    def image(self) -> bytes:
        """The file's bytes as libdb leaves them at close."""
        last = self.max_bucket + 1
        created = _meta(self.pagesize, self.fileid, last, self.max_bucket, self.high_mask, self.low_mask,
                        self._hint(), self.spares)
        meta = _meta(self.pagesize, self.fileid, last, self.max_bucket, self.high_mask, self.low_mask,
                     self.nelem, self.spares)
        pages = [meta]
        zero = bytes(self.pagesize)
        for b, pairs in enumerate(self.buckets):
            pgno = b + 1
            if pgno == last:
                pages.append(self._page(pgno, pairs, created))
            elif pairs:
                pages.append(self._page(pgno, pairs, zero))
            else:
                pages.append(zero)  # never fetched: a hole in the file
        return b"".join(pages)

    def _hint(self) -> int:
        return self.nelem - sum(len(p) for p in self.buckets)
