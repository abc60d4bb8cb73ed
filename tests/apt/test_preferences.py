"""nuwa.apt.preferences: pins read and matched as apt reads and matches them.

The judge is ``apt-cache policy`` in a chroot of a real bookworm tree: a small ``file:``
repository with three suites of different Origin/Label/Suite/Codename/Version is written into
the chroot, ``apt-get update`` reads it, and the priority apt gives each version must be the
one Nuwa's pins give it (the first specific pin in file order that matches the version, else
the first generic pin that matches its repository, else 500), for a table of preferences files.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from aptconfig_judge import AptChroot, apt_messages
from nuwa.apt.preferences import Pin, expression_matches, parse_preferences, read_preferences
from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.errors import InvalidInputError
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS

URI = "file:/srv/repo"
# suite -> (Release fields, {component: [(package, version, architecture, source)]})
SUITES = {
    "stable": ({"Origin": "Debian", "Label": "Debian", "Suite": "stable", "Codename": "bookworm",
                "Version": "12.8"},
               {"main": [("alpha", "1.0-1", "amd64", ""), ("beta", "2.0-1", "all", "betasrc"),
                         ("alpha", "1.0-1", "i386", ""), ("gamma", "3.0", "i386", ""),
                         ("gamma", "3.0", "amd64", "")],
                "contrib": [("delta", "4.0", "amd64", "")]}),
    "stable-security": ({"Origin": "Debian", "Label": "Debian-Security", "Suite": "stable-security",
                         "Codename": "bookworm-security", "Version": "12"},
                        {"main": [("alpha", "1.0-1+deb12u1", "amd64", ""), ("beta", "2.0-1+deb12u1", "all", "betasrc"),
                                  ("gamma-extra", "3.1", "amd64", "gamma")]}),
    "testing": ({"Origin": "Other Org", "Label": "Extras", "Suite": "testing", "Codename": "trixie",
                 "Version": "13.0~beta"},
                {"main": [("alpha", "1.5-1", "amd64", ""), ("gamma", "3.5", "amd64", ""),
                          ("delta", "4.5", "amd64", "")]}),
}

PREFS = [
    ("release pins", {"etc/apt/preferences": (
        "Package: *\nPin: release a=testing\nPin-Priority: 100\n\n"
        "Package: *\nPin: release n=bookworm-security, l=Debian-Security\nPin-Priority: 700\n\n"
        "Package: *\nPin: release o=Debian\nPin-Priority: 600\n")}),
    ("specific before generic", {"etc/apt/preferences.d/10pkg.pref": (
        "Explanation: first specific pin wins\nPackage: alpha\nPin: version 1.5*\nPin-Priority: 1001\n\n"
        "Package: alpha\nPin: release a=stable\nPin-Priority: 50\n\n"
        "Package: gamma delta\nPin: release l=Extras\nPin-Priority: -1\n\n"
        "Package: *\nPin: release c=contrib\nPin-Priority: 200\n")}),
    ("globs, regexes and src", {"etc/apt/preferences.d/globs": (
        "Package: gam*\nPin: release n=trixie\nPin-Priority: 990\n\n"
        "Package: /^del/\nPin: version /^4\\.0$/\nPin-Priority: 800\n\n"
        "Package: src:betasrc\nPin: release a=stable-security\nPin-Priority: 650\n\n"
        "Package: *\nPin: release v=13*\nPin-Priority: 400\n")}),
    ("names with architecture and origin", {"etc/apt/preferences.d/arch.pref": (
        "Package: alpha:amd64\nPin: release Debian-Security\nPin-Priority: 300\n\n"
        "Package: *\nPin: origin \"\"\nPin-Priority: 450\n\n"
        "Package: gamma:i386\nPin: release *\nPin-Priority: 999\n")}),
    ("simple release words and case", {"etc/apt/preferences.d/words": (
        "Package: *\nPin: release stable\nPin-Priority: 510\n\n"
        "Package: *\nPin: release 13.0~beta\nPin-Priority: 520\n\n"
        "package: beta\npin: RELEASE O=debian\npin-priority: 530\n")}),
    ("files in order and filtered", {
        "etc/apt/preferences.d/20b": "Package: *\nPin: release a=stable\nPin-Priority: 20\n",
        "etc/apt/preferences.d/10a.pref": "Package: *\nPin: release a=stable\nPin-Priority: 10\n",
        "etc/apt/preferences.d/05x.disabled": "Package: *\nPin: release a=stable\nPin-Priority: 5\n",
        "etc/apt/preferences.d/06y.conf": "Package: *\nPin: release a=stable\nPin-Priority: 6\n",
        "etc/apt/preferences.d/.07z": "Package: *\nPin: release a=stable\nPin-Priority: 7\n"}),
    ("lines apt misreads", {"etc/apt/preferences": (
        "Package: *\nPin release a=stable\nPin-Priority: 900\n\n"
        "Package: *\nPin: release a=testing\nPin-Priority: 10abc\n\n"
        "Package: alpha\nPin: version 1.0*\nPin-Priority:  +600 \n")}),
    ("never and skipped stanzas", {"etc/apt/preferences": (
        "# only a comment\n\n"
        "Package: alpha\nPin-Priority: 999\n\n"
        "Package: *\nPin: release a=testing\nPin-Priority: never\n")}),
]

BAD = [
    ("no Package", "Pin: release a=stable\nPin-Priority: 10\n"),
    ("zero priority", "Package: *\nPin: release a=stable\nPin-Priority: 0\n"),
    ("no priority", "Package: *\nPin: release a=stable\n"),
    ("never for a package", "Package: alpha\nPin: release a=stable\nPin-Priority: never\n"),
    ("out of range", "Package: *\nPin: release a=stable\nPin-Priority: 40000\n"),
    ("not a number", "Package: *\nPin: release a=stable\nPin-Priority: high\n"),
    ("no colon left", "Package: *\nPin: release a=stable\nPin-Priority: 5\nbogus line\n"),
]


def write_repo(chroot: AptChroot) -> None:
    """The file: repository (Packages, Release with SHA256) and its sources entries."""
    lines = []
    for suite, (fields, comps) in SUITES.items():
        hashes = []
        for comp, pkgs in comps.items():
            for index_arch in ("amd64", "i386"):
                text = "".join(
                    f"Package: {p}\nVersion: {v}\nArchitecture: {a}\n" + (f"Source: {s}\n" if s else "") +
                    f"Maintainer: Nobody <nobody@example.invalid>\nFilename: pool/{p}_{v}_{a}.deb\nSize: 1\n"
                    f"SHA256: {'0' * 64}\nDescription: test package\n\n"
                    for p, v, a, s in pkgs if a == index_arch or (a == "all" and index_arch == "amd64"))
                rel = f"{comp}/binary-{index_arch}/Packages"
                chroot.write(f"srv/repo/dists/{suite}/{rel}", text)
                hashes.append(f" {hashlib.sha256(text.encode()).hexdigest()} {len(text.encode())} {rel}\n")
        release = "".join(f"{k}: {v}\n" for k, v in fields.items())
        release += (f"Date: Sat, 01 Jun 2024 00:00:00 UTC\nArchitectures: amd64 i386\nComponents: {' '.join(comps)}\n"
                    "SHA256:\n" + "".join(hashes))
        chroot.write(f"srv/repo/dists/{suite}/Release", release)
        lines.append(f"deb [trusted=yes] {URI} {suite} {' '.join(comps)}\n")
    chroot.write("etc/apt/sources.list", "".join(lines))
    chroot.write("var/lib/dpkg/arch", "amd64\ni386\n")  # i386 as a foreign architecture


def records() -> list[PackageRecord]:
    out = []
    for suite, (fields, comps) in SUITES.items():
        for comp, pkgs in comps.items():
            info = ReleaseInfo(URI, suite, comp, origin=fields["Origin"], label=fields["Label"],
                               archive=fields["Suite"], codename=fields["Codename"], version=fields["Version"])
            out += [PackageRecord(p, v, a, info, source=s) for p, v, a, s in pkgs]
    return out


def key(record: PackageRecord) -> tuple[str, str]:
    """How apt-cache policy names a version: ``name:arch`` for a foreign architecture."""
    name = record.package if record.architecture in ("amd64", "all") else f"{record.package}:{record.architecture}"
    return name, record.version


def expected_priority(pins: list[Pin], record: PackageRecord) -> int:
    """apt's pkgPolicy::GetPriority for a version found in one repository."""
    for pin in pins:
        if not pin.generic and pin.matches(record, "amd64"):
            return pin.priority
    for pin in pins:
        if pin.generic and pin.matches_release(record.release, record.architecture):
            return pin.priority
    return 500


