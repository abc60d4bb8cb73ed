"""Clients of daemons and identifier generators answered as a dormant image answers them, judged
against the real programs in a chroot of one real bookworm tree that has them installed
(erlang-base, lvm2, postgresql-common, open-iscsi, nvme-cli; ``PACKAGES``).

The real programs run in an empty network namespace (``unshare -n``: nothing can listen, the
loopback is down) inside a chroot of the tree with nothing mounted, which is what a maintainer
script run by dpkg in a chroot of a dormant image sees. The models run on the same tree
(a hard-linked copy when the case changes it).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from cmdharness import run_model
from debian_tree import bookworm_tree, link_tree
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.context import Defer
from nuwa.script.interp import run_script

PACKAGES = ("erlang-base", "lvm2", "postgresql-common", "open-iscsi", "nvme-cli")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MODELS = default_models()


@pytest.fixture(scope="module")
def tree() -> str:
    """The shared tree (read-only by convention: cases that write take a link_tree copy)."""
    tool("unshare")
    tool("chroot")
    return bookworm_tree(extra=PACKAGES)


def real(root: str, argv: list[str], env: dict | None = None) -> tuple[int, bytes, bytes]:
    """(status, stdout, stderr) of ``argv`` in a chroot of ``root`` in an empty network namespace."""
    envv = [f"{k}={v}" for k, v in {"LC_ALL": "C", "PATH": PATH, **(env or {})}.items()]
    p = subprocess.run(["unshare", "-n", "chroot", root, "/usr/bin/env", "-i", *envv, *argv],
                       capture_output=True, timeout=120)
    if b"unshare failed" in p.stderr:
        pytest.skip(p.stderr.decode().strip())
    return p.returncode, p.stdout, p.stderr


def model(root: str, argv: list[str], env: dict | None = None) -> tuple[int, bytes, bytes]:
    """The model's (status, stdout, stderr) on a read-only view of ``root``."""
    fs = Overlay(HostDirFS(root))
    return run_model(root, argv, b"", 0o022, fs=fs) if not env else _model_env(fs, argv, env)


def _model_env(fs, argv, env):
    """The model run with ``env`` added (through the interpreter: ``NAME=VALUE prog ...``); a
    deferral is raised as the model raised it."""
    text = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(argv) + "\n"
    r = run_script(fs, text, env={"LC_ALL": "C", "PATH": PATH}, models=MODELS, is_path=False)
    if r.deferred_commands:
        raise Defer(r.deferred_commands[0].reason)
    assert not r.deferred_whole, r.reason
    return r.status, r.stdout, r.stderr


# ---- epmd ------------------------------------------------------------------------------------

EPMD_CASES = [
    "-kill", "-names", "-stop foo", "-started", "-dump", "-port 4370 -kill", "-d -names", "-d -d -kill",
    "-debug -port 1 -stop x", "-address 127.0.0.1 -names", "-relaxed_command_check -kill",
    "-packet_timeout 5 -names", "-delay_accept 2 -delay_write 3 -kill", "-port ' 12x' -names",
    "-port 4294967296 -names", "-port -5 -kill", "-daemon -kill", "-systemd -names",
    # bad input: the usage text, exit 1
    "-kill x", "-port 0 -kill", "-port abc -names", "-port", "-bogus", "-stop", "-stop a b", "-address",
    "-names -port 4369", "--kill", "-packet_timeout 0 -kill", "-delay_write",
]


@pytest.mark.judge
@pytest.mark.parametrize("args", EPMD_CASES)
def test_epmd_client_matches_the_real_epmd_where_nothing_listens(tree, args):
    argv = ["epmd", *shlex.split(args)]
    want = real(tree, argv)
    got = model(tree, argv)
    assert got == want, args


