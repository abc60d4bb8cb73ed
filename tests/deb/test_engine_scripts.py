"""Nuwa's dpkg running real maintainer scripts through the shell simulator, against real dpkg.

1. What a script sees of the package database while dpkg works: every maintainer script of
   a probe package prints ``dpkg-query -W -f='${Status} ${Version}'`` and ``dpkg-query -s``
   for itself, every ``updates/`` journal record, its stanza of ``status``, ``Unincorp`` and
   its info files. Real dpkg in a chroot of a bookworm minbase tree and Nuwa's dpkg with the
   SimulatorRunner on a copy run install, upgrade, remove and purge; the printed logs must be
   byte-identical at every step, and the final trees identical but for dpkg.log's timestamps.
   A second package with a file trigger on the probe's directory makes trigger states
   (triggers-pending, triggers-awaited) part of what is compared.
2. Deferral: packages whose postinst cannot be simulated (a deferred command's output used;
   a deferred command whose result is not used) are installed by Nuwa, which records them as
   dpkg would after a successful script and writes the first-boot job. The database passes
   ``dpkg --audit`` and Nuwa's own checks (a second run can extend the job); running the job
   as the boot would (``/bin/sh /var/lib/nuwa/firstboot/run`` in a chroot) gives the tree real
   dpkg gives.
"""

import os
import shutil
import subprocess

import pytest

from debian_tree import copy_tree
from helpers.debtools import build_deb
from judges import tool
from nuwa.deb import audit
from nuwa.deb.operations import Dpkg
from nuwa.patch.runner import SimulatorRunner
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from helpers.oracle import diff_snapshots, dpkg_material, snapshot

pytestmark = pytest.mark.root

PROBE = r"""#!/bin/sh
set -e
{
echo "== $DPKG_MAINTSCRIPT_PACKAGE $DPKG_MAINTSCRIPT_NAME $*"
for p in probe watcher; do
    dpkg-query -W -f='${Status} ${Version}\n' $p || echo "rc=$?"
    dpkg-query -s $p || echo "rc=$?"
done
for f in /var/lib/dpkg/updates/*; do echo "-- $f"; cat "$f"; done
echo "-- status"; sed -n '/^Package: \(probe\|watcher\)$/,/^$/p' /var/lib/dpkg/status
echo "-- unincorp"; cat /var/lib/dpkg/triggers/Unincorp
for f in /var/lib/dpkg/info/probe.* /var/lib/dpkg/info/watcher.*; do echo "$f"; done
echo "-- \$0 $0"; for f in /var/lib/dpkg/tmp.ci/*; do echo "$f"; done
} >> /probe.log 2>&1
"""
SCRIPTS = {n: PROBE for n in ("preinst", "postinst", "prerm", "postrm")}
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root",
       "DEBIAN_FRONTEND": "noninteractive"}
SKIP = ("/proc", "/sys", "/dev")


@pytest.fixture(scope="module")
def base():
    tool("mmdebstrap")
    tool("chroot")
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return dpkg_material.base_tree()


def _probe_debs(out):
    def deb(v, section):
        return build_deb(out, "probe", v, {"/usr/share/probe/a": v.encode(), "/etc/probe.conf": b"conf " + v.encode()},
                         scripts=SCRIPTS, conffiles=("/etc/probe.conf",),
                         extra=f"Priority: optional\nSection: {section}\n")
    watcher = build_deb(out, "watcher", "1", {"/usr/share/watcher/w": b"w"}, scripts={"postinst": PROBE},
                        triggers="interest /usr/share/probe\n", extra="Priority: optional\nSection: misc\n")
    return watcher, deb("1.0", "misc"), deb("2.0", "admin")


def real_step(root, op, args):
    """``dpkg OP ARGS`` in a chroot of ``root`` (.debs copied in and removed again)."""
    names = []
    for a in args:
        if a.endswith(".deb"):
            shutil.copy(a, os.path.join(root, "tmp"))
            names.append("/tmp/" + os.path.basename(a))
        else:
            names.append(a)
    try:
        r = subprocess.run(["chroot", root, "dpkg", "--force-confdef", "--force-confold", op, *names],
                           capture_output=True, text=True, env=ENV)
    finally:
        for n in names:
            if n.startswith("/tmp/"):
                os.unlink(root + n)
    assert r.returncode == 0, r.stderr
    return r


