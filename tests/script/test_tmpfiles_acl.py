"""``a a+ A A+`` lines of systemd-tmpfiles (systemd 252) against the real program.

A bookworm tree with systemd is copied twice; each case writes the same files and one
``/etc/tmpfiles.d/t.conf`` on both, runs ``systemd-tmpfiles --create ... t.conf`` with real ``sh``
in a chroot of one copy and with Nuwa's interpreter on the other, then compares status, stdout,
stderr and the restored directories path by path, extended attributes included (the POSIX ACL
xattrs are read back from the host kernel, which stores what each side set).

The real program sets ACLs through ``/proc/self/fd/N`` and refuses to run without ``/proc``
("/proc/ is not mounted, but required"), as a booted system always has it; its chroot gets
``/proc`` mounted in a private mount namespace (``unshare -m``), gone when the command ends.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from registry_harness import ENV, ShellPair
from helpers.treecopy import put_anew

# the tree the chrony tests build: systemd in it, and one cached tree fewer to make
PACKAGES = ("chrony", "systemd")


class AclPair(ShellPair):
    PACKAGES = PACKAGES
    DIRS = ["srv", "etc/tmpfiles.d", "var/log/journal"]
    FILES = ["etc/machine-id"]

    def run_real(self, cmd, env=None):
        inner = f"mount -t proc proc {self.real}/proc && exec chroot {self.real} /bin/sh -c \"$0\""
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner, cmd], env=env or ENV,
                           capture_output=True, timeout=self.TIMEOUT, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def facts(self, root, normalize=None):
        out = super().facts(root, normalize)
        for rel in list(out):
            p = os.path.join(root, rel)
            names = sorted(os.listxattr(p, follow_symlinks=False))
            out[rel] += tuple((n, os.getxattr(p, n, follow_symlinks=False).hex()) for n in names)
        return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return AclPair(str(tmp_path_factory.mktemp("tmpacl")))


def conf(text: str, *more):
    """A setup: ``t.conf`` holding ``text``, a small tree under /srv/t, then ``more`` steps."""
    def setup(root):
        put_anew(root, "etc/tmpfiles.d/t.conf", text.encode())
        put_anew(root, "srv/t")
        os.chmod(os.path.join(root, "srv/t"), 0o755)
        put_anew(root, "srv/t/sub")
        os.chmod(os.path.join(root, "srv/t/sub"), 0o2750)
        put_anew(root, "srv/t/f", b"data\n", 0o640)
        put_anew(root, "srv/t/sub/g", b"more\n", 0o600)
        put_anew(root, "srv/t/l", link="f")
        for step in more:
            step(root)
    return setup


def acl(rel: str, name: str, value: bytes):
    """A setup step: an ACL xattr already on the path (set through the host kernel)."""
    def step(root):
        os.setxattr(os.path.join(root, rel), name, value, follow_symlinks=False)
    return step


CMD = "systemd-tmpfiles --create t.conf; echo $?"


@pytest.mark.parametrize("line", [
    "a /srv/t/f - - - - u:daemon:rw,g:adm:r",                 # named entries: mask from them
    "a /srv/t/f - - - - user:1234:r  ,  other:r,m:rx,g:0:w",  # spaces, ids, a given mask
    "a /srv/t/f - - - - u::rwx,g::r,o::-",                     # only the mode: no xattr stored
    "a /srv/t/sub - - - - d:u:bin:rwx,g:adm:x,default:o::r",  # access and default on a dir
    "a /srv/t/f - - - - d:g:adm:rx",                           # default only, on a file: nothing
    "a+ /srv/t/f - - - - u:bin:rwx",                           # merge into the mode's ACL
    "a+ /srv/t/sub - - - - d:group::r-x,d:group:adm:r-x,group::r-x,group:adm:r-x",  # the journal line
    "A /srv/t - - - - d:u:daemon:rwx,o::-",                    # recursive, default on dirs
    "A+ /srv/t - - - - g:adm:rw,d:g:adm:r",                    # recursive merge, link skipped
    "a /srv/t/l - - - - u:daemon:r",                           # a symlink: skipped
    "a /srv/t/* - - - - g:adm:r",                              # a glob
    "a /srv/t/missing - - - - u:daemon:r",                     # no such path: nothing, 0
    "a /srv/t/f - - - - group:wheel:r-x",                      # unknown group: warned, ignored
    "a /srv/t/f - - - - u:nosuchuser:r,g:adm:r",               # unknown user: the whole line
    "a /srv/t/f - - - - bogus",                                # not an entry
    "a /srv/t/f - - - - u:daemon:rr",                          # a letter twice
    "a /srv/t/f - - - - u:daemon:rwx:",                        # a field too many
    "a /srv/t/f - - - - d:d:u::r",                             # a second default prefix
    "a /srv/t/f",                                              # no argument: 65
    "a /srv/t/f - nosuchuser - - g:wheel:r",                   # ACL warning before the owner error
    "a /var/x - - - - g:wheel:r\na /srv/t/f - - - - g:adm:rw",  # warned even if not applied
    "a /srv/t/f - - - - g:adm:r,u:daemon:w,o::x,u::-",         # any order: sorted
    "a /srv/t/f - - - - u: daemon :rw,group : adm:xr",         # white space around names: bad
    "a /srv/t/f - - - - u::r w",                               # white space inside the perms
    "a /srv/t/f - - - - mask::rwx",                            # a mask alone: kept, extended
    "a /srv/t/f - - - - other:r,",                             # a trailing comma
    "a /srv/t/sub - - - - default:user:daemon:r,d:m::r",       # default: with a given mask
    "a+ /srv/t/sub - - - - d:u:daemon:r\na+ /srv/t/sub - - - - d:u:bin:w,d:u:daemon:rw",  # merged twice
])
def test_lines(pair, line):
    pair.check([CMD], setup=conf(line + "\n"))


def test_white_space_where_libacl_allows_it(pair):
    # before a tag, between a tag and its colon, after the perms
    pair.check([CMD], setup=conf("a /srv/t/f - - - - group :adm:r, u::rw ,m ::r \n"))
    assert "system.posix_acl_access" in os.listxattr(os.path.join(pair.real, "srv/t/f"))


def test_prefix_still_parses(pair):
    # the ACL text is parsed while the line is read, before --prefix drops the line
    pair.check(["systemd-tmpfiles --create --prefix=/srv t.conf; echo $?"],
               setup=conf("a /var/x - - - - g:wheel:r\na+ /srv/t/f - - - - g:adm:r\n"))


def test_merge_keeps_existing_mask(pair):
    # an ACL with a mask already there: a+ adds entries and leaves the mask as it was
    existing = bytes.fromhex("0200000001000600ffffffff020006000100000004000400ffffffff"
                             "080004000400000010000600ffffffff20000000ffffffff")
    pair.check([CMD, "a=1; echo $a"], setup=conf("a+ /srv/t/f - - - - u:bin:rwx,g:adm:w\n",
                                                 acl("srv/t/f", "system.posix_acl_access", existing)))


def test_replace_drops_extended_acl(pair):
    # a (no +) with only base entries over an extended ACL: the kernel removes the xattr
    existing = bytes.fromhex("0200000001000600ffffffff020006000100000004000400ffffffff"
                             "10000600ffffffff20000000ffffffff")
    pair.check([CMD], setup=conf("a /srv/t/f - - - - u::r,g::r,o::r\n",
                                 acl("srv/t/f", "system.posix_acl_access", existing)))


def test_with_other_lines(pair):
    # z then a+ on one path, as systemd.conf does for /var/log/journal (setgid kept)
    pair.check([CMD], setup=conf("z /srv/t 2755 root adm - -\na+ /srv/t - - - - d:group::r-x,d:group:adm:r-x,"
                                 "group::r-x,group:adm:r-x\nz /srv/t/f 0644 - - - -\n"))


def test_systemd_conf(pair):
    # the postinst's own command over the tree's real systemd.conf (the journal's ACLs)
    def machine(root):
        put_anew(root, "etc/machine-id", b"0123456789abcdef0123456789abcdef\n", 0o444)
        put_anew(root, "var/log/journal")
        os.chmod(os.path.join(root, "var/log/journal"), 0o755)
    pair.check(["systemd-tmpfiles --create systemd.conf >/dev/null; echo $?"], setup=conf("", machine))
    st = os.lstat(os.path.join(pair.model, "var/log/journal"))
    assert stat.S_IMODE(st.st_mode) == 0o2755
    assert "system.posix_acl_default" in os.listxattr(os.path.join(pair.model, "var/log/journal"))


def test_ext4_image(pair, tmp_path):
    """The same lines applied by Nuwa to an ext4 image (mkfs.ext4 -d of the case's files): after
    commit and close, ``e2fsck -fn`` is clean and the re-opened image holds the real program's
    ACLs and modes (the engine converts the VFS form to ext4's on-disk one and back)."""
    from judges import e2fsck_clean, run, tool
    from nuwa.formats.blockdev import RawFile
    from nuwa.fs.ext4 import open_ext4
    from nuwa.fs.overlay import Overlay
    from nuwa.script.interp import run_script
    from registry_harness import MODELS

    text = ("a+ /srv/t/f - - - - u:bin:rwx,g:adm:r\nA /srv/t/sub - - - - d:u:daemon:rwx,g:adm:rx\n"
            "a /srv/t - - - - u:daemon:rwx,d:g:adm:rw,d:o::-\n")
    pair.reset(conf(text))
    stage = tmp_path / "stage"
    for rel in ("etc/passwd", "etc/group", "etc/tmpfiles.d/t.conf", "srv/t", "usr/bin/systemd-tmpfiles"):
        os.makedirs(stage / os.path.dirname(rel), exist_ok=True)
        subprocess.run(["cp", "-a", os.path.join(pair.model, rel), str(stage / rel)], check=True)
    img = str(tmp_path / "fs.img")
    run([tool("mkfs.ext4"), "-q", "-F", "-d", str(stage), img, "16M"])
    fs = open_ext4(RawFile(img, writable=True), writable=True)
    ov = Overlay(fs)
    res = run_script(ov, CMD, env=dict(ENV), models=MODELS, is_path=False)
    assert not res.deferred_commands and res.stdout == b"0\n"
    ov.commit()
    fs.close()
    e2fsck_clean(img)
    assert pair.run_real(CMD)[1] == b"0\n"
    back = open_ext4(RawFile(img))
    for rel in ("srv/t", "srv/t/f", "srv/t/sub", "srv/t/sub/g"):
        host = os.path.join(pair.real, rel)
        want = {n: os.getxattr(host, n) for n in os.listxattr(host)}
        assert want, rel  # every one of them got an ACL from the real program
        assert {n: back.getxattr("/" + rel, n) for n in back.listxattr("/" + rel)} == want, rel
        assert stat.S_IMODE(back.lstat("/" + rel).st_mode) == stat.S_IMODE(os.lstat(host).st_mode), rel
