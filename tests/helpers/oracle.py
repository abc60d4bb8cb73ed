"""Helpers for the differential tests: real dpkg in a chroot, tree and database comparison.

Real material comes from ``tools/dpkg_material.py`` (mmdebstrap + apt, cached per day).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from helpers.paths import TOOLS
from helpers.trees import full_facts, tree_facts

# the material builder is a tool of its own (run by hand too), not a package
sys.path.insert(0, TOOLS)

import dpkg_material  # noqa: E402

POLICY_RC_D = "#!/bin/sh\nexit 101\n"


def snapshot(root: str, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Absolute path in the image -> :func:`helpers.trees.full_facts`, for a whole tree with the
    ``skip`` subtrees left out."""
    return {"/" + rel: f for rel, f in tree_facts(root, full_facts, prune=skip).items()}


def diff_snapshots(a: dict, b: dict) -> dict[str, str]:
    """Path -> description of how the two snapshots differ there."""
    out = {}
    for p in sorted(set(a) | set(b)):
        if p not in a:
            out[p] = "only in B"
        elif p not in b:
            out[p] = "only in A"
        elif a[p] != b[p]:
            names = ("type", "mode", "uid", "gid", "size", "sha256", "target", "xattrs", "rdev")
            out[p] = ", ".join(f"{n} {x!r} != {y!r}" for n, x, y in zip(names, a[p], b[p]) if x != y)
    return out


def real_dpkg(root: str, debs: list[str], args: tuple[str, ...] = ("-i",)) -> subprocess.CompletedProcess:
    """Run the tree's own dpkg in a chroot on ``debs`` (copied in, removed afterwards)."""
    stage = os.path.join(root, "nuwa-debs")
    os.makedirs(stage, exist_ok=True)
    for d in debs:
        shutil.copy(d, stage)
    prc = os.path.join(root, "usr/sbin/policy-rc.d")
    with open(prc, "w") as f:
        f.write(POLICY_RC_D)
    os.chmod(prc, 0o755)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
           "HOME": "/root"}
    try:
        r = subprocess.run(["chroot", root, "dpkg", "--force-confdef", "--force-confold", *args,
                            *["/nuwa-debs/" + os.path.basename(d) for d in debs]],
                           capture_output=True, text=True, env=env)
    finally:
        shutil.rmtree(stage)
        os.unlink(prc)
    return r


def real_dpkg_steps(root: str, steps) -> None:
    """Run apt's dpkg call sequence (:func:`dpkg_material.apt_steps`) with the tree's own dpkg
    in a chroot, call by call, as apt would; fails naming the step dpkg refused."""
    for action, operands in steps:
        flags = ([] if dpkg_material.step_triggers(action) else ["--no-triggers"]) + {
            "unpack": ["--unpack", "--auto-deconfigure"], "configure": ["--configure"],
            "configure-pending": ["--configure", "--pending"], "remove": ["--remove"], "purge": ["--purge"],
        }[action]
        if action == "unpack":
            r = real_dpkg(root, operands, tuple(flags))
        else:
            r = real_dpkg(root, [], tuple(flags + operands))
        assert r.returncode == 0, (f"real dpkg {' '.join(flags)} {' '.join(map(os.path.basename, operands))} "
                                   f"failed in apt's plan:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")


def nuwa_dpkg_steps(dpkg, steps) -> None:
    """The same sequence with Nuwa's :class:`nuwa.deb.operations.Dpkg` (one engine, one runner),
    each step its own dpkg invocation (``end_run``); the caller commits."""
    for action, operands in steps:
        triggers = dpkg_material.step_triggers(action)
        if action == "unpack":
            dpkg.unpack(operands)
        elif action == "configure":
            dpkg.configure(operands, triggers=triggers)
        elif action == "configure-pending":
            dpkg.configure_pending(triggers=triggers)
        else:
            dpkg.remove(operands, purge=action == "purge", triggers=triggers)
        dpkg.end_run()


def chroot_query(root: str, *args: str) -> subprocess.CompletedProcess:
    """Run a read-only dpkg command (``dpkg --audit``, ``dpkg-query -W``) in the chroot."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    return subprocess.run(["chroot", root, *args], capture_output=True, text=True, env=env)


def status_paragraphs(root: str) -> dict[str, str]:
    """Package (name or name:arch) -> paragraph text of the tree's status file."""
    text = open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8").read()
    out = {}
    for para in text.split("\n\n"):
        if not para.strip():
            continue
        name = arch = ""
        for ln in para.split("\n"):
            if ln.startswith("Package: "):
                name = ln[9:]
            if ln.startswith("Architecture: "):
                arch = ln[14:]
        out[f"{name}:{arch}"] = para.strip("\n")
    return out


def log_lines(root: str, name: str) -> list[str]:
    """The lines of /var/log/NAME with their time stamps masked (dpkg.log: the first 20
    characters; alternatives.log: ``update-alternatives YYYY-MM-DD HH:MM:SS:``)."""
    try:
        text = open(os.path.join(root, "var/log", name), encoding="utf-8", errors="replace").read()
    except FileNotFoundError:
        return []
    return [re.sub(r"^(\S+ )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"\1<time>", ln) for ln in text.splitlines()]


def assert_same_dpkg_state(a: str, b: str) -> None:
    """Assert two trees' package databases agree: the status file paragraph by paragraph,
    ``var/log/dpkg.log`` and ``alternatives.log`` without their time stamps, and what the tree's own dpkg and dpkg-query
    (run in a chroot) say about them."""
    assert status_paragraphs(a) == status_paragraphs(b)
    assert log_lines(a, "dpkg.log") == log_lines(b, "dpkg.log")
    assert log_lines(a, "alternatives.log") == log_lines(b, "alternatives.log")
    for q in (("dpkg", "--audit"), ("dpkg-query", "-W"), ("dpkg-query", "-W", "-f=${Package} ${Status} ${Version}\n")):
        ra, rb = chroot_query(a, *q), chroot_query(b, *q)
        assert (ra.returncode, ra.stdout, ra.stderr) == (rb.returncode, rb.stdout, rb.stderr), q
