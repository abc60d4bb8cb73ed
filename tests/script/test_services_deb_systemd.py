"""deb-systemd-helper and deb-systemd-invoke models against the real init-system-helpers
1.65 scripts run in a chroot of the bookworm service tree.

A case is a sequence of invocations (what a maintainer script does one after the other); every
step's stdout, stderr and status must agree, and afterwards the trees below ``etc/`` and
``var/lib/systemd`` must be identical (links, state files with their content and modes).
"""

from __future__ import annotations

import os
import shlex

import pytest

from debian_tree import bookworm_tree
from svcharness import ENV, SERVICES, Pair, outcome, run_chroot, snapshot

pytestmark = pytest.mark.judge

DPKG_ENV = dict(ENV, DPKG_MAINTSCRIPT_PACKAGE="foo", DPKG_MAINTSCRIPT_NAME="postinst")
L = "usr/lib/systemd/system"

#: extra unit files written into both roots (new names only, never over the tree's files)
UNITS = {
    f"{L}/qw.service": '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy="multi-user.target" getty.target\n',
    f"{L}/lc.service": "[Service]\n[install]\nwantedby=multi-user.target\nRequiredBy=getty.target\n",
    f"{L}/al.service": "[Install]\nAlias=al1.service al2.service\nAlias= al3.service\nWantedBy=multi-user.target\n",
    f"{L}/alq.service": "[Install]\nAlias='alq1.service'\nWantedBy=multi-user.target\n",
    f"{L}/di@.service": '[Install]\nWantedBy=multi-user.target getty.target\nDefaultInstance="one"\n',
    f"{L}/cy1.service": "[Install]\nWantedBy=multi-user.target\nAlso=cy2.service\n",
    f"{L}/cy2.service": "[Install]\nWantedBy=getty.target\n\n# odd line count\nAlso=cy1.service\n",
    f"{L}/cy3.service": "[Install]\nAlso=cy2.service\nWantedBy=multi-user.target\n",
    f"{L}/di2@.service": "[Install]\nWantedBy=multi-user.target\nRequiredBy=getty.target\nDefaultInstance=one\n",
    f"{L}/ch1.service": "[Install]\nWantedBy=multi-user.target\nAlso=ch2.service ch3.socket\n",
    f"{L}/ch2.service": "[Install]\nRequiredBy=multi-user.target\n",
    f"{L}/ch3.socket": "[Socket]\nListenStream=9\n[Install]\nWantedBy=sockets.target\n",
    f"{L}/stat.service": "[Service]\nExecStart=/bin/true\n",
    f"{L}/self.service": "[Install]\nWantedBy=multi-user.target\nAlias=self.service\n",
    "etc/systemd/system/etconly.service": "[Install]\nWantedBy=multi-user.target\n",
    "usr/lib/systemd/system-preset/40-test.preset": "disable qw.service\ndisable ch2.service\n",
}


def _setup(root: str) -> None:
    for rel, text in UNITS.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.lexists(p):
            os.unlink(p)  # never write through a hard link into the cached tree
        with open(p, "w") as f:
            f.write(text)


def _first_install(unit: str):
    """Forget deb-systemd-helper's state and links of ``unit`` (as before its first install)."""
    def setup(root: str) -> None:
        _setup(root)
        state = os.path.join(root, "var/lib/systemd/deb-systemd-helper-enabled")
        path = os.path.join(state, unit + ".dsh-also")
        if os.path.exists(path):
            for line in open(path).read().splitlines():
                for p in (os.path.join(root, line.lstrip("/")),
                          os.path.join(state, line.replace("/etc/systemd/system/", "", 1))):
                    if os.path.lexists(p):
                        os.unlink(p)
            os.unlink(path)
    return setup


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return Pair(str(tmp_path_factory.mktemp("dsh")), bookworm_tree(SERVICES), link=True)


