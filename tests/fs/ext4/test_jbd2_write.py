"""Crash-atomic writing through the journal (``nuwa.fs.ext4.jbd2_write``, issue 16).

An atomic run (``begin_atomic``) over a real ``mkfs.ext4`` image is "killed" at every one of
its device writes and flushes in turn (the device raises at that point and drops the rest,
as a SIGKILLed process leaves the file). Each state left behind is judged by e2fsprogs
(``e2fsck -E journal_only`` replays as the kernel does at mount, then ``e2fsck -fn`` must be
clean) and by Nuwa's own replay (a writable open), and both must read exactly the BEFORE or
the AFTER tree. Journals without checksums, with csum v3 + 64bit (``debugfs jo -c``), on 1 KiB
and 4 KiB blocks; a block whose copy starts with the jbd2 magic is escaped.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from judges import run, tool
from nuwa.errors import InvalidInputError
from nuwa.formats.blockdev import BlockDevice, RawFile
from nuwa.fs.ext4 import open_ext4

MAGIC = b"\xc0\x3b\x39\x98"


class Killed(BaseException):
    """The simulated SIGKILL (BaseException: nothing in the engine may catch it)."""


class KillAt(BlockDevice):
    """A file device that performs its first ``budget`` writes/flushes and dies at the next."""

    def __init__(self, path: str, budget: int | None):
        self.f = RawFile(path, writable=True)
        self.size, self.writable, self.name = self.f.size, True, path
        self.budget = budget
        self.ops = 0

    def _tick(self) -> None:
        self.ops += 1
        if self.budget is not None and self.ops > self.budget:
            raise Killed()

    def _pread(self, offset: int, n: int) -> bytes:
        return self.f.pread(offset, n)

    def _pwrite(self, offset: int, data: bytes) -> None:
        self._tick()
        self.f.pwrite(offset, data)

    def flush(self) -> None:
        self._tick()
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _make(tmp_path, name: str, block: int, csum3: bool, journal_mb: int | None = None, huge: int = 0) -> str:
    src = tmp_path / "src"
    if not src.exists():
        if huge:
            (src / "var").mkdir(parents=True)
            (src / "var" / "huge").write_bytes(b"h" * huge)
        (src / "etc").mkdir(parents=True)
        (src / "etc" / "motd").write_bytes(b"before\n" * 3)
        (src / "big").write_bytes(bytes(range(256)) * 64 * 4)  # 64 KiB, overwritten in place
        (src / "old").write_bytes(b"o" * 20000)  # freed by the run: its blocks must stay intact
        (src / "many").mkdir()
        for i in range(30):
            (src / "many" / f"f{i:03d}").write_bytes(b"x" * i)
    img = str(tmp_path / name)
    args = [tool("mkfs.ext4"), "-q", "-F", "-b", str(block), "-d", str(src), "-E", "root_owner=0:0"]
    if journal_mb:
        args += ["-J", f"size={journal_mb}"]
    run(args + [img, "24M" if block == 1024 else "64M"])
    if csum3:
        subprocess.run([tool("debugfs"), "-w", "-f", "-", img], input=b"jo -c\njc\n", capture_output=True, check=True)
        assert "journal_checksum_v3" in run([tool("dumpe2fs"), "-h", img]).stdout
    return img


def _workload(fs) -> None:
    fs.write_bytes("/etc/motd", b"after\n")
    fs.write_bytes("/etc/new.conf", b"n" * 9000)
    fs.unlink("/old")
    fs.write_bytes("/reuse", b"r" * 30000)  # must not land on /old's freed blocks
    with fs.open("/big", "r+b") as f:  # in place: data blocks in use before are journalled
        f.write(MAGIC + b"escaped block" + bytes(4000))
        f.seek(8192)
        f.write(MAGIC * 8)
    fs.mkdir("/many/sub", 0o750)
    for i in range(0, 30, 3):
        fs.unlink(f"/many/f{i:03d}")
    for i in range(40):
        fs.write_bytes(f"/many/g{i:03d}", b"g" * i)
    fs.rename("/etc/new.conf", "/many/sub/moved.conf")
    fs.setxattr("/etc/motd", "user.crash", b"test")
    fs.chmod("/many/f001", 0o600)


def _second(fs) -> None:
    # changes blocks the first transaction allocated: they are in use now, so journalled
    fs.write_bytes("/many/sub/moved.conf", b"second " * 100)
    for i in range(40, 70):
        fs.write_bytes(f"/many/sub/h{i:03d}", b"h" * i)
    with fs.open("/reuse", "r+b") as f:
        f.write(b"R" * 5000)
    fs.unlink("/many/g005")
    fs.write_bytes("/old2", b"p" * 20000)  # may reuse /old's blocks: freed by a committed transaction


def _tree(img: str) -> dict:
    fs = open_ext4(RawFile(img))
    try:
        out = {}
        for top, dirs, files in fs.walk("/"):
            for n in dirs + files:
                p = os.path.join(top, n)
                st = fs.lstat(p)
                body = fs.read_bytes(p) if n in files and (st.st_mode & 0o170000) == 0o100000 else b""
                out[p] = (st.st_mode, st.st_size if body else 0, body, tuple(sorted(fs.listxattr(p))))
        return out
    finally:
        fs.close()


def _run(img: str, budget: int | None, parts=(_workload,)) -> int:
    dev = KillAt(img, budget)
    try:
        fs = open_ext4(dev, writable=True)
        for part in parts:
            assert fs.begin_atomic()
            part(fs)
            fs.flush()  # one transaction per part
        fs.close()
    except Killed:
        pass  # the process is gone: nothing else is written, nothing closed
    finally:
        dev.f.close()
    return dev.ops


def _judge(img: str, tmp_path, states: dict) -> str:
    e2 = str(tmp_path / "e2.img")
    shutil.copyfile(img, e2)
    r = subprocess.run([tool("e2fsck"), "-E", "journal_only", "-y", e2], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    r = subprocess.run([tool("e2fsck"), "-fn", e2], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    e2_state = states.get(repr(_tree(e2)))
    assert e2_state is not None, "e2fsck's replay gives neither BEFORE nor AFTER"
    fs = open_ext4(RawFile(img, writable=True), writable=True)  # Nuwa's own replay, into the image
    fs.close()
    r = subprocess.run([tool("e2fsck"), "-fn", img], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert states.get(repr(_tree(img))) == e2_state
    return e2_state


@pytest.mark.parametrize("block,csum3,stride", [(1024, True, 1), (1024, False, 4), (4096, True, 4)])
def test_kill_at_every_write_gives_before_or_after(tmp_path, block, csum3, stride):
    # stride: every point for one variant, every 4th (and the last) for the others (suite time)
    base = _make(tmp_path, "base.img", block, csum3)
    before = repr(_tree(base))
    ref = str(tmp_path / "ref.img")
    shutil.copyfile(base, ref)
    total = _run(ref, None)
    after = repr(_tree(ref))
    assert after != before
    states = {before: "before", after: "after"}
    seen = {"before": 0, "after": 0}
    points = sorted(set(range(0, total + 1, stride)) | {total - 1, total})
    for n in points:
        img = str(tmp_path / "k.img")
        shutil.copyfile(base, img)
        _run(img, n)
        seen[_judge(img, tmp_path, states)] += 1
    # the commit block is one write: everything before it is BEFORE, everything after is AFTER
    assert seen["before"] > 0 and seen["after"] > 0


def test_two_transactions_kill_anywhere_gives_one_of_three_states(tmp_path):
    base = _make(tmp_path, "two.img", 1024, True)
    states = {repr(_tree(base)): "before"}
    for name, parts in (("mid", (_workload,)), ("after", (_workload, _second))):
        ref = str(tmp_path / f"{name}.img")
        shutil.copyfile(base, ref)
        total = _run(ref, None, parts)
        states[repr(_tree(ref))] = name
    assert len(states) == 3
    seen = set()
    for n in sorted(set(range(0, total + 1, 3)) | {total - 1, total}):
        img = str(tmp_path / "k.img")
        shutil.copyfile(base, img)
        _run(img, n, (_workload, _second))
        seen.add(_judge(img, tmp_path, states))
    assert seen == {"before", "mid", "after"}


def test_run_larger_than_the_journal_is_refused_and_leaves_before(tmp_path):
    base = _make(tmp_path, "small.img", 1024, False, journal_mb=1, huge=2 << 20)
    before = _tree(base)
    fs = open_ext4(RawFile(base, writable=True), writable=True)
    assert fs.begin_atomic()
    fs.write_bytes("/etc/motd", b"changed\n")
    with pytest.raises(InvalidInputError, match="--output"):
        with fs.open("/var/huge", "r+b") as f:  # 2048 data blocks in use, the log holds ~1000
            f.write(b"H" * (2 << 20))
        fs.flush()
    fs.abandon()
    r = subprocess.run([tool("e2fsck"), "-fn", base], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert _tree(base) == before


def test_split_mode_commits_several_transactions(tmp_path):
    # without begin_atomic a long job is split into transactions at operation boundaries
    base = _make(tmp_path, "split.img", 1024, True, journal_mb=1)
    fs = open_ext4(RawFile(base, writable=True), writable=True)
    for i in range(1200):
        fs.write_bytes(f"/etc/e{i}", b"z" * (i % 5))
    fs.close()
    assert fs.journal.transactions > 1
    r = subprocess.run([tool("e2fsck"), "-fn", base], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert len(open_ext4(RawFile(base)).readdir("/etc")) == 1201
