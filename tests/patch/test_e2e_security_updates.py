"""End to end: Nuwa's dpkg with the shell simulator against real dpkg, on real security updates.

An outdated bookworm minbase tree (``tools/dpkg_material.py``: mmdebstrap from the main suite
only) and the .debs the host's apt-get downloads to dist-upgrade it from bookworm-security.
Copy A: ``chroot A dpkg -i`` with ``/usr/sbin/policy-rc.d`` exiting 101 (the oracle). Copy B:
Nuwa's dpkg with :class:`nuwa.patch.runner.SimulatorRunner` on ``Overlay(HostDirFS(B))``,
committed; then, if anything was deferred, the first-boot job run as the boot would run it
(``/bin/sh /var/lib/nuwa/firstboot/run`` in a chroot of B). The two trees are compared path by
path (type, mode, owner, size, sha256, link target, xattrs), with the package databases, the
dpkg.log lines (without their time stamps) and ``dpkg --audit``/``dpkg-query -W`` run in each.
The only differences allowed are in ALLOWED (and JOB_FILES when a job ran), each with its
reason; the measured numbers are printed (``pytest -s``).

Variants: a small synthetic package set (fast: ldconfig trigger, conffiles with a local change,
``dpkg-maintscript-helper rm_conffile``, ``useradd``), and the same security updates applied to
``testimages/default.qcow2``'s root through ``nuwa.open(..., writable=True)`` on a new qcow2
overlay, judged by ``qemu-img check``, ``e2fsck -fn``, debugfs read-back, and real dpkg on the
tree debugfs extracts.
"""

import hashlib
import os
import shutil
import subprocess

import pytest

from debian_tree import copy_tree
from helpers.debtools import build_deb
from helpers.hashing import file_sha256
from helpers.images import root_partition
from helpers.oracle import (assert_same_dpkg_state, chroot_query, diff_snapshots, dpkg_material, log_lines,
                            nuwa_dpkg_steps, real_dpkg, real_dpkg_steps, snapshot, status_paragraphs)
from helpers.paths import DEFAULT_IMAGE
from judges import debugfs, e2fsck_clean, qemu_img_check, tool

from nuwa.deb.operations import Dpkg
from nuwa.patch.install import install_debs
from nuwa.patch.runner import SimulatorRunner
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay

pytestmark = pytest.mark.root

#: the only differences between real dpkg's tree and Nuwa's, and why
ALLOWED = {
    "/var/cache/ldconfig/aux-cache": "ldconfig's optional cache of the files it scanned, keyed by st_dev, inode, "
                                     "ctime and size as the running system sees them (st_dev is the host's device "
                                     "number here, an unknown one on the booted VM): no offline writer can match it "
                                     "(nuwa/script/commands/caches/ldconfig.py); the model writes /etc/ld.so.cache "
                                     "byte for byte, and ldconfig ignores unmatched entries on its next run",
    "/var/log/dpkg.log": "time stamps only: the lines are compared without them",
    "/var/log/alternatives.log": "time stamps only (update-alternatives run by maintainer scripts): the lines "
                                 "are compared without them",
}
#: what a first-boot job leaves after it ran (docs/firstboot.md)
JOB_FILES = {
    "/var/lib/nuwa": "the job directory (renamed firstboot.done.<time>) and firstboot.last",
    "/var/log/nuwa-firstboot.log": "the job's log",
    "/etc/systemd/system/nuwa-firstboot.service": "the unit stays, inert, after the job ran",
    "/etc/init.d/nuwa-firstboot": "the init script stays, inert, after the job ran",
}
SKIP = ("/proc", "/sys", "/dev")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root"}


@pytest.fixture(scope="module")
def base():
    if os.geteuid() != 0:
        pytest.skip("chroot and mmdebstrap need root")
    tool("mmdebstrap")
    tool("chroot")
    return dpkg_material.base_tree()


def apply_nuwa(root: str, debs: list[str] | None = None, steps=None):
    """Nuwa's dpkg with the simulator on an overlay of ``root``, committed: ``dpkg -i debs``,
    or apt's dpkg call sequence ``steps`` (:func:`dpkg_material.apt_steps`)."""
    ov = Overlay(HostDirFS(root, writable=True))
    if steps is None:
        applied = install_debs(ov, debs)
        d, runner = applied.dpkg, applied.runner
    else:
        d, runner = nuwa_steps(ov, steps)
    ov.commit()
    return d, runner