# debhelper's postinst sequence (dh_installsystemd 13.11), then prerm/postrm ones
POSTINST = ["unmask {u}", "--quiet was-enabled {u}", "enable {u}", "update-state {u}"]
CASES = {
    "postinst-upgrade-cron": (None, [s.format(u="cron.service") for s in POSTINST]),
    "postinst-first-cron": (_first_install("cron.service"), [s.format(u="cron.service") for s in POSTINST]),
    "postinst-first-ssh": (_first_install("ssh.service"), [s.format(u="ssh.service") for s in POSTINST]
                           + ["enable ssh.socket", "is-enabled ssh.service ssh.socket"]),
    "postinst-first-rsyslog": (_first_install("rsyslog.service"),
                               [s.format(u="rsyslog.service") for s in POSTINST]),
    "remove-then-purge-cron": (None, ["mask cron.service", "disable cron.service", "purge cron.service",
                                      "unmask cron.service", "debian-installed cron.service"]),
    "purge-ssh": (None, ["purge ssh.service ssh.socket", "was-enabled ssh.service", "is-enabled ssh.service"]),
    "reenable-rsyslog": (None, ["reenable rsyslog.service", "is-enabled rsyslog.service"]),
    "user-disabled-then-upgrade": (None, ["is-enabled cron.service"]),
    "quoted-wantedby": (None, ["enable qw.service", "is-enabled qw.service", "update-state qw.service",
                               "disable qw.service"]),
    "quoted-wantedby-no-preset": (None, ["update-state qw.service", "enable qw.service", "purge qw.service"]),
    "lowercase-keys": (None, ["enable lc.service", "was-enabled lc.service", "purge lc.service"]),
    "aliases": (None, ["enable al.service", "enable alq.service", "is-enabled al.service alq.service",
                       "disable al.service alq.service"]),
    "default-instance": (None, ["enable di2@.service", "is-enabled di2@.service", "enable di2@two.service",
                                "purge di2@.service"]),
    "default-instance-quoted": (None, ["update-state di@.service", "is-enabled di@.service",
                                       "purge di@.service"]),
    "also-cycle": (None, ["enable cy1.service", "is-enabled cy2.service", "disable cy1.service",
                          "purge cy2.service", "enable cy3.service", "purge cy3.service"]),
    "also-chain": (None, ["enable ch1.service", "was-enabled ch1.service", "update-state ch1.service",
                          "disable ch1.service", "debian-installed ch1.service ch2.service"]),
    "static": (None, ["enable stat.service", "debian-installed stat.service", "is-enabled stat.service",
                      "was-enabled stat.service", "disable stat.service"]),
    "self-alias": (None, ["enable self.service", "purge self.service"]),
    "etc-only": (None, ["enable etconly.service", "mask etconly.service", "unmask etconly.service",
                        "purge etconly.service"]),
    "mask-unmask": (None, ["mask rsyslog.service", "is-enabled rsyslog.service", "mask rsyslog.service",
                           "unmask rsyslog.service", "unmask rsyslog.service"]),
    "user-units": (None, ["--user enable ssh-agent.service", "--user is-enabled ssh-agent.service",
                          "--user purge ssh-agent.service", "--user mask ssh-agent.service",
                          "--user unmask ssh-agent.service"]),
    "options-anywhere": (None, ["was-enabled --quiet cron.service", "is-enabled -q cron.service nonexist.service",
                                "is-enabled nonexist.service", "update-state nonexist.service",
                                "bogus-action cron.service"]),
    "usage": (None, [""]),
}


def _run_case(tree: Pair, steps: list[str], env: dict) -> None:
    for step in steps:
        argv = ["deb-systemd-helper", *shlex.split(step)]
        want = run_chroot(tree.real, argv, env)
        got = outcome(tree.model, argv, env)
        assert got == want, step
    assert snapshot(tree.model) == snapshot(tree.real), steps


@pytest.mark.parametrize("name", list(CASES))
def test_deb_systemd_helper(tree, name):
    setup, steps = CASES[name]
    tree.reset(setup or _setup)
    _run_case(tree, steps, DPKG_ENV)


def test_not_called_from_dpkg(tree):
    tree.reset(_setup)
    _run_case(tree, ["enable cron.service"], ENV)


def test_preset_failure(tree):
    """A failing ``systemctl preset``: the script dies with Perl's ``$!``, which is still the
    errno of its failed test for the state file."""
    tree.reset(_setup)
    _run_case(tree, ["enable nonexist.service", "enable di@.service"], DPKG_ENV)


@pytest.mark.parametrize("args", ["start cron.service", "restart cron.service ssh.service", "stop cron",
                                  "--user restart foo.service", "x"])
def test_deb_systemd_invoke_is_dropped_as_policy_rc_d_denies(tree, args):
    """With policy-rc.d exiting 101 the real script starts nothing and exits 0 (1 on bad usage)."""
    tree.reset(lambda root: _policy(root))
    argv = ["deb-systemd-invoke", *shlex.split(args)]
    want = run_chroot(tree.real, argv, DPKG_ENV)
    got = outcome(tree.model, argv, DPKG_ENV)
    if got[0] == "dropped":
        assert (got[1], want[0]) == (0, 0)
        assert want[2].strip() in got[2], (want, got)
    else:
        assert got == want


def _policy(root: str) -> None:
    p = os.path.join(root, "usr/sbin/policy-rc.d")
    if os.path.lexists(p):
        os.unlink(p)
    with open(p, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(p, 0o755)
