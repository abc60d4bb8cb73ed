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


# ---- identifiers: iscsi-iname, nvme, uuidgen -------------------------------------------------

ISCSI_EXACT = ["-h", "-x", "-p", "foo", "--foo", "--foo=bar", "--help=x", "--prefix", "-gx", "x -p a", "-- -p",
               "-h -x", "-x -h", "-p " + "a" * 211, "-", "-g -p " + "é" * 106, "--pre"]
ISCSI_RANDOM = ["", "-p iqn.1993-08.org.debian:01", "-gp x", "--pre=abc", "-pabc", "-p a -p b", "--generate",
                "-p ''", "-p " + "a" * 210, "-g --prefix iqn.x"]


@pytest.mark.judge
@pytest.mark.parametrize("args", ISCSI_EXACT)
def test_iscsi_iname_usage_errors_match_the_real_one(tree, args):
    argv = ["iscsi-iname", *shlex.split(args)]
    assert model(tree, argv) == real(tree, argv)


def _iscsi_re(args: list[str]) -> re.Pattern:
    """What iscsi-iname prints for ``args`` (the last -p wins; -g adds the key): 6 bytes ``%x``."""
    prefix, key = "iqn.2016-04.com.open-iscsi", False
    for i, a in enumerate(args):
        if a.startswith("-p") and a != "-p":
            prefix = a[2:]
        elif a in ("-p", "--prefix", "-gp"):
            prefix = args[i + 1]
        elif a.startswith("--pre") and "=" in a:
            prefix = a.partition("=")[2]
        key = key or a.startswith("-g") or a == "--generate"
    return re.compile(re.escape(("InitiatorName=" if key else "") + prefix + ":") + r"[0-9a-f]{6,12}\n")


@pytest.mark.judge
@pytest.mark.parametrize("args", ISCSI_RANDOM)
def test_iscsi_iname_prints_a_name_of_the_real_form(tree, args):
    argv = ["iscsi-iname", *shlex.split(args)]
    want, got, again = real(tree, argv), model(tree, argv), model(tree, argv)
    pat = _iscsi_re(argv[1:])
    for r in (want, got, again):
        assert r[0] == 0 and r[2] == b"" and pat.fullmatch(r[1].decode()), (args, r)
    assert got[1] != again[1]  # random, never seeded


def test_iscsi_iname_digits_are_unpadded_bytes():
    """Over many names every length from 6 to 12 digits is met, as with ``%x`` of random bytes."""
    from nuwa.fs.memory import MemoryFS
    from nuwa.script.context import Invocation
    from nuwa.script.commands.miscutils.identifiers import iscsi_iname
    lengths = set()
    for _ in range(3000):
        inv = Invocation(argv=["iscsi-iname", "-p", "p"], fs=MemoryFS())
        assert iscsi_iname(inv) == 0
        lengths.add(len(bytes(inv.stdout)) - len("p:\n"))
    assert lengths <= set(range(6, 13)) and {10, 11, 12} <= lengths


HOSTNQN = re.compile(r"nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                     r"[0-9a-f]{12}\n")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n")


@pytest.mark.judge
@pytest.mark.parametrize("content", [None, b"", b"nqn.x", b"nqn.x  \nsecond\n", b"\nnqn.y\n", b"n" * 300 + b"\n",
                                     b"a" * 223, b"\x00abc\n", b"ab\x00c\n", b" \n", "dir"])
def test_nvme_show_hostnqn_matches_the_real_one(tree, tmp_path, content):
    root = link_tree(tree, str(tmp_path / "t"))
    _replace(root, "etc/nvme/hostnqn", None if content == "dir" else content)
    if content == "dir":
        os.mkdir(os.path.join(root, "etc/nvme/hostnqn"))
    argv = ["nvme", "show-hostnqn"]
    want, got = real(root, argv), model(root, argv)
    if want[1].startswith(b"nqn.2014-08.org.nvmexpress:uuid:") and content not in (b"nqn.x",):
        # generated: same form, different value
        assert HOSTNQN.fullmatch(want[1].decode()) and HOSTNQN.fullmatch(got[1].decode())
        assert (got[0], got[2]) == (want[0], want[2]) == (0, b"") and got[1] != want[1]
    else:
        assert got == want


@pytest.mark.judge
@pytest.mark.parametrize("args", ["", "--help", "-h", "--bogus", "foo bar"])
def test_nvme_gen_hostnqn_ignores_its_arguments_and_prints_a_random_nqn(tree, args):
    argv = ["nvme", "gen-hostnqn", *shlex.split(args)]
    want, got = real(tree, argv), model(tree, argv)
    assert HOSTNQN.fullmatch(want[1].decode()) and HOSTNQN.fullmatch(got[1].decode())
    assert (got[0], got[2]) == (want[0], want[2]) == (0, b"")
    assert got[1] != model(tree, argv)[1]


@pytest.mark.parametrize("argv", [["nvme"], ["nvme", "list"], ["nvme", "version"], ["nvme", "--help"]])
def test_other_nvme_commands_are_deferred(tree, argv):
    with pytest.raises(Defer):
        model(tree, argv)


