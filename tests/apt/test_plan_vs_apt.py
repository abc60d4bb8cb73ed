"""Nuwa's plan (nuwa.apt.resolver) judged by the real apt's simulation.

``apt-get -s upgrade --with-new-pkgs``, ``apt-get -s full-upgrade`` and ``apt-get -s install
X`` print one ``Inst`` line per package to unpack and one ``Remv`` line per removal; Nuwa's plan
must name exactly the same packages and versions. Worlds: the real bookworm server tree with
bookworm, -updates and -security (tests/helpers/aptjudge.judge_chroot), the outdated minbase tree
of tools/dpkg_material (the 15 pending updates), the Debian 13 trixie minbase tree of the same
material with trixie-updates and -security, judged by its own apt 3.0 in a chroot
(planworld.trixie_chroot), and constructed ``file:`` repositories judged by
the host's apt (new dependency, hold, Breaks, Conflicts/Replaces swap, alternatives, versioned
Provides, Recommends, Pre-Depends chain, kept back).
"""

from __future__ import annotations

import glob
import os
from urllib.parse import unquote

import pytest

from helpers.aptjudge import chroot_apt, host_apt, judge_chroot, lists_of, make_repo, status_text
from nuwa.apt.resolver import Request, plan
from nuwa.deb.status import StatusFile
from planworld import auto_of, minbase_material, parse_sim, policy_from_lists, status_of, trixie_chroot

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


def _compare(p, sim: str):
    inst, remv = parse_sim(sim)
    assert p.versions() == inst
    assert set(p.remove) == remv


# ---- the real bookworm server world ------------------------------------------------------------
def _chroot_sources(root: str) -> list[tuple[str, str]]:
    out = []
    for line in open(os.path.join(root, "etc/apt/sources.list")):
        w = line.split()
        if w and w[0] == "deb":
            out.append((w[1].rstrip("/"), w[2]))
    return out


@pytest.fixture(scope="module")
def server():
    root = judge_chroot()
    policy = policy_from_lists(os.path.join(root, "var/lib/apt/lists"), _chroot_sources(root))
    return root, policy, status_of(root), auto_of(os.path.join(root, "var/lib/apt/extended_states"))


@pytest.mark.parametrize("action,args", [("upgrade", ("upgrade", "--with-new-pkgs")),
                                         ("full-upgrade", ("full-upgrade",))])
def test_server_upgrade_matches_apt(server, action, args):
    root, policy, status, auto = server
    p = plan(policy, status, Request(action), auto)
    sim = chroot_apt(root, "apt-get", "-s", *args)
    assert "Inst " in sim, "apt plans nothing: the judge would prove nothing"
    _compare(p, sim)


@pytest.mark.parametrize("names", [("nginx",), ("sudo",), ("python3",), ("apache2",), ("postfix",)])
def test_server_install_matches_apt(server, names):
    root, policy, status, auto = server
    p = plan(policy, status, Request("install", names), auto)
    sim = chroot_apt(root, "apt-get", "-s", "install", *names)
    _compare(p, sim)
    assert set(names) <= {r.package for r in p.install}


# ---- the minbase world of the dpkg material -----------------------------------------------------
def test_minbase_full_upgrade_matches_apt():
    m, tree, debs_dir = minbase_material()
    main, sec = m.mirrors()
    lists = os.path.join(m.cache_dir(), "apt", "lists")
    policy = policy_from_lists(lists, [(main.rstrip("/"), "bookworm"), (sec.rstrip("/"), "bookworm-security")])
    p = plan(policy, status_of(tree), Request("full-upgrade"))
    # the material holds exactly the .debs apt's dist-upgrade fetched: name_version_arch.deb
    debs = {tuple(unquote(os.path.basename(f)).split("_")[:2]) for f in glob.glob(os.path.join(debs_dir, "*.deb"))}
    assert {(r.package, r.version) for r in p.install} == debs and len(debs) >= 10


