"""ucfq (ucf 3.0043's query tool, Perl) against the real one in a chroot of a bookworm tree.

The tree is the registry harness's (xml-core, mailcap, the SAX parsers: ucf comes with them,
and libxml-sax-perl registers ``/etc/perl/XML/SAX/ParserDetails.ini`` with ucf). Each case
lays out state directories and configuration files under ``/srv`` (and, for the default
state directory, ``/var/lib/ucf``) on both copies, runs one command line with real ``sh`` in
a chroot of one copy and with Nuwa's interpreter on the other, and compares status, stdout
and stderr (nothing may be deferred), then the restored directories.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from debian_tree import link_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import ENV, MODELS, ShellPair, write


class UcfqPair(ShellPair):
    DIRS = ["srv", "var/lib/ucf", "etc/perl/XML/SAX", "etc/default"]
    FILES = []

    def __init__(self, where: str):
        # ucfq writes nothing and every case lays out DIRS anew: hard-linked copies suffice
        from debian_tree import bookworm_tree
        base = self.base = bookworm_tree(extra=self.PACKAGES)  # (Pair.reset remounts overlay copies of it)
        self.real, self.model, self.pristine = (os.path.join(where, n) for n in ("real", "model", "pristine"))
        link_tree(base, self.real)
        link_tree(base, self.model)
        os.makedirs(self.pristine)
        for d in self.DIRS:
            if os.path.lexists(os.path.join(base, d)):
                os.makedirs(os.path.dirname(os.path.join(self.pristine, d)), exist_ok=True)
                link_tree(os.path.join(base, d), os.path.join(self.pristine, d))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return UcfqPair(str(tmp_path_factory.mktemp("ucfq")))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def layout(root: str) -> None:
    """Files in several states, a state directory naming them, and a second, long one."""
    write(root, "srv/etc/a.conf", b"a\n")
    write(root, "srv/etc/b.conf", b"b\n")
    write(root, "srv/etc/c.conf", b"c\n")
    write(root, "srv/etc/unreg.conf", b"x\n")
    write(root, "srv/etc/owned.conf", b"o\n")
    os.symlink("a.conf", os.path.join(root, "srv/etc/link.conf"))
    os.symlink("nowhere", os.path.join(root, "srv/etc/dangling.conf"))
    os.makedirs(os.path.join(root, "srv/etc/dir.conf"))
    a = md5(b"a\n")
    write(root, "srv/st/registry", (
        "pkg-one /srv/etc/a.conf\n"          # unmodified
        "pkg-one /srv/etc/b.conf\n"          # modified
        "pkg-two /srv/etc/c.conf\n"          # no hash recorded
        "pkg-two /srv/etc/missing.conf\n"    # registered, hash recorded, gone
        "pkg-three /srv/etc/link.conf\n"     # a symbolic link (shown by its target)
        "pkg-three /srv/etc/dir.conf\n"      # md5sum fails on it
        "pkg-four /srv/etc/owned.conf\n"     # owned by a package not asked for
        "not a registry line\n"
        "pkg-five\n"
        "pkg-six /srv/etc/zero.conf\n"
        "old-owner /srv/etc/owned.conf\n"
        "pkg-four /srv/etc/owned.conf\n"     # the last line for a file wins
        "pkg-seven /srv/etc/dangling.conf\n"
        "pkg-eight srv/etc/c.conf\n"         # a relative name (cwd is /)
        "pkg-nine /srv/etc/a.conf\n").encode())
    write(root, "srv/st/hashfile", (
        f"{a} /srv/etc/a.conf\n"
        f"{'0' * 32} /srv/etc/b.conf\n"
        f"{a} /srv/etc/missing.conf\n"
        f"{a} /srv/etc/link.conf\n"
        f"{a} /srv/etc/dir.conf\n"
        f"{md5(b'o')} /srv/etc/owned.conf\n"
        f"{md5(b'o' + bytes([10]))} /srv/etc/owned.conf\n"
        f"0 /srv/etc/zero.conf\n"
        f"{md5(b'c' + bytes([10]))} srv/etc/c.conf\n"
        "garbage\n").encode())
    many = "".join(f"pkg-many /srv/e2/f{i:03d}\n" for i in range(1, 126))
    many += "pkg-a-very-long-package-name-here /srv/etc/a-very-long-configuration-file-name-that-overflows.conf\n"
    write(root, "srv/st2/registry", many.encode())
    os.makedirs(os.path.join(root, "srv/st3/registry"))  # a directory: read as empty
    os.symlink("/srv/st", os.path.join(root, "srv/stlink"))


def grub_registry(owner: str):
    """The default state directory with /etc/default/grub registered by ``owner``."""
    def setup(root):
        layout(root)
        write(root, "etc/default/grub", b"GRUB_DEFAULT=0\n")
        reg = os.path.join(root, "var/lib/ucf/registry")
        old = open(reg, "rb").read()
        os.unlink(reg)  # a hard-linked copy: a new inode, never a write into the shared one
        write(root, "var/lib/ucf/registry", old + f"{owner} \t/etc/default/grub\n".encode())
    return setup


CASES = [
    # the query modes
    "ucfq -w --state-dir /srv/st pkg-one pkg-two pkg-three",
    "ucfq --state-dir /srv/st pkg-one pkg-two pkg-three /srv/etc/unreg.conf /srv/etc/nonexist",
    "ucfq --state-dir=/srv/st -w /srv/etc/c.conf /srv/etc/owned.conf /srv/etc/link.conf",
    "ucfq --state-dir /srv/st pkg-four pkg-six pkg-seven pkg-eight",
    "ucfq -w --state-dir /srv/st pkg-five pkg-nobody /srv/etc/zero.conf",
    "ucfq -w --state-dir /srv/stlink pkg-one pkg-one",
    "cd /srv && ucfq -w --state-dir st pkg-two /srv/etc/../etc//link.conf /srv/etc/a.conf/ /srv/etc/dir.conf/",
    "ucfq --state-dir /srv/st2 pkg-many pkg-a-very-long-package-name-here",
    "ucfq -w --state-dir /srv/st2 pkg-a-very-long-package-name-here",
    "ucfq --state-dir /srv/st3 pkg-one /srv/etc/a.conf",
    "ucfq --state-dir /srv/nonexistent pkg-one /srv/etc/a.conf",
    "ucfq -w /etc/perl/XML/SAX/ParserDetails.ini; ucfq libxml-sax-perl",
    "ucfq \"$(printf '/srv/x\\ty')\" \"$(printf '/srv/a\\001b')\" \"$(printf '/srv/n\\nl')\" /srv/é/x",
    "ucfq -w; ucfq; echo $?",
    # how scripts use it: grub-pc's postinst, dovecot's postrm
    "ucfq --with-colons /etc/default/grub | cut -d : -f 2",
    "ucfq --with-colons pkg-one --state-dir /srv/st | cut -d: -f1",
    # options: Getopt::Long with bundling
    "ucfq -h; echo $?",
    "ucfq --HELP",
    "ucfq -wd /srv/etc/c.conf; ucfq -dvw /srv/etc/c.conf; ucfq --w /srv/etc/c.conf",
    "ucfq --with /srv/etc/c.conf; ucfq --With-Colons /srv/etc/c.conf",
    "ucfq --no-with-colons /srv/etc/c.conf; ucfq -w --nowith-colons /srv/etc/c.conf; ucfq -w --no /srv/etc/c.conf",
    "ucfq --st /srv/st -w pkg-two; ucfq --s /srv/st -w pkg-two",
    "ucfq -w pkg-two -- --state-dir /srv/st",
    "ucfq -w --state-dir /srv/st pkg-two --state-dir /nonexist",
    "ucfq --state-dir -w pkg-two; ucfq --state-dir=/srv/st --state-dir pkg-two",
    # bad input: unknown options and missing values only warn
    "ucfq --bogus -x --state-dir /srv/st pkg-one; echo $?",
    "ucfq --state-dir; echo $?",
    "ucfq --state-dir= -w /srv/etc/c.conf",
    "ucfq -W /srv/etc/c.conf; ucfq -with /srv/etc/c.conf",
    "ucfq -xh; ucfq -hx",
    "ucfq --with-colons=1 /srv/etc/c.conf; ucfq --debug=1 -w /srv/etc/c.conf",
    "ucfq --deb=1 --no=1 --no-wi=1 -w /srv/etc/c.conf",
    "ucfq --x=3 -w /srv/etc/c.conf; ucfq --nodebug /srv/etc/c.conf; ucfq --- -w /srv/etc/c.conf",
    "ucfq -w /srv/etc/c.conf +x +state-dir=/a + +with-colons",
    "ucfq -w-x /srv/etc/c.conf; ucfq -w- --state-dir /srv/st pkg-one",
    "ucfq -w - pkg-two /srv/etc/c.conf",
    "ucfq --state-dir /srv/st etc/x; echo $?",
    "ucfq --state-dir /srv/st pkg-one /srv/etc/a.conf etc/x",
]


@pytest.mark.parametrize("cmd", CASES)
def test_ucfq(pair, cmd):
    pair.check([cmd], setup=layout)


@pytest.mark.parametrize("owner", ["grub-pc", "grub-efi-amd64", "other"])
def test_grub_pc_postinst_line(pair, owner):
    """grub-pc's postinst asks which package registered /etc/default/grub, then ucfr."""
    cmd = ('package="$(ucfq --with-colons /etc/default/grub | cut -d : -f 2)"; '
           'if echo $package | grep -q "^grub-" ; then echo force $package; else echo plain "$package"; fi')
    pair.check([cmd], setup=grub_registry(owner))


