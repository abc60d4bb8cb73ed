"""GNU dbm 1.23 on-disk layout, declared once (no I/O, no policy).

Source: gdbm 1.23 ``src/gdbmdefs.h`` (the structs) and ``src/gdbmconst.h`` (the constants);
field names are the upstream C names. The layout is the C structs' memory image as written by
an x86-64 (LP64, little-endian, 8-byte ``off_t``) build: ``GDBM_MAGIC64``, ``int`` 4 bytes,
``off_t`` 8 bytes, natural alignment (so ``avail_elem`` has 4 bytes of padding after
``av_size``, and ``hash_bucket`` 4 after ``av_count``). The formats are plain ``struct``
strings: a bucket holds ~170 elements and mandb stores thousands of records, so these are the
hot paths of the writer.
"""

from __future__ import annotations

import struct

#: gdbmconst.h: GDBM_MAGIC64 (a 64-bit off_t build without GDBM_NUMSYNC)
GDBM_MAGIC64 = 0x13579ACF
#: gdbmconst.h: the number of bits of a hash value
GDBM_HASH_BITS = 31
#: gdbmconst.h: freed pieces this small are forgotten
IGNORE_SIZE = 4
#: gdbmconst.h: key bytes kept in a bucket element
SMALL = 4
#: gdbmconst.h: avail elements a bucket holds
BUCKET_AVAIL = 6
#: gdbmsetopt/bucket.c: INIT_CACHE_BITS, the bucket cache's first size (2**9 entries)
INIT_CACHE_BITS = 9
#: bucket.c GDBM_MAX_DIR_HALF (INT32_MAX / 2): the directory may not double past this size
GDBM_MAX_DIR_HALF = 0x7FFFFFFF // 2

# gdbm_file_header: header_magic, block_size, dir, dir_size, dir_bits, bucket_size,
# bucket_elems, next_block
GDBM_FILE_HEADER = struct.Struct("<iiqiiiiq")
# avail_block (without its av_table): size, count, next_block
AVAIL_BLOCK = struct.Struct("<iiq")
# avail_elem: av_size, (4 bytes padding), av_adr
AVAIL_ELEM = struct.Struct("<i4xq")
# hash_bucket's fields around the bucket_avail table: av_count (+4 padding) ... then
# bucket_bits, count
BUCKET_AV_COUNT = struct.Struct("<i4x")
BUCKET_BITS_COUNT = struct.Struct("<ii")
# bucket_element: hash_value, key_start[SMALL], data_pointer, key_size, data_size
BUCKET_ELEMENT = struct.Struct("<i4sqii")

#: offsetof(gdbm_file_standard_header, avail)
HEADER_AVAIL_OFFSET = GDBM_FILE_HEADER.size
#: offsetof(hash_bucket, bucket_avail)
BUCKET_AVAIL_OFFSET = BUCKET_AV_COUNT.size
#: offsetof(hash_bucket, bucket_bits)
BUCKET_BITS_OFFSET = BUCKET_AVAIL_OFFSET + BUCKET_AVAIL * AVAIL_ELEM.size
#: offsetof(hash_bucket, h_table)
BUCKET_TABLE_OFFSET = BUCKET_BITS_OFFSET + BUCKET_BITS_COUNT.size
#: sizeof(hash_bucket) (it declares one h_table element)
SIZEOF_HASH_BUCKET = BUCKET_TABLE_OFFSET + BUCKET_ELEMENT.size
#: sizeof(avail_block) (it declares one av_table element)
SIZEOF_AVAIL_BLOCK = AVAIL_BLOCK.size + AVAIL_ELEM.size
#: sizeof(off_t): a directory entry
SIZEOF_OFF_T = 8
