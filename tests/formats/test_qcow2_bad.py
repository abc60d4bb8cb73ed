"""Bad qcow2 input: each case gives a specific error naming the structure, offset and field
(``CorruptImageError`` / ``UnsupportedFeatureError``, CLI exit code 3), leaves the file
byte-identical, and neither hangs nor allocates absurd amounts of memory.

Every damaged image starts as a real qemu-img image; the damage is one field changed in place.
"""

from __future__ import annotations

import os
import shutil
import struct
import tracemalloc

import pytest

from helpers.cli import nuwa
from helpers.hashing import file_sha256
from judges import run, tool
from qcow2_util import MiB, make_variant, pattern_dir, qemu_img
from nuwa.errors import EXIT_CORRUPT, CorruptImageError, UnsupportedFeatureError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.detect import open_disk

pytestmark = pytest.mark.judge


@pytest.fixture(scope="session")
def bdir(tmp_path_factory):
    return pattern_dir(tmp_path_factory, "qcow2bad", 2 * MiB, seed=3)


@pytest.fixture
def image(bdir, tmp_path):
    """A fresh copy of a qemu-made image of the given variant."""

    def make(variant="plain"):
        dst = str(tmp_path / f"{variant}.qcow2")
        shutil.copy(make_variant(bdir, variant, os.path.join(bdir, "pattern.raw")), dst)
        return dst

    return make


def poke(path: str, offset: int, fmt: str, value) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


def peek(path: str, offset: int, fmt: str):
    with open(path, "rb") as f:
        f.seek(offset)
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def expect(path: str, exc, *needles: str, writable: bool = False, read: bool = False):
    """Open (and optionally read all / write once); assert the error and an unchanged file."""
    before = file_sha256(path)
    with pytest.raises(exc) as info:
        with open_disk(path, writable=writable) as img:
            if read:
                for off in range(0, img.size, MiB):
                    img.pread(off, min(MiB, img.size - off))
            if writable:
                img.pwrite(0, b"x")
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
    assert info.value.exit_code == EXIT_CORRUPT
    assert file_sha256(path) == before
    return msg


def first_l2_offset(path: str) -> int:
    l1 = peek(path, 40, ">Q")
    return peek(path, l1, ">Q") & C.L1E_OFFSET_MASK


def test_truncated_header(tmp_path, image):
    src = image()
    for n in (10, 71, 100):
        p = str(tmp_path / f"trunc{n}.qcow2")
        with open(src, "rb") as f, open(p, "wb") as g:
            g.write(f.read(n))
        expect(p, CorruptImageError, "qcow2 header @0x", "truncated")


def test_absurd_cluster_bits_l1_size_and_size(image):
    p = image()
    poke(p, 20, ">I", 40)
    expect(p, CorruptImageError, "qcow2 header @0x14 (cluster_bits)", "cluster_bits 40")
    p = image()
    poke(p, 36, ">I", 0xFFFFFFFF)
    tracemalloc.start()
    expect(p, CorruptImageError, "qcow2 header @0x24 (l1_size)", "absurd")
    assert tracemalloc.get_traced_memory()[1] < 16 * MiB
    tracemalloc.stop()
    p = image()
    poke(p, 24, ">Q", 1 << 63)
    expect(p, CorruptImageError, "qcow2 header @0x18 (size)")
    p = image()
    poke(p, 24, ">Q", 1 << 50)  # L1 far too small for this size
    expect(p, CorruptImageError, "(l1_size)", "too small")


def test_l1_table_offset_past_eof_or_unaligned(image):
    p = image()
    poke(p, 40, ">Q", 1 << 40)
    expect(p, CorruptImageError, "qcow2 header @0x28 (l1_table_offset)", "past the end")
    p = image()
    poke(p, 40, ">Q", peek(p, 40, ">Q") + 512)
    expect(p, CorruptImageError, "qcow2 header @0x28 (l1_table_offset)", "multiple of the cluster size")


def test_refcount_table_offset_past_eof_or_unaligned(image):
    p = image()
    poke(p, 48, ">Q", 1 << 40)
    expect(p, CorruptImageError, "qcow2 header @0x30 (refcount_table_offset)")
    p = image()
    poke(p, 48, ">Q", 65536 + 8)
    expect(p, CorruptImageError, "qcow2 header @0x30 (refcount_table_offset)")
    p = image()
    poke(p, 56, ">I", 1 << 30)
    expect(p, CorruptImageError, "(refcount_table_clusters)")


