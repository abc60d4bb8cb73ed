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

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nuwa.apt.aptconf import image_architectures, read_apt_config
from nuwa.apt.candidates import Policy
from nuwa.apt.order import order
from nuwa.apt.records import deb_record, is_local
from nuwa.apt.resolver import Plan, PlanError, Request, plan
from nuwa.apt.security import is_security
from nuwa.deb.control import parse_paragraphs
from nuwa.deb.status import StatusFile
from nuwa.errors import InvalidInputError
from nuwa.image import Image, read_os_release
from nuwa.patch.install import open_debs, patch_image
from nuwa.patch.report import PatchReport, apt_size, check_report_path, plan_lines  # noqa: F401 (re-exported)
from nuwa.patch.staging import check_target

if TYPE_CHECKING:  # the annotations only: apt's repository code loads when a run reads repositories
    from nuwa.apt.options import RepoOptions
    from nuwa.apt.repository import Repositories

EXTENDED_STATES = "/var/lib/apt/extended_states"


def _repositories(options):
    """A :class:`nuwa.apt.repository.Repositories` (late: apt's repository code, OpenPGP and
    HTTP load only for a run that reads repositories, not for ``.deb`` files alone)."""
    from nuwa.apt.repository import Repositories  # (late, see above)

    return Repositories(options)


def _repo_options():
    from nuwa.apt.options import RepoOptions  # (late, see _repositories)

    return RepoOptions()


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
    """Write ``extended_states`` as apt's ``pkgDepCache::writeStateFile`` does.

    The stanzas already in the file are kept in their order, each with its other fields and
    ``Architecture``/``Auto-Installed`` rewritten; one whose package lost its mark is dropped
    when it holds nothing else (apt's "obsolete section"), one whose package is gone
    (removed: not in ``marks``) likewise. The packages newly marked follow, one stanza each.
    Every stanza ends with a blank line, the last one too, as apt writes them.
    """
    try:
        old = fs.read_bytes(EXTENDED_STATES).decode("utf-8", "surrogateescape")
    except (FileNotFoundError, NotADirectoryError):
        old = ""
    parts, seen = [], set()
    for _, para, _ in parse_paragraphs(old, where=EXTENDED_STATES):
        name, arch = para.get("Package", ""), para.get("Architecture", "") or native
        key = next((k for k in ((name, arch), (name, "")) if k in marks), None)
        if not name or key is None:
            continue
        auto = marks[key]
        others = [k for k in para.keys() if k.lower() not in ("package", "architecture", "auto-installed")]
        if not auto and not others:
            continue
        lines, done = [], set()
        for k in para.keys():
            if k.lower() == "architecture":
                lines.append(f"{k}: {arch}")
                done.add("a")
            elif k.lower() == "auto-installed":
                lines.append(f"{k}: {1 if auto else 0}")
                done.add("i")
            else:
                lines.append(f"{k}:{para.raw_value(k)}")
        if "a" not in done:  # apt's rewrite adds a missing field at the end
            lines.append(f"Architecture: {arch}")
        if "i" not in done:
            lines.append(f"Auto-Installed: {1 if auto else 0}")
        parts.append("\n".join(lines) + "\n\n")
        seen.add(key)
    for (name, arch), auto in sorted(marks.items()):
        if auto and (name, arch) not in seen:
            parts.append(f"Package: {name}\nArchitecture: {arch or native}\nAuto-Installed: 1\n\n")
    fs.makedirs("/var/lib/apt", 0o755)
    fs.write_bytes(EXTENDED_STATES, "".join(parts).encode("utf-8", "surrogateescape"), 0o644)


