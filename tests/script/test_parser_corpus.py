"""Nuwa's parser over the Debian 12 maintainer-script corpus (tools/build_script_corpus.py).

The corpus is not committed (Debian's scripts are not ours to copy); build it with
``python3 tools/build_script_corpus.py``. Without it this test skips, visibly.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from judges import tool
from nuwa.script.parser import ParseError, parse

CORPUS = os.environ.get("NUWA_CORPUS", "/var/tmp/nuwa-corpus")


def _index() -> list[dict]:
    path = os.path.join(CORPUS, "index.json")
    if not os.path.exists(path):
        pytest.skip(f"script corpus not built ({path} missing): run tools/build_script_corpus.py")
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.judge
def test_parses_every_script_dash_accepts():
    dash = tool("dash")
    entries = _index()
    accepted = failures = 0
    bad = []
    for e in entries:
        prog = os.path.basename(e["shebang"].split()[0]) if e["shebang"] else ""
        if prog not in ("sh", "dash", "bash"):
            continue
        with open(e["path"], "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
        if prog != "bash":
            if subprocess.run([dash, "-n", e["path"]], capture_output=True).returncode != 0:
                continue
        accepted += 1
        try:
            parse(text, bash=prog == "bash")
        except ParseError as err:
            failures += 1
            bad.append(f"{e['package']}/{e['script']}: {err}")
    assert accepted > 500, "corpus suspiciously small"
    assert not bad, "\n".join(bad)
