"""Bad input and confinement: NUL, escapes, long names, loops, read-only handles.

Nothing outside the tree may be read or written, and a refused call changes nothing (the host
directory is hashed before and after).
"""

from __future__ import annotations

import errno
import os
import stat as S

import pytest

from helpers.hashing import tree_hash
from nuwa.errors import InvalidInputError
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS, populate

TREE = {"etc": {"passwd": "image-passwd\n", "hostname": "img\n"}, "usr": {"bin": {"sh": "#!"}}}


@pytest.fixture
def hosttree(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    fs = HostDirFS(str(root), writable=True)
    populate(fs, TREE)
    fs.symlink("/etc/passwd", "/abs")
    fs.symlink("../../../../../../../../etc/shadow", "/rel-escape")
    fs.symlink("/../../..", "/up")
    fs.symlink("loop2", "/loop1")
    fs.symlink("loop1", "/loop2")
    fs.close()
    outside = tmp_path / "outside"
    outside.write_text("host secret")
    return root, outside


def test_absolute_and_dotdot_symlinks_stay_inside(hosttree):
    root, _ = hosttree
    fs = HostDirFS(str(root))
    assert fs.read_bytes("/abs") == b"image-passwd\n"  # not the host's /etc/passwd
    with pytest.raises(FileNotFoundError):
        fs.read_bytes("/rel-escape")  # the tree has no /etc/shadow; the host's is never read
    assert sorted(fs.readdir("/up")) == sorted(os.listdir(root))
    assert sorted(n for n, _ in fs.readdir_stat("/up")) == sorted(os.listdir(root))
    assert dict(fs.readdir_stat("/up/etc"))["passwd"].st_size == len("image-passwd\n")
    assert fs.read_bytes("/../../../etc/passwd") == b"image-passwd\n"
    with pytest.raises(FileNotFoundError):
        fs.lstat("/../outside")


def test_writes_through_escaping_links_land_inside(hosttree):
    root, outside = hosttree
    before = outside.read_bytes()
    fs = HostDirFS(str(root), writable=True)
    fs.symlink("/../outside", "/esc")
    fs.write_bytes("/esc", b"written")  # dangling inside the tree: creates /outside *in the tree*
    assert (root / "outside").read_bytes() == b"written"
    assert outside.read_bytes() == before


@pytest.mark.parametrize("make", ["memory", "hostdir"])
def test_bad_paths_are_refused_and_change_nothing(hosttree, make):
    root, _ = hosttree
    if make == "hostdir":
        fs = HostDirFS(str(root), writable=True)
    else:
        fs = MemoryFS()
        populate(fs, TREE)
        fs.symlink("loop2", "/loop1")
        fs.symlink("loop1", "/loop2")
    before = tree_hash(str(root))
    with pytest.raises(InvalidInputError):
        fs.write_bytes("/etc/pass\0wd", b"x")
    with pytest.raises(ValueError):
        fs.lstat("/\0")
    with pytest.raises(OSError) as e:
        fs.write_bytes("/etc/" + "x" * 256, b"x")
    assert e.value.errno == errno.ENAMETOOLONG
    with pytest.raises(OSError) as e:
        fs.lstat("/" + "a/" * 2100)
    assert e.value.errno == errno.ENAMETOOLONG
    with pytest.raises(OSError) as e:
        fs.write_bytes("/loop1", b"x")
    assert e.value.errno == errno.ELOOP
    with pytest.raises(OSError) as e:
        fs.symlink("x" * 4096, "/toolong")
    assert e.value.errno == errno.ENAMETOOLONG
    assert tree_hash(str(root)) == before


def _mutators():
    return [
        ("write_bytes", ("/etc/passwd", b"x")), ("write_bytes", ("/new", b"x")), ("truncate", ("/etc/passwd", 0)),
        ("mkdir", ("/d",)), ("rmdir", ("/usr/bin",)), ("unlink", ("/etc/passwd",)),
        ("rename", ("/etc/passwd", "/p")), ("symlink", ("x", "/s")), ("link", ("/etc/passwd", "/h")),
        ("mknod", ("/f", S.S_IFIFO | 0o644)), ("chmod", ("/etc/passwd", 0o600)), ("chown", ("/etc", 1, 1)),
        ("utime", ("/etc", 1, 1)), ("setxattr", ("/etc", "user.x", b"1")), ("removexattr", ("/etc", "user.x")),
    ]


@pytest.mark.parametrize("make", ["memory", "hostdir"])
def test_read_only_handles_raise_erofs(hosttree, make):
    root, _ = hosttree
    if make == "hostdir":
        fs = HostDirFS(str(root), writable=False)
    else:
        rw = MemoryFS()
        populate(rw, TREE)
        fs = rw
        fs.writable = False
    before = tree_hash(str(root))
    for name, args in _mutators():
        with pytest.raises(OSError) as e:
            getattr(fs, name)(*args)
        assert e.value.errno == errno.EROFS, (name, e.value)
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_CREAT):
        with pytest.raises(OSError) as e:
            fs.open_handle("/etc/hostname", flags)
        assert e.value.errno == errno.EROFS
    assert fs.read_bytes("/etc/hostname") == b"img\n"
    assert fs.statvfs().f_flag & os.ST_RDONLY
    assert tree_hash(str(root)) == before


def test_devices_and_fifos_are_never_opened(tmp_path):
    fs = HostDirFS(str(tmp_path), writable=True)
    fs.mknod("/null", S.S_IFCHR | 0o666, os.makedev(1, 3))
    fs.mknod("/fifo", S.S_IFIFO | 0o666)
    for p in ("/null", "/fifo"):
        with pytest.raises(OSError) as e:
            fs.read_bytes(p)  # a FIFO would block; a device node would reach the host's device
        assert e.value.errno == errno.ENXIO
    assert fs.lstat("/null").st_rdev == os.makedev(1, 3)


def test_memory_enospc_and_sparse_blocks():
    fs = MemoryFS(capacity=16 * 4096)
    fs.write_bytes("/a", b"x" * (10 * 4096))
    with pytest.raises(OSError) as e:
        fs.write_bytes("/b", b"y" * (7 * 4096))
    assert e.value.errno == errno.ENOSPC
    fs.truncate("/a", 1 << 40)  # a hole costs nothing
    assert fs.lstat("/a").st_blocks == 10 * 8
    assert fs.statvfs().f_bfree == 16 - 10


def test_a_directory_swapped_for_an_escaping_symlink_is_not_listed(tmp_path):
    """``readdir_stat`` opens each directory component with O_NOFOLLOW: a directory replaced
    by a symlink to a host directory after it was first listed is followed inside the tree
    (an absolute target is the tree's) and never lists the host's directory."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "inside").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host")
    fs = HostDirFS(str(root))
    assert [n for n, _ in fs.readdir_stat("/d")] == ["inside"]
    (root / "d" / "inside").unlink()
    (root / "d").rmdir()
    os.symlink(str(outside), root / "d")  # an absolute host path: the tree has no such directory
    with pytest.raises(FileNotFoundError):
        fs.readdir_stat("/d")
    with pytest.raises(FileNotFoundError):
        fs.readdir_stat("/d/")
