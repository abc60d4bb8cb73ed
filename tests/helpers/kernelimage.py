"""The cloud-style kernel-update image of issue 14's judges, made by the real tools, and the
pending kernel .debs from the host's apt sources (tests/patch/test_e2e_kernel_update.py,
benchmarks/bench_kernel.py).

:func:`make_image`: a copy of ``kernel_tree()`` with an ``/etc/fstab`` naming the root by UUID,
the serial console on the kernel command line (as Debian's cloud images have it) and a
test-only ``/sbin/init``, on a GPT disk (BIOS boot partition, ext4 root) made by ``sfdisk`` and
``mkfs.ext4 -d``; GRUB's boot code installed by the real ``grub-install`` and ``grub.cfg``
written by the real ``update-grub`` on the loop-attached disk, as an installed system has them.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import copy_tree, remove_tree
from helpers.kerneltree import kernel_tree
from helpers.loopdisk import BIOS_BOOT, LINUX_FS, attached, chroot_run, make_disk

ROOT_UUID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
PARTS = [{"sectors": 2048, "type": BIOS_BOOT},
         {"sectors": None, "type": LINUX_FS, "uuid": ROOT_UUID, "label": "root"}]


def _host(argv: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd)


def pending_kernel(tree: str, debdir: str) -> list[str]:
    """The pending kernel .debs from the host's apt sources, or a skip naming the assumption."""
    have = _host(["chroot", tree, "dpkg-query", "-W", "-f", "${Version}", "linux-image-cloud-amd64"]).stdout
    r = _host(["apt-get", "download", "linux-image-cloud-amd64"], cwd=debdir)
    if r.returncode != 0:
        pytest.skip(f"apt-get download linux-image-cloud-amd64 failed: {r.stderr.strip()[-200:]}")
    [meta] = [os.path.join(debdir, n) for n in os.listdir(debdir)]
    newer = _host(["dpkg-deb", "-f", meta, "Version"]).stdout.strip()
    if _host(["dpkg", "--compare-versions", newer, "gt", have]).returncode:
        pytest.skip(f"assumption not met: the host's apt sources offer no linux-image-cloud-amd64 newer "
                    f"than the image's {have} (no pending kernel update today)")
    dep = _host(["dpkg-deb", "-f", meta, "Depends"]).stdout.strip().split(",")[0].split()[0]
    r = _host(["apt-get", "download", dep], cwd=debdir)
    assert r.returncode == 0, r.stderr
    return sorted(os.path.join(debdir, n) for n in os.listdir(debdir))


#: test-only init of the minbase tree (it has none): reports the running kernel on the serial
#: console, then powers off (sysrq "o"); the boot judge reads it back
INIT = """#!/bin/sh
mount -t proc proc /proc 2>/dev/null
echo "NUWA-BOOTED-KERNEL $(uname -r)"
echo o > /proc/sysrq-trigger
sleep 60
"""


def make_image(tmp_path, source: str | None = None, init: bool = True, size_mb: int = 1600) -> str:
    """The cloud-style disk: a copy of the tree with a real fstab, the serial console on the
    kernel command line (as Debian's cloud images have it), GRUB's boot code installed by the
    real grub-install and grub.cfg by the real update-grub on the loop-attached disk.

    ``source`` is the tree to copy (``kernel_tree()`` when None: any tree with a kernel,
    initramfs-tools and grub-pc will do, e.g. bench_patch.py's server tree); ``init=False``
    leaves its ``/usr/sbin/init`` alone (a tree with systemd-sysv has its own, a symlink that
    must not be written through); ``size_mb`` is the disk's size."""
    os.makedirs(tmp_path, exist_ok=True)
    tree = str(tmp_path / "tree")
    copy_tree(source or kernel_tree(), tree)
    with open(os.path.join(tree, "etc/fstab"), "w") as f:
        f.write(f"# <file system> <mount point> <type> <options> <dump> <pass>\n"
                f"UUID={ROOT_UUID} / ext4 errors=remount-ro 0 1\n")
    with open(os.path.join(tree, "etc/default/grub.d/50-cloud.cfg"), "w") as f:
        f.write('GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"\n')
    if init:
        with open(os.path.join(tree, "usr/sbin/init"), "w") as f:
            f.write(INIT)
        os.chmod(os.path.join(tree, "usr/sbin/init"), 0o755)
    disk = str(tmp_path / "disk.raw")
    make_disk(disk, "gpt", [dict(p, tree=tree if p.get("uuid") else None) for p in PARTS], size_mb)
    remove_tree(tree)
    with attached(disk, str(tmp_path / "install"), 2, 2) as (loop, mnt):
        # GRUB 2.06 does not see the BIOS boot partition through the loop device here ("no BIOS
        # Boot Partition; embedding won't be possible"), so core.img is loaded by blocklist
        # (--force); a kernel update never moves /boot/grub/i386-pc/core.img
        r = chroot_run(mnt, ["grub-install", "--force", "--target=i386-pc", loop], ENV)
        assert r.returncode == 0, r.stderr
        r = chroot_run(mnt, ["update-grub"], ENV)
        assert r.returncode == 0, r.stderr
    return disk


