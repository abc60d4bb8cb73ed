"""``blkid`` and klibc's ``fstype`` as initramfs-tools' fsck hook asks them (issue 14), judged by
the real programs on a loop-attached disk; ``aa-enabled``/``aa-status``; ``install /dev/null``.

The real ``blkid`` and ``/usr/lib/klibc/bin/fstype`` run in a chroot of the loop-attached disk
(private ``/dev`` holding the loop device's nodes and udev's links, helpers/loopdisk.py); Nuwa
opens a copy of the disk as a file and answers from its own description of it, with the
guest's disk named as the loop device was. Same stdout and exit status.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

import nuwa
from helpers.kerneltree import kernel_tree
from helpers.loopdisk import BIOS_BOOT, LINUX_FS, attached, chroot_run, make_disk
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.patch.shjob import run_sh
from nuwa.script.commands import default_models
from nuwa.script.disklayout import STATE_KEY, DiskLayout, VolumeFacts
from nuwa.script.interp import run_script

ROOT_UUID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
MODELS = default_models()
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _questions(loop: str) -> list[str]:
    dev = f"{loop}p2"
    return [f"blkid -l -t UUID={ROOT_UUID} -o device", f"blkid -t UUID=\"{ROOT_UUID}\" -o device",
            "blkid -l -t LABEL=root -o device", "blkid -l -t UUID=00000000-0000-0000-0000-000000000000 -o device",
            f"blkid -o value -s TYPE {dev}", f"blkid -o value -s UUID {dev}", f"blkid -o value -s LABEL {dev}",
            f"blkid -U {ROOT_UUID}", "blkid -L root", f"/usr/lib/klibc/bin/fstype {dev}",
            f"blkid -o value -s UUID /dev/disk/by-uuid/{ROOT_UUID}"]


@pytest.mark.slow
@pytest.mark.judge
@pytest.mark.root
def test_blkid_and_fstype_answer_as_the_real_ones_on_the_images_disk(tmp_path):
    disk = str(tmp_path / "disk.raw")
    make_disk(disk, "gpt", [{"sectors": 2048, "type": BIOS_BOOT},
                            {"sectors": None, "type": LINUX_FS, "tree": kernel_tree(), "uuid": ROOT_UUID,
                             "label": "root"}], 1200)
    copy = str(tmp_path / "nuwa.raw")
    subprocess.run(["cp", "--sparse=always", disk, copy], check=True)
    real = {}
    with attached(disk, str(tmp_path), 2, 2) as (loop, mnt):
        for q in _questions(loop):
            r = chroot_run(mnt, ["/bin/sh", "-c", q], ENV)
            real[q] = (r.stdout, r.returncode)
    with nuwa.open(copy) as image:
        for q in _questions(loop):
            run = run_sh(image, q + "\n", dry_run=True, guest_disk=loop)
            assert run.result.deferred_commands == [] and not run.result.deferred_whole, q
            assert (run.stdout.decode(), run.status) == real[q], q
    assert real[f"/usr/lib/klibc/bin/fstype {loop}p2"][0].startswith("FSTYPE=ext4\nFSSIZE=")
    assert real["blkid -l -t UUID=00000000-0000-0000-0000-000000000000 -o device"][1] == 2


def _programs(fs, *paths: str) -> None:
    """The programs as files of the image (the shell looks them up in PATH; models answer)."""
    for p in paths:
        fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
        fs.write_bytes(p, b"\x7fELF", 0o755)


def _layout_fs():
    fs = Overlay(MemoryFS())
    fs.makedirs("/etc")
    _programs(fs, "/usr/sbin/blkid", "/usr/lib/klibc/bin/fstype")
    fs.write_bytes("/etc/fstab", f"UUID={ROOT_UUID} / ext4 defaults 0 1\n".encode())
    lay = DiskLayout(scheme="gpt", root=2, volumes=(
        VolumeFacts(1, part_type=BIOS_BOOT), VolumeFacts(2, "ext4", ROOT_UUID, "root", "abcd", LINUX_FS,
                                                         fs_bytes=1 << 30),
        VolumeFacts(3, "swap", "11111111-2222-3333-4444-555555555555")))
    return fs, {STATE_KEY: lay}


@pytest.mark.parametrize("cmd, why", [
    ("blkid", "only -o value"),
    ("blkid -p -n swap /dev/vda3", "-p"),
    ("blkid -o export /dev/vda2", "only -o value"),
    ("blkid -o value -s BLOCK_SIZE /dev/vda2", "only -o value"),
    ("blkid -o value -s LABEL /dev/vda3", "has no LABEL"),
    ("blkid -o value -s TYPE /dev/sdb1", "not a device of this image's disk"),
    ("/usr/lib/klibc/bin/fstype /dev/vda3", "only ext2/3/4"),
    ("/usr/lib/klibc/bin/fstype", "only one DEVICE"),
])
def test_forms_not_known_exactly_are_deferred_with_the_reason(cmd, why):
    fs, state = _layout_fs()
    r = run_script(fs, cmd + "\n", models=MODELS, model_state=state, env=dict(ENV))
    [d] = r.deferred_commands
    assert why in d.reason, d.reason


def test_answers_from_the_layout_under_the_guests_names():
    fs, state = _layout_fs()
    r = run_script(fs, f"blkid -l -t UUID={ROOT_UUID} -o device; /usr/lib/klibc/bin/fstype /dev/vda2; "
                       "blkid -o value -s TYPE /dev/vda3\n", models=MODELS, model_state=state, env=dict(ENV))
    assert r.deferred_commands == [] and r.status == 0
    assert r.stdout == f"/dev/vda2\nFSTYPE=ext4\nFSSIZE={1 << 30}\nswap\n".encode()
    # without a disk description (a bare filesystem model) nothing is answered
    r = run_script(fs, "blkid -L root\n", models=MODELS, env=dict(ENV))
    assert "no description of the image's disk" in r.deferred_commands[0].reason


def test_apparmor_probes_say_no_running_kernel_and_install_copies_dev_null():
    fs = Overlay(MemoryFS())
    fs.makedirs("/dev")
    fs.makedirs("/etc/apparmor.d/local")
    fs.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    _programs(fs, "/usr/sbin/aa-enabled", "/usr/sbin/aa-status", "/usr/bin/install")
    r = run_script(fs, "aa-enabled --quiet; echo $?; aa-status --enabled; echo $?\n"
                       "install --mode 644 /dev/null /etc/apparmor.d/local/x; echo $?\n", models=MODELS,
                   env=dict(ENV))
    assert r.deferred_commands == [] and r.stdout == b"1\n1\n0\n", (r.stdout, r.stderr)
    st = fs.lstat("/etc/apparmor.d/local/x")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644 and st.st_size == 0
    r = run_script(fs, "aa-status\n", models=MODELS, env=dict(ENV))
    assert "the output describes the running kernel" in r.deferred_commands[0].reason
