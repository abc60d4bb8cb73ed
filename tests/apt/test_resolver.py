"""nuwa.apt.resolver on small in-memory worlds: the rules one at a time, and the refusals
apt makes (apt-get's own verdicts on the same kinds of worlds are in test_plan_vs_apt.py)."""

from __future__ import annotations

import pytest

from nuwa.apt.candidates import Policy
from nuwa.apt.order import order, validate
from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.apt.resolver import PlanError, Request, plan
from nuwa.deb.status import StatusFile
from nuwa.errors import InvalidInputError

REL = ReleaseInfo(uri="file:/r", suite="stable", component="main", archive="stable", codename="stable")


def rec(name, version, **kw):
    return PackageRecord(package=name, version=version, architecture=kw.pop("arch", "all"), release=REL, **kw)


def status(*entries):
    """(name, version, extra fields text[, want])."""
    out = []
    for e in entries:
        name, version = e[:2]
        extra = e[2] if len(e) > 2 else ""
        want = e[3] if len(e) > 3 else "install"
        out.append(f"Package: {name}\nStatus: {want} ok installed\nArchitecture: all\n{extra}Version: {version}\n"
                   "Maintainer: T <t@example.org>\nDescription: t\n")
    return StatusFile("\n".join(out))


def world(records):
    return Policy(archs=("amd64",), records=records)


def test_upgrade_pulls_a_new_dependency_and_marks_it_auto():
    st = status(("a", "1", "Depends: l1\n"), ("l1", "1"))
    p = plan(world([rec("a", "2", depends="l2 (>= 2)"), rec("l2", "2"), rec("l1", "1")]), st, "upgrade")
    assert p.versions() == {"a": "2", "l2": "2"} and p.new == ["l2"] and p.auto == ["l2"]
    assert p.upgrades == {"a": ("1", "2")}


def test_upgrade_keeps_back_what_needs_a_removal_full_upgrade_removes():
    st = status(("b", "1"), ("c", "1", "Depends: b (= 1)\n"))
    pol = world([rec("b", "2"), rec("c", "1", depends="b (= 1)")])
    up = plan(pol, st, "upgrade")
    assert up.install == [] and "b" in up.kept_back and "would break c" in up.kept_back["b"]
    full = plan(pol, st, "full-upgrade")
    assert full.versions() == {"b": "2"} and full.remove == ["c"]


def test_held_package_is_kept_back_with_apt_reason():
    p = plan(world([rec("h", "2")]), status(("h", "1", "", "hold")), "upgrade")
    assert p.install == [] and p.kept_back == {"h": "held"}


def test_breaks_upgrades_the_broken_package_with_it():
    st = status(("x", "1"), ("plug", "1", "Depends: x\n"))
    p = plan(world([rec("x", "2", breaks="plug (<< 2)"), rec("plug", "2", depends="x (>= 2)")]), st, "upgrade")
    assert p.versions() == {"x": "2", "plug": "2"}


def test_install_alternatives_prefer_installed_versioned_provides_and_recommends():
    pol = world([rec("app", "1", depends="ia | ib, v (>= 2)", recommends="extra"), rec("ia", "1"), rec("ib", "1"),
                 rec("old", "1", provides="v (= 1)"), rec("new", "1", provides="v (= 2)"), rec("extra", "1")])
    p = plan(pol, status(), Request("install", ("app",)))
    assert sorted(p.new) == ["app", "extra", "ia", "new"] and "app" not in p.auto
    p = plan(pol, status(("ib", "1")), Request("install", ("app",)))
    assert "ia" not in p.new and "ib" not in p.versions()


def test_recommends_of_an_upgrade_only_when_new():
    st = status(("a", "1", "Recommends: r1\n"))
    pol = world([rec("a", "2", recommends="r1, r2"), rec("r1", "1"), rec("r2", "1")])
    assert plan(pol, st, "upgrade").new == ["r2"]


