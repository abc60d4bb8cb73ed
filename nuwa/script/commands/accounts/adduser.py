"""Models of Debian's adduser 3.134: adduser and addgroup (deluser/delgroup: :mod:`deluser`).

The real programs are Perl scripts that decide, print, then call shadow-utils
(``groupadd -g``, ``useradd -r -K SYS_UID_MIN=.. -K SYS_UID_MAX=.. -d -g -s -u``,
``usermod -a -G``, ``gpasswd -M``, ``chfn``, ``userdel``, ``groupdel``). The models follow the
scripts' logic (``/usr/sbin/adduser``, ``/usr/sbin/deluser``, ``Debian/AdduserCommon.pm``) and
call the shadow-utils models of :mod:`useradd`/:mod:`usermod` with the same arguments, so
the file effects are those of the real run. Messages are the scripts' own (C locale, the
backquote-quote style of 3.134); ``--quiet`` silences what the scripts print only when
verbose. Like the real ``acquire_lock``, adding or removing creates ``/run/adduser``.

Ids: adduser chooses them itself, *ascending* from ``FIRST_SYSTEM_UID``/``FIRST_SYSTEM_GID``
(100) for system accounts and from ``FIRST_UID`` (1000) for users (``first_avail_uid``),
then hands them to useradd/groupadd with ``-u``/``-g``.

Deferred: adding a normal user without ``--disabled-password``/``--disabled-login`` and a
``--gecos``/``--comment`` (the real tool runs ``passwd`` and ``chfn`` on the terminal), uid/gid
pools, ``QUOTAUSER``, ``/usr/local/sbin/adduser.local``.
"""

from __future__ import annotations

import re

from nuwa.script.commands.accounts.db import Accounts, all_or_nothing
from nuwa.script.commands.accounts.adduser_common import (_ADD_FLAGS, _ADD_VALUES, Stop, Tool, _db, _executable, _first_avail,
                                                 _gid_of, _int_opt, getopts)
from nuwa.script.context import Defer, Invocation


# ---- option parsing (Getopt::Long) -------------------------------------------------------------


# ---- adduser / addgroup --------------------------------------------------------------------------

@all_or_nothing
def adduser(inv: Invocation) -> int:
    """``adduser``/``addgroup`` of adduser 3.134."""
    opts, names = getopts(inv, _ADD_FLAGS, _ADD_VALUES)
    o: dict[str, str | None] = {}
    verbose = 1
    conf: list[str] = []
    disabled_login = ask_passwd = None
    name_level = 0
    for k, v in opts:
        if k in ("help", "h", "version", "v"):
            raise Defer(f"{inv.name} --{k}")
        if k in ("quiet", "q"):
            verbose = 0
        elif k == "debug":
            raise Defer(f"{inv.name} --debug (debug output is not modelled)")
        elif k == "verbose":
            verbose = 1
        elif k in ("conf", "c"):
            conf.append(v)
        elif k == "disabled-login":
            disabled_login, ask_passwd = True, False
        elif k == "disabled-password":
            ask_passwd = False
        elif k == "allow-all-names":
            name_level = 2
        elif k in ("allow-badname", "allow-bad-names", "force-badname"):
            name_level = name_level or 1
        elif k == "gecos":
            o["comment"] = v
        else:
            o[k] = v
    tool = Tool(inv, verbose)
    try:
        return _adduser(tool, o, names, conf or ["/etc/adduser.conf"], bool(disabled_login),
                        ask_passwd is not False, name_level)
    except Stop as s:
        return s.status


