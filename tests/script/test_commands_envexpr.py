"""Differential tests of the env, expr and getconf models against GNU coreutils 9.1 / glibc."""

import os
import shlex
import subprocess

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

from cmdharness import ENV, build_tree, compare, deferred, run_model

MODELS = default_models()

EXPR_CASES = [
    # arithmetic
    "expr 1 + 2", "expr 7 - 10", "expr 6 '*' 7", "expr 7 / 2", "expr -7 / 2", "expr 7 / -2", "expr -7 % 2",
    "expr 7 % -3", "expr 5 / 0", "expr 5 % 0", "expr 1 + a", "expr a '*' 2", "expr +1 + 1", "expr ' 1' + 1",
    "expr 99999999999999999999 + 1", "expr -99999999999999999999 '*' 99999999999999999999", "expr 2 - 2",
    "expr 1 + 2 '*' 3", "expr '(' 1 + 2 ')' '*' 3", "expr 10 - 3 - 2", "expr 00 + 1", "expr -0 + 0",
    # comparisons and logic
    "expr a '<' b", "expr 10 '<' 9", "expr 10 '<' 9a", "expr a = a", "expr a == b", "expr 01 = 1", "expr 2 '!=' 2",
    "expr b '>=' a", "expr 3 '>' 20", "expr a '<=' a", "expr a = a = 1", "expr 0 '|' 0", "expr 0 '|' b",
    "expr a '|' b", "expr '' '|' ''", "expr a '&' b", "expr a '&' 0", "expr 0 '&' 5 / 0", "expr 1 '|' 5 / 0",
    "expr '' '&' x",
    # values and nullness
    "expr 0", "expr -0", "expr 00", "expr ''", "expr -", "expr abc", "expr -- 5", "expr -- -- 5", "expr -1",
    # match / :
    "expr abc : a", "expr abc : ab", "expr abc : 'a*b'", "expr abc : b", "expr abc : '^a'", "expr abc : '.*'",
    "expr abc : '\\(b\\)'", "expr abc : 'a\\(b\\)c'", "expr abc : 'a\\(x*\\)'", "expr abc : 'x\\(b\\)'",
    "expr a : '*a'", "expr '*a' : '*a'", "expr a : '\\('", "expr a : '\\(a'", "expr a : 'a\\{1'",
    "expr 1.2.3 : '\\([0-9]*\\)'", "expr 1.2.3-4 : '.*-\\(.*\\)'", "expr match hello 'h.l'",
    "expr match hello '\\(h.\\)'", "expr foo.deb : '.*\\.deb$'", "expr abc : 'a[[:alpha:]]*'",
    "expr 10 : '[0-9]*'", "expr 5 + 5 : 1",
    # length / substr / index / +
    "expr length hello", "expr length ''", "expr length", "expr length 1 + 2", "expr substr hello 2 3",
    "expr substr hello 0 2", "expr substr hello -1 2", "expr substr hello 2 x", "expr substr hello 5 9",
    "expr substr hello 6 1", "expr substr hello 1 0", "expr substr hello", "expr index hello l",
    "expr index hello xyz", "expr index hello oh", "expr index hello ''", "expr + match", "expr + length",
    "expr +", "expr length + length",
    # syntax errors
    "expr", "expr --", "expr 1 +", "expr 1 2", "expr '('", "expr '(' 1", "expr '(' 1 2", "expr ')'",
    "expr 1 + '('", "expr a :", "expr 'it'\"'\"'s' 2",
    "expr 5 -- 3", "expr -- -5", "expr a : 'a\\|b'", "expr ab : 'a\\{2\\}'", "expr abc : '\\(a\\)\\(b\\)'",
    "expr 3 : '\\(\\)'", "expr '' : ''", "expr x '>' ''", "expr length 12345678901234567890", "expr index abc bc",
    "expr substr abc 1 99999999999999999999", "expr 1 : 1 : 1", "expr match", "expr '(' ')'", "expr 1 '|'",
    "expr --help x", "expr --version --help",
]

ENV_CASES = [
    "env", "env -i", "env -i A=1 B=2", "env A=1", "env HOME=/x", "env -u HOME", "env -u NOPE", "env -u HOME -u TZ",
    "env --unset=HOME", "env -iu X", "env - A=1", "env -- A=1", "env -0", "env -i -0 A=1 B=2", "env -u", "env -u a=b",
    "env -u ''", "env -i =x", "env -i A=1 A=2", "env -i 'A=x y' B=", "env --ignore-environment Z=9",
    "env nosuchcmd", "env -i nosuchcmd", "env ./f1", "env ./nosuch", "env d", "env -0 true",
    "env -i PATH=/nowhere f1", "env PATH=. f1", "env --nul A=1", "env -- - B=2", "env -i -- - -", "env -i A=1 -",
]

GETCONF_CASES = ["getconf CHAR_BIT", "getconf INT_MAX", "getconf UINT_MAX", "getconf NZERO", "getconf LINE_MAX",
                 "getconf LOGIN_NAME_MAX", "getconf HOST_NAME_MAX", "getconf NGROUPS_MAX",
                 "getconf _POSIX_VERSION"]


