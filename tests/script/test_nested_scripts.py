"""Shell scripts found in the image run inside the simulator, atomically.

The judge is the real thing: Debian's own ``update-ca-certificates`` (a shell script from the
ca-certificates package) run by dash in a chroot of a bookworm tree, against the same script
run by Nuwa's interpreter on a copy. The nested-script rules are tested on small trees.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree, remove_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

MODELS = default_models()


def _bin(fs, *names):
    fs.makedirs("/usr/bin")
    for n in names:
        fs.write_bytes(f"/usr/bin/{n}", b"\x7fELF\x02\x01\x01", 0o755)


def _tree():
    fs = Overlay(MemoryFS())
    _bin(fs, "cat", "touch", "frobnicate", "rm", "sh")
    fs.write_bytes("/usr/bin/helper", b"#!/bin/sh -e\necho helper:$0:$#:$1\ntouch /made-by-helper\nexit 3\n", 0o755)
    fs.write_bytes("/usr/bin/partial", b"#!/bin/sh\ntouch /half\nfrobnicate /half\ncat /half\n", 0o755)
    fs.write_bytes("/usr/bin/pyscript", b"#!/usr/bin/python3\nprint(1)\n", 0o755)
    return fs


def test_nested_shell_script_is_interpreted_with_its_own_arguments():
    fs = _tree()
    r = run_script(fs, "helper one two; echo status=$?\n", ["configure"], models=MODELS)
    assert not r.deferred_whole, r.reason
    assert r.stdout == b"helper:/usr/bin/helper:2:one\nstatus=3\n"
    assert fs.exists("/made-by-helper")
    assert any(e.kind == "script" for e in r.record.entries)


def test_a_nested_script_with_a_deferred_command_is_undone_and_deferred_whole():
    fs = _tree()
    r = run_script(fs, "partial arg\necho after\n", ["configure"], models=MODELS)
    assert not r.deferred_whole, r.reason
    assert r.stdout == b"after\n"
    assert not fs.lexists("/half"), "the child's effects must be rolled back"
    assert [d.argv for d in r.deferred_commands] == [["partial", "arg"]]
    assert "frobnicate" in r.deferred_commands[0].reason


def test_scripts_in_other_languages_are_deferred_not_run():
    fs = _tree()
    r = run_script(fs, "pyscript\n", ["configure"], models=MODELS)
    assert [d.argv for d in r.deferred_commands] == [["pyscript"]]


def test_without_savepoints_a_nested_script_is_deferred_unrun(tmp_path):
    fs = MemoryFS()
    _bin(fs, "touch")
    fs.write_bytes("/usr/bin/helper", b"#!/bin/sh\ntouch /x\n", 0o755)
    r = run_script(fs, "helper\n", ["configure"], models=MODELS)
    assert [d.argv for d in r.deferred_commands] == [["helper"]] and not fs.lexists("/x")


@pytest.mark.judge
@pytest.mark.slow
def test_update_ca_certificates_matches_the_real_script(tmp_path):
    """Install ca-certificates' files with real dpkg, then run update-ca-certificates both ways."""
    base = bookworm_tree()
    real, sim = str(tmp_path / "real"), str(tmp_path / "sim")
    copy_tree(base, real)
    debs = tmp_path / "debs"
    debs.mkdir()
    # the tree's apt lists are cleaned by mmdebstrap; the host's apt knows bookworm
    r = subprocess.run(["apt-get", "download", "-q", "ca-certificates", "openssl", "libssl3"], cwd=debs,
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot download ca-certificates: {r.stderr.strip()[-200:]}")
    for deb in os.listdir(debs):
        subprocess.run(["cp", str(debs / deb), os.path.join(real, "tmp")], check=True)
    subprocess.run(["chroot", real, "sh", "-c", "dpkg --unpack /tmp/*.deb && rm /tmp/*.deb"],
                   check=True, capture_output=True)
    # the conffile that postinst would make from debconf: every shipped certificate enabled
    subprocess.run(["chroot", real, "sh", "-c",
                    "cd /usr/share/ca-certificates && find . -name '*.crt' | sed 's,^\\./,,' | sort > /etc/ca-certificates.conf"],
                   check=True)
    copy_tree(real, sim)
    # run as dpkg would: through the kernel, so the script's own `#!/bin/sh -e` applies
    want = subprocess.run(["chroot", real, "/usr/sbin/update-ca-certificates"], capture_output=True, text=True)
    assert want.returncode == 0, want.stderr

    fs = Overlay(HostDirFS(sim, writable=True))
    got = run_script(fs, "update-ca-certificates\n", [], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, models=MODELS)
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    assert got.status == want.returncode
    assert got.stdout.decode() == want.stdout
    fs.commit()

    def certs(root):
        d = os.path.join(root, "etc/ssl/certs")
        return {n: (os.readlink(os.path.join(d, n)) if os.path.islink(os.path.join(d, n))
                    else open(os.path.join(d, n), "rb").read()) for n in os.listdir(d)}

    assert certs(sim) == certs(real)
    assert len(certs(sim)) > 200

    # local certificates as an administrator leaves them: a directory reached through a link
    # (update-ca-certificates walks them with `find -L`), a dangling link; then --fresh
    local = "usr/local/share/ca-certificates"
    pem = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null",
                          "-subj", "/CN=Nuwa Local Test CA", "-days", "2"], capture_output=True, check=True).stdout
    for root in (real, sim):
        os.makedirs(os.path.join(root, local, "site/inner"))
        with open(os.path.join(root, local, "site/inner/Nuwa_Local.crt"), "wb") as f:
            f.write(pem)
        os.symlink("site", os.path.join(root, local, "alias"))
        os.symlink("nowhere.crt", os.path.join(root, local, "broken.crt"))
    want = subprocess.run(["chroot", real, "/usr/sbin/update-ca-certificates", "--fresh"], capture_output=True,
                          text=True)
    assert want.returncode == 0, want.stderr
    fs = Overlay(HostDirFS(sim, writable=True))
    got = run_script(fs, "update-ca-certificates --fresh\n", [], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                     models=MODELS)
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    assert (got.status, got.stdout.decode(), got.stderr.decode()) == (want.returncode, want.stdout, want.stderr)
    fs.commit()
    assert certs(sim) == certs(real)
    assert "Nuwa_Local.pem" in certs(sim)


