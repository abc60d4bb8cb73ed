"""Writing into a damaged image is refused before the first write (exit 3, the structure named,
the image byte-identical); reading it keeps working.

Each image is damaged by the test, in the one structure the allocator trusts, and judged
damaged by the real tool first (``qemu-img check`` exit 2, ``e2fsck -fn`` exit 4), so the
refusal is never a refusal of a healthy image. The ext4 damage is made with ``debugfs -w``
(``freeb``/``freei`` clear a bit and keep the counts and checksums right), so only the
comparison of the bitmaps with what the inodes use can find it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct

import pytest

from helpers.cli import nuwa
from helpers.images import root_partition
from helpers.paths import DEFAULT_IMAGE
from judges import run, tool
from nuwa.errors import EXIT_CORRUPT
from nuwa.formats.qcow2 import Qcow2Image

pytestmark = pytest.mark.judge


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def qemu_img_check_status(path) -> int:
    return run([tool("qemu-img"), "check", str(path)], check=False).returncode


def e2fsck_status(path) -> tuple[int, str]:
    r = run([tool("e2fsck"), "-fn", str(path)], check=False)
    return r.returncode, r.stdout + r.stderr


def assert_refused(image, words: list[str], tmp_path) -> str:
    """``copy-in --in-place`` and ``--output`` exit 3 naming ``words``; image unchanged, no output;
    read-only commands still work."""
    before = digest(image)
    src = tmp_path / "payload"
    src.write_bytes(b"payload\n")
    r = nuwa("copy-in", image, src, "/root", "--in-place")
    assert r.returncode == EXIT_CORRUPT, r
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for w in words:
        assert w in line, (w, line)
    assert digest(image) == before
    nuwa("ls", image, "/etc", check=0)
    nuwa("cat", image, "/etc/os-release", check=0, text=False)  # may be any bytes on a damaged image
    return line


@pytest.fixture()
def qcow2_copy(tmp_path):
    path = tmp_path / "disk.qcow2"
    shutil.copyfile(DEFAULT_IMAGE, path)
    return str(path)


def _refcount_entry(img: Qcow2Image, cluster: int) -> tuple[int, int]:
    """(file offset, width in bytes) of ``cluster``'s refcount entry (16-bit refcounts)."""
    h = img.header
    assert h.refcount_order == 4
    per_block = img.cluster_size // 2
    table = h.refcount_table_offset
    with open(img.path, "rb") as f:
        f.seek(table + 8 * (cluster // per_block))
        block = struct.unpack(">Q", f.read(8))[0]
    return block + 2 * (cluster % per_block), 2


def test_qcow2_refcount_zeroed_for_a_used_cluster(qcow2_copy, tmp_path):
    img = Qcow2Image(qcow2_copy)
    l2 = img.l1[0] & 0x00FFFFFFFFFFFE00
    off, n = _refcount_entry(img, l2 >> img.cluster_bits)
    img.close()
    with open(qcow2_copy, "r+b") as f:
        f.seek(off)
        f.write(bytes(n))
    assert qemu_img_check_status(qcow2_copy) == 2  # qemu: corruptions
    line = assert_refused(qcow2_copy, ["refcount 0 < 1 references", "refusing to write"], tmp_path)
    assert "qcow2" in line


def test_qcow2_l2_entry_pointing_into_metadata(qcow2_copy, tmp_path):
    img = Qcow2Image(qcow2_copy)
    l2 = img.l1[0] & 0x00FFFFFFFFFFFE00
    table = img.l2_table(l2)
    idx = next(i for i in range(len(table) - 1, -1, -1) if table[i] == 0)  # an unallocated guest cluster
    target = img.header.refcount_table_offset  # point it at the refcount table
    img.close()
    with open(qcow2_copy, "r+b") as f:
        f.seek(l2 + 8 * idx)
        f.write(struct.pack(">Q", target | 1 << 63))  # a normal cluster with COPIED
    assert qemu_img_check_status(qcow2_copy) == 2
    assert_refused(qcow2_copy, ["refcount table", "refusing to write"], tmp_path)


@pytest.fixture()
def bare_ext4(tmp_path):
    return root_partition(DEFAULT_IMAGE, str(tmp_path / "root.ext4"))


def _debugfs_w(path, request: str) -> None:
    r = run([tool("debugfs"), "-w", "-R", request, str(path)], check=False)
    assert r.returncode == 0, r.stderr


def _block_of(path, file: str) -> int:
    r = run([tool("debugfs"), "-R", f"bmap {file} 0", str(path)], check=False)
    return int(r.stdout.split()[-1])


def test_ext4_block_bitmap_bit_cleared_for_a_used_block(bare_ext4, tmp_path):
    blk = _block_of(bare_ext4, "/usr/lib/os-release")  # /etc/os-release is a symlink
    _debugfs_w(bare_ext4, f"freeb {blk}")
    status, out = e2fsck_status(bare_ext4)
    assert status == 4 and f"+{blk}" in out, out  # "Block bitmap differences: +BLK" (used, not marked)
    assert_refused(bare_ext4, [f"block {blk} is in use (inode ", "but marked free", "block bitmap", "refusing to write"],
                   tmp_path)
    # the same filesystem inside a qcow2, written with --output: refused, no output left
    disk = tmp_path / "fs.qcow2"
    run([tool("qemu-img"), "convert", "-O", "qcow2", bare_ext4, str(disk)])
    out_path = tmp_path / "out.qcow2"
    r = nuwa("copy-in", disk, "/etc/hostname", "/root", "--output", out_path)
    assert r.returncode == EXIT_CORRUPT and "block bitmap" in r.stderr, r
    assert not out_path.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".out")]


