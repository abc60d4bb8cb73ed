"""The judge for GRUB offline: real ``update-grub`` on a loop-attached disk vs Nuwa's on a copy.

One disk is built by the real tools (``sfdisk``, ``mkfs.ext4 -d``) from the shared kernel tree
(bookworm with grub-pc, a kernel and its initramfs). A sparse copy of it is kept for Nuwa; the
original is attached with ``losetup -P`` and ``update-grub`` runs in a chroot of it (private
``/dev`` with the loop device's nodes, ``/proc`` and ``/sys`` bound; helpers/loopdisk.py).
Nuwa opens the copy as an image file and interprets ``update-grub`` (``grub-mkconfig`` and
``/etc/grub.d/*``) in the simulator, ``grub-probe`` answering from the image's partition table
and filesystems, with the guest's disk named as the loop device was (so the device-dependent
answers -- ``root=``, hints -- are the real ones for that name). ``/boot/grub/grub.cfg`` must
be byte-identical, with the same mode, the same messages, and nothing deferred; the image Nuwa
wrote is re-opened to read it back.
"""

from __future__ import annotations

import os
import stat
import shutil
import subprocess

import pytest

import nuwa
from debian_tree import link_tree
from helpers.kerneltree import kernel_tree
from helpers.loopdisk import BIOS_BOOT, LINUX_FS, attached, chroot_run, make_disk
from judges import qemu_img_check
from nuwa.patch.shjob import SH_ENVIRONMENT, run_sh

ROOT_UUID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
BOOT_UUID = "b0070000-1111-4222-8333-444455556666"

GPT = ("gpt", [{"sectors": 2048, "type": BIOS_BOOT},
               {"sectors": None, "type": LINUX_FS, "tree": True, "uuid": ROOT_UUID, "label": "root"}], 2)
MBR = ("dos", [{"sectors": None, "type": "83", "bootable": True, "tree": True, "uuid": ROOT_UUID, "label": ""}], 1)

#: name -> ((sfdisk label, partitions, root partition number), shell run before update-grub, in both)
CASES = {
    "gpt": (GPT, ""),
    "mbr": (MBR, ""),
    # the kernel named by device (root=/dev/loopNpM): the guest's disk name decides the line
    "gpt-no-uuid": (GPT, "echo GRUB_DISABLE_LINUX_UUID=true >> /etc/default/grub\n"
                         "printf 'GRUB_TIMEOUT=1\\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\\n' "
                         "> /etc/default/grub.d/50-test.cfg\n"),
}

ENV = dict(SH_ENVIRONMENT, LANG="C.UTF-8")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_update_grub_equals_real(tmp_path, name):
    (label, parts, root), prepare = CASES[name]
    tree = kernel_tree()  # mkfs.ext4 -d only reads it: the cache stays unchanged
    parts = [dict(p, tree=tree if p.get("tree") else None) for p in parts]
    disk = str(tmp_path / "disk.raw")
    make_disk(disk, label, parts, 1200)
    copy = str(tmp_path / "nuwa.raw")
    subprocess.run(["cp", "--sparse=always", disk, copy], check=True)

    with attached(disk, str(tmp_path), len(parts), root) as (loop, mnt):
        real = chroot_run(mnt, ["/bin/sh", "-c", prepare + "update-grub"], ENV)
        assert real.returncode == 0, real.stderr
        cfg = os.path.join(mnt, "boot/grub/grub.cfg")
        with open(cfg, "rb") as f:
            real_cfg = f.read()
        real_mode = stat.S_IMODE(os.lstat(cfg).st_mode)

    out = str(tmp_path / "out.qcow2")
    with nuwa.open(copy) as image:
        run = run_sh(image, f"export LANG=C.UTF-8\n{prepare}update-grub\n", output=out, guest_disk=loop)
    assert not run.result.deferred_whole, run.result.reason
    assert run.result.deferred_commands == []
    assert run.status == 0, run.stderr
    assert run.stdout.decode() == real.stdout
    assert run.stderr.decode() == real.stderr
    qemu_img_check(out)
    with nuwa.open(out) as image:  # re-opened: what was written, not what was meant
        fs = image.root()
        ours = fs.read_bytes("/boot/grub/grub.cfg")
        ours_mode = stat.S_IMODE(fs.lstat("/boot/grub/grub.cfg").st_mode)
        assert not fs.exists("/boot/grub/grub.cfg.new")
    # the device-dependent line was exercised: udev's by-uuid link seen by both, or the device
    want = f"root={loop}p{root}" if "no-uuid" in name else f"root=UUID={ROOT_UUID}"
    assert want.encode() in real_cfg
    assert ours == real_cfg
    assert ours_mode == real_mode


@pytest.mark.slow
def test_boot_on_its_own_partition_defers_update_grub_whole(tmp_path):
    """Nuwa opens only the root filesystem: with /boot on its own partition the kernels are not
    visible, so update-grub must not run on the empty mount point: it goes to first boot whole,
    saying why. Questions about the /boot *device* are still answered."""
    tree = link_tree(kernel_tree(), str(tmp_path / "tree"))  # replace files, never write them
    boot = str(tmp_path / "boot")  # /boot moves to its own partition (copied: the tree may be a mount)
    subprocess.run(["cp", "-a", os.path.join(tree, "boot"), boot], check=True)
    shutil.rmtree(os.path.join(tree, "boot"))
    os.mkdir(os.path.join(tree, "boot"))
    fstab = os.path.join(tree, "etc/fstab")
    if os.path.lexists(fstab):
        os.unlink(fstab)
    with open(fstab, "w") as f:
        f.write(f"UUID={ROOT_UUID} / ext4 errors=remount-ro 0 1\nUUID={BOOT_UUID} /boot ext4 defaults 0 2\n")
    disk = str(tmp_path / "disk.raw")
    make_disk(disk, "gpt", [{"sectors": 2048, "type": BIOS_BOOT},
                            {"sectors": 200 << 11, "type": LINUX_FS, "tree": boot, "uuid": BOOT_UUID, "label": "boot"},
                            {"sectors": None, "type": LINUX_FS, "tree": tree, "uuid": ROOT_UUID, "label": "root"}],
              1200)
    with nuwa.open(disk) as image:
        run = run_sh(image, "grub-probe -d /dev/vda2 -t fs_uuid\ngrub-probe -t fs_label -d /dev/vda3\n",
                     dry_run=True)
        assert run.stdout == f"{BOOT_UUID}\nroot\n".encode() and run.status == 0
        run = run_sh(image, "update-grub\n", dry_run=True)
    # the whole update-grub call is deferred (its effects undone), with the reason
    [d] = run.result.deferred_commands
    assert d.argv == ["update-grub"]
    assert "/boot is on /boot (UUID=" in d.reason and "which Nuwa does not open" in d.reason, d.reason
    assert [c.path for c in run.changes if c.path.startswith("/boot")] == []
