"""Models of the coreutils that change attributes: chmod, chown, chgrp, touch.

GNU coreutils 9.1 behaviour. ``-R`` walks like fts with FTS_PHYSICAL: symbolic links met
during the walk are not followed (chmod skips them, chown/chgrp change the link itself).
Owner and group names are resolved through the image's /etc/passwd and /etc/group.
"""

from __future__ import annotations

import calendar
import errno
import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB, apath, err, errno_text, mode_string, now_ns, quote, quotef
from nuwa.script.commands.modes import CHMOD_MODE_BITS, ORDINARY, Change, ModeError, adjust_mode, compile_mode
from nuwa.script.context import Defer, Invocation

_MODE_ARG = re.compile(r"^-[rwxXstugoa,+=0-7-]+$")


def _walk(inv: Invocation, display: str, p: str, post: bool = False):
    """Yield (display, path, lstat) below directory ``p`` in readdir order (pre- or post-order)."""
    try:
        names = inv.fs.readdir(p)
    except OSError as e:
        err(inv, f"cannot read directory {quote(display)}: {errno_text(e)}")
        yield None
        return
    for n in names:
        cd = display + n if display.endswith("/") else display + "/" + n
        cp = p.rstrip("/") + "/" + n
        try:
            st = inv.fs.lstat(cp)
        except OSError as e:
            err(inv, f"cannot access {quote(cd)}: {errno_text(e)}")
            yield None
            continue
        if not post:
            yield cd, cp, st
        if _stat.S_ISDIR(st.st_mode):
            yield from _walk(inv, cd, cp, post)
        if post:
            yield cd, cp, st


# ---- chmod -------------------------------------------------------------------------------------

_CHMOD = _args.spec("Rcfv", {"recursive": "R", "changes": "c", "silent": "f", "quiet": "f", "verbose": "v",
                            "reference": ("reference", _args.REQ),
                            "preserve-root": ("preserve-root", _args.NO),
                            "no-preserve-root": ("no-preserve-root", _args.NO)})


def chmod(inv: Invocation) -> int:
    """``chmod [-Rcfv] MODE FILE...`` (octal and symbolic modes)."""
    args = list(inv.argv[1:])
    mode_text = None
    for i, a in enumerate(args):
        if a == "--":
            break
        if _MODE_ARG.match(a) and a != "--":
            mode_text = a
            del args[i]
            break
    try:
        opts, ops = _args.parse(inv, _CHMOD, args)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = [k for k, _ in opts]
    recursive, changes_only, silent, verbose = "R" in keys, "c" in keys, "f" in keys, "v" in keys
    reference = next((v for k, v in opts if k == "reference"), None)
    if reference is not None:
        # chmod.c: the mode comes from RFILE (gnulib mode_create_from_ref: "=" naming every bit)
        if mode_text is not None:
            ops.insert(0, mode_text)
        if not ops:
            return _args.missing(inv)
        try:
            ref_mode = inv.fs.stat(apath(inv, reference)).st_mode
        except OSError as e:
            err(inv, f"failed to get attributes of {quote(reference)}: {errno_text(e)}")
            return 1
        changes = [Change("=", ORDINARY, CHMOD_MODE_BITS, ref_mode & CHMOD_MODE_BITS, CHMOD_MODE_BITS)]
        mode_text = ""
    if mode_text is None:
        if not ops:
            return _args.missing(inv)
        mode_text = ops.pop(0)
    if not ops:
        return _args.missing(inv, f"missing operand after {quote(mode_text)}")
    if reference is None:
        try:
            changes = compile_mode(mode_text)
        except ModeError:
            return _args.usage(inv, _args.UsageError(f"invalid mode: {quote(mode_text)}"))
    status = 0
    for a in ops:
        p = apath(inv, a)
        try:
            lst = inv.fs.lstat(p)
            st = inv.fs.stat(p)
        except OSError as e:
            if not silent:
                if e.errno == errno.ENOENT and inv.fs.lexists(p):
                    err(inv, f"cannot operate on dangling symlink {quote(a)}")
                else:
                    err(inv, f"cannot access {quote(a)}: {errno_text(e)}")
            status = 1
            continue
        if not _chmod_one(inv, a, p, st, changes, silent, verbose, changes_only):
            status = 1
        if recursive and _stat.S_ISDIR(st.st_mode):
            for item in _walk(inv, a, p):
                if item is None:
                    status = 1
                    continue
                cd, cp, cst = item
                if _stat.S_ISLNK(cst.st_mode):
                    if verbose:
                        inv.out(f"neither symbolic link {quote(cd)} nor referent has been changed\n")
                    continue
                if not _chmod_one(inv, cd, cp, cst, changes, silent, verbose, changes_only):
                    status = 1
        del lst
    return status


