"""nuwa.formats.bdbhash against a hash file libdb 5.3 wrote: the /etc/aliases.db that real
``newaliases`` made while mmdebstrap installed postfix in the cached bookworm tree. Given that
file's file id, time stamp and host name, the writer gives the same bytes."""

from __future__ import annotations

import os
import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debian_tree import bookworm_tree
from nuwa.formats.bdbhash import HashDB, Unsupported, hash5, read
from nuwa.formats.c_bdbhash import CHARKEY, HMETA, PAGE, SIZEOF_PAGE


@pytest.fixture(scope="module")
def real_db():
    tree = bookworm_tree(extra=("postfix",))
    with open(os.path.join(tree, "etc/aliases.db"), "rb") as f:
        return f.read(), open(os.path.join(tree, "etc/aliases"), "rb").read()


def test_rebuilds_real_file(real_db):
    data, aliases = real_db
    stamp = re.search(rb"\x01(\d{10})\x01YP_LAST_MODIFIED", data).group(1)
    host = re.search(rb"\x01([^\x00\x01]*)\x01YP_MASTER_NAME", data).group(1)
    assert struct.unpack_from("<I", data, 92)[0] == hash5(CHARKEY)
    db = HashDB(data[52:72])
    for line in aliases.decode().splitlines():  # the default file: "name: value" lines only
        if line and not line.startswith("#"):
            key, value = (s.strip() for s in line.split(":", 1))
            assert db.put(key.lower().encode() + b"\0", value.encode() + b"\0")
    assert db.put(b"@\0", b"@\0")
    assert db.put(b"YP_LAST_MODIFIED", stamp) and db.put(b"YP_MASTER_NAME", host)
    assert db.image() == data


def test_duplicates_limits_and_growth():
    db = HashDB(bytes(20))
    assert db.put(b"a\0", b"1\0") and not db.put(b"a\0", b"2\0")
    assert db.nelem == 4097
    with pytest.raises(Unsupported, match="overflow pages"):
        db.put(b"big\0", b"x" * 1025)
    for i in range(3000):
        assert db.put(b"key%d\0" % i, b"value%d\0" % i)
    assert db.max_bucket > 1 and len(db.image()) == (db.last_pgno + 1) * 4096
    with pytest.raises(ValueError):
        HashDB(bytes(19))


def test_sorted_pages():
    db = HashDB(bytes(20))
    keys = [b"k%d\0" % i for i in (5, 3, 9, 1)]
    for k in keys:
        db.put(k, b"v")
    page_of = {k: db.bucket(k) + 1 for k in keys}
    image = db.image()
    for pgno in set(page_of.values()):
        page = image[pgno * 4096:(pgno + 1) * 4096]
        n, = struct.unpack_from("<H", page, 20)
        inp = struct.unpack_from(f"<{n}H", page, 26)
        stored = [page[inp[i] + 1:(inp[i - 1] if i else 4096)] for i in range(0, n, 2)]
        assert stored == sorted(k for k in keys if page_of[k] == pgno)


def test_layout_round_trip(real_db):
    """HMETA and PAGE of the real file: build(parse(b)) == b."""
    data, _ = real_db
    assert HMETA.build(HMETA.parse(data)) == data[:HMETA.sizeof()]
    for pgno in range(1, len(data) // 4096):
        page = data[pgno * 4096:pgno * 4096 + SIZEOF_PAGE]
        assert PAGE.build(PAGE.parse(page)) == page


def test_reader_reads_real_file(real_db):
    data, _ = real_db
    pairs = read(data)
    assert pairs[b"postmaster\0"] == b"root\0" and pairs[b"@\0"] == b"@\0"
    assert set(pairs) >= {b"YP_LAST_MODIFIED", b"YP_MASTER_NAME"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=0, max_size=300), st.binary(max_size=1024)), max_size=400))
def test_write_read_round_trip(puts):
    """Whatever is put (first put of a key wins) is read back, through splits and chains."""
    db = HashDB(bytes(range(20)))
    expected: dict[bytes, bytes] = {}
    for key, value in puts:
        assert db.put(key, value) == (key not in expected)
        expected.setdefault(key, value)
    image = db.image()
    assert read(image) == expected
    assert HMETA.parse(image).nelem == 4096 + len(expected)
