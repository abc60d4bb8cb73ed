"""GNU dbm 1.23 files, read and written byte for byte as libgdbm writes them.

A gdbm file is a header block (with the active avail table), a hash directory, hash buckets
and key/data records, all placed by gdbm's own allocator. Two libgdbm runs that make the same
sequence of stores write the same bytes, including what gdbm leaves behind: free space keeps
the bytes last written there, a split bucket's memory is reused (with its stale avail and
element slots) for the next bucket, and moved avail tables keep their old tail entries. This
module replays gdbm's algorithms on an in-memory file so that the result is that same file:

- ``gdbmopen.c`` (``gdbm_fd_open``: a new file's four first blocks, ``compute_directory_size``),
- ``gdbmstore.c`` (``gdbm_store``), ``findkey.c`` (``_gdbm_findkey``), ``hash.c``,
- ``bucket.c`` (the bucket cache, its LRU list and element pool, ``_gdbm_split_bucket``),
- ``falloc.c`` (``_gdbm_alloc``, ``_gdbm_free``, the avail tables and their order),
- ``update.c`` (``_gdbm_end_update``: what is written after each store, in which order).

Defaults are the ones man-db uses (``GDBM_NEWDB|GDBM_FAST``, no ``GDBM_NUMSYNC``, neither
central free nor coalescing); reading the avail stack back (``pop_avail_block``, reached only
after more than one header's worth of free pieces) is refused with
:class:`GdbmUnsupported` rather than guessed. Parsing is pure: a file is bytes in, bytes out.
"""

from __future__ import annotations

import struct

from nuwa.formats import c_gdbm as C


class GdbmError(ValueError):
    """A gdbm file that is not one, or is damaged (names the structure and offset)."""


class GdbmUnsupported(NotImplementedError):
    """A gdbm state this module does not reproduce exactly (names what)."""


def gdbm_hash(key: bytes) -> int:
    """``_gdbm_hash``: the 31-bit hash of ``key``. ``key.dptr`` is a (signed on x86) ``char``
    array, so a byte >= 0x80 is sign-extended before the shift."""
    value = (0x238F13AF * len(key)) & 0xFFFFFFFF
    for index, b in enumerate(key):
        c = b | 0xFFFFFF00 if b & 0x80 else b
        value = (value + ((c << (index * 5 % 24)) & 0xFFFFFFFF)) & 0x7FFFFFFF
    return (1103515243 * value + 12345) & 0x7FFFFFFF


