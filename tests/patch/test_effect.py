"""A patch job's effect (nuwa.patch.effect): recorded on one image, replayed into another.

Judged by the real tools and by the tree: a replayed image passes ``qemu-img check`` and
``e2fsck -fn`` and equals the image the job itself wrote; a replay that meets an answer it did
not expect -- even in the middle of its writes -- leaves nothing: no output file, or, in place,
an image whose filesystem is what it was (as any failed in-place job: with a journal only free
blocks were written, ``Volume.abandon``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess

import pytest

import nuwa
from fleet.fleetkit import DEBS, overlay, tree_of
from helpers.paths import DEFAULT_IMAGE
from nuwa.fs.trace import digest
from judges import tool
from nuwa.patch.effect import COPIED, record, replay

pytestmark = [pytest.mark.judge]


@pytest.fixture(autouse=True)
def _material():
    if not os.path.exists(DEFAULT_IMAGE) or not DEBS:
        pytest.skip("testimages/default.qcow2 or testimages/updates is missing")


def _record(src: str, out: str | None, in_place: bool = False):
    with nuwa.open(src, writable=in_place) as image:
        return record(image, lambda: image.patch(DEBS, output=out, in_place=in_place), in_place=in_place)


def _spoiled(effect, nth_write_from_end: int = 3):
    """The effect with one of its last writes recorded as answered otherwise (a replay must
    then stop in the middle of its writes)."""
    bad = copy.deepcopy(effect)
    events = bad.trace.events
    writes = [i for i, ev in enumerate(events) if ev[0] == "c" and ev[1] in ("utime", "chmod", "chown", "unlink",
                                                                              "mkdir", "rename", "symlink")]
    i = writes[-nth_write_from_end]
    events[i] = events[i][:-1] + (digest(("errno", 5)),)
    return bad


def test_a_replay_writes_what_the_job_wrote(tmp_path):
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    rep, effect, why = _record(a, str(tmp_path / "a-out.qcow2"))
    assert effect is not None, why
    assert effect.trace.writes and effect.identity is not None
    with nuwa.open(b) as image:  # the trace itself, every call made again
        got, how = replay(image, effect, output=str(tmp_path / "b-out.qcow2"), copy_layer=False)
    assert got is not None and how == "trace", how
    assert got.written == str(tmp_path / "b-out.qcow2")
    assert got.to_json()["packages"] == rep.to_json()["packages"]
    assert tree_of(str(tmp_path / "b-out.qcow2"), str(tmp_path / "jb")) == \
        tree_of(str(tmp_path / "a-out.qcow2"), str(tmp_path / "ja"))


def test_a_replay_that_stops_midway_leaves_no_output(tmp_path):
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    _, effect, _ = _record(a, str(tmp_path / "a-out.qcow2"))
    with nuwa.open(b) as image:
        got, why = replay(image, _spoiled(effect), output=str(tmp_path / "b-out.qcow2"), copy_layer=False)
    assert got is None and "answers differently" in why
    assert sorted(os.listdir(tmp_path)) == ["a-out.qcow2", "a.qcow2", "b.qcow2"]


def _qemu_img(*args) -> subprocess.CompletedProcess:
    return subprocess.run([tool("qemu-img"), *map(str, args)], capture_output=True, text=True)


def test_an_image_that_reads_as_the_recorded_one_gets_a_copy_of_its_output(tmp_path):
    """Two overlays that allocated nothing over one base read alike: the recorded job's output,
    copied with the other backing file named (``qemu-img rebase -u``), is the job's result there
    too -- judged by ``qemu-img compare`` (guest contents), the backing file qemu-img reads, and
    the tree against the job itself run on that image."""
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    _, effect, why = _record(a, str(tmp_path / "a-out.qcow2"))
    assert effect is not None, why
    with nuwa.open(b) as image:
        got, how = replay(image, effect, output=str(tmp_path / "b-out.qcow2"))
    assert got is not None and how == COPIED, how
    assert got.written == str(tmp_path / "b-out.qcow2")
    info = json.loads(_qemu_img("info", "--output=json", tmp_path / "b-out.qcow2").stdout)
    assert (info["backing-filename"], info["backing-filename-format"]) == ("b.qcow2", "qcow2")
    assert _qemu_img("compare", tmp_path / "a-out.qcow2", tmp_path / "b-out.qcow2").returncode == 0
    c = overlay(str(tmp_path / "c.qcow2"))  # the job itself, on an image like b
    with nuwa.open(c) as image:
        image.patch(DEBS, output=str(tmp_path / "c-out.qcow2"))
    assert tree_of(str(tmp_path / "b-out.qcow2"), str(tmp_path / "jb")) == \
        tree_of(str(tmp_path / "c-out.qcow2"), str(tmp_path / "jc"))
    # the copy's backing file is b's own: a change to b shows through the copy, not through a-out
    assert _qemu_img("compare", tmp_path / "b.qcow2", tmp_path / "a.qcow2").returncode == 0
    subprocess.run([tool("qemu-io"), "-c", "write -P 0x5a 0 64k", str(tmp_path / "b.qcow2")], check=True,
                   capture_output=True)
    assert _qemu_img("compare", tmp_path / "a-out.qcow2", tmp_path / "b-out.qcow2").returncode == 1


def test_a_recorded_output_changed_since_is_not_copied(tmp_path):
    """The copy is taken only from the output as the job left it (device, inode, size, time): an
    output written since is not trusted, and the trace is replayed instead."""
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    _, effect, why = _record(a, str(tmp_path / "a-out.qcow2"))
    assert effect is not None, why
    subprocess.run([tool("qemu-io"), "-c", "write -P 0x5a 0 64k", str(tmp_path / "a-out.qcow2")], check=True,
                   capture_output=True)
    with nuwa.open(b) as image:
        got, how = replay(image, effect, output=str(tmp_path / "b-out.qcow2"))
    assert got is not None and how == "trace", how
    assert _qemu_img("compare", tmp_path / "a-out.qcow2", tmp_path / "b-out.qcow2").returncode == 1
    c = overlay(str(tmp_path / "c.qcow2"))
    with nuwa.open(c) as image:
        image.patch(DEBS, output=str(tmp_path / "c-out.qcow2"))
    assert tree_of(str(tmp_path / "b-out.qcow2"), str(tmp_path / "jb")) == \
        tree_of(str(tmp_path / "c-out.qcow2"), str(tmp_path / "jc"))


def test_in_place_a_replay_that_stops_midway_leaves_the_filesystem_as_it_was(tmp_path):
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    _, effect, why = _record(a, None, in_place=True)
    assert effect is not None, why
    before = tree_of(b, str(tmp_path / "jb0"))
    with nuwa.open(b, writable=True) as image:
        got, why = replay(image, _spoiled(effect), in_place=True)
    assert got is None and "answers differently" in why
    assert tree_of(b, str(tmp_path / "jb")) == before  # and qemu-img check, e2fsck -fn pass
    # and the whole effect, replayed in place, gives the image the job gave
    with nuwa.open(b, writable=True) as image:
        got, why = replay(image, effect, in_place=True)
    assert got is not None, why
    assert tree_of(b, str(tmp_path / "jb2")) == tree_of(a, str(tmp_path / "ja"))


def test_another_disk_layout_is_not_replayed(tmp_path):
    a, b = overlay(str(tmp_path / "a.qcow2")), overlay(str(tmp_path / "b.qcow2"))
    _, effect, _ = _record(a, str(tmp_path / "a-out.qcow2"))
    effect.layout = dataclasses.replace(effect.layout, disk_id="0xdeadbeef")
    with nuwa.open(b) as image:  # (a disk reading as a's has a's layout: the copy never asks)
        got, why = replay(image, effect, output=str(tmp_path / "b-out.qcow2"), copy_layer=False)
    assert got is None and "disk layout" in why
    assert not os.path.exists(tmp_path / "b-out.qcow2")
