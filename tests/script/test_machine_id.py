"""``systemd-machine-id-setup`` and tmpfiles' ``%m`` (systemd 252) against the real programs in
a chroot of a bookworm tree with systemd (the tree test_chrony.py uses).

Each case sets ``/etc/machine-id`` (and D-Bus's) in two hard-linked copies of the tree
(replacing files, never writing through a link); the real program runs in one with
``chroot`` (no /proc, /sys or /dev, as under dpkg in a chroot), the model on the other. The
file's bytes and mode, stdout, stderr and the status must agree. Where the real program makes
a random ID the model leaves the file to the first boot (see the model's note): those cases
check the real program's random ID by its format and the model's reason.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest

from debian_tree import bookworm_tree, link_tree
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Drop, Invocation
from nuwa.script.interp import run_script

MODELS = default_models()
PACKAGES = ("chrony", "systemd")
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
ID = b"a1b2c3d4e5f60718293a4b5c6d7e8f90"
DBUS_ID = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def base():
    return bookworm_tree(PACKAGES)


def _setup(root: str, etc: bytes | None, mode: int = 0o644, dbus: bytes | str | None = None) -> None:
    os.makedirs(os.path.join(root, "etc/tmpfiles.d"), exist_ok=True)
    p = os.path.join(root, "etc/machine-id")
    if os.path.lexists(p):
        os.unlink(p)
    if etc is not None:
        with open(p, "wb") as f:
            f.write(etc)
        os.chmod(p, mode)
    d = os.path.join(root, "var/lib/dbus")
    os.makedirs(d, exist_ok=True)
    q = os.path.join(d, "machine-id")
    if os.path.lexists(q):
        os.unlink(q)
    if isinstance(dbus, str):
        os.symlink(dbus, q)
    elif dbus is not None:
        with open(q, "wb") as f:
            f.write(dbus)


def _file(root: str):
    p = os.path.join(root, "etc/machine-id")
    if not os.path.lexists(p):
        return None
    with open(p, "rb") as f:
        return f.read(), stat.S_IMODE(os.lstat(p).st_mode)


def _real(base, tmp_path, args, **setup):
    root = link_tree(base, str(tmp_path / "real"))
    _setup(root, **setup)
    r = subprocess.run([tool("chroot"), root, "systemd-machine-id-setup", *args], capture_output=True, env=ENV)
    return (r.returncode, r.stdout, r.stderr), _file(root)


def _model(base, tmp_path, args, **setup):
    root = link_tree(base, str(tmp_path / "model"))
    _setup(root, **setup)
    inv = Invocation(argv=["systemd-machine-id-setup", *args], fs=HostDirFS(root, writable=True), cwd="/",
                     models=MODELS)
    status = MODELS["systemd-machine-id-setup"](inv)
    return (status, bytes(inv.stdout), bytes(inv.stderr)), _file(root)


EXACT = {
    "valid": ((), dict(etc=ID + b"\n")),
    "valid-upper-print": (("--print",), dict(etc=ID.upper() + b"\n")),
    "valid-no-newline": (("--print",), dict(etc=ID)),
    "all-zero": (("--print",), dict(etc=b"0" * 32 + b"\n")),
    "valid-root-slash": (("--root=/",), dict(etc=ID + b"\n", mode=0o444)),
    "empty-with-dbus": ((), dict(etc=b"", mode=0o400, dbus=DBUS_ID + b"\n")),
    "garbage-with-dbus-print": (("--print",), dict(etc=b"garbage\n", dbus=DBUS_ID.upper())),
}


@pytest.mark.judge
@pytest.mark.parametrize("name", list(EXACT))
def test_machine_id_setup_matches_real(base, tmp_path, name):
    args, setup = EXACT[name]
    assert _model(base, tmp_path, args, **setup) == _real(base, tmp_path, args, **setup)


RANDOM = {
    "empty": dict(etc=b""),
    "uninitialized": dict(etc=b"uninitialized\n", dbus=DBUS_ID + b"\n"),
    "missing": dict(etc=None, dbus=DBUS_ID + b"\n"),
    "garbage": dict(etc=b"  " + ID + b"\n"),
    "dbus-symlink": dict(etc=b"", dbus="/etc/machine-id"),
}


@pytest.mark.judge
@pytest.mark.parametrize("name", list(RANDOM))
def test_an_id_the_first_boot_makes_is_left_to_it(base, tmp_path, name):
    setup = RANDOM[name]
    (status, out, err), (data, mode) = _real(base, tmp_path, (), **setup)
    if setup["etc"] is None or setup["etc"].startswith(b"uninit"):
        # what a chroot does: D-Bus's ID, even where the boot would still be a first boot
        assert (status, data) == (0, DBUS_ID + b"\n") and b"D-Bus" in err
    else:
        # a random version 4 ID, as sd_id128_randomize makes it
        assert status == 0 and re.fullmatch(rb"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}\n", data), data
        assert err == b"Initializing machine ID from random generator.\n"
    root = link_tree(base, str(tmp_path / "model"))
    _setup(root, **setup)
    before = _file(root)
    inv = Invocation(argv=["systemd-machine-id-setup"], fs=HostDirFS(root, writable=True), cwd="/", models=MODELS)
    with pytest.raises(Drop, match="made by systemd at the first boot"):
        MODELS["systemd-machine-id-setup"](inv)
    assert _file(root) == before


@pytest.mark.parametrize("args", [["--commit"], ["--root=/mnt"], ["--image=x.raw"], ["--print"]])
def test_machine_id_setup_defers(tmp_path, args):
    root = str(tmp_path / "root")
    _setup(root, etc=b"")
    inv = Invocation(argv=["systemd-machine-id-setup", *args], fs=HostDirFS(root, writable=True), cwd="/",
                     models=MODELS)
    with pytest.raises(Defer):
        MODELS["systemd-machine-id-setup"](inv)


TMPFILES = "d /var/lib/nuwa-%m 0750 root root -\n"


@pytest.mark.judge
@pytest.mark.parametrize("etc", [ID + b"\n", ID.upper()], ids=["lower", "upper-no-newline"])
def test_tmpfiles_m_is_the_images_machine_id(base, tmp_path, etc):
    roots = {}
    for side in ("real", "model"):
        root = roots[side] = link_tree(base, str(tmp_path / side))
        _setup(root, etc=etc)
        with open(os.path.join(root, "etc/tmpfiles.d/nuwa.conf"), "w") as f:
            f.write(TMPFILES)
    # systemd-tmpfiles refuses to run in a chroot without /proc: the host's 252 runs with --root
    exe = tool("systemd-tmpfiles")
    if subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()[1] != "252":
        pytest.skip("the host's systemd-tmpfiles is not 252")
    r = subprocess.run([exe, f"--root={roots['real']}", "--create", "nuwa.conf"], capture_output=True, env=ENV)
    inv = Invocation(argv=["systemd-tmpfiles", "--create", "nuwa.conf"], fs=HostDirFS(roots["model"], writable=True),
                     cwd="/", models=MODELS)
    status = MODELS["systemd-tmpfiles"](inv)
    assert (status, bytes(inv.stdout), bytes(inv.stderr)) == (r.returncode, r.stdout, r.stderr)
    made = {side: sorted(n for n in os.listdir(os.path.join(roots[side], "var/lib")) if n.startswith("nuwa-"))
            for side in roots}
    assert made["model"] == made["real"] == ["nuwa-" + ID.decode()]
    modes = {side: stat.S_IMODE(os.stat(os.path.join(roots[side], "var/lib", made[side][0])).st_mode) for side in roots}
    assert modes["model"] == modes["real"] == 0o750


@pytest.mark.parametrize("etc", [b"", b"uninitialized\n", b"0" * 32 + b"\n", None])
def test_tmpfiles_m_without_an_id_is_deferred(tmp_path, etc):
    root = str(tmp_path / "root")
    _setup(root, etc=etc)
    with open(os.path.join(root, "etc/tmpfiles.d/nuwa.conf"), "w") as f:
        f.write(TMPFILES)
    inv = Invocation(argv=["systemd-tmpfiles", "--create", "nuwa.conf"], fs=HostDirFS(root, writable=True), cwd="/",
                     models=MODELS)
    with pytest.raises(Defer, match="specifier %m in .*nuwa.conf:1: the image's /etc/machine-id holds no ID yet"):
        MODELS["systemd-tmpfiles"](inv)


def test_systemd_postinst_lines_with_an_id(base, tmp_path):
    """systemd's postinst: machine-id-setup runs offline; tmpfiles' journal-nocow.conf, which
    uses %m, now stops only at its 'h' (file attribute) lines, not at the specifier."""
    root = link_tree(base, str(tmp_path / "root"))
    _setup(root, etc=ID + b"\n")
    fs = HostDirFS(root, writable=True)
    r = run_script(fs, "systemd-machine-id-setup\nsystemd-tmpfiles --create journal-nocow.conf >/dev/null || true\n",
                   models=MODELS)
    assert r.status == 0 and not r.deferred_whole
    [d] = r.deferred_commands
    assert d.argv[0] == "systemd-tmpfiles" and "'h' line" in d.reason and "%m" not in d.reason


@pytest.mark.parametrize("cmd, why", [
    ("journalctl -b", "only --update-catalog"),
])
def test_binary_indexes_are_deferred_saying_why(tmp_path, cmd, why):
    """The postinsts' forms run at first boot, and the record says it is a binary index."""
    root = str(tmp_path / "root")
    for prog in ("usr/bin/journalctl", "usr/bin/systemd-hwdb"):
        os.makedirs(os.path.dirname(os.path.join(root, prog)), exist_ok=True)
        with open(os.path.join(root, prog), "wb") as f:
            f.write(b"\x7fELF")
        os.chmod(os.path.join(root, prog), 0o755)
    r = run_script(HostDirFS(root, writable=True), cmd + "\n", models=MODELS, env=dict(ENV))
    [d] = r.deferred_commands
    assert why in d.reason and not r.deferred_whole
