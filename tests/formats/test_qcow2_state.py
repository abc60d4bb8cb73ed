"""A hypothesis state machine writes random sequences to a qcow2 image and to a raw mirror.

Reads must agree at every step; at every re-open and at the end ``qemu-img check`` must be
clean and ``qemu-img compare`` must find the image identical to the mirror. Configurations: a
plain image, an overlay over a raw backing file, an overlay over a zstd-compressed qemu image
(COW out of compressed clusters), extended L2 over a backing file (subclusters), and 512-byte
clusters with 64-bit refcounts (forces refcount-table and refcount-block growth), plus an image
with an internal snapshot (COW of shared clusters).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from judges import qemu_img_check, qemu_img_compare
from qcow2_util import pattern, qemu_img
from nuwa.formats.detect import open_disk
from nuwa.formats.qcow2_create import create_overlay, create_qcow2

pytestmark = pytest.mark.judge
SIZE = 1 << 20 + 1  # 2 MiB guest
_BASES: dict = {}


def _base(kind: str) -> str:
    """Backing images shared by all examples (made once, never written)."""
    if kind not in _BASES:
        d = tempfile.mkdtemp(prefix="nuwa-qcow2-state-base-")
        atexit.register(shutil.rmtree, d, True)  # shared by all examples: removed at exit
        raw = os.path.join(d, "base.raw")
        with open(raw, "wb") as f:
            f.write(pattern(SIZE, seed=7))
        _BASES["raw"] = raw
        z = os.path.join(d, "base-zstd.qcow2")
        qemu_img("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd,cluster_size=4096", raw, z)
        _BASES["zstd"] = z
    return _BASES[kind]


class Qcow2Machine(RuleBasedStateMachine):
    """Random writes against a qcow2 image and a raw mirror."""

    config = "plain"

    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="nuwa-qcow2-state-")
        self.path = os.path.join(self.dir, "img.qcow2")
        self.img = None

    @initialize()
    def setup(self):
        cfg = self.config
        if cfg == "plain":
            create_qcow2(self.path, SIZE, cluster_size=4096)
            self.mirror = bytearray(SIZE)
        elif cfg == "small-clusters":
            # 64 refcounts per block and 64 table entries per cluster: the first table covers
            # 2 MiB of host file. Filling most of the guest first puts the random writes right
            # where the table and blocks must grow.
            create_qcow2(self.path, SIZE, cluster_size=512, refcount_bits=64)
            self.mirror = bytearray(SIZE)
            fill = pattern(SIZE, seed=8)[: SIZE * 7 // 8]
            with open_disk(self.path, writable=True) as img:
                img.pwrite(0, fill)
            self.mirror[: len(fill)] = fill
        elif cfg == "snapshot":
            qemu_img("convert", "-O", "qcow2", "-o", "cluster_size=4096", _base("raw"), self.path)
            qemu_img("snapshot", "-c", "s1", self.path)
            self.mirror = bytearray(pattern(SIZE, seed=7))
        else:
            backing = _base("zstd" if cfg == "compressed" else "raw")
            create_overlay(self.path, backing, cluster_size=16384 if cfg == "extl2" else 4096,
                           extended_l2=cfg == "extl2")
            self.mirror = bytearray(pattern(SIZE, seed=7))
        self.img = open_disk(self.path, writable=True)
        self.cs = self.img.cluster_size

    def teardown(self):
        try:
            if self.img is not None:
                self.img.close()
                self.img = None
                self._judge()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _judge(self):
        qemu_img_check(self.path)
        raw = os.path.join(self.dir, "mirror.raw")
        with open(raw, "wb") as f:
            f.write(self.mirror)
        qemu_img_compare(raw, self.path)

    @st.composite
    def _extent(draw, cs_hint=4096):
        # biased towards cluster and subcluster boundaries
        base = draw(st.integers(0, SIZE // 512 - 1)) * 512
        jitter = draw(st.sampled_from([0, 0, 1, -1, 7, 511, -300]))
        off = min(max(0, base + jitter), SIZE - 1)
        n = draw(st.sampled_from([1, 100, 512, 4096, 5000, 16384, 70000]))
        return off, max(1, min(n, SIZE - off))

    @rule(ext=_extent(), kind=st.sampled_from(["random", "zeros", "byte"]), seed=st.integers(0, 255))
    def write(self, ext, kind, seed):
        off, n = ext
        if kind == "zeros":
            data = bytes(n)
        elif kind == "byte":
            data = bytes([seed]) * n
        else:
            data = os.urandom(n)
        self.img.pwrite(off, data)
        self.mirror[off : off + n] = data

    @rule(ext=_extent())
    def read(self, ext):
        off, n = ext
        assert self.img.pread(off, n) == self.mirror[off : off + n]

    @rule()
    def reopen(self):
        self.img.close()
        self.img = None
        self._judge()
        self.img = open_disk(self.path, writable=True)

    @rule()
    def flush(self):
        self.img.flush()
        qemu_img_check(self.path, force_share=True)  # still open for writing: Nuwa holds the write locks

    @invariant()
    def head_agrees(self):
        if self.img is not None:
            assert self.img.pread(0, 4096) == self.mirror[:4096]


def _machine(config: str):
    cls = type(f"Machine_{config}", (Qcow2Machine,), {"config": config})
    cls.TestCase.settings = settings(max_examples=8, stateful_step_count=15, deadline=None)
    return cls


TestPlain = _machine("plain").TestCase
TestOverRawBacking = _machine("backing").TestCase
TestOverCompressed = _machine("compressed").TestCase
TestExtendedL2 = _machine("extl2").TestCase
TestSmallClustersGrowth = _machine("small-clusters").TestCase
TestWithSnapshot = _machine("snapshot").TestCase
