"""``nuwa diff`` of two qcow2 overlays over one backing file: the content-fingerprint fast path.

The base is a real partitioned disk (``sfdisk`` + ``mkfs.ext4 -d``, converted by ``qemu-img``);
the two overlays are written by ``nuwa copy-in --output``. The judge for correctness is the same
diff with the fast path disabled (every same-size file hashed): the outputs must be identical.
The judge for speed is the bytes read from the shared backing file: with the fast path, no
data cluster of an unchanged file is read; without it, they are (so the assertion can fail).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess

import pytest

from helpers import cli
from helpers.cli import C_ENV
from judges import qemu_img_check, tool

ENV = {**os.environ, **C_ENV}
MTIME = 1_700_000_000
BIG = [f"usr/share/big{i}" for i in range(4)]  # big2 changed and big3 rewritten (same bytes) in B
KEEP = [f"usr/lib/keep{i}" for i in range(6)]  # never touched


def run(*cmd):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, env=ENV)


#: ``nuwa ARGS`` that must succeed; bytes out
nuwa = functools.partial(cli.nuwa, check=0, text=False, env=C_ENV)


def blob(seed: int, n: int) -> bytes:
    out, h = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """base.qcow2 (partition at 1 MiB), a.qcow2 and b.qcow2 over it, and what was changed."""
    d = tmp_path_factory.mktemp("shared")
    tree = d / "tree"
    for sub in ("etc", "var/lib/dpkg", "usr/share", "usr/lib"):
        os.makedirs(tree / sub)
    (tree / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "var/lib/dpkg/status").write_text("Package: base-files\n")
    (tree / "etc/small").write_text("small\n")
    for i, name in enumerate(BIG):
        (tree / name).write_bytes(blob(i, 300_000 + i * 4096))
    for i, name in enumerate(KEEP):
        (tree / name).write_bytes(blob(100 + i, 200_000 + i * 1000))
    for dirpath, dirs, names in os.walk(tree):
        for n in dirs + names + ["."]:
            os.utime(os.path.join(dirpath, n), ns=(MTIME * 10**9,) * 2)
    fs = d / "fs.img"
    run(tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-d", tree, "-E", "root_owner=0:0", fs, "24M")
    disk = d / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(26 << 20)
    subprocess.run([tool("sfdisk"), "-q", str(disk)], input=b"label: dos\nstart=2048, type=83\n", check=True,
                   capture_output=True)
    run("dd", f"if={fs}", f"of={disk}", "bs=1M", "seek=1", "conv=notrunc", "status=none")
    base = d / "base.qcow2"
    run(tool("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", disk, base)
    os.unlink(disk)
    os.unlink(fs)
    host = d / "host"
    os.makedirs(host)
    (host / "newfile").write_bytes(b"only in A\n")
    nuwa("copy-in", base, host / "newfile", "/etc", "--output", d / "a.qcow2")
    # B: one big file rewritten with identical bytes, one changed, one new file
    (host / "big3").write_bytes((tree / BIG[3]).read_bytes())
    (host / "big2").write_bytes(blob(99, 300_000 + 2 * 4096))  # same size, other content
    (host / "other").write_bytes(b"only in B\n")
    nuwa("copy-in", base, host / "big3", host / "big2", "/usr/share", "--output", d / "b.qcow2")
    nuwa("copy-in", d / "b.qcow2", host / "other", "/etc", "--output", d / "b2.qcow2")
    for img in ("base", "a", "b", "b2"):
        qemu_img_check(d / f"{img}.qcow2")
    return d


def _diff(a, b, fast: bool, monkeypatch, reads=None):
    """(human, json) outputs of the diff of images a and b; reads: collects (fd, offset, n)."""
    import nuwa as N
    from nuwa.fs.diff import diff_trees, format_human, to_json
    from nuwa.fs.ext4.fs import Ext4FS

    with monkeypatch.context() as m:
        if not fast:
            m.setattr(Ext4FS, "content_fingerprint", lambda self, path: None)
        if reads is not None:
            real_pread, real_preadv = os.pread, os.preadv
            m.setattr(os, "pread", lambda fd, n, off: (reads.append((fd, off, n)), real_pread(fd, n, off))[1])
            m.setattr(os, "preadv", lambda fd, bufs, off: (reads.append((fd, off, sum(len(x) for x in bufs))),
                                                           real_preadv(fd, bufs, off))[1])
        with N.open(str(a)) as ia, N.open(str(b)) as ib:
            fa, fb = ia.root(), ib.root()
            entries = diff_trees(fa, fb, times=True, hashes=True)
            human, js = format_human(entries), to_json(entries, a="A", b="B", times=True)
    return human, js


def _base_data_ranges(base, paths):
    """Host byte ranges in base.qcow2 holding the data clusters of ``paths`` (read via nuwa)."""
    import nuwa as N

    out = []
    with N.open(str(base)) as img:
        fs = img.root()
        dev = fs.dev
        start = dev.start  # the root partition's slice
        q = dev.parent
        for p in paths:
            node = fs._existing("/" + p, False)
            for _lblk, cnt, pblk, _uninit in fs.map_of(node).ext:
                for kind, _pos, host, n, _i in q.plan(start + pblk * fs.bs, cnt * fs.bs):
                    assert kind == 0
                    out.append((host, n))
    return out


def _shared(a, b):
    """The BIG files whose fingerprints agree in images a and b."""
    import nuwa as N

    with N.open(str(a)) as ia, N.open(str(b)) as ib:
        fa, fb = ia.root(), ib.root()
        return [p for p in BIG + KEEP if fa.content_fingerprint("/" + p) is not None
                and fa.content_fingerprint("/" + p) == fb.content_fingerprint("/" + p)]


def _touches(reads, fd_ranges):
    return [(off, n) for fd, off, n in reads for h, hn in fd_ranges if off < h + hn and h < off + n]


def test_fast_path_gives_identical_output(pair, monkeypatch):
    a, b = pair / "a.qcow2", pair / "b2.qcow2"
    fast = _diff(a, b, True, monkeypatch)
    slow = _diff(a, b, False, monkeypatch)
    assert fast == slow
    human = fast[0]
    assert "/etc/newfile" in human and "/etc/other" in human
    changed = {e["path"]: e for e in json.loads(fast[1])["entries"]}
    assert "content" in changed["/usr/share/big2"]["changes"]
    # big3 was rewritten with identical bytes: its fingerprint differs, hashing finds it unchanged
    assert "/usr/share/big3" not in changed or "content" not in changed["/usr/share/big3"]["changes"]
    # the CLI prints the same as the in-process fast diff
    assert nuwa("diff", a, b, "--times").stdout.decode() == human


def test_fingerprints(pair):
    import nuwa as N

    with N.open(str(pair / "a.qcow2")) as ia, N.open(str(pair / "b.qcow2")) as ib:
        fa, fb = ia.root(), ib.root()
        k = fa.content_fingerprint("/" + BIG[0])
        assert k is not None and k == fb.content_fingerprint("/" + BIG[0])
        # big1 is unchanged too, but B's writes may have copied a qcow2 cluster it shares with
        # its rewritten neighbours into B's top layer: then no fingerprint (hashing decides)
        k1, k1b = fa.content_fingerprint("/" + BIG[1]), fb.content_fingerprint("/" + BIG[1])
        assert k1 is not None and k1b in (k1, None)
        # rewritten in B (new clusters in B's top layer): different or no fingerprint
        assert fa.content_fingerprint("/usr/share/big3") != fb.content_fingerprint("/usr/share/big3")
        assert fa.content_fingerprint("/usr/share/big2") != fb.content_fingerprint("/usr/share/big2")
        assert fb.content_fingerprint("/usr/share") is None  # not a regular file


def test_unchanged_clusters_are_not_read(pair, monkeypatch):
    base = pair / "base.qcow2"
    shared = _shared(pair / "a.qcow2", pair / "b2.qcow2")
    assert BIG[0] in shared and set(KEEP) <= set(shared)
    unchanged = _base_data_ranges(base, shared)
    assert sum(n for _h, n in unchanged) >= 1_500_000
    base_ino = os.stat(base).st_ino
    for fast in (True, False):
        reads = []  # reads of base.qcow2 only (the fd's inode is checked while it is open)
        _diff(pair / "a.qcow2", pair / "b2.qcow2", fast, monkeypatch, reads=_InoRecorder(reads, base_ino))
        hits = _touches(reads, unchanged)
        if fast:
            assert hits == [], f"unchanged data clusters were read: {hits[:5]}"
            fast_bytes = sum(n for _fd, _o, n in reads)
        else:
            assert sum(n for _o, n in hits) >= sum(n for _h, n in unchanged)
            slow_bytes = sum(n for _fd, _o, n in reads)
            # both images read the unchanged files through the base without the fast path
            assert slow_bytes - fast_bytes >= 2 * sum(n for _h, n in unchanged)
            assert fast_bytes * 2 < slow_bytes


def _fd_is(fd, ino):
    try:
        return os.fstat(fd).st_ino == ino
    except OSError:
        return False


class _InoRecorder(list):
    """Keeps only reads of file descriptors open on the given inode (checked at read time)."""

    def __init__(self, sink, ino):
        super().__init__()
        self.sink, self.ino, self.known = sink, ino, {}

    def append(self, item):
        fd = item[0]
        if fd not in self.known:
            self.known[fd] = _fd_is(fd, self.ino)
        if self.known[fd]:
            self.sink.append(item)


def test_source_of_qcow2_layers(tmp_path):
    """``Qcow2Image.source_of`` over a raw base (qemu-img made both; one cluster written by Nuwa)."""
    from nuwa.formats.blockdev import SliceDevice
    from nuwa.formats.qcow2 import Qcow2Image

    base, top = tmp_path / "base.raw", tmp_path / "top.qcow2"
    base.write_bytes(blob(1, 1 << 20))
    run(tool("qemu-img"), "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", "-b", base, "-F", "raw",
        top, "2M")
    with Qcow2Image(str(top), writable=True) as q:
        q.pwrite(65536, b"x" * 100)  # allocates cluster 1 (copy-on-write of the rest of it)
    qemu_img_check(top)
    st_b, st_t = os.stat(base), os.stat(top)
    with Qcow2Image(str(top)) as q:
        assert q.source_of(0, 65536) == ("file", st_b.st_dev, st_b.st_ino, 0, 65536)
        assert q.source_of(65536 + 10, 50) == ("qcow2", st_t.st_dev, st_t.st_ino, None, 65546, 50)
        assert q.source_of(60000, 10000) is None  # mixed: base then top
        assert q.source_of((1 << 20) - 10, 20) is None  # past the shorter backing file
        assert q.source_of(3 << 19, 10) is None  # beyond the base: reads zeros from no layer
        s = SliceDevice(q, 4096, 65536)
        assert s.source_of(0, 4096) == ("file", st_b.st_dev, st_b.st_ino, 4096, 4096)
        assert s.source_of(65536 - 4096, 8192) is None  # outside the slice
