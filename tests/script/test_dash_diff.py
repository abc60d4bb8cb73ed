"""Differential tests of the shell interpreter against real dash (the oracle).

Every case of ``dash_cases.txt`` runs twice: by ``dash -c SCRIPT sh ARGS...`` in a scratch
directory (clean environment), and by :func:`nuwa.script.interp.run_script` on a
:class:`nuwa.fs.hostdir.HostDirFS` rooted at a copy of the same scratch tree. stdout,
stderr, exit status and the resulting file trees must be identical. Nothing here holds an
expected output: dash produces it on every run.

Case headers: ``=== name | key=value | ...`` with keys ``args`` (positional parameters,
space-separated), ``stdin`` (text, ``\\n`` escapes), ``file=1`` (dash runs the script
from a file, as dpkg does, instead of ``-c``), ``models`` (commands the case needs as
command models; it runs only once the default model set has them all) and ``diverge`` (a known
divergence, with its reason: the case is an expected failure, strict, so fixing it shows).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers.trees import content_facts, tree_facts
from judges import tool
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_FILE = os.path.join(HERE, "dash_cases.txt")



def load_cases() -> list[tuple[str, str, dict]]:
    """Parse dash_cases.txt into (name, script, options)."""
    cases = []
    name, opts, lines = None, {}, []
    with open(CASES_FILE, encoding="utf-8") as f:
        for raw in f:
            if raw.startswith("=== "):
                if name is not None:
                    cases.append((name, "".join(lines).rstrip("\n"), opts))
                head = [h.strip() for h in raw[4:].rstrip("\n").split(" | ")]
                name, opts, lines = head[0], {}, []
                for h in head[1:]:
                    k, _, v = h.partition("=")
                    opts[k] = v
            elif name is not None:
                lines.append(raw)
    if name is not None:
        cases.append((name, "".join(lines).rstrip("\n"), opts))
    return cases


CASES = load_cases()
SCRATCH = {
    "a.txt": b"alpha\n",
    "b.txt": b"beta\n",
    "c.log": b"",
    "dir/x": b"x\n",
    "dir/y": b"y\n",
    ".hidden": b"h\n",
    "sp ace": b"s\n",
    "empty/": None,
}


def make_scratch(root: str) -> None:
    """The tree every case starts from (same for dash and Nuwa)."""
    os.makedirs(root)
    for rel, data in SCRATCH.items():
        p = os.path.join(root, rel)
        if data is None:
            os.makedirs(p, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    os.symlink("a.txt", os.path.join(root, "link"))


def snapshot(root: str, skip: str = ".bin") -> dict:
    """Every entry under ``root`` but ``skip``: type, permission bits, content or link target."""
    return tree_facts(root, content_facts, prune=(skip,))


def _unescape(s: str) -> bytes:
    return s.encode().decode("unicode_escape").encode("latin-1")


@pytest.mark.judge
@pytest.mark.parametrize("name,script,opts", CASES, ids=[c[0] for c in CASES])
def test_dash_agrees(name, script, opts, tmp_path, request):
    dash = tool("dash")
    needs = [m for m in opts.get("models", "").split(",") if m]
    if needs:
        missing = [m for m in needs if m not in MODELS]
        if missing:
            pytest.skip(f"needs command models not in the default set yet: {', '.join(missing)}")
    if "diverge" in opts:
        request.node.add_marker(pytest.mark.xfail(reason=opts["diverge"], strict=True))
    args = opts.get("args", "").split() if opts.get("args") else []
    stdin = _unescape(opts.get("stdin", ""))
    old_umask = os.umask(0o022)
    try:
        d_root, n_root = str(tmp_path / "dash"), str(tmp_path / "nuwa")
        make_scratch(d_root)
        make_scratch(n_root)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/home/u", "LC_ALL": "C"}
        if opts.get("file"):  # run as a script file, as dpkg runs maintainer scripts
            arg0 = str(tmp_path / "script.sh")
            with open(arg0, "w") as f:
                f.write(script + "\n")
            cmd = [dash, arg0, *args]
        else:
            arg0 = "sh"
            cmd = [dash, "-c", script, "sh", *args]
        r = subprocess.run(cmd, cwd=d_root, env=env, input=stdin, capture_output=True, timeout=20)
        # Nuwa: the scratch copy is the image; commands resolve through PATH in it
        os.makedirs(os.path.join(n_root, ".bin"))
        for m in needs:
            p = os.path.join(n_root, ".bin", m)
            with open(p, "wb") as f:
                f.write(b"#!/bin/sh\n")
            os.chmod(p, 0o755)
        from nuwa.fs.hostdir import HostDirFS

        fs = HostDirFS(n_root, writable=True)
        nenv = {"PATH": "/.bin", "HOME": "/home/u", "LC_ALL": "C"}
        res = run_script(fs, script + ("\n" if opts.get("file") else ""), args, env=nenv, name=arg0,
                         stdin=stdin, budget=100_000, models=MODELS)
    finally:
        os.umask(old_umask)
    # a script that does not parse is deferred whole (by design) after printing dash's message
    assert not res.deferred_whole or res.reason.startswith("parse error"), res.reason
    assert res.stdout.decode("utf-8", "replace") == r.stdout.decode("utf-8", "replace")
    assert res.stderr.decode("utf-8", "replace") == r.stderr.decode("utf-8", "replace")
    assert res.status == r.returncode
    assert snapshot(n_root) == snapshot(d_root)
