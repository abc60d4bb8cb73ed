"""Per-package facts of a patch run, and whether the image needs a reboot afterwards.

:func:`package_details` adds to each package action of the report (``packages`` in the JSON
document, :mod:`nuwa.patch.report`):

- ``source`` and ``cves``: the ``CVE-YYYY-NNNN`` ids of the new version's
  ``changelog.Debian.gz`` entries newer than the installed *source* version -- the one reader
  ``nuwa scan --cves`` uses (:func:`nuwa.apt.changelog.cves_between`), applied to the very
  ``.deb`` that was unpacked (a package whose doc directory links to a sibling of the same
  source is read from the sibling's ``.deb`` when the run unpacked it too);
- ``scripts``: the maintainer scripts run for the package (``postinst configure`` ...), and
  ``commands``: how many of their commands were simulated, dropped and deferred to first boot.

:func:`reboot_needed` answers what ``/run/reboot-required`` would say after the same update
on the running system. It is decided from two things, and the report says which:

1. **What the scripts would have written.** Ubuntu's postinsts (libc6, the kernel, dbus,
   systemd...) call ``/usr/share/update-notifier/notify-reboot-required``, a shell script that
   writes ``/var/run/reboot-required`` and appends the package to ``reboot-required.pkgs``;
   Debian's ``unattended-upgrades`` ships ``/etc/kernel/postinst.d/unattended-upgrades``, which
   touches the same file after a kernel install. The simulator interprets those scripts from
   the image, so their writes are in the run's changes: a changed ``/run/reboot-required`` or
   ``/var/run/reboot-required`` (or a call of ``notify-reboot-required`` that had to be
   deferred) means a reboot, with the packages of ``reboot-required.pkgs``.
2. **The packages themselves**, for images without those helpers (a Debian image without
   unattended-upgrades writes nothing): the rule of ``nuwa scan``
   (:data:`nuwa.apt.scan.REBOOT_PACKAGES`: a kernel or its modules, CPU microcode, ``libc6``,
   ``systemd``, ``dbus``) -- the packages needrestart cannot restart in place and whose new
   code only a reboot loads.

A dormant image is booted anew anyway; the answer tells an operator whether the update is
complete only after that boot (e.g. to schedule it), exactly as on a running system.
"""

from __future__ import annotations

from nuwa.apt.changelog import cves_between, deb_changelog
from nuwa.apt.scan import REBOOT_PACKAGES
from nuwa.errors import NuwaError

#: the files notify-reboot-required and the kernel hook write (``/var/run`` is ``/run``)
REBOOT_FILES = ("/run/reboot-required", "/var/run/reboot-required")
REBOOT_PKGS_FILES = ("/run/reboot-required.pkgs", "/var/run/reboot-required.pkgs")


def installed_sources(status) -> dict[str, tuple[str, str]]:
    """name -> (installed version, installed source version) from a dpkg ``StatusFile``,
    taken before the run (what the changelog is read against)."""
    out = {}
    for e in status.entries:
        if e.status in ("not-installed", "config-files") or not e.version:
            continue
        src = (e.get("Source") or "").strip()
        sver = src.split("(", 1)[1].rstrip(") ").strip() if "(" in src else e.version
        out[e.name] = (e.version, sver)
    return out


def _changelog_cves(archive, by_package: dict, old_source_version: str | None) -> tuple[list[str], str]:
    """CVE ids of ``archive``'s changelog entries newer than ``old_source_version``; the
    sibling's .deb is read when the doc directory links to it (and it is in the run)."""
    src_ver = _source_version(archive)
    seen = set()
    current = archive
    for _ in range(3):
        if current.package in seen:
            break
        seen.add(current.package)
        try:
            text, link = deb_changelog(current.path, current.package)
        except NuwaError as e:  # an unreadable changelog does not fail the run: it is noted
            return [], f"changelog not readable: {e}"
        if text is not None:
            return cves_between(text, old_source_version, src_ver), ""
        current = by_package.get(link or "")
        if current is None:
            break
    return [], "no changelog in the .deb (or in a sibling's .deb of this run)"


def _source_version(archive) -> str:
    src = (archive.control.get("Source") or "").strip()
    if "(" in src:
        return src.split("(", 1)[1].rstrip(") ").strip()
    return archive.control.get("Version", "")


def package_details(packages: list[dict], archives, scripts: list[dict], before: dict) -> None:
    """Add ``source``, ``cves``, ``changelog_note``, ``scripts`` and ``commands`` to each
    package action of the report (in place); see the module note. ``before`` is
    :func:`installed_sources` of the image before the run."""
    by_package = {a.package: a for a in archives}
    done: dict[tuple, tuple[list[str], str]] = {}
    for p in packages:
        name = p["package"].split(":", 1)[0]
        a = by_package.get(name)
        p["source"] = None
        p["cves"], p["changelog_note"] = [], ""
        if a is not None and p.get("new_version"):
            src = (a.control.get("Source") or name).split(" ", 1)[0]
            p["source"] = src
            old_sv = before.get(name, (None, None))[1]
            key = (src, _source_version(a), old_sv)
            if key not in done:
                done[key] = _changelog_cves(a, by_package, old_sv)
            p["cves"], p["changelog_note"] = done[key]
        mine = [s for s in scripts if s["package"].split(":", 1)[0] == name]
        p["scripts"] = [f"{s['script']} {' '.join(s['args'])}".rstrip() for s in mine]
        counts = {"simulated": 0, "dropped": 0, "deferred": 0}
        for s in mine:
            if s.get("deferred_whole"):
                counts["deferred"] += 1  # the whole script is one first-boot entry
                continue
            for k in counts:
                counts[k] += (s.get("commands") or {}).get("counts", {}).get(k, 0)
        p["commands"] = counts


def reboot_needed(packages: list[dict], changes, scripts: list[dict], read=None) -> dict:
    """``{"required", "packages", "reasons"}``: whether ``/run/reboot-required`` would exist
    after the run and why (see the module note). ``changes`` are the overlay's changes (their
    ``to_json()`` entries have ``path``); ``read(path)`` reads a file of the staged image."""
    reasons: list[str] = []
    pkgs: set[str] = set()
    changed = {c.to_json()["path"] if hasattr(c, "to_json") else c["path"] for c in changes}
    written = [f for f in REBOOT_FILES if f in changed]
    if written:
        reasons.append(f"a maintainer script wrote {written[0]}")
        for f in REBOOT_PKGS_FILES:
            if f in changed and read is not None:
                try:
                    pkgs.update(w for w in read(f).decode("utf-8", "replace").split() if w)
                except OSError:
                    pass
    for s in scripts:
        for cmd in (s.get("commands") or {}).get("commands", []):
            argv = cmd.get("argv") or []
            if argv and argv[0].rsplit("/", 1)[-1] == "notify-reboot-required" \
                    and cmd.get("classification") == "deferred":
                reasons.append(f"{s['package']} {s['script']} calls notify-reboot-required (deferred to first boot)")
                pkgs.add(s["package"].split(":", 1)[0])
    rule = sorted({p["package"].split(":", 1)[0] for p in packages
                   if p.get("new_version") and REBOOT_PACKAGES.match(p["package"].split(":", 1)[0])})
    if rule:
        reasons.append(f"updated: {', '.join(rule)} (kernel, microcode, libc6, systemd or dbus: "
                       "only a reboot loads the new code)")
        pkgs.update(rule)
    return {"required": bool(reasons), "packages": sorted(pkgs), "reasons": reasons}
