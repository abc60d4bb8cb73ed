"""What apt would change: the plan of an upgrade, a full upgrade, an install or a remove.

The model is apt's ``pkgDepCache`` reduced to what its default upgrade paths use: every
package is either kept at its installed version (or absent), or moved to its *candidate*
(:class:`nuwa.apt.candidates.Policy`), or removed. A request marks packages the way apt's
``MarkInstall(autoInst=true)`` does (apt-pkg/depcache.cc): the candidate is marked, then every
Depends/Pre-Depends group that the new state does not satisfy gets its first alternative that
can satisfy it marked too (an alternative already installed preferred), and the
Recommends of a newly installed package (or those new in an upgrade's candidate) likewise,
best effort. A Conflicts/Breaks hit against an installed package is answered by upgrading that
package when its candidate no longer conflicts.

Then, as ``pkgProblemResolver`` (apt-pkg/algorithms.cc), the state is checked and repaired
until it is consistent:

- ``upgrade`` (= ``apt-get upgrade --with-new-pkgs``, what ``apt upgrade`` does:
  upgrade.cc ``pkgAllUpgradeWithNewPackages`` then ``ResolveByKeep``): a changed package that
  is broken is kept back; an unchanged package broken by a changed one keeps that one back.
  Nothing is removed. New packages only needed by a kept-back package are dropped again.
- ``full-upgrade`` (``pkgDistUpgrade``) and ``install``: an installed, unchanged package whose
  dependencies are broken, or which conflicts with a marked package, is removed (never an
  essential one, never one the user asked for), a changed package that cannot be satisfied
  is kept back; for ``install`` a requested package that cannot be satisfied is an error.
- ``remove``/``purge``: the named packages go, then every installed package that depends on
  them without an alternative goes too (apt's resolver does the same); essential ones refuse.

Not modelled (said precisely): only the candidate version of a package is ever tried (apt's
resolver can also pick other versions only through the user's ``PKG=VER``/``PKG/SUITE``,
which are supported); the resolver's package *scores* (apt decides which side of a conflict
to remove by popularity and priority; here the installed, unchanged side goes); ``Multi-Arch``
is handled for the native architecture plus ``all``, ``:any`` on ``allowed`` packages and
``foreign`` packages of other architectures; Suggests and Enhances are ignored; autoremoval
is not done (apt-get only reports "no longer required" packages too); Protected packages are
treated like essential ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.apt.candidates import STATUS_RELEASE, Policy
from nuwa.apt.records import PackageRecord
from nuwa.deb.control import Dep, parse_relations, satisfies
from nuwa.errors import InvalidInputError

_NOT_CURRENT = ("not-installed", "config-files")
_REL = ("pre_depends", "depends", "recommends", "conflicts", "breaks", "provides")


class PlanError(InvalidInputError):
    """A request apt would refuse (unknown package, version not offered, an essential package
    removed, a dependency nothing satisfies): one line in apt's words, exit 2."""


@dataclass(frozen=True)
class Request:
    """What the user asked apt to do: ``upgrade``, ``full-upgrade``, ``install``,
    ``remove`` or ``purge``, with package names for the last three (``PKG``, ``PKG=VER``,
    ``PKG/SUITE``, ``PKG:ARCH``)."""

    action: str
    names: tuple[str, ...] = ()
    #: ``install`` only: records of local .deb files (:func:`nuwa.apt.records.deb_record`),
    #: each its package's candidate, as ``apt install ./a.deb`` makes it
    local: tuple = ()


@dataclass
class Plan:
    """apt's decision. ``install``: records to unpack (upgrades and new packages), sorted by
    name; ``remove``: names to remove (``purge``: to purge); ``kept_back``: name -> reason;
    ``new``: names newly installed; ``auto``: names marked automatically installed afterwards
    (the ``Auto-Installed: 1`` entries of ``/var/lib/apt/extended_states``); ``upgrades``:
    name -> (installed version, new version)."""

    install: list[PackageRecord] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    purge: bool = False
    kept_back: dict[str, str] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)
    auto: list[str] = field(default_factory=list)
    upgrades: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Recommends of a changed package left unsatisfied ("pkg: a | b"): apt installs them when
    #: it can, so a plan made without the repositories is incomplete when this is not empty
    unmet_recommends: list[str] = field(default_factory=list)
    #: local files whose version is the installed one (apt: "already the newest version")
    already_installed: list[str] = field(default_factory=list)
    #: installed packages with a newer candidate that the plan leaves alone (apt's
    #: "N not upgraded": kept back ones included)
    not_upgraded: int = 0

    def versions(self) -> dict[str, str]:
        """name -> version of every package to unpack (the ``Inst`` lines of ``apt-get -s``)."""
        return {r.package: r.version for r in self.install}