def _chmod_one(inv, display, p, st, changes, silent, verbose, changes_only) -> bool:
    old = _stat.S_IMODE(st.st_mode)
    is_dir = _stat.S_ISDIR(st.st_mode)
    new = adjust_mode(old, is_dir, inv.umask, changes)
    try:
        inv.fs.chmod(p, new)
    except OSError as e:
        if not silent:
            err(inv, f"changing permissions of {quote(display)}: {errno_text(e)}")
        return False
    ftype = st.st_mode & ~0o7777
    if verbose or (changes_only and new != old):
        o, n = mode_string(ftype | old)[1:], mode_string(ftype | new)[1:]
        if new != old:
            inv.out(f"mode of {quote(display)} changed from {old:04o} ({o}) to {new:04o} ({n})\n")
        else:
            inv.out(f"mode of {quote(display)} retained as {old:04o} ({o})\n")
    naive = adjust_mode(old, is_dir, 0, changes)
    if new & ~naive:
        if not silent:
            err(inv, f"{_quotef(display)}: new permissions are {mode_string(ftype | new)[1:]}, "
                     f"not {mode_string(ftype | naive)[1:]}")
        return False
    return True


def _quotef(s: str) -> str:
    return quotef(s)


# ---- chown / chgrp -----------------------------------------------------------------------------

_CHOWN = _args.spec("RcfvhHLP", {"recursive": "R", "changes": "c", "silent": "f", "quiet": "f",
                                "verbose": "v", "no-dereference": "h",
                                "dereference": ("deref", _args.NO),
                                "from": ("from", _args.REQ),
                                "reference": ("reference", _args.REQ),
                                "preserve-root": ("preserve-root", _args.NO),
                                "no-preserve-root": ("no-preserve-root", _args.NO)})


