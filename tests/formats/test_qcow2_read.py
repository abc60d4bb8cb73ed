"""Reading qcow2: every guest byte Nuwa reads equals ``qemu-img convert -O raw``.

Images are made by qemu-img from a deterministic pattern (qcow2_util.VARIANTS: plain, zlib,
zstd, compat=0.10, extended L2, 512 B / 2 MiB clusters, 1- and 64-bit refcounts, lazy
refcounts), by ``qemu-img snapshot -c``, by ``qemu-img create -b`` chains written with qemu-io.
"""

from __future__ import annotations

import os
import random

import pytest

from qcow2_util import MiB, VARIANTS, make_variant, pattern, pattern_dir, qemu_img, qemu_info, qemu_io, reference_raw
from nuwa.formats.blockdev import RawFile
from nuwa.formats.blockdev import RawImage
from nuwa.formats.detect import open_disk
from nuwa.formats.qcow2 import Qcow2Image

pytestmark = pytest.mark.judge
SIZE = 6 * MiB


@pytest.fixture(scope="session")
def qdir(tmp_path_factory):
    return pattern_dir(tmp_path_factory, "qcow2read", SIZE)


def _check_reads(img, ref: bytes, seed: int = 0) -> None:
    assert img.size == len(ref)
    assert img.pread(0, img.size) == ref
    rng = random.Random(seed)
    for _ in range(150):
        off = rng.randrange(0, len(ref))
        n = rng.randrange(0, min(len(ref) - off, rng.choice([1, 513, 4096, 70000, 300000])) + 1)
        assert img.pread(off, n) == ref[off : off + n], (off, n)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_reads_like_qemu(qdir, variant):
    path = make_variant(qdir, variant, os.path.join(qdir, "pattern.raw"))
    ref = reference_raw(path, qdir)
    with open_disk(path) as img:
        assert img.format == "qcow2"
        _check_reads(img, ref, seed=sum(variant.encode()))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_info_agrees_with_qemu_img_info(qdir, variant):
    path = make_variant(qdir, variant, os.path.join(qdir, "pattern.raw"))
    q = qemu_info(path)
    with open_disk(path) as img:
        info = img.info()
    assert info["format"] == q["format"] == "qcow2"
    assert info["virtual_size"] == q["virtual-size"]
    assert info["cluster_size"] == q["cluster-size"]
    spec = q["format-specific"]["data"]
    assert info["compat"] == spec["compat"]
    assert info["refcount_bits"] == spec["refcount-bits"]
    if "compression-type" in spec:
        assert info["compression_type"] == spec["compression-type"]
    assert info["extended_l2"] == spec.get("extended-l2", False)
    assert info["lazy_refcounts"] == spec.get("lazy-refcounts", False)
    assert info["corrupt"] == spec.get("corrupt", False)
    assert info["dirty"] is False


def test_format_from_content_not_name(qdir):
    raw_named_qcow2 = os.path.join(qdir, "really-raw.qcow2")
    with open(raw_named_qcow2, "wb") as f:
        f.write(pattern(MiB, seed=9))
    with open_disk(raw_named_qcow2) as img:
        assert isinstance(img, RawImage) and img.format == "raw"
        assert img.info()["virtual_size"] == MiB
    qcow2_named_raw = os.path.join(qdir, "really-qcow2.img")
    qemu_img("convert", "-O", "qcow2", raw_named_qcow2, qcow2_named_raw)
    with open_disk(qcow2_named_raw) as img:
        assert img.format == "qcow2"
        assert img.pread(0, MiB) == pattern(MiB, seed=9)
    # the RawFile entry point gives the same device
    with Qcow2Image(RawFile(qcow2_named_raw)) as img:
        assert img.pread(0, MiB) == pattern(MiB, seed=9)


def test_backing_chain_two_deep_written_by_qemu_io(qdir):
    base = make_variant(qdir, "zstd", os.path.join(qdir, "pattern.raw"))
    sub = os.path.join(qdir, "chain")
    os.makedirs(sub, exist_ok=True)
    mid = os.path.join(sub, "mid.qcow2")
    top = os.path.join(qdir, "top.qcow2")
    # relative name for mid -> ../zstd.qcow2, absolute name for top -> mid
    qemu_img("create", "-f", "qcow2", "-b", "../zstd.qcow2", "-F", "qcow2", mid)
    qemu_io(mid, "write -P 0x11 100k 300k", "write -z 1M 200k", "write -P 0x22 4095k 3k")
    qemu_img("create", "-f", "qcow2", "-o", "extended_l2=on", "-b", mid, "-F", "qcow2", top)
    qemu_io(top, "write -P 0x33 150k 5k", "write -z 2M 64k", "write -P 0x44 5M 1M")
    ref = reference_raw(top, qdir)
    with open_disk(top) as img:
        _check_reads(img, ref, seed=7)
        chain = img.info()["backing_chain"]
        assert [c["format"] for c in chain] == ["qcow2", "qcow2"]
        assert chain[0]["filename"] == mid and chain[1]["filename"] == "../zstd.qcow2"
        assert [os.path.realpath(c["path"]) for c in chain] == [os.path.realpath(mid), os.path.realpath(base)]
        assert isinstance(img.backing, Qcow2Image) and isinstance(img.backing.backing, Qcow2Image)


