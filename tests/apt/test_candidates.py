"""nuwa.apt.candidates: apt's pkgPolicy rules one by one, on constructed records.

Each rule is cited from apt-pkg/policy.cc; tests/apt/test_policy_vs_apt.py has the same kinds
of cases judged by the real apt.
"""

from __future__ import annotations

import functools

from hypothesis import given
from hypothesis import strategies as st

from helpers.aptjudge import SimplePin, status_text
from nuwa.apt.candidates import (NEVER_PIN, STATUS_RELEASE, PinLike, Policy, is_default_pin, pin_arches,
                                  version_content)
from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.deb.status import StatusFile
from nuwa.deb.version import compare_strings

STABLE = ReleaseInfo(uri="http://m.invalid/debian", suite="stable", component="main", origin="Debian",
                     label="Debian", archive="stable", codename="bookworm")
SECURITY = ReleaseInfo(uri="http://m.invalid/debian-security", suite="stable-security", component="main",
                       origin="Debian", label="Debian-Security", archive="stable-security",
                       codename="bookworm-security")
EXPERIMENTAL = ReleaseInfo(uri="http://m.invalid/debian", suite="experimental", component="main",
                           archive="experimental", not_automatic=True)
BACKPORTS = ReleaseInfo(uri="http://m.invalid/debian", suite="bookworm-backports", component="main",
                        archive="stable-backports", not_automatic=True, but_automatic_upgrades=True)
BAU_ONLY = ReleaseInfo(uri="http://m.invalid/x", suite="x", component="main", but_automatic_upgrades=True)


def rec(name, version, release=STABLE, arch="amd64", **kw):
    return PackageRecord(package=name, version=version, architecture=arch, release=release, **kw)


def cand(policy, name, installed=None, arch="amd64"):
    c = policy.candidate(name, arch, installed)
    return None if c is None else c.version


def test_file_priorities_follow_init_defaults():
    p = Policy()
    assert [p.file_priority(r) for r in (STABLE, EXPERIMENTAL, BACKPORTS, BAU_ONLY, STATUS_RELEASE)] == [
        500, 1, 100, 100, 100]


def test_highest_version_at_the_highest_priority():
    p = Policy(records=[rec("a", "1.0"), rec("a", "1.2"), rec("a", "1.10"), rec("a", "2.0", EXPERIMENTAL)])
    assert cand(p, "a") == "1.10"
    assert cand(p, "a", "1.0") == "1.10"
    assert p.table("a", "amd64", "1.0") == [("2.0", 1), ("1.10", 500), ("1.2", 500), ("1.0", 500)]


def test_not_installed_only_in_not_automatic():
    p = Policy(records=[rec("b", "1.0", EXPERIMENTAL)])
    assert cand(p, "b") == "1.0"  # priority 1 still beats nothing


def test_installed_beats_not_automatic_and_ties_with_but_automatic_upgrades():
    p = Policy(records=[rec("d", "1.1", EXPERIMENTAL), rec("e", "1.1", BACKPORTS), rec("f", "1.1", BAU_ONLY)])
    assert cand(p, "d", "1.0") == "1.0"  # status 100 > 1
    assert cand(p, "e", "1.0") == "1.1"  # 100 == 100: the higher version was seen first
    assert cand(p, "f", "1.0") == "1.1"


def test_no_downgrade_below_1000_and_downgrade_from_1000():
    recs = [rec("a", "1.0"), rec("a", "2.0", EXPERIMENTAL)]
    assert cand(Policy(records=recs), "a", "2.0") == "2.0"
    pin999 = SimplePin("a", "release", "a=stable", 999)
    assert cand(Policy([pin999], records=recs), "a", "2.0") == "2.0"
    pin1000 = SimplePin("a", "release", "a=stable", 1000)
    p = Policy([pin1000], records=recs)
    assert cand(p, "a", "2.0") == "1.0"
    (u,) = p.upgradable([*StatusFile(status_text([("a", "2.0", "amd64")])).entries])
    assert u.downgrade and u.version == "1.0" and u.installed == "2.0"


def test_installed_version_missing_from_every_repository():
    p = Policy(records=[rec("a", "0.9")])
    assert cand(p, "a", "1.0") == "1.0"
    assert p.candidate("a", "amd64", "1.0").release == STATUS_RELEASE
    assert p.candidate_records("a", "amd64", "1.0") == []


def test_status_file_counts_minus_one_for_other_versions():
    p = Policy()
    assert p.table("a", "amd64", "1.0") == [("1.0", 100)]
    assert p.priority(rec("a", "2.0", STATUS_RELEASE), "1.0") == -1


