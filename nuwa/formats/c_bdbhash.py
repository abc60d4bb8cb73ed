"""Berkeley DB 5.3 hash file layout, declared once (no I/O, no policy).

Source: libdb 5.3.28 ``src/dbinc/db_page.h`` (``DBMETA``, ``HMETA33``, ``PAGE``, ``HOFFPAGE``,
the page types and item types) and ``src/dbinc/hash.h`` (``CHARKEY``, ``MINFILL``,
``NCACHED``); field names are libdb's. libdb writes in the host's byte order: little-endian
here (amd64, arm64), as every Debian 12 release architecture but s390x.
"""

from __future__ import annotations

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Struct

DB_HASHMAGIC = 0x061561
DB_HASHVERSION = 9
#: page types (db_page.h)
P_INVALID, P_HASH_UNSORTED, P_OVERFLOW, P_HASHMETA, P_HASH = 0, 2, 7, 8, 13
#: hash item types (db_page.h)
H_KEYDATA, H_DUPLICATE, H_OFFPAGE, H_OFFDUP = 1, 2, 3, 4
DB_FILE_ID_LEN = 20
#: spare page groups (hash.h)
NCACHED = 32
#: the key whose hash the meta page records (hash.h; ``sizeof`` counts its NUL)
CHARKEY = b"%$sniglet^&\0"
#: an item longer than pagesize / MINFILL goes off page (``ISBIG``, hash.h)
MINFILL = 4
#: how many bytes of a new page buffer mpool clears (``DB_PAGE_DB_LEN``, db_page.h)
DB_PAGE_DB_LEN = 32

DB_LSN = Struct("file" / Int32ul, "offset" / Int32ul)

# --- DBMETA (db_page.h "Meta-data page header"): bytes 0-71 of every meta page ------------------
DBMETA = Struct(
    "lsn" / DB_LSN,              # 00-07
    "pgno" / Int32ul,            # 08-11
    "magic" / Int32ul,           # 12-15
    "version" / Int32ul,         # 16-19
    "pagesize" / Int32ul,        # 20-23
    "encrypt_alg" / Int8ul,      # 24
    "type" / Int8ul,             # 25
    "metaflags" / Int8ul,        # 26
    "unused1" / Int8ul,          # 27
    "free" / Int32ul,            # 28-31: the free list's head
    "last_pgno" / Int32ul,       # 32-35
    "nparts" / Int32ul,          # 36-39
    "key_count" / Int32ul,       # 40-43
    "record_count" / Int32ul,    # 44-47
    "flags" / Int32ul,           # 48-51
    "uid" / Bytes(DB_FILE_ID_LEN),  # 52-71: the file id (os/os_fid.c __os_fileid)
)

# --- HMETA33 (db_page.h "Hash metadata page layout"): DBMETA then the hash fields --------------
HMETA = Struct(
    "dbmeta" / DBMETA,
    "max_bucket" / Int32ul,      # 72-75
    "high_mask" / Int32ul,       # 76-79
    "low_mask" / Int32ul,        # 80-83
    "ffactor" / Int32ul,         # 84-87
    "nelem" / Int32ul,           # 88-91
    "h_charkey" / Int32ul,       # 92-95
    "spares" / Array(NCACHED, Int32ul),  # 96-223
)

# --- PAGE (db_page.h "Page header"): the 26 bytes before a page's index --------------------------
PAGE = Struct(
    "lsn" / DB_LSN,              # 00-07
    "pgno" / Int32ul,            # 08-11
    "prev_pgno" / Int32ul,       # 12-15
    "next_pgno" / Int32ul,       # 16-19
    "entries" / Int16ul,         # 20-21
    "hf_offset" / Int16ul,       # 22-23
    "level" / Int8ul,            # 24
    "type" / Int8ul,             # 25
)
SIZEOF_PAGE = PAGE.sizeof()
