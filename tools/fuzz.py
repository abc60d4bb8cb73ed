#!/usr/bin/env python3
"""Structure-aware fuzzing of everything Nuwa reads: images, packages, dpkg databases, scripts.

    python3 tools/fuzz.py [--seconds 120 | --count N] [--seed S] [--kinds K,K] [--timeout 20]
                          [--memory-mib 2048] [--out DIR] [--replay FILE --kind K]

Each input is a seed from :mod:`fuzz_seeds` (made by the real tools) with 1-4 mutations aimed
at one structure (:func:`fuzz_seeds.regions` names them: qcow2 header, L1/L2 and refcount
tables, MBR, GPT header and entries, ext4 superblock, descriptors, inodes with their extents
and xattrs, directory blocks, extent and xattr blocks, the journal; for packages the ar
headers, tar headers, control files, maintainer scripts; the dpkg status and info files; shell
scripts). Checksums covering the mutated structure are recomputed in most inputs, so the
mutation reaches the code behind the checksum check.

Every input runs in a forked child (``resource.setrlimit`` RLIMIT_AS ``--memory-mib``, killed
by its PID after ``--timeout`` seconds), in process: the ``nuwa`` command line's ``main()``
for images (``info --json``, ``ls -R -l``, ``cat``, ``packages``, ``copy-in --output``),
``install_debs`` into an in-memory root for packages and databases, the parser for scripts.
A failure is: a Python exception that is not a NuwaError (a traceback), a hang, a memory
blow-up, an exit code other than DESIGN.md's (a damaged image 3, a bad package 2; exit 1 only
for what the model reports as a missing file), or a write outside the input (the original
changed, or any file but the named output left in the work directory). Failures are grouped
by cause (exception type and innermost Nuwa frame, or exit code and message head), and the
smallest input of each cause is written to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import select
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fuzz_mutate as M  # noqa: E402
import fuzz_inplace  # noqa: E402
import fuzz_seeds  # noqa: E402
from fuzz_pool import Pool  # noqa: E402
from nuwa.errors import NuwaError  # noqa: E402

KINDS = ("qcow2", "gpt", "mbr", "ext4", "deb", "dpkgdb", "script", "inplace")
IMAGE_COMMANDS = (["info", "--json", "{img}"], ["ls", "-R", "-l", "{img}", "/"], ["cat", "{img}", "/etc/os-release"],
                  ["packages", "{img}"], ["copy-in", "{img}", "{payload}", "/root", "--output", "{out}"])


# --- the targets (run in the child) ----------------------------------------------------------------


def _outcome_of(fn) -> dict:
    """Run ``fn``; describe how it ended: exit code and message, or the exception's traceback."""
    try:
        code = fn()
        return {"exit": int(code or 0)}
    except NuwaError as err:
        return {"exit": err.exit_code, "msg": str(err)[:300], "cls": type(err).__name__}
    except BaseException as err:  # noqa: BLE001 - the point: anything else is a finding
        tb = traceback.extract_tb(err.__traceback__)
        frames = [f for f in tb if "/nuwa/" in f.filename]
        top = frames[-1] if frames else (tb[-1] if tb else None)
        where = f"{os.path.relpath(top.filename, ROOT)}:{top.lineno}" if top else "?"
        return {"exc": type(err).__name__, "where": where, "msg": str(err)[:300],
                "tb": "".join(traceback.format_exception(err))[-3000:]}


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(args: list[str]) -> dict:
    """The outcome of ``nuwa ARGS`` run in process (its message is the last of stderr)."""
    from nuwa import cli

    err, old = io.StringIO(), sys.stderr
    sys.stderr = err
    try:
        res = _outcome_of(lambda: cli.main(args))
    finally:
        sys.stderr = old
    if "exit" in res and "msg" not in res:
        res["msg"] = err.getvalue().strip()[-300:]
    res["cmd"] = args[0]
    return res


