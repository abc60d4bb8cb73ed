"""Nuwa's dpkg against real dpkg on a real outdated Debian 12 tree and its bookworm-security updates.

Copy A gets ``chroot A dpkg -i`` (policy-rc.d exits 101); copy B gets Nuwa's dpkg through
HostDirFS with a RecordingRunner (no maintainer script runs). The trees must be identical
except for what the skipped scripts and triggers make, listed in EXPLAINED; the status
paragraphs and every info/ file must be identical; ``dpkg --audit`` and ``dpkg-query -W`` in
a chroot of each tree print the same.
"""

import os
import shutil

import pytest

from judges import tool
from nuwa.deb.operations import Dpkg
from nuwa.deb.runner import RecordingRunner
from nuwa.fs.hostdir import HostDirFS
from oracle import chroot_query, diff_snapshots, dpkg_material, real_dpkg, snapshot, status_paragraphs

#: made by the maintainer scripts and triggers the recording runner does not run
EXPLAINED = {
    "/var/cache/ldconfig/aux-cache": "ldconfig (libc-bin trigger) writes its cache of scanned libraries",
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
SCRIPTLESS = ("liblzma5", "libpcre2-8-0", "libperl5.36", "libapt-pkg6.0", "perl-modules-5.36")


def _run(tmp_path, debs):
    tool("mmdebstrap")
    tool("chroot")
    base = dpkg_material.base_tree()
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    dpkg_material.copy_tree(base, a)
    dpkg_material.copy_tree(base, b)
    r = real_dpkg(a, debs)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    runner = RecordingRunner()
    d = Dpkg(HostDirFS(b, writable=True), runner)
    d.install(debs)
    d.commit()
    return a, b, d, runner


def _compare(a, b):
    diff = diff_snapshots(snapshot(a, skip=("/proc", "/sys", "/dev")), snapshot(b, skip=("/proc", "/sys", "/dev")))
    unexplained = {p: v for p, v in diff.items() if p not in EXPLAINED}
    assert unexplained == {}, unexplained
    assert status_paragraphs(a) == status_paragraphs(b)
    la = [ln[20:] for ln in open(os.path.join(a, "var/log/dpkg.log")).read().splitlines()]
    lb = [ln[20:] for ln in open(os.path.join(b, "var/log/dpkg.log")).read().splitlines()]
    assert la == lb
    for q in (("dpkg", "--audit"), ("dpkg-query", "-W"), ("dpkg-query", "-W", "-f=${Package} ${Status} ${Version}\n")):
        ra, rb = chroot_query(a, *q), chroot_query(b, *q)
        assert (ra.returncode, ra.stdout, ra.stderr) == (rb.returncode, rb.stdout, rb.stderr), q
    return diff


def _debs(names=None):
    debs = dpkg_material.deb_files()
    if names:
        debs = [d for d in debs if os.path.basename(d).split("_")[0] in names]
    if not debs:
        pytest.skip("no pending bookworm-security updates for the minbase tree today")
    return debs


@pytest.mark.slow
@pytest.mark.root
def test_scriptless_updates_identical(tmp_path):
    a, b, d, runner = _run(tmp_path, _debs(SCRIPTLESS))
    diff = _compare(a, b)
    assert set(diff) <= {"/var/cache/ldconfig/aux-cache", "/var/log/dpkg.log", "/var/lib/dpkg/lock",
                         "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/triggers/Lock"}, diff
    assert runner.lines() == ["libc-bin postinst triggered ldconfig"]
    shutil.rmtree(tmp_path)


@pytest.mark.slow
@pytest.mark.root
def test_all_security_updates_with_scripts_and_conffiles(tmp_path):
    a, b, d, runner = _run(tmp_path, _debs())
    _compare(a, b)
    # every upgraded package with scripts was called in dpkg's order: prerm, preinst, postrm, ..., postinst
    for name, _old, new in [(n, o, v) for act, n, o, v in d.report.actions]:
        calls = [c for c in runner.calls if c.package == name]
        if calls and calls[0].script_name == "prerm":
            assert calls[0].args == ["upgrade", new]
            assert calls[0].env["DPKG_MAINTSCRIPT_PACKAGE"] == name and calls[0].env["DPKG_MAINTSCRIPT_NAME"] == "prerm"
    assert any(p == "/etc/apt/apt.conf.d/01autoremove" for _, p, _ in d.report.conffiles)
    shutil.rmtree(tmp_path)
