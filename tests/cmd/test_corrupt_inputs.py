"""Regressions from fuzzing (issue 16): each built from a minimal input made at test time.

Every case runs the real command line in a subprocess (a traceback would show on stderr) and
checks the exit code DESIGN.md assigns (damaged image 3, bad input 2), the one-line error, and
where a real tool decides (GNU ls, dpkg-query), what that tool does on the same input.
"""

from __future__ import annotations

import os
import subprocess
import time
import types

import pytest

from helpers.cli import C_ENV
from helpers.cli import nuwa as run_nuwa
from helpers.debtools import raw_deb
from helpers.paths import DEFAULT_IMAGE
from judges import debugfs, tool
from nuwa.deb.control import parse_paragraphs
from nuwa.deb.deps import check_predepends_conflicts
from nuwa.deb.status import StatusFile
from nuwa.errors import CorruptImageError, InvalidInputError, QUOTE_LIMIT, quote

def nuwa(*args, timeout=60):
    """Run ``python3 -m nuwa ARGS`` (bytes, C locale, UTC); the result, after checking that no
    traceback leaked."""
    r = run_nuwa(*args, text=False, env=C_ENV, timeout=timeout)
    assert b"Traceback" not in r.stderr, r.stderr.decode(errors="replace")
    return r


def one_line(err: bytes) -> str:
    text = err.decode("utf-8", "replace")
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text


