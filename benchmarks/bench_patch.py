#!/usr/bin/env python3
"""End to end: real dpkg / apt in a chroot vs the whole ``nuwa patch`` process (issue 15).

What a user waits for, on the same tree and the same updates:

- **reference**: the tree's own dpkg in a chroot of a fresh copy of the tree (copying is not
  timed), ``/usr/sbin/policy-rc.d`` exiting 101, as the differential tests run it
  (``tests/helpers/oracle.py``);
- **nuwa**: ``python3 -m nuwa patch IMAGE --deb ... --output OUT.qcow2 --quiet`` as a new
  process, startup, report and the qcow2 overlay write included; its peak RSS is its own
  ``VmHWM`` (``procs.wait_peak``: ``wait4``'s ``ru_maxrss`` carries the harness's RSS at fork).

Sets:

- ``default``: ``testimages/default.qcow2`` with ``testimages/updates/*.deb``; the reference
  is ``chroot TREE dpkg -i`` those .debs on the tree debugfs extracts from the image;
- ``minbase``: the outdated Debian 12 minbase tree of ``tools/dpkg_material.py`` (cached per
  day) with the bookworm-security updates apt downloads for it. The reference replays the dpkg
  calls real apt makes for ``apt-get dist-upgrade`` (``dpkg_material.apt_steps``: apt's own
  planning time is not counted, which favours the reference); Nuwa gets the same .debs, on a
  qcow2 of the tree made by ``mkfs.ext4 -d`` and ``qemu-img convert``, in as few ``nuwa patch``
  calls (``dpkg -i`` each) as the Pre-Depends allow (:func:`batches`: a .deb that pre-depends
  on a package unpacked earlier in the same call starts the next call, whose image is the
  previous call's overlay); all calls together are timed.
- ``server`` (not in the default ``--sets``: its disk takes about a minute to make, and its
  material a few more once a day): an outdated Debian 12 cloud server, the ``cloud`` variant
  of ``tools/dpkg_material.py`` (kernel, GRUB, initramfs-tools, python3, systemd,
  openssh-server, ca-certificates... from the suite's main only, cached per day) with the
  .debs apt fetches to ``dist-upgrade`` it from the host's world (bookworm, bookworm-updates,
  bookworm-security). It prints how many updates apt planned and which assumption failed if
  no kernel or python3 update is among them. The tree lies on the cloud-style GPT disk of
  ``tests/helpers/kernelimage.py`` (GRUB installed, grub.cfg by the real update-grub). The
  reference replays apt's dpkg calls in a chroot of a fresh copy of that disk, loop-attached
  with ``/dev``, ``/proc`` and ``/sys`` bound, so update-grub and grub-probe work (copying and
  attaching untimed); Nuwa patches a qcow2 of the disk in :func:`batches` calls, each with
  ``--report``: when a report names anything deferred to first boot (a whole script or a
  command), no ratio is printed, the deferrals are. Peak RSS is printed per call, with the
  call's .deb count and size and whether it holds the kernel.

Repetitions are interleaved (reference, nuwa, next set, ...). Each set's last Nuwa output is
judged once (``qemu-img check``, ``e2fsck -fn`` of its root filesystem), untimed. Then the
startup times of ``nuwa --help`` and ``nuwa info testimages/default.qcow2``, and each set's
*floor*: what no Python implementation of the job can skip, the interpreter's own start
(``python3 -c pass``, same environment) plus the decompression of the set's data.tar members
(C code in any reader: one thread, and the best case spread over the machine's cores), against
the target (half the reference's median). Prints min and
median seconds and the ratio nuwa / reference (< 1: Nuwa faster), and each side's CPU seconds
(user + system of its processes: on a shared machine other work moves the wall times far more
than these; the reference's fsync waits are in its wall time only).

    python3 benchmarks/bench_patch.py [--reps N] [--sets default,minbase,server] [--before CHECKOUT]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import gzip
import json
import lzma
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import dpkg_material as M  # noqa: E402
from helpers.images import root_partition  # noqa: E402
from helpers.kernelimage import make_image  # noqa: E402
from helpers.loopdisk import attached  # noqa: E402
from helpers.oracle import real_dpkg, real_dpkg_steps  # noqa: E402
from nuwa.deb.ar import ArReader  # noqa: E402
from judges import e2fsck_clean, qemu_img_check, tool  # noqa: E402
from procs import nuwa_env, run_measured  # noqa: E402

IMAGE = os.path.join(REPO, "testimages", "default.qcow2")
UPDATES = sorted(glob.glob(os.path.join(REPO, "testimages", "updates", "*.deb")))


def nuwa_process(args: list[str], stdout=subprocess.DEVNULL, repo: str = REPO) -> tuple[float, int, float]:
    """Run ``python3 -m nuwa ARGS`` from the checkout ``repo``; (wall seconds, peak RSS in KiB,
    CPU seconds: user + system, which other work on a shared machine disturbs much less)."""
    return run_measured([sys.executable, "-m", "nuwa", *args], nuwa_env(repo), repo, stdout)


class Set:
    """One update set: how to make a fresh reference tree, run the reference, run Nuwa."""

    def __init__(self, name: str, image: str, debs: list[str], tree: str, reference):
        self.name, self.image, self.debs, self.tree, self.reference = name, image, debs, tree, reference
        self.calls = batches(debs)
        self.ref_times: list[float] = []
        self.ref_cpu: list[float] = []
        self.nuwa_times: dict[str, list[float]] = {}  # checkout -> seconds
        self.rss: dict[str, list[int]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.call_rss: dict[str, list[list[int]]] = {}  # checkout -> [peak RSS KiB of call i, per repetition]
        self.report = False  # run each call with --report and collect what Nuwa deferred
        self.deferred: dict[str, list[str]] = {}  # checkout -> deferrals named by the reports

    def run_reference(self, work: str) -> None:
        """A fresh copy of the tree (untimed), then the timed reference."""
        with fresh_tree(self.tree, os.path.join(work, self.name + "-ref")) as root:
            self.timed_reference(root)

    def timed_reference(self, root: str) -> None:
        """The reference on ``root``, its wall and CPU seconds recorded."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        self.reference(root)
        self.ref_times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the chroot's processes, all waited for
        self.ref_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    def run_nuwa(self, work: str, repo: str = REPO) -> str:
        """``nuwa patch`` processes (of the checkout ``repo``) writing qcow2 overlays (one per
        call, each backed by the previous one); returns the last overlay's path."""
        image, spent, rss, cpu = self.image, 0.0, 0, 0.0
        per_call = self.call_rss.setdefault(repo, [[] for _ in self.calls])
        for i, call in enumerate(self.calls):
            out = os.path.join(work, f"{self.name}-out{i}.qcow2")
            rep = os.path.join(work, f"{self.name}-out{i}.json")
            for p in (out, rep):
                if os.path.exists(p):
                    os.unlink(p)
            args = ["patch", image, *[a for d in call for a in ("--deb", d)], "--output", out, "--quiet"]
            dt, peak, used = nuwa_process(args + (["--report", rep] if self.report else []), repo=repo)
            spent, rss, cpu, image = spent + dt, max(rss, peak), cpu + used, out
            per_call[i].append(peak)
            if self.report:
                with open(rep) as f:
                    self.deferred.setdefault(repo, []).extend(deferrals(json.load(f), i))
                os.unlink(rep)
        self.nuwa_times.setdefault(repo, []).append(spent)
        self.cpu.setdefault(repo, []).append(cpu)
        self.rss.setdefault(repo, []).append(rss)
        return image


