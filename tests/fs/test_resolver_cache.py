"""The dentry cache (``Resolver(cache=True)``): a cached resolution never outlives the names it
went through.

Each scenario first resolves paths under a directory (so the cache holds their parent parts),
then removes, moves or repoints something on the way, and checks every backend answers what
the host kernel answers for the same calls (the ``hostdir`` backend resolves through real
``openat`` calls and keeps no cache). The overlay also rolls back across such changes.
"""

from __future__ import annotations

import errno

import pytest

from backends import BACKENDS


def _answer(fs, path):
    """What reading ``path`` gives: its bytes, or the errno name."""
    try:
        return fs.read_bytes(path)
    except OSError as e:
        return errno.errorcode[e.errno]


def _tree(fs):
    fs.mkdir("/d", 0o755)
    fs.mkdir("/d/e", 0o755)
    fs.write_bytes("/d/e/f", b"one")
    fs.mkdir("/x", 0o755)
    fs.mkdir("/x/e", 0o755)
    fs.write_bytes("/x/e/f", b"two")
    fs.symlink("/d", "/l")


def _run(fs) -> list:
    out = []
    _tree(fs)
    probe = ("/d/e/f", "/l/e/f", "/g/e/f", "/x/e/f", "/l/e/f/", "/l/e/../e/f")
    out.append([_answer(fs, p) for p in probe])  # fills the cache
    fs.rename("/d", "/g")  # a directory moves
    out.append([_answer(fs, p) for p in probe])
    fs.unlink("/l")  # a symlink on the way is repointed
    fs.symlink("/x", "/l")
    out.append([_answer(fs, p) for p in probe])
    fs.rename("/x", "/y")  # replaced by another directory of the same name
    fs.mkdir("/x", 0o755)
    fs.mkdir("/x/e", 0o755)
    fs.write_bytes("/x/e/f", b"three")
    out.append([_answer(fs, p) for p in probe])
    fs.unlink("/x/e/f")  # emptied and removed: what was cached under it is gone
    fs.rmdir("/x/e")
    fs.rmdir("/x")
    fs.write_bytes("/x", b"a file")  # a non-directory where a directory was
    out.append([_answer(fs, p) for p in probe])
    fs.symlink("/g", "/m")
    fs.rename("/m", "/l")  # a symlink on the way replaced by rename(2)
    out.append([_answer(fs, p) for p in probe])
    fs.write_bytes("/n", b"file")
    fs.rename("/n", "/l")  # and then by a regular file
    out.append([_answer(fs, p) for p in probe])
    fs.rename("/y", "/g/e/z")  # into a directory reached through the cache
    out.append([_answer(fs, p) for p in ("/g/e/z/e/f", "/y/e/f")])
    return out


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_cached_resolutions_follow_renames_and_removals(backend, tmp_path_factory):
    fs, cleanup = BACKENDS[backend](tmp_path_factory)
    ref, ref_cleanup = BACKENDS["hostdir"](tmp_path_factory)
    try:
        assert _run(fs) == _run(ref)
    finally:
        cleanup()
        ref_cleanup()


def test_overlay_rollback_drops_cached_resolutions():
    from nuwa.fs.memory import MemoryFS
    from nuwa.fs.overlay import Overlay

    base = MemoryFS()
    _tree(base)
    ov = Overlay(base)
    sp = ov.savepoint()
    ov.rename("/d", "/g")
    assert ov.read_bytes("/g/e/f") == b"one"  # cached as g/e
    ov.mkdir("/d", 0o755)
    ov.symlink("/x/e", "/d/e")
    assert ov.read_bytes("/d/e/f") == b"two"  # cached as d/e -> /x/e
    ov.rollback_to(sp)
    assert ov.read_bytes("/d/e/f") == b"one"
    assert _answer(ov, "/g/e/f") == "ENOENT"
    assert [e.path for e in ov.changes()] == []


@pytest.mark.parametrize("backend", ["ext4", "hostdir"])
def test_readdir_stat_is_readdir_and_lstat(tmp_path_factory, backend):
    """The one-call directory load (the overlay's, depmod's search) gives what readdir and
    lstat of each name give, in the same order."""
    if backend not in BACKENDS:
        pytest.skip(f"the {backend} backend is not importable")
    fs, cleanup = BACKENDS[backend](tmp_path_factory)
    try:
        _tree(fs)
        fs.link("/x/e/f", "/x/e/hard")
        fs.mknod("/x/p", 0o10644)
        fs.setxattr("/x/e/f", "user.k", b"v")
        for d in ("/", "/x", "/x/e", "/l/e", "/d/"):
            want = [(n, fs.lstat(d.rstrip("/") + "/" + n)) for n in fs.readdir(d)]
            assert fs.readdir_stat(d) == want
        with pytest.raises(NotADirectoryError):
            fs.readdir_stat("/x/e/f")
        with pytest.raises(FileNotFoundError):
            fs.readdir_stat("/nowhere")
    finally:
        cleanup()
