"""``kbd_mode`` (kbd 2.5.1) against the real program in a chroot of a bookworm tree with kbd.

setupcon (console-setup's postinst) asks ``kbd_mode`` for the keyboard mode and sets it. A
dormant image has no console: the model answers as the real program does when none of the
descriptors it tries is a console. The chroot copy has no ``/dev/console`` and ``/dev/tty``
(mmdebstrap makes them; through them the real program would reach the host's console), and
the command's descriptors are pipes and ``/dev/null``, so the real program meets no console
either. Options, usage errors (status 64), ``-h``, ``-V`` and ``-C`` are compared too.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script
from nuwa.script.record import DEFERRED

MODELS = default_models()
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    d = copy_tree(bookworm_tree(extra=("kbd",)), str(tmp_path_factory.mktemp("kbd") / "root"))
    for n in ("console", "tty"):
        if os.path.lexists(os.path.join(d, "dev", n)):
            os.unlink(os.path.join(d, "dev", n))
    return d


def both(root: str, script: str):
    r = subprocess.run(["chroot", root, "/bin/sh", "-c", script], capture_output=True, env=ENV,
                       stdin=subprocess.DEVNULL, timeout=60)
    res = run_script(HostDirFS(root), script, env=dict(ENV), models=MODELS)
    assert res.record.counts[DEFERRED] == 0 and not res.deferred_whole, res.deferred_commands
    assert (res.stdout, res.stderr, res.status) == (r.stdout, r.stderr, r.returncode), script
    return r


@pytest.mark.judge
@pytest.mark.parametrize("args", [
    "", "-a", "-u", "-k", "-s", "-f", "-a -f", "-uf", "--ascii", "--unicode", "--keycode", "--scancode",
    "--force -u", "--uni", "extra operands", "-u -- -a",
    "-a -u", "-au", "-u -u", "--ascii --unicode",            # a second mode: usage, 64
    "-x", "-ux", "--bogus", "-C", "--console", "--c=/dev/tty1",  # getopt's errors, then usage
    "-h", "--help", "-V", "--version", "-V -x", "-x -V", "-a -u -h", "-h -a -u",
    "-C /dev/tty1", "-C /etc/passwd", "-C /nonexistent -u", "--console=/dev/null", "-C/dev/tty0 -a",
])
def test_options(root, args):
    both(root, f"kbd_mode {args}; echo $?; /bin/kbd_mode {args}; echo $?")


@pytest.mark.judge
def test_as_setupcon_calls_it(root):
    # setupcon's probe and its two setters, output captured as the script captures it
    both(root, 'if which kbd_mode >/dev/null; then mode="`(LC_ALL=C; export LC_ALL; kbd_mode) 2>&1`"; '
               'echo "[$mode]"; fi; kbd_mode -u </dev/null >/dev/null 2>&1; echo $?; kbd_mode -a 2>&1; echo $?')
