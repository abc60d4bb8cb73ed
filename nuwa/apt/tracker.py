"""Debian security-tracker data (``--tracker FILE``): which CVEs an update fixes, how urgent.

The tracker's JSON export maps source package -> CVE id -> ``releases`` -> codename ->
``{"status": "resolved"|"open"|"undetermined", "fixed_version": V, "urgency": U}``. For one
pending update (source package, installed and candidate source versions, the image's codename)
:meth:`Tracker.lookup` answers, per CVE of that source in that release: whether the installed
version is affected (not yet at ``fixed_version``, or still open), whether the candidate fixes
it (``installed < fixed_version <= candidate``), and the tracker's urgency -- the severity
``--severity`` filters on (``unimportant``, ``low``, ``medium``, ``high``; a trailing ``*`` or
``**`` the tracker appends is dropped; ``not yet assigned`` is kept as said).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nuwa.deb.version import compare_strings, is_valid
from nuwa.errors import InvalidInputError, quote

#: the urgencies the tracker uses, least to most urgent ("end-of-life" and "not yet assigned"
#: are kept but not ordered)
URGENCIES = ("unimportant", "low", "medium", "high")
#: the largest tracker file read (the full export is about 60 MB)
TRACKER_MAX = 512 << 20


@dataclass(frozen=True)
class TrackerFinding:
    """One CVE of an update's source package, as the tracker sees it for the image's release."""

    cve: str
    urgency: str
    status: str
    fixed_version: str | None
    installed_affected: bool
    fixed_by_candidate: bool

    def to_json(self) -> dict:
        """The finding in ``nuwa scan --json``."""
        return {"cve": self.cve, "urgency": self.urgency, "status": self.status,
                "fixed_version": self.fixed_version, "installed_affected": self.installed_affected,
                "fixed_by_candidate": self.fixed_by_candidate}


def normalise_urgency(text: str) -> str:
    """The tracker's urgency without its ``*`` markers (``low**`` -> ``low``)."""
    return (text or "not yet assigned").rstrip("*").strip() or "not yet assigned"


class Tracker:
    """A loaded tracker export."""

    def __init__(self, data: dict, where: str):
        if not isinstance(data, dict):
            raise InvalidInputError("not a security-tracker export (a JSON object of source packages)", where=where)
        self.data = data
        self.where = where

    @classmethod
    def load(cls, path: str) -> "Tracker":
        """Read the JSON export at ``path`` (one-line error when it is not one)."""
        try:
            with open(path, "rb") as f:
                raw = f.read(TRACKER_MAX + 1)
        except OSError as e:
            raise InvalidInputError(f"--tracker {quote(path)}: {e.strerror or e}") from None
        if len(raw) > TRACKER_MAX:
            raise InvalidInputError(f"larger than {TRACKER_MAX >> 20} MiB", where=path)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"not valid JSON: {e}", where=path) from None
        return cls(data, path)

    def lookup(self, source: str, codename: str, installed: str | None, candidate: str) -> list[TrackerFinding]:
        """The findings for ``source`` in release ``codename`` (see the module note)."""
        cves = self.data.get(source)
        if not isinstance(cves, dict):
            return []
        out = []
        for cve, entry in cves.items():
            if not isinstance(entry, dict):
                continue
            rel = (entry.get("releases") or {}).get(codename)
            if not isinstance(rel, dict):
                continue
            status = str(rel.get("status", ""))
            fixed = rel.get("fixed_version")
            fixed = str(fixed) if fixed is not None and is_valid(str(fixed), strict=False) else None
            if fixed == "0":  # the tracker's "never affected"
                continue
            if status == "resolved" and fixed is not None:
                affected = installed is None or compare_strings(installed, fixed) < 0
                fixes = affected and compare_strings(fixed, candidate) <= 0
            else:
                affected, fixes = status in ("open", "undetermined"), False
            if not affected:
                continue
            out.append(TrackerFinding(cve=str(cve), urgency=normalise_urgency(str(rel.get("urgency", ""))),
                                      status=status, fixed_version=fixed, installed_affected=affected,
                                      fixed_by_candidate=fixes))
        out.sort(key=lambda f: f.cve)
        return out
