"""initramfs-tools offline: the image's mkinitramfs / update-initramfs interpreted, judged by the
real ones.

The real programs run in a chroot of a hard-linked copy of the kernel tree (the directories
they write into detached first, so the shared cache is never written); Nuwa runs the same
scripts in the simulator on an overlay of the tree. Both archives are unpacked by the real
``unmkinitramfs`` (in the chroot) and compared member by member: path, type, mode, owner,
size, content, symlink target and hard-link groups (cpio timestamps aside: the real run
stamps the files it creates with the clock).

The build needs ``modprobe --show-depends``, ``modinfo`` and ``depmod`` (issue 14's kmod
models, built on another branch); until they are in the model set the end-to-end cases are
skipped with that reason. The guards (``MODULES=dep``, dracut) are tested regardless.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from debian_tree import link_tree
from helpers.initrdjudge import members
from helpers.kerneltree import kernel_tree, kernel_versions
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()
PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
needs_kmod = pytest.mark.skipif("depmod" not in MODELS, reason="needs the kmod models")
slow_judge = [pytest.mark.slow, pytest.mark.judge, pytest.mark.root]

#: directories the real programs write into: detached from the cache before a real run
WRITTEN = ("boot", "etc/initramfs-tools", "tmp")


def _real_tree(tmp_path) -> str:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    base = kernel_tree()
    root = link_tree(base, str(tmp_path / "real"))
    for rel in WRITTEN:
        if os.path.isdir(os.path.join(base, rel)):
            shutil.rmtree(os.path.join(root, rel))
            subprocess.run(["cp", "-a", os.path.join(base, rel), os.path.join(root, rel)], check=True)
    return root


def _nuwa(setup: list[tuple[str, bytes | None]]):
    """An overlay of the cached tree (never written) with ``setup`` applied (None: remove)."""
    fs = Overlay(HostDirFS(kernel_tree()))
    for path, data in setup:
        if data is None:
            if fs.lexists(path):
                fs.unlink(path)
        else:
            fs.write_bytes(path, data, 0o755 if "/hooks/" in path else 0o644)
    return fs


def _apply_real(root: str, setup: list[tuple[str, bytes | None]]) -> None:
    for path, data in setup:
        p = root + path
        if data is None:
            if os.path.lexists(p):
                os.unlink(p)
        else:
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, 0o755 if "/hooks/" in path else 0o644)


def _run_real(root: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", root, *argv], capture_output=True, env=PATH)


def _run_nuwa(fs, command: str):
    return run_script(fs, command, [], models=MODELS, budget=5_000_000, env=dict(PATH))


def compare_builds(tmp_path, setup, real_argv, real_out, nuwa_command, out) -> None:
    """Build with the real program and with Nuwa from the same configuration; compare."""
    root = _real_tree(tmp_path)
    _apply_real(root, setup)
    r = _run_real(root, real_argv)
    assert r.returncode == 0, r.stderr
    fs = _nuwa(setup)
    res = _run_nuwa(fs, nuwa_command)
    assert not res.deferred_whole and not res.deferred_commands, (res.reason, [d.reason for d in res.deferred_commands])
    assert res.status == 0, res.stderr
    assert not any(n.startswith("mkinitramfs") for n in fs.listdir("/var/tmp")), "temporary files left behind"
    with open(root + "/tmp/nuwa.img", "wb") as f:
        f.write(fs.read_bytes(out))
    want, got = members(root, real_out, "real"), members(root, "/tmp/nuwa.img", "nuwa")
    missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    differ = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
    assert (missing, extra, differ) == ([], [], []), \
        (missing[:5], extra[:5], [(k, want[k], got[k]) for k in differ[:5]])
    assert len(want) > 50


def _version() -> str:
    return kernel_versions(kernel_tree())[-1]


CONF = "/etc/initramfs-tools/conf.d/nuwa-test"


@needs_kmod
@pytest.mark.parametrize("conf", [None, b"COMPRESS=gzip\n", b"COMPRESS=xz\n", b"MODULES=list\n"],
                         ids=["zstd-most", "gzip", "xz", "modules-list"])
def test_mkinitramfs_builds_the_archive_the_real_one_builds(tmp_path, conf):
    setup = []
    if conf is not None:
        setup.append((CONF, conf))
    if conf == b"MODULES=list\n":
        setup.append(("/etc/initramfs-tools/modules", b"# listed\nvirtio_blk\next4\nvirtio_net\n"))
    v = _version()
    compare_builds(tmp_path, setup, ["mkinitramfs", "-o", "/tmp/real.img", v], "/tmp/real.img",
                   f"mkinitramfs -o /tmp/out.img {v}", "/tmp/out.img")


@needs_kmod
@pytest.mark.parametrize("how", ["update-initramfs", "kernel-postinst-hook", "run-parts"])
def test_update_initramfs_create_and_the_kernel_hook_build_the_boot_image(tmp_path, how):
    v = _version()
    # a new kernel has no initramfs yet: remove the one the tree was built with
    setup = [(f"/boot/initrd.img-{v}", None)]
    argv = {"update-initramfs": ["update-initramfs", "-c", "-k", v],
            "kernel-postinst-hook": ["/etc/kernel/postinst.d/initramfs-tools", v, f"/boot/vmlinuz-{v}"],
            # what the kernel package's postinst runs (linux-image-*.postinst)
            "run-parts": ["run-parts", "--report", "--exit-on-error", f"--arg={v}", f"--arg=/boot/vmlinuz-{v}",
                          "/etc/kernel/postinst.d"]}[how]
    root = _real_tree(tmp_path)
    _apply_real(root, setup)
    r = _run_real(root, argv)
    assert r.returncode == 0, r.stderr
    shutil.copy(root + f"/boot/initrd.img-{v}", root + "/tmp/real.img")
    fs = _nuwa(setup)
    res = _run_nuwa(fs, " ".join(argv))
    assert not res.deferred_whole and not res.deferred_commands, (res.reason, [d.reason for d in res.deferred_commands])
    image = fs.read_bytes(f"/boot/initrd.img-{v}")
    with open(root + "/tmp/nuwa.img", "wb") as f:
        f.write(image)
    assert members(root, "/tmp/real.img", "real") == members(root, "/tmp/nuwa.img", "nuwa")


@needs_kmod
def test_a_hook_calling_a_program_without_a_model_defers_the_whole_build(tmp_path):
    v = _version()
    hook = b"#!/bin/sh\n[ \"$1\" = prereqs ] && exit 0\nmkdir -p \"$DESTDIR/etc/x\"\nfrobnicate --into \"$DESTDIR\"\n"
    fs = _nuwa([(f"/boot/initrd.img-{v}", None), ("/etc/initramfs-tools/hooks/frob", hook),
                ("/usr/bin/frobnicate", b"\x7fELF\x02\x01\x01")])  # a program of the image, no model
    fs.chmod("/usr/bin/frobnicate", 0o755)
    res = _run_nuwa(fs, f"update-initramfs -c -k {v}")
    reasons = [d.reason for d in res.deferred_commands] + [res.reason]
    assert any("frobnicate" in r for r in reasons), reasons
    assert [d.argv[0] for d in res.deferred_commands] == ["update-initramfs"]
    # nothing of the build is left: no image, no checksum, no temporary tree
    assert not fs.lexists(f"/boot/initrd.img-{v}")
    assert not any(n.startswith("mkinitramfs") for n in fs.listdir("/var/tmp"))


def test_modules_dep_is_deferred_before_anything_is_built():
    if os.geteuid() != 0:
        pytest.skip("the kernel tree is built with mmdebstrap as root")
    v = _version()
    fs = _nuwa([(CONF, b"MODULES=dep\n"), (f"/boot/initrd.img-{v}", None)])
    res = _run_nuwa(fs, f"update-initramfs -c -k {v}")
    assert [d.argv[0] for d in res.deferred_commands] == ["update-initramfs"]
    assert "MODULES=dep" in res.deferred_commands[0].reason
    assert not fs.lexists(f"/boot/initrd.img-{v}")
    assert not any(n.startswith("mkinitramfs") for n in fs.listdir("/var/tmp"))
    # MODULES=dep in initramfs.conf itself, and mkinitramfs called directly
    fs = _nuwa([("/etc/initramfs-tools/initramfs.conf", b"MODULES=dep\nCOMPRESS=zstd\n")])
    res = _run_nuwa(fs, f"mkinitramfs -o /tmp/x.img {v}")
    assert [d.argv[0] for d in res.deferred_commands] == ["mkinitramfs"]
    assert not fs.lexists("/tmp/x.img")


def test_dracut_images_are_identified_and_deferred():
    fs = Overlay(MemoryFS())
    fs.makedirs("/usr/bin")
    fs.makedirs("/etc/kernel/postinst.d")
    fs.write_bytes("/usr/bin/dracut", b"#!/bin/bash\necho built\n", 0o755)
    fs.write_bytes("/usr/bin/sh", b"\x7fELF", 0o755)
    fs.write_bytes("/etc/kernel/postinst.d/dracut",
                   b"#!/bin/sh\nset -e\ndracut -q --force /boot/initrd.img-$1 $1\necho done\n", 0o755)
    res = run_script(fs, "/etc/kernel/postinst.d/dracut 6.1.0-9-amd64\n", [], models=MODELS)
    assert [d.argv[0] for d in res.deferred_commands] == ["/etc/kernel/postinst.d/dracut"]
    assert "dracut" in res.deferred_commands[0].reason and "does not simulate" in res.deferred_commands[0].reason


for _name in ("test_mkinitramfs_builds_the_archive_the_real_one_builds",
              "test_update_initramfs_create_and_the_kernel_hook_build_the_boot_image",
              "test_a_hook_calling_a_program_without_a_model_defers_the_whole_build",
              "test_modules_dep_is_deferred_before_anything_is_built"):
    for _m in slow_judge:
        globals()[_name] = _m(globals()[_name])
