"""``apt install ./a.deb ./b.deb`` (nuwa.apt.resolver with local records) judged by the host's apt.

Each world is a constructed ``file:`` repository, a dpkg status and .deb files built by
``dpkg-deb``. The host's apt 2.6 (``apt-get -s install ./FILE...``) and Nuwa's planner
(:func:`nuwa.apt.records.deb_record`, ``Request("install", local=...)``) read the same files;
the packages and versions of apt's ``Inst`` lines must be Nuwa's plan, an apt refusal must be a
:class:`PlanError` naming the same unmet dependency, and apt's summary lines ("N upgraded...",
"Need to get", "After this operation", from ``apt-get --assume-no install``) must be the lines
:func:`nuwa.patch.upgrade.plan_lines` prints. The files are given in several orders.
"""

from __future__ import annotations

import itertools
import os
import re

import pytest

from helpers.aptjudge import host_apt, lists_of, make_repo, parse_simulation, status_text
from helpers.debtools import build_deb
from nuwa.apt.order import order, validate
from nuwa.apt.records import deb_record, is_local
from nuwa.apt.resolver import PlanError, Request, plan
from nuwa.deb.archive import open_deb
from nuwa.deb.status import StatusFile
from nuwa.patch.upgrade import UpgradeRequest, plan_document, plan_lines
from planworld import policy_from_lists

pytestmark = [pytest.mark.judge]

# name: (installed (name, version, arch[, want, extra]), repository packages, local files
#        (name, version, extra control), what apt must say when it refuses, or None)
WORLDS = {
    "two-files-one-needs-the-other": (
        [("liba", "1.0", "all", "install", "Installed-Size: 3\n")],
        [("liba", "1.5", "all")],
        [("app", "2.0", "Depends: liba (>= 2.0)\nInstalled-Size: 40\n"), ("liba", "2.0", "Installed-Size: 5\n")],
        None),
    "missing-dependency-from-the-repository": (
        [],
        [("libdep", "1.0", "all", "Installed-Size: 9\n"), ("unrelated", "1.0", "all")],
        [("tool", "1.0", "Depends: libdep\nInstalled-Size: 12\n")],
        None),
    "recommends-of-a-new-package": (
        [],
        [("helper", "1.0", "all", "Installed-Size: 2\n")],
        [("main", "1.0", "Recommends: helper\n")],
        None),
    "pre-depends-chain": (
        [("libx", "1.0", "all"), ("x-bin", "1.0", "all", "install", "Pre-Depends: libx\n")],
        [],
        [("x-bin", "2.0", "Pre-Depends: libx (>= 2.0)\n"), ("libx", "2.0", "Installed-Size: 4\n")],
        None),
    "local-file-wins-over-a-newer-repository-version": (
        [("pkg", "1.0", "all")],
        [("pkg", "3.0", "all")],
        [("pkg", "2.0", "")],
        None),
    # removing libm would break an essential package, keeping it leaves it broken: apt refuses
    # at once (Nuwa's resolver went round in this circle until session 8)
    "a-circle-through-an-essential-package": (
        [("libm-bin", "1.0", "all"), ("libm", "1.0", "all", "install", "Pre-Depends: libm-bin (= 1.0)\n"),
         ("login", "1.0", "all", "install", "Essential: yes\nPre-Depends: libm\n")],
        [("libm-bin", "1.0", "all"), ("libm", "1.0", "all", "Pre-Depends: libm-bin (= 1.0)\n"),
         ("login", "1.0", "all", "Essential: yes\nPre-Depends: libm\n")],
        [("libm-bin", "2.0", "")],
        "login : PreDepends: libm but it is not going to be installed"),
    "unsatisfiable": (
        [],
        [("other", "1.0", "all")],
        [("needy", "1.0", "Depends: not-there (>= 1)\n")],
        "needy : Depends: not-there (>= 1) but it is not installable"),
}


def _world(tmp_path, name):
    installed, repo, files, refusal = WORLDS[name]
    uri = make_repo(str(tmp_path / "repo"), "stable", repo or [("placeholder", "1.0", "all")], {"Origin": "T"})
    run = host_apt(str(tmp_path / "apt"), [f"{uri} stable main"], status_text(installed))
    d = tmp_path / "debs"
    d.mkdir()
    debs = [build_deb(str(d), n, v, {f"/usr/share/doc/{n}/local": v.encode()}, extra=extra) for n, v, extra in files]
    policy = policy_from_lists(lists_of(str(tmp_path / "apt")), [(uri, "stable")])
    return run, debs, policy, StatusFile(status_text(installed)), refusal


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_local_files_planned_as_apt_plans_them(tmp_path, name):
    run, debs, policy, status, refusal = _world(tmp_path, name)
    for given in itertools.islice(itertools.permutations(debs), 3):
        local = tuple(deb_record(open_deb(p)) for p in given)
        if refusal is not None:
            out = run("apt-get", "-s", "install", *given, stderr=True, check=False)
            assert refusal in out, out
            with pytest.raises(PlanError, match=re.escape(refusal)):
                plan(policy, status, Request("install", (), local))
            continue
        inst, _ = parse_simulation(run("apt-get", "-s", "install", *given))
        p = plan(policy, status, Request("install", (), local))
        assert {(r.package, r.version) for r in p.install} == {(n, v) for (n, _), v in inst.items()}
        assert all(is_local(r) for r in p.install if r.filename in given)
        steps = order(p, status)
        validate(steps, status)
        # apt's summary and sizes (it prints them before asking; --assume-no answers no)
        text = run("apt-get", "--assume-no", "install", *given, stderr=True, check=False)
        apt_lines = [line for line in text.splitlines()
                     if re.match(r"^(\d+ upgraded|Need to get|After this operation)", line)]
        doc = plan_document(p, UpgradeRequest("install"), status, [(s.action, list(s.operands)) for s in steps])
        ours = [line for line in plan_lines(doc) if re.match(r"^(\d+ upgraded|Need to get|After this operation)", line)]
        assert ours == apt_lines, (ours, apt_lines)


def test_same_version_as_installed_is_not_reinstalled(tmp_path):
    run, debs, policy, status, _ = _world(tmp_path, "local-file-wins-over-a-newer-repository-version")
    same = build_deb(str(tmp_path / "debs"), "pkg", "1.0", {"/usr/share/doc/pkg/x": b"1"}, extra="")
    os.rename(same, str(tmp_path / "pkg_1.0_all.deb"))
    path = str(tmp_path / "pkg_1.0_all.deb")
    out = run("apt-get", "-s", "install", path, stderr=True)
    assert "pkg is already the newest version (1.0)" in out and "Inst " not in out
    p = plan(policy, status, Request("install", (), (deb_record(open_deb(path)),)))
    assert p.install == [] and p.already_installed == ["pkg"]
