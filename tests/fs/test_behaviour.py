"""The behaviour suite: every backend against the host kernel, call by call, errno by errno.

Each scenario is a list of calls. The reference runs them through ``os`` in a child process
chrooted into an empty host directory (tests/fs/fs_reference.py); each backend runs them
through the protocol starting from an empty filesystem. Results (values or errno names) and
the final tree must be identical. Needs root (chroot); the suite is skipped, visibly, without.
"""

from __future__ import annotations

import os
import stat as S

import pytest

from backends import BACKENDS, EXT4_XFAIL
from fs_reference import FsTarget, run_reference, run_steps, snapshot

W = os.O_WRONLY
CREAT = os.O_WRONLY | os.O_CREAT
LONG = "n" * 256
DEEP = "/".join(["d"] * 10)

# Every scenario starts from an empty root. Steps are (method, *args) of fs_reference.OsTarget.
SCENARIOS: dict[str, list[tuple]] = {
    "enoent": [("lstat", "/nope"), ("stat", "/a/b"), ("mkdir", "/a/b"), ("unlink", "/x"),
               ("rmdir", "/x"), ("readlink", "/x"), ("open", "/x", os.O_RDONLY), ("truncate", "/x", 0),
               ("rename", "/x", "/y"), ("link", "/x", "/y"), ("chmod", "/x", 0o644), ("listdir", "/x"),
               ("getxattr", "/x", "user.a"), ("lstat", "")],
    "enotdir": [("write", "/f", b"x"), ("lstat", "/f/x"), ("mkdir", "/f/d"), ("open", "/f/", os.O_RDONLY),
                ("stat", "/f/"), ("listdir", "/f"), ("rmdir", "/f"), ("unlink", "/f/"),
                ("open", "/f/x", CREAT), ("symlink", "f", "/l"), ("rmdir", "/l"), ("lstat", "/l/")],
    "eisdir": [("mkdir", "/d"), ("open", "/d", W), ("open", "/d", os.O_RDWR), ("open", "/d", CREAT),
               ("read", "/d"), ("unlink", "/d"), ("truncate", "/d", 0), ("open", "/d", os.O_RDONLY),
               ("write", "/d", b"x"), ("open", "/new/", CREAT), ("open", "/", CREAT), ("unlink", "/"),
               ("unlink", "/d/.")],
    "eexist": [("mkdir", "/d"), ("mkdir", "/d"), ("write", "/f", b"1"), ("mkdir", "/f"),
               ("symlink", "x", "/f"), ("link", "/f", "/d"), ("open", "/f", CREAT | os.O_EXCL),
               ("mknod", "/f", S.S_IFIFO | 0o644), ("mkdir", "/"), ("mkdir", "/d/."), ("mkdir", "/d/.."),
               ("symlink", "/nowhere", "/dl"), ("open", "/dl", CREAT | os.O_EXCL), ("mkdir", "/dl"),
               ("mkdir", "/f/"), ("lstat", "/nowhere")],
    "enotempty": [("mkdir", "/d"), ("write", "/d/f", b"x"), ("rmdir", "/d"), ("rmdir", "/d/.."),
                  ("rmdir", "/d/."), ("rmdir", "/"), ("rmdir", "."), ("mkdir", "/e"),
                  ("rename", "/e", "/d"), ("unlink", "/d/f"), ("rename", "/e", "/d"), ("listdir", "/")],
    "eloop": [("symlink", "a", "/b"), ("symlink", "b", "/a"), ("stat", "/a"), ("lstat", "/a"),
              ("open", "/a", os.O_RDONLY), ("open", "/a", CREAT), ("write", "/f", b"x"),
              ("symlink", "f", "/s0")] + [("symlink", f"s{i}", f"/s{i + 1}") for i in range(41)]
             + [("stat", "/s39"), ("stat", "/s40"), ("stat", "/s41"), ("lstat", "/s41"),
                ("open", "/s0", os.O_RDONLY | os.O_NOFOLLOW), ("readlink", "/s41"), ("read", "/s40")],
    "einval": [("mkdir", "/d"), ("mkdir", "/d/sub"), ("rename", "/d", "/d/sub/x"), ("rename", "/d", "/d/x"),
               ("write", "/f", b"x"), ("readlink", "/f"), ("readlink", "/d"), ("truncate", "/f", -1),
               ("rename", "/d/sub", "/d/sub/"), ("rename", "/d/sub/", "/d/sub/y")],
    "enametoolong": [("mkdir", "/" + LONG), ("write", "/" + LONG, b"x"), ("lstat", "/" + LONG + "/x"),
                     ("symlink", "t", "/" + LONG), ("mkdir", "/" + "n" * 255), ("lstat", "/" + "n" * 255),
                     ("rename", "/" + "n" * 255, "/" + LONG), ("namemax", "/")],
    "nul": [("lstat", "/a\0b"), ("mkdir", "/a\0")],
    "rename-files": [("write", "/a", b"A"), ("write", "/b", b"B"), ("rename", "/a", "/b"), ("read", "/b"),
                     ("lstat", "/a"), ("rename", "/b", "/b"), ("write", "/c", b"C"), ("link", "/c", "/c2"),
                     ("rename", "/c", "/c2"), ("lstat", "/c"), ("lstat", "/c2")],
    "rename-dirs": [("mkdir", "/d1"), ("mkdir", "/d2"), ("rename", "/d1", "/d2"), ("mkdir", "/d3"),
                    ("mkdir", "/d2/x"), ("rename", "/d3", "/d2"), ("rename", "/d2/x", "/y"),
                    ("rename", "/d2", "/y/"), ("lstat", "/y"), ("lstat", "/"), ("mkdir", "/p"),
                    ("mkdir", "/p/q"), ("rename", "/p", "/p/q"), ("rename", "/p/q", "/p"),
                    ("rename", "/p/q", "/"), ("rename", "/", "/z")],
    "rename-mixed": [("mkdir", "/d"), ("write", "/f", b"x"), ("rename", "/d", "/f"), ("rename", "/f", "/d"),
                     ("rename", "/f", "/g/"), ("rename", "/f/", "/g"), ("rename", "/d", "/e/"),
                     ("symlink", "d", "/ld"), ("rename", "/ld", "/ld2"), ("readlink", "/ld2"),
                     ("rename", "/ld2/", "/ld3"), ("rename", "/e/", "/d2/")],
    "rename-error-order": [("mkdir", "/a"), ("write", "/c", b"x"), ("rename", "/a/nope", "/c/a"),
                           ("rename", "/nope/x", "/c/a"), ("rename", "/a/nope", "/nope/x"),
                           ("rename", "/c/x", "/a/y"), ("link", "/a/nope", "/c/x")],
    # lock_rename's trap comes before the type checks (EINVAL / ENOTEMPTY), after NOREPLACE's
    # EEXIST and the trailing-slash ENOTDIR (fs/namei.c do_renameat2)
    "rename-ancestor": [("mkdir", "/a"), ("mkdir", "/a/a"), ("symlink", "a", "/a/b"), ("write", "/a/a/f", b"f"),
                        ("rename", "/a", "/a/b"), ("rename", "/a/b", "/a"), ("rename", "/a/a/f", "/a"),
                        ("rename", "/a", "/a/b", True), ("rename", "/a/b", "/a", True),
                        ("rename", "/a/a/f/", "/a"), ("rename", "/a", "/a/a/f/"), ("rename", "/a/a", "/a"),
                        ("rename", "/a", "/a/a/new"), ("rename", "/a/a/f", "/a/a/.."), ("lstat", "/a/b")],
    "rename-noreplace": [("write", "/a", b"A"), ("write", "/b", b"B"), ("rename", "/a", "/b", True),
                         ("rename", "/a", "/c", True), ("read", "/c"), ("mkdir", "/d"),
                         ("rename", "/c", "/d", True), ("rename", "/c", "/", True), ("rename", "/x", "/b", True)],
    "trailing-slash": [("mkdir", "/d/"), ("lstat", "/d/"), ("lstat", "/d//"), ("write", "/f", b"x"),
                       ("lstat", "/f/"), ("symlink", "d", "/ld"), ("lstat", "/ld/"), ("symlink", "f", "/lf"),
                       ("lstat", "/lf/"), ("symlink", "nothing", "/dl"), ("lstat", "/dl/"), ("mkdir", "/dl/"),
                       ("rmdir", "/ld/"), ("unlink", "/ld/"), ("unlink", "/lf/"), ("mknod", "/n/", S.S_IFIFO),
                       ("symlink", "x", "/sl/"), ("link", "/f", "/hl/"), ("rmdir", "/d//"), ("lstat", "//f")],
    "dotdot-root": [("mkdir", "/a"), ("write", "/a/f", b"x"), ("lstat", "/.."), ("lstat", "/../../a/f"),
                    ("listdir", "/../.."), ("symlink", "../../../../a", "/a/up"), ("read", "/a/up/f"),
                    ("lstat", "a/../a/./f"), ("mkdir", "/a/b"), ("lstat", "/a/b/../../../a/f")],
    "absolute-symlinks": [("mkdir", "/etc"), ("mkdir", "/usr"), ("write", "/usr/real", b"R"),
                          ("symlink", "/usr/real", "/etc/alt"), ("read", "/etc/alt"), ("stat", "/etc/alt"),
                          ("symlink", "/", "/etc/root"), ("listdir", "/etc/root/"),
                          ("symlink", "/etc/passwd", "/etc/pw"), ("read", "/etc/pw"),
                          ("symlink", "/usr", "/etc/u"), ("lstat", "/etc/u/real"),
                          ("symlink", "/../../../../usr/real", "/esc"), ("read", "/esc")],
    "dangling-creat": [("symlink", "target", "/dl"), ("write", "/dl", b"via link"), ("read", "/target"),
                       ("lstat", "/target"), ("symlink", "/nodir/x", "/dl2"), ("write", "/dl2", b"y"),
                       ("symlink", "/abs", "/dl3"), ("open", "/dl3", CREAT), ("lstat", "/abs"),
                       ("symlink", "t2", "/dl4"), ("open", "/dl4", CREAT | os.O_NOFOLLOW), ("lstat", "/t2")],
    "hardlinks": [("write", "/a", b"data"), ("link", "/a", "/b"), ("lstat", "/a"), ("link", "/b", "/c"),
                  ("stat", "/c"), ("unlink", "/a"), ("lstat", "/b"), ("write", "/b", b"new"), ("read", "/c"),
                  ("mkdir", "/d"), ("link", "/d", "/d2"), ("symlink", "b", "/s"), ("link", "/s", "/s2"),
                  ("lstat", "/s2"), ("readlink", "/s2"), ("mkdir", "/d/e"), ("lstat", "/d"),
                  ("rmdir", "/d/e"), ("lstat", "/d")],
    "unlink-rmdir": [("mkdir", "/d"), ("unlink", "/d"), ("write", "/f", b""), ("rmdir", "/f"),
                     ("rmdir", "/d/."), ("rmdir", "/d/.."), ("mknod", "/p", S.S_IFIFO | 0o600),
                     ("unlink", "/p"), ("rmdir", "/d"), ("listdir", "/")],
    "chmod-chown": [("write", "/f", b"x", CREAT, 0o600), ("lstat", "/f"), ("symlink", "f", "/l"),
                    ("chmod", "/l", 0o4751), ("lstat", "/f"), ("lstat", "/l"), ("chown", "/f", 100, 200),
                    ("lstat", "/f"), ("chmod", "/f", 0o6755), ("chown", "/f", -1, -1), ("lstat", "/f"),
                    ("chmod", "/f", 0o2745), ("chown", "/l", 5, -1), ("lstat", "/f"), ("lchown", "/l", 7, 8),
                    ("lstat", "/l"), ("lstat", "/f"), ("mkdir", "/d", 0o7777), ("lstat", "/d"),
                    ("chmod", "/d", 0o3755), ("chown", "/d", 1, 1), ("lstat", "/d"),
                    ("write", "/d/inherit", b""), ("lstat", "/d/inherit"), ("mkdir", "/d/sub", 0o755),
                    ("lstat", "/d/sub")],
    "utime": [("write", "/f", b"x"), ("utime", "/f", 1_000_000_001, 2_000_000_002), ("times", "/f"),
              ("symlink", "f", "/l"), ("utime", "/l", 5, 6, False), ("times", "/l"), ("times", "/f"),
              ("utime", "/l", 7_000_000_000_123_456_789, 8_123_456_789), ("times", "/f"), ("mkdir", "/d"),
              ("utime", "/d", 0, 1), ("times", "/d"), ("utime", "/nope", 1, 1)],
    "truncate-sparse": [("write", "/f", b"hello"), ("truncate", "/f", 2), ("read", "/f"), ("truncate", "/f", 10),
                        ("read", "/f"), ("write", "/s", b""), ("pwrite", "/s", 1 << 20, b"end"), ("lstat", "/s"),
                        ("blocks", "/s"), ("read", "/s"), ("truncate", "/s", 100), ("blocks", "/s"),
                        ("pwrite", "/s", 8192, b"z" * 4096), ("blocks", "/s"), ("lstat", "/s"),
                        ("write", "/a", b"123", os.O_WRONLY | os.O_APPEND), ("read", "/a"),
                        ("write", "/f", b"ab", os.O_WRONLY | os.O_APPEND), ("read", "/f"),
                        ("open", "/f", os.O_RDONLY | os.O_TRUNC), ("lstat", "/f")],
    "xattrs": [("write", "/f", b"x"), ("setxattr", "/f", "user.a", b"1"), ("getxattr", "/f", "user.a"),
               ("setxattr", "/f", "user.a", b"2", 1), ("setxattr", "/f", "user.b", b"2", 2),
               ("setxattr", "/f", "user.a", b"3", 2), ("getxattr", "/f", "user.a"), ("listxattr", "/f"),
               ("setxattr", "/f", "trusted.t", b"\x00\xff"), ("setxattr", "/f", "security.capability",
                                                            b"\x01\x00\x00\x02" + bytes(16)),
               ("listxattr", "/f"), ("removexattr", "/f", "user.a"), ("removexattr", "/f", "user.a"),
               ("getxattr", "/f", "user.a"), ("getxattr", "/f", "bogus.x"), ("setxattr", "/f", "user.", b"1"),
               ("setxattr", "/f", "", b"1"), ("setxattr", "/f", "user." + "x" * 251, b"1"),
               ("symlink", "f", "/l"), ("setxattr", "/l", "user.c", b"1", 0, False),
               ("getxattr", "/l", "user.c", False), ("setxattr", "/l", "trusted.c", b"L", 0, False),
               ("listxattr", "/l", False), ("listxattr", "/l"), ("getxattr", "/l", "user.b"),
               ("mkdir", "/d"), ("setxattr", "/d", "user.dir", b"v"), ("listxattr", "/d"),
               ("setxattr", "/f", "user.a", b"v", 3), ("removexattr", "/nope", "user.a"),
               ("setxattr", "/f", "user.empty", b""), ("getxattr", "/f", "user.empty")],
    # the kernel removes file capabilities (security.capability) on a write, a truncate, an
    # O_TRUNC open and any chown of a non-directory (security_inode_killpriv); not on chmod,
    # an empty write, a read, or other xattrs
    "killpriv": [("write", "/f", b"x"), ("setxattr", "/f", "security.capability", b"\x01\x00\x00\x02" + bytes(16)),
                 ("setxattr", "/f", "user.keep", b"1"), ("chmod", "/f", 0o4755), ("listxattr", "/f"),
                 ("pwrite", "/f", 0, b""), ("listxattr", "/f"), ("pwrite", "/f", 1, b"y"), ("listxattr", "/f"),
                 ("lstat", "/f"),
                 ("setxattr", "/f", "security.capability", b"\x01\x00\x00\x02" + bytes(16)), ("truncate", "/f", 1), ("listxattr", "/f"),
                 ("setxattr", "/f", "security.capability", b"\x01\x00\x00\x02" + bytes(16)), ("open", "/f", os.O_RDONLY | os.O_TRUNC),
                 ("listxattr", "/f"),
                 ("setxattr", "/f", "security.capability", b"\x01\x00\x00\x02" + bytes(16)), ("open", "/f", os.O_RDONLY), ("listxattr", "/f"),
                 ("chown", "/f", 0, 0), ("listxattr", "/f"),
                 ("setxattr", "/f", "security.capability", b"\x01\x00\x00\x02" + bytes(16)), ("chown", "/f", 5, 5), ("listxattr", "/f"),
                 ("lstat", "/f"),
                 ("mkdir", "/d"), ("setxattr", "/d", "security.capability", b"\x01\x00\x00\x02" + bytes(16)), ("chown", "/d", 5, 5),
                 ("listxattr", "/d")],
    "mknod": [("mknod", "/fifo", S.S_IFIFO | 0o640), ("lstat", "/fifo"), ("mknod", "/chr", S.S_IFCHR | 0o600,
                                                                             os.makedev(1, 3)),
              ("lstat", "/chr"), ("mknod", "/blk", S.S_IFBLK | 0o660, os.makedev(8, 1)), ("lstat", "/blk"),
              ("mknod", "/reg", 0o644), ("lstat", "/reg"), ("mknod", "/dir", S.S_IFDIR | 0o755),
              ("mknod", "/bad", 0o170000 | 0o644), ("mknod", "/sock", S.S_IFSOCK | 0o755), ("lstat", "/sock")],
    "deep-and-dots": [("mkdir", "/d")] + [("mkdir", "/" + "/".join(["d"] * i)) for i in range(2, 11)]
                     + [("write", "/" + DEEP + "/f", b"deep"), ("read", "/" + DEEP + "/./f"),
                        ("read", "/d/d/../d/d/d/d/d/d/d/d/f"), ("listdir", "/" + DEEP), ("lstat", "/d/d/..")],
}