def run_image(path: str, work: str) -> list[dict]:
    """Every image command on ``path``; one outcome each."""
    payload = os.path.join(work, "payload")
    with open(payload, "wb") as f:
        f.write(b"payload\n")
    outs = []
    for argv in IMAGE_COMMANDS:
        out = os.path.join(work, "out.qcow2")
        outs.append(run_cli([a.format(img=path, payload=payload, out=out) for a in argv]))
        if os.path.exists(out):
            os.unlink(out)
    return outs


def _memory_root(status: bytes | None = None, info: dict | None = None):
    from nuwa.fs.memory import MemoryFS

    fs = MemoryFS()
    for d in ("/etc", "/var", "/var/lib", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/dpkg/updates",
              "/var/lib/dpkg/triggers", "/usr", "/usr/share", "/root", "/tmp", "/var/log"):
        fs.mkdir(d, 0o755)
    fs.write_bytes("/var/lib/dpkg/status", status if status is not None else fuzz_seeds.STATUS.encode())
    fs.write_bytes("/var/lib/dpkg/available", b"")
    fs.write_bytes("/var/lib/dpkg/info/format", b"1\n")
    fs.write_bytes("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    fs.write_bytes("/etc/group", b"root:x:0:\n")
    fs.write_bytes("/etc/issue", b"Debian\n")
    fs.write_bytes("/etc/fuzzpkg.conf", b"hello")
    fs.mkdir("/usr/bin", 0o755)
    fs.mkdir("/bin", 0o755)
    for prog in ("dpkg", "mkdir", "ln", "printf", "test", "rm", "sh", "dpkg-maintscript-helper", "ldconfig"):
        # the simulator runs a command's model only where the image has the program
        fs.write_bytes(f"/usr/bin/{prog}", b"\x7fELF", 0o755)
    for name, data in (info or {}).items():
        fs.write_bytes(f"/var/lib/dpkg/info/{name}", data)
    return fs


def run_deb(path: str, status: bytes | None = None, info: dict | None = None) -> list[dict]:
    """Install the .deb at ``path`` into an in-memory root (scripts simulated)."""
    from nuwa.patch.install import install_debs

    res = _outcome_of(lambda: install_debs(_memory_root(status, info), [path]) and 0)
    res["cmd"] = "install"
    return [res]


_SCRIPT_ROOT: list = []


def _script_root():
    """A small Debian-like root where every modelled program exists (built once per worker; each
    input runs in an overlay over it, so nothing one input writes is seen by the next)."""
    if not _SCRIPT_ROOT:
        from nuwa.script.commands import default_models

        fs = _memory_root()
        models = default_models()
        fs.mkdir("/usr/sbin", 0o755)
        for name in models:
            for d in ("/usr/bin", "/usr/sbin"):
                if not fs.exists(f"{d}/{name}") and "/" not in name:
                    fs.write_bytes(f"{d}/{name}", b"\x7fELF", 0o755)
        _SCRIPT_ROOT.extend((fs, models))
    return _SCRIPT_ROOT


def run_script(text: bytes, interpret: bool = True) -> list[dict]:
    """Parse a shell script as a maintainer script would be parsed; if it parses, interpret it
    as ``postinst configure 1.0`` in an overlay over :func:`_script_root` (every command model
    reachable, a budget of 5,000 commands): a model meeting arguments it never saw must answer
    as the program would or defer, never raise."""
    from nuwa.fs.overlay import Overlay
    from nuwa.script.interp import run_script as interpret
    from nuwa.script.parser import ParseError, parse

    source = text.decode("utf-8", "surrogateescape")

    def target():
        try:
            parse(source)
        except ParseError:
            return 2  # a syntax error, named with its line and column: what dash reports (exit 2)
        return 0

    res = _outcome_of(target)
    res["cmd"] = "parse"
    if res.get("exit") != 0 or not interpret:
        return [res]
    base, models = _script_root()
    run = _outcome_of(lambda: interpret(Overlay(base), source, ["configure", "1.0"], name="fuzzpkg.postinst",
                                        budget=5000, max_output=1 << 20, models=models, is_path=False) and 0)
    run["cmd"] = "interpret"
    return [res, run]


def preload() -> None:
    """Import every module a target uses once, in the parent: each forked child then starts
    with them loaded (an import per input would cost more than most inputs)."""
    import importlib

    from nuwa import cli

    for module, _func in cli.HANDLERS.values():
        importlib.import_module(module)
    for module in ("nuwa.patch.install", "nuwa.script.parser", "nuwa.fs.memory", "nuwa.image",
                   "nuwa.formats.qcow2", "nuwa.fs.ext4"):
        importlib.import_module(module)


# --- judging ---------------------------------------------------------------------------------------


MISSING_FILE = ("No such file", "Not a directory", "no such file", "does not exist")


def verdict(kind: str, res: dict) -> str | None:
    """The cause of a failure (a short stable key), or None if the outcome is allowed."""
    if "exc" in res:
        if res["exc"] == "MemoryError":
            return f"memory: {res['cmd']} {res['where']}"
        return f"traceback: {res['exc']} at {res['where']}"
    code, msg = res["exit"], res.get("msg", "")
    head = " ".join(w for w in msg.split(":")[-1].split()[:6] if not any(c.isdigit() for c in w))
    if kind in ("qcow2", "gpt", "mbr", "ext4"):
        if code == 2 and not ("no root filesystem" in msg or "has no journal" in msg or any(m in msg for m in MISSING_FILE)):
            return f"exit 2 for a damaged image ({res['cmd']}): {head}"
        if code == 1 and not (res["cmd"].split()[0] in ("cat", "copy-in", "ls") and any(m in msg for m in MISSING_FILE)):
            return f"exit 1 for a damaged image ({res['cmd']}): {head}"
    elif kind == "deb":
        if code == 3:
            return f"exit 3 for a bad package: {head}"
    elif kind == "dpkgdb":
        if code == 2:
            return f"exit 2 for a damaged dpkg database: {head}"
    return None


# --- the child -------------------------------------------------------------------------------------


def run_job(job: dict) -> list[dict]:
    """Run one input of any kind (in a child); its outcomes."""
    kind = job["kind"]
    if kind in ("qcow2", "gpt", "mbr", "ext4"):
        return run_image(job["path"], job["work"])
    if kind == "inplace":
        return fuzz_inplace.run_inplace(job, run_cli)
    if kind == "deb":
        return run_deb(job["path"])
    if kind == "dpkgdb":
        return run_deb(job["deb"], job["status"].encode("latin-1"),
                       {k: v.encode("latin-1") for k, v in job["info"].items()})
    return run_script(job["text"].encode("latin-1"), job.get("interpret", True))


def child(job: dict, limit_mib: int, wfd: int) -> None:
    """Run one input; write the outcomes as JSON to ``wfd``; never return."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mib << 20, limit_mib << 20))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        sys.setrecursionlimit(5000)
        data = json.dumps(run_job(job)).encode()
    except BaseException as err:  # noqa: BLE001
        data = json.dumps([{"exc": type(err).__name__, "where": "tools/fuzz.py", "msg": str(err)[:200],
                            "cmd": "child"}]).encode()
    with os.fdopen(wfd, "wb") as w:
        w.write(data)
    os._exit(0)


def run_one(job: dict, timeout: float, limit_mib: int) -> list[dict]:
    """Fork, run ``job`` in the child, wait at most ``timeout`` s (then kill it by its PID)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(job, limit_mib, w)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(r, "rb") as rf:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rf], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return [{"exc": "Hang", "where": f"more than {timeout:g} s", "msg": "", "cmd": job["kind"]}]
            b = rf.read1(1 << 16)
            if not b:
                break
            chunks.append(b)
    _pid, status = os.waitpid(pid, 0)
    if not chunks:
        return [{"exc": "ChildDied", "where": f"status {status}", "msg": "", "cmd": job["kind"]}]
    return json.loads(b"".join(chunks))


