"""``grep -P`` (grep 3.8, PCRE2) against the real one in a chroot of a bookworm minbase tree.

The model handles the subset of patterns whose meaning Python's ``re`` shares with PCRE2 on
ASCII text and defers the rest; each command line runs in real ``sh`` in the chroot and in
Nuwa's interpreter on the same (unchanged) tree, and status, stdout and stderr must agree.
"""

from __future__ import annotations

import os

import pytest

from debian_tree import bookworm_tree, link_tree
from helpers import runs
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

pytestmark = pytest.mark.judge

MODELS = default_models()
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
TEXT = r"printf 'cron.service enabled enabled\nssh.socket disabled enabled\nx.target static -\n" \
       r"a-b.c 12 x\n\nabc abd ab\nfoo/bar.baz\n'"

CASES = [
    "grep -P '(static|enabled)'", "grep -P '(generated)'", "grep -cP 'd$'", "grep -P '^[a-c]'",
    "grep -oP 'ab|abc'", "grep -oP 'ab+?'", "grep -P '\\d+'", "grep -wP 'ab'", "grep -xP 'x.target static -'",
    "grep -vP '\\s'", "grep -P '\\bab\\b'", "grep -nP 'o/b'", "grep -P '\\.'", "grep -oP '[^ ]+$'",
    "grep -P ''", "grep -qP 'nomatch'", "grep -P '[]a]'", "grep -lP 'c' -", "grep -P -e a -e b",
    "grep -P 'a\nb'", "grep -oP '(a|)b'", "grep -P 'ena.led' -m 1", "grep -hP '\\w\\W\\S\\D'",
    "grep --perl-regexp 'x\\-'",
]
DEFERRED = ["grep -P '(?=a)'", "grep -P 'a{2}'", "grep -P '('", "grep -iP 'a'", "grep -P '\\p{L}'",
            "printf '\\303\\251\\n' | grep -P '^.$'"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return link_tree(bookworm_tree(), str(tmp_path_factory.mktemp("grepP") / "root"))


def test_against_real(root):
    for case in CASES:
        cmd = f"{TEXT} | {case}; echo \"st=$?\""
        status, out, err = runs.run_real(["/bin/sh", "-c", cmd], chroot=root, env=ENV)
        res = run_script(HostDirFS(root), cmd, env=dict(ENV), models=MODELS, is_path=False)
        assert not res.deferred_commands, (case, res.deferred_commands)
        assert (res.status, res.stdout, res.stderr) == (status, out, err), case


def test_deferred(root):
    for case in DEFERRED:
        cmd = case if case.startswith("printf") else f"{TEXT} | {case}"
        res = run_script(HostDirFS(root), cmd, env=dict(ENV), models=MODELS, is_path=False)
        assert res.deferred_commands, case
