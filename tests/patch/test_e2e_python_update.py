"""End to end: the pending python3.11 update of ``kernel_tree()`` applied by Nuwa's dpkg with
the simulator equals real dpkg's result, and its byte-compilation (python3.11-minimal's and
python3.11's postinsts: ``python3.11 -E -S py_compile.py FILES``) is not deferred.

The newer .debs come from the host's apt sources (``apt-get download`` into the test's
directory); when the host offers nothing newer than the tree holds, the test is skipped.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers.kerneltree import kernel_tree
from helpers.treecopy import NO_KERNEL, hardlink_copy
from helpers.oracle import assert_same_dpkg_state, diff_snapshots, real_dpkg, snapshot
from judges import tool
from nuwa.deb.operations import Dpkg
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.patch.runner import SimulatorRunner

PACKAGES = ("libpython3.11-minimal", "python3.11-minimal", "libpython3.11-stdlib", "python3.11")
ALLOWED = {"/var/lib/dpkg/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/triggers/Lock", "/var/log/dpkg.log"}
SKIP = ("/proc", "/sys", "/dev")


def _installed(root: str, pkg: str) -> str:
    r = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
    return r.stdout


@pytest.mark.judge
@pytest.mark.slow
def test_python311_update_byte_compiles_offline_like_real_dpkg(tmp_path):
    tool("chroot")
    base = kernel_tree()
    debdir = tmp_path / "debs"
    debdir.mkdir()
    r = subprocess.run(["apt-get", "download", *PACKAGES], cwd=debdir, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"apt-get download failed: {r.stderr.strip()[-200:]}")
    debs = sorted(str(p) for p in debdir.glob("*.deb"))
    newer = subprocess.run(["dpkg-deb", "-f", debs[0], "Version"], capture_output=True, text=True).stdout.strip()
    if subprocess.run(["dpkg", "--compare-versions", newer, "gt", _installed(base, "python3.11")]).returncode:
        pytest.skip(f"the host offers no python3.11 newer than the tree's {_installed(base, 'python3.11')}")
    a, b = (hardlink_copy(base, str(tmp_path / "A"), NO_KERNEL + ("boot",), hard=False),
            hardlink_copy(base, str(tmp_path / "B"), NO_KERNEL + ("boot",), hard=False))
    r = real_dpkg(a, debs)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    ov = Overlay(HostDirFS(b, writable=True))
    runner = SimulatorRunner()
    d = Dpkg(ov, runner)
    d.install(debs)
    d.commit()
    ov.commit()

    counts = runner.counts()
    assert counts["deferred_whole"] == 0 and counts["deferred"] == 0, [
        (c.package, c.script_name, c.reason) for c in runner.results if c.deferred_whole]
    assert _installed(b, "python3.11") == newer
    diff = diff_snapshots(snapshot(a, skip=SKIP), snapshot(b, skip=SKIP))
    assert {p: v for p, v in diff.items() if p not in ALLOWED} == {}
    assert_same_dpkg_state(a, b)
    pycs = [p for p, _ in snapshot(b, skip=SKIP).items() if p.startswith("/usr/lib/python3.11/") and p.endswith(".pyc")]
    assert len(pycs) > 500
