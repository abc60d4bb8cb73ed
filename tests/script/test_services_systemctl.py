"""The systemctl model against the real systemctl 252 (``--root`` from the host on scratch
roots; a chroot of the bookworm service tree for the runtime verbs).

Each case starts from the same configuration; stdout, stderr, the exit status and the whole
``etc/`` tree must agree.
"""

from __future__ import annotations

import os
import shlex

import pytest

from debian_tree import bookworm_tree
from svcharness import (ENV, SERVICES, SYNTHETIC, Pair, build, copy_units, outcome, run_chroot, run_model,
                        run_real_systemctl, snapshot)

pytestmark = pytest.mark.judge

SYNTH_CASES = """
enable a
is-enabled a b aa.service static t@.service u@.service
is-enabled a aa.service b l o loc x t@.service t@two.service gone static q v vend ind mk empty ti@.service
is-enabled bad
is-enabled t@two.service
is-enabled gone xalias.service nonexist
enable t@.service
enable u@.service
enable u@x.service
enable static
enable static d
disable a
disable nonexist
enable nonexist
enable c
enable d
mask m
mask static
mask m static nonexist.service
mask -f o
mask o
enable l
disable l
enable o
disable o
enable loc
enable x
disable x
enable cy1
disable cy1
enable cy2
enable q
disable q
enable spec@.service
enable spec@inst.service
enable v
enable vend
disable vend
enable ind
disable ind
enable mk
disable mk
unmask mk
preset mk
enable empty
enable ti@.service
enable ti@z.service
enable r.service
disable r.socket
enable mnt.mount
is-enabled r.socket r.service mnt.mount
preset static
preset a
preset d m
preset ti@.service
preset ti@a.service ti@q.service
preset v vend r.service
preset x o loc
preset-all
preset-all --preset-mode=enable-only
preset-all --preset-mode=disable-only
preset --preset-mode=enable-only m d a v
preset --preset-mode=disable-only m d a v
disable static
disable gone
disable t@.service
mask a
mask aa
-q enable a c d
-q disable static gone
--quiet is-enabled a b static
is-enabled
enable a.service b.service nonexist.service
disable a b nonexist
enable --no-reload --system cy2
--preset-mode=bogus preset a
"""


