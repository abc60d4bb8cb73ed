"""nuwa.apt.security: unattended-upgrades' default security origins for Debian and Ubuntu.

The Release fields used here are those the real archives publish (``apt-cache policy`` on a
bookworm system prints them as ``release v=12,o=Debian,a=oldstable-security,n=bookworm-security,
l=Debian-Security,c=main``); tests/apt/test_policy_vs_apt.py checks the classification against
apt's view of the live archive.
"""

from __future__ import annotations

import pytest

from nuwa.apt.records import ReleaseInfo
from nuwa.apt.security import (OriginPatternError, allowed_origin_to_pattern, any_security,
                               distro_from_os_release, is_security, match_origin_pattern, security_patterns,
                               substitute)


def rel(origin, label, archive, codename, component="main", uri="http://mirror.invalid/debian", suite=None):
    return ReleaseInfo(uri=uri, suite=suite or codename, component=component, origin=origin, label=label,
                       archive=archive, codename=codename)


DEB_SEC = rel("Debian", "Debian-Security", "stable-security", "bookworm-security")
DEB_MAIN = rel("Debian", "Debian", "stable", "bookworm")
DEB_UPDATES = rel("Debian", "Debian", "stable-updates", "bookworm-updates")
DEB_OLD_SEC = rel("Debian", "Debian-Security", "oldoldstable", "buster", suite="buster/updates")
DEB_BACKPORTS = rel("Debian Backports", "Debian Backports", "stable-backports", "bookworm-backports")


@pytest.mark.parametrize("info,expected", [
    (DEB_SEC, True), (DEB_MAIN, False), (DEB_UPDATES, False), (DEB_BACKPORTS, False),
    (rel("Debian", "Debian-Security", "stable-security", "trixie-security"), False),  # another release
    (rel("Evil", "Debian-Security", "stable-security", "bookworm-security"), False),
    (rel("debian", "Debian-Security", "stable-security", "bookworm-security"), False),  # case matters
    (rel("Debian", "Debian-Security", "", "bookworm"), True),  # the pre-bullseye layout's line
])
def test_debian_bookworm(info, expected):
    assert is_security(info, "Debian", "bookworm") is expected


def test_debian_old_security_layout():
    assert is_security(DEB_OLD_SEC, "Debian", "buster")
    assert not is_security(DEB_OLD_SEC, "Debian", "bullseye")


@pytest.mark.parametrize("origin,archive,expected", [
    ("Ubuntu", "jammy-security", True), ("Ubuntu", "jammy", False), ("Ubuntu", "jammy-updates", False),
    ("Ubuntu", "jammy-backports", False), ("Ubuntu", "noble-security", False),
    ("UbuntuESMApps", "jammy-apps-security", True), ("UbuntuESMApps", "jammy-apps-legacy-security", True),
    ("UbuntuESM", "jammy-infra-security", True), ("UbuntuESM", "jammy-infra-legacy-security", True),
    ("UbuntuESM", "jammy-apps-security", False), ("Evil", "jammy-security", False),
])
def test_ubuntu_jammy(origin, archive, expected):
    info = rel(origin, "Ubuntu", archive, "jammy", uri="http://mirror.invalid/ubuntu")
    assert is_security(info, "Ubuntu", "jammy") is expected


def test_distributions_do_not_cross():
    ubuntu_sec = rel("Ubuntu", "Ubuntu", "jammy-security", "jammy")
    assert not is_security(ubuntu_sec, "Debian", "jammy")
    assert not is_security(DEB_SEC, "Ubuntu", "bookworm")
    # another distribution gets both sets: Debian's name Debian itself, Ubuntu's its own id
    assert is_security(DEB_SEC, "Devuan", "bookworm")
    assert not is_security(ubuntu_sec, "Devuan", "jammy")
    assert is_security(rel("Devuan", "Devuan", "jammy-security", "jammy"), "Devuan", "jammy")


def test_security_patterns_are_the_expanded_defaults():
    assert security_patterns("Debian", "bookworm") == [
        "origin=Debian,codename=bookworm-security,label=Debian-Security",
        "origin=Debian,codename=bookworm,label=Debian-Security"]
    assert security_patterns("Ubuntu", "jammy")[0] == "o=Ubuntu,a=jammy-security"


def test_any_security_over_the_repositories_of_one_version():
    assert any_security([DEB_MAIN, DEB_SEC], "Debian", "bookworm")
    assert not any_security([DEB_MAIN, DEB_UPDATES], "Debian", "bookworm")
    assert not any_security([], "Debian", "bookworm")


def test_matcher_keys_aliases_globs_and_escapes():
    info = rel("Debian", "A,B", "stable", "bookworm", component="main", uri="http://deb.example.org/debian")
    assert match_origin_pattern("o=Debian,a=stable,c=main,n=bookworm", info)
    assert match_origin_pattern("origin=Debian,suite=stable,component=main,codename=bookworm", info)
    assert match_origin_pattern("archive=stab*,o=Deb?an", info)
    assert match_origin_pattern("l=A\\,B", info)
    assert not match_origin_pattern("l=A", info)
    assert match_origin_pattern("site=deb.example.org", info)
    assert match_origin_pattern("site=*.example.org", info)
    assert not match_origin_pattern("", info) and not match_origin_pattern("   ", info)
    with pytest.raises(OriginPatternError):
        match_origin_pattern("x=1", info)
    with pytest.raises(OriginPatternError):
        match_origin_pattern("origin", info)


def test_substitute_and_allowed_origins():
    assert substitute("${distro_id}:${distro_codename}-security", "Ubuntu", "jammy") == "Ubuntu:jammy-security"
    assert substitute("v=${distro_release}", "Debian", "bookworm", "12") == "v=12"
    with pytest.raises(OriginPatternError):
        substitute("${nope}", "Debian", "bookworm")
    assert allowed_origin_to_pattern("Ubuntu:jammy-security") == "o=Ubuntu,a=jammy-security"
    assert allowed_origin_to_pattern("Debian stable") == "o=Debian,a=stable"
    assert allowed_origin_to_pattern("My\\:Repo:stable") == "o=My:Repo,a=stable"
    assert allowed_origin_to_pattern("A,B:stable") == "o=A\\,B,a=stable"
    assert match_origin_pattern(allowed_origin_to_pattern("A,B:stable"), rel("A,B", "", "stable", "x"))


DEBIAN12_OS_RELEASE = '''PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
'''
UBUNTU_OS_RELEASE = '''NAME="Ubuntu"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
VERSION_CODENAME=jammy
UBUNTU_CODENAME=jammy
'''
UBUNTU_LSB = "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n"


def test_distro_from_os_release():
    assert distro_from_os_release(DEBIAN12_OS_RELEASE) == ("Debian", "bookworm")
    assert distro_from_os_release(UBUNTU_OS_RELEASE, UBUNTU_LSB) == ("Ubuntu", "jammy")
    assert distro_from_os_release(UBUNTU_OS_RELEASE) == ("Ubuntu", "jammy")
    stretch = 'NAME="Debian GNU/Linux"\nVERSION_ID="9"\nVERSION="9 (stretch)"\nID=debian\n'
    assert distro_from_os_release(stretch) == ("Debian", "stretch")
    assert distro_from_os_release("# comment only\n") == ("", "")

