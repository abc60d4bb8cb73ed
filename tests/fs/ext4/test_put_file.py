"""``Ext4FS.put_file`` (a whole new file in one call, replacing like rename(2)), judged by the
kernel and the real tools.

The kernel's side of each call is what dpkg does to install a file: create a temporary name
with ``O_CREAT|O_EXCL``, write, ``fchown``, ``fchmod``, ``utime``, then ``rename`` it over the
path (or ``link`` it there when nothing may be replaced). Every answer (result or errno) must
be the kernel's; afterwards the trees must match (content, mode, owner, size, links, xattrs),
``e2fsck -fn`` must be clean and debugfs must read the same bytes.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

import trees
from fixtures import WRITABLE, fixture, host_copy, private_copy
from judges import e2fsck_clean, tool
from nuwa.formats.blockdev import RawFile
from nuwa.fs.content import CHUNK
from nuwa.fs.ext4 import open_ext4

KEYS = ("type", "perm", "uid", "gid", "size", "sha", "target", "xattrs", "nlink")


class Bytes:
    """A reader over bytes (what the overlay's contents are to put_file)."""

    def __init__(self, data: bytes):
        self.data = data

    def pread(self, offset: int, n: int) -> bytes:
        return self.data[offset : offset + n]


def _host_put(root: str, p: str, data: bytes, size: int, mode: int, uid: int, gid: int, at: int, mt: int,
              replace: bool) -> None:
    tmp = root + os.path.dirname(p).rstrip("/") + "/.put-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.ftruncate(fd, size)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.close(fd)
        os.utime(tmp, ns=(at, mt))
        if replace:
            os.rename(tmp, root + p)
        else:
            os.link(tmp, root + p)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _answer(fn):
    try:
        return "ok", fn()
    except OSError as e:
        return "errno", e.errno


class Both:
    """The same calls on a host directory (the kernel) and on Nuwa's filesystem."""

    def __init__(self, host: str, fs):
        self.host, self.fs = host, fs

    def put(self, p, data, size=None, mode=0o644, uid=0, gid=0, at=1_500_000_000_123_456_789,
            mt=1_400_000_000_987_654_321, replace=True):
        size = len(data) if size is None else size
        h = _answer(lambda: _host_put(self.host, p, data, size, mode, uid, gid, at, mt, replace))
        n = _answer(lambda: self.fs.put_file(p, Bytes(data), size, mode, uid, gid, at, mt, replace=replace))
        assert h == n, f"put {p}: kernel {h} nuwa {n}"
        return n

    def do(self, name, *args):
        """A plain call on both (setup and probes): ``lstat`` answers with type, size, links and
        owner, ``times`` with the atime and mtime (only asked of files put with given times)."""
        def host():
            hp = [self.host + a if isinstance(a, str) and a.startswith("/") else a for a in args]
            if name in ("lstat", "times"):
                st = os.lstat(hp[0])
                if name == "times":
                    if self.fs.sb.inode_size < 144:  # 128-byte inodes keep whole seconds
                        return st.st_atime_ns // 10**9 * 10**9, st.st_mtime_ns // 10**9 * 10**9
                    return st.st_atime_ns, st.st_mtime_ns
                return st.st_mode, st.st_size, st.st_nlink, st.st_uid, st.st_gid
            if name == "write":
                with open(hp[0], "wb") as f:
                    f.write(hp[1])
                return None
            if name == "mkdir":
                os.mkdir(hp[0])
                return os.chmod(hp[0], 0o755)  # not the host's umask
            return getattr(os, name)(*hp)

        def nuwa():
            if name in ("lstat", "times"):
                st = self.fs.lstat(args[0])
                if name == "times":
                    return st.st_atime_ns, st.st_mtime_ns
                return st.st_mode, st.st_size, st.st_nlink, st.st_uid, st.st_gid
            if name == "write":
                self.fs.write_bytes(args[0], args[1], 0o644)
                return None
            if name == "mkdir":
                return self.fs.mkdir(args[0], 0o755)
            return getattr(self.fs, name)(*args)

        h, n = _answer(host), _answer(nuwa)
        assert h == n, f"{name}{args}: kernel {h} nuwa {n}"


@pytest.mark.parametrize("variant", WRITABLE)
def test_put_file_matches_dpkgs_way_on_the_kernel(variant, tmp_path):
    fx = fixture(variant)
    img = private_copy(fx.image, str(tmp_path), f"{variant}.img")
    host = host_copy(fx, str(tmp_path))
    fs = open_ext4(RawFile(img, writable=True), writable=True)
    b = Both(host, fs)
    b.do("mkdir", "/m")
    # a new file in three pieces, the middle one zeros (a hole), set-id bits, owner and times
    big = b"head" * (CHUNK // 4) + bytes(CHUNK) + b"tail"
    b.put("/m/new", big, mode=0o4755, uid=3, gid=4)
    b.do("lstat", "/m/new")
    b.do("times", "/m/new")
    b.put("/m/new", b"again", replace=False)  # EEXIST: nothing may be replaced
    # an empty file, and one that is only a hole of 10000 bytes
    b.put("/m/empty", b"")
    b.put("/m/zeros", b"", size=10000, mode=0o600)
    b.do("lstat", "/m/zeros")
    # replacing one name of a hard-linked file: the other name keeps the old inode and bytes
    b.do("write", "/m/a", b"old bytes")
    b.do("link", "/m/a", "/m/b")
    b.put("/m/a", b"new bytes, longer than before", mode=0o640, uid=1, gid=2)
    b.do("lstat", "/m/a")
    b.do("times", "/m/a")
    b.do("lstat", "/m/b")
    # a file replaced twice in a row; the second time its last link goes
    b.put("/m/b", b"b" * 5000)
    b.do("lstat", "/m/b")
    # a symlink to a directory, looked through (cached), then replaced by a file
    b.do("mkdir", "/m/d")
    b.do("write", "/m/d/f", b"in d")
    b.do("symlink", "d", "/m/s")
    b.do("lstat", "/m/s/f")
    b.put("/m/s", b"was a link")
    b.do("lstat", "/m/s/f")  # ENOTDIR now
    b.do("lstat", "/m/s")
    # a directory is not replaced; a missing parent is ENOENT
    b.put("/m/d", b"x")
    b.put("/m/nowhere/f", b"x")
    fs.close()
    e2fsck_clean(img)
    with RawFile(img) as dev:
        got = trees.fs_tree(open_ext4(dev))
    mine = lambda t: {p: r for p, r in t.items() if p.startswith("/m/") or p == "/m"}  # noqa: E731
    problems = trees.diff(mine(got), mine(trees.host_tree(host)), KEYS)
    assert not problems, "Nuwa vs the kernel:\n" + "\n".join(problems)
    for p in ("/m/new", "/m/a", "/m/b", "/m/zeros"):
        out = subprocess.run([tool("debugfs"), "-R", f"cat {p}", img], capture_output=True, check=True).stdout
        with open(host + p, "rb") as f:
            assert out == f.read(), p


def test_put_file_refuses_trailing_slash_and_read_only(tmp_path):
    fx = fixture(WRITABLE[0])
    img = private_copy(fx.image, str(tmp_path), "a.img")
    with RawFile(img) as dev:
        fs = open_ext4(dev)
        with pytest.raises(OSError) as e:
            fs.put_file("/x", Bytes(b"x"), 1, 0o644, 0, 0, 0, 0)
        assert e.value.errno == errno.EROFS
    fs = open_ext4(RawFile(img, writable=True), writable=True)
    host = str(tmp_path / "d")
    os.mkdir(host)
    for p, hp in (("/x/", "/x/"), ("/", "/"), ("/lost+found/.", "/."), ("/lost+found/..", "/..")):
        with pytest.raises(OSError) as e:
            fs.put_file(p, Bytes(b"x"), 1, 0o644, 0, 0, 0, 0, replace=True)
        with pytest.raises(OSError) as k:
            os.open(host + hp, os.O_WRONLY | os.O_CREAT, 0o644)
        assert e.value.errno == k.value.errno == errno.EISDIR, p  # as open(O_CREAT) answers
    fs.close()
    e2fsck_clean(img)
