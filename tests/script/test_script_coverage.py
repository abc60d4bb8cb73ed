"""tools/script_coverage.py on a small sample of the Debian 12 corpus: structure and invariants.

The measured numbers live in docs/firstboot.md; this test only checks that the report is
consistent (every count adds up, every invocation is classified once, the scenarios follow
dpkg's order) on real maintainer scripts, and that the run did not touch the base tree.
Slow: it needs the corpus (tools/build_script_corpus.py; skipped when absent) and runs ~150
script invocations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.environ.get("NUWA_CORPUS", "/var/tmp/nuwa-corpus")


@pytest.mark.slow
def test_coverage_report_on_a_sample(tmp_path):
    if not os.path.exists(os.path.join(CORPUS, "index.json")) or not os.path.isdir(os.path.join(CORPUS, "minbase")):
        pytest.skip(f"no corpus at {CORPUS}: run tools/build_script_corpus.py (and the tool once) first")
    status = os.path.join(CORPUS, "minbase/var/lib/dpkg/status")
    before = os.stat(status).st_mtime_ns, os.path.getsize(status)
    report = tmp_path / "cov.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/script_coverage.py"), "--corpus", CORPUS,
                        "--sample", "25", "--report", str(report)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "simulated with no deferral:" in r.stdout
    rep = json.loads(report.read_text())
    recs = rep["invocation_records"]
    assert rep["invocations"] == len(recs) == sum(rep["outcomes"].values()) > 0
    assert rep["packages"] == 25
    assert sum(sum(c.values()) for c in rep["by_scenario"].values()) == len(recs)
    assert set(rep["by_scenario"]) <= {"install", "upgrade", "remove"}
    assert rep["commands_total"] == sum(rep["commands"].values()) == sum(sum(x["commands"].values()) for x in recs)
    assert rep["programs_total"] == sum(rep["programs"].values()) == sum(sum(x["programs"].values()) for x in recs)
    assert rep["programs_total"] <= rep["commands_total"]
    assert abs(rep["commands_simulated_pct"] - 100 * rep["commands"]["simulated"] / rep["commands_total"]) < 0.01
    assert sum(rep["outcomes_pct"].values()) == pytest.approx(100, abs=0.05)
    for x in recs:
        assert x["outcome"] in ("fully simulated", "partly deferred", "deferred whole", "internal error")
        if x["outcome"] == "fully simulated":
            assert not x["deferred"] and not x["commands"].get("deferred")
        if x["outcome"] == "partly deferred":
            assert len(x["deferred"]) == x["commands"]["deferred"] > 0
        if x["outcome"] == "deferred whole":
            assert x["reason"] and set(x["commands"]) <= {"deferred"}
    # every deferred command of a partly deferred script is in the top list's total (when listed)
    listed = {d["command"]: d["count"] for d in rep["top_deferred_commands"]}
    counted: dict[str, int] = {}
    for x in recs:
        for d in x["deferred"]:
            counted[d["command"]] = counted.get(d["command"], 0) + 1
    for c, k in listed.items():
        assert counted[c] == k
    # dpkg's order within the upgrade scenario of a package with all four scripts
    order = [(x["package"], x["script"], x["argv"][0]) for x in recs if x["scenario"] == "upgrade"]
    for pkg in {p for p, _, _ in order}:
        seq = [s for p, s, _ in order if p == pkg]
        ranks = [["prerm", "preinst", "postrm", "postinst"].index(s) for s in seq]
        assert ranks == sorted(ranks), (pkg, seq)
    assert (os.stat(status).st_mtime_ns, os.path.getsize(status)) == before  # the base tree was only read
