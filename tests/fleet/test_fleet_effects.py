"""Effect reuse: one image's job recorded, replayed into the alike images of a fleet.

The fleet is overlays of the shipped default image: two untouched (their disks read exactly as
the base: replayed without asking them anything), one with a file of its own that the job never
looks at (replayed after every read of the job is checked), one with a package of its own
(dpkg's database differs: computed), and a truncated qcow2 (failed, the others go on). Every
image written passes ``qemu-img check`` and ``e2fsck -fn`` and has exactly the tree of the same
image patched alone by the single-image command. A job that makes a secret (random bytes) is
never copied: each image makes its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from fleetkit import DEBS, broken_images, deb_args, fleet, outcomes, overlay, tree_of
from helpers.cli import nuwa
from helpers.debtools import build_deb
from helpers.paths import DEFAULT_IMAGE
from judges import tool
from nuwa.patch.effect import COPIED

pytestmark = [pytest.mark.judge]


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    if not os.path.exists(DEFAULT_IMAGE) or not DEBS:
        pytest.skip("testimages/default.qcow2 or testimages/updates is missing")
    d = str(tmp_path_factory.mktemp("effects"))
    extra = build_deb(d, "fleet-extra", "1.0", {"/usr/share/fleet-extra/README": b"mine alone\n"})
    secret = build_deb(d, "fleet-secret", "1.0", {"/usr/share/fleet-secret/README": b"a key per machine\n"},
                       scripts={"postinst": "#!/bin/sh\nset -e\nhead -c 16 /dev/urandom | base64 > /etc/fleet-secret-id\n"})
    note = os.path.join(d, "note.txt")
    with open(note, "w") as f:
        f.write("this overlay has a file of its own\n")
    return {"dir": d, "extra": extra, "secret": secret, "note": note}


def _make(d: str, name: str, material: dict, kind: str) -> str:
    img = overlay(os.path.join(d, name))
    if kind == "own-file":  # a file nothing of the job looks at
        nuwa("copy-in", img, material["note"], "/srv", "--in-place")
    elif kind == "own-package":  # dpkg's database differs: the job reads it
        nuwa("patch", img, "--deb", material["extra"], "--in-place", "--quiet")
    return img


@pytest.fixture(scope="module")
def run(material, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fleet"))
    kinds = {"vm0.qcow2": "fresh", "vm1.qcow2": "fresh", "vm2.qcow2": "own-file", "vm3.qcow2": "own-package"}
    images = [_make(d, name, material, kind) for name, kind in kinds.items()]
    images.append(broken_images(d)["cut"])
    out = os.path.join(d, "out")
    os.makedirs(out)
    r, doc = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "2")
    # the same images patched alone, one by one, by the single-image command
    alone = {}
    for name, kind in kinds.items():
        src = _make(os.path.join(d), f"alone-{name}", material, kind)
        dst = os.path.join(d, f"alone-out-{name}")
        nuwa("patch", src, *deb_args(), "--output", dst, "--quiet")
        alone[name] = dst
    return {"dir": d, "doc": doc, "r": r, "out": out, "alone": alone}


def test_effects_are_shared_only_where_every_read_answers_alike(run):
    doc = run["doc"]
    assert run["r"].returncode == 3  # the truncated qcow2
    assert outcomes(doc) == {"vm0.qcow2": "patched", "vm1.qcow2": "patched", "vm2.qcow2": "patched",
                             "vm3.qcow2": "patched", "cut.qcow2": "failed"}
    sharing = {os.path.basename(i["image"]): i["sharing"] for i in doc["images"]}
    leader = os.path.join(os.path.dirname(doc["images"][0]["report"]["image"]), "vm0.qcow2")
    assert sharing["vm0.qcow2"] == "recorded"
    # vm1 reads exactly as vm0 (both allocated nothing): vm0's output is copied onto it; vm2 holds
    # a file of its own: the trace is replayed, every read compared
    assert sharing["vm1.qcow2"] == f"replayed from {leader} ({COPIED})"
    assert sharing["vm2.qcow2"] == f"replayed from {leader}"
    assert sharing["vm3.qcow2"].startswith(f"computed: it answers differently from {leader}")
    assert doc["sharing"]["effect_groups"] == 1
    assert (doc["sharing"]["effects_recorded"], doc["sharing"]["effects_replayed"],
            doc["sharing"]["effects_computed"]) == (1, 2, 1)


def test_a_replayed_image_equals_the_image_patched_alone(run):
    for name, alone in run["alone"].items():
        got = tree_of(os.path.join(run["out"], name), os.path.join(run["dir"], f"judge-{name}"))
        want = tree_of(alone, os.path.join(run["dir"], f"judge-alone-{name}"))
        assert got == want, name
    reports = {os.path.basename(i["image"]): i["report"] for i in run["doc"]["images"] if i["report"]}
    for name in ("vm1.qcow2", "vm2.qcow2"):  # a replayed image's report is its own
        assert reports[name]["written"]["path"] == os.path.join(run["out"], name)
        assert reports[name]["packages"] == reports["vm0.qcow2"]["packages"]


def test_a_secret_is_never_copied(material, tmp_path):
    images = [overlay(str(tmp_path / f"vm{i}.qcow2")) for i in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    r, doc = fleet(*images, *deb_args(DEBS + [material["secret"]]), "--output-dir", out, "--workers", "0")
    assert r.returncode == 0, r.stderr
    sharing = [i["sharing"] for i in doc["images"]]
    assert sharing[0].startswith("computed: a maintainer script made a secret or an identifier from random bytes")
    assert all(s.startswith("computed: ") and "left no effect" in s for s in sharing[1:])
    ids = set()
    for i in range(3):
        r = nuwa("cat", str(out / f"vm{i}.qcow2"), "/etc/fleet-secret-id")
        ids.add(r.stdout)
    assert len(ids) == 3  # one machine, one identifier


def test_no_effect_reuse_computes_every_image(material, tmp_path):
    images = [overlay(str(tmp_path / f"vm{i}.qcow2")) for i in range(2)]
    out = tmp_path / "out"
    out.mkdir()
    r, doc = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "0", "--no-effect-reuse")
    assert r.returncode == 0, r.stderr
    assert [i["sharing"] for i in doc["images"]] == [None, None]
    assert doc["sharing"]["effect_groups"] == 0


def test_a_leader_and_copies_of_its_output_run_in_one_process(run, tmp_path):
    """Overlays that all allocated nothing over one base: one job and copies of its output. No
    worker process is started for milliseconds of copying (with --workers 2): every image is
    done by the same process, and every output equals the image patched alone (tree, and the
    judges of tree_of) and reads exactly as the leader's (qemu-img compare: guest contents)."""
    images = [overlay(str(tmp_path / f"vm{i}.qcow2")) for i in range(4)]
    out = tmp_path / "out"
    out.mkdir()
    r, doc = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    leader = os.path.join(os.path.dirname(doc["images"][0]["report"]["image"]), "vm0.qcow2")
    assert [i["sharing"] for i in doc["images"]] == ["recorded"] + [f"replayed from {leader} ({COPIED})"] * 3
    assert len({i["worker"] for i in doc["images"]}) == 1
    want = tree_of(run["alone"]["vm1.qcow2"], str(tmp_path / "judge-alone"))
    for i in range(4):
        assert tree_of(str(out / f"vm{i}.qcow2"), str(tmp_path / f"judge{i}")) == want
        cmp = subprocess.run([tool("qemu-img"), "compare", str(out / "vm0.qcow2"), str(out / f"vm{i}.qcow2")],
                             capture_output=True, text=True)
        assert cmp.returncode == 0, cmp.stdout


