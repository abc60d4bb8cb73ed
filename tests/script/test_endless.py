"""Endless writers into a pipeline (``nuwa.script.endless``), judged against real dash.

Each case runs by ``dash -c`` in a scratch directory (host coreutils 9.1 from PATH, as in
``test_dash_diff.py``) and by the simulator on a :class:`HostDirFS` copy of that directory
(its dormant ``/dev`` is empty, so ``/dev/zero`` and ``/dev/urandom`` are the booted kernel's).
Exact cases compare stdout, stderr, status and the trees; random output is compared by its
shape (length, alphabet), the bytes being random on both sides; pipelines that never end
under dash (it is killed after a timeout, with its whole process group) must be deferred
whole by the simulator, with the reason, and leave the tree untouched.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time

import pytest

from helpers.trees import content_facts, tree_facts
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()
PROGRAMS = ("cat", "head", "tail", "tr", "cut", "wc", "sort", "yes", "od", "dd", "mktemp")
HANG_SECONDS = 3


def _scratch(root) -> None:
    os.makedirs(root)
    with open(os.path.join(root, "a.txt"), "wb") as f:
        f.write(b"alpha\n")


#: the output kept of a dash run: the rest is read and dropped (an endless writer such as a
#: lone ``yes`` makes gigabytes in HANG_SECONDS: kept, they cost 5 GB of memory and 10 s)
KEEP = 1 << 20


def _dash(script: str, cwd, bash: bool = False):
    """(status, stdout, stderr), or None when it has not ended after HANG_SECONDS.

    Both streams are read to their end as they come, as ``communicate`` would (dash is never
    held up by a full pipe), but only their first KEEP bytes are kept; a run that ends with
    more than that is a failure of the test itself (no case here writes so much and ends)."""
    p = subprocess.Popen([tool("bash" if bash else "dash"), "-c", script], cwd=cwd,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    out, err = bytearray(), bytearray()
    kept = {p.stdout.fileno(): out, p.stderr.fileno(): err}
    over = False
    deadline = time.monotonic() + HANG_SECONDS
    with selectors.DefaultSelector() as sel:
        for fd in kept:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    sel.unregister(key.fd)
                elif len(kept[key.fd]) < KEEP:
                    kept[key.fd] += chunk
                else:
                    over = True
        if sel.get_map():  # still writing at the deadline: the pipeline's processes are dash's children
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return None
    try:
        status = p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # both streams closed, yet dash has not ended
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None
    p.stdout.close()
    p.stderr.close()
    assert not over, f"dash ended after writing more than {KEEP} bytes: raise KEEP"
    return status, bytes(out), bytes(err)


def _nuwa(script: str, root, bash: bool = False):
    os.makedirs(os.path.join(root, ".bin"))
    for m in PROGRAMS:
        p = os.path.join(root, ".bin", m)
        with open(p, "wb") as f:
            f.write(b"#!/bin/sh\n")
        os.chmod(p, 0o755)
    fs = HostDirFS(str(root), writable=True)
    return run_script(fs, script, [], env={"PATH": "/.bin", "LC_ALL": "C"}, models=MODELS,
                      is_path=False, bash=bash, name="bash" if bash else "sh")


def _pair(tmp_path, script: str, bash: bool = False):
    d_root, n_root = tmp_path / "dash", tmp_path / "nuwa"
    _scratch(d_root)
    _scratch(n_root)
    return _dash(script, d_root, bash), _nuwa(script, n_root, bash), d_root, n_root


def _tree(root) -> dict:
    return tree_facts(str(root), content_facts, prune=(".bin",))


EXACT = [
    "yes | head -n 3",
    "yes a b | head -n 2; echo $?",
    "yes '' | head -n 2 | wc -c",
    "yes -- -n x | head -n 1",
    "yes -- | head -n1; yes - | head -n1; yes -- -- | head -n1; yes a -- b | head -n 1",
    "head -c 5 /dev/zero | wc -c",
    "head -c 5 /dev/zero | tr '\\0' z; echo",
    "head -n 3 /dev/urandom | wc -l",
    "head -z -n 3 /dev/zero | wc -c; head -n 0 /dev/zero | wc -c",
    "head -c 0 /dev/urandom | wc -c; cat /dev/null | wc -c",
    "cat /dev/zero | head -c 5000 | wc -c",
    "cat a.txt /dev/zero | head -c 8 | tr '\\0' z; echo",
    "yes | cut -c1 | head -n 2",
    "yes | tr y n | head -n 2",
    "yes | cat | cat - | head -n 2",
    "yes | head -n 100000 | wc -l",
    "cat /dev/urandom | true; echo $?",
    "yes | echo hi | cat",
    "x=$(cat /dev/urandom | head -c 10 | wc -c); echo $x",
    "yes | head -c 3 > f; cat f; echo",
    "yes | head -n 2 >&2",
    "yes | { read a; echo got $a; }",
    "yes | while read a; do echo $a; break; done",
    "set -e; yes | head -n 1; echo after $?",
    "yes | tr -dc | head -c 3; echo $?",
    "yes | head -c 2 | tr -dc y; echo; yes | head -c 2 | head -n 1",
    # standard input redirected from the kernel's device: the stage after `cat DEVICE |`
    "tr -dc a-z < /dev/urandom | head -c 10 | wc -c",
    "head -c 3 < /dev/zero | od -c",
    "echo a | head -c 4 < /dev/zero | wc -c",
    "od -N 4 -tx1 < /dev/zero 2>/dev/null; echo $?",
    "x=$(head -n 2 < /dev/urandom | wc -l); echo $x",
]


@pytest.mark.judge
@pytest.mark.parametrize("script", EXACT)
def test_exact_against_dash(script, tmp_path):
    real, res, d_root, n_root = _pair(tmp_path, script)
    assert real is not None, "dash did not end"
    assert not res.deferred_whole, res.reason
    assert (res.status, res.stdout, res.stderr) == real
    assert _tree(n_root) == _tree(d_root)


@pytest.mark.judge
def test_pipefail_status_of_the_killed_writer_is_bash_s(tmp_path):
    # bash's pipefail sees the writer killed by SIGPIPE: 141 (dash has no pipefail)
    script = "set -o pipefail; yes | head -n 1; echo $?; cat /dev/zero | tr '\\0' a | head -c 2; echo $?"
    real, res, _, _ = _pair(tmp_path, script, bash=True)
    assert (res.status, res.stdout, res.stderr) == real
    assert res.stdout == b"y\n141\naa141\n"


PASSWORD = "cat /dev/urandom | tr -dc _A-Z-a-z-0-9 | head -c33"


@pytest.mark.judge
def test_bacula_password_shape_against_dash(tmp_path):
    """bacula-common's genRandomPassword: 33 characters of ``_A-Z-a-z-0-9`` (``-`` is literal
    where it cannot end a range), status 0, nothing on stderr, as dash gives."""
    real, res, _, _ = _pair(tmp_path, PASSWORD + "; echo \" $?\"")
    assert real is not None and not res.deferred_whole, res.reason
    shape = re.compile(rb"[-_A-Za-z0-9]{33} 0\n")
    assert shape.fullmatch(real[1]) and shape.fullmatch(res.stdout)
    assert (res.status, res.stderr) == (real[0], real[2]) == (0, b"")
    assert res.record.entries[0].status == 141 and res.record.entries[0].argv == ["cat", "/dev/urandom"]


def test_random_bytes_are_not_seeded(tmp_path):
    """Two runs (two images) get two different secrets, as two booted guests would."""
    outs = set()
    for i in range(2):
        r = _nuwa(PASSWORD, tmp_path / str(i))
        assert not r.deferred_whole and len(r.stdout) == 33
        outs.add(r.stdout)
    assert len(outs) == 2


BACULA = """genRandomPassword()
{
    cat /dev/urandom | tr -dc _A-Z-a-z-0-9 | head -c33
}
DIRPASSWD=$(genRandomPassword)
SDPASSWD=$(genRandomPassword)
cat >pw <<EOF
DIRPASSWD=$DIRPASSWD
SDPASSWD=$SDPASSWD
EOF
"""


@pytest.mark.judge
def test_bacula_password_file_against_dash(tmp_path):
    real, res, d_root, n_root = _pair(tmp_path, BACULA)
    assert real == (0, b"", b"") and (res.status, res.stdout, res.stderr) == real
    shape = re.compile(rb"DIRPASSWD=[-_A-Za-z0-9]{33}\nSDPASSWD=[-_A-Za-z0-9]{33}\n")
    for root in (d_root, n_root):
        assert shape.fullmatch((root / "pw").read_bytes())


HANGS = [
    ("cat /dev/zero | wc -c", "`wc` reads it to its end"),
    ("yes | sort | head -n 1", "`sort` reads it to its end"),
    ("cat /dev/zero | tr -d '\\0' | head -c 1", "`tr` stops writing"),
    ("yes | head -c -3 | wc -c", "`head` reads it to its end"),
    ("yes | tail -n 1", "`tail` reads it to its end"),
    ("cat /dev/zero > /dev/null", "other than as a pipeline's own stage"),
    ("while :; do cat /dev/zero; done | head -c 1", "other than as a pipeline's own stage"),
    ("yes | { echo partial > p; wc -l; } | head -c 1", "stage 2 of the pipeline reads it"),
    ("cat /dev/zero | head -n 1 | wc -c", "`head` does not stop reading it within"),
    ("yes", "other than as a pipeline's own stage"),
    ("tr -dc a-z < /dev/urandom", "no stage stops reading it"),
    ("cat /dev/zero | od -c | head -n 2", "`od` reads it to its end"),
    ("while read x; do :; done < /dev/zero", "reading /dev/zero (endless) through this redirection"),
]


@pytest.mark.judge
@pytest.mark.parametrize("script,why", HANGS)
def test_never_ending_pipelines_are_deferred_whole(script, why, tmp_path):
    real, res, _, n_root = _pair(tmp_path, script)
    assert real is None, f"dash ended: {real}"
    assert res.deferred_whole and why in res.reason, res.reason
    # nothing a rejected try wrote is left behind (the first command's effect stays: the
    # caller of a whole-deferred script rolls its overlay back)
    assert not (n_root / "p").exists()


REASONED = [
    # dash ends `f | head` (f's cat dies of SIGPIPE, f returns): the simulator models the end
    # of a writer only as a pipeline's own stage
    ("f() { cat /dev/zero; }; f | head -c 2 | wc -c", "other than as a pipeline's own stage"),
    # a device redirection other than a simple command's literal `< /dev/...`
    ("d=/dev/zero; head -c 1 < $d | wc -c", "reading /dev/zero (endless) through this redirection"),
    # a lone builtin runs in the shell itself: a try in a subshell cannot stand in for it
    ("true < /dev/urandom; echo $?", "only a program's model is run on a cut stream here"),
    ("dd bs=4 count=1 < /dev/zero 2>/dev/null | wc -c", "`dd` reads it to its end"),
    # mktemp's names come from the run's model state, which a rejected try could not undo
    ("yes | { read a; mktemp -p . >/dev/null; }", "uses the run's model state"),
]


@pytest.mark.judge
@pytest.mark.parametrize("script,why", REASONED)
def test_forms_not_modelled_are_deferred_with_the_reason(script, why, tmp_path):
    """Pipelines dash does end, in forms the rule does not cover: deferred whole with the
    reason (before, some of them gave a wrong "cannot open /dev/zero" in a dormant image)."""
    real, res, _, _ = _pair(tmp_path, script)
    assert real is not None and real[0] == 0
    assert res.deferred_whole and why in res.reason, res.reason


@pytest.mark.judge
def test_compound_filter_stage_is_deferred_and_its_try_leaves_no_file(tmp_path):
    """dash ends this one (cat dies of SIGPIPE, then the group ends): the simulator knows only
    single programs as filters, so it defers with the reason -- and the rejected tries' file
    ``p`` is nowhere (never half-done work)."""
    real, res, d_root, n_root = _pair(tmp_path, "yes | { echo partial > p; cat; } | head -c 1")
    assert real == (0, b"y", b"") and (d_root / "p").exists()
    assert res.deferred_whole and "stage 2 of the pipeline reads it to its end" in res.reason
    assert not (n_root / "p").exists()


def test_debconf_fd_in_a_try_is_refused(tmp_path):
    """A try's effects on fd 3 (debconf's protocol) could not be undone: deferred whole."""
    res = _nuwa("exec 3>three; yes | head -n 1 >&3", tmp_path / "n")
    assert res.deferred_whole and "uses fd 3" in res.reason
    assert (tmp_path / "n" / "three").read_bytes() == b""


def test_accepted_try_commits_into_an_overlay_and_rolls_back_with_it():
    """On the patch job's backend (an overlay with savepoints) the accepted try's file is one
    pending change, undone with the script's savepoint like any other."""
    m = MemoryFS()
    for d in ("/bin", "/etc"):
        m.mkdir(d)
    for p in PROGRAMS:
        m.write_bytes("/bin/" + p, b"#!/bin/sh\n", 0o755)
    m.mkdir("/dev")
    m.mknod("/dev/urandom", 0o020666, os.makedev(1, 9))
    ov = Overlay(m)
    sp = ov.savepoint()
    r = run_script(ov, PASSWORD + " > /etc/secret", env={"PATH": "/bin"}, models=MODELS, is_path=False)
    assert not r.deferred_whole, r.reason
    assert re.fullmatch(rb"[-_A-Za-z0-9]{33}", ov.read_bytes("/etc/secret"))
    assert [e.path for e in ov.changes()] == ["/etc", "/etc/secret"]  # the directory's times
    ov.rollback_to(sp)
    assert not ov.exists("/etc/secret")


def test_a_device_node_that_is_not_the_kernel_s_is_not_endless():
    """An image whose /dev/zero is some other node: cat does not treat it as the kernel's."""
    m = MemoryFS()
    m.mkdir("/bin")
    m.write_bytes("/bin/cat", b"#!/bin/sh\n", 0o755)
    m.write_bytes("/bin/head", b"#!/bin/sh\n", 0o755)
    m.mkdir("/dev")
    m.mknod("/dev/zero", 0o020666, os.makedev(4, 1))
    r = run_script(Overlay(m), "cat /dev/zero | head -c 1", env={"PATH": "/bin"}, models=MODELS, is_path=False)
    assert r.deferred_whole and "special file" in r.reason