def nuwa_steps(fs, steps):
    """apt's dpkg calls with Nuwa's dpkg and one simulator runner on ``fs``, then the commit."""
    runner = SimulatorRunner()
    d = Dpkg(fs, runner)
    nuwa_dpkg_steps(d, steps)
    d.commit()
    return d, runner


def run_job(root: str) -> bool:
    """Run the first-boot job as the boot would (in a chroot); False when there is none."""
    if not os.path.exists(os.path.join(root, "var/lib/nuwa/firstboot/job")):
        return False
    # as a boot runs it: no terminal, nothing on stdin, bounded
    r = subprocess.run(["chroot", root, "/bin/sh", "/var/lib/nuwa/firstboot/run"], capture_output=True, text=True,
                       env=ENV, stdin=subprocess.DEVNULL, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return True


def explained(path: str, allowed) -> bool:
    """``path`` is one of ``allowed`` or lies below one of them."""
    return any(path == k or path.startswith(k + "/") for k in allowed)


def compare(a: str, b: str, job_ran: bool) -> dict:
    """Assert the two trees and databases agree except for ALLOWED (and JOB_FILES); return the diff."""
    allowed = dict(ALLOWED, **(JOB_FILES if job_ran else {}))
    diff = diff_snapshots(snapshot(a, skip=SKIP), snapshot(b, skip=SKIP))
    unexplained = {p: v for p, v in diff.items()
                   if not explained(p, allowed)}
    assert unexplained == {}
    assert_same_dpkg_state(a, b)
    return diff


def numbers(debs, d, runner, diff) -> dict:
    """What the run did, for the report."""
    c = runner.counts()
    return {"packages": len(debs), "scripts": c["scripts"], "scripts deferred whole": c["deferred_whole"],
            "commands simulated": c["simulated"], "dropped": c["dropped"], "deferred": c["deferred"],
            "journal records": d.db.journal.records, "status checkpoints": d.db.journal.checkpoints,
            "differing paths": sorted(diff)}


def _same_everywhere(base_dir, tmp_path, debs=None, setup=None, steps=None):
    """Real dpkg on copy A, Nuwa on copy B: ``dpkg -i debs``, or apt's dpkg calls ``steps``."""
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    copy_tree(base_dir, a)
    if setup:
        setup(a)
    copy_tree(a, b)
    if steps is None:
        r = real_dpkg(a, debs)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    else:
        real_dpkg_steps(a, steps)
    d, runner = apply_nuwa(b, debs, steps)
    job_ran = run_job(b)
    # what was deferred is exactly what the job held
    assert job_ran == bool(runner.job and runner.job.entries)
    diff = compare(a, b, job_ran)
    return d, runner, diff


@pytest.mark.slow
def test_real_security_updates_match_real_dpkg(base, tmp_path):
    debs = dpkg_material.deb_files()
    if not debs:
        pytest.skip("no pending bookworm-security updates for the minbase tree today")
    # whatever is pending today, applied as apt would: apt's own plan, call by call
    d, runner, diff = _same_everywhere(base, tmp_path, steps=dpkg_material.apt_steps(base))
    n = numbers(debs, d, runner, diff)
    print("\nE2E security updates (minbase tree):", n)
    for line in runner.lines():
        print("   ", line)
    # every script dpkg would run was run, in dpkg's order
    assert n["scripts"] == len(runner.results) > 0
    assert all(explained(p, {**ALLOWED, **JOB_FILES}) for p in diff), sorted(diff)
    shutil.rmtree(tmp_path, ignore_errors=True)


# ---- a small synthetic set (fast) ------------------------------------------------------------

CONF_MAINTSCRIPT = """#!/bin/sh
set -e
dpkg-maintscript-helper rm_conffile /etc/e2e/old.conf 2.0~ -- "$@"
"""
CONF_POSTINST = """#!/bin/sh
set -e
dpkg-maintscript-helper rm_conffile /etc/e2e/old.conf 2.0~ -- "$@"
if [ "$1" = configure ]; then
    getent passwd e2e >/dev/null || useradd --system --home-dir /var/lib/e2e --no-create-home e2e
    mkdir -p /var/lib/e2e
    chown e2e /var/lib/e2e
    if dpkg --compare-versions "$2" lt 2.0; then
        echo "migrated from $2" > /var/lib/e2e/migrated
    fi
fi
"""


def _synthetic(out):
    def conf(v, files, conffiles, scripts=None):
        return build_deb(out, "e2e-conf", v, files, conffiles=conffiles, scripts=scripts,
                         extra="Priority: optional\nSection: admin\n")

    def lib(v):
        return build_deb(out, "e2e-lib", v, {"/usr/lib/e2e/data": v.encode()}, triggers="activate-noawait ldconfig\n",
                         extra="Priority: optional\nSection: libs\n")

    old = [conf("1.0", {"/etc/e2e/main.conf": b"main 1\n", "/etc/e2e/local.conf": b"local 1\n",
                        "/etc/e2e/old.conf": b"old\n"},
                ("/etc/e2e/main.conf", "/etc/e2e/local.conf", "/etc/e2e/old.conf")), lib("1.0")]
    new = [conf("2.0", {"/etc/e2e/main.conf": b"main 2\n", "/etc/e2e/local.conf": b"local 2\n"},
                ("/etc/e2e/main.conf", "/etc/e2e/local.conf"),
                {"preinst": CONF_MAINTSCRIPT, "postinst": CONF_POSTINST, "postrm": CONF_MAINTSCRIPT}), lib("2.0")]
    return old, new


def test_synthetic_updates_match_real_dpkg(base, tmp_path):
    old, new = _synthetic(str(tmp_path))

    def setup(root):  # the "outdated image": version 1 installed by real dpkg, one conffile edited
        r = real_dpkg(root, old)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(root, "etc/e2e/local.conf"), "a") as f:
            f.write("# changed by the administrator\n")

    d, runner, diff = _same_everywhere(base, tmp_path, new, setup)
    n = numbers(new, d, runner, diff)
    print("\nE2E synthetic updates:", n)
    b = str(tmp_path / "B")
    # version 1.0 had no scripts: no old prerm/postrm; the new preinst and postinst; ldconfig's trigger
    assert runner.lines() == ["e2e-conf preinst upgrade 1.0 2.0 -> 0", "e2e-conf postinst configure 1.0 -> 0",
                              "libc-bin postinst triggered ldconfig -> 0"]
    assert (n["scripts deferred whole"], n["deferred"]) == (0, 0)
    assert open(os.path.join(b, "etc/e2e/local.conf.dpkg-dist")).read() == "local 2\n"
    assert not [n for n in os.listdir(os.path.join(b, "etc/e2e")) if n.startswith("old.conf")]  # rm_conffile
    assert "e2e:" in open(os.path.join(b, "etc/passwd")).read()
    assert set(diff) <= set(ALLOWED)


