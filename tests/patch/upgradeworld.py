"""The upgrade world of one Debian suite, for "apt's result" (tests/patch/test_fidelity.py).

An outdated minbase tree of the suite (``tools/dpkg_material.base_tree(suite, variant=...)``:
mmdebstrap from the suite's main only; the ``server`` variant adds nginx and ca-certificates),
its ``sources.list`` naming a mirror on 127.0.0.1 that serves
what real apt downloaded (Debian's signed InRelease files, the ``main`` indexes of the suite
and its update suites, the update .debs: ``dpkg_material.local_mirror(suite)``). From it:

- the **image**: ``mkfs.ext4 -d TREE``, for ``nuwa patch --upgrade``;
- the **reference**: a copy of the tree where the tree's *own* apt (trixie's verifies with
  ``sqv``, bookworm's with ``gpgv``) runs ``apt-get update`` and ``apt-get -y upgrade`` in a
  chroot against the same mirror, with ``/usr/sbin/policy-rc.d`` exiting 101 during the run.

Both start from byte-identical trees and see the same archive, so whatever differs afterwards
is either listed with its reason in docs/fidelity.md or a bug.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading

from debian_tree import copy_tree
from helpers.oracle import POLICY_RC_D, dpkg_material
from judges import tool

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
       "HOME": "/root"}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class World:
    """A served mirror, the prepared tree and its image; :meth:`close` stops the server and
    removes the trees."""

    def __init__(self, suite: str, top: str, variant: str = "minbase"):
        self.suite = suite
        self.variant = variant
        self.base = dpkg_material.base_tree(suite, variant=variant)
        debs = dpkg_material.deb_files(suite, variant=variant)
        if not debs:
            raise dpkg_material.PlanError(
                f"nothing is pending for {suite} today (assumption: {suite}-updates or {suite}-security hold a "
                f"newer version of a package of the {suite} {variant} tree); apt-get dist-upgrade fetched no .deb")
        self.steps = dpkg_material.apt_steps(self.base, suite=suite, variant=variant)
        mirror, self.suites = dpkg_material.local_mirror(suite, variant=variant)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=mirror))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # the trees live beside the material (same filesystem, room for them)
        self.tree = os.path.join(os.path.dirname(self.base), f"fidelity-tree-{os.getpid()}")
        copy_tree(self.base, self.tree)
        with open(os.path.join(self.tree, "etc/apt/sources.list"), "w") as f:
            f.write("".join(f"deb {self.url}/{m} {s} main\n" for m, s in self.suites))
        self.img = os.path.join(top, "image.raw")
        subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", self.tree, self.img, "900M"], check=True)
        self.ref = self.tree + "-ref"

    def unpacked(self) -> dict[str, str]:
        """name -> version of every .deb apt's own plan unpacks."""
        out = {}
        for action, ops in self.steps:
            if action == "unpack":
                for p in ops:
                    name, version = os.path.basename(p).split("_")[:2]
                    out[name] = version.replace("%3a", ":")
        return out

    def reference(self) -> str:
        """The reference tree: real ``apt-get update`` + ``apt-get -y upgrade`` in a chroot copy."""
        copy_tree(self.tree, self.ref)
        prc = os.path.join(self.ref, "usr/sbin/policy-rc.d")
        with open(prc, "w") as f:
            f.write(POLICY_RC_D)
        os.chmod(prc, 0o755)
        try:
            # no translations on the mirror; no pty in a bare chroot (apt's log would say so on stderr)
            for args in (["apt-get", "-q", "-o", "Acquire::Languages=none", "update"],
                         ["apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0", "upgrade"]):
                r = subprocess.run([tool("chroot"), self.ref, *args], capture_output=True, text=True, env=ENV)
                assert r.returncode == 0 and "E: " not in r.stderr and "W: " not in r.stderr, (
                    f"real {' '.join(args)} in the {self.suite} chroot: exit {r.returncode}\n"
                    f"{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
        finally:
            os.unlink(prc)
        return self.ref

    def close(self) -> None:
        """Stop the mirror, remove both trees."""
        self.httpd.shutdown()
        shutil.rmtree(self.tree, ignore_errors=True)
        shutil.rmtree(self.ref, ignore_errors=True)
