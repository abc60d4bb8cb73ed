"""Packages found by tools/fuzz.py that made the unpacker leak a plain OSError (a traceback in
the library, exit 1 with a bare errno text on the command line). Each is a package real dpkg
cannot install either (judged: ``dpkg --root --unpack`` fails on it); Nuwa now refuses it as bad
input (InvalidInputError, exit 2) naming the package and the member or path."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers.cli import nuwa
from helpers.debtools import make_root
from helpers.paths import DEFAULT_IMAGE, REPO
from judges import tool
from nuwa.errors import EXIT_USAGE, InvalidInputError, NuwaError
from nuwa.fs.memory import MemoryFS
from nuwa.patch.install import install_debs

CASES = os.path.join(REPO, "tests", "fuzz_cases")
EXPECT = {
    "deb-hardlink-to-directory.deb": ["fuzzpkg", "h2", "hard link to", "which is a directory"],
    "deb-member-under-missing-directory.deb": ["fuzzpkg", "unable to create '/usr/share/fuzzpkg/data.dpkg-new'",
                                               "No such file or directory"],
    "deb-name-component-too-long.deb": ["fuzzpkg", "longer than 255 bytes"],
    # a name dpkg's pkg_name_is_illegal refuses (it reached the info database as a file name)
    "deb-illegal-package-name.deb": ["invalid package name", "character '$' not allowed"],
    # an explicit trigger interest whose file name in triggers/ cannot exist (ENAMETOOLONG leaked)
    "deb-trigger-name-too-long.deb": ["fuzzpkg", "illegal trigger name", "longer than 255 bytes"],
    # an explicit trigger named '..': its interests file would be the triggers directory's parent
    "deb-trigger-name-dotdot.deb": ["fuzzpkg", "illegal trigger name '..'", "not a file name"],
}


BASE_FILES = (b"Package: base-files\nStatus: install ok installed\nMaintainer: T <t@e>\nArchitecture: amd64\n"
              b"Version: 12.4\nDescription: base\n")


def _root() -> MemoryFS:
    fs = MemoryFS()
    for d in ("/etc", "/var", "/var/lib", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/dpkg/updates",
              "/usr", "/usr/share"):
        fs.mkdir(d, 0o755)
    fs.write_bytes("/var/lib/dpkg/status", BASE_FILES)  # fuzzpkg pre-depends on it
    fs.write_bytes("/var/lib/dpkg/info/format", b"1\n")
    return fs


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_refused_as_bad_input(name):
    with pytest.raises(InvalidInputError) as e:
        install_debs(_root(), [os.path.join(CASES, name)])
    msg = str(e.value)
    assert "\n" not in msg
    for w in EXPECT[name]:
        assert w in msg, (w, msg)


@pytest.mark.judge
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_real_dpkg_cannot_install_it_either(name, tmp_path):
    root = make_root(str(tmp_path / "root"))
    os.makedirs(os.path.join(root, "usr/share"))
    r = subprocess.run([tool("dpkg"), "--root", root, "--force-depends", "--force-script-chrootless",
                        "--unpack", os.path.join(CASES, name)], capture_output=True, text=True)
    assert r.returncode != 0, r.stdout + r.stderr


def test_a_postinst_whose_text_is_a_path_is_run_as_text():
    """A postinst whose whole text is ``/`` was read as the path of the script to run (the root
    directory: IsADirectoryError leaked). It is the script's text: dpkg's execvp runs a file
    without ``#!`` with /bin/sh, and dash says "/: Permission denied", status 126."""
    with pytest.raises(NuwaError) as e:
        install_debs(_root(), [os.path.join(CASES, "deb-postinst-is-a-directory-name.deb")])
    assert "post-installation script subprocess returned error exit status 126" in str(e.value)


@pytest.mark.judge
def test_command_line_exit_2_one_line(tmp_path):
    image = tmp_path / "disk.qcow2"
    shutil.copyfile(DEFAULT_IMAGE, image)
    r = nuwa("patch", image, "--deb", os.path.join(CASES, "deb-member-under-missing-directory.deb"), "--dry-run")
    assert r.returncode == EXIT_USAGE, r
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "unable to create" in r.stderr
