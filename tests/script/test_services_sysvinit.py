"""update-rc.d (modelled), invoke-rc.d, service, start-stop-daemon, runlevel (dropped or
answered as offline) against the real init-system-helpers 1.65 / dpkg / systemd programs in a
chroot of the bookworm service tree with ``/usr/sbin/policy-rc.d`` exiting 101.

Nothing here lets a real program start a service: policy-rc.d denies, and the cases only
query or stop things that are not running.
"""

from __future__ import annotations

import os
import shlex

import pytest

from debian_tree import bookworm_tree
from svcharness import ENV, SERVICES, Pair, outcome, run_chroot, snapshot

pytestmark = pytest.mark.judge

DPKG_ENV = dict(ENV, DPKG_MAINTSCRIPT_PACKAGE="foo", DPKG_MAINTSCRIPT_NAME="postinst")
LSB = "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: {n}\n# Default-Start: {start}\n# Default-Stop: {stop}\n" \
      "### END INIT INFO\nexit 0\n"
SCRIPTS = {
    "foo": LSB.format(n="foo", start=" 2 3 4 5", stop="0 1 6"),
    "early": LSB.format(n="early", start="S", stop=""),
    "nostop": LSB.format(n="nostop", start="2 3 4 5", stop=""),
    "nostart": LSB.format(n="nostart", start="", stop="0 6"),
    "noheader": "#!/bin/sh\nexit 0\n",
    "twice": "#!/bin/sh\n### BEGIN INIT INFO\n# Default-Start: 2\n# Default-Start: 3 5\n# Default-Stop:\t1\n"
             "### END INIT INFO\n# Default-Start: 4\n",
    "crlf": "#!/bin/sh\r\n### BEGIN INIT INFO\r\n# Default-Start: 2 3\r\n### END INIT INFO\r\n",
}


def _setup(root: str) -> None:
    for name, text in SCRIPTS.items():
        p = os.path.join(root, "etc/init.d", name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)
    with open(os.path.join(root, "etc/init.d/noexec"), "w") as f:
        f.write(SCRIPTS["foo"])
    p = os.path.join(root, "usr/sbin/policy-rc.d")
    if os.path.lexists(p):
        os.unlink(p)
    with open(p, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(p, 0o755)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return Pair(str(tmp_path_factory.mktemp("sysv")), bookworm_tree(SERVICES), link=True)


def _run(tree: Pair, prog: str, steps: list[str], env=DPKG_ENV) -> None:
    tree.reset(_setup)
    for step in steps:
        argv = [prog, *shlex.split(step)]
        want = run_chroot(tree.real, argv, env)
        got = outcome(tree.model, argv, env)
        assert got == want, step
    assert snapshot(tree.model, ("etc",)) == snapshot(tree.real, ("etc",)), steps


UPDATE_RC_D = {
    "defaults": ["foo defaults", "foo defaults"],
    "defaults-disabled": ["foo defaults-disabled", "foo enable", "foo disable 3"],
    "remove": ["foo defaults", "foo remove", "foo remove"],
    "remove-existing": ["cron remove", "ssh remove"],
    "toggle": ["foo defaults", "foo disable", "foo enable 2", "foo disable 1 2 S", "foo enable"],
    "toggle-native": ["cron disable", "cron enable", "ssh disable 2 3"],
    "toggle-errors": ["foo enable", "nostart defaults", "nostart enable", "nonexist disable"],
    "levels": ["early defaults", "nostop defaults", "nostart defaults", "twice defaults", "crlf defaults"],
    "noheader": ["noheader defaults", "noheader enable"],
    "legacy-start-stop": ["foo start 20 2 3 4 5 . stop 80 0 1 6 .", "foo remove",
                          "foo defaults 20 80", "foo start 20 2 3 . stop 20 0 1 4 5 6 ."],
    "missing-script": ["nonexist defaults", "nonexist remove", "nonexist defaults-disabled"],
    "usage": ["-x foo defaults", "foo", "foo bogus", "-f foo defaults", "--help", ""],
}


@pytest.mark.parametrize("name", list(UPDATE_RC_D))
def test_update_rc_d(tree, name):
    _run(tree, "update-rc.d", UPDATE_RC_D[name])


def test_update_rc_d_skip_native(tree):
    _run(tree, "update-rc.d", ["cron disable", "cron enable"], dict(DPKG_ENV, _SKIP_SYSTEMD_NATIVE="1"))


INVOKE = ["cron start", "cron restart", "cron stop", "cron status", "cron reload", "--quiet cron start",
          "--disclose-deny cron start", "--query cron start", "--skip-systemd-native cron start",
          "nonexist start", "nonexist status", "--query nonexist start", "noexec start", "--disclose-deny noexec stop",
          "cron", "", "--bogus cron start", "--help", "'a b' start", "foo 'st art'"]


@pytest.mark.parametrize("case", INVOKE)
def test_invoke_rc_d(tree, case):
    """Denied actions are dropped with the exit status the real invoke-rc.d gives a script
    (its messages are in the drop reason); argument errors are printed exactly."""
    tree.reset(_setup)
    argv = ["invoke-rc.d", *shlex.split(case)]
    want = run_chroot(tree.real, argv, DPKG_ENV)
    got = outcome(tree.model, argv, DPKG_ENV)
    if got[0] == "dropped":
        assert got[1] == want[0], (case, want)
        assert "policy-rc.d denied execution" in want[2] or want[2] == "", want
    else:
        assert got == want, case


OTHERS = [
    ("start-stop-daemon", "--stop --quiet --pidfile /run/nonexist.pid"),
    ("start-stop-daemon", "--stop --quiet --oknodo --pidfile /run/nonexist.pid"),
    ("start-stop-daemon", "-K -o -q -p /run/nonexist.pid"),
    ("start-stop-daemon", "--status --pidfile /run/nonexist.pid"),
    ("start-stop-daemon", "--stop --pidfile /run/nonexist.pid"),
    ("start-stop-daemon", "--stop --oknodo --retry=TERM/30/KILL/5 --pidfile /run/x.pid --name x"),
    ("start-stop-daemon", "--stop --pidfile /run/x.pid --exec /usr/sbin/cron"),
    ("start-stop-daemon", "--stop --quiet --exec /usr/sbin/nonexist"),
    ("start-stop-daemon", "--status --exec /usr/sbin/nonexist"),
    ("start-stop-daemon", "-T -p /run/nginx.pid --exec /usr/sbin/cron"),
    ("service", "cron status"),
    ("runlevel", ""),
]


@pytest.mark.parametrize("prog,args", OTHERS)
def test_status_queries_see_nothing_running(tree, prog, args):
    """What a stopped (offline) system answers: the dropped status equals the real one."""
    tree.reset(_setup)
    argv = [prog, *shlex.split(args)]
    want = run_chroot(tree.real, argv, DPKG_ENV)
    got = outcome(tree.model, argv, DPKG_ENV)
    if got[0] == "dropped":
        assert got[1] == want[0], want
    else:
        assert got == want