def deferrals(doc: dict, call: int) -> list[str]:
    """What a ``nuwa patch --report`` document says was deferred to first boot: whole scripts
    and single commands, one line each (empty when Nuwa did all the work itself)."""
    out = []
    for s in doc.get("scripts", []):
        where = f"call {call + 1}: {s['package']} {s['script']} {' '.join(s.get('args', []))}".rstrip()
        if s.get("deferred_whole"):
            out.append(f"{where}: the whole script ({s.get('reason')})")
        for d in s.get("deferred_commands", []):
            out.append(f"{where}: line {d.get('line')}: {' '.join(d.get('argv') or [])[:120]} ({d.get('reason')})")
    c = doc.get("counts", {})
    if (c.get("deferred") or c.get("deferred_whole")) and not out:
        out.append(f"call {call + 1}: counts {c}")
    return out


def _names(field: str) -> set[str]:
    """Package names a Depends-style field mentions (alternatives included, versions dropped)."""
    return {re.split(r"[\s(:]", alt.strip())[0] for dep in field.split(",") for alt in dep.split("|") if alt.strip()}


def batches(debs: list[str]) -> list[list[str]]:
    """``debs`` (in apt's order) cut into ``dpkg -i`` calls that real dpkg would accept: a .deb
    whose Pre-Depends names a package unpacked earlier in the current call starts a new call
    (dpkg refuses it: the pre-dependency is unpacked, not configured).

    A pre-dependency pinned to an exact version (``libpam-modules`` Pre-Depends
    ``libpam-modules-bin (= V)``) moves to the later call with its dependent: upgraded alone, it
    breaks the installed dependent, which pins the old version, and ``nuwa patch --deb`` refuses
    a call that leaves the system broken (measured on bookworm's libpam 1.5.2-6+deb12u3: the
    resolver gives up), while it orders the pair itself when both are in one call."""
    calls: list[list[str]] = [[]]
    names: set[str] = set()
    package: dict[str, str] = {}
    pinned: dict[str, set[str]] = {}
    for d in debs:
        f = subprocess.run(["dpkg-deb", "-f", d, "Package", "Pre-Depends"], capture_output=True, text=True,
                           check=True).stdout
        fields = dict(line.split(": ", 1) for line in f.splitlines() if ": " in line)
        pre = fields.get("Pre-Depends", "")
        package[d] = fields["Package"]
        pinned[d] = {m.group(1) for m in re.finditer(r"([\w.+-]+)(?::\w+)?\s*\(\s*=\s*[^)]+\)", pre)}
        if _names(pre) & names:
            calls.append([])
            names = set()
        calls[-1].append(d)
        names.add(fields["Package"])
    for i in range(1, len(calls)):
        want = set().union(*(pinned[d] for d in calls[i]))
        moved = [d for d in calls[i - 1] if package[d] in want]
        calls[i - 1] = [d for d in calls[i - 1] if d not in moved]
        calls[i] = moved + calls[i]
    return [c for c in calls if c]