def nuwa_step(root, op, args, runner=None):
    """The same step by Nuwa's dpkg with the simulator, on an overlay committed at the end."""
    runner = runner or SimulatorRunner()
    ov = Overlay(HostDirFS(root, writable=True))
    d = Dpkg(ov, runner)
    if op == "-i":
        d.install(args)
    else:
        d.remove(args, purge=op == "-P")
    d.commit()
    ov.commit()
    return d, runner


def _compare_trees(a, b, allowed=()):
    diff = diff_snapshots(snapshot(a, skip=SKIP), snapshot(b, skip=SKIP))
    diff.pop("/var/log/dpkg.log", None)
    for p in allowed:
        diff = {k: v for k, v in diff.items() if not (k == p or k.startswith(p + "/"))}
    assert diff == {}
    la = [ln[20:] for ln in open(os.path.join(a, "var/log/dpkg.log")).read().splitlines()]
    lb = [ln[20:] for ln in open(os.path.join(b, "var/log/dpkg.log")).read().splitlines()]
    assert la == lb


def test_scripts_see_the_database_dpkg_shows(base, tmp_path):
    watcher, v1, v2 = _probe_debs(str(tmp_path))
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    copy_tree(base, a)
    copy_tree(base, b)
    steps = [("-i", [watcher]), ("-i", [v1]), ("-i", [v2]), ("-r", ["probe"]), ("-P", ["probe"])]
    calls = []
    for op, args in steps:
        real_step(a, op, args)
        d, runner = nuwa_step(b, op, args)
        assert all(not c.deferred_whole and not (c.result and c.result.deferred_commands) for c in runner.results)
        calls += runner.lines()
        la, lb = open(a + "/probe.log").read(), open(b + "/probe.log").read()
        assert la == lb, op
        assert d.db.journal.records > 0 and not os.listdir(b + "/var/lib/dpkg/updates")
    log = open(b + "/probe.log").read()
    # the states scripts saw, as real dpkg showed them (a sanity check that the probe probed)
    for seen in ("install reinstreq half-installed 1.0", "install ok half-configured 1.0",
                 "install ok triggers-awaited", "install ok triggers-pending 1", "purge ok config-files 2.0",
                 "-- /var/lib/dpkg/updates/0000", "-- /var/lib/dpkg/updates/tmp.i",
                 "-- $0 /var/lib/dpkg/tmp.ci/preinst\n/var/lib/dpkg/tmp.ci/conffiles\n/var/lib/dpkg/tmp.ci/control\n"):
        assert seen in log, seen
    assert "watcher postinst triggered /usr/share/probe -> 0" in calls
    _compare_trees(a, b)


