"""A truncated qcow2 (issue 16): every mapped cluster past the end of the file is refused.

Images are made by qemu-img/qemu-io, then cut with ``truncate``. The judge is ``qemu-img
check``: wherever it reports a region "exceeding the end of the file by one cluster or more"
(exit 2), Nuwa refuses the image with exit 3 naming the structure; where it finds nothing (a
cut of less than one cluster), Nuwa reads the image, the short tail as zeros, as qemu does.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers.cli import nuwa
from nuwa.errors import CorruptImageError
from nuwa.formats.qcow2 import Qcow2Image, check_qcow2
from nuwa.formats.qcow2_header import first_data_past_end, past_end, run_past_end
from helpers.hashing import file_sha256 as sha
from qcow2_util import MiB, qemu_img, qemu_io

CS = 65536


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """64 MiB guest, data at 0-4 MiB and 32-33 MiB: header, refcount table and block, L1, one
    L2 table, then the data clusters, in this order in the file."""
    p = str(tmp_path_factory.mktemp("trunc") / "orig.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", p, "64M")
    qemu_io(p, "write -P 0xab 0 4M", "write -P 0xcd 32M 1M")
    return p


def _cut(original, tmp_path, size: int) -> str:
    p = str(tmp_path / f"cut{size}.qcow2")
    shutil.copy(original, p)
    os.truncate(p, size)
    return p


def _qemu_check(path: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", "check", path], capture_output=True, text=True)


def _read_all(path: str) -> None:
    with Qcow2Image(path) as img:
        for off in range(0, img.size, 4 * MiB):
            img.pread(off, 4 * MiB)


@pytest.mark.parametrize("cut, words", [
    (lambda size: size - 2 * CS, "data cluster"),      # the end of the last data run
    (lambda size: size - 17 * CS - 1000, "data cluster"),  # mid-cluster, in the first run's tail
    (lambda size: 4 * CS + 100, "L2 table"),              # inside the L2 table
    (lambda size: 3 * CS + 4096, "L2 table"),             # the L1 table whole, its L2 table gone
])
def test_truncated_image_refused_where_qemu_img_check_reports_it(original, tmp_path, cut, words):
    size = os.path.getsize(original)
    p = _cut(original, tmp_path, cut(size))
    q = _qemu_check(p)
    assert q.returncode == 2 and "exceeding the end of the file by one cluster or more" in q.stderr + q.stdout
    before = sha(p)
    with pytest.raises(CorruptImageError) as info:
        _read_all(p)
    msg = str(info.value)
    assert words in msg and "past the end of the file" in msg and info.value.exit_code == 3, msg
    r = nuwa("info", p)
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "past the end of the file" in r.stderr, r.stderr
    assert sha(p) == before
    assert check_qcow2(p).problems  # the read-only check reports what open refuses


def test_refcount_block_past_the_end_refused(original, tmp_path):
    """A refcount table entry pointing past the end (the block cut off) is refused on open."""
    import struct

    size = os.path.getsize(original)
    p = _cut(original, tmp_path, size)
    with open(p, "r+b") as f:
        f.seek(48)
        rt = struct.unpack(">Q", f.read(8))[0]
        f.seek(rt + 8)
        f.write(struct.pack(">Q", size + 4 * CS))  # a second refcount block, past the end
    assert _qemu_check(p).returncode != 0
    with pytest.raises(CorruptImageError, match=r"refcount table entry 1 -> refcount block @0x[0-9a-f]+: lies past"):
        Qcow2Image(p).close()


def test_less_than_one_cluster_short_reads_as_qemu(original, tmp_path):
    size = os.path.getsize(original)
    p = _cut(original, tmp_path, size - 512)
    assert _qemu_check(p).returncode == 0  # the last cluster may be short
    with Qcow2Image(p) as img:
        data = img.pread(32 * MiB, MiB)
    assert data[: MiB - 512] == b"\xcd" * (MiB - 512) and data[MiB - 512:] == bytes(512)


def test_bounds_arithmetic():
    from array import array

    assert not past_end(0x10000, CS, 0x10001, CS) and past_end(0x10000, CS, 0x10000, CS)
    assert run_past_end(0, 3 * CS, 2 * CS, CS) and not run_past_end(0, 3 * CS, 2 * CS + 1, CS)
    t = array("Q", [0, (1 << 63) | 0x20000, (1 << 63) | 0x50000])
    assert first_data_past_end(t, 16, False, 0x30000) == (2, 0x50000, CS)
    assert first_data_past_end(t, 16, False, 0x50001) is None