def test_refcount_block_past_eof_found_when_writing(image):
    p = image()
    rt = peek(p, 48, ">Q")
    poke(p, rt, ">Q", 1 << 40)
    expect(p, CorruptImageError, "refcount table entry 0 -> refcount block @0x10000000000", "past the end",
           writable=True)
    p = image()
    poke(p, rt, ">Q", 0x30200)
    expect(p, CorruptImageError, "refcount block @0x30200", "not cluster-aligned", writable=True)


def test_l2_offset_past_eof_or_unaligned(image):
    p = image()
    l1 = peek(p, 40, ">Q")
    poke(p, l1, ">Q", (1 << 63) | (1 << 40))
    expect(p, CorruptImageError, "L2 table @0x10000000000", "past the end", read=True)
    p = image()
    poke(p, l1, ">Q", (1 << 63) | first_l2_offset(p) + 4096)
    expect(p, CorruptImageError, "L1 entry 0", "not cluster-aligned", read=True)


@pytest.mark.parametrize("target", ["L1", "refcount"])
def test_l2_entry_pointing_into_metadata(image, target):
    # (the header cluster is host offset 0, which qemu and Nuwa read as "unallocated")
    p = image()
    off = {"L1": peek(p, 40, ">Q"), "refcount": peek(p, 48, ">Q")}[target]
    poke(p, first_l2_offset(p), ">Q", (1 << 63) | off)
    name = {"L1": "L1 table", "refcount": "refcount table"}[target]
    expect(p, CorruptImageError, f"qcow2 data cluster @0x{off:x}", f"overlaps the {name}", read=True)
    # an L1 entry pointing its L2 table into metadata is caught the same way
    q = image()
    poke(q, peek(q, 40, ">Q"), ">Q", (1 << 63) | off)
    expect(q, CorruptImageError, f"L2 table @0x{off:x}", f"overlaps the {name}", read=True)