def make_image(tmp_path, status: bytes = b"Package: base-files\nStatus: install ok installed\nVersion: 1\n") -> str:
    """A tiny root filesystem (the root-fs markers and a status file) made by mkfs.ext4 -d."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "var/lib/dpkg").mkdir(parents=True)
    (tree / "a/b").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=debian\n")
    (tree / "var/lib/dpkg/status").write_bytes(status)
    img = str(tmp_path / "root.img")
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-d", str(tree), img, "16M"], check=True,
                   capture_output=True)
    return img


# ---- ls -R on a directory entry that leads back to an ancestor --------------------------------
@pytest.fixture
def loop_image(tmp_path):
    img = make_image(tmp_path)
    # a hard link to an ancestor directory, as a fuzzed directory entry makes one
    subprocess.run([tool("debugfs"), "-w", "-R", "link /a /a/b/loop", img], check=True, capture_output=True)
    assert "loop" in debugfs(img, "ls /a/b")
    return img


def test_ls_recursive_reports_directory_loop_like_gnu_ls(loop_image):
    start = time.monotonic()
    r = nuwa("ls", loop_image, "/a", "-R")
    assert time.monotonic() - start < 5  # it used to recurse for ~8 s before a RecursionError
    # GNU ls (ls.c print_dir): the loop is reported before the header; GNU's status is
    # LS_FAILURE (2), Nuwa's is 3: only a damaged image has a hard link to a directory
    assert r.returncode == 3
    assert r.stdout.decode() == "/a:\nb\n\n/a/b:\nloop\n"
    assert one_line(r.stderr) == "nuwa ls: /a/b/loop: not listing already-listed directory\n"


def test_ls_recursive_json_and_long_stop_at_the_loop(loop_image):
    r = nuwa("ls", loop_image, "/", "-R", "--json")
    assert r.returncode == 3 and b"already-listed" in r.stderr
    import json
    paths = [e["path"] for e in json.loads(r.stdout)["entries"]]
    assert paths.count("/a/b/loop") == 1 and not any(p.startswith("/a/b/loop/") for p in paths)
    assert paths.index("/a") < paths.index("/a/b") < paths.index("/a/b/loop") < paths.index("/etc")
    r = nuwa("ls", loop_image, "/a", "-R", "-l")
    assert r.returncode == 3 and r.stdout.count(b"/a/b:\n") == 1


def test_ls_recursive_on_a_deep_tree_does_not_hit_the_recursion_limit(tmp_path):
    from nuwa.cmd.files import ls_json, ls_text
    from nuwa.fs.memory import MemoryFS

    fs = MemoryFS()
    path = ""
    for _ in range(1500):  # deeper than Python's default recursion limit of 1000
        path += "/d"
        fs.mkdir(path)
    errors: list[str] = []
    assert ls_text(fs, "/", recursive=True, errors=errors).count(":\n") == 1501 and errors == []
    assert len(ls_json(fs, "/", recursive=True, errors=errors)["entries"]) == 1500 and errors == []


# ---- the dpkg status database: a bad Status word, a name that is not UTF-8 -------------------
def _dpkg_query(tmp_path, status: bytes):
    adm = tmp_path / "adm"
    (adm / "info").mkdir(parents=True, exist_ok=True)
    (adm / "updates").mkdir(exist_ok=True)
    (adm / "status").write_bytes(status)
    return subprocess.run([tool("dpkg-query"), f"--admindir={adm}", "-W"], capture_output=True)


BAD_WORD = b"Package: bar\nStatus: install ok installee\nVersion: 1\nArchitecture: all\n"
BAD_NAME = b"Package: fo\xffo\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"


@pytest.mark.parametrize("status, words", [(BAD_WORD, ["third (status) word", "'installee'"]),
                                           (BAD_NAME, ["invalid package name", "'fo\\xffo'"])])
def test_packages_refuses_a_status_file_dpkg_query_refuses(tmp_path, status, words):
    assert _dpkg_query(tmp_path, status).returncode == 2  # dpkg-query: "error: parsing file ..."
    img = make_image(tmp_path, status)
    for extra in ([], ["--json"]):
        r = nuwa("packages", img, *extra)
        line = one_line(r.stderr)
        assert r.returncode == 3 and all(w in line for w in words) and "/var/lib/dpkg/status" in line, line


def test_status_word_checked_for_value_in_dependency_checks():
    sf = StatusFile(BAD_WORD.decode() + "\n")
    db = types.SimpleNamespace(status=sf)
    _, ctl, _ = next(parse_paragraphs("Package: new\nVersion: 2\nConflicts: bar\n", "control"))
    with pytest.raises(CorruptImageError, match="third \\(status\\) word.*'installee'"):
        check_predepends_conflicts(db, ctl, None)


# ---- error messages quote values of bounded length ---------------------------------------------
def test_quote_caps_long_values_and_escapes_bytes():
    assert quote("abc") == "'abc'"
    long = quote("x" * 5000)
    assert long == "'" + "x" * QUOTE_LIMIT + "...' (5000 characters)"
    assert quote(b"a\xff\n") == "'a\\xff\\n'"
    err = InvalidInputError("field %r is bad" % ("v" * 5000), where="pkg.deb")
    assert len(str(err)) < QUOTE_LIMIT + 100 and "(5000 characters)" in str(err)
    assert len(str(CorruptImageError("y" * 100000))) < 1100


# ---- a NUL byte in an ext4 directory entry name: a damaged image, not bad input ----------------
def test_nul_byte_in_directory_entry_name_is_a_damaged_image(tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "var/lib/dpkg").mkdir(parents=True)
    (tree / "a/bcd").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=debian\n")
    img = str(tmp_path / "nul.img")
    # no metadata_csum: the damaged block then carries no checksum that would be reported first
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-O", "^metadata_csum", "-d", str(tree), img, "16M"],
                   check=True, capture_output=True)
    blk = int(subprocess.run([tool("debugfs"), "-R", "blocks /a", img], capture_output=True, text=True,
                             check=True).stdout.split()[0])
    with open(img, "r+b") as f:
        f.seek(blk * 4096)
        block = bytearray(f.read(4096))
        block[block.index(b"bcd") + 1] = 0  # "bcd" -> "b\0d"
        f.seek(blk * 4096)
        f.write(block)
    fsck = subprocess.run([tool("e2fsck"), "-fn", img], capture_output=True, text=True)
    assert fsck.returncode == 4 and "illegal characters in its name" in fsck.stdout  # the judge: damaged
    for args in (["ls", img, "/a"], ["ls", img, "/", "-R"], ["stat", img, "/a/bcd"], ["diff", img, img],
                 ["copy-out", img, "/a", str(tmp_path / "out")]):
        r = nuwa(*args)
        line = one_line(r.stderr)
        assert r.returncode == 3, (args, line)
        assert "'b\\x00d'" in line and "NUL byte" in line and "ext4 directory inode" in line, line


# ---- .deb control files are input: a bad one is exit 2; a path twice in data.tar -------------
DEFAULT = DEFAULT_IMAGE
BASE = [("./", "dir", None), ("./etc/", "dir", None), ("./etc/foo", "file", b"x\n")]


def _raw_deb(path, members, control_files=None):
    return raw_deb(str(path), members, control_files=control_files)


@pytest.mark.parametrize("name, data, words", [
    ("triggers", b"interest\n", "syntax error in triggers control file line 1"),
    ("triggers", b"bogus-directive foo\n", "unknown directive 'bogus-directive'"),
    ("conffiles", b"etc/foo\n", "is not an absolute pathname"),
    ("conffiles", b"/\n", "root or empty directory listed as a conffile"),
])
def test_bad_control_file_in_deb_is_bad_input(tmp_path, name, data, words):
    deb = _raw_deb(tmp_path / "bad.deb", BASE, {name: data})
    out = tmp_path / "out.qcow2"
    r = nuwa("patch", DEFAULT, "--deb", deb, "--output", str(out))
    line = one_line(r.stderr)
    assert r.returncode == 2 and words in line and f"bad.deb (package bad): {name}" in line, line
    assert not out.exists() and os.listdir(tmp_path) == ["bad.deb"]


def test_conffile_name_with_spaces_read_as_dpkg_reads_it(tmp_path):
    """dpkg f_conffiles takes hash and flags from the end of the line: names may hold spaces."""
    from nuwa.deb.status import parse_conffiles_field

    status = (b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\nConffiles:\n"
              b" /etc/foo bar 0123456789abcdef0123456789abcdef obsolete\n /etc/x newconffile\n")
    assert _dpkg_query(tmp_path, status).returncode == 0
    cfs = parse_conffiles_field([" /etc/foo bar 0123456789abcdef0123456789abcdef obsolete", " /etc/x newconffile"], "t")
    assert [(c.name, c.hash, c.obsolete) for c in cfs] == [("/etc/foo bar", "0123456789abcdef0123456789abcdef", True),
                                                          ("/etc/x", "newconffile", False)]
    with pytest.raises(CorruptImageError, match="malformed line"):
        parse_conffiles_field([" /etc/foo"], "t")
    bad = b"Package: a\nStatus: install ok installed\nVersion: 1\nConffiles:\n / -\n"
    assert _dpkg_query(tmp_path, bad).returncode == 2
    with pytest.raises(CorruptImageError, match="root or empty directory"):
        parse_conffiles_field([" / -"], "t")


def test_path_twice_in_data_tar_through_the_cli(tmp_path):
    """dpkg installs a file held twice (the later wins) and fails on a file then a directory
    (tests/deb/test_ops_root.py compares each pair with real dpkg); neither leaks an OSError."""
    same = _raw_deb(tmp_path / "same.deb", BASE + [("./etc/x", "file", b"1\n"), ("./etc/x", "file", b"22\n")])
    out = tmp_path / "same.qcow2"
    r = nuwa("patch", DEFAULT, "--deb", same, "--output", str(out), timeout=300)
    assert r.returncode == 0, r.stderr
    assert nuwa("cat", str(out), "/etc/x").stdout == b"22\n"
    assert nuwa("cat", str(out), "/var/lib/dpkg/info/bad.list").stdout.count(b"/etc/x\n") == 2  # as dpkg lists it
    mixed = _raw_deb(tmp_path / "mixed.deb", BASE + [("./etc/x", "file", b"1\n"), ("./etc/x/", "dir", None)])
    out2 = tmp_path / "mixed.qcow2"
    r = nuwa("patch", DEFAULT, "--deb", mixed, "--output", str(out2), timeout=300)
    line = one_line(r.stderr)
    assert r.returncode == 2 and "data.tar holds '/etc/x' twice (a file, then a dir)" in line, line
    assert "No such file" not in line and not out2.exists()


def test_packages_prints_a_version_that_is_not_utf8_as_dpkg_query_does(tmp_path):
    status = b"Package: bar\nStatus: install ok installed\nVersion: 1\xff\nArchitecture: all\n"
    q = _dpkg_query(tmp_path, status)
    assert q.returncode == 0  # dpkg-query warns about the version, and prints it as it is
    img = make_image(tmp_path, status)
    r = nuwa("packages", img)
    assert r.returncode == 0 and r.stdout == q.stdout == b"bar\t1\xff\n"
    r = nuwa("packages", img, "--json")
    assert r.returncode == 0 and b'"version": "1\\udcff"' in r.stdout
