"""Model of ``systemd-sysusers [CONFIG...]`` (systemd 252) for the image.

sysusers.d(5) lines ``u``, ``g``, ``m`` and ``r`` are read from the named files (a bare name is
looked up in /etc, /run, /usr/local/lib, /usr/lib ``sysusers.d``) or from every ``*.conf``
there (a name in an earlier directory masks a later one; files in name order).

Allocation follows systemd's ``sysusers.c``: explicit ``g`` lines first, then ``u`` lines in
order, each creating its same-named group unless one is given; an id is taken from the
``r`` ranges (default ``1-999``) searching *down* from the top with one cursor for uids and
one for gids; a new uid must not be another group's gid and a new gid must not be a uid
(unless the names match); a ``u`` line with a number also asks for that gid, and a user
takes its group's gid as uid when free.

New lines go after the existing ones (before NIS ``+`` lines); each written file gets a
``FILE-`` backup of its old content and is replaced through a temporary file, keeping mode
and owner (as :mod:`accounts_db` does). Shadow lines are ``name:!*:LASTCHG::::::`` where
LASTCHG is today in days, honouring ``SOURCE_DATE_EPOCH`` like systemd does.

Deferred: ``--root``, ``--replace``, ``--inline``, ``--cat-config``, ``--dry-run``, specifiers
(``%``), ids given as file paths, ``m`` lines whose user or group is not defined anywhere.
"""

from __future__ import annotations

import shlex

from nuwa.script.commands import _args
from nuwa.script.commands.accounts.db import Accounts, all_or_nothing, take_locks, today
from nuwa.script.context import Defer, Invocation

DIRS = ["/etc/sysusers.d", "/run/sysusers.d", "/usr/local/lib/sysusers.d", "/usr/lib/sysusers.d"]
NOLOGIN = "/usr/sbin/nologin"


def config_files(inv: Invocation, names: list[str], missing: list[str] | None = None) -> list[str]:
    """The files systemd-sysusers reads for ``names`` (or all of them); absent names go to ``missing``."""
    if names:
        out = []
        for n in names:
            if "/" in n:
                if inv.fs.exists(inv.path(n)):
                    out.append(inv.path(n))
                elif missing is not None:
                    missing.append(n)
                continue
            for d in DIRS:
                if inv.fs.exists(f"{d}/{n}"):
                    out.append(f"{d}/{n}")
                    break
            else:
                if missing is not None:
                    missing.append(n)
        return out
    chosen: dict[str, str] = {}
    for d in DIRS:
        try:
            for n in inv.fs.readdir(d):
                if n.endswith(".conf") and n not in chosen:
                    chosen[n] = f"{d}/{n}"
        except OSError:
            continue
    return [chosen[n] for n in sorted(chosen)]


class Item:
    def __init__(self, kind: str, name: str):
        self.kind, self.name = kind, name
        self.uid = self.gid = None
        self.group_name = None
        self.gecos = self.home = self.shell = None
        self.strict = False


def parse_config(inv: Invocation, path: str, text: str):
    """Yield (type, fields) of each line (``-`` stays ``-``)."""
    for n, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if "%" in s:
            raise Defer(f"systemd-sysusers: specifiers in {path}:{n}")
        try:
            f = shlex.split(s)
        except ValueError:
            raise Defer(f"systemd-sysusers: unparsable line {path}:{n}") from None
        yield f[0], (f[1:] + ["-"] * 6)[:5]


@all_or_nothing
def sysusers(inv: Invocation) -> int:
    """``systemd-sysusers [CONFIG...]``."""
    try:
        opts, ops = _args.parse(inv, _args.spec("h", {"root": ("root", 1), "image": ("image", 1),
                                                      "replace": ("replace", 1), "inline": ("inline", 0),
                                                      "cat-config": ("cat", 0), "dry-run": ("dry", 0),
                                                      "tldr": ("tldr", 0), "no-pager": ("nopager", 0),
                                                      "help": "h", "version": ("version", 0)}))
    except _args.UsageError as e:
        raise Defer(f"systemd-sysusers: usage error ({e.text})") from None
    for k, v in opts:
        if k == "root" and v in ("", "/"):
            continue
        if k != "nopager":
            raise Defer(f"systemd-sysusers --{k} is not modelled")
    groups: dict[str, Item] = {}
    users: dict[str, Item] = {}
    members: list[tuple[str, str]] = []
    ranges: list[tuple[int, int]] = []
    missing: list[str] = []
    files = config_files(inv, ops, missing)
    if missing:
        # the first is reported ("ignoring", though reading stops there) and nothing is created
        inv.err(f"Failed to open '{missing[0]}', ignoring: No such file or directory\n")
        return 1
    for path in files:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
        for kind, (name, ident, gecos, home, shell) in parse_config(inv, path, text):
            if kind == "r":
                lo, _, hi = ident.partition("-")
                ranges.append((int(lo), int(hi or lo)))
            elif kind == "m":
                members.append((name, ident))
            elif kind == "g":
                if name in groups:
                    continue
                it = Item("g", name)
                if ident != "-":
                    if not ident.isdigit():
                        raise Defer(f"systemd-sysusers: group id {ident!r} from a path")
                    it.gid = int(ident)
                groups[name] = it
            elif kind == "u":
                if name in users:
                    continue
                it = Item("u", name)
                uid, _, grp = ident.partition(":")
                if uid not in ("-", ""):
                    if not uid.isdigit():
                        raise Defer(f"systemd-sysusers: user id {uid!r} from a path")
                    it.uid = int(uid)
                if grp:
                    if grp.isdigit():
                        it.gid = int(grp)
                    else:
                        it.group_name = grp
                    it.strict = True
                elif it.uid is not None:
                    it.gid = it.uid  # "u name 123" asks for gid 123 too
                it.gecos = None if gecos == "-" else gecos
                it.home = None if home == "-" else home
                it.shell = None if shell == "-" else shell
                users[name] = it
            else:
                raise Defer(f"systemd-sysusers: line type {kind!r} is not modelled")
    db = Accounts(inv.fs)
    if not all(f.exists for f in (db.passwd, db.group, db.shadow, db.gshadow)) and (groups or users or members):
        raise Defer("systemd-sysusers: an account file is missing (the real tool would create it)")
    return _apply(inv, db, groups, users, members, ranges or [(1, 999)])


