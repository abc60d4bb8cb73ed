"""The dpkg step order (nuwa.apt.order) judged by apt 2.6's own sequence and by real dpkg.

apt's sequence is captured with ``Debug::pkgDPkgPM`` (apt prints each dpkg call instead of
running it: tools/dpkg_material.apt_steps, and the same option on the host's apt for the
constructed worlds). Every sequence, Nuwa's and apt's, must pass :func:`nuwa.apt.order.validate`
(Pre-Depends configured before the unpack, Depends configured before the configure, nothing
left unconfigured). On the real minbase world both sequences are replayed call by call by the
tree's own dpkg in chroot copies (tests/helpers/oracle.real_dpkg_steps) and the two results
must be the same tree and the same package database.
"""

from __future__ import annotations

import glob
import os
import shutil
from urllib.parse import unquote

import pytest

from debian_tree import copy_tree
from helpers import oracle
from helpers.aptjudge import host_apt, lists_of, make_repo, status_text
from nuwa.apt.order import order, validate
from nuwa.apt.resolver import Request, plan
from nuwa.deb.status import StatusFile
from nuwa.errors import OperationFailedError
from planworld import minbase_material, policy_from_lists, status_of

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


def _names(steps) -> list[tuple[str, list[str]]]:
    """Steps with unpack operands as package names (records or .deb paths)."""
    out = []
    for action, ops in steps:
        if action == "unpack":
            ops = [o.package if hasattr(o, "package") else unquote(os.path.basename(o)).split("_")[0] for o in ops]
        out.append((action, list(ops)))
    return out


