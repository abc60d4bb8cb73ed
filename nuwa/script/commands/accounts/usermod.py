"""Models of the shadow-utils 4.13 tools that change or remove accounts: usermod, userdel,
groupdel, groupmod, gpasswd, chfn (useradd and groupadd live in :mod:`useradd`).

Only the forms maintainer scripts use are simulated; the rest defers (see :mod:`useradd` for
the general rules). Messages and exit codes follow ``src/usermod.c``, ``src/userdel.c``,
``src/groupdel.c``, ``src/groupmod.c``, ``src/gpasswd.c`` and ``src/chfn.c``.
"""

from __future__ import annotations

import stat as _stat

from nuwa.script.commands.accounts.db import SUBGID, SUBUID, Accounts, LoginDefs
from nuwa.script.commands.accounts.useradd import _executable, _mem, _parse, _uint, say, valid_name
from nuwa.script.context import Defer, Invocation

# ---- usermod -------------------------------------------------------------------------------------

_USERMOD = ("abc:d:e:f:g:G:hl:Lmop:rR:P:s:u:Uv:w:V:W:Z:",
            {"append": "a", "badname": ("badname", 0), "comment": "c", "home": "d", "expiredate": "e",
             "inactive": "f", "gid": "g", "groups": "G", "help": "h", "login": "l", "lock": "L",
             "move-home": "m", "non-unique": "o", "password": "p", "root": "R", "prefix": "P",
             "remove": "r", "shell": "s", "uid": "u", "unlock": "U"})


def usermod(inv: Invocation) -> int:
    """``usermod [-a] [-G GROUPS] [-g GROUP] [-c C] [-d HOME] [-s SHELL] LOGIN``."""
    opts, ops = _parse(inv, *_USERMOD)
    keys = {k for k, _ in opts}
    if keys & set("eflLmopuUvwVWZb") or "badname" in keys:
        raise Defer("usermod: renames, uid changes, home moves, locking, aging and sub-ids are not modelled")
    db = Accounts(inv.fs)
    flags = dict(opts)
    groups: list[str] = []
    for k, v in opts:
        if k in ("c", "d") and (":" in v or "\n" in v):
            say(inv, f"invalid field '{v}'")
            return 3
        if k == "d" and not v.startswith("/"):
            say(inv, "homedir must be an absolute path")
            return 3
        if k == "g" and db.grp_nam_gid(v) is None:
            say(inv, f"group '{v}' does not exist")
            return 6
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
                return 6
        if k == "s":
            if ":" in v or "\n" in v or (v and v[0] not in "/*"):
                say(inv, f"invalid shell '{v}'")
                return 3
            if v and v[0] != "*" and v != "/sbin/nologin" and not _executable(inv, v):
                say(inv, f"Warning: missing or non-executable shell '{v}'")
    if len(ops) != 1 or (("a" in flags or "r" in flags) and "G" not in flags) or ("a" in flags and "r" in flags):
        raise Defer("usermod: usage error (the usage text is not modelled)")
    name = ops[0]
    pw = db.user(name)
    if pw is None:
        say(inv, f"user '{name}' does not exist")
        return 6
    if not opts:
        raise Defer("usermod: no options (the usage text is not modelled)")
    new = list(pw)
    if "g" in flags:
        new[3] = db.grp_nam_gid(flags["g"])[2]
    if "c" in flags:
        new[4] = flags["c"]
    if "d" in flags:
        new[5] = flags["d"]
    if "s" in flags:
        new[6] = flags["s"]
    gflag = "G" in flags
    if new == pw and not gflag:
        inv.out(f"{inv.name}: no changes\n")
        return 0
    if new != pw:
        db.passwd.put(new)
    if gflag:
        append, remove = "a" in flags, "r" in flags
        for af, field in ((db.group, 3), (db.gshadow, 3)):
            if not af.exists:
                continue
            for e in af.entries():
                was = name in _mem(e[field])
                now = (was and append) or e[0] in groups
                if remove:
                    now = not now if e[0] in groups else was
                if was == now:
                    continue
                mem = _mem(e[field])
                mem = mem + [name] if now else [m for m in mem if m != name]
                af.put(e[:field] + [",".join(mem)])
    db.save()
    return 0


