"""``BlockDevice.content_identity``: equal keys only for devices that read identical bytes.

Overlays made by the real ``qemu-img create -b`` over one base read as the base while they hold
no cluster of their own (equal keys); one cluster written by qemu-io makes the key None; a base
file rewritten (its mtime moves) changes every key above it; a raw file and a slice of it have
their own keys.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers.paths import DEFAULT_IMAGE
from judges import tool
from nuwa.formats.blockdev import RawFile, SliceDevice
from nuwa.formats.detect import open_disk

pytestmark = [pytest.mark.judge]


def _identity(path: str):
    with open_disk(path) as dev:
        return dev.content_identity()


def _overlay(path: str, base: str) -> str:
    subprocess.run([tool("qemu-img"), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, path], check=True)
    return path


def test_overlays_that_allocated_nothing_read_as_their_base(tmp_path):
    if not os.path.exists(DEFAULT_IMAGE):
        pytest.skip("testimages/default.qcow2 is missing")
    base = str(tmp_path / "base.qcow2")
    shutil.copyfile(DEFAULT_IMAGE, base)
    a, b = _overlay(str(tmp_path / "a.qcow2"), base), _overlay(str(tmp_path / "b.qcow2"), base)
    ka = _identity(a)
    assert ka is not None and ka[0] == "overlay"
    assert _identity(b) == ka
    assert _identity(base) != ka and _identity(base)[0] == "qcow2"
    # an overlay of an overlay that allocated nothing still reads as the base
    c = _overlay(str(tmp_path / "c.qcow2"), a)
    assert _identity(c) is not None and _identity(c) != ka
    # one cluster of its own (written by the real qemu-io): no identity
    subprocess.run([tool("qemu-io"), "-f", "qcow2", "-c", "write -P 0x5a 1M 64k", b], check=True,
                   capture_output=True)
    assert _identity(b) is None
    assert _identity(_overlay(str(tmp_path / "d.qcow2"), b)) is None  # nor anything above it
    # the base rewritten: the keys of its untouched overlays change with it
    with open(base, "r+b") as f:
        f.seek(0, os.SEEK_END)
        f.write(b"\0" * 512)
    assert _identity(a) != ka


def test_a_raw_file_and_its_slices(tmp_path):
    p = tmp_path / "disk.raw"
    p.write_bytes(bytes(1 << 20))
    with RawFile(str(p)) as dev:
        key = dev.content_identity()
        assert key[0] == "file" and key[3] == 1 << 20
        s1, s2 = SliceDevice(dev, 0, 4096), SliceDevice(dev, 4096, 4096)
        assert s1.content_identity() != s2.content_identity()
        assert s1.content_identity() == SliceDevice(dev, 0, 4096).content_identity()
    q = tmp_path / "copy.raw"
    shutil.copyfile(p, q)
    with RawFile(str(q)) as dev:
        assert dev.content_identity() != key  # same bytes, another file: not known equal
