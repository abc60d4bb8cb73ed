"""Real apt in a chroot of a real bookworm tree as the judge of how configuration is read.

Shared by tests/apt/test_{sources,aptconf,preferences,keys}.py. One copy of the cached
bookworm minbase tree (tests/debian_tree.py) per test module; ``reset()`` puts its
``/etc/apt`` and ``/var/lib/dpkg/arch`` back between cases. apt runs only inside the chroot
(the chroot is the judge; Nuwa reads the same tree through ``HostDirFS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from debian_tree import bookworm_tree, copy_tree, remove_path

KEEP = ("etc/apt", "var/lib/dpkg/arch")


class AptChroot:
    """A private copy of the bookworm tree whose apt configuration a test rewrites."""

    def __init__(self, workdir: str):
        self.root = copy_tree(bookworm_tree(), os.path.join(workdir, "root"))
        self.saved = os.path.join(workdir, "saved")
        os.makedirs(self.saved)
        for rel in KEEP:
            src = os.path.join(self.root, rel)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(self.saved, rel), symlinks=True)
            elif os.path.exists(src):
                os.makedirs(os.path.dirname(os.path.join(self.saved, rel)), exist_ok=True)
                shutil.copy2(src, os.path.join(self.saved, rel))

    def reset(self) -> None:
        """The tree's original apt configuration and dpkg architectures, nothing else."""
        for rel in KEEP:
            dst = os.path.join(self.root, rel)
            remove_path(dst)
            src = os.path.join(self.saved, rel)
            if os.path.isdir(src):
                shutil.copytree(src, dst, symlinks=True)
            elif os.path.exists(src):
                shutil.copy2(src, dst)
        # the sources a case does not write are empty, so only the case's own entries count
        self.write("etc/apt/sources.list", "")

    def write(self, rel: str, text: str | bytes) -> str:
        """Write a file of the tree (replacing, never editing in place)."""
        path = os.path.join(self.root, rel.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        return path

    def apt(self, *args: str) -> subprocess.CompletedProcess:
        """Run an apt program inside the chroot (never on the host's configuration)."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        return subprocess.run(["chroot", self.root, *args], capture_output=True, text=True, env=env)


def apt_messages(stderr: str, kind: str) -> list[str]:
    """apt's ``E:``/``W:`` lines (``kind`` = "E" or "W"), de-duplicated in order."""
    out = []
    for line in stderr.splitlines():
        if line.startswith(kind + ": ") and line[3:] not in out:
            out.append(line[3:])
    return out
