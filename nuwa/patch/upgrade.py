"""``nuwa patch --upgrade`` (and ``--full-upgrade``, ``--security-only``, ``--install``,
``--remove``): apt's job, offline.

1. The image's sources, keys and pins give the package versions on offer
   (:class:`nuwa.apt.repository.Repositories`, verified as apt verifies them).
2. apt's policy picks the candidates and apt's resolver the plan
   (:func:`nuwa.apt.resolver.plan`): what is upgraded, newly installed, removed, kept back and
   why; ``--security-only`` upgrades the packages whose candidate comes from a security
   origin (unattended-upgrades' default patterns, :mod:`nuwa.apt.security`), with whatever
   they need.
3. The ``.deb`` files are downloaded into the cache (hash and size checked), and apt's order of
   dpkg calls (:func:`nuwa.apt.order.order`) is applied to the image through
   :func:`nuwa.patch.install.patch_image` -- the same staging, script simulation, report and
   commit as ``--deb``; ``/var/lib/apt/extended_states`` gets apt's auto-installed marks.

The plan is part of the report (``plan``) and, with ``on_plan``, handed to the caller before
anything is downloaded (``nuwa patch --dry-run`` prints it first).
"""

from __future__ import annotations

from dataclasses import dataclass

from nuwa.apt.candidates import Policy
from nuwa.apt.order import order
from nuwa.apt.repository import RepoOptions, Repositories
from nuwa.apt.resolver import Plan, Request, plan
from nuwa.apt.scan import _os_release
from nuwa.apt.security import is_security
from nuwa.deb.control import parse_paragraphs
from nuwa.deb.status import StatusFile
from nuwa.errors import InvalidInputError
from nuwa.image import Image
from nuwa.patch.install import patch_image
from nuwa.patch.report import PatchReport, check_report_path
from nuwa.patch.staging import check_target

EXTENDED_STATES = "/var/lib/apt/extended_states"


@dataclass
class UpgradeRequest:
    """What the command line asked: ``action`` is upgrade, full-upgrade, install, remove or
    purge; ``names`` for the last three; ``security_only`` restricts an upgrade to security
    candidates."""

    action: str = "upgrade"
    names: tuple[str, ...] = ()
    security_only: bool = False


def read_auto_installed(fs) -> dict[tuple[str, str], bool]:
    """``/var/lib/apt/extended_states``: (name, arch) -> Auto-Installed (absent file: none)."""
    try:
        data = fs.read_bytes(EXTENDED_STATES)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out = {}
    for _, para, _ in parse_paragraphs(data.decode("utf-8", "surrogateescape"), where=EXTENDED_STATES):
        name = para.get("Package", "")
        if name:
            out[(name, para.get("Architecture", ""))] = para.get("Auto-Installed", "0").strip() == "1"
    return out


def write_auto_installed(fs, marks: dict[tuple[str, str], bool], native: str) -> None:
    """Write ``extended_states`` as apt does: one stanza per package with a mark, auto ones set."""
    parts = []
    for (name, arch), auto in sorted(marks.items()):
        if auto:
            parts.append(f"Package: {name}\nArchitecture: {arch or native}\nAuto-Installed: 1\n")
    fs.makedirs("/var/lib/apt", 0o755)
    fs.write_bytes(EXTENDED_STATES, "\n".join(parts).encode("utf-8", "surrogateescape"), 0o644)


def plan_document(p: Plan, request: UpgradeRequest, status: StatusFile, steps) -> dict:
    """The plan as the report (and ``--dry-run``) shows it."""
    old_size = {e.name: int(e.para.get("Installed-Size", "0") or 0) for e in status.entries
                if e.status not in ("not-installed", "config-files")}
    install = []
    for r in p.install:
        old = p.upgrades.get(r.package, (None, None))[0]
        install.append({"package": r.package, "architecture": r.architecture, "version": r.version,
                        "old_version": old, "new": r.package in p.new,
                        "suite": r.release.archive or r.release.suite, "size": r.size})
    growth = sum(r.installed_size - old_size.get(r.package, 0) for r in p.install)
    growth -= sum(old_size.get(n.split(":")[0], 0) for n in p.remove)
    return {"request": request.action + (" (security only)" if request.security_only else ""),
            "names": list(request.names), "install": install, "remove": list(p.remove), "purge": p.purge,
            "kept_back": dict(p.kept_back), "new": list(p.new), "auto": list(p.auto),
            "download_size": sum(r.size for r in p.install), "installed_size_change_kib": growth,
            "steps": [[a, [o if isinstance(o, str) else f"{o.package}_{o.version}_{o.architecture}"
                           for o in ops]] for a, ops in steps]}


