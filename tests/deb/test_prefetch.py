"""Decompressing the next package ahead (``DebArchive.prefetch``, ``Dpkg.read_ahead``).

A prefetched data.tar must read exactly as one opened when it is unpacked (members, types,
bytes), fail with the same error at the same point when it is corrupt, and leave no reader
thread and no open file behind: after it was read, after it was dropped unread, and after a
``dpkg -i`` of several packages that succeeded or stopped at a bad one.
"""

from __future__ import annotations

import gc
import lzma
import os
import random
import subprocess
import threading

import pytest

from helpers.debtools import make_root, raw_deb
from judges import tool
from nuwa.deb.ar import ArReader, build_archive
from nuwa.deb import archive as A
from nuwa.deb import operations
from nuwa.deb import xzblocks
from nuwa.deb.operations import Dpkg
from nuwa.deb.runner import RecordingRunner
from nuwa.errors import InvalidInputError
from nuwa.fs.hostdir import HostDirFS


def _payload(seed: int, n: int) -> bytes:
    """Bytes that compress badly, so the data member is above the read-ahead minimum."""
    return random.Random(seed).randbytes(n)


def _deb(tmp_path, name: str, compression: str = ".xz", seed: int = 1) -> str:
    members = [("./", "dir", None), ("./usr/", "dir", None), ("./usr/share/", "dir", None),
               (f"./usr/share/{name}/", "dir", None)]
    members += [(f"./usr/share/{name}/f{i}", "file", _payload(seed * 10 + i, 200_000)) for i in range(4)]
    members += [(f"./usr/share/{name}/link", "symlink", "f0")]
    control = f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@e>\nDescription: x\n"
    return raw_deb(str(tmp_path / f"{name}.deb"), members, compression=compression, control=control)


def _read(deb: A.DebArchive) -> list:
    return [(m.path, m.type, m.linkname if m.type != A.REG else m.read()) for m in deb.members()]


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nuwa-deb-readahead"]


def _open_fds() -> int:
    gc.collect()  # files of earlier tests' archives left to the collector are not ours to count
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("z", [".xz", ".gz", ""])
def test_a_prefetched_data_tar_reads_as_one_opened_later(tmp_path, z):
    path = _deb(tmp_path, "big", z)
    want = _read(A.open_deb(path))
    deb = A.open_deb(path)
    fds = _open_fds()
    deb.prefetch()
    assert deb._prefetched is not None  # its reader may already have read it all
    assert _read(deb) == want
    assert deb._prefetched is None and not _readers() and _open_fds() == fds
    assert _read(deb) == want  # read again: opened anew


def test_a_dropped_prefetch_leaves_no_reader_or_file(tmp_path):
    deb = A.open_deb(_deb(tmp_path, "big"))
    fds = _open_fds()
    deb.prefetch()
    deb.prefetch()  # one at a time
    assert len(_readers()) == 1
    deb.drop_prefetch()
    assert not _readers() and _open_fds() == fds and deb._prefetched is None


def test_a_small_member_is_read_when_unpacked(tmp_path):
    members = [("./", "dir", None), ("./etc/", "dir", None), ("./etc/x", "file", b"small\n")]
    deb = A.open_deb(raw_deb(str(tmp_path / "s.deb"), members, compression=".xz"))
    deb.prefetch()
    assert deb._prefetched is None and not _readers()


