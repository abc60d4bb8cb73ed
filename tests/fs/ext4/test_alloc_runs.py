"""``alloc._free_run`` (byte-skipping search) against the plain big-integer reading of the same
bitmap bits: the free run at or after ``start`` below ``limit``, bits past the bitmap clear."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.fs.ext4.alloc import _free_run


def reference(bm: bytes, start: int, limit: int):
    """The whole bitmap as one little-endian integer, bit ``k`` = block ``k``."""
    if start >= limit:
        return None
    x = int.from_bytes(bm[start >> 3:(limit + 7) // 8], "little") >> (start & 7)
    free = ~x & ((1 << (limit - start)) - 1)
    if not free:
        return None
    lo = (free & -free).bit_length() - 1
    used = x >> lo
    length = limit - start - lo if used == 0 else min((used & -used).bit_length() - 1, limit - start - lo)
    return start + lo, length


# bitmaps as real groups look: long full and empty stretches with a few mixed bytes
_bytes = st.lists(st.sampled_from([0x00, 0xFF, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x5A]), max_size=64).map(bytes)


@settings(max_examples=3000, deadline=None)
@given(_bytes, st.data())
def test_free_run_matches_the_integer_reading(bm, data):
    limit = data.draw(st.integers(0, len(bm) * 8 + 16))
    start = data.draw(st.integers(0, limit + 4))
    assert _free_run(bytearray(bm), start, limit) == reference(bm, start, limit)


def test_free_run_edges():
    full = bytearray(b"\xff" * 512)
    assert _free_run(full, 0, 4096) is None
    full[300] = 0xEF  # bit 4 of byte 300 clear
    assert _free_run(full, 0, 4096) == (2404, 1)
    assert _free_run(full, 2405, 4096) is None
    empty = bytearray(512)
    assert _free_run(empty, 7, 4096) == (7, 4089)
    assert _free_run(empty, 7, 100) == (7, 93)
    assert _free_run(bytearray(b"\xff"), 0, 16) == (8, 8)  # past the bitmap: clear
