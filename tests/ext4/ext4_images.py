"""Test images for the ext4 engine, made by the real tools (mkfs.ext4 -d, e2fsck -fD).

A deterministic source tree (self-verifying contents from a seeded PRNG) is imaged by
``mkfs.ext4 -d`` in several configurations: Debian 12's defaults, upstream 1.47's defaults
(``metadata_csum_seed``, ``orphan_file``), 1 KiB blocks, 128-byte inodes, inline_data, ext2
and ext3, plus an htree fixture made by ``e2fsck -fD`` on a directory of several thousand
entries. Images are built once per test session (module-level cache) in a temp directory.

Also the comparison helpers: :func:`tree_of_host` / :func:`tree_of_fs` produce the same
record per path (type, mode, ids, size, nlink, rdev, mtime, content hash, link target,
xattrs) for a host directory and for any filesystem-model backend.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import stat
import subprocess
import tempfile

from judges import run, tool

UUID = "0b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081"
HASH_SEED = "11111111-2222-4333-8444-555555555555"
FAKE_TIME = "1700000000"

UPSTREAM_CONF = """[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext3 = {
		features = has_journal
	}
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,metadata_csum_seed,64bit,dir_nlink,extra_isize,orphan_file
	}
	small = {
		blocksize = 1024
		inode_ratio = 4096
	}
	floppy = {
		blocksize = 1024
		inode_ratio = 8192
	}
