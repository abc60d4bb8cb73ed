"""Package indexes (nuwa.apt.indexes): apt's choice of file, by-hash, the SHA256 check against
the verified Release file, decompression of every format apt offers, and the Packages parser
cross-checked field by field against python-debian — on test repositories and on the whole
Debian bookworm main index of this machine's apt lists.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import hashlib
import io
import itertools
import lzma
import os
import subprocess
import sys

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from debian import deb822

from helpers.aptrepo import build_repo
from helpers.debtools import build_deb
from judges import tool
from nuwa.apt.indexes import (COMPRESSIONS, check_file, component_problem, compression_of,
                              decompress, index_paths, parse_packages, read_index)
from nuwa.apt.records import ReleaseInfo
from nuwa.apt.release import dist_url, verify_release
from nuwa.errors import RepositoryError

INFO = ReleaseInfo(uri="file:/srv/repo", suite="stable", component="main", origin="Test")


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("debs"))
    return [build_deb(d, "hello", "1.0-1", {"/usr/share/hello/a": b"a\n"},
                      extra="Multi-Arch: foreign\nPriority: optional\nSection: misc\n"),
            build_deb(d, "world", "2.0-1", {"/usr/share/world/b": b"b\n"}, arch="amd64",
                      extra="Depends: hello (>= 1.0), libc6 | libc6.1\nPre-Depends: dpkg\n"
                            "Essential: yes\nSource: worldsrc (1.9)\n"),
            build_deb(d, "other", "3.0", {"/usr/share/other/c": b"c\n"}, arch="i386")]


def _verified(repo, **kw):
    return verify_release(inrelease=repo.read("InRelease"), release=None, release_gpg=None,
                          certs=[repo.cert], where=dist_url(repo.uri, repo.suite),
                          suite=repo.suite, **kw)


def test_index_paths_in_apts_order(tmp_path, debs):
    repo = build_repo(str(tmp_path / "r"), debs, archs=("amd64", "i386"))
    rel = _verified(repo)
    plain = index_paths(rel, "main", "amd64", by_hash=False)
    assert plain == ["main/binary-amd64/Packages.xz", "main/binary-amd64/Packages.gz",
                     "main/binary-amd64/Packages"]
    hashed = index_paths(rel, "main", "amd64")
    assert len(hashed) == 3 and all("/by-hash/SHA256/" in p for p in hashed)
    for h, p in zip(hashed, plain):
        assert rel.entry(h) == rel.files[p]
        with open(repo.path(h), "rb") as f:  # the by-hash file is the same bytes
            assert f.read() == repo.read(p)
    # only what the Release file lists, in apt's preference
    gz_only = build_repo(str(tmp_path / "g"), debs, compressions=("", ".gz"), by_hash=False)
    assert index_paths(_verified(gz_only), "main", "amd64") == \
        ["main/binary-amd64/Packages.gz", "main/binary-amd64/Packages"]
    assert COMPRESSIONS[0] == ".xz" and COMPRESSIONS[-1] == ""


def test_read_index_end_to_end(tmp_path, debs):
    repo = build_repo(str(tmp_path / "r"), debs, archs=("amd64", "i386"))
    rel = _verified(repo)
    where = dist_url(repo.uri, repo.suite)
    for arch, names in (("amd64", {"hello", "world"}), ("i386", {"hello", "other"})):
        path = index_paths(rel, "main", arch)[0]
        recs = list(read_index(rel, path, repo.read(path), INFO, where))
        assert {r.package for r in recs} == names
        for r in recs:  # every record's Filename/Size/SHA256 describe the pool file exactly
            with open(os.path.join(repo.root, r.filename), "rb") as f:
                data = f.read()
            assert (r.size, r.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    hello = next(r for r in recs if r.package == "hello")
    assert (hello.multi_arch, hello.priority, hello.section) == ("foreign", "optional", "misc")


def test_tampered_packages_xz_is_a_hash_mismatch(tmp_path, debs):
    repo = build_repo(str(tmp_path / "r"), debs)
    rel = _verified(repo)  # the Release file is signed before the index is changed
    repo.tamper("main/binary-amd64/Packages.xz", offset=40)
    where = dist_url(repo.uri, repo.suite)
    with pytest.raises(RepositoryError) as exc:
        read_index(rel, "main/binary-amd64/Packages.xz",
                   repo.read("main/binary-amd64/Packages.xz"), INFO, where)
    msg = str(exc.value)
    assert msg.startswith(where + "/main/binary-amd64/Packages.xz: Hash Sum mismatch"), msg
    assert "\n" not in msg
    with pytest.raises(RepositoryError, match="Size mismatch"):
        check_file("main/binary-amd64/Packages.xz", b"short", rel.files[
            "main/binary-amd64/Packages.xz"], where)
    with pytest.raises(RepositoryError, match="not listed in the Release file"):
        check_file("main/binary-amd64/Packages.bz2", b"", None, where)


def test_flat_repository(tmp_path, debs):
    repo = build_repo(str(tmp_path / "flat"), debs[:2], flat=True)
    assert os.path.exists(os.path.join(repo.root, "Release"))
    rel = _verified(repo)
    assert index_paths(rel, "", "amd64") == ["Packages.xz", "Packages.gz", "Packages"]
    recs = list(read_index(rel, "Packages.xz", repo.read("Packages.xz"), INFO, repo.uri))
    assert {(r.package, r.filename) for r in recs} == {
        ("hello", "hello_1.0-1_all.deb"), ("world", "world_2.0-1_amd64.deb")}
    assert all(os.path.exists(os.path.join(repo.root, r.filename)) for r in recs)


def test_component_problem(tmp_path, debs):
    repo = build_repo(str(tmp_path / "r"), {"main": debs, "contrib": []})
    rel = _verified(repo)
    assert component_problem(rel, "main", "amd64", "U") is None
    assert "does not have the component 'non-free'" in component_problem(rel, "non-free", "amd64", "U")
    assert "does not support architecture 'arm64'" in component_problem(rel, "main", "arm64", "U")
    # a component the Release file claims but whose index it does not list
    rel.files = {k: v for k, v in rel.files.items() if not k.startswith("contrib/")}
    assert "unable to find expected entry 'contrib/binary-amd64/Packages'" in \
        component_problem(rel, "contrib", "amd64", "U")


_BODY = (b"Package: a\nVersion: 1\nArchitecture: all\n\n" * 50)


@pytest.mark.parametrize("ext,comp", [
    (".xz", lzma.compress), (".bz2", bz2.compress), (".gz", gzip.compress),
    (".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    (".lzma", lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE)), ("", lambda b: b)])
def test_decompress_formats(ext, comp):
    data = comp(_BODY)
    assert decompress("Packages" + ext, data) == _BODY
    assert compression_of("by-hash/SHA256/ab", data) == ext  # by-hash: the bytes decide
    if ext:
        with pytest.raises(RepositoryError, match=r"Packages\S*: (truncated|corrupt)"):
            decompress("Packages" + ext, data[:len(data) // 2])


def test_decompress_refusals():
    with pytest.raises(RepositoryError, match=r"Packages.xz: not xz data"):
        decompress("Packages.xz", gzip.compress(_BODY))
    bad = bytearray(lzma.compress(_BODY))
    bad[30] ^= 0xFF
    with pytest.raises(RepositoryError, match="corrupt xz data"):
        decompress("Packages.xz", bytes(bad))
    with pytest.raises(RepositoryError, match="decompresses to more than 1000 bytes"):
        decompress("Packages.gz", gzip.compress(_BODY), max_size=1000)


def test_parse_details():
    text = (b"Package: a\nversion: 1.0\nArchitecture: amd64\nDepends: b (>= 1),\n c | d\n"
            b"Size: 10\nInstalled-Size: 3\nEssential: yes\nDescription: x\n long\n \n"
            b"\t\n"  # a line of blanks also ends a paragraph (deb822)
            b"Package: b\nVersion: 2\nArchitecture: all\nHomepage: h\n")
    a, b = parse_packages(text, INFO, keep=("Homepage",))
    assert (a.version, a.depends, a.size, a.installed_size, a.essential) == \
        ("1.0", "b (>= 1), c | d", 10, 3, True)
    assert b.extra == {"Homepage": "h"} and b.release is INFO and not b.essential
    with pytest.raises(RepositoryError, match=r"P: stanza 2 has no Version field \(c\)"):
        list(parse_packages(b"Package: a\nVersion: 1\nArchitecture: all\n\n"
                            b"Package: c\nArchitecture: all\n", INFO, where="P"))
    with pytest.raises(RepositoryError, match="package a: malformed Size 'x'"):
        list(parse_packages(b"Package: a\nVersion: 1\nArchitecture: all\nSize: x\n", INFO))


_WORD = st.text(alphabet=st.characters(whitelist_categories=("L", "N", "P", "S"),
                                       max_codepoint=0x2FF, blacklist_characters=":"),
                min_size=1, max_size=12)
_VALUE = st.lists(_WORD, min_size=1, max_size=4).map(" ".join)
_NAMES = ["Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides", "Source",
          "Multi-Arch", "Section", "Filename", "SHA256", "Description", "X-Other", "Tag"]


@st.composite
def _stanza(draw):
    fields = {"Package": draw(_WORD), "Version": draw(_WORD), "Architecture": draw(_WORD)}
    for name in draw(st.lists(st.sampled_from(_NAMES[3:]), unique=True, max_size=8)):
        fields[name] = draw(_VALUE)
    lines = []
    for name, value in fields.items():
        # random spelling of the name (deb822 names are case-insensitive) and random folding
        spelled = draw(st.sampled_from([name, name.lower(), name.upper()]))
        words = value.split(" ")
        cut = draw(st.integers(0, len(words) - 1))
        first, rest = " ".join(words[:cut]), " ".join(words[cut:])
        lines.append(f"{spelled}: {value}" if not cut and draw(st.booleans())
                     else f"{spelled}:{' ' + first if first else ''}\n {rest}")
    return "\n".join(draw(st.permutations(lines))) + "\n"


@given(st.lists(_stanza(), min_size=1, max_size=5))
def test_parser_matches_python_debian_on_generated_stanzas(stanzas):
    data = "\n".join(stanzas).encode()
    ours = list(parse_packages(data, INFO, keep=("Tag",)))
    theirs = list(deb822.Packages.iter_paragraphs(data.splitlines(keepends=True),
                                                  use_apt_pkg=False))
    assert len(ours) == len(theirs)
    for rec, para in zip(ours, theirs):
        for name in ("Package", "Version", "Architecture", "Depends", "Pre-Depends",
                     "Provides", "Source", "Multi-Arch", "Section", "Filename", "SHA256"):
            assert getattr(rec, name.lower().replace("-", "_")) == _norm(para.get(name, ""))
        assert rec.extra.get("Tag", "") == _norm(para.get("Tag", ""))


# --- the whole Debian index, judged by python-debian ------------------------------------

def _system_packages(tmp_path) -> tuple[bytes, str]:
    """The biggest Packages index of this machine's apt lists (decompressed; lz4 by the real
    lz4 tool since apt stores its lists that way), else — when the machine has none — a
    Packages-shaped file made from its own dpkg status (all installed packages)."""
    lists = [p for p in glob.glob("/var/lib/apt/lists/*_Packages*") if "_binary-" in p]
    if lists:
        path = max(lists, key=os.path.getsize)
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".lz4"):
            out = subprocess.run([tool("lz4"), "-dc", path], check=True, capture_output=True)
            return out.stdout, path
        return decompress(path, raw), path
    if not os.environ.get("CI"):
        pytest.skip("no /var/lib/apt/lists/*_Packages* on this machine (run apt-get update)")
    with open("/var/lib/dpkg/status", "rb") as f:
        return f.read(), "/var/lib/dpkg/status"


def _norm(v: str) -> str:
    return " ".join(v.split())


def test_whole_index_against_python_debian(tmp_path):
    data, src = _system_packages(tmp_path)
    # both parsers stream, in lockstep: no list of 64k python-debian paragraphs in memory
    ours = parse_packages(data, INFO, where=src)
    theirs = deb822.Packages.iter_paragraphs(io.BytesIO(data), use_apt_pkg=False)
    fields = {"Package": "package", "Version": "version", "Architecture": "architecture",
              "Multi-Arch": "multi_arch", "Priority": "priority", "Section": "section",
              "Source": "source", "Depends": "depends", "Pre-Depends": "pre_depends",
              "Recommends": "recommends", "Suggests": "suggests", "Conflicts": "conflicts",
              "Breaks": "breaks", "Replaces": "replaces", "Provides": "provides",
              "Filename": "filename", "SHA256": "sha256"}
    checked = stanzas = 0
    for rec, para in itertools.zip_longest(ours, theirs):
        assert rec is not None and para is not None, (src, "the parsers disagree on the count")
        stanzas += 1
        for name, attr in fields.items():
            assert getattr(rec, attr) == _norm(para.get(name, "")), (src, rec.package, name)
            checked += 1
        assert rec.size == int(para.get("Size", 0))
        assert rec.installed_size == int(para.get("Installed-Size", 0))
        assert rec.essential == (para.get("Essential", "no") == "yes")
    assert stanzas > 0 and checked == stanzas * len(fields), src


_MEASURE = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from nuwa.apt.indexes import parse_packages
from nuwa.apt.records import ReleaseInfo
with open(sys.argv[1], "rb") as f:
    data = f.read()
t = time.perf_counter()
recs = list(parse_packages(data, ReleaseInfo(uri="file:/x", suite="s")))
dt = time.perf_counter() - t
# VmHWM: this process's own peak (ru_maxrss would carry the forking parent's across exec)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(len(recs), dt, hwm)
"""


def test_whole_index_speed_and_memory(tmp_path):
    """Issue 11's budget: the full bookworm main index (~64k stanzas) well under 250 MB peak;
    measured in a fresh process, records held in a list as a caller would."""
    data, src = _system_packages(tmp_path)
    path = tmp_path / "Packages"
    path.write_bytes(data)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path), root], check=True,
                         capture_output=True, text=True).stdout.split()
    n, seconds, rss_kib = int(out[0]), float(out[1]), int(out[2])
    print(f"{src}: {n} stanzas, {n / seconds:,.0f} stanzas/s, peak RSS {rss_kib // 1024} MB")
    assert n > 0
    assert rss_kib < 250 * 1024, f"peak RSS {rss_kib // 1024} MB for {n} stanzas"
    # generous floor so a loaded CI machine passes; the measured rate is ~60k stanzas/s
    assert n / seconds > 5000, f"{n / seconds:.0f} stanzas/s"
