"""The install logic of ``systemctl`` (systemd 252 ``src/shared/install.c``) on an image.

:class:`UnitFiles` finds and loads unit files (``unit_file_search``, symlinks as aliases,
linked files and masks, drop-ins); :class:`Context` is ``InstallContext`` (the ordered set of
units to process, following aliases, ``Also=``) with the operations ``enable``, ``disable``,
``reenable``, ``preset``, ``preset-all``, ``mask``, ``unmask`` and the enablement state
(``unit_file_lookup_state``). Every change is recorded as systemd records it
(``InstallChange``: created/removed symlinks and errors), in the order it happens, so that
``systemctl.py`` prints exactly what ``install_changes_dump`` prints. Directories are read in
the filesystem's own order, as systemd's ``FOREACH_DIRENT`` reads them.
"""

from __future__ import annotations

import errno
import posixpath
import stat as st
from dataclasses import dataclass, field

from nuwa.fs.model import FileSystem
from nuwa.script.commands.services.systemd_units import (
    ALIAS,
    ANY,
    INSTANCE,
    PLAIN,
    TEMPLATE,
    InstallSection,
    LINKED,
    LookupPaths,
    MASKED,
    NeedsRuntime,
    UnitError,
    _MAY_ALIAS,
    _NO_TEMPLATE,
    chase,
    classify,
    conf_files,
    install_printf,
    instance_of,
    is_valid,
    lstat,
    null_or_empty,
    parse_install,
    read_text,
    REGULAR,
    replace_instance,
    stat,
    template_of,
    unit_type,
)

SEARCH_LOAD, SEARCH_FOLLOW_CONFIG_SYMLINKS, SEARCH_DROPIN = 1, 2, 4


@dataclass
class InstallInfo:
    """``InstallInfo``: one unit name being looked up, where it was found and its [Install]."""

    name: str
    path: str | None = None
    mode: str | None = None
    symlink_target: str | None = None
    install: InstallSection = field(default_factory=InstallSection)
    auxiliary: bool = False


def validate_alias(filename: str, target: str, notes: list[str]) -> int:
    """``unit_validate_alias_symlink_or_warn``: 0, or -EINVAL/-EXDEV/-ELOOP."""
    src, dst = posixpath.basename(filename), posixpath.basename(target)
    sc = classify(src)
    if not sc:
        notes.append(f"{filename}: not a valid unit name \"{src}\": Invalid argument")
        return -errno.EINVAL
    stype = src.rsplit(".", 1)[1]
    if stype not in _MAY_ALIAS:
        notes.append(f"{filename}: symlinks are not allowed for units of this type, rejecting.")
        return -errno.EINVAL
    if sc != PLAIN and stype in _NO_TEMPLATE:
        notes.append(f"{filename}: templates not allowed for {stype} units, rejecting.")
        return -errno.EINVAL
    if src == dst:
        return -errno.ELOOP
    dc = classify(dst)
    if not dc:
        notes.append(f"{filename} points to \"{dst}\" which is not a valid unit name: Invalid cross-device link")
        return -errno.EXDEV
    if not (dc == sc or (sc == INSTANCE and dc == TEMPLATE)):
        notes.append(f"{filename}: symlink target name type \"{dst}\" does not match source, rejecting.")
        return -errno.EXDEV
    if dc == INSTANCE and instance_of(src) != instance_of(dst):
        notes.append(f"{filename}: unit symlink target \"{dst}\" instance name doesn't match, rejecting.")
        return -errno.EXDEV
    if dst.rsplit(".", 1)[1] != stype:
        notes.append(f"{filename}: symlink target \"{dst}\" has incompatible suffix, rejecting.")
        return -errno.EXDEV
    return 0


def under_search_path(path: str, lp: LookupPaths) -> str | None:
    """``path_startswith_strv``: the rest of ``path`` below the first search directory holding it."""
    for d in lp.search_path:
        if path.startswith(d + "/"):
            return path[len(d) + 1:]
    return None


