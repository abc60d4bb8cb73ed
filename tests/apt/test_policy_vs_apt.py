"""Nuwa's candidate policy and security classification judged by the real apt.

Part 1: a real Debian 12 server tree (main only, so updates exist) with bookworm,
bookworm-updates and bookworm-security from the machine's mirrors, after ``apt-get update`` in
a chroot (tests/helpers/aptjudge.py). Nuwa reads the chroot's own lists and dpkg status; the
upgradable set, every installed package's candidate and version table, and the security
classification must equal apt's (``apt list --upgradable``, ``apt-get -s upgrade``,
``apt-cache policy``).

Part 2: constructed worlds (``file:`` repositories made from .debs, a dpkg status file, pins),
judged by the host's apt confined to a work directory: NotAutomatic, ButAutomaticUpgrades,
release/origin/version pins, a >= 1000 downgrade, negative and never pins, a hold, and
Multi-Arch same/foreign/all packages with a foreign architecture.
"""

from __future__ import annotations

import fnmatch
import os

import pytest

from helpers.aptjudge import (SimplePin, chroot_apt, host_apt, judge_chroot, make_repo, parse_apt_list,
                              parse_policy, parse_policy_files, parse_simulation, records_from_lists,
                              status_text)
from nuwa.apt.candidates import NEVER_PIN, Policy
from nuwa.apt.security import any_security, distro_from_os_release
from nuwa.deb.status import StatusFile

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


def _sources(root: str) -> list[tuple[str, str, str]]:
    out = []
    with open(os.path.join(root, "etc/apt/sources.list")) as f:
        for line in f:
            w = line.split()
            if w and w[0] == "deb":
                out += [(w[1], w[2], c) for c in w[3:]]
    return out


def _file_desc(rec) -> str:
    """How apt-cache policy names the index a record came from."""
    arch = "amd64"
    return f"{rec.release.uri} {rec.release.suite}/{rec.release.component} {arch} Packages"


@pytest.fixture(scope="module")
def world():
    """(chroot, policy, status, records) of the real bookworm world."""
    root = judge_chroot()
    records = records_from_lists(os.path.join(root, "var/lib/apt/lists"), _sources(root), ("amd64",))
    with open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8") as f:
        status = StatusFile(f.read())
    return root, Policy(archs=("amd64",), records=records), status, records


def test_bookworm_upgradable_matches_apt_list_and_upgrade(world):
    root, policy, status, _ = world
    ups = policy.upgradable(status)
    mine = {(u.name, u.candidate.architecture): (u.version, u.installed,
                                                 frozenset(r.release.archive for r in u.records)) for u in ups}
    apt = parse_apt_list(chroot_apt(root, "apt", "list", "--upgradable"))
    assert apt, "apt lists no upgradable package: the judge would prove nothing"
    assert mine == apt
    inst, kept = parse_simulation(chroot_apt(root, "apt-get", "-s", "upgrade"))
    assert {n for n, _ in inst} | kept == {u.name for u in ups}
    assert {(n, v) for (n, _), v in inst.items()} == {(u.name, u.version) for u in ups if u.name not in kept}
    assert {u.name for u in ups if u.held} <= kept


def test_bookworm_every_candidate_and_version_table_matches_apt_cache_policy(world):
    root, policy, status, _ = world
    entries = [e for e in status.entries if e.status not in ("not-installed", "config-files")]
    apt = parse_policy(chroot_apt(root, "apt-cache", "policy", *[e.name for e in entries]))
    assert len(apt) == len(entries)
    for e in entries:
        a = apt[e.name]
        assert a["installed"] == e.version
        cand = policy.candidate(e.name, e.arch, e.version)
        assert (cand.version if cand else None) == a["candidate"], e.name
        assert policy.table(e.name, e.arch, e.version) == [(v, p) for v, p, _ in a["table"]], e.name
        # the repositories offering the candidate, as apt lists them under it
        files = next(fs for v, _, fs in a["table"] if v == a["candidate"])
        mine = {_file_desc(r) for r in policy.candidate_records(e.name, e.arch, e.version)}
        assert mine == {d for _, d in files if d != "/var/lib/dpkg/status"}, e.name