def _apply(inv, db, groups, users, members, ranges) -> int:
    used_uids = set(db.passwd.ids())
    used_gids = set(db.group.ids())
    uid_names = {int(f[2]): f[0] for f in db.passwd.entries()}
    gid_names = {int(f[2]): f[0] for f in db.group.entries()}
    new_groups: list[tuple[str, int]] = []
    new_users: list[tuple[Item, int, int]] = []
    cursor = {"u": None, "g": None}
    ids = sorted({i for lo, hi in ranges for i in range(lo, hi + 1)}, reverse=True)

    def uid_ok(uid: int, name: str, with_gid: bool) -> bool:
        if uid in used_uids:
            return False
        if with_gid and uid in used_gids and gid_names.get(uid) != name:
            return False
        return True

    def gid_ok(gid: int, name: str, with_uid: bool) -> bool:
        if gid in used_gids:
            return False
        if with_uid and gid in used_uids and uid_names.get(gid) != name:
            return False
        return True

    def search(kind: str, ok) -> int:
        start = cursor[kind]
        for i in ids:
            if start is not None and i >= start:
                continue
            if ok(i):
                cursor[kind] = i
                return i
            cursor[kind] = i
        raise Defer("systemd-sysusers: no free id in the ranges (the error text is not modelled)")

    def add_group(name: str, gid: int | None, uid_hint: int | None) -> int:
        g = db.grp(name)
        if g is not None:
            return int(g[2])
        done = next((x for n, x in new_groups if n == name), None)
        if done is not None:
            return done
        pick = None
        if gid is not None:
            if gid_ok(gid, name, False):
                pick = gid
            else:
                inv.err(f"Suggested group ID {gid} for {name} already used.\n")
        if pick is None and uid_hint is not None and gid_ok(uid_hint, name, False):
            pick = uid_hint
        if pick is None:
            pick = search("g", lambda i: gid_ok(i, name, True))
        used_gids.add(pick)
        gid_names[pick] = name
        new_groups.append((name, pick))
        inv.err(f"Creating group '{name}' with GID {pick}.\n")
        return pick

    for g in groups.values():
        add_group(g.name, g.gid, None)
    for u in users.values():
        try_gid = True
        if u.group_name is not None:
            try_gid = False
            gr = db.grp(u.group_name)
            gid = int(gr[2]) if gr else next((x for n, x in new_groups if n == u.group_name), None)
            if gid is None:
                raise Defer(f"systemd-sysusers: group {u.group_name} of user {u.name} not found")
            u.strict = True
        elif u.name in groups and u.gid is None:
            gid = add_group(u.name, None, None)
            u.strict = True
        else:
            gid = add_group(u.name, None, u.uid) if not u.strict else u.gid
        pw = db.user(u.name)
        if pw is not None:
            continue
        pick = None
        if u.uid is not None:
            if uid_ok(u.uid, u.name, not u.strict):
                pick = u.uid
            else:
                inv.err(f"Suggested user ID {u.uid} for {u.name} already used.\n")
        if pick is None and try_gid and gid is not None and uid_ok(gid, u.name, not u.strict):
            pick = gid
        if pick is None:
            pick = search("u", lambda i: uid_ok(i, u.name, True))
        used_uids.add(pick)
        uid_names[pick] = u.name
        new_users.append((u, pick, gid))
        inv.err(f"Creating user '{u.name}' ({u.gecos or 'n/a'}) with UID {pick} and GID {gid}.\n")
    for user, group in members:
        if db.user(user) is None and user not in users or db.grp(group) is None and group not in groups:
            raise Defer("systemd-sysusers: an m line implicitly creating accounts is not modelled")
    _write(inv, db, new_groups, new_users, members)
    return 0


def _write(inv, db, new_groups, new_users, members) -> None:
    day = today(inv.env)
    add: dict[str, list[str]] = {}
    for user, group in members:
        add.setdefault(group, [])
        if user not in add[group]:
            add[group].append(user)
    for af in (db.group, db.gshadow):
        if not af.exists:
            continue
        for e in af.entries():
            extra = [m for m in add.get(e[0], []) if m not in e[3].split(",")]
            if extra and e[0] not in dict(new_groups):
                af.put(e[:3] + [",".join([m for m in e[3].split(",") if m] + extra)])
    for name, gid in new_groups:
        mem = ",".join(add.get(name, []))
        db.group.put([name, "x", str(gid), mem])
        if db.gshadow.exists:
            db.gshadow.put([name, "!*", "", mem])
    for u, uid, gid in new_users:
        shell = u.shell or ("/bin/sh" if uid == 0 else NOLOGIN)
        db.passwd.put([u.name, "x", str(uid), str(gid), u.gecos or "", u.home or "/", shell])
        if db.shadow.exists:
            db.shadow.put([u.name, "!*", str(day), "", "", "", "", "", ""])
    changed = [f for f in db.files.values() if f.changed and f.exists]
    if changed:
        take_locks(inv.fs, [])
        for p in ("/etc/group", "/etc/gshadow", "/etc/passwd", "/etc/shadow"):
            db.files[p].save(inv.fs)
