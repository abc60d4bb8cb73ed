"""The overlay's spool arena (``SpoolArena``/``ArenaFile``): past its memory budget, files
written through an overlay share one temporary file, appended to while each is written front
to back, moved to a file of their own on any other write.

Checked against a model (a bytearray per file) under any interleaving of writes, holes and
truncates across several files of one arena, and that the in-memory total the budget is
judged by stays exact as contents are written, moved to disk and dropped.
"""

from __future__ import annotations

import gc
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import ArenaFile, Overlay, SpoolArena, SpoolContent

op = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 3), st.binary(min_size=1, max_size=3000)),
    st.tuples(st.just("pwrite"), st.integers(0, 3), st.integers(0, 12000), st.binary(min_size=1, max_size=3000)),
    st.tuples(st.just("gap"), st.integers(0, 3), st.integers(1, 9000), st.binary(min_size=1, max_size=300)),
    st.tuples(st.just("truncate"), st.integers(0, 3), st.integers(0, 12000)),
)


def _apply(model: bytearray, offset: int, data: bytes) -> None:
    if offset > len(model):
        model.extend(bytes(offset - len(model)))
    model[offset:offset + len(data)] = data


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=25), st.sampled_from([0, 8000]))
def test_files_in_one_arena_read_back_what_was_written(ops, budget):
    """Four files of one arena (budget 0: all in the arena; 8000: the first in memory until
    the budget is spent), written in any interleaving: each reads back its model's bytes."""
    arena = SpoolArena(1 << 20, budget)
    files = [SpoolContent(arena) for _ in range(4)]
    models = [bytearray() for _ in range(4)]
    for o in ops:
        c, m = files[o[1]], models[o[1]]
        if o[0] == "append":
            _apply(m, len(m), o[2])
            c.pwrite(c.size, o[2])
        elif o[0] == "pwrite":
            _apply(m, o[2], o[3])
            c.pwrite(o[2], o[3])
        elif o[0] == "gap":
            _apply(m, len(m) + o[2], o[3])
            c.pwrite(c.size + o[2], o[3])
        else:
            del m[o[2]:]
            m.extend(bytes(o[2] - len(m)))
            c.truncate(o[2])
        for c2, m2 in zip(files, models):
            assert c2.size == len(m2) and c2.pread(0, c2.size) == bytes(m2)
    assert arena.in_memory == sum(c.size for c in files if c._in_memory)


def test_a_file_written_front_to_back_stays_in_the_arena():
    arena = SpoolArena(1 << 20, 0)
    a, b = SpoolContent(arena), SpoolContent(arena)
    assert isinstance(a.f, ArenaFile) and isinstance(b.f, ArenaFile)
    for i in range(5):
        a.pwrite(i * 1000, bytes([i]) * 1000)
    a.pwrite(9000, b"after a hole")
    b.pwrite(0, b"second")
    assert a.f.own is None and b.f.own is None and b.f.start == a.f.start + a.size
    assert a.pread(5000, 4000) == bytes(4000) and a.pread(9000, 12) == b"after a hole"
    a.pwrite(a.size, b"more")  # b was appended after a: a moves to a file of its own
    assert a.f.own is not None and b.f.own is None
    assert a.pread(9000, 100) == b"after a holemore" and b.pread(0, 100) == b"second"
    assert arena.in_memory == 0


def test_the_in_memory_total_is_exact_as_contents_come_and_go():
    arena = SpoolArena(1 << 16, 1 << 30)
    a, b = SpoolContent(arena), SpoolContent(arena)
    a.pwrite(0, b"x" * 1000)
    b.pwrite(0, b"y" * 5000)
    assert arena.in_memory == 6000
    a.truncate(10)
    assert arena.in_memory == 5010
    b.pwrite(0, os.urandom(1 << 17))  # past spool_max: b goes to disk and gives its bytes back
    assert arena.in_memory == 10
    del a
    gc.collect()
    assert arena.in_memory == 0


def test_an_overlay_past_its_budget_puts_new_files_in_the_arena_and_commits_them():
    """An overlay with a 64 KiB budget writes 200 files of 4 KiB: the first 16 stay in memory,
    the rest go to the arena; every file reads back and commits byte for byte."""
    base = MemoryFS()
    base.mkdir("/d", 0o755)
    ov = Overlay(base, memory_budget=64 << 10)
    data = {f"/d/f{i}": os.urandom(4096) for i in range(200)}
    for path, b in data.items():
        h = ov.open_handle(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        h.pwrite(0, b[:1000])
        h.pwrite(1000, b[1000:])
        h.close()
    kinds = [isinstance(ov._node(p, False).content.f, ArenaFile) for p in data]
    assert kinds == [False] * 16 + [True] * 184
    assert ov._arena.in_memory == 64 << 10
    assert all(ov.read_bytes(p) == b for p, b in data.items())
    ov.commit()
    assert all(base.read_bytes(p) == b for p, b in data.items())


def test_a_file_emptied_in_the_arena_is_written_again_without_a_copy():
    """Truncating an arena file to nothing (O_TRUNC, as a rewritten status file is) starts a
    new run at its next write instead of copying the old one to a file of its own; another
    file appended in between keeps its bytes, and a hole in the new run reads as zeros."""
    arena = SpoolArena(1 << 20, 0)
    a, b = SpoolContent(arena), SpoolContent(arena)
    a.pwrite(0, b"A" * 5000)
    b.pwrite(0, b"B" * 3000)
    a.truncate(0)
    assert a.f.own is None and a.size == 0 and a.pread(0, 10) == b""
    a.pwrite(100, b"new")
    assert a.f.own is None
    assert a.pread(0, 200) == bytes(100) + b"new"
    assert b.pread(0, 4000) == b"B" * 3000
    a.truncate(0)
    a.pwrite(0, b"x" * 10)
    b.pwrite(3000, b"b")  # b is no longer the arena's last run: it moves out, a is untouched
    assert a.pread(0, 20) == b"x" * 10 and b.pread(0, 4000) == b"B" * 3000 + b"b"


def test_large_writes_are_made_in_pieces_and_read_back_whole(monkeypatch):
    """A write larger than WRITE_PIECE reaches the arena file, a spool file and a moved-out file
    in pieces, and every byte reads back in place."""
    import nuwa.fs.overlay as ov

    monkeypatch.setattr(ov, "WRITE_PIECE", 4096)
    sizes = []
    real = os.pwrite
    monkeypatch.setattr(ov.os, "pwrite", lambda fd, d, off: sizes.append(len(d)) or real(fd, d, off))
    data = os.urandom(3 * 4096 + 123)
    arena = SpoolArena(1 << 20, 0)
    a, b = SpoolContent(arena), SpoolContent(arena)
    a.pwrite(0, data)
    assert sizes and max(sizes) <= 4096 and sum(sizes) == len(data)
    b.pwrite(0, b"x")
    a.pwrite(len(data), data)  # a is no longer the last run: it moves out, then grows in pieces
    assert a.pread(0, 2 * len(data)) == data + data and b.pread(0, 1) == b"x"
    m = SpoolContent(SpoolArena(1 << 20, 1 << 20))  # in memory, then rolled over to disk
    m.pwrite(0, data * 400)
    assert m.pread(0, len(data) * 400) == data * 400
