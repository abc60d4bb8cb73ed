"""Dirty qcow2 images: the refcount rebuild on a writable open, and the read-only check.

Every dirty image is made by the real tools: ``qemu-img create -o lazy_refcounts=on`` (or
``convert -c`` / ``snapshot -c`` first), then ``qemu-io`` writes and is killed with
``sigraise 9`` before it can close the image cleanly. ``qemu-img check`` must report the damage
(the fixture asserts it), and ``check_qcow2`` must count it exactly as qemu-img does. Then Nuwa
opens the image writable, writes, closes: ``qemu-img check`` is clean, ``qemu-img compare``
finds the guest equal to what qemu read from the dirty image plus Nuwa's writes, the dirty bit
is clear, and internal snapshots read exactly as before.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import sys

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from helpers.cli import nuwa
from helpers.hashing import file_sha256
from judges import qemu_img_check, qemu_img_compare, run, tool
from qcow2_util import MiB, VARIANTS, make_variant, pattern, pattern_dir, qemu_img, qemu_io
from nuwa.errors import EXIT_CORRUPT, CorruptImageError
from nuwa.formats import c_qcow2 as C
from nuwa.formats import qcow2_repair
from nuwa.formats.detect import open_disk
from nuwa.formats.qcow2_refcount import get_entry, set_entry
from nuwa.formats.qcow2 import check_qcow2
from nuwa.formats.qcow2_repair import decode_refblock, encode_refblock, plan_refcount_layout

pytestmark = pytest.mark.judge
KEYS = ("corruptions", "leaks", "image-end-offset", "allocated-clusters", "total-clusters")


# --- helpers -------------------------------------------------------------------------------------


def qemu_check(path: str) -> tuple[int, dict]:
    """(exit status, JSON) of ``qemu-img check`` (2 = corruptions, 3 = leaks only)."""
    r = run([tool("qemu-img"), "check", "--output=json", path], check=False)
    return r.returncode, json.loads(r.stdout)


def is_dirty(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(C.OFF_INCOMPATIBLE_FEATURES)
        return bool(struct.unpack(">Q", f.read(8))[0] & C.QCOW2_INCOMPAT_DIRTY)


def kill_qemu_io(path: str, *cmds: str) -> None:
    """Run qemu-io commands, then kill it with SIGKILL before it closes the image."""
    args = [tool("qemu-io"), "-f", "qcow2"]
    for c in (*cmds, "sigraise 9"):
        args += ["-c", c]
    r = run(args + [path], check=False)
    assert r.returncode == -9, (r.returncode, r.stdout, r.stderr)
    assert "error" not in r.stdout.lower() + r.stderr.lower(), r.stdout + r.stderr


def read_raw(path: str, tmp: str, *opts: str) -> bytes:
    out = os.path.join(tmp, "view.raw")
    qemu_img("convert", *opts, "-O", "raw", path, out)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data


def snapshot_names(path: str) -> list:
    info = json.loads(qemu_img("info", "--output=json", path))
    return [s["name"] for s in info.get("snapshots", [])]


def assert_check_matches_qemu(path: str) -> dict:
    """``check_qcow2`` counts exactly what ``qemu-img check`` counts; return qemu's JSON."""
    _rc, q = qemu_check(path)
    mine = check_qcow2(path).as_dict()
    assert {k: mine[k] for k in KEYS} == {k: q.get(k, 0) for k in KEYS}, (mine, q)
    return q


def repair_write_judge(path: str, tmp: str, writes: list) -> None:
    """Open the dirty image writable with Nuwa, write, close; then the judges."""
    assert is_dirty(path)
    rc, q = qemu_check(path)
    assert rc in (2, 3) and (q.get("corruptions") or q.get("leaks")), q  # the tools agree it is damaged
    assert_check_matches_qemu(path)
    expected = bytearray(read_raw(path, tmp))  # the guest qemu sees in the dirty image
    snaps = {n: read_raw(path, tmp, "-l", f"snapshot.name={n}") for n in snapshot_names(path)}
    with open_disk(path, writable=True) as dev:
        for off, data in writes:
            dev.pwrite(off, data)
            expected[off : off + len(data)] = data
    assert not is_dirty(path)
    qemu_img_check(path)
    ref = os.path.join(tmp, "expected.raw")
    with open(ref, "wb") as f:
        f.write(expected)
    qemu_img_compare(ref, path)
    assert check_qcow2(path).clean
    for name, data in snaps.items():
        assert read_raw(path, tmp, "-l", f"snapshot.name={name}") == data, name


