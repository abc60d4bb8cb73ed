"""Unpacking one .deb into the image: dpkg's ``process_archive`` over the filesystem model.

The order of effects follows dpkg 1.21 (``src/main/unpack.c`` ``process_archive``,
``src/main/archives.c`` ``tarobject`` and ``tar_deferred_extract``):

1. checks (architecture, Pre-Depends, Conflicts, Breaks); ``upgrade``/``install`` logged;
2. triggers activated by the old and the new package; new conffiles take the recorded hash
   of the package that owns them;
3. an installed old version goes half-configured, old ``prerm upgrade NEW`` (or new
   ``prerm failed-upgrade OLD``), then unpacked; the package goes half-installed with
   ``reinstreq``; new ``preinst install|upgrade ...``;
4. each tar member: diversions and stat overrides applied, file triggers activated, overwrite
   checked against other packages' files (``Replaces``), extracted as ``NAME.dpkg-new``;
   directories, FIFOs and devices renamed into place at once, files, hard links and symlinks
   after the whole archive (conffiles stay ``.dpkg-new`` until configure);
5. old ``postrm upgrade NEW`` (fallback new ``postrm failed-upgrade OLD``); files of the old
   version that are not in the new one removed (reverse order; directories only if no other
   package uses them; an old file that is the same inode as a new one is kept: merged /usr);
   the new ``list``, trigger interests, info files and ``md5sums`` written; the status fields
   copied from the new control; packages whose files were all taken over disappear; taken-over
   files are removed from other packages' lists; status ``unpacked``, ``reinstreq`` cleared.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat as _stat
import time

from nuwa.deb import archive as A
from nuwa.deb.conffiles import conffderef, md5_of, parse_deb_conffiles
from nuwa.deb.control import (
    DEPENDENCY_FIELDS, KNOWN_FIELDS, OBSOLETE_FIELDS, Paragraph, format_relations, parse_relations)
from nuwa.deb.deps import check_predepends_conflicts, deconfigure_set_siblings, does_replace
from nuwa.deb.filters import PathFilters
from nuwa.deb.infodb import extract_control_area, remove_tree
from nuwa.deb.statoverride import read_ids
from nuwa.deb.status import STATE_RANK, Conffile, PkgEntry
from nuwa.deb.triggers import parse_triggers_ci, record_activation
from nuwa.errors import InvalidInputError, NuwaError, OperationFailedError

DPKGNEW = ".dpkg-new"
DPKGTMP = ".dpkg-tmp"
_CHUNK = 1 << 20


class ScriptFailed(OperationFailedError):
    """A maintainer script returned non-zero (after dpkg's error unwinding was run)."""


def _unpack_error(err: OSError, where: str) -> OSError:
    """What an ``OSError`` of the filesystem model while extracting a package becomes.

    dpkg reports "unable to create '...': <strerror>" and stops. A full image (ENOSPC, EDQUOT,
    EFBIG) is the operation failing (exit 1); anything else here is a package asking for what
    cannot be made (a member under a directory it does not ship and the image lacks, a hard
    link to a directory...): bad input, exit 2. Nuwa's own errors pass unchanged.
    """
    if isinstance(err, NuwaError):
        return err
    name = f"'{err.filename}'" if err.filename else "a file"
    msg = f"unable to create {name}: {err.strerror or err}"
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return OperationFailedError(msg, where=where)
    return InvalidInputError(msg, where=where)


def _lstat(fs, path):
    try:
        return fs.lstat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _stat_follow(fs, path):
    try:
        return fs.stat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


def activate_trigger(db, trigger: str, by: PkgEntry | None, noawait: bool) -> None:
    """Activate explicit trigger ``trigger`` for every interested package."""
    for it in db.triggers.named.get(trigger, []):
        pend = db.status.find(it.package)
        if pend is None:
            continue
        record_activation(db, pend, trigger, None if (noawait or it.noawait or by is None) else by)


def activate_path(db, path: str, by: PkgEntry | None) -> None:
    """File triggers interested in ``path`` (``trig_file_activate``/``trig_path_activate``)."""
    for ipath, it in db.triggers.interested_in_file(path):
        pend = db.status.find(it.package)
        if pend is None:
            continue
        record_activation(db, pend, ipath, None if (it.noawait or by is None) else by)


def activate_packageprocessing(db, entry: PkgEntry, directives=None) -> None:
    """``trig_activate_packageprocessing``: the package's own ``activate`` directives fire."""
    for d in db.triggers_ci(entry) if directives is None else directives:
        if d.kind == "activate":
            activate_trigger(db, d.name, entry, d.noawait)


def run_fallback(db, runner, entry: PkgEntry, script_name: str, new_script: bytes | None, arg: str,
                 new_version: str, old_version: str, arch: str, cidir: str = "") -> None:
    """dpkg ``maintscript_fallback``: old ``SCRIPT ARG NEW``, else new ``SCRIPT failed-ARG OLD``
    (the new one run from the control area ``cidir``, as dpkg's ``maintscript_new``)."""
    rc = db.run_script(runner, entry, script_name, [arg, new_version])
    if rc == 0:
        return
    if new_script is None:
        raise ScriptFailed(f"old {script_name} script returned error exit status {rc}; no new script to fall back on",
                           where=f"package {entry.name}")
    rc2 = db.run_script(runner, entry, script_name, ["failed-" + arg, old_version], script=new_script, arch=arch,
                        path=f"{cidir}/{script_name}" if cidir else "(control)/" + script_name)
    if rc2 != 0:
        raise ScriptFailed(f"new {script_name} script returned error exit status {rc2}", where=f"package {entry.name}")


class Unpacker:
    """One ``process_archive`` run. Create it, then call :meth:`run`."""

    def __init__(self, db, deb: A.DebArchive, runner, native_arch: str, removing=(), report=None):
        self.db = db
        self.fs = db.fs
        self.deb = deb
        self.runner = runner
        self.native_arch = native_arch
        self.removing = set(id(e) for e in removing)
        self.report = report if report is not None else {}
        self.ctl: Paragraph = deb.control
        self.name = self.ctl["Package"]
        self.version = self.ctl["Version"]
        self.arch = self.ctl.get("Architecture") or ""
        self.multiarch = self.ctl.get("Multi-Arch") or "no"
        self.where = f"package {self.name}"
        self.now = int(time.time())
        self.filters = PathFilters.load(self.fs)
        self.filtered: set[str] = set()

    # ---- helpers ---------------------------------------------------------------------------
    def _script(self, name: str) -> bytes | None:
        m = self.deb.control_files.get(name)
        return m.data if m else None

    def _find_entry(self) -> PkgEntry | None:
        cands = self.db.status.find_all(self.name)
        if self.multiarch == "same":
            for e in cands:
                if e.arch == self.arch:
                    return e
            return None
        for e in cands:
            if e.status != "not-installed" and e.multiarch != "same":
                return e
        for e in cands:
            if e.arch in (self.arch, "all", ""):
                return e
        return cands[0] if cands else None

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> PkgEntry:
        """``process_archive``: see the module documentation. New scripts run from the control
        area dpkg extracts to ``ADMINDIR/tmp.ci`` and removes at the end (``cu_cidir``)."""
        self.cidir = extract_control_area(self.fs, self.db.admindir, self.deb.control_files)
        try:
            return self._run()
        finally:
            remove_tree(self.fs, self.cidir)

    def _run(self) -> PkgEntry:
        db, fs = self.db, self.fs
        if self.arch not in ("all", self.native_arch) and self.arch not in self.foreign_arches():
            raise OperationFailedError(f"package architecture ({self.arch}) does not match system ({self.native_arch})",
                                       where=self.where)
        entry = self._find_entry()
        check_predepends_conflicts(db, self.ctl, entry, self.removing)
        new_conffiles = self._parse_conffiles(entry)
        if entry is None:
            entry = db.status.add(PkgEntry(Paragraph([("Package", " " + self.name)]), "status"))
            entry.set_status("unknown", "ok", "not-installed")
            db._noted.add(id(entry))  # a fresh pkginfo is not dirty (pkg_blank)
            if self.arch:
                entry.set("Architecture", self.arch)
            if self.multiarch != "no":
                entry.set("Multi-Arch", self.multiarch)
        # parsing the archive's control (pdb_parse_binary, no weak classification) sets the
        # package's Priority and Section at once: every journal record from here shows them
        for k in ("Priority", "Section"):
            if self.ctl.get(k):
                entry.set(k, self.ctl.get(k))
        old_status = entry.status
        old_version = entry.version
        installed_before = old_status not in ("not-installed", "config-files")
        if installed_before:
            db.log(f"upgrade {self.name}:{entry.arch or self.arch} {old_version} {self.version}")
        else:
            db.log(f"install {self.name}:{self.arch} {old_version or '<none>'} {self.version}")
        self.report.setdefault("actions", []).append(("upgrade" if installed_before else "install", self.name,
                                                      old_version, self.version))
        db.available[id(entry)] = self.version
        entry.set_status(want="install")
        old_stem = entry.infodb_name()
        old_triggers = db.triggers_ci(entry) if installed_before or old_status == "config-files" else []
        activate_packageprocessing(db, entry, old_triggers)
        new_trig_ci = self._new_triggers()
        activate_packageprocessing(db, entry, new_trig_ci)
        old_files = db.files_of(entry) if old_status != "not-installed" else []
        old_conffiles = {c.name: c for c in entry.conffiles} if old_status != "not-installed" else {}

        # prerm of the installed version
        if old_status in ("half-configured", "triggers-awaited", "triggers-pending", "installed"):
            db.set_state(entry, "half-configured", eflag="reinstreq")
            run_fallback(db, self.runner, entry, "prerm", self._script("prerm"), "upgrade", self.version,
                         old_version, self.arch, self.cidir)
            db.set_state(entry, "unpacked")
            old_status = "unpacked"
        deconfigure_set_siblings(self.db, self.runner, entry, self.version, activate_packageprocessing, self.where,
                                 ScriptFailed)
        entry.set_status(eflag="reinstreq")
        if old_status == "not-installed":
            entry.set("Version", self.version)
            entry.set("Multi-Arch", self.multiarch if self.multiarch != "no" else None)
        db.set_state(entry, "half-installed")
        pre = self._script("preinst")
        if pre is not None:
            if old_status == "not-installed":
                args = ["install"]
            elif old_status == "config-files":
                args = ["install", old_version, self.version]
            else:
                args = ["upgrade", old_version, self.version]
            rc = db.run_script(self.runner, entry, "preinst", args, script=pre, arch=self.arch,
                               path=self.cidir + "/preinst")
            if rc != 0:
                post = self._script("postrm")
                if post is not None:
                    unwind = ["abort-install"] if old_status == "not-installed" else (
                        ["abort-install", old_version, self.version] if old_status == "config-files"
                        else ["abort-upgrade", old_version, self.version])
                    db.run_script(self.runner, entry, "postrm", unwind, script=post, arch=self.arch,
                                  path=self.cidir + "/postrm")
                raise ScriptFailed(f"new pre-installation script subprocess returned error exit status {rc}",
                                   where=self.where)

        # the data
        self.ids = (read_ids(fs, "/etc/passwd"), read_ids(fs, "/etc/group"))
        try:
            newfiles, extracted, hashes = self._extract(entry, new_conffiles)
        except OSError as err:
            raise _unpack_error(err, self.where) from None

        if old_status in ("half-installed", "unpacked"):
            db.set_state(entry, "half-installed")
            run_fallback(db, self.runner, entry, "postrm", self._script("postrm"), "upgrade", self.version,
                         old_version, self.arch, self.cidir)

        self._remove_old_files(entry, old_files, newfiles, new_conffiles, old_conffiles)
        newfile_list = list(self._member_paths)  # dpkg's newfiles queue: one entry per member
        for c in new_conffiles:
            if c.obsolete and c.name not in newfiles:
                newfile_list.append(c.name)
        db.set_files(entry, newfile_list)
        if old_stem != entry.infodb_name() and old_status != "not-installed":
            pass
        # trigger interests: old ones out, new ones in
        for d in old_triggers:
            if d.kind == "interest":
                db.triggers.remove_interest(d.name, entry.nonambig())
        new_stem = self._stem()
        for d in new_trig_ci:
            if d.kind == "interest":
                db.triggers.add_interest(d.name, self.name if self.multiarch != "same" else f"{self.name}:{self.arch}", d.noawait)
        self._update_infodb(entry, old_stem, new_stem)
        if "md5sums" not in self.deb.control_files:
            db.info.write_md5sums(new_stem, [(p, hashes[p]) for p in self._member_paths if p in hashes])
        self._update_fields(entry, new_conffiles)
        self._disappear_others(entry, set(newfiles) - self.filtered)
        self._remove_from_others(entry, extracted)
        db.set_state(entry, "unpacked")
        entry.set_status(eflag="ok")
        db.note(entry)  # process_archive notes again once reinstreq is cleared
        return entry

    def foreign_arches(self) -> list[str]:
        try:
            return self.fs.read_bytes(self.db.admindir + "/arch").decode().split()
        except FileNotFoundError:
            return []

    def _stem(self) -> str:
        if self.multiarch == "same" and self.db.info.format() >= 1:
            return f"{self.name}:{self.arch}"
        return self.name

    def _new_triggers(self):
        m = self.deb.control_files.get("triggers")
        if m is None:
            return []
        # the .deb's own file: a bad line is bad input (exit 2), not a damaged image
        return parse_triggers_ci(m.data.decode("utf-8", "replace"), f"{self.deb.where}: triggers", InvalidInputError)

    def _parse_conffiles(self, entry: PkgEntry | None) -> list[Conffile]:
        """``deb_parse_conffiles``: the new package's conffiles with their recorded hashes."""
        m = self.deb.control_files.get("conffiles")
        return [] if m is None else parse_deb_conffiles(m.data, self.db, entry, f"{self.deb.where}: conffiles")

    # ---- tarobject ---------------------------------------------------------------------------
    def _owner_ids(self, m: A.DataMember) -> tuple[int, int]:
        users, groups = self.ids
        uid = users.get(m.uname, m.uid) if m.uname else m.uid
        gid = groups.get(m.gname, m.gid) if m.gname else m.gid
        return uid, gid

    def _extract(self, entry: PkgEntry, new_conffiles: list[Conffile]):
        db, fs = self.db, self.fs
        conff_names = {c.name for c in new_conffiles if not c.remove_on_upgrade}
        rm_names = {c.name for c in new_conffiles if c.remove_on_upgrade}
        newfiles: dict[str, str] = {}  # path -> type, in archive order
        extracted: list[str] = []  # paths placed on disk (ELIDE_OTHER_LISTS)
        hashes: dict[str, str] = {}
        # dpkg hashes every file it extracts; only a package without md5sums needs them here
        # (its md5sums file is written from them)
        want_hashes = "md5sums" not in self.deb.control_files
        # path -> usename, in first-appearance order: dpkg keeps one flag set per path (its
        # fsys_namenode), so a path the archive holds twice is renamed into place once
        deferred: dict[str, str] = {}
        deferred_set: set[str] = set()
        kinds: dict[str, str] = {}  # path -> type of its latest member (duplicates)
        self._member_paths: list[str] = []  # every member's path, in archive order
        replacing_said: dict[int, int] = {}
        for m in self.deb.members():
            path = m.path
            A.check_duplicate_member(kinds.get(path), m.type, path, self.where)
            kinds[path] = m.type
            self._member_paths.append(path)
            if path in rm_names:
                raise InvalidInputError(f"conffile '{path}' marked for removal on upgrade, shipped in package",
                                        where=self.where)
            newfiles[path] = m.type
            div_to = db.diversions.by_target(path)
            if div_to is not None and div_to.path != path:
                raise OperationFailedError(f"trying to overwrite '{path}', which is the diverted version of "
                                           f"'{div_to.path}'" + (f" (package: {div_to.package})" if div_to.package else ""),
                                           where=self.where)
            ov = db.statoverrides.get(path)
            uid, gid = (ov.uid, ov.gid) if ov else self._owner_ids(m)
            mode = ov.mode & 0o7777 if ov else m.mode
            use = db.diversions.use_path(path, self.name)
            activate_path(db, use, entry)
            is_conff = path in conff_names and m.type in (A.REG, A.HARDLINK)
            if is_conff:
                use = conffderef(fs, use)
            st = _lstat(fs, use)
            existingdir = False
            if m.type == A.SYMLINK and st is not None:
                if _stat.S_ISDIR(st.st_mode):
                    existingdir = True
                elif _stat.S_ISLNK(st.st_mode):
                    existingdir = self._link_to_same_dir(m, use)
            elif m.type == A.DIR:
                s2 = _stat_follow(fs, use)
                existingdir = s2 is not None and _stat.S_ISDIR(s2.st_mode)
            keep = False
            if not existingdir:
                keep = self._check_overwrite(entry, path, m, st, is_conff, replacing_said)
            if keep:
                del newfiles[path]
                self._member_paths.pop()  # tar_fsys_namenode_queue_pop
                continue
            if self.filters.skip(path, m.type in (A.DIR, A.SYMLINK)):
                self.filtered.add(path)  # listed, not extracted (path-exclude)
                continue
            if existingdir:
                continue
            if m.type == A.REG:
                pass
            # extract as .dpkg-new
            new = use + DPKGNEW
            remove_tree(fs, new)
            remove_tree(fs, use + DPKGTMP)
            if m.type == A.REG:
                digest = self._write_file(new, m, uid, gid, mode, want_hashes)
                if digest is not None:
                    hashes[path] = digest
            elif m.type == A.HARDLINK:
                target_use = db.diversions.use_path(m.linkname, self.name)
                if m.linkname in deferred_set or m.linkname in conff_names:
                    target_use += DPKGNEW
                fs.link(target_use, new)
                if m.linkname in hashes:
                    hashes[path] = hashes[m.linkname]
            elif m.type == A.SYMLINK:
                fs.symlink(m.linkname, new)
                fs.chown(new, uid, gid, follow_symlinks=False)
            elif m.type == A.DIR:
                fs.mkdir(new, 0)
            elif m.type == A.FIFO:
                fs.mknod(new, _stat.S_IFIFO, 0)
            else:
                fs.mknod(new, A.TYPE_BITS[m.type], m.rdev)
            if m.type not in (A.REG, A.SYMLINK):
                fs.chown(new, uid, gid)
                fs.chmod(new, mode)
            if m.type == A.SYMLINK:
                fs.utime(new, self.now * 10**9, m.mtime * 10**9, follow_symlinks=False)
            else:
                fs.utime(new, self.now * 10**9, m.mtime * 10**9)
            if is_conff:
                extracted.append(path)
                continue
            if st is not None and (m.type == A.DIR or _stat.S_ISDIR(st.st_mode)):
                # one of the two is a directory: no atomic overwrite (dpkg moves the old aside)
                if _stat.S_ISDIR(st.st_mode):
                    try:
                        fs.rmdir(use)
                    except OSError as e:
                        remove_tree(fs, new)
                        raise OperationFailedError(f"unable to replace directory '{use}' with a non-directory: "
                                                   f"{os.strerror(e.errno)}", where=self.where) from None
                else:
                    fs.unlink(use)
            if m.type in (A.REG, A.HARDLINK, A.SYMLINK):
                deferred[path] = use
                deferred_set.add(path)
            else:
                fs.rename(new, use)
                extracted.append(path)
                if deferred.pop(path, None) is not None:  # an earlier member of the same path
                    deferred_set.discard(path)
        for path, use in deferred.items():  # tar_deferred_extract
            fs.rename(use + DPKGNEW, use)
            deferred_set.discard(path)
            extracted.append(path)
        return newfiles, extracted, hashes

    def _write_file(self, new: str, m: A.DataMember, uid: int, gid: int, mode: int, md5: bool) -> str | None:
        """Extract a regular file's member to ``new``; its md5 (hex) when ``md5``, else None."""
        fs = self.fs
        h = fs.open_handle(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        digest = hashlib.md5() if md5 else None
        off = 0
        try:
            while True:
                chunk = m.read(_CHUNK)
                if not chunk:
                    break
                if digest is not None:
                    digest.update(chunk)
                h.pwrite(off, chunk)
                off += len(chunk)
        finally:
            h.close()
        fs.chown(new, uid, gid)
        fs.chmod(new, mode)
        return digest.hexdigest() if digest is not None else None

    def _link_to_same_dir(self, m: A.DataMember, use: str) -> bool:
        """dpkg ``linktosameexistingdir``: the existing symlink and the new one reach the same directory."""
        fs = self.fs
        a = _stat_follow(fs, use)
        if a is None or not _stat.S_ISDIR(a.st_mode):
            return False
        target = m.linkname if m.linkname.startswith("/") else posixpath.join(posixpath.dirname(use), m.linkname)
        b = _stat_follow(fs, target)
        return b is not None and _stat.S_ISDIR(b.st_mode) and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def _check_overwrite(self, entry, path, m, st, is_conff, said: dict) -> bool:
        """The ownership loop of ``tarobject``; True means keep the existing file (skip member)."""
        keep = False
        db = self.db
        for other in db.owners(path):
            if other is entry:
                continue
            if other.name == self.name and other.multiarch == "same" and self.multiarch == "same":
                continue
            div = db.diversions.by_path(path)
            if div is not None and div.package in (other.name, self.name):
                continue
            if st is None and m.type == A.DIR:
                continue
            s = said.get(id(other))
            if s == 2:
                keep = True
                continue
            if s == 1:
                continue
            if other.status == "config-files" or id(other) in self.removing:
                continue
            if is_conff and st is not None and _stat.S_ISREG(st.st_mode):
                if any(c.name == path and c.obsolete for c in other.conffiles):
                    continue
            if does_replace(self.ctl, other.name, other.version, other.arch):
                said[id(other)] = 1
                self.report.setdefault("replaced", []).append((other.name, path))
            elif does_replace(other.para, self.name, self.version, self.arch):
                said[id(other)] = 2
                keep = True
            else:
                what = "directory " if st is not None and _stat.S_ISDIR(st.st_mode) else ""
                tail = " with nondirectory" if what else ""
                raise OperationFailedError(
                    f"trying to overwrite {what}'{path}', which is also in package {other.nonambig()} {other.version}{tail}"
                    f" (data.tar member {path!r}, no Replaces)", where=f"{self.deb.where}")
        return keep

    # ---- after the data --------------------------------------------------------------------
    def _remove_old_files(self, entry, old_files, newfiles, new_conffiles, old_conffiles) -> None:
        db, fs = self.db, self.fs
        new_conff = {c.name: c for c in new_conffiles}
        for c in new_conffiles:
            if c.remove_on_upgrade:
                self._remove_conffile_on_upgrade(entry, c)
        new_ids = None
        for path in reversed(old_files):
            if path in new_conff or (path in newfiles and path not in self.filtered):
                continue
            use = db.diversions.use_path(path, self.name)
            st = _stat_follow(fs, use)
            if st is not None and _stat.S_ISDIR(st.st_mode):
                if any(o is not entry for o in db.owners(path)):
                    continue
            lst = _lstat(fs, use)
            if lst is None:
                continue
            if _stat.S_ISDIR(lst.st_mode):
                activate_path(db, use, entry)
                if use in ("/", "/."):
                    continue
                try:
                    fs.rmdir(use)
                except OSError:
                    pass
                continue
            if new_ids is None:
                new_ids = set()
                for p in newfiles:
                    s = _lstat(fs, p)
                    if s is not None:
                        new_ids.add((s.st_dev, s.st_ino))
            same = (lst.st_dev, lst.st_ino) in new_ids
            if path in old_conffiles:
                if not same:
                    c = old_conffiles[path]
                    new_conffiles.append(Conffile(path, c.hash, True, False))
                continue
            if same:
                continue
            activate_path(db, use, entry)
            fs.unlink(use)

    def _remove_conffile_on_upgrade(self, entry, c: Conffile) -> None:
        fs = self.fs
        if any(o is not entry for o in self.db.owners(c.name)):
            return
        use = conffderef(fs, self.db.diversions.use_path(c.name, self.name))
        try:
            fs.unlink(use + ".dpkg-dist")
        except OSError:
            pass
        cur = md5_of(fs, use)
        if cur == "nonexistent":
            return
        if cur == c.hash:
            fs.unlink(use)
        else:
            fs.rename(use, use + ".dpkg-old")

    def _update_infodb(self, entry, old_stem: str, new_stem: str) -> None:
        info = self.db.info
        new = {n: m for n, m in self.deb.control_files.items() if "." not in n and n not in ("control", "list")}
        for ft in sorted(info.filetypes(old_stem)):
            if ft in ("list",):
                continue
            if ft in new and old_stem == new_stem:
                continue
            if ft == "md5sums" and "md5sums" not in new:
                continue
            info.remove(old_stem, ft)
        for n, m in new.items():
            info.install(new_stem, n, m.data, m.mode, m.mtime * 10**9)
        if old_stem != new_stem:
            for ft in sorted(info.filetypes(old_stem)):
                info.remove(old_stem, ft)

    def _update_fields(self, entry: PkgEntry, new_conffiles: list[Conffile]) -> None:
        """``pkg_update_fields``: the installed half becomes the new control's fields."""
        status = entry.para.get("Status")
        config_version = entry.config_version
        old = entry.para
        fields = [("Package", " " + self.name)]
        ctl = self.ctl
        for k in ("Essential", "Protected"):
            if (ctl.get(k) or "no") == "yes":
                fields.append((k, " yes"))
        fields.append(("Status", " " + status))
        for k in ("Priority", "Section"):
            v = ctl.get(k) or old.get(k)
            if v:
                fields.append((k, " " + v))
        for k in ("Installed-Size", "Origin", "Maintainer", "Bugs", "Architecture"):
            v = ctl.get(k)
            if v:
                fields.append((k, ctl.raw_value(k) if "\n" in (ctl.raw_value(k) or "") else " " + v))
        if self.multiarch != "no":
            fields.append(("Multi-Arch", " " + self.multiarch))
        if ctl.get("Source"):
            fields.append(("Source", " " + ctl.get("Source")))
        fields.append(("Version", " " + self.version))
        if config_version:
            fields.append(("Config-Version", " " + config_version))
        for k in DEPENDENCY_FIELDS:
            v = ctl.get(k)
            if v:
                fields.append((k, " " + format_relations(parse_relations(v, k, self.deb.where))))
        if new_conffiles:
            fields.append(("Conffiles", "\n" + "\n".join(c.render() for c in new_conffiles)))
        if ctl.get("Description") is not None:
            raw = ctl.raw_value("Description")
            first, nl, rest = raw.partition("\n")
            fields.append(("Description", " " + first.strip() + nl + rest.rstrip()))
        for k in ("Triggers-Pending", "Triggers-Awaited"):
            if old.get(k):
                fields.append((k, " " + old.get(k)))
        for k in ctl.keys():
            if k.lower() not in KNOWN_FIELDS and k.lower() not in OBSOLETE_FIELDS:
                raw = ctl.raw_value(k)
                first, nl, rest = raw.partition("\n")
                fields.append((k, " " + first.strip() + nl + rest.rstrip()))
        entry.para = Paragraph(fields)
        entry.dirty = True
        entry.set_config_version(config_version)

    def _disappear_others(self, entry: PkgEntry, newfiles: set[str]) -> None:
        """``pkg_disappear_others``: packages whose every file now belongs to us go away."""
        db = self.db
        for other in list(db.status.entries):
            if other is entry or other.status in ("not-installed", "config-files") or id(other) in self.removing:
                continue
            if entry.multiarch == "same" and other.multiarch == "same" and other.name == entry.name:
                continue
            files = db.files_of(other)
            if not [p for p in files if p != "/."]:
                continue
            if any(self._file_saves(p, other, entry, newfiles) for p in files):
                continue
            db.log(f"disappear {db.name_always(other)} {other.version} <none>")
            activate_packageprocessing(db, other)
            db.run_script(self.runner, other, "postrm", ["disappear", self.name, self.version])
            db.info.remove_all(other.infodb_name())
            db.forget_files(other)
            other.para = Paragraph([("Package", " " + other.name), ("Status", " " + other.para.get("Status")),
                                    ("Architecture", " " + other.arch)])  # pkgbin_blank (arch kept for the log)
            other.set_config_version("")
            other.dirty = True
            db.set_state(other, "not-installed", want="unknown", eflag="ok")
            other.set("Architecture", None)
            self.report.setdefault("disappeared", []).append(other.name)

    def _file_saves(self, path: str, other: PkgEntry, entry: PkgEntry, newfiles: set[str]) -> bool:
        """dpkg ``filesavespackage``: does ``other``'s file ``path`` keep it from disappearing?

        A path diverted by either package saves it; a path in the new archive does not; nor
        does one a third package also lists (a shared directory); anything else does
        (conffiles and directories of its own included).
        """
        db = self.db
        div = db.diversions.by_path(path)
        if div is not None and div.package in (other.name, self.name):
            return True
        if path in newfiles:
            return False
        for third in db.owners(path):
            if third is entry or third is other:
                continue
            if other.multiarch == "same" and third.name == other.name:
                continue
            if third.status == "not-installed":  # disappeared already in this run
                continue
            return False
        return True

    def _remove_from_others(self, entry: PkgEntry, extracted: list[str]) -> None:
        """``pkg_remove_files_from_others``: files we placed leave other packages' lists."""
        db = self.db
        touched = {}
        for p in extracted:
            for other in db.owners(p):
                if other is entry:
                    continue
                if other.name == entry.name and other.multiarch == "same" and entry.multiarch == "same":
                    continue
                if db.diversions.by_path(p) is not None:
                    continue
                touched.setdefault(id(other), (other, set()))[1].add(p)
        for other, paths in touched.values():
            db.set_files(other, [p for p in db.files_of(other) if p not in paths])


def package_state_ok_for_predepends(entry: PkgEntry) -> bool:
    return STATE_RANK[entry.status] >= STATE_RANK["triggers-awaited"]
