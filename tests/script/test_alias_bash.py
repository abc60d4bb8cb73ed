"""Aliases in a ``#!/bin/bash`` script, against real bash: a non-interactive bash defines and
lists them but never substitutes them (no ``expand_aliases``), where dash does (the dash side
is in ``dash_cases.txt``)."""

from __future__ import annotations

import subprocess

import pytest

from judges import tool
from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()

CASES = [
    "alias e='echo x'\ne 2>/dev/null\necho st=$?\n",
    "alias q=\"it's\" w= b='echo b'\nalias q w\nalias\nalias nope 2>/dev/null; echo $?\n",
    "alias e='echo x'\nunalias e; echo $?\nunalias e 2>/dev/null; echo $?\nalias; unalias -a; alias\n",
    "f() { alias g='echo g'; }\nf\ng 2>/dev/null || echo not-substituted\n",
]


@pytest.mark.judge
@pytest.mark.parametrize("script", CASES)
def test_bash_agrees(script, tmp_path):
    path = tmp_path / "s.sh"
    path.write_text(script)
    real = subprocess.run([tool("bash"), str(path)], capture_output=True, text=True, cwd="/")
    r = run_script(MemoryFS(), script, models=MODELS, is_path=False, bash=True, name=str(path))
    assert (r.status, r.stdout.decode()) == (real.returncode, real.stdout)
    assert not r.deferred_whole and not r.deferred_commands
