"""Differential harness for the registry updaters (update-xmlcatalog, update-catalog,
update-perl-sax-parsers, update-mime): the real Perl programs in a chroot are the oracle.

One bookworm minbase tree with xml-core, sgml-base, mailcap, libxml-sax-perl and the two
other SAX parser packages installed by mmdebstrap is copied twice per test module: ``real``
(``chroot real PROGRAM ...``) and ``model`` (the model on :class:`HostDirFS`). Each case
restores the directories the programs read and write on both copies from a pristine copy,
applies the same setup to both, runs the same command lines on both and compares every
step's stdout, stderr and exit status, then the restored directories path by path (type,
mode, owner, size, content, link target).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree, restore_paths
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation
from nuwa.script.interp import run_script

MODELS = default_models()
PACKAGES = ("xml-core", "sgml-base", "mailcap", "libxml-sax-perl", "libxml-libxml-perl", "libxml-sax-expat-perl")
ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
#: what the programs read and write; restored from the pristine copy before every case
DIRS = ["etc/xml", "var/lib/xml-core", "etc/sgml", "var/lib/sgml-base", "usr/share/sgml-base", "usr/share/xml",
        "usr/share/xml-core", "etc/perl/XML/SAX", "var/lib/libxml-sax-perl", "var/lib/ucf", "usr/lib/mime",
        "usr/share/applications", "usr/share/perl5/My", "tmp", "srv"]
FILES = ["etc/mailcap", "etc/mailcap.new", "etc/mailcap.order", "etc/update-mime.conf"]


class Pair:
    """Two copies of the tree and a pristine copy of what the cases change (other harnesses
    subclass it with their own packages, directories and files)."""

    PACKAGES, DIRS, FILES, TIMEOUT = PACKAGES, DIRS, FILES, 120

    def __init__(self, where: str):
        self.base = bookworm_tree(extra=self.PACKAGES)
        self.real = os.path.join(where, "real")
        self.model = os.path.join(where, "model")
        self.pristine = os.path.join(where, "pristine")
        for d in (self.real, self.model):
            copy_tree(self.base, d)

    def reset(self, setup=None) -> None:
        """Both copies back to the pristine state of DIRS and FILES, then ``setup(root)``.

        An overlay copy whose changes all lie in DIRS and FILES is remounted fresh
        (:func:`debian_tree.renew_copy`, a mount); any other copy has DIRS and FILES removed
        and copied back from a pristine copy of them (made from the tree at the first such
        reset: seconds of kernel time for a large directory such as the icon themes)."""
        for root in (self.real, self.model):
            restore_paths(self.base, root, self.DIRS + self.FILES, self._pristine)
            if setup:
                setup(root)

    def _pristine(self) -> str:
        """The pristine copy of DIRS and FILES, made from the tree at the first reset that needs it."""
        if not os.path.isdir(self.pristine):
            os.makedirs(self.pristine)
            for d in self.DIRS + self.FILES:
                src = os.path.join(self.base, d)
                if os.path.lexists(src):
                    os.makedirs(os.path.dirname(os.path.join(self.pristine, d)), exist_ok=True)
                    subprocess.run(["cp", "-a", src, os.path.join(self.pristine, d)], check=True)
        return self.pristine

    def run_real(self, argv, env=None):
        p = subprocess.run(["chroot", self.real, *argv], env=env or ENV, capture_output=True, timeout=self.TIMEOUT,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def run_model(self, argv, env=None):
        fs = HostDirFS(self.model, writable=True)
        inv = Invocation(argv=list(argv), fs=fs, cwd="/", env=dict(env or ENV), stdin=b"", umask=0o022,
                         models=MODELS)
        status = MODELS[os.path.basename(argv[0])](inv)
        return status, bytes(inv.stdout), bytes(inv.stderr)

    def facts(self, root, normalize=None):
        """Relative path -> (type, mode, uid, gid, size, content or link target), DIRS and FILES."""
        out = {}
        for d in self.DIRS + self.FILES:
            top = os.path.join(root, d)
            if not os.path.lexists(top):
                continue
            paths = [top]
            if os.path.isdir(top) and not os.path.islink(top):
                for dirpath, dirnames, filenames in os.walk(top):
                    paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
            for p in paths:
                rel = os.path.relpath(p, root)
                st = os.lstat(p)
                rec = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
                if stat.S_ISREG(st.st_mode):
                    data = open(p, "rb").read()
                    if normalize and rel in normalize:
                        data = b"".join(sorted(data.splitlines(keepends=True)))
                    rec += (len(data), hashlib.sha256(data).hexdigest())
                elif stat.S_ISLNK(st.st_mode):
                    rec += (os.readlink(p),)
                out[rel] = rec
        return out

    def check(self, steps, setup=None, normalize=None, env=None):
        """Each step on both sides: the same (status, stdout, stderr); then the same trees.

        ``normalize`` names files compared as sorted lines: the real program writes them in
        Perl's randomised hash order (update-xmlcatalog without ``--sort``).
        """
        self.reset(setup)
        results = []
        for argv in steps:
            real = self.run_real(argv, env)
            model = self.run_model(argv, env)
            assert model == real, argv
            results.append(real)
        fa, fb = self.facts(self.real, normalize), self.facts(self.model, normalize)
        diff = {k: (fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}
        assert not diff, diff
        return results


class ShellPair(Pair):
    """A Pair whose cases are command lines: real ``/bin/sh -c`` in a chroot of one copy, Nuwa's
    interpreter on the other (through an overlay then committed); ``PREFIX`` goes before each
    line on both sides. :meth:`check` allows no deferral and compares every output, then
    DIRS and FILES of both trees."""

    PREFIX = ""

    def run_real(self, cmd, env=None):
        p = subprocess.run(["chroot", self.real, "/bin/sh", "-c", self.PREFIX + cmd], env=env or ENV,
                           capture_output=True, timeout=self.TIMEOUT, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def run_model(self, cmd, env=None):
        fs = Overlay(HostDirFS(self.model, writable=True))
        res = run_script(fs, self.PREFIX + cmd, env=dict(env or ENV), models=MODELS, is_path=False)
        fs.commit()
        self.last = res
        return res.status, res.stdout, res.stderr

    def check(self, steps, setup=None, normalize=None, env=None):
        """Each command line on both sides (no deferral allowed), then the restored trees."""
        self.reset(setup)
        for cmd in steps:
            real = self.run_real(cmd)
            model = self.run_model(cmd)
            assert not self.last.deferred_commands, self.last.deferred_commands
            assert model == real, f"{cmd}:\nmodel {model}\nreal  {real}"
        fa, fb = self.facts(self.real), self.facts(self.model)
        diff = {k: (fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}
        assert not diff, diff


def shell_pair(tmp_path_factory, name: str, dirs: list[str]) -> ShellPair:
    """A module's ``pair``: a :class:`ShellPair` over the minbase tree whose cases touch only
    ``dirs`` (skips without root)."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    cls = type(f"{name}Pair", (ShellPair,), {"PACKAGES": (), "DIRS": list(dirs), "FILES": []})
    return cls(str(tmp_path_factory.mktemp(name)))


def make_pair(tmp_path_factory) -> Pair:
    """The module-scoped ``pair`` fixture of each test module (skips without root)."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return Pair(str(tmp_path_factory.mktemp("registries")))


def write(root: str, rel: str, data: bytes, mode: int = 0o644) -> None:
    """A file of a case's setup (parents made)."""
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
