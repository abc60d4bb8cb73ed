"""``--rebase-onto-patched-base`` moves overlays with changes of their own onto the patched base.

A family of overlays of one base (a copy of the shipped default image): one untouched (the
base is patched once for it), and four with changes of their own, made by Nuwa's own writers
(``copy-in``, ``sh``, the filesystem model):

- ``srv``: a file in /srv and, beside it, a directory with another owner, a symlink, a hard
  link, a FIFO, a character device and an xattr; /root/.profile removed and /root/.bashrc's
  mode changed -- none of it is anything the update reads or writes: **moved**;
- ``etc``: its own /etc/motd (changed in place), which the update never reads: **moved**;
- ``written``: its own /usr/share/doc/xz-utils/copyright, which the update replaces:
  **patched one by one**, the reason names the path;
- ``read``: its own /etc/ld.so.conf.d/libc.conf, which the update's ldconfig reads: **patched
  one by one**, the reason names the path.

Judged: every output passes ``qemu-img check`` and ``e2fsck -fn`` and has exactly the tree of
the same overlay patched alone (the single-image command on the overlay itself); a moved
output's backing file is the patched base (by relative name) and its size is about its own
changes, far less than the patch's output patched alone; the moved paths keep their times
(``nuwa diff --times`` of the two outputs there is empty); the base and the overlays are
byte-identical afterwards; a re-run writes nothing and reports every image up to date. A
family in which every overlay wrote something (``--deb``) gets a patched base too.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

import nuwa
from fleetkit import DEBS, deb_args, fleet, hashes, outcomes, overlay, rebase_world, tree_of
from helpers.cli import nuwa as nuwa_cli
from helpers.images import root_partition
from helpers.paths import DEFAULT_IMAGE
from judges import tool
from nuwa.fs.diff import diff_trees
from nuwa.patch.staging import staged

pytestmark = [pytest.mark.judge]

KINDS = ("fresh", "srv", "etc", "written", "read")


def _own_changes(img: str, kind: str, note: str) -> None:
    if kind == "srv":
        nuwa_cli("copy-in", img, note, "/srv", "--in-place")
        with nuwa.open(img, writable=True) as image:
            with staged(image, "test", in_place=True) as st:
                fs = st.fs
                fs.mkdir("/srv/app", 0o750)
                fs.chown("/srv/app", 1000, 1000)
                fs.symlink("../note.txt", "/srv/app/link")
                fs.link("/srv/note.txt", "/srv/app/hard")
                fs.mknod("/srv/app/fifo", stat.S_IFIFO | 0o640)
                fs.mknod("/srv/app/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
                fs.setxattr("/srv/note.txt", "user.own", b"this machine")
                fs.utime("/srv/app/link", 1_600_000_000_000_000_000, 1_600_000_000_000_000_000,
                         follow_symlinks=False)
                fs.unlink("/root/.profile")
                fs.chmod("/root/.bashrc", 0o600)
    elif kind == "etc":
        nuwa_cli("sh", img, "-c", "printf 'own message of the day\\n' >> /etc/motd", "--in-place")
    elif kind == "written":
        nuwa_cli("sh", img, "-c", "printf 'own note\\n' >> /usr/share/doc/xz-utils/copyright", "--in-place")
    elif kind == "read":
        nuwa_cli("sh", img, "-c", "printf '# own comment\\n' >> /etc/ld.so.conf.d/libc.conf", "--in-place")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d, base, note = rebase_world(tmp_path_factory, "move")
    images = {}
    for kind in KINDS:
        images[kind] = overlay(os.path.join(d, f"{kind}.qcow2"), base=base)
        _own_changes(images[kind], kind, note)
    before = hashes([base, *images.values()])
    out = os.path.join(d, "out")
    os.makedirs(out)
    args = [*images.values(), *deb_args(), "--output-dir", out, "--workers", "2", "--rebase-onto-patched-base"]
    r, doc = fleet(*args)
    listing = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in os.listdir(out)}
    r2, doc2 = fleet(*args)
    after = hashes([base, *images.values()])
    alone = {}
    for kind, img in images.items():  # the single-image command on each overlay itself
        alone[kind] = os.path.join(d, f"alone-{kind}.qcow2")
        nuwa_cli("patch", img, *deb_args(), "--output", alone[kind], "--quiet")
    return {"dir": d, "base": base, "images": images, "out": out, "r": r, "doc": doc, "r2": r2, "doc2": doc2,
            "before": before, "after": after, "alone": alone, "listing": listing}


def _sharing(doc) -> dict:
    return {os.path.basename(i["image"])[:-len(".qcow2")]: i["sharing"] for i in doc["images"]}


def _backing(path: str) -> str:
    info = subprocess.run([tool("qemu-img"), "info", "--output=json", path], capture_output=True, text=True,
                          check=True).stdout
    return json.loads(info)["backing-filename"]


def test_own_changes_the_update_does_not_touch_are_moved_onto_the_patched_base(run):
    doc, out = run["doc"], run["out"]
    assert run["r"].returncode == 0, run["r"].stderr
    assert outcomes(doc) == {f"{k}.qcow2": "patched" for k in KINDS}
    patched = os.path.join(out, "base.qcow2")
    sharing = _sharing(doc)
    assert sharing["fresh"] == f"rebased onto {patched}"
    for kind in ("srv", "etc"):
        assert sharing[kind] == f"moved onto {patched}", kind
        assert _backing(os.path.join(out, f"{kind}.qcow2")) == "base.qcow2"  # relative: the directory can move
    assert doc["sharing"]["rebased"] == 1 and doc["sharing"]["moved"] == 2
    entry = {os.path.basename(i["image"]): i for i in doc["images"]}["srv.qcow2"]
    # what the base's patch did, as the base's own report says it
    base_report = doc["bases"][0]["report"]
    assert [p["package"] for p in entry["report"]["packages"]] == [p["package"] for p in base_report["packages"]]
    assert entry["report"]["written"] == {"path": os.path.join(out, "srv.qcow2"), "in_place": False}


def test_own_changes_on_what_the_update_wrote_or_read_are_patched_one_by_one(run):
    sharing = _sharing(run["doc"])
    assert sharing["written"].startswith(
        "patched one by one: /usr/share/doc/xz-utils/copyright (changed here and written by the update); "), \
        sharing["written"]
    assert sharing["read"].startswith(
        "patched one by one: /etc/ld.so.conf.d/libc.conf (changed here and read by the update); "), sharing["read"]
    for kind in ("written", "read"):  # a follower's output is an overlay of the overlay itself
        assert _backing(os.path.join(run["out"], f"{kind}.qcow2")) == f"../{kind}.qcow2"


def test_every_output_equals_its_overlay_patched_alone(run):
    d = run["dir"]
    for kind in KINDS:
        got = tree_of(os.path.join(run["out"], f"{kind}.qcow2"), os.path.join(d, f"judge-{kind}"))
        want = tree_of(run["alone"][kind], os.path.join(d, f"judge-alone-{kind}"))
        assert got == want, kind


def test_moved_paths_keep_their_times_owners_links_and_xattrs(run):
    with nuwa.open(os.path.join(run["out"], "srv.qcow2")) as a, nuwa.open(run["alone"]["srv"]) as b:
        assert diff_trees(a.root(), b.root(), include=("/srv", "/root"), times=True) == []
        fs = a.root()
        assert fs.lstat("/srv/app").st_uid == 1000
        assert fs.lstat("/srv/app/hard").st_ino == fs.lstat("/srv/note.txt").st_ino
        assert stat.S_ISFIFO(fs.lstat("/srv/app/fifo").st_mode)
        assert fs.lstat("/srv/app/null").st_rdev == os.makedev(1, 3)
        assert fs.getxattr("/srv/note.txt", "user.own", follow_symlinks=False) == b"this machine"
        assert fs.lstat("/srv/app/link").st_mtime_ns == 1_600_000_000_000_000_000
        assert not fs.lexists("/root/.profile")


def _debugfs(raw: str, request: str) -> str:
    r = subprocess.run([tool("debugfs"), "-R", request, raw], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_debugfs_reads_the_moved_paths_as_the_overlay_patched_alone_has_them(run):
    """The real tool's reading of what ``rdump`` does not carry: xattrs, device numbers, FIFOs,
    link counts, owners and times of the moved paths."""
    raws = {}
    for name, img in (("moved", os.path.join(run["out"], "srv.qcow2")), ("alone", run["alone"]["srv"])):
        raws[name] = root_partition(img, os.path.join(run["dir"], f"debugfs-{name}.ext4"))
    for path in ("/srv/note.txt", "/srv/app", "/srv/app/link", "/srv/app/hard", "/srv/app/fifo", "/srv/app/null",
                 "/root/.bashrc", "/srv", "/root"):
        seen = {}
        for name, raw in raws.items():
            lines = _debugfs(raw, f"stat {path}").splitlines()
            # the inode's own number, generation, checksum, blocks and change time are the writer's
            seen[name] = [ln for ln in lines if not ln.startswith(("Inode:", "Generation:", "Inode checksum",
                                                                   " ctime:", "EXTENTS:", "(0)", "Size of extra"))
                          and "crtime" not in ln]
        assert seen["moved"] == seen["alone"], path
    assert 'user.own (12) = "this machine"' in _debugfs(raws["moved"], "ea_list /srv/note.txt")
    assert "Type: FIFO" in _debugfs(raws["moved"], "stat /srv/app/fifo")
    assert "Device major/minor number: 01:03" in _debugfs(raws["moved"], "stat /srv/app/null")
    for raw in raws.values():
        os.unlink(raw)


def test_a_moved_output_costs_its_own_changes_not_the_patch(run):
    entries = {os.path.basename(i["image"]): i for i in run["doc"]["images"]}
    for kind in ("srv", "etc"):
        moved = entries[f"{kind}.qcow2"]["bytes_written"]
        assert moved == os.path.getsize(os.path.join(run["out"], f"{kind}.qcow2"))
        follower = os.path.getsize(run["alone"][kind])  # what patching it one by one writes
        assert moved < follower / 2, (kind, moved, follower)


def test_the_base_and_the_overlays_are_not_written(run):
    assert run["after"] == run["before"]


def test_a_rerun_writes_nothing(run):
    assert run["r2"].returncode == 0, run["r2"].stderr
    assert outcomes(run["doc2"]) == {f"{k}.qcow2": "up-to-date" for k in KINDS}
    assert {n: os.stat(os.path.join(run["out"], n)).st_mtime_ns for n in os.listdir(run["out"])} == run["listing"]


@pytest.fixture(scope="module")
def all_own(tmp_path_factory):
    """A family in which every overlay wrote something (no untouched one): with ``--deb`` the
    base is patched all the same, and the overlays are moved onto it."""
    if not os.path.exists(DEFAULT_IMAGE) or not DEBS:
        pytest.skip("testimages/default.qcow2 or testimages/updates is missing")
    d = str(tmp_path_factory.mktemp("allown"))
    base = os.path.join(d, "base.qcow2")
    shutil.copyfile(DEFAULT_IMAGE, base)
    images = []
    for i in range(2):
        note = os.path.join(d, f"note{i}.txt")
        with open(note, "w") as f:
            f.write(f"machine {i}\n")
        images.append(overlay(os.path.join(d, f"own{i}.qcow2"), base=base))
        nuwa_cli("copy-in", images[-1], note, "/srv", "--in-place")
    out = os.path.join(d, "out")
    os.makedirs(out)
    r, doc = fleet(*images, *deb_args(), "--output-dir", out, "--workers", "0", "--rebase-onto-patched-base")
    return {"dir": d, "images": images, "out": out, "r": r, "doc": doc}


def test_a_family_without_an_untouched_overlay_is_rebased_too(all_own):
    doc, out = all_own["doc"], all_own["out"]
    assert all_own["r"].returncode == 0, all_own["r"].stderr
    patched = os.path.join(out, "base.qcow2")
    assert [b["output"] for b in doc["bases"]] == [patched]
    assert set(_sharing(doc).values()) == {f"moved onto {patched}"}
    assert doc["sharing"]["rebased"] == 0 and doc["sharing"]["moved"] == 2
    for i, img in enumerate(all_own["images"]):
        alone = os.path.join(all_own["dir"], f"alone{i}.qcow2")
        nuwa_cli("patch", img, *deb_args(), "--output", alone, "--quiet")
        got = tree_of(os.path.join(out, f"own{i}.qcow2"), os.path.join(all_own["dir"], f"judge{i}"))
        assert got == tree_of(alone, os.path.join(all_own["dir"], f"judge-alone{i}")), i
