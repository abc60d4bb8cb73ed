#!/usr/bin/env python3
"""``nuwa patch --upgrade`` vs real ``apt-get upgrade`` in a chroot, same tree, same updates (issue 12).

The world: the outdated Debian 12 minbase tree of ``tools/dpkg_material.py`` and a mirror on
127.0.0.1 serving the real bookworm and bookworm-security files plus the update .debs
(``dpkg_material.local_mirror``). Both sides name that mirror in their sources.list.

- **reference**: a fresh copy of the tree (copying not timed), ``apt-get update`` and
  ``apt-get --download-only upgrade`` (not timed: the cache is warm), then ``apt-get -y
  upgrade`` in a chroot with ``/usr/sbin/policy-rc.d`` exiting 101 (timed).
- **nuwa**: ``python3 -m nuwa patch IMAGE.qcow2 --upgrade --output OUT.qcow2 --quiet`` as a new
  process (startup, verification of InRelease, plan, the dpkg calls with scripts simulated and
  the qcow2 overlay write all timed), the download cache warm; peak RSS from ``wait4``.

Repetitions are interleaved; prints min/median seconds, the ratio (< 1: Nuwa faster) and
Nuwa's peak RSS. Targets (issue 12): <= 0.5x, RSS <= 300 MB.

    python3 benchmarks/bench_upgrade.py [--reps N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tools"))

import dpkg_material as M  # noqa: E402
from procs import nuwa_env, run_timed, serve  # noqa: E402

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


def chroot(root: str, *args: str) -> None:
    r = subprocess.run(["chroot", root, *args], capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        raise SystemExit(f"chroot {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-400:]}")


def reference(tree: str, work: str) -> float:
    """Seconds of ``apt-get -y upgrade`` in a chroot of a fresh copy (cache warmed untimed)."""
    root = os.path.join(work, "ref")
    M.copy_tree(tree, root)
    with open(os.path.join(root, "usr/sbin/policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)
    chroot(root, "apt-get", "-qq", "-o", "Acquire::Languages=none", "update")
    chroot(root, "apt-get", "-qq", "-y", "--download-only", "upgrade")
    t = time.perf_counter()
    chroot(root, "apt-get", "-qq", "-y", "upgrade")
    took = time.perf_counter() - t
    shutil.rmtree(root)
    return took


def nuwa(image: str, cache: str, out: str) -> tuple[float, int]:
    """(seconds, peak RSS KiB) of one ``nuwa patch --upgrade`` process."""
    if os.path.exists(out):
        os.unlink(out)
    return run_timed([sys.executable, "-m", "nuwa", "patch", image, "--upgrade", "--output", out, "--cache", cache,
                      "--quiet"], nuwa_env(REPO))


def compare(arch: str, reps: int, label: str, target: str) -> None:
    """Build the world of ``arch`` (image and tree of the material, mirror on 127.0.0.1), time
    both sides ``reps`` times interleaved, print seconds, the ratio against ``target`` and RSS."""
    base = M.base_tree(arch=arch)
    mirror, suites = M.local_mirror(arch=arch)
    httpd, url = serve(mirror)
    work = tempfile.mkdtemp(prefix="nuwa-bench-upgrade-", dir=os.path.dirname(base))
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
        for _ in range(reps):
            times["apt"].append(reference(tree, work))
            t, r = nuwa(image, cache, out)
            times["nuwa"].append(t)
            rss = max(rss, r)
        print(f"world: Debian 12 {arch} minbase with its {len(M.deb_files(arch=arch))} pending updates, "
              f"{reps} repetitions, caches warm")
        for k, v in times.items():
            print(f"  {k:5s} min {min(v):6.2f} s  median {statistics.median(v):6.2f} s")
        print(f"ratio nuwa patch --upgrade / {label}: min {min(times['nuwa']) / min(times['apt']):.2f}x  "
              f"median {statistics.median(times['nuwa']) / statistics.median(times['apt']):.2f}x  ({target})")
        print(f"nuwa peak RSS {rss / 1024:.0f} MB (target <= 300 MB)")
    finally:
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    compare("amd64", args.reps, "apt-get upgrade", "target <= 0.5x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