REAL_PINS = [
    SimplePin("*", "release", "l=Debian-Security", 50),  # security below the installed versions' 500
    SimplePin("libssl3 openssl", "release", "n=bookworm-security", 990),  # ... except these
    SimplePin("openssh-server openssh-client openssh-sftp-server", "release", "n=bookworm-updates", 1001),
    SimplePin("tzdata", "version", "2026*", 600),
]


def test_bookworm_with_pins_matches_apt(world, tmp_path):
    """The real world under preferences (a default release pin, specific release pins, a
    downgrade pin at 1001, a version glob), apt reading them with Dir::Etc::Preferences."""
    root, _, status, records = world
    pref = os.path.join("/tmp", f"nuwa-policy-{os.getpid()}-{tmp_path.name}.pref")
    with open(os.path.join(root, pref.lstrip("/")), "w") as f:
        f.write("".join(p.stanza() for p in REAL_PINS))
    try:
        def run(*args):
            return chroot_apt(root, args[0], "-o", f"Dir::Etc::Preferences={pref}", *args[1:])
        policy = Policy(pins=REAL_PINS, archs=("amd64",), records=records)
        entries = [e for e in status.entries if e.status not in ("not-installed", "config-files")]
        apt = parse_policy(run("apt-cache", "policy", *[e.name for e in entries]))
        for e in entries:
            cand = policy.candidate(e.name, e.arch, e.version)
            assert (cand.version if cand else None) == apt[e.name]["candidate"], e.name
            assert policy.table(e.name, e.arch, e.version) == [(v, p) for v, p, _ in apt[e.name]["table"]], e.name
        ups = policy.upgradable(status)
        listed = parse_apt_list(run("apt", "list", "--upgradable"))
        assert {(u.name, u.candidate.architecture): (u.version, u.installed) for u in ups if not u.downgrade} == {
            k: v[:2] for k, v in listed.items()}
        inst, kept = parse_simulation(run("apt-get", "-s", "upgrade"))
        assert {n for n, _ in inst} | kept == {u.name for u in ups}
        assert {(n, v) for (n, _), v in inst.items()} == {(u.name, u.version) for u in ups if u.name not in kept}
    finally:
        os.unlink(os.path.join(root, pref.lstrip("/")))


def _uu_security(fields: dict[str, str], codename: str) -> bool:
    """unattended-upgrades' Debian default security lines, evaluated on apt's release keys."""
    lines = [{"o": "Debian", "n": f"{codename}-security", "l": "Debian-Security"},
             {"o": "Debian", "n": codename, "l": "Debian-Security"}]
    return any(all(fnmatch.fnmatchcase(fields.get(k, ""), v) for k, v in line.items()) for line in lines)


def test_bookworm_security_classification_matches_apt_cache_policy(world):
    root, policy, status, _ = world
    with open(os.path.join(root, "etc/os-release")) as f:  # what lsb_release would say in the tree
        distro_id, codename = distro_from_os_release(f.read())
    assert (distro_id, codename) == ("Debian", "bookworm")
    ups = policy.upgradable(status)
    files = parse_policy_files(chroot_apt(root, "apt-cache", "policy"))
    apt = parse_policy(chroot_apt(root, "apt-cache", "policy", *[u.name for u in ups]))
    seen_security = False
    for u in ups:
        for r in u.records:  # Nuwa's view of each repository equals apt's release line
            rel = files[_file_desc(r)]
            assert (r.release.origin, r.release.label, r.release.archive, r.release.codename, r.release.version) == (
                rel["o"], rel["l"], rel["a"], rel["n"], rel["v"])
        cand_files = next(fs for v, _, fs in apt[u.name]["table"] if v == u.version)
        expected = any(_uu_security(files[d], "bookworm") for _, d in cand_files if d in files)
        assert any_security([r.release for r in u.records], distro_id, codename) == expected, u.name
        seen_security |= expected
    assert seen_security, "no security update pending: the classification is not exercised"


def policy_records(policy, name):
    """Every repository record of ``name`` the policy holds (through its public tables)."""
    return [r for v in policy.versions(name, "amd64") for r in policy.records_of(name, "amd64", v)]


