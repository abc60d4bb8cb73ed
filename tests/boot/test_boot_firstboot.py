"""A patched image must boot (issue 19): the first-boot job under a real kernel and systemd.

A small bootable Debian 12 image (``bootimage.py``: mmdebstrap, GPT, ext4 root, kernel 6.1,
systemd; cached per day) is patched by ``nuwa patch --deb`` with synthetic packages whose
postinst scripts leave work to the first-boot job, each for a reason the simulator cannot do
offline (a program without a model, ``nuwa-boot-helper``, a Perl script the packages ship):

- ``nb-ask``: the helper's output is captured, so the whole postinst is deferred; at boot it
  asks a debconf question that has no default (must not wait: noninteractive) -> done;
- ``nb-stdin``: the helper reads stdin, once with bytes piped in (recorded), once with
  nothing (``/dev/null`` at boot) -> done, done;
- ``nb-loop``: the helper ignores TERM and loops forever -> timed out (TERM, then KILL);
  a later command of the same postinst -> skipped (dpkg would not go on with the package);
- ``nb-fail``: the helper exits 3 -> failed;
- ``nb-ok``: the helper writes a file -> done.

The image boots under ``qemu-system-x86_64 -accel tcg`` (direct kernel boot, no network);
the serial login prompt must appear within the bound, then the test logs in (empty root
password, test image only), checks the result files and powers the machine off. Offline
again: ``nuwa firstboot --json`` reports each outcome, and ``e2fsck -fn`` and ``qemu-img
check`` accept the image. Every wait has a deadline; qemu is killed (by PID) on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from bootimage import PART_START, boot_image, boot_tree, kernel_and_initrd
from helpers.cli import nuwa
from helpers.debtools import build_deb
from judges import e2fsck_clean, qemu_img_check, tool
from vm import Guest

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]

ENTRY_TIMEOUT = 20
#: from qemu's start to the login prompt: boot (~25 s under TCG here) + the job (~40 s)
PROMPT_BOUND = 300

HELPER = b"""#!/usr/bin/perl
# nuwa-boot-helper MODE [ARG]: a program the simulator has no model for (a Perl script)
use strict;
$| = 1;  # unbuffered: a killed run keeps what it printed
my ($mode, $arg) = @ARGV;
my $dir = "/var/lib/nuwa-boot-test";
mkdir $dir;
sub put { my ($n, $t) = @_; open(my $f, ">", "$dir/$n") or die "$n: $!"; print $f $t; close $f; }
if ($mode eq "version") { print "1\\n"; exit 0; }
if ($mode eq "read-stdin") {
    my $line = <STDIN>;
    put("stdin-$arg", defined $line ? "read: $line" : "eof\\n");
    print "read-stdin $arg done\\n";
    exit 0;
}
if ($mode eq "loop") {
    $SIG{TERM} = "IGNORE";   # only KILL ends it
    put("loop-started", "$$\\n");
    print "looping forever\\n";
    while (1) { sleep 1; }
}
if ($mode eq "fail") { print STDERR "nuwa-boot-helper: failing on purpose\\n"; exit 3; }
if ($mode eq "ok") { put($arg, "ok\\n"); print "ok $arg\\n"; exit 0; }
die "unknown mode $mode";
"""

POSTINSTS = {
    "nb-ask": """#!/bin/sh
set -e
. /usr/share/debconf/confmodule
v=$(nuwa-boot-helper version)
db_input high nb-ask/name || true
db_go || true
db_get nb-ask/name || true
mkdir -p /var/lib/nuwa-boot-test
echo "version=$v answer=[$RET]" > /var/lib/nuwa-boot-test/ask
""",
    "nb-stdin": """#!/bin/sh
set -e
printf 'hello from the simulated run\\n' | nuwa-boot-helper read-stdin piped
nuwa-boot-helper read-stdin empty
""",
    "nb-loop": """#!/bin/sh
set -e
nuwa-boot-helper loop
nuwa-boot-helper ok nb-loop-after
""",
    "nb-fail": """#!/bin/sh
set -e
nuwa-boot-helper fail
""",
    "nb-ok": """#!/bin/sh
set -e
nuwa-boot-helper ok nb-ok
""",
}
TEMPLATES = """Template: nb-ask/name
Type: string
Description: Which name should the boot test use?
 The question has no default: nobody answers it at boot.
