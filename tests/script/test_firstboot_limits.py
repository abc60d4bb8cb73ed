"""The first-boot job never hangs a boot (issue 19): real dash runs the runner in a chroot.

Bad input, each as a job entry run by the generated runner in a chroot of a real bookworm
tree (the ``chroot_root`` fixture of test_firstboot.py): a command that reads stdin with
none recorded, one that waits on a lock the test holds, one that ignores TERM and loops
forever, a maintainer script that asks a debconf question with no default (real debconf in
the chroot), one that fails (and a later entry of the same package), and a job directory
damaged between patch and boot. Each ends with the right status and reason, within its
bound, and nothing else is lost. Then the outcome is read back offline: by
:func:`nuwa.script.firstboot_status.job_status`, by ``nuwa firstboot --json`` on an ext4
image made from the booted tree, and by ``nuwa patch``'s report on that image.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time

import pytest

from helpers.cli import nuwa
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.script import firstboot as fb
from nuwa.script.firstboot import FirstBootJob
from nuwa.script.firstboot_status import dpkg_notes, job_status, summary_lines
from nuwa.script.interp import dpkg_environment
from test_firstboot import BASE_ENV, chroot_root, cmd, image_fs, run_runner  # noqa: F401  (fixture)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

ASK = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_input high nbt/name || true
db_go || true
db_get nbt/name || true
echo "answer=[$RET] frontend=[$DEBIAN_FRONTEND]"
"""
TEMPLATES = b"""Template: nbt/name
Type: string
Description: A question with no default
 Nobody answers it at boot.
"""


def sh(text: str) -> list[str]:
    return ["sh", "-c", text]


def with_debconf(root) -> None:
    """What debconf's frontend needs beside /usr: its configuration and its database dir."""
    from debian_tree import bookworm_tree

    tree = bookworm_tree()
    shutil.copy2(os.path.join(tree, "etc/debconf.conf"), root / "etc/debconf.conf")
    shutil.copytree(os.path.join(tree, "var/cache/debconf"), root / "var/cache/debconf")


def fast_kill(root) -> None:
    """KILL_AFTER is 10 s in the generated runner; 1 s here keeps the test fast (same code path)."""
    p = root / fb.JOB_DIR.lstrip("/") / "run"
    text = p.read_text()
    assert f"KILL_AFTER={fb.KILL_AFTER}\n" in text
    p.write_text(text.replace(f"KILL_AFTER={fb.KILL_AFTER}\n", "KILL_AFTER=1\n"))


def done_dir(root):
    (d,) = [n for n in os.listdir(root / "var/lib/nuwa") if n.startswith("firstboot.done.")]
    return root / "var/lib/nuwa" / d


def results(root) -> dict[str, str]:
    return dict(line.split("\t") for line in (done_dir(root) / "results").read_text().splitlines())


