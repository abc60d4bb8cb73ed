#!/usr/bin/env python3
"""Fleets (issue 17): N overlays of one base, patched in one ``nuwa patch`` fleet run, against
one image patched alone.

- **alone**: ``python3 -m nuwa patch OVERLAY --deb ... --output OUT --quiet``, a new process
  (startup, report and the overlay write included);
- **fleet N**: ``python3 -m nuwa patch OVERLAY_1 ... OVERLAY_N --deb ... --output-dir DIR
  --workers W --quiet`` (the embedded Dask cluster: W worker processes; its start-up and
  shutdown are timed too), for each N of ``--sizes`` (default 1, 10, 50);
- the largest N again with ``--no-effect-reuse`` (every image computed: the cost effect reuse
  saves, in the same run);
- the largest N with ``--rebase-onto-patched-base`` (the base patched once, the overlays
  moved onto it);
- **distinct bases**: the largest N as overlays of ``--bases`` K copies of the default image
  (default 5; each copy is its own base, so K effect groups);
- **own files**: the largest N again, every overlay but the first with a file of its own in
  /srv (``nuwa copy-in --in-place``, untimed): with effect reuse only (each replays the base's
  effect), and with ``--rebase-onto-patched-base`` (each is moved onto the patched base at
  file level, ``nuwa.patch.move``).

The overlays are made by ``qemu-img create -b`` over ``testimages/default.qcow2`` (untimed), the
``.deb`` files are ``testimages/updates``. Each fleet's outputs are judged (``qemu-img check``
of every output, untimed). Prints seconds, the ratio fleet / alone, seconds per image, the
marginal cost per image between the two largest sizes, the client's peak RSS (its own ``VmHWM``, ``procs.wait_peak``:
the Dask workers are separate processes, their memory is Dask's ``memory_limit`` each) and the
size of the output directory.

    python3 benchmarks/bench_fleet.py [--sizes 1,10,50] [--workers W] [--reps N]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from judges import qemu_img_check, tool  # noqa: E402
from procs import nuwa_env, run_timed  # noqa: E402

IMAGE = os.path.join(REPO, "testimages", "default.qcow2")
UPDATES = sorted(glob.glob(os.path.join(REPO, "testimages", "updates", "*.deb")))
#: both sides start as an installed nuwa does: bytecode cached (``procs.nuwa_env``), not compiled
ENV = nuwa_env(REPO)


def overlays(d: str, n: int, bases: int = 0, own: bool = False) -> list[str]:
    """``n`` new qcow2 overlays in ``d`` of the default image, or of ``bases`` copies of it
    (round robin); with ``own``, every one but the first has a file of its own in /srv."""
    os.makedirs(d)
    below = [IMAGE]
    if bases:
        below = []
        for b in range(bases):
            copy = os.path.join(d, f"base{b}.qcow2")
            shutil.copyfile(IMAGE, copy)
            below.append(copy)
    out = []
    for i in range(n):
        p = os.path.join(d, f"vm{i}.qcow2")
        subprocess.run([tool("qemu-img"), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", below[i % len(below)],
                        p], check=True)
        if own and i:
            note = os.path.join(d, "note.txt")
            with open(note, "w") as f:
                f.write(f"this is machine {i}\n")
            subprocess.run([sys.executable, "-m", "nuwa", "copy-in", p, note, "/srv", "--in-place"], env=ENV,
                           check=True)
        out.append(p)
    return out


def debs() -> list[str]:
    """``--deb F`` for every shipped update."""
    return [a for d in UPDATES for a in ("--deb", d)]


def alone(work: str) -> tuple[float, int]:
    """One image patched alone by the single-image command: (seconds, peak RSS KiB)."""
    d = tempfile.mkdtemp(dir=work)
    src = overlays(os.path.join(d, "in"), 1)[0]
    took = run_timed([sys.executable, "-m", "nuwa", "patch", src, *debs(), "--output", os.path.join(d, "out.qcow2"),
                      "--quiet"], env=ENV)
    shutil.rmtree(d)
    return took


def fleet(work: str, n: int, workers: int, bases: int = 0, extra=(), own: bool = False) -> tuple[float, int, int]:
    """A fleet of ``n`` overlays into a new output directory: (seconds, client peak RSS KiB,
    bytes of the output directory)."""
    d = tempfile.mkdtemp(dir=work)
    images = overlays(os.path.join(d, "in"), n, bases, own)
    out = os.path.join(d, "out")
    os.makedirs(out)
    took = run_timed([sys.executable, "-m", "nuwa", "patch", *images, *debs(), "--output-dir", out,
                      "--workers", str(workers), "--quiet", *extra], env=ENV)
    written = sorted(os.listdir(out))
    # every image's output (and, with --rebase-onto-patched-base, the patched base beside them)
    assert set(os.path.basename(p) for p in images) <= set(written), written
    for name in written:
        qemu_img_check(os.path.join(out, name))
    size = sum(os.path.getsize(os.path.join(out, name)) for name in written)
    shutil.rmtree(d)
    return (*took, size)


def main() -> None:
    """Run the comparison and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--bases", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="nuwa-bench-fleet-")
    try:
        base = [alone(work) for _ in range(max(1, args.reps))]
        t_alone = statistics.median(t for t, _ in base)
        print(f"alone: {t_alone:.2f} s, peak RSS {max(r for _, r in base) // 1024} MB "
              f"({len(UPDATES)} .debs on testimages/default.qcow2)")
        print(f"fleet (--workers {args.workers}, embedded LocalCluster):")
        print(f"{'images':>7} {'seconds':>8} {'ratio':>7} {'s/image':>8} {'client RSS MB':>14} {'MB out':>7}")
        rows = []
        for n in sizes:
            runs = [fleet(work, n, args.workers) for _ in range(max(1, args.reps))]
            t = statistics.median(r for r, _, _ in runs)
            rss = max(m for _, m, _ in runs) // 1024
            rows.append((n, t))
            print(f"{n:>7} {t:>8.2f} {t / t_alone:>6.2f}x {t / n:>8.2f} {rss:>14} {runs[0][2] / 1e6:>7.1f}")
        n = sizes[-1]
        for label, kw in ((f"{n}, no effect reuse", {"extra": ("--no-effect-reuse",)}),
                          (f"{n}, rebased", {"extra": ("--rebase-onto-patched-base",)}),
                          (f"{n} over {args.bases} bases", {"bases": args.bases}),
                          (f"{n} own files", {"own": True}),
                          (f"{n} own files, rebased", {"own": True, "extra": ("--rebase-onto-patched-base",)})):
            runs = [fleet(work, n, args.workers, **kw) for _ in range(max(1, args.reps))]
            t = statistics.median(r for r, _, _ in runs)
            rss = max(m for _, m, _ in runs) // 1024
            print(f"{label:>7} {t:>8.2f} {t / t_alone:>6.2f}x {t / n:>8.2f} {rss:>14} {runs[0][2] / 1e6:>7.1f}")
        if len(rows) >= 2:
            (n1, t1), (n2, t2) = rows[-2], rows[-1]
            print(f"marginal cost per image ({n1} -> {n2} images): {(t2 - t1) / (n2 - n1):.2f} s "
                  f"({(t2 - t1) / (n2 - n1) / t_alone:.2f}x one image alone)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
