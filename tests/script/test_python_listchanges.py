"""apt-listchanges's debconf helper (a Python program its config and postinst write and run):
the model against the real postinst, real debconf and real python3 in a chroot.

A bookworm minbase tree with apt-listchanges is copied twice (:mod:`debconf_oracle`); each case
edits ``/etc/apt/listchanges.conf`` (or the debconf database, through the real
``debconf-set-selections``) the same way on both, then runs the installed postinst as dpkg
does (``configure 3.24``, noninteractive debconf, dpkg's environment): in a chroot with the
real dash, debconf frontend and python3, and in Nuwa's interpreter (the frontend model runs the
config first, then the postinst; the helper runs as this model). Output, status, the debconf
databases and every path of the trees must be identical. The forms the helper refuses (a value
``getboolean`` rejects) defer in the model, with the reason, before anything is written.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from debian_tree import bookworm_tree
from helpers.setups import both

pytestmark = pytest.mark.root

POSTINST = "/var/lib/dpkg/info/apt-listchanges.postinst"
CONF = "etc/apt/listchanges.conf"


@pytest.fixture()
def script_pair(tmp_path):
    from debconf_oracle import make_pair
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    base = bookworm_tree(extra=("apt-listchanges",))
    return make_pair(base, str(tmp_path))


def conf(text: str | None):
    def setup(root):
        p = os.path.join(root, CONF)
        if text is None:
            os.unlink(p)
        else:
            with open(p, "w") as f:
                f.write(text)
    return setup


def preseed(line: str):
    """The real ``debconf-set-selections`` in the chroot (the same on both sides)."""
    def setup(root):
        subprocess.run(["chroot", root, "debconf-set-selections"], input=line.encode(), check=True,
                       capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    return setup


EDITED = """# local settings
[apt]
Frontend = mail
email_address: admin@example.org
which=both
headers=yes
; a comment
confirm = 1
save_seen=none

[other]
key = a value
  continued here

"""


@pytest.mark.parametrize("name, setup, args", [
    ("upgrade-as-is", None, ["configure", "3.24"]),
    ("first-install", conf(None), ["configure"]),
    ("edited", conf(EDITED), ["configure", "3.24"]),
    ("frontend-none", conf("[apt]\nfrontend=none\nwhich=news\n"), ["configure", "3.24"]),
    ("no-section", conf("[elsewhere]\nx=1\n"), ["configure", "3.24"]),
    ("no-email", conf("[apt]\nfrontend=pager\nemail_address=none\nno_network=true\nsave_seen=/var/x.db\n"),
     ["configure", "3.24"]),
    ("preseeded", both(conf(None), preseed("apt-listchanges apt-listchanges/frontend select text\n"
                                           "apt-listchanges apt-listchanges/reverse boolean true\n"
                                           "apt-listchanges apt-listchanges/save-seen boolean false\n")),
     ["configure"]),
])
def test_postinst_against_real(script_pair, name, setup, args):
    from debconf_oracle import debconf_records, diff_trees, environment, run_nuwa, run_real
    a, b = script_pair
    if setup:
        setup(a)
        setup(b)
    env = environment("postinst", "apt-listchanges")
    since = time.time()
    real = run_real(a, [POSTINST, *args], env)
    r = run_nuwa(b, [POSTINST, *args], env)
    assert not r.deferred_whole and not r.deferred_commands, (r.reason, r.deferred_commands)
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
    assert real[0] == 0
    if name == "edited":
        # the file has local changes: ucf keeps them and leaves the helper's text beside it
        text = open(os.path.join(b, CONF + ".ucf-dist")).read()
        assert "frontend=mail\n" in text and "[other]\nkey=a value\n\tcontinued here\n" in text


@pytest.mark.parametrize("text, reason", [
    ("[apt]\nconfirm=maybe\n", "not a boolean"),
    ("[apt]\nemail_address=50%\n", "interpolation"),
    ("[DEFAULT]\nfrontend=pager\n", "DEFAULT"),
    ("frontend=pager\n", "no section header"),
])
def test_refused_forms_defer_before_writing(script_pair, text, reason):
    """What the real helper refuses with a traceback (the postinst then fails), or what the
    model does not read, is deferred whole with the reason; the model's tree is unchanged."""
    from debconf_oracle import environment, run_nuwa, run_real, snapshot
    a, b = script_pair
    conf(text)(a)
    conf(text)(b)
    env = environment("postinst", "apt-listchanges")
    since = time.time()
    before = snapshot(b, 0)
    real = run_real(a, [POSTINST, "configure", "3.24"], env)
    r = run_nuwa(b, [POSTINST, "configure", "3.24"], env)
    assert r.deferred_whole and reason in r.reason, r.reason
    assert snapshot(b, 0) == before
    if reason in ("not a boolean", "no section header"):
        assert real[0] != 0 and b"Traceback" in real[2]
    assert since


@pytest.mark.parametrize("remove", [None, "usr/lib/python3/dist-packages/debconf.py"])
def test_import_probe(script_pair, remove):
    """The config's ``python3 -B -c 'import debconf'``: found, or the real traceback and 1."""
    from debconf_oracle import MODELS, environment, run_real
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.fs.overlay import Overlay
    from nuwa.script.interp import run_script
    a, b = script_pair
    if remove:
        for root in (a, b):
            os.unlink(os.path.join(root, remove))
    env = environment("config", "apt-listchanges")
    cmd = "cd /tmp && python3 -B -c 'import debconf'; echo rc=$?"
    real = run_real(a, ["/bin/sh", "-c", cmd], env)
    r = run_script(Overlay(HostDirFS(b, writable=True)), cmd, env=env, models=MODELS, is_path=False)
    assert not r.deferred_commands and not r.deferred_whole
    assert (r.status, r.stdout, r.stderr) == real
    assert real[1] == (b"rc=1\n" if remove else b"rc=0\n")
