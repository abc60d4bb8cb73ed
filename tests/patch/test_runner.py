"""The shell simulator as dpkg's maintainer-script runner (nuwa.patch.runner.SimulatorRunner).

Packages built by dpkg-deb carry maintainer scripts that call dpkg's helpers; Nuwa's dpkg
installs them with the simulator as runner. The scripts' effects (a diversion, a trigger
record, a file) must be those the same helper invocations have when run by the real tools
(checked by running the real helper on a copy), and what cannot be simulated is deferred.
"""

import os
import subprocess

import pytest

import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "script"))

from helpers.debtools import build_deb, make_root  # noqa: E402
from dpkghelpers import require_dpkg
from nuwa.deb.operations import Dpkg
from nuwa.patch.runner import SimulatorRunner
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models

POSTINST = """#!/bin/sh -e
if [ "$1" = configure ]; then
    if dpkg --compare-versions "$2" lt 2.0; then
        echo "upgrading from '$2'" > /etc/demo.state
    fi
    dpkg-divert --package demo --no-rename --divert /usr/bin/tool.real --add /usr/bin/tool
    dpkg-trigger --no-await demo-trigger
    dpkg --compare-versions "$2" lt-nl 2.0 || echo "lt-nl: an empty version is the latest" >> /etc/demo.state
fi
exit 0
"""

PROGS = ("dpkg", "dpkg-divert", "dpkg-trigger", "dpkg-query", "frobnicate-cache")


def _root(path):
    make_root(path)
    os.makedirs(os.path.join(path, "usr/bin"), exist_ok=True)
    for p in PROGS:  # the interpreter looks programs up in the image's PATH
        f = os.path.join(path, "usr/bin", p)
        open(f, "w").close()
        os.chmod(f, 0o755)
    open(os.path.join(path, "var/lib/dpkg/triggers/Unincorp"), "w").close()
    return path


@pytest.fixture
def root(tmp_path):
    require_dpkg()
    return _root(str(tmp_path / "root"))


def test_postinst_runs_helpers(root, tmp_path):
    deb = build_deb(str(tmp_path), "demo", "2.0-1", {"/usr/share/demo/x": b"x"}, scripts={"postinst": POSTINST})
    runner = SimulatorRunner()
    d = Dpkg(HostDirFS(root, writable=True), runner)
    d.install([deb])
    d.commit()
    assert runner.lines() == ["demo postinst configure -> 0"] and runner.results[0].args == ["configure", ""]
    assert open(os.path.join(root, "etc/demo.state")).read() == "upgrading from ''\nlt-nl: an empty version is the latest\n"
    # the same helper calls made by the real programs on a twin root give the same admin files
    twin = _root(str(tmp_path / "twin"))
    env = {"PATH": os.environ["PATH"], "DPKG_ROOT": twin, "DPKG_ADMINDIR": twin + "/var/lib/dpkg",
           "DPKG_MAINTSCRIPT_PACKAGE": "demo", "DPKG_MAINTSCRIPT_ARCH": "all"}
    subprocess.run(["dpkg-divert", "--package", "demo", "--no-rename", "--divert", "/usr/bin/tool.real",
                    "--add", "/usr/bin/tool"], env=env, check=True, capture_output=True)
    subprocess.run(["dpkg-trigger", "--no-await", "demo-trigger"], env=env, check=True)
    # dpkg incorporates what the postinst's dpkg-trigger recorded once the postinst is done
    # (post_postinst_tasks -> trig_incorporate); any dpkg run that opens the database does that
    subprocess.run(["dpkg", "--root", twin, "--configure", "--pending"], check=True, capture_output=True)
    for f in ("diversions", "triggers/Unincorp"):
        assert open(os.path.join(root, "var/lib/dpkg", f)).read() == open(os.path.join(twin, "var/lib/dpkg", f)).read()
    assert "Status: install ok installed" in open(os.path.join(root, "var/lib/dpkg/status")).read()


def test_failing_script_makes_dpkg_unwind(root, tmp_path):
    bad = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then dpkg --compare-versions 1 gt 2; fi\n"
    deb = build_deb(str(tmp_path), "demo", "1.0", {"/usr/share/demo/x": b"x"}, scripts={"postinst": bad})
    runner = SimulatorRunner()
    d = Dpkg(HostDirFS(root, writable=True), runner)
    with pytest.raises(Exception):
        d.install([deb])
    assert runner.results[0].status == 1 and not runner.results[0].deferred_whole


def test_unmodelled_command_is_deferred(root, tmp_path):
    script = "#!/bin/sh\nset -e\nfrobnicate-cache --rebuild\ntouch_me=1\n"
    deb = build_deb(str(tmp_path), "demo", "1.0", {"/usr/share/demo/x": b"x"}, scripts={"postinst": script})
    runner = SimulatorRunner()
    d = Dpkg(HostDirFS(root, writable=True), runner)
    d.install([deb])
    d.commit()
    (call,) = runner.deferred()
    assert not call.deferred_whole and call.result.deferred_commands[0].argv == ["frobnicate-cache", "--rebuild"]


def test_used_output_defers_whole_script_and_rolls_back(root, tmp_path):
    script = ("#!/bin/sh\nset -e\ndpkg-divert --package demo --no-rename --add /usr/bin/other\n"
              "v=$(frobnicate-cache --query)\n")
    deb = build_deb(str(tmp_path), "demo", "1.0", {"/usr/share/demo/x": b"x"}, scripts={"postinst": script})
    runner = SimulatorRunner()
    ov = Overlay(HostDirFS(root, writable=True))
    d = Dpkg(ov, runner)
    d.install([deb])
    (call,) = runner.deferred()
    assert call.deferred_whole and call.status == 0
    assert not ov.exists("/var/lib/dpkg/diversions") or b"/usr/bin/other" not in ov.read_bytes("/var/lib/dpkg/diversions")


def test_perl_script_is_deferred(root, tmp_path):
    deb = build_deb(str(tmp_path), "demo", "1.0", {"/usr/share/demo/x": b"x"},
                    scripts={"postinst": "#!/usr/bin/perl\nexit 0;\n"})
    runner = SimulatorRunner()
    Dpkg(HostDirFS(root, writable=True), runner).install([deb])
    assert runner.results[0].deferred_whole and "perl" in runner.results[0].reason


def test_runner_uses_the_model_set_it_is_given(root, tmp_path):
    """SimulatorRunner(models=...): a program left out of the set is deferred, an added one runs."""
    calls = []

    def frobnicate(inv):
        calls.append(inv.argv)
        return 0

    script = "#!/bin/sh\nset -e\nfrobnicate-cache --rebuild\ndpkg-trigger --no-await demo-trigger\n"
    deb = build_deb(str(tmp_path), "demo", "1.0", {"/usr/share/demo/x": b"x"}, scripts={"postinst": script})
    models = default_models().without("dpkg-trigger").extended({"frobnicate-cache": frobnicate})
    runner = SimulatorRunner(models=models)
    d = Dpkg(HostDirFS(root, writable=True), runner)
    d.install([deb])
    d.commit()
    assert calls == [["frobnicate-cache", "--rebuild"]]
    (call,) = runner.deferred()
    (cmd,) = call.result.deferred_commands
    assert cmd.argv == ["dpkg-trigger", "--no-await", "demo-trigger"] and cmd.reason == "no model for dpkg-trigger"
    assert open(os.path.join(root, "var/lib/dpkg/triggers/Unincorp")).read() == ""