def some_writes(seed: int, size: int) -> list:
    rng = random.Random(seed)
    out = [(0, b"boot" * 128), (size - 5000, rng.randbytes(5000))]
    for _ in range(6):
        n = rng.choice([1, 512, 4096, 70000])
        out.append((rng.randrange(size - n), rng.randbytes(n)))
    return out


# --- dirty images made by qemu ------------------------------------------------------------------


def _dirty_basic(d):
    p = os.path.join(d, "basic.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", p, "4M")
    kill_qemu_io(p, "write -P 0xab 0 1M")
    return p


def _dirty_compressed(d, ctype):
    raw = os.path.join(d, "pattern.raw")
    with open(raw, "wb") as f:
        f.write(pattern(4 * MiB, seed=11))
    p = os.path.join(d, f"compressed-{ctype}.qcow2")
    qemu_img("convert", "-c", "-O", "qcow2", "-o", f"lazy_refcounts=on,cluster_size=4096,compression_type={ctype}",
             raw, p)
    # a compressed write (qemu compresses only into unallocated clusters: discard first; it
    # syncs the refcounts), then COW out of compressed clusters and writes over whole ones
    kill_qemu_io(p, "discard 1M 4k", "write -c -P 0x22 1M 4k", "write -P 0x11 1000 6k", "write -P 0x33 2M 64k")
    return p


def _dirty_snapshot(d):
    p = os.path.join(d, "snap.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", p, "4M")
    run([tool("qemu-io"), "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -P 2 3M 100k", p])
    qemu_img("snapshot", "-c", "s1", p)
    # COW of clusters shared with the snapshot: the old ones' decrements never reach the disk
    kill_qemu_io(p, "write -P 3 512k 1M", "write -z 3M 8k")
    return p


def _dirty_bitmaps(d):
    p = os.path.join(d, "bitmaps.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", p, "4M")
    qemu_img("bitmap", "--add", p, "b0")
    qemu_img("bitmap", "--add", "-g", "512", p, "b1")
    # a clean session stores bitmap data clusters; the killed one leaves the bitmaps in use
    run([tool("qemu-io"), "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -P 1 3M 4k", p])
    kill_qemu_io(p, "write -P 2 1M 1M")
    return p


def _dirty_opts(d, name, opts, size, *cmds):
    p = os.path.join(d, f"{name}.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on," + opts, p, size)
    kill_qemu_io(p, *cmds)
    return p


DIRTY = {
    "basic": _dirty_basic,
    "zlib": lambda d: _dirty_compressed(d, "zlib"),
    "zstd": lambda d: _dirty_compressed(d, "zstd"),
    "snapshot": _dirty_snapshot,
    "bitmaps": _dirty_bitmaps,
    "rc1": lambda d: _dirty_opts(d, "rc1", "refcount_bits=1", "4M", "write -P 0xab 0 1M"),
    # also preallocated zero clusters (write -z over allocated ones keeps the offset)
    "rc64": lambda d: _dirty_opts(d, "rc64", "refcount_bits=64,cluster_size=4096", "4M",
                                  "write -P 0xab 0 1M", "write -z 0 8k", "write -P 0xcd 3M 9k"),
    # 512-byte clusters: ~90 refcount blocks and a two-cluster refcount table
    "c512": lambda d: _dirty_opts(d, "c512", "cluster_size=512", "32M", "write -P 0xab 0 10M",
                                  "write -P 0xcd 20M 1M"),
    # several L1 entries (for the bad-input cases)
    "big": lambda d: _dirty_opts(d, "big", "cluster_size=65536", "2G", "write -P 0xab 0 1M", "write -P 0xcd 1G 64k"),
    "extl2": lambda d: _dirty_opts(d, "extl2", "extended_l2=on", "4M", "write -P 0xab 4k 4k",
                                   "write -P 0xcd 1M 100k", "write -P 0xef 2M 64k"),
}