def test_backing_loop(tmp_path):
    a, b = str(tmp_path / "a.qcow2"), str(tmp_path / "b.qcow2")
    qemu_img("create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a, "1M")
    qemu_img("create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b, "1M")
    expect(a, CorruptImageError, "backing chain loop", "qcow2 backing file name")
    s = str(tmp_path / "self.qcow2")
    qemu_img("create", "-f", "qcow2", "-u", "-b", "self.qcow2", "-F", "qcow2", s, "1M")
    expect(s, CorruptImageError, "backing chain loop")


def test_missing_backing_file(tmp_path):
    p = str(tmp_path / "orphan.qcow2")
    qemu_img("create", "-f", "qcow2", "-u", "-b", "gone.raw", "-F", "raw", p, "1M")
    expect(p, CorruptImageError, "gone.raw", "does not exist", "qcow2 backing file name")


def test_protocol_backing_names_refused(tmp_path):
    for name in ("nbd:localhost:10809", "json:{\"file.driver\":\"file\"}", "http://example.com/x.img"):
        p = str(tmp_path / "proto.qcow2")
        qemu_img("create", "-f", "qcow2", "-u", "-b", name, "-F", "raw", p, "1M")
        msg = expect(p, UnsupportedFeatureError, "protocol", "only local files")
        assert name.split(":")[0] in msg


@pytest.mark.parametrize("variant", ["zlib", "zstd"])
def test_corrupt_compressed_cluster(image, variant):
    p = image(variant)
    with open_disk(p) as img:
        t = img.l2_table(img.l1[0] & C.L1E_OFFSET_MASK, 0)
        e = next(x for x in t if x & C.QCOW_OFLAG_COMPRESSED)
        host, n = C.decode_compressed(e, img.cluster_bits)
    with open(p, "r+b") as f:
        f.seek(host)
        f.write(b"\xff\x00garbage" * (n // 9 + 1))
    expect(p, CorruptImageError, f"qcow2 compressed cluster @0x{host:x}", "cannot decompress", read=True)


def test_unknown_incompatible_bit(image):
    p = image()
    poke(p, 72, ">Q", peek(p, 72, ">Q") | (1 << 20))
    expect(p, UnsupportedFeatureError, "incompatible feature bit 20", "(incompatible_features)")


def test_corrupt_bit_refused_for_writing_only(image):
    p = image()
    poke(p, 72, ">Q", peek(p, 72, ">Q") | C.QCOW2_INCOMPAT_CORRUPT)
    with open_disk(p) as img:
        assert img.info()["corrupt"] is True
        img.pread(0, 4096)
    expect(p, UnsupportedFeatureError, "corrupt bit", "incompatible bit 1", writable=True)


# a dirty image is no longer refused for writing: its refcounts are rebuilt first
# (tests/formats/test_qcow2_repair.py, including dirty images whose metadata is damaged)


def test_encryption(tmp_path):
    # legacy AES (crypt_method 1): qemu-img still creates it and its key setup needs no timing.
    p = str(tmp_path / "aes.qcow2")
    qemu_img("create", "--object", "secret,id=s0,data=pw", "-f", "qcow2",
             "-o", "encrypt.format=aes,encrypt.key-secret=s0,preallocation=metadata", p, "1M")
    with open_disk(p) as img:
        assert img.info()["encrypted"] == "aes"
    expect(p, UnsupportedFeatureError, "encrypted", "crypt_method 1", "qcow2 header @0x20", writable=True)
    expect(p, UnsupportedFeatureError, "encrypted", "cannot decrypt", read=True)
    # LUKS (crypt_method 2) when this host's qemu-img can create it: its PBKDF benchmark
    # fails on some VMs ("Unable to get accurate CPU usage"), which says nothing about Nuwa.
    q = str(tmp_path / "luks.qcow2")
    r = run([tool("qemu-img"), "create", "--object", "secret,id=s0,data=pw", "-f", "qcow2",
             "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=100", q, "1M"], check=False)
    if r.returncode == 0:
        with open_disk(q) as img:
            assert img.info()["encrypted"] == "luks"
        expect(q, UnsupportedFeatureError, "encrypted", "crypt_method 2", writable=True)


def test_external_data_file_read_but_not_written(tmp_path, bdir):
    p, data = str(tmp_path / "ext.qcow2"), str(tmp_path / "ext.data")
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={data}", p, "2M")
    from qcow2_util import qemu_io

    qemu_io(p, "write -P 0x3c 64k 128k")
    with open_disk(p) as img:
        assert img.info()["data_file"] == data
        assert img.pread(64 * 1024, 128 * 1024) == b"\x3c" * (128 * 1024)
        assert img.pread(0, 4096) == bytes(4096)
    expect(p, UnsupportedFeatureError, "external data file", writable=True)


def test_extension_running_past_header_cluster(image):
    p = image()
    # the feature table extension follows the 112-byte header; claim it is huge
    assert peek(p, 112, ">I") == C.QCOW2_EXT_MAGIC_FEATURE_TABLE
    poke(p, 116, ">I", 1 << 20)
    expect(p, CorruptImageError, "qcow2 header extension @0x70 (len)")


def test_snapshot_table_past_eof(image):
    p = image()
    poke(p, 60, ">I", 3)
    poke(p, 64, ">Q", 1 << 40)
    expect(p, CorruptImageError, "(snapshots_offset)", "past the end")
    p = image()
    poke(p, 60, ">I", 1 << 30)
    expect(p, CorruptImageError, "(nb_snapshots)", "absurd")


def test_cli_exit_code_3_and_one_line(image):
    p = image()
    poke(p, 20, ">I", 40)
    before = file_sha256(p)
    r = nuwa("info", p, timeout=60)
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "qcow2 header @0x14 (cluster_bits)" in lines[0]
    assert file_sha256(p) == before


def test_empty_snapshot_table_unaligned_refuses_writing_only(image):
    # fuzz finding (in-place kind): with no snapshots, snapshots_offset 0x1. qemu validates the
    # table's place anyway and will not open the image; Nuwa wrote into it. Writing now refuses
    # (exit 3, file unchanged); reading, which needs no snapshot table, still works.
    p = image()
    assert peek(p, 0x3C, ">I") == 0
    poke(p, 0x40, ">Q", 1)
    r = run([tool("qemu-img"), "info", p], check=False)
    assert r.returncode != 0 and "Snapshot table offset invalid" in r.stderr
    expect(p, CorruptImageError, "snapshots_offset 0x1", "qemu will not open the image", writable=True)
    with open_disk(p) as img:
        img.pread(0, 4096)
    # aligned, but past int64 (the campaign's next finding): qemu refuses it too
    poke(p, 0x40, ">Q", 0xFFFF000000000000)
    r = run([tool("qemu-img"), "info", p], check=False)
    assert r.returncode != 0 and "Snapshot table offset invalid" in r.stderr
    expect(p, CorruptImageError, "snapshots_offset 0xffff000000000000", "qemu will not open the image", writable=True)


def test_a_refcount_past_the_end_of_the_file_keeps_the_cluster_from_the_allocator(tmp_path):
    # fuzz finding (in-place kind): a refcount block entry for a cluster past the end of the
    # file set to 8192. qemu-img check counts only to the file's end (no error before); Nuwa's
    # allocator took that cluster as free at the end of the file, so the new data cluster had
    # refcount 8193 with OFLAG_COPIED: corruption for qemu after the write. Like qemu's
    # allocator, it now skips any cluster whose refcount is not 0; what is left is a leak.
    p = str(tmp_path / "empty.qcow2")
    qemu_img("create", "-f", "qcow2", "-o", "cluster_size=4096", p, "16M")
    cs = 1 << peek(p, 0x14, ">I")
    assert peek(p, 0x60, ">I") == 4  # 16-bit refcounts
    block = peek(p, peek(p, 0x30, ">Q"), ">Q")
    target = os.path.getsize(p) // cs + 2
    poke(p, block + 2 * target, ">H", 0x2000)
    r = run([tool("qemu-img"), "check", p], check=False)
    assert r.returncode == 0, r.stdout
    with open_disk(p, writable=True) as img:
        for off in range(0, 64 * cs, cs):
            img.pwrite(off, b"\xa5" * cs)
    r = run([tool("qemu-img"), "check", p], check=False)
    assert r.returncode in (0, 3) and "ERROR" not in r.stdout, r.stdout  # 3: leaks only


def put_extension(path: str, magic: int, data: bytes) -> None:
    """Make ``(magic, data)`` the image's only header extension (qemu's own, the feature name
    table, is overwritten; the plain variant has no backing file name after them)."""
    assert peek(path, 0x8, ">Q") == 0
    start = peek(path, 0x64, ">I")
    blob = struct.pack(">II", magic, len(data)) + data + bytes(-len(data) % 8) + bytes(8)
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(blob)


QEMU_WILL_NOT_OPEN = {
    # case: (damage, what qemu says, what Nuwa names)
    "data-file-raw without a data file": (
        lambda p: poke(p, 0x58, ">Q", C.QCOW2_AUTOCLEAR_DATA_FILE_RAW),
        "data-file-raw requires a data file", "(autoclear_features)"),
    "bitmaps extension of the wrong length": (
        lambda p: put_extension(p, C.QCOW2_EXT_MAGIC_BITMAPS, bytes(16)),
        "Invalid extension length", "bitmaps extension of 16 bytes"),
    "bitmaps extension with no bitmaps": (
        lambda p: (put_extension(p, C.QCOW2_EXT_MAGIC_BITMAPS, bytes(24)),
                   poke(p, 0x58, ">Q", C.QCOW2_AUTOCLEAR_BITMAPS)),
        "zero bitmaps", "with 0 bitmaps"),
    "backing format name too long": (
        lambda p: put_extension(p, C.QCOW2_EXT_MAGIC_BACKING_FORMAT, b"q" * 1024),
        "too large", "backing format name of 1024 bytes"),
    "encryption header pointer without encryption": (
        lambda p: put_extension(p, C.QCOW2_EXT_MAGIC_CRYPTO_HEADER, bytes(16)),
        "only expected with LUKS", "not LUKS"),
}


@pytest.mark.parametrize("case", sorted(QEMU_WILL_NOT_OPEN))
def test_an_image_qemu_will_not_open_is_never_written(image, case):
    # fuzz finding (in-place kind, campaign 5): the autoclear bit data-file-raw set in an image
    # without an external data file. qemu refuses to open such an image at all; Nuwa wrote into
    # it (and, clearing the autoclear bits as it writes, made it one qemu opens). The writer now
    # makes every header check of qemu's open that reading does not need (qcow2_openable.py);
    # each case here is judged by qemu-img first. Reading still works where it can.
    damage, qemu_says, nuwa_names = QEMU_WILL_NOT_OPEN[case]
    p = image()
    damage(p)
    # qemu-io opens the image as a guest's disk would be (qemu-img info opens it without I/O,
    # which skips the data file checks)
    r = run([tool("qemu-io"), "-r", "-f", "qcow2", "-c", "read 0 512", p], check=False)
    assert r.returncode != 0 and qemu_says in r.stdout + r.stderr, r.stdout + r.stderr
    expect(p, CorruptImageError, nuwa_names, "qemu will not open the image", writable=True)
    with open_disk(p) as img:
        assert len(img.pread(0, 4096)) == 4096


def test_an_empty_l1_table_must_still_sit_on_a_cluster_boundary(tmp_path):
    # qemu validates the L1 table's place even when the virtual size is 0 and the table empty
    p = str(tmp_path / "empty.qcow2")
    qemu_img("create", "-f", "qcow2", p, "0")
    assert peek(p, 0x24, ">I") == 0
    poke(p, 0x28, ">Q", 0x200)
    r = run([tool("qemu-img"), "info", p], check=False)
    assert r.returncode != 0 and "Active L1 table offset invalid" in r.stderr, r.stderr
    expect(p, CorruptImageError, "l1_table_offset 0x200", "qemu will not open the image", writable=True)