class UnitFiles:
    """Reads unit files of one image for one scope; collects systemd's log lines in ``log``."""

    def __init__(self, fs: FileSystem, lp: LookupPaths):
        self.fs = fs
        self.lp = lp
        self.log: list[str] = []
        #: directory -> [(name, st_mode, link target)] while nothing is written (is-enabled)
        self.dir_cache: dict[str, list[tuple[str, int, str | None]]] | None = None

    def entries(self, d: str) -> list[tuple[str, int, str | None]]:
        """``FOREACH_DIRENT`` with d_type and, for symlinks, the target (cached when allowed)."""
        if self.dir_cache is not None and d in self.dir_cache:
            return self.dir_cache[d]
        out = []
        try:
            names = self.fs.readdir(d)
        except (OSError, ValueError):
            names = []
        for n in names:
            p = posixpath.join(d, n)
            s = lstat(self.fs, p)
            if s is None:
                continue
            out.append((n, s.st_mode, self.fs.readlink(p) if st.S_ISLNK(s.st_mode) else None))
        if self.dir_cache is not None:
            self.dir_cache[d] = out
        return out

    # unit_file_resolve_symlink(..., resolve_destination_target=true)
    def resolve_symlink(self, path: str) -> tuple[str, bool]:
        """(absolute canonical target, True if it lies outside the search path: a linked file)."""
        try:
            target = self.fs.readlink(path)
        except OSError as e:
            raise UnitError(-(e.errno or errno.EIO), path) from None
        if not target.startswith("/"):
            target = posixpath.join(posixpath.dirname(path), target)
        simplified = chase(self.fs, target, False)
        tail = under_search_path(simplified, self.lp)
        if tail is None:
            return simplified, True
        r = validate_alias(path, simplified, self.log)
        if r < 0:
            raise UnitError(r, path)
        if "/" in tail:
            self.log.append(f"Suspicious symlink {path} \u2192 {simplified}, treating as alias.")
        return simplified, False

    def load(self, info: InstallInfo, path: str, flags: int, ctx=None) -> int:
        """``unit_file_load``: mode and [Install] of ``path`` for ``info``; the number of rules."""
        dropin = bool(flags & SEARCH_DROPIN)
        if not dropin:
            t = unit_type(info.name)
            if t is None:
                raise UnitError(-errno.EINVAL, path)
            if classify(info.name) & (TEMPLATE | INSTANCE) and t in _NO_TEMPLATE:
                self.log.append(f"{path}: unit type {t} cannot be templated, ignoring.")
                raise UnitError(-errno.EINVAL, path)
            s = lstat(self.fs, path)
            if s is None:
                raise UnitError(-errno.ENOENT, path)
            if st.S_ISLNK(s.st_mode):
                raise UnitError(-errno.ELOOP, path)
            if st.S_ISREG(s.st_mode) and s.st_size == 0 or st.S_ISCHR(s.st_mode) or st.S_ISBLK(s.st_mode):
                info.mode = MASKED
                return 0
            if not flags & SEARCH_LOAD:
                if st.S_ISREG(s.st_mode):
                    info.mode = REGULAR
                    return 0
                raise UnitError(-errno.EISDIR if st.S_ISDIR(s.st_mode) else -errno.ENOTTY, path)
            if not st.S_ISREG(s.st_mode):
                raise UnitError(-errno.EISDIR if st.S_ISDIR(s.st_mode) else -errno.EBADFD, path)
        else:
            if not flags & SEARCH_LOAD:
                return 0
            if null_or_empty(self.fs, path):
                return 0
            s = stat(self.fs, path)
            if s is None:
                raise UnitError(-errno.ENOENT, path)
            if not st.S_ISREG(s.st_mode):
                raise UnitError(-errno.EISDIR if st.S_ISDIR(s.st_mode) else -errno.EBADFD, path)
        try:
            text = read_text(self.fs, path)
        except OSError as e:
            raise UnitError(-(e.errno or errno.EIO), path) from None

        def printf(v: str) -> str:
            return install_printf(v, info.name, info.install.default_instance)

        parse_install(text, info.name, path, info.install, self.log, printf,
                      (lambda n: ctx.add(n, auxiliary=True)) if ctx is not None else None)
        if not dropin:
            info.mode = REGULAR
        i = info.install
        return len(i.aliases) + len(i.wanted_by) + len(i.required_by) + len(i.upheld_by)

    def load_or_readlink(self, info: InstallInfo, path: str, flags: int, ctx=None) -> int:
        """``unit_file_load_or_readlink``: a symlink becomes an alias, a linked file or a mask."""
        try:
            return self.load(info, path, flags, ctx)
        except UnitError as e:
            if e.code != -errno.ELOOP or flags & SEARCH_DROPIN:
                raise
        target, outside = self.resolve_symlink(path)
        info.symlink_target = target
        if null_or_empty(self.fs, target):
            info.mode = MASKED
        else:
            info.mode = LINKED if outside else ALIAS
        return 0

    def search(self, info: InstallInfo, flags: int, ctx=None) -> int:
        """``unit_file_search``: the first file named like the unit (or its template) on the
        search path, then the drop-ins of both names."""
        if info.mode is not None:
            return 0
        if info.path:
            return self.load_or_readlink(info, info.path, flags, ctx)
        tmpl = template_of(info.name) if classify(info.name) == INSTANCE else None
        result = None
        for name in [info.name] + ([tmpl] if tmpl else []):
            for d in self.lp.search_path:
                p = posixpath.join(d, name)
                try:
                    result = self.load_or_readlink(info, p, flags, ctx)
                except UnitError as e:
                    if e.code in (-errno.ENOENT, -errno.ENOTDIR, -errno.EACCES):
                        continue
                    raise
                info.path = p
                break
            if result is not None:
                break
        if result is None:
            raise UnitError(-errno.ENOENT, info.name)
        if info.mode == MASKED:
            return result
        dirs = [posixpath.join(d, info.name + ".d") for d in self.lp.search_path]
        if tmpl:
            dirs += [posixpath.join(d, tmpl + ".d") for d in self.lp.search_path]
        for p in conf_files(self.fs, dirs, ".conf"):
            self.load_or_readlink(info, p, flags | SEARCH_DROPIN, ctx)
        return result

    def exists(self, name: str) -> int:
        """``unit_file_exists``: 1 if found, 0 if not, a negative errno for other failures."""
        try:
            Context(self).discover(name, 0)
        except UnitError as e:
            return 0 if e.code == -errno.ENOENT else e.code
        return 1


