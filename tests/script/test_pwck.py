"""pwck -r and grpck -r (shadow 4.13) against the real programs in a chroot of a bookworm tree.

A minbase tree is copied twice; each case restores ``/etc`` on both from a pristine copy,
damages the account files the same way on both, runs the same command line with real ``sh``
in a chroot of one and with Nuwa's interpreter on the other, and compares status, stdout,
stderr and ``/etc`` path by path (read-only runs change nothing).
"""

from __future__ import annotations

import os

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import MODELS, ShellPair

ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}


class AccountsPair(ShellPair):
    PACKAGES = ()
    DIRS = ["etc", "home"]
    FILES: list[str] = []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return AccountsPair(str(tmp_path_factory.mktemp("pwck")))


def edit(rel: str, append: bytes = b"", replace: tuple[bytes, bytes] | None = None, text: bytes | None = None):
    """A setup step: append to, substitute in or overwrite ``/etc``'s file ``rel``."""
    def step(root):
        p = os.path.join(root, "etc", rel)
        data = open(p, "rb").read() if text is None else text
        if replace:
            data = data.replace(*replace)
        with open(p, "wb") as f:
            f.write(data + append)
    return step


def setups(*steps):
    def setup(root):
        for s in steps:
            s(root)
    return setup


CHECKS = ["pwck -r; echo $?", "pwck -q -r; echo $?", "pwck -r -q -b; echo $?", "grpck -r; echo $?",
          "grpck -r -S; echo $?", "grpck -r -q; echo $?"]


def test_pristine_tree(pair):
    # nobody's /nonexistent and the system users' homes, as the real checks see them
    pair.check(CHECKS + ["pwck --read-only --quiet; echo $?", "pwck -r /etc/passwd; echo $?",
                         "pwck -r /etc/passwd /etc/shadow; echo $?", "grpck -r /etc/group /etc/gshadow; echo $?"])


def test_damaged_passwd(pair):
    pair.check(CHECKS, setup=setups(
        edit("passwd", b"baduser:x:1000:1000::/home/baduser:/bin/bash\n"  # no shadow, no group, no home
                       b"daemon:x:1:1:dup:/usr/sbin:/usr/sbin/nologin\n"  # duplicate
                       b"broken:x:5\n"  # field count
                       b"+nisuser::::::\n"
                       b"\n"
                       b"neg:x:4294967295:0::/:/bin/sh\n"
                       b"spaced:x: 77:+0::/:/bin/nosuch\n"
                       b"Bad Name:x:2000:0::/root:/bin/sh\n"
                       b"-bad:x:2001:0::/root:/bin/sh\n"
                       b"big:x:4294967296:0::/:/bin/sh\n"
                       b"twelve345678901234567890123456789012:x:3000:0::/root:\n"),
        edit("passwd", replace=(b"root:x:0:0", b"root:!:0:0")),
        edit("shadow", b"neg:*:19000:0:99999:7:::\nspaced:*:19000::::::\n")))


def test_damaged_shadow(pair):
    pair.check(CHECKS, setup=edit("shadow", b"ghost:*:19000:0:99999:7:::\n"  # no passwd entry
                                            b"daemon:*:19000:0:99999:7:::\n"  # duplicate
                                            b"short:x\n"
                                            b"old:*:19000:0:99999\n"  # the SVR3.2 5-field form
                                            b"future:*:90000:0:99999:7:::\n"
                                            b"neg:*:-5:0:99999:7:::\n"
                                            b"hex:*:0x10:010:99999:7:::\n"
                                            b"toolong:*:1:2:3:4:5:6:7:8\n"
                                            b"flag:*:1::::::x5\n"
                                            b"five:*:16:0:99999:\n"  # 5 fields and an empty one
                                            b"six:*:16:0:99999:7\n"
                                            b"seven:*:16:0:99999:7::\n"
                                            b"hexflag:*:16:0:99999:7:::0x5\n"
                                            b"negflag:*:16:0:99999:7:::-1\n"
                                            b"exp:*:16:0:99999:7:1e:\n"
                                            b"+nis:*::::::\n"))


def test_damaged_group_and_gshadow(pair):
    pair.check(CHECKS, setup=setups(
        edit("group", b"newgrp:x:3000:root,nosuchuser\n"  # no gshadow entry, unknown member
                      b"daemon:x:1:\n"  # duplicate
                      b"badgid:x:abc:\n"
                      b"lead:x:3001:,root\n"
                      b"holes:x:3002:root,,daemon,\n"
                      b"pw:secret:3003:\n"
                      b"Bad Group:x:3004:\n"
                      b"maxgid:x:4294967295:\n"
                      b"+nisgroup:::\n"),
        edit("gshadow", b"ghostgrp:!::\n"  # no group entry
                        b"lead:!:nobody,ghostadmin:root,bin\n"
                        b"holes:!::root,,daemon\n"
                        b"pw:!::\n"
                        b"broken:!\n"
                        b"daemon:*::\n"  # duplicate
                        b"+nis:::\n")))


