"""The host-directory backend's dentry cache: a path whose parent part was resolved before
resolves again from the cache, and whatever removes or replaces a name on such a path (unlink
or rename of a symlink, rename or rmdir of a directory) makes the next resolution walk again,
as a fresh backend over the same tree would."""

from __future__ import annotations

import errno

import pytest

from nuwa.fs.hostdir import HostDirFS


@pytest.fixture
def fs(tmp_path):
    f = HostDirFS(str(tmp_path), writable=True)
    for d in ("/a", "/b", "/d", "/d/e"):
        f.mkdir(d)
    f.write_bytes("/a/x", b"in a")
    f.write_bytes("/d/e/f", b"deep")
    yield f
    f.close()


def _missing(fs, path):
    with pytest.raises(OSError) as e:
        fs.stat(path)
    return e.value.errno == errno.ENOENT


def test_a_symlink_unlinked_and_made_again_elsewhere(fs):
    fs.symlink("a", "/l")
    assert fs.read_bytes("/l/x") == b"in a"  # cached: "l" leads to /a
    fs.unlink("/l")
    fs.symlink("b", "/l")
    assert _missing(fs, "/l/x")


def test_a_symlink_renamed_over_another(fs):
    fs.symlink("a", "/m")
    fs.symlink("b", "/n")
    assert fs.read_bytes("/m/x") == b"in a"
    fs.rename("/n", "/m")
    assert _missing(fs, "/m/x")


def test_a_directory_renamed_or_removed(fs):
    assert fs.read_bytes("/d/e/f") == b"deep"
    fs.rename("/d", "/g")
    fs.mkdir("/d")
    assert _missing(fs, "/d/e/f") and fs.read_bytes("/g/e/f") == b"deep"
    fs.unlink("/g/e/f")
    fs.rmdir("/g/e")
    assert _missing(fs, "/g/e/f")
