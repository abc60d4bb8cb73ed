"""Deferral by data flow, the run record, budgets and the dpkg environment.

A command without a model (here ``update-initramfs``, present in the image as an executable
file) is deferred. When its output or status is used, the whole script invocation is
deferred instead; otherwise the script carries on as if it succeeded with empty output and
the record keeps the command with its argv, cwd, environment differences and stdin.
"""

from __future__ import annotations

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.context import Drop
from nuwa.script.interp import dpkg_environment, run_script
from nuwa.script.record import DEFERRED, DROPPED, SIMULATED

MODELS = default_models()


@pytest.fixture
def fs():
    m = MemoryFS()
    m.makedirs("/usr/sbin")
    m.makedirs("/usr/bin")
    m.makedirs("/tmp")
    for name in ("update-initramfs", "svc-start"):
        m.write_bytes(f"/usr/sbin/{name}", b"\x7fELF\x02\x01\x01", 0o755)  # a program, not a script
    return m


@pytest.fixture
def svc_model(monkeypatch):
    """A model that only matters to a running system (like invoke-rc.d): it drops."""

    def model(inv):
        raise Drop("starts a service", status=0)

    monkeypatch.setitem(globals(), "MODELS", MODELS.extended({"svc-start": model}))


def run(fs, text, **kw):
    return run_script(fs, text, ["configure", "1.0"], name="postinst", **kw, models=MODELS)


def test_unused_deferred_command_is_recorded_and_script_continues(fs):
    r = run(fs, "set -e\ncd /tmp\nFOO=bar update-initramfs -u -k all\necho after > /tmp/after\n")
    assert not r.deferred_whole and r.status == 0
    assert fs.read_bytes("/tmp/after") == b"after\n"
    (d,) = r.deferred_commands
    assert d.argv == ["update-initramfs", "-u", "-k", "all"]
    assert d.cwd == "/tmp" and d.env == {"FOO": "bar", "PWD": "/tmp"} and d.line == 3
    assert d.reason == "no model for update-initramfs" and d.umask == 0o022
    kinds = [(e.argv[0], e.classification) for e in r.record.entries]
    assert ("update-initramfs", DEFERRED) in kinds and ("cd", SIMULATED) in kinds
    assert r.record.counts[DEFERRED] == 1


def test_deferred_stdin_is_kept(fs):
    r = run(fs, "printf 'a\\nb\\n' | update-initramfs\n")
    assert not r.deferred_whole
    assert r.deferred_commands[0].stdin == b"a\nb\n"


@pytest.mark.parametrize(
    "script,why",
    [
        ("x=$(update-initramfs -u)\n", "captured by $( )"),
        ("update-initramfs | while read l; do :; done\n", "piped to the next command"),
        ("update-initramfs > /tmp/out\ncat /tmp/out\n", "names /tmp/out, which deferred `update-initramfs` writes"),
        ("update-initramfs > /tmp/out\nread x < /tmp/out\n", "/tmp/out is read, but deferred"),
        ("{ echo a; update-initramfs; } > /tmp/out\n", "a file already in use"),
        ("{ update-initramfs; echo a; } > /tmp/out\n", "written after deferred `update-initramfs`"),
        ("if update-initramfs; then echo y; fi\n", "decides a condition"),
        ("while update-initramfs; do break; done\n", "decides a condition"),
        ("update-initramfs && rm -f /tmp/x\n", "decides `&&`"),
        ("update-initramfs\necho $?\n", "$? reads the status"),
        ("update-initramfs || { rm -f /tmp/x; exit 1; }\n", "decides `||`"),
        ("f() { update-initramfs || return 1; }\nf\n", "decides `||`"),
        ("update-initramfs || (echo no; false)\n", "decides `||`"),
    ],
)
def test_used_output_or_status_defers_whole_script(fs, script, why):
    r = run(fs, script)
    assert r.deferred_whole, r.reason
    assert why in r.reason and "update-initramfs" in r.reason