def plan_document(p: Plan, request: UpgradeRequest, status: StatusFile, steps) -> dict:
    """The plan as the report (and ``--dry-run``) shows it.

    Sizes are apt's (apt-private/private-install.cc ``InstallPackages``): ``archives_size`` is
    the total size of the .debs the plan unpacks, ``download_size`` the part that is neither a
    local file nor in a ``file:`` repository (what apt calls "to get"; files already in Nuwa's
    cache are not fetched again);
    ``disk_space_change`` is apt's ``UsrSize()``: the new versions' ``Installed-Size`` minus the
    replaced and removed versions' (KiB * 1024, as pkgDepCache counts it), in bytes."""
    old_size = {e.name: int(e.para.get("Installed-Size", "0") or 0) for e in status.entries
                if e.status not in ("not-installed", "config-files")}
    install = []
    for r in p.install:
        old = p.upgrades.get(r.package, (None, None))[0]
        install.append({"package": r.package, "architecture": r.architecture, "version": r.version,
                        "old_version": old, "new": r.package in p.new, "local": is_local(r),
                        "suite": r.release.archive or r.release.suite, "size": r.size,
                        "installed_size_kib": r.installed_size})
    growth = sum(r.installed_size - old_size.get(r.package, 0) for r in p.install)
    growth -= sum(old_size.get(n.split(":")[0], 0) for n in p.remove)
    return {"request": request.action + (" (security only)" if request.security_only else ""),
            "names": list(request.names), "install": install, "remove": list(p.remove), "purge": p.purge,
            "kept_back": dict(p.kept_back), "not_upgraded": p.not_upgraded, "new": list(p.new),
            "auto": list(p.auto), "already_installed": list(p.already_installed), "unmet_recommends": list(p.unmet_recommends),
            "archives_size": sum(r.size for r in p.install),
            "download_size": sum(r.size for r in p.install if not is_local(r) and not r.release.uri.startswith("file:")),
            "installed_size_change_kib": growth, "disk_space_change": growth * 1024, "notes": [],
            "steps": [[a, [o if isinstance(o, str) else f"{o.package}_{o.version}_{o.architecture}"
                           for o in ops]] for a, ops in steps]}


@dataclass
class PreparedUpgrade:
    """A plan made ready to apply: everything :func:`apply_prepared` needs, and nothing of the
    repository objects, so it pickles small (a fleet computes it once per package state and
    ships it to the workers, docs/fleet.md).

    ``doc`` is the plan document; ``steps`` apt's dpkg calls with the unpack operands as the
    ``.deb`` files (downloaded into the cache, or the local files of ``--deb``); ``debs`` those
    files in plan order; ``marks`` the ``extended_states`` to write (None: leave it alone);
    ``native`` the image's architecture.
    """

    doc: dict
    steps: list
    debs: list
    marks: dict | None
    native: str

    @property
    def nothing_to_do(self) -> bool:
        """True when the plan installs and removes nothing."""
        return not self.steps


def _plan_for(image: Image, request: UpgradeRequest, repos: Repositories):
    """(plan, status, marks, native, apt configuration) for ``request`` from the image's own
    repositories (read through ``repos``)."""
    fs = image.root()
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
        osr = read_os_release(fs)
        distro, codename = osr.get("ID", "").lower(), osr.get("VERSION_CODENAME", "")
        names = sorted({u.name for u in policy.upgradable(status) if not u.held
                        and is_security(u.candidate.release, distro, codename)})
        req = Request("install", tuple(names)) if names else None
    p = plan(policy, status, req, auto_installed=[n for (n, _), a in marks.items() if a]) if req else Plan()
    return p, status, marks, native, img.conf


def prepare_upgrade(image: Image, request: UpgradeRequest, repos: Repositories, on_plan=None,
                    fetch: bool = True, progress=None) -> PreparedUpgrade:
    """Plan ``request`` for ``image`` with ``repos`` and (``fetch``) download the ``.deb`` files.

    ``on_plan(doc)`` sees the plan before anything is downloaded. Nothing is written to the
    image; ``repos`` stays open (the caller owns it).
    """
    p, status, marks, native, conf = _plan_for(image, request, repos)
    return _prepare(p, request, status, marks, native, repos, conf, on_plan, fetch=fetch, progress=progress)


def upgrade_image(image: Image, request: UpgradeRequest, repo_options: RepoOptions | None = None, *,
                  output: str | None = None, in_place: bool = False, dry_run: bool = False,
                  report: str | None = None, firstboot_timeout: int | None = None,
                  firstboot_job_timeout: int | None = None, on_plan=None,
                  repositories: Repositories | None = None, progress=None, plan_only: bool = False,
                  changes: bool = True) -> PatchReport:
    """Plan, download and apply; see the module note. Returns the :class:`PatchReport` (its
    document has ``plan``); with nothing to do, nothing is written and ``written`` is None.
    ``progress`` (:class:`nuwa.apt.progress.Stages`) shows the stages on a terminal;
    ``plan_only`` stops after the plan (nothing downloaded, nothing applied); ``changes=False``
    leaves the report's ``changes`` None (:func:`nuwa.patch.install.patch_image`)."""
    if progress is not None:
        progress.stage("plan", item="reading the repositories")
    check_report_path(report)
    if not dry_run and not plan_only:
        check_target("patch", output, in_place)
    repos = repositories or _repositories(repo_options)
    try:
        prepared = prepare_upgrade(image, request, repos, on_plan, fetch=not plan_only, progress=progress)
    finally:
        if repositories is None:  # the display's summary; a caller's own Repositories stays open
            repos.close()
    # the run's own Repositories holds every parsed index (bookworm main alone: 60 MB of
    # records), which applying the plan never reads: let it go before the dpkg run's peak
    repos = None
    return apply_prepared(image, prepared, output=output, in_place=in_place, dry_run=dry_run or plan_only,
                          report=report, firstboot_timeout=firstboot_timeout,
                          firstboot_job_timeout=firstboot_job_timeout, progress=progress, plan_only=plan_only,
                          changes=changes)


