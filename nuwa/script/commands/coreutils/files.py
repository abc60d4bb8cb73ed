"""Models of the coreutils that create, remove and rename names: rm, rmdir, mkdir, mv, ln.

Behaviour, messages and exit codes follow GNU coreutils 9.1 (Debian 12) for the forms
maintainer scripts use; interactive forms (``-i``) are deferred. Every effect goes through
``inv.fs``; the errno the filesystem model raises becomes coreutils' message.
"""

from __future__ import annotations

import errno
import posixpath
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, basename_of, err, errno_text, is_dir, quote, quotef, same_file, selinux_context_option
from nuwa.script.commands.modes import ModeError, compile_mode, adjust_mode
from nuwa.script.context import Defer, Invocation
from nuwa.script.commands.coreutils.paths import canonicalize, relpath

#: errnos ``rm -f`` treats as "the file is not there" (coreutils remove.c)
_NONEXISTENT = {errno.ENOENT, errno.ENOTDIR, errno.EINVAL, errno.EILSEQ}


def _child(display: str, name: str) -> str:
    # fts joins with one slash even when the operand ends in one
    return display + name if display.endswith("/") else display + "/" + name


# ---- rm ----------------------------------------------------------------------------------------

_RM = _args.spec("fiIrRdv", {"force": "f", "recursive": "r", "dir": "d", "verbose": "v",
                            "interactive": ("interactive", _args.OPT),
                            "no-preserve-root": ("no-preserve-root", _args.NO),
                            "preserve-root": ("preserve-root", _args.OPT),
                            "one-file-system": ("one-file-system", _args.NO)})


def rm(inv: Invocation) -> int:
    """``rm [-fdrRv] [--no-preserve-root] FILE...``."""
    try:
        opts, files = _args.parse(inv, _RM)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    force = recursive = rmdir_empty = verbose = False
    preserve_root = True
    for k, v in opts:
        if k == "f":
            force = True
        elif k in ("r", "R"):
            recursive = True
        elif k == "d":
            rmdir_empty = True
        elif k == "v":
            verbose = True
        elif k == "no-preserve-root":
            preserve_root = False
        elif k == "preserve-root":
            if v not in (None, "all"):
                raise Defer(f"rm --preserve-root={v}")
            preserve_root = True
        elif k in ("i", "I", "interactive"):
            if k == "interactive" and v == "never":
                continue
            raise Defer("rm: interactive removal")
        elif k == "one-file-system":
            pass  # the image is one filesystem
    if not files:
        if force:
            return 0
        return _args.missing(inv)
    status = 0
    st_root = inv.fs.lstat("/")
    for a in files:
        if basename_of(a) in (".", "..") and a.rstrip("/") not in ("", "/") :
            err(inv, f"refusing to remove '.' or '..' directory: skipping {quote(a)}")
            status = 1
            continue
        p = apath(inv, a)
        try:
            st = inv.fs.lstat(p)
        except OSError as e:
            e = _slash_link_error(inv, a, p, e)
            if force and e.errno in _NONEXISTENT:
                continue
            err(inv, f"cannot remove {quote(a)}: {errno_text(e)}")
            status = 1
            continue
        if _stat.S_ISDIR(st.st_mode):
            if recursive:
                if preserve_root and same_file(st, st_root):
                    if a == "/":
                        err(inv, "it is dangerous to operate recursively on '/'")
                    else:
                        err(inv, f"it is dangerous to operate recursively on {quote(a)} (same as '/')")
                    err(inv, "use --no-preserve-root to override this failsafe")
                    status = 1
                    continue
                if not _rm_tree(inv, a, p, verbose):
                    status = 1
                continue
            if not rmdir_empty:
                err(inv, f"cannot remove {quote(a)}: Is a directory")
                status = 1
                continue
            try:
                inv.fs.rmdir(p)
            except OSError as e:
                err(inv, f"cannot remove {quote(a)}: {errno_text(e)}")
                status = 1
                continue
            if verbose:
                inv.out(f"removed directory {quote(a)}\n")
            continue
        try:
            inv.fs.unlink(p)
        except OSError as e:
            if force and e.errno in _NONEXISTENT:
                continue
            err(inv, f"cannot remove {quote(a)}: {errno_text(e)}")
            status = 1
            continue
        if verbose:
            inv.out(f"removed {quote(a)}\n")
    return status


