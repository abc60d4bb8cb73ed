"""``nuwa.formats.qcow2_copy.copy_onto``: an overlay copied onto another backing file, as ``cp``
then ``qemu-img rebase -u`` would leave it.

Judged by the real qemu tools: overlays made by ``qemu-img create`` and written by ``qemu-io``
(data, zero and compressed clusters, a long backing name, a qcow2 and a raw backing file); the
copy passes ``qemu-img check``, names the new backing file (relative to where it will be
published) for ``qemu-img info``, and reads exactly as the original (``qemu-img compare``) over
a backing file that reads alike -- and not over one that does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from judges import tool
from nuwa.errors import InvalidInputError
from nuwa.formats.qcow2_copy import copy_onto

pytestmark = [pytest.mark.judge]


def _run(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True)


def _base(path, fmt: str = "qcow2") -> str:
    """A 64 MiB disk with a pattern in its first 4 MiB."""
    assert _run("qemu-img", "create", "-q", "-f", fmt, path, "64M").returncode == 0
    assert _run("qemu-io", "-f", fmt, "-c", "write -P 0x11 0 4M", path).returncode == 0
    return str(path)


def _overlay(path, base, fmt: str = "qcow2") -> str:
    assert _run("qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", os.path.abspath(base), path).returncode == 0
    for cmd in ("write -P 0x22 64k 192k", "write -z 1M 128k", "write -c -P 0x33 8M 64k", "write -P 0x44 60M 4k"):
        assert _run("qemu-io", "-c", cmd, path).returncode == 0, cmd
    return str(path)


def _info(path) -> dict:
    return json.loads(_run("qemu-img", "info", "--output=json", path).stdout)


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_the_copy_reads_as_the_original_over_a_backing_file_that_reads_alike(tmp_path, fmt):
    a = _base(tmp_path / f"a.{fmt}", fmt)
    b = str(tmp_path / "sub" / f"b.{fmt}")
    os.makedirs(os.path.dirname(b))
    shutil.copyfile(a, b)
    src = _overlay(tmp_path / "src.qcow2", a, fmt)
    out = tmp_path / "out"
    out.mkdir()
    tmp, final = str(out / ".dst.tmp"), str(out / "dst.qcow2")
    copy_onto(src, tmp, b, final_path=final)
    os.rename(tmp, final)
    assert _run("qemu-img", "check", final).returncode == 0
    info = _info(final)
    assert (info["backing-filename"], info["backing-filename-format"]) == (f"../sub/b.{fmt}", fmt)
    assert _run("qemu-img", "compare", src, final).returncode == 0
    # over another backing file the copy reads that one, where it holds nothing itself
    assert _run("qemu-io", "-f", fmt, "-c", "write -P 0x55 2M 64k", b).returncode == 0
    assert _run("qemu-img", "compare", src, final).returncode == 1
    # the zero clusters still hide the backing file; the data it holds itself is untouched
    assert _run("qemu-io", "-f", fmt, "-c", "write -P 0x55 1M 128k", b).returncode == 0
    got = _run("qemu-io", "-c", "read -P 0 1M 128k", "-c", "read -P 0x22 64k 192k", "-c", "read -P 0x33 8M 64k",
               final)
    assert got.returncode == 0 and "Pattern verification failed" not in got.stdout, got.stdout


def test_a_long_backing_name_fits_and_the_old_name_leaves_no_trace(tmp_path):
    a = _base(tmp_path / "a.qcow2")
    deep = tmp_path / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    b = str(deep / "b.qcow2")
    shutil.copyfile(a, b)
    src = _overlay(tmp_path / "src.qcow2", a)
    dst = str(tmp_path / "dst.qcow2")
    copy_onto(src, dst, b)
    assert _info(dst)["backing-filename"] == os.path.relpath(b, tmp_path)
    assert _run("qemu-img", "check", dst).returncode == 0
    assert _run("qemu-img", "compare", src, dst).returncode == 0
    # and back to a short name: no byte of the longer one is left in the header cluster
    again = str(deep / "again.qcow2")
    copy_onto(dst, again, a)
    with open(again, "rb") as f:
        head = f.read(65536)
    assert b"eeee" not in head and _info(again)["backing-filename"] == os.path.relpath(a, deep)
    assert _run("qemu-img", "compare", src, again).returncode == 0


def test_what_cannot_be_copied_onto_another_file_is_refused(tmp_path):
    a = _base(tmp_path / "a.qcow2")
    raw = _base(tmp_path / "r.raw", "raw")
    src = _overlay(tmp_path / "src.qcow2", a)
    with pytest.raises(InvalidInputError, match="backing format is qcow2"):
        copy_onto(src, str(tmp_path / "x.qcow2"), raw)
    with pytest.raises(InvalidInputError, match="no backing file"):
        copy_onto(a, str(tmp_path / "y.qcow2"), a)
