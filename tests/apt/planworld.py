"""Worlds for the planner tests: apt's own lists directory and a dpkg status read into Nuwa's
policy (every relationship field kept, through nuwa.apt.indexes), and apt's simulation parsed."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

from debian_tree import copy_tree
from helpers.aptjudge import release_info
from nuwa.apt.candidates import Policy
from nuwa.apt.indexes import decompress, parse_packages
from nuwa.deb.status import StatusFile


def _uri_suite(prefix: str, sources: list[tuple[str, str]]) -> tuple[str, str] | None:
    from helpers.aptjudge import list_prefix
    for uri, suite in sources:
        if list_prefix(uri, suite) == prefix:
            return uri, suite
    return None


def policy_from_lists(lists: str, sources: list[tuple[str, str]], archs=("amd64",)) -> Policy:
    """A Policy over every ``*_Packages*`` index of apt's lists directory (``sources``:
    (uri, suite) pairs naming them, as in the sources.list apt used)."""
    policy = Policy(archs=archs)
    for rel in glob.glob(os.path.join(lists, "*Release")):
        base = os.path.basename(rel)
        prefix = base[: -len("InRelease")] if base.endswith("InRelease") else base[: -len("Release")]
        us = _uri_suite(prefix, sources)
        assert us, f"{base} names no source of {sources}"
        text = open(rel, encoding="utf-8").read()
        for pk in glob.glob(os.path.join(lists, prefix + "*_binary-*_Packages*")):
            comp = os.path.basename(pk)[len(prefix):].split("_binary-")[0]
            info = release_info(text, us[0], us[1], comp)
            if pk.endswith(".lz4"):  # apt's own lists may be lz4 (Acquire::GzipIndexes); Nuwa never reads those
                data = subprocess.run(["lz4cat", pk], capture_output=True, check=True).stdout
            else:
                data = decompress(pk, open(pk, "rb").read())
            policy.add(parse_packages(data, info, where=pk))
    return policy


def status_of(tree_or_file: str) -> StatusFile:
    """The dpkg status of a tree (or a status file)."""
    path = tree_or_file if os.path.isfile(tree_or_file) else os.path.join(tree_or_file, "var/lib/dpkg/status")
    return StatusFile(open(path, encoding="utf-8").read(), path)


def auto_of(extended_states: str) -> set[str]:
    """Names marked ``Auto-Installed: 1`` in an extended_states file (missing: none)."""
    if not os.path.exists(extended_states):
        return set()
    out = set()
    for para in open(extended_states, encoding="utf-8").read().split("\n\n"):
        f = dict(ln.split(": ", 1) for ln in para.splitlines() if ": " in ln)
        if f.get("Auto-Installed") == "1":
            out.add(f["Package"])
    return out


def parse_sim(text: str) -> tuple[dict[str, str], set[str]]:
    """``apt-get -s``: ({name: version} of the Inst lines, {names} of the Remv lines)."""
    inst = {m.group(1).split(":")[0]: m.group(2)
            for m in re.finditer(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) ", text, re.M)}
    remv = {m.group(1).split(":")[0] for m in re.finditer(r"^(?:Remv|Purg) (\S+)", text, re.M)}
    return inst, remv


def minbase_material():
    """(tools/dpkg_material module, base tree, .deb directory) of today's material.

    A complete material is only read, so it is taken without the material's lock (another run
    building other material can hold that lock for many minutes); else it is built under it."""
    tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import dpkg_material as m
    tree, debs = os.path.join(m.cache_dir(), "base"), os.path.join(m.cache_dir(), "debs")
    if not (os.path.exists(os.path.join(tree, ".complete")) and os.path.exists(os.path.join(debs, ".complete"))):
        tree, debs = m.base_tree(), m.updates_dir()
    return m, tree, debs


def trixie_chroot(tmp: str):
    """A Debian 13 ``trixie`` minbase chroot for apt's plan, as a generator of
    ``(root, [(uri, suite)])``: a copy of today's trixie material tree
    (``dpkg_material.base_tree("trixie")``: mmdebstrap from trixie main only) whose sources
    name trixie, trixie-updates and trixie-security on the material's local mirror
    (``dpkg_material.local_mirror``, Debian's own signed InRelease files and indexes) served on
    127.0.0.1; the tree's own apt (3.0, verifying with sqv) has run ``apt-get update``.
    The copy is removed when the generator is closed."""
    import shutil

    from helpers.aptjudge import LC
    from helpers.httpserve import Server
    from judges import tool

    m = minbase_material()[0]
    base = m.base_tree("trixie")
    mirror, suites = m.local_mirror("trixie")
    root = os.path.join(os.path.dirname(base), f"plan-chroot-{os.getpid()}")
    with Server(mirror) as srv:
        try:
            copy_tree(base, root)
            sources = [(f"{srv.url}/{archive}", suite) for archive, suite in suites]
            with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
                f.write("".join(f"deb {uri} {suite} main\n" for uri, suite in sources))
            r = subprocess.run([tool("chroot"), root, "apt-get", "-q", "-o", "Acquire::Languages=none", "update"],
                               capture_output=True, text=True, env=LC)
            assert r.returncode == 0 and "W: " not in r.stderr and "E: " not in r.stderr, (
                f"apt-get update in the trixie chroot: exit {r.returncode}\n{r.stderr[-800:]}")
            yield root, sources
        finally:
            shutil.rmtree(root, ignore_errors=True)
