"""Relationship checks dpkg makes itself: Pre-Depends, Conflicts, Breaks, Depends, Replaces.

dpkg checks (``src/main/depcon.c``, ``archives.c`` ``check_conflict``/``check_breaks``,
``unpack.c`` ``pkg_check_depcon``): before unpacking, every ``Pre-Depends`` must be satisfied by
a configured package (or a configured package providing it), nothing installed may conflict
with the new package, and no installed package may be broken by it; before configuring,
every ``Depends`` must be satisfied by a package at least unpacked that is itself being
configured in this run, or configured already.
"""

from __future__ import annotations

from nuwa.deb.control import Dep, Paragraph, parse_relations, satisfies
from nuwa.deb.status import STATE_RANK, PkgEntry
from nuwa.deb.version import compare_strings
from nuwa.errors import OperationFailedError

CONFIGURED = STATE_RANK["triggers-awaited"]


def dep_satisfied(db, dep: Dep, min_rank: int, extra: dict | None = None) -> bool:
    """Is ``dep`` satisfied by a package at state rank >= ``min_rank`` (or in ``extra``)?

    ``extra`` maps package names to versions that count as satisfying (packages being
    unpacked/configured in the same run).
    """
    for e in db.status.find_all(dep.name):
        if STATE_RANK.get(e.status, 0) >= min_rank and satisfies(e.version, dep):
            return True
    if extra and dep.name in extra and satisfies(extra[dep.name], dep):
        return True
    for e in db.status.entries:  # virtual packages
        if STATE_RANK.get(e.status, 0) < min_rank:
            continue
        prov = e.get("Provides")
        if not prov or dep.name not in prov:
            continue
        for alts in e.relations("Provides"):
            for p in alts:
                if p.name == dep.name and (dep.op is None or (p.op == "=" and satisfies(p.version, dep))):
                    return True
    return False


def does_replace(replacer: Paragraph, name: str, version: str, arch: str = "") -> bool:
    """dpkg ``does_replace``: does ``replacer``'s Replaces cover package ``name`` at ``version``?"""
    for alts in parse_relations(replacer.get("Replaces"), "Replaces"):
        for d in alts:
            if d.name != name:
                continue
            if d.arch not in (None, "any") and d.arch != arch:
                continue
            if satisfies(version, d):
                return True
    return False


def check_predepends_conflicts(db, ctl: Paragraph, entry: PkgEntry | None, removing=()) -> None:
    """The unpack-time checks; raise naming the package and the unsatisfied relation."""
    name = ctl["Package"]
    where = f"package {name} {ctl.get('Version')}"
    for alts in parse_relations(ctl.get("Pre-Depends"), "Pre-Depends", where):
        if not any(dep_satisfied(db, d, CONFIGURED) for d in alts):
            text = " | ".join(str(d) for d in alts)
            raise OperationFailedError(f"pre-dependency problem: {name} pre-depends on {text}, which is not "
                                       "installed and configured", where=where)
    for alts in parse_relations(ctl.get("Conflicts"), "Conflicts", where):
        for d in alts:
            for e in db.status.find_all(d.name):
                if e is entry or id(e) in removing or e.name == name:
                    continue
                if STATE_RANK[e.status] > STATE_RANK["config-files"] and satisfies(e.version, d):
                    raise OperationFailedError(f"conflicting packages: {name} conflicts with {d}; "
                                               f"{e.nonambig()} {e.version} is installed", where=where)
    version = ctl["Version"]
    for e in db.status.entries:
        if e.name == name or STATE_RANK[e.status] <= STATE_RANK["half-installed"] or id(e) in removing:
            continue
        brk = e.get("Breaks")
        if not brk or name not in brk:
            continue
        for alts in e.relations("Breaks"):
            for d in alts:
                if d.name == name and satisfies(version, d):
                    raise OperationFailedError(f"installing {name} {version} would break {e.nonambig()} "
                                               f"{e.version} (Breaks: {d})", where=where)


def unsatisfied_depends(db, entry: PkgEntry, extra: dict) -> list[str]:
    """Depends/Pre-Depends groups of ``entry`` that nothing satisfies (for configure)."""
    out = []
    for field in ("Pre-Depends", "Depends"):
        for alts in entry.relations(field):
            if not any(dep_satisfied(db, d, CONFIGURED, extra) for d in alts):
                out.append(f"{field}: " + " | ".join(str(d) for d in alts))
    return out


def deconfigure_set_siblings(db, runner, entry, version: str, activate, where: str, failed=OperationFailedError) -> None:
    """dpkg ``process_archive`` "Deconfigure other instances from a pkgset if they are not in
    sync", then ``pkg_deconfigure_others`` (src/main/unpack.c), while ``entry`` is unpacked at
    ``version``: every other architecture instance of the package (``zlib1g:i386`` while
    ``zlib1g:amd64`` is unpacked, Multi-Arch: same) that is configured beyond half-configured
    at another version has its triggers fired (``activate``, trig_activate_packageprocessing),
    goes half-configured, and runs ``prerm deconfigure in-favour PKG VERSION``; it is
    configured again with the set. A failing ``prerm`` raises ``failed`` (the unpacker's
    ScriptFailed: it unwinds as a failed maintainer script does)."""
    for other in db.status.find_all(entry.name):
        if other is entry or STATE_RANK.get(other.status, 0) <= STATE_RANK["half-configured"]:
            continue
        if compare_strings(version, other.version or "") == 0:
            continue
        activate(db, other)
        db.set_state(other, "half-configured")
        rc = db.run_script(runner, other, "prerm", ["deconfigure", "in-favour", entry.nonambig(), version])
        if rc != 0:
            raise failed(f"installed {other.nonambig()} package pre-removal script subprocess returned "
                               f"error exit status {rc}", where=where)
