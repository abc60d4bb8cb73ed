"""tools/fidelity.py on constructed trees: every kind of difference is found and named, the
allow list explains exactly what it lists, an image read with Nuwa's reader equals the tree
``mkfs.ext4 -d`` made it from, and the command line's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.paths import REPO, TOOLS
from judges import tool

if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
import fidelity  # noqa: E402
from treefacts import Tree  # noqa: E402

STATUS = ("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n"
          "Package: b\nStatus: install ok installed\nArchitecture: all\nVersion: 2.0\nDescription: b\n long\n")
ES = "Package: a\nArchitecture: amd64\nAuto-Installed: 1\n\n"


def _tree(root, extra: bool = False):
    """A small tree with every kind of entry dpkg can leave."""
    os.makedirs(root / "etc/sub")
    os.makedirs(root / "var/lib/dpkg")
    os.makedirs(root / "var/lib/apt")
    (root / "var/lib/dpkg/status").write_text(STATUS)
    (root / "var/lib/apt/extended_states").write_text(ES)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "etc/a.conf").write_text("a=1\n")
    (root / "etc/sub/b").write_text("bbbb\n")
    os.chmod(root / "etc/sub/b", 0o600)
    os.symlink("a.conf", root / "etc/link")
    os.link(root / "etc/a.conf", root / "etc/hard")
    os.setxattr(root / "etc/sub/b", "user.k", b"v")
    os.mkfifo(root / "etc/fifo")
    if extra:
        (root / "etc/new").write_text("x")
    return root


def _kinds(diffs):
    return {(d.path, d.kind, tuple(d.fields)) for d in diffs}


def _compare(a, b):
    with Tree(str(a)) as ra, Tree(str(b)) as rb:
        return fidelity.compare_trees(ra, rb) + fidelity.compare_states(ra, rb)


def test_equal_trees_have_no_difference(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert _compare(a, b) == []


def test_every_kind_of_difference_is_named(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b", extra=True)
    (b / "etc/sub/b").write_text("bbbc\n")  # same size, other content: only the hash tells
    os.chmod(b / "etc/sub/b", 0o640)
    os.unlink(b / "etc/link")
    os.symlink("other", b / "etc/link")
    os.setxattr(b / "etc/sub/b", "user.k", b"w")
    os.chown(b / "etc/a.conf", 1, 2)
    os.unlink(b / "etc/hard")  # the hard link is broken: a copy instead
    (b / "etc/hard").write_text("a=1\n")
    os.unlink(b / "etc/fifo")
    diffs = _compare(a, b)
    got = _kinds(diffs)
    assert ("/etc/new", "extra", ()) in got
    assert ("/etc/fifo", "missing", ()) in got
    assert ("/etc/sub/b", "changed", ("mode", "sha256", "xattrs")) in got
    assert ("/etc/link", "changed", ("size", "target")) in got
    assert ("/etc/a.conf", "changed", ("uid", "gid", "links")) in got
    assert ("/etc/hard", "changed", ("links",)) in got
    assert len(diffs) == 6


def test_states_compared_per_stanza(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    (b / "var/lib/dpkg/status").write_text(STATUS.replace("Version: 2.0", "Version: 2.1")
                                           + "\nPackage: c\nStatus: install ok installed\nArchitecture: all\n")
    (b / "var/lib/apt/extended_states").write_text("")
    got = _kinds(_compare(a, b))
    assert got == {("/var/lib/dpkg/status#b:all", "stanza-changed", ("Version",)),
                   ("/var/lib/dpkg/status#c:all", "stanza-extra", ()),
                   ("/var/lib/apt/extended_states#a:amd64", "stanza-missing", ())}


def test_stanza_order_and_bytes(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    first, second = STATUS.split("\n\n")
    (b / "var/lib/dpkg/status").write_text(second + "\n" + first + "\n")
    (b / "var/lib/apt/extended_states").write_text(ES.rstrip("\n") + "\n")  # no blank line at the end
    got = _kinds(_compare(a, b))
    assert got == {("/var/lib/dpkg/status", "changed", ("stanza-order",)),
                   ("/var/lib/apt/extended_states", "changed", ("bytes",))}


def test_allow_list_explains_only_what_it_names(tmp_path):
    allow = tmp_path / "allow.md"
    allow.write_text("# x\n\n## Expected differences\n\n| pattern | kinds | fields | reason |\n| --- | --- | --- | --- |\n"
                     "| `/etc/new` | extra | - | made on purpose |\n"
                     "| `/etc/sub/*` | changed | mode | modes may differ |\n\n## Other\n\n| a | b | c | d |\n")
    rows = fidelity.read_allow(str(allow))
    assert [r.pattern for r in rows] == ["/etc/new", "/etc/sub/*"]
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b", extra=True)
    os.chmod(b / "etc/sub/b", 0o640)
    diffs, left = fidelity.fidelity(str(a), str(b), str(allow))
    assert left == [] and {d.reason for d in diffs} == {"made on purpose", "modes may differ"}
    (b / "etc/sub/b").write_text("other content\n")  # a size change is not a mode change
    diffs, left = fidelity.fidelity(str(a), str(b), str(allow))
    assert [(d.path, d.fields) for d in left] == [("/etc/sub/b", ["mode", "size"])]


def test_allow_list_rows_are_checked(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("## Expected differences\n\n| `/x` | vanished | - | why |\n")
    with pytest.raises(ValueError, match="bad.md:3: unknown kind"):
        fidelity.read_allow(str(bad))
    bad.write_text("## Expected differences\n\n| `/x` | extra | - |  |\n")
    with pytest.raises(ValueError, match="needs its reason"):
        fidelity.read_allow(str(bad))


def test_the_project_allow_list_parses():
    rows = fidelity.read_allow(fidelity.DOC)
    assert len(rows) >= 5 and all(r.reason for r in rows)


@pytest.mark.root
def test_image_read_with_nuwa_equals_its_tree(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("owners and xattrs of the tree need root")
    a = _tree(tmp_path / "a")
    img = tmp_path / "a.raw"
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(a), str(img), "16M"], check=True)
    qcow = tmp_path / "a.qcow2"
    subprocess.run([tool("qemu-img"), "convert", "-O", "qcow2", str(img), str(qcow)], check=True)
    for candidate in (img, qcow):
        diffs = _compare(a, candidate)
        # mkfs.ext4 adds lost+found; the root directory's link count is not compared
        assert _kinds(diffs) == {("/lost+found", "extra", ())}, [d.line() for d in diffs]


def _cli(*args):
    return subprocess.run([sys.executable, os.path.join(TOOLS, "fidelity.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def test_command_line(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b", extra=True)
    r = _cli(a, a)
    assert r.returncode == 0 and r.stdout.strip().endswith("0 differences, 0 explained, 0 unexplained")
    r = _cli(a, b)
    assert r.returncode == 1 and "FAIL extra          /etc/new" in r.stdout
    r = _cli(a, b, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["unexplained"] == 1 and doc["differences"][0]["path"] == "/etc/new"
    assert _cli(a, tmp_path / "nowhere").returncode == 2


LOG = ("2026-12-06 01:00:00 startup archives unpack\n2026-12-06 01:00:01 upgrade a:amd64 1.0 2.0\n"
       "2026-12-06 01:00:02 startup packages configure\n2026-12-06 01:00:03 configure a:amd64 2.0 <none>\n"
       "2026-12-06 01:00:04 status installed b:all 2.0\n")


def test_dpkg_log_compared_without_times(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    for t in (a, b):
        os.makedirs(t / "var/log")
    (a / "var/log/dpkg.log").write_text(LOG)
    (b / "var/log/dpkg.log").write_text(LOG.replace("01:00:0", "02:59:5"))  # another clock only
    assert _compare(a, b) == []
    lines = LOG.splitlines(keepends=True)
    # the same actions, regrouped: one dpkg call fewer, the status line first
    (b / "var/log/dpkg.log").write_text(lines[4] + lines[0] + lines[1] + lines[3])
    assert _kinds(_compare(a, b)) == {("/var/log/dpkg.log", "changed", ("lines-order",))}
    # an action on one side only
    (b / "var/log/dpkg.log").write_text(LOG + "2026-12-06 01:00:05 remove c:all 1.0 <none>\n")
    assert _kinds(_compare(a, b)) == {("/var/log/dpkg.log", "changed", ("lines",))}
