"""postfix's Perl ``config`` under debconf's frontend: the model against the real one.

A bookworm minbase tree with postfix is copied twice (:mod:`debconf_oracle`); each case sets
the same host name, /etc/hosts, /etc/mailname and debconf state (through the real
``debconf-communicate``/``debconf-set-selections`` in the chroot) on both, then runs postfix's
installed ``preinst`` as dpkg does (noninteractive debconf, dpkg's environment): the frontend
runs the Perl ``config`` first, then the preinst. Real side: real dash, debconf, Perl, hostname
and getent in a chroot under ``unshare -n -u`` (no network, the host name from the copy's
/etc/hostname, as the image boots). Nuwa's side: the frontend model, this config model, the
preinst interpreted. Output, status, the debconf databases and every path of the trees must be
identical. With ``/etc/postfix/main.cf`` present and the mailer type seen, the config reads it
back with ``postconf -hx`` (the postconf model); a parameter left to a run-time default defers.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from aliasesdb_judge import masked
from helpers.setups import both

pytestmark = pytest.mark.root

PREINST = "/var/lib/dpkg/info/postfix.preinst"
PATH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


@pytest.fixture()
def script_pair(tmp_path):
    from debconf_oracle import offline_pair
    return offline_pair(tmp_path, "postfix")


def run_real(root: str, argv: list[str], env: dict[str, str]):
    from debconf_oracle import run_real_offline
    return run_real_offline(root, argv, env)


def _write(root, rel, text):
    with open(os.path.join(root, rel), "w") as f:
        f.write(text)


def machine(name="mx", fqdn="mx.example.org", mailname=None, maincf=False):
    def setup(root):
        _write(root, "etc/hostname", name + "\n")
        _write(root, "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{fqdn} {name}\n" if fqdn else
               f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n")
        if mailname is None:
            if os.path.exists(os.path.join(root, "etc/mailname")):
                os.unlink(os.path.join(root, "etc/mailname"))
        else:
            _write(root, "etc/mailname", mailname)
        if not maincf:
            os.unlink(os.path.join(root, "etc/postfix/main.cf"))
    return setup


def debconf(commands: str = "", selections: str = ""):
    """The real debconf tools in the chroot: ``PURGE`` (a first install's state), preseeds."""
    def setup(root):
        if commands:
            subprocess.run(["chroot", root, "debconf-communicate", "postfix"], input=commands.encode(), check=True,
                           capture_output=True, env=PATH_ENV)
        if selections:
            subprocess.run(["chroot", root, "debconf-set-selections"], input=selections.encode(), check=True,
                           capture_output=True, env=PATH_ENV)
    return setup


FRESH = debconf("PURGE\n")


@pytest.mark.parametrize("name, setup, args", [
    ("upgrade-no-maincf", machine(), ["upgrade", "3.7.10-0+deb12u1"]),
    ("first-install", both(machine(), FRESH), ["install"]),
    ("mailname-file", both(machine(mailname="mail.example.org\n"), FRESH), ["install"]),
    ("mailname-broken", both(machine(mailname="Debian.org\n"), FRESH), ["install"]),
    ("no-domain", both(machine(fqdn=None), FRESH), ["install"]),
    ("satellite", both(machine(mailname="example.net"), FRESH,
                       debconf(selections="postfix postfix/main_mailer_type select Satellite system\n")), ["install"]),
    ("local-only", both(machine(mailname="other.test\n"), FRESH,
                        debconf(selections="postfix postfix/main_mailer_type select Local only\n")), ["install"]),
    ("existing-maincf", machine(maincf=True), ["upgrade", "3.7.10-0+deb12u1"]),
    # a mailer type seen (preseeded): main.cf is read back with postconf -hx (mydestination,
    # mynetworks, inet_protocols)
    ("seen-with-maincf", both(machine(maincf=True),
                              debconf(selections="postfix postfix/main_mailer_type select Internet Site\n")),
     ["upgrade", "3.7.10-0+deb12u1"]),
    ("no-configuration", both(machine(), FRESH,
                              debconf(selections="postfix postfix/main_mailer_type select No configuration\n")),
     ["install"]),
])
def test_config_under_the_frontend_against_real(script_pair, name, setup, args):
    from debconf_oracle import debconf_records, diff_trees, environment, run_nuwa
    a, b = script_pair
    setup(a)
    setup(b)
    env = environment("preinst", "postfix")
    since = time.time()
    real = run_real(a, [PREINST, *args], env)
    r = run_nuwa(b, [PREINST, *args], env)
    assert not r.deferred_whole and not r.deferred_commands, (r.reason, r.deferred_commands)
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
    if name == "first-install":
        dest = debconf_records(b)["config.dat"]["postfix/destinations"]
        assert "mx.example.org" in str(dest)


def test_postconf_default_defers_whole(script_pair):
    """With main.cf and a mailer type seen, the config asks ``postconf -hx mydestination``; a
    main.cf without that line leaves postconf its run-time default ($myhostname...), which the
    postconf model does not compute: deferred whole, the reason names it, nothing written."""
    import re

    from debconf_oracle import environment, run_nuwa, snapshot
    a, b = script_pair
    both(machine(maincf=True), debconf(selections="postfix postfix/main_mailer_type select Internet Site\n"))(b)
    p = os.path.join(b, "etc/postfix/main.cf")
    text = open(p).read()
    with open(p, "w") as f:
        f.write(re.sub(r"(?m)^mydestination *=.*\n", "", text))
    before = snapshot(b, 0)
    r = run_nuwa(b, [PREINST, "upgrade", "3.7.10-0+deb12u1"], environment("preinst", "postfix"))
    assert r.deferred_whole and "default of mydestination" in r.reason, r.reason
    assert snapshot(b, 0) == before


POSTINST = "/var/lib/dpkg/info/postfix.postinst"


@pytest.mark.parametrize("name, setup, args", [
    ("first-configure", both(machine(), FRESH, lambda r: os.unlink(os.path.join(r, "etc/aliases"))), ["configure"]),
    ("reconfigure-seen", both(machine(mailname="mail.example.org\n", maincf=True),
                              debconf(selections="postfix postfix/main_mailer_type select Satellite system\n"
                                                 "postfix postfix/relayhost string [smtp.example.org]\n")),
     ["configure", "3.7.10-0+deb12u1"]),
])
def test_postinst_against_real(script_pair, name, setup, args):
    """postfix's whole postinst (config first, then main.cf written through the postconf
    model, newaliases's aliases.db by its model): nothing deferred, the trees identical, the
    aliases.db but for the bytes two real runs differ in (its file id and time)."""
    from debconf_oracle import debconf_records, diff_trees, environment, run_nuwa
    a, b = script_pair
    setup(a)
    setup(b)
    env = environment("postinst", "postfix")
    since = time.time()
    real = run_real(a, [POSTINST, *args], env)
    r = run_nuwa(b, [POSTINST, *args], env)
    assert not r.deferred_whole, r.reason
    assert r.deferred_commands == [], r.deferred_commands
    assert (r.status, r.stdout) == real[:2]
    # invoke-rc.d (starting the service) is dropped by design; the real one prints policy-rc.d's refusal
    assert r.stderr.decode().splitlines() == [ln for ln in real[2].decode().splitlines()
                                              if not ln.startswith("invoke-rc.d: ")]
    assert any(e.argv[:1] == ["invoke-rc.d"] and e.classification == "dropped" for e in r.record.entries)
    assert debconf_records(b) == debconf_records(a)
    diffs = diff_trees(a, b, since)
    db = "etc/aliases.db"
    if any(d.startswith(db + ":") for d in diffs):
        diffs = [d for d in diffs if not d.startswith(db + ":")]
        (real_db, real_time), (nuwa_db, nuwa_time) = (masked(open(os.path.join(t, db), "rb").read()) for t in (a, b))
        assert real_db == nuwa_db and abs(real_time - nuwa_time) < 60
    assert diffs == []
