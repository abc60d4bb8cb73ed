"""update-passwd (base-passwd 3.6.1): the model against the real program in a chroot.

One bookworm minbase tree is copied twice (:class:`accounts_harness.Pair`); each case resets
``/etc`` on both, applies the same edit to the account files, runs the same command lines with
``chroot real update-passwd ...`` and with the model, and compares every step's stdout, stderr
and exit status, then the whole of ``/etc`` path by path (type, mode, owner, size, content, link
target; the ``.org`` backups and ``/etc/.pwd.lock`` included). The whole postinst of
base-passwd (``configure 3.6.0``) runs under real debconf in a chroot against the simulator.
"""

from __future__ import annotations

import os
import re

import pytest

from accounts_harness import Pair, check_case
from debian_tree import bookworm_tree
from helpers.setups import both
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.context import Defer, Invocation
from nuwa.script.commands import default_models

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = bookworm_tree()
    if not os.path.exists(os.path.join(base, "usr/sbin/update-passwd")):
        pytest.skip("the bookworm tree has no update-passwd")
    return Pair(base, str(tmp_path_factory.mktemp("updpasswd")))


#: the times every file a setup writes gets, so that the ``.org`` links (the old files) compare
FIXED_NS = 1_600_000_000 * 10**9


def edit(rel: str, old: str | None, new: str, count: int = 1):
    """A setup that replaces ``old`` (a regex, or appends when None) in ``/etc/REL``."""
    def setup(root):
        p = os.path.join(root, "etc", rel)
        data = open(p, "rb").read().decode()
        if old is None:
            data += new
        else:
            data, n = re.subn(old, new, data, count=count, flags=re.M)
            assert n, (rel, old)
        with open(p, "wb") as f:
            f.write(data.encode())
        os.utime(p, ns=(FIXED_NS, FIXED_NS))
    return setup


def remove(rel: str):
    def setup(root):
        os.unlink(os.path.join(root, "etc", rel))
    return setup


def write(rel: str, data: bytes, mode: int = 0o644):
    def setup(root):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        os.utime(p, ns=(FIXED_NS, FIXED_NS))
    return setup


DRY = ["update-passwd --dry-run", "update-passwd -n -v", "update-passwd -v -n", "update-passwd -s -v"]
APPLY = DRY + ["update-passwd --verbose", "update-passwd --dry-run"]

