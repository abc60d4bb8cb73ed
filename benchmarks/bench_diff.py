#!/usr/bin/env python3
"""Benchmark: ``nuwa diff`` of two real images (one the ``apt-get upgrade`` of the other)
against a host-side comparison of the unpacked trees, in one run.

    python3 benchmarks/bench_diff.py [--pair DIR] [--base TREE]

The pair is made by tools/make_upgrade_pair.py from a bookworm minbase tree (built with
mmdebstrap and cached by tests/debian_tree.py; needs root and the Debian mirrors) and cached
in /var/tmp/nuwa-trees. The reference is ``rsync -nac`` when installed (``virt-diff`` needs
libguestfs and a kernel appliance, which this runner does not have), else the Python walk in
tools/host_tree_diff.py. Both sides must list the same paths; the script prints both times and
their ratio. Target: nuwa diff under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from tools.host_tree_diff import host_tree_diff  # noqa: E402
from tools.make_upgrade_pair import make_pair  # noqa: E402


def _count(tree: str) -> int:
    return sum(len(d) + len(f) for _, d, f in os.walk(tree))


def _rsync_paths(a: str, b: str) -> set[str] | None:
    rsync = shutil.which("rsync")
    if rsync is None:
        return None
    r = subprocess.run([rsync, "-nacHAX", "--delete", "--out-format=%n", a.rstrip("/") + "/", b.rstrip("/") + "/"],
                       capture_output=True, text=True, check=True)
    return {"/" + line.rstrip("/") for line in r.stdout.splitlines() if line and line != "./"}


_NO_FAST_PATH = ("import sys; from nuwa.fs.ext4.fs import Ext4FS; "
                 "Ext4FS.content_fingerprint = lambda self, path: None; "
                 "from nuwa.cli import main; sys.exit(main(sys.argv[1:]))")


def shared_backing(a_img: str, work: str, env: dict) -> bool:
    """``nuwa diff`` of two overlays over one qcow2 base (made from ``a_img`` by qemu-img), with
    and without the content-fingerprint fast path; returns whether both outputs are identical."""
    os.makedirs(work, exist_ok=True)
    base = os.path.join(work, "base.qcow2")
    if not os.path.exists(base):
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", a_img, base + ".tmp"], check=True)
        os.rename(base + ".tmp", base)
    overlays = []
    for side in ("a", "b"):
        src, out = os.path.join(work, f"only-{side}"), os.path.join(work, f"{side}.qcow2")
        with open(src, "w") as f:
            f.write(f"only in {side}\n")
        if os.path.exists(out):
            os.unlink(out)
        subprocess.run([sys.executable, "-m", "nuwa", "copy-in", base, src, "/etc", "--output", out],
                       check=True, env=env, capture_output=True)
        overlays.append(out)
    times, outs = {}, {}
    for name, cmd in (("fast path", [sys.executable, "-m", "nuwa"]),
                      ("fast path off", [sys.executable, "-c", _NO_FAST_PATH])):
        t0 = time.perf_counter()
        r = subprocess.run([*cmd, "diff", *overlays, "--json"], capture_output=True, text=True, env=env, check=True)
        times[name], outs[name] = time.perf_counter() - t0, r.stdout
    same = outs["fast path"] == outs["fast path off"]
    print(f"two overlays over one base ({os.path.getsize(base) >> 20} MiB qcow2): nuwa diff --json "
          f"{times['fast path']:6.2f} s with the fast path, {times['fast path off']:6.2f} s without "
          f"(ratio {times['fast path off'] / times['fast path']:5.1f}x); identical outputs: {same}")
    return same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", help="directory with a/, b/, a.img, b.img (made if missing)")
    ap.add_argument("--base", help="bookworm minbase tree (default: the cached one)")
    args = ap.parse_args()
    base = args.base
    if base is None:
        from debian_tree import bookworm_tree

        base = bookworm_tree()
    pair_dir = args.pair or os.path.join("/var/tmp/nuwa-trees", "upgrade-pair-" + os.path.basename(base.rstrip("/")))
    pair = make_pair(base, pair_dir)
    n_paths = _count(pair["a"]) + _count(pair["b"])

    env = {**os.environ, "PYTHONPATH": ROOT}
    results = {}
    for mode, extra in (("paths", []), ("json", ["--json"])):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "nuwa", "diff", pair["a.img"], pair["b.img"], *extra],
                           capture_output=True, text=True, env=env, check=True)
        results[mode] = (time.perf_counter() - t0, r.stdout)
    nuwa_paths = {e["path"] for e in json.loads(results["json"][1])["entries"]} - {"/lost+found"}

    t0 = time.perf_counter()
    ref = _rsync_paths(pair["a"], pair["b"])
    ref_name = "rsync -nacHAX"
    if ref is None:
        ref = host_tree_diff(pair["a"], pair["b"])
        ref_name = "python walk (tools/host_tree_diff.py)"
    t_ref = time.perf_counter() - t0

    same = nuwa_paths == ref
    print(f"images: {pair['a.img']} ({os.path.getsize(pair['a.img']) >> 20} MiB), "
          f"{pair['b.img']} ({os.path.getsize(pair['b.img']) >> 20} MiB); {n_paths} paths in the two trees")
    print(f"differing paths: nuwa {len(nuwa_paths)}, reference {len(ref)}, identical lists: {same}")
    t_text, t_json = results["paths"][0], results["json"][0]
    print(f"nuwa diff (text, no hashes):        {t_text:7.2f} s")
    print(f"nuwa diff --json (sha256 of diffs): {t_json:7.2f} s")
    print(f"{ref_name} on the unpacked trees: {t_ref:7.2f} s")
    print(f"ratio nuwa/reference: text {t_text / t_ref:5.2f}x, json {t_json / t_ref:5.2f}x; "
          f"target < 10 s: {'met' if t_text < 10 else 'NOT met'}")
    shared_ok = shared_backing(pair["a.img"], os.path.join(pair_dir, "shared-backing"), env)
    return 0 if same and shared_ok else 1


if __name__ == "__main__":
    sys.exit(main())
