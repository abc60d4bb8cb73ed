"""SubtreeFS: a directory seen as a root, links resolved inside it as after chroot(2).

Written to the kernel's path-walk rules after chroot (fs/namei.c): an absolute target restarts
at the root, ``..`` at the root stays there, 40 links give ELOOP, a file in the middle of a
path gives ENOTDIR.
"""

from __future__ import annotations

import errno

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.fs.subtree import SubtreeFS


@pytest.fixture
def fs():
    m = MemoryFS()
    m.makedirs("/outer/usr/lib")
    m.makedirs("/usr/lib")
    m.write_bytes("/usr/lib/libc.so.6", b"host")
    m.write_bytes("/outer/usr/lib/libc.so.6", b"tree")
    m.symlink("usr/lib", "/outer/lib")
    m.symlink("/usr/lib/libc.so.6", "/outer/abs")       # absolute: must stay in the tree
    m.symlink("../../../../usr/lib", "/outer/usr/up")   # .. beyond the root stays at the root
    m.symlink("loop2", "/outer/loop1")
    m.symlink("loop1", "/outer/loop2")
    return m


def test_paths_and_links_resolve_inside_the_subtree(fs):
    t = SubtreeFS(fs, "/outer")
    assert t.read_bytes("/lib/libc.so.6") == b"tree"
    assert t.read_bytes("/abs") == b"tree"
    assert t.read_bytes("/usr/up/libc.so.6") == b"tree"
    assert t.read_bytes("/../../usr/lib/libc.so.6") == b"tree"
    assert t.lstat("/abs").is_lnk and t.readlink("/abs") == "/usr/lib/libc.so.6"
    assert sorted(t.readdir("/")) == ["abs", "lib", "loop1", "loop2", "usr"]


def test_errors_carry_the_kernels_errno(fs):
    t = SubtreeFS(fs, "/outer")
    with pytest.raises(OSError) as e:
        t.stat("/loop1")
    assert e.value.errno == errno.ELOOP
    with pytest.raises(OSError) as e:
        t.stat("/abs/x")
    assert e.value.errno == errno.ENOTDIR
    with pytest.raises(OSError) as e:
        t.stat("/missing/x")
    assert e.value.errno == errno.ENOENT


def test_writes_land_in_the_subtree_and_links_are_not_followed_when_asked(fs):
    t = SubtreeFS(fs, "/outer")
    t.write_bytes("/lib/new.so", b"n")
    assert fs.read_bytes("/outer/usr/lib/new.so") == b"n"
    t.symlink("new.so", "/lib/soname.so")
    assert fs.readlink("/outer/usr/lib/soname.so") == "new.so"
    t.unlink("/abs")  # the link itself, not the library it names
    assert fs.read_bytes("/outer/usr/lib/libc.so.6") == b"tree" and not fs.lexists("/outer/abs")
    t.rename("/lib/new.so", "/lib/renamed.so")
    assert fs.exists("/outer/usr/lib/renamed.so")
    assert fs.read_bytes("/usr/lib/libc.so.6") == b"host"
