"""``lsmod`` against kmod 30's real one in a chroot of a bookworm tree whose kernel has loaded
nothing: the chroot's ``/proc`` is a private tmpfs holding an empty ``modules`` file (what a
kernel with no module loaded shows), the dormant image's answer."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.kerneltree import kernel_tree
from helpers import runs
from judges import tool

pytestmark = [pytest.mark.judge, pytest.mark.root]


def _real(tree: str, argv: list[str]) -> tuple[int, bytes, bytes]:
    script = 'mount -t tmpfs none "$1/proc" && : > "$1/proc/modules" && shift && exec chroot "$@"'
    p = subprocess.run([tool("unshare"), "--mount", "sh", "-c", script, "sh", tree, tree, *argv],
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("argv", [["lsmod"], ["/sbin/lsmod"], ["lsmod", "x"], ["lsmod", "-h"],
                                  ["/usr/sbin/lsmod", "--version"], ["lsmod", "a", "b"]])
def test_lsmod_like_kmod_with_nothing_loaded(tmp_path, argv):
    tree = kernel_tree()
    real = _real(tree, argv)
    assert real[0] in (0, 1) and (real[1] or real[2])  # the judge ran
    got = runs.run_model(str(tmp_path), argv, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, name="lsmod")
    assert got == real
    assert os.listdir(tmp_path) == []  # nothing written
