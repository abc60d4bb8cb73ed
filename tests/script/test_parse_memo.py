"""``parse`` memoises trees by text; the interpreter never changes a tree, so running one
tree twice gives what parsing it twice gives, and a syntax error is raised every time."""

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script
from nuwa.script.lexer import ParseError
from nuwa.script.parser import parse

SCRIPT = """
f() { x=$((x + 1)); read line; echo "call $x $* $line"; }
x=0
for a in 1 2; do f "$a" <<END
in$a
END
done
case "$x" in 2) echo two;; *) echo other;; esac
printf '%s\\n' "$(f inner </dev/null)"
"""


def test_same_text_same_tree_and_same_runs():
    assert parse(SCRIPT) is parse(SCRIPT)
    assert parse(SCRIPT) is not parse(SCRIPT, bash=True)
    outs = []
    for _ in range(2):
        fs = MemoryFS()
        fs.mkdir("/dev", 0o755)
        fs.write_bytes("/dev/null", b"")
        r = run_script(fs, SCRIPT, models=default_models())
        outs.append(r)
    assert (outs[0].status, outs[0].stdout) == (outs[1].status, outs[1].stdout)
    assert outs[0].stdout == b"call 1 1 in1\ncall 2 2 in2\ntwo\ncall 3 inner \n"


def test_syntax_errors_are_raised_every_time():
    for _ in range(2):
        with pytest.raises(ParseError):
            parse("if true; then\n")