def install_local_debs(image: Image, debs, repo_options: RepoOptions | None = None, *,
                       output: str | None = None, in_place: bool = False, dry_run: bool = False,
                       report: str | None = None, firstboot_timeout: int | None = None,
                       firstboot_job_timeout: int | None = None, on_plan=None,
                       repositories: Repositories | None = None, progress=None,
                       plan_only: bool = False, changes: bool = True) -> PatchReport:
    """``apt install ./a.deb ./b.deb`` on the image (``nuwa patch --deb``); returns the report.

    Each file is its package's candidate (:func:`nuwa.apt.records.deb_record`); the plan is
    apt's install plan for them and apt orders the dpkg calls, so the files may come in any
    order. The plan is first made from the files and the installed packages alone: when that
    plan is complete (every dependency met, no Recommends apt would add left out) and no
    ``--repo`` was given, the image's repositories are not read at all -- the job stays
    offline, as ``apt install ./x.deb`` needs nothing from its lists then. Otherwise the
    plan is made again with the repositories (missing dependencies and Recommends come from
    them). A dependency nothing can satisfy is refused with apt's words and the dependency
    named (:class:`nuwa.apt.resolver.PlanError`, exit 2); so is one the repositories could
    supply if they could be read (the reason is added). ``progress``, ``plan_only`` and
    ``changes`` as for :func:`upgrade_image`.
    """
    if progress is not None:
        progress.stage("plan")
    check_report_path(report)
    if not debs:
        raise InvalidInputError("nothing to apply: give --deb FILE (one or more)")
    if not dry_run and not plan_only:
        check_target("patch", output, in_place)
    archives = open_debs(debs)
    local = tuple(deb_record(a) for a in archives)
    fs = image.root()
    status = StatusFile.load(fs, "/var/lib/dpkg/status")
    marks = read_auto_installed(fs)
    auto = [n for (n, _), a in marks.items() if a]
    conf = read_apt_config(fs)
    archs = _local_architectures(fs, conf, status, local)
    native = archs[0]
    for r, a in zip(local, archives):  # dpkg's check (dpkg -i refuses the same file, exit 2)
        if r.architecture not in ("all", *archs):
            raise InvalidInputError(f"package architecture ({r.architecture}) does not match system ({native})",
                                    where=a.path)
    req = Request("install", (), local)
    p, offline_error, note = None, None, None
    options = repo_options or _repo_options()
    if not options.repos:
        try:
            p = plan(Policy((), archs, native, ()), status, req, auto_installed=auto)
        except PlanError as e:
            offline_error = e
    repos = None
    if p is None or p.unmet_recommends:
        repos = repositories or _repositories(options)
        try:
            img, chunks = repos.indexes_for(fs)
        except InvalidInputError as e:  # no sources, no key, a repository that fails (exit 2)
            if p is None:
                if offline_error is None:
                    raise
                raise PlanError(f"{offline_error} (no repository could supply it: {e})") from None
            note = f"Recommends not installed ({'; '.join(p.unmet_recommends)}): the repositories could not be read: {e}"
        else:
            conf = img.conf
            policy = Policy(img.pins, img.architectures, native, [r for c in chunks for r in c])
            p = plan(policy, status, req, auto_installed=auto)
    request = UpgradeRequest("install", tuple(os.path.basename(a.path) for a in archives))
    try:
        prepared = _prepare(p, request, status, marks, native, repos, conf, on_plan, fetch=not plan_only,
                            archives=archives, note=note, progress=progress)
    finally:
        if repos is not None and repositories is None:  # a caller's own Repositories stays open
            repos.close()
    return apply_prepared(image, prepared, output=output, in_place=in_place, dry_run=dry_run or plan_only,
                          report=report, firstboot_timeout=firstboot_timeout,
                          firstboot_job_timeout=firstboot_job_timeout, progress=progress, plan_only=plan_only,
                          changes=changes)


