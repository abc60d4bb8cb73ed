"""The one fixture path of the ext4 tests: images built by ``tools/make_ext4_fixtures.py``.

The deterministic generator in tools/ is the source of truth (trees, mke2fs configurations,
htree, journal and orphan post-processing); this module only builds and caches. Images live
in ``/tmp/nuwa-fixtures-<hash>``, where the hash covers the generator script and this module,
so a changed recipe rebuilds and an unchanged one is reused across sessions and pytest-xdist
workers (builds are serialised by a lock file). Tests must never modify a cached image:
:func:`private_copy` gives a writable copy, :func:`host_copy` a writable copy of a source
tree (the kernel-side mirror), :func:`empty_image` a fresh filesystem made by the same mkfs
recipe without a tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from helpers.paths import TOOLS
from judges import tool

SCRIPT = os.path.join(TOOLS, "make_ext4_fixtures.py")


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_ext4_fixtures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()
payload = gen.payload  # the self-verifying file contents of every source tree
UUID = gen.UUID
NAMES = list(gen.VARIANTS)
#: the fixtures a read test walks directly (the journal ones need recovery first)
PLAIN = [n for n in NAMES if gen.VARIANTS[n][4] in (None, "htree")]
JOURNAL = [n for n in NAMES if gen.VARIANTS[n][4] in ("journal", "journal_badcsum")]
ORPHAN_FIXTURES = [n for n in NAMES if gen.VARIANTS[n][4] == "orphans"]
#: the mke2fs configurations the write tests run on (one per issue-3 configuration)
WRITABLE = ["debian12", "upstream", "b1024", "i128", "inline", "ext2", "ext3"]


def cache_dir() -> str:
    """The per-recipe cache directory."""
    h = hashlib.sha256()
    for p in (SCRIPT, os.path.abspath(__file__)):
        with open(p, "rb") as f:
            h.update(f.read())
    return f"/tmp/nuwa-fixtures-{h.hexdigest()[:12]}"


@dataclass(frozen=True)
class Fixture:
    """A built fixture: the image, its source tree and how it was made."""

    name: str
    image: str
    source: str  # the host directory mke2fs -d copied
    info: dict
    expected_image: str | None  # journal fixtures: the edit applied directly


def fixture(name: str) -> Fixture:
    """Build (once) and return fixture ``name``; skips visibly if a tool is missing."""
    for t in ("mke2fs", "e2fsck", "debugfs", "dumpe2fs", "setfattr", "setcap"):
        tool(t)
    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            image = gen.build(d, name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with open(os.path.join(d, f"{name}.json")) as f:
        info = json.load(f)
    exp = info.get("expected_image")
    return Fixture(name, image, os.path.join(d, info["source"]), info, os.path.join(d, exp) if exp else None)


def private_copy(path: str, dest_dir: str, name: str | None = None) -> str:
    """A writable copy of a cached image in ``dest_dir``."""
    dst = os.path.join(dest_dir, name or os.path.basename(path))
    shutil.copyfile(path, dst)
    return dst


def host_copy(fx: Fixture, dest_dir: str, name: str = "host") -> str:
    """A writable copy of the fixture's source tree (``cp -a``: modes, owners, links, xattrs)."""
    dst = os.path.join(dest_dir, name)
    subprocess.run(["cp", "-a", fx.source, dst], check=True)
    return dst


def empty_image(dest_dir: str, name: str, args: list[str], size: str, conf: str = "debian12") -> str:
    """A fresh filesystem made by the generator's pinned mke2fs recipe, without a source tree."""
    tool("mke2fs")
    path = os.path.join(dest_dir, name)
    gen.mkfs(dest_dir, path, None, args, size, conf)
    return path