@pytest.fixture(scope="session")
def dirty_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("qcow2dirty")


@pytest.fixture
def dirty(dirty_dir, tmp_path):
    """A fresh copy of the named dirty image (made once per session by qemu-io)."""

    def make(name):
        src = os.path.join(dirty_dir, f"{name}.src.qcow2")
        if not os.path.exists(src):
            d = str(dirty_dir / name)
            os.makedirs(d)
            shutil.move(DIRTY[name](d), src)
        dst = str(tmp_path / f"{name}.qcow2")
        shutil.copy(src, dst)
        return dst

    return make


@pytest.mark.parametrize("name", sorted(set(DIRTY) - {"big"}))
def test_repair_on_writable_open(dirty, tmp_path, name):
    p = dirty(name)
    with open_disk(p) as dev:  # reading a dirty image is safe and shows the bit
        assert dev.info()["dirty"] is True
        size = dev.size
    repair_write_judge(p, str(tmp_path), some_writes(len(name), size))
    with open_disk(p) as dev:
        assert dev.info()["dirty"] is False


def test_nuwa_info_reads_a_dirty_image_without_touching_it(dirty):
    p = dirty("snapshot")
    before = file_sha256(p)
    r = nuwa("info", "--json", p)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["dirty"] is True and info["lazy_refcounts"] is True and len(info["snapshots"]) == 1
    assert file_sha256(p) == before
    with open_disk(p, writable=True) as dev:
        assert dev.info()["dirty"] is False


def test_repair_keeps_lazy_refcounts_working(dirty, tmp_path):
    """After the repair, a lazy image goes dirty while written and clean on close again."""
    p = dirty("basic")
    with open_disk(p, writable=True) as dev:
        assert not is_dirty(p)
        dev.pwrite(2 * MiB, b"x" * 70000)
        assert is_dirty(p)
    assert not is_dirty(p)
    qemu_img_check(p)
    # and qemu writes the Nuwa-repaired image in turn
    run([tool("qemu-io"), "-f", "qcow2", "-c", "write -P 7 3M 64k", p])
    qemu_img_check(p)


_NUWA_CRASH = """
import os, sys
sys.path.insert(0, sys.argv[2])
from nuwa.formats.detect import open_disk
dev = open_disk(sys.argv[1], writable=True)
dev.pwrite(0, b"a" * 300000)
dev.flush()
dev.pwrite(2 << 20, b"b" * 200000)   # in the caches only: L2 and refcount updates never written
dev.pwrite(100, b"c" * 5000)
os._exit(0)                          # dies without close()
"""


def test_nuwa_killed_in_lazy_mode_then_repaired(tmp_path):
    """An image Nuwa itself left dirty (lazy refcounts, process gone before close)."""
    p = str(tmp_path / "n.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", p, "4M")
    run([tool("qemu-io"), "-f", "qcow2", "-c", "write -P 9 1M 1M", p])
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run([sys.executable, "-c", _NUWA_CRASH, p, repo])
    assert is_dirty(p)
    # the writer's flush order holds without its syncs when only the process dies: no corruption
    assert qemu_check(p)[0] in (0, 3)
    assert_check_matches_qemu(p)
    expected = read_raw(p, str(tmp_path))
    with open_disk(p, writable=True):
        pass
    assert not is_dirty(p)
    qemu_img_check(p)
    assert read_raw(p, str(tmp_path)) == expected


def test_consistent_dirty_image_only_loses_the_bit(tmp_path):
    """A dirty bit over exact refcounts: no rebuild, the file keeps its size, the bit is cleared."""
    p = str(tmp_path / "c.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", p, "4M")
    run([tool("qemu-io"), "-f", "qcow2", "-c", "write -P 5 0 300k", p])
    with open(p, "r+b") as f:
        f.seek(C.OFF_INCOMPATIBLE_FEATURES)
        f.write(struct.pack(">Q", C.QCOW2_INCOMPAT_DIRTY))
    size = os.path.getsize(p)
    assert check_qcow2(p).clean
    with open_disk(p, writable=True):
        pass
    assert not is_dirty(p) and os.path.getsize(p) == size
    qemu_img_check(p)


# --- crash safety of the repair itself ------------------------------------------------------------


class _Crash(Exception):
    pass