def _adduser(t: Tool, o: dict, names: list[str], conf: list[str], disabled_login: bool, ask_passwd: bool,
             name_level: int) -> int:
    inv = t.inv
    db = _db(inv)
    nogroup_id = _gid_of(db, "nogroup") or 65534
    system = "system" in o
    action = "addgroup" if t.prog == "addgroup" else "adduser"
    if system:
        action = {"adduser": "addsysuser", "addgroup": "addsysgroup"}[action]
    if not names or not names[0] or len(names) > 2:
        t.die("Only one or two names allowed.\n")
    for k in ("uid", "gid", "firstuid", "lastuid", "firstgid", "lastgid"):
        if k in o:
            o[k] = _int_opt(inv, o[k])
    if len(names) == 2:
        if action == "addsysuser" or "group" in o:
            t.die("Specify only one name in this mode.\n")
        if action in ("addgroup", "addsysgroup"):
            t.die("addgroup with two arguments is an unspecified operation.\n")
        action = "addusertogroup"
        new_name = None
    else:
        new_name = names[0]
    if action != "addgroup" and sum(k in o for k in ("group", "ingroup", "gid")) > 1:
        t.die("The --group, --ingroup, and --gid options are mutually exclusive.\n")
    home = o.get("home")
    if home is not None and not home.startswith("/"):
        t.die("The home dir must be an absolute path.\n")
    if home is not None and t.verbose:
        if "no-create-home" not in o and _is_dir(inv, home):
            t.warn(f"Warning: The home dir {home} you specified already exists.\n")
        if "no-create-home" in o and not _is_dir(inv, home):
            t.warn(f"Warning: The home dir {home} you specified can't be accessed: {_errno_text(inv, home)}\n")
    make_group_also = False
    if "group" in o:
        if action == "addsysuser":
            make_group_also = True
        elif system:
            action = "addsysgroup"
        else:
            action = "addgroup"
    t.read_config(conf)
    if new_name is not None:
        _checkname(t, new_name, system, name_level)

    if action in ("addsysgroup", "addgroup"):
        t.lock()
        gid = o.get("gid")
        g = db.grp(new_name)
        if action == "addsysgroup":
            if g is not None:
                ggid = int(g[2])
                if t.num("first_system_gid") <= ggid <= t.num("last_system_gid"):
                    if t.verbose:
                        t.warn(f"The group `{new_name}' already exists as a system group. Exiting.\n")
                    return 0
                if gid is None or ggid == gid:
                    t.warn(f"The group `{new_name}' already exists and is not a system group. Exiting.\n")
                else:
                    t.warn(f"The group `{new_name}' already exists, but has a different GID. Exiting.\n")
                return 1
        elif g is not None:
            t.die(f"The group `{new_name}' already exists.\n")
        if gid is not None and db.grp_by_gid(gid) is not None:
            t.die(f"The GID `{gid}' is already in use.\n")
        if gid is None:
            sysg = action == "addsysgroup"
            lo = o.get("firstgid") or t.num("first_system_gid" if sysg else "first_gid")
            hi = o.get("lastgid") or t.num("last_system_gid" if sysg else "last_gid")
            gid = _first_avail(set(db.group.ids()), lo, hi)
            if gid == -1:
                if sysg:
                    t.warn(f"No GID is available in the range {lo}-{hi} (FIRST_SYS_GID - LAST_SYS_GID).\n")
                else:
                    inv.err(f"{t.prog}: ")
                    inv.err(f"No GID is available in the range {lo}-{hi} (FIRST_GID - LAST_GID).\n")
                t.die(f"The group `{new_name}' was not created.\n")
        if t.verbose:
            t.out(f"Adding group `{new_name}' (GID {gid}) ...\n")
        t.call([t.which("groupadd"), "-g", str(gid), new_name])
        if t.verbose:
            t.out("Done.\n")
        return 0

    if action == "addusertogroup":
        user, group = names
        if db.user(user) is None:
            t.die(f"The user `{user}' does not exist.\n")
        if db.grp(group) is None:
            t.die(f"The group `{group}' does not exist.\n")
        if user in db.members(group):
            if t.verbose:
                t.warn(f"The user `{user}' is already a member of `{group}'.\n")
            return 0
        if t.verbose:
            t.out(f"Adding user `{user}' to group `{group}' ...\n")
        t.lock()
        t.call(["/usr/sbin/usermod", "-a", "-G", group, user])
        if t.verbose:
            t.out("Done.\n")
        return 0

    if action == "addsysuser":
        return _addsysuser(t, db, o, new_name, make_group_also, nogroup_id)
    if ask_passwd or "comment" not in o:
        raise Defer("adduser: a normal user without --disabled-password and --gecos runs passwd/chfn "
                    "interactively")
    return _addnormaluser(t, db, o, new_name, disabled_login, "add-extra-groups" in o or "add_extra_groups" in o)


