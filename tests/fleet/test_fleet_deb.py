"""``nuwa patch IMAGE... --deb ...`` on a fleet: the embedded Dask cluster, judged by the real tools.

The fleet is overlays of the shipped default image (``qemu-img create -b``), one overlay of an
image that is patched already, and two images that cannot be patched (random bytes, a truncated
qcow2 header). Every image the fleet wrote passes ``qemu-img check`` and ``e2fsck -fn`` and has
exactly the tree of the same image patched alone by the single-image command; the broken
images fail with their one-line reason without stopping the others; the exit code is the worst
image's; the inputs are byte-identical; a second run writes nothing new and reports every image
up to date (idempotent); name clashes are refused before anything is written.
"""

from __future__ import annotations

import os

import pytest

from fleetkit import (DEBS, broken_images, comparable, deb_args, fleet, hashes, outcomes, overlay, patched_alone,
                      tree_of)
from helpers.cli import nuwa
from helpers.paths import DEFAULT_IMAGE

pytestmark = [pytest.mark.judge]


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The default image patched alone: (output, --json document, tree facts)."""
    if not os.path.exists(DEFAULT_IMAGE) or not DEBS:
        pytest.skip("testimages/default.qcow2 or testimages/updates is missing")
    d = str(tmp_path_factory.mktemp("alone"))
    out, doc = patched_alone(d)
    return out, doc, tree_of(out, os.path.join(d, "judge"))


@pytest.fixture(scope="module")
def local_run(alone, tmp_path_factory):
    """One fleet run on the embedded cluster (2 workers) into --output-dir, then a second one."""
    d = str(tmp_path_factory.mktemp("fleet"))
    images = [overlay(os.path.join(d, f"vm{i}.qcow2")) for i in range(4)]
    images.append(overlay(os.path.join(d, "done.qcow2"), base=alone[0]))  # already patched
    broken = broken_images(d)
    images += [broken["noise"], broken["cut"]]
    out = os.path.join(d, "out")
    os.makedirs(out)
    before = hashes(images)
    first, doc = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "2")
    after_first = sorted(os.listdir(out))
    second, doc2 = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "2")
    return {"dir": d, "images": images, "out": out, "before": before, "first": first, "doc": doc,
            "listing": after_first, "second": second, "doc2": doc2}


def test_fleet_outcomes_exit_code_and_messages(local_run):
    r, doc = local_run["first"], local_run["doc"]
    assert outcomes(doc) == {"vm0.qcow2": "patched", "vm1.qcow2": "patched", "vm2.qcow2": "patched",
                             "vm3.qcow2": "patched", "done.qcow2": "up-to-date", "noise.img": "failed",
                             "cut.qcow2": "failed"}
    assert r.returncode == 3 == doc["exit_code"]  # the worst image: a damaged qcow2 (3)
    failed = {os.path.basename(i["image"]): i for i in doc["images"] if i["outcome"] == "failed"}
    assert failed["cut.qcow2"]["exit_code"] == 3 and "qcow2 header" in failed["cut.qcow2"]["reason"]
    assert "no root filesystem" in failed["noise.img"]["reason"]
    # one line per failed image on stderr, naming it
    lines = [ln for ln in r.stderr.splitlines() if ln]
    assert len(lines) == 2 and all(ln.startswith("nuwa patch: ") for ln in lines), r.stderr
    assert any("noise.img" in ln for ln in lines) and any("cut.qcow2" in ln for ln in lines)
    s = doc["summary"]
    assert (s["images"], s["patched"], s["up-to-date"], s["kept-back"], s["failed"]) == (7, 4, 1, 0, 2)
    assert s["bytes_written"] == sum(os.path.getsize(os.path.join(local_run["out"], f"vm{i}.qcow2"))
                                     for i in range(4))
    assert local_run["listing"] == [f"vm{i}.qcow2" for i in range(4)]  # nothing else, no temporaries


def test_every_fleet_image_equals_the_image_patched_alone(local_run, alone, tmp_path):
    _, alone_doc, alone_tree = alone
    for i in range(4):
        out = os.path.join(local_run["out"], f"vm{i}.qcow2")
        tree = tree_of(out, str(tmp_path / f"judge{i}"))
        assert tree == alone_tree, f"vm{i}: differs from the image patched alone"
        entry = local_run["doc"]["images"][i]
        assert entry["report"]["packages"] == alone_doc["packages"]
        assert sorted(c["path"] for c in entry["report"]["changes"]) == sorted(c["path"] for c in alone_doc["changes"])
    assert hashes(local_run["images"]) == local_run["before"]  # the inputs are byte-identical


def test_a_second_run_is_idempotent(local_run):
    doc2 = local_run["doc2"]
    assert local_run["second"].returncode == 3
    got = outcomes(doc2)
    assert got == {**{f"vm{i}.qcow2": "up-to-date" for i in range(4)}, "done.qcow2": "up-to-date",
                   "noise.img": "failed", "cut.qcow2": "failed"}
    assert sorted(os.listdir(local_run["out"])) == local_run["listing"]
    assert doc2["summary"]["bytes_written"] == 0


def test_in_workers_zero_and_from_file_give_the_same_documents(local_run, alone, tmp_path):
    """--from-file (relative names), --in-place on copies, and the in-process path (--workers 0)."""
    d = tmp_path
    names = [f"vm{i}.qcow2" for i in range(2)]
    for n in names:
        overlay(str(d / n))
    (d / "list.txt").write_text("# the fleet\n" + "\n".join(names) + "\n\n")
    r, doc = fleet("--from-file", d / "list.txt", *deb_args(), "--in-place", "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert outcomes(doc) == {n: "patched" for n in names}
    for n in names:
        assert tree_of(str(d / n), str(d / f"judge-{n}")) == alone[2]
    again, doc2 = fleet("--from-file", d / "list.txt", *deb_args(), "--in-place", "--workers", "1")
    assert again.returncode == 0 and outcomes(doc2) == {n: "up-to-date" for n in names}


def test_name_clashes_and_bad_targets_write_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = overlay(str(tmp_path / "a" / "vm.qcow2")), overlay(str(tmp_path / "b" / "vm.qcow2"))
    out = tmp_path / "out"
    out.mkdir()
    r = nuwa("patch", one, two, *deb_args(), "--output-dir", out)
    assert r.returncode == 2 and "one output" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    r = nuwa("patch", one, one, *deb_args(), "--output-dir", out)
    assert r.returncode == 2 and "listed twice" in r.stderr, r.stderr
    r = nuwa("patch", one, two, *deb_args(), "--output", str(out / "x.qcow2"))
    assert r.returncode == 2 and "--output-dir" in r.stderr, r.stderr
    r = nuwa("patch", one, two, *deb_args())
    assert r.returncode == 2 and "--output-dir" in r.stderr, r.stderr
    r = nuwa("patch", one, *deb_args(), "--output-dir", tmp_path / "missing")
    assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr
    r = nuwa("patch", one, "--deb", tmp_path / "missing.deb", "--output-dir", out)
    assert r.returncode == 2, r.stderr
    assert os.listdir(out) == []


def test_the_fleet_document_is_the_api_report(local_run, tmp_path):
    """nuwa.fleet.patch gives the document the command prints (in-process here: workers=0)."""
    import nuwa.fleet

    out = tmp_path / "out"
    out.mkdir()
    images = [overlay(str(tmp_path / f"vm{i}.qcow2")) for i in range(2)] + [local_run["images"][-1]]
    report = nuwa.fleet.patch(images, debs=DEBS, output_dir=str(out), workers=0)
    assert report.counts() == {"patched": 2, "up-to-date": 0, "kept-back": 0, "failed": 1}
    assert report.exit_code == 3
    assert comparable(report.to_json())[:2] == comparable(local_run["doc"])[:2]