@pytest.mark.judge
def test_epmd_name_too_long_and_environment(tree):
    argv = ["epmd", "-stop", "n" * 1001]
    assert model(tree, argv) == real(tree, argv) == (1, b"epmd: Name too long!", b"")
    for env in ({"ERL_EPMD_PORT": "0"}, {"ERL_EPMD_PORT": "4400", "ERL_EPMD_ADDRESS": "::1"}):
        assert model(tree, ["epmd", "-names"], env) == real(tree, ["epmd", "-names"], env)


@pytest.mark.parametrize("args", ["", "-daemon", "-systemd", "-d -port 4370", "-relaxed_command_check -daemon"])
def test_epmd_that_would_start_the_daemon_is_deferred(tree, args):
    with pytest.raises(Defer, match="would start the epmd daemon"):
        model(tree, ["epmd", *shlex.split(args)])


@pytest.mark.judge
def test_erlang_base_prerm_kills_no_epmd_as_dash_in_a_chroot(tree, tmp_path):
    """erlang-base's prerm (upgrade) without pgrep in the tree asks ``epmd -kill`` inside an
    ``if``: the whole script, run by real dash in the chroot and by Nuwa, prints and exits alike."""
    root = link_tree(tree, str(tmp_path / "t"))
    for p in ("usr/bin/pgrep", "bin/pgrep"):
        if os.path.lexists(os.path.join(root, p)):
            os.unlink(os.path.join(root, p))  # a hard-linked copy: unlink, never write through
    script = "/var/lib/dpkg/info/erlang-base.prerm"
    args = ["upgrade", "1:25.2.3+dfsg-1+deb12u9"]
    want = real(root, ["/bin/sh", script, *args])
    fs = Overlay(HostDirFS(root))
    with open(root + script, "rb") as f:
        text = f.read().decode()
    got = run_script(fs, text, args, env={"LC_ALL": "C", "PATH": PATH}, models=MODELS)
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    assert (got.status, got.stdout, got.stderr) == want
    assert b"Killing epmd... failed (or it is not running).\n" in want[1]


# ---- vgcfgbackup -----------------------------------------------------------------------------