def _is_dir(inv: Invocation, p: str) -> bool:
    try:
        return inv.fs.stat(p).is_dir
    except OSError:
        return False


def _errno_text(inv: Invocation, p: str) -> str:
    import os
    try:
        inv.fs.stat(p)
    except OSError as e:
        return os.strerror(e.errno) if e.errno else str(e)
    raise Defer("adduser: the home exists but is not a directory ($! would be stale)")


def _checkname(t: Tool, name: str, system: bool, level: int) -> None:
    """``checkname`` of adduser 3.134 (messages keep the script's line breaks and indents)."""
    var = "SYS_NAME_REGEX" if system else "NAME_REGEX"
    if re.fullmatch(r"\d+", name):
        t.warn("To avoid ambiguity with numerical UIDs, usernames which\n"
               "            consist of only digits are not allowed.\n")
        raise Stop(1)
    if len(name.encode("utf-8", "surrogateescape")) > 32:
        t.warn("Usernames must be no more than 32 bytes in length;\n"
               "            note that if you are using Unicode characters, the character\n"
               "            limit will be less than 32.\n")
        raise Stop(1)
    if not re.search(r"^[^-+~:,\s/][^:,\s/]*\Z", name):
        t.warn("To avoid problems, the username must not start with a\n"
               "            dash, plus sign, or tilde, and it must not contain any of the\n"
               "            following: colon, comma, slash, or any whitespace characters\n"
               "            including spaces, tabs, and newlines.\n")
        raise Stop(1)
    try:
        if re.search(t.config[var.lower()] or "", name):
            return
    except re.error:
        raise Defer(f"adduser: {var} is not a regular expression Python reads the same way") from None
    if not re.search(r"^[_.A-Za-z0-9][-@_.A-Za-z0-9]*\$?\Z", name) and level < 2:
        t.warn("To avoid problems, the username should consist only of\n"
               "            letters, digits, underscores, periods, at signs and dashes, and\n"
               "            not start with a dash (as defined by IEEE Std 1003.1-2001). For\n"
               "            compatibility with Samba machine accounts, $ is also supported\n"
               "            at the end of the username.  (Use the `--allow-all-names' option\n"
               "            to bypass this restriction.)\n")
        raise Stop(1)
    if level:
        if t.verbose:
            t.out("Allowing use of questionable username.\n")
        return
    t.warn("Please enter a username matching the regular expression\n"
           f"            configured via the {var} configuration variable.  Use the\n"
           "            `--allow-bad-names' option to relax this check or reconfigure\n"
           f"            {var} in configuration.\n")
    raise Stop(1)


