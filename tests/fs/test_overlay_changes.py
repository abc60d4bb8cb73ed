"""``Overlay.changes()`` compares only the paths the overlay recorded as touched: it must give
exactly what a full ``diff_trees(backend, overlay)`` gives.

Random call sequences (hypothesis) over a small tree with hard links across directories, some
of which the sequence never loads, plus savepoints, rollbacks and writes through handles kept
open across renames and unlinks; ``changes()`` runs *first* (a full diff loads every
directory, which would hide a path the record missed), then ``diff_trees`` judges. On the
memory backend and on an ext4 image made by ``mkfs.ext4``.
"""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import BACKENDS, fresh_ext4_image
from fs_reference import FsTarget, run_steps
from helpers.smalltrees import counter_clock, node_tree
from nuwa.fs.diff import diff_trees
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay

NAMES = ["a", "b", "c", "d"]
PATHS = ["/" + "/".join(p) for n in (1, 2, 3) for p in itertools.product(NAMES, repeat=n)]


def base_tree(fs) -> None:
    """tests/fs/test_overlay.py's tree, and ``/c`` has three links, one in ``/d/d`` (a directory
    most sequences never load), and ``/d/d/a`` has two, both there; ``/d/a`` is empty (a
    directory can be renamed onto it)."""
    node_tree(fs)
    fs.mkdir("/d", 0o755)
    fs.mkdir("/d/d", 0o700)
    fs.link("/c", "/d/d/c")
    fs.write_bytes("/d/d/a", b"two links")
    fs.link("/d/d/a", "/d/d/b")
    fs.mkdir("/d/d/d", 0o755)
    fs.write_bytes("/d/d/d/d", b"deep")
    fs.mkdir("/d/a", 0o755)


data = st.binary(max_size=300)
path = st.sampled_from(PATHS)
fs_step = st.one_of(
    st.tuples(st.just("write"), path, data),
    st.tuples(st.just("pwrite"), path, st.integers(0, 9000), data),
    st.tuples(st.just("mkdir"), path, st.sampled_from([0o755, 0o700])),
    st.tuples(st.just("rmdir"), path),
    st.tuples(st.just("unlink"), path),
    st.tuples(st.just("rename"), path, path, st.booleans()),
    st.tuples(st.just("symlink"), st.sampled_from(["a", "../b", "/a/b", "nowhere"]), path),
    st.tuples(st.just("link"), path, path),
    st.tuples(st.just("chmod"), path, st.sampled_from([0o644, 0o4755, 0o600, 0o755])),
    st.tuples(st.just("lchown"), path, st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("truncate"), path, st.integers(0, 6000)),
    st.tuples(st.just("setxattr"), path, st.sampled_from(["user.k", "trusted.t"]), data, st.integers(0, 2), st.just(False)),
    st.tuples(st.just("removexattr"), path, st.sampled_from(["user.k", "trusted.t"]), st.just(False)),
    st.tuples(st.just("utime"), path, st.integers(0, 2**40), st.integers(0, 2**40), st.just(False)),
    st.tuples(st.just("read"), path),
)
ov_step = st.one_of(
    st.tuples(st.just("savepoint")),
    st.tuples(st.just("rollback")),
    st.tuples(st.just("release")),
    st.tuples(st.just("open"), path),  # a handle kept open for the steps below
    st.tuples(st.just("hwrite"), st.integers(0, 3), st.integers(0, 6000), data),
    st.tuples(st.just("htruncate"), st.integers(0, 3), st.integers(0, 6000)),
)
steps = st.lists(st.one_of(fs_step, fs_step, fs_step, ov_step), max_size=30)


def run(ov: Overlay, seq) -> None:
    """Apply ``seq`` to ``ov``; failing calls are part of the sequence (their errno is ignored)."""
    sps, handles = [], []
    for step in seq:
        op = step[0]
        try:
            if op == "savepoint":
                sps.append(ov.savepoint())
            elif op in ("rollback", "release") and sps:
                sp = sps.pop() if op == "release" else sps[-1]
                (ov.release if op == "release" else ov.rollback_to)(sp)
            elif op == "open":
                handles.append(ov.open_handle(step[1], os.O_RDWR))
            elif op == "hwrite" and handles:
                handles[step[1] % len(handles)].pwrite(step[2], step[3])
            elif op == "htruncate" and handles:
                handles[step[1] % len(handles)].truncate(step[2])
            elif op not in ("rollback", "release", "hwrite", "htruncate"):
                run_steps(FsTarget(ov), [step])
        except OSError:
            pass


