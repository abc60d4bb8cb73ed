"""dictionaries-common's generated Perl ``config`` scripts, judged against real debconf + Perl.

The real bookworm ``wamerican``/``wbritish`` configs (``dc_debconf_select("wordlist")``) run by
debconf's frontend in a chroot of a real tree and by Nuwa's frontend model on a copy: exit
status, stdout, stderr, the debconf databases and the whole tree must match. Trees: two
wordlists with dictionaries-common, one wordlist (``wbritish`` purged by real dpkg first),
and ``wamerican`` without dictionaries-common (only the ``VERSION`` handshake).
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from debconf_oracle import debconf_records, diff_trees, environment, make_pair, put, run_nuwa, run_real
from debian_tree import bookworm_tree
from nuwa.script.commands.debconf import perlconfig

INFO = "/var/lib/dpkg/info"
DEFAULT = "/var/cache/dictionaries-common/wordlist-default"


def wrapper(pkg: str) -> bytes:
    """A shell script that hands ``pkg``'s config to debconf's frontend, as a caller does."""
    return f"#!/bin/sh\nexec /usr/share/debconf/frontend {INFO}/{pkg}.config configure 2020.12.07-2\n".encode()


def judge(a: str, b: str, pkg: str, extra: dict | None = None):
    """Run ``pkg``'s config on both trees; assert output and databases match."""
    put((a, b), "/tmp/runconfig", wrapper(pkg))
    env = environment("config", pkg)
    env.update(extra or {})
    real = run_real(a, ["/tmp/runconfig"], env)
    r = run_nuwa(b, ["/tmp/runconfig"], env)
    assert not r.deferred_whole, r.reason
    assert not r.deferred_commands
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    return real


@pytest.fixture(scope="module")
def two():
    return bookworm_tree(extra=("wamerican", "wbritish", "dictionaries-common"))


@pytest.fixture()
def pair(two, tmp_path):
    a, b = make_pair(two, str(tmp_path))
    return a, b, time.time()


def test_configs_are_recognised(two):
    """The bookworm configs are recognised whole; one changed byte is not."""
    # wamerican's is scowl's hand-written variant, wbritish's the one installdeb-wordlist writes
    for pkg, elanguages in (("wamerican", True), ("wbritish", False)):
        text = open(os.path.join(two, INFO.lstrip("/"), f"{pkg}.config")).read()
        assert perlconfig.recognise(text) == ("wordlist", elanguages)
        assert perlconfig.recognise(text.replace("version ('2.0')", "version ('2.1')")) is None
        assert perlconfig.recognise(text + "\nsystem('true');\n") is None
    generated = perlconfig._GENERATED.replace("@CLASS@", "ispell")
    assert perlconfig.recognise(generated) == ("ispell", False)
    assert perlconfig.recognise(generated.replace('"ispell"', '"aspell"')) is None


def test_two_wordlists(pair):
    """Steady state, reconfigure, and the system default file disagreeing with debconf."""
    a, b, since = pair
    judge(a, b, "wamerican")
    judge(a, b, "wbritish")
    judge(a, b, "wamerican", {"DEBCONF_RECONFIGURE": "1"})
    # a valid value in the system default file wins: SET, and a warning on stderr
    put((a, b), DEFAULT, b"# comment\n\n  british (British English)  \n", 0o644)
    real = judge(a, b, "wbritish")
    assert b"Changing debconf value" in real[2]
    # a value no package provides: the debconf value is kept, a note when run as "config"
    put((a, b), DEFAULT, b"klingon\n", 0o644)
    real = judge(a, b, "wamerican")
    assert b"seems not available" in real[2]
    assert diff_trees(a, b, since) == []


