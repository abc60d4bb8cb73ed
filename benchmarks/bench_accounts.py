#!/usr/bin/env python3
"""Account and tmpfiles models on the Debian 12 corpus: coverage, and speed against the real tools.

1. Coverage: every sh maintainer script of the corpus (tools/build_script_corpus.py,
   ``/var/tmp/nuwa-corpus``) that names adduser, addgroup, deluser, delgroup, useradd,
   groupadd, usermod, userdel, groupdel, groupmod, gpasswd, chfn, systemd-sysusers or
   systemd-tmpfiles runs in the interpreter over a fresh overlay of the corpus' minbase tree
   (``postinst configure``, ``postrm remove``, ...), and every invocation of those programs
   that the run reached is counted as simulated or deferred (with the reason).
2. Speed: a fixed sequence of account commands run by the real tools in a chroot of a copy of
   that tree and by the models on a HostDirFS of another copy; the ratio is printed.

    python3 benchmarks/bench_accounts.py [--corpus DIR] [--tree DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402
from nuwa.script.commands import default_models  # noqa: E402
from nuwa.script.context import Invocation  # noqa: E402
from nuwa.script.interp import dpkg_environment, run_script  # noqa: E402

PROGRAMS = {"adduser", "addgroup", "deluser", "delgroup", "useradd", "groupadd", "usermod", "userdel", "groupdel",
            "groupmod", "gpasswd", "chfn", "systemd-sysusers", "systemd-tmpfiles"}
ARGS = {"preinst": ["install"], "postinst": ["configure", ""], "prerm": ["remove"], "postrm": ["remove"]}
SEQUENCE = ["addgroup --system --quiet bgrp", "adduser --system --group --quiet --home /var/lib/b1 --no-create-home b1",
            "adduser --system --quiet --ingroup bgrp b2", "adduser --quiet b2 bgrp", "useradd -r -s /usr/sbin/nologin b3",
            "groupadd -r b4", "usermod -a -G b4 b3", "userdel b3", "deluser --system --quiet b1",
            "delgroup --system --quiet bgrp"]
MODELS = default_models()
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SOURCE_DATE_EPOCH": "1700000000"}


def coverage(corpus: str, tree: str) -> dict:
    with open(os.path.join(corpus, "index.json")) as f:
        entries = json.load(f)
    base = HostDirFS(tree)
    counts = collections.Counter()
    reasons = collections.Counter()
    scripts = 0
    for e in entries:
        if os.path.basename((e["shebang"] or "sh").split()[0]) not in ("sh", "dash", "bash"):
            continue
        with open(e["path"], "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
        if not any(p in text for p in PROGRAMS):
            continue
        scripts += 1
        r = run_script(Overlay(base), text, ARGS[e["script"]], env=dpkg_environment(e["script"], e["package"]),
                       name=f"/var/lib/dpkg/info/{e['package']}.{e['script']}", bash="bash" in e["shebang"],
                       models=MODELS)
        for c in r.record.entries:
            prog = os.path.basename(c.argv[0]) if c.argv else ""
            if prog in PROGRAMS and c.kind == "external":
                # a non-zero status here is mostly a configuration file of the package itself,
                # which the base tree lacks (the corpus holds control areas, not data)
                counts[(prog, c.classification + (f" (exit {c.status})" if c.status else ""))] += 1
                if c.classification != "simulated":
                    reasons[f"{prog}: {c.reason[:80]}"] += 1
    return {"scripts": scripts, "counts": counts, "reasons": reasons}


def speed(tree: str) -> tuple[float, float]:
    work = tempfile.mkdtemp(prefix="bench-accounts-")
    try:
        real, sim = os.path.join(work, "real"), os.path.join(work, "sim")
        for d in (real, sim):
            subprocess.run(["cp", "-a", tree, d], check=True)
        t0 = time.perf_counter()
        for cmd in SEQUENCE:
            subprocess.run(["chroot", real, *shlex.split(cmd)], env=ENV, capture_output=True)
        t_real = time.perf_counter() - t0
        fs = HostDirFS(sim, writable=True)
        t0 = time.perf_counter()
        for cmd in SEQUENCE:
            argv = shlex.split(cmd)
            MODELS[argv[0]](Invocation(argv=argv, fs=fs, env=dict(ENV), models=MODELS))
        t_sim = time.perf_counter() - t0
        for f in ("passwd", "shadow", "group", "gshadow"):
            a = open(os.path.join(real, "etc", f), "rb").read()
            b = open(os.path.join(sim, "etc", f), "rb").read()
            if a != b:
                print(f"warning: /etc/{f} differs between the real run and the models", file=sys.stderr)
        return t_real, t_sim
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/var/tmp/nuwa-corpus")
    ap.add_argument("--tree", help="base tree for the coverage runs (default: the corpus' minbase; a tree "
                    "with systemd makes the systemd-tmpfiles/systemd-sysusers guards true)")
    args = ap.parse_args()
    cov = coverage(args.corpus, args.tree or os.path.join(args.corpus, "minbase"))
    sim = sum(v for (p, c), v in cov["counts"].items() if c.startswith("simulated"))
    tot = sum(cov["counts"].values()) or 1
    print(f"scripts naming the programs: {cov['scripts']}; invocations reached: {tot}; "
          f"simulated {sim} ({100 * sim / tot:.1f}%)")
    for (p, c), v in sorted(cov["counts"].items()):
        print(f"  {p:18} {c:10} {v}")
    print("deferral reasons:")
    for r, v in cov["reasons"].most_common(12):
        print(f"  {v:4} {r}")
    t_real, t_sim = speed(os.path.join(args.corpus, "minbase"))
    print(f"speed ({len(SEQUENCE)} commands): real tools in a chroot {t_real:.3f} s, models {t_sim:.3f} s, "
          f"ratio real/model {t_real / t_sim:.1f}")


if __name__ == "__main__":
    main()
