"""Candidate versions as apt's ``pkgPolicy`` picks them (apt-pkg/policy.cc).

apt gives every *package file* (one repository index, or dpkg's status file) a priority and
every *version* the priority of its pin or else the highest priority of the files offering it;
the candidate is then the version with the highest priority, the higher version among equals,
and never one older than the installed version unless its priority is at least 1000.

File priorities (``pkgPolicy::InitDefaults``): 500; 100 for dpkg's status file (apt's "now")
and for a Release flagged ``ButAutomaticUpgrades`` (apt keeps that flag in its cache whether or
not ``NotAutomatic`` is set, and the policy tests it first); 1 for ``NotAutomatic``. Then each
``Package: *`` pin, in file order, sets the priority of every file it matches that no earlier
one fixed (a ``never`` pin overrides, and nothing overrides it).

Version priorities (``pkgPolicy::GetPriority(VerIterator)``): the first specific pin (a named
package) that matches the version, unless every file offering it has a ``never`` priority;
else the maximum over its files, where the status file counts -1 for a version that is not the
installed one. ``GetCandidateVer`` skips priority 0, keeps the first (highest) version of a
strictly higher priority, and skips versions older than the installed one below 1000.

Holds (dpkg's ``hold`` selection) do not change the candidate; :meth:`Policy.upgradable`
reports them, as ``apt list --upgradable`` lists them and ``apt-get upgrade`` keeps them back.

Pins come from :mod:`nuwa.apt.preferences`; this module needs only :class:`PinLike`. A version
offered by several repositories is one version with several records, as apt's cache generator
merges stanzas of one version string whose relationship fields, Multi-Arch and sizes agree
(:func:`version_content`); others stay versions of their own, and a locally built package of a
repository's version string is then "upgradable" to it, as ``apt list`` says
(``VerIterator::CompareVer`` orders version objects by their place in the list). That needs
the records' relationship fields and sizes filled by the index parser.

Packages are keyed as in apt's cache: ``(name, arch)`` with ``Architecture: all`` under the
native architecture, so ``foo`` (all) and ``foo`` (amd64) are one package and a
``Multi-Arch: same`` library has one package per architecture.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nuwa.apt import collector
from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.deb.version import Version
from nuwa.errors import InvalidInputError

#: apt's ``NEVER_PIN`` (``std::numeric_limits<short>::min()``): ``Pin-Priority: never``
NEVER_PIN = -32768
#: the repository apt calls "now": dpkg's status file (``apt-cache policy`` shows
#: ``100 /var/lib/dpkg/status``); its archive and component are "now"
STATUS_RELEASE = ReleaseInfo(uri="", suite="now", component="now", archive="now")
#: dpkg states for which apt's status parser records a current version
#: (``debStatusListParser::ParseStatus``: all but not-installed and config-files)
_NOT_CURRENT = ("not-installed", "config-files")


@runtime_checkable
class PinLike(Protocol):
    """What the policy needs of a pin (``nuwa.apt.preferences.Pin`` has it).

    ``packages`` is ``"*"`` (or ``("*",)``) for a ``Package: *`` record, which pins package
    files; anything else is a specific pin, which pins versions. ``matches(record)`` answers
    whether the pin applies to that package and its expression matches the record (its version,
    its release's fields or its site).
    """

    priority: int
    packages: Any

    def matches(self, record: PackageRecord) -> bool:
        """Whether this pin applies to ``record``."""
        ...


def is_default_pin(pin: PinLike) -> bool:
    """Whether ``pin`` is a ``Package: *`` one (apt's ``Defaults`` table)."""
    names = pin.packages
    if isinstance(names, str):
        return names.strip() == "*"
    return tuple(names) == ("*",)


def pin_arches(pin: PinLike, native_arch: str) -> set[str] | None:
    """The architectures a specific pin can apply to, as ``pkgPolicy::CreatePin`` binds it: a
    name without ``:arch`` pins only the native architecture's package (``all`` ones belong to
    it); None when some name carries an architecture (then :meth:`PinLike.matches` decides)."""
    names = pin.packages.split() if isinstance(pin.packages, str) else list(pin.packages)
    names = [n[4:] if n.startswith("src:") else n for n in names]
    if any(":" in n for n in names):
        return None
    return {native_arch}


@dataclass(frozen=True)
class Upgrade:
    """One installed package whose candidate differs from the installed version.

    ``candidate`` is the record of the candidate version from its highest-priority repository;
    ``records`` every record of that version (each repository offering it, as ``apt list``
    names them all). ``held``: dpkg's selection is ``hold`` (apt keeps it back).
    ``downgrade``: the candidate is older (a pin of priority >= 1000).
    """

    name: str
    arch: str
    installed: str
    candidate: PackageRecord
    records: tuple[PackageRecord, ...]
    held: bool = False
    downgrade: bool = False

    @property
    def version(self) -> str:
        """The candidate version."""
        return self.candidate.version


class _Ver:
    """One version of one package: its records (one per repository) and the status's."""

    __slots__ = ("version", "text", "content", "records")

    def __init__(self, version: Version, text: str, content: str):
        self.version = version
        self.text = text
        self.content = content
        self.records: list[PackageRecord] = []


def version_content(record: PackageRecord) -> str:
    """What apt compares to decide that two stanzas of one version string are the same version
    (``debListParser::VersionHash`` and ``SameVersion``): Depends, Pre-Depends, Conflicts,
    Breaks and Replaces run together without blanks or '=', lower-cased, every "0:" dropped
    (dpkg's reformatting undone), and the Multi-Arch value. apt hashes that text; this keeps it
    (no collisions). Installed-Size, also in apt's hash, is compared by :func:`_same_size`,
    where 0 means unknown (a record whose parser did not fill it still matches)."""
    text = "".join((record.depends, record.pre_depends, record.conflicts, record.breaks, record.replaces))
    text = "".join(c for c in text.replace("0:", "") if not c.isspace() and c != "=").lower()
    return text + "|" + (record.multi_arch or "no")


def _same_size(entry: _Ver, rec: PackageRecord) -> bool:
    """Download sizes agree or one is unknown (the status file has none), and so do installed
    sizes (0: not given)."""
    size = next((r.size for r in entry.records if r.size), 0)
    isize = next((r.installed_size for r in entry.records if r.installed_size), 0)
    return ((not size or not rec.size or size == rec.size)
            and (not isize or not rec.installed_size or isize == rec.installed_size))


def _parse_version(text: str) -> Version | None:
    try:
        return Version.parse(text, strict=False)
    except InvalidInputError:
        return None  # apt's cache generator refuses such a stanza too


class Policy:
    """apt's pkgPolicy over a set of repository records and one image's installed packages.

    ``pins``: :class:`PinLike` objects in preferences order (``APT::Default-Release``, when
    set, is a ``Package: *`` release pin of priority 990 placed first, as ``pkgPolicy``'s
    constructor creates it before the preferences are read); ``archs``: the image's
    architectures (native first); records of other architectures are ignored, as apt does not
    fetch their indexes. ``records`` may be given here or later with :meth:`add`.
    """

    def __init__(self, pins: Iterable[PinLike] = (), archs: Iterable[str] = ("amd64",),
                 native_arch: str | None = None, records: Iterable[PackageRecord] = ()):
        self.archs = tuple(archs)
        self.native_arch = native_arch or (self.archs[0] if self.archs else "amd64")
        if self.native_arch not in self.archs:
            self.archs = (self.native_arch, *self.archs)
        pins = list(pins)
        self.default_pins = [p for p in pins if is_default_pin(p)]
        self.specific_pins = [p for p in pins if not is_default_pin(p)]
        # (name, arch) -> its one record, or a list of them when there are several
        self._raw: dict[tuple[str, str], PackageRecord | list[PackageRecord]] = {}
        self._grouped: dict[tuple[str, str], list[_Ver]] = {}
        self._file_prio: dict[ReleaseInfo, int] = {}
        self._provided: dict[str, list[tuple[str, str]]] = {}
        self.add(records)

    # ---- building ---------------------------------------------------------------------------
    def key(self, name: str, arch: str) -> tuple[str, str]:
        """apt's package key: ``Architecture: all`` (and an empty one) belongs to the native
        architecture."""
        return (name, self.native_arch if arch in ("all", "") else arch)

    def add(self, records: Iterable[PackageRecord]) -> None:
        """Index repository records (those of the image's architectures and ``all``).

        Only appended here: a package's versions are parsed and grouped when it is first asked
        about (a full Debian index has ~64,000 records, an image asks about a few hundred)."""
        with collector.paused():  # one list per package: ~60,000 of them for a Debian suite
            self._add(records)

    def _add(self, records: Iterable[PackageRecord]) -> None:
        """:meth:`add`'s work, with the collector paused."""
        archs = set(self.archs)
        native = self.native_arch
        raw, grouped, provided = self._raw, self._grouped, self._provided
        for rec in records:
            arch = rec.architecture
            if arch == "all":
                arch = native
            elif arch not in archs:
                continue
            key = (rec.package, arch)
            got = raw.get(key)
            if got is None:
                raw[key] = rec  # most packages have one record: no list for them (see _records)
            elif got.__class__ is list:
                got.append(rec)
            else:
                raw[key] = [got, rec]
            if grouped:  # a package asked about before gets regrouped
                grouped.pop(key, None)
            if rec.provides:  # only the names: the full parse waits until a record is looked at
                for part in rec.provides.split(","):
                    name = part.split("(", 1)[0].strip().split(":", 1)[0]
                    lst = provided.get(name)
                    if lst is None:
                        provided[name] = [key]
                    else:
                        lst.append(key)

    def providers(self, name: str) -> list[tuple[str, str]]:
        """The package keys of the indexed records whose Provides names ``name`` (one entry per
        record, in the order added; the version and architecture qualifier are not looked at)."""
        return self._provided.get(name, [])

    def _versions(self, key: tuple[str, str]) -> list[_Ver]:
        """The versions of one package (cached), in the order first given: records of one
        version string are one version when their content (:func:`version_content`) is equal
        and their Size is (apt's ``MergeListVersion`` and ``debListParser::SameVersion``)."""
        vers = self._grouped.get(key)
        if vers is None:
            vers = []
            groups: dict[tuple[Version, str], list[_Ver]] = {}
            for rec in self._records(key):
                v = _parse_version(rec.version)
                if v is None:
                    continue
                content = version_content(rec)
                same = groups.setdefault((v, content), [])
                entry = next((e for e in same if _same_size(e, rec)), None)
                if entry is None:
                    entry = _Ver(v, rec.version, content)
                    same.append(entry)
                    vers.append(entry)
                entry.records.append(rec)
            self._grouped[key] = vers
        return vers

    def iter_records(self):
        """Every indexed repository record (all packages, all versions), in no set order."""
        for got in self._raw.values():
            if got.__class__ is list:
                yield from got
            else:
                yield got

    def _records(self, key: tuple[str, str]):
        """The records of one package, in the order added."""
        got = self._raw.get(key)
        if got is None:
            return ()
        return got if got.__class__ is list else (got,)

    def versions(self, name: str, arch: str) -> list[str]:
        """The repository versions of a package, highest first (apt's version list order)."""
        vers = self._versions(self.key(name, arch))
        return [v.text for v in sorted(vers, key=lambda e: e.version, reverse=True)]

    def records_of(self, name: str, arch: str, version: str) -> list[PackageRecord]:
        """The repository records offering one version of a package, in the order given."""
        v = _parse_version(version)
        return [r for e in self._versions(self.key(name, arch)) if e.version == v for r in e.records]

    # ---- priorities -------------------------------------------------------------------------
    def file_priority(self, info: ReleaseInfo) -> int:
        """The priority of one repository (or of :data:`STATUS_RELEASE`), as ``apt-cache
        policy`` prints it before the file's name."""
        prio = self._file_prio.get(info)
        if prio is not None:
            return prio
        if info == STATUS_RELEASE:
            prio = 100
        elif info.but_automatic_upgrades:
            prio = 100
        elif info.not_automatic:
            prio = 1
        else:
            prio = 500
        probe = PackageRecord(package="", version="", architecture=self.native_arch, release=info)
        fixed = False
        for pin in self.default_pins:  # first match fixes it; a never pin always wins
            if (not fixed or pin.priority == NEVER_PIN) and prio != NEVER_PIN and pin.matches(probe):
                prio = pin.priority
                fixed = True
        self._file_prio[info] = prio
        return prio

    def _version_priority(self, records: list[PackageRecord], current: bool) -> int:
        """``GetPriority(Ver)``: ``records`` are the version's records, the status one
        (release :data:`STATUS_RELEASE`) among them when it is the installed version."""
        files = [self.file_priority(r.release) for r in records]
        key_arch = self.key("", records[0].architecture)[1] if records else self.native_arch
        for pin in self.specific_pins:
            arches = pin_arches(pin, self.native_arch)
            if arches is not None and key_arch not in arches:
                continue
            if any(pin.matches(r) for r in records):
                if pin.priority == NEVER_PIN:
                    return NEVER_PIN
                if any(f != NEVER_PIN for f in files):
                    return pin.priority
                break  # only the first matching pin is kept for a version
        best = None
        for r, f in zip(records, files):
            f = f if (r.release != STATUS_RELEASE or current) else -1
            best = f if best is None else max(best, f)
        return 0 if best is None else best

    def _table(self, name: str, arch: str, installed: PackageRecord | None,
               exact: bool = False) -> list[tuple[_Ver, int]]:
        """(version, priority) for every version, highest version first, the installed one
        (``installed``, a status record) merged into the repository version of equal string
        (and, with ``exact``, equal content; else it stays a version of its own, after them)."""
        vers = list(self._versions(self.key(name, arch)))
        iv = _parse_version(installed.version) if installed is not None else None
        current = None
        if iv is not None:
            content = version_content(installed)
            i = next((i for i, e in enumerate(vers)
                      if e.version == iv and (not exact or (e.content == content and _same_size(e, installed)))),
                     None)
            current = _Ver(iv, installed.version, content)
            if i is None:
                vers.append(current)
            else:
                current.text, current.records = vers[i].text, list(vers[i].records)
                vers[i] = current
            current.records.append(installed)
        table = []
        for v in sorted(vers, key=lambda e: e.version, reverse=True):  # stable: equal ones keep order
            table.append((v, self._version_priority(v.records, v is current)))
        return table

    def priority(self, record: PackageRecord, installed_version: str | None = None) -> int:
        """The priority of ``record``'s version (the number ``apt-cache policy`` prints beside
        it): its pin, else the highest priority of the repositories offering it."""
        installed = self._status_record(record.package, record.architecture, installed_version)
        v = _parse_version(record.version)
        for entry, prio in self._table(record.package, record.architecture, installed):
            if entry.version == v:
                return prio
        return self._version_priority([record], False)

    def table(self, name: str, arch: str, installed_version: str | None = None,
              installed: PackageRecord | None = None) -> list[tuple[str, int]]:
        """``(version, priority)`` for every version of a package, highest first, the installed
        one included: the version table ``apt-cache policy`` prints. ``installed`` (from
        :meth:`installed_record`) instead of ``installed_version`` also compares the content,
        so a locally built package of a repository's version string is a version of its own."""
        exact = installed is not None
        installed = installed or self._status_record(name, arch, installed_version)
        return [(e.text, prio) for e, prio in self._table(name, arch, installed, exact)]

    # ---- candidates -------------------------------------------------------------------------
    def _status_record(self, name: str, arch: str, version: str | None) -> PackageRecord | None:
        """A status-file record knowing only the version (merged with any equal version)."""
        if not version:
            return None
        return PackageRecord(package=name, version=version, architecture=arch or self.native_arch,
                             release=STATUS_RELEASE)

    def installed_record(self, entry) -> PackageRecord:
        """A dpkg status entry (``nuwa.deb.status.PkgEntry``) as a record of the status file
        (release :data:`STATUS_RELEASE`), with the fields apt compares to merge versions."""
        size = (entry.get("Installed-Size") or "").strip()
        return PackageRecord(
            package=entry.name, version=entry.version, architecture=entry.arch or self.native_arch,
            release=STATUS_RELEASE, multi_arch=entry.multiarch, depends=entry.get("Depends") or "",
            pre_depends=entry.get("Pre-Depends") or "", conflicts=entry.get("Conflicts") or "",
            breaks=entry.get("Breaks") or "", replaces=entry.get("Replaces") or "",
            installed_size=int(size) if size.isdigit() else 0)

    def _pick(self, table: list[tuple[_Ver, int]], installed: Version | None) -> _Ver | None:
        """``GetCandidateVer`` over a priority table."""
        cand, cand_prio = None, -1
        for entry, prio in table:
            if prio == 0 or prio <= cand_prio:
                continue
            if installed is not None and prio < 1000 and entry.version < installed:
                continue
            cand, cand_prio = entry, prio
        return cand

    def _best_record(self, entry: _Ver) -> PackageRecord:
        """The record of the repository with the highest priority (the first given among
        equals); the status record only when no repository offers the version."""
        repo = [r for r in entry.records if r.release != STATUS_RELEASE]
        pool = repo or entry.records
        return max(pool, key=lambda r: self.file_priority(r.release))  # max keeps the first

    def candidate(self, name: str, arch: str, installed_version: str | None = None,
                  installed: PackageRecord | None = None) -> PackageRecord | None:
        """The candidate of package ``name`` of architecture ``arch`` (``all`` means the native
        one) with ``installed_version`` installed (None: not installed; or ``installed``, see
        :meth:`table`); None when no version has a usable priority. The installed version's
        record is a repository's when one offers it, else one with release
        :data:`STATUS_RELEASE`."""
        exact = installed is not None
        installed = installed or self._status_record(name, arch, installed_version)
        installed_version = installed.version if installed else None
        table = self._table(name, arch, installed, exact)
        entry = self._pick(table, _parse_version(installed_version) if installed_version else None)
        return None if entry is None else self._best_record(entry)

    def candidate_records(self, name: str, arch: str, installed_version: str | None = None,
                          installed: PackageRecord | None = None) -> list[PackageRecord]:
        """Every repository record of the candidate version (empty when the candidate is only
        the installed version or there is none); arguments as for :meth:`candidate`."""
        exact = installed is not None
        installed = installed or self._status_record(name, arch, installed_version)
        iv = _parse_version(installed.version) if installed else None
        entry = self._pick(self._table(name, arch, installed, exact), iv)
        return [] if entry is None else [r for r in entry.records if r.release != STATUS_RELEASE]

    def upgradable(self, installed, records: Iterable[PackageRecord] = ()) -> list[Upgrade]:
        """Every installed package whose candidate is another version, sorted by name and
        architecture.

        ``installed``: a :class:`nuwa.deb.status.StatusFile` or its entries (``PkgEntry``);
        packages in ``not-installed`` or ``config-files`` state have no installed version and
        are skipped, as apt's status parser gives them no current version. ``records`` are
        added to the policy first.
        """
        self.add(records)
        entries = installed.entries if hasattr(installed, "entries") else installed
        out = []
        for e in entries:
            if e.status in _NOT_CURRENT or not e.version:
                continue
            arch = e.arch or self.native_arch
            status_rec = self.installed_record(e)
            iv = _parse_version(e.version)
            if iv is None:
                continue
            prios = self._table(e.name, arch, status_rec, exact=True)
            table = [v for v, _ in prios]
            entry = self._pick(prios, iv)
            cur = next(i for i, v in enumerate(table) if any(r is status_rec for r in v.records))
            if entry is None or entry is table[cur]:
                continue
            # apt compares version objects by their place in the version list
            # (``VerIterator::CompareVer``): a repository's stanza of the installed version
            # string with other content sorts before the status file's and is an upgrade
            recs = tuple(r for r in entry.records if r.release != STATUS_RELEASE)
            out.append(Upgrade(name=e.name, arch=self.key(e.name, arch)[1], installed=e.version,
                               candidate=self._best_record(entry), records=recs,
                               held=e.want == "hold", downgrade=table.index(entry) > cur))
        out.sort(key=lambda u: (u.name, u.arch))
        return out
