#!/usr/bin/env python3
"""The planner alone (issue 12): a server image against full bookworm metadata, Nuwa vs apt.

The world: the real bookworm server tree of the apt judges (``tests/helpers/aptjudge.judge_chroot``:
minbase plus nginx, openssh-server, sudo, cron, python3...) with its sources pointed at the local
mirror of ``tools/dpkg_material.local_mirror`` (the full bookworm and bookworm-security ``main``
indexes, served on 127.0.0.1), written into a raw ext4 image.

- **nuwa**: in process, ``upgrade_image(..., dry_run=True)`` from opening the image to the plan
  and its dpkg order (verified InRelease, the indexes from the warm cache, candidates, resolution,
  order); stopped at ``on_plan``, before any download.
- **apt**: ``apt-get -s upgrade --with-new-pkgs`` in a chroot of the same tree after ``apt-get
  update`` (untimed): apt's own planning with its binary cache warm.

Prints min/median seconds and CPU seconds (Nuwa's own process time; apt-get's and its
children's), the ratios and Nuwa's plan size; every repetition's plan must equal the first.
Target (issue 12): Nuwa <= 2 s.

    python3 benchmarks/bench_plan.py [--reps N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import dpkg_material as M  # noqa: E402
from helpers.aptjudge import judge_chroot  # noqa: E402
from procs import serve  # noqa: E402

import nuwa  # noqa: E402
from nuwa.apt.repository import RepoOptions  # noqa: E402
from nuwa.patch.upgrade import UpgradeRequest, upgrade_image  # noqa: E402

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


class _Planned(Exception):
    """Raised from ``on_plan``: the benchmark stops where the downloads would start."""


def nuwa_plan(image: str, cache: str) -> tuple[float, float, dict]:
    """(seconds, CPU seconds, plan document) of one plan from the opened image."""
    got = {}

    def stop(doc):
        got.update(doc)
        raise _Planned

    t, c = time.perf_counter(), time.process_time()
    with nuwa.open(image) as img:
        try:
            upgrade_image(img, UpgradeRequest("upgrade"), RepoOptions(cache=cache), dry_run=True, on_plan=stop)
        except _Planned:
            pass
    return time.perf_counter() - t, time.process_time() - c, got


def apt_plan(root: str) -> tuple[float, float]:
    """(seconds, CPU seconds of apt-get and its children) of ``apt-get -s upgrade --with-new-pkgs``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(["chroot", root, "apt-get", "-s", "upgrade", "--with-new-pkgs"], capture_output=True,
                       text=True, env=ENV)
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"apt-get -s upgrade: {r.stderr.strip()[-400:]}")
    return took, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    server = judge_chroot()
    mirror, suites = M.local_mirror()
    httpd, url = serve(mirror)
    work = tempfile.mkdtemp(prefix="nuwa-bench-plan-", dir="/var/tmp")
    try:
        tree = os.path.join(work, "tree")
        M.copy_tree(server, tree)
        with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
            f.write("".join(f"deb {url}/{m} {suite} main\n" for m, suite in suites))
        image = os.path.join(work, "image.raw")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, image, "3G"], check=True)
        subprocess.run(["chroot", tree, "apt-get", "-qq", "-o", "Acquire::Languages=none", "update"], check=True,
                       env=ENV, capture_output=True)
        cache = os.path.join(work, "cache")
        _, _, doc = nuwa_plan(image, cache)  # warm: downloads and parses the indexes once
        times: dict[str, list[float]] = {"apt": [], "nuwa": []}
        cpu: dict[str, list[float]] = {"apt": [], "nuwa": []}
        for _ in range(args.reps):
            t, c = apt_plan(tree)
            times["apt"].append(t)
            cpu["apt"].append(c)
            t, c, again = nuwa_plan(image, cache)
            times["nuwa"].append(t)
            cpu["nuwa"].append(c)
            if again != doc:  # a warm cache must give the plan the first run made
                raise SystemExit("nuwa's plan changed between repetitions")
        n = len(doc.get("install", []))
        print(f"world: Debian 12 server tree, full bookworm + bookworm-security main indexes; "
              f"{n} packages to unpack in the plan; {args.reps} repetitions, caches warm")
        for k, v in times.items():
            print(f"  {k:5s} min {min(v):6.2f} s  median {statistics.median(v):6.2f} s   "
                  f"cpu min {min(cpu[k]):6.2f} s  median {statistics.median(cpu[k]):6.2f} s")
        print(f"ratio nuwa plan / apt-get -s upgrade: median "
              f"{statistics.median(times['nuwa']) / statistics.median(times['apt']):.2f}x, cpu median "
              f"{statistics.median(cpu['nuwa']) / statistics.median(cpu['apt']):.2f}x; "
              f"nuwa median {statistics.median(times['nuwa']):.2f} s (target <= 2 s)")
    finally:
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