@pytest.mark.parametrize("name", ["basic", "snapshot"])
def test_repair_interrupted_at_every_write(dirty, tmp_path, monkeypatch, name):
    """Stop the repair after each of its writes (a crash): the image is either still dirty
    (refcounts in effect are the old ones or exact ones, never a mix below the references)
    or fully repaired; a second writable open always finishes the job."""
    src = dirty(name)
    expected = read_raw(src, str(tmp_path))
    real = qcow2_repair._pwrite
    k = 0
    while True:
        p = str(tmp_path / f"crash{k}.qcow2")
        shutil.copy(src, p)
        calls = []

        def crashing(fd, off, data, calls=calls, limit=k):
            if len(calls) == limit:
                raise _Crash
            calls.append(off)
            real(fd, off, data)

        monkeypatch.setattr(qcow2_repair, "_pwrite", crashing)
        try:
            with open_disk(p, writable=True):
                pass
            finished = True
        except _Crash:
            finished = False
        monkeypatch.setattr(qcow2_repair, "_pwrite", real)
        rep = check_qcow2(p)
        if finished:
            assert not is_dirty(p) and rep.clean
            break
        assert is_dirty(p)
        if C.OFF_REFCOUNT_TABLE_OFFSET in calls:  # switched: refcounts exact, only COPIED may lag
            assert rep.refcount_mismatches == 0 and rep.leaks == 0, rep.messages[:5]
        with open_disk(p, writable=True):
            pass
        assert not is_dirty(p)
        qemu_img_check(p)
        assert read_raw(p, str(tmp_path)) == expected
        k += 1
    assert k >= 4  # new blocks, table, header switch, COPIED fix, dirty bit


# --- the check against qemu-img check --------------------------------------------------------------


