"""``setpriv`` (util-linux 2.38.1, ``sys-utils/setpriv.c``): run a program with other
credentials. man-db's postinst builds the manual page index as the ``man`` user with
``setpriv --reuid man --regid man --init-groups -- /usr/bin/mandb -cq``.

The model parses the options as setpriv does (glibc ``getopt_long`` with ``+dhV``: the first
operand ends the options; glibc's own messages with ``argv[0]``, then util-linux's "Try
'setpriv --help'" line; status 1), with its checks in its order: the mutually exclusive group
options, duplicates, users and groups by name then by number (``strtol``: leading blanks, a
sign; ``failed to parse reuid: 'x'``), "No program specified", ``--[re]gid`` without a group
option, ``--init-groups`` without ``--ruid``/``--reuid`` or with a uid that has no passwd
entry. ``--reset-env`` makes setpriv's environment: ``TERM`` kept, ``SHELL`` (the user's, or
``/bin/sh``), ``HOME``, ``USER``, ``LOGNAME``, and ``PATH`` (``/usr/local/bin:/bin:/usr/bin``,
root's ``/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin``). ``--nnp`` changes
nothing a model sees (the models never raise privileges through set-id files).

Then the program is looked up as ``execvp`` does, still with root's rights (setpriv keeps its
capabilities until the ``execve``; a regular file with an execute bit, else ``failed to execute
X: Permission denied``, 126, or ``No such file or directory``, 127), and run through the
interpreter (``inv.run``) on the filesystem as the user sees it (``credfs.UserView``), reading
setpriv's own standard input.
A deferral inside defers the whole ``setpriv`` (nothing is written), as for ``su``.

Credentials are modelled when they are a login's: one uid (``--reuid``, or ``--ruid`` and
``--euid`` equal), the user's primary group (``--regid``, or ``--rgid`` and ``--egid``), and the
supplementary groups ``initgroups`` gives (``--init-groups``; ``--clear-groups`` or ``--groups``
when they come to the same list), because that is what ``id``, ``groups`` and the permission
checks answer for; a program run without any credential option keeps the caller's. Deferred
with the reason: other credentials (a real uid other than the effective one keeps root's
rights; the caller's gid 0 or its unknown supplementary groups kept), ``--keep-groups``,
capabilities, securebits, ``--pdeathsig``, SELinux and AppArmor labels, ``--dump``,
``--list-caps``, ``--help``, ``--version``, setpriv run by a user other than root, a uid or gid
out of range, a name not in the image's files while NSS names a network source.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB
from nuwa.script.commands.loginutils.credfs import Credentials, UserView
from nuwa.script.context import Defer, Invocation

_R = _args.REQ
#: setpriv's ``longopts`` in its order (glibc lists ambiguous candidates in this order)
_SPEC = _args.spec("dhV", {
    "dump": "d", "nnp": ("nnp", _args.NO), "no-new-privs": ("nnp", _args.NO), "inh-caps": ("inh-caps", _R),
    "ambient-caps": ("ambient-caps", _R), "list-caps": ("list-caps", _args.NO), "ruid": ("ruid", _R),
    "euid": ("euid", _R), "rgid": ("rgid", _R), "egid": ("egid", _R), "reuid": ("reuid", _R),
    "regid": ("regid", _R), "clear-groups": ("clear-groups", _args.NO), "keep-groups": ("keep-groups", _args.NO),
    "init-groups": ("init-groups", _args.NO), "groups": ("groups", _R), "bounding-set": ("bounding-set", _R),
    "securebits": ("securebits", _R), "pdeathsig": ("pdeathsig", _R), "selinux-label": ("selinux-label", _R),
    "apparmor-profile": ("apparmor-profile", _R), "help": "h", "reset-env": ("reset-env", _args.NO),
    "version": "V",
}, in_order=True)

#: ``excl[]``: at most one of these
_GROUP_OPTS = ("clear-groups", "keep-groups", "init-groups", "groups")
#: what the running process or kernel decides, or texts of another version
_DEFERRED = {
    "d": "--dump shows the running process's state", "list-caps": "--list-caps lists the running kernel's",
    "h": "--help", "V": "--version", "keep-groups": "--keep-groups keeps the supplementary groups of "
    "the process that runs dpkg", "inh-caps": "capabilities", "ambient-caps": "capabilities",
    "bounding-set": "capabilities", "securebits": "securebits", "pdeathsig": "--pdeathsig",
    "selinux-label": "an SELinux label", "apparmor-profile": "an AppArmor profile",
}
_DEFPATH = "/usr/local/bin:/bin:/usr/bin"
_DEFPATH_ROOT = "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
_NETWORK_FREE = {"files", "compat", "systemd", "cache", "altfiles"}


class _Fail(Exception):
    """``errx``/``err``: the message after ``setpriv: `` and the status."""

    def __init__(self, text: str, status: int = 1):
        super().__init__(text)
        self.text, self.status = text, status


def _strtol(s: str, what: str) -> int:
    """``strtol_or_err(s, what)`` (base 10: blanks, a sign, digits, nothing after)."""
    m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", s)
    if not m:
        raise _Fail(f"{what}: '{s}'")
    n = int(m.group(1))
    if not -2**63 <= n < 2**63:
        raise _Fail(f"{what}: '{s}': {os.strerror(errno.ERANGE)}")
    if not 0 <= n < 2**32 - 1:
        raise Defer(f"setpriv: id {s!r} (a negative or truncated id: -1 leaves the id as it is)")
    return n


class _Ids:
    """The image's passwd and group files as setpriv's NSS lookups see them."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.db = UserDB(inv)

    def _network(self, database: str) -> bool:
        try:
            text = self.inv.fs.read_bytes("/etc/nsswitch.conf").decode("utf-8", "replace")
        except (OSError, ValueError):
            return False
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key.strip() == database:
                return any(w not in _NETWORK_FREE and not w.startswith("[") for w in rest.split("#")[0].split())
        return False

    def user(self, s: str, what: str) -> tuple[int, list[str] | None]:
        """``get_passwd``: (uid, passwd entry or None)."""
        ent = self.db.user(s)
        if ent is not None and len(ent) > 6 and ent[2].isdigit():
            return int(ent[2]), ent
        if self._network("passwd"):
            raise Defer(f"setpriv: user {s} may come from a network directory")
        uid = _strtol(s, what)
        ent = self.db.user_by_uid(uid)
        return uid, ent if ent is not None and len(ent) > 6 else None

    def group(self, s: str, what: str) -> int:
        """``get_group``."""
        ent = self.db.grp(s)
        if ent is not None and len(ent) > 2 and ent[2].isdigit():
            return int(ent[2])
        if self._network("group"):
            raise Defer(f"setpriv: group {s} may come from a network directory")
        return _strtol(s, what)