def default_set(work: str) -> Set:
    """The default test image and its updates; the reference tree is debugfs' rdump of its root."""
    raw = root_partition(IMAGE, os.path.join(work, "default.ext4"))
    tree = os.path.join(work, "default-tree")
    os.makedirs(tree)
    r = subprocess.run([tool("debugfs"), "-R", f"rdump / {tree}", raw], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"debugfs rdump failed: {r.stderr}")
    os.unlink(raw)

    def reference(root: str) -> None:
        r = real_dpkg(root, UPDATES, ("-i",))
        if r.returncode != 0:
            raise SystemExit(f"real dpkg -i failed: {r.stdout[-1500:]}{r.stderr[-1500:]}")

    return Set("default", IMAGE, UPDATES, tree, reference)


def minbase_set(work: str) -> Set:
    """The bookworm minbase tree, apt's dpkg calls for its security updates, a qcow2 of it."""
    base = M.base_tree()
    steps = M.apt_steps(base)
    debs = [p for action, ops in steps if action == "unpack" for p in ops]
    if len(debs) < 10:
        print(f"note: the archive has only {len(debs)} pending bookworm-security updates for minbase "
              "(the issue assumes >= 10)")
    raw = os.path.join(work, "minbase.ext4")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", base, raw, "2G"], check=True, capture_output=True)
    img = os.path.join(work, "minbase.qcow2")
    subprocess.run([tool("qemu-img"), "convert", "-O", "qcow2", raw, img], check=True)
    os.unlink(raw)
    return Set("minbase", img, debs, base, lambda root: real_dpkg_steps(root, steps))


