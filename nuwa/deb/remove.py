"""Removing and purging packages (dpkg ``deferred_remove`` and ``removal_bulk``, ``src/main/remove.c``).

Remove: ``remove`` logged; the package's ``activate`` triggers fire; a configured package goes
half-configured and ``prerm remove`` runs; then half-installed, and its files are removed in
reverse list order (conffiles kept; directories only when empty and used by no other package;
a path holding another package's conffile stays); the list keeps what was left; ``postrm
remove`` runs; trigger interests are dropped; every info file but ``list`` and ``postrm`` is
deleted; the state becomes ``config-files``. A package with neither conffiles nor ``postrm``
goes straight on to purge.

Purge: ``purge`` logged; each conffile and its ``.dpkg-{old,new,dist,tmp}``, ``~``, ``.bak``,
``%`` and ``~N~`` siblings deleted; ``postrm purge`` runs; leftover directories retried;
``list`` and ``postrm`` deleted; the paragraph disappears from the status file.
"""

from __future__ import annotations

import errno
import re
import stat as _stat

from nuwa.deb.conffiles import conffderef
from nuwa.deb.control import Paragraph, satisfies
from nuwa.deb.status import NEWCONFFILEFLAG, Conffile, PkgEntry
from nuwa.deb.unpack import ScriptFailed, activate_packageprocessing, activate_path, remove_tree
from nuwa.errors import OperationFailedError

_BACKUP_EXTS = ("~", ".bak", "%", ".dpkg-tmp", ".dpkg-new", ".dpkg-old", ".dpkg-dist")


def _is_dir(fs, path: str) -> bool:
    try:
        return _stat.S_ISDIR(fs.stat(path).st_mode)
    except OSError:
        return False


def _used_by_others(db, path: str, entry: PkgEntry) -> bool:
    return any(o is not entry for o in db.owners(path))


def remove_package(db, entry: PkgEntry, runner, purge: bool = False) -> None:
    """Remove (and with ``purge`` also purge) one package."""
    where = f"package {entry.nonambig()}"
    if entry.status == "not-installed":
        return
    if entry.status == "config-files" and not purge:
        return
    if entry.status != "config-files":
        if entry.essential:
            raise OperationFailedError("this is an essential package; it should not be removed", where=where)
        if entry.protected:
            raise OperationFailedError("this is a protected package; it should not be removed", where=where)
    _check_reverse_depends(db, entry)
    if entry.eflag == "reinstreq":
        raise OperationFailedError("package is in a very bad inconsistent state; you should reinstall it before "
                                   "attempting a removal", where=where)
    entry.set_status(want="purge" if purge else "deinstall")
    db.note(entry)
    if entry.status != "config-files":
        db.log(f"remove {db.name_always(entry)} {entry.version} <none>")
    activate_packageprocessing(db, entry)
    if entry.status in ("half-configured", "triggers-awaited", "triggers-pending", "installed"):
        db.set_state(entry, "half-configured")
        rc = db.run_script(runner, entry, "prerm", ["remove"])
        if rc != 0:
            db.run_script(runner, entry, "postinst", ["abort-remove"])
            raise ScriptFailed(f"installed pre-removal script subprocess returned error exit status {rc}", where=where)
        entry.set_status(status="unpacked")
    if entry.status in ("half-installed", "unpacked"):
        _remove_files(db, entry, runner)
    has_postrm = db.info.has(entry.infodb_name(), "postrm")
    if not has_postrm and not entry.conffiles:
        entry.set_status(want="purge")
        entry.set_config_version("")
    elif entry.want == "purge":
        _remove_configfiles(db, entry, runner)
    if entry.want == "purge":
        _remove_leftover_dirs(db, entry)
        db.info.remove(entry.infodb_name(), "list")
        db.info.remove(entry.infodb_name(), "postrm")
        db.forget_files(entry)
        entry.para = Paragraph([("Package", " " + entry.name), ("Status", " " + entry.para.get("Status")),
                                ("Architecture", " " + entry.arch)])  # pkgbin_blank (arch kept for the log)
        entry.dirty = True
        db.set_state(entry, "not-installed", want="unknown", eflag="ok")  # removal_bulk's last note
        db.status.remove(entry)
        return
    entry.set_status(eflag="ok")
    db.note(entry)  # removal_bulk ends with pkg_reset_eflags and a note


def _check_reverse_depends(db, entry: PkgEntry) -> None:
    for other in db.status.entries:
        if other is entry or other.status in ("not-installed", "config-files", "half-installed"):
            continue
        for field in ("Pre-Depends", "Depends"):
            for alts in other.relations(field):
                if not any(d.name == entry.name and satisfies(entry.version, d) for d in alts):
                    continue
                others = [d for d in alts if d.name != entry.name]
                if not any(db.status.find(d.name) and db.status.find(d.name).status == "installed" for d in others):
                    raise OperationFailedError(f"dependency problems - not removing: {other.name} depends on "
                                               f"{entry.name}", where=f"package {entry.nonambig()}")


