#!/usr/bin/env python3
"""Cost of the pre-write check (issue 16): what a writable open checks before the first write.

    python3 benchmarks/bench_precheck.py [--files 20000] [--repeat 3] [--dir /tmp/nuwa-bench-precheck]

Times, best of ``--repeat`` (page cache warm), on images made by the real tools:

- qcow2 (``qcow2_repair.check_before_write``, the whole refcount/L1/L2 check) beside
  ``qemu-img check`` on: ``testimages/default.qcow2``; a 2 TiB sparse image with 3 written
  ranges (qemu-io); a 1 GiB image with every cluster written;
- ext4 (``fs.ext4.precheck.check_allocation``, bitmaps against every in-use inode's blocks)
  beside ``e2fsck -fn`` on: the root filesystem of ``testimages/default.qcow2``; a 4 GiB sparse
  ext4 made by ``mkfs.ext4 -d`` from a tree of ``--files`` small files in nested directories;
- the writable open of ``testimages/default.qcow2``'s root (``Image.open(writable=True).root()``,
  which includes both checks) beside the read-only open, i.e. what a patch run pays.

Files go to ``--dir`` and are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.formats.blockdev import RawFile  # noqa: E402
from nuwa.formats.qcow2 import Qcow2Image  # noqa: E402
from nuwa.formats.qcow2_repair import check_before_write  # noqa: E402
from nuwa.fs.ext4 import open_ext4  # noqa: E402
from nuwa.fs.ext4.precheck import check_allocation  # noqa: E402
from nuwa.image import Image  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "testimages", "default.qcow2")


def best(fn, repeat: int) -> float:
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def qcow2_check(path: str) -> None:
    img = Qcow2Image(path, open_backing=False)
    try:
        check_before_write(img)
    finally:
        img.close()


def ext4_check(path: str) -> dict:
    fs = open_ext4(RawFile(path))
    try:
        return check_allocation(fs)
    finally:
        fs.close()


def make_tree(root: str, files: int) -> None:
    for i in range(files):
        d = os.path.join(root, f"d{i // 1000}", f"e{i // 50}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(100 + (i * 7919) % 20000))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/nuwa-bench-precheck")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    rows = []
    try:
        sparse = os.path.join(args.dir, "sparse.qcow2")
        sh("qemu-img", "create", "-q", "-f", "qcow2", sparse, "2T")
        sh("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 64M", "-c", "write -P 2 1T 64M", "-c", "write 1999G 1M", sparse)
        full = os.path.join(args.dir, "full.qcow2")
        sh("qemu-img", "create", "-q", "-f", "qcow2", full, "1G")
        sh("qemu-io", "-f", "qcow2", *sum((["-c", f"write -q -P {i} {i * 64}M 64M"] for i in range(16)), []), full)
        for name, path in (("qcow2 default.qcow2 (63 MiB)", DEFAULT), ("qcow2 2 TiB sparse", sparse),
                           ("qcow2 1 GiB all written", full)):
            q = best(lambda: subprocess.run(["qemu-img", "check", path], capture_output=True), args.repeat)
            rows.append((name, q, best(lambda: qcow2_check(path), args.repeat), "qemu-img check"))

        root = os.path.join(args.dir, "root.ext4")
        raw = os.path.join(args.dir, "default.raw")
        sh("qemu-img", "convert", "-O", "raw", DEFAULT, raw)
        with Image.open(raw) as img:
            part = img.root_volume().partition
            start, size = part.start * part.sector_size, part.size * part.sector_size
        with open(raw, "rb") as src, open(root, "wb") as dst:
            src.seek(start)
            dst.write(src.read(size))
        os.unlink(raw)
        tree = os.path.join(args.dir, "tree")
        make_tree(tree, args.files)
        big = os.path.join(args.dir, "big.ext4")
        sh("mkfs.ext4", "-q", "-F", "-d", tree, big, "4G")
        shutil.rmtree(tree)
        for name, path in (("ext4 default.qcow2 root", root), (f"ext4 4 GiB, {args.files} files", big)):
            e = best(lambda: subprocess.run(["e2fsck", "-fn", path], capture_output=True), args.repeat)
            stats = ext4_check(path)
            rows.append((f"{name} ({stats['inodes_in_use']} inodes)", e, best(lambda: ext4_check(path), args.repeat),
                         "e2fsck -fn"))

        def open_root(writable: bool):
            def fn():
                with Image.open(copy if writable else DEFAULT, writable=writable) as img:
                    img.root()
            return fn
        copy = os.path.join(args.dir, "copy.qcow2")
        shutil.copy(DEFAULT, copy)
        ro = best(open_root(False), args.repeat)
        rw = best(open_root(True), args.repeat)
        rows.append(("open default.qcow2 root: read-only vs writable", ro, rw, "read-only open"))
        print(f"{'image':<52} {'reference (s)':>13} {'Nuwa (s)':>9}  reference")
        for name, ref, mine, what in rows:
            print(f"{name:<52} {ref:>13.4f} {mine:>9.4f}  {what}")
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