class DiskSet(Set):
    """A set whose reference runs on a loop-attached disk (``tree`` is the raw disk): each
    repetition copies the disk and attaches it, with ``/dev``, ``/proc`` and ``/sys`` bound in
    the chroot as update-grub and grub-probe need them, untimed; the reference's dpkg calls
    are timed. Nuwa's calls run with ``--report``: what they deferred is collected."""

    def __init__(self, name: str, image: str, debs: list[str], disk: str, reference):
        super().__init__(name, image, debs, disk, reference)
        self.report = True
        self.ref_packages: set[str] | None = None  # "name version status" after the reference

    def run_reference(self, work: str) -> None:
        with fresh_disk(self.tree, work, self.name + "-ref") as mnt:
            self.timed_reference(mnt)
            if self.ref_packages is None:  # untimed: what the judge compares Nuwa's database with
                self.ref_packages = installed(mnt)


@contextlib.contextmanager
def fresh_tree(tree: str, root: str):
    """``root``, a fresh copy of ``tree`` (untimed), removed afterwards."""
    M.copy_tree(tree, root)
    try:
        yield root
    finally:
        shutil.rmtree(root)


@contextlib.contextmanager
def fresh_disk(disk: str, work: str, name: str):
    """The root of a fresh sparse copy of the raw ``disk``, loop-attached, its root partition
    mounted with ``/dev``, ``/proc`` and ``/sys`` bound (untimed); detached and removed after."""
    copy = os.path.join(work, name + ".raw")
    subprocess.run(["cp", "--sparse=always", disk, copy], check=True)
    try:
        with attached(copy, os.path.join(work, name), 2, 2) as (_loop, mnt):
            yield mnt
    finally:
        os.unlink(copy)


def installed(root: str) -> set[str]:
    """"name version status" of every package the chroot ``root``'s dpkg knows (``dpkg-query -W``)."""
    r = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\n"],
                       capture_output=True, text=True, check=True)
    return set(r.stdout.splitlines())


def cloud_disk(work: str) -> str:
    """The raw cloud-style GPT disk of the ``cloud`` tree (kernelimage's, GRUB installed)."""
    return make_image(pathlib.Path(work) / "server-image", source=M.base_tree(variant="cloud"), init=False,
                      size_mb=2048)

def same_packages(out: str, packages: set[str], reference: str = "real dpkg") -> None:
    """The package database of Nuwa's output ``out`` (``nuwa packages --json``) names the
    versions and states of ``packages`` ("name version status", as ``dpkg-query -W`` printed
    them after the reference), or the benchmark stops saying which differ."""
    doc = json.loads(subprocess.run([sys.executable, "-m", "nuwa", "packages", out, "--json"],
                                    capture_output=True, text=True, check=True, env=nuwa_env(REPO),
                                    cwd=REPO).stdout)
    ours = {f"{p['binary_package'].split(':')[0]} {p['version']} {p['state']}" for p in doc["packages"]}
    if ours != packages:
        raise SystemExit(f"Nuwa's package database differs from {reference}'s: only Nuwa's "
                         f"{sorted(ours - packages)[:10]}, only {reference}'s {sorted(packages - ours)[:10]}")


def _is_kernel(name: str) -> bool:
    return name.startswith("linux-image-")


def _is_python(name: str) -> bool:
    return re.fullmatch(r"(lib)?python3(\.\d+)?(-minimal|-stdlib)?", name) is not None


