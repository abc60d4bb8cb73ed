"""Models of shadow-utils 4.13 (Debian 12's ``passwd`` package): useradd, groupadd, usermod,
userdel, groupdel, groupmod, gpasswd, chfn.

Messages and exit codes are the real programs' (``src/useradd.c`` & co.); the files are
written through :mod:`accounts_db` the way ``commonio_close`` does. Ids are chosen as
``libmisc/find_new_uid.c``/``find_new_gid.c`` choose them: a system account takes the id just
below the lowest used one in ``[SYS_UID_MIN, SYS_UID_MAX]`` (999 first), wrapping to search
down from the top when the bottom is taken; a normal account takes the one above the highest
used in ``[UID_MIN, UID_MAX]``. A user group prefers the gid equal to the new uid.
Debian's relaxed name rule applies (``506_relaxed_usernames``: not starting with ``-``, ``+``,
``~``; no ``:``, ``,`` or white space; at most 32 bytes).

What is deferred: ``-R``/``--root``, ``-P``/``--prefix`` (another root), ``useradd -D``,
usage errors (the usage text is not modelled), ``--help``,
``usermod`` renames/uid changes/``-m`` (they move files and rewrite ownership), passwords
that need hashing (``chpasswd``, ``passwd`` without ``-l``/``-u``), SELinux options.
"""

from __future__ import annotations

import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands.accounts.db import SUBGID, SUBUID, Accounts, LoginDefs, all_or_nothing, today
from nuwa.script.context import Defer, Invocation


class Exit(Exception):
    """The tool stops with ``status`` (messages already printed)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _parse(inv: Invocation, short: str, long: dict, help_key: str = "h"):
    try:
        opts, ops = _args.parse(inv, _args.spec(short, long))
    except _args.UsageError as e:
        raise Defer(f"{inv.name}: usage error ({e.text}); the usage text is not modelled") from None
    keys = {k for k, _ in opts}
    if keys & {"R", "P", "root", "prefix"}:
        raise Defer(f"{inv.name}: --root/--prefix (another root directory)")
    if help_key in keys:
        raise Defer(f"{inv.name} --help")
    return opts, ops


def say(inv: Invocation, msg: str) -> None:
    """``PROG: msg`` on stderr, PROG being the basename as shadow-utils' ``Prog``."""
    inv.err(f"{inv.name}: {msg}\n")


def valid_name(name: str, limit: int = 32) -> bool:
    """Debian's relaxed ``is_valid_user_name``/``is_valid_group_name`` (shadow 4.13 + 506 patch)."""
    b = name.encode("utf-8", "surrogateescape")
    if not b or len(b) > limit or b[:1] in (b"-", b"+", b"~"):
        return False
    return not re.search(rb"[:,\s]", b)


def _uint(s: str) -> int | None:
    """``get_uid``/``get_gid``: a decimal (or 0x/0 prefixed, strtol base 10 here) id."""
    if re.fullmatch(r"\d+", s) and int(s) < 2**32 - 1:
        return int(s)
    return None


# ---- id allocation (libmisc/find_new_uid.c, find_new_gid.c) ------------------------------------

def ranges(defs: LoginDefs, system: bool, kind: str) -> tuple[int, int, int]:
    """(min, max, preferred_min) of ``get_ranges`` for ``kind`` "UID" or "GID"."""
    if system:
        lo = defs.num(f"SYS_{kind}_MIN", 101)
        hi = defs.num(f"SYS_{kind}_MAX", defs.num(f"{kind}_MIN", 1000) - 1)
        return max(lo, 1), hi, 1
    lo, hi = defs.num(f"{kind}_MIN", 1000), defs.num(f"{kind}_MAX", 60000)
    return lo, hi, lo


def find_new_id(used: set[int], lo: int, hi: int, system: bool, preferred: int | None = None,
                pref_min: int = 1) -> int | None:
    """The id ``find_new_uid``/``find_new_gid`` return, or None (none free)."""
    if hi < lo:
        return None
    if preferred is not None and pref_min <= preferred <= hi and preferred not in used:
        return preferred
    inrange = [u for u in used if lo <= u <= hi]
    if system:
        start = min([hi] + [u - 1 for u in inrange])
        if start < lo:
            start = hi
        for i in range(start, lo - 1, -1):
            if i not in used:
                return i
        if start != hi:
            for i in range(hi, lo - 1, -1):
                if i not in used:
                    return i
        return None
    start = max([lo] + [u + 1 for u in inrange])
    if start > hi:
        start = lo
    for i in range(start, hi + 1):
        if i not in used:
            return i
    if start != lo:
        for i in range(lo, hi + 1):
            if i not in used:
                return i
    return None