# --- the loop --------------------------------------------------------------------------------------


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def record(findings: dict, out: str | None, kind: str, blob: bytes, outs: list, job: dict, before) -> None:
    """Judge one input's outcomes; keep the smallest input of every failure cause."""
    work = job["work"]
    if kind == "inplace":
        causes = [c for c in [verdict(job["base"], outs[0])] if c] + fuzz_inplace.judge(job, outs)
    else:
        causes = [c for c in (verdict(kind, o) for o in outs) if c]
    if before is not None and _digest(job["path"]) != before:
        causes.append(f"wrote the input ({kind})")
    mine = {os.path.basename(job[k]) for k in ("path", "deb", "before") if k in job}
    left = sorted(set(os.listdir(work)) - mine - {"payload"})
    if left:
        causes.append(f"left files in the work directory: {left[:3]}")
    for cause in causes:
        old = findings.get(cause)
        if old is None or len(blob) < old["size"]:
            findings[cause] = {"kind": kind, "size": len(blob), "count": (old or {}).get("count", 0),
                               "detail": next((o for o in outs if verdict(kind, o) == cause), outs[0])}
            if out:
                os.makedirs(out, exist_ok=True)
                name = hashlib.sha1(cause.encode("utf-8", "surrogateescape")).hexdigest()[:12]
                with open(os.path.join(out, f"{name}.{kind}"), "wb") as f:
                    f.write(blob)
                with open(os.path.join(out, f"{name}.json"), "w") as f:
                    json.dump({"cause": cause, **findings[cause]}, f, indent=1)
        findings[cause]["count"] += 1