def server_set(work: str) -> Set:
    """The outdated bookworm cloud server (``dpkg_material`` variant ``cloud``: kernel, GRUB,
    initramfs-tools, python3, systemd, openssh-server...; built once a day) on the cloud-style
    GPT disk of ``tests/helpers/kernelimage.py`` (GRUB installed, grub.cfg by update-grub),
    with apt's dpkg calls for ``dist-upgrade`` against the suite, bookworm-updates and
    bookworm-security. Nuwa patches a qcow2 of the disk."""
    base = M.base_tree(variant="cloud")
    steps = M.apt_steps(base, variant="cloud")
    debs = [p for action, ops in steps if action == "unpack" for p in ops]
    names = M.steps_packages(steps)
    print(f"server: apt's dist-upgrade unpacks {len(debs)} .debs in {len(steps)} dpkg calls, among them "
          f"{', '.join(sorted(n for n in names if _is_kernel(n) or _is_python(n))) or 'no kernel, no python3'}")
    for what, test in (("a kernel (linux-image-*)", _is_kernel), ("python3", _is_python)):
        if not any(test(n) for n in names):
            print(f"note: assumption failed: the host's sources have no pending update of {what} for the "
                  "server tree today; the set runs without it")
    gone = [f"{a} {' '.join(ops)}" for a, ops in steps if a in ("remove", "purge")]
    if gone:
        print(f"note: apt's plan also removes packages, which nuwa patch --deb does not: {gone}")
    disk = cloud_disk(work)
    img = os.path.join(work, "server.qcow2")
    subprocess.run([tool("qemu-img"), "convert", "-O", "qcow2", disk, img], check=True)
    return DiskSet("server", img, debs, disk, lambda root: real_dpkg_steps(root, steps))


def judge(s: Set, out: str, work: str) -> None:
    """The real tools on the overlay Nuwa wrote (untimed); for a disk set, also its package
    database against the one real dpkg left."""
    judge_output(out, work, s.name + "-judge", s.ref_packages if isinstance(s, DiskSet) else None)


def judge_output(out: str, work: str, name: str, packages: set[str] | None = None,
                 reference: str = "real dpkg") -> None:
    """``qemu-img check`` of Nuwa's output, ``e2fsck -fn`` of its root filesystem (extracted to
    ``work/NAME.ext4``), and, given ``packages``, :func:`same_packages` (untimed)."""
    qemu_img_check(out)
    raw = root_partition(out, os.path.join(work, name + ".ext4"))
    e2fsck_clean(raw)
    os.unlink(raw)
    if packages is not None:
        same_packages(out, packages, reference)


def decompress_seconds(deb: str) -> float:
    """Wall seconds to decompress ``deb``'s data.tar member in this process (its compressed bytes
    read first, untimed); xz, zstd and gzip, as dpkg-deb and Nuwa's reader both must."""
    with open(deb, "rb") as f:
        ar = ArReader(f, deb)
        member = next(m for m in ar.members() if m.name.startswith("data.tar"))
        raw = ar.read(member, member.size)
    ext = member.name.rsplit(".", 1)[-1]
    t = time.perf_counter()
    if ext == "xz":
        lzma.decompress(raw)
    elif ext == "zst":
        zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    elif ext == "gz":
        gzip.decompress(raw)
    return time.perf_counter() - t


def floor(s: "Set", reps: int) -> None:
    """Print the set's floor: interpreter start plus data.tar decompression (see the docstring)."""
    start = []
    for _ in range(max(reps, 5)):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=nuwa_env(REPO), check=True)
        start.append(time.perf_counter() - t)
    per_deb = [min(decompress_seconds(d) for _ in range(3)) for d in s.debs]
    cores = os.cpu_count() or 1
    one, spread = sum(per_deb), max(max(per_deb), sum(per_deb) / cores)
    target = statistics.median(s.ref_times) / 2
    print(f"{s.name:8} {'interpreter start':26} {stats(start)}")
    print(f"{'':8} {'data.tar decompression':26} {one:6.3f} in one thread, >= {spread:.3f} on {cores} cores "
          f"({len(per_deb)} .debs)")
    print(f"{'':8} {'floor':26} {min(start) + spread:6.3f}   target (0.5x the reference median) {target:.3f}")