# ---- the trixie minbase world (Debian 13, its own apt in a chroot) ------------------------------
@pytest.fixture(scope="module")
def trixie(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    gen = trixie_chroot(str(tmp_path_factory.mktemp("trixie")))
    root, sources = next(gen)
    policy = policy_from_lists(os.path.join(root, "var/lib/apt/lists"), sources)
    yield root, policy, status_of(root), auto_of(os.path.join(root, "var/lib/apt/extended_states"))
    gen.close()


@pytest.mark.parametrize("action,args", [("upgrade", ("upgrade", "--with-new-pkgs")),
                                         ("full-upgrade", ("full-upgrade",))])
def test_trixie_upgrade_matches_apt(trixie, action, args):
    root, policy, status, auto = trixie
    p = plan(policy, status, Request(action), auto)
    sim = chroot_apt(root, "apt-get", "-s", *args)
    assert "Inst " in sim, ("apt plans nothing for the trixie minbase tree (assumption: trixie-updates or "
                            "trixie-security hold a newer version of one of its packages): the judge would prove nothing")
    _compare(p, sim)


@pytest.mark.parametrize("names", [("sudo",), ("openssh-server",), ("python3",), ("nginx",), ("cron", "rsyslog")])
def test_trixie_install_matches_apt(trixie, names):
    root, policy, status, auto = trixie
    p = plan(policy, status, Request("install", names), auto)
    sim = chroot_apt(root, "apt-get", "-s", "install", *names)
    _compare(p, sim)
    assert set(names) <= {r.package for r in p.install}


# ---- constructed worlds ------------------------------------------------------------------------
def _world(tmp_path, status, packages, **kw):
    uri = make_repo(str(tmp_path / "repo"), "stable", packages, {"Origin": "T", "Label": "T"})
    run = host_apt(str(tmp_path / "apt"), [f"{uri} stable main"], status_text(status), **kw)
    policy = policy_from_lists(lists_of(str(tmp_path / "apt")), [(uri, "stable")])
    return run, policy, StatusFile(status_text(status))


def _check(run, policy, status, request: Request, *apt_args):
    p = plan(policy, status, request)
    _compare(p, run("apt-get", "-s", *apt_args))
    return p


UPGRADE_STATUS = [
    ("a", "1.0", "all", "install", "Depends: liba1\n"), ("liba1", "1.0", "all"),
    ("h", "1.0", "all", "hold"), ("b", "1.0", "all"), ("c", "1.0", "all", "install", "Depends: b (= 1.0)\n"),
    ("x", "1.0", "all"), ("plugin", "1.0", "all", "install", "Depends: x\n"),
    ("old", "1.0", "all", "install", "Depends: gone\n"), ("gone", "1.0", "all"),
]
UPGRADE_REPO = [
    ("a", "2.0", "all", "Depends: liba2\n"), ("liba2", "2.0", "all"), ("liba1", "1.0", "all"),
    ("h", "2.0", "all"), ("b", "2.0", "all"), ("c", "1.0", "all", "Depends: b (= 1.0)\n"),
    ("x", "2.0", "all", "Breaks: plugin (<< 2.0)\n"), ("plugin", "2.0", "all", "Depends: x (>= 2.0)\n"),
    ("gone", "2.0", "all", "Conflicts: old\n"),
]


def test_constructed_upgrade_new_dependency_hold_kept_back(tmp_path):
    run, policy, status = _world(tmp_path, UPGRADE_STATUS, UPGRADE_REPO)
    p = _check(run, policy, status, Request("upgrade"), "upgrade", "--with-new-pkgs")
    assert p.new == ["liba2"] and "liba2" in p.auto
    assert {"h", "b", "gone"} <= set(p.kept_back) and p.kept_back["h"] == "held"
    assert p.versions()["x"] == "2.0" and p.versions()["plugin"] == "2.0"


def test_constructed_full_upgrade_removes(tmp_path):
    run, policy, status = _world(tmp_path, UPGRADE_STATUS, UPGRADE_REPO)
    _check(run, policy, status, Request("full-upgrade"), "full-upgrade")


SWAP_STATUS = [("old-mta", "1.0", "all", "install", "Provides: mta\n"),
               ("mailer", "1.0", "all", "install", "Depends: mta\n")]
SWAP_REPO = [("old-mta", "1.0", "all", "Provides: mta\n"),
             ("new-mta", "1.0", "all", "Provides: mta\nConflicts: old-mta, mta\nReplaces: old-mta, mta\n"),
             ("mailer", "1.0", "all", "Depends: mta\n")]


def test_constructed_conflicts_replaces_swap(tmp_path):
    run, policy, status = _world(tmp_path, SWAP_STATUS, SWAP_REPO)
    p = _check(run, policy, status, Request("install", ("new-mta",)), "install", "new-mta")
    assert p.remove == ["old-mta"] and p.new == ["new-mta"]


ALT_REPO = [("app", "1.0", "all", "Depends: impl-a | impl-b, vfoo (>= 2)\nRecommends: extra\n"),
            ("impl-a", "1.0", "all"), ("impl-b", "1.0", "all"), ("extra", "1.0", "all"),
            ("pfoo-old", "1.0", "all", "Provides: vfoo (= 1.0)\n"), ("pfoo", "1.0", "all", "Provides: vfoo (= 2.0)\n"),
            ("tool", "1.0", "all", "Depends: impl-a | impl-b\n")]


@pytest.mark.parametrize("installed", [[], [("impl-b", "1.0", "all")]])
def test_constructed_alternatives_provides_recommends(tmp_path, installed):
    run, policy, status = _world(tmp_path, installed, ALT_REPO)
    p = _check(run, policy, status, Request("install", ("app",)), "install", "app")
    assert "extra" in p.new and "pfoo" in p.new and "pfoo-old" not in p.new
    assert ("impl-a" in p.new) == (not installed)
    assert set(p.auto) == set(p.new) - {"app"}


PRED_STATUS = [("p1", "1.0", "all"), ("p2", "1.0", "all", "install", "Pre-Depends: p1\n"),
               ("p3", "1.0", "all", "install", "Pre-Depends: p2\n"), ("ess", "1.0", "all", "install", "Essential: yes\n"),
               ("user", "1.0", "all", "install", "Depends: ess\n")]
PRED_REPO = [("p1", "2.0", "all"), ("p2", "2.0", "all", "Pre-Depends: p1 (>= 2.0)\n"),
             ("p3", "2.0", "all", "Pre-Depends: p2 (>= 2.0)\n"), ("ess", "2.0", "all", "Essential: yes\n"),
             ("user", "2.0", "all", "Depends: ess (>= 2.0)\n")]


def test_constructed_predepends_chain_and_essential(tmp_path):
    run, policy, status = _world(tmp_path, PRED_STATUS, PRED_REPO)
    p = _check(run, policy, status, Request("upgrade"), "upgrade", "--with-new-pkgs")
    assert len(p.install) == 5
    _check(run, policy, status, Request("remove", ("user",)), "remove", "user")
    _check(run, policy, status, Request("remove", ("p1",)), "remove", "p1")
