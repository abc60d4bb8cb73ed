"""Models of Debian's deluser and delgroup (adduser 3.134): removing users, groups and memberships.

Like :mod:`adduser`, the model follows the Perl script (``/usr/sbin/deluser``) and calls the
shadow-utils models (``userdel``, ``groupdel``, ``gpasswd -M``) as the script does. Removing
files (``--remove-home``, ``--remove-all-files``, ``--backup``), a user's crontab and
``deluser.local`` are deferred.
"""

from __future__ import annotations

from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.accounts.adduser_common import _DEL_FLAGS, _DEL_VALUES, Stop, Tool, _db, _executable, getopts
from nuwa.script.context import Defer, Invocation


# ---- deluser / delgroup --------------------------------------------------------------------------

@all_or_nothing
def deluser(inv: Invocation) -> int:
    """``deluser``/``delgroup`` of adduser 3.134 (accounts and memberships; no file removal)."""
    args = inv.argv[1:]
    seen_name = False
    for a in args:
        if seen_name and a.startswith("--"):
            t = Tool(inv, 1)
            t.warn("No options allowed after names.\n")
            return 1
        if not a.startswith("-"):
            seen_name = True
    opts, names = getopts(inv, _DEL_FLAGS, _DEL_VALUES)
    verbose, conf, p = 1, [], {}
    action = "delgroup" if inv.name == "delgroup" else "deluser"
    for k, v in opts:
        if k in ("help", "h", "version", "v", "debug", "verbose"):
            raise Defer(f"{inv.name} --{k}")
        if k in ("quiet", "q"):
            verbose = 0
        elif k == "group":
            action = "delgroup"
        elif k in ("conf", "c"):
            conf.append(v)
        else:
            p[k] = v if v is not None else "1"
    t = Tool(inv, verbose)
    try:
        return _deluser(t, action, names, conf or ["/etc/adduser.conf", "/etc/deluser.conf"], p)
    except Stop as s:
        return s.status


def _deluser(t: Tool, action: str, names: list[str], conf: list[str], p: dict) -> int:
    inv = t.inv
    if not names:
        raise Defer(f"{t.prog} without a name asks on the terminal")
    if not names[0] or len(names) > 2:
        t.die("Only one or two names allowed.\n")
    t.read_config(conf)
    c = t.config
    for k, v in p.items():
        c[k.replace("-", "_")] = v
    for k in ("remove_home", "remove_all_files", "backup", "backup_to", "backup_suffix"):
        if p.get(k.replace("_", "-")):
            raise Defer(f"{t.prog} --{k.replace('_', '-')} (file removal/backup is not modelled)")
    if any(c.get(k) not in (None, "", "0") for k in ("remove_home", "remove_all_files", "backup")):
        raise Defer(f"{t.prog}: removal/backup requested by the configuration")
    user = group = None
    if len(names) == 2:
        action, (user, group) = "deluserfromgroup", names
    elif action == "delgroup":
        group = names[0]
    else:
        user = names[0]
    db = _db(inv)
    system = c.get("system") not in (None, "", "0")
    if action == "deluser":
        pw = db.user(user)
        if system:
            if pw is not None:
                if not t.num("first_system_uid") <= int(pw[2]) <= t.num("last_system_uid"):
                    if t.verbose:
                        t.warn(f"The user `{user}' is not a system user. Exiting.\n")
                    return 1
            else:
                if t.verbose:
                    t.warn(f"The user `{user}' does not exist, but --system was given. Exiting.\n")
                return 0
        if pw is None:
            t.die(f"The user `{user}' does not exist.\n", 2)
        if int(pw[2]) == 0 and "no-preserve-root" not in p:
            t.out("WARNING: You are just about to delete the root account (uid 0)\n"
                  "Usually this is never required as it may render the whole system unusable\n"
                  "If you really want this, call deluser with parameter --no-preserve-root\n"
                  "Stopping now without having performed any action\n")
            return 9
        if _executable(inv, "/usr/bin/crontab"):
            if t.verbose:
                t.out("Removing crontab ...\n")
            if inv.fs.lexists(f"/var/spool/cron/crontabs/{user}"):
                raise Defer("deluser: the user has a crontab (crontab -r is not modelled)")
        else:
            t.warn("`/usr/bin/crontab' not executed. Skipping crontab removal. Package `cron' required.\n")
        if _executable(inv, "/usr/local/sbin/deluser.local"):
            raise Defer("deluser: /usr/local/sbin/deluser.local runs a site script")
        if t.verbose:
            t.out(f"Removing user `{user}' ...\n")
        t.lock()
        t.call(["/usr/sbin/userdel", user])
        if t.verbose:
            t.out("Done.\n")
        return 0
    if action == "delgroup":
        g = db.grp(group)
        if g is None:
            if t.verbose:
                t.warn(f"The group `{group}' does not exist.\n")
            return 0 if system else 3
        if system and not t.num("first_system_gid") <= int(g[2]) <= t.num("last_system_gid"):
            if t.verbose:
                t.warn(f"The group `{group}' is not a system group. Exiting.\n")
            return 3
        if c.get("only_if_empty") not in (None, "", "0") and g[3] != "":
            t.die(f"The group `{group}' is not empty!\n", 5)
        if t.verbose:
            t.out(f"Removing group `{group}' ...\n")
        t.lock()
        t.call([t.which("groupdel"), group])
        if t.verbose:
            t.out("Done.\n")
        return 0
    pw = db.user(user)
    if pw is None:
        t.die(f"The user `{user}' does not exist.\n", 2)
    g = db.grp(group)
    if g is None:
        t.die(f"The group `{group}' does not exist.\n", 3)
    main = db.grp_by_gid(int(pw[3])) if pw[3] != "0" else None
    if main is not None and main[0] == group:
        t.die("You may not remove the user from their primary group.\n", 7)
    members = [m for m in db.members(group) if db.user(m) is not None]
    if user not in members:
        t.die(f"The user `{user}' is not a member of group `{group}'.\n", 6)
    if t.verbose:
        t.out(f"Removing user `{user}' from group `{group}' ...\n")
    t.lock()
    t.call(["/usr/bin/gpasswd", "-M", ",".join(m for m in members if m != user), group])
    if t.verbose:
        t.out("Done.\n")
    return 0