def _cases(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    base = tmp_path_factory.mktemp("svc-synth")
    template = str(base / "template")
    build(template, SYNTHETIC)
    return Pair(str(base), template)


def _compare(pair: Pair, args: list[str], env: dict | None = None) -> tuple:
    pair.reset()
    want = run_real_systemctl(pair.real, args, env)
    got = outcome(pair.model, ["systemctl", *args], env)
    assert got == want, args
    assert snapshot(pair.model) == snapshot(pair.real), args
    return want


@pytest.mark.parametrize("case", _cases(SYNTH_CASES))
def test_synthetic_units(synthetic, case):
    _compare(synthetic, shlex.split(case))


@pytest.mark.parametrize("env", [{"LC_ALL": "C"}, {"LANG": "de_DE.ISO-8859-1"}, {"SYSTEMD_UTF8": "0"}, {}],
                         ids=["LC_ALL=C", "latin1-not-installed", "SYSTEMD_UTF8=0", "no-locale"])
def test_glyphs_follow_the_locale(synthetic, env):
    e = {"PATH": ENV["PATH"], **env}
    _compare(synthetic, ["enable", "a", "static"], e)


@pytest.fixture(scope="module")
def real_units(tmp_path_factory):
    tree = bookworm_tree(SERVICES)
    base = tmp_path_factory.mktemp("svc-real")
    template = str(base / "template")
    copy_units(tree, template)
    pair = Pair(str(base), template)
    pair.units = sorted(n for n in os.listdir(os.path.join(template, "usr/lib/systemd/system"))
                        if "." in n and not n.endswith((".d", ".wants", ".requires")))
    return pair


REAL_UNITS = ["cron.service", "ssh.service", "ssh.socket", "sshd.service", "rsyslog.service", "syslog.service",
              "getty@.service", "getty@tty3.service", "serial-getty@ttyS0.service", "systemd-networkd.service",
              "systemd-resolved.service", "systemd-timesyncd.service", "e2scrub_all.timer", "apt-daily.timer",
              "remote-fs.target", "systemd-pstore.service", "console-getty.service", "debug-shell.service",
              "fstrim.timer", "ssh@.service", "rescue-ssh.target", "systemd-networkd-wait-online.service",
              "dbus-org.freedesktop.timedate1.service", "ctrl-alt-del.target"]


def test_real_units_states(real_units):
    _compare(real_units, ["is-enabled", *real_units.units])


# ``reenable`` is compared in a chroot only: with --root, systemctl 252 re-enables the *file* it
# found for the name (an alias's target, a template with its DefaultInstance instead of the
# instance asked for); in a chroot it re-enables the name, and the model is a chroot.
@pytest.mark.parametrize("verb", ["enable", "disable", "preset", "mask", "unmask"])
@pytest.mark.parametrize("unit", REAL_UNITS)
def test_real_units(real_units, verb, unit):
    _compare(real_units, [verb, unit])


@pytest.mark.parametrize("mode", ["full", "enable-only", "disable-only"])
def test_real_preset_all(real_units, mode):
    _compare(real_units, ["preset-all", f"--preset-mode={mode}"])


@pytest.mark.slow
def test_every_real_unit(real_units):
    for unit in real_units.units:
        for verb in ("is-enabled", "enable", "disable", "preset"):
            _compare(real_units, [verb, unit])


# -- runtime verbs and SysV scripts: systemctl in a chroot of the service tree ----------------

RUNTIME = ["start cron", "stop cron.service", "restart ssh", "reload cron", "try-restart cron",
           "reload-or-restart cron", "condrestart cron", "is-active cron", "is-active --quiet cron",
           "is-failed cron", "status cron", "kill cron", "daemon-reload", "daemon-reexec", "show -p LoadState cron",
           "is-system-running", "--quiet is-system-running", "start", "frobnicate cron"]


@pytest.fixture(scope="module")
def service_tree(tmp_path_factory):
    return Pair(str(tmp_path_factory.mktemp("svc-chroot")), bookworm_tree(SERVICES), link=True)


@pytest.mark.parametrize("case", RUNTIME)
def test_runtime_verbs_as_in_a_chroot(service_tree, case):
    """Dropped verbs give the status a script sees in a chroot (where systemctl says "Running
    in chroot, ignoring command"); the others print what the real one prints."""
    argv = ["systemctl", *shlex.split(case)]
    want = run_chroot(service_tree.real, argv)
    got = outcome(service_tree.model, argv)
    if got[0] == "dropped":
        assert got[1] == want[0], (case, want)
        assert "Running in chroot, ignoring command" in want[2], want
    else:
        assert got == want, case


def _foo(root: str) -> None:
    p = os.path.join(root, "etc/init.d/foo")
    with open(p, "w") as f:
        f.write("#!/bin/sh\n### BEGIN INIT INFO\n# Provides: foo\n# Default-Start: 2 3 4 5\n"
                "# Default-Stop: 0 1 6\n### END INIT INFO\n")
    os.chmod(p, 0o755)


SYSV = ["disable cron", "enable cron", "disable ssh", "is-enabled cron", "is-enabled ssh", "-q disable cron",
        "disable foo", "enable foo", "is-enabled foo", "is-enabled foo cron", "--root=/ disable foo",
        "disable cron ssh rsyslog", "enable foo.service cron.service", "reenable sshd.service",
        "reenable syslog.service ssh.service", "reenable getty@tty3.service", "reenable getty@.service",
        "reenable cron", "reenable ssh.socket rsyslog"]


@pytest.mark.parametrize("case", SYSV)
def test_sysv_scripts_are_synchronised(service_tree, case):
    """enable/disable/is-enabled of units with an /etc/init.d script run Debian's
    systemd-sysv-install (update-rc.d defaults, then enable/disable) like the real one."""
    service_tree.reset(_foo)
    argv = ["systemctl", *shlex.split(case)]
    want = run_chroot(service_tree.real, argv)
    got = run_model(service_tree.model, argv)
    assert got == want, case
    assert snapshot(service_tree.model, ("etc",)) == snapshot(service_tree.real, ("etc",)), case