def find_free_subids(entries: list[list[str]], lo: int, hi: int, count: int) -> int | None:
    """``find_free_range`` of lib/subordinateio.c over the (sorted) ranges."""
    low = lo
    for f in sorted(entries, key=lambda f: (int(f[1]), int(f[2]), f[0])):
        first, last = int(f[1]), int(f[1]) + int(f[2]) - 1
        high = min(first, hi + 1)
        if high > low and high - low >= count:
            return low
        low = max(low, last + 1)
        if low > hi:
            return None
    return low if hi - low + 1 >= count else None


def sort_subids(af) -> None:
    """``commonio_sort(db, subordinate_range_cmp)``: parsed ranges first by (start, count, owner)."""
    nis = next((k for k, x in enumerate(af.lines) if x[:1] in ("+", "-")), len(af.lines))
    head, tail = af.lines[:nis], af.lines[nis:]
    if len(head) <= 1:
        return
    parsed = [x for x in head if af.parse(x) is not None]
    junk = [x for x in head if af.parse(x) is None]
    parsed.sort(key=lambda x: (int(x.split(":")[1]), int(x.split(":")[2]), x.split(":")[0].encode()))
    af.lines = parsed + junk + tail
    af.changed = True  # commonio_sort marks the db changed even when the order stays


# ---- /etc/default/useradd ---------------------------------------------------------------------

def useradd_defaults(inv: Invocation, db: Accounts) -> dict:
    """``get_defaults`` with Debian's built-in defaults (group 100, no mail spool)."""
    d = {"GROUP": 100, "HOME": "/home", "SHELL": "/bin/bash", "SKEL": "/etc/skel", "INACTIVE": -1,
         "EXPIRE": "", "CREATE_MAIL_SPOOL": "no", "LOG_INIT": "yes"}
    try:
        text = inv.fs.read_bytes("/etc/default/useradd").decode("utf-8", "surrogateescape")
    except OSError:
        return d
    for line in text.split("\n"):
        key, eq, val = line.partition("=")
        if not eq or key not in d:
            continue
        val = val.strip()
        if key == "GROUP":
            g = db.grp_nam_gid(val)
            if g is None:
                say(inv, f"group '{val}' does not exist")
                say(inv, "the GROUP= configuration in /etc/default/useradd will be ignored")
            else:
                d[key] = int(g[2])
        elif key == "INACTIVE":
            d[key] = int(val) if re.fullmatch(r"-?\d+", val) else -1
        else:
            d[key] = val
    return d


# ---- useradd -------------------------------------------------------------------------------------

_USERADD = ("b:c:d:De:f:g:G:hk:K:lmMNop:rR:P:s:u:UF",
            {"base-dir": "b", "badname": ("badname", 0), "comment": "c", "home-dir": "d", "defaults": "D",
             "expiredate": "e", "inactive": "f", "add-subids-for-system": "F", "gid": "g", "groups": "G",
             "help": "h", "skel": "k", "key": "K", "no-log-init": "l", "create-home": "m",
             "no-create-home": "M", "no-user-group": "N", "non-unique": "o", "password": "p", "system": "r",
             "root": "R", "prefix": "P", "shell": "s", "uid": "u", "user-group": "U"})


@all_or_nothing
def useradd(inv: Invocation) -> int:
    """``useradd [options] LOGIN`` (shadow-utils 4.13)."""
    try:
        return _useradd(inv)
    except Exit as e:
        return e.status