CASES = {
    # the common case: an image whose accounts match the master lists
    "as-is": (None, APPLY + ["update-passwd", "update-passwd -v -v"]),
    "as-is-no-lockfile": (remove(".pwd.lock"), ["update-passwd -n", "update-passwd"]),
    "as-is-no-locking": (remove(".pwd.lock"), ["update-passwd -L -v"]),
    "missing-entries": (both(edit("passwd", r"^irc:.*\n", ""), edit("group", r"^(irc|src):.*\n", "", 2),
                             edit("shadow", r"^irc:.*\n", "")), APPLY),
    "changed-fields": (both(edit("passwd", r"^man:x:6:12:man:/var/cache/man:", "man:x:6:13:manual:/var/man:"),
                            edit("passwd", r"^uucp:x:10:10:", "uucp:x:11:10:"),
                            edit("passwd", r"^lp:(.*):/usr/sbin/nologin$", r"lp:\1:/bin/sh"),
                            edit("passwd", r"^www-data:x:33:33:www-data:/var/www:", "www-data:x:33:33:W:/srv:"),
                            edit("passwd", r"^root:x:0:0:root:/root:/bin/bash", "root:x:0:0:Root:/home/root:/bin/zsh"),
                            edit("passwd", r"^irc:(.*):/run/ircd:", r"irc:\1:/var/run/ircd:"),
                            edit("group", r"^fax:x:21:", "fax:x:121:"),
                            edit("group", r"^voice:x:22:", "voice:x:23:")), APPLY),
    "gid-of-absent-group": (edit("passwd", r"^games:x:5:60:", "games:x:5:77:"), APPLY),
    "extra-static-accounts": (both(edit("passwd", None, "foo:x:50:50:Foo:/srv/foo:/bin/sh\nftpx:x:11:11::/:/bin/false\n"
                                                        "big:x:1000:1000::/home/big:/bin/bash\n"),
                                   edit("group", None, "foo:x:51:bar,baz\nbig:x:1000:\n"),
                                   edit("shadow", None, "foo:!:19000::::::\n")), APPLY),
    "no-shadow": (both(remove("shadow"), edit("passwd", r"^news:.*\n", "")), APPLY),
    "empty-shadow": (both(write("etc/shadow", b"", 0o640), edit("passwd", r"^news:.*\n", "")), APPLY),
    "lock-files": (both(write("etc/passwd.lock", b"123\n"), write("etc/shadow.lock", b"456\n"),
                        write("etc/group.lock", b"789\n"), edit("group", r"^tape:.*\n", "")), APPLY),
    "old-org-and-leftovers": (both(write("etc/passwd.org", b"old\n", 0o600), write("etc/group.upwd-write", b"x"),
                                   edit("passwd", r"^proxy:.*\n", "")), APPLY),
    "modes-kept": (both(lambda r: os.chmod(os.path.join(r, "etc/passwd"), 0o640),
                        lambda r: os.chown(os.path.join(r, "etc/group"), 0, 42),
                        edit("group", r"^dip:.*\n", "")), APPLY),
    "bad-lines": (both(edit("passwd", r"^sys:", "# a comment\n\n   \t\nbad:x:abc:1::/:\nneg:x:-1:1::/:/bin/sh\n"
                                              "short:x:52:52\nlong:x:53:53:a:b:c:d:e\n  sp:x:54:54::/:\nsys:"),
                       edit("passwd", r"^nobody:.*\n", "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                                                        "   lastnonl:x:555:55::/:/bin/sh"),
                       edit("group", r"^sys:", "weird:x:7x:\nmem:x:56: a, ,b ,,c\nhuge:x:99999999999:\nsys:"),
                       edit("shadow", r"^sys:", "old:*:1:2:3\neight:*:1:2:3:4::\nnegs:*:-1:-5:4294967295:7:::\n"
                                                "flag:*:1:2:3:4:5:6:99\nx:\nsys:")), APPLY),
    "options": (edit("passwd", r"^bin:.*\n", ""),
                ["update-passwd --help", "update-passwd -P /etc/passwd -h", "update-passwd --version -x",
                 "update-passwd -V", "update-passwd -p", "update-passwd --passw=x",
                 "update-passwd -p /nonexistent -n", "update-passwd -G /nope", "update-passwd -S /etc/nope -n",
                 "update-passwd --sanity-check", "update-passwd -P /etc/passwd -G /etc/group -n -v -v",
                 "update-passwd -v -v -v", "update-passwd -n"]),
    "other-files": (both(write("srv/p", b"root:x:0:0:root:/root:/bin/bash\n"),
                         write("srv/g", b"root:x:0:\n"), write("srv/s", b"root:*:1::::::\n")),
                    ["update-passwd -P /srv/p -G /srv/g -S /srv/s -n",
                     "update-passwd --passwd=/srv/p --group=/srv/g --shadow=/srv/s -v -L"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_against_real_update_passwd(pair, case):
    setup, cmds = CASES[case]
    results = check_case(pair, cmds, setup=setup, dirs=("etc", "srv"))
    assert len(results) == len(cmds)


def test_dry_run_status_counts_changes(pair):
    """The postinst tests ``! update-passwd --dry-run``: the status is the number of changes."""
    res = check_case(pair, ["update-passwd --dry-run"],
                     setup=both(edit("passwd", r"^(irc|list):.*\n", "", 2), edit("group", r"^video:.*\n", "")))
    assert res[0][0] == 3 and res[0][1].endswith(b"Would commit 3 changes\n")


def run_model(root, argv, env):
    inv = Invocation(argv=argv, fs=HostDirFS(root, writable=True), cwd="/", env=env, models=default_models())
    return default_models()["update-passwd"](inv)


@pytest.mark.parametrize("setup, why", [
    (edit("passwd", None, "+@staff::::::\n"), "NIS compat"),
    (edit("passwd", r"^nobody:.*\n", "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\0\n"), "NUL"),
    (write("etc/passwd.org/x", b""), "is a directory"),
])
def test_forms_it_defers(pair, setup, why):
    """Deferred before anything is written: the tree is what the setup left."""
    pair.reset(both(setup, edit("group", r"^tape:.*\n", "")))
    before = {n: open(os.path.join(pair.model, "etc", n), "rb").read() for n in ("passwd", "group", "shadow")}
    with pytest.raises(Defer, match=why):
        run_model(pair.model, ["update-passwd"], {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    after = {n: open(os.path.join(pair.model, "etc", n), "rb").read() for n in ("passwd", "group", "shadow")}
    assert before == after
    assert not os.path.exists(os.path.join(pair.model, "etc/passwd.upwd-write"))


def test_debconf_without_a_frontend_defers(pair):
    pair.reset(edit("group", r"^tape:.*\n", ""))
    with pytest.raises(Defer, match="no debconf frontend"):
        run_model(pair.model, ["update-passwd", "-v"], {"DEBIAN_HAS_FRONTEND": "1"})


# -- base-passwd's postinst, whole, under real debconf ------------------------------------------

POSTINST = "/var/lib/dpkg/info/base-passwd.postinst"


@pytest.fixture()
def script_pair(tmp_path):
    from debconf_oracle import make_pair
    base = bookworm_tree()
    if not os.path.exists(os.path.join(base, POSTINST.lstrip("/"))):
        pytest.skip("the bookworm tree has no base-passwd postinst")
    return make_pair(base, str(tmp_path))


def preseed(line: str):
    """A setup that runs real ``debconf-set-selections`` in the chroot (the same on both sides)."""
    def setup(root):
        import subprocess
        subprocess.run(["chroot", root, "debconf-set-selections"], input=line.encode(), check=True,
                       capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    return setup


@pytest.mark.parametrize("name, setup, args", [
    ("upgrade-as-is", None, ["configure", "3.6.0"]),
    ("first-install", both(edit("passwd", r"^irc:.*\n", "")), ["configure"]),
    ("upgrade-with-changes", both(edit("passwd", r"^irc:.*\n", ""), edit("group", r"^(irc|src):.*\n", "", 2),
                                  edit("passwd", r"^lp:(.*):/usr/sbin/nologin$", r"lp:\1:/bin/sh"),
                                  edit("passwd", None, "foo:x:50:50::/:/bin/sh\n")), ["configure", "3.6.0"]),
    ("answer-no", both(edit("passwd", r"^irc:.*\n", ""), edit("group", r"^src:.*\n", ""),
                       preseed("base-passwd base-passwd/system/group/src/add boolean false\n")),
     ["configure", "3.6.0"]),
    # an image without debconf: the postinst prints the dry run's list and answers itself "y"
    ("no-debconf", both(edit("passwd", r"^irc:.*\n", ""), edit("passwd", r"^(sync:.*):/bin/sync$", r"\1:/bin/sh"),
                        lambda r: os.unlink(os.path.join(r, "usr/share/debconf/confmodule"))),
     ["configure", "3.6.0"]),
])
def test_postinst_against_real_dpkg_style_run(script_pair, name, setup, args):
    """The postinst as dpkg runs it (noninteractive debconf, dpkg's environment) in a chroot,
    and in the simulator: output, status, every path of the tree, the debconf databases."""
    import time

    from debconf_oracle import debconf_records, diff_trees, environment, run_nuwa, run_real
    a, b = script_pair
    if setup:
        setup(a)
        setup(b)
    env = environment("postinst", "base-passwd")
    since = time.time()
    real = run_real(a, [POSTINST, *args], env)
    r = run_nuwa(b, [POSTINST, *args], env)
    assert not r.deferred_whole and not r.deferred_commands, r.reason
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
    if name == "upgrade-with-changes":
        assert b'Adding user "irc" (39)' in real[2]
        assert os.path.exists(os.path.join(b, "etc/passwd.org"))
    if name == "no-debconf":
        assert b"The list of proposed changes is:" in real[1] and b'Adding user "irc"' in real[1]
    if name == "answer-no":
        assert b"\nsrc:" not in open(os.path.join(b, "etc/group"), "rb").read()
