"""Nuwa's dpkg against real dpkg on a real outdated Debian 12 tree and its bookworm-security updates.

Copy A gets ``chroot A dpkg -i`` (policy-rc.d exits 101); copy B gets Nuwa's dpkg through
HostDirFS with a RecordingRunner (no maintainer script runs). The trees must be identical
except for what the skipped scripts and triggers make, listed in EXPLAINED; the status
paragraphs and every info/ file must be identical; ``dpkg --audit`` and ``dpkg-query -W`` in
a chroot of each tree print the same.
"""

import os

import pytest

from debian_tree import copy_tree, remove_tree
from helpers.oracle import (assert_same_dpkg_state, diff_snapshots, dpkg_material, nuwa_dpkg_steps, real_dpkg,
                            real_dpkg_steps, snapshot)
from judges import tool
from nuwa.deb.archive import open_deb
from nuwa.deb.operations import Dpkg
from nuwa.deb.runner import RecordingRunner
from nuwa.fs.hostdir import HostDirFS

#: made by the maintainer scripts and triggers the recording runner does not run
EXPLAINED = {
    "/var/cache/ldconfig/aux-cache": "ldconfig (libc-bin trigger) writes its cache of scanned libraries, keyed by "
                                     "the running system's st_dev/inode/ctime (see caches/ldconfig.py)",
    "/var/cache/debconf/config.dat-old": "debconf, run by tzdata's config/postinst",
    "/var/cache/debconf/templates.dat-old": "debconf, run by tzdata's config/postinst",
    "/var/cache/debconf/config.dat": "debconf, run by tzdata's config/postinst",
    "/var/cache/debconf/templates.dat": "debconf, run by tzdata's config/postinst",
    "/etc/timezone": "tzdata postinst",
    "/etc/localtime": "tzdata postinst",
    "/var/lib/dpkg/lock": "real dpkg's lock file",
    "/var/lib/dpkg/lock-frontend": "real dpkg's lock file",
    "/var/lib/dpkg/triggers/Lock": "real dpkg's lock file",
    "/var/log/dpkg.log": "timestamps (compared without them below)",
    "/var/log/alternatives.log": "update-alternatives, run by maintainer scripts",
}
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")


def _run(tmp_path, debs=None, packages=None):
    """Copies A and B of the base tree: A gets real dpkg, B Nuwa's dpkg.

    With ``debs``, both get one ``dpkg -i debs`` (a set that needs no ordering). Without, both
    get the dpkg call sequence real apt plans for upgrading ``packages`` (default: every pending
    update, as ``apt-get dist-upgrade``), so the test holds whatever the archive's pending set
    is today (:func:`dpkg_material.apt_steps` states the assumptions it checks).
    """
    tool("mmdebstrap")
    tool("chroot")
    base = dpkg_material.base_tree()
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    copy_tree(base, a)
    copy_tree(base, b)
    runner = RecordingRunner()
    d = Dpkg(HostDirFS(b, writable=True), runner)
    if debs is not None:
        r = real_dpkg(a, debs)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        d.install(debs)
    else:
        steps = dpkg_material.apt_steps(base, packages)
        real_dpkg_steps(a, steps)
        nuwa_dpkg_steps(d, steps)
    d.commit()
    return a, b, d, runner


def _compare(a, b):
    diff = diff_snapshots(snapshot(a, skip=("/proc", "/sys", "/dev")), snapshot(b, skip=("/proc", "/sys", "/dev")))
    unexplained = {p: v for p, v in diff.items() if p not in EXPLAINED}
    assert unexplained == {}, unexplained
    assert_same_dpkg_state(a, b)
    return diff


def _debs():
    debs = dpkg_material.deb_files()
    if not debs:
        pytest.skip("no pending bookworm-security updates for the minbase tree today")
    return debs


def _control(deb: str) -> dict:
    return open_deb(deb).control_files


@pytest.mark.slow
@pytest.mark.root
def test_scriptless_updates_identical(tmp_path):
    # today's pending updates whose packages carry no maintainer script and whose upgrade, as apt
    # plans it, pulls in no package with scripts; applied in apt's order
    base = dpkg_material.base_tree()
    scriptless = {os.path.basename(p).split("_")[0] for p in _debs() if not set(MAINTAINER_SCRIPTS) & set(_control(p))}
    chosen = sorted(n for n in scriptless
                    if dpkg_material.steps_packages(dpkg_material.apt_steps(base, [n])) <= scriptless)
    if not chosen:
        pytest.skip(f"every script-less pending update ({sorted(scriptless)}) needs one with scripts today")
    a, b, d, runner = _run(tmp_path, packages=chosen)
    assert {n for _act, n, _o, _v in d.report.actions} == set(chosen)
    diff = _compare(a, b)
    assert set(diff) <= {"/var/cache/ldconfig/aux-cache", "/var/log/dpkg.log", "/var/lib/dpkg/lock",
                         "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/triggers/Lock"}, diff
    # no package script ran; only triggers of installed packages (libc-bin's ldconfig for libraries)
    assert all(" postinst triggered " in line for line in runner.lines()), runner.lines()
    remove_tree(str(tmp_path))


@pytest.mark.slow
@pytest.mark.root
def test_all_security_updates_with_scripts_and_conffiles(tmp_path):
    _debs()  # skips when nothing is pending today
    a, b, d, runner = _run(tmp_path)
    _compare(a, b)
    # every upgraded package with scripts was called in dpkg's order: prerm, preinst, postrm, ..., postinst
    for name, _old, new in [(n, o, v) for act, n, o, v in d.report.actions]:
        calls = [c for c in runner.calls if c.package == name]
        if calls and calls[0].script_name == "prerm":
            assert calls[0].args == ["upgrade", new]
            assert calls[0].env["DPKG_MAINTSCRIPT_PACKAGE"] == name and calls[0].env["DPKG_MAINTSCRIPT_NAME"] == "prerm"
    # every conffile of every upgraded package got a decision, as dpkg makes one for each
    decided = {(pkg, path) for pkg, path, _ in d.report.conffiles}
    for deb in _debs():
        name = os.path.basename(deb).split("_")[0]
        member = _control(deb).get("conffiles")
        for path in (member.data.decode().split() if member else []):
            if path.startswith("/"):
                assert (name, path) in decided, (name, path)
    remove_tree(str(tmp_path))