def _slash_link_error(inv: Invocation, a: str, p: str, e: OSError) -> OSError:
    # "link/" naming a dangling or looping symlink: unlinkat(2) reports ENOTDIR
    if a.endswith("/") and a.rstrip("/"):
        try:
            if _stat.S_ISLNK(inv.fs.lstat(p.rstrip("/")).st_mode):
                return OSError(errno.ENOTDIR, "Not a directory")
        except OSError:
            pass
    return e


def _rm_tree(inv: Invocation, display: str, p: str, verbose: bool) -> bool:
    """Remove directory ``p`` and everything below it, in readdir order like fts."""
    ok = True
    try:
        names = inv.fs.readdir(p)
    except OSError as e:
        err(inv, f"cannot remove {quote(display)}: {errno_text(e)}")
        return False
    for name in names:
        cd, cp = _child(display, name), p.rstrip("/") + "/" + name
        try:
            st = inv.fs.lstat(cp)
        except OSError as e:
            err(inv, f"cannot remove {quote(cd)}: {errno_text(e)}")
            ok = False
            continue
        if _stat.S_ISDIR(st.st_mode):
            ok = _rm_tree(inv, cd, cp, verbose) and ok
            continue
        try:
            inv.fs.unlink(cp)
        except OSError as e:
            err(inv, f"cannot remove {quote(cd)}: {errno_text(e)}")
            ok = False
            continue
        if verbose:
            inv.out(f"removed {quote(cd)}\n")
    if not ok:
        return False  # fts does not try to remove an ancestor of a failure
    try:
        inv.fs.rmdir(p)
    except OSError as e:
        err(inv, f"cannot remove {quote(display)}: {errno_text(e)}")
        return False
    if verbose:
        inv.out(f"removed directory {quote(display)}\n")
    return True


# ---- rmdir -------------------------------------------------------------------------------------

_RMDIR = _args.spec("pv", {"parents": "p", "verbose": "v",
                           "ignore-fail-on-non-empty": ("ignore", _args.NO)})


def rmdir(inv: Invocation) -> int:
    """``rmdir [-pv] [--ignore-fail-on-non-empty] DIR...``."""
    try:
        opts, dirs = _args.parse(inv, _RMDIR)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = {k for k, _ in opts}
    parents, verbose, ignore = "p" in keys, "v" in keys, "ignore" in keys
    if not dirs:
        return _args.missing(inv)
    status = 0
    for d in dirs:
        cur = d
        while True:
            if verbose:
                inv.out(f"{inv.argv[0]}: removing directory, {quote(cur)}\n")
            try:
                _rmdir_one(inv, cur)
            except _NotFollowed:
                err(inv, f"failed to remove {quote(cur)}: Symbolic link not followed")
                status = 1
                break
            except OSError as e:
                if ignore and e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    break
                err(inv, f"failed to remove {quote(cur)}: {errno_text(e)}")
                status = 1
                break
            if not parents:
                break
            cur = cur.rstrip("/")
            parent = posixpath.dirname(cur).rstrip("/")
            if not parent or parent == cur or "/" not in cur:
                break
            cur = parent
    return status


class _NotFollowed(Exception):
    """rmdir on "link/" where link points at a directory (coreutils' own message)."""


def _rmdir_one(inv: Invocation, d: str) -> None:
    p = apath(inv, d)
    if d.endswith("/"):
        # rmdir(2) does not follow a symlink named with a trailing slash: coreutils says so
        try:
            lst = inv.fs.lstat(p.rstrip("/") or "/")
        except OSError:
            lst = None
        if lst is not None and _stat.S_ISLNK(lst.st_mode):
            if is_dir(inv, p):
                raise _NotFollowed()
            raise OSError(errno.ENOTDIR, "Not a directory")
    inv.fs.rmdir(p)


