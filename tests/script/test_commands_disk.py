"""``df`` and ``stat %d/%i`` judged by the real programs on a loop-attached disk (issue 13).

The real coreutils run in a chroot of a bookworm minbase tree on a loop-attached disk
(helpers/loopdisk.py: ``/proc`` bound, as on a booted system); Nuwa opens a copy of the disk
as a file and answers from the ext4 superblock and the image's disk layout, the guest's disk
named as the loop device was. Same stdout and status, except for the one documented number:
the device number ``stat %d`` prints is the booted guest's for its root partition node (what
the guest's ``/dev`` shows, :mod:`nuwa.script.guestdev`), while the host numbers a loop
partition with its extended major (259): both sides are checked to print the number of their
own ``/dev`` node for the root partition.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import nuwa
from nuwa.fs.hostdir import HostDirFS
from debian_tree import bookworm_tree
from helpers.loopdisk import BIOS_BOOT, LINUX_FS, attached, chroot_run, make_disk
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.patch.shjob import run_sh
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

ROOT_UUID = "7a1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5c"
MODELS = default_models()
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

DF_CASES = ["df -P /", "df /", "df -k /var/lib/.", "df -h /", "df -H /", "df -i /", "df -T /", "df -PT /etc",
            "df --output=avail,pcent,source,target /", "df --output=size,used /usr", "df -B M /",
            "df -B 1 /", "df -P /nonexistent", "LC_ALL=C BLOCKSIZE= df --portability /var/lib/. | tail -n 1",
            # the block size from the environment (gnulib humblock; the first variable set wins, even empty)
            "POSIXLY_CORRECT=1 df /", "POSIXLY_CORRECT=1 df -P /", "BLOCKSIZE=4K df /",
            "DF_BLOCK_SIZE= BLOCK_SIZE=4K df /", "BLOCK_SIZE=hu df /", "BLOCK_SIZE=si df /var",
            "BLOCKSIZE=1kB df /", "BLOCKSIZE=m df /", "df -B 2k /", "BLOCK_SIZE=512 df -k /",
            "DF_BLOCK_SIZE=M BLOCKSIZE=1 df --output=size,avail /",
            "POSIXLY_CORRECT=1 BLOCKSIZE= df --portability /var/lib/. | tail -n 1"]

UDEV = ('if [ "$(stat -c %d/%i /)" = "$(stat -Lc %d/%i /proc/1/root 2>/dev/null)" ]; '
        'then echo booted; else echo chroot; fi')


@pytest.mark.slow
@pytest.mark.judge
@pytest.mark.root
def test_df_and_stat_answer_as_the_real_ones_on_the_images_disk(tmp_path):
    disk = str(tmp_path / "disk.raw")
    make_disk(disk, "gpt", [{"sectors": 2048, "type": BIOS_BOOT},
                            {"sectors": None, "type": LINUX_FS, "tree": bookworm_tree(), "uuid": ROOT_UUID,
                             "label": "root"}], 700)
    copy = str(tmp_path / "nuwa.raw")
    subprocess.run(["cp", "--sparse=always", disk, copy], check=True)
    real = {}
    questions = DF_CASES + [UDEV, "stat -c %i /; stat -c %i /etc/passwd /usr/bin/stat"]
    with attached(disk, str(tmp_path), 2, 2) as (loop, mnt):
        for q in questions:
            r = chroot_run(mnt, ["/bin/sh", "-c", q], ENV)
            real[q] = (r.stdout, r.stderr, r.returncode)
        root_dev = os.stat(mnt).st_dev
        real_node = os.stat(os.path.join(mnt, "dev", os.path.basename(loop) + "p2")).st_rdev
        real_d = chroot_run(mnt, ["stat", "-c", "%d %D", "/"], ENV).stdout
    # the real stat's %d is the device number of the root partition's node
    assert root_dev == real_node and real_d == f"{real_node} {real_node:x}\n"
    with nuwa.open(copy) as image:
        for q in questions:
            run = run_sh(image, q + "\n", dry_run=True, guest_disk=loop)
            assert run.result.deferred_commands == [] and not run.result.deferred_whole, q
            assert (run.stdout.decode(), run.stderr.decode(), run.status) == real[q], q
        run = run_sh(image, f"stat -c '%d %D' /; stat -c '%t %T' /dev/{os.path.basename(loop)}p2\n",
                     dry_run=True, guest_disk=loop)
        d, hexd, major, minor = run.stdout.decode().split()
        # the model's %d is the device number of the guest's node for the root partition
        assert int(d) == os.makedev(int(major, 16), int(minor, 16)) and hexd == f"{int(d):x}"
    assert real[UDEV][0] == "chroot\n"
    assert real["df -P /"][0].splitlines()[1].startswith(f"{loop}p2 ")


@pytest.mark.parametrize("cmd, why", [
    ("df", "every mount of the booted system"),
    ("df -a /", "filesystem selection"),
    ("df -B 1x /", "block size forms"),
    ("df --output=avail,bogus /", "--output"),
    ("BLOCKSIZE=\\'1K df /", "digit grouping"),
    ("BLOCK_SIZE=bogus df /", "block size forms"),
])
def test_df_forms_not_known_exactly_are_deferred(cmd, why):
    fs = Overlay(MemoryFS())
    fs.makedirs("/usr/bin")
    fs.write_bytes("/usr/bin/df", b"\x7fELF", 0o755)
    r = run_script(fs, cmd + "\n", models=MODELS, env=dict(ENV))
    [d] = r.deferred_commands
    assert why in d.reason, d.reason


def test_without_a_disk_description_df_defers_and_stat_d_is_the_models_number(tmp_path):
    fs = Overlay(MemoryFS())
    fs.makedirs("/usr/bin")
    fs.write_bytes("/usr/bin/df", b"\x7fELF", 0o755)
    fs.write_bytes("/usr/bin/stat", b"\x7fELF", 0o755)
    r = run_script(fs, "df -P /\nstat -c %d/%i / /usr\n", models=MODELS, env=dict(ENV))
    [d] = r.deferred_commands
    assert d.argv[0] == "df" and "an in-memory filesystem model has no real size" in d.reason
    # the documented stand-in: one number for the one filesystem the model holds
    assert r.stdout == f"0/{fs.stat('/').st_ino}\n0/{fs.stat('/usr').st_ino}\n".encode()
    # udev's test takes the chroot branch, as real dpkg in a chroot without /proc does
    r = run_script(fs, UDEV + "\n", models=MODELS, env=dict(ENV))
    assert r.deferred_commands == [] and r.stdout == b"chroot\n"
    # a host directory: the host's device, as stat in a chroot of it prints
    tree = HostDirFS(str(tmp_path), writable=False)
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/stat").write_bytes(b"\x7fELF")
    (tmp_path / "usr/bin/stat").chmod(0o755)
    r = run_script(tree, "stat -c %d /\n", models=MODELS, env=dict(ENV))
    assert r.stdout == f"{os.stat(tmp_path).st_dev}\n".encode()
