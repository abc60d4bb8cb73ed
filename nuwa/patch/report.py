"""What a patch run tells: one JSON document and the human summary (docs/cli.md "nuwa patch").

The document (``nuwa patch --json`` on stdout, ``--report FILE`` on the host, and
:meth:`PatchReport.to_json` from the API) holds the package actions with old and new
versions, conffile decisions, every maintainer script run and what became of its commands, the
first-boot job, and every changed path. :func:`summary_lines` turns it into the lines
``nuwa patch`` prints without ``--json``.

Per package (:func:`package_details`) and for the run (:func:`reboot_needed`) the report also
says what the update fixes and what it needs afterwards:

:func:`package_details` adds to each package action (``packages`` in the JSON document):

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
   (:data:`nuwa.apt.reboot.REBOOT_PACKAGES`: a kernel or its modules, CPU microcode, ``libc6``,
   ``systemd``, ``dbus``) -- the packages needrestart cannot restart in place and whose new
   code only a reboot loads.

A dormant image is booted anew anyway; the answer tells an operator whether the update is
complete only after that boot (e.g. to schedule it), exactly as on a running system.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass

from nuwa.apt.changelog import CHANGELOG_MAX, cves_between, deb_changelog
from nuwa.apt.reboot import REBOOT_PACKAGES
from nuwa.errors import InvalidInputError, NuwaError, OperationFailedError
from nuwa.patch.jsontext import dump
from nuwa.script.firstboot_status import dpkg_notes, job_status
from nuwa.script.firstboot_status import summary_lines as firstboot_lines


@dataclass
class PatchReport:
    """The outcome of one patch run (``nuwa.open(...).patch(...)`` returns it)."""

    #: the JSON document, exactly what ``nuwa patch --json`` prints
    doc: dict

    def to_json(self) -> dict:
        """The JSON document (a dict; ``json.dumps`` it to get ``nuwa patch --json``)."""
        return self.doc

    def summary_lines(self) -> list[str]:
        """The human summary ``nuwa patch`` prints."""
        return summary_lines(self.doc)

    @property
    def written(self) -> str | None:
        """The file that was written (the new overlay, or the image in place); None for a dry run."""
        w = self.doc["written"]
        return None if w is None else w["path"]

    @property
    def plan(self) -> dict | None:
        """apt's plan of the run (``--deb``, ``--upgrade``...; docs/cli.md "The plan"), or None."""
        return self.doc.get("plan")

    def plan_lines(self) -> list[str]:
        """The plan in words, as ``nuwa patch --dry-run`` prints it after ``plan:``."""
        return plan_lines(self.doc["plan"]) if self.doc.get("plan") else []

    @property
    def reboot_required(self) -> bool:
        """Whether ``/run/reboot-required`` would exist after this update (``doc["reboot"]``)."""
        return bool((self.doc.get("reboot") or {}).get("required"))

    @property
    def packages(self) -> list[dict]:
        """The package actions: ``action``, ``package``, ``old_version``, ``new_version``."""
        return self.doc["packages"]


def apt_size(n: int) -> str:
    """A byte count as apt prints it (apt-pkg/contrib/strutl.cc ``SizeToStr`` in the C locale,
    then "B"): ``0 B``, ``9999 B``, ``12.3 kB``, ``456 kB``, ``1234 kB``, ``12.0 MB``."""
    size, units = float(abs(n)), ("", "k", "M", "G", "T", "P", "E", "Z", "Y")
    for i, unit in enumerate(units):
        if size < 100 and i != 0:
            return f"{size:.1f} {unit}B"
        if size < 10000:
            return f"{size:.0f} {unit}B"
        size /= 1000.0
    return f"{size:.0f} YB"


