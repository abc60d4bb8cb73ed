"""The parsed-index cache of nuwa.apt.repository (apt's pkgcache.bin in spirit): a second run
loads the records it stored instead of parsing again, gets exactly the records a parse gives,
and parses again whenever the stored object cannot be the right one (another record layout,
another index, a damaged or truncated object)."""

from __future__ import annotations

import hashlib
import marshal

import pytest

from helpers.aptrepo import build_repo
from helpers.debtools import build_deb
from nuwa.apt import repository as R
from nuwa.apt.indexes import index_paths, read_index
from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.apt.release import dist_url, verify_release
from nuwa.apt.repository import RepoOptions, Repositories
from nuwa.apt.sources import Source

INFO = ReleaseInfo(uri="file:/srv/repo", suite="stable", component="main", origin="Test")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("debs"))
    debs = [build_deb(d, "hello", "1.0-1", {"/usr/share/hello/a": b"a\n"},
                      extra="Multi-Arch: foreign\nPriority: optional\nSection: misc\nProvides: greeting (= 1)\n"),
            build_deb(d, "world", "2.0-1", {"/usr/share/world/b": b"b\n"},
                      extra="Depends: hello (>= 1.0), libc6 | libc6.1\nPre-Depends: dpkg\n"
                            "Essential: yes\nSource: worldsrc (1.9)\nBreaks: old (<< 2)\n"),
            build_deb(d, "tool", "3.0", {"/usr/share/tool/c": b"c\n"}, arch="all")]
    return build_repo(str(tmp_path_factory.mktemp("repo") / "r"), debs)


def _index(repo, cache: str):
    """(records, the Repositories) of the repo's main/amd64 index, read by a new Repositories
    (nothing memoised in memory) over ``cache``."""
    rel = verify_release(inrelease=repo.read("InRelease"), release=None, release_gpg=None, certs=[repo.cert],
                         where=dist_url(repo.uri, repo.suite), suite=repo.suite)
    source = Source(uri=repo.uri, suite=repo.suite, components=("main",), architectures=None)
    repos = Repositories(RepoOptions(cache=cache, quiet=True))
    try:
        return repos.index(source, rel, "main", "amd64", None), rel
    finally:
        repos.close()


def _parsed(repo, rel):
    path = index_paths(rel, "main", "amd64")[0]
    return list(read_index(rel, path, repo.read(path), rel.info(Source(repo.uri, repo.suite, ("main",), None), "main"),
                           dist_url(repo.uri, repo.suite)))


def test_round_trip_gives_equal_records():
    recs = [PackageRecord("a", "1:2.0-1", "amd64", INFO, multi_arch="same", essential=True, priority="required",
                          depends="libc6 (>= 2.36)", provides="x (= 1)", filename="pool/a.deb", size=123,
                          sha256="ab" * 32, installed_size=7, extra={"Tag": "v"}),
            PackageRecord("b", "0.1", "all", INFO)]
    back = R._load_parsed(R._dump_parsed(recs), INFO)
    assert back == recs
    assert all(r.release is INFO for r in back)


@pytest.mark.parametrize("data", [b"", b"\x00garbage", marshal.dumps([("only", "three", "fields")]),
                                  marshal.dumps(7)])
def test_unreadable_data_means_parse_again(data):
    assert R._load_parsed(data, INFO) is None
    assert R._load_parsed(None, INFO) is None


def test_the_key_names_index_layout_and_format(monkeypatch):
    key = R._parsed_key("0" * 64)
    assert key != R._parsed_key("1" * 64)
    assert f":m{marshal.version}:" in key
    # another record layout (a field added, removed or moved) is another key: an object stored
    # by another version of Nuwa is never read as this one's rows
    monkeypatch.setattr(R, "_RECORD_FIELDS", tuple(f for f in R._RECORD_FIELDS if f != "release"))
    assert R._parsed_key("0" * 64) != key


def test_second_run_loads_what_the_first_parsed(repo, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first, rel = _index(repo, cache)
    assert first == _parsed(repo, rel) and {r.package for r in first} == {"hello", "world", "tool"}
    key = R._parsed_key(rel.entry(index_paths(rel, "main", "amd64")[0]).sha256)
    assert R.Cache(cache).get_named(key) is not None
    # no parse allowed now: only the stored records can answer, and they are the same
    def no_parse(*a, **k):
        raise AssertionError("the index was parsed again")
    monkeypatch.setattr(R, "read_index", no_parse)
    second, _ = _index(repo, cache)
    assert second == first


def test_damaged_object_is_parsed_again(repo, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first, rel = _index(repo, cache)
    c = R.Cache(cache)
    key = R._parsed_key(rel.entry(index_paths(rel, "main", "amd64")[0]).sha256)
    data = c.get_named(key)
    sha = hashlib.sha256(data).hexdigest()
    with open(c.path(sha), "r+b") as f:  # one byte changed: the object no longer has its digest
        f.seek(len(data) // 2)
        f.write(bytes([data[len(data) // 2] ^ 0xFF]))
    assert c.get_named(key) is None
    parsed = []
    monkeypatch.setattr(R, "read_index", lambda *a, **k: parsed.append(1) or read_index(*a, **k))
    again, _ = _index(repo, cache)
    assert parsed == [1]
    assert again == first
    assert c.get_named(key) == data  # stored again, intact
