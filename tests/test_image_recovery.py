"""A root filesystem left needing journal recovery: a read-only session refuses it clearly, a
writable one finds it, replays the journal and writes; judged by e2fsck -fn and debugfs."""

from __future__ import annotations

import os
import subprocess

import pytest

import nuwa
from helpers.hashing import file_sha256
from judges import debugfs, e2fsck_clean, tool

NEEDS_RECOVERY = 0x4


def _needs_recovery_root(tmp_path) -> str:
    src = tmp_path / "src"
    for d in ("etc", "var/lib/dpkg", "data"):
        (src / d).mkdir(parents=True)
    (src / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (src / "var/lib/dpkg/status").write_text("")
    (src / "data/old.txt").write_text("old\n")
    img = str(tmp_path / "root.img")
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-d", str(src), img, "16M"], check=True)
    # A real debugfs edit, journalled but not checkpointed (jo/jw/jc), as the ext4 fixtures do.
    edited = str(tmp_path / "edited.img")
    subprocess.run(["cp", img, edited], check=True)
    (tmp_path / "new.txt").write_text("journalled\n")
    subprocess.run([tool("debugfs"), "-w", "-R", f"write {tmp_path / 'new.txt'} /data/new.txt", edited],
                   check=True, capture_output=True)
    bs = 4096
    jblocks = {int(x) for x in debugfs(img, "blocks <8>").split() if x.isdigit()}
    changed = []
    with open(img, "rb") as a, open(edited, "rb") as b:
        n = 0
        while (x := a.read(bs)):
            if x != b.read(bs) and n not in jblocks:
                changed.append(n)
            n += 1
    blob = tmp_path / "blocks.bin"
    with open(edited, "rb") as f, open(blob, "wb") as out:
        for n in changed:
            f.seek(n * bs)
            out.write(f.read(bs))
    script = f"jo -c\njw -b {','.join(map(str, changed))} {blob}\njc\n"
    subprocess.run([tool("debugfs"), "-w", "-f", "-", img], input=script.encode(), check=True, capture_output=True)
    with open(img, "rb") as f:
        f.seek(1024 + 0x60)
        assert int.from_bytes(f.read(4), "little") & NEEDS_RECOVERY, "fixture must need recovery"
    return img


def test_read_only_refuses_and_writable_replays(tmp_path):
    img = _needs_recovery_root(tmp_path)
    digest = file_sha256(img)
    with pytest.raises(nuwa.NuwaError) as err:
        with nuwa.open(img) as image:
            image.root()
    assert "recover" in str(err.value).lower() or "journal" in str(err.value).lower()
    assert file_sha256(img) == digest

    with nuwa.open(img, writable=True) as image:
        root = image.root()
        assert root.read_bytes("/data/new.txt") == b"journalled\n"  # the replayed transaction
        root.write_bytes("/data/after.txt", b"written after replay\n")
    e2fsck_clean(img)
    assert debugfs(img, "cat /data/new.txt") == "journalled\n"
    assert debugfs(img, "cat /data/after.txt") == "written after replay\n"
    assert os.path.getsize(img) == 16 << 20