def test_negative_and_zero_priorities_are_never_candidates():
    recs = [rec("a", "1.0"), rec("a", "2.0")]
    assert cand(Policy([SimplePin("a", "version", "2.0", -5)], records=recs), "a") == "1.0"
    assert cand(Policy([SimplePin("a", "version", "*", -5)], records=recs), "a") is None
    assert cand(Policy([SimplePin("a", "version", "2.0", 0)], records=recs), "a") == "1.0"


def test_default_pins_first_match_fixes_a_file_but_never_overrides():
    pins = [SimplePin("*", "release", "a=stable", 200), SimplePin("*", "release", "o=Debian", 700)]
    p = Policy(pins)
    assert p.file_priority(STABLE) == 200 and p.file_priority(SECURITY) == 700
    p = Policy([*pins, SimplePin("*", "release", "a=stable", NEVER_PIN)])
    assert p.file_priority(STABLE) == NEVER_PIN


def test_first_specific_pin_wins_and_never_files_void_it():
    recs = [rec("a", "1.0"), rec("a", "2.0")]
    pins = [SimplePin("a", "version", "1.0", 900), SimplePin("a", "version", "1.*", 50)]
    p = Policy(pins, records=recs)
    assert p.table("a", "amd64") == [("2.0", 500), ("1.0", 900)]
    assert cand(p, "a") == "1.0"
    p = Policy([SimplePin("*", "release", "a=stable", NEVER_PIN), SimplePin("a", "version", "1.0", 900)], records=recs)
    assert cand(p, "a") is None


def test_pins_only_for_their_package():
    p = Policy([SimplePin("a", "version", "1.0", 990)], records=[rec("a", "1.0"), rec("a", "2.0"), rec("b", "1.0"),
                                                                  rec("b", "2.0")])
    assert (cand(p, "a"), cand(p, "b")) == ("1.0", "2.0")


def test_a_pin_without_architecture_binds_the_native_package():
    recs = [rec("m", v, arch=a) for v in ("1.0", "2.0") for a in ("amd64", "i386")]
    p = Policy([SimplePin("m", "version", "1.0", 1001)], archs=("amd64", "i386"), records=recs)
    assert (cand(p, "m", "2.0", "amd64"), cand(p, "m", "2.0", "i386")) == ("1.0", "2.0")
    assert pin_arches(SimplePin("m", "version", "1", 1), "amd64") == {"amd64"}
    assert pin_arches(SimplePin("src:m", "version", "1", 1), "amd64") == {"amd64"}
    assert pin_arches(SimplePin("m:i386 n", "version", "1", 1), "amd64") is None


def test_same_version_from_several_repositories_is_one_version():
    p = Policy(records=[rec("a", "1.1", STABLE), rec("a", "1.1", SECURITY), rec("a", "0:1.1", EXPERIMENTAL)])
    assert p.versions("a", "amd64") == ["1.1"]
    assert {r.release for r in p.candidate_records("a", "amd64", "1.0")} == {STABLE, SECURITY, EXPERIMENTAL}
    assert p.candidate("a", "amd64", "1.0").release == STABLE  # the first of the 500 ones


def test_architectures_all_is_native_and_unconfigured_ones_are_ignored():
    recs = [rec("d", "1.0", arch="all"), rec("d", "1.1", arch="amd64"), rec("x", "1.0", arch="arm64"),
            rec("m", "1.0", arch="i386"), rec("m", "1.1", arch="amd64")]
    p = Policy(archs=("amd64", "i386"), records=recs)
    assert p.versions("d", "all") == p.versions("d", "amd64") == ["1.1", "1.0"]
    assert p.versions("x", "arm64") == []
    assert (cand(p, "m", "0.9", "i386"), cand(p, "m", "0.9", "amd64")) == ("1.0", "1.1")


def test_upgradable_skips_not_installed_and_reports_holds():
    status = status_text([("a", "1.0", "amd64"), ("h", "1.0", "all", "hold"), ("same", "2.0", "amd64")])
    status += "\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.1\n" \
              "Maintainer: T <t@e.org>\nDescription: x\n long\n"
    p = Policy(records=[rec("a", "1.1", SECURITY), rec("h", "2.0", arch="all"), rec("same", "2.0"),
                        rec("gone", "0.2")])
    ups = p.upgradable(StatusFile(status))
    assert [(u.name, u.arch, u.installed, u.version, u.held) for u in ups] == [
        ("a", "amd64", "1.0", "1.1", False), ("h", "amd64", "1.0", "2.0", True)]
    assert ups[0].records == (rec("a", "1.1", SECURITY),)