def _remove_files(db, entry: PkgEntry, runner) -> None:
    fs = db.fs
    db.set_state(entry, "half-installed")
    conff = {c.name for c in entry.conffiles}
    conffile_dirs = set()
    for c in conff:
        parts = c.split("/")
        for i in range(2, len(parts)):
            conffile_dirs.add("/".join(parts[:i]))
    leftover: list[str] = []
    files = db.files_of(entry)
    for path in reversed(files):
        use = db.diversions.use_path(path, entry.name)
        is_dir = _is_dir(fs, use)
        if path in conff:
            leftover.append(path)
            continue
        if is_dir:
            if path in conffile_dirs or any(p.startswith(path.rstrip("/") + "/") for p in leftover):
                leftover.append(path)
                continue
            if _used_by_others(db, path, entry):
                continue
            if use in ("/", "/."):
                leftover.append(path)
                continue
        activate_path(db, use, entry)
        remove_tree(fs, use + ".dpkg-tmp")
        remove_tree(fs, use + ".dpkg-new")
        try:
            fs.rmdir(use)
            continue
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP):
                continue
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY, errno.EPERM):
                leftover.append(path)
                continue
            if e.errno != errno.ENOTDIR:
                raise
        fs.unlink(use)
    keep = set(leftover)
    db.set_files(entry, [p for p in files if p in keep])
    rc = db.run_script(runner, entry, "postrm", ["remove"])
    if rc != 0:
        raise ScriptFailed(f"installed post-removal script subprocess returned error exit status {rc}",
                           where=f"package {entry.nonambig()}")
    for d in db.triggers_ci(entry):
        if d.kind == "interest":
            db.triggers.remove_interest(d.name, entry.nonambig())
    db.info.remove_all(entry.infodb_name(), keep=("list", "postrm"))
    db.set_state(entry, "config-files")
    entry.set("Essential", None)
    entry.set("Protected", None)


def _remove_configfiles(db, entry: PkgEntry, runner) -> None:
    fs = db.fs
    db.log(f"purge {db.name_always(entry)} {entry.version} <none>")
    activate_packageprocessing(db, entry)
    entry.set_config_version("")
    db.note(entry)
    files = set(db.files_of(entry))
    # conffiles no longer ours leave the list; the rest are marked new (``NEWCONFFILEFLAG``)
    cfs = [c for c in entry.conffiles if c.name in files and not _diverted_away(db, c.name, entry)]
    entry.set_conffiles([Conffile(c.name, NEWCONFFILEFLAG, c.obsolete, c.remove_on_upgrade) for c in cfs])
    db.note(entry)
    for c in cfs:
        cdr = conffderef(fs, c.name)
        activate_path(db, c.name, entry)
        try:
            fs.unlink(cdr)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
        d, _, base = cdr.rpartition("/")
        try:
            names = fs.readdir(d or "/")
        except OSError:
            continue
        for n in names:
            if not n.startswith(base):
                continue
            rest = n[len(base):]
            if rest in _BACKUP_EXTS or re.fullmatch(r"~\d+~", rest):
                try:
                    fs.unlink(f"{d}/{n}")
                except OSError:
                    pass
    conffnames = {c.name for c in cfs}
    db.set_files(entry, [p for p in db.files_of(entry) if p not in conffnames])
    entry.set_conffiles([])
    db.note(entry)
    rc = db.run_script(runner, entry, "postrm", ["purge"])
    if rc != 0:
        raise ScriptFailed(f"installed post-removal script subprocess returned error exit status {rc}",
                           where=f"package {entry.nonambig()}")


def _diverted_away(db, path: str, entry: PkgEntry) -> bool:
    """``removal_bulk_remove_configfiles``: a conffile involved in a diversion is skipped,
    unless this package is the one diverting it."""
    if db.diversions.by_target(path) is not None:
        return True
    div = db.diversions.by_path(path)
    return div is not None and div.package != entry.name


def _remove_leftover_dirs(db, entry: PkgEntry) -> None:
    fs = db.fs
    db.note(entry)
    leftover = []
    files = db.files_of(entry)
    for path in reversed(files):
        use = db.diversions.use_path(path, entry.name)
        if _is_dir(fs, use):
            if any(p.startswith(path.rstrip("/") + "/") for p in leftover):
                leftover.append(path)
                continue
            if _used_by_others(db, path, entry):
                continue
            if use in ("/", "/."):
                leftover.append(path)
                continue
        activate_path(db, use, entry)
        try:
            fs.rmdir(use)
            continue
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP):
                continue
            if e.errno != errno.ENOTDIR:
                leftover.append(path)
                continue
        try:
            if _stat.S_ISLNK(fs.lstat(use).st_mode):
                fs.unlink(use)
                continue
        except OSError:
            pass
        leftover.append(path)
    keep = set(leftover)
    db.set_files(entry, [p for p in files if p in keep])