# ---- the same updates on the default test image ----------------------------------------------

IMAGE = DEFAULT_IMAGE


def _rdump(raw: str, dest: str) -> str:
    os.makedirs(dest)
    r = subprocess.run([tool("debugfs"), "-R", f"rdump / {dest}", raw], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return dest


def _image_updates(tree: str) -> list[str]:
    """The material's .debs that upgrade a package installed in ``tree``."""
    installed = {p.split(":")[0] for p in status_paragraphs(tree)}
    return [d for d in dpkg_material.deb_files() if os.path.basename(d).split("_")[0] in installed]


def _names(debs: list[str]) -> list[str]:
    return sorted({os.path.basename(d).split("_")[0] for d in debs})


@pytest.mark.slow
def test_security_updates_on_the_default_image(base, tmp_path):
    import nuwa
    from nuwa.formats.qcow2_create import create_overlay

    if not os.path.exists(IMAGE):
        pytest.skip("testimages/default.qcow2 is missing")
    image_hash = file_sha256(IMAGE)
    orig_raw = root_partition(IMAGE, str(tmp_path / "orig.ext4"))
    orig_tree = _rdump(orig_raw, str(tmp_path / "orig"))
    debs = _image_updates(orig_tree)
    if not debs:
        pytest.skip("no update in the material applies to the default image")
    # apt's plan for upgrading those packages in the image's own tree; apt fetches what else its
    # plan needs (the image has packages the minbase material does not, e.g. xz-utils)
    steps = dpkg_material.apt_steps(orig_tree, _names(debs), download=True)
    debs = [p for action, ops in steps if action == "unpack" for p in ops]
    out = str(tmp_path / "patched.qcow2")
    create_overlay(out, os.path.abspath(IMAGE))
    with nuwa.open(out, writable=True) as img:
        ov = Overlay(img.root())
        d, runner = nuwa_steps(ov, steps)
        ov.commit()
        img.flush()
    assert file_sha256(IMAGE) == image_hash  # the original is untouched
    qemu_img_check(out)
    raw = root_partition(out, str(tmp_path / "patched.ext4"))
    e2fsck_clean(raw)
    # debugfs reads back what dpkg wrote: each new version's files and the database
    status = debugfs(raw, "cat /var/lib/dpkg/status")
    for deb in debs:
        name, version = os.path.basename(deb).split("_")[:2]
        assert f"Package: {name}\nStatus: install ok installed" in status
        md5 = debugfs(raw, f"cat /var/lib/dpkg/info/{name}:amd64.md5sums") or debugfs(
            raw, f"cat /var/lib/dpkg/info/{name}.md5sums")
        first = md5.splitlines()[0].split(None, 1)
        data = subprocess.run([tool("debugfs"), "-R", f"cat /{first[1]}", raw], capture_output=True).stdout
        assert hashlib.md5(data).hexdigest() == first[0], first
    # real dpkg on the extracted tree: nothing to audit, the same as real dpkg applying the debs
    tree = _rdump(raw, str(tmp_path / "patched"))
    r = subprocess.run(["dpkg", "--root", tree, "--audit"], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr
    assert chroot_query(tree, "dpkg", "--audit").stdout == ""
    ref = str(tmp_path / "ref")
    copy_tree(orig_tree, ref)
    real_dpkg_steps(ref, steps)
    diff = diff_snapshots(snapshot(ref, skip=SKIP), snapshot(tree, skip=SKIP))
    n = numbers(debs, d, runner, diff)
    print("\nE2E security updates (default.qcow2):", n)
    assert set(diff) <= set(ALLOWED), diff
    assert status_paragraphs(ref) == status_paragraphs(tree)
    for log in ("dpkg.log", "alternatives.log"):
        assert log_lines(ref, log) == log_lines(tree, log), log
    shutil.rmtree(tmp_path, ignore_errors=True)


# ---- ca-certificates: postinst -> update-ca-certificates (find -L) offline -------------------


def _download(dest: str, *specs: str) -> list[str]:
    r = subprocess.run(["apt-get", "download", "-q", *specs], cwd=dest, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot download {' '.join(specs)}: {r.stderr.strip()[-200:]}")
    return sorted(os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".deb"))


def _installed_version(root: str, package: str) -> str | None:
    r = chroot_query(root, "dpkg-query", "-W", "-f=${Version}", package)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


@pytest.mark.slow
def test_ca_certificates_upgrade_matches_real_dpkg(base, tmp_path):
    """The main-suite ca-certificates (with openssl and libssl3) installed by
    real dpkg, a local certificate under /usr/local/share/ca-certificates reached through a
    link; then the host's candidate ca-certificates (the bookworm-security release when one is
    pending) applied by real dpkg and by Nuwa: its postinst runs update-ca-certificates, which
    walks the certificate directories with ``find -L``. Nothing may be deferred, and the trees
    (/etc/ssl/certs included) must agree."""
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    # the tree may lack openssl and libssl3: the host's candidates, one matching pair
    have = _installed_version(base, "libssl3")
    old = _download(str(old_dir), "ca-certificates=20230311+deb12u1", "openssl",
                    *([] if have else ["libssl3"]))
    new = _download(str(new_dir), "ca-certificates")
    pem = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null",
                          "-subj", "/CN=Nuwa Local E2E CA", "-days", "2"], capture_output=True, check=True).stdout

    def setup(a):
        r = real_dpkg(a, old)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        site = os.path.join(a, "usr/local/share/ca-certificates/site")
        os.makedirs(site)
        with open(os.path.join(site, "Nuwa_Local_E2E.crt"), "wb") as f:
            f.write(pem)
        os.symlink("site", os.path.join(a, "usr/local/share/ca-certificates/linked"))

    d, runner, diff = _same_everywhere(base, tmp_path, debs=new, setup=setup)
    n = numbers(new, d, runner, diff)
    print("\nE2E ca-certificates upgrade:", n)
    assert (n["scripts deferred whole"], n["deferred"]) == (0, 0), runner.lines()
    assert set(diff) <= set(ALLOWED)
    certs = os.path.join(str(tmp_path / "B"), "etc/ssl/certs")
    assert os.path.islink(os.path.join(certs, "Nuwa_Local_E2E.pem"))
    shutil.rmtree(tmp_path, ignore_errors=True)
