"""A bounded run of tools/fuzz.py (about 100 s): structure-aware inputs of every kind (qcow2,
GPT, MBR, ext4, .deb, dpkg database, shell script), each in a forked child with a time and
memory limit; the run must find nothing: no traceback, no hang, no memory blow-up, no exit code
other than DESIGN.md's, no write outside the input. The long run is documented in
docs/fuzzing.md; every failure it found has its own regression test (tests/fuzz_cases/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.paths import TOOLS

pytestmark = pytest.mark.judge  # the seeds are made by mkfs.ext4, debugfs, sfdisk and qemu-img

SECONDS = 100


def test_bounded_fuzz_run_finds_nothing(tmp_path):
    seed = int(os.environ.get("NUWA_FUZZ_SEED", "1"))  # CI is deterministic; vary it by hand
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "fuzz.py"), "--seconds", str(SECONDS), "--seed", str(seed),
                        "--timeout", "20", "--seed-dir", str(tmp_path / "seeds"), "--out", str(tmp_path / "found"),
                        "--json"], capture_output=True, text=True, timeout=SECONDS + 300,
                       env={**os.environ, "PYTHONPATH": os.path.dirname(TOOLS)})
    assert r.stdout, r.stderr
    res = json.loads(r.stdout)
    assert res["findings"] == {}, json.dumps(res["findings"], indent=1)
    assert r.returncode == 0, r.stderr
    assert all(n >= 3 for n in res["per_kind"].values()), res["per_kind"]  # every kind was exercised
