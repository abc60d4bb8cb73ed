#!/usr/bin/env python3
"""Kernel-update jobs: Nuwa's simulation against the real programs, one function per job.

Each job runs the real program in a chroot of a hard-linked copy of a bookworm tree holding a
kernel and initramfs-tools (tests/helpers/kerneltree.py builds it; ``--tree`` names one), and
Nuwa's simulation of the same command on an overlay of the tree (nothing is written to it).
Wall times are the medians of ``--runs`` runs; the ratio is Nuwa / real (issue 14's target
for the whole kernel update is <= 0.5).

- ``bench_initramfs``: ``mkinitramfs -o OUT VERSION`` (the image's script interpreted with
  its hooks; the real one spends ~12 s on this machine class). It needs the kmod models
  (``modprobe --show-depends``, ``modinfo``, ``depmod``); without them Nuwa's run defers at
  the first ``modprobe`` and the job reports that instead of a ratio.

    python3 benchmarks/bench_kernel.py [--tree DIR] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402
from nuwa.script.commands import default_models  # noqa: E402
from nuwa.script.interp import run_script  # noqa: E402

TREES = "/var/tmp/nuwa-trees"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def default_tree() -> str:
    """The newest cached kernel tree (tests/helpers/kerneltree.py's name for it)."""
    found = sorted(glob.glob(os.path.join(TREES, "bookworm-minbase+*initramfs-tools+linux-image-cloud-amd64*")))
    found = [p for p in found if not p.endswith(".tmp")]
    if not found:
        sys.exit(f"no kernel tree under {TREES}: run tests/script/test_initramfs.py once, or pass --tree")
    return found[-1]


def kernel_version(tree: str) -> str:
    """The newest kernel version installed in ``tree``."""
    return sorted(os.listdir(os.path.join(tree, "lib/modules")))[-1]


def _real_copy(tree: str, work: str) -> str:
    """A hard-linked copy the real program may run in (it only creates new files)."""
    root = os.path.join(work, "root")
    if subprocess.run(["cp", "-al", tree, root], capture_output=True).returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["cp", "-a", tree, root], check=True)
    return root


def bench_initramfs(tree: str, runs: int) -> dict:
    """``mkinitramfs -o /tmp/bench.img VERSION``: real in a chroot vs Nuwa on an overlay."""
    version = kernel_version(tree)
    models = default_models()
    result: dict = {"job": "mkinitramfs", "version": version}
    real_times, nuwa_times = [], []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as work:
        root = _real_copy(tree, work)
        for i in range(runs):
            t = time.perf_counter()
            r = subprocess.run(["chroot", root, "mkinitramfs", "-o", f"/tmp/bench-{i}.img", version],
                               capture_output=True, env=ENV)
            real_times.append(time.perf_counter() - t)
            if r.returncode != 0:
                result["error"] = f"real mkinitramfs failed: {r.stderr.decode(errors='replace')[-300:]}"
                return result
            result["real_bytes"] = os.path.getsize(f"{root}/tmp/bench-{i}.img")
    for _ in range(runs):
        fs = Overlay(HostDirFS(tree))
        t = time.perf_counter()
        res = run_script(fs, f"mkinitramfs -o /tmp/bench.img {version}\n", [], models=models, budget=5_000_000,
                         env=dict(ENV))
        nuwa_times.append(time.perf_counter() - t)
        deferred = [d.reason for d in res.deferred_commands] + ([res.reason] if res.deferred_whole else [])
        if deferred:
            result["nuwa_deferred"] = deferred[0]
            if "depmod" not in models or "modprobe" not in models:
                result["note"] = "needs the kmod models (modprobe, modinfo, depmod): no ratio"
            break
        result["nuwa_bytes"] = len(fs.read_bytes("/tmp/bench.img"))
    result["real_s"] = round(statistics.median(real_times), 2)
    result["nuwa_s"] = round(statistics.median(nuwa_times), 2)
    if "nuwa_deferred" not in result:
        result["ratio"] = round(result["nuwa_s"] / result["real_s"], 2)
    return result


JOBS = {"initramfs": bench_initramfs}


def main() -> None:
    """Run the jobs and print one line (or one JSON document) per job."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", default=None, help="a tree with a kernel and initramfs-tools (default: the cached one)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--job", choices=sorted(JOBS), action="append")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the real programs run in a chroot: run as root")
    tree = a.tree or default_tree()
    results = [JOBS[name](tree, a.runs) for name in (a.job or sorted(JOBS))]
    if a.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        if "ratio" in r:
            print(f"{r['job']:12} real {r['real_s']:6.2f} s   nuwa {r['nuwa_s']:6.2f} s   ratio {r['ratio']:.2f}")
        else:
            print(f"{r['job']:12} real {r.get('real_s', 0):6.2f} s   nuwa: {r.get('note') or r.get('error') or ''} "
                  f"({r.get('nuwa_deferred', '')})")


if __name__ == "__main__":
    main()
