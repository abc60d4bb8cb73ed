"""``postconf -e`` / ``-h`` / ``-hx`` (Postfix 3.7) against the real postconf in a chroot.

A bookworm minbase tree with postfix is copied twice; each case writes the same main.cf on both,
then runs the same command lines with real ``sh`` in a chroot of one copy and Nuwa's
interpreter on the other: status, stdout and stderr of every line, then ``/etc/postfix`` path
by path (main.cf's bytes, mode and owner; no ``main.cf.tmp`` left). The forms the model does
not know defer with the reason, checked on the model side.
"""

from __future__ import annotations

import os

import pytest

from registry_harness import ShellPair, write


class PostconfPair(ShellPair):
    PACKAGES = ("postfix",)
    DIRS = ["etc/postfix"]
    FILES: list[str] = []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return PostconfPair(str(tmp_path_factory.mktemp("postconf")))


MAIN = """# a comment
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no

append_dot_mydomain = no
readme_directory = no
myhostname = mx.example.org
mydestination = $myhostname, localhost.$mydomain_x, ${myhostname}, $(mail_name), $$literal
mydomain_x = example.org
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104
   [::1]/128
alias_maps = hash:/etc/aliases
compatibility_level = 3.6
"""


def _main(text):
    def setup(root):
        write(root, "etc/postfix/main.cf", text.encode())
    return setup


def test_edit_and_read(pair):
    steps = [
        "postconf -h myhostname; echo rc=$?",
        "postconf -hx mydestination; echo rc=$?",
        "postconf -h mydestination; echo rc=$?",
        "postconf -hx smtpd_banner; echo rc=$?",
        "postconf -hx default_transport; echo rc=$?",
        "postconf -h alias_database; echo rc=$?",
        "postconf -h relayhost; echo rc=$?",
        "postconf -e 'myhostname=mail.example.org'; echo rc=$?",
        "postconf -e 'mynetworks = 10.0.0.0/8'; echo rc=$?",      # drops the continuation line
        "postconf -e 'inet_interfaces=all'; echo rc=$?",          # appended
        "postconf -e 'relayhost='; echo rc=$?",                   # an empty value
        "postconf -e 'mailbox_size_limit=0' 'relayhost=[smtp.example.org]'; echo rc=$?",
        "postconf -e 'smtpd_relay_restrictions=permit_mynetworks permit_sasl_authenticated "
        "defer_unauth_destination'; echo rc=$?",
        "postconf -e '  biff  =  yes  '; echo rc=$?",
        "postconf -hx default_transport; echo rc=$?",
        "cat /etc/postfix/main.cf",
    ]
    pair.check(steps, setup=_main(MAIN))


def test_duplicates_and_missing_file(pair):
    dup = "biff = no\nmyhostname = a.example\nbiff = yes\nbiff = maybe\n"
    pair.check(["postconf -e 'biff=no'; echo rc=$?", "cat /etc/postfix/main.cf"], setup=_main(dup))

    def none(root):
        os.unlink(os.path.join(root, "etc/postfix/main.cf"))
    pair.check(["postconf -e 'myhostname=x.example'; echo rc=$?", "postconf -h myhostname; echo rc=$?",
                "ls /etc/postfix"], setup=none)


@pytest.mark.parametrize("cmd, reason", [
    ("postconf -h myorigin", "default of myorigin"),
    ("postconf -e 'a=1' 'b=2'", "hash-table order"),
    ("postconf -n", "not modelled"),
    ("postconf -h mynetworks", "continuation"),
])
def test_deferred_forms(pair, cmd, reason):
    pair.reset(_main(MAIN))
    pair.run_model(cmd)
    text = pair.last.reason + " ".join(d.reason for d in pair.last.deferred_commands)
    assert reason in text, text
