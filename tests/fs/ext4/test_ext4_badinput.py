"""Bad input: damaged ext4 images give one clear error naming the structure, never a hang.

Each case damages a private copy of a real mkfs image (re-sealing the checksum where the
point is the structural check behind it), then opens it read-only and writable. The error
must be a ``CorruptImageError`` (or ``UnsupportedFeatureError`` for refusals) naming the
structure and field; the writer must refuse to modify a filesystem it found corrupt; and the
image file must stay byte-identical.
"""

from __future__ import annotations

import os
import struct

import pytest

from helpers.hashing import file_sha256
from fixtures import empty_image, fixture, payload, private_copy
from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.formats.blockdev import RawFile
from nuwa.fs.ext4 import csum, open_ext4


def _patch(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _read(path: str, offset: int, n: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def _expect(path: str, action, words: list[str], exc=CorruptImageError) -> str:
    """Run ``action(fs_opener)`` read-only and writable; both must raise ``exc`` naming ``words``."""
    before = file_sha256(path)
    msgs = []
    for writable in (False, True):
        with pytest.raises(exc) as e:
            fs = open_ext4(RawFile(path, writable=writable), writable=writable)
            try:
                action(fs)
            finally:
                fs.close()
        msg = str(e.value)
        assert "\n" not in msg
        for w in words:
            assert w in msg, (w, msg)
        msgs.append(msg)
    assert file_sha256(path) == before
    return msgs[0]


def _sb_patch(path: str, off: int, data: bytes) -> None:
    """Patch the primary superblock and re-seal its checksum."""
    sb = bytearray(_read(path, 1024, 1024))
    sb[off : off + len(data)] = data
    struct.pack_into("<I", sb, 0x3FC, csum.superblock_csum(sb))
    _patch(path, 1024, bytes(sb))


def _fs(path):
    return open_ext4(RawFile(path))


def _copy(name: str, tmp_path) -> str:
    return private_copy(fixture(name).image, str(tmp_path), f"{name}.img")


def test_bad_superblock_magic(tmp_path):
    img = _copy("debian12", tmp_path)
    _patch(img, 1024 + 0x38, b"\x00\x00")
    _expect(img, lambda fs: None, ["superblock", "s_magic"])


def test_bad_superblock_checksum_and_forensic_read(tmp_path):
    img = _copy("debian12", tmp_path)
    _patch(img, 1024 + 0x3FC, b"\xde\xad\xbe\xef")
    _expect(img, lambda fs: None, ["superblock", "s_checksum"])
    fs = open_ext4(RawFile(img), forensic=True)
    assert fs.read_bytes("/files/size1") == payload("size1", 1)


def test_group_descriptor_outside_filesystem(tmp_path):
    img = _copy("b1024", tmp_path)
    fs = _fs(img)
    bs, ds = fs.bs, fs.sb.desc_size
    assert fs.groups.count > 1
    off = (fs.sb.first_data_block + 1) * bs + 1 * ds  # group 1
    gd = bytearray(_read(img, off, ds))
    struct.pack_into("<I", gd, 0x08, 0x7FFFFFF0)  # bg_inode_table_lo
    _patch(img, off, bytes(gd))
    _expect(img, lambda fs: None, ["group descriptor 1", "bg_checksum"])  # checksum first
    struct.pack_into("<H", gd, 0x1E, csum.group_desc_csum_crc32c(fs.sb.csum_seed, 1, bytes(gd)))
    _patch(img, off, bytes(gd))
    _expect(img, lambda fs: None, ["group descriptor 1", "bg_inode_table", "outside the filesystem"])


def _inode_patch(path: str, ino: int, fn) -> None:
    fs = _fs(path)
    blk, off = fs.itable.location(ino)
    pos = blk * fs.bs + off
    raw = bytearray(_read(path, pos, fs.sb.inode_size))
    fn(raw)
    if fs.csum:
        csum.set_inode_csum(fs.sb.csum_seed, ino, raw)
    _patch(path, pos, bytes(raw))


def test_extent_tree_depth_over_five(tmp_path):
    img = _copy("debian12", tmp_path)
    ino = _fs(img).lstat("/files/size300000").st_ino
    _inode_patch(img, ino, lambda r: struct.pack_into("<H", r, 0x28 + 6, 6))
    _expect(img, lambda fs: fs.read_bytes("/files/size300000"), ["inode", "extent", "eh_depth", "exceeds 5"])


def _fragmented_image(tmp_path) -> tuple[str, int]:
    img = _copy("b1024", tmp_path)
    fs = open_ext4(RawFile(img, writable=True), writable=True)
    ha = fs.open_handle("/frag", os.O_RDWR | os.O_CREAT, 0o644)
    hb = fs.open_handle("/other", os.O_RDWR | os.O_CREAT, 0o644)
    for i in range(400):
        ha.pwrite(i * 1024, b"a" * 1024)
        hb.pwrite(i * 1024, b"b" * 1024)
    ha.close()
    hb.close()
    fs.close()
    fs = _fs(img)
    return img, fs.lstat("/frag").st_ino


def test_extent_tree_that_loops(tmp_path):
    img, ino = _fragmented_image(tmp_path)
    fs = _fs(img)
    node = fs.inode(ino)
    assert struct.unpack_from("<H", node.i_block, 6)[0] == 2
    child = struct.unpack_from("<I", node.i_block, 12 + 4)[0]  # first index of the root
    blk = bytearray(_read(img, child * fs.bs, fs.bs))
    struct.pack_into("<I", blk, 12 + 4, child)  # its first index points back at itself
    csum.set_extent_block_csum(fs.sb.csum_seed, ino, node.generation, blk)
    _patch(img, child * fs.bs, bytes(blk))
    _expect(img, lambda fs: fs.read_bytes("/frag"), ["extent", "loops back", f"inode {ino}"])


def test_extent_block_checksum(tmp_path):
    img, ino = _fragmented_image(tmp_path)
    fs = _fs(img)
    child = struct.unpack_from("<I", fs.inode(ino).i_block, 12 + 4)[0]
    _patch(img, child * fs.bs + 100, b"\xff")
    _expect(img, lambda fs: fs.read_bytes("/frag"), ["extent block", "checksum"])


def _dir_block(fs, path: str) -> tuple[int, int, int]:
    node = fs.inode(fs.lstat(path).st_ino)
    return node.ino, node.generation, fs.map_of(node).lookup(0, 1)[0][2]


def test_dirent_with_broken_rec_len(tmp_path):
    img = _copy("debian12", tmp_path)
    fs = _fs(img)
    ino, gen, p = _dir_block(fs, "/links")
    blk = bytearray(_read(img, p * fs.bs, fs.bs))
    struct.pack_into("<H", blk, 12 + 4, 7)  # '..' rec_len
    csum.set_dirent_csum(fs.sb.csum_seed, ino, gen, blk)
    _patch(img, p * fs.bs, bytes(blk))
    _expect(img, lambda fs: fs.lstat("/links/fast"), ["directory inode", "rec_len 7", "offset 12"])


def test_dirent_pointing_to_inode_out_of_range(tmp_path):
    img = _copy("debian12", tmp_path)
    fs = _fs(img)
    ino, gen, p = _dir_block(fs, "/empty")
    blk = bytearray(_read(img, p * fs.bs, fs.bs))
    # turn the '..' entry's slack into an entry "zz" pointing at inode 10**9
    rl = struct.unpack_from("<H", blk, 16)[0]
    struct.pack_into("<H", blk, 16, 12)
    struct.pack_into("<IHBB", blk, 24, 10**9, rl - 12, 2, 1)
    blk[32:34] = b"zz"
    csum.set_dirent_csum(fs.sb.csum_seed, ino, gen, blk)
    _patch(img, p * fs.bs, bytes(blk))
    _expect(img, lambda fs: fs.lstat("/empty/zz"), ["inode number 1000000000", "out of range"])


@pytest.mark.parametrize("field,value,words", [
    (0x1E, b"\x07", ["dx_root", "indirect_levels 7"]),
    (0x20, b"\x05\x00", ["dx_root", "limit 5"]),
])
def test_htree_bad_depth_or_limit(field, value, words, tmp_path):
    img = _copy("htree", tmp_path)
    fs = _fs(img)
    ino, gen, p = _dir_block(fs, "/many")
    blk = bytearray(_read(img, p * fs.bs, fs.bs))
    limit = struct.unpack_from("<H", blk, 0x20)[0]
    blk[field : field + len(value)] = value
    if field != 0x20:  # keep the tail where the checksum code looks for it
        csum.set_dx_csum(fs.sb.csum_seed, ino, gen, blk, 0x20)
    else:
        struct.pack_into("<I", blk, 0x20 + 8 * limit + 4, 0)
    _patch(img, p * fs.bs, bytes(blk))
    if field == 0x20:
        words = ["htree"]
    _expect(img, lambda fs: fs.lstat("/many/file-00007-qqqqqqq"), words)


def test_writer_refuses_after_finding_corruption(tmp_path):
    img = _copy("debian12", tmp_path)
    fs = _fs(img)
    ino, gen, p = _dir_block(fs, "/links")
    _patch(img, p * fs.bs + 40, b"\xee")  # checksum mismatch in /links
    before = file_sha256(img)
    fs = open_ext4(RawFile(img, writable=True), writable=True)
    with pytest.raises(CorruptImageError):
        fs.readdir("/links")
    with pytest.raises(CorruptImageError) as e:
        fs.write_bytes("/fine", b"elsewhere")
    assert "refusing to modify" in str(e.value)
    fs.close()
    assert file_sha256(img) == before


def test_needs_recovery_refused_read_only(tmp_path):
    img = _copy("debian12", tmp_path)
    raw = _read(img, 1024 + 0x60, 4)
    _sb_patch(img, 0x60, struct.pack("<I", struct.unpack("<I", raw)[0] | 0x4))
    before = file_sha256(img)
    with pytest.raises(UnsupportedFeatureError) as e:
        _fs(img)
    assert "needs recovery" in str(e.value) or "needs_recovery" in str(e.value)
    assert file_sha256(img) == before
    assert open_ext4(RawFile(img), forensic=True).read_bytes("/files/size1") == payload("size1", 1)


@pytest.mark.parametrize("feature", ["bigalloc", "quota", "encrypt", "casefold", "verity"])
def test_unsupported_features_refused_for_writing(feature, tmp_path):
    args = ["-t", "ext4", "-O", feature] + (["-C", "16384"] if feature == "bigalloc" else [])
    img = empty_image(str(tmp_path), f"feat-{feature}.img", args, "64M")
    before = file_sha256(img)
    with pytest.raises(UnsupportedFeatureError) as e:
        open_ext4(RawFile(img, writable=True), writable=True)
    assert feature in str(e.value) or (feature == "verity" and "verity" in str(e.value))
    assert file_sha256(img) == before


def test_error_state_refused_for_writing(tmp_path):
    img = _copy("debian12", tmp_path)
    _sb_patch(img, 0x3A, struct.pack("<H", 3))
    with pytest.raises(UnsupportedFeatureError) as e:
        open_ext4(RawFile(img, writable=True), writable=True)
    assert "errors" in str(e.value)


def test_truncated_device(tmp_path):
    img = str(tmp_path / "short.img")
    with open(fixture("debian12").image, "rb") as f:
        data = f.read(1 << 20)
    with open(img, "wb") as f:
        f.write(data)
    _expect(img, lambda fs: None, ["superblock", "s_blocks_count", "exceed the device"])
