"""A writer of Berkeley DB 5.3 hash databases, as a fresh ``DB_HASH`` file created by one
process with no transactions (``db->open(..., DB_CREATE | DB_TRUNCATE)``) and filled by
``put(..., DB_NOOVERWRITE)``: what Postfix's ``postalias``/``postmap`` write for ``hash:``
maps (Postfix's ``dict_db.c`` sets ``h_nelem`` 4096 and no fill factor).

The file is built as libdb 5.3.28 leaves it by replaying what libdb does page by page
(``hash/hash_open.c`` ``__ham_init_meta``, ``__ham_new_file``; ``hash/hash.c``
``__ham_lookup``, ``__ham_call_hash``, ``__ham_expand_table``; ``hash/hash_page.c``
``__ham_add_el``, ``__ham_insertpair``, ``__ham_add_ovflpage``, ``__ham_split_page``;
``db/db_meta.c`` ``__db_new``, ``__db_free``; ``hash/hash_func.c`` ``__ham_func5``; layouts in
``dbinc/db_page.h``):

- page 0, the hash meta page (``HMETA33``): ``DBMETA`` (LSN "not logged" {0, 1}, magic
  0x061561, version 9, page size, type 8, ``free``, ``last_pgno``, the 20-byte file id
  ``uid``), then ``max_bucket``, ``high_mask``, ``low_mask``, ``ffactor`` (0), ``nelem`` (the
  hint plus one per pair stored), ``h_charkey`` (the hash of ``"%$sniglet^&"`` with its NUL),
  ``spares[32]``; zeros after;
- the table starts with two buckets (pages 1 and 2). ``__ham_new_file`` writes page 2 from the
  very buffer it built the meta page in, changing only the 26-byte page header, so the
  meta page *as created* (``nelem`` the hint, the same file id) shows through wherever items
  and their index do not cover it. Page 1 is a hole until a pair lands in it;
- a bucket page (``P_HASH``, type 13) keeps its pairs sorted by key (``__bam_defcmp``: bytes,
  then length): index ``inp[]`` after the header, items packed from the page's end in index
  order; an item is ``H_KEYDATA`` (type byte 1, then the bytes). A key's bucket is
  ``__ham_func5`` masked by ``high_mask``, then ``low_mask`` when above ``max_bucket``;
- a pair that does not fit in the first page of its bucket chain with room goes to a new page
  chained after the last one looked at, and then (fill factor 0) the table grows by one bucket
  (linear hashing): its buddy bucket's pairs are re-inserted into the two, its chain pages
  freed (the last page of the file truncated, any other put on the free list), pages for a
  new doubling of buckets allocated at once (only the last written). ``P_INIT`` rewrites a
  page's header only: what the page held before stays in its free space, and so does it here.

Where libdb hands out a page buffer it got from ``malloc`` (every page it adds), the bytes
past the first 32 are whatever the heap held: zeros from a fresh heap, which is what a
``postalias`` run whose heap never gave memory back finds (the default aliases file, short
entries), but after long lines it reuses freed memory and two real runs differ there (heap
pointers). This writer writes zeros there.

Not written (raises :class:`Unsupported`): an item longer than a quarter page (``ISBIG``), which
libdb puts on overflow pages behind an ``HOFFPAGE`` item whose padding is uninitialised stack
memory. Byte order is the host's in libdb: little-endian here, as on amd64 and arm64.
"""

from __future__ import annotations

import bisect
import struct

from nuwa.formats.c_bdbhash import (CHARKEY, DB_FILE_ID_LEN, DB_HASHMAGIC, DB_HASHVERSION, DB_PAGE_DB_LEN, H_KEYDATA,
                                    HMETA, MINFILL, NCACHED, P_HASH, P_HASHMETA, P_INVALID, PAGE, SIZEOF_PAGE)

#: LSN_NOT_LOGGED: the LSN of every page libdb writes without a log
NOT_LOGGED = {"file": 0, "offset": 1}


class Unsupported(ValueError):
    """The database would need a structure this writer does not build."""


def hash5(data: bytes) -> int:
    """``__ham_func5``: ``h = h * 16777619 ^ byte`` over the bytes, 32-bit."""
    h = 0
    for b in data:
        h = ((h * 16777619) & 0xFFFFFFFF) ^ b
    return h