def _addsysuser(t: Tool, db: Accounts, o: dict, name: str, make_group_also: bool, nogroup_id: int) -> int:
    t.lock()
    fsu, lsu = t.num("first_system_uid"), t.num("last_system_uid")
    new_uid = o.get("uid")
    pw = db.user(name)
    existing = 0
    if pw is not None:
        if new_uid is None or int(pw[2]) == new_uid:
            existing = 1
        elif fsu <= int(pw[2]) <= lsu:
            existing = 2
    if existing == 1:
        if fsu <= int(pw[2]) <= lsu:
            if t.verbose:
                t.out(f"The system user `{name}' already exists. Exiting.\n")
            return 0
        t.warn(f"The user `{name}' already exists, but is not a system user. Exiting.\n")
        return 1
    if existing == 2:
        t.warn(f"The user `{name}' already exists with a different UID. Exiting.\n")
        return 1
    ingroup, gid = o.get("ingroup"), o.get("gid")
    if not ingroup and gid is None and not make_group_also:
        gid = nogroup_id
    # check_user_group(1)
    if pw is not None:
        t.die(f"The user `{name}' already exists, and is not a system user.\n")
    if new_uid is not None and db.user_by_uid(new_uid) is not None:
        t.die(f"The UID {new_uid} is already in use.\n")
    if make_group_also:
        g = db.grp(name)
        sys_ok = g is not None and t.num("first_system_gid") <= int(g[2]) <= t.num("last_system_gid")
        if not sys_ok:
            if g is not None:
                t.die(f"The group `{name}' already exists.\n")
            if new_uid is not None and db.grp_by_gid(new_uid) is not None:
                t.die(f"The GID {new_uid} is already in use.\n")
    else:
        if ingroup and db.grp(ingroup) is None:
            t.die(f"The group `{ingroup}' does not exist.\n")
        if gid is not None and db.grp_by_gid(gid) is None:
            t.die(f"The GID {gid} does not exist.\n")
    fu, lu = o.get("firstuid") or fsu, o.get("lastuid") or lsu
    if new_uid is None and make_group_also:
        new_uid = _first_avail(set(db.passwd.ids()), fu, lu)
        if new_uid == -1:
            t.warn(f"No UID/GID pair is available in the range {fsu}-{lsu} (FIRST_SYS_UID - LAST_SYS_UID).\n")
            t.die(f"The user `{name}' was not created.\n")
        gid = _first_avail(set(db.group.ids()), o.get("firstgid") or t.num("first_system_gid"),
                           o.get("lastgid") or t.num("last_system_gid"))
        ingroup = name
    elif new_uid is None:
        new_uid = _first_avail(set(db.passwd.ids()), fu, lu)
        if new_uid == -1:
            t.warn(f"No UID is available in the range {fsu}-{lsu} (FIRST_SYS_UID - LAST_SYS_UID).\n")
            t.die(f"The user `{name}' was not created.\n")
        if gid is not None:
            g = db.grp_by_gid(gid)
            ingroup = g[0] if g else None
        elif ingroup:
            gid = _gid_of(db, ingroup)
    else:
        if gid is not None:
            g = db.grp_by_gid(gid)
            ingroup = g[0] if g else None
        elif ingroup:
            gid = _gid_of(db, ingroup)
        elif make_group_also:
            gid, ingroup = new_uid, name
    if t.verbose:
        t.out(f"Adding system user `{name}' (UID {new_uid}) ...\n")
    if make_group_also and db.grp(name) is None:
        if t.verbose:
            t.out(f"Adding new group `{name}' (GID {gid}) ...\n")
        t.call([t.which("groupadd"), "-g", str(gid), name])
    if t.verbose:
        t.out(f"Adding new user `{name}' (UID {new_uid}) with group `{ingroup}' ...\n")
    home = o.get("home") or "/nonexistent"
    no_create = True if re.match(r"^/+nonexistent(/|$)", home) else ("no-create-home" in o)
    shell = o.get("shell") or "/usr/sbin/nologin"
    if ingroup is None:
        raise Defer("adduser: no group name for the given GID (Perl would pass an undefined value)")
    t.call(["/usr/sbin/useradd", "-r", "-K", f"SYS_UID_MIN={fu}", "-K", f"SYS_UID_MAX={lu}", "-d", home,
            "-g", ingroup, "-s", shell, "-u", str(new_uid), name])
    if o.get("comment") is not None:
        _ch_comment(t, name, o["comment"])
    _create_homedir(t, home, no_create, new_uid, gid, system=True)
    return 0


