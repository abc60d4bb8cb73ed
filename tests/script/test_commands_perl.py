"""The recognised Perl one-liners against the real perl 5.36 (see cmdharness; paths on stdin
are relative so the real perl acts inside the scratch tree)."""

from __future__ import annotations

import os

import pytest

from cmdharness import compare, deferred
from nuwa.script.commands.miscutils.perl_oneliners import DH_PYTHON3_PRERM

PY = "usr/lib/python3/dist-packages/pkg"


def _pycache(root: str) -> None:
    for d in (PY, PY + "/__pycache__", PY + "/sub/__pycache__", PY + "/empty"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for f in ("__init__.py", "mod.py", "Mod.py", "sub/x.py", "empty/y.py"):
        with open(os.path.join(root, PY, f), "w") as fh:
            fh.write("#")
    for f in ("__init__.cpython-311.pyc", "mod.cpython-311.pyc", "mod.cpython-311.opt-1.pyc", "Mod.cpython-39.pyc",
              "module.cpython-311.pyc", "other.pyc", ".mod.hidden", "sub/__pycache__/x.cpython-311.pyc"):
        p = os.path.join(root, PY, "__pycache__", f) if not f.startswith("sub/") else os.path.join(root, PY, f)
        with open(p, "w") as fh:
            fh.write("c")


LISTING = "\n".join(["/.", "usr", PY, PY + "/__init__.py", PY + "/mod.py", PY + "/Mod.py", PY + "/sub/x.py",
                     PY + "/empty/y.py", PY + "/missing.py", PY + "/notpy.pyx", "usr/share/doc/README.py.txt"]) + "\n"


@pytest.mark.parametrize("stdin", [LISTING.encode(), LISTING.encode().rstrip(b"\n"), b"", b"no slash.py\n"])
def test_dh_python3_prerm(tmp_path, stdin):
    compare(tmp_path, ["perl", "-ne", DH_PYTHON3_PRERM], stdin=stdin, setup=_pycache)


def test_perl_e_empty(tmp_path):
    compare(tmp_path, ["perl", "-e", ""])


def test_ucf_one_liner_still_answered(tmp_path):
    compare(tmp_path, ["perl", "-nle", 'print "\\Q$_\\E\\n"'], stdin=b"a.b\n/etc/x+y\n")


def test_other_perl_defers(tmp_path):
    assert "not simulated" in deferred(tmp_path, "perl -e 'print 1'")
    assert "not simulated" in deferred(tmp_path / "b", "perl -ne 'print'")


def test_dh_python3_prerm_defers_on_glob_syntax(tmp_path):
    from cmdharness import build_tree, run_model
    from nuwa.script.context import Defer
    root = str(tmp_path / "t")
    build_tree(root)
    _pycache(root)
    for line in (PY + "/a b.py\n", PY + "/{x,y}.py\n", PY + "/[ab].py\n", PY + "/.py\n"):
        with pytest.raises(Defer):
            run_model(root, ["perl", "-ne", DH_PYTHON3_PRERM], line.encode(), 0o022)
    os.makedirs(os.path.join(root, PY, "__pycache__", "mod.dir"))
    with pytest.raises(Defer):
        run_model(root, ["perl", "-ne", DH_PYTHON3_PRERM], (PY + "/mod.py\n").encode(), 0o022)
    assert os.path.exists(os.path.join(root, PY, "__pycache__", "mod.cpython-311.pyc"))  # nothing removed