def _meta(pagesize: int, fileid: bytes, last_pgno: int, max_bucket: int, high_mask: int, low_mask: int,
          nelem: int, spares: list[int], free: int = 0) -> bytes:
    """A hash meta page (``__ham_init_meta``'s fields, as later updated)."""
    dbmeta = dict(lsn=NOT_LOGGED, pgno=0, magic=DB_HASHMAGIC, version=DB_HASHVERSION, pagesize=pagesize,
                  encrypt_alg=0, type=P_HASHMETA, metaflags=0, unused1=0, free=free, last_pgno=last_pgno, nparts=0,
                  key_count=0, record_count=0, flags=0, uid=fileid)
    meta = HMETA.build(dict(dbmeta=dbmeta, max_bucket=max_bucket, high_mask=high_mask, low_mask=low_mask, ffactor=0,
                            nelem=nelem, h_charkey=hash5(CHARKEY), spares=spares))
    return meta.ljust(pagesize, b"\0")


def _log2(num: int) -> int:
    """``__db_log2``: the least i with 2**i >= num."""
    i, limit = 0, 1
    while limit < num:
        limit <<= 1
        i += 1
    return i


class _Page:
    """A page as libdb's buffer holds it: header fields, the items (on a hash page: raw item
    bytes with the full key each pair sorts by), over ``base``,
    the buffer's bytes when the page was last ``P_INIT``-ed (libdb leaves them in the free
    space between the index and the items)."""

    __slots__ = ("pgno", "prev", "next", "type", "pairs", "base")

    def __init__(self, pgno: int, base: bytes | bytearray, ptype: int = P_HASH):
        self.pgno, self.prev, self.next, self.type = pgno, 0, 0, ptype
        self.pairs: list[tuple[bytes, bytes, bytes]] = []  # (full key, key item, data item)
        self.base = bytes(base)

    def used(self) -> int:
        return sum(len(k) + len(d) for _, k, d in self.pairs)

    def free(self, pagesize: int) -> int:
        """``P_FREESPACE``."""
        return pagesize - self.used() - SIZEOF_PAGE - 4 * len(self.pairs)

    def init(self, pagesize: int, prev: int, nxt: int, ptype: int) -> None:
        """``P_INIT``: the header reset, the buffer's bytes kept."""
        self.base = self.render(pagesize)
        self.prev, self.next, self.type, self.pairs = prev, nxt, ptype, []

    def render(self, pagesize: int) -> bytes:
        page = bytearray(self.base)
        inp = []
        offset = pagesize
        for _, kitem, ditem in self.pairs:
            for item in (kitem, ditem):
                offset -= len(item)
                page[offset:offset + len(item)] = item
                inp.append(offset)
        page[SIZEOF_PAGE:SIZEOF_PAGE + 2 * len(inp)] = struct.pack(f"<{len(inp)}H", *inp)
        entries, hoffset = len(inp), offset
        # every page written carries LSN_NOT_LOGGED {0, 1}
        page[:SIZEOF_PAGE] = PAGE.build(dict(lsn=NOT_LOGGED, pgno=self.pgno, prev_pgno=self.prev,
                                             next_pgno=self.next, entries=entries, hf_offset=hoffset, level=0,
                                             type=self.type))
        return bytes(page)