def plan_lines(doc: dict) -> list[str]:
    """The plan in words: the packages, then apt's own summary lines (``apt-get -s install``
    prints the same counts and sizes), then the dpkg calls."""
    out = []
    up = [i for i in doc["install"] if not i["new"]]
    new = [i for i in doc["install"] if i["new"]]
    for i in up:
        out.append(f"upgrade: {i['package']} {i['old_version']} -> {i['version']} ({i['suite']})")
    for i in new:
        out.append(f"new: {i['package']} {i['version']} ({i['suite']})")
    for name in doc["remove"]:
        out.append(("purge: " if doc["purge"] else "remove: ") + name)
    for name, why in sorted(doc["kept_back"].items()):
        out.append(f"kept back: {name} ({why})")
    for name in doc.get("already_installed", []):
        out.append(f"{name} is already the newest version")
    for line in doc.get("unmet_recommends", []):
        out.append(f"recommended, not installed: {line}")
    out += [f"note: {n}" for n in doc.get("notes", [])]
    out.append(f"{len(up)} upgraded, {len(new)} newly installed, {len(doc['remove'])} to remove and "
               f"{doc.get('not_upgraded', len(doc['kept_back']))} not upgraded.")
    total, get = doc.get("archives_size", doc["download_size"]), doc["download_size"]
    if total:
        out.append(f"Need to get {apt_size(get)}/{apt_size(total)} of archives." if get != total
                   else f"Need to get {apt_size(total)} of archives.")
    change = doc.get("disk_space_change", doc["installed_size_change_kib"] * 1024)
    if not doc["install"] and not doc["remove"]:
        pass  # nothing to do: apt prints no sizes either
    elif change >= 0:
        out.append(f"After this operation, {apt_size(change)} of additional disk space will be used.")
    elif change < 0:
        out.append(f"After this operation, {apt_size(-change)} disk space will be freed.")
    for action, ops in doc["steps"]:
        out.append(f"  dpkg --{action} {' '.join(ops)}".rstrip())
    return out


# ---- per package: CVEs, scripts, commands; the reboot answer ---------------------------------
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


def _unpacked_changelog(read, archive) -> str | None:
    """The changelog this run's dpkg unpacked from ``archive``, read back from the staged image,
    or None (not listed in the package's new ``.list``: a doc directory that is a symlink, a
    ``path-exclude``d doc, a dry-run reader missing). Reading it there saves a second pass over
    the .deb's data archive, which for a kernel is over 100 MB of xz to decompress (3.4 s of
    a 11 s kernel update, measured)."""
    if read is None:
        return None
    doc = f"/usr/share/doc/{archive.package}"
    arch = archive.control.get("Architecture", "")
    for lst in (f"/var/lib/dpkg/info/{archive.package}.list", f"/var/lib/dpkg/info/{archive.package}:{arch}.list"):
        try:
            listed = set(read(lst).decode("utf-8", "surrogateescape").splitlines())
        except OSError:
            continue
        for name in (doc + "/changelog.Debian.gz", doc + "/changelog.gz"):
            if name in listed:
                try:
                    raw = gzip.GzipFile(fileobj=io.BytesIO(read(name))).read(CHANGELOG_MAX)
                except (OSError, EOFError, zlib.error):
                    return None  # the .deb is read instead, and its error reported from there
                return raw.decode("utf-8", "replace")
        return None
    return None


def _changelog_text(archive, read, texts: dict) -> tuple[str | None, str | None, str]:
    """``(text, sibling, error)`` of ``archive``'s changelog: unpacked in the staged image, else
    in the .deb (or the sibling its doc directory links to); read once per package of the run
    (``texts``): a kernel's image and its meta package share one changelog of megabytes."""
    got = texts.get(archive.package)
    if got is None:
        text = _unpacked_changelog(read, archive)
        if text is not None:
            got = (text, None, "")
        else:
            try:
                got = (*deb_changelog(archive.path, archive.package), "")
            except NuwaError as e:  # an unreadable changelog does not fail the run: it is noted
                got = (None, None, f"changelog not readable: {e}")
        texts[archive.package] = got
    return got


def _changelog_cves(archive, by_package: dict, old_source_version: str | None, read=None,
                    texts: dict | None = None) -> tuple[list[str], str]:
    """CVE ids of ``archive``'s changelog entries newer than ``old_source_version``; the
    sibling's .deb is read when the doc directory links to it (and it is in the run).
    ``read`` reads the staged image, where the unpacked changelog is looked for first;
    ``texts`` keeps the changelogs read (:func:`_changelog_text`)."""
    texts = {} if texts is None else texts
    src_ver = _source_version(archive)
    seen = set()
    current = archive
    for _ in range(3):
        if current.package in seen:
            break
        seen.add(current.package)
        text, link, error = _changelog_text(current, read, texts)
        if error:
            return [], error
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


