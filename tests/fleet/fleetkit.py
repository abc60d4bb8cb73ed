"""The fleet tests' harness: cheap fleets, and the judges every fleet image must pass.

A fleet is qcow2 overlays made by ``qemu-img create -b`` over one base (the shipped default
image), plus images that must fail (random bytes; a truncated qcow2 header). An image the
fleet wrote is judged by the real tools -- ``qemu-img check``, ``e2fsck -fn`` on its root
partition -- and by the tree comparison of ``helpers.trees`` (``debugfs rdump`` of the root
filesystem, then every path's type, mode, owner, size, content hash, link target and xattrs;
dpkg's and update-alternatives' logs with their time stamps masked) against the same image patched alone by the single-image command.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess

import pytest

from helpers.cli import nuwa
from helpers.hashing import file_sha256
from helpers.images import root_partition
from helpers.oracle import log_lines
from helpers.paths import DEFAULT_IMAGE, TESTIMAGES
from helpers.trees import full_facts, tree_facts
from judges import e2fsck_clean, qemu_img_check, tool

#: logs whose lines carry the time of the run (masked by ``helpers.oracle.log_lines``)
TIMED_LOGS = ("dpkg.log", "alternatives.log")

DEBS = sorted(glob.glob(os.path.join(TESTIMAGES, "updates", "*.deb")))


def overlay(path: str, base: str = DEFAULT_IMAGE) -> str:
    """A new qcow2 overlay at ``path`` whose backing file is ``base`` (absolute name)."""
    subprocess.run([tool("qemu-img"), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.abspath(base),
                    path], check=True)
    return path


def rebase_world(tmp_path_factory, name: str) -> tuple[str, str, str]:
    """``(directory, base, note)`` for a ``--rebase-onto-patched-base`` fleet: a private copy
    of the default image to back the overlays, and a small host file (``note.txt``) a test
    copies into some of them; skips when the shipped image or its updates are missing."""
    if not os.path.exists(DEFAULT_IMAGE) or not DEBS:
        pytest.skip("testimages/default.qcow2 or testimages/updates is missing")
    d = str(tmp_path_factory.mktemp(name))
    base = os.path.join(d, "base.qcow2")
    shutil.copyfile(DEFAULT_IMAGE, base)
    note = os.path.join(d, "note.txt")
    with open(note, "w") as f:
        f.write("written by this machine\n")
    return d, base, note


def broken_images(d: str) -> dict[str, str]:
    """Two images that cannot be patched: random bytes (no filesystem), a truncated qcow2."""
    noise = os.path.join(d, "noise.img")
    with open(noise, "wb") as f:
        f.write(os.urandom(1 << 20))
    cut = os.path.join(d, "cut.qcow2")
    with open(cut, "wb") as f:
        f.write(b"QFI\xfb\x00\x00\x00\x03truncated")
    return {"noise": noise, "cut": cut}


def deb_args(debs=DEBS) -> list[str]:
    """``--deb F1 --deb F2 ...``."""
    out = []
    for d in debs:
        out += ["--deb", d]
    return out


def tree_of(image: str, work: str) -> dict[str, tuple]:
    """The root filesystem's facts (``full_facts``), dumped by ``debugfs rdump``, after the judges
    ``qemu-img check`` and ``e2fsck -fn`` passed on it; ``work`` is a new scratch directory."""
    qemu_img_check(image)
    os.makedirs(work)
    raw = root_partition(image, os.path.join(work, "root.ext4"))
    e2fsck_clean(raw)
    dump = os.path.join(work, "tree")
    os.makedirs(dump)
    r = subprocess.run([tool("debugfs"), "-R", f"rdump / {dump}", raw], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    os.unlink(raw)
    facts = tree_facts(dump, full_facts)
    for name in TIMED_LOGS:  # each run's own clock: compared with the time stamps masked
        rel = f"var/log/{name}"
        if rel in facts:
            facts[rel] = facts[rel][:5] + (tuple(log_lines(dump, name)),) + facts[rel][6:]
    subprocess.run(["rm", "-rf", dump], check=True)
    return facts


def patched_alone(d: str, debs=DEBS) -> tuple[str, dict]:
    """The single-image command on a fresh overlay: (its output, its ``--json`` document)."""
    src = overlay(os.path.join(d, "alone-src.qcow2"))
    out = os.path.join(d, "alone.qcow2")
    r = nuwa("patch", src, *deb_args(debs), "--output", out, "--json", check=0)
    return out, json.loads(r.stdout)


def fleet(*args, check: int | None = None, env=None):
    """``nuwa patch ARGS --json``: (the completed process, the fleet document or None)."""
    r = nuwa("patch", *args, "--json", check=check, env=env)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def hashes(paths) -> dict[str, str]:
    """sha256 of each file (inputs must come out byte-identical unless written in place)."""
    return {p: file_sha256(p) for p in paths}


def outcomes(doc: dict) -> dict[str, str]:
    """Image (basename) -> outcome, from a fleet document."""
    return {os.path.basename(i["image"]): i["outcome"] for i in doc["images"]}


def comparable(doc: dict) -> list[dict]:
    """A fleet document's images without what differs between equal runs (timings, worker names,
    and the report's own image and output names)."""
    out = []
    for i in doc["images"]:
        rep = i["report"]
        out.append({"image": os.path.basename(i["image"]), "outcome": i["outcome"], "exit_code": i["exit_code"],
                    "packages": i["packages"], "firstboot_entries": i["firstboot_entries"],
                    "bytes_written": i["bytes_written"],
                    "report_packages": rep["packages"] if rep else None,
                    "changes": sorted(c["path"] for c in rep["changes"]) if rep else None})
    return out