def _rels(rec: PackageRecord, cache: dict) -> dict[str, list[list[Dep]]]:
    """The parsed relationship fields of a record (memoised by identity)."""
    got = cache.get(id(rec))
    if got is None:
        where = f"{rec.package} {rec.version}"
        got = {f: parse_relations(getattr(rec, f), f.replace("_", "-").title(), where) for f in _REL}
        cache[id(rec)] = (rec, got)
        return got
    return got[1]


def installed_record(entry, native: str) -> PackageRecord:
    """A status entry (``nuwa.deb.status.PkgEntry``) as a record of the "now" repository."""
    get = entry.get
    return PackageRecord(package=entry.name, version=entry.version, architecture=entry.arch or native,
                         release=STATUS_RELEASE, multi_arch=entry.multiarch if entry.multiarch != "no" else "",
                         essential=(get("Essential") or "") == "yes", priority=get("Priority") or "",
                         depends=get("Depends") or "", pre_depends=get("Pre-Depends") or "",
                         recommends=get("Recommends") or "", conflicts=get("Conflicts") or "",
                         breaks=get("Breaks") or "", replaces=get("Replaces") or "",
                         provides=get("Provides") or "", source=get("Source") or "")


class Resolver:
    """One planning session over a policy (the repositories) and a dpkg status."""

    def __init__(self, policy: Policy, status, auto_installed=()):
        self.policy = policy
        self.native = policy.native_arch
        self._rc: dict = {}
        entries = status.entries if hasattr(status, "entries") else status
        self.current: dict[tuple[str, str], PackageRecord] = {}
        self.held: set[tuple[str, str]] = set()
        for e in entries:
            if e.status in _NOT_CURRENT or not e.version:
                continue
            rec = installed_record(e, self.native)
            k = self.key(rec)
            self.current[k] = rec
            if e.want == "hold":
                self.held.add(k)
        self._by_source: dict[str, list[tuple[str, str]]] = {}
        for k, rec in self.current.items():
            self._by_source.setdefault(rec.source_name, []).append(k)
        auto_installed = set(auto_installed)
        self.auto = {k for k in self.current if k[0] in auto_installed or f"{k[0]}:{k[1]}" in auto_installed}
        self.state: dict[tuple[str, str], PackageRecord | None] = dict(self.current)
        self.protected: set[tuple[str, str]] = set()  # asked for by the user: never kept back
        self.kept: dict[tuple[str, str], str] = {}
        self.already: list[str] = []
        self._cand: dict = {}
        # the repositories' providers are the policy's (indexed while it took the records)
        self._provides_installed: dict[str, list[tuple[str, str]]] = {}
        for k, rec in self.current.items():
            for alts in _rels(rec, self._rc)["provides"]:
                self._provides_installed.setdefault(alts[0].name, []).append(k)

    def _providers(self, name: str) -> list[tuple[str, str]]:
        """The packages whose repository records or installed version provide ``name``."""
        return self.policy.providers(name) + self._provides_installed.get(name, [])

    # ---- the universe ---------------------------------------------------------------------
    def key(self, rec: PackageRecord) -> tuple[str, str]:
        """apt's package key: ``all`` belongs to the native architecture."""
        return self.policy.key(rec.package, rec.architecture)

    def candidate(self, k: tuple[str, str]) -> PackageRecord | None:
        """The candidate record of a package (the installed record when that is the candidate)."""
        if k not in self._cand:
            cur = self.current.get(k)
            rec = self.policy.candidate(k[0], k[1], cur.version if cur else None)
            if rec is not None and cur is not None and rec.version == cur.version:
                rec = cur  # the installed version stays: identity marks "unchanged"
            self._cand[k] = rec
        return self._cand[k]

    def _dep_keys(self, dep: Dep, from_arch: str) -> list[tuple[str, str]]:
        """The real packages a dependency atom can name (Multi-Arch as documented above)."""
        if dep.arch and dep.arch not in ("any", "native"):
            return [(dep.name, dep.arch)]
        arch = self.native if from_arch in ("all", "") or dep.arch == "native" else from_arch
        out = [(dep.name, arch)]
        if arch != self.native:
            out.append((dep.name, self.native))  # M-A: foreign / all of the native architecture
        return out

    def _rec_matches(self, rec: PackageRecord, dep: Dep, real_only: bool = False) -> bool:
        """Whether ``rec`` satisfies ``dep`` as itself or through a Provides."""
        if rec.package == dep.name:
            if dep.arch == "any" and rec.multi_arch != "allowed":
                return False
            return satisfies(rec.version, dep)
        if real_only:
            return False
        for alts in _rels(rec, self._rc)["provides"]:
            p = alts[0]
            if p.name == dep.name and (dep.op is None or (p.op == "=" and satisfies(p.version, dep))):
                return True
        return False

    def _keys_for(self, dep: Dep, from_arch: str) -> list[tuple[str, str]]:
        """Packages that could satisfy ``dep``: the named ones, then its providers (sorted)."""
        real = [k for k in self._dep_keys(dep, from_arch)]
        prov = sorted(set(self._providers(dep.name)) - set(real))
        return real + prov

    def satisfied(self, dep: Dep, from_arch: str, state=None) -> list[tuple[str, str]]:
        """The packages of ``state`` (default: the plan's) whose target satisfies ``dep``."""
        state = self.state if state is None else state
        out = []
        for k in self._keys_for(dep, from_arch):
            rec = state.get(k)
            if rec is not None and self._rec_matches(rec, dep):
                ma_ok = (k[1] in (from_arch, self.native) or rec.multi_arch == "foreign"
                         or dep.arch not in (None, "any", "native"))
                if ma_ok:
                    out.append(k)
        return out

    # ---- marking (pkgDepCache::MarkInstall) -------------------------------------------------
    def mark_install(self, k, rec: PackageRecord, auto: bool, depth: int = 0) -> None:
        """Mark ``rec`` for package ``k`` and, recursively, what its dependencies need."""
        if depth > 100 or self.state.get(k) is rec:
            return
        was_new = k not in self.current
        self.state[k] = rec
        if was_new and auto:
            self.auto.add(k)
        rels = _rels(rec, self._rc)
        old = _rels(self.current[k], self._rc) if not was_new else None
        groups = [(g, True) for g in rels["pre_depends"] + rels["depends"]]
        old_rec_names = {d.name for g in (old or {}).get("recommends", []) for d in g}
        for g in rels["recommends"]:
            # apt installs a package's Recommends when it is new, and on an upgrade only the
            # recommendations the installed version did not make (depcache.cc "new" recommends)
            if was_new or not any(d.name in old_rec_names for d in g):
                groups.append((g, False))
        for group, critical in groups:
            if any(self.satisfied(d, rec.architecture) for d in group):
                continue
            pick = self._choose(group, rec.architecture)
            if pick is None:
                continue  # left broken: the problem resolver decides (critical) or it is ignored
            pk, prec = pick
            if not critical and self._conflicts_with_state(pk, prec):
                continue
            self.mark_install(pk, prec, auto=True, depth=depth + 1)
        # MarkInstall_UpgradeOtherBinaries (APT::Get::Upgrade-By-Source-Package, on by default):
        # installed binaries of the same source whose candidate is of the same source version
        for ok in self._by_source.get(rec.source_name, ()):
            cand = self.candidate(ok)
            if ok != k and ok not in self.held and cand is not None and cand is not self.current[ok] \
                    and self.state.get(ok) is not cand and cand.source_version == rec.source_version:
                self.mark_install(ok, cand, auto=ok in self.auto, depth=depth + 1)
        for dep in [g[0] for g in rels["conflicts"] + rels["breaks"]]:
            for ok in self.satisfied(dep, rec.architecture):
                if ok == k or ok in self.protected:
                    continue
                other = self.state[ok]
                cand = self.candidate(ok)
                if other is self.current.get(ok) and cand is not None and cand is not other \
                        and not self._rec_matches(cand, dep) and ok not in self.held:
                    self.mark_install(ok, cand, auto=ok in self.auto, depth=depth + 1)

    def _choose(self, group: list[Dep], from_arch: str):
        """The alternative apt's MarkInstall takes: an installed package whose candidate would
        satisfy first, else the first alternative whose candidate satisfies."""
        options = []
        for dep in group:
            for k in self._keys_for(dep, from_arch):
                cand = self.candidate(k)
                if cand is not None and self._rec_matches(cand, dep) and k not in self.held:
                    options.append((k, cand))
        if not options:
            return None
        for k, cand in options:
            if k in self.current:
                return k, cand
        return options[0]

    def _conflicts_with_state(self, k, rec: PackageRecord) -> bool:
        rels = _rels(rec, self._rc)
        for g in rels["conflicts"] + rels["breaks"]:
            if any(o != k for o in self.satisfied(g[0], rec.architecture)):
                return True
        for ok, other in self.state.items():
            if other is None or ok == k:
                continue
            o = _rels(other, self._rc)
            if any(self._rec_matches(rec, g[0]) for g in o["conflicts"] + o["breaks"]):
                return True
        return False

    # ---- checking ------------------------------------------------------------------------------
    def problems(self) -> list[tuple[tuple[str, str], str, list[tuple[str, str]]]]:
        """Every broken package of the state: (package, apt-style reason, the packages whose
        change broke it: a dependency's former satisfiers or the conflicting party)."""
        out = []
        for k, rec in self.state.items():
            if rec is None:
                continue
            rels = _rels(rec, self._rc)
            for kind, groups in (("PreDepends", rels["pre_depends"]), ("Depends", rels["depends"])):
                for g in groups:
                    if any(self.satisfied(d, rec.architecture) for d in g):
                        continue
                    before = [s for d in g for s in self.satisfied(d, rec.architecture, self.current)]
                    text = " | ".join(str(d) for d in g)
                    out.append((k, f"{kind}: {text}", before))
                    break
            for kind, groups in (("Conflicts", rels["conflicts"]), ("Breaks", rels["breaks"])):
                for g in groups:
                    hits = [o for o in self.satisfied(g[0], rec.architecture) if o != k]
                    if hits:
                        out.append((k, f"{kind}: {g[0]}", hits))
        return out

    def changed(self, k) -> bool:
        """Whether the plan changes package ``k``."""
        return self.state.get(k) is not self.current.get(k)

    def keep(self, k, reason: str) -> None:
        """Keep ``k`` at its installed state (apt's MarkKeep)."""
        if k in self.current:
            self.kept.setdefault(k, reason)
        self.state[k] = self.current.get(k)
        if k not in self.current:
            self.state.pop(k, None)

    def drop_unneeded_new(self) -> None:
        """Unmark new automatic packages nothing in the state depends on or recommends any
        more (what a kept-back upgrade had pulled in)."""
        while True:
            needed = set()
            for k, rec in self.state.items():
                if rec is None:
                    continue
                rels = _rels(rec, self._rc)
                for g in rels["pre_depends"] + rels["depends"] + rels["recommends"]:
                    for d in g:
                        needed.update(self.satisfied(d, rec.architecture))
            gone = [k for k, r in self.state.items() if r is not None and k not in self.current
                    and k in self.auto and k not in needed]
            if not gone:
                return
            for k in gone:
                del self.state[k]

    def resolve(self, allow_remove: bool) -> None:
        """Repair the state until nothing is broken (pkgProblemResolver, see the module doc).

        A repair that leads back to a state already tried (removing a package breaks an
        essential one, keeping it breaks the package again...) cannot end. apt gives up at the
        repair that would undo an earlier one and reports that problem (``login : PreDepends:
        libm but it is not going to be installed``): so does this, at once, not after every
        step was tried again."""
        seen = set()
        last = ""
        for _ in range(10000):
            probs = self.problems()
            if not probs:
                return
            k, why, culprits = probs[0]
            name = k[0]
            here = frozenset((key, id(rec)) for key, rec in self.state.items())
            if here in seen:  # the previous repair closed the circle: its problem is apt's
                raise PlanError(f"Unable to correct problems: {last}")
            seen.add(here)
            last = f"{name} : {why}{self._but(why, culprits)}"
            removable = [c for c in culprits if c in self.current and not self.changed(c)
                         and not self._essential(c) and c not in self.protected]
            if allow_remove and why.startswith(("Conflicts", "Breaks")) and self.changed(k) \
                    and removable and len(removable) == len(culprits):
                for c in removable:  # the marked package wins over the installed one it hits
                    self.state[c] = None
            elif self.changed(k) and k not in self.protected:
                self.keep(k, f"{why} cannot be satisfied")
            elif allow_remove and k in self.current and not self.changed(k) and not self._essential(k) \
                    and k not in self.protected and (why.startswith(("Depends", "PreDepends"))
                                                     or all(c in self.protected or self.changed(c) for c in culprits)):
                self.state[k] = None  # an unchanged installed package that is now broken goes
            else:
                movable = [c for c in culprits if self.changed(c) and c not in self.protected]
                if not movable:
                    raise PlanError(f"Unable to correct problems: {name} : {why} but it is not installable"
                                    if why.startswith(("Depends", "PreDepends"))
                                    else f"Unable to correct problems: {name} : {why}")
                for c in movable:
                    self.keep(c, f"would break {name} ({why})")
            self.drop_unneeded_new()
        raise PlanError("Unable to correct problems: the resolver did not converge")

    def _but(self, why: str, culprits) -> str:
        """apt's tail of an unmet dependency (``ShowBroken``): what the plan does to the package
        that would satisfy it."""
        if not why.startswith(("Depends", "PreDepends")) or len(culprits) != 1:
            return ""
        rec = self.state.get(culprits[0])
        return " but it is not going to be installed" if rec is None else f" but {rec.version} is to be installed"

    def _essential(self, k) -> bool:
        rec = self.current.get(k)
        return bool(rec and rec.essential)

    # ---- requests ------------------------------------------------------------------------------
    def upgrade(self, allow_remove: bool) -> None:
        """``apt-get upgrade --with-new-pkgs`` (``allow_remove`` False) or ``full-upgrade``."""
        for k in sorted(self.current):
            cand = self.candidate(k)
            if cand is None or cand is self.current[k]:
                continue
            if k in self.held:
                self.kept[k] = "held"
                continue
            self.mark_install(k, cand, auto=k in self.auto)
        self.resolve(allow_remove)

    def install(self, specs, local=()) -> None:
        """``apt-get install SPEC...`` (``PKG``, ``PKG=VER``, ``PKG/SUITE``, ``PKG:ARCH``) and
        ``apt install ./FILE.deb...`` (``local``: their records). A file's version becomes its
        package's candidate before anything is marked, so one file's dependency on another
        given file is satisfied by that file, as apt does."""
        chosen = []
        for rec in local:
            k = self.key(rec)
            cur = self.current.get(k)
            if cur is not None and cur.version == rec.version:
                # apt: "x is already the newest version (v)": the same version is not reinstalled
                self.already.append(rec.package)
                continue
            self._cand[k] = rec
            chosen.append((k, rec))
        chosen += [self._lookup(s) for s in specs]
        for k, rec in chosen:
            self.protected.add(k)
            self.auto.discard(k)
        for k, rec in chosen:
            self.mark_install(k, rec, auto=False)
        self.resolve(allow_remove=True)

    def _lookup(self, spec: str):
        name, ver, suite = spec, None, None
        if "=" in name:
            name, ver = name.split("=", 1)
        elif "/" in name:
            name, suite = name.split("/", 1)
        arch = self.native
        if ":" in name:
            name, arch = name.split(":", 1)
        k = self.policy.key(name, arch)
        versions = self.policy.versions(*k)
        if not versions and k not in self.current:
            provs = sorted({p for p in self._providers(name) if self.candidate(p) is not None})
            if len(provs) == 1:
                return provs[0], self.candidate(provs[0])  # apt: "Note, selecting X instead of V"
            if provs:
                raise PlanError(f"Package '{name}' is a virtual package provided by several packages; "
                                f"select one of: {', '.join(p[0] for p in provs)}")
            raise PlanError(f"Unable to locate package {name}")
        if ver is not None:
            recs = self.policy.records_of(k[0], k[1], ver)
            if not recs:
                cur = self.current.get(k)
                if cur is not None and cur.version == ver:
                    return k, cur
                raise PlanError(f"Version '{ver}' for '{name}' was not found")
            return k, recs[0]
        if suite is not None:
            for v in versions:
                recs = [r for r in self.policy.records_of(k[0], k[1], v)
                        if suite in (r.release.archive, r.release.codename, r.release.suite)]
                if recs:
                    return k, recs[0]
            raise PlanError(f"Release '{suite}' for '{name}' was not found")
        cand = self.candidate(k)
        if cand is None:
            raise PlanError(f"Package '{name}' has no installation candidate")
        return k, cand

    def remove(self, names) -> None:
        """``apt-get remove NAME...``: the packages and what depends on them."""
        for spec in names:
            name, _, arch = spec.partition(":")
            k = self.policy.key(name, arch or self.native)
            if k not in self.current:
                if not self.policy.versions(*k):
                    raise PlanError(f"Unable to locate package {name}")
                continue  # apt: "Package 'x' is not installed, so not removed"
            if self.current[k].essential:
                raise PlanError(f"Removing essential system-critical packages is not permitted: {name}")
            self.state[k] = None
            self.protected.add(k)
        self.resolve(allow_remove=True)
        for k, rec in self.state.items():
            if rec is None and k in self.current and self.current[k].essential:
                raise PlanError(f"Removing essential system-critical packages is not permitted: {k[0]}")

    def result(self, purge: bool = False) -> Plan:
        """The :class:`Plan` of the current state."""
        plan = Plan(purge=purge)
        for k in sorted(set(self.state) | set(self.current)):
            rec, cur = self.state.get(k), self.current.get(k)
            if rec is None and cur is not None:
                plan.remove.append(k[0])
            elif rec is not None and rec is not cur:
                plan.install.append(rec)
                if cur is None:
                    plan.new.append(k[0])
                else:
                    plan.upgrades[k[0]] = (cur.version, rec.version)
        for k, why in sorted(self.kept.items()):
            if self.state.get(k) is self.current.get(k):
                plan.kept_back[k[0]] = why
        plan.auto = sorted(k[0] for k in self.auto if self.state.get(k) is not None)
        plan.already_installed = sorted(self.already)
        plan.not_upgraded = sum(1 for k, cur in self.current.items() if self.state.get(k) is cur
                                and self.candidate(k) is not None and self.candidate(k) is not cur)
        for k in sorted(self.state):
            rec = self.state[k]
            if rec is None or not self.changed(k):
                continue
            old = self.current.get(k)
            old_names = {d.name for g in (_rels(old, self._rc)["recommends"] if old else []) for d in g}
            for g in _rels(rec, self._rc)["recommends"]:
                # the groups mark_install would have tried (new package, or a new recommendation)
                if (old is None or not any(d.name in old_names for d in g)) \
                        and not any(self.satisfied(d, rec.architecture) for d in g):
                    plan.unmet_recommends.append(f"{rec.package}: " + " | ".join(str(d) for d in g))
        return plan


def plan(policy: Policy, status, request: Request | str, auto_installed=()) -> Plan:
    """apt's plan for ``request`` (a :class:`Request`, or ``"upgrade"``/``"full-upgrade"``)
    on the installed packages of ``status`` (a ``StatusFile`` or its entries) with the
    repositories of ``policy``; ``auto_installed``: the names extended_states marks
    ``Auto-Installed: 1``. Raises :class:`PlanError` for what apt refuses."""
    if isinstance(request, str):
        request = Request(request)
    r = Resolver(policy, status, auto_installed)
    if request.action == "upgrade":
        r.upgrade(allow_remove=False)
    elif request.action in ("full-upgrade", "dist-upgrade"):
        r.upgrade(allow_remove=True)
    elif request.action == "install":
        r.install(request.names, request.local)
    elif request.action in ("remove", "purge"):
        r.remove(request.names)
    else:
        raise PlanError(f"unknown request '{request.action}' (upgrade, full-upgrade, install, remove, purge)")
    return r.result(purge=request.action == "purge")
