"""``/var/lib/apt/extended_states`` written as real apt writes it (``pkgDepCache::writeStateFile``).

The judge is the host's apt: ``apt-mark auto``/``manual`` rewrite the file through the same
function an install does, without running dpkg. Nuwa's :func:`write_auto_installed` is given
the same marks on a copy of the same starting file; the two files must be byte-identical:
existing stanzas keep their order and their other fields, a stanza left with nothing but a
manual mark is dropped, a new mark is appended, every stanza ends with a blank line.
"""

from __future__ import annotations

import os
import shutil

import pytest

from helpers.aptjudge import host_apt, make_repo, status_text
from nuwa.fs.hostdir import HostDirFS
from nuwa.patch.upgrade import EXTENDED_STATES, read_auto_installed, write_auto_installed

pytestmark = [pytest.mark.judge]

START = ("Package: c\nArchitecture: amd64\nAuto-Installed: 1\n\n"
         "Package: a\nArchitecture: amd64\nAuto-Installed: 0\nX-Note: kept by apt\n\n"
         "Package: b\nArchitecture: amd64\nAuto-Installed: 1\n\n"
         "Package: e\nArchitecture: amd64\nAuto-Installed: 1\n\n")
INSTALLED = [(n, "1.0", "amd64") for n in "abcde"]


@pytest.mark.parametrize("marks", [{"d": True, "b": False}, {"a": True, "c": False, "e": False}, {}])
def test_write_auto_installed_equals_apt_mark(tmp_path, marks):
    uri = make_repo(str(tmp_path / "repo"), "stable", INSTALLED, {"Origin": "T", "Label": "T"})
    work = str(tmp_path / "apt")
    run = host_apt(work, [f"{uri} stable main"], status_text(INSTALLED))
    with open(os.path.join(work, "extended_states"), "w") as f:
        f.write(START)
    for auto in (True, False):
        names = [n for n, a in marks.items() if a is auto]
        if names:
            run("apt-mark", "auto" if auto else "manual", *names)
    if not marks:  # apt-mark with nothing to change still rewrites the file through writeStateFile
        run("apt-mark", "auto", "c")
    root = tmp_path / "image"
    os.makedirs(root / "var/lib/apt")
    shutil.copy(os.path.join(work, "extended_states"), root / "var/lib/apt/apt-result")
    (root / "var/lib/apt/extended_states").write_text(START)
    fs = HostDirFS(str(root), writable=True)
    have = read_auto_installed(fs)
    for name, auto in marks.items():
        have[(name, "amd64")] = auto
    write_auto_installed(fs, have, "amd64")
    got = (root / "var/lib/apt/extended_states").read_text()
    assert got == (root / "var/lib/apt/apt-result").read_text()
    # apt really rewrote it: the marks changed are there, the obsolete stanzas are gone
    for name, auto in marks.items():
        assert (f"Package: {name}\n" in got) == (auto or name == "a"), got  # a keeps its X-Note
    assert EXTENDED_STATES.endswith(os.path.join("apt", "extended_states"))