def _addnormaluser(t: Tool, db: Accounts, o: dict, name: str, disabled_login: bool, extra: bool) -> int:
    """The ``adduser`` action for a normal user whose password and GECOS need no terminal."""
    c = t.config
    t.lock()
    gid_opt, ingroup = o.get("gid"), o.get("ingroup")
    primary = -1
    supplemental: list[str] = []
    if c["users_gid"] is not None and c["users_group"] is not None:
        t.warn("USERS_GID and USERS_GROUP both given in configuration. This is an error.\n")
        t.die(f"The user `{name}' was not created.\n")
    if (c["usergroups"] or "").lower().find("yes") >= 0:
        make_group = True
        if gid_opt:
            make_group, primary = False, gid_opt
        if ingroup:
            make_group, primary = False, _gid_of(db, ingroup)
        if primary is not None and primary == -1 and not make_group:
            raise Defer("adduser: USERS_GID/USERS_GROUP as the primary group is not modelled")
        if c["users_gid"] is not None or c["users_group"] is not None:
            raise Defer("adduser: USERS_GID/USERS_GROUP are not modelled")
        supplemental.append("users")
    else:
        raise Defer("adduser: USERGROUPS=no is not modelled")
    if ingroup is not None or gid_opt is not None:
        make_group = False
    # check_user_group(0)
    if db.user(name) is not None:
        t.die(f"The user `{name}' already exists.\n")
    if o.get("uid") is not None and db.user_by_uid(o["uid"]) is not None:
        t.die(f"The UID {o['uid']} is already in use.\n")
    if make_group:
        if db.grp(name) is not None:
            t.die(f"The group `{name}' already exists.\n")
        if o.get("uid") is not None and db.grp_by_gid(o["uid"]) is not None:
            t.die(f"The GID {o['uid']} is already in use.\n")
    else:
        if ingroup and db.grp(ingroup) is None:
            t.die(f"The group `{ingroup}' does not exist.\n")
        if gid_opt is not None and db.grp_by_gid(gid_opt) is None:
            t.die(f"The GID {gid_opt} does not exist.\n")
    first_uid, last_uid = o.get("firstuid") or t.num("first_uid"), o.get("lastuid") or t.num("last_uid")
    if t.verbose:
        t.out(f"Adding user `{name}' ...\n")
    uid = o.get("uid")
    if uid is None:
        if ingroup is not None:
            uid = _first_avail(set(db.passwd.ids()), first_uid, last_uid)
        else:
            used = set(db.passwd.ids()) | set(db.group.ids())
            uid = _first_avail(used, first_uid, last_uid)
        if uid == -1:
            t.warn(f"No UID/GID pair is available in the range {first_uid}-{last_uid} (FIRST_UID - LAST_UID).\n")
            t.die(f"The user `{name}' was not created.\n")
        if gid_opt is not None:
            primary = gid_opt
        elif ingroup:
            primary = _gid_of(db, ingroup)
        if make_group:
            primary = uid
    else:
        if gid_opt is not None:
            primary = gid_opt
        elif ingroup:
            primary = _gid_of(db, ingroup)
        elif make_group:
            primary = uid
    if make_group:
        if t.verbose:
            t.out(f"Adding new group `{name}' ({primary}) ...\n")
        t.call([t.which("groupadd"), "-g", str(primary), name])
    db = _db(t.inv)
    if t.verbose:
        g = db.grp_by_gid(primary)
        t.out(f"Adding new user `{name}' ({uid}) with group `{g[0] if g else ''} ({primary})' ...\n")
    gname = (db.grp_by_gid(primary) or [name])[0]
    home = o.get("home") or _homedir(c, name, gname)
    shell = o.get("shell") or ("/usr/sbin/nologin" if disabled_login else c["dshell"])
    t.call([t.which("useradd"), "-d", home, "-g", str(primary), "-s", shell, "-u", str(uid), name])
    _create_homedir(t, home, "no-create-home" in o, uid, primary, system=False)
    _ch_comment(t, name, o["comment"])
    if (extra or c["add_extra_groups"] not in (None, "", "0")) and c["extra_groups"]:
        supplemental += c["extra_groups"].split()
    if supplemental:
        if t.verbose:
            t.out(f"Adding new user `{name}' to supplemental / extra groups `{', '.join(supplemental)}' ...\n")
        for grp in supplemental:
            db = _db(t.inv)
            if db.grp(grp) is None:
                t.warn(f"The group `{grp}' does not exist.\n")
                continue
            if name in db.members(grp):
                if t.verbose:
                    t.warn(f"The user `{name}' is already a member of `{grp}'.\n")
                continue
            if t.verbose:
                t.out(f"Adding user `{name}' to group `{grp}' ...\n")
            members = [m for m in db.members(grp) if db.user(m) is not None]
            t.call([t.which("gpasswd"), "-M", ",".join(members + [name]), grp])
    if _executable(t.inv, "/usr/local/sbin/adduser.local"):
        raise Defer("adduser: /usr/local/sbin/adduser.local runs a site script")
    return 0


def _homedir(c: dict, name: str, group: str) -> str:
    d = c["dhome"] or ""
    if (c["grouphomes"] or "").lower().find("yes") >= 0:
        d += "/" + group
    if (c["letterhomes"] or "").lower().find("yes") >= 0:
        d += "/" + name[0]
    return d + "/" + name


