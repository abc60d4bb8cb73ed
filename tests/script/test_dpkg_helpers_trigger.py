"""dpkg-trigger against the real program of dpkg 1.21.22 (DPKG_ROOT/DPKG_ADMINDIR or --root).

The scratch root holds the bookworm database; ``triggers/Unincorp`` is set up per case.
"""

import os
import shlex

import pytest

from debian_tree import bookworm_tree
from cmdharness import snapshot
from dpkghelpers import both, clone, make_scratch, require_dpkg, run_model, run_real


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    require_dpkg()
    return make_scratch(bookworm_tree(), str(tmp_path_factory.mktemp("dt") / "base"))


def _prep(root, unincorp):
    p = os.path.join(root, "var/lib/dpkg/triggers/Unincorp")
    if unincorp is None:
        if os.path.exists(p):
            os.unlink(p)
    elif unincorp == "NODIR":
        import shutil
        shutil.rmtree(os.path.join(root, "var/lib/dpkg/triggers"))
    else:
        with open(p, "w") as f:
            f.write(unincorp)


SCRIPT = {"DPKG_MAINTSCRIPT_PACKAGE": "libc-bin", "DPKG_MAINTSCRIPT_ARCH": "amd64",
          "DPKG_MAINTSCRIPT_NAME": "postinst"}
LIBC6 = {"DPKG_MAINTSCRIPT_PACKAGE": "libc6", "DPKG_MAINTSCRIPT_ARCH": "amd64", "DPKG_MAINTSCRIPT_NAME": "postinst"}
EXISTING = "ldconfig libc6:amd64 -\nfontconfig foo\n# comment\n\nmandb - man-db libc6:amd64\nldconfig bar libc-bin\n"

CASES = [
    ("dpkg-trigger --no-await ldconfig", SCRIPT, ""),
    ("dpkg-trigger ldconfig", SCRIPT, ""),
    ("dpkg-trigger ldconfig", LIBC6, ""),
    ("dpkg-trigger ldconfig", LIBC6, EXISTING),
    ("dpkg-trigger ldconfig", SCRIPT, EXISTING),
    ("dpkg-trigger --no-await ldconfig", SCRIPT, EXISTING),
    ("dpkg-trigger --no-await /usr/share/man", SCRIPT, EXISTING),
    ("dpkg-trigger --await newtrig", SCRIPT, EXISTING),
    ("dpkg-trigger --by-package foo mytrig", None, ""),
    ("dpkg-trigger --by-package=libc6 mytrig", None, "mytrig x\n"),
    ("dpkg-trigger -f libc6:amd64 mytrig", None, ""),
    ("dpkg-trigger --by-package - mytrig", None, ""),
    ("dpkg-trigger --by-package 'Bad!' mytrig", None, ""),
    ("dpkg-trigger --by-package 'foo:' mytrig", None, ""),
    ("dpkg-trigger mytrig", None, ""),
    ("dpkg-trigger --no-await mytrig", None, ""),
    ("dpkg-trigger --no-act ldconfig", SCRIPT, None),
    ("dpkg-trigger ldconfig", SCRIPT, None),
    ("dpkg-trigger ldconfig", SCRIPT, "NODIR"),
    ("dpkg-trigger 'bad name'", SCRIPT, ""),
    ("dpkg-trigger ''", SCRIPT, ""),
    ("dpkg-trigger a b", SCRIPT, ""),
    ("dpkg-trigger", SCRIPT, ""),
    ("dpkg-trigger --check-supported", None, ""),
    ("dpkg-trigger --check-supported", None, None),
    ("dpkg-trigger --check-supported", None, "NODIR"),
    ("dpkg-trigger --check-supported x", None, ""),
    ("dpkg-trigger --bogus x", None, ""),
]


@pytest.mark.parametrize("cmd,env,unincorp", CASES, ids=[f"{c[0]} [{i}]" for i, c in enumerate(CASES)])
def test_trigger(base, tmp_path, cmd, env, unincorp):
    a, b = clone(base, str(tmp_path / "A")), clone(base, str(tmp_path / "B"))
    for r in (a, b):
        _prep(r, unincorp)
    both(a, b, shlex.split(cmd), env=env, root_opt="env")
    both(a, b, shlex.split(cmd), env=env, root_opt="env")  # again: an already recorded activation


def test_no_act_divergence(base, tmp_path):
    """Known divergence: dpkg 1.21.22's ``--no-act`` with an existing Unincorp crashes (it
    prints into a file it never opened); the model records nothing and succeeds."""
    a, b = clone(base, str(tmp_path / "A")), clone(base, str(tmp_path / "B"))
    for r in (a, b):
        _prep(r, EXISTING)
    want = run_real(a, ["dpkg-trigger", "--no-act", "ldconfig"], SCRIPT, "env")
    got = run_model(b, ["dpkg-trigger", "--no-act", "ldconfig"], SCRIPT)
    assert want[0] in (-11, 139) and got == (0, b"", b"")
    assert snapshot(a) == snapshot(b)
