"""dpkg-maintscript-helper: the real helper (dpkg 1.21.22) with DPKG_ROOT against the model.

The model interprets the image's own helper script in the shell simulator, so the scratch
root carries that script, ``/usr/share/dpkg/sh`` and the programs it calls (their binaries are
only looked up by name: the command models run instead). Each case is one invocation the way
debhelper's snippets write it (``dpkg-maintscript-helper rm_conffile FILE VERSION -- "$@"``),
in one maintainer-script phase, on a conffile of a real package (adduser's /etc/adduser.conf).
"""

import hashlib
import os
import shlex
import shutil

import pytest

from debian_tree import bookworm_tree
from dpkghelpers import both, clone, make_scratch, require_dpkg

PROGRAMS = ("dpkg-maintscript-helper", "dpkg", "dpkg-query", "md5sum", "sed", "mv", "rm", "rmdir", "grep",
            "basename", "realpath", "find", "ln", "readlink", "mkdir", "cat", "xargs", "touch", "dirname")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    require_dpkg()
    tree = bookworm_tree()
    root = make_scratch(tree, str(tmp_path_factory.mktemp("mh") / "base"),
                        extra=tuple(f"usr/bin/{p}" for p in PROGRAMS) + ("usr/share/dpkg/sh", "etc/adduser.conf",
                                                                        "etc/deluser.conf"))
    os.symlink("usr/bin", os.path.join(root, "bin"))
    return root


def _env(script, pkg="adduser", arch="all"):
    return {"DPKG_MAINTSCRIPT_NAME": script, "DPKG_MAINTSCRIPT_PACKAGE": pkg, "DPKG_MAINTSCRIPT_ARCH": arch,
            "DPKG_RUNNING_VERSION": "1.21.22", "DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT": "1"}


def _modify(root):
    with open(os.path.join(root, "etc/adduser.conf"), "a") as f:
        f.write("# local change\n")


def _stage(root, name, data=b"old\n"):
    p = os.path.join(root, name.lstrip("/"))
    with open(p, "wb") as f:
        f.write(data)


RM = "dpkg-maintscript-helper rm_conffile /etc/adduser.conf 3.135~ -- "
MV = "dpkg-maintscript-helper mv_conffile /etc/adduser.conf /etc/adduser/adduser.conf 3.135~ -- "

CASES = [
    # (command, maintainer script, setup on both roots)
    (RM + "install", "preinst", None),
    (RM + "upgrade 3.134", "preinst", None),
    (RM + "upgrade 3.134", "preinst", _modify),
    (RM + "upgrade 3.136", "preinst", None),
    (RM + "configure 3.134", "postinst", lambda r: os.rename(os.path.join(r, "etc/adduser.conf"),
                                                              os.path.join(r, "etc/adduser.conf.dpkg-remove"))),
    (RM + "configure 3.134", "postinst", lambda r: os.rename(os.path.join(r, "etc/adduser.conf"),
                                                              os.path.join(r, "etc/adduser.conf.dpkg-backup"))),
    (RM + "configure ''", "postinst", None),
    (RM + "purge", "postrm", lambda r: _stage(r, "/etc/adduser.conf.dpkg-bak")),
    (RM + "abort-upgrade 3.134", "postrm", lambda r: os.rename(os.path.join(r, "etc/adduser.conf"),
                                                                os.path.join(r, "etc/adduser.conf.dpkg-remove"))),
    (RM + "remove", "prerm", None),
    ("dpkg-maintscript-helper rm_conffile /etc/adduser.conf -- upgrade 3.134", "preinst", None),
    ("dpkg-maintscript-helper rm_conffile /etc/adduser.conf 3.135~ adduser -- upgrade 3.134", "preinst", None),
    ("dpkg-maintscript-helper rm_conffile /etc/nonexistent.conf 3.135~ -- upgrade 3.134", "preinst", None),
    ("dpkg-maintscript-helper rm_conffile /etc/deluser.conf 3.135~ bash -- upgrade 3.134", "preinst", None),
    (MV + "upgrade 3.134", "preinst", None),
    (MV + "upgrade 3.134", "preinst", _modify),
    (MV + "configure 3.134", "postinst", lambda r: (os.makedirs(os.path.join(r, "etc/adduser")), os.rename(
        os.path.join(r, "etc/adduser.conf"), os.path.join(r, "etc/adduser.conf.dpkg-remove")))),
    (MV + "abort-install 3.134", "postrm", lambda r: os.rename(os.path.join(r, "etc/adduser.conf"),
                                                                os.path.join(r, "etc/adduser.conf.dpkg-remove"))),
    # usage and errors
    ("dpkg-maintscript-helper supports rm_conffile", "postinst", None),
    ("dpkg-maintscript-helper supports dir_to_symlink", "postinst", None),
    ("dpkg-maintscript-helper supports frobnicate", "postinst", None),
    ("dpkg-maintscript-helper rm_conffile /etc/adduser.conf 3.135~", "preinst", None),
    ("dpkg-maintscript-helper rm_conffile etc/adduser.conf 3.135~ -- upgrade 3.134", "preinst", None),
    ("dpkg-maintscript-helper rm_conffile /etc/adduser.conf 'bad version' -- upgrade 3.134", "preinst", None),
    ("dpkg-maintscript-helper rm_conffile /etc/adduser.conf 3.135~ --", "preinst", None),
    ("dpkg-maintscript-helper frobnicate", "preinst", None),
    ("dpkg-maintscript-helper", "preinst", None),
]


@pytest.mark.parametrize("cmd,script,setup", CASES, ids=[f"{c[1]}: {c[0]}" for c in CASES])
def test_maintscript_helper(base, tmp_path, cmd, script, setup):
    a, b = clone(base, str(tmp_path / "A")), clone(base, str(tmp_path / "B"))
    if setup:
        for r in (a, b):
            setup(r)
    both(a, b, shlex.split(cmd), env=_env(script), root_opt="env")


def test_supports_outside_a_script(base, tmp_path):
    a, b = clone(base, str(tmp_path / "A")), clone(base, str(tmp_path / "B"))
    both(a, b, ["dpkg-maintscript-helper", "supports", "mv_conffile"], root_opt="env")


def test_rm_conffile_lifecycle(base, tmp_path):
    """preinst upgrade then postinst configure, as dpkg runs them around an upgrade."""
    a, b = clone(base, str(tmp_path / "A")), clone(base, str(tmp_path / "B"))
    for r in (a, b):
        _modify(r)
    both(a, b, shlex.split(RM + "upgrade 3.134"), env=_env("preinst"), root_opt="env")
    both(a, b, shlex.split(RM + "configure 3.134"), env=_env("postinst"), root_opt="env")
    assert os.path.exists(os.path.join(b, "etc/adduser.conf.dpkg-bak"))