def test_conflicts_swap_on_install_removes_the_other():
    st = status(("old", "1", "Provides: mta\n"), ("m", "1", "Depends: mta\n"))
    pol = world([rec("old", "1", provides="mta"), rec("m", "1", depends="mta"),
                 rec("new", "1", provides="mta", conflicts="old, mta", replaces="old, mta")])
    p = plan(pol, st, Request("install", ("new",)))
    assert p.remove == ["old"] and p.new == ["new"]
    steps = order(p, st)
    validate(steps, st)
    assert [s.action for s in steps] == ["remove", "unpack", "configure-pending"]


@pytest.mark.parametrize("spec,msg", [
    ("nope", "Unable to locate package nope"),
    ("a=9", "Version '9' for 'a' was not found"),
    ("a/unstable", "Release 'unstable' for 'a' was not found"),
    ("bad", "bad : Depends: missing but it is not installable"),
])
def test_unsatisfiable_install_requests(spec, msg):
    pol = world([rec("a", "1"), rec("bad", "1", depends="missing")])
    with pytest.raises(PlanError, match=msg.replace("(", r"\(")) as e:
        plan(pol, status(), Request("install", (spec,)))
    assert isinstance(e.value, InvalidInputError) and "\n" not in str(e.value)


def test_install_version_and_suite_forms():
    pol = world([rec("a", "1"), rec("a", "2")])
    assert plan(pol, status(), Request("install", ("a=1",))).versions() == {"a": "1"}
    assert plan(pol, status(), Request("install", ("a/stable",))).versions() == {"a": "2"}
    assert plan(world([rec("p", "1", provides="virt")]), status(), Request("install", ("virt",))).new == ["p"]


def test_remove_cascades_and_refuses_essential():
    st = status(("lib", "1"), ("app", "1", "Depends: lib\n"), ("ess", "1", "Essential: yes\n"),
                ("needs-ess", "1", "Depends: ess\n"))
    pol = world([rec("lib", "1"), rec("app", "1", depends="lib")])
    p = plan(pol, st, Request("purge", ("lib",)))
    assert sorted(p.remove) == ["app", "lib"] and p.purge
    with pytest.raises(PlanError, match="essential"):
        plan(pol, st, Request("remove", ("ess",)))


def test_upgrade_by_source_package_takes_the_sibling_binary():
    st = status(("libx", "1", "Source: x\n"), ("x-tool", "1", "Source: x\n"))
    pol = world([rec("libx", "2", source="x"), rec("x-tool", "2", source="x"), rec("y", "1", depends="libx (>= 2)")])
    p = plan(pol, st, Request("install", ("y",)))
    assert p.versions() == {"y": "1", "libx": "2", "x-tool": "2"}


def test_order_predepends_chain_configures_before_unpack():
    st = status(("p1", "1"), ("p2", "1", "Pre-Depends: p1\n"))
    pol = world([rec("p1", "2"), rec("p2", "2", pre_depends="p1 (>= 2)")])
    p = plan(pol, st, "upgrade")
    steps = [tuple(s) for s in order(p, st)]
    validate(order(p, st), st)
    names = [(a, [o.package if hasattr(o, "package") else o for o in ops]) for a, ops in steps]
    assert names == [("unpack", ["p1"]), ("configure", ["p1:all"]), ("unpack", ["p2"]), ("configure-pending", [])]


def test_a_repair_that_goes_round_in_circles_is_refused_at_once():
    # apt install ./libpam-modules-bin_2.deb alone: libpam-modules pre-depends on the installed
    # version, removing it would break an essential package, keeping it breaks it again
    st = status(("libpam-modules-bin", "1"), ("libpam-modules", "1", "Pre-Depends: libpam-modules-bin (= 1)\n"),
                ("login", "1", "Essential: yes\nPre-Depends: libpam-modules\n"))
    pol = world([rec("libpam-modules-bin", "1"), rec("libpam-modules", "1", pre_depends="libpam-modules-bin (= 1)"),
                 rec("login", "1", pre_depends="libpam-modules", essential=True)])
    with pytest.raises(PlanError) as e:
        plan(pol, st, Request("install", (), local=(rec("libpam-modules-bin", "2"),)))
    # apt's words (judged by the host's apt in tests/apt/test_localdebs_vs_apt.py)
    assert str(e.value) == "Unable to correct problems: login : PreDepends: libpam-modules but it is not going to be installed"
