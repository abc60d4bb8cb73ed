#!/usr/bin/env python3
"""Make a real "before and after apt-get upgrade" pair of Debian trees and ext4 images.

    python3 tools/make_upgrade_pair.py BASE_TREE OUTDIR

BASE_TREE is an outdated bookworm minbase tree (``mmdebstrap --mode=root --variant=minbase``;
tests/debian_tree.py builds and caches one). OUTDIR receives ``a/`` (a copy of the base),
``b/`` (a copy upgraded by real apt/dpkg in a chroot, with bookworm-security and
bookworm-updates added to its sources and ``policy-rc.d`` exiting 101), and ``a.img``/``b.img``
made by ``mkfs.ext4 -d``. Needs root. The mirrors come from the machine's apt sources.
Used by tests/fs/test_upgrade_diff.py and benchmarks/bench_diff.py; the result is cached in
OUTDIR (``done`` stamp) so a second run is free.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host_mirrors  # noqa: E402


def _mirrors() -> tuple[str, str]:
    """(debian, debian-security) URIs from the machine's apt sources."""
    return host_mirrors.mirrors()


def _du_bytes(path: str) -> int:
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def mkfs_image(tree: str, img: str) -> None:
    """``mkfs.ext4 -d`` with room to spare (4 KiB blocks, fixed UUID and hash seed)."""
    size = max(64 << 20, int(_du_bytes(tree) * 1.6))
    mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
    subprocess.run([mkfs, "-q", "-F", "-b", "4096", "-U", "6a7c4c3e-0000-4000-8000-000000000001",
                    "-E", "hash_seed=6a7c4c3e-0000-4000-8000-000000000002,root_owner=0:0",
                    "-d", tree, img, str(size // 1024) + "k"], check=True, capture_output=True)


def upgrade(tree: str) -> str:
    """Run ``apt-get upgrade`` in a chroot of ``tree`` with the security suite; return its log."""
    main, sec = _mirrors()
    with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
        f.write(f"deb {main} bookworm main\ndeb {main} bookworm-updates main\n"
                f"deb {sec} bookworm-security main\n")
    prc = os.path.join(tree, "usr/sbin/policy-rc.d")
    with open(prc, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(prc, 0o755)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    log = ""
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "upgrade"],
                ["apt-get", "clean"]):
        r = subprocess.run(["chroot", tree, *cmd], capture_output=True, text=True, env=env)
        log += r.stdout + r.stderr
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed in the chroot (exit {r.returncode}):\n{log[-2000:]}")
    os.unlink(prc)
    return log


def make_pair(base: str, out: str) -> dict:
    """Build (or reuse) OUTDIR/{a,b,a.img,b.img}; returns their paths and the number of upgraded packages."""
    paths = {k: os.path.join(out, k) for k in ("a", "b", "a.img", "b.img", "done")}
    if os.path.exists(paths["done"]):
        return paths
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    subprocess.run(["cp", "-a", base, paths["a"]], check=True)
    subprocess.run(["cp", "-a", base, paths["b"]], check=True)
    log = upgrade(paths["b"])
    mkfs_image(paths["a"], paths["a.img"])
    mkfs_image(paths["b"], paths["b.img"])
    m = re.search(r"(\d+) upgraded", log)
    with open(paths["done"], "w") as f:
        f.write(f"{m.group(1) if m else '?'} upgraded\n")
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    p = make_pair(sys.argv[1], sys.argv[2])
    print(open(p["done"]).read().strip(), "->", sys.argv[2])
