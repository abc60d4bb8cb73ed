"""The next package's data.tar decompressed while the current one is unpacked (issue 15).

A prefetched archive must read back exactly as one read inline (contents, errors at the same
point), its thread must end when the stream is read or dropped, and a dpkg job must prefetch
each next archive and leave no thread behind, whether it succeeds or fails; the tree it makes
is judged against the real ``dpkg -i``.
"""

import os
import threading
import time

import pytest

from helpers.debtools import build_deb, make_root
from helpers.oracle import diff_snapshots, snapshot
from judges import tool
from nuwa.deb import archive as A
from nuwa.deb.operations import Dpkg
from nuwa.deb.runner import RecordingRunner
from nuwa.errors import InvalidInputError
from nuwa.fs.hostdir import HostDirFS

LOCKS = ("/var/lib/dpkg/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/triggers/Lock",
         "/var/lib/dpkg/triggers/Unincorp", "/var/log/dpkg.log")


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "nuwa-deb-readahead")


def _no_threads_left(timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while _threads() and time.monotonic() < end:
        time.sleep(0.01)
    return _threads() == 0


def _big_deb(out, name: str, version: str = "1", extra: str = "") -> str:
    # random bytes do not compress: the data.tar member is above READ_AHEAD_MIN
    files = {f"/usr/share/{name}/blob{i}": os.urandom(150_000) for i in range(3)}
    files[f"/usr/share/{name}/small"] = b"small\n"
    p = build_deb(str(out), name, version, files, extra=extra)
    assert A.open_deb(p)._data_member.size >= A.READ_AHEAD_MIN
    return p


def _read_all(deb: A.DebArchive):
    return [(m.path, m.type, m.mode, m.read()) for m in deb.members()]


def test_a_prefetched_archive_reads_as_one_read_inline(tmp_path):
    p = _big_deb(tmp_path, "t")
    want = _read_all(A.open_deb(p))
    assert _no_threads_left()
    deb = A.open_deb(p)
    deb.prefetch()
    assert deb._prefetched is not None
    time.sleep(0.05)  # let it run ahead (it may well be done)
    assert _read_all(deb) == want
    assert _no_threads_left()
    assert _read_all(deb) == want  # a second read decompresses again, inline read-ahead as before


def test_a_prefetched_corrupt_archive_fails_where_an_inline_one_does(tmp_path):
    data = bytearray(open(_big_deb(tmp_path, "t"), "rb").read())
    data[-3000:-2000] = b"\x55" * 1000  # inside the compressed data.tar, after its first members
    bad = tmp_path / "corrupt.deb"
    bad.write_bytes(bytes(data))
    deb = A.open_deb(str(bad))
    deb.prefetch()
    time.sleep(0.05)
    got = []
    with pytest.raises(InvalidInputError, match="corrupt|truncated") as e1:
        for m in deb.members():
            got.append(m.path)
            m.read()
    inline = []
    with pytest.raises(InvalidInputError, match="corrupt|truncated") as e2:
        for m in A.open_deb(str(bad)).members():
            inline.append(m.path)
            m.read()
    assert got == inline and len(got) > 1 and str(e1.value) == str(e2.value)
    assert _no_threads_left()


def test_a_cancelled_prefetch_leaves_no_thread(tmp_path):
    deb = A.open_deb(_big_deb(tmp_path, "t"))
    deb.prefetch()
    started = deb._prefetched
    deb.prefetch()  # once only
    assert deb._prefetched is started
    deb.cancel_prefetch()
    assert deb._prefetched is None and started[0].closed
    assert _no_threads_left()
    assert _read_all(deb) == _read_all(A.open_deb(deb.path))


def _prefetch_log(debs, log):
    for d in debs:
        real = d.prefetch

        def wrapped(d=d, real=real):
            log.append(d.package)
            real()
        d.prefetch = wrapped


def test_dpkg_install_prefetches_each_next_archive_and_matches_real_dpkg(tmp_path):
    tool("dpkg")
    from test_ops_root import real

    paths = [_big_deb(tmp_path, n) for n in ("pa", "pb", "pc")]
    a, b = make_root(str(tmp_path / "A")), make_root(str(tmp_path / "B"))
    assert real(a, "-i", *paths).returncode == 0
    debs = [A.open_deb(p) for p in paths]
    log: list[str] = []
    _prefetch_log(debs, log)
    d = Dpkg(HostDirFS(str(b), writable=True), RecordingRunner())
    d.install(debs)
    d.commit()
    assert log == ["pb", "pc"]
    assert _no_threads_left()
    diff = {p: v for p, v in diff_snapshots(snapshot(str(a)), snapshot(str(b))).items() if p not in LOCKS}
    assert diff == {}


def test_a_failed_job_stops_the_prefetch_it_started(tmp_path):
    # the second package ships a file of the first without Replaces: dpkg refuses it, and the
    # third one's prefetched data.tar is never read
    first = _big_deb(tmp_path, "pa")
    clash = build_deb(str(tmp_path), "pb", "1", {"/usr/share/pa/small": b"mine\n"})
    third = _big_deb(tmp_path, "pc")
    b = make_root(str(tmp_path / "B"))
    debs = [A.open_deb(p) for p in (first, clash, third)]
    log: list[str] = []
    _prefetch_log(debs, log)
    d = Dpkg(HostDirFS(str(b), writable=True), RecordingRunner())
    with pytest.raises(Exception, match="trying to overwrite"):
        d.install(debs)
    assert log == ["pb", "pc"]
    assert debs[2]._prefetched is None
    assert _no_threads_left()
