"""apache2's a2enmod family judged against the real Perl program in a chroot.

One bookworm minbase tree with apache2 installed by mmdebstrap (its postinst ran the real
``a2enmod -m -q ...`` calls) is copied twice: ``real`` (``chroot real sh -c CMD``) and
``model`` (the same command line interpreted by Nuwa on :class:`HostDirFS`). Before each case
``/etc/apache2`` and ``/var/lib/apache2`` are restored on both from a pristine copy and the
case's setup applied to both; every command's stdout, stderr and status must agree, then
both directories path by path (type, mode, owner, size, content, link target).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import dpkg_environment, run_script
from server_harness import MODELS, Pair

DIRS = ["etc/apache2", "var/lib/apache2"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return Pair(str(tmp_path_factory.mktemp("apache2")), DIRS)


def _write(rel: str, data: bytes, mode: int = 0o644):
    def setup(root: str) -> None:
        p = os.path.join(root, rel)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
    return setup


def _symlink(target: str, rel: str):
    def setup(root: str) -> None:
        os.symlink(target, os.path.join(root, rel))
    return setup


def _both(*setups):
    def setup(root: str) -> None:
        for s in setups:
            s(root)
    return setup


CASES = {
    # apache2's postinst: already enabled (quiet), then the MPM switch of its apache2_switch_mpm
    "postinst-mpm": (None, ["a2enmod -m -q mpm_event", "a2dismod -m -q mpm_event", "a2enmod -m -q mpm_prefork",
                            "a2enmod mpm_event", "a2dismod -m -q mpm_prefork", "a2enmod -m -q mpm_event"], b""),
    "postinst-confs": (None, ["a2enconf -m -q charset localized-error-pages other-vhosts-access-log security "
                              "serve-cgi-bin", "a2ensite -q 000-default"], b""),
    # dependencies, the module's .conf, messages and the reload text
    "ssl-deps": (None, ["a2enmod ssl", "a2enmod ssl", "a2dismod socache_shmcb", "a2dismod -f socache_shmcb",
                        "a2dismod ssl"], b""),
    "proxy-glob": (None, ["a2enmod 'proxy_h*'", "a2enmod 'zzz*'", "a2dismod 'proxy*'", "a2enmod nosuch other"], b""),
    "quiet-and-suffix": (None, ["a2enmod -q rewrite.load", "a2dismod --quiet rewrite", "a2enmod rewrite -q",
                                "a2enmod --QUI headers"], b""),
    "bad-options": (None, ["a2enmod -x rewrite", "a2enmod --bogus rewrite", "a2enmod -qz rewrite"], b""),
    "essential-forced": (None, ["a2dismod -f alias", "a2enmod alias"], b""),
    "essential-refused": (None, ["a2dismod alias"], b"no\n"),
    "essential-confirmed": (None, ["a2dismod dir"], b"Yes, do as I say!\n"),
    "maint-and-purge": (None, ["a2dismod -m status", "a2dismod -p -q status", "a2enmod status",
                               "a2dissite -m 000-default", "a2ensite 000-default", "a2dissite -p 000-default",
                               "a2disconf security", "a2disconf security", "a2enconf -p nosuch",
                               "a2dismod -p nosuch"], b""),
    "dangling": (_symlink("../mods-available/ghost.load", "etc/apache2/mods-enabled/ghost.load"),
                 ["a2enmod ghost", "a2dismod ghost", "a2dismod ghost"], b""),
    "real-file": (_write("etc/apache2/mods-enabled/rewrite.load", b"LoadModule rewrite_module x\n"),
                  ["a2enmod rewrite", "a2dismod rewrite"], b""),
    "wrong-target": (_symlink("../mods-available/headers.load", "etc/apache2/mods-enabled/rewrite.load"),
                     ["a2enmod rewrite"], b""),
    "conf-depends": (_write("etc/apache2/conf-available/needs.conf", b"# a comment\n\n# Depends: rewrite  headers \n"),
                     ["a2enconf needs", "a2enmod -q rewrite", "a2enconf needs", "a2enmod -q headers",
                      "a2enconf needs"], b""),
    "mod-conflicts": (_both(_write("etc/apache2/mods-available/mine.load",
                                   b"# Depends: rewrite\n# Conflicts: headers status\nLoadModule x y\n"),
                            _write("etc/apache2/mods-available/mine.conf", b"# mine\n")),
                      ["a2enmod mine", "a2dismod -q status", "a2enmod mine", "a2enmod mine", "a2dismod mine",
                       "a2dismod rewrite"], b""),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a2enmod_matches_real(pair, case):
    setup, cmds, stdin = CASES[case]
    pair.reset(setup)
    for cmd in cmds:
        real = pair.run_real(cmd, stdin)
        res = pair.run_model(cmd, stdin)
        assert not res.deferred_commands and not res.deferred_whole, (cmd, res.reason, res.deferred_commands)
        assert (res.status, res.stdout, res.stderr) == real, cmd
    assert pair.facts(pair.model) == pair.facts(pair.real)


@pytest.mark.parametrize("cmd, reason", [
    ("a2enmod cgi", "threaded"),
    ("a2enmod cache_disk", "htcacheclean"),
    ("a2dismod alias", "confirmation"),
    ("a2enmod", "choices"),
    ("a2enmod 'proxy_{http,ftp}'", "glob"),
])
def test_a2enmod_defers_what_it_cannot_answer(pair, cmd, reason):
    pair.reset()
    before = pair.facts(pair.model)
    res = pair.run_model(cmd)
    assert res.deferred_commands and reason in str(res.deferred_commands[0]), res.deferred_commands
    assert pair.facts(pair.model) == before


def test_a2enmod_reads_envvars_through_the_shell(pair):
    # an envvars that moves the enabled directory: the script reads it with `env - sh -c`
    pair.reset(_write("etc/apache2/envvars",
                      b"export APACHE_MODS_ENABLED=/etc/apache2/mods-on\nexport LANG=C\n"))
    for root in (pair.real, pair.model):
        os.mkdir(os.path.join(root, "etc/apache2/mods-on"))
    for cmd in ["a2enmod ssl", "a2dismod -q ssl"]:
        real = pair.run_real(cmd)
        res = pair.run_model(cmd)
        assert not res.deferred_commands, res.deferred_commands
        assert (res.status, res.stdout, res.stderr) == real, cmd
    assert pair.facts(pair.model) == pair.facts(pair.real)


def _fresh_apache(root: str) -> None:
    """The state before apache2's first configure: nothing enabled, no markers, no logs."""
    for d in ("mods-enabled", "conf-enabled", "sites-enabled"):
        p = os.path.join(root, "etc/apache2", d)
        for n in os.listdir(p):
            os.unlink(os.path.join(p, n))
    for sub in ("var/lib/apache2/module", "var/lib/apache2/conf", "var/lib/apache2/site"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    for n in ("error.log", "access.log", "other_vhosts_access.log"):
        p = os.path.join(root, "var/log/apache2", n)
        if os.path.lexists(p):
            os.unlink(p)
    with open(os.path.join(root, "usr/sbin/policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)


def test_apache2_postinst_fresh_configure_matches_real(tmp_path):
    # apache2's own postinst (bash) for a first configure: the a2enmod/a2enconf/a2ensite calls
    # in it are simulated, the service start is dropped; the tree must equal real dpkg's run
    p = Pair(str(tmp_path), ["etc/apache2", "var/lib/apache2", "var/log/apache2", "usr/sbin/policy-rc.d"])
    p.reset(_fresh_apache)
    script = "/var/lib/dpkg/info/apache2.postinst"
    env = dpkg_environment("postinst", "apache2", "amd64")
    real = subprocess.run(["chroot", p.real, script, "configure", ""], env=env, capture_output=True, timeout=300)
    fs = Overlay(HostDirFS(p.model, writable=True))
    res = run_script(fs, script, ["configure", ""], env=env, name=script, models=MODELS, is_path=True, bash=True)
    fs.commit()
    assert not res.deferred_whole and not res.deferred_commands, (res.reason, res.deferred_commands)
    assert real.returncode == 0 and res.status == 0, real.stderr
    assert res.stdout == real.stdout and res.stderr == b""
    # the only difference: real invoke-rc.d's policy-rc.d refusal; Nuwa drops the service
    # start (a running-system action) and reports it instead of printing
    assert set(real.stderr.splitlines()) <= {b"invoke-rc.d: could not determine current runlevel",
                                              b"invoke-rc.d: policy-rc.d denied execution of start.",
                                              b"invoke-rc.d: policy-rc.d denied execution of restart."}
    assert any(r.classification == "dropped" and r.argv[0] == "invoke-rc.d" for r in res.record.entries)
    simulated = {r.argv[0] for r in res.record.entries if r.classification == "simulated"}
    assert {"a2enmod", "a2enconf", "a2ensite"} <= simulated
    assert p.facts(p.model) == p.facts(p.real)