@pytest.fixture(scope="session")
def vdir(tmp_path_factory):
    return pattern_dir(tmp_path_factory, "qcow2repairvariants", 2 * MiB, seed=5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_check_clean_images_like_qemu(vdir, variant):
    p = make_variant(vdir, variant, os.path.join(vdir, "pattern.raw"))
    assert check_qcow2(p).clean
    assert_check_matches_qemu(p)


def _refcount_entry(path: str, cluster: int) -> tuple[int, int, int, int]:
    """(file offset of the refcount block, entry index, order, cluster size) for ``cluster``."""
    with open(path, "rb") as f:
        head = f.read(104)
    cb = struct.unpack_from(">I", head, 20)[0]
    rt = struct.unpack_from(">Q", head, 48)[0]
    order = struct.unpack_from(">I", head, 96)[0]
    per = C.refcount_geometry(cb, order)
    with open(path, "rb") as f:
        f.seek(rt + 8 * (cluster // per))
        block = struct.unpack(">Q", f.read(8))[0]
    return block, cluster % per, order, 1 << cb


def _poke_refcount(path: str, cluster: int, value: int) -> None:
    block_off, i, order, cs = _refcount_entry(path, cluster)
    with open(path, "r+b") as f:
        f.seek(block_off)
        block = bytearray(f.read(cs))
        set_entry(block, i, order, value)
        f.seek(block_off)
        f.write(block)


def test_check_counts_leaks_and_corruptions_like_qemu(vdir, tmp_path):
    p = str(tmp_path / "p.qcow2")
    shutil.copy(make_variant(vdir, "plain", os.path.join(vdir, "pattern.raw")), p)
    _poke_refcount(p, 1, 3)  # the refcount table's cluster: a leak
    rep = check_qcow2(p)
    assert (rep.leaks, rep.corruptions) == (1, 0)
    assert qemu_check(p)[0] == 3
    assert_check_matches_qemu(p)
    _poke_refcount(p, 1, 1)
    with open(p, "rb") as f:
        f.seek(40)
        l1 = struct.unpack(">Q", f.read(8))[0]
        f.seek(l1)
        l2 = struct.unpack(">Q", f.read(8))[0] & C.L1E_OFFSET_MASK
    _poke_refcount(p, l2 // 65536, 0)  # the first L2 table: refcount below references, COPIED wrong
    rep = check_qcow2(p)
    assert rep.corruptions == 2 and rep.refcount_mismatches == 1 and rep.copied_errors == 1
    assert qemu_check(p)[0] == 2
    assert_check_matches_qemu(p)


# --- bad input: metadata broken beyond refcounts --------------------------------------------------


def _l1_l2(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        f.seek(40)
        l1 = struct.unpack(">Q", f.read(8))[0]
        f.seek(l1)
        return l1, struct.unpack(">Q", f.read(8))[0] & C.L1E_OFFSET_MASK


def _expect_refused(path: str, *needles: str) -> None:
    before = file_sha256(path)
    with pytest.raises(CorruptImageError) as info:
        with open_disk(path, writable=True) as dev:
            dev.pwrite(0, b"x")
    msg = str(info.value)
    assert "\n" not in msg and msg.count(":") >= 1
    for needle in needles:
        assert needle in msg, msg
    assert info.value.exit_code == EXIT_CORRUPT
    assert file_sha256(path) == before
    assert check_qcow2(path).problems  # the read-only check names it too


def test_dirty_l2_entry_past_eof_refused(dirty):
    p = dirty("basic")
    _l1, l2 = _l1_l2(p)
    with open(p, "r+b") as f:
        f.seek(l2 + 8 * 3)
        f.write(struct.pack(">Q", C.QCOW_OFLAG_COPIED | (1 << 40)))
    _expect_refused(p, f"qcow2 L2 table @0x{l2:x} entry 3", "past the end of the file")


def test_dirty_l1_entry_past_eof_refused(dirty):
    p = dirty("big")
    l1, _l2 = _l1_l2(p)
    with open(p, "r+b") as f:
        f.seek(l1 + 8 * 3)
        f.write(struct.pack(">Q", C.QCOW_OFLAG_COPIED | (1 << 40)))
    _expect_refused(p, f"qcow2 L1 table @0x{l1:x} entry 3", "past the end of the file")


def test_dirty_shared_l2_without_snapshot_refused(dirty):
    p = dirty("big")
    l1, l2 = _l1_l2(p)
    with open(p, "r+b") as f:
        f.seek(l1 + 8 * 3)
        f.write(struct.pack(">Q", C.QCOW_OFLAG_COPIED | l2))
    _expect_refused(p, f"qcow2 L1 table @0x{l1:x} entry 3", "referenced twice in one L1 tree")


def test_dirty_data_cluster_inside_metadata_refused(dirty):
    p = dirty("basic")
    l1, l2 = _l1_l2(p)
    with open(p, "r+b") as f:
        f.seek(l2 + 8 * 40)
        f.write(struct.pack(">Q", C.QCOW_OFLAG_COPIED | l1))  # a data cluster on top of the L1 table
    _expect_refused(p, f"qcow2 L2 table @0x{l2:x} entry 40", "an L1 table")


def test_l1_entry_of_flags_alone_refused_as_qemu_img_check_does(tmp_path):
    """An L1 entry holding COPIED and no offset (found by the fuzzer): qemu's reader sees that
    range unallocated, but qemu-img check counts cluster 0, the header, as its L2 table and
    reads it as one: corrupt. Nuwa must count it so too and refuse to write, image untouched."""
    p = str(tmp_path / "p.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", p, "2G")  # 4 L1 entries of 512 MiB each
    qemu_io(p, "write -P 0x5a 0 128k")  # one L2 table in use, the other L1 entries free
    with open(p, "rb") as f:
        f.seek(36)
        l1_size, l1 = struct.unpack(">IQ", f.read(12))
        f.seek(l1)
        entries = struct.unpack(f">{l1_size}Q", f.read(8 * l1_size))
    free = entries.index(0)  # an L1 entry naming no L2 table yet
    with open(p, "r+b") as f:
        f.seek(l1 + 8 * free)
        f.write(struct.pack(">Q", C.QCOW_OFLAG_COPIED))
    assert qemu_check(p)[0] == 2
    # (the counts differ from qemu's: it reads the header's bytes on as L2 entries)
    _expect_refused(p, f"qcow2 L1 table @0x{l1:x} entry {free}", "used as an L2 table and as the header")


# --- random crashes: qemu-io killed at a random point vs the rebuild ---------------------------------

# (qemu-io command, first 4 KiB cluster, clusters); plain writes weigh most: they make it dirty
_OPS = st.tuples(st.sampled_from(["write", "write", "write", "write -c", "write -z", "discard"]),
                 st.integers(0, 511), st.integers(1, 40))
#: each example runs qemu-io and qemu-img several times: few by default, more when asked
_CRASH_EXAMPLES = 60 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 6


@settings(max_examples=_CRASH_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_OPS, min_size=1, max_size=6), snap_after=st.integers(0, 6), seed=st.integers(0, 9))
def test_random_crash_then_repair(tmp_path_factory, ops, snap_after, seed):
    tmp = str(tmp_path_factory.mktemp("crash"))
    p = os.path.join(tmp, "r.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", p, "2M")
    cmds = []
    for i, (op, cl, n) in enumerate(ops):
        n = min(n, 512 - cl)
        if op == "write -c":  # one cluster; qemu compresses only into unallocated clusters
            n = 1
            cmds.append(f"discard {cl * 4096} 4096")
        pat = f"-P {i + 1} " if op.startswith("write") and op != "write -z" else ""
        cmds.append(f"{op} {pat}{cl * 4096} {n * 4096}")
    if snap_after < len(cmds):  # some operations, a clean close, a snapshot, then the rest killed
        run([tool("qemu-io"), "-f", "qcow2", *[a for c in cmds[:snap_after] for a in ("-c", c)], p])
        qemu_img("snapshot", "-c", "s", p)
        cmds = cmds[snap_after:]
    kill_qemu_io(p, *cmds)
    event("dirty" if is_dirty(p) else "clean")
    if not is_dirty(p):  # no lazy write since the last clean point: no corruption (qemu may leak)
        rc, _q = qemu_check(p)
        assert rc in (0, 3)
        assert_check_matches_qemu(p)
        return
    rc, _q = qemu_check(p)
    event(f"qemu-img check exit {rc}")
    if rc == 0:  # dirty but consistent (e.g. only zero writes): the repair just clears the bit
        with open_disk(p, writable=True):
            pass
        assert not is_dirty(p)
        qemu_img_check(p)
        return
    # qemu itself may be unable to read the guest its killed compressed write left ("error
    # while reading at byte 0: Input/output error"): then there is no reference content to
    # compare a repair with, and the example says nothing
    probe = run([tool("qemu-img"), "convert", "-O", "raw", p, os.path.join(tmp, "probe.raw")], check=False)
    if probe.returncode != 0:
        event("qemu cannot read the dirty image it left")
        assume(False)
    os.unlink(os.path.join(tmp, "probe.raw"))
    repair_write_judge(p, tmp, some_writes(seed, 2 * MiB)[:3])


# --- pure parts: the refcount block codec and the layout ----------------------------------------


@pytest.mark.parametrize("order", range(7))
def test_refblock_codec_round_trip(order):
    rng = random.Random(order)
    entries = C.refcount_geometry(9, order)
    top = (1 << (1 << order)) - 1
    vals = [rng.choice([0, 1, 2, top]) & top for _ in range(entries)]
    arr = decode_refblock(bytes(512), order)
    for i, v in enumerate(vals):
        arr[i] = v
    block = encode_refblock(arr, order, entries)
    assert len(block) == 512
    assert [get_entry(block, i, order) for i in range(entries)] == vals  # the writer's accessor agrees
    assert decode_refblock(block, order).tolist() == vals
    assert encode_refblock(arr[:7], order, entries) == encode_refblock(arr[:7] + decode_refblock(bytes(512), order)[7:],
                                                                       order, entries)


@given(used=st.sets(st.integers(0, 300), min_size=1, max_size=20), start=st.integers(1, 5000),
       cb=st.sampled_from([9, 12, 16]), order=st.integers(0, 6))
@settings(max_examples=200, deadline=None)
def test_layout_describes_itself(used, start, cb, order):
    start = max(start, (max(used) + 1) << (cb + 3 - order))  # new structures lie past the counted clusters
    tclusters, groups = plan_refcount_layout(used, start, cb, order)
    shift = cb + 3 - order
    end = start + tclusters + len(groups)
    assert used <= set(groups)
    assert all(c >> shift in groups for c in range(start, end))  # every new cluster is counted
    assert max(groups) < tclusters << (cb - 3)  # the table has an entry for every block
