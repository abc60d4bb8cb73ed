#!/usr/bin/env python3
"""qcow2 benchmark: Nuwa against qemu-img / qemu-io, side by side in one run.

    python3 benchmarks/bench_qcow2.py [--size-gib 1] [--writes 2000] [--dir /tmp/nuwa-bench-qcow2]

Measures (each timing is the best of ``--repeat`` runs, page cache warm for both tools):

1. sequential read of the whole guest, plain and zstd-compressed qcow2:
   ``qemu-img convert -O raw IMG OUT`` versus Nuwa reading 4 MiB chunks and writing them to a
   raw file the same way (holes skipped, like convert); also Nuwa reading only. Target: ratio
   Nuwa/qemu-img <= 2.
2. random 4 KiB writes per second: allocating writes into a fresh image and in-place writes
   into allocated clusters, Nuwa (final flush included) versus qemu-io on the same offsets.
3. peak memory (a child process's own VmHWM) while Nuwa reads a 10 GiB sparse image.
   Target: < 100 MB.

The images are made here with qemu-img from a deterministic data pattern and removed at the end
(``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.formats.detect import open_disk  # noqa: E402
from nuwa.formats.qcow2_create import create_qcow2  # noqa: E402

MiB = 1 << 20
CHUNK = 4 * MiB


def make_pattern(path: str, size: int) -> None:
    """Guest data: random blocks (incompressible), text blocks (compressible) and holes."""
    rng = random.Random(42)
    rand_block = rng.randbytes(CHUNK)
    with open(path, "wb") as f:
        f.truncate(size)
        for off in range(0, size, CHUNK):
            kind = (off // CHUNK) % 8
            if kind == 7:
                continue  # hole
            if kind < 3:
                line = f"text block {off:#x} lorem ipsum dolor sit amet\n".encode()
                block = (line * (CHUNK // len(line) + 1))[:CHUNK]
            else:
                block = off.to_bytes(8, "big") + rand_block[8:]
            f.seek(off)
            f.write(block)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def nuwa_convert(src: str, dst: str | None) -> None:
    """Read the whole guest with Nuwa; write it to ``dst`` skipping holes (as qemu-img convert)."""
    zero = bytes(CHUNK)
    with open_disk(src) as img:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if dst else None
        try:
            for off in range(0, img.size, CHUNK):
                n = min(CHUNK, img.size - off)
                data = img.pread(off, n)
                if fd is not None and (n != CHUNK or data != zero):
                    os.pwrite(fd, data, off)
            if fd is not None:
                os.ftruncate(fd, img.size)
        finally:
            if fd is not None:
                os.close(fd)


def qemu_convert(src: str, dst: str) -> None:
    subprocess.run(["qemu-img", "convert", "-O", "raw", src, dst], check=True)


def nuwa_writes(path: str, offsets: list) -> None:
    data = b"\x5a" * 4096
    with open_disk(path, writable=True) as img:
        for off in offsets:
            img.pwrite(off, data)


def qemu_writes(path: str, offsets: list) -> None:
    cmds = "".join(f"write -P 0x5a {off} 4k\n" for off in offsets) + "quit\n"
    subprocess.run(["qemu-io", "-f", "qcow2", path], input=cmds, text=True, check=True, capture_output=True)


_PEAK_CHILD = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from nuwa.formats.detect import open_disk
t = time.perf_counter()
with open_disk(sys.argv[2]) as img:
    for off in range(0, img.size, 4 << 20):
        img.pread(off, min(4 << 20, img.size - off))
print(next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")), time.perf_counter() - t)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gib", type=float, default=1.0)
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/nuwa-bench-qcow2")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not shutil.which("qemu-img"):
        print("qemu-img is not installed", file=sys.stderr)
        return 2
    os.makedirs(args.dir, exist_ok=True)
    d = args.dir
    size = int(args.size_gib * (1 << 30)) // CHUNK * CHUNK
    raw, plain, zstd = (os.path.join(d, n) for n in ("pattern.raw", "plain.qcow2", "zstd.qcow2"))
    out = os.path.join(d, "out.raw")
    try:
        print(f"# making a {size / (1 << 30):.2f} GiB guest pattern and its qcow2 images with qemu-img ...")
        make_pattern(raw, size)
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, plain], check=True)
        subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", raw, zstd],
                       check=True)
        print(f"{'measurement':48} {'qemu':>9} {'nuwa':>9} {'ratio':>7}")
        for name, img in (("plain", plain), ("zstd", zstd)):
            q = best(lambda: qemu_convert(img, out), args.repeat)
            n = best(lambda: nuwa_convert(img, out), args.repeat)
            ok = subprocess.run(["cmp", "-s", out, raw]).returncode == 0
            r = best(lambda: nuwa_convert(img, None), args.repeat)
            mbs = size / MiB
            print(f"{'seq read ' + name + ' -> raw file (s)':48} {q:9.2f} {n:9.2f} {n / q:7.2f}"
                  f"   nuwa output identical: {ok}")
            print(f"{'seq read ' + name + ', nuwa read only (s)':48} {q:9.2f} {r:9.2f} {r / q:7.2f}"
                  f"   ({mbs / r:.0f} MiB/s)")

        rng = random.Random(1)
        offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(args.writes)]
        for label, prep in (("allocating", "fresh"), ("in place", "allocated")):
            a, b = os.path.join(d, "wq.qcow2"), os.path.join(d, "wn.qcow2")
            for p in (a, b):
                if prep == "fresh":
                    create_qcow2(p, size)
                else:
                    shutil.copy(plain, p)
            t = time.perf_counter()
            qemu_writes(a, offsets)
            tq = time.perf_counter() - t
            t = time.perf_counter()
            nuwa_writes(b, offsets)
            tn = time.perf_counter() - t
            chk = subprocess.run(["qemu-img", "check", b], capture_output=True).returncode
            same = subprocess.run(["qemu-img", "compare", a, b], capture_output=True).returncode
            print(f"{'random 4 KiB writes/s, ' + label:48} {len(offsets) / tq:9.0f} {len(offsets) / tn:9.0f} "
                  f"{(len(offsets) / tn) / (len(offsets) / tq):7.2f}   check rc={chk} compare rc={same}")
            os.unlink(a)
            os.unlink(b)

        sparse = os.path.join(d, "sparse10g.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", sparse, "10G"], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 1 0 8M", "-c", "write -P 2 5G 8M",
                        "-c", "write -P 3 9G 8M", sparse], check=True, capture_output=True)
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        r = subprocess.run([sys.executable, "-c", _PEAK_CHILD, repo, sparse], capture_output=True, text=True,
                           check=True)
        rss_kib, secs = r.stdout.split()
        base = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
                               " import nuwa.formats.detect;"
                               " print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')))",
                               repo],
                              capture_output=True, text=True, check=True).stdout.strip()
        print(f"{'peak RSS reading a 10 GiB sparse image (MB)':48} {'':9} {int(rss_kib) / 1024:9.1f} {'':7}"
              f"   (interpreter+imports alone: {int(base) / 1024:.1f} MB; {float(secs):.1f} s)")
    finally:
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