def _useradd(inv: Invocation) -> int:
    opts, ops = _parse(inv, *_USERADD)
    db = Accounts(inv.fs)
    defs = LoginDefs(inv.fs)
    dflt = useradd_defaults(inv, db)
    keys = [k for k, _ in opts]
    if "D" in keys:
        raise Defer("useradd -D (defaults file)")
    if set(keys) & {"e", "f", "p", "F", "badname"}:
        raise Defer("useradd: expiry, inactivity, password or --badname options are not modelled")
    flags = {k: v for k, v in opts}
    gid = None
    groups: list[str] = []
    for k, v in opts:  # checked in command-line order, as process_flags does
        if k in ("b", "d") and (not v.startswith("/") or ":" in v or "\n" in v):
            what = "base directory" if k == "b" else "home directory"
            say(inv, f"invalid {what} '{v}'")
            raise Exit(3)
        if k == "c" and (":" in v or "\n" in v):
            say(inv, f"invalid comment '{v}'")
            raise Exit(3)
        if k == "g":
            g = db.grp_nam_gid(v)
            if g is None:
                say(inv, f"group '{v}' does not exist")
                raise Exit(6)
            gid = int(g[2])
        if k == "G":
            groups, bad = [], False
            for name in v.split(",") if v else []:
                g = db.grp_nam_gid(name)
                if g is None:
                    say(inv, f"group '{name}' does not exist")
                    bad = True
                elif g[0] not in groups:
                    groups.append(g[0])
            if bad:
                raise Exit(6)
        if k == "K":
            key, eq, val = v.partition("=")
            if not eq:
                say(inv, "-K requires KEY=VALUE")
                raise Exit(3)
            defs.values[key] = val
        if k == "s":
            if ":" in v or "\n" in v or (v and v[0] not in "/*"):
                say(inv, f"invalid shell '{v}'")
                raise Exit(3)
            if v and v[0] != "*" and v != "/sbin/nologin" and not _executable(inv, v):
                say(inv, f"Warning: missing or non-executable shell '{v}'")
        if k == "u" and _uint(v) is None:
            say(inv, f"invalid user ID '{v}'")
            raise Exit(3)
    system = "r" in flags
    ugroup = "U" in flags or ("g" not in flags and "N" not in flags and defs.bool("USERGROUPS_ENAB"))
    if ("o" in flags and "u" not in flags) or ("k" in flags and "m" not in flags) or (ugroup and "g" in flags) \
            or ("U" in flags and "N" in flags) or ("m" in flags and "M" in flags) or len(ops) != 1:
        raise Defer("useradd: usage error (the usage text is not modelled)")
    name = ops[0]
    if not valid_name(name):
        say(inv, f"invalid user name '{name}': use --badname to ignore")
        raise Exit(3)
    home = flags["d"] if "d" in flags else f"{flags.get('b', dflt['HOME'])}/{name}"
    shell = flags.get("s", dflt["SHELL"])
    if gid is None:
        gid = dflt["GROUP"]
    if db.user(name) is not None:
        say(inv, f"user '{name}' already exists")
        raise Exit(9)
    if ugroup and db.grp(name) is not None:
        say(inv, f"group {name} exists - if you want to add this user to that group, use -g.")
        raise Exit(9)
    used_uids = set(db.passwd.ids(2))
    uid = _uint(flags["u"]) if "u" in flags else None
    if "o" not in flags:
        if uid is None:
            lo, hi, _ = ranges(defs, system, "UID")
            uid = find_new_id(used_uids, lo, hi, system)
            if uid is None:
                say(inv, "can't create user")
                raise Exit(4)
        elif uid in used_uids:
            say(inv, f"UID {uid} is not unique")
            raise Exit(4)
    if "u" in flags:
        _check_uid_range(inv, defs, system, name, uid)
    today_ = today(inv.env)
    if ugroup:
        lo, hi, pmin = ranges(defs, system, "GID")
        gid = find_new_id(set(db.group.ids(2)), lo, hi, system, uid, pmin)
        if gid is None:
            say(inv, "can't create group")
            raise Exit(4)
        db.group.put([name, "x" if db.gshadow.exists else "!", str(gid), ""])
        if db.gshadow.exists:
            db.gshadow.put([name, "!", "", ""])
    sub_ok = not system and (("u" not in flags) or defs.num("UID_MIN", 1000) <= uid <= defs.num("UID_MAX", 60000))
    for f, what, kind in ((db.files[SUBUID], "UID", "user"), (db.files[SUBGID], "GID", "group")):
        count = defs.num(f"SUB_{what}_COUNT", 65536)
        if sub_ok and f.exists and count > 0:
            lo, hi = defs.num(f"SUB_{what}_MIN", 100000), defs.num(f"SUB_{what}_MAX", 600100000)
            start = find_free_subids(f.entries(), lo, hi, count) if lo <= hi and count < hi and lo + count - 1 <= hi \
                else None
            if start is None:
                raise Defer(f"useradd: no free subordinate {what} range (message not modelled)")
            sort_subids(f)
            if not any(e[0] == name and int(e[1]) == start and int(e[2]) == count for e in f.entries()):
                f.append([name, str(start), str(count)])
    db.passwd.put([name, "x" if db.shadow.exists else "!", str(uid), str(gid), flags.get("c", ""), home, shell])
    if db.shadow.exists:
        if system:
            aging = ["", "", "", "", ""]
        else:
            def age(key):
                v = defs.num(key, -1)
                return "" if v < 0 else str(v)
            inact = dflt["INACTIVE"]
            aging = [age("PASS_MIN_DAYS"), age("PASS_MAX_DAYS"), age("PASS_WARN_AGE"),
                     "" if inact < 0 else str(inact), ""]
            if dflt["EXPIRE"]:
                raise Defer("useradd: EXPIRE= in /etc/default/useradd is not modelled")
        db.shadow.put([name, "!", str(today_) if today_ else "", *aging, ""])
    for gname in groups:
        g = db.grp(gname)
        mem = [m for m in g[3].split(",") if m]
        if name not in mem:
            db.group.put(g[:3] + [",".join(mem + [name])])
        sg = db.gshadow.get(gname) if db.gshadow.exists else None
        if sg is not None:
            mem = [m for m in sg[3].split(",") if m]
            if name not in mem:
                db.gshadow.put(sg[:3] + [",".join(mem + [name])])
    db.save()
    if "l" not in flags and dflt["LOG_INIT"] != "no":
        _reset_record(inv, "/var/log/faillog", uid, 32)
        _reset_record(inv, "/var/log/lastlog", uid, 292, defs.num("LASTLOG_UID_MAX", 0xFFFFFFFF))
    if "m" in flags:
        if create_home(inv, home, uid, gid, defs.num("HOME_MODE", 0o777 & ~defs.num("UMASK", 0o22))):
            copy_skel(inv, flags.get("k", dflt["SKEL"]), home, uid, gid)
        else:
            say(inv, f"warning: the home directory {home} already exists.")
            say(inv, "Not copying any file from skel directory into it.")
    if not system and dflt["CREATE_MAIL_SPOOL"].lower() == "yes":
        _create_mail(inv, db, defs, name, uid, gid)
    return 0


