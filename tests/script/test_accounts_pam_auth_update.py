"""pam-auth-update: the model against the real Perl program in a chroot of a bookworm tree.

One bookworm minbase tree is copied twice (``real`` for ``chroot real pam-auth-update ...``,
``model`` for the model on :class:`HostDirFS`). Each case restores the directories the program
reads and writes (/etc/pam.d, /var/lib/pam, /usr/share/pam-configs, /var/cache/debconf) on
both copies, applies the same setup, runs the same command lines on both, and compares every
step's stdout, stderr and exit status, then those trees byte for byte (type, mode, owner,
size, content, link target). debconf runs noninteractive (no terminal), as in a maintainer
script on a dormant image.

The forms the model defers (a profile with syntax errors that make Perl warn) are checked on
the model side: the deferral names the profile, nothing was written, and the real program's
stderr shows the Perl warnings that make it irreproducible.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Invocation

pytestmark = pytest.mark.root

MODELS = default_models()
ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
DIRS = ["etc/pam.d", "var/lib/pam", "usr/share/pam-configs", "var/cache/debconf"]

LDAPISH = b"""Name: Test directory authentication
Default: yes
Priority: 128
Conflicts: other
Auth-Type: Primary
Auth:
\t[success=end default=ignore]\tpam_testdir.so use_first_pass
Auth-Initial:
\t[success=end default=ignore]\tpam_testdir.so
Account-Type: Primary
Account:
\t[success=end default=ignore]\tpam_testdir.so
Password-Type: Primary
Password:
\t[success=end user_unknown=ignore default=die]\tpam_testdir.so use_authtok try_first_pass
Password-Initial:
\t[success=end user_unknown=ignore default=die]\tpam_testdir.so
Session-Type: Additional
Session-Interactive-Only: yes
Session:
\toptional\tpam_testdir.so
"""
EXTRA = b"""Name: An additional session module
Default: no
Priority: 64
Session-Type: Additional
Session:
\toptional\tpam_extra.so debug
"""
OTHER = b"""Name: A conflicting module
Default: yes
Priority: 32
Conflicts: testdir
Auth-Type: Primary
Auth:
\tsufficient\tpam_other.so
"""
BROKEN = b"""  a continuation line before any field
Name: Broken
Default: yes
Priority: 10
"""
NOPRIO = b"""Name: No priority
Default: yes
Auth-Type: Additional
Auth:
\toptional\tpam_nopriority.so
"""


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = bookworm_tree()
    if not os.path.exists(os.path.join(base, "usr/sbin/pam-auth-update")):
        pytest.skip("the bookworm tree has no pam-auth-update")
    where = str(tmp_path_factory.mktemp("pamauth"))
    out = {}
    for name in ("real", "model", "pristine"):
        out[name] = os.path.join(where, name)
        if name == "pristine":
            os.makedirs(out[name])
            for d in DIRS:
                os.makedirs(os.path.dirname(os.path.join(out[name], d)), exist_ok=True)
                subprocess.run(["cp", "-a", os.path.join(base, d), os.path.join(out[name], d)], check=True)
        else:
            copy_tree(base, out[name])
    return out


def reset(trees, setup=None):
    for name in ("real", "model"):
        root = trees[name]
        for d in DIRS:
            p = os.path.join(root, d)
            shutil.rmtree(p, ignore_errors=True)
            subprocess.run(["cp", "-a", os.path.join(trees["pristine"], d), p], check=True)
        if setup:
            setup(root)


def run_real(root, argv):
    p = subprocess.run(["chroot", root, *argv], env=ENV, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def run_model(root, argv):
    fs = HostDirFS(root, writable=True)
    inv = Invocation(argv=list(argv), fs=fs, cwd="/", env=dict(ENV), stdin=b"", umask=0o022, models=MODELS)
    status = MODELS[os.path.basename(argv[0])](inv)
    return status, bytes(inv.stdout), bytes(inv.stderr)


def facts(root):
    out = {}
    for d in DIRS:
        top = os.path.join(root, d)
        for dirpath, dirnames, filenames in os.walk(top):
            for n in sorted(dirnames + filenames):
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                rec = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size)
                if stat.S_ISREG(st.st_mode):
                    rec += (hashlib.sha256(open(p, "rb").read()).hexdigest(),)
                elif stat.S_ISLNK(st.st_mode):
                    rec += (os.readlink(p),)
                out[os.path.relpath(p, root)] = rec
    return out


def check(trees, steps, setup=None):
    """Each step on both sides: same status, stdout, stderr; then the same trees."""
    reset(trees, setup)
    for argv in steps:
        real = run_real(trees["real"], argv)
        model = run_model(trees["model"], argv)
        assert model == real, argv
    fa, fb = facts(trees["real"]), facts(trees["model"])
    assert fa == fb
    return trees["model"]


def add_profile(name, body):
    def setup(root):
        with open(os.path.join(root, "usr/share/pam-configs", name), "wb") as f:
            f.write(body)
    return setup


def test_fresh_package_run(trees):
    check(trees, [["pam-auth-update", "--package"]])


def test_new_profile_then_package(trees):
    root = check(trees, [["pam-auth-update", "--package"]], add_profile("testdir", LDAPISH))
    assert b"pam_testdir.so" in open(os.path.join(root, "etc/pam.d/common-auth"), "rb").read()


def test_remove_disable_enable(trees):
    def setup(root):
        add_profile("testdir", LDAPISH)(root)
        add_profile("extra", EXTRA)(root)
    root = check(trees, [["pam-auth-update", "--package"],
                         ["pam-auth-update", "--enable", "extra"],
                         ["pam-auth-update", "--disable", "mkhomedir", "testdir"],
                         ["pam-auth-update", "--enable", "testdir"],
                         ["pam-auth-update", "--package", "--remove", "testdir"],
                         ["pam-auth-update", "--force"]], setup)
    assert b"pam_extra.so" in open(os.path.join(root, "etc/pam.d/common-session"), "rb").read()


def test_conflicting_profiles(trees):
    def setup(root):
        add_profile("testdir", LDAPISH)(root)
        add_profile("other", OTHER)(root)
    check(trees, [["pam-auth-update", "--package"]], setup)


def test_local_edits_are_kept_or_refused(trees):
    def options(root):  # an admin's option on a managed line: merged, kept
        p = os.path.join(root, "etc/pam.d/common-auth")
        data = open(p, "rb").read().replace(b"pam_unix.so nullok", b"pam_unix.so nullok debug")
        open(p, "wb").write(data)
    root = check(trees, [["pam-auth-update", "--package"]], lambda r: (options(r), add_profile("extra", EXTRA)(r)))
    assert b"pam_unix.so nullok debug" in open(os.path.join(root, "etc/pam.d/common-auth"), "rb").read()

    def foreign_line(root):  # a line no profile wrote: the refusal, then --force
        p = os.path.join(root, "etc/pam.d/common-account")
        data = open(p, "rb").read().replace(b"# here's the fallback", b"account\trequired\tpam_local.so\n"
                                            b"# here's the fallback")
        open(p, "wb").write(data)
    check(trees, [["pam-auth-update", "--package"], ["pam-auth-update", "--package"],
                  ["pam-auth-update", "--force"]], foreign_line)


def test_profiles_with_syntax_errors_are_deferred(trees):
    for name, body in (("broken", BROKEN), ("nopriority", NOPRIO)):
        reset(trees, add_profile(name, body))
        before = facts(trees["model"])
        with pytest.raises(Defer) as e:
            run_model(trees["model"], ["pam-auth-update", "--package"])
        assert name in e.value.reason or "Priority" in e.value.reason
        assert facts(trees["model"]) == before
        status, out, err = run_real(trees["real"], ["pam-auth-update", "--package"])
        assert b"line" in err  # Perl's warnings, which the model does not reproduce


NESTED = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_version 2.0
pam-auth-update --package --enable extra
db_get libpam-runtime/profiles
mkdir -p /var/lib/pam/probe
echo "after: $RET" > /var/lib/pam/probe/seen-by-script
pam-auth-update --disable extra
db_get libpam-runtime/profiles
echo "after disable: $RET" >> /var/lib/pam/probe/seen-by-script
"""