# ---- constructed worlds ----------------------------------------------------------------------
def judge(tmp_path, repos: dict, status: list[tuple], pins=(), archs=("amd64",), options=(), policy_pins=None):
    """Build the repositories, run apt and Nuwa, compare everything; return Nuwa's policy and
    apt's ``apt-cache policy`` results keyed ``name:arch``."""
    root = str(tmp_path / "repo")
    sources = []
    for suite, (pkgs, release) in repos.items():
        uri = make_repo(root, suite, pkgs, release, archs=archs)
        sources.append((uri, suite, "main"))
    prefs = "".join(p.stanza() for p in pins)
    run = host_apt(str(tmp_path / "apt"), [f"{u} {s} {c}" for u, s, c in sources], status_text(status), prefs,
                   archs=archs, options=options)
    records = records_from_lists(str(tmp_path / "apt/lists"), sources, archs)
    policy = Policy(pins=pins if policy_pins is None else policy_pins, archs=archs, records=records)
    sf = StatusFile(status_text(status))
    installed = {(e.name, policy.key(e.name, e.arch)[1]): policy.installed_record(e) for e in sf.entries}
    names = {(r.package, policy.key(r.package, r.architecture)[1]) for r in records} | set(installed)
    apt = parse_policy(run("apt-cache", "policy", *sorted(f"{n}:{a}" for n, a in names)))
    for n, a in names:
        got = apt[n if a == archs[0] else f"{n}:{a}"]  # apt names foreign packages name:arch
        cand = policy.candidate(n, a, installed=installed.get((n, a)))
        assert (cand.version if cand else None) == got["candidate"], (n, a)
        assert policy.table(n, a, installed=installed.get((n, a))) == [(v, p) for v, p, _ in got["table"]], (n, a)
    ups = policy.upgradable(sf)
    listed = parse_apt_list(run("apt", "list", "--upgradable"))
    assert {(u.name, u.candidate.architecture): (u.version, u.installed) for u in ups if not u.downgrade} == {
        k: v[:2] for k, v in listed.items()}
    # apt-get upgrade installs candidates or keeps packages back (holds; a resolver's reasons)
    inst, kept = parse_simulation(run("apt-get", "-s", "upgrade"))
    assert {(n, policy.key(n, a)[1]): v for (n, a), v in inst.items()} == {
        (u.name, u.arch): u.version for u in ups if u.name not in kept}
    assert {n for n, _ in inst} | kept == {u.name for u in ups}
    assert {u.name for u in ups if u.held} <= kept
    return policy, apt, kept


def test_not_automatic_and_but_automatic_upgrades(tmp_path):
    repos = {
        "stable": ([("a", "1.0", "amd64"), ("a", "2.0", "amd64"), ("c", "1.0", "amd64")], {"Origin": "T", "Label": "T"}),
        "experimental": ([("a", "3.0", "amd64"), ("b", "1.0", "amd64"), ("d", "1.1", "amd64")],
                         {"Origin": "T", "NotAutomatic": "yes"}),
        "backports": ([("c", "1.1", "amd64"), ("e", "1.1", "amd64")],
                      {"Origin": "T", "NotAutomatic": "yes", "ButAutomaticUpgrades": "yes"}),
        "bau-only": ([("f", "1.1", "amd64")], {"Origin": "T", "ButAutomaticUpgrades": "yes"}),
    }
    status = [("a", "1.0", "amd64"), ("c", "1.0", "amd64"), ("d", "1.0", "amd64"), ("e", "1.0", "amd64"),
              ("f", "1.0", "amd64")]
    policy, apt, kept = judge(tmp_path, repos, status)
    # what each case shows: a stays in stable; b only in experimental still has a candidate;
    # c stays (backports 100 < stable 500); d keeps the installed one (1 < 100); e and f follow
    # the 100 repository to the higher version
    assert [policy.candidate(n, "amd64", v).version for n, v in
            [("a", "1.0"), ("b", None), ("c", "1.0"), ("d", "1.0"), ("e", "1.0"), ("f", "1.0")]] == [
        "2.0", "1.0", "1.0", "1.0", "1.1", "1.1"]