def _files(root: str) -> dict[str, tuple]:
    """Every path under ``root`` except /proc, /sys, /dev: (mode, size, mtime)."""
    out = {}
    for d, dirs, files in os.walk(root):
        if d == root:
            dirs[:] = [x for x in dirs if x not in ("proc", "sys", "dev")]
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            out[os.path.relpath(os.path.join(d, n), root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _replace(root: str, rel: str, data: bytes | None) -> None:
    """Unlink ``rel`` in a hard-linked copy (never write through to the cache), then write ``data``."""
    p = os.path.join(root, rel)
    if os.path.lexists(p):
        os.unlink(p)
    if data is not None:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


@pytest.mark.judge
@pytest.mark.parametrize("setup", ["shipped", "no lvm.conf", "no configuration", "odd but valid"])
@pytest.mark.parametrize("args", ["", "vg0", "-f /tmp/x", "--bogus", "-v --help"])
def test_vgcfgbackup_in_a_dormant_chroot_matches_the_real_one(tree, tmp_path, setup, args):
    """Nothing mounted on /proc (dpkg's chroot of a dormant image): lvm fails its
    initialisation whatever the arguments, writes nothing, exits 4."""
    root = link_tree(tree, str(tmp_path / "t"))
    if setup in ("no lvm.conf", "no configuration"):
        _replace(root, "etc/lvm/lvm.conf", None)
    if setup == "no configuration":
        _replace(root, "etc/lvm/lvmlocal.conf", None)
    if setup == "odd but valid":
        _edit_lvm_conf(root, b'devices {\n\tscan="/dev" filter = [ "a|.*|", "r|/dev/x\\"y|", ]\n',
                       b"global {\n\tunits=b # a bare word\n\tsi_unit_consistency = 1\n")
    before = _files(root)
    argv = ["vgcfgbackup", *shlex.split(args)]
    want = real(root, argv)
    assert _files(root) == before  # the real one wrote nothing
    assert model(root, argv) == want == (4, b"", want[2])
    assert b"/proc/devices: fopen failed" in want[2]


def _edit_lvm_conf(root: str, devices: bytes, glob: bytes) -> None:
    """The shipped lvm.conf (its documentation kept) with settings in its devices and global
    sections."""
    with open(os.path.join(root, "etc/lvm/lvm.conf"), "rb") as f:
        text = f.read()
    _replace(root, "etc/lvm/lvm.conf", text.replace(b"devices {\n", devices, 1).replace(b"global {\n", glob, 1))


@pytest.mark.judge
@pytest.mark.parametrize("lines", [(b"devices {\n\tno_such_setting = 1\n", b"global {\n"),
                                   (b"devices {\n", b"global {\n\tunits = 5\n"),
                                   (b"devices {\n\tscan = 1\n", b"global {\n")])
def test_vgcfgbackup_with_settings_lvm_warns_about_is_deferred(tree, tmp_path, lines):
    """An unknown setting, or one of another kind than its documented default: lvm warns (or
    refuses); the model defers rather than guess the warning's text."""
    root = link_tree(tree, str(tmp_path / "t"))
    _edit_lvm_conf(root, *lines)
    status, _, err = real(root, ["vgcfgbackup"])
    assert err != b"  /proc/mounts: _get_sysfs_dir fopen failed: No such file or directory\n" \
                  b"  /proc/devices: fopen failed: No such file or directory\n" or status != 4
    with pytest.raises(Defer, match="does not document"):
        model(root, ["vgcfgbackup"])


@pytest.mark.judge
@pytest.mark.parametrize("conf", ["lvm.conf", "lvmlocal.conf"])
def test_vgcfgbackup_with_a_configuration_lvm_rejects_is_deferred(tree, tmp_path, conf):
    root = link_tree(tree, str(tmp_path / "t"))
    _replace(root, "etc/lvm/" + conf, b"devices { foo = \n")
    status, _, err = real(root, ["vgcfgbackup"])
    assert status == 4 and b"Parse error" in err  # lvm's own message, not reproduced
    with pytest.raises(Defer, match="not a configuration the model parses"):
        model(root, ["vgcfgbackup"])


def test_vgcfgbackup_on_an_image_with_volume_groups_waits_for_the_boot(tree, tmp_path):
    root = link_tree(tree, str(tmp_path / "t"))
    _replace(root, "etc/lvm/backup/vg0", b"vg0 {\n}\n")
    with pytest.raises(Defer, match=r"volume groups \(/etc/lvm/backup/vg0\)"):
        model(root, ["vgcfgbackup"])
    _replace(root, "etc/lvm/backup/vg0", None)
    _replace(root, "proc/mounts", b"")
    with pytest.raises(Defer, match="/proc/mounts"):
        model(root, ["vgcfgbackup"])
    with pytest.raises(Defer, match="LVM_SYSTEM_DIR"):
        model(root, ["vgcfgbackup"], {"LVM_SYSTEM_DIR": "/x"})


# ---- postgresql-common -----------------------------------------------------------------------

PGC = "/usr/share/postgresql-common"
UPGRADE_SCRIPTS = {  # name -> mode: which apply is decided by the name, the mode and OLD
    "SPECIFICATION": 0o644, "all_one_cluster.sql": 0o644, "9.1_two_db.sql": 0o644, "10_three_t1": 0o755,
    "10_four_t0": 0o644, "12_six_": 0o755, ".hidden_a_b.sql": 0o644, "a.b_c_d": 0o755,
    "11_five_db.sql.orig": 0o644, "9_seven_t0_extra.sql": 0o644,
}


def _upgrade_scripts(root: str, names: dict[str, int] | None) -> None:
    d = os.path.join(root, PGC.lstrip("/"), "upgrade-scripts")
    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))
    if names is None:
        os.rmdir(d)
        return
    for n, mode in names.items():
        with open(os.path.join(d, n), "w") as f:
            f.write("#!/bin/sh\nexit 0\n" if mode & 0o111 else "select 1;\n")
        os.chmod(os.path.join(d, n), mode)