def _run_backend(made, steps):
    """Results and final tree; for an overlay also the backend's tree after commit()."""
    fs, cleanup = made
    try:
        t = FsTarget(fs)
        results, tree = run_steps(t, steps), snapshot(t)
        committed = None
        if hasattr(fs, "commit"):
            fs.commit()
            committed = snapshot(FsTarget(fs.backend))
        return results, tree, committed
    finally:
        cleanup()


_REF_CACHE: dict[str, tuple] = {}


def _reference(name, tmp_path_factory):
    if name not in _REF_CACHE:
        root = tmp_path_factory.mktemp("ref-" + name)
        _REF_CACHE[name] = run_reference(str(root), SCENARIOS[name])
    return _REF_CACHE[name]


def _params():
    out = []
    for bname in BACKENDS:
        for sname in SCENARIOS:
            marks = []
            reason = EXT4_XFAIL.get(sname) if bname == "ext4" else None
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(bname, sname, id=f"{bname}-{sname}", marks=marks))
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="the host reference needs root (chroot, mknod, trusted.* xattrs)")
@pytest.mark.parametrize("backend,scenario", _params())
def test_agrees_with_kernel(backend, scenario, tmp_path_factory):
    ref_results, ref_tree = _reference(scenario, tmp_path_factory)
    results, tree, committed = _run_backend(BACKENDS[backend](tmp_path_factory), SCENARIOS[scenario])
    for i, (step, want, got) in enumerate(zip(SCENARIOS[scenario], ref_results, results)):
        assert got == want, f"step {i} {step!r}: kernel gave {want!r}, {backend} gave {got!r}"
    assert tree == ref_tree
    if committed is not None:  # the overlay's commit() must produce the same tree in its backend
        assert committed == ref_tree


def test_reference_is_not_trivial(tmp_path):
    """The oracle itself: errors really come back as errnos, values as values."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    results, tree = run_reference(str(tmp_path), [("mkdir", "/d"), ("mkdir", "/d"), ("write", "/d/f", b"xy")])
    assert results == [("ok", None), ("err", "EEXIST"), ("ok", 2)]
    assert set(tree) == {"/", "/d", "/d/f"}
    assert (tmp_path / "d" / "f").read_bytes() == b"xy"