# -- InstallContext and the operations -----------------------------------------------------

SYMLINK, UNLINK, IS_MASKED, IS_DANGLING, DEST_NOT_PRESENT, AUX_FAILED = (
    "symlink", "unlink", "masked", "dangling", "destination not present", "auxiliary failed")


@dataclass
class Change:
    """``InstallChange``: a kind above, or a negative errno for an error."""

    kind: str | int
    path: str
    source: str | None = None


class Unsupported(Exception):
    """A form the model does not simulate exactly (the systemctl model defers it)."""


class Context:
    """``InstallContext`` over one image: units to process in order, then processed ones."""

    def __init__(self, uf: UnitFiles, changes: list[Change] | None = None, umask: int = 0o022):
        self.uf = uf
        self.fs: FileSystem = uf.fs
        self.lp: LookupPaths = uf.lp
        self.will: dict[str, InstallInfo] = {}
        self.have: dict[str, InstallInfo] = {}
        self.changes = changes if changes is not None else []
        self.umask = umask

    def change(self, kind, path: str, source: str | None = None) -> None:
        self.changes.append(Change(kind, posixpath.normpath(path) if path.startswith("/") else path, source))

    def find(self, name: str) -> InstallInfo | None:
        return self.have.get(name) or self.will.get(name)

    def add(self, name: str | None, path: str | None = None, auxiliary: bool = False) -> InstallInfo:
        """``install_info_add``."""
        name = name or posixpath.basename(path or "")
        if not is_valid(name):
            raise UnitError(-errno.EINVAL, name)
        i = self.find(name)
        if i is not None:
            i.auxiliary = i.auxiliary and auxiliary
            return i
        i = InstallInfo(name, path, auxiliary=auxiliary)
        self.will[name] = i
        return i

    def _search(self, i: InstallInfo, flags: int) -> int:
        try:
            return self.uf.search(i, flags, self)
        except NeedsRuntime as e:
            raise Unsupported(str(e)) from None

    def follow(self, i: InstallInfo, flags: int, ignore_different_name: bool) -> None:
        """``install_info_follow``."""
        if not ignore_different_name and posixpath.basename(i.symlink_target or "") != i.name:
            raise UnitError(-errno.EXDEV, i.name)
        i.path, i.symlink_target, i.mode = i.symlink_target, None, None
        self.uf.load_or_readlink(i, i.path, flags, self)

    def traverse(self, start: InstallInfo, flags: int) -> InstallInfo:
        """``install_info_traverse``: search, then follow alias and link symlinks."""
        self._search(start, flags)
        i, k = start, 0
        while i.mode in (ALIAS, LINKED):
            k += 1
            if k > 64:
                raise UnitError(-errno.ELOOP, i.name)
            if not flags & SEARCH_FOLLOW_CONFIG_SYMLINKS and posixpath.dirname(i.path) in (
                    self.lp.persistent_config, self.lp.runtime_config):
                raise UnitError(-errno.ELOOP, i.name)
            try:
                self.follow(i, flags, i.mode == LINKED)
                continue
            except UnitError as e:
                if e.code != -errno.EXDEV or not i.symlink_target:
                    raise
            bn = posixpath.basename(i.symlink_target)
            if classify(i.name) == INSTANCE and classify(bn) == TEMPLATE:
                buf = replace_instance(bn, instance_of(i.name))
                if buf == i.name:
                    self.follow(i, flags, True)
                    continue
                bn = buf
            i = self.add(bn)
            try:
                self._search(i, flags)
            except UnitError as e:
                if e.code == -errno.ENOENT:
                    raise UnitError(-errno.ENOLINK, i.name) from None
                raise
        return i

    def discover(self, name: str, flags: int, record: bool = False) -> InstallInfo:
        """``install_info_discover`` (with ``record``, failures become changes)."""
        try:
            if name.startswith("/"):
                raise Unsupported(f"unit file path {name}")
            return self.traverse(self.add(name), flags)
        except UnitError as e:
            if record:
                self.change(e.code, name)
            raise

    def discover_and_check(self, name: str, flags: int) -> InstallInfo:
        """``install_info_discover_and_check``: masked, generated and transient units refused."""
        i = self.discover(name, flags, record=True)
        if i.mode == MASKED:
            self.change(-errno.ERFKILL, i.path)
            raise UnitError(-errno.ERFKILL, i.path)
        d = posixpath.dirname(i.path or "")
        if self.lp.is_generator_dir(d) or d == self.lp.transient:
            self.change(-errno.EADDRNOTAVAIL, i.path)
            raise UnitError(-errno.EADDRNOTAVAIL, i.path)
        return i

    # -- creating symlinks

    def _mkdir_parents(self, path: str) -> None:
        comps = [c for c in posixpath.dirname(path).split("/") if c]
        cur = ""
        for c in comps:
            cur += "/" + c
            if lstat(self.fs, cur) is None:
                try:
                    self.fs.mkdir(cur, 0o755 & ~self.umask)
                except OSError:
                    return

    def _equivalent(self, new_path: str, a: str, b: str) -> bool:
        """``chroot_unit_symlinks_equivalent``."""
        d = posixpath.dirname(new_path)
        a = a if a.startswith("/") else posixpath.join(d, a)
        b = b if b.startswith("/") else posixpath.join(d, b)
        if posixpath.normpath(a) == posixpath.normpath(b):
            return True
        sa, sb = stat(self.fs, a), stat(self.fs, b)
        if sa is not None and sb is not None and (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
            return True
        return (posixpath.basename(a) == posixpath.basename(b) and self._in_search(a) and self._in_search(b))

    def _in_search(self, p: str) -> bool:
        p = posixpath.normpath(p)
        return any(p == d or p.startswith(d + "/") for d in self.lp.search_path)

    def create_symlink(self, old: str, new: str, force: bool) -> int:
        """``create_symlink``: 1 when the link exists as wanted afterwards, else a negative errno."""
        self._mkdir_parents(new)
        try:
            self.fs.symlink(old, new)
            self.change(SYMLINK, new, old)
            return 1
        except OSError as e:
            if e.errno != errno.EEXIST:
                self.change(-(e.errno or errno.EIO), new)
                return -(e.errno or errno.EIO)
        s = lstat(self.fs, new)
        if s is None or not st.S_ISLNK(s.st_mode):
            self.change(-errno.EEXIST, new)
            return -errno.EEXIST
        dest = self.fs.readlink(new)
        if self._equivalent(new, dest, old):
            return 1
        if not force:
            self.change(-errno.EEXIST, new, dest)
            return -errno.EEXIST
        self.fs.unlink(new)
        self.fs.symlink(old, new)
        self.change(UNLINK, new)
        self.change(SYMLINK, new, old)
        return 1

    def symlink_alias(self, i: InstallInfo, config: str, force: bool) -> int:
        """``install_info_symlink_alias``."""
        r = 0
        for a in i.install.aliases:
            try:
                dst = install_printf(a, i.name, i.install.default_instance)
            except NeedsRuntime as e:
                raise Unsupported(str(e)) from None
            if "/" in dst:
                raise Unsupported(f"legacy Alias= path {dst} in {i.name}")
            upd = None
            if classify(dst) == TEMPLATE and classify(i.name) == INSTANCE:
                upd = replace_instance(dst, instance_of(i.name))
            q = validate_alias(upd or dst, i.name, [])
            if q == -errno.ELOOP:
                continue
            if q < 0:
                self.change(-errno.EXDEV if q == -errno.EINVAL else q, upd or dst, i.name)
                r = r if r < 0 else q
                continue
            alias_path = posixpath.join(config, upd or dst)
            broken = stat(self.fs, alias_path) is None
            q = self.create_symlink(i.path, alias_path, force or broken)
            r = r if r < 0 else q
        return r

    def symlink_wants(self, i: InstallInfo, config: str, targets: list[str], suffix: str,
                      ignore_aux_failure: bool) -> int:
        """``install_info_symlink_wants`` (``.wants/``, ``.requires/``, ``.upholds/``)."""
        if not targets:
            return 0
        valid = ANY
        if classify(i.name) in (PLAIN, INSTANCE):
            n = i.name
        elif i.install.default_instance:
            n = replace_instance(i.name, i.install.default_instance)
            inst = InstallInfo(n)
            self.uf.search(inst, SEARCH_FOLLOW_CONFIG_SYMLINKS)
            if inst.mode == MASKED:
                self.change(-errno.ERFKILL, inst.path)
                return -errno.ERFKILL
        else:
            valid, n = INSTANCE | TEMPLATE, i.name
        r = 0
        for t in targets:
            try:
                dst = install_printf(t, i.name, i.install.default_instance)
            except NeedsRuntime as e:
                raise Unsupported(str(e)) from None
            if not is_valid(dst, valid):
                if ignore_aux_failure:
                    continue
                if is_valid(dst):
                    self.change(-errno.EIDRM, dst, n)
                    q = -errno.EIDRM
                else:
                    self.change(-errno.EUCLEAN, dst)
                    q = -errno.EUCLEAN
                r = q if r >= 0 else r
                continue
            q = self.create_symlink(i.path, f"{config}/{dst}{suffix}{n}", True)
            if (q < 0 and r >= 0) or r == 0:
                r = q
            if self.uf.exists(dst) == 0:
                self.change(DEST_NOT_PRESENT, dst, i.path)
        return r

    def apply_one(self, i: InstallInfo, config: str, force: bool, ignore_aux_failure: bool) -> int:
        """``install_info_apply``."""
        if i.mode != REGULAR:
            return 0
        if posixpath.dirname(i.path) not in self.lp.search_path:
            q = self.create_symlink(i.path, posixpath.join(config, i.name), force)
            if q < 0:
                return q
        r = self.symlink_alias(i, config, force)
        for targets, suffix in ((i.install.wanted_by, ".wants/"), (i.install.required_by, ".requires/"),
                                (i.install.upheld_by, ".upholds/")):
            q = self.symlink_wants(i, config, targets, suffix, ignore_aux_failure)
            if r == 0:
                r = q
        return r

    def apply(self, config: str, force: bool, flags: int, ignore_aux_failure: bool = False) -> int:
        """``install_context_apply``: the number of rules found, or a negative errno."""
        r = 0
        while self.will:
            name = next(iter(self.will))
            i = self.will.pop(name)
            self.have[name] = i
            try:
                self.traverse(i, flags)
            except UnitError as e:
                if i.auxiliary:
                    self.change(AUX_FAILED, i.name)
                    continue
                self.change(e.code, i.name)
                return e.code
            if i.mode == MASKED:
                self.change(IS_MASKED, i.path)
                if r >= 0:
                    r += 1
                continue
            if i.mode != REGULAR:
                continue
            q = self.apply_one(i, config, force, ignore_aux_failure)
            if r >= 0:
                r = q if q < 0 else r + q
        return r

    # -- removing symlinks

    def mark_for_removal(self, marks: set[str]) -> None:
        """``install_context_mark_for_removal``."""
        while self.will:
            name = next(iter(self.will))
            i = self.will.pop(name)
            self.have[name] = i
            try:
                self.traverse(i, SEARCH_LOAD | SEARCH_FOLLOW_CONFIG_SYMLINKS)
            except UnitError as e:
                if e.code == -errno.ENOLINK:
                    self.change(IS_DANGLING, i.path or i.name)
                elif e.code == -errno.ENOENT:
                    if not i.auxiliary:
                        self.change(e.code, i.path or i.name)
                else:
                    self.change(e.code, i.path or i.name)
            else:
                if i.mode == MASKED:
                    self.change(IS_MASKED, i.path or i.name)
                    continue
                if i.mode != REGULAR:
                    continue
            marks.add(i.name)

    def remove_marked(self, marks: set[str], config: str) -> int:
        """``remove_marked_symlinks``: passes over ``config`` until no new path gets marked."""
        if not marks or lstat(self.fs, config) is None:
            return 0
        r = 0
        while True:
            restart = [False]
            q = self._remove_in(marks, config, config, restart)
            if r == 0:
                r = q
            if not restart[0]:
                return r

    def _remove_in(self, marks: set[str], path: str, config: str, restart: list[bool]) -> int:
        r = 0
        try:
            names = self.fs.readdir(path)
        except OSError as e:
            return -(e.errno or errno.EIO)
        for n in names:
            p = posixpath.join(path, n)
            s = lstat(self.fs, p)
            if s is None:
                continue
            if st.S_ISDIR(s.st_mode):
                q = self._remove_in(marks, p, config, restart)
                if q < 0 and r == 0:
                    r = q
                continue
            if not st.S_ISLNK(s.st_mode) or not is_valid(n):
                continue
            found = n in marks or (template_of(n) in marks if classify(n) == INSTANCE else False)
            if not found:
                try:
                    dest = chase(self.fs, p, True)
                except UnitError as e:
                    self.change(e.code, p)
                    r = r or e.code
                    continue
                found = dest in marks or posixpath.basename(dest) in marks
            if not found:
                continue
            try:
                self.fs.unlink(p)
            except OSError as e:
                r = r or -(e.errno or errno.EIO)
                self.change(-(e.errno or errno.EIO), p)
                continue
            self._rmdir_parents(p, config)
            self.change(UNLINK, p)
            if p not in marks:
                marks.add(p)
                restart[0] = True
        return r

    def _rmdir_parents(self, path: str, stop: str) -> None:
        """``rmdir_parents``: empty parents of ``path`` up to (not including) ``stop``."""
        p = posixpath.dirname(path)
        while p != "/" and not (stop == p or stop.startswith(p + "/")):
            try:
                self.fs.rmdir(p)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    return
            p = posixpath.dirname(p)