def compute_directory_size(block_size: int) -> tuple[int, int]:
    """``compute_directory_size``: (dir_size, dir_bits) for a new file's block size."""
    dir_size, dir_bits = 8 * C.SIZEOF_OFF_T, 3
    block_size = min(block_size, 0x7FFFFFFF // 2)
    while dir_size < block_size and dir_bits < C.GDBM_HASH_BITS - 3:
        dir_size <<= 1
        dir_bits += 1
    return dir_size, dir_bits


def bucket_element_count(bucket_size: int) -> int:
    """``bucket_element_count``: elements in a bucket of ``bucket_size`` bytes."""
    return (bucket_size - C.SIZEOF_HASH_BUCKET) // C.BUCKET_ELEMENT.size + 1


# --- avail tables (falloc.c): a list of (av_size, av_adr) with a count of live entries -----

class AvailTable:
    """An avail table as memory: ``av_table`` keeps every slot, live (``av_count``) or stale,
    because ``memmove`` leaves old entries behind and gdbm writes the whole table."""

    __slots__ = ("av_count", "av_table")

    def __init__(self, slots: int):
        self.av_count = 0
        self.av_table = [(0, 0)] * slots


def avail_lookup(size: int, table: list, count: int) -> int:
    """``avail_lookup``: gdbm's search for the first entry of at least ``size`` (its own
    binary search, including how it narrows; the result decides which piece is used)."""
    start = 0
    while count > 0:
        pivot = start + (count >> 1)
        if size == table[pivot][0]:
            return pivot
        if size > table[pivot][0]:
            start = pivot + 1
            count -= 1
        count >>= 1
    return start


def avail_move(t: AvailTable, src: int, dst: int) -> None:
    """``avail_move``: memmove entries ``src..count`` to ``dst`` and adjust the count."""
    n = t.av_count - src
    if dst + n > len(t.av_table):
        raise GdbmUnsupported("avail table overflow")
    t.av_table[dst:dst + n] = t.av_table[src:src + n]
    t.av_count += dst - src


def get_elem(size: int, t: AvailTable) -> tuple[int, int]:
    """``get_elem``: take the first entry of at least ``size`` out of ``t`` ((0, 0) if none)."""
    index = avail_lookup(size, t.av_table, t.av_count)
    if index >= t.av_count:
        return (0, 0)
    val = t.av_table[index]
    avail_move(t, index + 1, index)
    return val


def put_av_elem(new_el: tuple[int, int], t: AvailTable) -> None:
    """``_gdbm_put_av_elem`` without merging (man-db never sets coalesce_blocks): insert in
    size order, before the entry ``avail_lookup`` finds."""
    if new_el[0] <= C.IGNORE_SIZE:
        return
    index = avail_lookup(new_el[0], t.av_table, t.av_count)
    avail_move(t, index, index + 1)
    t.av_table[index] = new_el


# --- buckets ------------------------------------------------------------------------------

class Bucket(AvailTable):
    """A ``hash_bucket`` in memory: its avail table, bits, count and every element slot
    (hash_value, key_start, data_pointer, key_size, data_size), stale ones included."""

    __slots__ = ("bucket_bits", "count", "h_table")

    def __init__(self, elems: int):
        super().__init__(C.BUCKET_AVAIL)
        self.bucket_bits = 0
        self.count = 0
        # calloc'ed memory: every field 0
        self.h_table = [[0, b"\0\0\0\0", 0, 0, 0] for _ in range(elems)]

    def new(self, bits: int) -> None:
        """``_gdbm_new_bucket``: only these fields are set; the rest keeps what was there."""
        self.av_count = 0
        self.bucket_bits = bits
        self.count = 0
        for el in self.h_table:
            el[0] = -1

    def pack(self, size: int) -> bytes:
        """The bucket's ``size`` bytes as gdbm writes them."""
        out = bytearray(C.BUCKET_AV_COUNT.pack(self.av_count))
        for av_size, av_adr in self.av_table:
            out += C.AVAIL_ELEM.pack(av_size, av_adr)
        out += C.BUCKET_BITS_COUNT.pack(self.bucket_bits, self.count)
        pack = C.BUCKET_ELEMENT.pack
        for el in self.h_table:
            out += pack(*el)
        return bytes(out) + bytes(size - len(out))

    def unpack(self, data: bytes, where: int) -> None:
        """Fill every field from ``data`` (a bucket read from the file at ``where``)."""
        self.av_count = C.BUCKET_AV_COUNT.unpack_from(data, 0)[0]
        self.av_table = [C.AVAIL_ELEM.unpack_from(data, C.BUCKET_AVAIL_OFFSET + i * 16)
                         for i in range(C.BUCKET_AVAIL)]
        self.bucket_bits, self.count = C.BUCKET_BITS_COUNT.unpack_from(data, C.BUCKET_BITS_OFFSET)
        unpack, esize = C.BUCKET_ELEMENT.unpack_from, C.BUCKET_ELEMENT.size
        self.h_table = [list(unpack(data, C.BUCKET_TABLE_OFFSET + i * esize))
                        for i in range(len(self.h_table))]
        if self.pack(len(data)) != data:
            raise GdbmUnsupported(f"bucket at {where}: padding bytes that are not zero")
        if not (0 <= self.av_count <= C.BUCKET_AVAIL and 0 <= self.count <= len(self.h_table)):
            raise GdbmError(f"bucket at {where}: av_count {self.av_count}, count {self.count}")


class _CacheElem:
    """``cache_elem``: a bucket of the cache, its file address and whether it changed."""

    __slots__ = ("ca_adr", "ca_changed", "ca_bucket")

    def __init__(self, adr: int, bucket: Bucket):
        self.ca_adr = adr
        self.ca_changed = False
        self.ca_bucket = bucket


class Gdbm:
    """A gdbm 1.23 database held as the bytes of its file, changed as libgdbm changes it.

    ``Gdbm.create(block_size)`` is ``gdbm_open(NEWDB)`` on an empty file (``block_size`` is
    what gdbm takes from ``st_blksize``); ``Gdbm.open(data)`` reads an existing file. ``store``,
    ``fetch`` and ``exists`` are gdbm's; ``data()`` is the file's bytes after the last store
    (gdbm writes everything at the end of each store: there is nothing pending).
    """

    def __init__(self) -> None:
        self.file = bytearray()
        self.cache: dict[int, _CacheElem] = {}
        self.lru: list[_CacheElem] = []          # index 0 is cache_mru
        self.pool: list[Bucket] = []              # cache_avail: freed elements, top last
        self.cache_bits = C.INIT_CACHE_BITS
        self.bucket_dir = 0
        self.header_changed = False
        self.directory_changed = False

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def create(cls, block_size: int) -> "Gdbm":
        """``gdbm_fd_open`` on an empty file with ``GDBM_NEWDB`` (block size from st_blksize)."""
        db = cls()
        dir_size, dir_bits = compute_directory_size(block_size)
        block_size = dir_size          # not GDBM_BSEXACT: the block size becomes dir_size
        db.header_magic = C.GDBM_MAGIC64
        db.block_size = block_size
        db.dir_size, db.dir_bits = dir_size, dir_bits
        db.dir_adr = block_size
        db.bucket_elems = bucket_element_count(block_size)
        db.bucket_size = block_size
        avail_size = block_size - C.HEADER_AVAIL_OFFSET
        db.avail = AvailTable((avail_size - C.AVAIL_BLOCK.size) // C.AVAIL_ELEM.size)
        db.avail_next_block = 0
        db.header_tail = bytes(avail_size - C.AVAIL_BLOCK.size - len(db.avail.av_table) * 16)
        db.next_block = 4 * block_size
        db.dir = [2 * block_size] * (dir_size // C.SIZEOF_OFF_T)
        bucket = Bucket(db.bucket_elems)
        bucket.new(0)
        bucket.av_count = 1
        bucket.av_table[0] = (block_size, 3 * block_size)
        db._write(0, db._pack_header())
        db._write(block_size, db._pack_dir())
        db._write(2 * block_size, bucket.pack(db.bucket_size))
        db._extend(db.next_block)
        # the bucket was a calloc'ed buffer freed after writing: the cache starts empty
        return db

    @classmethod
    def open(cls, data: bytes) -> "Gdbm":
        """Read an existing file (``gdbm_fd_open`` of a non-empty file)."""
        db = cls()
        db.file = bytearray(data)
        if len(data) < C.GDBM_FILE_HEADER.size + C.AVAIL_BLOCK.size:
            raise GdbmError(f"gdbm header: file of {len(data)} bytes")
        (db.header_magic, db.block_size, db.dir_adr, db.dir_size, db.dir_bits, db.bucket_size,
         db.bucket_elems, db.next_block) = C.GDBM_FILE_HEADER.unpack_from(data, 0)
        if db.header_magic & 0xFFFFFFFF != C.GDBM_MAGIC64:
            raise GdbmError(f"gdbm header at 0: header_magic {db.header_magic & 0xFFFFFFFF:#x}"
                            f" is not GDBM_MAGIC64 ({C.GDBM_MAGIC64:#x})")
        bs = db.block_size
        if not (C.SIZEOF_AVAIL_BLOCK + C.GDBM_FILE_HEADER.size <= bs <= len(data)
                and 0 < db.dir_adr and db.dir_adr + db.dir_size < len(data)
                and db.bucket_elems == bucket_element_count(db.bucket_size)
                and compute_directory_size(db.dir_size)[1] == db.dir_bits):
            raise GdbmError("gdbm header at 0: inconsistent block_size, dir or bucket fields")
        if db.next_block < len(data):
            raise GdbmError(f"gdbm header at 0: next_block {db.next_block} before the end of "
                            f"the file ({len(data)}): the file needs recovery")
        avail_size = bs - C.HEADER_AVAIL_OFFSET
        size, count, db.avail_next_block = C.AVAIL_BLOCK.unpack_from(data, C.HEADER_AVAIL_OFFSET)
        slots = (avail_size - C.AVAIL_BLOCK.size) // C.AVAIL_ELEM.size
        if size != slots or not 0 <= count <= size:
            raise GdbmError(f"gdbm avail block at {C.HEADER_AVAIL_OFFSET}: size {size}, "
                            f"count {count} (expected size {slots})")
        db.avail = AvailTable(slots)
        db.avail.av_count = count
        base = C.HEADER_AVAIL_OFFSET + C.AVAIL_BLOCK.size
        db.avail.av_table = [C.AVAIL_ELEM.unpack_from(data, base + i * 16) for i in range(slots)]
        db.header_tail = bytes(data[base + slots * 16:bs])
        if db._pack_header() != bytes(data[:bs]):
            raise GdbmUnsupported("gdbm header at 0: padding bytes that are not zero")
        n = db.dir_size // C.SIZEOF_OFF_T
        db.dir = list(memoryview(data)[db.dir_adr:db.dir_adr + db.dir_size].cast("q")[:n])
        return db

    # --- the file -----------------------------------------------------------------------

    def data(self) -> bytes:
        """The file's bytes."""
        return bytes(self.file)

    def _write(self, adr: int, data: bytes) -> None:
        end = adr + len(data)
        if end > len(self.file):
            self.file.extend(bytes(end - len(self.file)))
        self.file[adr:end] = data

    def _extend(self, size: int) -> None:
        """``_gdbm_file_extend``: grow the file to ``size`` with zeros."""
        if size > len(self.file):
            self.file.extend(bytes(size - len(self.file)))

    def _pack_header(self) -> bytes:
        out = bytearray(C.GDBM_FILE_HEADER.pack(
            self.header_magic, self.block_size, self.dir_adr, self.dir_size, self.dir_bits,
            self.bucket_size, self.bucket_elems, self.next_block))
        out += C.AVAIL_BLOCK.pack(len(self.avail.av_table), self.avail.av_count,
                                  self.avail_next_block)
        for av_size, av_adr in self.avail.av_table:
            out += C.AVAIL_ELEM.pack(av_size, av_adr)
        return bytes(out) + self.header_tail

    def _pack_dir(self) -> bytes:
        return struct.pack(f"<{len(self.dir)}q", *self.dir)

    # --- the bucket cache (bucket.c) ------------------------------------------------------

    @property
    def bucket(self) -> Bucket:
        """``dbf->bucket``: the bucket of ``cache_mru``."""
        return self.lru[0].ca_bucket

    def _elem_new(self, adr: int) -> _CacheElem:
        """``cache_elem_new``: a pooled element (stale bucket memory) or a calloc'ed one."""
        bucket = self.pool.pop() if self.pool else Bucket(self.bucket_elems)
        return _CacheElem(adr, bucket)

    def _elem_free(self, elem: _CacheElem) -> None:
        """``cache_elem_free``: unlink, and keep its memory for the next new element."""
        self.lru.remove(elem)
        del self.cache[elem.ca_adr]
        self.pool.append(elem.ca_bucket)

    def _write_bucket(self, elem: _CacheElem) -> None:
        self._write(elem.ca_adr, elem.ca_bucket.pack(self.bucket_size))
        elem.ca_changed = False

    def _cache_flush(self) -> None:
        """``_gdbm_cache_flush``: write the changed elements at the head of the LRU list."""
        for elem in self.lru:
            if not elem.ca_changed:
                break
            self._write_bucket(elem)

    def _cache_lookup(self, adr: int, ref: _CacheElem | None) -> tuple[bool, _CacheElem]:
        """``cache_lookup``: (found, element), linked at the head (``ref`` None) or after
        ``ref``."""
        elem = self.cache.get(adr)
        if elem is not None:
            self.lru.remove(elem)
            found = True
        else:
            elem = self._elem_new(adr)
            found = False
            if len(self.cache) == 1 << self.cache_bits:
                if self.cache_bits < self.dir_bits:
                    # cache_tab_resize: flush, rehash; nothing is dropped when growing
                    self._cache_flush()
                    self.cache_bits += 1
                else:
                    last = self.lru[-1]
                    if last.ca_changed:
                        self._write_bucket(last)
                    self._elem_free(last)
            self.cache[adr] = elem
        if ref is None and not elem.ca_changed:
            self._cache_flush()
        if ref is None:
            self.lru.insert(0, elem)
        else:
            self.lru.insert(self.lru.index(ref) + 1, elem)
        return found, elem

    def _get_bucket(self, dir_index: int) -> None:
        """``_gdbm_get_bucket``: make the bucket of directory entry ``dir_index`` current."""
        self.bucket_dir = dir_index
        adr = self.dir[dir_index]
        if adr < 2 * self.block_size or adr + self.bucket_size > len(self.file):
            raise GdbmError(f"gdbm directory entry {dir_index}: bucket address {adr}")
        found, elem = self._cache_lookup(adr, None)
        if not found:
            try:
                elem.ca_bucket.unpack(bytes(self.file[adr:adr + self.bucket_size]), adr)
            except (GdbmError, GdbmUnsupported):
                self._elem_free(elem)
                raise
            elem.ca_changed = False

    # --- lookups (findkey.c) --------------------------------------------------------------

    def _findkey(self, key: bytes) -> tuple[int, int]:
        """``_gdbm_findkey``: (element index or -1, hash value); loads the key's bucket."""
        h = gdbm_hash(key)
        self._get_bucket(h >> (C.GDBM_HASH_BITS - self.dir_bits))
        table, elems = self.bucket.h_table, self.bucket_elems
        home = loc = h % elems
        n = len(key)
        while table[loc][0] != -1:
            el = table[loc]
            if el[0] == h and el[3] == n and el[1][:min(C.SMALL, n)] == key[:C.SMALL]:
                if self.file[el[2]:el[2] + n] == key:
                    return loc, h
            loc = (loc + 1) % elems
            if loc == home:
                break
        return -1, h

    def fetch(self, key: bytes) -> bytes | None:
        """``gdbm_fetch``: the data stored under ``key``, or None."""
        loc, _ = self._findkey(key)
        if loc < 0:
            return None
        el = self.bucket.h_table[loc]
        start = el[2] + el[3]
        return bytes(self.file[start:start + el[4]])

    def exists(self, key: bytes) -> bool:
        """``gdbm_exists``."""
        return self._findkey(key)[0] >= 0

    def items(self):
        """Every (key, data) in gdbm's sequential order (``gdbm_firstkey``/``gdbm_nextkey``:
        directory order, each bucket once, slots in order), read without touching the cache."""
        seen = set()
        for adr in self.dir:
            if adr in seen:
                continue
            seen.add(adr)
            elem = self.cache.get(adr)
            if elem is None:
                bucket = Bucket(self.bucket_elems)
                bucket.unpack(bytes(self.file[adr:adr + self.bucket_size]), adr)
            else:
                bucket = elem.ca_bucket
            for h, _ks, ptr, ksize, dsize in bucket.h_table:
                if h != -1:
                    yield (bytes(self.file[ptr:ptr + ksize]),
                           bytes(self.file[ptr + ksize:ptr + ksize + dsize]))

    # --- allocation (falloc.c) ------------------------------------------------------------

    def _alloc(self, num_bytes: int) -> int:
        """``_gdbm_alloc``: first fit from the current bucket's avail, then the header's,
        then whole blocks at the end of the file; the rest is freed again."""
        av = get_elem(num_bytes, self.bucket)
        if av[0] == 0:
            if self.avail.av_count <= len(self.avail.av_table) >> 1 and self.avail_next_block:
                raise GdbmUnsupported("pop_avail_block (the avail stack is read back)")
            av = get_elem(num_bytes, self.avail)
            if av[0] == 0:
                av = self._get_block(num_bytes)
            self.header_changed = True
        self._free(av[1] + num_bytes, av[0] - num_bytes)
        return av[1]

    def _get_block(self, size: int) -> tuple[int, int]:
        """``get_block``: whole blocks at ``next_block``."""
        adr, n = self.next_block, self.block_size
        while n < size:
            n += self.block_size
        self.next_block += n
        self.header_changed = True
        return (n, adr)

    def _free(self, file_adr: int, num_bytes: int) -> None:
        """``_gdbm_free``: big pieces to the header's table, small ones to the bucket's while
        it has room; then ``adjust_bucket_avail`` if the header changed."""
        if num_bytes <= C.IGNORE_SIZE:
            return
        el = (num_bytes, file_adr)
        if num_bytes >= self.block_size or self.bucket.av_count >= C.BUCKET_AVAIL:
            if self.avail.av_count == len(self.avail.av_table):
                self._push_avail_block()
            put_av_elem(el, self.avail)
            self.header_changed = True
        else:
            put_av_elem(el, self.bucket)
        if self.header_changed:
            self._adjust_bucket_avail()

    def _adjust_bucket_avail(self) -> None:
        """``adjust_bucket_avail``: keep the bucket's avail about a third full."""
        third = C.BUCKET_AVAIL // 3
        b = self.bucket
        if b.av_count < third:
            if self.avail.av_count > 0:
                self.avail.av_count -= 1
                put_av_elem(self.avail.av_table[self.avail.av_count], b)
                self.lru[0].ca_changed = True
            return
        while b.av_count > C.BUCKET_AVAIL - third and \
                self.avail.av_count < len(self.avail.av_table):
            el = get_elem(0, b)
            if el[0] == 0:
                raise GdbmError("bucket avail table: an empty entry")
            put_av_elem(el, self.avail)
            self.lru[0].ca_changed = True

    def _push_avail_block(self) -> None:
        """``push_avail_block``: half of the full header table goes to a block of its own."""
        slots = len(self.avail.av_table)
        av_size = ((slots * C.AVAIL_ELEM.size) >> 1) + C.SIZEOF_AVAIL_BLOCK
        new_loc = get_elem(av_size, self.avail)
        if new_loc[0] == 0:
            new_loc = self._get_block(av_size)
        av_adr = new_loc[1]
        moved = []                       # temp->av_table, calloc'ed
        old = self.avail
        keep = list(old.av_table)
        for index in range(1, old.av_count):
            if index & 1:
                moved.append(keep[index])
            else:
                keep[index >> 1] = keep[index]
        temp_next = self.avail_next_block
        self.avail_next_block = av_adr
        old.av_table = keep
        old.av_count -= len(moved)
        self._free(new_loc[1] + av_size, new_loc[0] - av_size)
        block = bytearray(C.AVAIL_BLOCK.pack(slots, len(moved), temp_next))
        for s, a in moved:
            block += C.AVAIL_ELEM.pack(s, a)
        self._write(av_adr, bytes(block) + bytes(av_size - len(block)))

    # --- splitting (bucket.c) -------------------------------------------------------------

    def _split_bucket(self, next_insert: int) -> None:
        """``_gdbm_split_bucket``: split the full current bucket (doubling the directory when
        its bits run out) until the bucket ``next_insert`` goes to has room."""
        old_dirs = []
        while self.bucket.count == self.bucket_elems:
            new_bits = self.bucket.bucket_bits + 1
            adr_0 = self._alloc(self.bucket_size)
            found, n0 = self._cache_lookup(adr_0, self.lru[0])
            if found:
                raise GdbmError(f"bucket cache: bucket at {adr_0} already cached")
            n0.ca_bucket.new(new_bits)
            adr_1 = self._alloc(self.bucket_size)
            found, n1 = self._cache_lookup(adr_1, n0)
            if found:
                raise GdbmError(f"bucket cache: bucket at {adr_1} already cached")
            n1.ca_bucket.new(new_bits)
            if self.dir_bits == self.bucket.bucket_bits:
                if self.dir_size >= C.GDBM_MAX_DIR_HALF:
                    raise GdbmError("gdbm directory overflow")
                dir_size = self.dir_size * 2
                dir_adr = self._alloc(dir_size)
                new_dir = []
                for v in self.dir:
                    new_dir += (v, v)
                old_dirs.append((self.dir_adr, self.dir_size))
                self.dir_adr, self.dir_size, self.dir_bits = dir_adr, dir_size, new_bits
                self.header_changed = True
                self.bucket_dir *= 2
                self.dir = new_dir
            old = self.bucket
            elems = self.bucket_elems
            shift = C.GDBM_HASH_BITS - new_bits
            for old_el in old.h_table:
                if old_el[0] < 0:
                    raise GdbmError("bucket split: an empty slot in a full bucket")
                b = (n1 if (old_el[0] >> shift) & 1 else n0).ca_bucket
                loc = old_el[0] % elems
                while b.h_table[loc][0] != -1:
                    loc = (loc + 1) % elems
                b.h_table[loc] = list(old_el)
                b.count += 1
            b1 = n1.ca_bucket
            b1.av_table[0] = (self.block_size, self._alloc(self.block_size))
            b1.av_count = 1
            b0 = n0.ca_bucket
            b0.av_count = old.av_count
            index = 0
            if b0.av_count == C.BUCKET_AVAIL:
                put_av_elem(old.av_table[0], b1)
                index = 1
                b0.av_count -= 1
            index1 = 0
            for i in range(index, old.av_count):
                b0.av_table[index1] = old.av_table[i]
                index1 += 1
            span = self.dir_bits - new_bits
            dir_start1 = (self.bucket_dir >> span) | 1
            dir_end = (dir_start1 + 1) << span
            dir_start1 <<= span
            dir_start0 = dir_start1 - (dir_end - dir_start1)
            for i in range(dir_start0, dir_start1):
                self.dir[i] = adr_0
            for i in range(dir_start1, dir_end):
                self.dir[i] = adr_1
            n0.ca_changed = n1.ca_changed = True
            self.directory_changed = True
            self.bucket_dir = next_insert >> (C.GDBM_HASH_BITS - self.dir_bits)
            old_bucket = (self.bucket_size, self.lru[0].ca_adr)
            self._elem_free(self.lru[0])
            if self.dir[self.bucket_dir] != adr_0:
                n0, n1 = n1, n0
            put_av_elem(old_bucket, n1.ca_bucket)
            self.lru.remove(n0)
            self.lru.insert(0, n0)
        for adr, size in old_dirs:
            self._free(adr, size)

    # --- storing (gdbmstore.c, update.c) --------------------------------------------------

    def store(self, key: bytes, content: bytes, replace: bool) -> int:
        """``gdbm_store`` with ``GDBM_REPLACE`` (``replace``) or ``GDBM_INSERT``: 0 stored,
        1 the key exists and ``replace`` is false (nothing changes)."""
        loc, h = self._findkey(key)
        file_adr = 0
        new_size = len(key) + len(content)
        if loc != -1:
            if not replace:
                return 1
            el = self.bucket.h_table[loc]
            free_size = el[3] + el[4]
            if free_size != new_size:
                self._free(el[2], free_size)
            else:
                file_adr = el[2]
        if file_adr == 0:
            file_adr = self._alloc(new_size)
        if loc == -1:
            if self.bucket.count == self.bucket_elems:
                self._split_bucket(h)
            b = self.bucket
            loc = start = h % self.bucket_elems
            while b.h_table[loc][0] != -1:
                loc = (loc + 1) % self.bucket_elems
                if loc == start:
                    raise GdbmError("bucket hash table full")
            b.count += 1
            el = b.h_table[loc]
            el[0] = h
            n = min(C.SMALL, len(key))
            el[1] = key[:n] + el[1][n:]
        el = self.bucket.h_table[loc]
        el[2], el[3], el[4] = file_adr, len(key), len(content)
        self._write(file_adr, key + content)
        self.lru[0].ca_changed = True
        self._end_update()
        return 0

    def _end_update(self) -> None:
        """``_gdbm_end_update``: changed buckets, then the directory, then the header."""
        self._cache_flush()
        if self.directory_changed:
            self._write(self.dir_adr, self._pack_dir())
            self.directory_changed = False
        if self.header_changed:
            self._write(0, self._pack_header())
            self._extend(self.next_block)
            self.header_changed = False