"""

#: name -> (mkfs args, size, use upstream config)
VARIANTS = {
    "debian4k": (["-t", "ext4", "-b", "4096"], "96M", False),
    "upstream": (["-t", "ext4", "-b", "4096"], "96M", True),
    "debian1k": (["-t", "ext4", "-b", "1024"], "64M", False),
    "inode128": (["-t", "ext4", "-I", "128"], "64M", False),
    "inline": (["-t", "ext4", "-O", "inline_data"], "64M", False),
    "ext2": (["-t", "ext2"], "64M", False),
    "ext3": (["-t", "ext3"], "64M", False),
}

_ROOT = None
_CACHE: dict[str, str] = {}


def workdir() -> str:
    """A per-session scratch directory (removed at interpreter exit)."""
    global _ROOT
    if _ROOT is None:
        _ROOT = tempfile.mkdtemp(prefix="nuwa-ext4-")
        import atexit

        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def payload(name: str, size: int) -> bytes:
    """Deterministic bytes for a file (seeded by its name)."""
    return random.Random(name).randbytes(size)


def make_source(root: str) -> None:
    """The reference tree: every file type, sizes around block edges, xattrs, ACLs, caps."""
    os.makedirs(root)
    sizes = [0, 1, 59, 60, 1023, 1024, 1025, 4095, 4096, 4097, 65536, 100_000, 1_500_000]
    os.makedirs(f"{root}/files")
    for s in sizes:
        with open(f"{root}/files/f{s}", "wb") as f:
            f.write(payload(f"f{s}", s))
    with open(f"{root}/files/sparse", "wb") as f:
        f.truncate(5 << 20)
        f.seek(1 << 20)
        f.write(payload("sparse1", 5000))
        f.seek((5 << 20) - 100)
        f.write(payload("sparse2", 100))
    with open(f"{root}/files/hole_start", "wb") as f:
        f.seek(200_000)
        f.write(b"end")
    os.makedirs(f"{root}/links")
    os.symlink("../files/f1", f"{root}/links/fast")
    os.symlink("t" * 59, f"{root}/links/len59")
    os.symlink("u" * 60, f"{root}/links/len60")
    os.symlink("/" + "v/" * 150, f"{root}/links/slow")
    os.symlink("/nonexistent/target", f"{root}/links/dangling")
    os.symlink("/files", f"{root}/links/absdir")
    os.link(f"{root}/files/f4096", f"{root}/links/hard1")
    os.link(f"{root}/files/f4096", f"{root}/links/hard2")
    os.makedirs(f"{root}/special")
    os.mkfifo(f"{root}/special/fifo")
    os.mknod(f"{root}/special/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(f"{root}/special/sda1", stat.S_IFBLK | 0o660, os.makedev(8, 1))
    os.mknod(f"{root}/special/bigdev", stat.S_IFCHR | 0o600, os.makedev(300, 70000))
    s = socket.socket(socket.AF_UNIX)
    s.bind(f"{root}/special/sock")
    s.close()
    os.makedirs(f"{root}/attrs")
    for n in ("plain", "capped", "acl", "many"):
        with open(f"{root}/attrs/{n}", "wb") as f:
            f.write(payload(n, 300))
    os.setxattr(f"{root}/attrs/plain", "user.comment", b"hello xattr")
    os.setxattr(f"{root}/attrs/plain", "trusted.t1", b"\x00\x01\x02")
    run([tool("setcap"), "cap_net_raw+ep", f"{root}/attrs/capped"])
    # POSIX ACL u::rw-,u:1000:r--,g::r--,m::r--,o::--- in the VFS (version 2) form
    acl = b"\x02\x00\x00\x00" + b"".join(
        t.to_bytes(2, "little") + p.to_bytes(2, "little") + i.to_bytes(4, "little")
        for t, p, i in [(1, 6, 0xFFFFFFFF), (2, 4, 1000), (4, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
                        (0x20, 0, 0xFFFFFFFF)])
    os.setxattr(f"{root}/attrs/acl", "system.posix_acl_access", acl)
    for i in range(10):  # more than fit in the inode, fewer than overflow a 1 KiB block
        os.setxattr(f"{root}/attrs/many", f"user.attr{i:02d}", payload(f"x{i}", 20 + i * 5))
    os.makedirs(f"{root}/attrs/dir_default_acl")
    os.setxattr(f"{root}/attrs/dir_default_acl", "system.posix_acl_default", acl)
    os.makedirs(f"{root}/big_dir")
    for i in range(300):
        with open(f"{root}/big_dir/entry-{i:04d}-{'n' * (i % 40)}", "wb") as f:
            f.write(payload(f"e{i}", i % 50))
    os.makedirs(f"{root}/names")
    for n in ["space name", "ünïcödé", "x" * 255, "dash-", ".hidden", "a\tb"]:
        with open(f"{root}/names/{n}", "wb") as f:
            f.write(n.encode())
    os.makedirs(f"{root}/empty")
    os.makedirs(f"{root}/perm")
    with open(f"{root}/perm/suid", "wb") as f:
        f.write(b"#!/bin/sh\n")
    os.chmod(f"{root}/perm/suid", 0o4755)
    os.makedirs(f"{root}/perm/sticky")
    os.chmod(f"{root}/perm/sticky", 0o1777)
    with open(f"{root}/perm/owned", "wb") as f:
        f.write(b"owned")
    os.chown(f"{root}/perm/owned", 1000, 1001)
    os.utime(f"{root}/perm/owned", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    os.makedirs(f"{root}/deep/a/b/c/d/e/f")
    with open(f"{root}/deep/a/b/c/d/e/f/leaf", "wb") as f:
        f.write(b"leaf")
    subprocess.run(["find", root, "-exec", "touch", "-h", "-a", "-d", "@" + FAKE_TIME, "{}", "+"], check=True)


def source() -> str:
    """The reference source tree (built once)."""
    if "src" not in _CACHE:
        p = os.path.join(workdir(), "src")
        make_source(p)
        _CACHE["src"] = p
    return _CACHE["src"]


def mkfs(path: str, args: list[str], size: str, upstream: bool = False, src: str | None = None) -> str:
    """Run mkfs.ext4 deterministically (fixed UUID, hash seed and time)."""
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=FAKE_TIME)
    if upstream:
        conf = os.path.join(workdir(), "mke2fs-upstream.conf")
        with open(conf, "w") as f:
            f.write(UPSTREAM_CONF)
        env["MKE2FS_CONFIG"] = conf
    cmd = [tool("mke2fs"), "-q", "-F", "-U", UUID, "-E", f"hash_seed={HASH_SEED},root_owner=0:0"] + args
    if src:
        cmd += ["-d", src]
    run(cmd + [path, size], env=env)
    return path


def image(variant: str) -> str:
    """A pristine image of the source tree in ``variant`` (never modify it: copy it)."""
    if variant not in _CACHE:
        args, size, upstream = VARIANTS[variant]
        _CACHE[variant] = mkfs(os.path.join(workdir(), f"{variant}.img"), args, size, upstream, source())
    return _CACHE[variant]


def htree_image() -> str:
    """An image whose /many holds 3000 entries indexed by ``e2fsck -fD``."""
    if "htree" not in _CACHE:
        src = os.path.join(workdir(), "htree-src")
        os.makedirs(f"{src}/many")
        for i in range(3000):
            with open(f"{src}/many/file-{i:05d}-{'q' * (i % 23)}", "wb") as f:
                f.write(payload(f"h{i}", i % 30))
        os.makedirs(f"{src}/many/subdir")
        subprocess.run(["find", src, "-exec", "touch", "-h", "-a", "-d", "@" + FAKE_TIME, "{}", "+"], check=True)
        img = mkfs(os.path.join(workdir(), "htree.img"), ["-t", "ext4", "-b", "1024"], "64M", False, src)
        r = run([tool("e2fsck"), "-fyD", img], check=False)
        assert r.returncode in (0, 1), r.stdout + r.stderr
        _CACHE["htree"] = img
    return _CACHE["htree"]


def copy(src: str, name: str) -> str:
    """A private copy of an image (sparse-aware)."""
    dst = os.path.join(workdir(), name)
    run(["cp", "--sparse=always", src, dst])
    return dst


def sha(data: bytes) -> str:
    """Content hash used in tree records."""
    return hashlib.sha256(data).hexdigest()


def tree_of_host(root: str) -> dict[str, tuple]:
    """Path -> record for a host directory (the oracle)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = "/" + os.path.relpath(p, root)
            st = os.lstat(p)
            content = target = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    content = sha(f.read())
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
            xa = {} if stat.S_ISLNK(st.st_mode) else {k: os.getxattr(p, k, follow_symlinks=False)
                                                      for k in os.listxattr(p, follow_symlinks=False)}
            nlink = st.st_nlink
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        st.st_size if not stat.S_ISDIR(st.st_mode) else None, nlink,
                        st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else 0,
                        st.st_mtime_ns, content, target, xa)
    return out