# ---- mkdir -------------------------------------------------------------------------------------

_MKDIR = _args.spec("pvm:Z", {"parents": "p", "verbose": "v", "mode": "m", "context": ("Z", _args.OPT)})


def mkdir(inv: Invocation) -> int:
    """``mkdir [-pv] [-m MODE] DIR...``."""
    try:
        opts, dirs = _args.parse(inv, _MKDIR)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    parents = verbose = False
    mode_arg = None
    for k, v in opts:
        if k == "p":
            parents = True
        elif k == "v":
            verbose = True
        elif k == "m":
            mode_arg = v
        elif k == "Z":
            selinux_context_option(inv, v, "warning: ignoring --context; it requires an SELinux/SMACK-enabled kernel")
    if not dirs:
        return _args.missing(inv)
    final = 0o777 & ~inv.umask
    explicit = False
    if mode_arg is not None:
        try:
            ch = compile_mode(mode_arg)
        except ModeError:
            err(inv, f"invalid mode {quote(mode_arg)}")
            return 1
        final = adjust_mode(0o777, True, inv.umask, ch)
        explicit = True
    status = 0
    for d in dirs:
        if not make_dir(inv, d, final, explicit, parents, verbose):
            status = 1
    return status


def make_dir(inv: Invocation, d: str, final: int, explicit: bool, parents: bool, verbose: bool,
             prog_name: str | None = None) -> bool:
    """Create ``d`` (and with ``parents`` its missing ancestors) as ``mkdir`` does; report errors."""
    p = apath(inv, d)
    if parents and is_dir(inv, p):
        # already there: every ancestor's mkdir and the last one's would fail with EEXIST on a
        # directory, which -p accepts without a word
        return True
    if parents:
        # ancestors: (0777 & ~umask) | u+wx, as coreutils' make_dir_parents
        inter = (0o777 & ~inv.umask) | 0o300
        comps = [c for c in d.split("/") if c]
        prefix = "/" if d.startswith("/") else ""
        for i, c in enumerate(comps[:-1]):
            prefix = prefix + c
            ap = apath(inv, prefix)
            try:
                inv.fs.mkdir(ap, inter)  # the model applies the umask itself
                if verbose:
                    inv.out(f"{prog_name or inv.argv[0]}: created directory {quote(prefix)}\n")
            except OSError as e:
                if e.errno != errno.EEXIST or not is_dir(inv, ap):
                    err(inv, f"cannot create directory {quote(prefix)}: "
                             f"{errno_text(e) if e.errno != errno.EEXIST else 'Not a directory'}")
                    return False
            prefix += "/"
    try:
        inv.fs.mkdir(p, final & 0o777)
    except OSError as e:
        if parents and e.errno == errno.EEXIST and is_dir(inv, p):
            return True
        err(inv, f"cannot create directory {quote(d)}: {errno_text(e)}")
        return False
    if final & 0o7000:
        inv.fs.chmod(p, final)  # coreutils chmods after mkdir(2) when special bits were asked
    if verbose:
        inv.out(f"{prog_name or inv.argv[0]}: created directory {quote(d)}\n")
    return True


# ---- mv ----------------------------------------------------------------------------------------

_MV = _args.spec("finTt:vuS:bZ", {"force": "f", "interactive": "i", "no-clobber": "n", "context": "Z",
                                "no-target-directory": "T", "target-directory": "t",
                                "verbose": "v", "update": "u", "suffix": "S", "backup": ("backup", _args.OPT)})


def mv(inv: Invocation) -> int:
    """``mv [-fnTv] [-t DIR] SOURCE... DEST``."""
    try:
        opts, ops = _args.parse(inv, _MV)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    noclobber = no_target = verbose = False
    target = None
    for k, v in opts:
        if k == "f":
            noclobber = False
        elif k == "n":
            noclobber = True
        elif k == "T":
            no_target = True
        elif k == "t":
            target = v
        elif k == "v":
            verbose = True
        elif k == "Z":
            selinux_context_option(inv, None, None)  # mv.c: ignored without SELinux, silently
        elif k in ("i", "u", "S", "b", "backup"):
            raise Defer(f"mv -{k} is not modelled")
    pairs = targets(inv, ops, target, no_target, "mv")
    if isinstance(pairs, int):
        return pairs
    status = 0
    for src, dst in pairs:
        if not _mv_one(inv, src, dst, noclobber, verbose):
            status = 1
    return status


