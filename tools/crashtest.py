#!/usr/bin/env python3
"""Crash test of ``nuwa patch --in-place`` (issue 16): kill real runs at chosen writes and
flushes, then check that every judge sees exactly the BEFORE or the AFTER filesystem.

For each image kind (``qcow2``: a copy of testimages/default.qcow2; ``raw``: the same disk
converted by ``qemu-img convert``) a reference run counts the run's ``os.pwrite``/``os.fsync``
calls on the image file and gives the AFTER tree. Then, for every chosen kill point N, a copy
of the image is patched by a real ``python3 -m nuwa patch IMAGE --deb ... --in-place`` child
that SIGKILLs itself just before its N-th write or flush of the image (a hook installed in the
child by this script, wrapping ``os.pwrite``/``os.fsync``; nothing in Nuwa knows about it).
What is left is judged by

1. ``qemu-img check`` (qcow2): no corruption (leaked clusters are allowed, as qemu allows them);
2. e2fsprogs as the recovering reader: the root filesystem is cut out (``qemu-img convert``),
   the journal replayed by ``e2fsck -E journal_only -y`` (what the kernel does at mount), then
   ``e2fsck -fn`` must be clean, and its tree (``debugfs rdump``) must be the BEFORE or the
   AFTER tree;
3. Nuwa as the recovering reader: a writable open of the image replays the journal into it
   (what the next ``nuwa`` run does first), then the same ``e2fsck -fn`` and tree check, and
   the state must be the one e2fsprogs saw.

Usage::

    python3 tools/crashtest.py                      # every kill point, qcow2 and raw, 2 jobs
    python3 tools/crashtest.py --sample 20 --seed 1 # a seeded sample of 20 points per kind
    python3 tools/crashtest.py --kinds raw --json out.json

Exit status 0 when every point recovered to BEFORE or AFTER with clean judges, 1 otherwise.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import glob
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, "testimages", "default.qcow2")
DEBS = sorted(glob.glob(os.path.join(ROOT, "testimages", "updates", "*.deb")))
#: name -> the .debs of one patch run (prefixes of the file names); each its own set of points
SCENARIOS = {"all": ("",), "liblzma5": ("liblzma5_",), "libpcre2": ("libpcre2",),
             "xz": ("liblzma5_", "xz-utils_")}


def scenario_debs(name: str) -> list[str]:
    """The .deb files of scenario ``name``."""
    return [d for d in DEBS if os.path.basename(d).startswith(SCENARIOS[name])]
KILL_AT = "NUWA_CRASHTEST_KILL_AT"  # kill before the N-th write/flush of the target (1-based)
TARGET = "NUWA_CRASHTEST_TARGET"  # the image file whose writes and flushes are counted
COUNT_TO = "NUWA_CRASHTEST_COUNT_TO"  # where the child writes its count when it exits


# ---- the child: a real nuwa run with the kill hook -----------------------------------------
def _child(argv: list[str]) -> int:
    """Run ``nuwa ARGV`` with os.pwrite/os.fsync/os.fdatasync counted on the target file."""
    target = os.path.realpath(os.environ[TARGET])
    kill_at = int(os.environ.get(KILL_AT, "0"))
    count = [0]

    def on_target(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            return False

    def hooked(real):
        def call(fd, *args):
            if on_target(fd):
                count[0] += 1
                if count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(fd, *args)
        return call

    _pin_time()
    os.pwrite = hooked(os.pwrite)
    os.fsync = hooked(os.fsync)
    os.fdatasync = hooked(os.fdatasync)
    if os.environ.get(COUNT_TO):
        def report() -> None:
            with open(os.environ[COUNT_TO], "w") as f:
                f.write(str(count[0]))
        atexit.register(report)
    sys.path.insert(0, ROOT)
    from nuwa.cli import main
    return main(argv)


#: every run happens "at" this moment, so that logs (dpkg.log, alternatives.log) and times
#: are the same in every run and a tree is exactly BEFORE or AFTER
PINNED_TIME = 1767225600  # 2026-01-01 00:00:00 UTC


def _pin_time() -> None:
    import time as t

    real_localtime, real_gmtime, real_strftime = t.localtime, t.gmtime, t.strftime
    t.time = lambda: float(PINNED_TIME)
    t.time_ns = lambda: PINNED_TIME * 10**9
    t.localtime = lambda secs=None: real_localtime(PINNED_TIME if secs is None else secs)
    t.gmtime = lambda secs=None: real_gmtime(PINNED_TIME if secs is None else secs)
    t.strftime = lambda fmt, tt=None: real_strftime(fmt, real_localtime(PINNED_TIME) if tt is None else tt)


def _run_patch(image: str, debs: list[str], kill_at: int = 0, count_to: str | None = None) -> int:
    env = dict(os.environ, PYTHONPATH=ROOT, LC_ALL="C", TZ="UTC", **{TARGET: image, KILL_AT: str(kill_at)})
    if count_to:
        env[COUNT_TO] = count_to
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "patch", image, "--deb", *debs,
           "--in-place", "--quiet"]
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    if r.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"patch run (kill at {kill_at}) exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    return r.returncode


# ---- judges --------------------------------------------------------------------------------
def _sh(args: list[str], ok=(0,)) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode not in ok:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-2000:]}")
    return r


def root_span(image: str) -> tuple[int, int]:
    """(offset, length) of the root filesystem on the disk, as Nuwa finds it."""
    sys.path.insert(0, ROOT)
    import nuwa

    with nuwa.open(image) as img:
        part = img.root_volume().partition
        return part.start * part.sector_size, part.size * part.sector_size


def cut_root(image: str, fs: str, span: tuple[int, int]) -> str:
    """The root filesystem of ``image`` copied to ``fs`` by ``qemu-img dd`` (qemu reads the
    qcow2 or raw disk; only the partition's bytes are copied)."""
    bs = math.gcd(span[0], span[1], 1 << 20)
    fmt = "raw" if image.endswith(".raw") else "qcow2"
    _sh(["qemu-img", "dd", "-f", fmt, "-O", "raw", f"bs={bs}", f"if={image}", f"of={fs}",
         f"skip={span[0] // bs}", f"count={(span[0] + span[1]) // bs}"])  # qemu-img dd: count includes skip
    return fs


def _drop(path: str) -> None:
    os.unlink(path)


def tree_digest(fs: str, work: str) -> str:
    """A digest of the tree in the bare filesystem ``fs`` as ``debugfs rdump`` extracts it:
    every path with its type, mode, owner, size and content hash (or link target)."""
    out = os.path.join(work, "rdump")
    os.mkdir(out)
    _sh(["debugfs", "-R", f"rdump / {out}", fs])
    facts = []
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if os.path.islink(p):
                extra = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            else:
                extra = ""
            size = 0 if os.path.isdir(p) else st.st_size
            facts.append(f"{os.path.relpath(p, out)}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0{size}\0{extra}")
    shutil.rmtree(out)
    return hashlib.sha256("\n".join(facts).encode("utf-8", "surrogateescape")).hexdigest()


def nuwa_recover(image: str) -> None:
    """What the next nuwa run does first: a writable open replays the journal into the image
    (in this process: the replay is the same code a ``nuwa`` command runs)."""
    sys.path.insert(0, ROOT)
    import nuwa

    with nuwa.open(image, writable=True) as img:
        img.root()


def judge(kind: str, image: str, span, states: dict[str, str], work: str) -> dict:
    """Judge a killed run's image; returns the facts (raises AssertionError on a failure)."""
    res = {}
    if kind == "qcow2":
        r = _sh(["qemu-img", "check", "--output=json", image], ok=(0, 3))
        info = json.loads(r.stdout)
        if info.get("corruptions", 0):
            raise AssertionError(f"qemu-img check: corruption {info}")
        res["leaks"] = info.get("leaks", 0)
    # e2fsprogs replays (kernel-like), then checks
    fs = cut_root(image, os.path.join(work, "e2fs.img"), span)
    needs = "needs_recovery" in _sh(["dumpe2fs", "-h", fs], ok=(0, 1)).stdout.split("Filesystem flags")[0]
    res["needs_recovery"] = needs
    _sh(["e2fsck", "-E", "journal_only", "-y", fs], ok=(0, 1))
    _sh(["e2fsck", "-fn", fs])
    e2_state = states.get(tree_digest(fs, work))
    if e2_state is None:
        raise AssertionError("after e2fsck's journal replay the tree is neither BEFORE nor AFTER")
    _drop(fs)
    # Nuwa replays into the image itself, then checks
    nuwa_recover(image)
    if kind == "qcow2":
        _sh(["qemu-img", "check", image], ok=(0, 3))
    fs = cut_root(image, os.path.join(work, "nuwa.img"), span)
    _sh(["e2fsck", "-fn", fs])
    n_state = states.get(tree_digest(fs, work))
    if n_state != e2_state:
        raise AssertionError(f"after Nuwa's replay the tree is {n_state or 'neither BEFORE nor AFTER'}, "
                             f"e2fsprogs saw {e2_state}")
    _drop(fs)
    res["state"] = e2_state
    return res


# ---- driver --------------------------------------------------------------------------------
def prepare(kind: str, work: str) -> str:
    """The pristine image of ``kind`` in ``work``."""
    path = os.path.join(work, f"base.{kind}")
    if kind == "qcow2":
        shutil.copyfile(IMAGE, path)
    else:
        _sh(["qemu-img", "convert", "-O", "raw", IMAGE, path])
    return path


def one_point(kind: str, scenario: str, ref: dict, n: int, top: str) -> dict:
    """Kill a run at write/flush ``n`` and judge it."""
    base, span, states = ref["base"], ref["span"], ref["states"]
    work = tempfile.mkdtemp(prefix=f"{kind}-{scenario}-{n}-", dir=top)
    try:
        image = os.path.join(work, f"img.{kind}")
        shutil.copyfile(base, image)
        rc = _run_patch(image, scenario_debs(scenario), kill_at=n)
        try:
            res = judge(kind, image, span, states, work)
        except AssertionError as err:
            keep = os.path.join(top, f"FAILED-{kind}-{scenario}-{n}.{kind}")
            shutil.copyfile(image, keep)
            print(json.dumps({"kind": kind, "scenario": scenario, "point": n, "ok": False}), flush=True)
            return {"kind": kind, "scenario": scenario, "point": n, "ok": False, "error": str(err)[:2000],
                    "kept": keep}
        out = {"kind": kind, "scenario": scenario, "point": n, "ok": True, "killed": rc != 0, **res}
        print(json.dumps(out), flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reference(kind: str, scenario: str, base: str, top: str) -> dict:
    """Count the writes/flushes of an uninterrupted run; the BEFORE and AFTER tree digests."""
    span = root_span(base)
    work = tempfile.mkdtemp(dir=top)
    spec = cut_root(base, os.path.join(work, "b.img"), span)
    before = tree_digest(spec, work)
    _drop(spec)
    image = os.path.join(work, f"after.{kind}")
    shutil.copyfile(base, image)
    count_file = os.path.join(work, "count")
    t0 = time.monotonic()
    _run_patch(image, scenario_debs(scenario), count_to=count_file)
    seconds = time.monotonic() - t0
    with open(count_file) as f:
        total = int(f.read())
    fs = cut_root(image, os.path.join(work, "a.img"), span)
    _sh(["e2fsck", "-fn", fs])
    after = tree_digest(fs, work)
    _drop(fs)
    if after == before:
        raise RuntimeError("the reference run changed nothing")
    shutil.rmtree(work)
    return {"base": base, "span": span, "total": total, "states": {before: "before", after: "after"},
            "seconds": seconds}


def main(argv=None) -> int:
    """Run the crash test; print counts; exit 1 on any failed point."""
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        return _child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default="qcow2,raw")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"of {', '.join(SCENARIOS)}")
    ap.add_argument("--sample", type=int, default=0, help="a seeded sample of N points per kind (0: all)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="write every point's result here")
    ap.add_argument("--workdir", help="keep work (and failed images) here instead of a temporary directory")
    args = ap.parse_args(argv)
    top = args.workdir or tempfile.mkdtemp(prefix="nuwa-crashtest-")
    os.makedirs(top, exist_ok=True)
    results, summary = [], {}
    t0 = time.monotonic()
    for kind, scenario in [(k, s) for k in args.kinds.split(",") for s in args.scenarios.split(",")]:
        base = prepare(kind, top)
        ref = reference(kind, scenario, base, top)
        points = list(range(1, ref["total"] + 2))  # total+1: a run that finishes untouched
        if args.sample and args.sample < len(points):
            points = sorted(random.Random(f"{args.seed}-{kind}-{scenario}").sample(points, args.sample))
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            got = list(pool.map(lambda n: one_point(kind, scenario, ref, n, top), points))
        results += got
        ok = [r for r in got if r["ok"]]
        summary[f"{kind}/{scenario}"] = {
            "writes_and_flushes": ref["total"], "points": len(got), "ok": len(ok),
            "before": sum(r["state"] == "before" for r in ok), "after": sum(r["state"] == "after" for r in ok),
            "needs_recovery_left": sum(bool(r.get("needs_recovery")) for r in ok),
            "leaked_clusters_points": sum(bool(r.get("leaks")) for r in ok),
            "reference_seconds": round(ref["seconds"], 2),
        }
        print(f"{kind}/{scenario}: {json.dumps(summary[f'{kind}/{scenario}'])}", flush=True)
        for r in got:
            if not r["ok"]:
                print(f"  FAILED point {r['point']}: {r['error'][:500]} (image kept: {r['kept']})", flush=True)
    total = {"points": len(results), "ok": sum(r["ok"] for r in results),
             "before": sum(r.get("state") == "before" for r in results),
             "after": sum(r.get("state") == "after" for r in results)}
    print(f"total: {json.dumps(total)} in {time.monotonic() - t0:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "results": results, "seconds": time.monotonic() - t0}, f, indent=1)
    if not args.workdir:
        shutil.rmtree(top, ignore_errors=True)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
