"""Differential harness for the dpkg helper-program models (dpkg, dpkg-query, dpkg-divert, ...).

The oracle is the real program of dpkg 1.21.22 (Debian 12), run on a small scratch root
with ``--root``/``--admindir``/``--instdir`` (or ``DPKG_ROOT``); the model runs on an
identical scratch root through :class:`HostDirFS`, as if that root were the image. Scratch
roots hold what the helpers read: ``var/lib/dpkg`` and ``etc/{passwd,group}`` of a real
bookworm minbase tree (``tests/debian_tree.py``), plus whatever files a case needs.
Stdout, stderr, the exit status and the whole scratch tree must agree; the scratch root's
own path is rewritten to ``/`` (an empty root) in the real program's messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from debian_tree import copy_tree
from cmdharness import snapshot
from helpers import runs
from judges import tool
from nuwa.script.commands import default_models
from nuwa.script.context import Defer

MODELS = default_models()

ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TZ": "UTC"}
DPKG_VERSION = "1.21.22"


def require_dpkg() -> None:
    """The oracle must be dpkg 1.21.x (Debian 12); skip visibly otherwise."""
    tool("dpkg")
    out = subprocess.run(["dpkg", "--version"], capture_output=True, text=True).stdout
    if f"version {DPKG_VERSION} " not in out and "version 1.21." not in out:
        pytest.skip(f"the oracle must be dpkg {DPKG_VERSION}: {out.splitlines()[:1]}")


def make_scratch(tree: str, dst: str, extra: tuple[str, ...] = ()) -> str:
    """A scratch root with the tree's dpkg database, passwd/group and ``extra`` paths."""
    os.makedirs(os.path.join(dst, "var/lib"), exist_ok=True)
    os.makedirs(os.path.join(dst, "etc"), exist_ok=True)
    os.makedirs(os.path.join(dst, "var/log"), exist_ok=True)
    subprocess.run(["cp", "-a", os.path.join(tree, "var/lib/dpkg"), os.path.join(dst, "var/lib/")], check=True)
    for f in ("etc/passwd", "etc/group"):
        shutil.copy2(os.path.join(tree, f), os.path.join(dst, f))
    for rel in extra:
        src = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        subprocess.run(["cp", "-a", src, os.path.join(dst, rel)], check=True)
    # lock files are dpkg's own business: real tools create them, the models never need to
    for lock in ("var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend", "var/lib/dpkg/triggers/Lock"):
        p = os.path.join(dst, lock)
        if os.path.exists(p):
            os.unlink(p)
    return dst


def clone(src: str, dst: str) -> str:
    return copy_tree(src, dst)


def run_real(root: str, argv: list[str], env: dict | None = None, root_opt: str | None = "--root",
             stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """The real program on ``root``: ``root_opt`` says how it is pointed there."""
    e = dict(ENV)
    e.update(env or {})
    args = list(argv)
    if root_opt == "--root":
        args.insert(1, f"--root={root}")
    elif root_opt == "--instdir":
        args[1:1] = [f"--instdir={root}", f"--admindir={root}/var/lib/dpkg"]
    elif root_opt == "env":
        e["DPKG_ROOT"] = root
        e["DPKG_ADMINDIR"] = root + "/var/lib/dpkg"
    elif root_opt == "--altdir":
        args[1:1] = [f"--altdir={root}/etc/alternatives", f"--admindir={root}/var/lib/dpkg/alternatives",
                     f"--root={root}"]
    status, out, err = runs.run_real(args, env=e, stdin=stdin)
    # the scratch root alone in a message reads as the empty root "" (module docstring)
    return status, runs.strip_root(out, root, b""), runs.strip_root(err, root, b"")


def run_model(root: str, argv: list[str], env: dict | None = None, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """The model on ``root`` seen as the image (no --root; DPKG_* from ``env``)."""
    e = dict(ENV)
    e.update(env or {})

    def nested(a, i):
        return run_model(root, a, env, i)

    return runs.run_model(root, argv, env=e, stdin=stdin, run=nested, models=MODELS)


_PKGCHARS = set(b"abcdefghijklmnopqrstuvwxyz0123456789+-.:")


def sort_owner_lists(data: bytes) -> bytes:
    """``dpkg -S`` lists a shared path's owners in list-file disk order (FIEMAP): sort them."""
    out = []
    for ln in data.split(b"\n"):
        head, sep, path = ln.partition(b": /")
        names = head.split(b", ")
        if sep and len(names) > 1 and all(n and set(n) <= _PKGCHARS for n in names):
            ln = b", ".join(sorted(names)) + b": /" + path
        out.append(ln)
    return b"\n".join(out)


def both(a: str, b: str, argv: list[str], env: dict | None = None, root_opt: str | None = "--root",
         stdin: bytes = b"", tree: bool = True, model_argv: list[str] | None = None) -> tuple[int, bytes, bytes]:
    """Run real on ``a`` and model on ``b``; assert the same output, status and tree."""
    want = run_real(a, argv, env, root_opt, stdin)
    try:
        got = run_model(b, model_argv or argv, env, stdin)
    except Defer as d:
        raise AssertionError(f"model deferred {argv}: {d.reason}") from None
    w = (want[0], sort_owner_lists(want[1]).decode("utf-8", "replace"), want[2].decode("utf-8", "replace"))
    g = (got[0], sort_owner_lists(got[1]).decode("utf-8", "replace"), got[2].decode("utf-8", "replace"))
    assert g == w, argv
    if tree:
        sa, sb = snapshot(a), snapshot(b)
        diff = {k: (sa.get(k), sb.get(k)) for k in set(sa) | set(sb) if sa.get(k) != sb.get(k)}
        assert not diff, (argv, diff)
    return want
