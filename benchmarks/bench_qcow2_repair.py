#!/usr/bin/env python3
"""qcow2 repair benchmark: Nuwa's dirty-image rebuild and check against qemu-img, side by side.

    python3 benchmarks/bench_qcow2_repair.py [--size-mib 1024] [--cluster 65536] [--repeat 2]

A dirty image is made with the real tools: ``qemu-img create -o lazy_refcounts=on``, then
``qemu-io`` writes ``--size-mib`` of data (every cluster allocated) and is killed with
``sigraise 9``. Then, on fresh copies (best of ``--repeat`` runs, page cache warm):

1. repair: ``qemu-img check -r all`` versus Nuwa opening the image writable and closing it
   (``repair_dirty``); both results are judged by ``qemu-img check``;
2. check: ``qemu-img check`` versus ``check_qcow2`` on the dirty image.

Prints the seconds and the ratio Nuwa/qemu-img. Files go to ``--dir`` and are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.formats.detect import open_disk  # noqa: E402
from nuwa.formats.qcow2 import check_qcow2  # noqa: E402


def make_dirty(path: str, size_mib: int, cluster: int) -> None:
    """A lazy-refcount image whose refcounts for every data cluster never reached the disk."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"lazy_refcounts=on,cluster_size={cluster}",
                    path, f"{size_mib}M"], check=True)
    cmds = []
    for off in range(0, size_mib, 64):
        cmds += ["-c", f"write -q -P {off % 251} {off}M {min(64, size_mib - off)}M"]
    r = subprocess.run(["qemu-io", "-f", "qcow2", *cmds, "-c", "sigraise 9", path], capture_output=True)
    assert r.returncode == -9, r
    r = subprocess.run(["qemu-img", "check", path], capture_output=True)
    assert r.returncode == 2, "the image should be corrupt before the repair"


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--cluster", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/nuwa-bench-qcow2-repair")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    src = os.path.join(args.dir, "dirty.qcow2")
    work = os.path.join(args.dir, "work.qcow2")
    try:
        make_dirty(src, args.size_mib, args.cluster)
        rows = []

        def repair_qemu():
            subprocess.run(["qemu-img", "check", "-q", "-r", "all", work], check=False, capture_output=True)

        def repair_nuwa():
            with open_disk(work, writable=True):
                pass

        for name, fn in (("repair", None), ("check", None)):
            q = n = float("inf")
            for _ in range(args.repeat):
                if name == "repair":
                    shutil.copy(src, work)
                    q = min(q, timed(repair_qemu))
                    assert subprocess.run(["qemu-img", "check", work], capture_output=True).returncode == 0
                    shutil.copy(src, work)
                    n = min(n, timed(repair_nuwa))
                    assert subprocess.run(["qemu-img", "check", work], capture_output=True).returncode == 0
                else:
                    q = min(q, timed(lambda: subprocess.run(["qemu-img", "check", src], capture_output=True)))
                    n = min(n, timed(lambda: check_qcow2(src)))
            rows.append((name, q, n))
        print(f"dirty image: {args.size_mib} MiB guest, {args.cluster}-byte clusters, all allocated")
        print(f"{'measurement':<10} {'qemu-img (s)':>12} {'Nuwa (s)':>10} {'ratio':>7}")
        for name, q, n in rows:
            print(f"{name:<10} {q:>12.3f} {n:>10.3f} {n / q:>7.2f}")
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
