"""Differential tests of id, getent, sync, sleep, uname against the real programs.

The scratch tree's /etc/passwd and /etc/group are copies of the host's, so the real programs
(reading the host files) and the models (reading the tree's) see the same accounts. The real
process runs as root, as maintainer scripts do.
"""

import os
import platform

import pytest

from cmdharness import compare, deferred

CASES = [
    "id -u", "id -g", "id -un", "id -gn", "id -u root", "id -g daemon", "id -un 0", "id -gn www-data",
    "id -G root", "id -Gn root", "id root", "id daemon", "id nosuchuser", "id -u nosuchuser", "id -ug",
    "id -n", "id a b", "getent passwd root", "getent passwd 0", "getent passwd nosuch", "getent group root",
    "getent group 33", "getent group nosuch", "getent passwd root daemon", "getent passwd", "getent group",
    "getent nosuchdb x", "getent", "getent passwd nosuch root", "sync", "sleep 0", "sleep 0.01", "sleep x", "sleep",
    "uname", "uname -s", "uname -o",
]


@pytest.mark.parametrize("cmd", CASES)
def test_users(tmp_path, cmd):
    if cmd.startswith("getent") and not _files_only():
        pytest.skip("the host's nsswitch.conf uses more than files for passwd/group")
    compare(tmp_path, cmd)


def _files_only() -> bool:
    try:
        text = open("/etc/nsswitch.conf").read()
    except OSError:
        return True
    return all(set(line.split(":", 1)[1].split()) <= {"files", "systemd"}
               for line in text.splitlines() if line.split(":")[0] in ("passwd", "group"))


def test_uname_machine_from_dpkg(tmp_path):
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
    if arch is None:
        pytest.skip("unusual host architecture")

    def setup(root):
        os.makedirs(root + "/var/lib/dpkg", exist_ok=True)
        with open(root + "/var/lib/dpkg/status", "w") as f:
            f.write(f"Package: dpkg\nStatus: install ok installed\nArchitecture: {arch}\nVersion: 1.21.22\n\n")
    compare(tmp_path, "uname -m", setup=setup)


@pytest.mark.parametrize("cmd", ["uname -r", "uname -a"])
def test_users_deferred(tmp_path, cmd):
    assert deferred(tmp_path, cmd)
