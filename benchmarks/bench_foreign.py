#!/usr/bin/env python3
"""An arm64 image patched on this amd64 host: ``nuwa patch --upgrade`` vs real ``apt-get
upgrade`` in a chroot of the arm64 tree under qemu-user emulation, same run (issue 18).

The world is bench_upgrade's, for another architecture: the outdated Debian 12 arm64 minbase
tree of ``tools/dpkg_material.py`` (``base_tree("arm64")``: mmdebstrap ``--arch=arm64``, bookworm
main only) and a mirror on 127.0.0.1 serving the real bookworm and bookworm-security files
(``binary-arm64`` indexes) plus the update .debs (``local_mirror("arm64")``).

- **reference**: a fresh copy of the tree, ``apt-get update`` and ``--download-only``
  (not timed: caches warm), then ``apt-get -y --with-new-pkgs upgrade`` (what ``--upgrade`` is
  documented to equal; on minbase the same plan as plain ``upgrade``) in a chroot (timed). Every arm64
  program -- apt, dpkg, the maintainer scripts, ldconfig -- runs under qemu-user through
  binfmt_misc: what a chroot- or appliance-based tool pays on a foreign host.
- **nuwa**: ``python3 -m nuwa patch IMAGE.qcow2 --upgrade --output OUT.qcow2 --quiet`` as a new
  process on the amd64 host (nothing emulated: the scripts are interpreted, ldconfig modelled),
  the download cache warm; peak RSS its own ``VmHWM`` (``procs.wait_peak``).

Repetitions are interleaved; prints min/median seconds and the ratio. Target: <= 0.1x.

    python3 benchmarks/bench_foreign.py [--reps N] [--arch ARCH]
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, HERE)

from bench_upgrade import compare  # noqa: E402

QEMU = {"arm64": "qemu-aarch64", "armhf": "qemu-arm", "ppc64el": "qemu-ppc64le", "s390x": "qemu-s390x"}


def main() -> int:
    """Check the emulation is there, then bench_upgrade's comparison for the foreign world."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--arch", default="arm64", choices=sorted(QEMU))
    args = ap.parse_args()
    if not os.path.exists(f"/proc/sys/fs/binfmt_misc/{QEMU[args.arch]}"):
        raise SystemExit(f"no binfmt_misc handler {QEMU[args.arch]}: install qemu-user-static (see .ci/run)")
    compare(args.arch, args.reps, "apt-get upgrade under qemu-user (on an amd64 host)", "target <= 0.1x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