def _copy_skel(t: Tool, home: str, uid: int, gid: int) -> None:
    """``copy_to_dir`` for each entry ``find SKEL -print`` lists (skel_ignore_regex applies)."""
    fs, skel = t.inv.fs, t.config["skel"]
    ignore = t.config["skel_ignore_regex"] or ""
    setgid = (t.config["setgid_home"] or "").lower().find("yes") >= 0

    def walk(rel: str):
        for n in sorted(fs.readdir(f"{skel}/{rel}" if rel else skel)):
            r = f"{rel}/{n}" if rel else n
            yield r
            if fs.lstat(f"{skel}/{r}").is_dir:
                yield from walk(r)
    try:
        entries = list(walk(""))
    except OSError:
        return
    for rel in entries:
        if ignore and re.search(ignore, "./" + rel):
            continue
        src, dst = f"{skel}/{rel}", f"{home}/{rel}"
        st = fs.lstat(src)
        if st.is_lnk:
            fs.symlink(fs.readlink(src), dst)
            fs.chown(dst, uid, gid, follow_symlinks=False)
            continue
        if st.is_reg:
            fs.write_bytes(dst, fs.read_bytes(src), 0o666 & ~t.inv.umask)
        elif st.is_dir:
            fs.mkdir(dst, 700 & ~t.inv.umask)  # Perl's mkdir("...", 700): decimal, as the script has it
        else:
            raise Defer(f"adduser: special file {src} in the skeleton")
        fs.chown(dst, uid, gid)
        perm = st.st_mode & 0o7777
        if st.is_dir and perm & 0o10 and setgid:
            perm |= 0o2000
        fs.chmod(dst, perm)


def _ch_comment(t: Tool, name: str, comment: str) -> None:
    if "," in comment:
        parts = comment.split(",")
        while parts and parts[-1] == "":  # Perl's split drops trailing empty fields
            parts.pop()
        parts += [None] * (5 - len(parts))
        t.call([t.which("chfn"), "-f", parts[0] or "", "-r", parts[1] or "", name])
        for flag, val in (("-w", parts[2]), ("-h", parts[3]), ("-o", parts[4])):
            if val is not None:
                t.call([t.which("chfn"), flag, val, name])
    else:
        t.call([t.which("chfn"), "-f", comment, name])


def _create_homedir(t: Tool, home: str, no_create: bool, uid: int, gid: int, system: bool) -> None:
    inv = t.inv
    if re.match(r"^/+nonexistent(/|$)", home):
        if t.verbose:
            t.out(f"Not creating `{home}'.\n")
        return
    if no_create:
        if t.verbose:
            t.out(f"Not creating home directory `{home}'.\n")
        return
    if inv.fs.exists(home):
        if t.verbose:
            t.warn(f"The home directory `{home}' already exists.  Not touching this directory.\n")
        st = inv.fs.stat(home)
        if st.st_uid != uid or st.st_gid != gid:
            t.warn(f"Warning: The home directory `{home}' does not belong to the user you are currently creating.\n")
        return
    if t.verbose:
        t.out(f"Creating home directory `{home}' ...\n")
    path = ""
    for comp in [x for x in home.strip("/").split("/") if x]:
        path += "/" + comp
        if not _is_dir(inv, path):
            inv.fs.mkdir(path, 0o755 & ~inv.umask)
    inv.fs.chown(home, uid, gid)
    mode = t.config["sys_dir_mode" if system else "dir_mode"] or ""
    if not system and t.config["skel"]:
        _apply_mode(t, home, mode, system)
        if t.verbose:
            t.out(f"Copying files from `{t.config['skel']}' ...\n")
        _copy_skel(t, home, uid, gid)
        return
    _apply_mode(t, home, mode, system)


def _apply_mode(t: Tool, home: str, mode: str, system: bool) -> None:
    """``get_dir_mode`` then chmod."""
    if not re.search(r"[0-7]{3}", mode):
        mode = "755" if system else "0700"
    if (t.config["setgid_home"] or "").lower().find("yes") >= 0 and (len(mode) == 3 or re.match(r"^[0-145][0-7]{3}$", mode)):
        mode = str(int(mode) + 2000)
    t.inv.fs.chmod(home, int(mode, 8))


