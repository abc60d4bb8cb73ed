"""The fleet's inputs: list files, output names, clashes, and the package-state key.

The key (``nuwa.fleet.images.state_key``) decides which images share one ``--upgrade`` plan:
two overlays of one base share it; an edit under ``/etc/apt`` or to dpkg's status separates
them; an edit elsewhere (``/etc/motd``) does not.
"""

from __future__ import annotations

import os

import pytest

import nuwa
from fleetkit import overlay
from helpers.cli import nuwa as nuwa_cli
from nuwa.errors import InvalidInputError
from nuwa.fleet.images import gather, output_name, output_paths, read_list, state_key


def test_list_files_and_gather(tmp_path):
    (tmp_path / "sub").mkdir()
    lst = tmp_path / "sub" / "list.txt"
    lst.write_text("# comment\n\n  a.qcow2  \n/abs/b.raw\n")
    assert read_list(str(lst)) == [str(tmp_path / "sub" / "a.qcow2"), "/abs/b.raw"]
    assert gather(["x.qcow2"], [str(lst)]) == ["x.qcow2", str(tmp_path / "sub" / "a.qcow2"), "/abs/b.raw"]
    with pytest.raises(InvalidInputError, match="no image given"):
        gather([], [])
    with pytest.raises(InvalidInputError, match="listed twice"):
        gather(["a.qcow2", "./a.qcow2"])
    with pytest.raises(InvalidInputError, match="cannot read the image list"):
        read_list(str(tmp_path / "missing.txt"))


def test_output_names_and_clashes(tmp_path):
    assert output_name("/x/vm.qcow2") == "vm.qcow2" and output_name("disk.raw") == "disk.raw.qcow2"
    out = tmp_path / "out"
    out.mkdir()
    assert output_paths(["/a/vm1.qcow2", "/b/vm2"], str(out)) == [str(out / "vm1.qcow2"), str(out / "vm2.qcow2")]
    with pytest.raises(InvalidInputError, match="one output"):
        output_paths(["/a/vm.qcow2", "/b/vm.qcow2"], str(out))
    with pytest.raises(InvalidInputError, match="overwrite an input"):
        output_paths([str(out / "vm.qcow2")], str(out))
    with pytest.raises(InvalidInputError, match="does not exist"):
        output_paths(["/a/vm.qcow2"], str(tmp_path / "nope"))


def _key(path: str) -> str:
    with nuwa.open(path) as image:
        return state_key(image.root(), salt="upgrade")


def test_the_state_key_follows_the_package_state_only(tmp_path):
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    assert _key(a) == _key(b)
    with nuwa.open(a) as image:
        assert state_key(image.root(), salt="upgrade") != state_key(image.root(), salt="full-upgrade")
    edits = {"motd": "echo hello >> /etc/motd", "apt": "echo '# x' >> /etc/apt/sources.list",
             "status": "echo >> /var/lib/dpkg/status"}
    keys = {}
    for name, script in edits.items():
        out = tmp_path / f"{name}.qcow2"
        nuwa_cli("sh", a, "-c", script, "--output", out, check=0)
        keys[name] = _key(str(out))
    assert keys["motd"] == _key(a)
    assert keys["apt"] != _key(a) and keys["status"] != _key(a) and keys["apt"] != keys["status"]


def test_scan_reads_a_list_file(tmp_path):
    lst = tmp_path / "list"
    lst.write_text(os.path.relpath(overlay(str(tmp_path / "vm.qcow2")), tmp_path) + "\n")
    r = nuwa_cli("scan", "--from-file", lst, "--offline", "--cache", tmp_path / "cache", "--json")
    # the default image has no archive key: the scan names the image and says so, exit 2 or 3
    assert str(tmp_path / "vm.qcow2") in r.stdout + r.stderr, (r.stdout, r.stderr)
    r = nuwa_cli("scan")
    assert r.returncode == 2 and "no image given" in r.stderr
