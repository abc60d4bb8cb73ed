"""``linux-check-removal`` (linux-base 4.9) against the real Perl program in a chroot of a copy
of ``kernel_tree()``.

The program compares its argument with the running kernel (``uname -r``): only for the running
kernel, outside a chroot or container, does it warn or ask a debconf question. The model
answers as the dormant image sees it: no kernel runs, so every version is "not running". The
real program in the chroot sees the host's kernel, so both branches are judged by choosing the
argument: a version that is not the host's (the same answer on both sides), and the host's own
version with ``/proc`` mounted and a pid 1 whose root it can compare with its own (the
program finds it is in a chroot and says the same). Without
``/proc`` the chroot goes undetected and the real program takes the "running kernel" branch;
that case shows what a *booted* image would do, which offline is never the situation.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from debian_tree import link_tree, upper_layer
from helpers.kerneltree import kernel_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script
from nuwa.script.record import DEFERRED

MODELS = default_models()
# debconf's frontend, started by the program's `use Debconf::Client::ConfModule`, prints which
# frontends it cannot start on this terminal; Nuwa's frontend is the noninteractive one (as in
# the debconf judges, tests/script/debconf_oracle.py)
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
       "DEBIAN_FRONTEND": "noninteractive"}
DEBCONF = "var/cache/debconf"
HOST = os.uname().release


@pytest.fixture
def root(tmp_path):
    """Two copies of the cached tree: the real program's and the model's. link_tree makes
    overlay copies as root (the modules, documentation and translations are there, unread by
    the program, which runs with LC_ALL=C); in a hard-linked copy debconf's files, which the
    frontend rewrites, are made the copy's own."""
    tree = kernel_tree()
    out = []
    for side in ("real", "model"):
        d = link_tree(tree, str(tmp_path / side))
        if upper_layer(d) is None:
            shutil.rmtree(os.path.join(d, DEBCONF))
            subprocess.run(["cp", "-a", os.path.join(tree, DEBCONF), os.path.join(d, DEBCONF)], check=True)
        out.append(d)
    return tuple(out)


def debconf_files(root: str) -> dict:
    top = os.path.join(root, DEBCONF)
    out = {}
    for n in sorted(os.listdir(top)):
        st = os.lstat(os.path.join(top, n))
        with open(os.path.join(top, n), "rb") as f:
            out[n] = (oct(st.st_mode), f.read())
    return out


def real_run(root: str, script: str, env: dict, proc: bool = False):
    if proc:
        # /proc only inside a private mount namespace, gone when the command ends; a PID
        # namespace makes pid 1 a child of this test, whose /proc/1/root the program may read
        # (the machine's own pid 1 may be out of reach)
        argv = ["unshare", "-m", "-p", "-f", "--propagation", "private", "sh", "-c",
                f"mount -t proc proc {root}/proc && chroot {root} /bin/sh -c \"$0\"", script]
    else:
        argv = ["chroot", root, "/bin/sh", "-c", script]
    r = subprocess.run(argv, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    return r.stdout.decode(), r.stderr.decode(), r.returncode


def model_run(root: str, script: str, env: dict):
    res = run_script(HostDirFS(root), script, env=env, models=MODELS)
    assert res.record.counts[DEFERRED] == 0 and not res.deferred_whole, res.deferred_commands
    return res.stdout.decode(), res.stderr.decode(), res.status


def both(roots: tuple[str, str], script: str, env: dict | None = None, proc: bool = False):
    env = {**ENV, **(env or {})}
    real = real_run(roots[0], script, env, proc)
    assert model_run(roots[1], script, env) == real
    assert debconf_files(roots[1]) == debconf_files(roots[0])
    return real


@pytest.mark.judge
@pytest.mark.parametrize("args", ["6.1.0-50-amd64", "0.0.0-not-running", "''", f"{HOST}x", "x y", "", "help",
                                  "--help", "--help x", "'help me'", "-v"])
def test_arguments(root, args):
    both(root, f"linux-check-removal {args}; echo $?; /usr/bin/linux-check-removal {args}; echo $?;"
               f" cd /usr/bin && ./linux-check-removal {args}; echo $?")


@pytest.mark.judge
@pytest.mark.parametrize("env", [{}, {"DPKG_MAINTSCRIPT_PACKAGE": "linux-image-x"}, {"DEBCONF_PACKAGE": "linux-base"}])
def test_host_kernel_in_a_detected_chroot(root, env):
    out = both(root, f"linux-check-removal {HOST}; echo $?", env, proc=True)
    assert out == ("0\n", "", 0)


@pytest.mark.judge
def test_running_branch_is_the_booted_case(root):
    # the chroot undetected (no /proc): the real program thinks the host's kernel is the
    # image's running one and warns; the dormant image has none, and the model stays silent
    script = f"linux-check-removal {HOST}; echo $?"
    assert real_run(root[0], script, ENV) == ("0\n", "W: Removing the running kernel\n", 0)
    assert model_run(root[1], script, ENV) == ("0\n", "", 0)