def test_ext4_inode_bitmap_bit_cleared_for_a_used_inode(bare_ext4, tmp_path):
    r = run([tool("debugfs"), "-R", "stat /usr/lib/os-release", bare_ext4], check=False)
    ino = int(r.stdout.split("Inode:")[1].split()[0])
    _debugfs_w(bare_ext4, f"freei <{ino}>")
    status, out = e2fsck_status(bare_ext4)
    assert status == 4, out
    assert_refused(bare_ext4, [f"inode {ino} is in use", "inode bitmap", "refusing to write"], tmp_path)


def test_ext4_group_free_count_wrong(bare_ext4, tmp_path):
    # set_bg: the bitmap stays right, only the descriptor's count is wrong (checksum recomputed)
    _debugfs_w(bare_ext4, "set_bg 0 free_blocks_count 7")
    _debugfs_w(bare_ext4, "set_bg 0 checksum calc")
    status, out = e2fsck_status(bare_ext4)
    assert status == 4, out
    assert_refused(bare_ext4, ["group descriptor 0", "bg_free_blocks_count", "refusing to write"], tmp_path)


def test_healthy_images_are_written(qcow2_copy, bare_ext4, tmp_path):
    """The check accepts what the real tools call clean (no false refusal)."""
    src = tmp_path / "payload"
    src.write_bytes(b"payload\n")
    for image in (qcow2_copy, bare_ext4):
        nuwa("copy-in", image, src, "/root", "--in-place", check=0)
    assert qemu_img_check_status(qcow2_copy) == 0
    assert e2fsck_status(bare_ext4)[0] == 0


def test_ext4_file_extent_pointing_into_the_inode_table(bare_ext4, tmp_path):
    # the bitmaps are right (the inode table is marked used); only the double claim shows it
    from nuwa.formats.blockdev import RawFile
    from nuwa.fs.ext4 import open_ext4

    fs = open_ext4(RawFile(bare_ext4))
    table = fs.groups.descs[0].inode_table
    fs.close()
    # i_block words 0-2 are the extent header, 3-5 the first extent (ee_start_lo is word 5)
    _debugfs_w(bare_ext4, f"set_inode_field /usr/lib/os-release block[5] {table}")
    status, out = e2fsck_status(bare_ext4)
    assert status == 4 and "multiply-claimed" in out, out
    assert_refused(bare_ext4, [f"block {table} is used by", "refusing to write"], tmp_path)
