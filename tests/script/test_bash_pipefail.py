"""``set -o pipefail`` in a ``#!/bin/bash`` maintainer script (mariadb-server's postinst sets it),
against real bash: the status of a pipeline is its last failing command's; dash refuses the
option, and so does the simulator for a ``/bin/sh`` script."""

from __future__ import annotations

import subprocess

import pytest

from judges import tool
from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()

CASES = [
    "false | true; echo $?; set -o pipefail; false | true; echo $?; set +o pipefail; false | true; echo $?",
    "set -o pipefail; true | (exit 3) | true; echo $?; (exit 4) | (exit 5) | true; echo $?",
    "set -o pipefail; ! false | true; echo $?; true | true; echo $?",
    "set -e -o pipefail; true | true; echo on; false | true; echo never",
    "set -o pipefail; f() { return 7; }; f | true; echo $?; x=$(false | true); echo $?",
]


@pytest.mark.judge
@pytest.mark.parametrize("script", CASES)
def test_bash_agrees(script):
    real = subprocess.run([tool("bash"), "-c", script], capture_output=True, text=True, cwd="/")
    r = run_script(MemoryFS(), script + "\n", models=MODELS, is_path=False, bash=True, name="bash")
    assert (r.status, r.stdout.decode()) == (real.returncode, real.stdout)


def test_sh_refuses_the_option_as_dash_does():
    r = run_script(MemoryFS(), "set -o pipefail; echo no\n", models=MODELS, is_path=False)
    assert r.status == 2 and b"set: Illegal option -o pipefail" in r.stderr and r.stdout == b""
