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
import lzma
import os

import pytest

import registry_harness
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import ENV, MODELS

__all__ = ["ENV", "MODELS", "Pair", "make_pair", "write"]


class Pair(registry_harness.Pair):
    """The registry harness's pair over a tree with install-info; ``sh SCRIPT ARGS`` steps run
    the script through the simulator on the model side."""

    PACKAGES, DIRS, FILES, TIMEOUT = ("install-info", "xz-utils"), ["usr/share/info", "tmp"], [], 300

    def run_model(self, argv, env=None):
        """The model itself, or (for ``sh SCRIPT ARGS``) the simulator running the script."""
        if argv[0] != "sh":
            return super().run_model(argv, env)
        ov = Overlay(HostDirFS(self.model, writable=True))
        res = run_script(ov, argv[1], argv=list(argv[2:]), env=dict(env or ENV), name=argv[1], models=MODELS)
        assert not res.deferred_whole and not res.deferred_commands, (argv, res.reason, res.deferred_commands)
        ov.commit()
        return res.status, res.stdout, res.stderr

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
