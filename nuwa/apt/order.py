"""The dpkg calls apt makes to carry out a plan, in apt 2.6's order.

apt orders in two stages (apt-pkg/orderlist.cc, apt-pkg/packagemanager.cc):

1. ``pkgOrderList``: the changed packages are sorted by score (``OrderCompareA``: essential
   200, immediate-configure 10, having a Pre-Depends 50, Priority required 5 / important 4 /
   standard 3 / optional 1; higher first, then by name), then visited depth first so that what
   a package needs (its Pre-Depends, Depends, and the installed packages its Breaks/Conflicts
   hit that are being upgraded) comes before it.
2. ``pkgPackageManager::OrderInstall`` walks that list: ``SmartUnPack`` first satisfies the
   package's Pre-Depends by *configuring* their targets (unpacking them first if needed),
   unpacks an upgraded package whose installed version the new one Breaks/Conflicts before
   it, removes a package being removed that it conflicts with, then unpacks it; a package
   flagged *immediate* (every Essential package and, recursively, what its installed and new
   versions Depend/Pre-Depend on: ``CreateOrderList``/``ImmediateAdd``) is then configured at
   once by ``SmartConfigure``, which configures its dependencies first.

``pkgDPkgPM::Go`` then joins consecutive items of one kind into one dpkg call, drops the
configure items after the last unpack/remove (``--configure --pending`` does them) and
appends ``--configure --pending``, the only call without ``--no-triggers``.

:func:`validate` checks any step sequence against dpkg's rules (a Pre-Depends configured
before the unpack, a configured package's Depends unpacked-and-configured, everything changed
ends configured or removed), for tests and for callers that order otherwise.

Measured: on constructed worlds (a Pre-Depends chain with an essential package, a
Conflicts/Replaces swap, Breaks, a new Pre-Depended dependency) the steps equal apt's
``Debug::pkgDPkgPM`` sequence exactly. On the bookworm minbase 15-update set they do not:
apt's ``OrderUnpack`` runs four visiting passes (``DepUnPackCrit``, ``DepUnPackDep``,
``DepConfigure``, ``DepUnPackPre``) whose result (libperl5.36, perl, perl-base,
perl-modules-5.36, zlib1g, liblzma5, ...) this single depth-first pass does not reproduce, so
Nuwa's 20 calls differ from apt's 24 in grouping and in which packages are configured early;
both are valid and real dpkg replaying either gives the same tree and database.

Not modelled: apt's loop breaking (``Loop`` flags, temporary removal of a package for a
Conflicts cycle), the lock-step unpack of ``Multi-Arch: same`` siblings, media swaps, the
``MaxArgs`` split of long dpkg calls, and the reverse-dependency pass of ``DepUnPackDep``;
where apt's list order differs for those reasons the sequence is still valid but may differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from nuwa.apt.records import PackageRecord
from nuwa.apt.resolver import Plan, installed_record
from nuwa.deb.control import parse_relations, satisfies
from nuwa.errors import OperationFailedError

_PRIO_SCORE = {"required": 5, "important": 4, "standard": 3, "optional": 1}


@dataclass(frozen=True)
class Step:
    """One dpkg call: ``action`` is unpack, configure, configure-pending, remove or purge;
    ``operands`` are PackageRecords (unpack) or ``name:arch`` strings."""

    action: str
    operands: tuple

    def __iter__(self):  # unpacks as (action, operands), like tools/dpkg_material.apt_steps
        return iter((self.action, list(self.operands)))


class _Pkg:
    __slots__ = ("name", "arch", "cur", "new", "remove", "rels", "cur_rels", "unpacked", "configured",
                 "removed", "immediate", "busy")

    def __init__(self, name, arch, cur, new, remove):
        self.name, self.arch, self.cur, self.new, self.remove = name, arch, cur, new, remove
        self.rels = _parse(new) if new is not None else {}
        self.cur_rels = _parse(cur) if cur is not None else {}
        self.unpacked = self.configured = self.removed = self.immediate = self.busy = False

    @property
    def label(self) -> str:
        rec = self.new or self.cur
        return f"{self.name}:{rec.architecture}"


def _parse(rec: PackageRecord) -> dict:
    where = f"{rec.package} {rec.version}"
    return {f: parse_relations(getattr(rec, f), f.replace("_", "-").title(), where)
            for f in ("pre_depends", "depends", "conflicts", "breaks", "provides")}


def _provides(rels: dict, name: str, dep) -> bool:
    for g in rels.get("provides", ()):
        p = g[0]
        if p.name == dep.name and (dep.op is None or (p.op == "=" and satisfies(p.version, dep))):
            return True
    return False


def _matches(rec: PackageRecord | None, rels: dict, dep) -> bool:
    if rec is None:
        return False
    if rec.package == dep.name:
        return satisfies(rec.version, dep)
    return _provides(rels, rec.package, dep)


class _Orderer:
    def __init__(self, plan: Plan, status, records, native: str):
        entries = status.entries if hasattr(status, "entries") else status
        self.native = native
        cur = {}
        for e in entries:
            if e.status not in ("not-installed", "config-files") and e.version:
                r = installed_record(e, native)
                cur[e.name] = r
        self.current = cur
        self._cur_parsed: dict[str, dict] = {}  # name -> _parse of its installed record
        new = {r.package: r for r in (records if records is not None else plan.install)}
        self.purge = plan.purge
        self.pkgs: dict[str, _Pkg] = {}
        for name, rec in new.items():
            self.pkgs[name] = _Pkg(name, rec.architecture, cur.get(name), rec, False)
        for name in plan.remove:
            if name in cur:
                self.pkgs[name] = _Pkg(name, cur[name].architecture, cur[name], None, True)
        self.items: list[tuple[str, _Pkg]] = []
        self._flag_immediate()

    # ---- CreateOrderList ------------------------------------------------------------------------
    def _flag_immediate(self) -> None:
        flagged: set[str] = set()

        def add(name: str, use_new: bool) -> None:
            p = self.pkgs.get(name)
            rec = (p.new if p else self.current.get(name)) if use_new else self.current.get(name)
            if rec is None:
                return
            rels = (p.rels if (p and use_new) else (p.cur_rels if p else self._installed_rels(name)))
            for g in rels.get("pre_depends", []) + rels.get("depends", []):
                for d in g:  # apt flags every alternative's target package
                    if d.name not in flagged:
                        flagged.add(d.name)
                        add(d.name, use_new)

        names = set(self.current) | set(self.pkgs)
        for name in sorted(names):
            p = self.pkgs.get(name)
            rec = p.new if p and p.new is not None else self.current.get(name)
            if rec is not None and rec.essential or (p and p.cur is not None and p.cur.essential):
                flagged.add(name)
                add(name, True)
                add(name, False)
        for name, p in self.pkgs.items():
            p.immediate = name in flagged

    def score(self, p: _Pkg) -> int:
        """pkgOrderList::Score."""
        if p.remove:
            return 100
        s = 200 if p.new.essential else 0
        s += 10 if p.immediate else 0
        s += 50 if p.rels["pre_depends"] else 0
        return s + _PRIO_SCORE.get(p.new.priority, 0)

    # ---- pkgOrderList::OrderUnpack (depth first, needs before needers) --------------------------
    def order_list(self) -> list[_Pkg]:
        seeds = sorted(self.pkgs.values(), key=lambda p: (-self.score(p), p.name))
        out, seen = [], set()

        def visit(p: _Pkg) -> None:
            if p.name in seen:
                return
            seen.add(p.name)
            if not p.remove:
                for t in self._broken_rdeps(p):  # DepUnPackDep: who loses p first
                    visit(t)
                for g in p.rels["pre_depends"]:
                    for t in self._targets(g):
                        visit(t)
                for g in p.rels["conflicts"] + p.rels["breaks"]:
                    for t in self._hit(g[0], p):
                        visit(t)
            out.append(p)

        for p in seeds:
            visit(p)
        return out

    def _broken_rdeps(self, p: _Pkg) -> list[_Pkg]:
        """Changed packages whose installed version depends on ``p`` in a way its new version
        no longer satisfies (they are unpacked first, so the old dependency never dangles)."""
        out = []
        for t in self.pkgs.values():
            if t is p or t.remove or t.cur is None:
                continue
            for g in t.cur_rels["pre_depends"] + t.cur_rels["depends"]:
                if any(d.name == p.name for d in g) and any(_matches(p.cur, p.cur_rels, d) for d in g) \
                        and not any(_matches(p.new, p.rels, d) for d in g):
                    out.append(t)
                    break
        return out

    def _targets(self, group) -> list[_Pkg]:
        """Changed packages whose new version satisfies a dependency group."""
        return [t for d in group for t in self.pkgs.values()
                if not t.remove and _matches(t.new, t.rels, d)]

    def _now_ok(self, group) -> bool:
        """A dependency satisfied by an unchanged installed package."""
        return any(_matches(r, self._installed_rels(n) if r.provides else {}, d)
                   for d in group for n, r in self.current.items() if n not in self.pkgs)

    def _installed_rels(self, name: str) -> dict:
        """The parsed relationships of an installed package (parsed once: :meth:`_now_ok` asks
        about every installed package for every dependency group)."""
        got = self._cur_parsed.get(name)
        if got is None:
            got = self._cur_parsed[name] = _parse(self.current[name])
        return got

    def _hit(self, dep, by: _Pkg) -> list[_Pkg]:
        """Changed packages whose *installed* version ``dep`` (a Conflicts/Breaks of ``by``) hits."""
        return [t for t in self.pkgs.values() if t is not by and t.cur is not None
                and _matches(t.cur, t.cur_rels, dep)]

    # ---- pkgPackageManager::SmartUnPack / SmartConfigure / SmartRemove --------------------------
    def smart_remove(self, p: _Pkg) -> None:
        if not p.removed:
            p.removed = True
            self.items.append(("purge" if self.purge else "remove", p))

    def smart_unpack(self, p: _Pkg, immediate: bool) -> None:
        if p.unpacked or p.busy:
            return
        p.busy = True
        for g in p.rels["pre_depends"]:
            if any(t.configured for t in self._targets(g)):
                continue
            if self._now_ok(g) or not self._targets(g):
                continue
            t = self._targets(g)[0]
            if not t.unpacked:
                self.smart_unpack(t, True)
            self.smart_configure(t)
        for g in p.rels["conflicts"] + p.rels["breaks"]:
            for t in self._hit(g[0], p):
                if t.remove:
                    self.smart_remove(t)
                elif not _matches(t.new, t.rels, g[0]):
                    self.smart_unpack(t, False)
        for t in self.pkgs.values():  # CheckRConflicts: a package being removed that conflicts with p
            if t.remove and t.cur is not None and not t.removed:
                if any(_matches(p.new, p.rels, g[0]) for g in t.cur_rels["conflicts"]):
                    self.smart_remove(t)
        p.busy = False
        p.unpacked = True
        self.items.append(("unpack", p))
        if immediate:
            self.smart_configure(p)

    def smart_configure(self, p: _Pkg) -> None:
        if p.configured or p.busy:
            return
        p.busy = True
        groups = p.rels["pre_depends"] + p.rels["depends"]
        for g in groups:
            if self._now_ok(g):
                continue
            for t in self._targets(g)[:1]:
                if not t.unpacked:
                    self.smart_unpack(t, False)
        for g in groups:
            if self._now_ok(g):
                continue
            for t in self._targets(g)[:1]:
                self.smart_configure(t)
        p.busy = False
        if not p.unpacked:
            self.smart_unpack(p, False)
        p.configured = True
        self.items.append(("configure", p))

    def run(self) -> list[Step]:
        for p in self.order_list():
            if p.remove:
                self.smart_remove(p)
            elif not p.unpacked:
                self.smart_unpack(p, p.immediate)
        # ConfigureAll's items come last and pkgDPkgPM drops them for --configure --pending
        last = max((i for i, (a, _) in enumerate(self.items) if a != "configure"), default=-1)
        items = self.items[:last + 1]
        steps: list[Step] = []
        for action, p in items:
            operand = p.new if action == "unpack" else p.label
            if steps and steps[-1].action == action:
                steps[-1] = Step(action, steps[-1].operands + (operand,))
            else:
                steps.append(Step(action, (operand,)))
        steps.append(Step("configure-pending", ()))
        return steps


def order(plan: Plan, status, records=None, native_arch: str = "amd64") -> list[Step]:
    """The dpkg steps for ``plan`` on the installed packages of ``status`` (a ``StatusFile`` or
    its entries), in apt 2.6's order (see the module doc). ``records``: the records to unpack
    (default ``plan.install``; give others, e.g. read from local .debs, to order those)."""
    return _Orderer(plan, status, records, native_arch).run()


def validate(steps, status, native_arch: str = "amd64") -> None:
    """Check a step sequence the way dpkg would judge each call (``OperationFailedError`` naming
    the first offending step): an unpack needs every Pre-Depends configured (an installed
    version counts), a configure needs every Depends/Pre-Depends unpacked and configured (or
    configured in the same call), a Conflicts hit by an unpack must be gone already, and every
    unpacked package is configured by the end (``--configure --pending``)."""
    entries = status.entries if hasattr(status, "entries") else status
    state: dict[str, tuple[PackageRecord, str]] = {}
    for e in entries:
        if e.status not in ("not-installed", "config-files") and e.version:
            state[e.name] = (installed_record(e, native_arch), "installed")

    def ok(group, need: str, also=()) -> bool:
        for d in group:
            for name, (rec, st) in state.items():
                if (st == "installed" or (need == "unpacked" and st == "unpacked") or name in also) \
                        and _matches(rec, _parse(rec) if rec.provides else {}, d):
                    return True
        return False

    for n, step in enumerate(steps, 1):
        action, operands = tuple(step)
        if action == "unpack":
            for rec in operands:
                rels = _parse(rec)
                for g in rels["pre_depends"]:
                    if not ok(g, "configured"):
                        raise OperationFailedError(f"step {n}: {rec.package} pre-depends on "
                                                   f"{' | '.join(map(str, g))}, not configured before its unpack")
                for g in rels["conflicts"]:
                    hits = [nm for nm, (r, _) in state.items() if nm != rec.package
                            and _matches(r, _parse(r) if r.provides else {}, g[0])
                            and nm not in {x.package for x in operands}]
                    if hits:
                        raise OperationFailedError(f"step {n}: {rec.package} conflicts with {hits[0]}, "
                                                   f"still installed at its unpack")
                state[rec.package] = (rec, "unpacked")
        elif action in ("configure", "configure-pending"):
            names = ([o.split(":")[0] for o in operands] if action == "configure"
                     else [nm for nm, (_, st) in state.items() if st == "unpacked"])
            for nm in names:
                rec = state[nm][0]
                rels = _parse(rec)
                for g in rels["pre_depends"] + rels["depends"]:
                    if not ok(g, "configured", also=names):
                        raise OperationFailedError(f"step {n}: {nm} depends on {' | '.join(map(str, g))}, "
                                                   f"not configured when {nm} is configured")
            for nm in names:
                state[nm] = (state[nm][0], "installed")
        elif action in ("remove", "purge"):
            for o in operands:
                state.pop(o.split(":")[0], None)
    left = sorted(nm for nm, (_, st) in state.items() if st != "installed")
    if left:
        raise OperationFailedError(f"left unconfigured at the end: {', '.join(left)}")