def setpriv(inv: Invocation) -> int:
    """``setpriv [options] PROGRAM [ARG...]``: mirrors util-linux 2.38.1's ``main``; see the
    module note."""
    try:
        return _setpriv(inv)
    except _Fail as e:
        inv.err(f"{posixpath.basename(inv.argv[0])}: {e.text}\n")
        return e.status


def _setpriv(inv: Invocation) -> int:
    caller = getattr(inv.fs, "creds", None)
    if caller is not None and caller.uid != 0:
        raise Defer(f"setpriv run as {caller.user} (setting ids needs root)")
    ids = _Ids(inv)
    o: dict[str, object] = {}
    group_opt = None
    deferred = ""
    operands: list[str] = []
    for ev in _args.events(inv, _SPEC, in_order=True, unknown_is_error=True):
        if ev[0] == "error":
            inv.err(f"{inv.argv[0]}: {ev[1].text}\n")
            inv.err(f"Try '{posixpath.basename(inv.argv[0])} --help' for more information.\n")
            return 1
        if ev[0] == "operands":
            operands = ev[1]
            break
        key, value = ev[1], ev[2]
        if key in _GROUP_OPTS:
            if group_opt is not None and group_opt != key:
                raise _Fail("mutually exclusive arguments: " + " ".join(f"--{g}" for g in _GROUP_OPTS))
            group_opt = key
        if key in ("h", "V"):
            raise Defer(f"setpriv: {_DEFERRED[key]} (not modelled)")  # setpriv prints and exits here
        if key in _DEFERRED:
            deferred = deferred or _DEFERRED[key]  # later options may still fail, as setpriv's do
            continue
        _option(o, ids, key, value)
    if deferred:
        raise Defer(f"setpriv: {deferred} (not modelled)")
    if not operands:
        raise _Fail("No program specified")
    groups_opt = {k for k in ("clear-groups", "init-groups", "groups") if k in o}
    if ("rgid" in o or "egid" in o) and not groups_opt:
        raise _Fail("--[re]gid requires --keep-groups, --clear-groups, --init-groups, or --groups")
    if "init-groups" in o and "ruid" not in o:
        raise _Fail("--init-groups requires --ruid or --reuid")
    if "init-groups" in o and o.get("passwd") is None:
        raise _Fail(f"uid {o['ruid']} not found, --init-groups requires an user that can be found on the system")
    env = dict(inv.env)
    if "reset-env" in o:
        env = _reset_env(inv, ids, o)
    view = _credentials(inv, ids, o)
    return _exec(inv, operands, env, view)