@pytest.mark.parametrize("others", [0, 1], ids=["copies-only", "with-another-base"])
def test_copies_of_a_leader_that_left_nothing_to_copy_go_to_the_workers(material, tmp_path, others):
    """Untouched overlays whose leader drew random bytes: there is no effect to copy, so each
    follower is a job of its own -- run on the embedded cluster's workers, not one after the
    other in the client that ran the leader -- and each makes its own identifier. Alone, or
    beside an image of another base (then the cluster starts with the leader, which the client
    runs while it starts)."""
    images = [overlay(str(tmp_path / f"vm{i}.qcow2")) for i in range(3)]
    if others:
        shutil.copyfile(DEFAULT_IMAGE, tmp_path / "base2.qcow2")
        images.append(overlay(str(tmp_path / "other.qcow2"), base=str(tmp_path / "base2.qcow2")))
    out = tmp_path / "out"
    out.mkdir()
    r, doc = fleet(*images, *deb_args(DEBS + [material["secret"]]), "--output-dir", out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    entries = doc["images"]
    assert [e["outcome"] for e in entries] == ["patched"] * len(images)
    assert entries[0]["sharing"].startswith("computed: a maintainer script made a secret")
    assert all(e["sharing"].startswith("computed: ") and "left no effect" in e["sharing"] for e in entries[1:3])
    assert entries[0]["worker"] not in {e["worker"] for e in entries[1:3]}
    ids = {nuwa("cat", str(out / f"vm{i}.qcow2"), "/etc/fleet-secret-id").stdout for i in range(3)}
    assert len(ids) == 3