def fuzz(args) -> dict:
    """Run the fuzz loop; return the counts and the findings (cause -> smallest input)."""
    seeds = fuzz_seeds.make_seeds(args.seed_dir)
    preload()
    rng = random.Random(args.seed)
    kinds = args.kinds.split(",") if args.kinds else list(KINDS)
    gen = M.Generator(seeds, rng)
    findings: dict = {}
    counts = {k: 0 for k in kinds}
    t_end = time.monotonic() + args.seconds if args.seconds else None
    state = {"n": 0}
    exits: dict = {}  # kind -> how its first command ended -> count (how deep the inputs got)

    def next_job(w):
        n = state["n"]
        if (args.count is not None and n >= args.count) or (t_end is not None and time.monotonic() >= t_end):
            return None
        state["n"] = n + 1
        kind = kinds[n % len(kinds)]
        if kind == "inplace":  # written by design: judged by fuzz_inplace, not by the digest
            job, blob = fuzz_inplace.make(gen, rng, w.work)
            w.ctx = (kind, blob, None)
        else:
            job, blob = gen.make(kind, w.work)
            if kind == "script":  # parsing is a thousand times cheaper than interpreting
                job["interpret"] = rng.random() < args.interpret
            w.ctx = (kind, blob, _digest(job["path"]) if "path" in job else None)
        return job

    def finish(w, job, outs):
        kind, blob, before = w.ctx
        counts[kind] += 1
        first = outs[0] if outs else {}
        end = str(first["exit"]) if "exit" in first else first.get("exc", "?")
        exits.setdefault(kind, {}).setdefault(end, 0)
        exits[kind][end] += 1
        record(findings, args.out, kind, blob, outs, job, before)
        for p in os.listdir(w.work):
            os.unlink(os.path.join(w.work, p))

    with tempfile.TemporaryDirectory(prefix="nuwa-fuzz-") as tmp:
        Pool(tmp, args.jobs, args.memory_mib, run_job, recycle=args.recycle).run(next_job, finish, args.timeout)
    n = state["n"]
    return {"inputs": n, "per_kind": counts, "first_command_ends": exits, "findings": findings}