def test_a_model_that_ignores_stdin_does_not_swallow_the_loop_input():
    """``while read`` feeding commands that never read stdin: every line is seen (as in dash)."""
    fs = Overlay(MemoryFS())
    _bin(fs, "touch", "cat")
    r = run_script(fs, "printf 'a\\nb\\nc\\n' | while read -r f; do touch /$f; done; cat /a /b /c; echo ok\n", [], models=MODELS)
    assert r.stdout == b"ok\n" and r.status == 0, (r.stdout, r.stderr)
    assert all(fs.exists(p) for p in ("/a", "/b", "/c"))


def test_a_nested_script_reads_from_the_same_input():
    fs = _tree()
    fs.write_bytes("/usr/bin/one", b"#!/bin/sh\nread -r x\necho got:$x\n", 0o755)
    r = run_script(fs, "printf 'l1\\nl2\\n' | { one; read -r y; echo rest:$y; }\n", [], models=MODELS)
    assert r.stdout == b"got:l1\nrest:l2\n", (r.stdout, r.stderr, r.reason)


def _pycache_tree(root, prefix):
    for d in ("usr/lib/python3/dist-packages/pkg/__pycache__", "bin", "usr/bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    base = os.path.join(root, "usr/lib/python3/dist-packages/pkg")
    for n in ("a", "b c"):
        open(os.path.join(base, f"{n}.py"), "w").write("x = 1\n")
        for tag in ("cpython-311", "cpython-312"):
            open(os.path.join(base, "__pycache__", f"{n}.{tag}.pyc"), "w").write("junk")
    # the real sed runs on the host: its list names paths relative to the scratch tree
    open(os.path.join(root, "files.list"), "w").write("".join(
        f"{prefix}{p}\n" for p in ("/usr/lib/python3/dist-packages/pkg", "/usr/lib/python3/dist-packages/pkg/a.py",
                                   "/usr/lib/python3/dist-packages/pkg/b c.py", "/usr/share/doc/pkg")))


@pytest.mark.judge
def test_sed_e_flag_runs_commands_like_gnu_sed(tmp_path):
    """dh_python3's prerm: ``dpkg -L pkg | sed -En -e '/^(.*)\\/(.+)\\.py$/s,,rm "\\1/__pycache__/\\2".*,e'``."""
    real, sim = str(tmp_path / "real"), str(tmp_path / "sim")
    _pycache_tree(real, ".")
    _pycache_tree(sim, "")
    for n in ("sh", "rm", "sed"):
        open(os.path.join(sim, "bin", n), "wb").write(b"\x7fELF")
        os.chmod(os.path.join(sim, "bin", n), 0o755)
    script = "sed -En -e '/^(.*)\\/(.+)\\.py$/s,,rm \"\\1/__pycache__/\\2\".*,e' files.list; echo st=$?\n"
    want = subprocess.run(["sh", "-c", script], cwd=real, capture_output=True, text=True)
    ov = Overlay(HostDirFS(sim, writable=True))
    got = run_script(ov, script, [], cwd="/", env={"PATH": "/usr/bin:/bin"}, models=MODELS)
    ov.commit()
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    assert (got.stdout.decode(), got.status) == (want.stdout, want.returncode)
    assert sorted(os.listdir(os.path.join(sim, "usr/lib/python3/dist-packages/pkg/__pycache__"))) == sorted(
        os.listdir(os.path.join(real, "usr/lib/python3/dist-packages/pkg/__pycache__"))) == []
    remove_tree(real)
