"""The fleet's progress bar: on a terminal's stderr only, never with --json or --quiet.

A pseudo-terminal stands in for the user's terminal (stderr of a real ``nuwa patch`` fleet run
is its slave end); a pipe and a StringIO are not terminals, and there the bar stays silent.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from fleetkit import deb_args, overlay
from helpers.cli import nuwa_env
from nuwa.fleet.engine import FleetProgress


def _read_all(fd: int) -> str:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the slave end is closed
            break
        if not chunk:
            break
        out += chunk
    return out.decode("utf-8", "replace")


def test_the_bar_counts_by_outcome():
    p = FleetProgress(4, ("patched", "up-to-date", "kept-back", "failed"), stream=io.StringIO())
    assert not p.enabled  # not a terminal: silent
    for o in ("patched", "failed", "patched"):
        p.update(o)
    assert p.line().endswith("3/4  patched 2  failed 1")
    assert p.stream.getvalue() == ""


def _run_on_a_terminal(tmp_path, *extra) -> tuple[int, str, str]:
    images = [overlay(str(tmp_path / f"vm{i}.qcow2")) for i in range(2)]
    master, slave = pty.openpty()
    try:
        with open(tmp_path / "stdout", "w+") as stdout:  # a file: a full pipe would block the run
            proc = subprocess.Popen([sys.executable, "-m", "nuwa", "patch", *images, *deb_args(), "--dry-run",
                                     "--workers", "0", *extra], stdout=stdout, stderr=slave, env=nuwa_env())
            os.close(slave)
            err = _read_all(master)
            proc.wait(timeout=300)
            stdout.seek(0)
            out = stdout.read()
    finally:
        os.close(master)
    return proc.returncode, out, err


def test_a_terminal_sees_one_bar(tmp_path):
    code, out, err = _run_on_a_terminal(tmp_path)
    assert code == 0, err
    assert "\rfleet [" in err and err.rstrip().endswith("2/2  patched 2\x1b[K"), repr(err)
    assert "fleet [" not in out  # stdout carries the report only


def test_no_bar_with_json_or_quiet(tmp_path):
    for flag in ("--json", "--quiet"):
        (tmp_path / flag[2:]).mkdir()
        code, out, err = _run_on_a_terminal(tmp_path / flag[2:], flag)
        assert code == 0 and err == "", repr(err)
