#!/usr/bin/env python3
"""Unpack the bookworm-security updates of a minbase tree: Nuwa's dpkg vs real ``dpkg --unpack``.

One run each, on fresh copies of the same tree (tools/dpkg_material.py, cached per day). Both
sides replay the dpkg calls real apt plans for the update (``dpkg_material.apt_steps``: apt
unpacks in groups and configures Pre-Depends in between, so a plain ``dpkg --unpack`` of the
whole set is refused once a pending package pre-depends on another one); the time of the
``--unpack`` calls is what is compared. Real dpkg runs in a chroot; Nuwa's dpkg on HostDirFS
(with and without its preflight verification pass, a recording script runner) and on an ext4
image of the tree made by ``mkfs.ext4 -d``. Prints seconds and the ratios (>1: Nuwa slower).

    python3 benchmarks/bench_dpkg.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import dpkg_material as M  # noqa: E402
from helpers.oracle import nuwa_dpkg_steps, real_dpkg_steps  # noqa: E402

from nuwa.deb.operations import Dpkg  # noqa: E402
from nuwa.deb.runner import RecordingRunner  # noqa: E402
from nuwa.fs.hostdir import HostDirFS  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def unpack_seconds(replay, steps) -> float:
    """Run every step with ``replay([step])``; the seconds spent in the unpack calls only (the
    configure calls between them run too, untimed)."""
    spent = 0.0
    for step in steps:
        t = timed(lambda: replay([step]))
        if step[0] == "unpack":
            spent += t
    return spent


def nuwa_unpack(fs, steps, verify) -> float:
    """apt's dpkg calls with Nuwa's dpkg; returns the seconds spent in the unpack calls."""
    d = Dpkg(fs, RecordingRunner(), verify=verify)
    spent = unpack_seconds(lambda s: nuwa_dpkg_steps(d, s), steps)
    d.commit()
    return spent


def main() -> int:
    base = M.base_tree()
    steps = M.apt_steps(base)
    debs = [p for action, ops in steps if action == "unpack" for p in ops]
    size = sum(os.path.getsize(d) for d in debs)
    print(f"{len(debs)} .debs in {len(steps)} dpkg calls (apt's plan), {size / 1e6:.1f} MB, tree {base}")
    work = tempfile.mkdtemp(prefix="nuwa-bench-dpkg-", dir="/var/tmp")
    try:
        a = os.path.join(work, "A")
        M.copy_tree(base, a)
        t_real = unpack_seconds(lambda s: real_dpkg_steps(a, s), steps)
        shutil.rmtree(a)
        print(f"real dpkg --unpack (chroot):          {t_real:7.2f} s")
        results = {}
        for verify in (True, False):
            b = os.path.join(work, "B")
            M.copy_tree(base, b)
            results[verify] = nuwa_unpack(HostDirFS(b, writable=True), steps, verify)
            shutil.rmtree(b)
            label = "with preflight" if verify else "no preflight  "
            print(f"nuwa dpkg on HostDirFS ({label}): {results[verify]:7.2f} s   ratio {results[verify] / t_real:5.2f}")
        import nuwa

        img = os.path.join(work, "root.img")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", base, img, "2G"], check=True, capture_output=True)
        with nuwa.open(img, writable=True) as image:
            t_ext4 = nuwa_unpack(image.root(), steps, verify=False)
        print(f"nuwa dpkg on the ext4 engine:         {t_ext4:7.2f} s   ratio {t_ext4 / t_real:5.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
