"""``nuwa scan`` on constructed worlds: signed repositories served from 127.0.0.1, images whose
own sources and keys name them.

The world: a "main" suite (origin Debian, label Debian, codename bookworm) and a "security"
suite (label Debian-Security, codename bookworm-security), both signed with a key the image
trusts in /etc/apt/trusted.gpg.d. The image has an update from security with CVEs in its
changelog (``hello``), a reboot-relevant security update (``libc6``), a held package with an
update from main, a package up to date and one no repository offers (obsolete). Each expected
value follows from how the world was built, and the real apt (with the same sources, keys and
status) is asked for the same upgradable set.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil

import pytest

import nuwa
from helpers.aptjudge import host_apt, parse_apt_list, status_text
from helpers.aptrepo import build_repo, make_key
from helpers.cli import nuwa as nuwa_cli
from helpers.debtools import build_deb
from helpers.httpserve import Server
from nuwa.apt.cache import Cache
from nuwa.apt.repository import RepoOptions
from scanimage import make_image

pytestmark = [pytest.mark.judge]

HELLO_CHANGELOG = """hello (1.0-1+deb12u1) bookworm-security; urgency=high

  * Fix CVE-2026-1111: a heap overflow.

 -- Test <t@example.org>  Sat, 05 Dec 2026 10:00:00 +0000

hello (1.0-1) unstable; urgency=medium

  * Initial release; CVE-2020-0001 was fixed upstream long ago.

 -- Test <t@example.org>  Sat, 05 Dec 2020 10:00:00 +0000
