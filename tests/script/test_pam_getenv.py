"""``pam_getenv`` against libpam-runtime 1.5.2's real Perl script in a chroot of a bookworm
minbase tree (perl-base runs it there, only as the judge).

Each case writes the same ``/etc/security/pam_env.conf`` and ``/etc/environment`` (or removes
them) on both copies, runs the same command lines (really in the chroot, modelled on the
other copy) and compares stdout, stderr (Perl's warnings and ``die`` messages) and the exit
status byte for byte, then the two ``/etc/security`` trees.
"""

from __future__ import annotations

import os

import pytest

from nuwa.script.context import Defer
from registry_harness import Pair, write

pytestmark = [pytest.mark.judge, pytest.mark.root]

ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
       "ZERO": "0", "WHO": "postgres"}


class PamPair(Pair):
    PACKAGES = ()
    DIRS = ["etc/security"]
    FILES = ["etc/environment"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return PamPair(str(tmp_path_factory.mktemp("pam_getenv")))


RICH_CONF = (b"# comment\nLANG DEFAULT=C.UTF-8\nLC_ALL DEFAULT=${HOME}/x OVERRIDE=\n"
             b"Q DEFAULT=\"a b\" OVERRIDE=0\n  R    DEFAULT=r1 \\\n    OVERRIDE=r2   # trailing comment\n"
             b"S OVERRIDE=${NOPE}\nD DEFAULT=one DEFAULT=two\nZ DEFAULT=${ZERO}z\nE DEFAULT=\\${HOME}:${WHO}\n"
             b"U DEFAULT=${HOME OVERRIDE=x=y\nV\tDEFAULT=\"unterminated\nW DEFAULT=@{PAM_USER}\n"
             b"CR DEFAULT=crlf\r\nEQ =x\n")
RICH_ENV = (b"export LC_TIME=\"de_DE.UTF-8\"\nFOO=bar=baz\nEMPTY=\nBAR=\"x\nBAZ='q\"\n  # c\nWS = y\nLANG=en_US.UTF-8\n"
            b"exportX=1\nexport export Y=2\nLONG=a \\\n  b\nHASH=a#b\n")
LOOKUPS = [["LANG"], ["-l", "LANG"], ["-s", "-l", "LC_ALL"], ["Q"], ["R"], ["S"], ["D"], ["Z"], ["E"], ["U"], ["V"],
           ["W"], ["CR"], ["CR\r"], ["EQ"], ["LC_TIME"], ["FOO"], ["EMPTY"], ["BAR"], ["BAZ"], ["WS "], ["WS"],
           ["exportX"], ["export Y"], ["LONG"], ["HASH"], ["-x"], ["LANG", "extra"], ["-l", "-l", "LANG"], ["nosuch"],
           ["LC_ALL", "-l"]]
USAGE = [[], ["-l"], ["-s", "-l"], ["0"], [""], ["-l", "0", "LANG"], ["-l", "", "LANG"]]


def _files(conf: bytes | None, env: bytes | None):
    def setup(root):
        for rel, data in (("etc/security/pam_env.conf", conf), ("etc/environment", env)):
            p = os.path.join(root, rel)
            if os.path.lexists(p):
                os.unlink(p)
            if data is not None:
                write(root, rel, data)
    return setup


def _steps(lookups):
    return [["pam_getenv", *args] for args in lookups]


def test_debian_files_as_shipped(pair):
    # the shipped pam_env.conf is all comments; /etc/environment is empty in a minbase tree
    pair.check(_steps([["-l", "LANG"], ["-l", "LC_ALL"], ["PATH"]] + USAGE), env=ENV)


@pytest.mark.parametrize("env", [RICH_ENV, None, b""], ids=["environment", "no-environment", "empty-environment"])
def test_rich_files(pair, env):
    pair.check(_steps(LOOKUPS), setup=_files(RICH_CONF, env), env=ENV)


@pytest.mark.parametrize("conf,env,lookups", [
    # a line with no white space ends pam_env.conf's reading (parse_line returns undef)
    (b"A DEFAULT=1\nBROKEN\nB DEFAULT=2\n", None, [["A"], ["B"], ["BROKEN"]]),
    # a continuation at the end of the file; an empty continued line
    (b"A DEFAULT=1 \\\n", b"X=1 \\\n\\\n", [["A"], ["X"]]),
    # a line "0" ends /etc/environment's reading (read_line's false value)
    (b"", b"A=1\n0\nB=2\n", [["A"], ["B"]]),
    (b"", b"A=1\n\\\nB=2\n", [["A"], ["B"]]),
    # no newline at the end; a quote alone; two quotes
    (b"K DEFAULT=v", b"Q1=\"\nQ2=''\nQ3=\"a'", [["K"], ["Q1"], ["Q2"], ["Q3"]]),
    # values without a key, keys without a value, odd splits
    (b"A B=1 C=2 DEFAULT=3\nB DEFAULT\nC =DEFAULT=x\n", b"=v\n", [["A"], ["B"], ["C"], [""], ["=v"]]),
    # undefined values: Perl's warning, its key quoting and its 32-character cut
    (b'x"y\\z$a OVERRIDE=\n' + b"k" * 40 + b" OVERRIDE=\nat@sign OVERRIDE=\n", None,
     [['x"y\\z$a'], ["k" * 40], ["at@sign"]]),
    # a name with an @ dies at the first value the script expands
    (b"A OVERRIDE=\nB DEFAULT=b\n", None, [["a@b"], ["a\\@b"], ["-l", "x@"]]),
    (b"A OVERRIDE=\n", None, [["a@b"]]),
])
def test_odd_lines(pair, conf, env, lookups):
    pair.check(_steps(lookups), setup=_files(conf, env), env=ENV)


def test_missing_pam_env_conf(pair):
    pair.check(_steps([["LANG"], []]), setup=_files(None, b"LANG=C\n"), env=ENV)

    def dangling(root):
        _files(None, None)(root)
        os.symlink("nowhere", os.path.join(root, "etc/security/pam_env.conf"))
    pair.check(_steps([["LANG"]]), setup=dangling, env=ENV)


def test_script_name_from_path(pair):
    # Perl names the script by the path the shell ran: /sbin first in PATH
    env = dict(ENV, PATH="/sbin:/bin")
    pair.check(_steps([["S"]]), setup=_files(b"S OVERRIDE=\n", None), env=env)


def test_defers(pair):
    pair.reset(_files(b"\x01 OVERRIDE=\n", None))
    with pytest.raises(Defer, match="control or non-ASCII"):
        pair.run_model(["pam_getenv", "\x01"])
    pair.reset(_files(b"", None))
    os.unlink(os.path.join(pair.model, "etc/security/pam_env.conf"))
    os.mkdir(os.path.join(pair.model, "etc/security/pam_env.conf"))
    with pytest.raises(Defer, match="not a regular file"):
        pair.run_model(["pam_getenv", "LANG"])
    os.rmdir(os.path.join(pair.model, "etc/security/pam_env.conf"))
    script = os.path.join(pair.model, "usr/sbin/pam_getenv")
    saved = open(script, "rb").read()
    try:
        with open(script, "ab") as f:
            f.write(b"# changed\n")
        with pytest.raises(Defer, match="not libpam-runtime 1.5.2's script"):
            pair.run_model(["pam_getenv", "LANG"])
    finally:
        with open(script, "wb") as f:
            f.write(saved)
