"""The overlay's modified contents (``SpoolContent``) hash their own spooled bytes, and keep
the hash until the next write, so ``Overlay.changes()`` hashes the new side without a handle.

The hash must equal the sha256 of the bytes read back after any sequence of writes and
truncates, asked between any two of them (hypothesis: a kept hash that a write did not drop
fails), with holes, a trailing hole and a spool rolled over to a temporary file.
"""

from __future__ import annotations

import hashlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.fs.diff import sha256_of
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay, SpoolArena, SpoolContent


def _read_back(c: SpoolContent) -> str:
    return hashlib.sha256(c.pread(0, c.size)).hexdigest()


op = st.one_of(
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=5000)),
    st.tuples(st.just("pwrite"), st.integers(0, 20000), st.binary(min_size=1, max_size=5000)),
    st.tuples(st.just("gap"), st.integers(1, 9000), st.binary(min_size=1, max_size=300)),
    st.tuples(st.just("truncate"), st.integers(0, 20000)),
)


@settings(max_examples=300)
@given(st.lists(op, max_size=12), st.sampled_from([(64, 1 << 30), (1 << 20, 1 << 30), (1 << 20, 0)]))
def test_the_hash_is_the_contents_hash_after_any_writes(ops, limits):
    # spool_max 64: rolled over to a temporary file at once; budget 0: in the arena
    c = SpoolContent(SpoolArena(*limits))
    for o in ops:
        if o[0] == "append":
            c.pwrite(c.size, o[1])
        elif o[0] == "pwrite":
            c.pwrite(o[1], o[2])
        elif o[0] == "gap":
            c.pwrite(c.size + o[1], o[2])
        else:
            c.truncate(o[1])
        assert c.sha256() == _read_back(c)


def test_holes_and_a_trailing_hole_hash_as_zeros():
    c = SpoolContent(SpoolArena(1 << 20, 1 << 30))
    c.pwrite(0, b"head")
    c.pwrite(4, os.urandom(3 << 20))
    c.pwrite((3 << 20) + 4 + 5000, b"after a hole")  # copy_of leaves zero pieces unwritten
    c.truncate(c.size + (2 << 20) + 9000)  # a trailing hole longer than a piece
    assert c.sha256() == _read_back(c)
    c.truncate(c.size - 9000)
    assert c.sha256() == _read_back(c)


def test_changes_hash_the_new_side_from_the_spool():
    base = MemoryFS()
    base.write_bytes("/f", b"old contents")
    ov = Overlay(base)
    data = os.urandom(300_000)
    h = ov.open_handle("/f.new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    for off in range(0, len(data), 65536):  # as dpkg's unpack writes a file
        h.pwrite(off, data[off:off + 65536])
    h.close()
    ov.rename("/f.new", "/f")
    content = ov._node("/f", False).content
    assert isinstance(content, SpoolContent)

    def no_read(offset, n):
        raise AssertionError("the new side was read through a handle")

    content.pread = no_read
    (entry,) = ov.changes()
    assert entry.path == "/f" and "content" in entry.changes
    assert entry.a.sha256 == sha256_of(base, "/f") and entry.b.sha256 == hashlib.sha256(data).hexdigest()


def test_a_large_write_goes_to_the_spool_file_first():
    """A write that would pass the overlay's in-memory limit rolls its file to disk before it
    is written (not held in memory and then copied out): what is read back is what was written."""
    ov = Overlay(MemoryFS(), spool_max=1 << 16)
    data = os.urandom(1 << 18)
    h = ov.open_handle("/big", os.O_WRONLY | os.O_CREAT)
    h.pwrite(0, bytearray(data))
    h.close()
    content = ov._node("/big", False).content
    assert content.f._rolled and ov.read_bytes("/big") == data
