"""``nuwa scan``: what an image is missing, from its own signed package sources.

For each image: every installed package with a newer candidate (as apt's policy picks it,
``nuwa.apt.candidates``), where the candidate comes from, whether it is a security update (as
unattended-upgrades' default origins decide, ``nuwa.apt.security``), the CVE ids it fixes (from
the candidate's changelog with ``cves=True``, and from a security-tracker export), the held
and obsolete packages, and whether a reboot-relevant package is pending. Several images share
one :class:`nuwa.apt.repository.Repositories`, so each repository is fetched and parsed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.apt.candidates import Policy
from nuwa.apt.changelog import cves_between, deb_changelog
from nuwa.apt.reboot import REBOOT_PACKAGES
from nuwa.apt.records import PackageRecord
from nuwa.apt.repository import Repositories
from nuwa.apt.security import is_security
from nuwa.apt.tracker import URGENCIES, Tracker, TrackerFinding
from nuwa.deb.status import StatusFile
from nuwa.errors import InvalidInputError, NuwaError, RepositoryError
from nuwa.image import Image, read_os_release

@dataclass
class ScanOptions:
    """What to report: ``security_only`` lists only security updates; ``cves`` reads each
    candidate's changelog (downloads its .deb); ``tracker`` adds tracker findings;
    ``severities`` keeps only updates with a finding of those urgencies (needs ``tracker``)."""

    security_only: bool = False
    cves: bool = False
    tracker: Tracker | None = None
    severities: frozenset[str] | None = None


@dataclass
class PendingUpdate:
    """One installed package with a newer candidate."""

    package: str
    architecture: str
    installed: str
    candidate: PackageRecord
    security: bool
    held: bool
    reboot: bool
    installed_source_version: str
    cves: list[str] = field(default_factory=list)
    findings: list[TrackerFinding] = field(default_factory=list)
    changelog_note: str = ""

    def to_json(self) -> dict:
        """The update in ``nuwa scan --json`` (docs/cli.md)."""
        r = self.candidate
        return {"package": self.package, "architecture": self.architecture, "installed": self.installed,
                "candidate": r.version, "source": r.source_name, "source_version": r.source_version,
                "suite": r.release.archive or r.release.suite, "codename": r.release.codename,
                "origin": r.release.origin, "label": r.release.label, "site": r.release.site,
                "component": r.release.component, "security": self.security, "held": self.held,
                "reboot": self.reboot, "cves": self.cves, "size": r.size,
                "tracker": [f.to_json() for f in self.findings],
                **({"changelog_note": self.changelog_note} if self.changelog_note else {})}


@dataclass
class ImageScan:
    """The scan of one image (or the one-line error that stopped it)."""

    image: str
    os: dict = field(default_factory=dict)
    architectures: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    updates: list[PendingUpdate] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: NuwaError | None = None

    @property
    def security_updates(self) -> list[PendingUpdate]:
        """The pending updates that are security updates."""
        return [u for u in self.updates if u.security]

    @property
    def reboot_packages(self) -> list[str]:
        """Pending updates of reboot-relevant packages."""
        return sorted({u.package for u in self.updates if u.reboot})

    def to_json(self) -> dict:
        """The image's section of ``nuwa scan --json``."""
        if self.error is not None:
            return {"image": self.image, "error": str(self.error), "exit_code": self.error.exit_code}
        return {"image": self.image, "os": self.os, "architectures": self.architectures,
                "sources": self.sources, "updates": [u.to_json() for u in self.updates],
                "held": self.held, "obsolete": self.obsolete,
                "reboot_required": bool(self.reboot_packages), "reboot_packages": self.reboot_packages,
                "summary": {"upgradable": len(self.updates), "security": len(self.security_updates),
                            "held": len(self.held), "obsolete": len(self.obsolete)},
                "warnings": self.warnings}


def _source_version(entry) -> str:
    """The installed binary's source version (``Source: src (ver)``, else its own version)."""
    src = entry.para.get("Source", "") if hasattr(entry, "para") else ""
    if "(" in src:
        return src.split("(", 1)[1].rstrip(") ").strip()
    return entry.version