def test_missing_files_and_usage(pair):
    pair.check(["pwck -r /etc/nosuch; echo $?", "pwck -r /etc/passwd /etc/nosuch; echo $?",
                "grpck -r /etc/nosuch; echo $?", "pwck -r a b c; echo $?", "grpck -r a b c; echo $?",
                "pwck -s -r; echo $?", "grpck -r -s; echo $?", "pwck -h; echo $?", "grpck --help; echo $?",
                "rm /etc/shadow /etc/gshadow; pwck -r; echo $?; grpck -r; echo $?"])


def test_login_defs(pair):
    # NONEXISTENT names nobody's home as intended; a system range that includes 65534
    pair.check(["pwck -r; echo $?", "echo 'SYS_UID_MAX 65534' >> /etc/login.defs; pwck -r; echo $?"],
               setup=edit("login.defs", b"NONEXISTENT /nonexistent\n"))


def test_shadowconfig_checks(pair):
    # the lines shadowconfig runs, with their output used as shadowconfig uses it
    pair.check(["pwck -q -r && grpck -r && echo ok"])


def test_shadowconfig_on(pair):
    # passwd's postinst: the checks, pwconv, grpconv, then owners and modes
    pair.check(["shadowconfig on; echo $?", "shadowconfig on; echo $?"])


def test_conversions_of_unconverted_entries(pair):
    # users and groups without shadow entries, passwords still in passwd and group, shadow
    # entries of nobody, a gshadow entry whose administrators stay
    pair.check(["pwconv; echo $?", "grpconv; echo $?", "ls -la /etc/ | grep -e passwd -e shadow -e group -e pwd",
                "pwconv; grpconv; echo $?"], setup=setups(
        edit("passwd", b"new:x:1000:1000::/home/new:/bin/sh\nold:$1$abc$def:1001:1001::/:/bin/sh\n"),
        edit("shadow", b"ghost:*:19000:0:99999:7:::\nold:*:18000:1:2:3:4:5:\n"),
        edit("group", b"new:x:1000:root,daemon\nold:secret:1001:\nstaff2:x:1002:root,\n"),
        edit("gshadow", b"ghostgrp:!::\nold:!:root:\nstaff2:!:bin,daemon:nobody\n"),
        edit("login.defs", b"PASS_MIN_DAYS 1\nPASS_WARN_AGE 14\n")))


def deferred_reason(pair, cmd: str) -> str:
    fs = Overlay(HostDirFS(pair.model, writable=True))
    res = run_script(fs, cmd + "\n", env=dict(ENV), models=MODELS, is_path=False)
    assert len(res.deferred_commands) == 1, cmd
    return res.deferred_commands[0].reason


def test_fixing_run_defers(pair):
    pair.reset()
    for cmd in ("pwck", "grpck", "pwck -s", "pwck -R /x -r"):
        reason = deferred_reason(pair, cmd)
        assert "-r" in reason or "-R" in reason, reason


@pytest.mark.parametrize("line", [b"a:*: 16:0:99999:7:::", b"a:*:+16:0:99999:7:::", b"a:*:010:0:99999:7:::",
                                  b"a:*:99999999999999999999:0:99999:7:::", b"a:*:16:0:99999:7:::  5"])
def test_unsure_shadow_numbers_defer(pair, line):
    # the real pwck accepts the first three (with which value?) and never returns on the fourth
    pair.reset(edit("shadow", line + b"\n"))
    assert "number field" in deferred_reason(pair, "pwck -r")


# ---- groups (coreutils 9.1): read-only, judged on the same copies ---------------------------------

GROUPS_SETUP = setups(
    edit("passwd", append=b"extra:x:1601:1500::/nonexistent:/usr/sbin/nologin\n"
                          b"orphan:x:1600:1777::/nonexistent:/usr/sbin/nologin\n"),
    edit("group", append=b"extra:x:1500:extra,root\nlate:x:1501:root,extra\nmore:x:1502:orphan\n"))


@pytest.mark.parametrize("cmd", [
    "groups", "groups root", "groups root daemon nosuch; echo $?", "groups extra", "groups 0; echo $?",
    "groups -x; echo $?", "groups -- root", "groups orphan; echo $?", "groups orphan extra",
])
def test_groups(pair, cmd):
    pair.check([cmd], setup=GROUPS_SETUP)