def _option(o: dict, ids: _Ids, key: str, value) -> None:
    """One option, as the ``switch`` of setpriv's ``main`` takes it."""
    if key == "nnp":
        if "nnp" in o:
            raise _Fail("duplicate --no-new-privs option")
        o["nnp"] = True
    elif key in ("ruid", "reuid"):
        if "ruid" in o or (key == "reuid" and "euid" in o):
            raise _Fail("duplicate ruid" if key == "ruid" else "duplicate ruid or euid")
        uid, ent = ids.user(value, f"failed to parse {key}")
        o["ruid"], o["passwd"] = uid, ent
        if key == "reuid":
            o["euid"] = uid
    elif key == "euid":
        if "euid" in o:
            raise _Fail("duplicate euid")
        o["euid"] = ids.user(value, "failed to parse euid")[0]
    elif key in ("rgid", "egid"):
        if key in o:
            raise _Fail(f"duplicate {key}")
        o[key] = ids.group(value, f"failed to parse {key}")
    elif key == "regid":
        if "rgid" in o or "egid" in o:
            raise _Fail("duplicate rgid or egid")
        o["rgid"] = o["egid"] = ids.group(value, "failed to parse regid")
    elif key in ("clear-groups", "init-groups"):
        if key in o:
            raise _Fail(f"duplicate --{key} option")
        o[key] = True
    elif key == "groups":
        if "groups" in o:
            raise _Fail("duplicate --groups option")
        o["groups"] = [ids.group(g, "Invalid supplementary group id") for g in value.split(",")]
    elif key == "reset-env":
        o["reset-env"] = True


def _reset_env(inv: Invocation, ids: _Ids, o: dict) -> dict[str, str]:
    """``do_reset_environ`` for the ``--ruid`` user's entry, else the caller's (root's)."""
    ent = o.get("passwd") or ids.db.user_by_uid(0)
    if ent is None or len(ent) < 7:
        raise Defer("setpriv --reset-env without a passwd entry for root (setpriv crashes)")
    env = {"TERM": inv.env["TERM"]} if "TERM" in inv.env else {}
    env["SHELL"] = ent[6] or "/bin/sh"
    env.update(HOME=ent[5], USER=ent[0], LOGNAME=ent[0])
    env["PATH"] = _DEFPATH if ent[2] != "0" else _DEFPATH_ROOT
    return env