def replay(path: str, kind: str, timeout: float, limit_mib: int) -> list[dict]:
    """Run one saved input (a file ``--out`` wrote) in a fresh child; its outcomes, tracebacks included."""
    with open(path, "rb") as f:
        blob = f.read()
    with tempfile.TemporaryDirectory(prefix="nuwa-fuzz-replay-") as work:
        if kind == "script":
            job = {"kind": kind, "text": blob.decode("latin-1"), "work": work}
        elif kind == "dpkgdb":
            saved = json.loads(blob)
            deb = os.path.join(work, "good.deb")
            with open(fuzz_seeds.make_seeds(DEFAULT_SEED_DIR)["good.deb"], "rb") as src, open(deb, "wb") as dst:
                dst.write(src.read())
            job = {"kind": kind, "deb": deb, "status": saved["status"], "work": work, "info": saved["info"]}
        else:
            job = {"kind": kind, "path": os.path.join(work, "input.img" if kind != "deb" else "input.deb"),
                   "work": work}
            with open(job["path"], "wb") as f:
                f.write(blob)
        preload()
        return run_one(job, timeout, limit_mib)


DEFAULT_SEED_DIR = "/var/tmp/nuwa-fuzz-seeds"


def run_plan(args) -> dict:
    """``--plan KIND=COUNT,...``: a long run made of one count per kind (the kinds differ a
    hundredfold in cost, so a round-robin would spend its time on the slowest), each kind with
    its own seed (``--seed`` + its position); the per-kind results merged into one report."""
    total = {"inputs": 0, "per_kind": {}, "first_command_ends": {}, "findings": {}, "per_kind_seconds": {}}
    for i, item in enumerate(args.plan.split(",")):
        kind, _, count = item.partition("=")
        sub = argparse.Namespace(**{**vars(args), "kinds": kind, "count": int(count), "seconds": None,
                                    "seed": args.seed + i})
        t0 = time.monotonic()
        res = fuzz(sub)
        total["per_kind_seconds"][kind] = round(time.monotonic() - t0, 1)
        total["inputs"] += res["inputs"]
        total["per_kind"].update(res["per_kind"])
        total["first_command_ends"].update(res["first_command_ends"])
        for cause, f in res["findings"].items():
            total["findings"][cause] = f
        print(f"{kind}: {res['inputs']} inputs in {total['per_kind_seconds'][kind]} s, "
              f"{len(res['findings'])} finding causes", file=sys.stderr, flush=True)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default=None, help=f"comma-separated, of {','.join(KINDS)}")
    ap.add_argument("--timeout", type=float, default=20.0, help="per-input time limit (s)")
    ap.add_argument("--jobs", type=int, default=1, help="inputs run at once (one worker process each)")
    ap.add_argument("--recycle", type=int, default=500, help="inputs per worker before a fresh fork")
    ap.add_argument("--interpret", type=float, default=1.0,
                    help="share of the script inputs that are also interpreted (all are parsed)")
    ap.add_argument("--memory-mib", type=int, default=2048, help="per-input address-space limit")
    ap.add_argument("--seed-dir", default=DEFAULT_SEED_DIR)
    ap.add_argument("--replay", default=None, help="run one saved input (with --kind) and print its outcomes")
    ap.add_argument("--kind", default=None, help=f"the kind of the --replay input, of {','.join(KINDS)}")
    ap.add_argument("--out", default=None, help="where the smallest input of each failure cause goes")
    ap.add_argument("--plan", default=None,
                    help="KIND=COUNT,...: each kind in turn for its count (seed, seed+1, ...); one report")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.replay:
        for res in replay(args.replay, args.kind, args.timeout, args.memory_mib):
            print(json.dumps({k: v for k, v in res.items() if k != "tb"}))
            if "tb" in res:
                print(res["tb"])
        return 0
    t0 = time.monotonic()
    if args.plan:
        res = run_plan(args)
    else:
        if args.seconds is None and args.count is None:
            args.seconds = 120.0
        res = fuzz(args)
    res["seconds"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{res['inputs']} inputs in {res['seconds']} s: " + ", ".join(f"{k} {v}" for k, v in res["per_kind"].items()))
        for k, ends in res["first_command_ends"].items():
            print(f"  {k}: first command ended " + ", ".join(f"{e}: {c}" for e, c in sorted(ends.items())))
        for cause, f in sorted(res["findings"].items()):
            print(f"FAIL x{f['count']} [{f['kind']}, {f['size']} bytes] {cause}")
            print("    " + (f["detail"].get("msg") or "")[:200])
    return 1 if res["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