def tree_of_fs(fs, top: str = "/", skip=("/lost+found",)) -> dict[str, tuple]:
    """Path -> record for a filesystem-model backend (same shape as :func:`tree_of_host`)."""
    out = {}
    for dirpath, dirnames, filenames in fs.walk(top):
        for n in dirnames + filenames:
            p = (dirpath.rstrip("/") + "/" + n)
            if p in skip:
                continue
            st = fs.lstat(p)
            content = target = None
            if stat.S_ISREG(st.st_mode):
                content = sha(fs.read_bytes(p))
            elif stat.S_ISLNK(st.st_mode):
                target = fs.readlink(p)
            xa = {} if stat.S_ISLNK(st.st_mode) else {k: fs.getxattr(p, k, follow_symlinks=False)
                                                      for k in fs.listxattr(p, follow_symlinks=False)}
            out[p] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                      st.st_size if not stat.S_ISDIR(st.st_mode) else None, st.st_nlink, st.st_rdev,
                      st.st_mtime_ns, content, target, xa)
    return out


def debugfs_listing(img: str, dirs: list[str]) -> dict[str, dict[str, tuple]]:
    """``ls -p`` of each directory by debugfs: name -> (inode, mode, uid, gid, size)."""
    script = "\n".join(f'ls -p "{d}"' for d in dirs) + "\n"
    r = run([tool("debugfs"), "-f", "-", img], input=script, check=False)
    out: dict[str, dict[str, tuple]] = {}
    cur = None
    for line in r.stdout.splitlines():
        if line.startswith("debugfs:"):
            cur = line.split("ls -p", 1)[1].strip().strip('"')
            out[cur] = {}
            continue
        if cur is None or not line.startswith("/"):
            continue
        parts = line.split("/")
        if len(parts) < 7:
            continue
        ino, mode, uid, gid = int(parts[1]), int(parts[2], 8), int(parts[3]), int(parts[4])
        name = "/".join(parts[5:-2])
        size = parts[-2]
        if ino:
            out[cur][name] = (ino, mode, uid, gid, int(size) if size else None)
    return out
