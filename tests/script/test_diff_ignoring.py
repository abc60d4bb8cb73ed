"""``diff -w``/``-B`` (diffutils 3.8) against the real diff in a chroot of a bookworm tree.

apt-listchanges's postinst asks ``diff -qwB NEW OLD`` whether the file its helper wrote differs
from the conffile other than in white space and blank lines. The model answers where the edit
script's shape cannot matter and defers the rest; every answer it gives is compared with the
real diff (status, stdout, stderr), and the deferrals are counted so that the judged cases are
most of them.
"""

from __future__ import annotations

import itertools

import pytest

from registry_harness import shell_pair, write

TEXTS = {
    "conf": b"[apt]\nfrontend=pager\nwhich=news\n",
    "conf_blank_end": b"[apt]\nfrontend=pager\nwhich=news\n\n",
    "conf_blank_start": b"\n[apt]\nfrontend=pager\nwhich=news\n",
    "conf_spaces": b"[apt]\nfrontend = pager\n  which=news\t\n",
    "conf_ws_line": b"[apt]\nfrontend=pager\n \t\nwhich=news\n",
    "conf_other": b"[apt]\nfrontend=mail\nwhich=news\n\n",
    "conf_moved_blank": b"[apt]\n\nfrontend=pager\nwhich=news\n",
    "conf_no_newline": b"[apt]\nfrontend=pager\nwhich=news",
    "empty": b"",
    "blank": b"\n\n",
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return shell_pair(tmp_path_factory, "diffws", ["srv"])


def _setup(root):
    for name, data in TEXTS.items():
        write(root, f"srv/{name}", data)


def test_diff_ignoring_space_and_blank_lines(pair):
    pair.reset(_setup)
    judged = deferred = 0
    for (a, b), opts in itertools.product(itertools.permutations(TEXTS, 2), ("-qwB", "-qw", "-qB", "-wB", "-w")):
        cmd = f"diff {opts} /srv/{a} /srv/{b}; echo rc=$?"
        real = pair.run_real(cmd)
        model = pair.run_model(cmd)
        if pair.last.deferred_whole or pair.last.deferred_commands:
            reasons = pair.last.reason + " ".join(d.reason for d in pair.last.deferred_commands)
            # differing output without -q, a missing last newline, an ambiguous blank-line change
            assert ("-q" not in opts and real[0] == 0 and b"rc=1" in real[1]) or "no newline" in reasons or (
                "blank lines only" in reasons), (cmd, reasons, real)
            deferred += "-q" in opts
            continue
        assert model == real, f"{cmd}:\nmodel {model}\nreal  {real}"
        judged += 1
    assert judged > 2 * deferred, (judged, deferred)  # most -q deferrals: the missing last newline