def plan_lines(doc: dict) -> list[str]:
    """The plan in words, as ``apt-get -s`` summarises it."""
    out = []
    up = [i for i in doc["install"] if not i["new"]]
    new = [i for i in doc["install"] if i["new"]]
    if up:
        out.append("upgrade: " + " ".join(f"{i['package']} {i['old_version']} -> {i['version']}" for i in up))
    if new:
        out.append("new: " + " ".join(f"{i['package']} {i['version']}" for i in new))
    if doc["remove"]:
        out.append(("purge: " if doc["purge"] else "remove: ") + " ".join(doc["remove"]))
    for name, why in sorted(doc["kept_back"].items()):
        out.append(f"kept back: {name} ({why})")
    out.append(f"{len(up)} upgraded, {len(new)} newly installed, {len(doc['remove'])} to remove, "
               f"{len(doc['kept_back'])} kept back; {doc['download_size']} bytes to get, "
               f"{doc['installed_size_change_kib']:+d} KiB installed size")
    for action, ops in doc["steps"]:
        out.append(f"  dpkg --{action} {' '.join(ops)}".rstrip())
    return out


def upgrade_image(image: Image, request: UpgradeRequest, repo_options: RepoOptions | None = None, *,
                  output: str | None = None, in_place: bool = False, dry_run: bool = False,
                  report: str | None = None, firstboot_timeout: int | None = None,
                  firstboot_job_timeout: int | None = None, on_plan=None,
                  repositories: Repositories | None = None) -> PatchReport:
    """Plan, download and apply; see the module note. Returns the :class:`PatchReport` (its
    document has ``plan``); with nothing to do, nothing is written and ``written`` is None."""
    check_report_path(report)
    if not dry_run:
        check_target("patch", output, in_place)
    fs = image.root()
    repos = repositories or Repositories(repo_options)
    img, chunks = repos.indexes_for(fs)
    records = [r for c in chunks for r in c]
    native = img.architectures[0]  # image_architectures: the image's, never empty
    status = StatusFile.load(fs, "/var/lib/dpkg/status")
    marks = read_auto_installed(fs)
    policy = Policy(img.pins, img.architectures, native, records)
    req = Request(request.action, tuple(request.names))
    if request.security_only:
        if request.action != "upgrade":
            raise InvalidInputError("--security-only goes with --upgrade")
        osr = _os_release(fs)
        distro, codename = osr.get("ID", "").lower(), osr.get("VERSION_CODENAME", "")
        names = sorted({u.name for u in policy.upgradable(status) if not u.held
                        and is_security(u.candidate.release, distro, codename)})
        req = Request("install", tuple(names)) if names else None
    p = plan(policy, status, req, auto_installed=[n for (n, _), a in marks.items() if a]) if req else Plan()
    steps = order(p, status, native_arch=native) if (p.install or p.remove) else []
    doc = plan_document(p, request, status, [(s.action, list(s.operands)) for s in steps])
    if on_plan is not None:
        on_plan(doc)
    if not steps:
        return PatchReport({"image": image.path, "dry_run": bool(dry_run), "written": None, "plan": doc,
                            "packages": [], "nothing_to_do": True, "changes": [], "scripts": [],
                            "firstboot": None, "counts": {}})
    fetcher = repos.fetcher(img.conf)
    try:
        paths = fetcher.get_files([(f"{r.release.uri}/{r.filename}", r.sha256, r.size) for r in p.install])
    finally:
        if repositories is None:  # the display's summary; a caller's own Repositories stays open
            repos.close()
    def ident(r):
        return (r.package, r.architecture, r.version)

    by_record = {ident(r): path for r, path in zip(p.install, paths)}
    dpkg_steps = [(s.action, [by_record[ident(o)] for o in s.operands] if s.action == "unpack" else list(s.operands))
                  for s in steps]
    keep = dict(marks)  # an upgraded package keeps its mark; new dependencies are auto
    for name in p.auto:
        keep[(name, native)] = True
    for name in p.remove:
        for k in [k for k in keep if k[0] == name.split(":")[0]]:
            del keep[k]

    def finish(stage_fs):
        if p.auto or p.remove or marks:
            write_auto_installed(stage_fs, keep, native)

    return patch_image(image, paths, output=output, in_place=in_place, dry_run=dry_run, report=report,
                       firstboot_timeout=firstboot_timeout, firstboot_job_timeout=firstboot_job_timeout,
                       steps=dpkg_steps, finish=finish, extra={"plan": doc})