def test_under_a_running_frontend(trees):
    """As from libpam-runtime's postinst: the script sourced the confmodule, so the program
    talks to that frontend (DEBIAN_HAS_FRONTEND) and the script sees what it set."""
    from nuwa.script.interp import run_script

    def setup(root):
        add_profile("extra", EXTRA)(root)
        p = os.path.join(root, "var/lib/pam/nested")
        with open(p, "wb") as f:
            f.write(NESTED)
        os.chmod(p, 0o755)
    reset(trees, setup)
    real = run_real(trees["real"], ["/var/lib/pam/nested"])
    fs = HostDirFS(trees["model"], writable=True)
    res = run_script(fs, NESTED.decode(), argv=[], env=dict(ENV), name="/var/lib/pam/nested", models=MODELS)
    assert not res.deferred_whole and not res.deferred_commands, res.reason
    assert (res.status, res.stdout, res.stderr) == real
    assert facts(trees["real"]) == facts(trees["model"])
    seen = open(os.path.join(trees["model"], "var/lib/pam/probe/seen-by-script")).read()
    assert seen == "after: unix, extra\nafter disable: unix\n"


def test_nothing_to_enable_is_deferred(trees):
    """No profile enabled and none a default: the real program asks again for ever (it is not
    run here for that reason); the model defers before touching anything."""
    def setup(root):
        os.unlink(os.path.join(root, "usr/share/pam-configs/unix"))
    reset(trees, setup)
    before = facts(trees["model"])
    with pytest.raises(Defer) as e:
        run_model(trees["model"], ["pam-auth-update", "--package"])
    assert "for ever" in e.value.reason
    assert facts(trees["model"]) == before


