"""Differential harness for debconf/ucf: real dash + real debconf in a chroot vs Nuwa.

Two copies of the same Debian tree: copy A runs a script in a chroot (the real ``/bin/sh``,
Perl, debconf, ucf), copy B runs it in Nuwa's interpreter on an
``Overlay(HostDirFS(B))`` committed afterwards. Both get dpkg's environment with
``DEBIAN_FRONTEND=noninteractive`` and a ``policy-rc.d`` that refuses service actions.
:func:`diff_trees` then compares the trees path by path (type, mode, owner, size, content,
link target; times ignored) and the debconf databases record by record.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands.debconf.db import parse_db
from nuwa.script.commands import default_models
from nuwa.script.interp import dpkg_environment, run_script

from debian_tree import bookworm_tree, copy_tree
from helpers import runs
from helpers.trees import tree_facts

MODELS = default_models()

POLICY_RC = b"#!/bin/sh\nexit 101\n"


def environment(script_name: str = "postinst", package: str = "test") -> dict[str, str]:
    env = dpkg_environment(script_name, package, "amd64")
    env["DEBIAN_FRONTEND"] = "noninteractive"
    return env


def make_pair(src: str, dest: str) -> tuple[str, str]:
    """Two fresh copies of ``src`` under ``dest`` (``real`` and ``nuwa``)."""
    os.makedirs(dest, exist_ok=True)
    a, b = os.path.join(dest, "real"), os.path.join(dest, "nuwa")
    for p in (a, b):
        copy_tree(src, p)
        with open(os.path.join(p, "usr/sbin/policy-rc.d"), "wb") as f:
            f.write(POLICY_RC)
        os.chmod(os.path.join(p, "usr/sbin/policy-rc.d"), 0o755)
    return a, b


def put(roots, path: str, data: bytes, mode: int = 0o755) -> None:
    """Write the same file into every tree."""
    for r in roots:
        p = os.path.join(r, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)


def run_real(root: str, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in a chroot of ``root`` with exactly ``env`` (stdin: /dev/null)."""
    return runs.run_real(["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv], chroot=root, env=None,
                         stdin=None, timeout=300)


def offline_pair(tmp_path, package: str) -> tuple[str, str]:
    """:func:`make_pair` of a bookworm minbase tree with ``package`` installed, for
    :func:`run_real_offline`; skipped where a chroot or the namespaces cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    if subprocess.run(["unshare", "-n", "-u", "true"], capture_output=True).returncode != 0:
        pytest.skip("no network or UTS namespaces here")
    return make_pair(bookworm_tree(extra=(package,)), str(tmp_path))


def run_real_offline(root: str, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    """``argv`` in a chroot of ``root`` with exactly ``env``, no network, the copy's host name
    (``unshare -n -u``: what a Perl config that looks up names sees on a dormant image)."""
    hn = open(os.path.join(root, "etc/hostname")).read().split()[0]
    envs = [f"{k}={v}" for k, v in env.items()]
    p = subprocess.run(["unshare", "-n", "-u", "sh", "-c", 'hostname "$1" && shift && exec chroot "$@"', "sh", hn,
                        root, "/usr/bin/env", "-i", *envs, *argv], capture_output=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def run_nuwa(root: str, argv: list[str], env: dict[str, str]):
    """Interpret ``argv[0]`` (a script in the tree) with Nuwa; the overlay is committed."""
    fs = Overlay(HostDirFS(root, writable=True))
    r = run_script(fs, argv[0], argv[1:], env=env, name=argv[0], models=MODELS)
    if not r.deferred_whole:
        fs.commit()
    return r


def _entry(since: float):
    """Facts of one path: metadata, and the content hash of a file touched at or after ``since``."""

    def facts(p: str, st: os.stat_result) -> tuple:
        e = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
        if stat.S_ISLNK(st.st_mode):
            e.append(os.readlink(p))
        elif stat.S_ISREG(st.st_mode):
            e.append(st.st_size)
            if st.st_mtime >= since or st.st_ctime >= since:
                e.append(hashlib.sha256(open(p, "rb").read()).hexdigest())
        return tuple(e)

    return facts


def snapshot(root: str, since: float) -> dict[str, tuple]:
    """Every path under ``root`` (except /proc, /sys, /dev): metadata, content hash if touched."""
    return tree_facts(root, _entry(since), prune=("proc", "sys", "dev"))


def diff_trees(a: str, b: str, since: float) -> list[str]:
    """Paths whose type, mode, owner, size, content or target differ (times ignored).

    A file touched in only one tree is hashed there; the other side is hashed too so that a
    content difference is never hidden by an unchanged mtime.
    """
    sa, sb = snapshot(a, since), snapshot(b, since)
    diffs = []
    for rel in sorted(set(sa) | set(sb)):
        ea, eb = sa.get(rel), sb.get(rel)
        if ea is not None and eb is not None and len(ea) != len(eb) and ea[0] == stat.S_IFREG:
            ea, eb = (_entry(0)(os.path.join(t, rel), os.lstat(os.path.join(t, rel))) for t in (a, b))
        if ea != eb:
            diffs.append(f"{rel}: real={ea} nuwa={eb}")
    return diffs


def debconf_records(root: str) -> dict[str, dict]:
    """The three databases parsed (for readable assertion messages)."""
    out = {}
    for n in ("config.dat", "templates.dat", "passwords.dat"):
        p = os.path.join(root, "var/cache/debconf", n)
        if os.path.exists(p):
            out[n] = parse_db(open(p, "rb").read().decode("utf-8", "surrogateescape"))
    return out
