"""gzip's zgrep (a shell script of the image) run by Nuwa's interpreter against the real one in a
chroot of a bookworm tree: it pipes ``gzip -cdfq`` into ``grep --label=FILE`` (clamav-freshclam's
debconf config asks ``zgrep -q MIRROR mirror-list.gz``)."""

from __future__ import annotations

import gzip
import os

import pytest

from registry_harness import shell_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return shell_pair(tmp_path_factory, "zgrep", ["srv"])


def files(root):
    os.makedirs(os.path.join(root, "srv"), exist_ok=True)
    with open(os.path.join(root, "srv/mirrors.gz"), "wb") as f:
        f.write(gzip.compress(b"db.local.clamav.net\ndb.de.clamav.net\n# comment\n", mtime=0))
    with open(os.path.join(root, "srv/plain"), "wb") as f:
        f.write(b"db.local.clamav.net\nother\n")


@pytest.mark.parametrize("cmd", [
    "zgrep -q db.local /srv/mirrors.gz; echo $?",
    "zgrep -q nothing /srv/mirrors.gz; echo $?",
    "zgrep db.local /srv/mirrors.gz",
    "zgrep -H clamav /srv/mirrors.gz /srv/plain",
    "zgrep -c db /srv/mirrors.gz /srv/plain",
    "zgrep -l local /srv/mirrors.gz /srv/plain",
    "zgrep -h -n db /srv/mirrors.gz",
    "zgrep db /srv/missing.gz; echo $?",
    "zgrep -e de -e local /srv/mirrors.gz",
])
def test_zgrep(pair, cmd):
    pair.check([cmd], setup=files)
