"""cracklib-packer (cracklib 2.9.6) against the real one in a chroot of a bookworm tree with
cracklib-runtime and wamerican installed.

Each case runs one command line with real ``sh`` in a chroot of one copy and with Nuwa's
interpreter on the other, compares status, stdout and stderr (nothing may be deferred), then
the dictionaries both wrote, byte for byte (``.pwd``, ``.pwi``, ``.hwm``). The real
``cracklib-check`` then reads the dictionary the model wrote.
"""

from __future__ import annotations

import gzip
import os
import subprocess

import pytest

from registry_harness import ENV, ShellPair, write

#: the tree the cracklib and file tests share (one cached tree, see debian_tree.bookworm_tree)
PACKAGES = ("bzip2", "cracklib-runtime", "file", "wamerican", "xz-utils", "zstd")


class CracklibPair(ShellPair):
    PACKAGES, DIRS, FILES = PACKAGES, ["var/cache/cracklib", "srv", "tmp", "usr/share/dict"], []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return CracklibPair(str(tmp_path_factory.mktemp("cracklib")))


def lists(root: str) -> None:
    """Word lists of every shape packer.c reads: empty lines, words out of order, long lines
    (cut to 30 bytes, or split by fgets at 1023), bytes above 127, a NUL, no last newline."""
    write(root, "srv/empty", b"")
    write(root, "srv/one", b"word\n")
    write(root, "srv/dups", b"a\na\nb\nb\nb\n")
    write(root, "srv/sixteen", b"".join(b"w%02d\n" % i for i in range(16)))
    write(root, "srv/seventeen", b"".join(b"w%02d\n" % i for i in range(17)))
    write(root, "srv/long", b"x" * 40 + b"\n" + b"y" * 2000 + b"\nzz\n\n\nnonl")
    write(root, "srv/order", b"b\na\n\xc3\xa9t\xc3\xa9\nA\n\0x\nq\0r\n")
    write(root, "srv/prefix", b"abc\nabcd\nabcdef\nabd\nb\nba\n" * 5)


CASES = [
    "cracklib-packer /srv/d </srv/empty; echo $?",
    "cracklib-packer /srv/d </srv/one; cracklib-packer /srv/e </srv/dups",
    "cracklib-packer /srv/d </srv/sixteen; cracklib-packer /srv/e </srv/seventeen",
    "cracklib-packer /srv/d </srv/long; cracklib-packer /srv/e </srv/prefix",
    "cracklib-packer /srv/d </srv/order",
    # cracklib-format's pipeline over the installed word lists, into the default dictionary
    "cracklib-format /usr/share/dict/cracklib-small | cracklib-packer",
    "cracklib-format /usr/share/dict/cracklib-small /usr/share/dict/american-english | cracklib-packer /srv/d",
    # the usage text; --help with a second argument is a dictionary name
    "cracklib-packer -h; echo $?; cd /srv && cracklib-packer --help x </srv/one; ls /srv",
    "umask 077; cracklib-packer /srv/d </srv/one; ls -l /srv/d.pwd | cut -c1-10",
]


@pytest.mark.parametrize("cmd", CASES)
def test_cracklib_packer(pair, cmd):
    pair.check([cmd], setup=lists)


def test_cracklib_check_reads_the_model_dictionary(pair):
    """The real cracklib-check finds words in the dictionary the model packed (in the model's
    copy), as it does in the real packer's."""
    pair.check(["cracklib-format /usr/share/dict/cracklib-small | cracklib-packer"])
    words = b"password\nzebra\nxkcd-Horse-9-Battery\nqwerty\nabc\nTr0ub4dor&3x\n"
    out = {}
    for root in (pair.real, pair.model):
        p = subprocess.run(["chroot", root, "cracklib-check"], input=words, env=ENV, capture_output=True, timeout=60)
        out[root] = (p.returncode, p.stdout, p.stderr)
    assert out[pair.model] == out[pair.real]
    assert b"password: it is based on a dictionary word" in out[pair.model][1]
    assert b"xkcd-Horse-9-Battery: OK" in out[pair.model][1]


def test_cracklib_packer_defers_an_unwritable_dictionary(pair):
    """packer.c's second error line depends on how stderr was opened (glibc's perror): deferred."""
    pair.reset(lists)
    pair.run_model("cracklib-packer /srv/no/d </srv/one")
    assert pair.last.deferred_commands
    assert "depends on how standard error was opened" in str(pair.last.deferred_commands)


def test_cracklib_packer_leaves_nothing_when_the_index_cannot_be_made(pair):
    """.pwd is created first; when .pwi cannot be (here a directory of that name), the deferral
    takes the new .pwd back: no empty dictionary half is left in the image for the boot."""
    def pwi_dir(root):
        lists(root)
        os.makedirs(os.path.join(root, "srv/dict.pwi"), exist_ok=True)
    pair.reset(pwi_dir)
    pair.run_model("cracklib-packer /srv/dict </srv/one")
    assert "depends on how standard error was opened" in str(pair.last.deferred_commands)
    assert not os.path.exists(os.path.join(pair.model, "srv/dict.pwd"))


def word_lists(root: str) -> None:
    """update-cracklib's sources: the installed lists, a gzipped one, a binary file and a
    README in /usr/share/dict (file -z decides which are text)."""
    write(root, "usr/share/dict/extra.gz", gzip.compress(b"frobnicatez\nqwertyuiop\nPassw0rd\n", mtime=1700000000))
    write(root, "usr/share/dict/blob", bytes(range(256)))
    write(root, "usr/share/dict/README", b"Word lists.\n")


@pytest.mark.parametrize("cmd", [
    # cracklib-runtime's postinst runs this; src-dicts removed so the dictionary is rebuilt
    "rm /var/cache/cracklib/src-dicts; update-cracklib; cat /var/cache/cracklib/src-dicts",
    "rm /var/cache/cracklib/src-dicts; update-cracklib >/dev/null; echo $?; update-cracklib; echo $?",
])
def test_update_cracklib(pair, cmd):
    """The whole of update-cracklib (file -z -b over /usr/share/dict, cracklib-format,
    cracklib-packer) simulated: the same output and the same dictionary, byte for byte."""
    pair.check([cmd], setup=word_lists)
    said = [subprocess.run(["chroot", root, "cracklib-check"], input=b"frobnicatez\n", env=ENV, capture_output=True,
                           timeout=60).stdout for root in (pair.real, pair.model)]
    assert said[0] == said[1] == b"frobnicatez: it is based on a dictionary word\n"