def _local_architectures(fs, conf, status: StatusFile, local) -> list[str]:
    """The image's architectures for ``--deb``; an image whose dpkg database does not say
    (no ``dpkg`` package, no ``/var/lib/dpkg/arch``: a trimmed or constructed tree, which
    ``dpkg -i`` never needed to know) gets the architecture its installed packages and the
    given files use -- all that a plan of those files can depend on."""
    try:
        return image_architectures(fs, conf)
    except InvalidInputError:
        seen = [e.arch for e in status.entries if e.arch not in ("", "all")]
        seen += [r.architecture for r in local if r.architecture != "all"]
        if not seen:
            return ["amd64"]  # only Architecture: all packages: the name is never compared
        return [max(set(seen), key=seen.count)]


def _prepare(p: Plan, request: UpgradeRequest, status: StatusFile, marks, native: str,
             repos: Repositories | None, conf, on_plan, fetch: bool = True, archives=(),
             note: str | None = None, progress=None) -> PreparedUpgrade:
    """Order ``p``, show it (``on_plan``) and (``fetch``) download what is not local: the
    :class:`PreparedUpgrade` with apt's steps and apt's auto-installed marks."""
    steps = order(p, status, native_arch=native) if (p.install or p.remove) else []
    doc = plan_document(p, request, status, [(s.action, list(s.operands)) for s in steps])
    if note:
        doc["notes"].append(note)
    if progress is not None:
        progress.close()  # the plan may be printed now (--dry-run); downloads draw their own line
    if on_plan is not None:
        on_plan(doc)
    if not steps or not fetch:  # unfetched: the steps name records, for a plan that is only shown
        return PreparedUpgrade(doc, [(s.action, list(s.operands)) for s in steps], [], None, native)
    remote = [r for r in p.install if not is_local(r)]
    paths: list = []
    if remote:
        paths = repos.fetcher(conf).get_files([(f"{r.release.uri}/{r.filename}", r.sha256, r.size) for r in remote])

    def ident(r):
        return (r.package, r.architecture, r.version)

    by_record = {ident(r): path for r, path in zip(remote, paths)}
    by_path = {a.path: a for a in archives}
    for r in p.install:
        if is_local(r):
            by_record[ident(r)] = by_path[r.filename]
    dpkg_steps = [(s.action, [by_record[ident(o)] for o in s.operands] if s.action == "unpack" else list(s.operands))
                  for s in steps]
    keep = dict(marks)  # an upgraded package keeps its mark; new dependencies are auto
    for name in p.auto:
        keep[(name, native)] = True
    for name in p.remove:
        for k in [k for k in keep if k[0] == name.split(":")[0]]:
            del keep[k]
    for r in p.install:  # asked for by name or as a file: manually installed (apt's MarkInstall(auto=false))
        if r.package not in p.auto:
            keep.pop((r.package, native), None)
    debs = [by_record[ident(r)] for r in p.install]
    return PreparedUpgrade(doc, dpkg_steps, debs, keep if (p.auto or p.remove or marks) else None, native)


def apply_prepared(image: Image, prepared: PreparedUpgrade, *, output: str | None = None, in_place: bool = False,
                   dry_run: bool = False, report: str | None = None, firstboot_timeout: int | None = None,
                   firstboot_job_timeout: int | None = None, progress=None, plan_only: bool = False,
                   changes: bool = True) -> PatchReport:
    """Apply a :class:`PreparedUpgrade` to ``image`` (staged, simulated, reported, committed as
    :func:`nuwa.patch.install.patch_image`, ``changes`` too); with nothing to do (or
    ``plan_only``), nothing is written and the report's ``written`` is None."""
    if prepared.nothing_to_do or plan_only:
        return PatchReport({"image": image.path, "dry_run": bool(dry_run or plan_only), "written": None,
                            "plan": prepared.doc, "packages": [], "nothing_to_do": prepared.nothing_to_do,
                            "changes": [], "scripts": [], "firstboot": None, "counts": {}})

    def finish(stage_fs):
        if prepared.marks is not None:
            write_auto_installed(stage_fs, prepared.marks, prepared.native)

    return patch_image(image, prepared.debs, output=output, in_place=in_place, dry_run=dry_run, report=report,
                       firstboot_timeout=firstboot_timeout, firstboot_job_timeout=firstboot_job_timeout,
                       steps=prepared.steps, finish=finish, extra={"plan": prepared.doc}, progress=progress,
                       changes=changes)
