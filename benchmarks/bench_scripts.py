#!/usr/bin/env python3
"""Simulate every maintainer script of the Debian 12 corpus once; compare with ``dash -n``.

The corpus comes from tools/build_script_corpus.py (``/var/tmp/nuwa-corpus``). Each script
runs in Nuwa's interpreter against a fresh overlay over a minbase Debian 12 tree (built once
with mmdebstrap into ``CORPUS/minbase``, read-only underneath), with the arguments dpkg
passes on an upgrade (``preinst upgrade OLD``, ``postinst configure OLD``, ``prerm upgrade
NEW``, ``postrm upgrade NEW``) and dpkg's environment. Nothing runs on the host.

The reference is the time real dash needs just to *parse* the same scripts (``dash -n``,
one process per script, as that is how dpkg starts them) -- a floor for any shell, not a
like-for-like run (dash would execute the commands for real).

Prints: total and per-script median/p90/max for Nuwa and for dash -n, their ratio, and
the classification of the runs (scripts fully simulated, with deferred commands, deferred
whole; invocations simulated/dropped/deferred; the top deferred commands and reasons).

    python3 benchmarks/bench_scripts.py [--corpus DIR] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402
from nuwa.script.commands import default_models  # noqa: E402
from nuwa.script.interp import dpkg_environment, run_script  # noqa: E402

ARGS = {"preinst": ["upgrade", "0~nuwa1"], "postinst": ["configure", "0~nuwa1"],
        "prerm": ["upgrade", "99:99"], "postrm": ["upgrade", "99:99"]}


def ensure_minbase(corpus: str) -> str:
    """A minbase Debian 12 tree to run against (mmdebstrap, once, as root)."""
    root = os.path.join(corpus, "minbase")
    if os.path.isdir(os.path.join(root, "var", "lib", "dpkg")):
        return root
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
    from build_script_corpus import host_mirror

    subprocess.run(["mmdebstrap", "--mode=root", "--variant=minbase", "bookworm", root,
                    f"deb {host_mirror()} bookworm main"], check=True)
    return root


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or dump as JSON) the measurements."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="/var/tmp/nuwa-corpus")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    index_path = os.path.join(args.corpus, "index.json")
    if not os.path.exists(index_path):
        print(f"no corpus at {args.corpus}: run tools/build_script_corpus.py first", file=sys.stderr)
        return 2
    with open(index_path) as f:
        entries = json.load(f)
    entries = [e for e in entries if os.path.basename((e["shebang"] or "sh").split()[0]) in ("sh", "dash", "bash")]
    if args.limit:
        entries = entries[: args.limit]
    models = default_models()
    base = HostDirFS(ensure_minbase(args.corpus), writable=False)

    nuwa_t, dash_t = [], []
    outcome = collections.Counter()
    inv = collections.Counter()
    deferred_cmds = collections.Counter()
    whole_reasons = collections.Counter()
    crashes = []
    for e in entries:
        with open(e["path"], "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
        bash = "bash" in e["shebang"]
        t0 = time.perf_counter()
        subprocess.run(["dash", "-n", e["path"]], capture_output=True)
        dash_t.append(time.perf_counter() - t0)
        fs = Overlay(base)
        # the script lives where dpkg keeps it: debconf's frontend re-executes "$0"
        script_path = f"/var/lib/dpkg/info/{e['package']}.{e['script']}"
        fs.makedirs("/var/lib/dpkg/info")
        fs.write_bytes(script_path, text.encode("utf-8", "surrogateescape"), 0o755)
        env = dpkg_environment(e["script"], e["package"])
        t0 = time.perf_counter()
        try:
            r = run_script(fs, text, ARGS[e["script"]], env=env, name=script_path, bash=bash, models=models)
        except Exception as ex:  # a bug in a model or the shell: count it, keep going
            nuwa_t.append(time.perf_counter() - t0)
            crashes.append(f"{e['package']}/{e['script']}: {type(ex).__name__}: {ex}")
            outcome["internal error"] += 1
            continue
        nuwa_t.append(time.perf_counter() - t0)
        for k, v in r.record.counts.items():
            inv[k] += v
        if r.deferred_whole:
            outcome["deferred whole"] += 1
            reason = r.reason.split(": ", 1)[-1] if r.reason.startswith("line ") else r.reason
            whole_reasons[reason.split(" (")[0][:90]] += 1
        elif r.deferred_commands:
            outcome["ran, some commands deferred"] += 1
        else:
            outcome["fully simulated"] += 1
        for d in r.deferred_commands:
            deferred_cmds[os.path.basename(d.argv[0])] += 1
    n = len(entries)
    total_inv = sum(inv.values()) or 1
    rep = {
        "scripts": n,
        "nuwa_total_s": round(sum(nuwa_t), 3),
        "nuwa_median_ms": round(1000 * statistics.median(nuwa_t), 3) if nuwa_t else None,
        "nuwa_p90_ms": round(1000 * pct(nuwa_t, 0.9), 3),
        "nuwa_max_ms": round(1000 * max(nuwa_t), 3) if nuwa_t else None,
        "dash_n_total_s": round(sum(dash_t), 3),
        "dash_n_median_ms": round(1000 * statistics.median(dash_t), 3) if dash_t else None,
        "ratio_total_nuwa_over_dash_n": round(sum(nuwa_t) / sum(dash_t), 2) if dash_t else None,
        "outcomes": dict(outcome),
        "invocations": dict(inv),
        "invocations_simulated_pct": round(100 * inv.get("simulated", 0) / total_inv, 1),
        "top_deferred_commands": deferred_cmds.most_common(15),
        "top_whole_deferral_reasons": whole_reasons.most_common(10),
        "internal_errors": crashes[:20],
    }
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    print(f"scripts simulated:  {n}")
    print(f"nuwa:   total {rep['nuwa_total_s']} s, median {rep['nuwa_median_ms']} ms, p90 {rep['nuwa_p90_ms']} ms, max {rep['nuwa_max_ms']} ms")
    print(f"dash -n: total {rep['dash_n_total_s']} s, median {rep['dash_n_median_ms']} ms (parse only, one process per script)")
    print(f"ratio nuwa/dash-n (total): {rep['ratio_total_nuwa_over_dash_n']}")
    print("outcomes: " + ", ".join(f"{k} {v} ({100 * v / max(1, n):.1f}%)" for k, v in outcome.most_common()))
    print("invocations: " + ", ".join(f"{k} {v}" for k, v in inv.items()) + f" -> {rep['invocations_simulated_pct']}% simulated")
    print("top deferred commands: " + ", ".join(f"{c} {k}" for c, k in rep["top_deferred_commands"]))
    print("top whole-script deferral reasons:")
    for r_, k in rep["top_whole_deferral_reasons"]:
        print(f"  {k:5d}  {r_}")
    for c in crashes[:20]:
        print("  INTERNAL " + c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