def test_a_corrupt_member_fails_the_same_way_prefetched(tmp_path):
    path = _deb(tmp_path, "big")
    deb = A.open_deb(path)
    m = deb._data_member
    with open(path, "r+b") as f:  # damage the middle of the compressed data.tar
        f.seek(m.offset + m.size // 2)
        f.write(b"\xff" * 64)

    def failure(prefetch: bool) -> str:
        d = A.open_deb(path)
        if prefetch:
            d.prefetch()
        with pytest.raises(InvalidInputError) as e:
            _read(d)
        return str(e.value)
    assert failure(True) == failure(False)
    assert not _readers()


def _installed(root: str) -> dict:
    out = {}
    for d, _dirs, files in os.walk(os.path.join(root, "usr/share")):
        for n in files:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def test_dpkg_install_reads_ahead_and_leaves_nothing(tmp_path):
    debs = [_deb(tmp_path, f"p{i}", z, seed=i) for i, z in enumerate((".xz", ".gz", ".xz"))]
    roots = []
    for read_ahead in (True, False):
        root = make_root(str(tmp_path / f"root-{read_ahead}"))
        d = Dpkg(HostDirFS(root, writable=True), RecordingRunner())
        if not read_ahead:
            d.read_ahead = lambda archives: None  # each archive read when it is unpacked
        d.install(debs)
        d.commit()
        roots.append(root)
    assert _installed(roots[0]) == _installed(roots[1]) and len(_installed(roots[0])) == 15  # 4 files and a link each
    assert not _readers()


def test_dpkg_stopping_at_a_bad_package_leaves_no_reader(tmp_path):
    good = _deb(tmp_path, "good")
    bad = _deb(tmp_path, "bad", seed=2)
    with open(bad, "r+b") as f:
        m = A.open_deb(bad)._data_member
        f.seek(m.offset + m.size // 2)
        f.write(b"\xff" * 64)
    later = _deb(tmp_path, "later", seed=3)
    root = make_root(str(tmp_path / "root"))
    fds = _open_fds()
    fs = HostDirFS(root, writable=True)
    d = Dpkg(fs, RecordingRunner())
    with pytest.raises(InvalidInputError) as e:
        d.install([good, bad, later])
    assert "package bad" in str(e.value)
    fs.close()
    assert not _readers() and _open_fds() == fds
    assert os.path.exists(os.path.join(root, "usr/share/good/f0"))


def _blockers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nuwa-xz-block")]


def _multi_block_deb(tmp_path, name: str, seed: int = 7) -> str:
    """A package whose data.tar.xz is several Blocks (as a kernel's is, at a smaller scale)."""
    deb = _deb(tmp_path, name, ".xz", seed=seed)
    plain = A.open_deb(deb)
    m = plain._data_member
    with open(deb, "rb") as f:
        f.seek(m.offset)
        tar = lzma.decompress(f.read(m.size))
    tool("xz")
    blocks = subprocess.run(["xz", "-c", "-T2", "--block-size=200000", "-0"], input=tar, capture_output=True,
                            check=True).stdout
    with open(deb, "rb") as f:
        ar = ArReader(f, deb)
        members = [(a.name, ar.read(a, a.size)) for a in ar.members() if not a.name.startswith("data.tar")]
    members.append(("data.tar.xz", blocks))
    with open(deb, "wb") as f:
        f.write(build_archive(members))
    return deb


@pytest.fixture
def _small_parallel(monkeypatch):
    monkeypatch.setattr(xzblocks, "PARALLEL_MIN", 4096)
    monkeypatch.setattr(xzblocks, "PARALLEL_REST_MIN", 0)


def test_a_prefetched_multi_block_data_tar_reads_as_one_opened_later(tmp_path, _small_parallel):
    path = _multi_block_deb(tmp_path, "kern")
    want = _read(A.open_deb(path))
    deb = A.open_deb(path)
    assert deb.multi_block()
    fds = _open_fds()
    deb.prefetch()
    assert deb._prefetched is not None and isinstance(deb._prefetched[1].raw, xzblocks.BlockDecoder)
    assert _read(deb) == want
    assert deb._prefetched is None and not _blockers() and _open_fds() == fds


def test_read_ahead_starts_the_first_multi_block_archive_early(tmp_path, _small_parallel):
    """The next PREFETCH_NEXT archives and the first multi-block one still to come start
    decoding; unpacking one moves the window on; dropping the read-ahead stops them all."""
    n = operations.PREFETCH_NEXT
    debs = [A.open_deb(_deb(tmp_path, f"p{i}", ".gz", seed=i)) for i in range(n + 2)]
    kern = A.open_deb(_multi_block_deb(tmp_path, "kern"))
    later = A.open_deb(_multi_block_deb(tmp_path, "later", seed=9))
    assert not debs[0].multi_block() and kern.multi_block()
    d = Dpkg(HostDirFS(make_root(str(tmp_path / "root")), writable=True), RecordingRunner())
    d.read_ahead(debs + [kern, later])
    assert [a._prefetched is not None for a in debs] == [True] * n + [False] * 2
    assert kern._prefetched is not None and later._prefetched is None
    d._next_after(debs[0])  # as unpacking the first does
    assert debs[n]._prefetched is not None and debs[n + 1]._prefetched is None
    debs[0].drop_prefetch()
    d.drop_read_ahead()
    assert not _readers() and not _blockers() and kern._prefetched is None


def test_dpkg_install_with_a_multi_block_package_reads_ahead_and_leaves_nothing(tmp_path, _small_parallel):
    debs = [_deb(tmp_path, "p0", ".gz", seed=1), _deb(tmp_path, "p1", ".xz", seed=2), _multi_block_deb(tmp_path, "kern")]
    roots = []
    for read_ahead in (True, False):
        root = make_root(str(tmp_path / f"root-{read_ahead}"))
        d = Dpkg(HostDirFS(root, writable=True), RecordingRunner())
        if not read_ahead:
            d.read_ahead = lambda archives: None
        d.install(debs)
        d.commit()
        roots.append(root)
    assert _installed(roots[0]) == _installed(roots[1]) and len(_installed(roots[0])) == 15
    assert not _readers() and not _blockers()
