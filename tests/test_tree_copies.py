"""debian_tree.renew_copy: an overlay copy is remounted fresh only when every change it holds
lies at or below the named paths, so a harness that resets those paths before each case gives
the case exactly the state the old removal and copy gave (the source's), and any change
elsewhere keeps the copy as it is (the harness then restores the paths the slow way)."""

from __future__ import annotations

import os
import shutil

import pytest

from debian_tree import bookworm_tree, copy_tree, link_tree, renew_copy, upper_layer


@pytest.fixture
def copy(tmp_path):
    base = bookworm_tree()
    dst = copy_tree(base, str(tmp_path / "tree"))
    if upper_layer(dst) is None:
        pytest.skip("no overlay copies here (not root, or no overlayfs)")
    return base, dst


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_changes_inside_the_paths_are_all_undone(copy):
    base, dst = copy
    with open(os.path.join(dst, "usr/share/doc/new"), "w") as f:  # a new file
        f.write("x")
    with open(os.path.join(dst, "etc/hostname"), "a") as f:  # a FILE written
        f.write("more\n")
    shutil.rmtree(os.path.join(dst, "usr/share/doc/dpkg"))  # a directory removed (whiteout)
    os.chmod(os.path.join(dst, "usr/share/doc/apt"), 0o700)  # a directory's mode
    os.makedirs(os.path.join(dst, "srv/a/b"))  # below a path that the source has empty
    assert renew_copy(base, dst, ["usr/share/doc", "etc/hostname", "srv"])
    assert os.listdir(upper_layer(dst)) == []  # nothing over the source: the source's state
    assert not os.path.lexists(os.path.join(dst, "usr/share/doc/new"))
    assert _read(os.path.join(dst, "etc/hostname")) == _read(os.path.join(base, "etc/hostname"))
    assert sorted(os.listdir(os.path.join(dst, "usr/share/doc/dpkg"))) == \
        sorted(os.listdir(os.path.join(base, "usr/share/doc/dpkg")))
    assert os.stat(os.path.join(dst, "usr/share/doc/apt")).st_mode == os.stat(
        os.path.join(base, "usr/share/doc/apt")).st_mode
    assert os.listdir(os.path.join(dst, "srv")) == os.listdir(os.path.join(base, "srv"))
    assert renew_copy(base, dst, ["srv"])  # a fresh copy holds no change at all


@pytest.mark.parametrize("change", ["new file", "file written", "file removed", "ancestor's mode",
                                    "ancestor replaced", "directory moved out", "moved in"])
def test_a_change_elsewhere_keeps_the_copy(copy, change):
    base, dst = copy
    p = lambda rel: os.path.join(dst, rel)  # noqa: E731
    paths = ["usr/share/doc"]
    if change == "new file":
        open(p("etc/new"), "w").close()
    elif change == "file written":
        with open(p("etc/hostname"), "a") as f:
            f.write("more\n")
    elif change == "file removed":
        os.unlink(p("etc/hostname"))
    elif change == "ancestor's mode":
        os.chmod(p("usr/share"), 0o750)
    elif change == "ancestor replaced":  # removed and made again: an opaque directory
        paths = ["etc/apt/apt.conf.d"]  # (a small ancestor: removing usr/share takes seconds)
        shutil.rmtree(p("etc/apt"))
        os.makedirs(p("etc/apt/apt.conf.d"))
    elif change == "directory moved out":
        os.rename(p("usr/share/doc/dpkg"), p("srv/dpkg"))
    else:
        os.rename(p("etc/hostname"), p("usr/share/doc/moved-hostname"))
    before = sorted(os.walk(upper_layer(dst)))
    assert not renew_copy(base, dst, paths)
    assert sorted(os.walk(upper_layer(dst))) == before  # untouched: the change is still there


def test_not_an_overlay_copy_or_another_source(copy, tmp_path):
    base, dst = copy
    plain = tmp_path / "plain"
    plain.mkdir()
    assert not renew_copy(base, str(plain), ["srv"])
    assert not renew_copy(bookworm_tree(extra=()) + "/usr", dst, ["srv"])


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "hard-linked"])
def test_link_tree_without_leaves_out_exactly_the_paths(tmp_path, monkeypatch, overlay):
    base = bookworm_tree()
    if not overlay:
        monkeypatch.setenv("NUWA_TEST_COPY", "cp")  # no overlay: cp -al, then removal
    without = ("usr/share/doc/apt", "usr/share/doc/dpkg/changelog.Debian.gz", "etc/absent")
    dst = link_tree(base, str(tmp_path / "tree"), without=without)
    assert (upper_layer(dst) is not None) == overlay
    assert not os.path.lexists(os.path.join(dst, "usr/share/doc/apt"))
    assert not os.path.lexists(os.path.join(dst, "usr/share/doc/dpkg/changelog.Debian.gz"))
    assert sorted(os.listdir(os.path.join(dst, "usr/share/doc/dpkg"))) == sorted(
        set(os.listdir(os.path.join(base, "usr/share/doc/dpkg"))) - {"changelog.Debian.gz"})
    assert sorted(os.listdir(os.path.join(dst, "usr/share/doc"))) == sorted(
        set(os.listdir(os.path.join(base, "usr/share/doc"))) - {"apt"})
    if overlay:  # the directories on the way show the source's metadata, times included
        for rel in ("", "usr", "usr/share", "usr/share/doc", "usr/share/doc/dpkg"):
            a, b = os.lstat(os.path.join(dst, rel)), os.lstat(os.path.join(base, rel))
            assert (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == \
                (b.st_mode, b.st_uid, b.st_gid, b.st_mtime_ns), rel
        assert not renew_copy(base, dst, ["srv"])  # a fresh copy would hold the paths left out
