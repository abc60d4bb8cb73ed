"""``run-parts`` model against the real run-parts (debianutils) on identical directories."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from judges import tool
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation

MODELS = default_models()


def _tree(root):
    d = root / "d"
    d.mkdir(parents=True)
    for name, body, mode in [
        ("10-one", "#!/bin/sh\necho one $1\n", 0o755),
        ("20_two", "#!/bin/sh\necho two\nexit 3\n", 0o755),
        ("30noexec", "x\n", 0o644),
        ("bad.name", "#!/bin/sh\necho bad\n", 0o755),
        ("foo.dpkg-old", "#!/bin/sh\n", 0o755),
        ("lsb-name", "#!/bin/sh\n", 0o755),
    ]:
        (d / name).write_text(body)
        os.chmod(d / name, mode)
    (d / "sub").mkdir()
    os.mkfifo(d / "fifo")
    os.symlink("10-one", d / "40link")
    os.symlink("missing", d / "50dangle")
    return d


CASES = [
    ["--test", "d"],
    ["--test", "d/"],
    ["--list", "d"],
    ["--test", "--reverse", "d"],
    ["--test", "--lsbsysinit", "d"],
    ["--test", "--regex=^[0-9].*$", "d"],
    ["--test", "nonexistent"],
    ["--test", "--list", "d"],
]


@pytest.mark.judge
@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) for c in CASES])
def test_run_parts_listing_matches_real(tmp_path, args):
    real_bin = tool("run-parts")
    hostdir = pytest.importorskip("nuwa.fs.hostdir")
    real_root, sim_root = tmp_path / "real", tmp_path / "sim"
    _tree(real_root)
    _tree(sim_root)
    r = subprocess.run([real_bin, *args], cwd=real_root, capture_output=True, text=True)
    inv = Invocation(argv=["run-parts", *args], fs=hostdir.HostDirFS(str(sim_root), writable=True), cwd="/", models=MODELS)
    status = MODELS["run-parts"](inv)
    assert (status, inv.stdout.decode(), inv.stderr.decode()) == (r.returncode, r.stdout, r.stderr)


@pytest.mark.judge
@pytest.mark.parametrize("extra", [[], ["--exit-on-error"], ["-a", "A"], ["--verbose", "--report"]])
def test_run_parts_running_matches_real(tmp_path, extra):
    """Running: the model hands each program to ``inv.run``; here a stand-in runs it with dash.

    The stand-in is the test's own oracle plumbing (the interpreter does this in Nuwa); what is
    judged is run-parts' selection, order, arguments, messages and exit status.
    """
    real_bin = tool("run-parts")
    dash = tool("dash")
    hostdir = pytest.importorskip("nuwa.fs.hostdir")
    real_root, sim_root = tmp_path / "real", tmp_path / "sim"
    _tree(real_root)
    _tree(sim_root)
    r = subprocess.run([real_bin, *extra, "d"], cwd=real_root, capture_output=True, text=True)
    calls = []

    def run(argv, stdin):
        calls.append(argv)
        p = subprocess.run([dash, str(sim_root / argv[0]), *argv[1:]], capture_output=True, input=stdin)
        return p.returncode, p.stdout, p.stderr

    inv = Invocation(argv=["run-parts", *extra, "d"], fs=hostdir.HostDirFS(str(sim_root), writable=True), cwd="/", run=run, models=MODELS)
    status = MODELS["run-parts"](inv)
    # stdout is exact; stderr lines are compared as a multiset because the real program's
    # stderr interleaves with its children's
    assert status == r.returncode
    assert inv.stdout.decode() == r.stdout
    assert sorted(inv.stderr.decode().splitlines()) == sorted(r.stderr.splitlines())
    assert all(c[0].startswith("d/") for c in calls)