def _create_mail(inv: Invocation, db: Accounts, defs: LoginDefs, name: str, uid: int, gid: int) -> None:
    """``create_mail``: an empty mailbox, 0660 group mail (0600 and the user's group without one)."""
    import os

    spool = defs.str("MAIL_DIR") or ("/var/mail" if defs.str("MAIL_FILE") is None else None)
    if spool is None:
        return
    path = f"{spool}/{name}"
    try:
        if inv.fs.lexists(path):
            raise FileExistsError(17, os.strerror(17))
        inv.fs.write_bytes(path, b"", 0)
    except OSError as e:
        inv.err(f"Creating mailbox file: {os.strerror(e.errno) if e.errno else e}\n")
        return
    mail = db.grp("mail")
    if mail is None:
        inv.err("Group 'mail' not found. Creating the user mailbox file with 0600 mode.\n")
    inv.fs.chown(path, uid, int(mail[2]) if mail else gid)
    inv.fs.chmod(path, 0o660 if mail else 0o600)


def _executable(inv: Invocation, p: str) -> bool:
    try:
        st = inv.fs.stat(p)
    except OSError:
        return False
    return not _stat.S_ISDIR(st.st_mode) and bool(st.st_mode & 0o111)


def _check_uid_range(inv: Invocation, defs: LoginDefs, system: bool, name: str, uid: int) -> None:
    if system:
        hi = defs.num("SYS_UID_MAX", defs.num("UID_MIN", 1000) - 1)
        if uid > hi:
            inv.err(f"{inv.name} warning: {name}'s uid {uid} is greater than SYS_UID_MAX {hi}\n")
    else:
        lo, hi = defs.num("UID_MIN", 1000), defs.num("UID_MAX", 6000)
        if lo <= hi and not lo <= uid <= hi:
            inv.err(f"{inv.name} warning: {name}'s uid {uid} outside of the UID_MIN {lo} and UID_MAX {hi} range.\n")


def _reset_record(inv: Invocation, path: str, uid: int, size: int, limit: int = 0xFFFFFFFF) -> None:
    """``faillog_reset``/``lastlog_reset``: zero the uid's record when the file already reaches it."""
    try:
        st = inv.fs.stat(path)
    except OSError:
        return
    off = uid * size
    if st.st_size <= off or uid > limit:
        return
    with inv.fs.open(path, "r+b") as f:
        f.seek(off)
        f.write(bytes(size))


def create_home(inv: Invocation, home: str, uid: int, gid: int, mode: int) -> bool:
    """useradd's ``create_home``: missing parents 0755 root:root, the home ``uid:gid`` ``mode``."""
    if inv.fs.exists(home):
        return False
    path = ""
    for comp in [c for c in home.split("/") if c]:
        path += "/" + comp
        if not inv.fs.exists(path):
            inv.fs.mkdir(path, 0)
            inv.fs.chown(path, 0, 0)
            inv.fs.chmod(path, 0o755)
    inv.fs.chown(home, uid, gid)
    inv.fs.chmod(home, mode)
    return True


