"""``rndc-confgen`` against BIND 9.18's real one in a chroot of a bookworm tree with bind9: the
key file's form, mode, owner and group (a setgid /etc/bind), the output and status, for each
form of the command line. The secret is random on both sides: it is compared by length and
alphabet, everything else byte for byte."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree
from helpers import runs

pytestmark = [pytest.mark.judge, pytest.mark.root]

SECRET = re.compile(rb'secret "([A-Za-z0-9+/=]*)"')
CASES = [["-a"], ["-a", "-A", "hmac-sha512"], ["-a", "-A", "HMAC-SHA1"], ["-a", "-A", "hmac-md5"], ["-a", "-b", "7"],
         ["-a", "-b", "512"], ["-a", "-b0"], ["-a", "-b", "513"], ["-a", "-b", "x"], ["-a", "-A", "bogus"],
         ["-a", "-A", "hmac-sha224", "-b", "100"], ["-a", "-k", "a b"], ["-a", "-c", "/tmp/k.key"],
         ["-ac", "/tmp/k.key"], ["-a", "-c", "k2.key"], ["-a", "-c", "/nonexistent/k"], ["-a", "-c", "/tmp"],
         ["-a", "-u", "bind", "-c", "/tmp/u.key"], ["-a", "-u", "nosuch", "-c", "/tmp/n.key"], ["-a", "-q"], ["-x"],
         ["-a", "extra"], ["-c", "/tmp/x.key"], ["-k", "other"], ["-a", "-c", "/tmp/old.key"], ["-a", "-c"],
         ["-a", "-c", "/tmp/link.key"]]


PATHS = ("etc/bind/rndc.key", "tmp/k.key", "k2.key", "tmp/u.key", "tmp/n.key", "tmp/x.key", "tmp/old.key",
         "tmp/link.key")


@pytest.fixture(scope="module")
def tree():
    return bookworm_tree(("bind9",))


@pytest.fixture(scope="module")
def real_root(tree, tmp_path_factory):
    """One copy of the tree per test process; each case resets the files it looks at."""
    root = str(tmp_path_factory.mktemp("bind") / "root")
    copy_tree(tree, root)
    return root


def _prepare(root: str) -> None:
    for p in PATHS:
        if os.path.lexists(f"{root}/{p}"):
            os.unlink(f"{root}/{p}")
    with open(f"{root}/tmp/old.key", "w") as f:
        f.write("old\n")
    os.chmod(f"{root}/tmp/old.key", 0o644)
    os.chown(f"{root}/tmp/old.key", 5, 5)
    os.symlink("old.key", f"{root}/tmp/link.key")


def _state(root: str) -> dict:
    out = {}
    for p in PATHS:
        full = os.path.join(root, p)
        if os.path.islink(full):
            out[p] = ("link", os.readlink(full))
        elif os.path.exists(full):
            st = os.stat(full)
            data = open(full, "rb").read()
            m = SECRET.search(data)
            secret_len = len(m.group(1)) if m else None
            out[p] = (oct(st.st_mode), st.st_uid, st.st_gid, SECRET.sub(b'secret "S"', data), secret_len)
    return out


@pytest.mark.parametrize("argv", CASES, ids=" ".join)
def test_rndc_confgen_like_bind_9_18(tmp_path, tree, real_root, argv):
    _prepare(real_root)
    model_root = str(tmp_path / "model")
    os.makedirs(model_root)
    subprocess.run(["cp", "-a", f"{tree}/etc", f"{model_root}/etc"], check=True)
    os.makedirs(f"{model_root}/tmp")
    os.chmod(f"{model_root}/tmp", 0o1777)
    _prepare(model_root)
    p = subprocess.run(["chroot", real_root, "rndc-confgen", *argv], capture_output=True, timeout=30)
    got = runs.run_model(model_root, ["rndc-confgen", *argv], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    norm = lambda b: SECRET.sub(lambda m: b'secret "%d"' % len(m.group(1)), b)  # noqa: E731
    assert (got[0], norm(got[1]), got[2]) == (p.returncode, norm(p.stdout), p.stderr)
    assert _state(model_root) == _state(real_root)
