#!/usr/bin/env python3
"""An arm64 image patched on this amd64 host: ``nuwa patch --upgrade`` vs real ``apt-get
upgrade`` in a chroot of the arm64 tree under qemu-user emulation, same run (issue 18).

The world is bench_upgrade's, for another architecture: the outdated Debian 12 arm64 minbase
tree of ``tools/dpkg_material.py`` (``base_tree("arm64")``: mmdebstrap ``--arch=arm64``, bookworm
main only) and a mirror on 127.0.0.1 serving the real bookworm and bookworm-security files
(``binary-arm64`` indexes) plus the update .debs (``local_mirror("arm64")``).

- **reference**: a fresh copy of the tree, ``apt-get update`` and ``--download-only upgrade``
  (not timed: caches warm), then ``apt-get -y upgrade`` in a chroot (timed). Every arm64
  program -- apt, dpkg, the maintainer scripts, ldconfig -- runs under qemu-user through
  binfmt_misc: what a chroot- or appliance-based tool pays on a foreign host.
- **nuwa**: ``python3 -m nuwa patch IMAGE.qcow2 --upgrade --output OUT.qcow2 --quiet`` as a new
  process on the amd64 host (nothing emulated: the scripts are interpreted, ldconfig modelled),
  the download cache warm; peak RSS from ``wait4``.

Repetitions are interleaved; prints min/median seconds and the ratio. Target: <= 0.1x.

    python3 benchmarks/bench_foreign.py [--reps N] [--arch ARCH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, HERE)

import dpkg_material as M  # noqa: E402
from bench_upgrade import nuwa, reference  # noqa: E402
from procs import serve  # noqa: E402

QEMU = {"arm64": "qemu-aarch64", "armhf": "qemu-arm", "ppc64el": "qemu-ppc64le", "s390x": "qemu-s390x"}


def main() -> int:
    """Build the world, time both sides interleaved, print the ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--arch", default="arm64", choices=sorted(QEMU))
    args = ap.parse_args()
    if not os.path.exists(f"/proc/sys/fs/binfmt_misc/{QEMU[args.arch]}"):
        raise SystemExit(f"no binfmt_misc handler {QEMU[args.arch]}: install qemu-user-static (see .ci/run)")
    base = M.base_tree(arch=args.arch)
    mirror, suites = M.local_mirror(arch=args.arch)
    httpd, url = serve(mirror)
    work = tempfile.mkdtemp(prefix="nuwa-bench-foreign-", dir=os.path.dirname(base))
    try:
        tree = os.path.join(work, "tree")
        M.copy_tree(base, tree)
        with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
            f.write("".join(f"deb {url}/{m} {suite} main\n" for m, suite in suites))
        raw, image = os.path.join(work, "image.raw"), os.path.join(work, "image.qcow2")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, raw, "700M"], check=True)
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, image], check=True)
        os.unlink(raw)
        cache, out = os.path.join(work, "cache"), os.path.join(work, "out.qcow2")
        nuwa(image, cache, out)  # warm the download cache and the parsed indexes
        times: dict[str, list[float]] = {"apt": [], "nuwa": []}
        rss = 0
        for _ in range(args.reps):
            times["apt"].append(reference(tree, work))
            t, r = nuwa(image, cache, out)
            times["nuwa"].append(t)
            rss = max(rss, r)
        print(f"world: Debian 12 {args.arch} minbase with its pending updates, on an amd64 host, "
              f"{args.reps} repetitions, caches warm")
        print(f"  pending updates: {len(M.deb_files(arch=args.arch))} .debs")
        for k, v in times.items():
            print(f"  {k:5s} min {min(v):6.2f} s  median {statistics.median(v):6.2f} s")
        print(f"ratio nuwa patch --upgrade / apt-get upgrade under qemu-user: "
              f"min {min(times['nuwa']) / min(times['apt']):.2f}x  "
              f"median {statistics.median(times['nuwa']) / statistics.median(times['apt']):.2f}x  (target <= 0.1x)")
        print(f"nuwa peak RSS {rss / 1024:.0f} MB")
    finally:
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
