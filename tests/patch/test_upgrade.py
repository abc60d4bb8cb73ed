"""``nuwa patch --upgrade`` end to end on the real minbase world, judged by real apt and dpkg.

The image is the outdated bookworm minbase tree (tools/dpkg_material.py) made into an ext4
image, its own sources.list naming a mirror on 127.0.0.1 that serves the files real apt
downloaded (Debian's signed InRelease, the indexes, the update .debs: dpkg_material.local_mirror).
Real apt plans the same upgrade (``dpkg_material.apt_steps``: its dpkg calls) and real dpkg
replays them in a chroot copy. Whatever is pending this week:

- Nuwa's plan unpacks exactly the packages and versions apt's plan unpacks;
- the output passes ``qemu-img check`` and ``e2fsck -fn``; the original is unchanged;
- every package's status paragraph in the patched image equals real dpkg's;
- ``--dry-run`` prints the plan and writes nothing; a second ``--upgrade`` of the output has
  nothing to do.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from debian_tree import copy_tree
from helpers.cli import nuwa
from helpers.hashing import file_sha256
from helpers.oracle import dpkg_material, real_dpkg_steps, status_paragraphs
from judges import e2fsck_clean, qemu_img_check, tool

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module", params=["amd64", "arm64"])
def world(tmp_path_factory, request):
    """The world of one architecture; arm64 (issue 18) is patched on this amd64 host with
    nothing emulated, its indexes ``binary-arm64`` (the image's architecture, not the host's),
    while real dpkg replays apt's calls under qemu-user."""
    if os.geteuid() != 0:
        pytest.skip("chroot and mmdebstrap need root")
    arch = request.param
    if arch != "amd64" and not os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"):
        pytest.skip("no binfmt_misc handler for arm64 (install qemu-user-static, see .ci/run)")
    base = dpkg_material.base_tree(arch=arch)
    steps = dpkg_material.apt_steps(base, arch=arch)
    mirror, suites = dpkg_material.local_mirror(arch=arch)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=mirror))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    top = tmp_path_factory.mktemp("upgrade", numbered=True)
    # the tree lives beside the material (same filesystem, room for it)
    tree = os.path.join(os.path.dirname(base), f"upgrade-tree-{arch}-{os.getpid()}")
    copy_tree(base, tree)
    with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
        f.write("".join(f"deb {url}/{m} {suite} main\n" for m, suite in suites))
    img = str(top / "image.raw")
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", tree, img, "700M"], check=True)
    yield {"base": base, "tree": tree, "img": img, "steps": steps, "top": top, "arch": arch}
    httpd.shutdown()
    shutil.rmtree(tree, ignore_errors=True)


def _unpacked(steps) -> dict[str, str]:
    out = {}
    for action, ops in steps:
        if action == "unpack":
            for p in ops:
                name, version = os.path.basename(p).split("_")[:2]
                out[name] = version.replace("%3a", ":")
    return out


def test_upgrade_equals_apt_and_dpkg(world):
    top = world["top"]
    before = file_sha256(world["img"])
    dry = nuwa("patch", world["img"], "--upgrade", "--dry-run", "--cache", top / "cache", check=0)
    assert dry.stdout.startswith("plan:"), dry.stdout[:500]
    out = top / "out.qcow2"
    r = nuwa("patch", world["img"], "--upgrade", "--output", out, "--cache", top / "cache", "--json", check=0)
    doc = json.loads(r.stdout)
    plan = doc["plan"]
    assert {i["package"]: i["version"] for i in plan["install"]} == _unpacked(world["steps"])
    assert plan["kept_back"] == {} and plan["remove"] == []
    assert doc["counts"]["deferred_whole"] == 0 and doc["counts"]["deferred"] == 0, doc["counts"]
    assert file_sha256(world["img"]) == before  # the original is untouched
    qemu_img_check(str(out))
    raw = str(top / "out.raw")
    subprocess.run([tool("qemu-img"), "convert", "-O", "raw", str(out), raw], check=True)
    e2fsck_clean(raw)
    # real dpkg replays apt's own dpkg calls in a chroot copy: the same package states
    ref = world["tree"] + "-ref"
    copy_tree(world["tree"], ref)
    try:
        real_dpkg_steps(ref, world["steps"])
        patched = str(top / "patched")
        os.makedirs(patched)
        subprocess.run([tool("debugfs"), "-R", f"rdump /var {patched}", raw], check=True, capture_output=True)
        # status_paragraphs reads <root>/var/lib/dpkg/status: rdump put the image's /var there
        got = status_paragraphs(patched)
        assert got == status_paragraphs(ref)
    finally:
        shutil.rmtree(ref, ignore_errors=True)
    # the patched image has nothing left to do
    again = nuwa("patch", out, "--upgrade", "--dry-run", "--cache", top / "cache", "--json", check=0)
    assert json.loads(again.stdout).get("nothing_to_do") is True


def test_deb_files_in_any_order_are_applied_as_apt_install_would(world):
    """``--deb`` with every update file, in reverse and in a shuffled order: apt's plan and
    order (``dpkg -i`` of the same files stops at libpam-modules' Pre-Depends), the same package
    states as real dpkg replaying apt's own calls. No dependency is missing, so the image's
    repositories are not read (no --cache download happens)."""
    import random

    top = world["top"]
    debs = dpkg_material.deb_files(arch=world["arch"])
    shuffled = list(debs)
    random.Random(12).shuffle(shuffled)
    ref = world["tree"] + "-debref"
    copy_tree(world["tree"], ref)
    try:
        real_dpkg_steps(ref, world["steps"])
        for i, given in enumerate((list(reversed(debs)), shuffled)):
            out = top / f"deb{i}.qcow2"
            cache = top / f"deb-cache{i}"
            r = nuwa("patch", world["img"], "--deb", *given, "--output", out, "--cache", cache, "--json", check=0)
            assert r.returncode == 0, r.stderr
            doc = json.loads(r.stdout)
            assert {i["package"]: i["version"] for i in doc["plan"]["install"]} == _unpacked(world["steps"])
            assert all(i["local"] for i in doc["plan"]["install"]) and doc["plan"]["download_size"] == 0
            assert not os.path.exists(cache)  # offline: nothing fetched, not even a Release file
            raw = str(top / f"deb{i}.raw")
            subprocess.run([tool("qemu-img"), "convert", "-O", "raw", str(out), raw], check=True)
            e2fsck_clean(raw)
            patched = str(top / f"deb-patched{i}")
            os.makedirs(patched)
            subprocess.run([tool("debugfs"), "-R", f"rdump /var {patched}", raw], check=True, capture_output=True)
            assert status_paragraphs(patched) == status_paragraphs(ref)
    finally:
        shutil.rmtree(ref, ignore_errors=True)
