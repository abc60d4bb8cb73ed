"""Differential harness for the server helpers (a2enmod, update-locale, ...): the real
programs in a chroot are the oracle.

One bookworm minbase tree with apache2, locales and ssl-cert installed by mmdebstrap (their
postinsts ran the real helpers) is copied twice: ``real`` (``chroot real sh -c CMD``) and
``model`` (the same command line interpreted by Nuwa on an overlay over :class:`HostDirFS`,
committed after each command). Before each case the directories the programs touch are
restored on both from a pristine copy and the case's setup is applied to both; the tests
compare each command's stdout, stderr and status, then those directories path by path
(type, mode, owner, size, content, link target).
"""

from __future__ import annotations

import os
import subprocess

from debian_tree import bookworm_tree, copy_tree, restore_paths
from helpers.trees import brief_facts, tree_facts
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()
PACKAGES = ("apache2", "locales", "ssl-cert")
ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}


class Pair:
    """Two copies of the tree and a pristine copy of what the cases change."""

    def __init__(self, where: str, dirs: list[str]):
        self.dirs = dirs
        base = self.base = bookworm_tree(extra=PACKAGES)
        self.real = os.path.join(where, "real")
        self.model = os.path.join(where, "model")
        self.pristine = os.path.join(where, "pristine")
        for d in (self.real, self.model):
            copy_tree(base, d)
        for d in self.dirs:
            os.makedirs(os.path.dirname(os.path.join(self.pristine, d)), exist_ok=True)
            if os.path.lexists(os.path.join(base, d)):
                subprocess.run(["cp", "-a", os.path.join(base, d), os.path.join(self.pristine, d)], check=True)

    def reset(self, setup=None) -> None:
        """Both copies' directories back to the pristine state, then ``setup(root)`` on each (an
        overlay copy whose changes all lie in them is remounted fresh instead:
        :func:`debian_tree.renew_copy`)."""
        for root in (self.real, self.model):
            restore_paths(self.base, root, self.dirs, self.pristine)
            if setup:
                setup(root)

    def run_real(self, cmd: str, stdin: bytes = b""):
        """(status, stdout, stderr) of ``sh -c CMD`` in a chroot of the real copy."""
        p = subprocess.run(["chroot", self.real, "/bin/sh", "-c", cmd], env=ENV, capture_output=True, timeout=120,
                           input=stdin)
        return p.returncode, p.stdout, p.stderr

    def run_model(self, cmd: str, stdin: bytes = b""):
        """The :class:`ScriptResult` of the same command line interpreted on the model copy."""
        # an overlay gives the nested `sh -c` (the envvars read) its savepoint, as in a patch run
        fs = Overlay(HostDirFS(self.model, writable=True))
        res = run_script(fs, cmd, env={**ENV, "DEBIAN_FRONTEND": "noninteractive"}, stdin=stdin, models=MODELS,
                         is_path=False)
        fs.commit()
        return res

    def facts(self, root: str) -> dict:
        """Path -> (mode, owner, size, content hash or link target) under the compared directories."""
        return tree_facts(root, brief_facts, subs=self.dirs)