"""

STATUS = status_text([
    ("hello", "1.0-1", "amd64"),
    ("world", "2.0-1", "all"),
    ("libc6", "2.36-9", "amd64"),
    ("keepme", "1.0-1", "all", "hold"),
    ("local-only", "3.0", "amd64"),
])


def _deb(d, name, version, arch="amd64", files=None):
    path = build_deb(d, name, version, files or {f"/usr/share/doc/{name}/v": version.encode()}, arch=arch)
    shutil.rmtree(os.path.join(d, f"stage-{name}-{version}"), ignore_errors=True)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    top = tmp_path_factory.mktemp("scanworld")
    debs = str(top / "debs")
    os.makedirs(debs)
    key = make_key()
    www = top / "www"
    main = build_repo(str(www / "debian"), [
        _deb(debs, "hello", "1.0-1"), _deb(debs, "world", "2.0-1", "all"), _deb(debs, "libc6", "2.36-9"),
        _deb(debs, "keepme", "1.0-1", "all"), _deb(debs, "keepme", "1.0-2", "all")],
        suite="bookworm", codename="bookworm", origin="Debian", label="Debian", key=key)
    sec = build_repo(str(www / "debian-security"), [
        _deb(debs, "hello", "1.0-1+deb12u1", files={
            "/usr/share/doc/hello/changelog.Debian.gz": gzip.compress(HELLO_CHANGELOG.encode(), mtime=0)}),
        _deb(debs, "libc6", "2.36-9+deb12u1")],
        suite="bookworm-security", codename="bookworm-security", origin="Debian", label="Debian-Security", key=key)
    server = Server(str(www)).start()
    sources = (f"deb {server.url_for('debian')} bookworm main\n"
               f"deb {server.url_for('debian-security')} bookworm-security main\n")
    keys = {"test.asc": str(main.cert).encode()}
    img = make_image(str(top), "a", status=STATUS, sources=sources, keys=keys)
    img2 = make_image(str(top), "b", status=STATUS, sources=sources, keys=keys)
    yield {"top": top, "server": server, "img": img, "img2": img2, "main": main, "sec": sec, "key": key,
           "sources": sources, "keys": keys}
    server.stop()


def _scan(world, *args, images=None, check=0):
    cache = str(world["top"] / "cache")
    r = nuwa_cli("scan", *(images or [world["img"]]), "--cache", cache, *args, check=check)
    return r


def test_scan_lists_what_apt_lists(world, tmp_path):
    doc = json.loads(_scan(world, "--json").stdout)
    (image,) = doc["images"]
    got = {u["package"]: u for u in image["updates"]}
    assert set(got) == {"hello", "libc6", "keepme"}
    assert got["hello"]["candidate"] == "1.0-1+deb12u1" and got["hello"]["security"] is True
    assert got["libc6"]["security"] is True and got["libc6"]["reboot"] is True
    assert got["keepme"]["candidate"] == "1.0-2" and got["keepme"]["security"] is False
    assert got["keepme"]["held"] is True and got["keepme"]["codename"] == "bookworm"
    assert image["held"] == ["keepme"] and image["obsolete"] == ["local-only"]
    assert image["reboot_required"] is True and image["reboot_packages"] == ["libc6"]
    assert image["summary"] == {"upgradable": 3, "security": 2, "held": 1, "obsolete": 1}
    # the real apt, same sources (trusted by the same key), same status: the same set
    keyring = tmp_path / "k.asc"
    keyring.write_bytes(world["keys"]["test.asc"])
    run = host_apt(str(tmp_path / "apt"), [], STATUS, options=(
        f"Dir::Etc::TrustedParts={tmp_path}",))
    with open(tmp_path / "apt" / "sources.list", "w") as f:
        f.write(world["sources"])
    run("apt-get", "-q", "update")
    apt = parse_apt_list(run("apt", "list", "--upgradable"))
    assert {(n, v[0]) for (n, _), v in apt.items()} == {(u["package"], u["candidate"]) for u in got.values()}


def test_cves_from_the_changelog_and_tracker(world, tmp_path):
    doc = json.loads(_scan(world, "--json", "--cves").stdout)
    got = {u["package"]: u for u in doc["images"][0]["updates"]}
    assert got["hello"]["cves"] == ["CVE-2026-1111"]  # not the older entry's CVE-2020-0001
    assert got["libc6"]["cves"] == [] and got["libc6"].get("changelog_note")
    tracker = tmp_path / "tracker.json"
    tracker.write_text(json.dumps({
        "hello": {"CVE-2026-1111": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1.0-1+deb12u1",
                                                               "urgency": "high"}}},
                  "CVE-2026-2222": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1.0-1+deb12u2",
                                                               "urgency": "medium"}}},
                  "CVE-2019-0001": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "0.9-1",
                                                               "urgency": "high"}}}},
        "libc6": {"CVE-2026-3333": {"releases": {"bookworm": {"status": "open", "urgency": "low**"}}}}}))
    doc = json.loads(_scan(world, "--json", "--tracker", tracker).stdout)
    got = {u["package"]: u for u in doc["images"][0]["updates"]}
    hello = {f["cve"]: f for f in got["hello"]["tracker"]}
    assert set(hello) == {"CVE-2026-1111", "CVE-2026-2222"}  # CVE-2019-0001 never affected the installed one
    assert hello["CVE-2026-1111"]["fixed_by_candidate"] and not hello["CVE-2026-2222"]["fixed_by_candidate"]
    assert got["libc6"]["tracker"][0]["urgency"] == "low" and not got["libc6"]["tracker"][0]["fixed_by_candidate"]
    doc = json.loads(_scan(world, "--json", "--tracker", tracker, "--severity", "high").stdout)
    assert [u["package"] for u in doc["images"][0]["updates"]] == ["hello"]
    assert _scan(world, "--tracker", tracker, "--severity", "HIGH", "--exit-code", "5", check=5).stdout
    r = _scan(world, "--tracker", tracker, "--severity", "medium", "--exit-code", "5", check=0)
    assert "no pending updates" in r.stdout
    r = _scan(world, "--severity", "high", check=2)
    assert r.stderr.count("\n") == 1 and "--tracker" in r.stderr


def test_security_only_text_and_exit_code(world):
    r = _scan(world, "--security-only", "--exit-code", "7", check=7)
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["PACKAGE", "INSTALLED", "CANDIDATE", "FROM", "SECURITY", "CVES"]
    assert [ln.split()[0] for ln in lines[2:4]] == ["hello", "libc6"]
    assert "keepme" not in r.stdout.split("held:")[0]
    assert "reboot required" in r.stdout


def test_several_images_share_every_download(world, tmp_path):
    server = world["server"]
    cache = tmp_path / "fresh-cache"
    start = len(server.requests)
    r = nuwa_cli("scan", world["img"], world["img2"], "--cache", cache, "--json", check=0)
    doc = json.loads(r.stdout)
    assert [i["image"] for i in doc["images"]] == [world["img"], world["img2"]]
    assert doc["images"][0]["updates"] == doc["images"][1]["updates"]
    gets = [q.path for q in server.requests[start:] if q.method == "GET"]
    # two InRelease files and two indexes, each fetched once for the two images
    assert sorted(p.rsplit("/", 1)[-1] for p in gets if p.endswith("InRelease")) == ["InRelease", "InRelease"]
    indexes = [p for p in gets if "binary-amd64" in p]
    assert len(indexes) == 2 and len(set(indexes)) == 2, gets


def test_offline_uses_only_the_cache(world, tmp_path):
    cache = tmp_path / "c"
    online = json.loads(nuwa_cli("scan", world["img"], "--cache", cache, "--json", check=0).stdout)
    n = len(world["server"].requests)
    offline = json.loads(nuwa_cli("scan", world["img"], "--cache", cache, "--json", "--offline", check=0).stdout)
    assert offline["images"][0]["updates"] == online["images"][0]["updates"]
    assert len(world["server"].requests) == n  # nothing fetched
    r = nuwa_cli("scan", world["img"], "--cache", tmp_path / "empty", "--offline")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_the_api_gives_the_same_scan(world, tmp_path):
    (res,) = nuwa.scan(world["img"], RepoOptions(cache=str(tmp_path / "c")))
    assert res.error is None
    assert sorted(u.package for u in res.updates) == ["hello", "keepme", "libc6"]
    assert [u.package for u in res.security_updates] == ["hello", "libc6"]


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("case", ["tampered-inrelease", "tampered-index", "wrong-key", "no-sources"])
def test_refusals_are_one_line_exit_2_and_change_nothing(world, tmp_path, case):
    key = world["key"] if case != "wrong-key" else make_key()
    debs = str(tmp_path / "debs")
    os.makedirs(debs)
    repo = build_repo(str(tmp_path / "www" / "r"), [_deb(debs, "hello", "1.0-2")], suite="bookworm",
                      codename="bookworm", origin="Debian", label="Debian", key=key)
    if case == "tampered-inrelease":
        repo.tamper("InRelease", find=b"Codename")
    if case == "tampered-index":
        base = repo.path("main/binary-amd64")
        for d, _, names in os.walk(base):  # one byte changed in every form, by-hash copies too
            for name in names:
                rel = os.path.relpath(os.path.join(d, name), repo.dist)
                plain = name == "Packages" or repo.read(rel).startswith(b"Package:")
                repo.tamper(rel, find=b"Package" if plain else None)
    with Server(str(tmp_path / "www")) as server:
        sources = "" if case == "no-sources" else f"deb {server.url_for('r')} bookworm main\n"
        img = make_image(str(tmp_path), "x", status=STATUS, sources=sources, keys=world["keys"])
        before = _sha(img)
        cache = tmp_path / "cache"
        r = nuwa_cli("scan", img, "--cache", cache)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    want = {"tampered-inrelease": "InRelease", "tampered-index": "binary-amd64/Packages", "wrong-key": "InRelease",
            "no-sources": "no package sources"}[case]
    assert want in r.stderr, r.stderr
    assert _sha(img) == before
    named = cache / "named"
    if case in ("tampered-inrelease", "wrong-key"):
        assert not named.exists() or not os.listdir(named)  # no Release kept as verified
    store = Cache(str(cache))
    for d, _, names in os.walk(cache):
        for name in names:  # every object held is the one its name says
            if len(name) == 64 and os.path.join(d, name) == store.path(name):
                assert _sha(os.path.join(d, name)) == name


def test_an_unreadable_image_does_not_stop_the_others(world, tmp_path):
    bad = tmp_path / "garbage.img"
    bad.write_bytes(b"\0" * 65536)
    r = nuwa_cli("scan", bad, world["img"], "--cache", world["top"] / "cache", "--json")
    assert r.returncode in (2, 3), r.stderr
    doc = json.loads(r.stdout)
    assert "error" in doc["images"][0] and doc["images"][1]["summary"]["upgradable"] == 3
    assert r.stderr.count("\n") == 1
