"""``dbus-uuidgen`` against dbus 1.14.10's real one in a chroot of a bookworm tree with dbus:
the same ID files in, the same files, output and status out. New random IDs are compared by
form (32 lower-case hex digits); the model never writes one into the image (dropped or deferred)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree
from helpers import runs
from nuwa.script.context import Defer, Drop

pytestmark = [pytest.mark.judge, pytest.mark.root]

ID = "0123456789abcdef0123456789abcdef"
#: (name, /var/lib/dbus/machine-id or None, /etc/machine-id or None)
STATES = [
    ("etc only", None, ID + "\n"),
    ("etc upper case, spaced", None, "  " + ID.upper() + "  \n"),
    ("both", "fedcba9876543210fedcba9876543210\n", ID + "\n"),
    ("dbus junk, etc ok", "junk\n", ID + "\n"),
    ("a symlink to etc", "->/etc/machine-id", ID + "\n"),
    ("odd last digit", None, ID[:-1] + "g"),
    ("15 bytes", None, ID[:-2] + "g0"),
    ("no hex", None, "g" + ID[1:]),
    ("too long", None, ID + " extra\n"),
]
ARGVS = [["--get"], ["--get=/var/lib/dbus/machine-id"], ["--get=/etc/machine-id"], ["--get="], ["--ensure"],
         ["--get", "--ensure"], ["--bogus"], ["-h"], ["--help"], ["--version"], ["--get=/nonexistent"],
         ["--ensure=/etc/machine-id"], ["a", "b"]]


@pytest.fixture(scope="module")
def tree():
    return bookworm_tree(("dbus",))


@pytest.fixture(scope="module")
def real_root(tree, tmp_path_factory):
    """One copy of the tree per test process: each case rewrites its two ID files."""
    root = str(tmp_path_factory.mktemp("dbus") / "root")
    copy_tree(tree, root)
    return root


def _setup(root: str, dbus_id, etc_id) -> None:
    os.makedirs(f"{root}/var/lib/dbus", exist_ok=True)
    for path, value in ((f"{root}/var/lib/dbus/machine-id", dbus_id), (f"{root}/etc/machine-id", etc_id)):
        if os.path.lexists(path):
            os.unlink(path)
        if value is None:
            continue
        if value.startswith("->"):
            os.symlink(value[2:], path)
        else:
            with open(path, "w") as f:
                f.write(value)


def _files(root: str) -> dict:
    out = {}
    for p in ("var/lib/dbus/machine-id", "etc/machine-id"):
        full = os.path.join(root, p)
        if os.path.islink(full):
            out[p] = ("link", os.readlink(full))
        elif os.path.exists(full):
            st = os.stat(full)
            out[p] = (oct(st.st_mode), open(full, "rb").read())
    return out


@pytest.mark.parametrize("state", STATES, ids=[s[0] for s in STATES])
@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_dbus_uuidgen_like_dbus_1_14(tmp_path, real_root, state, argv):
    _, dbus_id, etc_id = state
    model_root = str(tmp_path / "model")
    os.makedirs(model_root + "/etc")
    for root in (real_root, model_root):
        _setup(root, dbus_id, etc_id)
    p = subprocess.run(["chroot", real_root, "dbus-uuidgen", *argv], capture_output=True, timeout=30)
    real = (p.returncode, p.stdout, p.stderr)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    before = _files(model_root)
    try:
        got = runs.run_model(model_root, ["dbus-uuidgen", *argv], env=env)
    except (Drop, Defer) as e:
        # only where the real program made up a new ID: the image keeps what it had
        assert _files(model_root) == before
        assert real[0] == 0 and _files(real_root) != before, e
        new = _files(real_root).get("var/lib/dbus/machine-id", (0, b""))[1]
        assert re.fullmatch(rb"[0-9a-f]{32}\n", new) and new != (etc_id or "").encode()
        return
    assert got == real
    assert _files(model_root) == _files(real_root)


def test_a_new_id_is_printed_in_dbus_form(tmp_path, tree):
    got = runs.run_model(str(tmp_path), ["dbus-uuidgen"], env={})
    assert got[0] == 0 and re.fullmatch(rb"[0-9a-f]{32}\n", got[1]) and got[2] == b""
    real = subprocess.run(["chroot", tree, "dbus-uuidgen"], capture_output=True, timeout=30)
    assert real.returncode == 0 and re.fullmatch(rb"[0-9a-f]{32}\n", real.stdout)
    assert got[1][-9:-1] == real.stdout[-9:-1] or abs(int(got[1][-9:-1], 16) - int(real.stdout[-9:-1], 16)) < 60