def chown(inv: Invocation) -> int:
    """``chown [-Rhcfv] OWNER[:GROUP] FILE...`` and ``chgrp [-Rhcfv] GROUP FILE...``."""
    is_chgrp = inv.name == "chgrp"
    try:
        opts, ops = _args.parse(inv, _CHOWN)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    recursive = changes_only = silent = verbose = False
    deref = None
    for k, _v in opts:
        if k == "R":
            recursive = True
        elif k == "c":
            changes_only = True
        elif k == "f":
            silent = True
        elif k == "v":
            verbose = True
        elif k == "h":
            deref = False
        elif k == "deref":
            deref = True
        elif k in ("H", "L", "from"):
            raise Defer(f"{inv.name} --{k} is not modelled")
    reference = next((v for k, v in opts if k == "reference"), None)
    if not ops:
        return _args.missing(inv)
    spec_text = "" if reference is not None else ops.pop(0)
    if not ops:
        return _args.missing(inv, f"missing operand after {quote(spec_text)}")
    if recursive:
        deref = False if deref is None else deref  # -R implies -P: links themselves change
    elif deref is None:
        deref = True
    db = UserDB(inv)
    uid = gid = -1
    user_s: str | None = None
    group_s: str | None = None
    if reference is not None:
        # chown.c: RFILE's owner and group, named (or numbered) as uid_to_name/gid_to_name do
        try:
            rst = inv.fs.stat(apath(inv, reference))
        except OSError as e:
            err(inv, f"failed to get attributes of {quote(reference)}: {errno_text(e)}")
            return 1
        gid = rst.st_gid
        group_s = db.group_name(gid) or str(gid)
        if not is_chgrp:
            uid = rst.st_uid
            user_s = db.user_name(uid) or str(uid)
    elif is_chgrp:
        gid = db.gid(spec_text) if spec_text else None
        if gid is None:
            err(inv, f"invalid group: {quote(spec_text)}")
            return 1
        group_s = spec_text
    else:
        sep = ":" if ":" in spec_text else ("." if "." in spec_text and db.user(spec_text) is None else "")
        if sep:
            u, _, g = spec_text.partition(sep)
        else:
            u, g = spec_text, None
        if u:
            uid = db.uid(u)
            if uid is None:
                err(inv, f"invalid user: {quote(spec_text)}")
                return 1
            user_s = u
        if sep == "." and (u or g):
            err(inv, f"warning: '.' should be ':': {quote(spec_text)}")
        if g:
            gid = db.gid(g)
            if gid is None:
                err(inv, f"invalid group: {quote(spec_text)}")
                return 1
            group_s = g
            if not u:
                user_s = ""
        elif sep and u:
            e = db.user(u)
            if e is None or len(e) < 4 or not e[3].isdigit():
                err(inv, f"invalid spec: {quote(spec_text)}")
                return 1
            gid = int(e[3])
            group_s = db.group_name(gid) or str(gid)
    status = 0
    for a in ops:
        p = apath(inv, a)
        try:
            st = inv.fs.stat(p) if deref else inv.fs.lstat(p)
        except OSError as e:
            if not silent:
                if deref and inv.fs.lexists(p):
                    err(inv, f"cannot dereference {quote(a)}: {errno_text(e)}")
                else:
                    err(inv, f"cannot access {quote(a)}: {errno_text(e)}")
            status = 1
            continue
        items = []
        if recursive and _stat.S_ISDIR(st.st_mode):
            # chown acts on a directory after its contents (fts FTS_DP)
            for item in _walk(inv, a, p, post=True):
                if item is None:
                    status = 1
                    continue
                items.append((item[0], item[1], item[2], False))
        items.append((a, p, st, deref))
        for disp, ip, ist, follow in items:
            if not _chown_one(inv, db, disp, ip, ist, follow, uid, gid, user_s, group_s,
                              silent, verbose, changes_only):
                status = 1
    return status


def _chown_one(inv, db, disp, p, st, follow, uid, gid, user_s, group_s, silent, verbose, changes_only) -> bool:
    try:
        inv.fs.chown(p, uid, gid, follow_symlinks=follow)
    except OSError as e:
        if not silent:
            err(inv, f"changing {'group' if user_s is None else 'ownership'} of {quote(disp)}: {errno_text(e)}")
        return False
    changed = (uid != -1 and uid != st.st_uid) or (gid != -1 and gid != st.st_gid)
    if verbose or (changes_only and changed):
        ou = db.user_name(st.st_uid) or str(st.st_uid)
        og = db.group_name(st.st_gid) or str(st.st_gid)
        spec = _ug(user_s, group_s)
        old = _ug(ou if user_s is not None else None, og if group_s is not None else None)
        if user_s is not None and group_s is not None:
            old = f"{ou}:{og}"
        if changed:
            what = "ownership" if user_s is not None else "group"
            inv.out(f"changed {what} of {quote(disp)} from {old} to {spec}\n")
        elif user_s is not None:
            inv.out(f"ownership of {quote(disp)} retained as {spec}\n")
        elif group_s is not None:
            inv.out(f"group of {quote(disp)} retained as {spec}\n")
        else:
            inv.out(f"ownership of {quote(disp)} retained\n")
    return True


def _ug(user: str | None, group: str | None) -> str:
    if user is not None and group is not None:
        return f"{user}:{group}"
    if user is not None:
        return user
    return group or ""


# ---- touch -------------------------------------------------------------------------------------

_TOUCH = _args.spec("acd:fhmr:t:", {"no-create": "c", "date": "d", "no-dereference": "h",
                                   "reference": "r", "time": ("time", _args.REQ)})


