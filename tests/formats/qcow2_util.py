"""Shared helpers for the qcow2 tests: a self-verifying guest pattern and images made by qemu-img.

Every image is produced by the real tool (qemu-img / qemu-io) from the deterministic pattern
below, so the expected guest bytes are known twice: from the pattern and from
``qemu-img convert -O raw``. Tests compare Nuwa against the latter.
"""

from __future__ import annotations

import json
import os
import random

from judges import qemu_img_to_raw, run, tool

MiB = 1 << 20


def pattern(size: int, seed: int = 1) -> bytes:
    """A guest image with holes, runs of zeros, text and random data (deterministic)."""
    rng = random.Random(seed)
    buf = bytearray(size)
    pos = 0
    while pos < size:
        kind = rng.randrange(4)
        n = min(size - pos, rng.choice([512, 4096, 65536, 200000, 700000]))
        if kind == 0:
            pass  # hole
        elif kind == 1:
            line = f"block at {pos:#x} seed {seed}\n".encode()
            buf[pos : pos + n] = (line * (n // len(line) + 1))[:n]
        else:
            buf[pos : pos + n] = rng.randbytes(n)
        pos += n
    return bytes(buf)


def pattern_dir(tmp_path_factory, name: str, size: int, seed: int = 1) -> str:
    """A new scratch directory holding ``pattern.raw`` (:func:`pattern` of ``size``, ``seed``):
    the guest image a test module converts into its qcow2 variants."""
    d = tmp_path_factory.mktemp(name)
    with open(d / "pattern.raw", "wb") as f:
        f.write(pattern(size, seed=seed))
    return str(d)


def qemu_img(*args: str) -> str:
    """Run qemu-img; return stdout (raises on failure)."""
    return run([tool("qemu-img"), *args]).stdout


def qemu_io(path: str, *cmds: str, fmt: str = "qcow2") -> None:
    """Run qemu-io commands against an image (qemu writes, Nuwa reads)."""
    args = [tool("qemu-io"), "-f", fmt]
    for c in cmds:
        args += ["-c", c]
    r = run(args + [path])
    assert "error" not in r.stdout.lower() + r.stderr.lower(), r.stdout + r.stderr


def qemu_info(path: str) -> dict:
    """``qemu-img info --output=json``."""
    return json.loads(qemu_img("info", "--output=json", path))


def reference_raw(path: str, tmpdir: str) -> bytes:
    """The guest bytes qemu sees (``qemu-img convert -O raw``)."""
    out = os.path.join(tmpdir, os.path.basename(path) + ".ref.raw")
    qemu_img_to_raw(path, out)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data


#: name -> qemu-img convert options (the variants issue 2 lists)
VARIANTS = {
    "plain": ["-O", "qcow2"],
    "zlib": ["-c", "-O", "qcow2", "-o", "compression_type=zlib"],
    "zstd": ["-c", "-O", "qcow2", "-o", "compression_type=zstd"],
    "v2": ["-O", "qcow2", "-o", "compat=0.10"],
    "extl2": ["-O", "qcow2", "-o", "extended_l2=on"],
    "extl2_zstd": ["-c", "-O", "qcow2", "-o", "extended_l2=on,compression_type=zstd"],
    "c512": ["-O", "qcow2", "-o", "cluster_size=512"],
    "c2m": ["-O", "qcow2", "-o", "cluster_size=2M"],
    "rc1": ["-O", "qcow2", "-o", "refcount_bits=1"],
    "rc64": ["-O", "qcow2", "-o", "refcount_bits=64,cluster_size=4096"],
    "lazy": ["-O", "qcow2", "-o", "lazy_refcounts=on"],
}


def make_variant(dirpath: str, name: str, raw: str) -> str:
    """Convert ``raw`` into the named qcow2 variant inside ``dirpath``; return its path."""
    out = os.path.join(dirpath, f"{name}.qcow2")
    if not os.path.exists(out):
        qemu_img("convert", *VARIANTS[name], raw, out)
    return out
