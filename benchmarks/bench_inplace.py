#!/usr/bin/env python3
"""The cost of crash-atomic ``--in-place`` (issue 16): the same in-place patch with and without
the journal transaction.

    python3 benchmarks/bench_inplace.py [--repeat 5] [--kind qcow2|raw]

Each run patches a fresh copy of testimages/default.qcow2 (or of the same disk converted to
raw) with testimages/updates/*.deb in place, through the API (what ``nuwa patch --in-place``
calls), timed from open to close. ``journal``: the default (blocks in use are held, logged as
one jbd2 transaction, checkpointed); ``direct``: the pre-issue-16 writer (``journal=False``,
``unsafe_in_place``), which writes in place with the filesystem marked not clean meanwhile.
Reports the best and the median of ``--repeat`` runs of each, interleaved, and the ratio.
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import nuwa  # noqa: E402
import nuwa.image  # noqa: E402
from nuwa.fs.ext4 import open_ext4  # noqa: E402

IMAGE = os.path.join(ROOT, "testimages", "default.qcow2")
DEBS = sorted(glob.glob(os.path.join(ROOT, "testimages", "updates", "*.deb")))


def one_run(base: str, work: str, journal: bool) -> float:
    """Seconds for one in-place patch of a fresh copy of ``base``."""
    path = os.path.join(work, "run" + os.path.splitext(base)[1])
    shutil.copyfile(base, path)
    nuwa.image.open_ext4 = open_ext4 if journal else functools.partial(open_ext4, journal=False)
    try:
        t0 = time.perf_counter()
        with nuwa.open(path, writable=True, unsafe_in_place=not journal) as img:
            img.patch(DEBS, in_place=True)
        return time.perf_counter() - t0
    finally:
        nuwa.image.open_ext4 = open_ext4
        os.unlink(path)


def main() -> int:
    """Run both variants interleaved and print the timings."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--kind", choices=("qcow2", "raw"), default="qcow2")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nuwa-bench-inplace-")
    try:
        base = os.path.join(work, f"base.{args.kind}")
        if args.kind == "qcow2":
            shutil.copyfile(IMAGE, base)
        else:
            subprocess.run(["qemu-img", "convert", "-O", "raw", IMAGE, base], check=True)
        one_run(base, work, True)  # warm caches and imports
        times: dict[str, list[float]] = {"journal": [], "direct": []}
        for _ in range(args.repeat):
            times["direct"].append(one_run(base, work, False))
            times["journal"].append(one_run(base, work, True))
        for k, v in times.items():
            print(f"{args.kind} {k:8s} best {min(v):.3f} s  median {statistics.median(v):.3f} s  ({len(v)} runs)")
        print(f"{args.kind} journal/direct: best {min(times['journal']) / min(times['direct']):.3f}, "
              f"median {statistics.median(times['journal']) / statistics.median(times['direct']):.3f}")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