def test_is_default_pin_forms():
    assert is_default_pin(SimplePin("*", "release", "a=x", 1))
    assert not is_default_pin(SimplePin("a b", "release", "a=x", 1))

    class TuplePin:
        packages, priority = ("*",), 5

        def matches(self, record):
            return True
    assert is_default_pin(TuplePin()) and isinstance(TuplePin(), PinLike)


VERSIONS = st.sampled_from(["0.9", "1.0", "1.0-1", "1.0+b1", "1.1~rc1", "1.1", "2:0.1", "10"])
RELEASES = st.sampled_from([STABLE, SECURITY, EXPERIMENTAL, BACKPORTS])


@given(st.lists(st.tuples(VERSIONS, RELEASES), max_size=8), st.one_of(st.none(), VERSIONS))
def test_candidate_invariants(offers, installed):
    """Without pins: the candidate has the highest priority among the versions that may be
    chosen, is the highest version at that priority, and is never older than the installed."""
    p = Policy(records=[rec("a", v, r) for v, r in offers])
    table = p.table("a", "amd64", installed)
    c = cand(p, "a", installed)
    eligible = [(v, pr) for v, pr in table
                if pr > 0 and (installed is None or compare_strings(v, installed) >= 0)]
    if not eligible:
        assert c is None
        return
    top = max(pr for _, pr in eligible)
    best = max((v for v, pr in eligible if pr == top), key=functools.cmp_to_key(compare_strings))
    assert compare_strings(c, best) == 0
    if installed is not None:
        assert compare_strings(c, installed) >= 0


def test_records_added_after_a_query_are_seen():
    p = Policy(records=[rec("a", "1.0")])
    assert p.versions("a", "amd64") == ["1.0"] and p.versions("b", "amd64") == []
    p.add([rec("a", "2.0"), rec("b", "1.0")])
    assert (cand(p, "a"), cand(p, "b")) == ("2.0", "1.0")
    assert p.upgradable([*StatusFile(status_text([("b", "0.5", "amd64")])).entries], [rec("b", "3.0")])[0].version == "3.0"


def test_version_content_undoes_dpkg_reformatting():
    a = rec("a", "1.0", depends="libc6 (>= 2.36), Foo (= 0:1.0)")
    b = rec("a", "1.0", depends="libc6 (>=2.36),foo (1.0)")
    assert version_content(a) == version_content(b)
    assert version_content(a) != version_content(rec("a", "1.0", depends="libc6"))
    assert version_content(rec("a", "1.0", multi_arch="")) == version_content(rec("a", "1.0", multi_arch="no"))
    assert version_content(rec("a", "1.0", multi_arch="same")) != version_content(rec("a", "1.0"))


def test_installed_stanza_with_other_content_is_its_own_version():
    p = Policy(records=[rec("a", "1.0", depends="c", size=10, installed_size=5),
                        rec("a", "1.0", SECURITY, depends="c", size=10)])
    local = rec("a", "1.0", STATUS_RELEASE, depends="b")
    assert p.table("a", "amd64", installed=local) == [("1.0", 500), ("1.0", 100)]
    assert p.candidate("a", "amd64", installed=local).release == STABLE
    same = rec("a", "1.0", STATUS_RELEASE, depends="c", installed_size=5)
    assert p.table("a", "amd64", installed=same) == [("1.0", 500)]
    # a different download size is another version too; the status file has none
    p.add([rec("a", "1.0", EXPERIMENTAL, depends="c", size=11)])
    assert [v for v, _ in p.table("a", "amd64", installed=same)] == ["1.0", "1.0"]


def test_providers_are_indexed_as_records_are_added():
    """Policy.providers: every record of the policy's architectures whose Provides names the
    virtual package (versions and ``:arch`` qualifiers aside), one entry per record, also for
    records added later; records of other architectures are not indexed."""
    p = Policy((), ("amd64",), "amd64", [
        rec("mawk", "1.3", provides="awk"),
        rec("gawk", "5.2", arch="all", provides="awk (= 1:5.2), gawk-doc:any"),
        rec("armawk", "1.0", arch="arm64", provides="awk")])
    assert sorted(p.providers("awk")) == [("gawk", "amd64"), ("mawk", "amd64")]
    assert p.providers("gawk-doc") == [("gawk", "amd64")]
    assert p.providers("nothing") == []
    p.add([rec("mawk", "1.4", provides="awk")])
    assert sorted(p.providers("awk")) == [("gawk", "amd64"), ("mawk", "amd64"), ("mawk", "amd64")]