@pytest.mark.parametrize(
    "script",
    [
        "update-initramfs -u || true\n",
        "update-initramfs -u >/dev/null 2>&1 || :\n",
        "update-initramfs -u >/dev/null\n",
        "[ -x /usr/sbin/update-initramfs ] && update-initramfs -u\n",
        "if [ -x /usr/sbin/update-initramfs ]; then update-initramfs -u; fi\n",
        "x=$(update-initramfs -u >/dev/null; echo done)\n",
    ],
)
def test_status_used_only_by_a_noop_is_not_a_use(fs, script):
    r = run(fs, script)
    assert not r.deferred_whole, r.reason
    assert len(r.deferred_commands) == 1


def test_dropped_command_is_recorded_with_its_status(fs, svc_model):
    r = run(fs, "svc-start foo || echo failed\necho end\n")
    assert r.stdout == b"end\n" and not r.deferred_whole
    (e,) = [e for e in r.record.entries if e.argv[0] == "svc-start"]
    assert e.classification == DROPPED and e.reason == "starts a service"
    assert r.record.counts[DROPPED] == 1


def test_missing_command_is_127_like_dash(fs):
    r = run(fs, "nosuch-tool arg\necho $?\n")
    assert r.stdout == b"127\n" and r.stderr == b"postinst: 1: nosuch-tool: not found\n"


def test_step_budget_defers_instead_of_looping(fs):
    r = run(fs, "while :; do :; done\n", budget=5000)
    assert r.deferred_whole and "step budget" in r.reason


def test_parse_error_defers_whole_with_message(fs):
    r = run(fs, "echo ok\nif true; then\n")
    assert r.deferred_whole and r.reason.startswith("parse error: line 3")
    assert r.stdout == b""


def test_dpkg_environment_is_given():
    fs = MemoryFS()
    r = run_script(fs, 'echo "$PATH|$HOME|[$DPKG_ROOT]|$DPKG_MAINTSCRIPT_NAME|$DPKG_MAINTSCRIPT_PACKAGE"; umask',
                   env=dpkg_environment("postinst", "foo", "amd64"), models=MODELS)
    assert r.stdout == b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root|[]|postinst|foo\n0022\n"


def test_script_from_image_path_and_sourcing(fs):
    fs.makedirs("/usr/share/debconf")
    fs.write_bytes("/usr/share/debconf/confmodule", b"db_get() { RET=default; }\n")
    fs.write_bytes("/var-postinst", b"#!/bin/sh\nset -e\n. /usr/share/debconf/confmodule\ndb_get foo/bar\necho \"$RET $1\"\n")
    r = run_script(fs, "/var-postinst", ["configure"], models=MODELS)
    assert r.stdout == b"default configure\n" and r.status == 0


def test_umask_applies_to_created_files(fs):
    run(fs, "umask 027; echo x > /tmp/m; echo y > /tmp/n\n")
    assert fs.stat("/tmp/m").st_mode & 0o777 == 0o640


def test_record_to_json(fs):
    r = run(fs, "echo hi\nupdate-initramfs -u\n")
    j = r.record.to_json()
    assert j["name"] == "postinst" and j["counts"][DEFERRED] == 1
    assert [c["classification"] for c in j["commands"]] == [SIMULATED, DEFERRED]


def test_model_run_callback_reaches_models_and_builtins(fs, monkeypatch):
    seen = {}

    def xargs_like(inv):
        st, out, err = inv.run(["echo", "from", "echo"], b"")
        seen["echo"] = (st, out)
        with pytest.raises(Exception) as ei:
            inv.run(["update-initramfs"], b"")
        seen["defer"] = type(ei.value).__name__
        return 0

    monkeypatch.setitem(globals(), "MODELS", MODELS.extended({"xl": xargs_like}))
    fs.write_bytes("/usr/bin/xl", b"", 0o755)
    fs.write_bytes("/usr/bin/echo", b"", 0o755)
    r = run(fs, "xl\n")
    assert r.status == 0 and seen == {"echo": (0, b"from echo\n"), "defer": "Defer"}


def test_exec_of_deferred_command_defers_whole_script(fs):
    r = run(fs, "echo before\nexec update-initramfs -u\necho never\n")
    assert r.deferred_whole and "`exec` of deferred `update-initramfs`" in r.reason