def test_nvme_with_a_machine_uuid_in_the_image_is_deferred(tree, tmp_path):
    root = link_tree(tree, str(tmp_path / "t"))
    _replace(root, "sys/class/dmi/id/product_uuid", b"0b3e0bc6-7ad5-4b7e-a5d2-4f6a0c1e9d00\n")
    with pytest.raises(Defer, match="product_uuid"):
        model(root, ["nvme", "gen-hostnqn"])


@pytest.mark.judge
@pytest.mark.parametrize("args", ["", "-r", "--random", "-r x", "-x", "--hex", "-tr", "--ran"])
def test_uuidgen_random_matches_the_real_form(tree, args):
    argv = ["uuidgen", *shlex.split(args)]
    want, got = real(tree, argv), model(tree, argv)
    assert UUID4.fullmatch(want[1].decode()) and UUID4.fullmatch(got[1].decode())
    assert (got[0], got[2]) == (want[0], want[2]) == (0, b"")


@pytest.mark.judge
@pytest.mark.parametrize("args", ["-q", "--bogus", "-V", "--version", "-n", "--name", "-rq", "--random=1"])
def test_uuidgen_errors_and_version_match_the_real_one(tree, args):
    argv = ["uuidgen", *shlex.split(args)]
    assert model(tree, argv) == real(tree, argv)


@pytest.mark.parametrize("args", ["-t", "-rt", "-h", "--help", "-m -n @dns -N example.com", "-s -n @url -N x"])
def test_uuidgen_time_name_and_help_forms_are_deferred(tree, args):
    with pytest.raises(Defer):
        model(tree, ["uuidgen", *shlex.split(args)])


# ---- the postinsts that write the identifiers, against real dpkg's run -----------------------

def _normalised(facts: dict, root: str) -> dict:
    """Tree facts with the random identifiers' content and size replaced by a form check."""
    forms = {"etc/iscsi/initiatorname.iscsi": re.compile(
                 r"(## [^\n]*\n){5}InitiatorName=iqn\.1993-08\.org\.debian:01:[0-9a-f]{6,12}\n"),
             "etc/nvme/hostnqn": HOSTNQN, "etc/nvme/hostid": UUID4}
    out = dict(facts)
    for rel, pat in forms.items():
        if rel in out:
            with open(os.path.join(root, rel)) as f:
                ok = bool(pat.fullmatch(f.read()))
            mode, uid, gid = out[rel][:3]
            out[rel] = (mode, uid, gid, "form ok" if ok else "form wrong")
    return out


@pytest.mark.judge
@pytest.mark.parametrize("package,made", [("open-iscsi", ["etc/iscsi/initiatorname.iscsi"]),
                                          ("nvme-cli", ["etc/nvme/hostnqn", "etc/nvme/hostid"])])
def test_postinst_writes_the_identifier_files_as_real_dpkg_does(tree, tmp_path, package, made):
    """``postinst configure`` of a first install, with the identifier files absent: real dash in a
    chroot of one full copy, Nuwa on another; the files (mode, owner, form) and the rest of
    /etc, /usr/sbin and /var/lib/systemd compared path by path."""
    from debian_tree import copy_tree
    from helpers.trees import brief_facts, tree_facts

    real_root, model_root = str(tmp_path / "real"), str(tmp_path / "model")
    for r in (real_root, model_root):
        copy_tree(tree, r)
        for rel in made:
            os.unlink(os.path.join(r, rel))
    script = f"/var/lib/dpkg/info/{package}.postinst"
    env = {"DPKG_MAINTSCRIPT_PACKAGE": package, "DPKG_MAINTSCRIPT_NAME": "postinst",
           "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    want = real(real_root, [script, "configure", ""], env)
    fs = Overlay(HostDirFS(model_root, writable=True))
    # $0 is the script's path, which debconf's frontend re-executes (open-iscsi uses debconf)
    got = run_script(fs, script, ["configure", ""], env={"LC_ALL": "C", "PATH": PATH, **env}, models=MODELS,
                     name=script, is_path=True)
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    fs.commit()
    assert (got.status, got.stdout, got.stderr) == want
    subs = ("etc", "usr/sbin", "var/lib/systemd")
    facts = [_normalised(tree_facts(r, brief_facts, subs=subs), r) for r in (real_root, model_root)]
    for rel in made:
        assert facts[0][rel][3] == "form ok", rel
    assert facts[1] == facts[0]


def test_as_another_user_vgcfgbackup_and_run_upgrade_scripts_are_deferred(tree):
    for cmd in ("vgcfgbackup", f"{PGC}/run-upgrade-scripts 1"):
        r = run_script(Overlay(HostDirFS(tree)), f"su -s /bin/sh nobody -c '{cmd}'\n", env={"LC_ALL": "C", "PATH": PATH},
                       models=MODELS, is_path=False)
        assert r.deferred_commands and "other than root" in r.deferred_commands[0].reason, cmd
