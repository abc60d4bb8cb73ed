"""The shared piece-by-piece reader and copier (nuwa/fs/content.py)."""

from __future__ import annotations

import os

from nuwa.fs.content import CHUNK, copy_content, fill, is_zeros, pieces
from nuwa.fs.memory import MemoryFS


class Bytes:
    """A reader over ``data`` that records each read; ``short`` ends it early (a file that
    shrank while it was read)."""

    def __init__(self, data: bytes, short: int | None = None):
        self.data, self.short, self.reads = data, short, []

    def pread(self, off: int, n: int) -> bytes:
        self.reads.append((off, n))
        end = len(self.data) if self.short is None else self.short
        return self.data[off:min(off + n, end)]


class Writes:
    def __init__(self):
        self.at = []

    def pwrite(self, off: int, data: bytes) -> int:
        self.at.append((off, len(data)))
        return len(data)


def test_pieces_are_at_most_a_chunk_in_order_and_cover_the_size():
    data = bytes(range(256)) * (CHUNK // 256 * 2 + 3)
    r = Bytes(data)
    got = list(pieces(r, len(data)))
    assert b"".join(c for _o, c in got) == data
    assert [o for o, _c in got] == [0, CHUNK, 2 * CHUNK]
    assert all(n <= CHUNK for _o, n in r.reads)
    assert list(pieces(Bytes(data), 10)) == [(0, data[:10])]


def test_a_reader_that_runs_dry_ends_the_loop():
    r = Bytes(b"x" * 100, short=40)
    assert [(o, len(c)) for o, c in pieces(r, 100)] == [(0, 40)]
    w = Writes()
    assert copy_content(r, w, 100) == 40 and w.at == [(0, 40)]


def test_zero_pieces_are_left_as_holes_unless_asked_otherwise():
    data = b"a" * 10 + bytes(CHUNK) + b"b"
    w = Writes()
    assert copy_content(Bytes(data), w, len(data)) == len(data)
    # a piece with any byte not zero is written whole (the "a"s, then the zeros up to the "b");
    # a piece of zeros only is not
    assert w.at == [(0, CHUNK), (CHUNK, 11)]
    zeros = bytes(3 * CHUNK)
    w2 = Writes()
    assert copy_content(Bytes(zeros + b"c"), w2, len(zeros) + 1) == len(zeros) + 1
    assert w2.at == [(3 * CHUNK, 1)]
    w3 = Writes()
    copy_content(Bytes(zeros), w3, len(zeros), holes=False)
    assert w3.at == [(0, CHUNK), (CHUNK, CHUNK), (2 * CHUNK, CHUNK)]
    assert is_zeros(b"") and is_zeros(bytes(5)) and not is_zeros(b"\0\1")


def test_is_zeros_finds_one_byte_anywhere():
    # whole pieces and short ones, bytes and bytearray: a single set byte at the start, in
    # the middle or at the end makes a piece data
    for n in (1, 2, 4095, CHUNK - 1, CHUNK):
        assert is_zeros(bytes(n)) and is_zeros(bytearray(n))
        for at in {0, n // 2, n - 1}:
            for kind in (bytes, bytearray):
                b = bytearray(n)
                b[at] = 0x80
                assert not is_zeros(kind(b)), (n, at, kind)


def test_copy_between_file_handles_keeps_the_bytes():
    fs = MemoryFS()
    data = b"head" + bytes(CHUNK + 7) + b"tail"
    h = fs.open_handle("/a", os.O_WRONLY | os.O_CREAT, 0o644)
    h.pwrite(0, data)
    h.close()
    src = fs.open_handle("/a")
    dst = fs.open_handle("/b", os.O_WRONLY | os.O_CREAT, 0o644)
    assert copy_content(src, dst, src.size()) == len(data)
    assert dst.size() == len(data)  # the last piece ("tail") was written
    src.close()
    dst.close()
    r = fs.open_handle("/b")
    assert r.pread(0, len(data) + 10) == data
    r.close()


def test_fill_keeps_holes_and_sets_the_size():
    fs = MemoryFS()
    data = b"x" + bytes(2 * CHUNK)  # ends in a hole: only the truncate gives the size
    h = fs.open_handle("/f", os.O_WRONLY | os.O_CREAT, 0o644)
    fill(h, Bytes(data), len(data))
    assert h.size() == len(data)
    h.close()
    r = fs.open_handle("/f")
    assert r.pread(0, len(data) + 1) == data
    r.close()