def test_one_wordlist(two, tmp_path):
    """wbritish purged by real dpkg (its postrm unregisters it): the one-wordlist state."""
    # purged in each copy of the cached tree (overlay copies), rather than once in a copy that
    # is then copied whole twice (cp -a of a full tree and its removal: 30 s here)
    a, b = make_pair(two, str(tmp_path / "pair"))
    for root in (a, b):
        subprocess.run(["chroot", root, "dpkg", "--purge", "wbritish"], check=True, capture_output=True,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"})
    # the same state on both sides: every file hashed; dpkg.log differs only by the purges' times
    assert [d for d in diff_trees(a, b, 0) if not d.startswith("var/log/dpkg.log:")] == []
    since = time.time()
    judge(a, b, "wamerican")
    judge(a, b, "wamerican", {"DEBCONF_RECONFIGURE": "1"})
    assert diff_trees(a, b, since) == []


def test_new_choices(pair):
    """The database remembers fewer choices than the owners provide (a wordlist unpacked,
    its templates loaded, its config not yet run): seen is reset, the flag file written,
    the choices substituted anew. The flag file is created with the script's umask."""
    a, b, since = pair
    for r in (a, b):
        db = os.path.join(r, "var/cache/debconf/config.dat")
        text = open(db).read()
        for var in ("choices", "echoices"):
            old = f" {var} = american (American English), british (British English)\n"
            assert old in text
            text = text.replace(old, f" {var} = american (American English)\n")
        open(db, "w").write(text)
    judge(a, b, "wbritish")
    assert os.path.exists(os.path.join(a, "var/cache/dictionaries-common/flag-wordlist-new"))
    judge(a, b, "wamerican")  # now unchanged: no new flag, seen stays as the first run left it
    os.unlink(os.path.join(a, "var/cache/dictionaries-common/flag-wordlist-new"))
    os.unlink(os.path.join(b, "var/cache/dictionaries-common/flag-wordlist-new"))
    for r in (a, b):
        db = os.path.join(r, "var/cache/debconf/config.dat")
        text = open(db).read().replace(" choices = american (American English), british (British English)\n",
                                       " choices = american (American English)\n")
        open(db, "w").write(text)
    judge(a, b, "wamerican", {"DEBCONF_RECONFIGURE": "1"})
    assert diff_trees(a, b, since) == []


def test_without_dictionaries_common(tmp_path):
    """wamerican alone: dc-debconf-select.pl is absent, only the VERSION handshake runs."""
    a, b = make_pair(bookworm_tree(extra=("wamerican",)), str(tmp_path))
    since = time.time()
    judge(a, b, "wamerican")
    assert diff_trees(a, b, since) == []


def test_without_elanguages(pair):
    """scowl's config also wants ``elanguages``: without it, only the handshake."""
    a, b, since = pair
    for r in (a, b):
        os.unlink(os.path.join(r, "usr/share/dictionaries-common/elanguages"))
    judge(a, b, "wamerican")
    assert diff_trees(a, b, since) == []


def test_first_time_guess_is_deferred(pair):
    """No old choices (first configuration of the class): the default-value guess of
    dc-debconf-default-value.pl is not modelled, so the config defers, writing nothing."""
    _, b, since = pair
    db = os.path.join(b, "var/cache/debconf/config.dat")
    text = open(db).read()
    text = re.sub(r"(Name: dictionaries-common/default-wordlist\n(?:[^\n]+\n)*?)Variables:\n(?: [^\n]*\n)+",
                  r"\1", text)
    open(db, "w").write(text)
    put((b,), "/tmp/runconfig", wrapper("wamerican"))
    before = open(db, "rb").read()
    r = run_nuwa(b, ["/tmp/runconfig"], environment("config", "wamerican"))
    assert r.deferred_whole
    assert "dc_set_default_value_for_class" in r.reason
    assert open(db, "rb").read() == before


def test_unknown_select_version_is_deferred(pair):
    """Another dc-debconf-select.pl than the one modelled: deferred, with that reason."""
    _, b, _ = pair
    with open(os.path.join(b, "usr/share/dictionaries-common/dc-debconf-select.pl"), "a") as f:
        f.write("# local change\n")
    put((b,), "/tmp/runconfig", wrapper("wamerican"))
    r = run_nuwa(b, ["/tmp/runconfig"], environment("config", "wamerican"))
    assert r.deferred_whole
    assert "dictionaries-common version not modelled" in r.reason


def postinst(a: str, b: str):
    """wamerican's postinst ``configure OLD`` on both trees (its confmodule starts the
    frontend, which runs the config first)."""
    env = environment("postinst", "wamerican")
    argv = [f"{INFO}/wamerican.postinst", "configure", "2020.12.07-1"]
    return run_real(a, argv, env), run_nuwa(b, argv, env)


def test_postinst_without_dictionaries_common(tmp_path):
    """The whole postinst simulated: output, databases and tree as real dpkg's run."""
    a, b = make_pair(bookworm_tree(extra=("wamerican",)), str(tmp_path))
    since = time.time()
    real, r = postinst(a, b)
    assert not r.deferred_whole, r.reason
    assert not r.deferred_commands
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []


def test_postinst_with_two_wordlists(pair):
    """The config part is simulated; ``update-default-wordlist --rebuild`` (Perl, no model)
    is the only deferred command. Replayed afterwards in a chroot of Nuwa's tree (as the
    first-boot job would run it, under dpkg's environment), the tree and the databases
    equal the real postinst's."""
    a, b, since = pair
    real, r = postinst(a, b)
    assert not r.deferred_whole, r.reason
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert [d.argv for d in r.deferred_commands] == [["/usr/sbin/update-default-wordlist", "--rebuild"]]
    assert diff_trees(a, b, since) != []  # the deferred part is real work: the trigger
    st, _, _ = run_real(b, ["/usr/sbin/update-default-wordlist", "--rebuild"], environment("postinst", "wamerican"))
    assert st == 0
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []


def test_wrong_debconf_value(pair):
    """debconf's value names no installed wordlist and no system default file overrides it:
    priority high and the error report on stderr."""
    a, b, since = pair
    for r in (a, b):
        os.unlink(os.path.join(r, DEFAULT.lstrip("/")))
        db = os.path.join(r, "var/cache/debconf/config.dat")
        text = open(db).read()
        old = "Template: dictionaries-common/default-wordlist\nValue: american (American English)\n"
        assert old in text
        open(db, "w").write(text.replace(old, "Template: dictionaries-common/default-wordlist\nValue: klingon\n"))
    real = judge(a, b, "wamerican")
    assert b'"klingon" does not correspond to any package' in real[2]
    assert diff_trees(a, b, since) == []


def test_generated_ispell_config(pair):
    """installdeb-ispell's config for a class with no element installed: the owners question
    does not exist, so no choices, priority low, nothing asked."""
    a, b, since = pair
    put((a, b), f"{INFO}/ispell-fake.config", perlconfig._GENERATED.replace("@CLASS@", "ispell").encode())
    judge(a, b, "ispell-fake")
    assert diff_trees(a, b, since) == []


def test_changed_config_keeps_todays_deferral(pair):
    """A Perl config that differs from the generated text by one line is not handed over:
    the frontend defers it with the reason it always gave, and nothing is written."""
    _, b, since = pair
    path = os.path.join(b, INFO.lstrip("/"), "wamerican.config")
    with open(path, "a") as f:
        f.write("# local\n")
    put((b,), "/tmp/runconfig", wrapper("wamerican"))
    db = os.path.join(b, "var/cache/debconf/config.dat")
    before = open(db, "rb").read()
    r = run_nuwa(b, ["/tmp/runconfig"], environment("config", "wamerican"))
    assert r.deferred_whole
    assert r.reason.endswith("wamerican.config is not a shell script")
    assert open(db, "rb").read() == before