"""
#: package -> the outcomes of its entries, in order
EXPECTED = {"nb-ask": ["done"], "nb-stdin": ["done", "done"], "nb-loop": ["timed-out", "skipped"],
            "nb-fail": ["failed"], "nb-ok": ["done"]}


def build_debs(d: str) -> list[str]:
    debs = [build_deb(d, "nuwa-boot-helper", "1.0", {"/usr/bin/nuwa-boot-helper": HELPER})]
    for name, body in POSTINSTS.items():
        scripts = {"postinst": body}
        if name == "nb-ask":
            scripts["templates"] = TEMPLATES
        debs.append(build_deb(d, name, "1.0", {f"/usr/share/doc/{name}/README": b"boot test\n"},
                              extra="Depends: nuwa-boot-helper\n", scripts=scripts))
    return debs


def partition_raw(qcow2: str, out: str) -> str:
    """Partition 1 of the qcow2 disk as a raw file (qemu's raw driver with an offset)."""
    size = json.loads(subprocess.run([tool("qemu-img"), "info", "--output=json", qcow2], capture_output=True,
                                     text=True, check=True).stdout)["virtual-size"]
    spec = {"driver": "raw", "offset": PART_START, "size": size - PART_START - (1 << 20),
            "file": {"driver": "qcow2", "file": {"driver": "file", "filename": qcow2}}}
    subprocess.run([tool("qemu-img"), "convert", "-O", "raw", "json:" + json.dumps(spec), out], check=True,
                   capture_output=True)
    return out


def test_patched_image_boots_and_the_job_reports_each_outcome(tmp_path):
    tool("qemu-system-x86_64")
    tool("dpkg-deb")
    base = boot_image()
    kernel, initrd = kernel_and_initrd(boot_tree())
    debdir = tmp_path / "debs"
    debdir.mkdir()
    debs = build_helper_and_debs(str(debdir))
    disk = str(tmp_path / "patched.qcow2")
    r = nuwa("patch", base, "--deb", *debs, "--output", disk, "--firstboot-timeout", str(ENTRY_TIMEOUT), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    job = doc["firstboot"]
    assert job is not None and job["activation"] == ["systemd", "sysvinit"], job
    by_pkg: dict[str, list[dict]] = {}
    for e in job["entries"]:
        by_pkg.setdefault(e["package"], []).append(e)
    assert {p: len(v) for p, v in by_pkg.items()} == {p: len(v) for p, v in EXPECTED.items()}, job["entries"]
    assert [e["kind"] for e in by_pkg["nb-ask"]] == ["script"]  # output used: the whole postinst
    assert all(e["timeout"] == ENTRY_TIMEOUT for e in job["entries"])
    before = json.loads(nuwa("firstboot", disk, "--json").stdout)
    assert before["state"] == "pending" and before["pending"]["counts"]["pending"] == len(job["entries"])

    started = time.monotonic()
    with Guest(disk, kernel, initrd, "root=/dev/vda1 rw console=ttyS0 panic=-1",
               str(tmp_path / "console.log")) as g:
        g.expect(r"nuwa-boot login: ", PROMPT_BOUND)
        prompt_after = time.monotonic() - started
        assert "nuwa-firstboot: finished with failures" in g.output  # the job ran before logins
        m = g.mark()
        g.send("root\n")
        g.expect(r"root@nuwa-boot:~# ", 60, m)
        m = g.mark()
        g.send("cat /var/lib/nuwa-boot-test/ask /var/lib/nuwa-boot-test/stdin-piped "
               "/var/lib/nuwa-boot-test/stdin-empty; systemctl is-system-running; echo END-OF-CHECK\n")
        g.expect(r"\nEND-OF-CHECK", 60, m)
        shown = g.output[m:]
        g.send("poweroff\n")
        assert g.wait_exit(120) == 0
    assert prompt_after < PROMPT_BOUND
    assert "version=1 answer=[]" in shown  # asked with no default, nobody waited for an answer
    assert "read: hello from the simulated run" in shown and "eof" in shown

    after = nuwa("firstboot", disk, "--json")
    assert after.returncode == 0, after.stderr
    st = json.loads(after.stdout)
    assert st["state"] == "finished" and st["pending"] is None, st
    got: dict[str, list[str]] = {}
    for e in st["last"]["entries"]:
        got.setdefault(e["package"], []).append(e["outcome"])
    assert got == EXPECTED, json.dumps(st["last"]["entries"], indent=1)
    entries = {(e["package"], i): e for p in EXPECTED for i, e in
               enumerate(x for x in st["last"]["entries"] if x["package"] == p)}
    assert entries[("nb-fail", 0)]["exit_status"] == 3 and "failing on purpose" in entries[("nb-fail", 0)]["log"]
    assert "looping forever" in entries[("nb-loop", 0)]["log"]
    assert "nb-loop" in entries[("nb-loop", 1)]["reason"]
    assert any("nb-fail" in n for n in st["dpkg_notes"]) and any("nb-loop" in n for n in st["dpkg_notes"])
    human = nuwa("firstboot", disk).stdout
    assert "timed-out" in human and "last finished job" in human

    qemu_img_check(disk)
    e2fsck_clean(partition_raw(disk, str(tmp_path / "root.raw")))


def build_helper_and_debs(d: str) -> list[str]:
    """The helper must be executable: build the debs, then make the helper's mode 0755."""
    debs = build_debs(d)
    stage = os.path.join(d, "stage-nuwa-boot-helper-1.0")
    os.chmod(os.path.join(stage, "usr/bin/nuwa-boot-helper"), 0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", stage, debs[0]], check=True,
                   capture_output=True)
    return debs
