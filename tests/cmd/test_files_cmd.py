"""``nuwa ls/cat/stat/copy-out/copy-in/diff`` on images made by ``mkfs.ext4 -d`` (and qcow2 by qemu-img).

The judges: coreutils ``ls -l`` and ``stat`` run on the tree the image was made from,
``qemu-img check``, ``e2fsck -fn`` and ``debugfs`` on what copy-in writes, and a host-side
walk for ``diff``. The image files are hashed before and after every read-only or refused
command.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat as S
import subprocess

import pytest

from helpers import cli
from helpers.cli import C_ENV
from helpers.hashing import file_sha256
from judges import debugfs, e2fsck_clean, qemu_img_check, qemu_img_to_raw, tool
from tools.host_tree_diff import host_tree_diff

ENV = {**os.environ, **C_ENV}
MTIME = 1_700_000_000
#: ``nuwa ARGS`` that must succeed unless ``check=None``; bytes out (compared with coreutils)
nuwa = functools.partial(cli.nuwa, text=False, env=C_ENV, check=0)


def make_tree(d) -> None:
    """A small Debian-looking root (the root-fs markers included) with every kind of node."""
    os.makedirs(f"{d}/etc/sub", exist_ok=True)
    os.makedirs(f"{d}/var/lib/dpkg", exist_ok=True)
    os.makedirs(f"{d}/usr/bin", exist_ok=True)
    files = {
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        "etc/group": "root:x:0:\ndaemon:x:1:\n",
        "etc/hostname": "image\n",
        "etc/sub/conf": "k=v\n" * 1000,
        "var/lib/dpkg/status": "Package: base-files\nStatus: install ok installed\n",
        "usr/bin/tool": "#!/bin/sh\necho hi\n",
    }
    for name, text in files.items():
        with open(f"{d}/{name}", "w") as f:
            f.write(text)
    os.chmod(f"{d}/usr/bin/tool", 0o4755)
    os.chown(f"{d}/etc/hostname", 1, 4242)
    os.symlink("/usr/bin/tool", f"{d}/etc/alt")
    os.symlink("sub/conf", f"{d}/etc/rel")
    os.link(f"{d}/etc/hostname", f"{d}/etc/hostname.hard")
    os.mkfifo(f"{d}/etc/fifo", 0o600)
    os.setxattr(f"{d}/etc/sub/conf", "user.note", b"kept")
    with open(f"{d}/usr/bin/sparse", "wb") as f:
        f.truncate(1 << 20)
        f.write(b"head")
    for dirpath, dirs, names in os.walk(d):
        for n in dirs + names + ["."]:
            os.utime(os.path.join(dirpath, n), ns=(MTIME * 10**9, MTIME * 10**9), follow_symlinks=False)  # mkfs -d keeps seconds


def mkfs(tree, img, size="32M") -> None:
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-d", str(tree), "-E", "root_owner=0:0", str(img), size],
                   check=True, capture_output=True, env={**ENV, "E2FSPROGS_FAKE_TIME": str(MTIME)})


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmd")
    tree = d / "tree"
    tree.mkdir()
    make_tree(str(tree))
    raw = d / "disk.raw"
    mkfs(tree, raw)
    qcow = d / "disk.qcow2"
    subprocess.run([tool("qemu-img"), "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
    os.utime(tree, ns=(MTIME * 10**9, MTIME * 10**9))
    return {"tree": str(tree), "raw": str(raw), "qcow2": str(qcow), "dir": d}


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_ls_long_matches_coreutils(images, fmt):
    img = images[fmt]
    before = file_sha256(img)
    for path in ("/etc", "/usr/bin"):
        got = nuwa("ls", img, path, "-l").stdout.decode()
        want = subprocess.run(["ls", "-l", images["tree"] + path], capture_output=True, env=ENV, check=True).stdout.decode()
        assert got == want
    got = nuwa("ls", img, "/etc").stdout.decode()
    assert got == subprocess.run(["ls", images["tree"] + "/etc"], capture_output=True, env=ENV).stdout.decode()
    assert file_sha256(img) == before


def test_ls_recursive_and_json(images):
    got = nuwa("ls", images["raw"], "/etc", "-R").stdout.decode()
    want = subprocess.run(["ls", "-R", "."], capture_output=True, env=ENV, cwd=images["tree"] + "/etc").stdout.decode()
    assert got.replace("/etc", ".") == want
    doc = json.loads(nuwa("ls", images["raw"], "/etc", "--json").stdout)
    by = {e["name"]: e for e in doc["entries"]}
    assert by["alt"]["target"] == "/usr/bin/tool" and by["alt"]["type"] == "symlink"
    assert by["hostname"]["user"] == "daemon" and by["hostname"]["gid"] == 4242
    assert by["hostname"]["nlink"] == 2 and by["fifo"]["type"] == "fifo"


def test_stat_matches_coreutils(images):
    for path in ("/etc/hostname", "/usr/bin/tool", "/etc/alt", "/etc", "/usr/bin/sparse", "/etc/fifo"):
        got = nuwa("stat", images["raw"], path).stdout.decode().splitlines()
        want = subprocess.run(["stat", images["tree"] + path], capture_output=True, env=ENV, check=True).stdout.decode()
        want = want.replace(images["tree"], "").splitlines()
        # File, Size/Blocks/type, Access mode+owners, Modify: equal. Device/inode, atime, ctime and
        # birth belong to the host's copy, not the image.
        for i in (0, 1, 3, 5):
            assert got[i] == want[i], (path, got[i], want[i])
        assert got[2].startswith("Device: ") and got[7] == " Birth: -"
    doc = json.loads(nuwa("stat", images["raw"], "/etc/sub/conf", "--json").stdout)
    assert doc["xattrs"] == {"user.note": b"kept".hex()} and doc["mtime_ns"] == MTIME * 10**9


def test_cat(images):
    with open(images["tree"] + "/etc/sub/conf", "rb") as f:
        assert nuwa("cat", images["qcow2"], "/etc/sub/conf").stdout == f.read()
    assert nuwa("cat", images["raw"], "etc/rel").stdout == b"k=v\n" * 1000
    r = nuwa("cat", images["raw"], "/etc", check=None)
    assert r.returncode == 1 and b"Is a directory" in r.stderr and len(r.stderr.splitlines()) == 1
    r = nuwa("cat", images["raw"], "/nope", check=None)
    assert r.returncode == 1 and b"/nope" in r.stderr


def test_copy_out_preserves_tree(images, tmp_path):
    before = file_sha256(images["qcow2"])
    nuwa("copy-out", images["qcow2"], "/etc", str(tmp_path))
    out = tmp_path / "etc"
    src = images["tree"] + "/etc"
    for dirpath, dirs, names in os.walk(src):
        for n in dirs + names:
            a = os.path.join(dirpath, n)
            b = str(out) + a[len(src):]
            sa, sb = os.lstat(a), os.lstat(b)
            assert (sa.st_mode, sa.st_uid, sa.st_gid, sa.st_mtime_ns) == (sb.st_mode, sb.st_uid, sb.st_gid, sb.st_mtime_ns), b
            if S.S_ISLNK(sa.st_mode):
                assert os.readlink(a) == os.readlink(b)
            elif S.S_ISREG(sa.st_mode):
                assert file_sha256(a) == file_sha256(b)
                assert os.listxattr(a) == os.listxattr(b)
    assert os.lstat(out / "hostname").st_ino == os.lstat(out / "hostname.hard").st_ino
    assert file_sha256(images["qcow2"]) == before
    r = nuwa("copy-out", images["qcow2"], "/etc", str(tmp_path), check=None)
    assert r.returncode == 2 and b"exists" in r.stderr  # never overwrites


def test_copy_in_writes_a_new_overlay(images, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a").write_bytes(b"A" * 70000)
    os.chmod(src / "d" / "a", 0o640)
    os.symlink("a", src / "d" / "ln")
    os.link(src / "d" / "a", src / "d" / "hard")
    (src / "top").write_bytes(b"top\n")
    base = shutil.copy(images["qcow2"], tmp_path / "base.qcow2")
    before = file_sha256(base)
    out = tmp_path / "out.qcow2"
    nuwa("copy-in", str(base), str(src / "d"), str(src / "top"), "/etc/sub", "--output", str(out))
    assert file_sha256(base) == before
    qemu_img_check(str(out))
    raw = tmp_path / "out.raw"
    qemu_img_to_raw(str(out), str(raw))
    e2fsck_clean(str(raw))
    assert nuwa("cat", str(out), "/etc/sub/d/a").stdout == b"A" * 70000
    assert nuwa("cat", str(out), "/etc/sub/top").stdout == b"top\n"
    assert "Type: symlink" in debugfs(str(raw), "stat /etc/sub/d/ln")
    assert "Links: 2" in debugfs(str(raw), "stat /etc/sub/d/hard")
    assert nuwa("cat", str(out), "/etc/sub/d/ln").stdout == b"A" * 70000
    st = json.loads(nuwa("stat", str(out), "/etc/sub/d/a", "--json").stdout)
    assert st["mode"] == "0640" and st["uid"] == 0
    # the rest of the image is what it was
    assert nuwa("cat", str(out), "/etc/sub/conf").stdout == b"k=v\n" * 1000


def test_copy_in_in_place(images, tmp_path):
    img = shutil.copy(images["raw"], tmp_path / "inplace.raw")
    src = tmp_path / "new.txt"
    src.write_bytes(b"in place\n")
    nuwa("copy-in", str(img), str(src), "/", "--in-place")
    e2fsck_clean(str(img))
    assert nuwa("cat", str(img), "/new.txt").stdout == b"in place\n"


def test_copy_in_refuses_escaping_symlinks_and_writes_nothing(images, tmp_path):
    src = tmp_path / "evil"
    src.mkdir()
    (src / "ok").write_text("fine")
    os.symlink("/etc/shadow", src / "abs")
    img = shutil.copy(images["raw"], tmp_path / "victim.raw")
    before = file_sha256(img)
    out = tmp_path / "o.qcow2"
    for args in (["--output", str(out)], ["--in-place"]):
        r = nuwa("copy-in", str(img), str(src), "/", *args, check=None)
        assert r.returncode == 2 and b"outside" in r.stderr and len(r.stderr.splitlines()) == 1
        assert file_sha256(img) == before and not out.exists()
    os.unlink(src / "abs")
    os.symlink("../../x", src / "rel")
    r = nuwa("copy-in", str(img), str(src), "/", "--in-place", check=None)
    assert r.returncode == 2 and file_sha256(img) == before
    r = nuwa("copy-in", str(img), str(src / "ok"), "/", check=None)  # neither --output nor --in-place
    assert r.returncode == 2 and file_sha256(img) == before


def test_copy_in_failure_removes_output(images, tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    out = tmp_path / "o.qcow2"
    before = file_sha256(images["raw"])
    r = nuwa("copy-in", images["raw"], str(src), "/etc/hostname", "--output", str(out), check=None)
    assert r.returncode == 1 and b"Not a directory" in r.stderr
    assert not out.exists() and file_sha256(images["raw"]) == before


def test_diff_two_mkfs_images(images, tmp_path):
    tree2 = tmp_path / "tree2"
    subprocess.run(["cp", "-a", images["tree"], str(tree2)], check=True)
    (tree2 / "etc" / "hostname").write_text("changed\n")  # also changes hostname.hard
    os.chmod(tree2 / "usr" / "bin" / "tool", 0o755)
    os.unlink(tree2 / "etc" / "rel")
    os.symlink("sub", tree2 / "etc" / "rel")
    os.makedirs(tree2 / "opt" / "new")
    (tree2 / "opt" / "new" / "f").write_text("new")
    shutil.rmtree(tree2 / "etc" / "sub")
    os.chown(tree2 / "etc" / "os-release", 5, 5)
    os.setxattr(tree2 / "var" / "lib" / "dpkg" / "status", "user.x", b"1")
    img2 = tmp_path / "b.raw"
    mkfs(tree2, img2)
    a_hash, b_hash = file_sha256(images["raw"]), file_sha256(img2)
    doc = json.loads(nuwa("diff", images["raw"], str(img2), "--json").stdout)
    got = {e["path"] for e in doc["entries"]}
    assert got - {"/lost+found"} == host_tree_diff(images["tree"], str(tree2))
    by = {e["path"]: e for e in doc["entries"]}
    assert by["/usr/bin/tool"]["changes"] == ["mode"]
    assert by["/etc/rel"]["changes"] == ["target"]
    assert set(by["/etc/hostname"]["changes"]) == {"size", "content"}
    assert by["/etc/os-release"]["changes"] == ["uid", "gid"]
    assert by["/var/lib/dpkg/status"]["changes"] == ["xattrs"]
    assert by["/etc/sub/conf"]["status"] == "removed" and by["/opt/new/f"]["status"] == "added"
    assert by["/opt/new/f"]["b"]["sha256"] == hashlib.sha256(b"new").hexdigest()
    text = nuwa("diff", images["raw"], str(img2)).stdout.decode()
    assert "- - 0644       4000 /etc/sub/conf" in text and "+ d 0755" in text and "= - 0755" in text
    assert "/etc" not in nuwa("diff", images["raw"], str(img2), "--exclude", "/etc").stdout.decode()
    only = json.loads(nuwa("diff", images["raw"], str(img2), "--json", "--include", "/opt").stdout)
    assert {e["path"] for e in only["entries"]} == {"/opt", "/opt/new", "/opt/new/f"}
    times = json.loads(nuwa("diff", images["raw"], str(img2), "--json", "--times").stdout)
    assert {e["path"] for e in times["entries"]} >= got
    assert (file_sha256(images["raw"]), file_sha256(img2)) == (a_hash, b_hash)
