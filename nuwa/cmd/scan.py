"""``nuwa scan IMAGE...``: pending (security) updates of each image, from its own signed sources.

Text: one section per image -- a table of package, installed and candidate version, where the
candidate comes from, ``security`` and the CVE ids -- then the held and obsolete packages and
whether a reboot-relevant package is pending. ``--json``: :func:`scan_document` (schema in
docs/cli.md). Exit status: 0; ``--exit-code N`` makes it N when a security update is pending
in any image (after ``--security-only``/``--severity``), as ``trivy --exit-code`` does for
findings; an image that cannot be read gives its own exit code (3 damaged, 2 bad input) after
the others were scanned.
"""

from __future__ import annotations

import json
import sys

from nuwa.api import scan as api_scan
from nuwa.apt.options import RepoOptions
from nuwa.apt.scan import ScanOptions, severities
from nuwa.apt.tracker import Tracker
from nuwa.errors import InvalidInputError
from nuwa.fleet.images import gather


def scan_document(results) -> dict:
    """The ``--json`` document: one entry per image, in the order given."""
    return {"images": [r.to_json() for r in results]}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows) + "\n"


def format_text(results) -> str:
    """The human report, one section per image."""
    out = []
    for r in results:
        if r.error is not None:
            out.append(f"== {r.image}: {r.error}\n")
            continue
        name = r.os.get("PRETTY_NAME", "")
        out.append(f"== {r.image}" + (f" ({name})" if name else "") + "\n")
        if r.updates:
            rows = [["PACKAGE", "INSTALLED", "CANDIDATE", "FROM", "SECURITY", "CVES"]]
            for u in r.updates:
                rel = u.candidate.release
                cves = ",".join(u.cves or sorted({f.cve for f in u.findings if f.fixed_by_candidate}))
                flags = "yes" if u.security else "no"
                if u.held:
                    flags += " (held)"
                rows.append([u.package, u.installed, u.candidate.version, rel.archive or rel.suite, flags, cves or "-"])
            out.append(_table(rows))
        else:
            out.append("no pending updates\n")
        out.append(f"{len(r.updates)} upgradable, {len(r.security_updates)} security, "
                   f"{len(r.held)} held, {len(r.obsolete)} obsolete\n")
        if r.held:
            out.append("held: " + " ".join(r.held) + "\n")
        if r.obsolete:
            out.append("obsolete (no repository offers the installed version): " + " ".join(r.obsolete) + "\n")
        if r.reboot_packages:
            out.append("reboot required after the update (" + ", ".join(r.reboot_packages) + ")\n")
        for w in r.warnings:
            out.append(f"warning: {w}\n")
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"


def run_scan(args) -> int:
    """Handler of ``nuwa scan``."""
    if args.severity and not args.tracker:
        raise InvalidInputError("--severity needs --tracker FILE (severities come from tracker data)")
    repo = RepoOptions(repos=args.repo, keyrings=args.keyring, sources_only=args.sources_only,
                       allow_insecure=args.allow_insecure, allow_expired=args.allow_expired,
                       cache=args.cache, offline=args.offline, quiet=args.quiet or args.json)
    opts = ScanOptions(security_only=args.security_only, cves=args.cves,
                       tracker=Tracker.load(args.tracker) if args.tracker else None,
                       severities=severities(args.severity) if args.severity else None)
    results = api_scan(gather(args.images, args.from_file), repo, opts, partition=args.partition)
    if args.json:
        json.dump(scan_document(results), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(results))
    failed = [r for r in results if r.error is not None]
    for r in failed:
        print(f"nuwa scan: {r.image}: {r.error}", file=sys.stderr)
    if failed:
        return max(r.error.exit_code for r in failed)
    if args.exit_code and any(r.security_updates for r in results):
        return args.exit_code
    return 0
