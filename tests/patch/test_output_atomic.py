"""``--output`` is crash-atomic (issue 16): a killed run leaves no file under the output name.

A real ``python3 -m nuwa patch testimages/default.qcow2 --deb testimages/updates/*.deb
--output OUT`` is killed with SIGKILL (by its PID) at points spread over its run: a fixed
delay after start, and a delay after its temporary ``.OUT.nuwa-XXXXXXXX`` appeared (the
overlay being written). Whatever the point, ``OUT`` must not exist afterwards unless the
run had already finished, in which case ``OUT`` is complete (``qemu-img check``) and no
temporary is left behind.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers.cli import nuwa_env
from helpers.paths import DEFAULT_IMAGE, TESTIMAGES
from judges import qemu_img_check

IMAGE = DEFAULT_IMAGE
DEBS = sorted(glob.glob(os.path.join(TESTIMAGES, "updates", "*.deb")))
ENV = nuwa_env({"LC_ALL": "C"})


def _start(out: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nuwa", "patch", IMAGE, "--deb", *DEBS, "--output", out, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)


def _temporaries(d: str, name: str) -> list[str]:
    return glob.glob(os.path.join(d, f".{name}.nuwa-*"))


def _packages(path: str) -> bytes:
    r = subprocess.run([sys.executable, "-m", "nuwa", "packages", path], capture_output=True, env=ENV, check=True)
    return r.stdout


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``nuwa packages`` of a finished run's output: what a complete OUT lists."""
    d = tmp_path_factory.mktemp("ref")
    out = str(d / "OUT.qcow2")
    start = time.monotonic()
    proc = _start(out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return {"packages": _packages(out), "duration": time.monotonic() - start}


def _kill_and_judge(proc: subprocess.Popen, d: str, out: str, reference: dict) -> str:
    """SIGKILL ``proc`` (if still running) and judge what is left: "partial" never happens.

    Returns "killed" (no file at OUT), "published" (killed after the final rename: OUT is the
    complete file) or "finished" (exited before the kill).
    """
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    rc = proc.wait(timeout=60)
    proc.stderr.close()
    temps = _temporaries(d, "OUT.qcow2")
    outcome = "finished" if rc == 0 else "killed"
    assert rc in (0, -signal.SIGKILL)
    if os.path.lexists(out):
        # only a finished file ever has the name: it was renamed after its final flush (a
        # kill between link and unlink leaves the temporary as a second name of the same file)
        assert all(os.path.samefile(t, out) for t in temps), "a file at OUT differs from the one being written"
        qemu_img_check(out)
        assert _packages(out) == reference["packages"]
        os.unlink(out)
        outcome = "published" if outcome == "killed" else outcome
    for t in temps:  # a kill leaves its temporary behind; tidy up for the next run
        os.unlink(t)
    if outcome == "finished":
        assert temps == []
    return outcome


def test_normal_run_leaves_only_the_output(tmp_path):
    out = str(tmp_path / "OUT.qcow2")
    proc = _start(out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    proc.stderr.close()
    assert os.listdir(tmp_path) == ["OUT.qcow2"]
    qemu_img_check(out)
    assert os.stat(out).st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_sigkill_at_points_spread_over_the_run_leaves_no_output(tmp_path, reference):
    """Kill at fractions of a measured run's duration (most of a run is reading and planning)."""
    out = str(tmp_path / "OUT.qcow2")
    outcomes = []
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        proc = _start(out)
        time.sleep(reference["duration"] * fraction)
        outcomes.append(_kill_and_judge(proc, str(tmp_path), out, reference))
    assert "killed" in outcomes


def test_sigkill_while_the_overlay_is_written_leaves_no_output(tmp_path, reference):
    """Kill once the run has created its first file (the temporary, under whatever name): at
    that moment, and at later points of the write."""
    out = str(tmp_path / "OUT.qcow2")
    outcomes = []
    for delay in (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4):
        proc = _start(out)
        deadline = time.monotonic() + 120
        while not os.listdir(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        outcomes.append(_kill_and_judge(proc, str(tmp_path), out, reference))
    assert outcomes.count("killed") >= 3, outcomes  # the test really killed runs mid-write
    assert os.listdir(tmp_path) == []
