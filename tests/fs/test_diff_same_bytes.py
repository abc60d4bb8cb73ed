"""Contents of equal size are compared byte by byte (``same_bytes``) before anything is hashed.

The judge is hashlib on the bytes each side was given: a file rewritten with the same bytes is
not a content change and gets no hash; one that differs anywhere (first byte, inside a later
1 MiB piece, last byte) is, with both sides' sha256; on the memory backend, a host directory
and an overlay over it.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from nuwa.fs.content import CHUNK
from nuwa.fs.diff import diff_trees, same_bytes
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay

BODY = os.urandom(2 * CHUNK + 777)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


CASES = {"same": BODY, "first": _flip(BODY, 0), "later_piece": _flip(BODY, CHUNK + 5), "last": _flip(BODY, len(BODY) - 1)}


def _trees(kind, tmp_path):
    if kind == "memory":
        a, b = MemoryFS(), MemoryFS()
    else:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a, b = HostDirFS(str(tmp_path / "a"), writable=True), HostDirFS(str(tmp_path / "b"), writable=True)
    for name in CASES:
        a.write_bytes("/" + name, BODY)
    if kind == "overlay":
        b = Overlay(a)
    for name, data in CASES.items():
        b.write_bytes("/" + name, data)
    return a, b


@pytest.mark.parametrize("kind", ["memory", "hostdir", "overlay"])
def test_equal_sizes_differ_only_where_the_bytes_do(kind, tmp_path):
    a, b = _trees(kind, tmp_path)
    for name, data in CASES.items():
        assert same_bytes(a, b, "/" + name, len(BODY)) is (data == BODY)
    entries = {e.path: e for e in (b.changes() if kind == "overlay" else diff_trees(a, b))}
    for name, data in CASES.items():
        e = entries.get("/" + name)
        if data == BODY:
            assert e is None or "content" not in e.changes
        else:
            assert "content" in e.changes and "size" not in e.changes
            assert e.a.sha256 == hashlib.sha256(BODY).hexdigest()
            assert e.b.sha256 == hashlib.sha256(data).hexdigest()
