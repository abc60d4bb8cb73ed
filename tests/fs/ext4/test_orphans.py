"""Pending orphans, processed like the kernel at mount and e2fsck -fy, refused read-only.

Fixtures (tools/make_ext4_fixtures.py): real mkfs images whose ``/o/gone_*`` inodes were
unlinked but left allocated (debugfs ``unlink`` + ``sif links_count 0``) and whose ``/o/trunc*``
inodes have ``i_size`` below their blocks, recorded on the legacy list (ext4 and ext3) or in
the orphan file (upstream config) — and, beside each, what ``e2fsck -fy`` made of it.

Judges: after Nuwa processes the orphans (a writable open, then close) ``e2fsck -fn`` is clean
with no prompt; debugfs reads the same tree as in e2fsck's result; and where a loop mount is
possible, the tree and the free counts equal what the host kernel made of the same image at
mount (``ext4_orphan_cleanup``). Two documented differences from e2fsck 1.47, both following
the kernel: a truncated orphan keeps its xattr block (e2fsck's ``release_inode_blocks``
releases it) and gets mtime/ctime set to now (``ext4_truncate``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import struct

import pytest

import trees
from fixtures import ORPHAN_FIXTURES, fixture, gen, payload, private_copy
from helpers.hashing import file_sha256
from judges import e2fsck_clean, run, tool
from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.formats.blockdev import RawFile
from nuwa.fs.ext4 import open_ext4

pytestmark = pytest.mark.judge

NOW = 1_750_000_000_123_456_789  # in the past: e2fsck refuses a last write in the future
TRUNCATED = [p for p, size in gen.ORPHANS.items() if size is not None] + ["/o/hard1"]
KEYS = ("ino", "type", "perm", "uid", "gid", "size", "sha", "target", "nlink", "rdev", "mtime_ns")


def _process(img: str):
    with RawFile(img, writable=True) as dev:
        fs = open_ext4(dev, writable=True, clock=lambda: NOW)
        report = fs.orphans
        info = fs.info()
        fs.close()
    return report, info


def _nuwa_tree(img: str) -> dict:
    with RawFile(img) as dev:
        fs = open_ext4(dev)
        try:
            return trees.fs_tree(fs)
        finally:
            fs.close()


def _super(img: str) -> str:
    return run([tool("dumpe2fs"), "-h", img]).stdout


def _counts(img: str) -> tuple[int, int]:
    out = _super(img)
    return (int(re.search(r"^Free blocks:\s+(\d+)", out, re.M).group(1)),
            int(re.search(r"^Free inodes:\s+(\d+)", out, re.M).group(1)))


@pytest.mark.parametrize("name", ORPHAN_FIXTURES)
def test_read_only_open_refuses_pending_orphans(name: str) -> None:
    fx = fixture(name)
    before = file_sha256(fx.image)
    with RawFile(fx.image) as dev:
        with pytest.raises(UnsupportedFeatureError) as ei:
            open_ext4(dev)
        msg = str(ei.value)
        assert "orphan inodes are pending" in msg and "writable" in msg and "\n" not in msg
        fs = open_ext4(dev, forensic=True)  # reads as-is
        assert fs.read_bytes("/o/keep") == payload("keep", 300_000)
        fs.close()
    assert file_sha256(fx.image) == before


@pytest.mark.parametrize("name", ORPHAN_FIXTURES)
def test_orphans_processed_like_e2fsck(name: str, tmp_path) -> None:
    fx = fixture(name)
    img = private_copy(fx.image, str(tmp_path), "nuwa.img")
    report, info = _process(img)
    inos = fx.info["orphans"]
    assert sorted(report.cleared) == sorted(inos[p] for p, s in gen.ORPHANS.items() if s is None and p != "/o/hard2")
    assert sorted(report.truncated) == sorted([inos[p] for p in TRUNCATED if p != "/o/hard1"] + [inos["/o/hard2"]])
    assert info["orphans_cleared"] == len(report.cleared)
    e2fsck_clean(img)
    sb = _super(img)
    assert "orphan_present" not in sb and "First orphan inode" not in sb

    expected = trees.debugfs_tree(fx.expected_image)
    mine = trees.debugfs_tree(img)
    for p in TRUNCATED:  # ext4_truncate stamps the times; e2fsck leaves them
        assert mine[p]["mtime_ns"] == NOW, p
        del mine[p]["mtime_ns"], expected[p]["mtime_ns"]
    problems = trees.diff(mine, expected, KEYS)
    assert not problems, f"{name}: Nuwa vs e2fsck -fy:\n" + "\n".join(problems)
    assert trees.diff(_nuwa_tree(img), mine, KEYS) == []
    assert mine["/o/trunc"]["sha"] == trees._sha(payload("trunc", 300_000)[:5000])

    # the truncated orphan keeps its xattrs (the kernel does; e2fsck 1.47 drops the block)
    src = trees.host_tree(fx.source)
    assert _nuwa_tree(img)["/o/trunc_xattr"]["xattrs"] == src["/o/trunc_xattr"]["xattrs"] != {}
    free_b, free_i = _counts(img)
    exp_b, exp_i = _counts(fx.expected_image)
    assert (free_b, free_i) == (exp_b - 1, exp_i)


def _loop_mount_problem() -> str | None:
    import os

    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("mount"):
        return "no mount command"
    return None


@pytest.mark.parametrize("name", ORPHAN_FIXTURES)
def test_orphans_processed_like_the_kernel(name: str, tmp_path) -> None:
    """The host kernel as the oracle: mount a copy read-write (ext4_orphan_cleanup), unmount."""
    why = _loop_mount_problem()
    if why:
        pytest.skip(f"kernel comparison skipped: {why}")
    fx = fixture(name)
    kernel = private_copy(fx.image, str(tmp_path), "kernel.img")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-o", "loop", kernel, str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"kernel comparison skipped: mount -o loop failed here: {r.stderr.strip()}")
    subprocess.run(["umount", str(mnt)], check=True)
    mine = private_copy(fx.image, str(tmp_path), "nuwa.img")
    _process(mine)
    e2fsck_clean(mine)
    e2fsck_clean(kernel)
    keys = ("ino", "type", "perm", "uid", "gid", "size", "sha", "target", "nlink", "rdev", "xattrs")
    problems = trees.diff(_nuwa_tree(mine), _nuwa_tree(kernel), keys)
    assert not problems, f"{name}: Nuwa vs the kernel:\n" + "\n".join(problems)
    problems = trees.diff(trees.debugfs_tree(mine), trees.debugfs_tree(kernel), keys)
    assert not problems, f"{name}: Nuwa vs the kernel (debugfs):\n" + "\n".join(problems)
    assert _counts(mine) == _counts(kernel)


def test_linked_inode_on_the_list_is_dropped_from_it(tmp_path) -> None:
    """``s_last_orphan`` naming a linked file with nothing past its end: only the list changes."""
    img = private_copy(fixture("debian12").image, str(tmp_path), "one.img")
    with RawFile(img) as dev:
        fs = open_ext4(dev)
        ino = fs.lstat("/files/size300000").st_ino
        fs.close()
    run([tool("debugfs"), "-w", "-R", f"ssv last_orphan {ino}", img])
    oracle = private_copy(img, str(tmp_path), "oracle.img")
    run([tool("e2fsck"), "-fy", oracle], check=False)
    with RawFile(img) as dev:
        with pytest.raises(UnsupportedFeatureError):
            open_ext4(dev)
    report, _info = _process(img)
    assert report.truncated == [ino] and report.cleared == []
    e2fsck_clean(img)
    assert trees.diff(trees.debugfs_tree(img), trees.debugfs_tree(oracle), KEYS[:-1]) == []
    assert _nuwa_tree(img)["/files/size300000"]["sha"] == trees._sha(payload("size300000", 300_000))


def test_orphan_present_flag_alone_is_cleared(tmp_path) -> None:
    img = private_copy(fixture("upstream").image, str(tmp_path), "flag.img")
    run([tool("debugfs"), "-w", "-R", "feature orphan_present", img])
    assert "orphan_present" in _super(img)
    with RawFile(img) as dev:
        with pytest.raises(UnsupportedFeatureError) as ei:
            open_ext4(dev)
    assert "orphan_present is set" in str(ei.value)
    report, _info = _process(img)
    assert report.cleared == report.truncated == []
    e2fsck_clean(img)
    assert "orphan_present" not in _super(img)


# ---- damaged orphan lists: refused, naming the structure, the image untouched -------------------


def _refused(img: str, exc_ro, exc_rw, words: list[str]) -> None:
    before = file_sha256(img)
    for writable, exc in ((False, exc_ro), (True, exc_rw)):
        with RawFile(img, writable=writable) as dev:
            with pytest.raises(exc) as ei:
                open_ext4(dev, writable=writable).close()
        msg = str(ei.value)
        assert "\n" not in msg
        if exc is CorruptImageError:
            for w in words:
                assert w in msg, (w, msg)
    assert file_sha256(img) == before


def test_orphan_list_that_loops(tmp_path) -> None:
    fx = fixture("orphan_list")
    img = private_copy(fx.image, str(tmp_path), "loop.img")
    chain = fx.info["legacy_list"]
    run([tool("debugfs"), "-w", "-R", f"sif <{chain[-1]}> dtime {chain[2]}", img])
    _refused(img, CorruptImageError, CorruptImageError, ["orphan list loops back", f"inode {chain[-1]}", "i_dtime"])


@pytest.mark.parametrize("head,words", [(5, ["out of range", "s_last_orphan"]),
                                        (1000, ["not in use", "orphan inode 1000"])])
def test_orphan_list_head_invalid(head: int, words: list[str], tmp_path) -> None:
    img = private_copy(fixture("orphan_list").image, str(tmp_path), "head.img")
    run([tool("debugfs"), "-w", "-R", f"ssv last_orphan {head}", img])
    # read-only: an unused inode is just pending (nothing read from it is trusted); writable: refused
    _refused(img, CorruptImageError if head == 5 else UnsupportedFeatureError, CorruptImageError, words)


def test_orphan_file_block_checksum(tmp_path) -> None:
    fx = fixture("orphan_file")
    img = private_copy(fx.image, str(tmp_path), "csum.img")
    with RawFile(img) as dev:
        fs = open_ext4(dev, forensic=True)
        node = fs.inode(fs.sb.f["s_orphan_file_inum"])
        pblk = fs.map_of(node).lookup(0, 1)[0][2]
        bs = fs.bs
        fs.close()
    with open(img, "r+b") as f:
        f.seek(pblk * bs + 8)
        entry = struct.unpack("<I", f.read(4))[0]
        f.seek(pblk * bs + 8)
        f.write(struct.pack("<I", entry + 1))
    _refused(img, CorruptImageError, CorruptImageError, ["orphan file", "block 0", "ob_checksum"])