def apt_priorities(chroot: AptChroot, names: list[str]) -> dict[tuple[str, str], int]:
    r = chroot.apt("apt-cache", "policy", *names)
    assert r.returncode == 0 and not apt_messages(r.stderr, "E"), r.stderr
    out, pkg, in_table = {}, None, False
    for line in r.stdout.splitlines():
        if line and not line.startswith(" "):
            pkg, in_table = line.rstrip(":"), False
        elif line.strip() == "Version table:":
            in_table = True
        elif in_table and (m := re.fullmatch(r" {5}(?:\*\*\* )?(\S+) (-?\d+)", line)):
            out[(pkg, m.group(1))] = int(m.group(2))  # a version line, not a file line below it
    return out


@pytest.fixture(scope="module")
def chroot(tmp_path_factory):
    return AptChroot(str(tmp_path_factory.mktemp("apt-prefs")))


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name,files", PREFS, ids=[c[0] for c in PREFS])
def test_priorities_as_apt_cache_policy_shows_them(chroot, name, files):
    chroot.reset()
    write_repo(chroot)
    for rel, text in files.items():
        chroot.write(rel, text)
    r = chroot.apt("apt-get", "update", "-o", "APT::Sandbox::User=root")
    assert r.returncode == 0 and not apt_messages(r.stderr, "E"), r.stdout + r.stderr
    recs = records()
    want = apt_priorities(chroot, sorted({key(rec)[0] for rec in recs}))
    warnings: list[str] = []
    pins = read_preferences(HostDirFS(chroot.root), warnings.append)
    got = {key(rec): expected_priority(pins, rec) for rec in recs}
    assert got == want


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name,text", BAD, ids=[c[0] for c in BAD])
def test_bad_preferences_are_errors_as_in_apt(chroot, name, text):
    chroot.reset()
    chroot.write("etc/apt/preferences.d/bad.pref", "Package: *\nPin: release a=x\nPin-Priority: 1\n\n" + text)
    r = chroot.apt("apt-cache", "policy")
    assert apt_messages(r.stderr, "E"), f"apt accepted it: {r.stderr}"
    with pytest.raises(InvalidInputError) as e:
        read_preferences(HostDirFS(chroot.root))
    # the stanza (line 5) or, for a line apt cannot parse, that line
    m = re.match(r"/etc/apt/preferences.d/bad.pref:(\d+): ", str(e.value))
    assert m and int(m.group(1)) >= 5 and "\n" not in str(e.value), str(e.value)


