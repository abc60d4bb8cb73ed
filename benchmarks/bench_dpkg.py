#!/usr/bin/env python3
"""Unpack the bookworm-security updates of a minbase tree: Nuwa's dpkg vs real ``dpkg --unpack``.

One run each, on fresh copies of the same tree (tools/dpkg_material.py, cached per day):
real dpkg in a chroot (``dpkg --unpack``), Nuwa's dpkg on HostDirFS (with and without its
preflight verification pass), and, when the ext4 engine is available, Nuwa's dpkg on an ext4
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
from helpers.oracle import real_dpkg  # noqa: E402

from nuwa.deb.operations import Dpkg  # noqa: E402
from nuwa.deb.runner import RecordingRunner  # noqa: E402
from nuwa.fs.hostdir import HostDirFS  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def nuwa_unpack(fs, debs, verify):
    d = Dpkg(fs, RecordingRunner(), verify=verify)
    d.unpack(debs)
    d.commit()


def main() -> int:
    debs = M.deb_files()
    base = M.base_tree()
    size = sum(os.path.getsize(d) for d in debs)
    print(f"{len(debs)} .debs, {size / 1e6:.1f} MB, tree {base}")
    work = tempfile.mkdtemp(prefix="nuwa-bench-dpkg-", dir="/var/tmp")
    try:
        a = os.path.join(work, "A")
        M.copy_tree(base, a)
        r = [None]
        t_real = timed(lambda: r.__setitem__(0, real_dpkg(a, debs, ("--unpack",))))
        assert r[0].returncode == 0, r[0].stderr
        shutil.rmtree(a)
        print(f"real dpkg --unpack (chroot):          {t_real:7.2f} s")
        results = {}
        for verify in (True, False):
            b = os.path.join(work, "B")
            M.copy_tree(base, b)
            results[verify] = timed(lambda: nuwa_unpack(HostDirFS(b, writable=True), debs, verify))
            shutil.rmtree(b)
            label = "with preflight" if verify else "no preflight  "
            print(f"nuwa dpkg on HostDirFS ({label}): {results[verify]:7.2f} s   ratio {results[verify] / t_real:5.2f}")
        try:
            import nuwa

            img = os.path.join(work, "root.img")
            subprocess.run(["mkfs.ext4", "-q", "-F", "-d", base, img, "2G"], check=True, capture_output=True)
            t0 = time.perf_counter()
            with nuwa.open(img, writable=True) as image:
                nuwa_unpack(image.root(), debs, verify=False)
            t_ext4 = time.perf_counter() - t0
            print(f"nuwa dpkg on the ext4 engine:         {t_ext4:7.2f} s   ratio {t_ext4 / t_real:5.2f}")
        except Exception as e:  # the engine may not write yet: say so, do not hide it
            print(f"nuwa dpkg on the ext4 engine:         not measured ({type(e).__name__}: {e})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