def test_runner_bounds_and_records_every_bad_entry(chroot_root):
    root = chroot_root
    with_debconf(root)
    fs = HostDirFS(str(root), writable=True)
    job = FirstBootJob(entry_timeout=3)
    job.add_command(cmd(sh('if read x; then echo "got [$x]"; else echo "stdin at EOF"; fi')), BASE_ENV,
                    package="p-stdin")
    job.add_command(cmd(sh("flock /tmp/held.lock true")), BASE_ENV, package="p-lock")
    job.add_command(cmd(sh("trap '' TERM; echo looping; while :; do sleep 1; done")), BASE_ENV, package="p-loop")
    job.add_script(ASK, ["configure", ""], dpkg_environment("postinst", "nbt", "amd64"), "/var/lib/dpkg/info/nbt.postinst",
                   reason="output used", package="nbt", extra_files={"nbt.templates": TEMPLATES})
    job.add_command(cmd(sh("echo failing >&2; exit 4")), BASE_ENV, package="p-fail")
    job.add_command(cmd(["nuwa-probe", "after-fail"]), BASE_ENV, package="p-fail")
    job.add_command(cmd(["nuwa-probe", "other"]), BASE_ENV, package="p-other")
    job.write(fs)
    fast_kill(root)
    with open(root / "tmp/held.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held by the test: the entry waits on it forever
        t0 = time.monotonic()
        p = run_runner(root)
        took = time.monotonic() - t0
    assert p.returncode == 1, p.stdout.decode() + p.stderr.decode()
    # 3 bounded entries (3 s each, the loop 1 s more for KILL) and quick ones
    assert took < 3 * 3 + 1 + 20, took
    res = results(root)
    assert res == {"000001": "0", "000002": "timeout", "000003": "timeout", "000004": "0", "000005": "4",
                   "000006": "skipped", "000007": "0"}, res
    d = done_dir(root) / "entries"
    assert (d / "000001/log").read_text() == "stdin at EOF\n"
    assert "answer=[] frontend=[noninteractive]" in (d / "000004/log").read_text()
    assert "looping" in (d / "000003/log").read_text()
    assert "after 3s (exit 137" in (d / "000003/reason").read_text()  # TERM ignored: KILL
    assert "after 3s (exit 124" in (d / "000002/reason").read_text()  # TERM ended the wait
    assert "p-fail" in (d / "000006/reason").read_text()
    assert (root / "tmp/order").read_text() == "other\n"  # the skipped entry never ran
    # read back offline
    st = job_status(HostDirFS(str(root)))
    assert st["state"] == "finished" and st["pending"] is None
    outcomes = [(e["id"], e["outcome"]) for e in st["last"]["entries"]]
    assert outcomes == [("000001", "done"), ("000002", "timed-out"), ("000003", "timed-out"), ("000004", "done"),
                        ("000005", "failed"), ("000006", "skipped"), ("000007", "done")]
    e5 = st["last"]["entries"][4]
    assert e5["exit_status"] == 4 and e5["log"] == "failing\n" and e5["package"] == "p-fail"
    assert st["last"]["counts"] == {"pending": 0, "done": 3, "failed": 1, "timed-out": 2, "interrupted": 0,
                                    "skipped": 1}
    text = "\n".join(summary_lines(st))
    assert "000002 timed-out" in text and "000005 failed (exit 4)" in text


def test_damaged_job_directory_still_boots(chroot_root):
    root = chroot_root
    fs = HostDirFS(str(root), writable=True)
    job = FirstBootJob()
    for n in ("1", "2", "3"):
        job.add_command(cmd(["nuwa-probe", n]), BASE_ENV, package="p" + n)
    job.write(fs)
    jd = root / fb.JOB_DIR.lstrip("/")
    (jd / "entries/000001/run").unlink()
    shutil.rmtree(jd / "entries/000002")
    (jd / "job.json").write_text("{damaged")
    with open(jd / "job", "a") as f:
        f.write("../../etc\n")  # not an entry id: ignored, not followed
    # before the boot: read offline as far as it goes
    st = job_status(HostDirFS(str(root)))
    assert st["state"] == "pending" and any("job.json does not parse" in x for x in st["pending"]["problems"])
    assert [e["outcome"] for e in st["pending"]["entries"]] == ["pending"] * 3
    assert "run file is missing" in st["pending"]["entries"][0]["reason"]
    assert "directory is missing" in st["pending"]["entries"][1]["reason"]
    p = run_runner(root)
    assert p.returncode == 1
    assert results(root) == {"000001": "failed", "000002": "failed", "000003": "0"}
    assert (root / "tmp/order").read_text() == "3\n"
    st = job_status(HostDirFS(str(root)))
    e1, e2, e3 = st["last"]["entries"]
    assert (e1["outcome"], e2["outcome"], e3["outcome"]) == ("failed", "failed", "done")
    assert "000001/run is missing" in e1["reason"] and "000002/run is missing" in e2["reason"]
    assert not (root / "etc/status").exists()


def test_an_interrupted_entry_holds_back_its_package_only(chroot_root):
    root = chroot_root
    fs = HostDirFS(str(root), writable=True)
    job = FirstBootJob()
    job.add_command(cmd(["nuwa-probe", "1"]), BASE_ENV, package="pa")
    job.add_command(cmd(["nuwa-probe", "2"]), BASE_ENV, package="pa")
    job.add_command(cmd(["nuwa-probe", "3"]), BASE_ENV, package="pb")
    job.write(fs)
    (root / "var/lib/nuwa/firstboot/entries/000001/started").write_bytes(b"")  # a boot cut short
    run_runner(root)
    assert results(root) == {"000001": "interrupted", "000002": "skipped", "000003": "0"}
    assert (root / "tmp/order").read_text() == "3\n"


def test_job_time_limit_skips_what_is_left(chroot_root):
    root = chroot_root
    fs = HostDirFS(str(root), writable=True)
    job = FirstBootJob(entry_timeout=2, job_timeout=3)
    for n in range(3):
        job.add_command(cmd(["sleep", "30"]), BASE_ENV, package=f"s{n}")
    job.write(fs)
    fast_kill(root)
    t0 = time.monotonic()
    run_runner(root)
    assert time.monotonic() - t0 < 3 + 2 + 10
    res = results(root)
    assert res["000001"] == "timeout" and res["000003"] == "skipped", res
    reason = (done_dir(root) / "entries/000003/reason").read_text()
    assert "time limit (3s)" in reason


def test_limits_in_the_written_files():
    m = image_fs()
    job = FirstBootJob(entry_timeout=45, job_timeout=900)
    job.add_command(cmd(["x"]), BASE_ENV)
    job.write(m)
    assert m.read_bytes(fb.JOB_DIR + "/entries/000001/timeout") == b"45\n"
    assert f"TimeoutStartSec={900 + fb.JOB_GRACE}\n" in m.read_bytes(fb.UNIT_PATH).decode()
    assert "JOB_LIMIT=900\n" in m.read_bytes(fb.JOB_DIR + "/run").decode()
    assert f"timeout -k {fb.KILL_AFTER} {900 + fb.JOB_GRACE} " in m.read_bytes(fb.INITD_PATH).decode()
    doc = json.loads(m.read_bytes(fb.JOB_DIR + "/job.json"))
    assert doc["job_timeout"] == 900 and doc["entries"][0]["timeout"] == 45
    assert "infinity" not in fb.UNIT and "StandardInput=null" in fb.UNIT
    with pytest.raises(ValueError):
        FirstBootJob(entry_timeout=0)
    with open(os.path.join(ROOT, "docs/firstboot.md"), encoding="utf-8") as f:
        assert fb.UNIT.split("\n", 1)[1] in f.read()  # the documented unit is the one written


def test_status_of_no_job_and_of_a_job_cut_short():
    m = image_fs()
    assert job_status(m)["state"] == "none" and summary_lines(job_status(m)) == ["no first-boot job in this image"]
    job = FirstBootJob()
    job.add_command(cmd(["a"]), BASE_ENV, package="pa")
    job.add_command(cmd(["b"]), BASE_ENV, package="pb")
    job.write(m)
    m.write_bytes(fb.JOB_DIR + "/entries/000001/started", b"")  # a boot cut short
    st = job_status(m)
    assert st["state"] == "partly-run"
    assert [e["outcome"] for e in st["pending"]["entries"]] == ["interrupted", "pending"]
    m.makedirs("/var/lib/dpkg")
    m.write_bytes("/var/lib/dpkg/status", b"Package: pa\nStatus: install ok installed\nVersion: 1\n"
                                          b"Architecture: all\nMaintainer: t\nDescription: t\n")
    (note,) = dpkg_notes(m, st)
    assert note.startswith("pa: a command deferred") and "'installed'" in note and "half-configured" in note


# ---- the command line on an image made from a booted tree ------------------------------------
def test_nuwa_firstboot_and_patch_read_a_booted_image(chroot_root, tmp_path):
    root = chroot_root
    fs = HostDirFS(str(root), writable=True)
    job = FirstBootJob()
    job.add_command(cmd(["nuwa-probe", "1"], {"PROBE_STATUS": "2"}), BASE_ENV, "/var/lib/dpkg/info/pk.postinst",
                    package="pk")
    job.write(fs)
    tree = tmp_path / "tree"
    for d in ("etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "tmp"):
        os.makedirs(tree / d, exist_ok=True)
    (tree / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "var/lib/dpkg/status").write_text("Package: pk\nStatus: install ok installed\nVersion: 1\n"
                                              "Architecture: all\nMaintainer: t\nDescription: t\n")
    # never booted: the entry is pending
    shutil.copytree(root / "var/lib/nuwa", tree / "var/lib/nuwa", symlinks=True)
    fresh = tmp_path / "fresh.raw"
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), "-E", "root_owner=0:0", str(fresh), "16M"],
                   check=True, capture_output=True)
    r = nuwa("firstboot", fresh, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "pending" and doc["last"] is None and doc["dpkg_notes"] == []
    assert [e["outcome"] for e in doc["pending"]["entries"]] == ["pending"]
    assert "pending job: /var/lib/nuwa/firstboot (pending; 1 entries: 1 pending)" in nuwa("firstboot", fresh).stdout
    shutil.rmtree(tree / "var/lib/nuwa")
    run_runner(root)
    # an image of the booted tree: its job directories, a dpkg database, an os-release
    shutil.copytree(root / "var/lib/nuwa", tree / "var/lib/nuwa", symlinks=True)
    img = tmp_path / "booted.raw"
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), "-E", "root_owner=0:0", str(img), "16M"],
                   check=True, capture_output=True)
    r = nuwa("firstboot", img, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "finished" and doc["last"]["entries"][0]["outcome"] == "failed"
    assert "probe 1 says hello" in doc["last"]["entries"][0]["log"]
    assert len(doc["dpkg_notes"]) == 1 and doc["dpkg_notes"][0].startswith("pk: a command deferred from pk.postinst")
    human = nuwa("firstboot", img)
    assert human.returncode == 0 and "000001 failed (exit 2)" in human.stdout and "dpkg: pk:" in human.stdout
    # the next patch reports it too
    from helpers.debtools import build_deb

    deb = build_deb(str(tmp_path), "nothing", "1.0", {"/usr/share/doc/nothing/README": b"x\n"})
    r = nuwa("patch", img, "--deb", deb, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    prev = json.loads(r.stdout)["previous_firstboot"]
    assert prev["status"]["state"] == "finished" and prev["dpkg_notes"] == doc["dpkg_notes"]
    r = nuwa("patch", img, "--deb", deb, "--dry-run")
    assert "before this run: dpkg: pk:" in r.stdout
    # an image without a job
    empty = tmp_path / "empty.raw"
    shutil.rmtree(tree / "var/lib/nuwa")
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), str(empty), "16M"], check=True, capture_output=True)
    r = nuwa("firstboot", empty, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "none"
    assert nuwa("firstboot", empty).stdout == "no first-boot job in this image\n"


def test_memoryfs_never_booted_job_is_pending():
    m = MemoryFS()
    m.makedirs("/var/lib")
    job = FirstBootJob()
    job.add_command(cmd(["x"]), BASE_ENV)
    job.write(m)
    st = job_status(m)
    assert st["state"] == "pending" and st["last"] is None and st["pending"]["counts"]["pending"] == 1