# ---- userdel -------------------------------------------------------------------------------------

def userdel(inv: Invocation) -> int:
    """``userdel [-f] [-r] LOGIN``: entries, group memberships, the user group, sub-ids, home."""
    opts, ops = _parse(inv, "fhrR:P:Z", {"force": "f", "help": "h", "remove": "r", "root": "R",
                                         "prefix": "P", "selinux-user": "Z"})
    flags = dict(opts)
    if "Z" in flags:
        raise Defer("userdel -Z (SELinux)")
    if len(ops) != 1:
        raise Defer("userdel: usage error (the usage text is not modelled)")
    name = ops[0]
    db, defs = Accounts(inv.fs), LoginDefs(inv.fs)
    pw = db.user(name)
    if pw is None:
        say(inv, f"user '{name}' does not exist")
        return 6
    if defs.str("USERDEL_CMD"):
        raise Defer("userdel: USERDEL_CMD in login.defs runs a site script")
    uid, gid, home = int(pw[2]), int(pw[3]), pw[5]
    force, rflag = "f" in flags, "r" in flags
    db.passwd.remove(name)
    if db.shadow.exists:
        db.shadow.remove(name)
    for e in db.group.entries():
        if name in _mem(e[3]):
            db.group.put(e[:3] + [",".join(m for m in _mem(e[3]) if m != name)])
    if db.gshadow.exists:
        for e in db.gshadow.entries():
            if name in _mem(e[3]) or name in _mem(e[2]):
                db.gshadow.put([e[0], e[1], ",".join(m for m in _mem(e[2]) if m != name),
                                ",".join(m for m in _mem(e[3]) if m != name)])
    if defs.bool("USERGROUPS_ENAB"):
        g = db.grp(name)
        if g is not None:
            if int(g[2]) != gid:
                say(inv, f"group {g[0]} not removed because it is not the primary group of user {name}.")
            elif _mem(g[3]):
                say(inv, f"group {g[0]} not removed because it has other members.")
            else:
                other = None if force else next((p for p in db.passwd.entries() if int(p[3]) == gid), None)
                if other is not None:
                    say(inv, f"group {g[0]} is the primary group of another user and is not removed.")
                else:
                    db.group.remove(name)
                    if db.gshadow.exists:
                        db.gshadow.remove(name)
    for p in (SUBUID, SUBGID):
        if db.files[p].exists:
            db.files[p].remove_all(name)
    errors = 0
    if rflag:
        maildir = defs.str("MAIL_DIR", "/var/mail")
        mail = f"{maildir}/{name}"
        try:
            st = inv.fs.lstat(mail)
        except FileNotFoundError:
            say(inv, f"{name} mail spool ({mail}) not found")
        else:
            if force or st.st_uid == uid:
                inv.fs.unlink(mail)
            else:
                say(inv, f"{mail} not owned by {name}, not removing")
        try:
            hst = inv.fs.stat(home)
        except OSError:
            say(inv, f"{name} home directory ({home}) not found")
            rflag = False
        else:
            if hst.st_uid != uid and not force:
                say(inv, f"{home} not owned by {name}, not removing")
                rflag = False
                errors += 1
    db.save()
    if rflag:
        _remove_tree(inv, home)
    return 12 if errors else 0


def _remove_tree(inv: Invocation, path: str) -> None:
    st = inv.fs.lstat(path)
    if _stat.S_ISDIR(st.st_mode):
        for n in inv.fs.readdir(path):
            _remove_tree(inv, f"{path}/{n}")
        inv.fs.rmdir(path)
    else:
        inv.fs.unlink(path)


# ---- groupdel / groupmod -------------------------------------------------------------------------

