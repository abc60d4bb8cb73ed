#!/usr/bin/env python3
"""``nuwa patch --upgrade`` vs real apt in a chroot, same tree, same updates (issue 12).

``nuwa patch --upgrade`` is documented to equal ``apt upgrade``, that is ``apt-get upgrade
--with-new-pkgs`` (``nuwa/apt/resolver.py``, docs/cli.md): upgrades and the new packages they
need, never removals. That is the reference; ``--mode full-upgrade`` times ``nuwa patch
--full-upgrade`` against ``apt-get dist-upgrade`` instead. Plain ``apt-get upgrade`` keeps back
an upgrade that needs a new package (a kernel ABI bump: a new ``linux-image-6.1.0-N-*``); the
benchmark asks apt (``-s``, untimed) and prints what plain ``upgrade`` would keep back.

Worlds (``--world``), both served by a mirror on 127.0.0.1 that the image's sources.list names
(``dpkg_material.local_mirror``: the real InRelease and ``main`` indexes of the world's suites
plus the update .debs):

- ``minbase`` (default): the outdated Debian 12 minbase tree of ``tools/dpkg_material.py``
  (bookworm + bookworm-security) on a bare ext4 (``mkfs.ext4 -d``, qcow2 by ``qemu-img
  convert``). Reference: a fresh copy of the tree (copy untimed), chroot.
- ``server``: the outdated bookworm cloud server, ``dpkg_material`` variant ``cloud`` (kernel,
  GRUB, initramfs-tools, python3, systemd, openssh-server, ca-certificates...; bookworm,
  bookworm-updates and bookworm-security), on the GPT disk of ``tests/helpers/kernelimage.py``
  (GRUB installed, grub.cfg by the real update-grub; a few seconds to make, untimed).
  Reference: a fresh copy of the disk, loop-attached, chroot with ``/dev``, ``/proc`` and
  ``/sys`` bound so update-initramfs and update-grub work (copy and attach untimed).

- **reference**: ``/usr/sbin/policy-rc.d`` exiting 101, ``apt-get update`` and ``apt-get
  --download-only`` (untimed: the cache is warm), then ``apt-get -y --with-new-pkgs upgrade``
  (or ``dist-upgrade``) in the chroot, timed, with its CPU seconds (user + system of apt and
  everything it ran).
- **nuwa**: ``python3 -m nuwa patch IMAGE.qcow2 --upgrade|--full-upgrade --output OUT.qcow2
  --cache C --quiet --report R`` as a new process (startup, verification of InRelease, plan,
  the dpkg calls with scripts simulated and the qcow2 overlay write all timed), the download
  cache warmed by an untimed first run; peak RSS (its own ``VmHWM``) and CPU seconds from ``wait4``. When a report
  names anything deferred to first boot, no ratio is printed, the deferrals are.

Repetitions are interleaved (the side that runs first alternates). The last Nuwa output is
judged, untimed: ``qemu-img check``, ``e2fsck -fn`` of its root filesystem, and its package
database (``nuwa packages --json``) against ``dpkg-query -W`` in the reference's chroot.
Prints min/median seconds and CPU seconds of each side, the ratio (< 1: Nuwa faster) and
Nuwa's peak RSS. Targets (issue 12): <= 0.5x, RSS <= 300 MB.

    python3 benchmarks/bench_upgrade.py [--reps N] [--world minbase|server] [--mode upgrade|full-upgrade]
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, os.path.join(REPO, "tools"))

import dpkg_material as M  # noqa: E402
from bench_patch import (cloud_disk, deferrals, fresh_disk, fresh_tree, installed,  # noqa: E402
                         judge_output, nuwa_process)  # (bench_patch also puts tests/ and the checkout on the path)
from helpers.loopdisk import attached  # noqa: E402
from procs import serve  # noqa: E402

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
#: mode -> (nuwa patch option, the apt-get request it is documented to equal)
MODES = {"upgrade": ("--upgrade", ["--with-new-pkgs", "upgrade"]),
         "full-upgrade": ("--full-upgrade", ["dist-upgrade"])}
#: the world -> the dpkg_material variant it is made of
VARIANT = {"minbase": "minbase", "server": "cloud"}
APT_QUIET = ["-o", "Acquire::Languages=none"]


def chroot(root: str, *args: str) -> str:
    """stdout of ``chroot ROOT ARGS``; a failure stops the benchmark with the end of stderr."""
    r = subprocess.run(["chroot", root, *args], capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        raise SystemExit(f"chroot {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
    return r.stdout


def simulated(root: str, request: list[str]) -> dict[str, bool]:
    """apt's plan for ``request`` in the chroot (``apt-get -s``): installed package -> whether
    it is new (no installed version)."""
    out = chroot(root, "apt-get", *APT_QUIET, "-s", *request)
    return {w[1]: not w[2].startswith("[") for w in (line.split() for line in out.splitlines())
            if len(w) > 2 and w[0] == "Inst"}


class Reference:
    """The real apt side: a fresh chroot root per repetition (``fresh(work)``: a context manager,
    untimed), the timed apt run, and what the judge compares with (the package database, apt's
    plan), read on the first."""

    def __init__(self, request: list[str], fresh):
        self.request = request
        self.fresh = fresh
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.packages: set[str] | None = None  # "name version status" after apt, from dpkg-query -W
        self.plan: dict[str, bool] = {}  # package -> new, for the timed request
        self.plain: set[str] = set()  # what plain ``apt-get upgrade`` would install

    def run(self, work: str) -> None:
        """One repetition: update and download untimed, then the timed apt-get."""
        with self.fresh(work) as root:
            policy = os.path.join(root, "usr/sbin/policy-rc.d")
            with open(policy, "w") as f:
                f.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
            chroot(root, "apt-get", "-qq", *APT_QUIET, "update")
            if self.packages is None:  # untimed, once: apt's plans
                self.plan = simulated(root, self.request)
                self.plain = set(simulated(root, ["upgrade"]))
            chroot(root, "apt-get", "-qq", "-y", "--download-only", *self.request)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            chroot(root, "apt-get", "-qq", "-y", *self.request)
            self.times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # apt and all it ran, waited for
            self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if self.packages is None:
                self.packages = installed(root)


def sources_list(url: str, suites: list[tuple[str, str]]) -> str:
    return "".join(f"deb {url}/{m} {suite} main\n" for m, suite in suites)


def minbase_world(arch: str, url: str, suites, work: str, request: list[str]) -> tuple[str, Reference]:
    """(qcow2 image, reference) of the minbase tree with sources.list naming the local mirror."""
    tree = os.path.join(work, "tree")
    M.copy_tree(M.base_tree(arch=arch), tree)
    with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
        f.write(sources_list(url, suites))
    raw, image = os.path.join(work, "image.raw"), os.path.join(work, "image.qcow2")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, raw, "700M"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, image], check=True)
    os.unlink(raw)
    # a fresh cp -a copy of the tree, chroot without /proc
    return image, Reference(request, lambda work: fresh_tree(tree, os.path.join(work, "ref")))


def server_world(arch: str, url: str, suites, work: str, request: list[str]) -> tuple[str, Reference]:
    """(qcow2 image, reference) of the cloud tree on kernelimage's GPT disk, its sources.list
    (written on the loop-attached disk after GRUB is installed) naming the local mirror."""
    if arch != "amd64":
        raise SystemExit("the server world is amd64 only (the cloud variant's kernel and GRUB are amd64's)")
    disk = cloud_disk(work)
    with attached(disk, os.path.join(work, "edit"), 2, 2) as (_loop, mnt):
        with open(os.path.join(mnt, "etc/apt/sources.list"), "w") as f:
            f.write(sources_list(url, suites))
    image = os.path.join(work, "image.qcow2")
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", disk, image], check=True)
    # a fresh loop-attached copy of the disk, /dev /proc /sys bound (update-grub needs them)
    return image, Reference(request, lambda work: fresh_disk(disk, work, "ref"))


def stats(xs: list[float]) -> str:
    return f"min {min(xs):6.2f} s  median {statistics.median(xs):6.2f} s"


def compare(arch: str, reps: int, label: str, target: str, world: str = "minbase", mode: str = "upgrade") -> None:
    """Build ``world`` for ``arch`` (image, reference, mirror on 127.0.0.1), time both sides
    ``reps`` times interleaved, judge Nuwa's last output, print seconds, CPU seconds, the ratio
    against ``target`` (none when Nuwa deferred work) and RSS."""
    option, request = MODES[mode]
    variant = VARIANT[world]
    mirror, suites = M.local_mirror(arch=arch, variant=variant)
    httpd, url = serve(mirror)
    work = tempfile.mkdtemp(prefix="nuwa-bench-upgrade-", dir="/var/tmp")
    try:
        make = minbase_world if world == "minbase" else server_world
        image, ref = make(arch, url, suites, work, request)
        cache, out, report = (os.path.join(work, n) for n in ("cache", "out.qcow2", "report.json"))

        def nuwa() -> tuple[float, int, float]:
            for p in (out, report):
                if os.path.exists(p):
                    os.unlink(p)
            return nuwa_process(["patch", image, option, "--output", out, "--cache", cache, "--quiet",
                                 "--report", report])

        nuwa()  # untimed: warm the download cache and the parsed indexes
        times: list[float] = []
        cpu: list[float] = []
        deferred: set[str] = set()
        rss = 0
        for rep in range(reps):
            if rep % 2 == 0:
                ref.run(work)
            t, r, c = nuwa()
            times.append(t)
            cpu.append(c)
            rss = max(rss, r)
            with open(report) as f:
                deferred.update(deferrals(json.load(f), 0))
            if rep % 2:
                ref.run(work)
        judge_output(out, work, "judge", ref.packages, "real apt")
        what = "minbase" if world == "minbase" else "cloud server (GPT disk, kernel, GRUB, python3, systemd)"
        new = sorted(p for p, is_new in ref.plan.items() if is_new)
        print(f"world: Debian 12 {arch} {what} with its {len(M.deb_files(arch=arch, variant=variant))} pending "
              f"updates ({', '.join(s for _, s in suites)}), {reps} repetitions, caches warm")
        print(f"apt-get {' '.join(request)} installs {len(ref.plan)} packages"
              + (f", {len(new)} new: {', '.join(new)}" if new else ""))
        kept = sorted(p for p, is_new in ref.plan.items() if not is_new and p not in ref.plain)
        if kept:  # plain apt-get upgrade installs no new package, so it keeps back what needs one
            print(f"note: plain apt-get upgrade keeps back {', '.join(kept)} (needing the new "
                  f"{', '.join(sorted(p for p in new if p not in ref.plain))}); nuwa patch --upgrade is documented "
                  "as apt upgrade (= apt-get upgrade --with-new-pkgs) and takes them")
        print(f"judged: qemu-img check, e2fsck -fn and the package database ({len(ref.packages)} packages) "
              "equal to apt's")
        for k, v, c in (("apt", ref.times, ref.cpu), ("nuwa", times, cpu)):
            print(f"  {k:5s} {stats(v)}   cpu {stats(c)}")
        if deferred:
            print(f"ratio nuwa patch {option} / {label}: none, Nuwa deferred work apt did ({len(deferred)} distinct):")
            for d in sorted(deferred):
                print(f"    {d}")
        else:
            print(f"ratio nuwa patch {option} / {label}: min {min(times) / min(ref.times):.2f}x  "
                  f"median {statistics.median(times) / statistics.median(ref.times):.2f}x  "
                  f"cpu median {statistics.median(cpu) / statistics.median(ref.cpu):.2f}x  ({target})")
        print(f"nuwa peak RSS {rss / 1024:.0f} MB (target <= 300 MB)")
    finally:
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--world", choices=sorted(VARIANT), default="minbase",
                    help="minbase (default) or server (the cloud variant on a GPT disk, kernel and GRUB)")
    ap.add_argument("--mode", choices=sorted(MODES), default="upgrade",
                    help="upgrade (default: --upgrade vs apt-get upgrade --with-new-pkgs) or full-upgrade "
                         "(--full-upgrade vs apt-get dist-upgrade)")
    args = ap.parse_args()
    label = "apt-get " + " ".join(MODES[args.mode][1])
    compare("amd64", args.reps, label, "target <= 0.5x", world=args.world, mode=args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
