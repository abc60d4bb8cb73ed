"""adduser/addgroup/deluser/delgroup (adduser 3.134) against the real Perl scripts in a chroot.

The forms are those of Debian 12 maintainer scripts (openssh-server, exim4, slapd, dbus,
systemd, polkitd, ...), plus existing-account, conflict and bad-input cases.
"""

from __future__ import annotations

import os

import pytest

from accounts_harness import MODELS, Pair, check_case
from debian_tree import bookworm_tree


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return Pair(bookworm_tree(), str(tmp_path_factory.mktemp("adduser")))


CASES = {
    "system user with group, no home": [
        "adduser --system --group --quiet --home /var/lib/nuwa-test/foo --no-create-home --shell /usr/sbin/nologin foo"],
    "sshd style": ["adduser --quiet --system --home /run/sshd --no-create-home --shell /usr/sbin/nologin sshd"],
    "verbose system user and home created": ["adduser --system --home /var/lib/nuwa-test/v v1",
                                             "adduser --system --group --home /var/lib/nuwa-test/w/x v2"],
    "system user already there": ["adduser --system --group foo", "adduser --system --group foo",
                                  "adduser --system --quiet foo", "adduser --system --uid 4242 foo"],
    "not a system user": ["adduser --system --quiet nobody", "useradd -u 1234 normal", "adduser --system normal"],
    "system user with gecos": ["adduser --system --gecos 'Foo daemon' --group foo",
                               "adduser --system --gecos 'Bar,1,2,3,x' bar", "adduser --system --comment 'A,B' baz"],
    "ingroup and gid": ["addgroup --system grp", "adduser --system --ingroup grp a1", "adduser --system --gid 65534 a2",
                        "adduser --system --ingroup nosuch a3", "adduser --system --gid 777 a4",
                        "adduser --system --uid 555 --group a5", "adduser --system --uid 0 a6"],
    "addgroup": ["addgroup --system foo", "addgroup --quiet --system foo", "addgroup --system users",
                 "addgroup bar", "addgroup bar", "addgroup --gid 4000 baz", "addgroup --gid 4000 qux",
                 "addgroup --system --gid 100 grp"],
    "adduser --group": ["adduser --group --system g1", "adduser --group g2"],
    "user to group": ["adduser --system u1", "addgroup --system g1", "adduser u1 g1", "adduser u1 g1",
                      "adduser --quiet u1 g1", "adduser nouser g1", "adduser u1 nogrp"],
    "bad names and calls": ["adduser --system 123", "adduser --system 'a b'", "adduser --system Foo",
                            "adduser --system --allow-bad-names Foo", "adduser --system -- -x",
                            "adduser --system aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "adduser", "adduser a b c",
                            "addgroup a b", "adduser --system a b", "adduser --system --group --gid 5 x",
                            "adduser --system --home rel x"],
    "deluser": ["adduser --system --quiet d1", "deluser --system d1", "deluser --system d1", "deluser --quiet nouser",
                "deluser root", "useradd -u 1500 n1", "deluser --system n1"],
    "delgroup": ["addgroup --system dg", "delgroup dg", "delgroup dg", "delgroup --system dg",
                 "addgroup ng", "delgroup --system ng", "adduser --system --group pg", "addgroup --system e",
                 "adduser pg e", "delgroup --only-if-empty e", "deluser pg e", "deluser pg e", "deluser pg pg",
                 "deluser --group --system e"],
    "normal users without a terminal": [
        "adduser --disabled-password --gecos '' alice", "adduser --disabled-login --gecos 'Bob B,1,2,3' bob",
        "adduser --quiet --disabled-password --gecos x --shell /bin/sh --home /srv/carol carol",
        "adduser --disabled-password --gecos '' --ingroup users dave", "adduser --disabled-password --gecos '' alice",
        "adduser --disabled-password --gecos '' --uid 1500 --add-extra-groups erin",
        "adduser --disabled-password --gecos '' 1abc"],
    # real forms from Debian 12 maintainer scripts, run in sequence as an upgrade batch would
    "corpus forms": [
        "adduser --system --group --home /var/lib/nuwa-test/bacula bacula", "usermod -c Bacula bacula",
        "usermod -G tape bacula", "addgroup --system bind",
        "adduser --system --home /var/cache/bind --no-create-home --disabled-password --ingroup bind bind",
        "adduser --force-badname --system --group --quiet --gecos 'Chrony daemon' --home /var/lib/chrony _chrony",
        "adduser --system --no-create-home --quiet --disabled-password --disabled-login --shell /bin/false clamav",
        "adduser --system --quiet --home /nonexistent --no-create-home --disabled-password --group messagebus",
        "useradd --system --gid nogroup --comment dnsmasq --home-dir /var/lib/misc --no-create-home "
        "--shell /usr/sbin/nologin dnsmasq",
        "adduser --system --group --home /usr/lib/dovecot --gecos 'Dovecot mail server' --no-create-home dovecot",
        "adduser --quiet --system --group --no-create-home --home /run/epmd epmd",
        "adduser --system --disabled-password --disabled-login --home /var/lib/haproxy --no-create-home --quiet "
        "--group haproxy",
        "addgroup --quiet --system netdev", "addgroup --system memcache",
        "adduser --system --disabled-login --ingroup memcache --home /nonexistent --no-create-home memcache",
        "adduser --system --group --home /var/lib/nuwa-test/nagios --quiet nagios",
        "adduser --force-badname --system --quiet --home /run/rpcbind --no-create-home _rpc",
        "groupadd --force --system sambashare", "groupadd --force --system sambashare",
        "addgroup --system tss",
        "adduser --system --ingroup tss --shell /bin/false --home /var/lib/tpm --no-create-home "
        "--gecos 'TPM software stack' tss",
        "addgroup --quiet --system kvm", "addgroup --quiet --system netdev",
        "adduser --quiet --system --no-create-home --home /nonexistent --group varnish",
        "adduser --quiet --system --no-create-home --home /nonexistent --ingroup varnish vcache",
        "userdel redis", "deluser --quiet --system _chrony", "delgroup --system haproxy",
        "deluser --system haproxy", "delgroup --system haproxy", "userdel --force --remove epmd"],
    "getent guard then adduser": ["getent passwd gg", "adduser --system --group --quiet gg", "getent passwd gg"],
}


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name", list(CASES))
def test_adduser_family_like_the_real_scripts(pair, name):
    check_case(pair, CASES[name], dirs=("var/lib/nuwa-test",))


