"""The README's main job, exactly as a new user runs it: patch the shipped default image with
the shipped security updates into a new overlay (no network needed)."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import subprocess
import sys

from judges import qemu_img_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _nuwa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nuwa", *args], cwd=ROOT, capture_output=True, text=True)


def test_readme_patch_command_works_and_leaves_the_original_alone(tmp_path):
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "nuwa patch testimages/default.qcow2 --deb testimages/updates/*.deb --output" in readme
    image = os.path.join(ROOT, "testimages/default.qcow2")
    debs = sorted(glob.glob(os.path.join(ROOT, "testimages/updates/*.deb")))
    assert len(debs) == 3
    before = hashlib.sha256(open(image, "rb").read()).hexdigest()
    out = str(tmp_path / "patched.qcow2")
    r = _nuwa("patch", "testimages/default.qcow2", "--deb", *debs, "--output", out)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(open(image, "rb").read()).hexdigest() == before
    qemu_img_check(out)
    # every pending update listed beside the image is now installed at exactly that version
    wanted = dict(re.findall(r"^Inst (\S+) \[[^]]*\] \((\S+) ", open(os.path.join(ROOT, "testimages/default.security-updates.txt")).read(), re.M))
    pk = _nuwa("packages", out)
    assert pk.returncode == 0, pk.stderr
    installed = dict(line.split("\t")[:2] for line in pk.stdout.splitlines())
    for name, version in wanted.items():
        got = installed.get(name) or installed.get(f"{name}:amd64")
        assert got == version, (name, got, version)