def _cluster(root: str) -> None:
    d = os.path.join(root, "etc/postgresql/15/main")
    os.makedirs(d)
    with open(os.path.join(d, "postgresql.conf"), "w") as f:
        f.write("data_directory = '/var/lib/postgresql/15/main'\n")


@pytest.mark.judge
@pytest.mark.parametrize("setup", ["shipped", "scripts", "no directory", "cluster"])
@pytest.mark.parametrize("args", ["248+deb12u1", "9.0", "10", "11.5", "all", "", "a b"])
def test_run_upgrade_scripts_matches_the_real_one_without_a_running_cluster(tree, tmp_path, setup, args):
    root = link_tree(tree, str(tmp_path / "t"))
    if setup != "shipped":
        _upgrade_scripts(root, UPGRADE_SCRIPTS if setup == "scripts" else None if setup == "no directory" else {})
    if setup == "cluster":
        _cluster(root)  # and no upgrade script applies: the clusters are never asked
    argv = [f"{PGC}/run-upgrade-scripts", *shlex.split(args)]
    if setup == "scripts" and args in ("248+deb12u1", "all"):
        with pytest.raises(Defer, match="Perl numeric comparison"):
            model(root, argv)
        return
    assert model(root, argv) == real(root, argv)


@pytest.mark.judge
def test_run_upgrade_scripts_lists_what_applies(tree, tmp_path):
    root = link_tree(tree, str(tmp_path / "t"))
    _upgrade_scripts(root, UPGRADE_SCRIPTS)
    argv = [f"{PGC}/run-upgrade-scripts", "10"]
    want = real(root, argv)
    # Perl's `sort readdir` is byte order: digits before "all"; "12_six_" has the scope ""
    assert want == (0, b"Executing upgrade script three...\nExecuting upgrade script five...\n"
                       b"Executing upgrade script six...\nExecuting upgrade script one...\n", b"")
    assert model(root, argv) == want
    _cluster(root)
    with pytest.raises(Defer, match="whose server must run"):
        model(root, argv)


@pytest.mark.judge
def test_pg_checksystem_with_no_cluster_checks_nothing(tree, tmp_path):
    argv = [f"{PGC}/pg_checksystem"]
    assert model(tree, argv) == real(tree, argv) == (0, b"", b"")
    root = link_tree(tree, str(tmp_path / "t"))
    _cluster(root)
    with pytest.raises(Defer, match="cluster 15/main"):
        model(root, argv)


@pytest.mark.judge
def test_pg_checksystem_as_another_user_refuses(tree, tmp_path):
    """Run through su as nobody: the real program in the chroot and the model under the su model."""
    cmd = f"su -s /bin/sh nobody -c {PGC}/pg_checksystem"
    want = real(tree, ["/bin/sh", "-c", cmd])
    r = run_script(Overlay(HostDirFS(tree)), cmd + "\n", env={"LC_ALL": "C", "PATH": PATH}, models=MODELS,
                   is_path=False)
    assert not r.deferred_whole and not r.deferred_commands, (r.reason, r.deferred_commands)
    assert (r.status, r.stdout, r.stderr) == want == (1, b"", b"Error: This command needs to be executed as root\n")


def test_postgresql_programs_without_perl_or_pgcommon_are_deferred(tree, tmp_path):
    root = link_tree(tree, str(tmp_path / "t"))
    os.unlink(os.path.join(root, "usr/share/perl5/PgCommon.pm"))
    with pytest.raises(Defer, match="PgCommon.pm"):
        model(root, [f"{PGC}/pg_checksystem"])
    os.unlink(os.path.join(root, "usr/bin/perl"))
    with pytest.raises(Defer, match="no /usr/bin/perl"):
        model(root, [f"{PGC}/run-upgrade-scripts", "1"])