def copy_skel(inv: Invocation, src: str, dst: str, uid: int, gid: int) -> None:
    """``copy_tree`` from the skeleton: modes and times kept, owned by the new user."""
    try:
        names = sorted(inv.fs.readdir(src))
    except OSError:
        return
    for n in names:
        s, d = f"{src}/{n}", f"{dst}/{n}"
        st = inv.fs.lstat(s)
        if _stat.S_ISDIR(st.st_mode):
            inv.fs.mkdir(d, 0o700)
            inv.fs.chown(d, uid, gid)
            inv.fs.chmod(d, _stat.S_IMODE(st.st_mode))
            copy_skel(inv, s, d, uid, gid)
        elif _stat.S_ISLNK(st.st_mode):
            inv.fs.symlink(inv.fs.readlink(s), d)
            inv.fs.chown(d, uid, gid, follow_symlinks=False)
        elif _stat.S_ISREG(st.st_mode):
            inv.fs.write_bytes(d, inv.fs.read_bytes(s), 0)
            inv.fs.chown(d, uid, gid)
            inv.fs.chmod(d, _stat.S_IMODE(st.st_mode))
        else:
            raise Defer(f"useradd: special file {s} in the skeleton")
        inv.fs.utime(d, st.st_atime_ns, st.st_mtime_ns, follow_symlinks=False)
    dst_st = inv.fs.lstat(src)
    inv.fs.utime(dst, dst_st.st_atime_ns, dst_st.st_mtime_ns)


# ---- groupadd ------------------------------------------------------------------------------------

@all_or_nothing
def groupadd(inv: Invocation) -> int:
    """``groupadd [-r] [-g GID [-o]] [-f] [-K K=V] GROUP``."""
    opts, ops = _parse(inv, "fg:hK:op:rR:P:U:", {"force": "f", "gid": "g", "help": "h", "key": "K",
                                                 "non-unique": "o", "password": "p", "system": "r",
                                                 "root": "R", "prefix": "P", "users": "U"})
    db, defs = Accounts(inv.fs), LoginDefs(inv.fs)
    flags = dict(opts)
    if "p" in flags or "U" in flags:
        raise Defer("groupadd -p/-U are not modelled")
    for k, v in opts:
        if k == "g" and _uint(v) is None:
            say(inv, f"invalid group ID '{v}'")
            return 3
        if k == "K":
            key, eq, val = v.partition("=")
            if not eq:
                say(inv, "-K requires KEY=VALUE")
                return 3
            defs.values[key] = val
    if len(ops) != 1 or ("o" in flags and "g" not in flags):
        raise Defer("groupadd: usage error (the usage text is not modelled)")
    name = ops[0]
    if not valid_name(name):
        say(inv, f"'{name}' is not a valid group name")
        return 3
    if db.grp(name) is not None:
        if "f" in flags:
            return 0
        say(inv, f"group '{name}' already exists")
        return 9
    gid = _uint(flags["g"]) if "g" in flags else None
    if gid is not None and db.grp_by_gid(gid) is not None:
        if "o" in flags:
            pass
        elif "f" in flags:
            gid = None
        else:
            say(inv, f"GID '{gid}' already exists")
            return 4
    if gid is None:
        lo, hi, _ = ranges(defs, "r" in flags, "GID")
        gid = find_new_id(set(db.group.ids(2)), lo, hi, "r" in flags)
        if gid is None:
            say(inv, "can't create group")
            return 4
    db.group.put([name, "x" if db.gshadow.exists else "!", str(gid), ""])
    if db.gshadow.exists:
        db.gshadow.put([name, "!", "", ""])
    db.save()
    return 0


# ---- group membership helpers --------------------------------------------------------------------

def set_members(db: Accounts, gname: str, members: list[str], shadow_too: bool = True) -> None:
    """Write the member list of a group (and of its gshadow entry, when there is one)."""
    g = db.grp(gname)
    if g[3] != ",".join(members):
        db.group.put(g[:3] + [",".join(members)])
    if shadow_too and db.gshadow.exists:
        sg = db.gshadow.get(gname)
        if sg is not None and sg[3] != ",".join(members):
            db.gshadow.put(sg[:3] + [",".join(members)])


def _mem(field: str) -> list[str]:
    return [m for m in field.split(",") if m]