def package_details(packages: list[dict], archives, scripts: list[dict], before: dict, read=None) -> None:
    """Add ``source``, ``cves``, ``changelog_note``, ``scripts`` and ``commands`` to each
    package action of the report (in place); see the module note. ``before`` is
    :func:`installed_sources` of the image before the run; ``read`` reads the staged image."""
    by_package = {a.package: a for a in archives}
    done: dict[tuple, tuple[list[str], str]] = {}
    texts: dict = {}
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
                done[key] = _changelog_cves(a, by_package, old_sv, read, texts)
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
    changed = {c["path"] if isinstance(c, dict) else c.path for c in changes}  # no to_json() per entry
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


def check_report_path(path: str | None) -> None:
    """A report path must name a file in an existing directory (InvalidInputError, exit 2)."""
    if path and os.path.isdir(path):
        raise InvalidInputError("the report path is a directory", where=path)
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise InvalidInputError("the report's directory does not exist", where=path)


def _deferred_command_json(d) -> dict:
    return {"argv": d.argv, "cwd": d.cwd, "line": d.line, "reason": d.reason}


def build_report(image: str, archives, applied, changes, target: str | None, dry_run: bool, in_place: bool,
                 previous: dict | None = None, before: dict | None = None, read=None) -> dict:
    """The JSON document of a run (``nuwa patch --json`` and ``--report``).

    ``image`` is the image's name as the caller gave it, ``archives`` the opened .debs (their
    ``path`` is the file name reported), ``applied`` what :func:`nuwa.patch.install.install_debs`
    returned, ``changes`` the overlay's changes, ``target`` the file written (None: dry run).
    ``before`` (:func:`installed_sources` before the run) and ``read`` (a
    file of the staged image) give each package its CVEs, scripts and command counts and the
    run its ``reboot`` answer (:func:`package_details`, :func:`reboot_needed`).
    """
    rep = applied.report
    runner = applied.runner
    entry_ids = {i: ids for i, ids in runner.job_entries}
    scripts = []
    for i, c in enumerate(runner.results):
        s = {"package": c.package, "script": c.script_name, "args": c.args, "status": c.status,
             "deferred_whole": c.deferred_whole, "reason": c.reason, "firstboot_entries": entry_ids.get(i, [])}
        if c.result is not None and not c.deferred_whole:
            s["commands"] = c.result.record.to_json()
            s["deferred_commands"] = [_deferred_command_json(d) for d in c.result.deferred_commands]
        scripts.append(s)
    job = runner.job
    # the job's write (in Dpkg.commit) marks its entries as stored: the runner knows which it added
    new_ids = [i for _, ids in runner.job_entries for i in ids]
    packages = [{"action": a, "package": p, "old_version": o or None, "new_version": n or None}
                for a, p, o, n in rep.actions]
    package_details(packages, archives, scripts, before or {}, read)
    return {
        "image": image,
        "debs": [{"file": a.path, "package": a.package, "version": a.control.get("Version", ""),
                  "architecture": a.control.get("Architecture", "")} for a in archives],
        "dry_run": bool(dry_run),
        "written": None if target is None else {"path": target, "in_place": bool(in_place)},
        "packages": packages,
        "reboot": reboot_needed(packages, changes, scripts, read),
        "conffiles": [{"package": p, "path": f, "decision": d} for p, f, d in rep.conffiles],
        "replaced": [{"package": p, "path": f} for p, f in rep.replaced],
        "disappeared": [list(x) if isinstance(x, (tuple, list)) else x for x in rep.disappeared],
        "triggers": [{"package": p, "triggers": t} for p, t in rep.triggers],
        "counts": runner.counts(),
        "scripts": scripts,
        "firstboot": None if job is None or not new_ids else job.to_json() | {"new_entries": new_ids},
        "previous_firstboot": previous,
        "changes": [c.to_json() for c in changes],
    }