def test_pins_release_origin_version_downgrade_negative_never(tmp_path):
    repos = {
        "stable": ([("a", "1.0", "amd64"), ("b", "1.0", "amd64"), ("c", "1.0", "amd64"), ("d", "2.0", "amd64"),
                    ("e", "1.0", "amd64"), ("g", "1.0", "amd64")], {"Origin": "Deb", "Label": "Deb"}),
        "testing": ([("a", "2.0", "amd64"), ("b", "2.0", "amd64"), ("c", "2.0", "amd64"), ("e", "2.0", "amd64"),
                     ("f", "1.0", "amd64"), ("g", "2.0", "amd64")], {"Origin": "Other", "Label": "Other"}),
    }
    status = [("a", "1.0", "amd64"), ("b", "1.0", "amd64"), ("c", "1.0", "amd64"), ("d", "2.0", "amd64"),
              ("e", "1.0", "amd64"), ("g", "1.0", "amd64")]
    pins = [
        SimplePin("*", "release", "o=Other", 100),  # testing at the status file's priority
        SimplePin("b", "release", "a=testing", 990),  # b follows testing
        SimplePin("c", "version", "1.0*", 1001),  # c pinned to 1.x
        SimplePin("d", "version", "1.*", 1001),  # nothing matches: no effect
        SimplePin("e", "version", "2.0", -1),  # e's 2.0 can never be the candidate
        SimplePin("*", "origin", '""', 600),  # every file: repository ("" site) not fixed before: stable
        SimplePin("f", "release", "n=testing", -10),
    ]
    policy, _, kept = judge(tmp_path, repos, status, pins)
    assert policy.file_priority(next(r for r in policy_records(policy, "a") if r.release.suite == "stable").release) == 600
    assert policy.candidate("a", "amd64", "1.0").version == "1.0"  # stable 600 beats testing 100
    assert policy.candidate("b", "amd64", "1.0").version == "2.0"  # the package's release pin
    assert policy.candidate("c", "amd64", "1.0").version == "1.0"
    assert policy.candidate("e", "amd64", "1.0").version == "1.0"
    assert policy.candidate("f", "amd64", None) is None


def test_downgrade_only_at_priority_1000(tmp_path):
    repos = {
        "stable": ([("a", "1.0", "amd64"), ("b", "1.0", "amd64")], {"Origin": "Deb"}),
        "newer": ([("a", "2.0", "amd64"), ("b", "2.0", "amd64")], {"Origin": "Deb"}),
    }
    status = [("a", "2.0", "amd64"), ("b", "2.0", "amd64")]
    pins = [SimplePin("a", "release", "a=stable", 1000), SimplePin("b", "release", "a=stable", 999)]
    policy, _, kept = judge(tmp_path, repos, status, pins)
    ups = {u.name: u for u in policy.upgradable(StatusFile(status_text(status)))}
    assert ups["a"].downgrade and ups["a"].version == "1.0"
    assert "b" not in ups


def test_never_pin_and_hold(tmp_path):
    repos = {
        "stable": ([("a", "1.0", "amd64"), ("a", "2.0", "amd64"), ("h", "2.0", "amd64")], {"Origin": "Deb"}),
        "evil": ([("a", "3.0", "amd64"), ("n", "1.0", "amd64")], {"Origin": "Evil"}),
    }
    status = [("a", "1.0", "amd64"), ("h", "1.0", "amd64", "hold")]
    pins = [SimplePin("*", "release", "o=Evil", NEVER_PIN), SimplePin("a", "version", "3.0", 900)]
    policy, _, kept = judge(tmp_path, repos, status, pins)
    assert policy.candidate("a", "amd64", "1.0").version == "2.0"  # the never pin beats the version pin
    assert policy.candidate("n", "amd64", None) is None
    (held,) = [u for u in policy.upgradable(StatusFile(status_text(status))) if u.name == "h"]
    assert held.held and held.version == "2.0" and kept == {"h"}


def test_multi_arch_with_a_foreign_architecture(tmp_path):
    archs = ("amd64", "i386")
    pkgs = [("libm", "1.0", "amd64", "Multi-Arch: same\n"), ("libm", "1.0", "i386", "Multi-Arch: same\n"),
            ("libm", "1.1", "amd64", "Multi-Arch: same\n"), ("libm", "1.1", "i386", "Multi-Arch: same\n"),
            ("tool", "1.0", "amd64", "Multi-Arch: foreign\n"), ("tool", "1.1", "i386", "Multi-Arch: foreign\n"),
            ("data", "1.1", "all", "Multi-Arch: foreign\n"), ("plain", "1.2", "i386"), ("plain", "1.2", "amd64")]
    repos = {"stable": (pkgs, {"Origin": "Deb"})}
    status = [("libm", "1.0", "amd64", "install", "Multi-Arch: same\n"),
              ("libm", "1.0", "i386", "install", "Multi-Arch: same\n"),
              ("tool", "1.0", "i386", "install", "Multi-Arch: foreign\n"),
              ("data", "1.0", "all", "install", "Multi-Arch: foreign\n"),
              ("plain", "1.0", "i386")]
    policy, _, kept = judge(tmp_path, repos, status, archs=archs)
    got = {(u.name, u.arch): u.version for u in policy.upgradable(StatusFile(status_text(status)))}
    assert got == {("libm", "amd64"): "1.1", ("libm", "i386"): "1.1", ("tool", "i386"): "1.1",
                   ("data", "amd64"): "1.1", ("plain", "i386"): "1.2"}