def scan_fs(fs, repos: Repositories, options: ScanOptions | None = None, name: str = "") -> ImageScan:
    """Scan the image whose root filesystem is ``fs`` (read only; nothing is written to it)."""
    options = options or ScanOptions()
    img, chunks = repos.indexes_for(fs)
    osr = read_os_release(fs)
    distro, codename = osr.get("ID", "").lower(), osr.get("VERSION_CODENAME", "")
    out = ImageScan(image=name, os={k: osr[k] for k in ("ID", "VERSION_ID", "VERSION_CODENAME", "PRETTY_NAME") if k in osr},
                    architectures=list(img.architectures),
                    sources=[f"{s.uri} {s.suite} {' '.join(s.components)}".rstrip() for s in img.sources],
                    warnings=img.warnings + repos.warnings)
    status = StatusFile.load(fs, "/var/lib/dpkg/status")
    installed = [e for e in status.entries if e.status not in ("not-installed", "config-files")]
    # a candidate depends only on its own package's versions: the other 60,000 are not looked at
    records = repos.records_named(chunks, {e.name for e in installed})
    by_key = {(e.name, e.arch): e for e in installed}
    policy = Policy(img.pins, img.architectures, img.architectures[0] if img.architectures else "")
    upgrades = policy.upgradable(installed, records)
    out.held = sorted(e.nonambig() for e in installed if e.want == "hold")
    offered: set[tuple[str, str, str]] = {(r.package, r.architecture, r.version) for r in records}
    upgradable_keys = set()
    for up in upgrades:
        entry = by_key.get((up.name, up.arch)) or by_key.get((up.name, "all"))
        if entry is None:
            continue
        upgradable_keys.add((entry.name, entry.arch))
        rec = up.candidate
        sec = is_security(rec.release, distro, codename)
        if options.security_only and not sec:
            continue
        out.updates.append(PendingUpdate(
            package=entry.nonambig(), architecture=entry.arch, installed=entry.version, candidate=rec,
            security=sec, held=up.held, reboot=bool(REBOOT_PACKAGES.match(entry.name)),
            installed_source_version=_source_version(entry)))
    out.obsolete = sorted(e.nonambig() for e in installed
                          if e.status == "installed" and (e.name, e.arch) not in upgradable_keys
                          and (e.name, e.arch, e.version) not in offered)
    if options.tracker is not None:
        for u in out.updates:
            u.findings = options.tracker.lookup(u.candidate.source_name, codename, u.installed_source_version,
                                                u.candidate.source_version)
    if options.cves:
        # a sibling package whose .deb holds the shared changelog need not be installed
        _changelog_cves(out.updates, [r for c in chunks for r in c], repos, img.conf)
    if options.severities is not None:
        out.updates = [u for u in out.updates
                       if any(f.fixed_by_candidate and f.urgency in options.severities for f in u.findings)]
    out.updates.sort(key=lambda u: (u.package, u.architecture))
    return out


def _changelog_cves(updates: list[PendingUpdate], records: list[PackageRecord], repos: Repositories, conf) -> None:
    """Fill ``cves`` from the candidates' changelogs; one .deb read per source package."""
    by_name: dict[str, list[PackageRecord]] = {}
    for r in records:
        by_name.setdefault(r.package, []).append(r)
    done: dict[tuple[str, str, str], tuple[list[str], str]] = {}
    fetcher = repos.fetcher(conf)
    for u in updates:
        rec = u.candidate
        key = (rec.source_name, rec.source_version, u.installed_source_version)
        if key not in done:
            done[key] = _read_cves(rec, u, by_name, fetcher)
        u.cves, u.changelog_note = done[key]


def _read_cves(rec: PackageRecord, u: PendingUpdate, by_name: dict, fetcher) -> tuple[list[str], str]:
    seen = set()
    current = rec
    for _ in range(3):  # the package, then the sibling its doc directory links to
        if current.package in seen or not current.filename:
            break
        seen.add(current.package)
        path = fetcher.get_file(f"{current.release.uri}/{current.filename}", sha256=current.sha256, size=current.size)
        text, link = deb_changelog(path, current.package)
        if text is not None:
            return cves_between(text, u.installed_source_version, rec.source_version), ""
        sibling = next((r for r in by_name.get(link or "", []) if r.source_name == rec.source_name
                        and r.source_version == rec.source_version), None)
        if sibling is None:
            break
        current = sibling
    return [], "no changelog in the candidate's .deb"


def scan_images(paths, repos: Repositories, options: ScanOptions | None = None, partition: int | None = None,
                opener=None) -> list[ImageScan]:
    """Scan several images sharing ``repos``; an image that fails carries its error, the rest go on.

    ``opener(path, partition=)`` opens an image (default :func:`nuwa.image.Image.open`).
    """
    opener = opener or Image.open
    results = []
    for path in paths:
        try:
            with opener(path, partition=partition) as image:
                results.append(scan_fs(image.root(), repos, options, name=str(path)))
        except RepositoryError:
            raise  # a repository problem is the same for every image: stop, as apt-get update does
        except NuwaError as e:
            results.append(ImageScan(image=str(path), error=e))
    return results


def severities(text: str) -> frozenset[str]:
    """``--severity`` values (comma-separated tracker urgencies; upper or lower case)."""
    words = {w.strip().lower() for w in text.split(",") if w.strip()}
    known = set(URGENCIES) | {"not yet assigned", "end-of-life"}
    bad = sorted(words - known)
    if bad:
        raise InvalidInputError(f"--severity: unknown urgency {bad[0]!r} (known: {', '.join(URGENCIES)})")
    return frozenset(words)
