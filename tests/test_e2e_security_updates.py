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
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "deb"))

from debtools import build_deb  # noqa: E402
from judges import debugfs, e2fsck_clean, qemu_img_check, tool  # noqa: E402
from oracle import (chroot_query, diff_snapshots, dpkg_material, nuwa_dpkg_steps, real_dpkg,  # noqa: E402
                    real_dpkg_steps, snapshot, status_paragraphs)

from nuwa.deb.operations import Dpkg  # noqa: E402
from nuwa.patch.install import install_debs  # noqa: E402
from nuwa.patch.runner import SimulatorRunner  # noqa: E402
from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402

pytestmark = pytest.mark.root

#: the only differences between real dpkg's tree and Nuwa's, and why
ALLOWED = {
    "/var/cache/ldconfig/aux-cache": "ldconfig's optional cache of the files it scanned (inode numbers and "
                                     "ctimes of this tree's files); the ldconfig model writes /etc/ld.so.cache "
                                     "byte for byte but not this cache, which ldconfig rebuilds on its next run",
    "/var/log/dpkg.log": "time stamps only: the lines are compared without them",
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


def compare(a: str, b: str, job_ran: bool) -> dict:
    """Assert the two trees and databases agree except for ALLOWED (and JOB_FILES); return the diff."""
    allowed = dict(ALLOWED, **(JOB_FILES if job_ran else {}))
    diff = diff_snapshots(snapshot(a, skip=SKIP), snapshot(b, skip=SKIP))
    unexplained = {p: v for p, v in diff.items()
                   if not any(p == k or p.startswith(k + "/") for k in allowed)}
    assert unexplained == {}
    assert status_paragraphs(a) == status_paragraphs(b)
    la = [ln[20:] for ln in open(os.path.join(a, "var/log/dpkg.log")).read().splitlines()]
    lb = [ln[20:] for ln in open(os.path.join(b, "var/log/dpkg.log")).read().splitlines()]
    assert la == lb
    for q in (("dpkg", "--audit"), ("dpkg-query", "-W"), ("dpkg-query", "-W", "-f=${Package} ${Status} ${Version}\n")):
        ra, rb = chroot_query(a, *q), chroot_query(b, *q)
        assert (ra.returncode, ra.stdout, ra.stderr) == (rb.returncode, rb.stdout, rb.stderr), q
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
    dpkg_material.copy_tree(base_dir, a)
    if setup:
        setup(a)
    dpkg_material.copy_tree(a, b)
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
    # (the job's files are whole directories: paths under them are allowed too, as compare() does)
    allowed = set(ALLOWED) | set(JOB_FILES)
    assert all(any(p == k or p.startswith(k + "/") for k in allowed) for p in diff), diff
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

IMAGE = os.path.join(os.path.dirname(__file__), "..", "testimages", "default.qcow2")


def _root_partition(qcow: str, raw: str) -> str:
    """The root partition of ``qcow`` as a raw ext4 file (qemu-img convert, then the slice)."""
    import nuwa

    whole = raw + ".disk"
    subprocess.run([tool("qemu-img"), "convert", "-O", "raw", qcow, whole], check=True)
    with nuwa.open(whole) as img:
        part = img.root_volume().partition
        start, size = part.start * part.sector_size, part.size * part.sector_size
    with open(whole, "rb") as src, open(raw, "wb") as dst:
        src.seek(start)
        left = size
        while left:
            chunk = src.read(min(left, 1 << 22))
            dst.write(chunk)
            left -= len(chunk)
    os.unlink(whole)
    return raw


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
    image_hash = hashlib.sha256(open(IMAGE, "rb").read()).hexdigest()
    orig_raw = _root_partition(IMAGE, str(tmp_path / "orig.ext4"))
    orig_tree = _rdump(orig_raw, str(tmp_path / "orig"))
    debs = _image_updates(orig_tree)
    if not debs:
        pytest.skip("no update in the material applies to the default image")
    # apt's plan for upgrading those packages in the image's own tree (it fails, naming the
    # assumption, if apt would need a .deb the material does not have)
    steps = dpkg_material.apt_steps(orig_tree, _names(debs))
    debs = [p for action, ops in steps if action == "unpack" for p in ops]
    out = str(tmp_path / "patched.qcow2")
    create_overlay(out, os.path.abspath(IMAGE))
    with nuwa.open(out, writable=True) as img:
        ov = Overlay(img.root())
        d, runner = nuwa_steps(ov, steps)
        ov.commit()
        img.flush()
    assert hashlib.sha256(open(IMAGE, "rb").read()).hexdigest() == image_hash  # the original is untouched
    qemu_img_check(out)
    raw = _root_partition(out, str(tmp_path / "patched.ext4"))
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
    dpkg_material.copy_tree(orig_tree, ref)
    real_dpkg_steps(ref, steps)
    diff = diff_snapshots(snapshot(ref, skip=SKIP), snapshot(tree, skip=SKIP))
    n = numbers(debs, d, runner, diff)
    print("\nE2E security updates (default.qcow2):", n)
    assert set(diff) <= set(ALLOWED), diff
    assert status_paragraphs(ref) == status_paragraphs(tree)
    shutil.rmtree(tmp_path, ignore_errors=True)
