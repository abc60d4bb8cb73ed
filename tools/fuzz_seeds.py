"""The fuzzer's seed inputs, made by the real tools, and the map of their structures.

``make_seeds(dir)`` builds, once per directory:

- ``root.ext4``: a 4 MiB ext4 (Debian 12 defaults: metadata_csum, extents, a journal, 1 KiB
  blocks so there are several groups) made by ``mkfs.ext4 -d`` from a small Debian-like tree:
  ``/etc/os-release``, a dpkg database (status, ``info/*.list``, ``*.md5sums``, ``*.conffiles``,
  ``triggers/File``), a directory of 300 entries, symlinks (fast and slow), a hard link, a file
  with extended attributes (``debugfs ea_set``), a deep directory chain;
- ``disk.gpt.raw`` / ``disk.mbr.raw``: that filesystem in partition 1 of a GPT / MBR disk
  (``sfdisk``); ``disk.qcow2``: the GPT disk converted by ``qemu-img`` (4 KiB clusters, so the
  L1/L2/refcount structures have many entries);
- ``good.deb``: a package with control, conffiles, triggers, md5sums, maintainer scripts and a
  data tree (built here with :mod:`tarfile` and Nuwa's ar writer, the same layout as
  ``dpkg-deb --build``).

``regions(path, kind)`` lists ``(name, offset, length, reseal)`` of every structure a mutation
may hit: the qcow2 header, L1/L2 tables and refcount table/blocks; the MBR and GPT header and
entries; the ext4 superblock, descriptors, every used inode (with its in-inode extents and
xattrs), directory blocks, extent-tree blocks, xattr blocks and the journal. ``reseal`` says
how to recompute the checksum covering the region after a mutation, so a mutation can get past
the checksum checks into the structure's meaning.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.deb.ar import build_archive  # noqa: E402

MiB = 1 << 20
FS_START = MiB  # partition 1 starts at 1 MiB on both disks
FS_SIZE = 4 * MiB

STATUS = """Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 10
Maintainer: Test <t@example.org>
Architecture: amd64
Version: 12.4
Conffiles:
 /etc/issue 0123456789abcdef0123456789abcdef
Description: Debian base system miscellaneous files

Package: fuzzpkg
Status: install ok installed
Priority: optional
Section: misc
Installed-Size: 1
Maintainer: Test <t@example.org>
Architecture: all
Version: 1.0
Depends: base-files (>= 12)
Conffiles:
 /etc/fuzzpkg.conf 5d41402abc4b2a76b9719d911017c592
Description: a package to upgrade
 long text
"""

SCRIPT = """#!/bin/sh
set -e
case "$1" in
  configure)
    if [ -n "$2" ] && dpkg --compare-versions "$2" lt 2.0; then
      echo "upgrading from $2" >/dev/null
    fi
    mkdir -p /var/lib/fuzzpkg
    printf '%s\\n' "x=${1:-none}" > /var/lib/fuzzpkg/state
    for f in a b c; do test -e "/etc/$f" || true; done
    ln -sf ../lib/fuzzpkg/state /var/cache-state 2>/dev/null || :
    ;;
  abort-upgrade|remove) exit 0 ;;