def summary_lines(doc: dict) -> list[str]:
    """The human summary of a run (stdout)."""
    out = []
    if doc.get("nothing_to_do"):
        kept = doc.get("plan", {}).get("kept_back", {})
        already = doc.get("plan", {}).get("already_installed", [])
        return ["nothing to do: no package to upgrade, install or remove; nothing was written"] + \
            [f"kept back: {n} ({why})" for n, why in sorted(kept.items())] + \
            [f"{n} is already the newest version" for n in already]
    prev = doc.get("previous_firstboot")
    if prev is not None:
        out += [f"before this run: {line}" for line in firstboot_lines(prev["status"])]
        out += [f"before this run: dpkg: {n}" for n in prev["dpkg_notes"]]
    for p in doc["packages"]:
        fixes = f" (fixes {', '.join(p['cves'])})" if p.get("cves") else ""
        if p["old_version"]:
            out.append(f"{p['action']}: {p['package']} {p['old_version']} -> {p['new_version']}{fixes}")
        else:
            out.append(f"{p['action']}: {p['package']} {p['new_version']}{fixes}")
    for c in doc["conffiles"]:
        out.append(f"conffile {c['path']} ({c['package']}): {c['decision']}")
    for r in doc["replaced"]:
        out.append(f"replaced: {r['path']} taken over from {r['package']}")
    for s in doc["scripts"]:
        line = f"script: {s['package']} {s['script']} {' '.join(s['args'])}".rstrip() + f" -> {s['status']}"
        if s["deferred_whole"]:
            line += f" (deferred to first boot: {s['reason']})"
        out.append(line)
        for e in (s.get("commands") or {}).get("commands", []):
            if e.get("classification") == "dropped":
                out.append(f"  dropped: line {e.get('line')}: {' '.join(e.get('argv') or [])[:200]}: {e.get('reason')}")
        for d in s.get("deferred_commands", []):
            out.append(f"  deferred: line {d['line']}: {' '.join(d['argv'])[:200]}: {d['reason']}")
    c = doc["counts"]
    out.append(f"{c['scripts']} maintainer scripts ({c['deferred_whole']} deferred whole); commands: "
               f"{c['simulated']} simulated, {c['dropped']} dropped, {c['deferred']} deferred to first boot")
    job = doc["firstboot"]
    if job is not None:
        act = job.get("activation") or []
        how = ("activated by " + " and ".join(act)) if act else \
            "NOT activated: the image has neither systemd nor /etc/init.d; run /var/lib/nuwa/firstboot/run at boot"
        out.append(f"first-boot job: {len(job.get('entries', []))} entries ({len(job['new_entries'])} new) in "
                   f"/var/lib/nuwa/firstboot, {how}")
        for e in job.get("entries", []):
            if e.get("id") in job["new_entries"]:
                out.append(f"  job entry {e.get('id')}: {e.get('label', '')}")
    reboot = doc.get("reboot")
    if reboot and reboot["required"]:
        out.append(f"reboot required after this update ({'; '.join(reboot['reasons'])})")
    listed = doc["changes"] is not None  # None: the run was asked not to list them (changes=False)
    n = len(doc["changes"]) if listed else 0
    w = doc["written"]
    if w is None:
        out.append(f"dry run: nothing written ({n} paths would change)" if listed else "dry run: nothing written")
    elif w["in_place"]:
        out.append(f"{n} paths changed in {w['path']} (in place)" if listed else f"changed {w['path']} (in place)")
    else:
        out.append(f"wrote {w['path']} ({n} paths changed; {doc['image']} unchanged)" if listed
                   else f"wrote {w['path']} ({doc['image']} unchanged)")
    return out


def previous_firstboot(fs) -> dict | None:
    """What earlier first-boot jobs left in the image before this run (None: there was none).

    ``{"status": job_status(...), "dpkg_notes": [...]}``: a job still pending (this run extends
    it), the last finished one with each entry's outcome, and the packages whose deferred work
    failed at boot although dpkg's database says they are installed."""
    status = job_status(fs)
    if status["state"] == "none":
        return None
    return {"status": status, "dpkg_notes": dpkg_notes(fs, status)}


def write_report(path: str, doc: dict) -> None:
    """Write the JSON document to a host file (replaced whole: written aside, then renamed).

    Written before the image is committed, so that "exit 1: nothing written" holds for the
    report too; the caller removes it if the commit then fails."""
    tmp = path + ".nuwa-tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            dump(doc, f, indent=1)  # json.dump's text, faster (nuwa.patch.jsontext)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OperationFailedError(f"cannot write the report ({e.strerror or e})", where=path) from None
