"""``nuwa patch IMAGE... --upgrade`` on a fleet, in the local-mirror world of tests/patch/test_upgrade.py.

The base is the outdated bookworm minbase tree (tools/dpkg_material.py) made into a qcow2
image whose sources name a mirror on 127.0.0.1 serving what real apt downloaded (Debian's
signed InRelease, the indexes, the update .debs). The fleet: three plain overlays of it (one
package state), one overlay whose ``sources.list`` carries an extra comment (a second package
state: same plan, planned again), one overlay of the base upgraded alone (nothing to do), and a
damaged image. Judged:

- plans are computed once per distinct package state (3 states, 3 plans, 6 images), and the
  ``.deb`` files once for all;
- every written image passes ``qemu-img check`` and ``e2fsck -fn`` and has the tree of the
  image upgraded alone by the single-image command;
- the already upgraded overlay is ``up-to-date`` and gets no output; a re-run of the whole
  command reports every image up to date and writes nothing.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading

import pytest

from fleetkit import fleet, outcomes, overlay, tree_of
from debian_tree import copy_tree
from helpers.cli import nuwa
from helpers.oracle import dpkg_material
from judges import tool

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The base image (qcow2) naming the mirror on 127.0.0.1, a cache, and the image upgraded alone."""
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap needs root")
    base = dpkg_material.base_tree()
    mirror, suites = dpkg_material.local_mirror()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=mirror))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    top = tmp_path_factory.mktemp("fleet-upgrade", numbered=True)
    tree = os.path.join(os.path.dirname(base), f"fleet-tree-{os.getpid()}")
    copy_tree(base, tree)
    try:
        with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
            f.write("".join(f"deb {url}/{m} {suite} main\n" for m, suite in suites))
        raw = str(top / "base.raw")
        subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", tree, raw, "700M"], check=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    img = str(top / "base.qcow2")
    subprocess.run([tool("qemu-img"), "convert", "-O", "qcow2", raw, img], check=True)
    os.unlink(raw)
    cache = str(top / "cache")
    src = overlay(str(top / "alone-src.qcow2"), base=img)
    alone = str(top / "alone.qcow2")
    nuwa("patch", src, "--upgrade", "--output", alone, "--cache", cache, "--quiet", check=0)
    yield {"img": img, "top": top, "cache": cache, "alone": alone,
           "alone_tree": tree_of(alone, str(top / "judge-alone"))}
    httpd.shutdown()


def test_upgrade_fleet_shares_plans_and_equals_alone(world):
    top, cache = world["top"], world["cache"]
    d = top / "fleet"
    d.mkdir()
    images = [overlay(str(d / f"vm{i}.qcow2"), base=world["img"]) for i in range(3)]
    edited = str(d / "edited.qcow2")
    nuwa("sh", overlay(str(d / "edited-src.qcow2"), base=world["img"]), "-c",
         "echo '# a comment: another package state, the same plan' >> /etc/apt/sources.list",
         "--output", edited, check=0)
    images.append(edited)
    images.append(overlay(str(d / "done.qcow2"), base=world["alone"]))
    cut = d / "cut.qcow2"
    cut.write_bytes(b"QFI\xfb\x00\x00\x00\x03truncated")
    images.append(str(cut))
    out = d / "out"
    out.mkdir()
    r, doc = fleet(*images, "--upgrade", "--output-dir", out, "--cache", cache, "--workers", "2")
    assert r.returncode == 3, r.stderr
    assert outcomes(doc) == {"vm0.qcow2": "patched", "vm1.qcow2": "patched", "vm2.qcow2": "patched",
                             "edited.qcow2": "patched", "done.qcow2": "up-to-date", "cut.qcow2": "failed"}
    sh = doc["sharing"]
    assert (sh["images"], sh["package_states"], sh["plans_computed"]) == (6, 3, 3), sh
    plans = [e["report"]["plan"] for e in doc["images"] if e["outcome"] == "patched"]
    assert all(p == plans[0] for p in plans) and plans[0]["install"]
    assert sh["debs"] == len(plans[0]["install"])
    # effect reuse within a package state: vm0's job replayed into vm1 and vm2 (their disks read as
    # vm0's); edited.qcow2 (another state, its own plan) is a group of one, computed
    sharing = {os.path.basename(e["image"]): e["sharing"] for e in doc["images"]}
    assert sharing["vm0.qcow2"] == "recorded"
    assert sharing["vm1.qcow2"].startswith("replayed from ") and sharing["vm2.qcow2"].startswith("replayed from ")
    assert sharing["edited.qcow2"] is None
    assert sorted(os.listdir(out)) == ["edited.qcow2", "vm0.qcow2", "vm1.qcow2", "vm2.qcow2"]
    for name in ("vm0.qcow2", "vm2.qcow2"):
        assert tree_of(str(out / name), str(top / f"judge-{name}")) == world["alone_tree"], name
    edited_tree = tree_of(str(out / "edited.qcow2"), str(top / "judge-edited"))
    differ = {k for k in set(edited_tree) | set(world["alone_tree"]) if edited_tree.get(k) != world["alone_tree"].get(k)}
    assert differ == {"etc/apt/sources.list"}  # the overlay's own edit, nothing else

    again, doc2 = fleet(*images, "--upgrade", "--output-dir", out, "--cache", cache, "--workers", "2")
    assert again.returncode == 3
    assert outcomes(doc2) == {**{n: "up-to-date" for n in ("vm0.qcow2", "vm1.qcow2", "vm2.qcow2", "edited.qcow2",
                                                             "done.qcow2")}, "cut.qcow2": "failed"}
    assert doc2["summary"]["bytes_written"] == 0
    assert sorted(os.listdir(out)) == ["edited.qcow2", "vm0.qcow2", "vm1.qcow2", "vm2.qcow2"]
