"""Maintainer scripts that use debconf, simulated as dpkg would run them.

Every sh/bash script of the Debian 12 corpus (``tools/build_script_corpus.py``) that sources
``/usr/share/debconf/confmodule`` runs once in a fresh overlay over the minbase tree, with its
package's control files placed where dpkg keeps them (``/var/lib/dpkg/info/PKG.*``: the
script itself, ``templates``, ``config``), upgrade arguments and dpkg's environment. Prints
the outcomes, the commands deferred, the whole-script deferral reasons and the time per
script.

    python3 benchmarks/bench_debconf.py [--corpus /var/tmp/nuwa-corpus] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_scripts import ARGS, ensure_minbase  # noqa: E402

from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402
from nuwa.script.commands import default_models  # noqa: E402
from nuwa.script.interp import dpkg_environment, run_script  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="/var/tmp/nuwa-corpus")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with open(os.path.join(args.corpus, "index.json")) as f:
        entries = json.load(f)
    models = default_models()
    base = HostDirFS(ensure_minbase(args.corpus), writable=False)
    times, outcome, deferred, reasons = [], collections.Counter(), collections.Counter(), collections.Counter()
    n = 0
    for e in entries:
        if os.path.basename((e["shebang"] or "sh").split()[0]) not in ("sh", "dash", "bash"):
            continue
        data = open(e["path"], "rb").read()
        if b"debconf/confmodule" not in data or e["script"] not in ARGS:
            continue
        n += 1
        fs = Overlay(base)
        ctl = os.path.dirname(e["path"])
        name = f"/var/lib/dpkg/info/{e['package']}.{e['script']}"
        fs.makedirs("/var/lib/dpkg/info")
        fs.write_bytes(name, data, 0o755)
        for member, mode in (("templates", 0o644), ("config", 0o755)):
            p = os.path.join(ctl, member)
            if os.path.exists(p):
                fs.write_bytes(f"/var/lib/dpkg/info/{e['package']}.{member}", open(p, "rb").read(), mode)
        t0 = time.perf_counter()
        try:
            r = run_script(fs, name, ARGS[e["script"]], env=dpkg_environment(e["script"], e["package"]), name=name,
                           bash=b"bash" in data.split(b"\n", 1)[0], models=models)
        except Exception as ex:  # count model/interpreter bugs, keep going
            times.append(time.perf_counter() - t0)
            outcome["internal error"] += 1
            reasons[f"{type(ex).__name__}: {ex}"[:90]] += 1
            continue
        times.append(time.perf_counter() - t0)
        if r.deferred_whole:
            outcome["deferred whole"] += 1
            reason = r.reason.split(": ", 1)[-1] if r.reason.startswith("line ") else r.reason
            reasons[reason.split(" (")[0][:90]] += 1
        elif r.deferred_commands:
            outcome["ran, some commands deferred"] += 1
        else:
            outcome["fully simulated"] += 1
        for d in r.deferred_commands:
            deferred[os.path.basename(d.argv[0])] += 1
    rep = {
        "scripts": n,
        "total_s": round(sum(times), 3),
        "median_ms": round(1000 * statistics.median(times), 3) if times else None,
        "max_ms": round(1000 * max(times), 3) if times else None,
        "outcomes": dict(outcome),
        "top_deferred_commands": deferred.most_common(12),
        "top_whole_deferral_reasons": reasons.most_common(12),
    }
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"debconf scripts: {n}; nuwa total {rep['total_s']} s, median {rep['median_ms']} ms, max {rep['max_ms']} ms")
    print("outcomes: " + ", ".join(f"{k} {v} ({100 * v / max(1, n):.1f}%)" for k, v in outcome.most_common()))
    print("top deferred commands: " + ", ".join(f"{k} {v}" for k, v in deferred.most_common(12)))
    print("top whole-script deferral reasons:")
    for k, v in reasons.most_common(12):
        print(f"  {v:5d}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