@pytest.mark.parametrize("cmd", EXPR_CASES)
def test_expr(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", ENV_CASES)
def test_env(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", GETCONF_CASES)
def test_getconf_fixed(tmp_path, cmd):
    compare(tmp_path, cmd)


def _host_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("name", ["LONG_BIT", "PAGESIZE", "PAGE_SIZE"])
def test_getconf_arch(tmp_path, name):
    """The value for the image's architecture equals the real getconf on a host of that architecture."""
    arch = _host_arch()
    real = subprocess.run(["getconf", name], capture_output=True, env=ENV)

    def setup(root):
        os.makedirs(os.path.join(root, "var/lib/dpkg"), exist_ok=True)
        with open(os.path.join(root, "var/lib/dpkg/status"), "w") as f:
            f.write(f"Package: base-files\nArchitecture: {arch}\n\nPackage: dpkg\nStatus: install ok installed\n"
                    f"Architecture: {arch}\n")

    root = str(tmp_path / "m")
    build_tree(root)
    setup(root)
    got = run_model(root, ["getconf", name], b"", 0o022)
    assert got == (real.returncode, real.stdout, real.stderr)


@pytest.mark.parametrize("cmd, reason", [("getconf LONG_BIT", "machine-dependent"),  # no dpkg database
                                         ("getconf _NPROCESSORS_ONLN", "machine-dependent"),
                                         ("getconf -a", "only `getconf NAME`")])
def test_getconf_defers(tmp_path, cmd, reason):
    assert reason in deferred(tmp_path, cmd)


def test_env_option_not_modelled(tmp_path):
    assert "not modelled" in deferred(tmp_path, "env -S 'a b'")


# env running a command: through the interpreter (Invocation.run with the new environment),
# against dash running the real programs. `env` output is sorted: dash passes its variables
# in hash order, the interpreter in definition order.
SCRIPTS = [
    "env A=1 B=2 env | sort",
    "env -i A=1 env",
    "env -i env",
    "env -u HOME env | sort",
    "env - X=y env",
    "FOO=shell; env FOO=cmd env | grep FOO",
    "FOO=notexported; env | grep -c FOO",
    "export FOO=exported; env -u FOO env | grep -c FOO; env FOO=over env | grep FOO",
    "env expr 1 + 2; echo st=$?",
    "env expr 0; echo st=$?",
    "env -i PATH=/usr/bin expr length abc",
    "env -i expr 1; echo st=$?",
    "env -i PATH=/nowhere expr 1; echo st=$?",
    "env nosuchcmd; echo st=$?",
    "env /usr/bin/expr 2 '*' 3",
    "env -- env -i Z=1 env",
    "env -i A=1 env B=2 env",
    "env -0 expr 1; echo st=$?",
    "env -u a=b expr 1; echo st=$?",
    "x=$(env -i N=5 expr 5 + 1); echo $x",
    "v=$(expr abc : 'a\\(.*\\)'); echo \"$v\"",
    "if expr 1 = 2 >/dev/null; then echo yes; else echo no $?; fi",
    "echo abc | env -u LC_ALL LC_CTYPE=C sed -e 's/b/x/'",
    "export FOO=1; env FOO=2 helper a b; echo st=$?",
    "env -i helper; echo st=$?",
    "env -i PATH=\"$PATH\" helper x; echo st=$?",
    "e=; env $e helper q",
]

HELPER = b"#!/bin/sh\necho helper:$FOO:$#:$1:$LC_ALL\nexit 3\n"


def _script_fs(bindir: str):
    fs = Overlay(MemoryFS())
    fs.makedirs("/usr/bin")
    fs.makedirs("/dev")
    for n in ("env", "expr", "sort", "grep", "sed", "sh"):
        fs.write_bytes(f"/usr/bin/{n}", b"\x7fELF\x02\x01\x01", 0o755)
    fs.makedirs(bindir)
    fs.write_bytes(f"{bindir}/helper", HELPER, 0o755)
    return fs


@pytest.mark.parametrize("script", SCRIPTS)
def test_env_runs_commands_like_dash(tmp_path, script):
    bindir = str(tmp_path / "bin")  # the same absolute path on the host and in the model
    os.makedirs(bindir)
    with open(os.path.join(bindir, "helper"), "wb") as f:
        f.write(HELPER)
    os.chmod(os.path.join(bindir, "helper"), 0o755)
    env = {"PATH": f"/usr/bin:/bin:{bindir}", "HOME": "/root", "LC_ALL": "C"}
    want = subprocess.run(["dash", "-c", script], cwd=tmp_path, env=env, capture_output=True)
    got = run_script(_script_fs(bindir), script + "\n", [], env=env, models=MODELS)
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    # dash itself adds PWD to the environment it passes on
    strip = [b"PWD=" + str(tmp_path).encode() + b"\n", b"PWD=/\n"]
    w, g = want.stdout, got.stdout
    for s in strip:
        w, g = w.replace(s, b""), g.replace(s, b"")
    assert (g, got.stderr.replace(b"sh: ", b""), got.status) == (w, want.stderr.replace(b"dash: ", b""), want.returncode)
