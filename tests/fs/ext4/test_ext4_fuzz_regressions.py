"""Images found by tools/fuzz.py, rebuilt here as the fuzzer's seed (tools/fuzz_seeds.py, made
by mkfs.ext4/debugfs) plus the few bytes the fuzzer changed, so nothing large is committed."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct

import pytest

from helpers.cli import nuwa
from helpers.paths import tool_module
from judges import run, tool
from nuwa.errors import EXIT_CORRUPT
from nuwa.fs.ext4 import csum

pytestmark = pytest.mark.judge


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return tool_module("fuzz_seeds").make_seeds(str(tmp_path_factory.mktemp("fuzz-seeds")))


def _sb_patch(path: str, off: int, data: bytes) -> None:
    """Change superblock bytes and re-seal its checksum, as the fuzzer's input did."""
    with open(path, "r+b") as f:
        f.seek(1024)
        sb = bytearray(f.read(1024))
        sb[off : off + len(data)] = data
        struct.pack_into("<I", sb, 0x3FC, csum.superblock_csum(bytes(sb)))
        f.seek(1024)
        f.write(sb)


def test_reserved_blocks_past_the_disk_refuse_writing_not_reading(seeds, tmp_path):
    # fuzz finding: s_r_blocks_count_hi = 1 (a reserve of 2^32 + 204 blocks) made copy-in fail
    # with ENOSPC, exit 1; the image is damaged (e2fsck: "Corruption found in superblock")
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    _sb_patch(img, 0x154, b"\x01")
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert r.returncode == 8 and "Corruption found in superblock" in r.stdout + r.stderr
    with open(img, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    nuwa("info", img, check=0)
    nuwa("cat", img, "/etc/os-release", check=0)
    r = nuwa("copy-in", img, "/etc/hostname", "/root", "--in-place")
    assert r.returncode == EXIT_CORRUPT and "s_r_blocks_count" in r.stderr, r
    with open(img, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before
    assert not os.path.exists(str(tmp_path / "out.qcow2"))


def test_superblock_free_count_zero_is_recounted_from_the_groups(seeds, tmp_path):
    # fuzz finding: s_free_blocks_count_lo = 0 (the group descriptors and bitmaps intact) made
    # copy-in fail with ENOSPC, exit 1. The kernel never trusts that total: it sums the groups'
    # counts at mount (ext4_count_free_clusters). Nuwa now does the same on a writable open,
    # so the write succeeds and the image it leaves is clean for e2fsck.
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    _sb_patch(img, 0x0C, b"\0\0\0\0")
    r = nuwa("copy-in", img, "/etc/hostname", "/root", "--in-place")
    assert r.returncode == 0, r
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert nuwa("cat", img, "/root/hostname").stdout == open("/etc/hostname").read()


def test_bitmap_padding_not_set_refuses_writing(seeds, tmp_path):
    # fuzz finding (in-place kind): bytes past the 1,024 bits of a group's block bitmap zeroed
    # (the bitmap checksum covers only those bits, so it still matched). e2fsck calls it
    # "Padding at end of block bitmap is not set"; Nuwa wrote into it. The padding is what the
    # allocator trusts for blocks past the end of the disk, so a write is now refused, exit 3,
    # the image byte-identical; reading still works.
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    out = run([tool("dumpe2fs"), img], check=False).stdout
    bitmap = int(out.split("Group 2:")[1].split("Block bitmap at ")[1].split()[0])
    with open(img, "r+b") as f:
        f.seek(bitmap * 1024 + 304)
        f.write(b"\0" * 12)
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert r.returncode == 4 and "Padding at end of block bitmap is not set" in r.stdout, r.stdout
    with open(img, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    nuwa("ls", img, "/etc", check=0)
    r = nuwa("copy-in", img, "/etc/hostname", "/root", "--in-place")
    assert r.returncode == EXIT_CORRUPT and "padding" in r.stderr and "group 2 block bitmap" in r.stderr, r
    with open(img, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before


def test_a_status_file_claiming_terabytes_is_not_read_whole(seeds, tmp_path):
    # fuzz finding (campaign 3, ext4 kind): /var/lib/dpkg/status's inode size set to 2^52 (holes).
    # `nuwa packages` and `nuwa info` (which reads the dpkg stanza for the architecture) read it
    # whole and ran out of memory. `packages` now calls the database damaged (exit 3, the size
    # named); `info` still answers, its architecture from the ELF headers
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    run([tool("debugfs"), "-w", "-R", "sif /var/lib/dpkg/status size 0x10000000000000", img])
    r = nuwa("packages", img)
    assert r.returncode == EXIT_CORRUPT and "4503599627370496 bytes" in r.stderr, r
    r = nuwa("info", img)
    assert r.returncode == 0, r


def test_last_group_block_uninit_refuses_writing(seeds, tmp_path):
    # fuzz finding (campaign 4, in-place kind): the last group's descriptor flags set to
    # BLOCK_UNINIT (checksum resealed). mke2fs and the kernel never do that (the bitmap's padding
    # covers the blocks past the end of the disk); e2fsck then finds the padding not set, and
    # Nuwa wrote into it. Writing now refuses, exit 3, the image byte-identical.
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    with open(img, "r+b") as f:
        f.seek(1024)
        sb = f.read(1024)
        groups = -(-(struct.unpack_from("<I", sb, 4)[0] - struct.unpack_from("<I", sb, 20)[0])
                   // struct.unpack_from("<I", sb, 32)[0])
        desc_size = struct.unpack_from("<H", sb, 0xFE)[0]
        off = 2048 + (groups - 1) * desc_size
        f.seek(off)
        desc = bytearray(f.read(desc_size))
        struct.pack_into("<H", desc, 0x12, struct.unpack_from("<H", desc, 0x12)[0] | 0x2)  # EXT2_BG_BLOCK_UNINIT
        struct.pack_into("<H", desc, 0x1E, 0)
        seed = csum.crc32c_raw(0xFFFFFFFF, sb[0x68:0x78])
        struct.pack_into("<H", desc, 0x1E, csum.group_desc_csum_crc32c(seed, groups - 1, bytes(desc)) & 0xFFFF)
        f.seek(off)
        f.write(desc)
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert r.returncode == 4 and "Padding at end of block bitmap is not set" in r.stdout, r.stdout
    with open(img, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    r = nuwa("copy-in", img, "/etc/hostname", "/root", "--in-place")
    assert r.returncode == EXIT_CORRUPT and "BLOCK_UNINIT" in r.stderr, r
    with open(img, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before


def test_a_size_past_what_the_extents_address_is_a_damaged_image(seeds, tmp_path):
    # fuzz finding (session 14, inplace kind): /etc/group's i_size set to 2^63 + 10. Reading it
    # (patch's dpkg reads /etc/group for statoverrides) made bytes() of the holes overflow: a
    # traceback. e2fsck calls that size wrong (extents address 2^32 blocks); Nuwa now refuses
    # to read such a file (exit 3, one line, the inode named) and the image stays as it was
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    run([tool("debugfs"), "-w", "-R", "sif /etc/group size 0x800000000000000a", img])
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert "i_size is 9223372036854775818, should be" in r.stdout, r.stdout
    with open(img, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    r = nuwa("cat", img, "/etc/group")
    assert r.returncode == EXIT_CORRUPT and "i_size 9223372036854775818" in r.stderr, r
    assert r.stderr.count("\n") == 1
    r = nuwa("cat", img, "/etc/os-release")
    assert r.returncode == 0, r
    with open(img, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before


def test_new_inodes_take_no_invalid_extra_isize_from_the_superblock(seeds, tmp_path):
    # fuzz finding (session 14, campaign 8, inplace kind): s_want_extra_isize = 33. The writer
    # gave new inodes that i_extra_isize: e2fsck "Inode N has a extra size (33) which is
    # invalid" (the kernel's iget refuses it too). A wish e2fsck rejects (not a multiple of 4,
    # or past the record) now gives the kernel's own 32
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    _sb_patch(img, 0x15E, struct.pack("<H", 33))
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert "Bad desired extra isize in superblock (33)" in r.stdout and r.returncode == 0, r.stdout
    payload = tmp_path / "payload"
    payload.write_bytes(b"payload\n")
    r = nuwa("copy-in", img, str(payload), "/root", "--in-place")
    assert r.returncode == 0, r
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert r.returncode == 0 and "extra size" not in r.stdout, r.stdout
    r = run([tool("debugfs"), "-R", "stat /root/payload", img])
    assert "Size of extra inode fields: 32" in r.stdout, r.stdout


def test_an_inode_of_no_file_type_on_the_way_to_the_root_markers_is_damage(seeds, tmp_path):
    # fuzz finding (campaign 10): /var/lib/dpkg's inode with mode 0355, no file-type bits
    # (e2fsck: "unknown file type with mode 0355"). Its lookup answered ENOTDIR, so `nuwa
    # packages` exited 1 ("Not a directory: /var/lib/dpkg/status") and the root search took
    # the damage for a missing path. The kernel's ext4_iget refuses such an inode ("bogus
    # i_mode", EFSCORRUPTED); Nuwa now says the image is damaged, exit 3, naming the inode.
    img = str(tmp_path / "root.ext4")
    shutil.copyfile(seeds["root.ext4"], img)
    run([tool("debugfs"), "-w", "-R", "sif /var/lib/dpkg mode 0355", img])
    r = run([tool("e2fsck"), "-fn", img], check=False)
    assert r.returncode == 4 and "unknown file type with mode 0355" in r.stdout + r.stderr, r.stdout
    with open(img, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    for args in (("info", img), ("ls", img, "/"), ("cat", img, "/etc/os-release"), ("packages", img)):
        r = nuwa(*args)
        assert r.returncode == EXIT_CORRUPT and "no valid file type (mode 0o355)" in r.stderr, (args, r)
        assert len(r.stderr.strip().splitlines()) == 1
    with open(img, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before
