"""A small bootable Debian 12 disk image, made by the real tools and cached per day.

``mmdebstrap --mode=root --variant=minbase`` from the mirror in the machine's apt sources
(``debian_tree.debian_mirror``) with a kernel, initramfs-tools and systemd as init; then
``mkfs.ext4 -d`` into partition 1 of a GPT disk (``sfdisk``), converted to qcow2. A direct
kernel boot needs no boot loader: the test passes the tree's ``vmlinuz`` and ``initrd.img`` to
qemu (``root=/dev/vda1``).

The tree gets test-only additions by mmdebstrap's customize hook (nothing is changed after
the build): a host name, an fstab for the root, and an empty root password, so that the test
can log in on the serial console and power the machine off cleanly with ``poweroff``.

Everything lives under ``/var/tmp/nuwa-boot-YYYYMMDD/`` (one build per day and machine;
``flock`` so that parallel test workers build it once).
"""

from __future__ import annotations

import datetime
import fcntl
import glob
import os
import shutil
import subprocess

import pytest

from debian_tree import debian_mirror
from judges import tool

PACKAGES = ("linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "login", "debconf")
HOSTNAME = "nuwa-boot"
DISK_SIZE = 1536 << 20
PART_START = 1 << 20  # partition 1 at 1 MiB, like every partitioning tool

HOOK = f"""set -e
echo {HOSTNAME} > "$1/etc/hostname"
printf '127.0.0.1 localhost\\n127.0.1.1 {HOSTNAME}\\n' > "$1/etc/hosts"
echo '/dev/vda1 / ext4 rw,errors=remount-ro 0 1' > "$1/etc/fstab"
chroot "$1" passwd -d root >/dev/null
"""


def cache_dir() -> str:
    """The per-day cache directory (created)."""
    d = "/var/tmp/nuwa-boot-" + datetime.date.today().strftime("%Y%m%d")
    os.makedirs(d, exist_ok=True)
    return d


def _fail_or_skip(msg: str):
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def boot_tree() -> str:
    """The bootable tree (built once per day; root needed)."""
    if os.geteuid() != 0:
        pytest.skip("building a bootable tree with mmdebstrap --mode=root needs root")
    mmdebstrap = tool("mmdebstrap")
    base = cache_dir()
    path = os.path.join(base, "tree")
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(os.path.join(path, "etc/os-release")):
            tmp = path + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            r = subprocess.run([mmdebstrap, "--mode=root", "--variant=minbase", "--include=" + ",".join(PACKAGES),
                                "--customize-hook=" + HOOK, "bookworm", tmp, f"deb {debian_mirror()} bookworm main"],
                               capture_output=True, text=True, timeout=1200)
            if r.returncode != 0:
                _fail_or_skip(f"mmdebstrap failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-3:]}")
            os.rename(tmp, path)
    return path


def kernel_and_initrd(tree: str) -> tuple[str, str]:
    """The tree's newest ``/boot/vmlinuz-*`` and its ``initrd.img-*``."""
    kernels = sorted(glob.glob(os.path.join(tree, "boot/vmlinuz-*")))
    if not kernels:
        _fail_or_skip(f"no kernel in {tree}/boot")
    version = os.path.basename(kernels[-1])[len("vmlinuz-"):]
    initrd = os.path.join(tree, "boot", "initrd.img-" + version)
    if not os.path.isfile(initrd):
        _fail_or_skip(f"no initrd for {version} in {tree}/boot")
    return kernels[-1], initrd


def boot_image() -> str:
    """A qcow2 GPT disk whose partition 1 is the tree's ext4 root (built once per day)."""
    tree = boot_tree()
    base = cache_dir()
    out = os.path.join(base, "disk.qcow2")
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(out):
            raw = os.path.join(base, "disk.raw")
            with open(raw, "wb") as f:
                f.truncate(DISK_SIZE)
            layout = f"label: gpt\nstart={PART_START // 512}, type=linux, name=root\n"
            subprocess.run([tool("sfdisk"), "-q", raw], input=layout, text=True, check=True, capture_output=True)
            fs_kib = (DISK_SIZE - PART_START - (1 << 20)) >> 10  # the backup GPT lives in the last 33 sectors
            env = dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000")
            subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-L", "root", "-E", f"offset={PART_START}", "-d", tree,
                            raw, f"{fs_kib}k"], check=True, capture_output=True, env=env)
            subprocess.run([tool("qemu-img"), "convert", "-O", "qcow2", raw, out + ".tmp"], check=True,
                           capture_output=True)
            os.unlink(raw)
            os.rename(out + ".tmp", out)
    return out


if __name__ == "__main__":  # build the material ahead of a test run
    print(boot_image())
    print(*kernel_and_initrd(boot_tree()))