class HashDB:
    """A new hash database filled in put order; :meth:`image` gives the file's bytes."""

    def __init__(self, fileid: bytes, pagesize: int = 4096, nelem: int = 4096):
        if len(fileid) != DB_FILE_ID_LEN:
            raise ValueError(f"a Berkeley DB file id is {DB_FILE_ID_LEN} bytes, not {len(fileid)}")
        self.pagesize, self.fileid, self.nelem = pagesize, fileid, nelem
        # __ham_init_meta with h_nelem set and h_ffactor 0: l2 = 1, two buckets on pages 1-2
        self.max_bucket, self.high_mask, self.low_mask = 1, 1, 0
        self.spares = [1, 1] + [0] * (NCACHED - 2)
        self.last_pgno, self.free_list = 2, 0
        # page 2 is written from the meta page's buffer (__ham_new_file); page 1 is a hole
        created = _meta(pagesize, fileid, 2, 1, 1, 0, nelem, self.spares)
        self.pages: dict[int, _Page] = {2: _Page(2, created)}
        #: buffers of pages truncated away: mpool hands the same buffer back if the page
        #: number is used again (BH_FREED), clearing only its first DB_PAGE_DB_LEN bytes
        self.freed: dict[int, bytes] = {}

    # -- pages -------------------------------------------------------------------------------
    def _fetch(self, pgno: int) -> _Page:
        """``__memp_fget(DB_MPOOL_CREATE)``: a page not yet written reads as zeros, and
        ``__ham_pgin`` gives it a hash page header."""
        page = self.pages.get(pgno)
        if page is None:
            page = self.pages[pgno] = _Page(pgno, self._buffer(pgno))
        return page

    def _buffer(self, pgno: int) -> bytes:
        stale = self.freed.pop(pgno, None)
        if stale is None:
            return bytes(self.pagesize)
        return bytes(DB_PAGE_DB_LEN) + stale[DB_PAGE_DB_LEN:]

    def _new(self, ptype: int) -> _Page:
        """``__db_new``: the head of the free list, else a page past the last."""
        if self.free_list:
            page = self.pages[self.free_list]
            self.free_list = page.next
        else:
            self.last_pgno += 1
            page = self.pages[self.last_pgno] = _Page(self.last_pgno, self._buffer(self.last_pgno))
        page.init(self.pagesize, 0, 0, ptype)
        return page

    def _free(self, page: _Page) -> None:
        """``__db_free``: the last page is truncated away, any other heads the free list."""
        if page.pgno == self.last_pgno:
            page.init(self.pagesize, 0, self.free_list, P_INVALID)
            self.freed[page.pgno] = page.render(self.pagesize)
            del self.pages[page.pgno]
            self.last_pgno -= 1
        else:
            page.init(self.pagesize, 0, self.free_list, P_INVALID)
            self.free_list = page.pgno

    def _add_ovflpage(self, page: _Page) -> _Page:
        """``__ham_add_ovflpage``: a new page chained after ``page``."""
        new = self._new(P_HASH)
        page.next, new.prev = new.pgno, page.pgno
        return new

    def _bucket_page(self, bucket: int) -> int:
        """``BUCKET_TO_PAGE``."""
        return bucket + self.spares[_log2(bucket + 1)]

    def bucket(self, key: bytes) -> int:
        """``__ham_call_hash``."""
        b = hash5(key) & self.high_mask
        return b & self.low_mask if b > self.max_bucket else b

    @staticmethod
    def _insert(page: _Page, key: bytes, kitem: bytes, ditem: bytes) -> None:
        """``__ham_insertpair`` at ``__ham_getindex``'s place (sorted by ``__bam_defcmp``)."""
        keys = [k for k, _, _ in page.pairs]
        page.pairs.insert(bisect.bisect_left(keys, key), (key, kitem, ditem))

    # -- the access method -------------------------------------------------------------------
    def put(self, key: bytes, data: bytes) -> bool:
        """``DB->put(key, data, DB_NOOVERWRITE)``: False (nothing stored) when the key exists."""
        for item in (key, data):
            if len(item) > self.pagesize // MINFILL:
                # __db_poff would put it on overflow pages, but its HOFFPAGE item's padding
                # is uninitialised stack memory and the last page's tail is heap memory:
                # two real runs differ there
                raise Unsupported(f"an item of {len(item)} bytes goes on overflow pages (H_OFFPAGE), "
                                  "whose padding libdb leaves uninitialised; not written")
        pairsize = len(key) + len(data) + 6  # HKEYDATA_PSIZE each: 1 type byte, 2 index bytes
        # __ham_lookup: the first page of the chain with room (strictly), the key anywhere
        page = self._fetch(self._bucket_page(self.bucket(key)))
        found = None
        while True:
            if found is None and pairsize < page.free(self.pagesize):
                found = page
            if any(k == key for k, _, _ in page.pairs):
                return False
            if not page.next:
                break
            page = self.pages[page.next]
        # __ham_add_el
        page = found or page
        while page.pairs and page.next:
            if page.free(self.pagesize) >= pairsize:
                break
            page = self.pages[page.next]
        expand = page.free(self.pagesize) < pairsize
        if expand:
            page = self._add_ovflpage(page)
        self._insert(page, key, bytes([H_KEYDATA]) + key, bytes([H_KEYDATA]) + data)
        self.nelem += 1
        if expand:
            self._expand()
        return True

    def _expand(self) -> None:
        """``__ham_expand_table``: one more bucket, split from its buddy."""
        new_bucket = self.max_bucket + 1
        old_bucket = new_bucket & self.low_mask
        new_double = self.max_bucket == self.high_mask
        logn = _log2(new_bucket)
        if not new_double or self.spares[logn + 1]:
            self._fetch(self._bucket_page(new_bucket))
        else:
            # a new doubling: its pages are allocated at once; the last one is written now
            pgno = self.last_pgno + 1 + self.max_bucket
            page = self._fetch(pgno)
            self.spares[logn + 1] = (pgno - new_bucket) - self.max_bucket
            self.last_pgno = pgno
            page.init(self.pagesize, 0, 0, P_HASH)
        self.max_bucket = new_bucket
        if new_double:
            self.low_mask = self.high_mask
            self.high_mask = new_bucket | self.low_mask
        self._split(old_bucket, new_bucket)

    def _split(self, obucket: int, nbucket: int) -> None:
        """``__ham_split_page``: the old bucket's pairs rehashed into it and the new one."""
        old = self._fetch(self._bucket_page(obucket))
        new = self._fetch(self._bucket_page(nbucket))
        new.init(self.pagesize, 0, 0, P_HASH)
        temp_pairs, temp_next, temp = list(old.pairs), old.next, None
        old.init(self.pagesize, 0, 0, P_HASH)
        dest = {obucket: old, nbucket: new}
        while True:
            for key, kitem, ditem in temp_pairs:
                b = obucket if self.bucket(key) == obucket else nbucket
                if dest[b].free(self.pagesize) < len(kitem) + len(ditem) + 4:
                    dest[b] = self._add_ovflpage(dest[b])
                self._insert(dest[b], key, kitem, ditem)
            if temp is not None:
                self._free(temp)
            if not temp_next:
                break
            temp = self.pages[temp_next]
            temp_pairs, temp_next = list(temp.pairs), temp.next

    def image(self) -> bytes:
        """The file's bytes as libdb leaves them at close."""
        out = bytearray(_meta(self.pagesize, self.fileid, self.last_pgno, self.max_bucket, self.high_mask,
                              self.low_mask, self.nelem, self.spares, self.free_list))
        out += bytes(self.pagesize * max(self.pages))
        for pgno, page in self.pages.items():
            out[pgno * self.pagesize:(pgno + 1) * self.pagesize] = page.render(self.pagesize)
        return bytes(out)


