"""Differential harness for ``install-info``: the real program in a chroot is the oracle.

A bookworm minbase tree with install-info (and xz-utils, for .xz info files) installed by mmdebstrap is copied twice per test
module: ``real`` (``chroot real install-info ...``, ``chroot real update-info-dir``) and
``model`` (the model on :class:`HostDirFS`, or the simulator running the same shell script).
Each case restores ``/usr/share/info`` (and ``/tmp``) on both copies from a pristine copy,
applies the same setup to both, runs the same steps and compares every step's stdout,
stderr and exit status, then the restored directories path by path (type, mode, owner,
size, content, link target).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import stat
import subprocess

import pytest

from debian_tree import bookworm_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation
from nuwa.script.interp import run_script

MODELS = default_models()
ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
DIRS = ["usr/share/info", "tmp"]


class Pair:
    """Two copies of the tree and a pristine copy of what the cases change."""

    def __init__(self, where: str):
        base = bookworm_tree(extra=("install-info", "xz-utils"))
        self.real = os.path.join(where, "real")
        self.model = os.path.join(where, "model")
        self.pristine = os.path.join(where, "pristine")
        for d in (self.real, self.model):
            subprocess.run(["cp", "-a", base, d], check=True)
        for d in DIRS:
            os.makedirs(os.path.dirname(os.path.join(self.pristine, d)), exist_ok=True)
            subprocess.run(["cp", "-a", os.path.join(base, d), os.path.join(self.pristine, d)], check=True)

    def reset(self, setup=None) -> None:
        """Both copies back to the pristine DIRS, then ``setup(root)``."""
        for root in (self.real, self.model):
            for d in DIRS:
                p = os.path.join(root, d)
                shutil.rmtree(p)
                subprocess.run(["cp", "-a", os.path.join(self.pristine, d), p], check=True)
            if setup:
                setup(root)

    def run_real(self, argv, env=None):
        p = subprocess.run(["chroot", self.real, *argv], env=env or ENV, capture_output=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def run_model(self, argv, env=None):
        """The model itself, or (for ``sh SCRIPT ARGS``) the simulator running the script."""
        fs = HostDirFS(self.model, writable=True)
        if argv[0] == "sh":
            ov = Overlay(fs)
            res = run_script(ov, argv[1], argv=list(argv[2:]), env=dict(env or ENV), name=argv[1], models=MODELS)
            assert not res.deferred_whole and not res.deferred_commands, (argv, res.reason, res.deferred_commands)
            ov.commit()
            return res.status, res.stdout, res.stderr
        inv = Invocation(argv=list(argv), fs=fs, cwd="/", env=dict(env or ENV), stdin=b"", umask=0o022,
                         models=MODELS)
        status = MODELS[os.path.basename(argv[0])](inv)
        return status, bytes(inv.stdout), bytes(inv.stderr)

    def facts(self, root):
        """Relative path -> (type, mode, uid, gid, size, content or link target) below DIRS."""
        out = {}
        for d in DIRS:
            top = os.path.join(root, d)
            paths = [top]
            for dirpath, dirnames, filenames in os.walk(top):
                paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
            for p in paths:
                rel = os.path.relpath(p, root)
                st = os.lstat(p)
                rec = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
                if stat.S_ISREG(st.st_mode):
                    data = open(p, "rb").read()
                    rec += (len(data), hashlib.sha256(data).hexdigest())
                elif stat.S_ISLNK(st.st_mode):
                    rec += (os.readlink(p),)
                out[rel] = rec
        return out

    def check(self, steps, setup=None, env=None):
        """Each step on both sides: the same (status, stdout, stderr); then the same trees."""
        self.reset(setup)
        results = []
        for argv in steps:
            real = self.run_real(argv, env)
            model = self.run_model(argv, env)
            assert model == real, argv
            results.append(real)
        fa, fb = self.facts(self.real), self.facts(self.model)
        diff = {k: (fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}
        assert not diff, diff
        return results

    def dir_file(self, rel: str = "usr/share/info/dir") -> bytes:
        """The real side's dir file after a check (for asserting what the cases exercised)."""
        with open(os.path.join(self.real, rel), "rb") as f:
            return f.read()


def make_pair(tmp_path_factory) -> Pair:
    """The module-scoped ``pair`` fixture of each test module (skips without root)."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return Pair(str(tmp_path_factory.mktemp("installinfo")))


def write(root: str, rel: str, data: bytes, compress: bool | str = False) -> None:
    """A file of a case's setup (parents made); ``compress`` gzips it (fixed mtime), "xz" xz's it."""
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if compress == "xz":
        data = lzma.compress(data)
    elif compress:
        data = gzip.compress(data, mtime=0)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, 0o644)