def targets(inv: Invocation, ops: list[str], target: str | None, no_target: bool, what: str):
    """(source, destination) pairs for mv/cp/ln/install, or an exit status after a usage error."""
    if target is not None:
        if no_target:
            return _args.usage(inv, _args.UsageError("cannot combine --target-directory (-t) and --no-target-directory (-T)"))
        if not ops:
            return _args.missing(inv, "missing file operand")
        if not is_dir(inv, apath(inv, target)):
            try:
                inv.fs.stat(apath(inv, target))
                err(inv, f"target directory {quote(target)}: Not a directory")
            except OSError as e:
                err(inv, f"target directory {quote(target)}: {errno_text(e)}")
            return 1
        return [(s, _into(target, s)) for s in ops]
    if not ops:
        return _args.missing(inv, "missing file operand")
    if len(ops) == 1:
        return _args.missing(inv, f"missing destination file operand after {quote(ops[0])}")
    if no_target:
        if len(ops) > 2:
            return _args.usage(inv, _args.UsageError(f"extra operand {quote(ops[2])}"))
        return [(ops[0], ops[1])]
    dest = ops[-1]
    if is_dir(inv, apath(inv, dest)):
        return [(s, _into(dest, s)) for s in ops[:-1]]
    if len(ops) > 2:
        try:
            inv.fs.stat(apath(inv, dest))
            err(inv, f"target {quote(dest)}: Not a directory")
        except OSError as e:
            err(inv, f"target {quote(dest)}: {errno_text(e)}")
        return 1
    return [(ops[0], dest)]


def _into(d: str, src: str) -> str:
    return _child(d, basename_of(src))


def _is_inside(inv: Invocation, src: str, dst: str) -> bool:
    """True if ``dst``'s parent directory is ``src`` or below it (moving a dir into itself)."""
    try:
        s = inv.fs.lstat(src)
    except OSError:
        return False
    cur = posixpath.dirname(dst.rstrip("/")) or "/"
    for _ in range(256):
        try:
            st = inv.fs.stat(cur)
        except OSError:
            return False
        if same_file(st, s):
            return True
        if cur == "/":
            return False
        cur = posixpath.dirname(cur) or "/"
    return False


def _mv_one(inv: Invocation, src: str, dst: str, noclobber: bool, verbose: bool) -> bool:
    ps, pd = apath(inv, src), apath(inv, dst)
    try:
        sst = inv.fs.lstat(ps)
    except OSError as e:
        err(inv, f"cannot stat {quote(src)}: {errno_text(e)}")
        return False
    try:
        dst_st = inv.fs.lstat(pd)
    except OSError:
        dst_st = None
    if dst_st is not None:
        if same_file(sst, dst_st):
            err(inv, f"{quote(src)} and {quote(dst)} are the same file")
            return False
        if noclobber:
            return True
        if _stat.S_ISDIR(dst_st.st_mode) and not _stat.S_ISDIR(sst.st_mode):
            err(inv, f"cannot overwrite directory {quote(dst)} with non-directory")
            return False
        if not _stat.S_ISDIR(dst_st.st_mode) and _stat.S_ISDIR(sst.st_mode):
            err(inv, f"cannot overwrite non-directory {quote(dst)} with directory {quote(src)}")
            return False
    if _stat.S_ISDIR(sst.st_mode) and _is_inside(inv, ps, pd):
        err(inv, f"cannot move {quote(src)} to a subdirectory of itself, {quote(dst)}")
        return False
    try:
        inv.fs.rename(ps, pd, noreplace=noclobber)
    except OSError as e:
        if e.errno == errno.EEXIST and noclobber:
            return True
        err(inv, f"cannot move {quote(src)} to {quote(dst)}: {errno_text(e)}")
        return False
    if verbose:
        inv.out(f"renamed {quote(src)} -> {quote(dst)}\n")
    return True