def groupdel(inv: Invocation) -> int:
    """``groupdel [-f] GROUP``."""
    opts, ops = _parse(inv, "hfR:P:", {"help": "h", "force": "f", "root": "R", "prefix": "P"})
    if len(ops) != 1:
        raise Defer("groupdel: usage error (the usage text is not modelled)")
    name = ops[0]
    db = Accounts(inv.fs)
    g = db.grp(name)
    if g is None:
        say(inv, f"group '{name}' does not exist")
        return 6
    if "f" not in dict(opts):
        for p in db.passwd.entries():
            if p[3] == g[2]:
                say(inv, f"cannot remove the primary group of user '{p[0]}'")
                return 8
    db.group.remove(name)
    if db.gshadow.exists:
        db.gshadow.remove(name)
    db.save()
    return 0


def groupmod(inv: Invocation) -> int:
    """``groupmod [-n NEW] [-g GID [-o]] GROUP``."""
    opts, ops = _parse(inv, "ag:hn:op:R:P:U:", {"append": "a", "gid": "g", "help": "h", "new-name": "n",
                                                "non-unique": "o", "password": "p", "root": "R",
                                                "prefix": "P", "users": "U"})
    flags = dict(opts)
    if {"a", "p", "U"} & set(flags):
        raise Defer("groupmod -a/-p/-U are not modelled")
    for k, v in opts:
        if k == "g" and _uint(v) is None:
            say(inv, f"invalid group ID '{v}'")
            return 3
    if len(ops) != 1 or ("o" in flags and "g" not in flags):
        raise Defer("groupmod: usage error (the usage text is not modelled)")
    name = ops[0]
    db = Accounts(inv.fs)
    g = db.grp(name)
    if g is None:
        say(inv, f"group '{name}' does not exist")
        return 6
    gid = _uint(flags["g"]) if "g" in flags else None
    if gid is not None and gid != int(g[2]) and "o" not in flags and db.grp_by_gid(gid) is not None:
        say(inv, f"GID '{gid}' already exists")
        return 4
    newname = flags.get("n")
    if newname is not None and newname != name:
        if not valid_name(newname):
            say(inv, f"invalid group name '{newname}'")
            return 3
        if db.grp(newname) is not None:
            say(inv, f"group '{newname}' already exists")
            return 9
    else:
        newname = name
    old_gid = int(g[2])
    new = [newname, g[1], str(gid if gid is not None else old_gid), g[3]]
    if new != g:
        _rename_line(db.group, name, new)
    if db.gshadow.exists and newname != name:
        sg = db.gshadow.get(name)
        if sg is not None:
            _rename_line(db.gshadow, name, [newname] + sg[1:])
    if gid is not None and gid != old_gid:
        for p in db.passwd.entries():
            if int(p[3]) == old_gid:
                db.passwd.put(p[:3] + [str(gid)] + p[4:])
    db.save()
    return 0


def _rename_line(af, old: str, fields: list[str]) -> None:
    """Replace the entry named ``old`` in place by ``fields`` (a rename keeps the line's position)."""
    for i, line in enumerate(af.lines):
        f = af.parse(line)
        if f is not None and f[0] == old:
            af.lines[i] = ":".join(fields)
            af.changed = True
            return
    af.put(fields)


# ---- gpasswd -------------------------------------------------------------------------------------