def touch(inv: Invocation) -> int:
    """``touch [-acmh] [-d DATE | -r FILE | -t STAMP] FILE...``."""
    try:
        opts, ops = _args.parse(inv, _TOUCH)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    no_create = nofollow = False
    which = set()
    stamp = None
    for k, v in opts:
        if k == "c":
            no_create = True
        elif k == "h":
            nofollow = True
        elif k in ("a", "m"):
            which.add(k)
        elif k == "time":
            which.add("a" if v in ("atime", "access", "use") else "m")
        elif k == "d":
            stamp = (parse_date(inv, v), None)
        elif k == "t":
            stamp = (parse_stamp(inv, v), None)
        elif k == "r":
            try:
                rst = inv.fs.stat(apath(inv, v))
            except OSError as e:
                err(inv, f"failed to get attributes of {quote(v)}: {errno_text(e)}")
                return 1
            stamp = (rst.st_atime_ns, rst.st_mtime_ns)
    if not ops:
        return _args.missing(inv, "missing file operand")
    if not which:
        which = {"a", "m"}
    if stamp is None:
        t = now_ns()
        at = mt = t
    else:
        at = stamp[0]
        mt = stamp[1] if stamp[1] is not None else stamp[0]
    status = 0
    for a in ops:
        p = apath(inv, a)
        # touch.c: open(O_CREAT) first, keeping its errno unless EISDIR/EINVAL/EPERM, then
        # utimensat; Linux gives EISDIR for O_CREAT on a name with a trailing slash
        open_err = None
        if not no_create and not nofollow:
            try:
                if a.endswith("/"):
                    raise OSError(errno.EISDIR, "Is a directory")
                inv.fs.open_handle(p, _O_CREAT_WR, 0o666 & ~inv.umask).close()
            except OSError as e:
                if e.errno not in (errno.EISDIR, errno.EINVAL, errno.EPERM):
                    open_err = e
        try:
            inv.fs.utime(p, at if "a" in which else None, mt if "m" in which else None,
                         follow_symlinks=not nofollow)
        except OSError as e:
            if open_err is not None:
                err(inv, f"cannot touch {quote(a)}: {errno_text(open_err)}")
            elif no_create and e.errno == errno.ENOENT:
                continue
            else:
                err(inv, f"setting times of {quote(a)}: {errno_text(e)}")
            status = 1
    return status


_O_CREAT_WR = 0o101  # O_WRONLY | O_CREAT


def _utc_only(inv: Invocation) -> None:
    tz = inv.env.get("TZ")
    if tz is not None and tz.lstrip(":") not in ("UTC", "UTC0", "Etc/UTC", "GMT", "UTC+0", ""):
        raise Defer("date in a time zone other than UTC")
    if tz is None:
        try:
            target = inv.fs.readlink("/etc/localtime")
        except OSError:
            return
        if not target.endswith(("/UTC", "/Etc/UTC", "/GMT", "/Etc/GMT", "/UCT", "/Universal", "/Zulu")):
            raise Defer("local time zone of the image is not UTC")


def parse_date(inv: Invocation, text: str) -> int:
    """The subset of GNU date strings scripts use: ``@EPOCH`` and ISO dates (UTC)."""
    t = text.strip()
    m = re.fullmatch(r"@(-?\d+)(?:\.(\d{1,9}))?", t)
    if m:
        return int(m.group(1)) * 10**9 + int((m.group(2) or "0").ljust(9, "0"))
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?)?( ?(?:UTC|Z|\+0000|\+00:00))?", t)
    if not m:
        raise Defer(f"date string {text!r} is not modelled")
    if not m.group(7):
        _utc_only(inv)
    y, mo, d, hh, mm, ss = (int(x) if x else 0 for x in m.groups()[:6])
    return calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0)) * 10**9


def parse_stamp(inv: Invocation, text: str) -> int:
    """``touch -t [[CC]YY]MMDDhhmm[.ss]`` (UTC)."""
    m = re.fullmatch(r"(\d{8}|\d{10}|\d{12})(?:\.(\d\d))?", text)
    if not m:
        raise Defer(f"touch -t {text!r}")
    _utc_only(inv)
    digits = m.group(1)
    if len(digits) == 12:
        y = int(digits[:4])
        digits = digits[4:]
    elif len(digits) == 10:
        yy = int(digits[:2])
        y = 1900 + yy if yy >= 69 else 2000 + yy
        digits = digits[2:]
    else:
        import time
        y = time.gmtime().tm_year
    mo, d, hh, mm = (int(digits[i:i + 2]) for i in range(0, 8, 2))
    return calendar.timegm((y, mo, d, hh, mm, int(m.group(2) or 0), 0, 0, 0)) * 10**9
