"""Writing qcow2: after every write ``qemu-img check`` is clean (no errors, no leaks) and
``qemu-img compare`` finds the guest identical to the expected raw content.

Covers images made by qemu-img in every variant (COW from compressed clusters, subclusters,
small clusters with refcount-table growth, 1-bit refcounts), overlays created by Nuwa over
qemu-made images, internal snapshots kept intact, header rules (autoclear bits, unknown
extensions and fields, lazy-refcount dirty bit, bitmaps), and qemu/Nuwa interchange.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import struct

import pytest

from judges import qemu_img_check, qemu_img_compare
from qcow2_util import MiB, VARIANTS, make_variant, pattern_dir, qemu_img, qemu_info, qemu_io, reference_raw
from nuwa.errors import InvalidInputError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.detect import open_disk
from nuwa.formats.qcow2 import Qcow2Image
from nuwa.formats.qcow2_create import create_overlay, create_qcow2
from nuwa.formats.qcow2_header import build_header, parse_header

pytestmark = pytest.mark.judge
SIZE = 4 * MiB


@pytest.fixture(scope="session")
def wdir(tmp_path_factory):
    return pattern_dir(tmp_path_factory, "qcow2write", SIZE, seed=2)


def judge(path: str, expected: bytes, tmp: str, force_share: bool = False) -> None:
    """qemu-img check clean and qemu-img compare identical to ``expected`` (``force_share``:
    the image is still open in a Nuwa writer, which holds QEMU's write locks)."""
    qemu_img_check(path, force_share)
    ref = os.path.join(tmp, "expected.raw")
    with open(ref, "wb") as f:
        f.write(expected)
    qemu_img_compare(ref, path, force_share)


def some_writes(rng: random.Random, size: int, cs: int, n: int):
    """Write requests: sub-cluster, cluster-crossing, whole clusters, zeros."""
    for i in range(n):
        kind = i % 4
        if kind == 0:
            off, ln = rng.randrange(size - 100), rng.randrange(1, 100)
        elif kind == 1:
            off = rng.randrange(1, size // cs) * cs - rng.randrange(1, 700)
            ln = rng.randrange(701, 3 * cs + 702)
        elif kind == 2:
            off, ln = rng.randrange(size // cs) * cs, cs
        else:
            off, ln = rng.randrange(size - 5000), rng.randrange(1, 5000)
        ln = min(ln, size - off)
        data = bytes(ln) if kind == 3 else rng.randbytes(ln)
        yield off, data


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_writes_on_qemu_images_stay_clean(wdir, variant, tmp_path):
    src = make_variant(wdir, variant, os.path.join(wdir, "pattern.raw"))
    path = str(tmp_path / "w.qcow2")
    shutil.copy(src, path)
    expected = bytearray(reference_raw(path, str(tmp_path)))
    rng = random.Random(sum(variant.encode()))
    with open_disk(path) as img:
        cs = img.cluster_size
    for off, data in some_writes(rng, SIZE, cs, 6):
        with open_disk(path, writable=True) as img:
            img.pwrite(off, data)
            expected[off : off + len(data)] = data
            lo, hi = max(0, off - 10), min(SIZE, off + len(data) + 10)
            assert img.pread(lo, hi - lo) == expected[lo:hi]
        judge(path, bytes(expected), str(tmp_path))
    with open_disk(path) as img:
        assert img.pread(0, SIZE) == expected


def test_flush_while_open_is_consistent(wdir, tmp_path):
    path = str(tmp_path / "f.qcow2")
    shutil.copy(make_variant(wdir, "zstd", os.path.join(wdir, "pattern.raw")), path)
    expected = bytearray(reference_raw(path, str(tmp_path)))
    with open_disk(path, writable=True) as img:
        for off, data in some_writes(random.Random(1), SIZE, img.cluster_size, 8):
            img.pwrite(off, data)
            expected[off : off + len(data)] = data
            img.flush()
            judge(path, bytes(expected), str(tmp_path), force_share=True)


def test_refcount_table_growth_and_self_describing_blocks(tmp_path):
    path = str(tmp_path / "grow.qcow2")
    create_qcow2(path, 3 * MiB, cluster_size=512, refcount_bits=64)
    with open_disk(path) as img:
        table0 = img.header.refcount_table_offset
    expected = bytearray(3 * MiB)
    rng = random.Random(3)
    with open_disk(path, writable=True) as img:
        for off in range(0, 3 * MiB, 96 * 1024):
            data = rng.randbytes(64 * 1024 + 7)
            data = data[: min(len(data), 3 * MiB - off)]
            img.pwrite(off, data)
            expected[off : off + len(data)] = data
        assert img._writer.rc.table_offset != table0
    with open_disk(path) as img:
        assert img.header.refcount_table_offset != table0 and img.header.refcount_table_clusters > 1
        assert img.pread(0, img.size) == expected
    judge(path, bytes(expected), str(tmp_path))


def test_overlay_over_qemu_image_leaves_original_untouched(wdir, tmp_path):
    base = str(tmp_path / "base.qcow2")
    shutil.copy(make_variant(wdir, "zlib", os.path.join(wdir, "pattern.raw")), base)
    before = open(base, "rb").read()
    sub = tmp_path / "out"
    sub.mkdir()
    top = create_overlay(str(sub / "top.qcow2"), base)
    with open_disk(top) as img:
        assert img.backing_file == "../base.qcow2" and img.backing_format == "qcow2"
    q = qemu_info(top)
    assert q["backing-filename"] == "../base.qcow2" and q["backing-filename-format"] == "qcow2"
    expected = bytearray(reference_raw(base, str(tmp_path)))
    with open_disk(top, writable=True) as img:
        for off, data in some_writes(random.Random(4), SIZE, img.cluster_size, 10):
            img.pwrite(off, data)
            expected[off : off + len(data)] = data
    judge(top, bytes(expected), str(tmp_path))
    assert open(base, "rb").read() == before
    # a second level, extended L2 this time, over Nuwa's overlay
    top2 = create_overlay(str(tmp_path / "top2.qcow2"), top, extended_l2=True)
    with open_disk(top2, writable=True) as img:
        for off, data in some_writes(random.Random(5), SIZE, img.cluster_size, 10):
            img.pwrite(off, data)
            expected[off : off + len(data)] = data
    judge(top2, bytes(expected), str(tmp_path))


def test_snapshots_stay_intact_while_writing(wdir, tmp_path):
    path = str(tmp_path / "s.qcow2")
    shutil.copy(make_variant(wdir, "zstd", os.path.join(wdir, "pattern.raw")), path)
    qemu_img("snapshot", "-c", "before", path)
    snap = reference_raw(path, str(tmp_path))
    expected = bytearray(snap)
    for off, data in some_writes(random.Random(6), SIZE, 65536, 8):
        with open_disk(path, writable=True) as img:
            img.pwrite(off, data)
            expected[off : off + len(data)] = data
        judge(path, bytes(expected), str(tmp_path))
    out = str(tmp_path / "snap.raw")
    qemu_img("convert", "-l", "snapshot.name=before", "-O", "raw", path, out)
    assert open(out, "rb").read() == snap
    with open_disk(path) as img, img.open_snapshot("before") as s:
        assert s.pread(0, s.size) == snap


def test_qemu_and_nuwa_take_turns(tmp_path):
    path = create_qcow2(str(tmp_path / "turns.qcow2"), SIZE, extended_l2=True)
    expected = bytearray(SIZE)
    qemu_io(path, "write -P 0x5a 10k 100k", "write -z 1M 64k")
    expected[10 * 1024 : 110 * 1024] = b"\x5a" * (100 * 1024)
    with open_disk(path, writable=True) as img:
        assert img.pread(0, SIZE) == expected
        img.pwrite(50 * 1024, b"nuwa" * 5000)
        expected[50 * 1024 : 50 * 1024 + 20000] = b"nuwa" * 5000
    qemu_io(path, "write -P 0x6b 60k 3k")
    expected[60 * 1024 : 63 * 1024] = b"\x6b" * 3072
    with open_disk(path) as img:
        assert img.pread(0, SIZE) == expected
    judge(path, bytes(expected), str(tmp_path))


def _rewrite_header(path: str, mutate) -> None:
    with open(path, "r+b") as f:
        buf = f.read(65536)
        h = parse_header(buf, os.path.getsize(path))
        mutate(h)
        new = build_header(h)
        f.seek(0)
        f.write(new)


def test_header_rules_on_first_write(wdir, tmp_path):
    """Unknown autoclear bits cleared; unknown extensions and unknown v3 fields preserved."""
    path = str(tmp_path / "hdr.qcow2")
    shutil.copy(make_variant(wdir, "plain", os.path.join(wdir, "pattern.raw")), path)

    def mutate(h):
        h.autoclear_features |= 1 << 40
        h.extensions.append((0x12345678, b"keep me"))
        h.header_length = 120
        h.raw = h.raw[:112] + b"UNKNOWN!"

    _rewrite_header(path, mutate)
    qemu_img_check(path)
    expected = bytearray(reference_raw(path, str(tmp_path)))
    with open_disk(path, writable=True) as img:
        img.pwrite(123, b"x" * 5000)
        expected[123:5123] = b"x" * 5000
    with open_disk(path) as img:
        h = img.header
        assert h.autoclear_features == 0
        assert (0x12345678, b"keep me") in h.extensions
        assert h.header_length == 120 and h.raw[112:120] == b"UNKNOWN!"
    judge(path, bytes(expected), str(tmp_path))


def test_persistent_bitmaps_are_dropped_cleanly(wdir, tmp_path):
    path = str(tmp_path / "bm.qcow2")
    shutil.copy(make_variant(wdir, "plain", os.path.join(wdir, "pattern.raw")), path)
    qemu_img("bitmap", "--add", path, "b0")
    qemu_io(path, "write -P 1 0 1M")
    with open_disk(path) as img:
        assert [b["name"] for b in img.info()["bitmaps"]] == ["b0"]
        assert "bitmaps" in img.info()["autoclear_features"]
    expected = bytearray(reference_raw(path, str(tmp_path)))
    with open_disk(path, writable=True) as img:
        img.pwrite(2 * MiB, b"y" * 100)
        expected[2 * MiB : 2 * MiB + 100] = b"y" * 100
    with open_disk(path) as img:
        assert img.info()["bitmaps"] == [] and img.header.autoclear_features == 0
    judge(path, bytes(expected), str(tmp_path))


def test_lazy_refcounts_dirty_bit(wdir, tmp_path):
    path = str(tmp_path / "lazy.qcow2")
    shutil.copy(make_variant(wdir, "lazy", os.path.join(wdir, "pattern.raw")), path)
    with open_disk(path, writable=True) as img:
        img.pwrite(0, b"z" * 70000)
        with open(path, "rb") as f:
            f.seek(C.OFF_INCOMPATIBLE_FEATURES)
            assert struct.unpack(">Q", f.read(8))[0] & C.QCOW2_INCOMPAT_DIRTY
    with open_disk(path) as img:
        assert img.info()["dirty"] is False
    qemu_img_check(path)


def test_created_images_match_qemu_expectations(tmp_path):
    for kw in (dict(), dict(version=2), dict(cluster_size=512, refcount_bits=1), dict(extended_l2=True),
               dict(compression_type="zstd", cluster_size=2 * MiB), dict(lazy_refcounts=True)):
        path = create_qcow2(str(tmp_path / "new.qcow2"), 10 * MiB + 512, **kw)
        qemu_img_check(path)
        q = qemu_info(path)
        assert q["virtual-size"] == 10 * MiB + 512
        assert q["cluster-size"] == kw.get("cluster_size", 65536)
        spec = q["format-specific"]["data"]
        assert spec["compat"] == ("0.10" if kw.get("version") == 2 else "1.1")
        assert spec["refcount-bits"] == kw.get("refcount_bits", 16)
        assert spec.get("extended-l2", False) == kw.get("extended_l2", False)
        assert spec.get("compression-type", "zlib") == kw.get("compression_type", "zlib")
        assert spec.get("lazy-refcounts", False) == kw.get("lazy_refcounts", False)
        with open_disk(path) as img:
            assert img.pread(0, img.size) == bytes(img.size)


def test_read_only_and_range_errors(wdir, tmp_path):
    path = make_variant(wdir, "plain", os.path.join(wdir, "pattern.raw"))
    with open_disk(path) as img:
        with pytest.raises(OSError) as e:
            img.pwrite(0, b"x")
        assert e.value.errno == errno.EROFS
    copy = str(tmp_path / "c.qcow2")
    shutil.copy(path, copy)
    with Qcow2Image(copy, writable=True) as img:
        with pytest.raises(InvalidInputError):
            img.pwrite(SIZE - 1, b"ab")
        with pytest.raises(InvalidInputError):
            img.pread(SIZE, 1)
        with pytest.raises(InvalidInputError):
            img.open_snapshot("nope")
    with pytest.raises(InvalidInputError):
        create_overlay(copy, copy)