def read(data: bytes) -> dict[bytes, bytes]:
    """The pairs of a hash file this module can write (``H_KEYDATA`` items only), bucket by
    bucket along each chain; raises ``ValueError`` naming what it does not read."""
    meta = HMETA.parse(data)
    if meta.dbmeta.magic != DB_HASHMAGIC or meta.dbmeta.version != DB_HASHVERSION:
        raise ValueError("not a Berkeley DB 5.3 hash file (DBMETA.magic, version)")
    pagesize = meta.dbmeta.pagesize
    pairs: dict[bytes, bytes] = {}
    for bucket in range(meta.max_bucket + 1):
        pgno = bucket + meta.spares[_log2(bucket + 1)]
        while pgno:
            page = data[pgno * pagesize:(pgno + 1) * pagesize].ljust(pagesize, b"\0")
            head = PAGE.parse(page)
            if head.pgno == 0 and head.type == P_INVALID:
                break  # never written: __ham_pgin makes it an empty hash page
            if head.type != P_HASH:
                raise ValueError(f"page {pgno}: PAGE.type {head.type} is not a sorted hash page")
            inp = struct.unpack_from(f"<{head.entries}H", page, SIZEOF_PAGE)
            ends = [pagesize] + list(inp[:-1])
            items = [page[inp[i]:ends[i]] for i in range(head.entries)]
            for item in items:
                if item[0] != H_KEYDATA:
                    raise ValueError(f"page {pgno}: item type {item[0]} is not H_KEYDATA")
            for i in range(0, head.entries, 2):
                pairs[items[i][1:]] = items[i + 1][1:]
            pgno = head.next_pgno
    return pairs
