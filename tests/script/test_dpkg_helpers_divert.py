"""dpkg-divert and dpkg-statoverride against the real programs of dpkg 1.21.22.

Each case starts from two copies of one scratch root (a bookworm database, its passwd and
group, and a few files to divert or override); the real program runs with ``--root`` on
copy A, the model on copy B as the image root. Output, status and the two trees (the admin
files included) must be identical.
"""

import os
import shlex

import pytest

from debian_tree import bookworm_tree
from dpkghelpers import both, clone, make_scratch, require_dpkg


def _files(root):
    def w(rel, data=b"x\n", mode=0o755):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)

    os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
    os.symlink("usr/bin", os.path.join(root, "bin"))
    w("usr/bin/dash", b"dash binary\n")
    os.symlink("dash", os.path.join(root, "usr/bin/sh"))
    w("usr/bin/ls", b"ls binary\n")
    w("usr/bin/x", b"x binary\n")
    w("usr/bin/y", b"y new\n")
    w("usr/bin/y.real", b"y old\n")
    w("usr/bin/z", b"z\n")
    os.link(os.path.join(root, "usr/bin/z"), os.path.join(root, "usr/bin/z.real"))
    w("etc/foo.conf", b"a=1\n", 0o644)
    os.makedirs(os.path.join(root, "usr/share/man/man1"))
    os.symlink("dash.1.gz", os.path.join(root, "usr/share/man/man1/sh.1.gz"))
    w("var/lib/app/data", b"d\n", 0o640)
    os.chown(os.path.join(root, "var/lib/app/data"), 0, 0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    require_dpkg()
    root = str(tmp_path_factory.mktemp("dv") / "base")
    make_scratch(bookworm_tree(), root)
    _files(root)
    return root


@pytest.fixture
def ab(base, tmp_path):
    return clone(base, str(tmp_path / "A")), clone(base, str(tmp_path / "B"))


def _run(ab, cmd, env=None, setup=()):
    a, b = ab
    for s in setup:  # earlier steps, run the same way on both sides
        both(a, b, shlex.split(s), env=env)
    return both(a, b, shlex.split(cmd), env=env)


PKG = {"DPKG_MAINTSCRIPT_PACKAGE": "foo", "DPKG_MAINTSCRIPT_NAME": "preinst", "DPKG_MAINTSCRIPT_ARCH": "amd64"}

DIVERT = [
    # (command, env, setup)
    ("dpkg-divert --package foo --rename --divert /usr/bin/x.real --add /usr/bin/x", None, ()),
    ("dpkg-divert --package foo --rename --divert /usr/bin/nofile.real --add /usr/bin/nofile", None, ()),
    ("dpkg-divert --package foo --no-rename --divert /usr/bin/x.real --add /usr/bin/x", None, ()),
    ("dpkg-divert --add /usr/bin/x", None, ()),
    ("dpkg-divert --local --rename --add /usr/bin/x", None, ()),
    ("dpkg-divert --add /usr/bin/x", PKG, ()),
    ("dpkg-divert --rename --add /etc/foo.conf", PKG, ()),
    ("dpkg-divert --quiet --package foo --rename --add /usr/bin/x", None, ()),
    ("dpkg-divert --test --package foo --rename --add /usr/bin/x", None, ()),
    ("dpkg-divert --package foo --rename --divert /usr/bin/y.real --add /usr/bin/y", None, ()),
    ("dpkg-divert --package foo --rename --divert /usr/bin/z.real --add /usr/bin/z", None, ()),
    ("dpkg-divert --package foo --rename --add /usr/bin/ls", None, ()),
    ("dpkg-divert --package coreutils --rename --divert /usr/bin/ls.real --add /usr/bin/ls", None, ()),
    ("dpkg-divert --package Foo --no-rename --add /usr/bin/x", None, ()),
    ("dpkg-divert --package foo --no-rename --add //usr/./bin/x", None, ()),
    # clashes, leaving, errors
    ("dpkg-divert --package foo --no-rename --add /bin/sh", None, ()),
    ("dpkg-divert --package dash --no-rename --divert /bin/sh.distrib --add /bin/sh", None, ()),
    ("dpkg-divert --package foo --no-rename --divert /bin/sh.distrib --add /usr/bin/x", None, ()),
    ("dpkg-divert --package foo --no-rename --add /usr/bin/x",
     None, ("dpkg-divert --package foo --no-rename --add /usr/bin/x",)),
    ("dpkg-divert --package bar --no-rename --add /usr/bin/x",
     None, ("dpkg-divert --package foo --no-rename --add /usr/bin/x",)),
    ("dpkg-divert --no-rename --add usr/bin/x", None, ()),
    ("dpkg-divert --no-rename --divert x.real --add /usr/bin/x", None, ()),
    ("dpkg-divert --no-rename --add /usr/bin", None, ()),
    ("dpkg-divert --no-rename --divert /usr/bin/x --add /usr/bin/x", None, ()),
    ("dpkg-divert --no-rename --add", None, ()),
    ("dpkg-divert --no-rename --add /a /b", None, ()),
    ("dpkg-divert --bogus", None, ()),
    ("dpkg-divert --package", None, ()),
    ("dpkg-divert --list --remove /x", None, ()),
    ("dpkg-divert /usr/bin/x", None, ()),
    # removing
    ("dpkg-divert --package dash --no-rename --divert /bin/sh.distrib --remove /bin/sh", None, ()),
    ("dpkg-divert --package dash --rename --remove /usr/share/man/man1/sh.1.gz", None, ()),
    ("dpkg-divert --no-rename --remove /bin/sh", None, ()),
    ("dpkg-divert --package foo --no-rename --remove /bin/sh", None, ()),
    ("dpkg-divert --local --no-rename --remove /bin/sh", None, ()),
    ("dpkg-divert --no-rename --divert /bin/sh.other --remove /bin/sh", None, ()),
    ("dpkg-divert --no-rename --remove /usr/bin/none", None, ()),
    ("dpkg-divert --package foo --no-rename --remove /usr/bin/none", PKG, ()),
    ("dpkg-divert --remove /usr/bin/x", PKG, ("dpkg-divert --rename --add /usr/bin/x",)),
    ("dpkg-divert --package foo --rename --divert /usr/bin/x.real --remove /usr/bin/x", None,
     ("dpkg-divert --package foo --rename --divert /usr/bin/x.real --add /usr/bin/x",)),
    ("dpkg-divert --test --package foo --rename --remove /usr/bin/x", None,
     ("dpkg-divert --package foo --rename --add /usr/bin/x",)),
    ("dpkg-divert --package libc6 --no-rename --remove /usr/bin/ls", {"DPKG_MAINTSCRIPT_ARCH": "i386"},
     ("dpkg-divert --package libc6 --no-rename --add /usr/bin/ls",)),
    ("dpkg-divert --package coreutils --no-rename --remove /usr/bin/ls", {"DPKG_MAINTSCRIPT_ARCH": "i386"},
     ("dpkg-divert --package coreutils --no-rename --add /usr/bin/ls",)),
    # queries
    ("dpkg-divert --list", None, ()),
    ("dpkg-divert --list '*sh*'", None, ()),
    ("dpkg-divert --list dash", None, ()),
    ("dpkg-divert --list ':'", None, ("dpkg-divert --local --no-rename --add /usr/bin/x",)),
    ("dpkg-divert --list nomatch '/usr/share/*'", None, ()),
    ("dpkg-divert --truename /bin/sh", None, ()),
    ("dpkg-divert --truename /bin/sh.distrib", None, ()),
    ("dpkg-divert --truename /usr/bin/none", None, ()),
    ("dpkg-divert --truename rel", None, ()),
    ("dpkg-divert --listpackage /bin/sh", None, ()),
    ("dpkg-divert --listpackage /bin/sh.distrib", None, ()),
    ("dpkg-divert --listpackage /usr/bin/none", None, ()),
    ("dpkg-divert --listpackage /usr/bin/x", None, ("dpkg-divert --local --no-rename --add /usr/bin/x",)),
    ("dpkg-divert --listpackage", None, ()),
]


@pytest.mark.parametrize("cmd,env,setup", DIVERT, ids=[c[0] + (" [env]" if c[1] else "") for c in DIVERT])
def test_divert(ab, cmd, env, setup):
    _run(ab, cmd, env, setup)


def test_divert_sequence(ab):
    """A maintainer script's life: preinst adds with rename, postrm removes, in several packages."""
    steps = [
        "dpkg-divert --package foo --rename --divert /usr/bin/x.real --add /usr/bin/x",
        "dpkg-divert --package bar --rename --add /usr/bin/ls",
        "dpkg-divert --package baz --no-rename --divert /etc/foo.conf.orig --add /etc/foo.conf",
        "dpkg-divert --local --no-rename --add /usr/bin/zz",
        "dpkg-divert --list",
        "dpkg-divert --package bar --rename --remove /usr/bin/ls",
        "dpkg-divert --package foo --rename --divert /usr/bin/x.real --remove /usr/bin/x",
        "dpkg-divert --list",
    ]
    for s in steps:
        both(*ab, shlex.split(s))


# dpkg-statoverride resolves names with getpwnam/getgrnam: with --root the real program asks
# the host's databases, the model the image's. Cases use names both agree on (root, daemon,
# bin, sys, adm, mail, www-data, nogroup) and #ids.
STATOVERRIDE = [
    ("dpkg-statoverride --add root root 0755 /usr/bin/x", ()),
    ("dpkg-statoverride --update --add www-data adm 0750 /var/lib/app/data", ()),
    ("dpkg-statoverride --update --add daemon mail 4711 /usr/bin/x", ()),
    ("dpkg-statoverride --update --add root root 0755 /usr/bin/none", ()),
    ("dpkg-statoverride --quiet --update --add root root 0755 /usr/bin/none", ()),
    ("dpkg-statoverride --update --add root sys 2755 /usr/bin/sh", ()),
    ("dpkg-statoverride --add '#1234' '#4321' 644 /etc/foo.conf", ()),
    ("dpkg-statoverride --add root root 0755 /var/lib/app/", ()),
    ("dpkg-statoverride --add root root 0755 /var/lib/app/.", ()),
    ("dpkg-statoverride --add root root 0644 /usr/bin/x", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --force-statoverride-add --add root root 0644 /usr/bin/x",
     ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --force-all --add root root 0644 /usr/bin/x", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --force --add root root 0644 /usr/bin/x", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --add nosuchuser root 0644 /usr/bin/x", ()),
    ("dpkg-statoverride --add root nosuchgroup 0644 /usr/bin/x", ()),
    ("dpkg-statoverride --add '#x' root 0644 /usr/bin/x", ()),
    ("dpkg-statoverride --add root '#-1' 0644 /usr/bin/x", ()),
    ("dpkg-statoverride --add root root 8000 /usr/bin/x", ()),
    ("dpkg-statoverride --add root root 17777 /usr/bin/x", ()),
    ("dpkg-statoverride --add root root u+x /usr/bin/x", ()),
    ("dpkg-statoverride --add root root 0644", ()),
    ("dpkg-statoverride --add root root 0644 /a /b", ()),
    ("dpkg-statoverride --remove /usr/bin/x", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --update --remove /usr/bin/x", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --remove /usr/bin/x", ()),
    ("dpkg-statoverride --quiet --remove /usr/bin/x", ()),
    ("dpkg-statoverride --force-statoverride-remove --remove /usr/bin/x", ()),
    ("dpkg-statoverride --remove", ()),
    ("dpkg-statoverride --list", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",
                                  "dpkg-statoverride --add root mail 2750 /var/lib/app/data",
                                  "dpkg-statoverride --add '#77' '#88' 0600 /etc/foo.conf")),
    ("dpkg-statoverride --list '/usr/*' /etc/foo.conf/", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",
                                                          "dpkg-statoverride --add '#77' '#88' 0600 /etc/foo.conf")),
    ("dpkg-statoverride --list /nomatch", ("dpkg-statoverride --add bin bin 0755 /usr/bin/x",)),
    ("dpkg-statoverride --list", ()),
    ("dpkg-statoverride", ()),
    ("dpkg-statoverride --force-bogus --list", ()),
    ("dpkg-statoverride --add --remove", ()),
]


@pytest.mark.parametrize("cmd,setup", STATOVERRIDE, ids=[c[0] for c in STATOVERRIDE])
def test_statoverride(ab, cmd, setup):
    _run(ab, cmd, None, setup)


def test_statoverride_keeps_unknown_names(ab):
    """An entry whose user no longer exists is kept as written (read leniently) on rewrite."""
    for root in ab:
        with open(os.path.join(root, "var/lib/dpkg/statoverride"), "w") as f:
            f.write("gone-user gone-group 755 /usr/bin/z\n")
    _run(ab, "dpkg-statoverride --add root root 0600 /etc/foo.conf")
    _run(ab, "dpkg-statoverride --list")
