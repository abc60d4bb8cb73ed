"""End to end on a foreign architecture: an arm64 bookworm minbase patched on this amd64 host.

The material is ``tools/dpkg_material.py``'s, for ``arm64``: the tree mmdebstrap builds with
``--arch=arm64`` from bookworm main only, and the .debs the host's apt (told
``APT::Architecture=arm64``) downloads to bring it up to date from bookworm-security. Copy A:
apt's own plan for the upgrade (``apt_steps``), call by call, with the tree's own arm64 dpkg in
a chroot under qemu-user (binfmt_misc), maintainer scripts and triggers included (the oracle).
Copy B: Nuwa's dpkg and shell simulator on this host, nothing emulated. The trees and package
databases must agree path by path except for what ``test_e2e_security_updates.ALLOWED`` names
(and the first-boot job's own files when something was deferred; the job then runs in a chroot
of B under emulation, as the booted arm64 VM would run it) -- and libc-bin's ``ldconfig``
trigger must now run offline, not be deferred: ``/etc/ld.so.cache`` is written by the model
byte for byte.
"""

import os
import shutil

import pytest

from helpers.oracle import dpkg_material
from judges import tool
from patch.test_e2e_security_updates import ALLOWED, JOB_FILES, _same_everywhere, explained, numbers

pytestmark = [pytest.mark.root, pytest.mark.judge]
ARCH = "arm64"


@pytest.fixture(scope="module")
def base():
    if os.geteuid() != 0:
        pytest.skip("chroot and mmdebstrap need root")
    tool("mmdebstrap")
    tool("chroot")
    if not os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"):
        msg = "no binfmt_misc handler for arm64 (install qemu-user-static, see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return dpkg_material.base_tree(arch=ARCH)


def test_arm64_security_updates_match_real_apt_under_emulation(base, tmp_path):
    debs = dpkg_material.deb_files(arch=ARCH)
    if not debs:
        pytest.skip("no pending bookworm-security updates for the arm64 minbase tree today")
    steps = dpkg_material.apt_steps(base, arch=ARCH)
    assert all(d.endswith(("_arm64.deb", "_all.deb")) for d in debs)
    d, runner, diff = _same_everywhere(base, tmp_path, steps=steps)
    n = numbers(debs, d, runner, diff)
    print(f"\nE2E security updates ({ARCH} minbase tree on an amd64 host):", n)
    for line in runner.lines():
        print("   ", line)
    assert n["scripts"] == len(runner.results) > 0
    assert all(explained(p, {**ALLOWED, **JOB_FILES}) for p in diff), sorted(diff)
    # the ldconfig trigger ran offline: nothing about ldconfig in the first-boot job
    held = [str(e) for e in (runner.job.entries if runner.job else [])]
    assert not [e for e in held if "ldconfig" in e], held
    assert not [ln for ln in runner.lines() if "ldconfig" in ln and "defer" in ln.lower()]
    shutil.rmtree(tmp_path, ignore_errors=True)
