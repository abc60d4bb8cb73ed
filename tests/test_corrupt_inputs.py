"""Regressions from fuzzing (issue 16): each built from a minimal input made at test time.

Every case runs the real command line in a subprocess (a traceback would show on stderr) and
checks the exit code DESIGN.md assigns (damaged image 3, bad input 2), the one-line error, and
where a real tool decides (GNU ls, dpkg-query), what that tool does on the same input.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types

import pytest

from judges import debugfs, tool
from nuwa.deb.control import parse_paragraphs
from nuwa.deb.deps import check_predepends_conflicts
from nuwa.deb.status import StatusFile
from nuwa.errors import CorruptImageError, InvalidInputError, QUOTE_LIMIT, quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "LC_ALL": "C", "TZ": "UTC", "PYTHONPATH": ROOT}


def nuwa(*args, timeout=60):
    """Run ``python3 -m nuwa ARGS``; the result, after checking that no traceback leaked."""
    r = subprocess.run([sys.executable, "-m", "nuwa", *args], capture_output=True, env=ENV, timeout=timeout)
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
    # GNU ls (ls.c print_dir): the loop is reported before the header, status LS_FAILURE (2)
    assert r.returncode == 2
    assert r.stdout.decode() == "/a:\nb\n\n/a/b:\nloop\n"
    assert one_line(r.stderr) == "nuwa ls: /a/b/loop: not listing already-listed directory\n"


def test_ls_recursive_json_and_long_stop_at_the_loop(loop_image):
    r = nuwa("ls", loop_image, "/", "-R", "--json")
    assert r.returncode == 2 and b"already-listed" in r.stderr
    import json
    paths = [e["path"] for e in json.loads(r.stdout)["entries"]]
    assert paths.count("/a/b/loop") == 1 and not any(p.startswith("/a/b/loop/") for p in paths)
    assert paths.index("/a") < paths.index("/a/b") < paths.index("/a/b/loop") < paths.index("/etc")
    r = nuwa("ls", loop_image, "/a", "-R", "-l")
    assert r.returncode == 2 and r.stdout.count(b"/a/b:\n") == 1


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
