"""``groups [USER]...`` (coreutils 9.1): the group names of each USER, or of the process.

clamav-daemon's debconf config asks ``groups "$User"`` for the groups its daemon user is in.
The names come from the image's passwd and group files (``UserDB``), as ``id -Gn`` reads them:
the primary group first, then the supplementary groups in the group file's order, each once.
With operands each line is ``USER : NAMES``; without, the simulated process's groups: root's
primary group alone for dpkg's own process (started by apt or a systemd unit, which set no
supplementary groups; the judge's chroot agrees), a user's groups after ``su``/``runuser``. An unknown user is "no such user" (status
1, the other operands still answered), a group ID without a name is printed as its number with
"cannot find name for group ID N" (status 1). A user only a network directory could know
(nsswitch ``passwd`` with ldap, sss, ...) defers, as for ``id``.
"""

from __future__ import annotations

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB, err, quote
from nuwa.script.commands.coreutils.users import nss_walk
from nuwa.script.context import Defer, Invocation

_SPEC = _args.spec("", {"help": "help", "version": "version"})


def groups(inv: Invocation) -> int:
    """See the module note."""
    events = _args.events(inv, _SPEC, unknown_is_error=True)
    ops: list[str] = []
    for ev in events:
        if ev[0] == "error":
            return _args.usage(inv, ev[1])
        if ev[0] == "opt":
            raise Defer(f"groups --{ev[1]}: the help and version texts are not modelled")
        ops = ev[1]
    db = UserDB(inv)
    status = 0
    for name in ops or [None]:
        if name is None:
            creds = getattr(inv.fs, "creds", None)
            if creds is None:
                # dpkg's process, started by root from apt or a systemd unit: no
                # supplementary groups (initgroups happens only in login, su, runuser)
                uname, gid = None, 0
            else:
                ent = db.user_by_uid(creds.uid)
                uname, gid = (ent[0] if ent else None), creds.gid
        else:
            ent = db.user(name)
            if ent is None:
                nss_walk(inv, "passwd", False, "groups: the user")  # a network directory defers
                err(inv, f"{quote(name)}: no such user")
                status = 1
                continue
            uname, gid = ent[0], int(ent[3])
        ids = [gid] + [g for g in (db.groups_of(uname) if uname else []) if g != gid]
        names = []
        for g in ids:
            n = db.group_name(g)
            if n is None:
                err(inv, f"cannot find name for group ID {g}")
                status = 1
                n = str(g)
            names.append(n)
        inv.out((f"{name} : " if name is not None else "") + " ".join(names) + "\n")
    return status
