"""The one test that talks to the real Debian archive (opt-in: ``pytest -m network``).

An image of a real bookworm minbase tree (tools/dpkg_material.py) whose own sources name the
mirrors this machine's apt sources name (bookworm main and bookworm-security), with Debian's
archive keys as the tree has them: ``nuwa scan`` fetches and verifies the real InRelease files
with those keys and must list what the real apt lists for the same tree and sources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.aptjudge import parse_apt_list
from helpers.cli import nuwa
from helpers.paths import REPO
from scanimage import image_from_tree

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.root, pytest.mark.judge]

sys.path.insert(0, os.path.join(REPO, "tools"))
import dpkg_material as M  # noqa: E402


def test_real_archive_scan_equals_apt(tmp_path):
    tree = M.base_tree()
    main, sec = M.mirrors()
    sources = f"deb {main} bookworm main\ndeb {sec} bookworm-security main\n"
    img = image_from_tree(str(tmp_path), "real", tree, sources)
    r = nuwa("scan", img, "--json", "--cache", tmp_path / "cache", check=0, timeout=900)
    got = {(u["package"].split(":")[0], u["architecture"]): u["candidate"] for u in json.loads(r.stdout)["images"][0]["updates"]}
    work = tmp_path / "apt"
    for d in ("lists/partial", "cache/archives/partial", "parts", "prefs"):
        os.makedirs(work / d)
    (work / "sources.list").write_text(sources)
    opts = ["-o", f"Dir::Etc::SourceList={work}/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::Etc::Parts={work}/parts", "-o", f"Dir::Etc::PreferencesParts={work}/prefs",
            "-o", f"Dir::Etc::TrustedParts={tree}/etc/apt/trusted.gpg.d", "-o", f"Dir::State::Lists={work}/lists",
            "-o", f"Dir::State::status={tree}/var/lib/dpkg/status", "-o", f"Dir::Cache={work}/cache",
            "-o", "Debug::NoLocking=1", "-o", "Acquire::Languages=none"]
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(["apt-get", *opts, "-qq", "update"], check=True, env=env)
    out = subprocess.run(["apt", *opts, "list", "--upgradable"], check=True, env=env, capture_output=True, text=True)
    want = {k: v[0] for k, v in parse_apt_list(out.stdout).items()}
    assert got == want
