"""useradd & friends (shadow-utils 4.13) against the real tools in a chroot of a bookworm tree."""

from __future__ import annotations

import os

import pytest

from accounts_harness import Pair, check_case
from debian_tree import bookworm_tree
from nuwa.script.commands.accounts.db import AccountFile
from nuwa.script.commands.accounts.useradd import find_new_id, valid_name


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return Pair(bookworm_tree(), str(tmp_path_factory.mktemp("shadow")))


CASES = {
    "system user, nologin": ["useradd -r -s /usr/sbin/nologin sysa"],
    "system user in a group with home": ["groupadd -r grpa",
                                         "useradd -r -g grpa -d /var/lib/nuwa-test/b -s /usr/sbin/nologin sysb"],
    "system ids count down": ["useradd -r a1", "useradd -r a2", "groupadd -r g3", "useradd -r -M a4"],
    "normal users and sub-ids": ["useradd bob", "useradd -m carol", "useradd -N -G users,audio dave"],
    "explicit uid": ["useradd -u 1500 erin", "useradd -u 100 dup", "useradd -r -u 5000 big"],
    "uid taken": ["useradd -u 0 x"],
    "user exists": ["useradd root"],
    "group of that name exists": ["groupadd zed", "useradd zed"],
    "bad names": ["useradd -M -- -x", "useradd 'a b'", "useradd aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                  "groupadd 'x:y'", "useradd -M 123", "useradd -M Abc.d"],
    "missing groups": ["useradd -g nosuch x", "useradd -G nosuch,nosuch2 x"],
    "bad options": ["useradd -d rel x", "useradd -s bin/sh x", "useradd -s /bin/none x", "useradd -u abc x"],
    "groupadd forms": ["groupadd -r g1", "groupadd g2", "groupadd -g 42 g3", "groupadd g2", "groupadd -f g2",
                       "groupadd -g 0 g4", "groupadd -f -g 0 g5", "groupadd -o -g 0 g6"],
    "usermod": ["useradd -r svc", "groupadd -r grp1", "groupadd -r grp2", "usermod -a -G grp1,grp2 svc",
                "usermod -G grp2 svc", "usermod -g grp1 svc", "usermod -c 'A service' -d /srv/svc svc",
                "usermod -s /bin/sh svc", "usermod -s /bin/sh svc", "usermod -G nosuch svc", "usermod nouser"],
    "userdel": ["useradd -m bob", "useradd -r -m -d /var/lib/nuwa-test/svc svc", "groupadd -r grp",
                "usermod -a -G grp bob", "userdel bob", "userdel -r svc", "userdel nobody2"],
    "userdel -r of a home owned by another": [
        "useradd -r -m -d /var/lib/nuwa-test/e1 e1", "useradd -r -m -d /var/lib/nuwa-test/e2 e2",
        "chown root /var/lib/nuwa-test/e1", "userdel -r e1", "chown root /var/lib/nuwa-test/e2",
        "userdel --force --remove e2", "useradd -r -d /var/lib/nuwa-test/none e3", "userdel -r e3"],
    "userdel keeps a shared group": ["groupadd -r shared", "useradd -r -g shared a", "useradd -r shared",
                                     "userdel a"],
    "groupdel and groupmod": ["groupadd -r g1", "groupadd g2", "useradd -r -g g2 u", "groupdel g2",
                              "groupdel g1", "groupdel nosuch", "groupmod -n g3 g2", "groupmod -g 4242 g3",
                              "groupmod -n root g3", "groupmod -g 0 g3"],
    "gpasswd": ["useradd -r u1", "useradd -r u2", "groupadd -r g", "gpasswd -a u1 g", "gpasswd -a u2 g",
                "gpasswd -d u1 g", "gpasswd -d u1 g", "gpasswd -a nobody9 g", "gpasswd -M u1,u2 g",
                "gpasswd -a u1 nosuch"],
    "chfn": ["useradd -r u", "chfn -f 'Some Service' u", "chfn -r 12 -w 34 u", "chfn -o x=y u", "chfn -f a:b u",
             "chfn -f x nosuch"],
}


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name", list(CASES))
def test_shadow_tools_like_the_real_ones(pair, name):
    check_case(pair, CASES[name], dirs=("var/lib/nuwa-test", "srv"))


@pytest.mark.judge
@pytest.mark.root
def test_skeleton_with_subdir_and_link(pair):
    def setup(root):
        os.makedirs(os.path.join(root, "etc/skel/.config/app"), exist_ok=True)
        os.chmod(os.path.join(root, "etc/skel/.config"), 0o750)
        with open(os.path.join(root, "etc/skel/.config/app/rc"), "w") as f:
            f.write("x=1\n")
        os.symlink(".bashrc", os.path.join(root, "etc/skel/.rc-link"))
        for p in ("etc/skel/.config/app/rc", "etc/skel/.config/app", "etc/skel/.config"):
            os.utime(os.path.join(root, p), ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    check_case(pair, ["useradd -m -s /bin/bash alice", "useradd -m -d /home/deep/er/bob bob"], setup=setup)


def test_round_trip_keeps_odd_lines_byte_for_byte():
    data = (b"root:x:0:0:root:/root:/bin/bash\n# a comment\nbroken line\n"
            b"daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n+@nis::::::\n-bad\nlast:x:5:5::/:/bin/sh")
    f = AccountFile("/etc/passwd", data)
    assert f.content() == data + b"\n"  # commonio writes every line with its newline
    f.put(["new", "x", "7", "7", "", "/h", "/bin/sh"])
    lines = f.content().split(b"\n")
    assert lines.index(b"new:x:7:7::/h:/bin/sh") + 1 == lines.index(b"+@nis::::::")  # before the NIS lines
    assert f.get("broken line") is None and f.get("daemon")[2] == "1"
    f.remove("new")
    assert f.content() == data + b"\n"


def test_id_allocation_rules():
    # system: below the lowest used id in range, wrapping to the top when the bottom is taken
    assert find_new_id(set(), 100, 999, True) == 999
    assert find_new_id({999, 998, 500}, 100, 999, True) == 499
    assert find_new_id({100, 999}, 100, 999, True) == 998
    # normal: above the highest used, then the lowest gap
    assert find_new_id({1000, 1005}, 1000, 60000, False) == 1006
    assert find_new_id({60000, 1000}, 1000, 60000, False) == 1001
    assert find_new_id(set(), 1000, 60000, False, preferred=1234, pref_min=1000) == 1234
    assert valid_name("a.b@c$") and not valid_name("-x") and not valid_name("a,b") and not valid_name("x" * 33)


@pytest.mark.judge
@pytest.mark.root
def test_odd_lines_survive_like_with_the_real_tools(pair):
    """Comments, broken lines, NIS entries and a missing final newline, edited by real and model."""
    def setup(root):
        for name, extra in (("passwd", "# local comment\nbroken line without colons\n+@netgroup::::::\n-baduser"),
                            ("group", "#group comment\nshortgrp:x:4242\n+\n"),
                            ("shadow", "weird:line\nold:*:19000:0:99999\nsvc:!:19000::::::\n")):
            p = os.path.join(root, "etc", name)
            st = os.stat(p)
            with open(p, "a") as f:
                f.write(extra)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    check_case(pair, ["useradd -r svc", "groupadd -r grp", "usermod -a -G grp svc", "userdel svc",
                      "useradd -m -N -G grp,shortgrp late", "useradd -r -M old", "usermod -a -G shortgrp late"],
               setup=setup)


@pytest.mark.judge
@pytest.mark.root
def test_mail_spool(pair):
    def setup(root):
        with open(os.path.join(root, "etc/default/useradd"), "a") as f:
            f.write("CREATE_MAIL_SPOOL=yes\n")
        with open(os.path.join(root, "var/mail/taken"), "w") as f:
            f.write("old mail\n")
        os.utime(os.path.join(root, "var/mail/taken"), ns=(10**18, 10**18))
    check_case(pair, ["useradd -m mia", "useradd -r sysmia", "useradd taken", "userdel -r mia"], setup=setup)
