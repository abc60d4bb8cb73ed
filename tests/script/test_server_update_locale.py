"""locales' update-locale judged against the real Perl script in a chroot (see server_harness).

Both copies get the same ``en_US.UTF-8`` locale, made once by the real ``localedef`` in the
chroot (a judge run; the model only reads the archive it leaves), so the sanity check's
``locale charmap`` has a generated locale to accept and missing ones to refuse.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from server_harness import Pair

DIRS = ["etc/default"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = Pair(str(tmp_path_factory.mktemp("locale")), DIRS)
    subprocess.run(["chroot", p.real, "localedef", "-i", "en_US", "-f", "UTF-8", "en_US.UTF-8"], check=True,
                   capture_output=True)
    shutil.rmtree(os.path.join(p.model, "usr/lib/locale"))
    subprocess.run(["cp", "-a", os.path.join(p.real, "usr/lib/locale"), os.path.join(p.model, "usr/lib/locale")],
                   check=True)
    return p


def _locale_file(data: bytes | None, mode: int = 0o644):
    def setup(root: str) -> None:
        p = os.path.join(root, "etc/default/locale")
        os.unlink(p)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, mode)
    return setup


CASES = {
    # locales' postinst: drop LANG, then set the chosen default
    "postinst": (None, ["update-locale --no-checks LANG", "update-locale LANG=en_US.UTF-8",
                        "update-locale LANG=en_US.UTF-8"]),
    "second-variable": (None, ["update-locale LANG=C.UTF-8", "update-locale LC_MESSAGES=POSIX",
                               "update-locale LC_MESSAGES", "update-locale --reset LANG=en_US.UTF-8"]),
    "no-file": (_locale_file(None), ["update-locale LANG=C.UTF-8", "update-locale --no-checks LC_TIME=xx_YY"]),
    "kept-lines-and-mode": (_locale_file(b'# mine\nLANG="en_US.UTF-8"\n  LC_ALL=C\n\nLANGUAGE=en_US:en', 0o600),
                            ["update-locale LANG=C.UTF-8", "update-locale -no-checks LC_ALL"]),
    "language-warning": (_locale_file(b"LANG=en_US.UTF-8\nLANGUAGE=fr:en\n"),
                         ["update-locale LANG=en_US.UTF-8", "update-locale --no-checks LANGUAGE=de"]),
    "other-file": (None, ["update-locale --locale-file=/etc/default/other LANG=C.UTF-8",
                          "update-locale --locale-file /etc/default/other LANG=en_US.UTF-8 -- LC_NUMERIC"]),
    "help": (None, ["update-locale --help", "update-locale -h LANG=C"]),
    "empty-file": (_locale_file(b""), ["update-locale --no-checks"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_locale_matches_real(pair, case):
    setup, cmds = CASES[case]
    pair.reset(setup)
    for cmd in cmds:
        real = pair.run_real(cmd)
        res = pair.run_model(cmd)
        assert not res.deferred_commands and not res.deferred_whole, (cmd, res.deferred_commands)
        assert (res.status, res.stdout, res.stderr) == real, cmd
        for root in (pair.real, pair.model):
            assert os.path.exists(os.path.join(root, "etc/default"))
    assert pair.facts(pair.model) == pair.facts(pair.real)


@pytest.mark.parametrize("setup, cmd, reason", [
    (_locale_file(None), "update-locale --no-checks LANGUAGE=de:en LANG=C.UTF-8", "hash order"),
    (None, "update-locale LANG=de_DE.UTF-8", "invalid locale settings"),
    (None, "update-locale --re LANG=C", "option"),
])
def test_update_locale_defers_what_real_perl_leaves_open(pair, setup, cmd, reason):
    pair.reset(setup)
    before = pair.facts(pair.model)
    res = pair.run_model(cmd)
    assert res.deferred_commands and reason in res.deferred_commands[0].reason, res.deferred_commands
    assert pair.facts(pair.model) == before


def test_invalid_locale_is_refused_by_the_real_script(pair):
    # what the deferred case leaves to first boot: the real script refuses and writes nothing
    pair.reset()
    before = pair.facts(pair.real)
    status, out, err = pair.run_real("update-locale LANG=de_DE.UTF-8")
    assert status != 0 and err == b"*** update-locale: Error: invalid locale settings:  LANG=de_DE.UTF-8\n"
    assert pair.facts(pair.real) == before
