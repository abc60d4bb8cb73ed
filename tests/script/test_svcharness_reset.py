"""svcharness.Pair.reset: a root whose RESET directories cannot be told from the template's is
kept (no copy), any difference a program could read brings the template's copy back."""

from __future__ import annotations

import os

import pytest

from svcharness import Pair, snapshot


@pytest.fixture
def pair(tmp_path):
    t = tmp_path / "template"
    (t / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (t / "etc/systemd/system/a.service").write_text("[Service]\n")
    (t / "etc/systemd/system/multi-user.target.wants/a.service").symlink_to("/etc/systemd/system/a.service")
    (t / "etc/hostname").write_text("host\n")
    return Pair(str(tmp_path), str(t))


def _ino(pair, rel):
    return os.lstat(os.path.join(pair.model, rel)).st_ino


def _same_as_template(pair):
    """Judged apart from the state reset compares: the harness's own snapshot (type, mode,
    content or link target), the directory times and the extended attributes."""
    for root in (pair.real, pair.model):
        assert snapshot(root) == snapshot(pair.template)
        for rel in ("etc", "etc/systemd", "etc/hostname"):
            a, b = os.path.join(root, rel), os.path.join(pair.template, rel)
            assert os.lstat(a).st_mtime_ns == os.lstat(b).st_mtime_ns, rel
            assert os.listxattr(a) == os.listxattr(b), rel


def test_an_untouched_root_is_kept(pair):
    before = _ino(pair, "etc/hostname")
    pair.reset()
    assert _ino(pair, "etc/hostname") == before  # not copied again
    _same_as_template(pair)


@pytest.mark.parametrize("change", ["content, same size and times", "mode", "new file", "link target",
                                    "removed link", "directory time", "xattr"])
def test_any_readable_difference_is_reset(pair, change):
    p = lambda rel: os.path.join(pair.model, rel)  # noqa: E731
    f = p("etc/hostname")
    st = os.lstat(f)
    if change == "content, same size and times":
        with open(f, "w") as out:
            out.write("HOST\n")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "mode":
        os.chmod(f, 0o600)
    elif change == "new file":
        open(p("etc/systemd/system/b.service"), "w").close()
    elif change == "link target":
        link = p("etc/systemd/system/multi-user.target.wants/a.service")
        os.unlink(link)
        os.symlink("/lib/systemd/system/a.service", link)
    elif change == "removed link":
        os.unlink(p("etc/systemd/system/multi-user.target.wants/a.service"))
    elif change == "directory time":
        os.utime(p("etc/systemd"), ns=(0, 0))
    else:
        try:
            os.setxattr(f, "user.x", b"1")
        except OSError:
            pytest.skip("no user xattrs on this file system")
    pair.reset()
    _same_as_template(pair)
