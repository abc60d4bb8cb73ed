"""systemd-sysusers (systemd 252) against the real one, run on a copy of /etc with --root.

The real tool is the host's systemd-sysusers when it is 252 (Debian 12) — the same version the
systemd tree carries; it runs with ``--root=COPY`` so no chroot is needed. Both sides start
from the /etc of a bookworm tree with systemd and get the same sysusers.d files.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from accounts_harness import ACCOUNT_FILES, EPOCH, file_facts
from debian_tree import bookworm_tree
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation

MODELS = default_models()



@pytest.fixture(scope="module")
def etc_base():
    exe = tool("systemd-sysusers")
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()[1]
    if ver != "252":
        pytest.skip(f"the host's systemd-sysusers is {ver}, the model is of 252")
    return os.path.join(bookworm_tree(("systemd", "systemd-sysv", "cron", "openssh-server", "rsyslog")), "etc"), exe


CONFS = {
    "mixed": 'u nuwa1 - "Nuwa one" /var/lib/n1\ng nuwag -\nu nuwa2 -:nuwag - -\nm nuwa1 nuwag\n'
             'u nuwa3 555 - /home/n3 /bin/sh\nr - 500-520\nu nuwa4 -\n',
    "default range": "g grp1 -\nu usr1 -\nu usr2 - \"Two\"\n",
    "existing ones": "u root 0 \"Super User\" /root\ng users 100\nu daemon -\nm daemon users\nu new1 -\n",
    "taken suggestions": "u clash 0\ng clashg 100\nu pair 998\n",
    "group named like a user": "g same 777\nu same -\n",
}


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name", list(CONFS))
def test_sysusers_like_systemd_252(tmp_path, etc_base, name):
    base, exe = etc_base
    roots = {}
    for side in ("real", "model"):
        root = tmp_path / side
        root.mkdir()
        shutil.copytree(base, root / "etc", symlinks=True)
        os.makedirs(root / "usr/lib/sysusers.d")
        (root / "usr/lib/sysusers.d/nuwa.conf").write_text(CONFS[name])
        roots[side] = str(root)
    env = {"SOURCE_DATE_EPOCH": EPOCH, "LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    real = subprocess.run([exe, f"--root={roots['real']}", "nuwa.conf"], env=env, capture_output=True)
    inv = Invocation(argv=["systemd-sysusers", "nuwa.conf"], fs=HostDirFS(roots["model"], writable=True),
                     env=dict(env), models=MODELS)
    status = MODELS["systemd-sysusers"](inv)
    assert (status, bytes(inv.stdout), bytes(inv.stderr)) == (real.returncode, real.stdout, real.stderr)
    for f in ACCOUNT_FILES[:4]:
        for suffix in ("", "-"):
            rel = f"etc/{f}{suffix}"
            assert file_facts(roots["model"], rel) == file_facts(roots["real"], rel), rel


@pytest.mark.judge
@pytest.mark.root
def test_sysusers_missing_config_fails_before_any_change(tmp_path, etc_base):
    base, exe = etc_base
    roots = {}
    for side in ("real", "model"):
        root = tmp_path / side
        root.mkdir()
        shutil.copytree(base, root / "etc", symlinks=True)
        os.makedirs(root / "usr/lib/sysusers.d")
        (root / "usr/lib/sysusers.d/nuwa.conf").write_text("g nuwamiss -\n")
        roots[side] = str(root)
    args = ["nosuch.conf", "nuwa.conf", "/etc/other.conf"]
    real = subprocess.run([exe, f"--root={roots['real']}", *args], capture_output=True)
    inv = Invocation(argv=["systemd-sysusers", *args], fs=HostDirFS(roots["model"], writable=True), models=MODELS)
    assert (MODELS["systemd-sysusers"](inv), bytes(inv.stderr)) == (real.returncode, real.stderr)
    for f in ACCOUNT_FILES[:4]:
        assert file_facts(roots["model"], f"etc/{f}") == file_facts(roots["real"], f"etc/{f}")
