"""``--in-place`` is crash-atomic (issue 16): a bounded, seeded sample of ``tools/crashtest.py``.

Real ``python3 -m nuwa patch IMAGE --deb testimages/updates/*.deb --in-place`` runs on copies of
testimages/default.qcow2 (and of the same disk as a raw file) SIGKILL themselves just before
their N-th write or flush of the image; every state left is judged by ``qemu-img check``, by
e2fsprogs' journal replay followed by ``e2fsck -fn``, and by Nuwa's own replay, and must read
exactly as the BEFORE or the AFTER tree (``tools/crashtest.py`` runs every point; docs/ext4.md
has the counts). Also: a filesystem without a journal is refused for ``--in-place`` unless
``--unsafe-in-place`` is given.
"""

from __future__ import annotations

import random
import sys

import pytest

from helpers.cli import nuwa
from helpers.paths import DEFAULT_IMAGE, TOOLS
from judges import run, tool

sys.path.insert(0, TOOLS)
import crashtest  # noqa: E402

#: (kind, scenario, how many points of its run); a seeded sample, always with the last write
SAMPLE = [("qcow2", "all", 5), ("raw", "all", 4)]


@pytest.mark.parametrize("kind,scenario,count", SAMPLE)
def test_killed_in_place_run_recovers_to_before_or_after(tmp_path, kind, scenario, count):
    top = str(tmp_path)
    base = crashtest.prepare(kind, top)
    ref = crashtest.reference(kind, scenario, base, top)
    assert ref["total"] > 20  # the run writes and flushes the image many times
    points = random.Random(f"suite-{kind}").sample(range(1, ref["total"] + 1), count - 1) + [ref["total"]]
    results = [crashtest.one_point(kind, scenario, ref, n, top) for n in sorted(points)]
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed
    assert all(r["killed"] for r in results)
    # the last write is after the commit: that kill must come back as AFTER
    assert results[-1]["state"] == "after"
    assert {r["state"] for r in results} <= {"before", "after"}


def test_in_place_needs_a_journal_or_unsafe_in_place(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    img = str(tmp_path / "nojournal.img")
    run([tool("mkfs.ext4"), "-q", "-F", "-O", "^has_journal", "-d", str(root), img, "16M"])
    src = tmp_path / "hello"
    src.write_text("hi\n")
    r = nuwa("copy-in", img, str(src), "/etc", "--in-place", check=2)
    assert "no journal" in r.stderr and "--unsafe-in-place" in r.stderr
    nuwa("copy-in", img, str(src), "/etc", "--in-place", "--unsafe-in-place", check=0)
    assert nuwa("cat", img, "/etc/hello", check=0).stdout == "hi\n"
    # with a journal the same job needs no flag
    jimg = str(tmp_path / "journal.qcow2")
    run([tool("qemu-img"), "create", "-q", "-f", "qcow2", "-b", DEFAULT_IMAGE, "-F", "qcow2", jimg])
    nuwa("copy-in", jimg, str(src), "/etc", "--in-place", check=0)
    assert nuwa("cat", jimg, "/etc/hello", check=0).stdout == "hi\n"
