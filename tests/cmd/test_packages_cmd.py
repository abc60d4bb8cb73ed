"""``nuwa packages`` against ``dpkg-query -W`` on an ext4 image made by mkfs.ext4 -d."""

import json
import os
import shutil
import subprocess

import pytest

from judges import tool
from nuwa.cli import main
from helpers.oracle import dpkg_material

HOST_STATUS = "/var/lib/dpkg/status"


def _image(tmp_path, status_text: str) -> str:
    tree = tmp_path / "tree"
    (tree / "var/lib/dpkg").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "var/lib/dpkg/status").write_text(status_text)
    img = tmp_path / "root.img"
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), str(img), "16M"], check=True, capture_output=True)
    return str(img), str(tree)


def test_packages_matches_dpkg_query(tmp_path, capsys):
    if not os.path.exists(HOST_STATUS):
        pytest.skip("host has no dpkg status")
    img, tree = _image(tmp_path, open(HOST_STATUS, encoding="utf-8").read())
    expected = subprocess.run([tool("dpkg-query"), f"--admindir={tree}/var/lib/dpkg", "-W"], capture_output=True,
                              text=True, check=True).stdout
    assert main(["packages", img]) == 0
    assert capsys.readouterr().out == expected
    assert main(["packages", img, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    states = subprocess.run([tool("dpkg-query"), f"--admindir={tree}/var/lib/dpkg", "-W",
                             "-f=${binary:Package}|${db:Status-Abbrev}|${Architecture}\n"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(doc["packages"]) == len(states)
    for row, line in zip(doc["packages"], states):
        name, abbrev, arch = line.split("|")
        assert row["binary_package"] == name and row["architecture"] == arch
        assert abbrev[:2] == {"install": "i", "hold": "h", "deinstall": "r", "purge": "p", "unknown": "u"}[row["want"]] + \
            {"installed": "i", "config-files": "c", "unpacked": "U", "half-installed": "H", "half-configured": "F",
             "triggers-awaited": "W", "triggers-pending": "t"}[row["state"]]


def test_packages_on_broken_status_is_one_line_error(tmp_path, capsys):
    img, _ = _image(tmp_path, "Package: a\nStatus install ok installed\n")
    before = open(img, "rb").read()
    assert main(["packages", img]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be followed by colon" in err and "/var/lib/dpkg/status" in err
    assert open(img, "rb").read() == before