# ---- ln ----------------------------------------------------------------------------------------

_LN = _args.spec("sfnTt:vrLPib", {"symbolic": "s", "force": "f", "no-dereference": "n",
                                 "no-target-directory": "T", "target-directory": "t", "verbose": "v",
                                 "relative": "r", "logical": "L", "physical": "P", "interactive": "i"})


def ln(inv: Invocation) -> int:
    """``ln [-sfnrTv] [-t DIR] TARGET... [LINK]``."""
    try:
        opts, ops = _args.parse(inv, _LN)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    symbolic = force = nodereference = no_target = verbose = relative = logical = False
    target = None
    for k, v in opts:
        if k == "s":
            symbolic = True
        elif k == "f":
            force = True
        elif k == "n":
            nodereference = True
        elif k == "T":
            no_target = True
        elif k == "t":
            target = v
        elif k == "v":
            verbose = True
        elif k == "r":
            relative = True
        elif k == "L":
            logical = True
        elif k == "P":
            logical = False
        elif k in ("i", "b"):
            raise Defer(f"ln -{k} is not modelled")
    if relative and not symbolic:
        err(inv, "cannot do --relative without --symbolic")
        return 1
    if target is None and not no_target and len(ops) == 1:
        ops = [ops[0], "."]
    # ln decides "into a directory" with stat, or lstat under -n (coreutils ln.c target_directory_operand)
    if target is None and not no_target and len(ops) >= 2:
        last = apath(inv, ops[-1])
        d = is_dir(inv, last, follow=not nodereference)
        if not d and len(ops) > 2:
            err(inv, f"target {quote(ops[-1])}: Not a directory")
            return 1
        if d:
            target, ops = ops[-1], ops[:-1]
        else:
            no_target = True
    pairs = targets(inv, ops, target, no_target, "ln")
    if isinstance(pairs, int):
        return pairs
    status = 0
    for src, dst in pairs:
        if not _ln_one(inv, src, dst, symbolic, force, relative, logical, verbose):
            status = 1
    return status


def _ln_one(inv: Invocation, src: str, dst: str, symbolic: bool, force: bool, relative: bool,
            logical: bool, verbose: bool) -> bool:
    pd = apath(inv, dst)
    kind = "symbolic link" if symbolic else "hard link"
    link_text = src
    if symbolic and relative:
        try:
            t = canonicalize(inv, apath(inv, src), "m")
            base = canonicalize(inv, posixpath.dirname(pd.rstrip("/")) or "/", "m")
        except OSError as e:
            err(inv, f"{quote(src)}: {errno_text(e)}")
            return False
        link_text = relpath(t, base)
    if not symbolic:
        try:
            sst = inv.fs.stat(apath(inv, src)) if logical else inv.fs.lstat(apath(inv, src))
        except OSError as e:
            err(inv, f"failed to access {quote(src)}: {errno_text(e)}")
            return False
        if _stat.S_ISDIR(sst.st_mode):
            err(inv, f"{quotef(src)}: hard link not allowed for directory")
            return False
    try:
        dst_st = inv.fs.lstat(pd)
    except OSError:
        dst_st = None
    if dst_st is not None and force:
        if _stat.S_ISDIR(dst_st.st_mode):
            err(inv, f"{quotef(dst)}: cannot overwrite directory")
            return False
    try:
        if dst_st is not None and force:
            inv.fs.unlink(pd)
        if symbolic:
            inv.fs.symlink(link_text, pd)
        else:
            srcp = apath(inv, src)
            if logical:
                srcp = canonicalize(inv, srcp, "e")
            inv.fs.link(srcp, pd)
    except OSError as e:
        err(inv, f"failed to create {kind} {quote(dst)}: {errno_text(e)}")
        return False
    if verbose:
        inv.out(f"{quote(dst)} {'->' if symbolic else '=>'} {quote(link_text)}\n")
    return True