def check(ov: Overlay) -> None:
    got = [e.to_json() for e in ov.changes()]  # first: nothing loaded by a full walk yet
    want = [e.to_json() for e in diff_trees(ov.backend, ov, times=True)]
    assert got == want
    assert [e.to_json() for e in ov.changes(times=False)] == [e.to_json() for e in diff_trees(ov.backend, ov)]
    # only some paths: each is listed as the full diff lists it, but for a change that is only
    # a hard link made or lost under another name, which may go unseen (the method's note)
    for only in (set(PATHS[::7]), set(PATHS[3::5]), {"/d/d/c", "/a"}):
        full = {(e.path, e.status) for e in ov.changes() if e.path in only and e.changes != ["hardlinks"]}
        some = {(e.path, e.status) for e in ov.changes(only=only) if e.path in only and e.changes != ["hardlinks"]}
        assert some == full, only


@settings(max_examples=int(os.environ.get("NUWA_CHANGES_EXAMPLES", "300")))
@given(steps)
def test_changes_equal_full_diff_memory(seq):
    base = MemoryFS(clock=counter_clock())
    base_tree(base)
    ov = Overlay(base, clock=counter_clock(1_800_000_000_000_000_000))
    run(ov, seq)
    check(ov)


@pytest.mark.skipif("ext4" not in BACKENDS, reason="the ext4 engine is not in this tree")
@settings(max_examples=int(os.environ.get("NUWA_EXT4_EXAMPLES", "25")), deadline=None)
@given(steps)
def test_changes_equal_full_diff_ext4(tmp_path_factory, seq):
    from nuwa.formats.blockdev import RawFile
    from nuwa.fs.ext4 import open_ext4

    dev = RawFile(fresh_ext4_image(tmp_path_factory, "16M"), writable=True)
    fs = open_ext4(dev, writable=True)
    try:
        base_tree(fs)
        ov = Overlay(fs, clock=counter_clock(1_800_000_000_000_000_000))
        run(ov, seq)
        check(ov)
    finally:
        fs.close()
        dev.close()


def test_a_link_in_a_directory_never_loaded_is_in_the_changes():
    """chmod of ``/c`` changes its other names too, ``/d/d/c`` included, which nothing loaded."""
    base = MemoryFS(clock=counter_clock())
    base_tree(base)
    ov = Overlay(base)
    ov.chmod("/c", 0o600)
    assert ov.root_node.entries["d"].entries is None  # /d was never listed
    assert [(e.path, e.changes) for e in ov.changes(times=False)] == [
        ("/a/c", ["mode"]), ("/c", ["mode"]), ("/d/d/c", ["mode"])]


def test_a_renamed_directory_is_removed_and_added_whole():
    base = MemoryFS(clock=counter_clock())
    base_tree(base)
    ov = Overlay(base)
    ov.rename("/d", "/e")
    got = [(e.status, e.path) for e in ov.changes(times=False)]
    assert ("removed", "/d/d/d/d") in got and ("added", "/e/d/d/d") in got
    # the links of /c outside the moved tree now name /e/d/c
    assert next(e for e in ov.changes(times=False) if e.path == "/c").changes == ["hardlinks"]
    ov.rename("/e", "/d")  # and back: changed-then-restored is no change
    assert [(e.path, e.changes) for e in ov.changes(times=False)] == []


def test_a_directory_renamed_onto_an_empty_one_is_compared_whole():
    base = MemoryFS(clock=counter_clock())
    base_tree(base)
    ov = Overlay(base)
    ov.rename("/a/b", "/d/a")
    got = [(e.status, e.path) for e in ov.changes(times=False)]
    assert ("added", "/d/a/a") in got and ("added", "/d/a/p") in got and ("removed", "/a/b") in got
    assert got == [(e.status, e.path) for e in diff_trees(base, ov)]


def test_changes_of_named_paths_only():
    """``changes(only=...)``: those paths' entries, the others never compared; a removed hard
    link outside them (``/c``, whose inode ``/a/c`` and ``/d/d/c`` share) is no obstacle."""
    base = MemoryFS(clock=counter_clock())
    base_tree(base)
    ov = Overlay(base)
    ov.unlink("/c")
    ov.write_bytes("/a/a", b"new")
    assert [(e.path, e.status) for e in ov.changes(only={"/c", "/a/b/q"})] == [("/c", "removed")]
    assert [(e.path, e.status, e.changes) for e in ov.changes(only={"/a/a"}, times=False)] == [
        ("/a/a", "changed", ["size", "content"])]
    # /a/c lost a link (/c), seen by the full changes as a change of its hard links only; the
    # walk to /a/c alone sees no other name
    assert next(e for e in ov.changes() if e.path == "/a/c").changes == ["hardlinks"]
    assert ov.changes(only={"/a/c", "/nowhere"}) == []