def gpasswd(inv: Invocation) -> int:
    """``gpasswd -a USER GROUP``, ``gpasswd -d USER GROUP``, ``gpasswd -M U1,U2 GROUP``."""
    opts, ops = _parse(inv, "a:A:d:ghM:Q:rR", {"add": "a", "administrators": "A", "delete": "d", "help": "h",
                                               "members": "M", "root": "Q", "remove-password": "r",
                                               "restrict": "R"})
    flags = dict(opts)
    if {"A", "g", "Q", "r", "R"} & set(flags) or not flags:
        raise Defer("gpasswd: password/administrator forms are not modelled")
    db = Accounts(inv.fs)
    for k, v in opts:
        if k == "a" and db.user(v) is None:
            say(inv, f"user '{v}' does not exist")
            return 3
        if k == "M":
            for u in v.split(","):
                if u and db.user(u) is None:
                    say(inv, f"user '{u}' does not exist")
                    return 3
    if len(ops) != 1 or len(flags) != 1:
        raise Defer("gpasswd: usage error (the usage text is not modelled)")
    group = ops[0]
    g = db.grp(group)
    if g is None:
        say(inv, f"group '{group}' does not exist in /etc/group")
        return 3
    sg = db.gshadow.get(group) if db.gshadow.exists else None
    if sg is None and db.gshadow.exists:
        raise Defer("gpasswd: group without a gshadow entry (gpasswd would create one)")
    if "a" in flags:
        user = flags["a"]
        inv.out(f"Adding user {user} to group {group}\n")
        for af, e in ((db.group, g), (db.gshadow, sg)):
            if e is not None and user not in _mem(e[3]):
                af.put(e[:3] + [",".join(_mem(e[3]) + [user])])
    elif "d" in flags:
        user = flags["d"]
        inv.out(f"Removing user {user} from group {group}\n")
        hit = False
        for af, e in ((db.group, g), (db.gshadow, sg)):
            if e is not None and user in _mem(e[3]):
                hit = True
                af.put(e[:3] + [",".join(m for m in _mem(e[3]) if m != user)])
        if not hit:
            say(inv, f"user '{user}' is not a member of '{group}'")
            return 3
    else:
        members = flags["M"]
        for af, e in ((db.group, g), (db.gshadow, sg)):
            if e is not None:
                af.put(e[:3] + [members])
    db.save()
    return 0


# ---- chfn ----------------------------------------------------------------------------------------

def chfn(inv: Invocation) -> int:
    """``chfn [-f NAME] [-r ROOM] [-w WORK] [-h HOME] [-o OTHER] USER`` as root."""
    opts, ops = _parse(inv, "f:h:o:r:R:uw:", {"full-name": "f", "home-phone": "h", "other": "o",
                                              "room": "r", "root": "R", "help": "u", "work-phone": "w"},
                        help_key="u")
    flags = dict(opts)
    if not flags:
        raise Defer("chfn without options asks on the terminal")
    if len(ops) != 1:
        raise Defer("chfn without a user name (getlogin) or with several")
    user = ops[0]
    db = Accounts(inv.fs)
    pw = db.user(user)
    if pw is None:
        say(inv, f"user '{user}' does not exist")
        return 1
    full, room, work, homeph, slop = _old_gecos(pw[4], flags)
    full, room, work, homeph = (flags.get("f", full), flags.get("r", room), flags.get("w", work),
                                flags.get("h", homeph))
    if "o" in flags:
        slop = flags["o"]
    for label, val, bad in (("name", full, ":,=\n"), ("room number", room, ":,=\n")):
        if any(c in bad for c in val):
            say(inv, f"invalid {label}: '{val}'")
            return 1
        if any(not 0x20 <= ord(c) < 0x7F for c in val):
            say(inv, f"{label} with non-ASCII characters: '{val}'")
    for label, val in (("work phone", work), ("home phone", homeph)):
        if any(c in ":,=\n" or not 0x20 <= ord(c) < 0x7F for c in val):
            say(inv, f"invalid {label}: '{val}'")
            return 1
    if any(c in ":\n" for c in slop):
        say(inv, f"'{slop}' contains illegal characters")
        return 1
    if any(not 0x20 <= ord(c) < 0x7F for c in slop):
        say(inv, f"'{slop}' contains non-ASCII characters")
    if len((full + room + work + homeph + slop).encode("utf-8", "surrogateescape")) > 80:
        say(inv, "fields too long")
        return 1
    gecos = f"{full},{room},{work},{homeph}" + (f",{slop}" if slop else "")
    db.passwd.put(pw[:4] + [gecos] + pw[5:])
    db.save()
    return 0


def _old_gecos(gecos: str, flags: dict) -> tuple[str, str, str, str, str]:
    """``get_old_fields``: split the old GECOS (``key=value`` fields go to the "other" part)."""
    parts = gecos.split(",")
    out, slop = [], []
    i = 0
    for _field in range(4):
        while i < len(parts) and "=" in parts[i]:
            slop.append(parts[i])
            i += 1
        out.append(parts[i] if i < len(parts) else "")
        i += 1
    if "o" not in flags and i < len(parts):
        slop.extend(parts[i:])
    return out[0], out[1], out[2], out[3], ",".join(slop)