def _apt_steps(m, tree: str, tmp: str) -> list[tuple[str, list[str]]]:
    """dpkg_material.apt_steps for a complete material, without its lock (see the fixture):
    apt's dist-upgrade with Debug::pkgDPkgPM (nothing installed), extended_states in ``tmp``."""
    import subprocess
    apt, debs = os.path.join(m.cache_dir(), "apt"), os.path.join(m.cache_dir(), "debs")
    es = os.path.join(tmp, "extended_states")
    open(es, "w").close()
    r = subprocess.run(["apt-get", *m._apt_options(apt, tree, debs, es), "-o", "Debug::pkgDPkgPM=1",
                        "-o", "Dpkg::Use-Pty=0", "--no-download", "-y", "dist-upgrade"],
                       capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert r.returncode == 0, r.stderr[-500:]
    steps = _parse_debug(r.stdout + r.stderr)
    return [(a, [os.path.join(debs, os.path.basename(o)) for o in ops] if a == "unpack" else ops) for a, ops in steps]


def _as_records(steps, p):
    """apt's steps with its .deb operands replaced by the plan's records (for validate)."""
    recs = {r.package: r for r in p.install}
    return [(a, [recs[n] for n in ops] if a == "unpack" else ops) for a, ops in _names(steps)]


# ---- the real minbase world (the libpam-modules Pre-Depends libpam0g case) ----------------------
@pytest.fixture(scope="module")
def minbase():
    m, tree, _ = minbase_material()
    main, sec = m.mirrors()
    policy = policy_from_lists(os.path.join(m.cache_dir(), "apt", "lists"),
                               [(main.rstrip("/"), "bookworm"), (sec.rstrip("/"), "bookworm-security")])
    status = status_of(tree)
    p = plan(policy, status, Request("full-upgrade"))
    return m, tree, status, p


def test_minbase_order_is_valid_and_has_apt_shape(minbase, tmp_path):
    m, tree, status, p = minbase
    steps = order(p, status)
    validate(steps, status)
    apt = _apt_steps(m, tree, str(tmp_path))
    validate(_as_records(apt, p), status)
    mine = _names(steps)
    assert mine[-1] == ("configure-pending", []) and all(a != "configure-pending" for a, _ in mine[:-1])
    assert sorted(n for a, ops in mine if a == "unpack" for n in ops) == \
        sorted(n for a, ops in _names(apt) if a == "unpack" for n in ops)
    flat = [(a, n) for a, ops in mine for n in ops]
    # the case dpkg -i cannot do: libpam0g configured before libpam-modules is unpacked
    assert flat.index(("configure", "libpam0g:amd64")) < flat.index(("unpack", "libpam-modules"))
    # every essential package apt configures early is configured early here too
    apt_conf = {n for a, ops in _names(apt) if a == "configure" for n in ops}
    mine_conf = {n for a, ops in mine if a == "configure" for n in ops}
    assert {"perl-base:amd64", "libpam0g:amd64", "libpam-modules:amd64"} <= apt_conf & mine_conf


def test_minbase_both_orders_replayed_by_real_dpkg_give_the_same_system(minbase, tmp_path):
    m, tree, status, p = minbase
    debs = {unquote(os.path.basename(f)).split("_")[0]: f  # the complete material, read without its lock
            for f in glob.glob(os.path.join(m.cache_dir(), "debs", "*.deb"))}
    mine = [(a, [debs[r.package] for r in ops] if a == "unpack" else list(ops)) for a, ops in order(p, status)]
    apt = _apt_steps(m, tree, str(tmp_path))
    a_root, b_root = str(tmp_path / "apt"), str(tmp_path / "nuwa")
    try:
        copy_tree(tree, a_root)
        copy_tree(tree, b_root)
        oracle.real_dpkg_steps(a_root, apt)
        oracle.real_dpkg_steps(b_root, mine)
        # logs hold times and the call order; dpkg's database is compared as data below;
        # ldconfig's aux-cache records inode numbers and ctimes of the libraries, so it differs
        # between any two copies even for the same sequence
        skip = ("var/log", "var/lib/dpkg", "var/cache/ldconfig/aux-cache")
        assert oracle.diff_snapshots(oracle.snapshot(a_root, skip), oracle.snapshot(b_root, skip)) == {}
        assert oracle.status_paragraphs(a_root) == oracle.status_paragraphs(b_root)
        for q in (("dpkg", "--audit"), ("dpkg-query", "-W")):
            ra, rb = oracle.chroot_query(a_root, *q), oracle.chroot_query(b_root, *q)
            assert (ra.returncode, ra.stdout) == (rb.returncode, rb.stdout), q
    finally:
        shutil.rmtree(a_root, ignore_errors=True)
        shutil.rmtree(b_root, ignore_errors=True)


# ---- constructed worlds: apt's own sequence for the same plan -------------------------------------
def _apt_sequence(run, *request) -> list[tuple[str, list[str]]]:
    return _parse_debug(run("apt-get", "-o", "Debug::pkgDPkgPM=1", "-o", "Dpkg::Use-Pty=0", "-y", *request,
                            stderr=True))


def _parse_debug(out: str) -> list[tuple[str, list[str]]]:
    """The dpkg calls apt printed under Debug::pkgDPkgPM, as (action, operands)."""
    steps = []
    for line in out.splitlines():
        words = line.split()
        if not words or not words[0].endswith("/dpkg"):
            continue
        flags = [w for w in words[1:] if w.startswith("--")]
        ops = [w for w in words[1:] if not w.startswith("--") and not w.isdigit()]
        if "--unpack" in flags:
            steps.append(("unpack", ops))
        elif "--pending" in flags:
            steps.append(("configure-pending", []))
        elif "--configure" in flags:
            steps.append(("configure", ops))
        elif "--purge" in flags or "--remove" in flags:
            steps.append(("purge" if "--purge" in flags else "remove", ops))
    return steps


WORLDS = {
    "predepends-chain-essential": (
        [("p1", "1.0", "all"), ("p2", "1.0", "all", "install", "Pre-Depends: p1\n"),
         ("p3", "1.0", "all", "install", "Pre-Depends: p2\n"), ("ess", "1.0", "all", "install", "Essential: yes\n"),
         ("user", "1.0", "all", "install", "Depends: ess\n")],
        [("p1", "2.0", "all"), ("p2", "2.0", "all", "Pre-Depends: p1 (>= 2.0)\n"),
         ("p3", "2.0", "all", "Pre-Depends: p2 (>= 2.0)\n"), ("ess", "2.0", "all", "Essential: yes\n"),
         ("user", "2.0", "all", "Depends: ess (>= 2.0)\n")],
        ("upgrade",)),
    "conflicts-replaces-swap": (
        [("old-mta", "1.0", "all", "install", "Provides: mta\n"), ("mailer", "1.0", "all", "install", "Depends: mta\n")],
        [("old-mta", "1.0", "all", "Provides: mta\n"),
         ("new-mta", "1.0", "all", "Provides: mta\nConflicts: old-mta, mta\nReplaces: old-mta, mta\n"),
         ("mailer", "1.0", "all", "Depends: mta\n")],
        ("install", "new-mta")),
    "breaks": (
        [("x", "1.0", "all"), ("plugin", "1.0", "all", "install", "Depends: x\n")],
        [("x", "2.0", "all", "Breaks: plugin (<< 2.0)\n"), ("plugin", "2.0", "all", "Depends: x (>= 2.0)\n")],
        ("upgrade",)),
    "new-dependency": (
        [("a", "1.0", "all", "install", "Depends: liba1\n"), ("liba1", "1.0", "all")],
        [("a", "2.0", "all", "Depends: liba2\n"), ("liba2", "2.0", "all", "Pre-Depends: liba1\n"), ("liba1", "1.0", "all")],
        ("upgrade", "--with-new-pkgs")),
}


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_constructed_order_valid_and_equal_to_apt(tmp_path, world):
    status_entries, packages, request = WORLDS[world]
    uri = make_repo(str(tmp_path / "repo"), "stable", packages, {"Origin": "T"})
    run = host_apt(str(tmp_path / "apt"), [f"{uri} stable main"], status_text(status_entries))
    policy = policy_from_lists(lists_of(str(tmp_path / "apt")), [(uri, "stable")])
    status = StatusFile(status_text(status_entries))
    req = Request(request[0], tuple(a for a in request[1:] if not a.startswith("--")))
    p = plan(policy, status, req)
    steps = order(p, status)
    validate(steps, status)
    apt = _apt_sequence(run, *request)
    validate(_as_records(apt, p), status)
    assert _names(steps) == _names(apt)


def test_validate_refuses_an_unpack_before_its_predepends_is_configured(minbase):
    _, _, status, p = minbase
    recs = {r.package: r for r in p.install}
    # what dpkg -i of the update set does: everything unpacked first, libpam0g not configured
    bad = [("unpack", [recs["libpam0g"], recs["libpam-modules-bin"], recs["libpam-modules"]]),
           ("configure-pending", [])]
    with pytest.raises(OperationFailedError, match="libpam-modules pre-depends on libpam0g"):
        validate(bad, status)
