"""Models of cp and install (GNU coreutils 9.1).

cp: regular files, directories (-r/-R/-a), symbolic links (copied as links under -P/-d/-R,
followed under -L or without -R), special files under -R (mknod), hard links kept together
under -a/--preserve=links, mode/ownership/timestamps/xattrs under -p/-a/--preserve.
install: files (default mode 0755, destination replaced), -d directories, -D leading
directories, -o/-g/-m/-p/-t/-T. Interactive and backup forms are deferred.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as _stat

from nuwa.fs.content import copy_content
from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB, apath, err, errno_text, quote, same_file, selinux_context_option
from nuwa.script.commands.coreutils.files import targets
from nuwa.script.commands.modes import ModeError, adjust_mode, compile_mode
from nuwa.script.context import Defer, Invocation

_ALL_PRESERVE = {"mode", "ownership", "timestamps", "links", "xattr"}


def copy_data(inv: Invocation, src: str, dst: str, create_mode: int, trunc: bool = True) -> None:
    """Copy the bytes of ``src`` into ``dst`` (created with ``create_mode`` if missing)."""
    st = inv.fs.stat(src)
    if _stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
        # the image's /dev/null (char 1:3) reads as empty on any Linux kernel: ``install -m 644
        # /dev/null FILE`` (apparmor's postinst) makes an empty file; the filesystem model
        # cannot open a device node (ENXIO), so its content is known here instead
        dh = inv.fs.open_handle(dst, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc else 0), create_mode)
        dh.close()
        return
    sh = inv.fs.open_handle(src, os.O_RDONLY)
    try:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc else 0)
        dh = inv.fs.open_handle(dst, flags, create_mode)
        try:
            if not inv.fs.clone_content(sh, dh):
                copy_content(sh, dh, sh.size(), holes=False)  # every byte written, as this model always did
        finally:
            dh.close()
    finally:
        sh.close()


class _Cp:
    def __init__(self, inv: Invocation):
        self.inv = inv
        self.recursive = False
        self.deref: bool | None = None
        self.force = False
        self.remove_dest = False
        self.verbose = False
        self.noclobber = False
        self.preserve: set[str] = set()
        self.hardlink = False
        self.symlink = False
        self.links: dict[tuple[int, int], str] = {}
        self.status = 0

    def fail(self, msg: str) -> None:
        err(self.inv, msg)
        self.status = 1

    def copy(self, src: str, dst: str, top: bool) -> None:
        inv = self.inv
        ps, pd = apath(inv, src), apath(inv, dst)
        follow = self.deref if self.deref is not None else (not self.recursive)
        try:
            st = inv.fs.stat(ps) if follow else inv.fs.lstat(ps)
        except OSError as e:
            self.fail(f"cannot stat {quote(src)}: {errno_text(e)}")
            return
        try:
            dst_st = inv.fs.lstat(pd)
        except OSError as e:
            if e.errno not in (errno.ENOENT,):
                self.fail(f"cannot stat {quote(dst)}: {errno_text(e)}")
                return
            dst_st = None
        if dst_st is not None:
            try:
                dfol = inv.fs.stat(pd)
            except OSError:
                dfol = dst_st
            if same_file(st, dfol):
                if not (self.remove_dest and _stat.S_ISLNK(dst_st.st_mode)):
                    self.fail(f"{quote(src)} and {quote(dst)} are the same file")
                    return
        if _stat.S_ISDIR(st.st_mode):
            self.copy_dir(src, dst, ps, pd, st, dst_st)
            return
        if dst_st is not None and _stat.S_ISDIR(dst_st.st_mode) and not _stat.S_ISDIR(st.st_mode):
            self.fail(f"cannot overwrite directory {quote(dst)} with non-directory")
            return
        if dst_st is not None and self.noclobber:
            return
        if "links" in self.preserve and st.st_nlink > 1 and not _stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in self.links:
                try:
                    if dst_st is not None:
                        inv.fs.unlink(pd)
                    inv.fs.link(self.links[key], pd)
                except OSError as e:
                    self.fail(f"cannot create hard link {quote(dst)} to {quote(self.links[key])}: {errno_text(e)}")
                return
            self.links[key] = pd
        try:
            if self.remove_dest and dst_st is not None:
                inv.fs.unlink(pd)
                dst_st = None
            if self.hardlink:
                if dst_st is not None and self.force:
                    inv.fs.unlink(pd)
                inv.fs.link(ps, pd)
            elif self.symlink:
                if dst_st is not None and self.force:
                    inv.fs.unlink(pd)
                inv.fs.symlink(src, pd)
            elif _stat.S_ISLNK(st.st_mode):
                target = inv.fs.readlink(ps)
                if dst_st is not None:
                    inv.fs.unlink(pd)
                try:
                    inv.fs.symlink(target, pd)
                except OSError as e:
                    self.fail(f"cannot create symbolic link {quote(dst)}: {errno_text(e)}")
                    return
            elif _stat.S_ISREG(st.st_mode):
                if not self.copy_reg(src, dst, ps, pd, st, dst_st):
                    return
            else:
                if not self.recursive:
                    raise Defer(f"cp of a special file {src!r} without -R (reads the device)")
                if dst_st is not None:
                    inv.fs.unlink(pd)
                inv.fs.mknod(pd, st.st_mode & ~0o7777 | (st.st_mode & 0o777 & ~inv.umask), st.st_rdev)
        except OSError as e:
            self.fail(f"cannot create {'hard link' if self.hardlink else 'regular file'} {quote(dst)}: {errno_text(e)}")
            return
        if self.verbose:
            inv.out(f"{quote(src)} -> {quote(dst)}\n")
        self.cur_src = ps
        self.apply_preserve(dst, pd, st)

    def copy_reg(self, src, dst, ps, pd, st, dst_st) -> bool:
        inv = self.inv
        mode = st.st_mode & 0o777 & ~inv.umask if "mode" not in self.preserve else st.st_mode & 0o777
        try:
            copy_data(inv, ps, pd, mode)
        except OSError as e:
            if dst_st is not None and self.force and e.errno != errno.EISDIR:
                try:
                    inv.fs.unlink(pd)
                    copy_data(inv, ps, pd, mode)
                    return True
                except OSError as e2:
                    e = e2
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR) and dst_st is None:
                self.fail(f"cannot create regular file {quote(dst)}: {errno_text(e)}")
            else:
                self.fail(f"cannot open {quote(dst)} for writing: {errno_text(e)}" if dst_st is not None
                          else f"cannot create regular file {quote(dst)}: {errno_text(e)}")
            return False
        return True

    def copy_dir(self, src, dst, ps, pd, st, dst_st) -> None:
        inv = self.inv
        if not self.recursive:
            self.fail(f"-r not specified; omitting directory {quote(src)}")
            return
        if dst_st is not None and not _stat.S_ISDIR(dst_st.st_mode):
            self.fail(f"cannot overwrite non-directory {quote(dst)} with directory {quote(src)}")
            return
        # copying a directory into itself
        cur = posixpath.dirname(pd.rstrip("/")) or "/"
        for _ in range(256):
            try:
                if same_file(inv.fs.stat(cur), st):
                    self.fail(f"cannot copy a directory, {quote(src)}, into itself, {quote(dst)}")
                    return
            except OSError:
                break
            if cur == "/":
                break
            cur = posixpath.dirname(cur) or "/"
        created = False
        if dst_st is None:
            try:
                inv.fs.mkdir(pd, st.st_mode & 0o777 & ~inv.umask | 0o700)
                created = True
            except OSError as e:
                self.fail(f"cannot create directory {quote(dst)}: {errno_text(e)}")
                return
            if self.verbose:
                inv.out(f"{quote(src)} -> {quote(dst)}\n")
        try:
            names = _inode_order(inv, ps, inv.fs.readdir(ps))
        except OSError as e:
            self.fail(f"cannot access {quote(src)}: {errno_text(e)}")
            names = []
        saved = self.deref
        if self.deref is None:
            self.deref = False
        for n in names:
            self.copy(_join(src, n), _join(dst, n), False)
        self.deref = saved
        if created or self.preserve:
            if created and "mode" not in self.preserve:
                inv.fs.chmod(pd, st.st_mode & 0o777 & ~inv.umask)
            self.cur_src = ps
            self.apply_preserve(dst, pd, st)

    def copy_xattrs(self, pd: str, link: bool) -> None:
        inv, ps = self.inv, self.cur_src
        try:
            for name in inv.fs.listxattr(ps, follow_symlinks=not link):
                inv.fs.setxattr(pd, name, inv.fs.getxattr(ps, name, follow_symlinks=not link),
                                follow_symlinks=not link)
        except OSError:
            pass  # cp -a ignores xattrs the destination cannot hold (copy.c: only -p=xattr reports)

    def apply_preserve(self, dst: str, pd: str, st) -> None:
        inv = self.inv
        link = _stat.S_ISLNK(st.st_mode)
        try:
            if "ownership" in self.preserve:
                inv.fs.chown(pd, st.st_uid, st.st_gid, follow_symlinks=not link)
            if "mode" in self.preserve and not link:
                inv.fs.chmod(pd, _stat.S_IMODE(st.st_mode))
            if "xattr" in self.preserve:
                self.copy_xattrs(pd, link)
            if "timestamps" in self.preserve:
                inv.fs.utime(pd, st.st_atime_ns, st.st_mtime_ns, follow_symlinks=not link)
        except OSError as e:
            self.fail(f"preserving permissions for {quote(dst)}: {errno_text(e)}")


def _inode_order(inv: Invocation, d: str, names: list[str]) -> list[str]:
    # cp reads a directory with gnulib savedir(SAVEDIR_SORT_FASTREAD): sorted by inode number
    def ino(n: str) -> int:
        try:
            return inv.fs.lstat(d.rstrip("/") + "/" + n).st_ino
        except OSError:
            return 0
    return sorted(names, key=ino)


def _join(d: str, n: str) -> str:
    return d + n if d.endswith("/") else d + "/" + n


_CP = _args.spec("aprRdPLHfTt:vnuilsbxS:Z", {"context": ("Z", _args.OPT),
    "archive": "a", "recursive": "r", "no-dereference": "P", "dereference": "L", "force": "f",
    "no-target-directory": "T", "target-directory": "t", "verbose": "v", "no-clobber": "n",
    "preserve": ("preserve", _args.OPT), "no-preserve": ("no-preserve", _args.REQ),
    "remove-destination": ("remove-destination", _args.NO), "link": "l", "symbolic-link": "s",
    "sparse": ("sparse", _args.REQ), "reflink": ("reflink", _args.OPT), "update": "u",
    "interactive": "i", "one-file-system": "x", "parents": ("parents", _args.NO)})


def cp(inv: Invocation) -> int:
    """``cp [-aprRdPLfTvn] [--preserve[=LIST]] [--remove-destination] [-t DIR] SOURCE... DEST``."""
    try:
        opts, ops = _args.parse(inv, _CP)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    c = _Cp(inv)
    no_target, target = False, None
    for k, v in opts:
        if k == "a":
            c.recursive, c.deref = True, False
            c.preserve |= _ALL_PRESERVE
        elif k == "p":
            c.preserve |= {"mode", "ownership", "timestamps"}
        elif k in ("r", "R"):
            c.recursive = True
        elif k == "d":
            c.deref = False
            c.preserve.add("links")
        elif k == "P":
            c.deref = False
        elif k == "L":
            c.deref = True
        elif k == "H":
            raise Defer("cp -H is not modelled")
        elif k == "Z":
            selinux_context_option(inv, v, "warning: ignoring --context; it requires an SELinux-enabled kernel")
        elif k == "f":
            c.force = True
        elif k == "T":
            no_target = True
        elif k == "t":
            target = v
        elif k == "v":
            c.verbose = True
        elif k == "n":
            c.noclobber = True
        elif k == "l":
            c.hardlink = True
        elif k == "s":
            c.symlink = True
        elif k == "remove-destination":
            c.remove_dest = True
        elif k == "preserve":
            for item in (v or "mode,ownership,timestamps").split(","):
                if item == "all":
                    c.preserve |= _ALL_PRESERVE
                elif item in _ALL_PRESERVE:
                    c.preserve.add(item)
                elif item in ("context",):
                    pass
                else:
                    raise Defer(f"cp --preserve={item}")
        elif k == "no-preserve":
            for item in v.split(","):
                c.preserve -= (_ALL_PRESERVE if item == "all" else {item})
        elif k in ("sparse", "reflink", "x"):
            pass  # no observable difference inside the image
        else:
            raise Defer(f"cp -{k} is not modelled")
    pairs = targets(inv, ops, target, no_target, "cp")
    if isinstance(pairs, int):
        return pairs
    for src, dst in pairs:
        c.copy(src, dst, True)
    return c.status


# ---- install -----------------------------------------------------------------------------------

_INSTALL = _args.spec("cdDm:o:g:pt:TvCsb", {
    "directory": "d", "mode": "m", "owner": "o", "group": "g", "preserve-timestamps": "p",
    "target-directory": "t", "no-target-directory": "T", "verbose": "v", "compare": "C", "strip": "s"})


def install(inv: Invocation) -> int:
    """``install [-dDpvT] [-m MODE] [-o OWNER] [-g GROUP] [-t DIR] SOURCE... DEST``."""
    try:
        opts, ops = _args.parse(inv, _INSTALL)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    dirs = lead = keep_times = verbose = no_target = False
    mode_text = owner = group = target = None
    for k, v in opts:
        if k == "d":
            dirs = True
        elif k == "D":
            lead = True
        elif k == "m":
            mode_text = v
        elif k == "o":
            owner = v
        elif k == "g":
            group = v
        elif k == "p":
            keep_times = True
        elif k == "t":
            target = v
        elif k == "T":
            no_target = True
        elif k == "v":
            verbose = True
        elif k == "c":
            pass
        else:
            raise Defer(f"install -{k} is not modelled")
    mode = dir_mode = 0o755
    if mode_text is not None:
        # install.c: the mode is applied to 0 with no umask
        try:
            ch = compile_mode(mode_text)
            mode, dir_mode = adjust_mode(0, False, 0, ch), adjust_mode(0, True, 0, ch)
        except ModeError:
            err(inv, f"invalid mode {quote(mode_text)}")
            return 1
    db = UserDB(inv)
    uid = gid = -1
    if owner is not None:
        u = db.uid(owner)
        if u is None:
            err(inv, f"invalid user {quote(owner)}")
            return 1
        uid = u
    if group is not None:
        g = db.gid(group)
        if g is None:
            err(inv, f"invalid group {quote(group)}")
            return 1
        gid = g
    status = 0
    if dirs:
        if not ops:
            return _args.missing(inv, "missing file operand")
        for d in ops:
            if not _install_dir(inv, d, dir_mode, uid, gid, verbose):
                status = 1
        return status
    if lead and target is None and not no_target and len(ops) == 2:
        parent = posixpath.dirname(ops[1].rstrip("/")) if not ops[1].endswith("/") else ops[1]
        if parent and not _install_parents(inv, parent, verbose):
            return 1
    elif lead and target is not None:
        if not _install_parents(inv, target, verbose):
            return 1
    pairs = targets(inv, ops, target, no_target, "install")
    if isinstance(pairs, int):
        return pairs
    for src, dst in pairs:
        ps, pd = apath(inv, src), apath(inv, dst)
        try:
            st = inv.fs.stat(ps)
        except OSError as e:
            err(inv, f"cannot stat {quote(src)}: {errno_text(e)}")
            status = 1
            continue
        if _stat.S_ISDIR(st.st_mode):
            err(inv, f"omitting directory {quote(src)}")
            status = 1
            continue
        try:
            dst_st = inv.fs.lstat(pd)
        except OSError:
            dst_st = None
        if dst_st is not None and same_file(st, dst_st):
            err(inv, f"{quote(src)} and {quote(dst)} are the same file")
            status = 1
            continue
        if dst_st is not None and _stat.S_ISDIR(dst_st.st_mode):
            err(inv, f"cannot overwrite directory {quote(dst)} with non-directory")
            status = 1
            continue
        try:
            if dst_st is not None and not _stat.S_ISDIR(dst_st.st_mode):
                inv.fs.unlink(pd)
            copy_data(inv, ps, pd, 0o600)
        except OSError as e:
            err(inv, f"cannot create regular file {quote(dst)}: {errno_text(e)}")
            status = 1
            continue
        try:
            if keep_times:
                inv.fs.utime(pd, st.st_atime_ns, st.st_mtime_ns)
            if uid != -1 or gid != -1:
                inv.fs.chown(pd, uid, gid)
            inv.fs.chmod(pd, mode)
        except OSError as e:
            err(inv, f"cannot change permissions of {quote(dst)}: {errno_text(e)}")
            status = 1
            continue
        if verbose:
            inv.out(f"{quote(src)} -> {quote(dst)}\n")
    return status


def _install_parents(inv: Invocation, d: str, verbose: bool) -> bool:
    """Create ``d`` and its missing ancestors as install -D does (mode 0755 & ~umask... u+wx)."""
    comps = [c for c in d.split("/") if c]
    prefix = "/" if d.startswith("/") else ""
    for c in comps:
        prefix += c
        ap = apath(inv, prefix)
        try:
            inv.fs.mkdir(ap, (0o777 & ~inv.umask) | 0o300)
            if verbose:
                inv.out(f"{inv.argv[0]}: creating directory {quote(prefix)}\n")
        except OSError as e:
            if e.errno != errno.EEXIST or not _isdir(inv, ap):
                err(inv, f"cannot create directory {quote(prefix)}: "
                         f"{errno_text(e) if e.errno != errno.EEXIST else 'File exists'}")
                return False
        prefix += "/"
    return True


def _isdir(inv: Invocation, p: str) -> bool:
    try:
        return inv.fs.stat(p).is_dir
    except OSError:
        return False


def _install_dir(inv: Invocation, d: str, mode: int, uid: int, gid: int, verbose: bool) -> bool:
    if not _install_parents(inv, d, verbose):
        return False
    p = apath(inv, d)
    try:
        if uid != -1 or gid != -1:
            inv.fs.chown(p, uid, gid)
        inv.fs.chmod(p, mode)
    except OSError as e:
        err(inv, f"cannot change permissions of {quote(d)}: {errno_text(e)}")
        return False
    return True
