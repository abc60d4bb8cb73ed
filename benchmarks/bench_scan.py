#!/usr/bin/env python3
"""``nuwa scan`` vs ``apt-get update && apt list --upgradable`` on the same tree (issue 11).

The world: the outdated Debian 12 minbase tree of ``tools/dpkg_material.py`` (bookworm main
only, cached per day), and a mirror on 127.0.0.1 serving the real bookworm, bookworm-updates
and bookworm-security files (InRelease as signed by Debian, the indexes uncompressed) that the
host's apt downloaded once from the machine's own mirrors (cached per day under
``/var/tmp/nuwa-bench-scan-YYYYMMDD``).

- **reference**: the host's apt (the same 2.6 as bookworm's), confined by ``-o Dir::...`` to a
  work directory and the tree's dpkg status, trusting the tree's keys: ``apt-get update`` then
  ``apt list --upgradable``; warm: its lists are already there from an earlier repetition (apt
  still fetches InRelease and rebuilds its cache, as it does on a real system).
- **nuwa**: ``python3 -m nuwa scan IMAGE --json`` as a new process, on a bare ext4 image of the
  tree's status, keys, os-release and a sources.list naming the local mirror; warm cache (the
  indexes are served from the cache; InRelease is fetched and verified every run).
- **fleet**: the same with 20 copies of the image in one call (each repository fetched and
  parsed once): its time over one image's.

Repetitions are interleaved. Prints min and median seconds, the ratios (< 1: Nuwa faster),
and Nuwa's peak RSS (its own ``VmHWM``, ``procs.wait_peak``). Targets: scan <= 1x apt; 20 images <= 3x one; RSS <= 250 MB.

    python3 benchmarks/bench_scan.py [--reps N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tools"))

import dpkg_material as M  # noqa: E402
from procs import nuwa_env, run_timed as _run, serve  # noqa: E402

def run_timed(argv: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS KiB) of one process, this checkout importable."""
    return _run(argv, nuwa_env(REPO, LC))


SUITES = (("main", "bookworm"), ("main", "bookworm-updates"), ("security", "bookworm-security"))
LC = {**os.environ, "LC_ALL": "C", "LANG": "C"}


def _apt_opts(work: str, status: str, trusted: str) -> list[str]:
    return ["-o", f"Dir::Etc::SourceList={work}/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::Etc::Parts={work}/apt.conf.d", "-o", f"Dir::Etc::PreferencesParts={work}/preferences.d",
            "-o", "Dir::Etc::Preferences=/nonexistent", "-o", f"Dir::Etc::TrustedParts={trusted}",
            "-o", f"Dir::State::Lists={work}/lists", "-o", f"Dir::State::status={status}",
            "-o", f"Dir::State::extended_states={work}/extended_states", "-o", f"Dir::Cache={work}/cache",
            "-o", "Debug::NoLocking=1", "-o", "APT::Architecture=amd64", "-o", "Acquire::Languages=none",
            "-o", "Acquire::GzipIndexes=false"]