DEBCONF_TEMPLATES = """Template: dcprobe/answer
Type: string
Default: forty-two
Description: the answer
 The question the preinst asks.
"""
DEBCONF_PREINST = r"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_version 2.0
db_get dcprobe/answer
mkdir -p /var/lib/dcprobe
{ echo "preinst $* as $0 saw '$RET'"; for f in /var/lib/dpkg/tmp.ci/*; do echo "$f"; done; } >> /var/lib/dcprobe/log
db_set dcprobe/answer "set by the preinst $1"
"""


def test_a_debconf_preinst_runs_from_the_control_area(base, tmp_path):
    """The new preinst runs as dpkg runs it, ``/var/lib/dpkg/tmp.ci/preinst``; debconf's frontend
    re-executes that path, takes the package from ``tmp.ci/control`` and loads ``tmp.ci/templates``.
    The debconf databases and the script's own record must match real dpkg's; tmp.ci is gone after."""
    out = str(tmp_path)
    debs = [build_deb(out, "dcprobe", v, {"/usr/share/dcprobe/v": v.encode()},
                      scripts={"preinst": DEBCONF_PREINST, "templates": DEBCONF_TEMPLATES},
                      extra="Priority: optional\nSection: admin\n") for v in ("1.0", "2.0")]
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    copy_tree(base, a)
    copy_tree(base, b)
    for deb in debs:
        real_step(a, "-i", [deb])
        d, runner = nuwa_step(b, "-i", [deb])
        assert all(not c.deferred_whole and not (c.result and c.result.deferred_commands) for c in runner.results), \
            runner.lines()
    log = open(b + "/var/lib/dcprobe/log").read()
    assert "preinst upgrade 1.0 2.0 as /var/lib/dpkg/tmp.ci/preinst saw 'set by the preinst install'" in log
    assert not os.path.exists(b + "/var/lib/dpkg/tmp.ci")
    _compare_trees(a, b)


DEFERRED_HELPER = b"#!/usr/bin/perl\nprint \"computed by perl\\n\";\n"
TOUCHER = b"#!/usr/bin/perl\nopen(my $f, '>', '/var/lib/single/touched') or die; print $f \"touched\\n\";\n"
WHOLE_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    mkdir -p /var/lib/whole
    echo "configured from '$2'" > /var/lib/whole/state
    value=$(/usr/lib/whole/helper)
    echo "$value" >> /var/lib/whole/state
fi
"""
SINGLE_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    mkdir -p /var/lib/single
    /usr/lib/single/toucher
    echo "after the toucher" > /var/lib/single/after
fi
"""


#: what the first-boot job leaves after it ran (docs/firstboot.md), with the reason
JOB_FILES = {
    "/var/lib/nuwa": "the job directory, renamed firstboot.done.<time> after the run, and firstboot.last",
    "/var/log/nuwa-firstboot.log": "the job's log",
    "/etc/systemd/system/nuwa-firstboot.service": "the unit stays, inert (its enabling link is gone)",
    "/etc/init.d/nuwa-firstboot": "the init script stays, inert (its rc links are gone)",
}


def _deferring_debs(out):
    whole = build_deb(out, "whole", "1.0", {"/usr/lib/whole/helper": DEFERRED_HELPER},
                      scripts={"postinst": WHOLE_POSTINST})
    single = build_deb(out, "single", "1.0", {"/usr/lib/single/toucher": TOUCHER},
                       scripts={"postinst": SINGLE_POSTINST})
    for d in (whole, single):  # build_deb makes files 0644; the helpers must be executable
        _chmod_members(d)
    return single, whole


def _chmod_members(deb):
    stage = os.path.join(os.path.dirname(deb), "stage-" + os.path.basename(deb).split("_")[0] + "-1.0")
    for dirpath, _, files in os.walk(os.path.join(stage, "usr")):
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", stage, deb], check=True,
                   capture_output=True)


def test_deferred_scripts_leave_a_consistent_image_and_the_job_finishes_the_work(base, tmp_path):
    single, whole = _deferring_debs(str(tmp_path))
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    copy_tree(base, a)
    copy_tree(base, b)
    real_step(a, "-i", [single, whole])
    d, runner = nuwa_step(b, "-i", [single, whole])

    # the run record: one single deferred command, one whole script, in dpkg's order
    assert runner.lines() == ["single postinst configure -> 0",
                              "whole postinst configure -> 0 (deferred: line 6: the output of deferred "
                              "`/usr/lib/whole/helper` is captured by $( ) (no model for helper))"]
    kinds = [(e.kind, e.package, e.argv) for e in runner.job.entries]
    assert kinds == [("command", "single", ["/usr/lib/single/toucher"]),
                     ("script", "whole", ["configure", ""])]
    # the whole script's offline effects were rolled back; the single one's rest was kept
    assert not os.path.exists(b + "/var/lib/whole")
    assert open(b + "/var/lib/single/after").read() == "after the toucher\n"
    assert not os.path.exists(b + "/var/lib/single/touched")

    # consistent for dpkg, apt and Nuwa before the job runs: installed, nothing to audit
    status = subprocess.run(["chroot", b, "dpkg-query", "-W", "-f=${Package} ${Status}\n", "single", "whole"],
                            capture_output=True, text=True, env=ENV).stdout
    assert status == "single install ok installed\nwhole install ok installed\n"
    r = subprocess.run(["chroot", b, "dpkg", "--audit"], capture_output=True, text=True, env=ENV)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert audit.problems(Dpkg(HostDirFS(b), check_audit=False).db) == []
    # a second run before boot extends the same job
    nuwa_step(b, "-r", ["whole"])
    again = SimulatorRunner()
    nuwa_step(b, "-i", [whole], again)
    assert [(e.id, e.kind, e.package) for e in again.job.entries] == [
        ("000001", "command", "single"), ("000002", "script", "whole"), ("000003", "script", "whole")]
    real_step(a, "-r", ["whole"])
    real_step(a, "-i", [whole])

    # the boot: the job runs the deferred work (as systemd would, here in a chroot)
    r = subprocess.run(["chroot", b, "/bin/sh", "/var/lib/nuwa/firstboot/run"], capture_output=True, text=True,
                       env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(b + "/var/lib/whole/state").read() == "configured from ''\ncomputed by perl\n"
    assert open(b + "/var/lib/single/touched").read() == "touched\n"
    _compare_trees(a, b, allowed=JOB_FILES)
