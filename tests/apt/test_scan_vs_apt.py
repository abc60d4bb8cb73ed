"""``nuwa scan`` against the real apt on the real Debian 12 world.

The judge is the chroot of tests/helpers/aptjudge.py: a bookworm server tree (main only, so
updates exist) after ``apt-get update`` from bookworm, bookworm-updates and bookworm-security
on the machine's own mirrors. Its apt answers ``apt list --upgradable`` and ``apt-cache
policy``. Nuwa scans an image of the same dpkg status and the same archive keys, whose own
``sources.list`` names a mirror on 127.0.0.1 that serves exactly the files that apt downloaded
(the signed InRelease files and the indexes, as apt stored them): the signatures are Debian's,
checked with the keys in the image. Whatever the archive holds this week, both sides must list
the same packages with the same candidate versions, and call the same ones security updates.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from helpers.aptjudge import chroot_apt, judge_chroot, list_prefix, parse_apt_list, parse_policy
from helpers.cli import nuwa
from helpers.httpserve import Server
from scanimage import image_from_tree

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


def _sources(root: str) -> list[tuple[str, str, list[str]]]:
    out = []
    with open(os.path.join(root, "etc/apt/sources.list")) as f:
        for line in f:
            w = line.split()
            if w and w[0] == "deb":
                out.append((w[1].rstrip("/"), w[2], w[3:]))
    return out


@pytest.fixture(scope="module")
def world():
    root = judge_chroot()
    lists = os.path.join(root, "var/lib/apt/lists")
    # the mirror lives beside the lists (same filesystem): its files are hard links to them
    www = tempfile.mkdtemp(prefix="nuwa-scan-mirror-", dir=os.path.dirname(root))
    mirrored = []
    for i, (uri, suite, comps) in enumerate(_sources(root)):
        prefix = list_prefix(uri, suite)
        dist = os.path.join(www, f"m{i}", "dists", suite)
        os.makedirs(dist)
        os.link(os.path.join(lists, prefix + "InRelease"), os.path.join(dist, "InRelease"))
        for comp in comps:
            src = os.path.join(lists, f"{prefix}{comp}_binary-amd64_Packages")
            assert os.path.exists(src), f"apt stored no plain index {src} (assumption: the chroot's apt keeps lists uncompressed)"
            os.makedirs(os.path.join(dist, comp, "binary-amd64"))
            os.link(src, os.path.join(dist, comp, "binary-amd64", "Packages"))
        mirrored.append((f"m{i}", suite, comps))
    server = Server(www).start()
    sources = "".join(f"deb {server.url_for(m)} {suite} {' '.join(comps)}\n" for m, suite, comps in mirrored)
    img = image_from_tree(www, "image", root, sources)
    yield {"root": root, "img": img, "www": www, "server": server}
    server.stop()
    shutil.rmtree(www, ignore_errors=True)


def test_scan_equals_apt_list_upgradable(world, tmp_path):
    apt = parse_apt_list(chroot_apt(world["root"], "apt", "list", "--upgradable"))
    r = nuwa("scan", world["img"], "--json", "--cache", tmp_path / "cache", check=0)
    (image,) = json.loads(r.stdout)["images"]
    got = {(u["package"].split(":")[0], u["architecture"]): u for u in image["updates"]}
    want = {(n, a): v[0] for (n, a), v in apt.items()}
    assert {k: u["candidate"] for k, u in got.items()} == want
    if not want:
        pytest.skip("the archive has no pending update for this tree today (assumption: bookworm main is "
                    "older than its -updates/-security suites) -- nothing left to compare")
    # security as apt-cache policy shows the candidate's origin: the -security suite's index
    policy = parse_policy(chroot_apt(world["root"], "apt-cache", "policy", *sorted(n for n, _ in want)))
    for (name, arch), u in got.items():
        table = policy[name]["table"]
        files = next(f for ver, _, f in table if ver == u["candidate"])
        from_security = any("-security/" in desc for _, desc in files)
        assert u["security"] == from_security, (name, u, files)


def test_the_signatures_are_debians_and_a_changed_byte_is_refused(world, tmp_path):
    # the mirror serves Debian's own InRelease: verified with the image's keys (the test above);
    # one changed byte in a copy's InRelease is refused, naming the file
    www = world["www"]
    bad = os.path.join(www, "bad")
    shutil.copytree(os.path.join(www, "m0"), bad, copy_function=shutil.copy)
    p = os.path.join(bad, "dists", _sources(world["root"])[0][1], "InRelease")
    with open(p, "rb") as f:
        data = bytearray(f.read())
    at = data.index(b"Codename")
    data[at] ^= 1
    with open(p, "wb") as f:
        f.write(bytes(data))
    suite = _sources(world["root"])[0][1]
    r = nuwa("scan", world["img"], "--sources-only", "--repo", f"deb {world['server'].url_for('bad')} {suite} main",
             "--cache", tmp_path / "cache")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "InRelease" in r.stderr, r.stderr