def test_a_pin_without_architecture_binds_the_native_package_only(tmp_path):
    archs = ("amd64", "i386")
    pkgs = [(n, v, a, "Multi-Arch: same\n") for n in ("libm", "libn") for v in ("1.0", "1.1") for a in archs]
    pkgs.append(("data", "1.1", "all"))
    status = [(n, "1.0", a, "install", "Multi-Arch: same\n") for n in ("libm", "libn") for a in archs]
    status.append(("data", "1.0", "all"))
    pins = [SimplePin("libm data", "version", "1.0", 1001), SimplePin("libn", "version", "1.1", -1)]
    policy, _, kept = judge(tmp_path, {"stable": (pkgs, {"Origin": "Deb"})}, status, pins, archs=archs)
    got = {(u.name, u.arch): u.version for u in policy.upgradable(StatusFile(status_text(status)))}
    assert got == {("libm", "i386"): "1.1", ("libn", "i386"): "1.1"}
    # Multi-Arch: same versions move in lockstep: apt's resolver (not its policy) keeps them back
    assert kept == {"libm", "libn"}


def test_default_release_is_a_first_990_release_pin(tmp_path):
    """APT::Default-Release: pkgPolicy's constructor adds a ``Package: *`` release pin of 990
    before the preferences' ones; the caller passes it so (here: the suite name)."""
    repos = {
        "stable": ([("a", "1.0", "amd64"), ("b", "1.0", "amd64")], {"Origin": "Deb", "Suite": "stable",
                                                                  "Codename": "bookworm"}),
        "testing": ([("a", "2.0", "amd64"), ("b", "2.0", "amd64")], {"Origin": "Deb", "Suite": "testing",
                                                                   "Codename": "trixie"}),
    }
    status = [("a", "1.0", "amd64"), ("b", "1.0", "amd64")]
    # the preferences' own stable pin comes too late: the default release fixed stable at 990
    prefs = [SimplePin("*", "release", "a=stable", 100), SimplePin("b", "release", "a=testing", 991)]
    policy, _, _ = judge(tmp_path, repos, status, prefs, options=("APT::Default-Release=stable",),
                         policy_pins=[SimplePin("*", "release", "stable", 990), *prefs])
    assert policy.candidate("a", "amd64", "1.0").version == "1.0"  # stable 990 over testing 500
    assert policy.candidate("b", "amd64", "1.0").version == "2.0"  # the package's 991 pin


def test_one_version_string_with_different_contents_is_several_versions(tmp_path):
    """apt keeps stanzas of one version string apart when their relationship fields
    (VersionHash), their Size or Multi-Arch differ; the status file's has no Size."""
    repos = {
        "stable": ([("a", "1.0", "amd64", "Depends: c\n"), ("b", "1.0", "amd64"), ("c", "1.0", "amd64")],
                   {"Origin": "Deb"}),
        "other": ([("a", "1.0", "amd64"), ("b", "1.0", "amd64", "Recommends: padding\n"),
                   ("c", "1.0", "amd64", "Multi-Arch: foreign\n")], {"Origin": "Deb"}),
    }
    status = [("a", "1.0", "amd64", "install", "Depends: b\n"), ("b", "1.0", "amd64"), ("c", "1.0", "amd64")]
    policy, apt, _ = judge(tmp_path, repos, status)
    assert [len(apt[n]["table"]) for n in "abc"] == [3, 2, 2]
    # the locally different installed a 1.0 is "upgradable" to a repository's a 1.0
    assert [(u.name, u.installed, u.version) for u in policy.upgradable(StatusFile(status_text(status)))] == [
        ("a", "1.0", "1.0")]