@pytest.mark.judge
@pytest.mark.root
def test_adduser_conf_ranges_and_modes(pair):
    def setup(root):
        with open(os.path.join(root, "etc/adduser.conf"), "a") as f:
            f.write("FIRST_SYSTEM_UID=200\nFIRST_SYSTEM_GID=300\nSYS_DIR_MODE=0750\nBOGUS=1\nnot a line\n")
    check_case(pair, ["adduser --system --group --home /var/lib/nuwa-test/c c1", "addgroup --system c2"],
               setup=setup, dirs=("var/lib/nuwa-test",))


def test_normal_users_defer_without_a_real_run(tmp_path):
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.script.context import Defer, Invocation

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nusers:x:100:\n")
    fs = HostDirFS(str(tmp_path), writable=True)
    with pytest.raises(Defer):
        MODELS["adduser"](Invocation(argv=["adduser", "alice"], fs=fs, models=MODELS))
    assert (tmp_path / "etc/passwd").read_text() == "root:x:0:0:root:/root:/bin/bash\n"


POSTINST = """#!/bin/sh
set -e
if ! getent passwd nuwasvc >/dev/null; then
    adduser --system --group --quiet --home /var/lib/nuwa-test/svc --no-create-home \\
        --shell /usr/sbin/nologin --gecos 'Nuwa service' nuwasvc
fi
getent group nuwaextra >/dev/null || addgroup --system --quiet nuwaextra
adduser --quiet nuwasvc nuwaextra
id nuwasvc
"""


@pytest.mark.judge
@pytest.mark.root
def test_maintainer_script_forms_through_the_interpreter(pair):
    """A postinst-style script: dash in the chroot vs. the interpreter with the models, run twice."""
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.script.interp import run_script
    from accounts_harness import ENV, file_facts

    pair.reset()
    for _ in range(2):  # the second run finds everything in place
        real = pair.run_real(["sh", "-c", POSTINST])
        r = run_script(HostDirFS(pair.model, writable=True), POSTINST, env=dict(ENV), name="sh", models=MODELS)
        assert (r.status, r.stdout, r.stderr) == real
        assert not r.deferred_commands and not r.deferred_whole
    for f in ("passwd", "shadow", "group", "gshadow", "passwd-", "group-"):
        assert file_facts(pair.model, f"etc/{f}") == file_facts(pair.real, f"etc/{f}"), f


@pytest.mark.judge
@pytest.mark.root
def test_normal_user_skeleton_copy(pair):
    def setup(root):
        os.makedirs(os.path.join(root, "etc/skel/.config/app"), exist_ok=True)
        os.chmod(os.path.join(root, "etc/skel/.config"), 0o750)
        with open(os.path.join(root, "etc/skel/.config/app/rc"), "w") as f:
            f.write("x=1\n")
        with open(os.path.join(root, "etc/skel/.profile.dpkg-old"), "w") as f:
            f.write("ignored by SKEL_IGNORE_REGEX\n")
        os.symlink(".bashrc", os.path.join(root, "etc/skel/.rc-link"))
    check_case(pair, ["adduser --disabled-password --gecos '' alice"], setup=setup)


@pytest.mark.parametrize("overlay", [False, True])
def test_a_deferral_part_way_leaves_no_trace(tmp_path, overlay):
    """adduser runs groupadd, then useradd defers (EXPIRE= in its defaults): nothing may stay."""
    import hashlib

    from nuwa.fs.hostdir import HostDirFS
    from nuwa.fs.overlay import Overlay
    from nuwa.script.context import Defer, Invocation

    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nusers:x:100:\nnogroup:x:65534:\n")
    (tmp_path / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (tmp_path / "usr/sbin").mkdir(parents=True)
    for prog in ("groupadd", "useradd", "chfn", "gpasswd"):  # adduser looks them up in PATH
        (tmp_path / "usr/sbin" / prog).write_text("")
        (tmp_path / "usr/sbin" / prog).chmod(0o755)
    (tmp_path / "etc/default/useradd").write_text("EXPIRE=2030-01-01\n")

    def digest():
        h = hashlib.sha256()
        for p in sorted(tmp_path.rglob("*")):
            h.update(str(p).encode() + (p.read_bytes() if p.is_file() else b"/"))
        return h.hexdigest()

    before = digest()
    fs = HostDirFS(str(tmp_path), writable=True)
    fs = Overlay(fs) if overlay else fs
    with pytest.raises(Defer):
        MODELS["adduser"](Invocation(argv=["adduser", "--disabled-password", "--gecos", "", "norm"], fs=fs, models=MODELS))
    if overlay:
        assert not [e for e in fs.changes()], "the overlay still holds changes"
        fs.commit()
    assert digest() == before