# ---- without a chroot ---------------------------------------------------------------------------
def test_unknown_pin_type_is_a_warning():
    warnings: list[str] = []
    pins = parse_preferences("Package: *\nPin: version 1.0\nPin-Priority: 10\n\n"
                             "Package: a\nPin: codename x\nPin-Priority: 10\n", "p", warnings.append)
    assert pins == [] and len(warnings) == 2 and all("did not understand pin type" in w for w in warnings)


def test_pin_fields_and_read_order():
    fs = MemoryFS()
    fs.makedirs("/etc/apt/preferences.d")
    fs.write_bytes("/etc/apt/preferences.d/a.pref", b"Package: x y\nPin: release o=Debian,a=stable\nPin-Priority: 900\n")
    fs.write_bytes("/etc/apt/preferences", b"Package: *\nPin: origin \"host.invalid\"\nPin-Priority: -32768\n")
    first, second = read_preferences(fs)
    assert (first.packages, first.pin_kind, first.priority, first.where) == (
        ("*",), "origin", -32767, "/etc/apt/preferences:1")
    assert (second.packages, second.pin_kind, second.expr, second.priority) == (("x", "y"), "release", "o=Debian,a=stable", 900)
    assert first.matches_release(ReleaseInfo("http://host.invalid/debian", "s"))
    assert not first.matches_release(ReleaseInfo("http://other.invalid/debian", "s"))


@pytest.mark.parametrize("pattern,text,result", [
    ("bookworm*", "bookworm-security", True), ("BOOKWORM", "bookworm", True), ("/^book.*rity$/", "bookworm-security", True),
    ("/^stable$/", "oldstable", False), ("sta?le", "stable", True), ("[st]table", "stable", True), ("/[/", "x", False),
])
def test_expression_matches(pattern, text, result):
    assert expression_matches(pattern, text) is result


def test_pins_made_by_hand_match_like_parsed_ones():
    info = ReleaseInfo(URI, "stable", "main", origin="Debian", archive="stable", codename="bookworm", version="12.8")
    rec = PackageRecord("alpha", "1.0-1", "amd64", info)
    assert Pin(("*",), "release", "o=Debian,n=bookworm,v=12*", 500).matches(rec)
    assert not Pin(("alpha",), "release", "o=Debian,n=trixie", 500).matches(rec)
    assert Pin(("alpha",), "version", "1.0*", 500).matches(rec, "amd64")
    assert not Pin(("alpha",), "version", "1.0*", 500).matches(PackageRecord("alpha", "1.0-1", "i386", info), "amd64")
    assert Pin(("alpha:i386",), "version", "1.0*", 500).matches(PackageRecord("alpha", "1.0-1", "i386", info), "amd64")
