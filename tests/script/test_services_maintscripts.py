"""Whole maintainer scripts: real dash in a chroot of the bookworm service tree (policy-rc.d
exiting 101) against Nuwa's interpreter with the service models on an identical copy.

The scripts are the tree's own (e2fsprogs, rsyslog, util-linux, procps, openssh-server, cron)
plus a package "foo" whose scripts are cron's debhelper sections with the name replaced, so
that update-rc.d, invoke-rc.d, deb-systemd-helper and deb-systemd-invoke all run in one
sequence: install, upgrade, remove, purge. Exit status, stdout and the trees below ``etc/``
and ``var/lib/systemd`` must agree; stderr too, except the lines of commands Nuwa drops
(their messages are in the run record).
"""

from __future__ import annotations

import os
import re

import pytest

from debian_tree import bookworm_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import DROPPED
from nuwa.script.interp import dpkg_environment, run_script
from svcharness import SERVICES, Pair, run_chroot, snapshot

MODELS = default_models()

pytestmark = pytest.mark.judge

INFO = "var/lib/dpkg/info"
FOO_SERVICE = ("[Unit]\nDescription=foo daemon\n[Service]\nExecStart=/usr/sbin/foo\n[Install]\n"
               "WantedBy=multi-user.target\nAlias=foo-alias.service\n")
FOO_INIT = ("#!/bin/sh\n### BEGIN INIT INFO\n# Provides: foo\n# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n"
            "### END INIT INFO\nexit 0\n")


def _foo_scripts(tree: str) -> dict[str, str]:
    """cron's debhelper-generated sections, renamed to foo (dh_installinit + dh_installsystemd)."""
    out = {}
    for kind in ("postinst", "prerm", "postrm"):
        text = open(os.path.join(tree, INFO, f"cron.{kind}"), encoding="utf-8").read()
        sections = re.findall(r"# Automatically added by dh_install(?:init|systemd)/.*?# End automatically added "
                              r"section\n", text, re.S)
        out[kind] = "#!/bin/sh\nset -e\n" + "".join(sections).replace("cron", "foo")
    return out


def _setup_foo(scripts: dict[str, str]):
    def setup(root: str) -> None:
        _policy(root)
        for rel, text, mode in [("usr/lib/systemd/system/foo.service", FOO_SERVICE, 0o644),
                                ("etc/init.d/foo", FOO_INIT, 0o755)] + \
                               [(f"{INFO}/foo.{k}", v, 0o755) for k, v in scripts.items()]:
            p = os.path.join(root, rel)
            if os.path.lexists(p):
                os.unlink(p)
            with open(p, "w") as f:
                f.write(text)
            os.chmod(p, mode)
    return setup


def _policy(root: str) -> None:
    p = os.path.join(root, "usr/sbin/policy-rc.d")
    if os.path.lexists(p):
        os.unlink(p)
    with open(p, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(p, 0o755)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return Pair(str(tmp_path_factory.mktemp("maint")), bookworm_tree(SERVICES), link=True)


def _env(kind: str, pkg: str) -> dict[str, str]:
    return dpkg_environment(kind, pkg, "amd64")


def _run_both(tree: Pair, pkg: str, kind: str, args: list[str]) -> None:
    env = _env(kind, pkg)
    script = f"/{INFO}/{pkg}.{kind}"
    want = run_chroot(tree.real, [script, *args], dict(env))
    r = run_script(HostDirFS(tree.model, writable=True), script, args, env=env, name=script, models=MODELS)
    assert not r.deferred_whole, r.reason
    dropped = [e for e in r.record.entries if e.classification == DROPPED]
    want_err = "".join(line for line in want[2].splitlines(keepends=True)
                       if not (dropped and line.startswith(("invoke-rc.d:", "/usr/sbin/policy-rc.d returned"))))
    got = (r.status, r.stdout.decode(), r.stderr.decode())
    assert got == (want[0], want[1], want_err), (pkg, kind, args, want)
    if "invoke-rc.d:" in want[2]:
        assert any(e.argv[0] == "invoke-rc.d" for e in dropped), r.record.entries


def _same_trees(tree: Pair) -> None:
    assert snapshot(tree.model) == snapshot(tree.real)


SEQUENCES = {
    "foo-install-upgrade-remove-purge": [
        ("postinst", ["configure", ""]),
        ("postinst", ["configure", "1.0-1"]),
        ("prerm", ["remove"]),
        ("postrm", ["remove"]),
        ("postinst", ["configure", "1.0-1"]),
        ("prerm", ["remove"]),
        ("postrm", ["remove"]),
        ("postrm", ["purge"]),
    ],
    "foo-purge-without-remove": [("postinst", ["configure", ""]), ("postrm", ["purge"])],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_debhelper_sequences(tree, name):
    tree.reset(_setup_foo(_foo_scripts(tree.template)))
    for kind, args in SEQUENCES[name]:
        _run_both(tree, "foo", kind, args)
        _same_trees(tree)


REAL = [
    ("e2fsprogs", "postinst", ["configure", "1.47.0-2"]),
    ("e2fsprogs", "postinst", ["configure", ""]),
    ("e2fsprogs", "postrm", ["remove"]),
    ("e2fsprogs", "postrm", ["purge"]),
    ("rsyslog", "postinst", ["configure", "8.2302.0-1"]),
    ("rsyslog", "postrm", ["remove"]),
    ("rsyslog", "postrm", ["purge"]),
    ("util-linux", "postrm", ["purge"]),
    ("procps", "postrm", ["purge"]),
    ("openssh-server", "prerm", ["remove"]),
    ("cron", "prerm", ["remove"]),
    ("apt", "postrm", ["purge"]),
    ("dpkg", "postrm", ["purge"]),
]


@pytest.mark.parametrize("pkg,kind,args", REAL, ids=[f"{p}.{k} {' '.join(a)}" for p, k, a in REAL])
def test_real_maintainer_scripts(tree, pkg, kind, args):
    tree.reset(_policy)
    _run_both(tree, pkg, kind, args)
    _same_trees(tree)