def _credentials(inv: Invocation, ids: _Ids, o: dict):
    """The filesystem as the program sees it: ``inv.fs`` when setpriv changes no credential,
    a :class:`UserView` for a login's credentials; anything else defers."""
    if not ({"ruid", "euid", "rgid", "egid"} & o.keys() or {"clear-groups", "init-groups", "groups"} & o.keys()):
        return inv.fs
    ruid, euid = o.get("ruid", 0), o.get("euid", 0)
    rgid, egid = o.get("rgid", 0), o.get("egid", 0)
    if ruid != euid or rgid != egid:
        raise Defer(f"setpriv: real and effective ids differ (uid {ruid}/{euid}, gid {rgid}/{egid})")
    ent = ids.db.user_by_uid(euid)
    if ent is None or not ent[3].isdigit():
        raise Defer(f"setpriv: uid {euid} has no passwd entry (what id and groups answer is not modelled)")
    name, pw_gid = ent[0], int(ent[3])
    login = list(dict.fromkeys([pw_gid] + ids.db.groups_of(name)))
    if "init-groups" in o:
        supplementary = login  # initgroups(name, pw_gid): the primary group, then memberships
    elif "groups" in o:
        supplementary = list(o["groups"])
    elif "clear-groups" in o:
        supplementary = []
    else:
        raise Defer("setpriv: the caller's supplementary groups are kept (those of the process that runs dpkg)")
    groups = list(dict.fromkeys([egid] + supplementary))
    if egid != pw_gid or groups != login:
        raise Defer(f"setpriv: uid {euid} with gid {egid} and groups {groups} are not {name}'s login "
                    f"credentials (gid {pw_gid}, groups {login}), which id and groups answer for")
    if euid == 0:
        return inv.fs
    return UserView(inv.fs, Credentials(euid, egid, tuple(groups), name))


def _exec(inv: Invocation, argv: list[str], env: dict[str, str], view) -> int:
    """``execvp(argv[0], argv)``, then the program's model or script as the new user.

    setpriv keeps its capabilities across ``setresuid`` (``PR_SET_KEEPCAPS``, then "reactivate
    capabilities"), so the search and the ``execve`` permission checks are root's; only the
    program, whose ``execve`` recomputes the capabilities, runs with none."""
    name = argv[0]
    found, denied = _lookup(inv, inv.fs, name, env)
    if found is None:
        why, status = (os.strerror(errno.EACCES), 126) if denied else (os.strerror(errno.ENOENT), 127)
        raise _Fail(f"failed to execute {name}: {why}", status)
    if view is not inv.fs and _lookup(inv, view, name, env)[0] != found:
        raise Defer(f"setpriv: {found} is found with root's rights, but the shell's lookup as the user differs")
    if inv.run is None:
        raise Defer("setpriv: no way to run a program here")
    # setpriv execs the program: it reads setpriv's own standard input, live
    stdin = inv.stdin_fd if inv.stdin_fd is not None else inv.stdin
    status, out, err = inv.run(argv, stdin, env, inv.cwd, view if view is not inv.fs else None)
    inv.out(out)
    inv.err(err)
    return status


def _lookup(inv: Invocation, fs, name: str, env: dict[str, str]) -> tuple[str | None, bool]:
    """execvp's search on ``fs``: (the path, None) or (None, whether EACCES was met): a
    candidate that is not a regular file with an execute bit is EACCES for root's execve."""
    if "/" in name:
        cands = [name]
    else:
        cands = [posixpath.join(d or ".", name) for d in env.get("PATH", "/bin:/usr/bin").split(":")]
    denied = False
    for cand in cands:
        try:
            st = fs.stat(inv.path(cand))
        except OSError as e:
            denied = denied or e.errno == errno.EACCES
            continue
        if _stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return cand, denied
        denied = True
    return None, denied