def _apt_work(work: str, sources: str) -> None:
    for d in ("lists/partial", "cache/archives/partial", "apt.conf.d", "preferences.d"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    with open(os.path.join(work, "sources.list"), "w") as f:
        f.write(sources)


def material() -> tuple[str, str]:
    """(tree, directory of the real lists: one sub-directory per suite, as a mirror lays out)."""
    tree = M.base_tree()
    root = "/var/tmp/nuwa-bench-scan-" + datetime.date.today().strftime("%Y%m%d")
    mirror = os.path.join(root, "mirror")
    if os.path.exists(os.path.join(mirror, ".complete")):
        return tree, mirror
    shutil.rmtree(root, ignore_errors=True)
    main, sec = M.mirrors()
    uris = {"main": main, "security": sec}
    work = os.path.join(root, "fetch")
    _apt_work(work, "".join(f"deb {uris[m]} {s} main\n" for m, s in SUITES))
    subprocess.run(["apt-get", *_apt_opts(work, os.path.join(tree, "var/lib/dpkg/status"),
                                          os.path.join(tree, "etc/apt/trusted.gpg.d")), "-qq", "update"],
                   check=True, env=LC)
    lists = os.path.join(work, "lists")
    for m, suite in SUITES:
        prefix = uris[m].split("://", 1)[1].replace("/", "_") + f"_dists_{suite}_"
        dist = os.path.join(mirror, m, "dists", suite)
        os.makedirs(os.path.join(dist, "main/binary-amd64"), exist_ok=True)
        os.link(os.path.join(lists, prefix + "InRelease"), os.path.join(dist, "InRelease"))
        os.link(os.path.join(lists, prefix + "main_binary-amd64_Packages"),
                os.path.join(dist, "main/binary-amd64/Packages"))
    open(os.path.join(mirror, ".complete"), "w").close()
    return tree, mirror


def make_image(tree: str, sources: str, out: str) -> str:
    stage = out + ".tree"
    for d in ("etc/apt/trusted.gpg.d", "etc/apt/sources.list.d", "var/lib/dpkg"):
        os.makedirs(os.path.join(stage, d), exist_ok=True)
    for rel in ("var/lib/dpkg/status", "usr/lib/os-release"):
        shutil.copy(os.path.join(tree, rel), os.path.join(stage, "etc/os-release" if "os-release" in rel else rel))
    for k in os.listdir(os.path.join(tree, "etc/apt/trusted.gpg.d")):
        shutil.copy(os.path.join(tree, "etc/apt/trusted.gpg.d", k), os.path.join(stage, "etc/apt/trusted.gpg.d", k))
    with open(os.path.join(stage, "etc/apt/sources.list"), "w") as f:
        f.write(sources)
    with open(os.path.join(stage, "var/lib/dpkg/arch"), "w") as f:
        f.write("amd64\n")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", stage, out, "32M"], check=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fleet", type=int, default=20)
    args = ap.parse_args()
    tree, mirror = material()
    httpd, url = serve(mirror)
    tmp = tempfile.mkdtemp(prefix="nuwa-bench-scan-")
    try:
        sources = "".join(f"deb {url}/{m} {s} main\n" for m, s in SUITES)
        img = make_image(tree, sources, os.path.join(tmp, "image.img"))
        fleet = [img]
        for i in range(1, args.fleet):
            fleet.append(os.path.join(tmp, f"image{i}.img"))
            shutil.copy(img, fleet[-1])
        cache = os.path.join(tmp, "cache")
        work = os.path.join(tmp, "apt")
        _apt_work(work, sources)
        opts = _apt_opts(work, os.path.join(tree, "var/lib/dpkg/status"), os.path.join(tree, "etc/apt/trusted.gpg.d"))
        apt = ["sh", "-c", 'apt-get "$@" -qq update && apt "$@" list --upgradable', "apt", *opts]
        nuwa = [sys.executable, "-m", "nuwa", "scan", "--json", "--cache", cache]
        run_timed(apt)  # warm both sides: lists, cache
        cold = run_timed(nuwa + [img])  # downloads the indexes and parses them (kept parsed)
        times: dict[str, list[float]] = {"apt": [], "nuwa": [], "fleet": []}
        rss = {"nuwa": 0, "fleet": 0}
        for _ in range(args.reps):
            times["apt"].append(run_timed(apt)[0])
            t, r = run_timed(nuwa + [img])
            times["nuwa"].append(t)
            rss["nuwa"] = max(rss["nuwa"], r)
            t, r = run_timed(nuwa + fleet)
            times["fleet"].append(t)
            rss["fleet"] = max(rss["fleet"], r)
        stanzas = sum(1 for m, s in SUITES for line in open(os.path.join(mirror, m, "dists", s, "main/binary-amd64/Packages"),
                                                           "rb") if line.startswith(b"Package: "))
        print(f"world: Debian 12 minbase, {stanzas} Packages stanzas in 3 suites, {args.reps} repetitions (warm)")
        for k in ("apt", "nuwa", "fleet"):
            v = times[k]
            print(f"  {k:6s} min {min(v):6.2f} s  median {statistics.median(v):6.2f} s")
        print(f"ratio nuwa scan / apt update+list:       min {min(times['nuwa']) / min(times['apt']):.2f}x  "
              f"median {statistics.median(times['nuwa']) / statistics.median(times['apt']):.2f}x  (target <= 1x)")
        print(f"ratio {args.fleet} images / 1 image (one call):  min {min(times['fleet']) / min(times['nuwa']):.2f}x  "
              f"median {statistics.median(times['fleet']) / statistics.median(times['nuwa']):.2f}x  (target <= 3x)")
        print(f"cold cache (download, verify, parse {stanzas} stanzas): {cold[0]:.2f} s, peak RSS {cold[1] / 1024:.0f} MB")
        print(f"peak RSS: 1 image {rss['nuwa'] / 1024:.0f} MB, {args.fleet} images {rss['fleet'] / 1024:.0f} MB "
              "(target <= 250 MB)")
    finally:
        httpd.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
