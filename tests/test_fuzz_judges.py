"""tools/fuzz_inplace.py's judges: the real tools' verdicts it relies on, on images qemu made."""

from __future__ import annotations

import struct

import pytest

from helpers.paths import tool_module
from judges import run, tool

pytestmark = pytest.mark.judge


def test_qemu_opens_tells_an_image_qemu_refuses(tmp_path):
    # `qemu-img check` opens in check mode (no snapshot table checks) and `qemu-img info` without
    # I/O (no data file checks): the judge asks qemu-io, which opens the image as a guest's disk
    fi = tool_module("fuzz_inplace")
    p = str(tmp_path / "a.qcow2")
    run([tool("qemu-img"), "create", "-q", "-f", "qcow2", p, "16M"])
    assert fi._qemu_opens(p)
    for off, value in ((0x58, 2), (0x40, 1)):  # data-file-raw without a data file; snapshot table place
        good = open(p, "rb").read()
        with open(p, "r+b") as f:
            f.seek(off)
            f.write(struct.pack(">Q", value))
        assert not fi._qemu_opens(p)
        open(p, "wb").write(good)
    assert fi._qemu_opens(p)