SAME_PRIORITY = b"""Name: Same priority as extra
Default: yes
Priority: 64
Session-Type: Additional
Session-Final:
\toptional\tpam_same.so
Auth-Type: Additional
Auth-Final:
\toptional\tpam_same.so
\trequired\tpam_same2.so arg=1
"""
TALLY = b"""Name: Uses pam_tally
Default: yes
Priority: 300
Auth-Type: Primary
Auth:
\trequired\tpam_tally.so
"""


def _edit(rel, old, new):
    def setup(root):
        p = os.path.join(root, rel)
        data = open(p, "rb").read()
        assert old in data
        open(p, "wb").write(data.replace(old, new))
    return setup


def _all(*fs):
    def setup(root):
        for f in fs:
            f(root)
    return setup


@pytest.mark.parametrize("case", [
    "mkhomedir", "option-removed", "common-missing", "state-missing", "boilerplate-edited", "ties-tally-backup",
    "remove-enabled"])
def test_more_forms(trees, case):
    pkg, force = ["pam-auth-update", "--package"], ["pam-auth-update", "--force"]
    setups = {
        "mkhomedir": (None, [["pam-auth-update", "--enable", "mkhomedir"], pkg]),
        "option-removed": (_edit("etc/pam.d/common-password", b" yescrypt", b""), [pkg, force]),
        "common-missing": (lambda r: os.unlink(os.path.join(r, "etc/pam.d/common-session")), [pkg, force]),
        "state-missing": (lambda r: shutil.rmtree(os.path.join(r, "var/lib/pam")), [pkg, force, pkg]),
        "boilerplate-edited": (_edit("etc/pam.d/common-auth", b"# here's the fallback", b"# local note\n"
                                     b"# here's the fallback"), [pkg, force]),
        "ties-tally-backup": (_all(add_profile("extra", EXTRA), add_profile("same", SAME_PRIORITY),
                                   add_profile("tally", TALLY), add_profile("unix~", LDAPISH),
                                   add_profile("#auto#", LDAPISH)),
                              [pkg, ["pam-auth-update", "--enable", "extra"]]),
        "remove-enabled": (add_profile("testdir", LDAPISH), [pkg, ["pam-auth-update", "--remove", "testdir"], pkg]),
    }
    setup, steps = setups[case]
    check(trees, steps, setup)
