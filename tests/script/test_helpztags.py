"""``helpztags`` against vim-common 9.0's real one (Perl) in a chroot of a bookworm tree with
vim-common and vim-runtime: the tags files of several help directories, stdout and status."""

from __future__ import annotations

import gzip
import os
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree
from helpers import runs

pytestmark = [pytest.mark.judge, pytest.mark.root]


@pytest.fixture(scope="module")
def tree():
    return bookworm_tree(("vim-common", "vim-runtime"))


@pytest.fixture(scope="module")
def real_root(tree, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("vim") / "root")
    copy_tree(tree, root)
    return root


def _populate(root: str) -> None:
    """Help directories with the forms the script treats specially."""
    files = {
        "h1/one.txt": b"x *a* *b\\c* *d/e* |x| *no *f*\n\t*g*\n*h**i*\n*last*",
        "h1/two.dex": b"*zz* *a*\n",
        "h1/B.txt": b"*dup*\n", "h1/a.txt": b"*dup*\n", "h1/_c.txt": b"*dup* *tab\tbad*\n", "h1/Z.txt": b"*dup*\n",
        "h1/b.txt": b"*dup*\n", "h1/.hidden.txt": b"*hidden*\n", "h1/notes.md": b"*md*\n", "h1/x.gz": b"",
        "h1/ab.frx": b"*french*\n", "h1/sp ace.txt": b"*space*\n",
        "h2/three.txt": b"*second* *a*\n",
        "h3/none.txt": b"no tags here\n",
    }
    gz = {"h1/c.txt.gz": b"*dup* *gz*\n", "h2/four.dex.gz": b"*gzde*\n"}
    for rel, data in list(files.items()) + [(k, gzip.compress(v, mtime=0)) for k, v in gz.items()]:
        path = os.path.join(root, "tmp/help", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(root, "tmp/help/h1/dir.txt"), exist_ok=True)
    with open(os.path.join(root, "tmp/help/h3/tags"), "wb") as f:
        f.write(b"stale\n")


def _tags(root: str) -> dict:
    out = {}
    top = os.path.join(root, "tmp/help")
    for d, _, names in os.walk(top):
        for n in names:
            if n.startswith("tags"):
                p = os.path.join(d, n)
                out[os.path.relpath(p, top)] = (oct(os.stat(p).st_mode), open(p, "rb").read())
    return out


@pytest.mark.parametrize("args", [["/tmp/help/h1"], ["/tmp/help/h1", "/nonexistent", "/tmp/help/h2", "/tmp/help/h3"],
                                  ["tmp/help/h2"], [], ["/etc/passwd"], ["/usr/share/vim/vim90/doc"]], ids=" ".join)
def test_helpztags_like_vim_common(tmp_path, real_root, args):
    subprocess.run(["rm", "-rf", os.path.join(real_root, "tmp/help")], check=True)
    _populate(real_root)
    model_root = str(tmp_path / "model")
    _populate(model_root)
    if "/usr/share/vim/vim90/doc" in args:  # the real help files, read by both
        subprocess.run(["cp", "-a", os.path.join(real_root, "usr/share/vim/vim90/doc"),
                        os.path.join(model_root, "tmp/vimdoc")], check=True)
        os.makedirs(os.path.join(model_root, "usr/share/vim/vim90"), exist_ok=True)
        os.symlink("/tmp/vimdoc", os.path.join(model_root, "usr/share/vim/vim90/doc"))
        before = open(os.path.join(real_root, "usr/share/vim/vim90/doc/tags"), "rb").read()
    p = subprocess.run(["chroot", real_root, "helpztags", *args], capture_output=True, timeout=60)
    got = runs.run_model(model_root, ["helpztags", *args], env={"PATH": "/usr/bin:/bin"})
    assert got == (p.returncode, p.stdout, p.stderr)
    assert _tags(model_root) == _tags(real_root)
    if "/usr/share/vim/vim90/doc" in args:
        real_tags = open(os.path.join(real_root, "usr/share/vim/vim90/doc/tags"), "rb").read()
        assert open(os.path.join(model_root, "tmp/vimdoc/tags"), "rb").read() == real_tags
        assert real_tags.count(b"\n") > 1000 and real_tags != b""  # the judge ran on Vim's own help
        assert before  # vim-runtime ships a tags file: rewritten