esac
#DEBHELPER#
exit 0
"""


def _tree(root: str) -> None:
    def put(path: str, data: bytes, mode: int = 0o644) -> None:
        p = os.path.join(root, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)

    put("etc/os-release", b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    put("etc/issue", b"Debian GNU/Linux 12 \\n \\l\n")
    put("etc/fuzzpkg.conf", b"hello")
    put("var/lib/dpkg/status", STATUS.encode())
    put("var/lib/dpkg/available", b"")
    put("var/lib/dpkg/info/format", b"1\n")
    put("var/lib/dpkg/info/base-files.list", b"/.\n/etc\n/etc/issue\n/etc/os-release\n")
    put("var/lib/dpkg/info/base-files.conffiles", b"/etc/issue\n")
    put("var/lib/dpkg/info/base-files.md5sums", b"0123456789abcdef0123456789abcdef  etc/os-release\n")
    put("var/lib/dpkg/info/fuzzpkg.list", b"/.\n/etc\n/etc/fuzzpkg.conf\n/usr\n/usr/share\n/usr/share/fuzzpkg\n")
    put("var/lib/dpkg/info/fuzzpkg.postinst", SCRIPT.encode(), 0o755)
    put("var/lib/dpkg/triggers/File", b"/usr/lib/x86_64-linux-gnu libc-bin\n")
    put("var/lib/dpkg/diversions", b"")
    put("var/lib/dpkg/statoverride", b"")
    os.makedirs(os.path.join(root, "var/lib/dpkg/updates"), exist_ok=True)
    put("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    put("etc/group", b"root:x:0:\n")
    put("usr/bin/tool", bytes(range(256)) * 40, 0o755)
    for i in range(300):
        put(f"usr/share/many/entry-{i:04d}-{'x' * (i % 40)}", b"%d\n" % i)
    deep = "/".join(f"d{i}" for i in range(12))
    put(f"srv/{deep}/leaf", b"leaf\n")
    os.symlink("../usr/bin/tool", os.path.join(root, "etc/fast-link"))
    os.symlink("/" + "long/" * 30 + "target", os.path.join(root, "etc/slow-link"))
    os.link(os.path.join(root, "usr/bin/tool"), os.path.join(root, "usr/bin/tool-hardlink"))
    os.makedirs(os.path.join(root, "root"), exist_ok=True)
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)


def _run(*args: str, env: dict | None = None) -> None:
    subprocess.run(args, check=True, capture_output=True, env={**os.environ, **(env or {})})


def tar_bytes(entries: list[tuple]) -> bytes:
    """A GNU tar of ``(name, kind, payload, mode)`` entries (kind: file, dir, symlink, hardlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for name, kind, val, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.uname = ti.gname = "root"
            ti.mode = mode
            ti.mtime = 1700000000
            if kind == "file":
                ti.size = len(val)
                tf.addfile(ti, io.BytesIO(val))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                ti.linkname = val
            tf.addfile(ti)
    return buf.getvalue()


CONTROL = ("Package: fuzzpkg\nVersion: 2.0\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
           "Depends: base-files (>= 12)\nPre-Depends: base-files\nProvides: fuzz-virtual\n"
           "Description: a package to upgrade\n long text\n")


def deb_parts() -> dict:
    """The members of ``good.deb`` as editable parts: control files and data entries."""
    control = {"control": CONTROL.encode(), "conffiles": b"/etc/fuzzpkg.conf\n",
               "triggers": b"interest-noawait /usr/share/fuzzpkg\nactivate-noawait ldconfig\n",
               "md5sums": b"5d41402abc4b2a76b9719d911017c592  etc/fuzzpkg.conf\n",
               "postinst": SCRIPT.encode(), "prerm": b"#!/bin/sh\nset -e\nexit 0\n"}
    data = [("./", "dir", None, 0o755), ("./etc/", "dir", None, 0o755),
            ("./etc/fuzzpkg.conf", "file", b"hello, new", 0o644), ("./usr/", "dir", None, 0o755),
            ("./usr/share/", "dir", None, 0o755), ("./usr/share/fuzzpkg/", "dir", None, 0o755),
            ("./usr/share/fuzzpkg/data", "file", b"data\n" * 50, 0o644),
            ("./usr/share/fuzzpkg/link", "symlink", "data", 0o777),
            ("./usr/share/fuzzpkg/hard", "hardlink", "./usr/share/fuzzpkg/data", 0o644)]
    return {"control": control, "data": data}


def build_deb(parts: dict, compress: str = "gz") -> bytes:
    """The .deb bytes of ``parts`` (as :func:`deb_parts` returns them)."""
    entries = [("./", "dir", None, 0o755)]
    for name, val in parts["control"].items():
        entries.append((f"./{name}", "file", val, 0o755 if name.endswith(("inst", "rm")) else 0o644))
    ctar = gzip.compress(tar_bytes(entries), mtime=0)
    dtar = tar_bytes(parts["data"])
    data = gzip.compress(dtar, mtime=0) if compress == "gz" else dtar
    return build_archive([("debian-binary", b"2.0\n"), ("control.tar.gz", ctar),
                          ("data.tar.gz" if compress == "gz" else "data.tar", data)])


#: the maintainer-script corpus of tools/build_script_corpus.py, when this machine has it
SCRIPT_CORPUS = "/var/tmp/nuwa-corpus/control"


def script_seeds(corpus: str = SCRIPT_CORPUS, limit: int = 3000) -> list[str]:
    """:data:`SCRIPT` plus up to ``limit`` real ``/bin/sh`` maintainer scripts of the corpus (if
    present; it is never committed): mutations of real scripts reach the command models with
    the arguments real packages pass them."""
    out = [SCRIPT]
    if not os.path.isdir(corpus):
        return out
    for pkg in sorted(os.listdir(corpus)):
        for name in ("preinst", "postinst", "prerm", "postrm"):
            path = os.path.join(corpus, pkg, name)
            try:
                with open(path, "rb") as f:
                    data = f.read(1 << 16)
            except OSError:
                continue
            if data.startswith((b"#!/bin/sh", b"#! /bin/sh")) and len(data) < 1 << 16:
                out.append(data.decode("utf-8", "surrogateescape"))
            if len(out) > limit:
                return out
    return out


def make_seeds(d: str) -> dict:
    """Build the seeds in ``d`` (kept if already there); returns {name: path}."""
    names = ("root.ext4", "disk.gpt.raw", "disk.mbr.raw", "disk.qcow2", "good.deb")
    out = {n: os.path.join(d, n) for n in names}
    if all(os.path.exists(p) for p in out.values()):
        return out
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "src")
    shutil.rmtree(src, ignore_errors=True)
    _tree(src)
    for root, dirs, files in os.walk(src):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (1700000000, 1700000000), follow_symlinks=False)
    fs = out["root.ext4"]
    env = {"E2FSPROGS_FAKE_TIME": "1700000000"}
    _run("mkfs.ext4", "-q", "-F", "-b", "1024", "-g", "1024", "-N", "512", "-J", "size=1", "-L", "root",
         "-U", "6f0b8f3a-1c55-4a8e-9b0e-2f6d2b8a9c01", "-E", "hash_seed=3a4e1c1b-8f00-4c6a-9d7e-0b1c2d3e4f50",
         "-d", src, fs, "4M", env=env)
    _run("debugfs", "-w", "-R", "ea_set /usr/bin/tool user.fuzz hello-attribute", fs, env=env)
    _run("debugfs", "-w", "-R", "ea_set /etc/os-release security.selinux " + "s" * 300, fs, env=env)
    shutil.rmtree(src)
    for name, label in (("disk.gpt.raw", "gpt"), ("disk.mbr.raw", "dos")):
        disk = out[name]
        with open(disk, "wb") as f:
            f.truncate(FS_START + FS_SIZE + MiB)
        table = f"label: {label}\n" + ("label-id: 6F0B8F3A-1C55-4A8E-9B0E-2F6D2B8A9C02\n" if label == "gpt" else
                                       "label-id: 0x12345678\n")
        table += f"start=2048, size={FS_SIZE // 512}, type={'L' if label == 'gpt' else '83'}\n"
        subprocess.run(["sfdisk", "-q", disk], input=table.encode(), check=True, capture_output=True)
        with open(fs, "rb") as src_f, open(disk, "r+b") as dst:
            dst.seek(FS_START)
            dst.write(src_f.read())
    _run("qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=4096", out["disk.gpt.raw"], out["disk.qcow2"])
    with open(out["good.deb"], "wb") as f:
        f.write(build_deb(deb_parts()))
    return out
