#!/usr/bin/env python3
"""Python byte-compilation: does the code depend on what a worker compiled before, and what
do two workers and sending sources ahead save?

On the cached bookworm tree with python3 (tests/helpers/kerneltree.py), read-only:

- ``history``: the stdlib's regular ``.py`` files (542 in bookworm) compiled by a fresh
  worker per file, by one worker in order, shuffled, reversed, in two halves, round-robin,
  and on two workers as the compiler shares them out; prints how many marshalled bodies
  differ from one worker in order, and how many of those differ from the tree's own ``.pyc``
  bodies (written by the real python3.11).
- ``time``: ``python3.11 -E -S py_compile.py FILES`` (those files, as python3.11's postinsts
  run it) through the shell simulator on an overlay of the tree (never committed), with 1
  and 2 workers, interleaved; wall, the parent's CPU and the workers' CPU per run.

    python3 benchmarks/bench_bytecompile.py [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from helpers.kerneltree import kernel_tree  # noqa: E402
from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402
from nuwa.script.commands import default_models  # noqa: E402
from nuwa.script.commands.python import bytecode  # noqa: E402
from nuwa.script.interp import run_script  # noqa: E402
from nuwa.script.record import DEFERRED  # noqa: E402


def stdlib_sources(tree: str) -> list[str]:
    """Image paths of the stdlib's regular .py files (no site/dist-packages), sorted."""
    out = []
    for top, dirs, files in os.walk(os.path.join(tree, "usr/lib/python3.11")):
        dirs.sort()
        if "__pycache__" in top or "-packages" in top:
            continue
        for f in sorted(files):
            p = os.path.join(top, f)
            if f.endswith(".py") and os.path.isfile(p) and not os.path.islink(p):
                out.append("/" + os.path.relpath(p, tree))
    return out


def _compile(names: list[str], src: dict[str, bytes], workers: int) -> dict[str, bytes]:
    out = {}
    with bytecode.Compiler(False, workers) as comp:
        tickets = [(n, comp.submit(n, src[n], 0)) for n in names]
        for n, t in tickets:
            try:
                out[n] = comp.result(t)[0]
            except bytecode.CompileFailed as e:
                out[n] = e.msg.encode()
    return out


def history(tree: str, names: list[str]) -> dict:
    """Differences between orders and splits, and against the tree's own .pyc bodies."""
    src = {n: open(tree + n, "rb").read() for n in names}
    base = _compile(names, src, 1)
    own = {}
    for n in names:
        head, tail = os.path.split(tree + n)
        with open(os.path.join(head, "__pycache__", tail[:-3] + ".cpython-311.pyc"), "rb") as f:
            own[n] = f.read()[16:]
    fresh = {}
    for n in names:
        fresh.update(_compile([n], src, 1))
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    half = len(names) // 2
    runs = {"fresh worker per file": fresh, "shuffled": _compile(shuffled, src, 1),
            "reversed": _compile(names[::-1], src, 1),
            "two halves": {**_compile(names[:half], src, 1), **_compile(names[half:], src, 1)},
            "round-robin": {**_compile(names[0::2], src, 1), **_compile(names[1::2], src, 1)},
            "two workers, least loaded first": _compile(names, src, 2)}
    out = {"files": len(names), "one worker in order vs the tree's .pyc": sum(base[n] != own[n] for n in names)}
    for label, got in runs.items():
        out[label] = sum(got[n] != base[n] for n in names)
    return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(tree: str, names: list[str], workers: int, models) -> tuple[float, float, float]:
    """(wall, parent CPU, workers' CPU) of py_compile.py FILES on a fresh overlay."""
    count = bytecode.worker_count
    bytecode.worker_count = lambda files: workers
    try:
        cmd = shlex.join(["/usr/bin/python3.11", "-E", "-S", "/usr/lib/python3.11/py_compile.py", *names])
        fs = Overlay(HostDirFS(tree))
        k, t, c = _children_cpu(), time.perf_counter(), time.process_time()
        res = run_script(fs, cmd, env={"PATH": "/usr/bin:/bin"}, models=models)
        wall, cpu, kids = time.perf_counter() - t, time.process_time() - c, _children_cpu() - k
    finally:
        bytecode.worker_count = count
    assert res.status == 0 and res.record.counts[DEFERRED] == 0 and not res.deferred_whole, res.stderr
    return wall, cpu, kids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tree = kernel_tree()
    names = stdlib_sources(tree)
    result = {"history": history(tree, names), "load average": os.getloadavg()[0], "time": {}}
    models = default_models()
    runs: dict[int, list] = {1: [], 2: []}
    for _ in range(args.repeat):
        for workers in runs:
            runs[workers].append(timed(tree, names, workers, models))
    for workers, v in runs.items():
        result["time"][f"{workers} worker(s)"] = {
            "wall": sorted(round(x[0], 3) for x in v), "wall median": round(statistics.median(x[0] for x in v), 3),
            "parent cpu median": round(statistics.median(x[1] for x in v), 3),
            "workers cpu median": round(statistics.median(x[2] for x in v), 3)}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for label, n in result["history"].items():
        print(f"{label:40s} {n}")
    print(f"load average {result['load average']:.1f}")
    for label, v in result["time"].items():
        print(f"{label:12s} wall median {v['wall median']:.2f} s (runs {v['wall']}), parent CPU "
              f"{v['parent cpu median']:.2f} s, workers' CPU {v['workers cpu median']:.2f} s")


if __name__ == "__main__":
    main()