def stats(xs: list[float]) -> str:
    return f"min {min(xs):6.3f}  median {statistics.median(xs):6.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sets", default="default,minbase", help="comma-separated, of default, minbase, server "
                    "(server is not in the default: its disk takes a minute to make)")
    ap.add_argument("--no-judge", action="store_true", help="skip qemu-img check / e2fsck of the outputs")
    ap.add_argument("--before", metavar="CHECKOUT", help="also time the nuwa of another checkout (e.g. an "
                    "export of an earlier commit), interleaved in the same loop: before/after under the same load")
    a = ap.parse_args()
    repos = [REPO] + ([os.path.abspath(a.before)] if a.before else [])
    work = tempfile.mkdtemp(prefix="nuwa-bench-patch-", dir="/var/tmp")
    try:
        makers = {"default": default_set, "minbase": minbase_set, "server": server_set}
        sets = [makers[n](work) for n in a.sets.split(",") if n]
        for s in sets:
            size = sum(os.path.getsize(d) for d in s.debs)
            print(f"{s.name}: {len(s.debs)} .debs, {size / 1e6:.1f} MB, {len(s.calls)} nuwa patch call(s)")
        for repo in repos:
            subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(repo, "nuwa")], check=True,
                           env=nuwa_env(repo))  # untimed
        last = {}
        for rep in range(a.reps):
            for s in sets:
                order = repos if rep % 2 else repos[::-1]  # alternate which side runs first
                if rep % 2:
                    s.run_reference(work)
                for repo in order:
                    out = s.run_nuwa(work, repo)
                    if repo == REPO:
                        last[s.name] = out
                if not rep % 2:
                    s.run_reference(work)
        if not a.no_judge:
            for s in sets:
                judge(s, last[s.name], work)
        print(f"\n{a.reps} repetitions, interleaved; seconds (nuwa / reference: < 1 means Nuwa is faster)")
        for s in sets:
            ref = {"default": "dpkg -i (chroot)", "server": "apt's dpkg calls (loop)"}.get(
                s.name, "apt's dpkg calls (chroot)")
            print(f"{s.name:8} {ref:26} {stats(s.ref_times)}")
            print(f"{'':8} {'  cpu (user+sys)':26} {stats(s.ref_cpu)}")
            for repo in repos:
                label = "nuwa patch (process)" if repo == REPO else "  before: " + os.path.basename(repo)
                ts = s.nuwa_times[repo]
                print(f"{'':8} {label:26} {stats(ts)}   peak RSS {max(s.rss[repo]) / 1024:.0f} MB")
                print(f"{'':8} {'  cpu (user+sys)':26} {stats(s.cpu[repo])}")
                if len(s.calls) > 1:
                    for i, call in enumerate(s.calls):
                        mb = sum(os.path.getsize(d) for d in call) / 1e6
                        kernel = " (the kernel)" if any(_is_kernel(os.path.basename(d)) for d in call) else ""
                        print(f"{'':8} {f'  call {i + 1}':26} {len(call):3} .debs {mb:6.1f} MB{kernel:13} "
                              f"peak RSS {max(s.call_rss[repo][i]) / 1024:.0f} MB")
                deferred = sorted(set(s.deferred.get(repo, [])))
                if deferred:
                    print(f"{'':8} {'  ratio':26} none: Nuwa deferred work the reference did "
                          f"({len(deferred)} distinct):")
                    for d in deferred:
                        print(f"{'':8}     {d}")
                    continue
                print(f"{'':8} {'  ratio':26} min {min(ts) / min(s.ref_times):6.2f}  "
                      f"median {statistics.median(ts) / statistics.median(s.ref_times):6.2f}   cpu median "
                      f"{statistics.median(s.cpu[repo]) / statistics.median(s.ref_cpu):.2f}")
        print("\nfloor of any Python process (seconds): its start and the decompression no reader can skip")
        for s in sets:
            floor(s, a.reps)
        print("\nstartup (process wall time, seconds)")
        for label, args in (("nuwa --help", ["--help"]), ("nuwa info default.qcow2", ["info", IMAGE])):
            for repo in repos:
                ts = [nuwa_process(args, repo=repo)[0] for _ in range(max(a.reps, 5))]
                tag = "" if repo == REPO else " (before)"
                print(f"{label + tag:34} {stats(ts)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
