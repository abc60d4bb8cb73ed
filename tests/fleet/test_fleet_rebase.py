"""``--rebase-onto-patched-base``: the base patched once, untouched overlays moved onto it.

A family of overlays of one base (a copy of the shipped default image): three that never wrote
a byte, one with a file of its own. The base is patched once into ``--output-dir`` (the base
itself stays byte-identical); each untouched overlay's output is a new empty overlay whose
backing file is that patched base; the overlay with a file of its own in /srv, which the update
neither reads nor writes, is moved onto it at file level (``nuwa.patch.move``). Every output
passes ``qemu-img check`` and ``e2fsck -fn`` and has exactly the tree of the same overlay patched
alone; a re-run writes nothing and reports every image up to date.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from fleetkit import deb_args, fleet, hashes, outcomes, overlay, rebase_world, tree_of
from helpers.cli import nuwa
from judges import tool

pytestmark = [pytest.mark.judge]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d, base, note = rebase_world(tmp_path_factory, "rebase")
    images = [overlay(os.path.join(d, f"vm{i}.qcow2"), base=base) for i in range(4)]
    nuwa("copy-in", images[3], note, "/srv", "--in-place")
    before = hashes([base])
    out = os.path.join(d, "out")
    os.makedirs(out)
    r, doc = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "2", "--rebase-onto-patched-base")
    r2, doc2 = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "2", "--rebase-onto-patched-base")
    return {"dir": d, "base": base, "images": images, "out": out, "r": r, "doc": doc, "r2": r2, "doc2": doc2,
            "before": before, "note": note}


def test_the_base_is_patched_once_and_untouched_overlays_move_onto_it(run):
    doc, out = run["doc"], run["out"]
    assert run["r"].returncode == 0, run["r"].stderr
    assert outcomes(doc) == {f"vm{i}.qcow2": "patched" for i in range(4)}
    patched_base = os.path.join(out, "base.qcow2")
    assert [(b["image"], b["outcome"], b["output"], b["sharing"]) for b in doc["bases"]] == \
        [(os.path.realpath(run["base"]), "patched", patched_base, "recorded")]
    sharing = {os.path.basename(i["image"]): i["sharing"] for i in doc["images"]}
    for i in range(3):
        assert sharing[f"vm{i}.qcow2"] == f"rebased onto {patched_base}"
        info = subprocess.run([tool("qemu-img"), "info", "--output=json", os.path.join(out, f"vm{i}.qcow2")],
                              capture_output=True, text=True, check=True).stdout
        assert '"backing-filename": "base.qcow2"' in info  # stored relative: the directory can move
    # its own file in /srv is nothing the update reads or writes: moved at file level
    # (tests/fleet/test_fleet_move.py has the overlays that are not)
    assert sharing["vm3.qcow2"] == f"moved onto {patched_base}"
    assert doc["sharing"]["rebased"] == 3 and doc["sharing"]["moved"] == 1
    assert hashes([run["base"]]) == run["before"]  # nothing is written into the shared base


def test_every_output_equals_its_overlay_patched_alone(run):
    d = run["dir"]
    for i in (0, 3):
        src = overlay(os.path.join(d, f"alone-src{i}.qcow2"), base=run["base"])
        if i == 3:
            nuwa("copy-in", src, run["note"], "/srv", "--in-place")
        alone = os.path.join(d, f"alone{i}.qcow2")
        nuwa("patch", src, *deb_args(), "--output", alone, "--quiet")
        want = tree_of(alone, os.path.join(d, f"judge-alone{i}"))
        for j in ((0, 1, 2) if i == 0 else (3,)):
            assert tree_of(os.path.join(run["out"], f"vm{j}.qcow2"), os.path.join(d, f"judge{j}")) == want, j


def test_a_rerun_writes_nothing(run):
    assert run["r2"].returncode == 0, run["r2"].stderr
    assert outcomes(run["doc2"]) == {f"vm{i}.qcow2": "up-to-date" for i in range(4)}
    assert run["doc2"]["bases"][0]["outcome"] == "up-to-date"


def test_rebase_needs_an_output_directory(run, tmp_path):
    r = nuwa("patch", *run["images"][:2], *deb_args(), "--dry-run", "--rebase-onto-patched-base", check=2)
    assert "give --output-dir" in r.stderr
