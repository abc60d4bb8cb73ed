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

import pytest

from server_harness import Pair

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