def test_raw_backing_and_shorter_backing(qdir):
    small = os.path.join(qdir, "small.raw")
    with open(small, "wb") as f:
        f.write(pattern(MiB + 4096, seed=5))
    top = os.path.join(qdir, "over-raw.qcow2")
    qemu_img("create", "-f", "qcow2", "-b", "small.raw", "-F", "raw", top, str(3 * MiB))
    qemu_io(top, "write -P 0x55 1000k 100k")
    with open_disk(top) as img:
        assert img.info()["backing_chain"][0]["format"] == "raw"
        _check_reads(img, reference_raw(top, qdir), seed=3)


def test_backing_format_extension_is_honoured(qdir):
    """A raw backing file whose content starts with the qcow2 magic is still read raw."""
    fake = os.path.join(qdir, "fake-raw.img")
    q = make_variant(qdir, "plain", os.path.join(qdir, "pattern.raw"))
    with open(q, "rb") as f:
        data = f.read(2 * MiB)
    with open(fake, "wb") as f:
        f.write(data)
    top = os.path.join(qdir, "over-fake.qcow2")
    qemu_img("create", "-f", "qcow2", "-b", "fake-raw.img", "-F", "raw", top)
    with open_disk(top) as img:
        assert img.pread(0, 2 * MiB) == data == reference_raw(top, qdir)


def test_extended_l2_subclusters_written_by_qemu(qdir):
    base = os.path.join(qdir, "pattern.raw")
    top = os.path.join(qdir, "sub.qcow2")
    qemu_img("create", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", "-b", "pattern.raw", "-F", "raw", top)
    # 2 KiB subclusters: partial, zero, and whole-cluster writes
    qemu_io(top, "write -P 0x61 2k 2k", "write -P 0x62 70k 1k", "write -z 8k 4k",
            "write -P 0x63 1M 64k", "write -z 2M 64k", "discard 1M 2k")
    assert os.path.getsize(base) == SIZE
    with open_disk(top) as img:
        assert img.extended_l2
        _check_reads(img, reference_raw(top, qdir), seed=11)


@pytest.mark.parametrize("variant", ["plain", "extl2", "zlib", "c512"])
def test_internal_snapshots_listed_and_readable(qdir, variant, tmp_path):
    path = str(tmp_path / "snap.qcow2")
    qemu_img("convert", *VARIANTS[variant], os.path.join(qdir, "pattern.raw"), path)
    qemu_img("snapshot", "-c", "first", path)
    qemu_io(path, "write -P 0x71 0 700k", "write -z 3M 1M")
    qemu_img("snapshot", "-c", "second", path)
    qemu_io(path, "write -P 0x72 512k 2M")
    q = qemu_info(path)
    with open_disk(path) as img:
        snaps = img.info()["snapshots"]
        assert [(s["id"], s["name"]) for s in snaps] == [(s["id"], s["name"]) for s in q["snapshots"]]
        assert [s["vm_state_size"] for s in snaps] == [s["vm-state-size"] for s in q["snapshots"]]
        assert [s["date_sec"] for s in snaps] == [s["date-sec"] for s in q["snapshots"]]
        _check_reads(img, reference_raw(path, str(tmp_path)))
        for key in ("first", "2"):
            name = "first" if key == "first" else "second"
            out = str(tmp_path / f"{name}.raw")
            qemu_img("convert", "-l", f"snapshot.name={name}", "-O", "raw", path, out)
            with open(out, "rb") as f:
                ref = f.read()
            with img.open_snapshot(key) as s:
                assert s.writable is False
                _check_reads(s, ref, seed=len(name))


def test_l2_cache_is_bounded(qdir, monkeypatch):
    import nuwa.formats.qcow2 as q

    monkeypatch.setattr(q, "L2_CACHE_BYTES", 0)
    path = make_variant(qdir, "c512", os.path.join(qdir, "pattern.raw"))
    ref = reference_raw(path, qdir)
    with open_disk(path) as img:
        assert img.pread(0, img.size) == ref
        assert len(img._l2_cache) <= img._l2_cache_max == 8


@pytest.mark.slow
def test_big_2m_cluster_image(tmp_path):
    """2 MiB clusters over a 1 GiB guest with data scattered through it."""
    raw = str(tmp_path / "big.raw")
    with open(raw, "wb") as f:
        f.truncate(1 << 30)
        rng = random.Random(4)
        for _ in range(64):
            f.seek(rng.randrange(0, (1 << 30) - MiB))
            f.write(rng.randbytes(rng.randrange(1, MiB)))
    for opts in (["-o", "cluster_size=2M"], ["-c", "-o", "cluster_size=2M,compression_type=zstd"]):
        path = str(tmp_path / "big.qcow2")
        qemu_img("convert", "-O", "qcow2", *opts, raw, path)
        with open_disk(path) as img, open(raw, "rb") as f:
            for off in range(0, img.size, 64 * MiB):
                assert img.pread(off, 64 * MiB) == f.read(64 * MiB)
        os.unlink(path)