def model_run(pair, cmd, setup=layout):
    pair.reset(setup)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    return run_script(fs, cmd, env=dict(ENV), models=MODELS, is_path=False)


@pytest.mark.parametrize("cmd, reason", [
    ("ucfq --state-dir /srv/st a/b c/d", "several relative file names"),
    ("ucfq --state-dir /srv/st pkg-one pkg-nine", "registered by pkg-nine, pkg-one"),
    ("ucfq --state-dir /srv/sd pkg-d", "md5sum fails on several files"),
    ("ucfq --state-dir /srv/st ''", "a package argument that is false"),
    ("ucfq --state-dir /srv/st 0", "a package argument that is false"),
    ("ucfq --state-dir '' pkg-one", "state directory ''"),
    ("ucfq --state-dir /srv/sd pkg-zero", "pkg-zero registers a file named '0'"),
    ("cd /srv && ucfq --state-dir sd pkg-dash", "'-n' on md5sum's command line"),
    ("ucfq --state-dir /srv/sd /srv/fifo", "not a regular file"),
    ("POSIXLY_CORRECT=1 ucfq -w pkg-one", "POSIXLY_CORRECT"),
    ("/srv/bin/ucfq -w pkg-one", "is not ucf 3.0043's ucfq"),
    ("setpriv --reuid man --regid man --init-groups ucfq -w pkg-one", "ucfq run as man"),
])
def test_deferred(pair, cmd, reason):
    """What ucfq's result would depend on (Perl's hash order, a shell, a dying Perl) defers,
    with the reason, and prints nothing."""
    def setup(root):
        layout(root)
        os.mkfifo(os.path.join(root, "srv/fifo"))
        os.makedirs(os.path.join(root, "srv/d2"))
        write(root, "srv/-n", b"n\n")
        write(root, "srv/sd/registry", b"pkg-d /srv/etc/dir.conf\npkg-d /srv/d2\npkg-zero 0\npkg-dash -n\n")
        write(root, "srv/sd/hashfile", f"{md5(b's')} /srv/fifo\n{md5(b's')} /srv/etc/dir.conf\n"
                                       f"{md5(b's')} /srv/d2\n{md5(b's')} -n\n".encode())
        text = open(os.path.join(root, "usr/bin/ucfq"), "rb").read()
        write(root, "srv/bin/ucfq", text.replace(b"Update Count     : 81", b"Update Count     : 82"), 0o755)
    r = model_run(pair, cmd, setup)
    assert [d.reason for d in r.deferred_commands if reason in d.reason], r.deferred_commands
    assert r.stdout == b""


def test_shell_metacharacters_in_a_registered_name_defer(pair):
    """A registered name with a shell metacharacter: Perl would run md5sum through sh."""
    def setup(root):
        layout(root)
        write(root, "srv/q/x;y", b"q\n")
        write(root, "srv/sq/registry", b"pkg-q /srv/q/x;y\n")
        write(root, "srv/sq/hashfile", f"{md5(b'q')} /srv/q/x;y\n".encode())
    r = model_run(pair, "ucfq --state-dir /srv/sq pkg-q", setup)
    assert [d.reason for d in r.deferred_commands] == ["ucfq: '/srv/q/x;y' on md5sum's command line (Perl's shell rules)"]
