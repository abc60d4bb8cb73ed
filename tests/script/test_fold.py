"""``fold`` (coreutils 9.1) against the real fold in a chroot of a bookworm tree: the same inputs
(long words, blanks, tabs, backspaces, carriage returns, no final newline, postfix's closing
message) with ``-s``, ``-b``, ``-w`` and their combinations; status, stdout and stderr."""

from __future__ import annotations

import itertools

import pytest

from registry_harness import shell_pair, write

TEXTS = {
    "postfix": b"Postfix (main.cf) is now set up with a default configuration.  If you need to make changes, "
               b"edit /etc/postfix/main.cf (and others) as needed.  To view Postfix configuration values, see "
               b"postconf(1).\n\nAfter modifying main.cf, be sure to run 'systemctl reload postfix'.\n\n",
    "long": b"a" * 200 + b" b\n" + b"word " * 40 + b"\n",
    "tabs": b"x\ty\tz" * 20 + b"\n\t\t\t\t\t\t\t\t\t\t\t x\n",
    "ctrl": b"abc\bdef\rghi " * 15 + b"\n",
    "nonl": b"no final newline " * 10,
    "blanks": b"          " * 12 + b"end\n",
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return shell_pair(tmp_path_factory, "fold", ["srv"])


def test_fold_against_real(pair):
    def setup(root):
        for name, data in TEXTS.items():
            write(root, f"srv/{name}", data)
    steps = [f"fold {opts} /srv/{name} | od -c | md5sum; fold {opts} /srv/{name} | tail -c 300; echo rc=$?"
             for name, opts in itertools.product(TEXTS, ("", "-s", "-b", "-bs", "-w 20", "-s -w 7", "-w1", "-sw 3"))]
    steps += ["fold -s < /srv/postfix", "fold /srv/postfix | tail -n 500", "tail -c 100000 /srv/long | wc -c", "fold -w 0 /srv/long; echo rc=$?", "fold -w x /srv/long; echo rc=$?",
              "fold /srv/missing; echo rc=$?", "fold /srv; echo rc=$?", "fold -s /srv/nonl /srv/postfix"]
    pair.check(steps, setup=setup)
