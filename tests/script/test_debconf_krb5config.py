"""krb5-config's Perl postinst and config under debconf's frontend: the models against the real ones.

A bookworm minbase tree with krb5-config (and so bind9-host, debconf, perl-base) is copied
twice (:mod:`debconf_oracle`); each case sets the same host name, /etc/hosts, /etc/krb5.conf and
debconf state (through the real ``debconf-communicate``/``debconf-set-selections`` in the
chroot) on both, then runs the installed postinst as dpkg does (noninteractive debconf, dpkg's
environment). Real side: the real Perl postinst, whose ``Debconf::Client::ConfModule`` execs
debconf's frontend, which runs the Perl config then the postinst, in a chroot under
``unshare -n -u`` (no network, the copy's host name). Nuwa's side: the shell line
``maintainer_stand_in`` gives for the Perl script, the frontend model, both script models.
Output, status, the debconf databases and every path of the trees must be identical.

``/usr/bin/host`` is removed in the cases compared: with it the config asks DNS (every path
does), which a dormant image cannot answer, and the model defers (checked apart).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from helpers.setups import both

pytestmark = pytest.mark.root

POSTINST = "/var/lib/dpkg/info/krb5-config.postinst"
CONFIG = "/var/lib/dpkg/info/krb5-config.config"
PATH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


@pytest.fixture()
def script_pair(tmp_path):
    from debconf_oracle import offline_pair
    return offline_pair(tmp_path, "krb5-config")


def run_real(root: str, argv: list[str], env: dict[str, str]):
    from debconf_oracle import run_real_offline
    return run_real_offline(root, argv, env)


def run_nuwa(root: str, argv: list[str], env: dict[str, str]):
    """The Perl postinst as the maintainer-script runner starts it: its stand-in shell line."""
    from debconf_oracle import MODELS
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.fs.overlay import Overlay
    from nuwa.script.commands import maintainer_stand_in
    from nuwa.script.interp import run_script
    data = open(os.path.join(root, argv[0].lstrip("/")), "rb").read()
    text = maintainer_stand_in(data, env)
    assert text is not None
    fs = Overlay(HostDirFS(root, writable=True))
    r = run_script(fs, text, argv[1:], env=env, name=argv[0], models=MODELS, is_path=False)
    if not r.deferred_whole:
        fs.commit()
    return r


def _write(root, rel, text):
    with open(os.path.join(root, rel), "w") as f:
        f.write(text)


def machine(name="kdc", fqdn=None, conf=None, host=False):
    """Host name and /etc/hosts; /etc/krb5.conf replaced (``conf``), removed (``""``) or kept
    (None); /usr/bin/host removed unless ``host``."""
    def setup(root):
        _write(root, "etc/hostname", name + "\n")
        _write(root, "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{fqdn} {name}\n" if fqdn else
               f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n")
        if conf == "":
            os.unlink(os.path.join(root, "etc/krb5.conf"))
        elif conf is not None:
            _write(root, "etc/krb5.conf", conf)
        if not host:
            os.unlink(os.path.join(root, "usr/bin/host"))
    return setup


def debconf(commands: str = "", selections: str = ""):
    """The real debconf tools in the chroot: ``PURGE`` (a first install's state), preseeds."""
    def setup(root):
        if commands:
            subprocess.run(["chroot", root, "debconf-communicate", "krb5-config"], input=commands.encode(),
                           check=True, capture_output=True, env=PATH_ENV)
        if selections:
            subprocess.run(["chroot", root, "debconf-set-selections"], input=selections.encode(), check=True,
                           capture_output=True, env=PATH_ENV)
    return setup


FRESH = debconf("PURGE\n")


def sel(**values: str):
    """Preseeds of krb5-config's questions (``name=(type, value)``)."""
    return debconf(selections="".join(f"krb5-config krb5-config/{k} {t} {v}\n" for k, (t, v) in values.items()))


OLD_CONF = """[libdefaults]
\tdefault_realm = OLD.EXAMPLE
# a comment in libdefaults: default_realm = KEPT
; another
\tforwardable = true
[realms]
\tOLD.EXAMPLE = {
\t\tkdc = kdc.old.example
\t}
[domain_realm]
\t.old.example = OLD.EXAMPLE
"""


@pytest.mark.parametrize("name, setup, args", [
    # the template's conf: its default_realm is the guess, the config stops there
    ("upgrade-kept", machine(), ["configure", "2.7"]),
    # a first install: no conf (the template copied), no domain, nothing guessed
    ("first-install", both(machine(conf=""), FRESH), ["configure", ""]),
    # from before 2.7: `rdns = false` added where libdefaults ends, the realm replaced
    ("upgrade-from-2.6", both(machine(conf=OLD_CONF), sel(default_realm=("string", "NEW.EXAMPLE"))),
     ["configure", "2.6"]),
    # the realm's servers added after [realms]
    ("add-servers", both(machine(conf=""), FRESH, sel(default_realm=("string", "EXAMPLE.ORG"),
                                                      add_servers=("boolean", "true"),
                                                      kerberos_servers=("string",
                                                                        " kdc1.example.org  kdc2.example.org"),
                                                      admin_server=("string", "kadmin.example.org"))),
     ["configure", ""]),
    # the DNS domain names a realm of the config's map (exact, then by suffix)
    ("domain-exact", both(machine(fqdn="kdc.csail.mit.edu"), FRESH, sel(read_conf=("boolean", "false"))),
     ["configure", ""]),
    ("domain-suffix", both(machine(fqdn="kdc.lab.media.mit.edu"), FRESH, sel(read_conf=("boolean", "false"))),
     ["configure", ""]),
    # an earlier realm for the servers: add_servers, the servers and the admin server reset
    ("other-servers-realm", both(machine(conf=""), FRESH, sel(read_conf=("boolean", "false"),
                                                              add_servers_realm=("string", "OLD.ORG"),
                                                              kerberos_servers=("string", "kdc.old.org"))),
     ["configure", ""]),
    ("abort-upgrade", machine(), ["abort-upgrade", "2.7"]),
])
def test_postinst_against_real(script_pair, name, setup, args):
    from debconf_oracle import debconf_records, diff_trees, environment
    a, b = script_pair
    setup(a)
    setup(b)
    env = environment("postinst", "krb5-config")
    since = time.time()
    real = run_real(a, [POSTINST, *args], env)
    r = run_nuwa(b, [POSTINST, *args], env)
    assert not r.deferred_whole and not r.deferred_commands, (r.reason, r.deferred_commands)
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
    conf = open(os.path.join(b, "etc/krb5.conf")).read()
    if name == "upgrade-from-2.6":
        assert "default_realm = NEW.EXAMPLE" in conf and "\trdns = false\n[realms]" in conf
    if name == "add-servers":
        assert "[realms]\n\tEXAMPLE.ORG = {\n\t\tkdc = kdc1.example.org\n\t\tkdc = kdc2.example.org\n" in conf


def test_host_in_the_image_defers_whole(script_pair):
    """With /usr/bin/host the config asks DNS: deferred whole, the reason names it, nothing written."""
    from debconf_oracle import environment, snapshot
    a, b = script_pair
    machine(host=True)(b)
    before = snapshot(b, 0)
    r = run_nuwa(b, [POSTINST, "configure", "2.7"], environment("postinst", "krb5-config"))
    assert r.deferred_whole and "asks DNS" in r.reason, r.reason
    assert snapshot(b, 0) == before


def test_unknown_texts_are_not_recognised(script_pair):
    """Another postinst is no stand-in's (the runner defers it as a Perl script); another
    config is one the frontend cannot hand over (deferred whole with that reason)."""
    from debconf_oracle import environment
    from nuwa.script.commands import maintainer_stand_in
    a, b = script_pair
    data = open(os.path.join(b, POSTINST.lstrip("/")), "rb").read()
    assert maintainer_stand_in(data + b"# changed\n", environment("postinst", "krb5-config")) is None
    machine()(b)
    with open(os.path.join(b, CONFIG.lstrip("/")), "ab") as f:
        f.write(b"# changed\n")
    r = run_nuwa(b, [POSTINST, "configure", "2.7"], environment("postinst", "krb5-config"))
    assert r.deferred_whole and "krb5-config.config" in r.reason, r.reason


@pytest.mark.parametrize("host", [False, True])
def test_the_patch_runner_starts_the_perl_postinst_as_its_stand_in(script_pair, host):
    """What ``nuwa patch`` does with the Perl postinst: the runner of maintainer scripts starts
    it as its stand-in (not refused as a Perl script): without /usr/bin/host it runs as the
    real one does (same output, tree and debconf database); with it the whole call goes to the
    first-boot job, its reason naming DNS, nothing of it applied."""
    from debconf_oracle import MODELS, debconf_records, diff_trees, environment, snapshot
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.fs.overlay import Overlay
    from nuwa.patch.runner import SimulatorRunner
    a, b = script_pair
    for root in (a, b):
        machine(host=host)(root)
    env = environment("postinst", "krb5-config")
    since = time.time()
    before = snapshot(b, 0)
    data = open(os.path.join(b, POSTINST.lstrip("/")), "rb").read()
    runner = SimulatorRunner(models=MODELS)
    fs = Overlay(HostDirFS(b, writable=True))
    status = runner.run("krb5-config", "postinst", ["configure", "2.7"], env, script=data, fs=fs, path=POSTINST)
    call = runner.results[-1]
    if host:
        assert call.deferred_whole and "asks DNS" in call.reason, call.reason
        assert [e.kind for e in runner.job.entries] == ["script"]
        fs.discard()
        assert snapshot(b, 0) == before
        return
    fs.commit()
    real = run_real(a, [POSTINST, "configure", "2.7"], env)
    assert not call.deferred_whole and not call.result.deferred_commands, call.reason
    assert (status, call.result.stdout, call.result.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
