"""Models of id and getent, answered from the image's account files, plus sync, sleep, uname.

Maintainer scripts run as root, so the simulated process is uid 0, gid 0 -- except under
``su``/``runuser``, whose filesystem view carries the user's credentials (``inv.fs.creds``). Lookups use the
image's /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow (NSS ``files``); the
image's nsswitch.conf is walked source by source with its actions as glibc does: ``sss`` answers
as on a dormant image (sssd not running: UNAVAIL); any other network source (ldap, nis...) that
the walk reaches depends on the network, so the invocation is deferred.
The hosts databases (``hosts``, ``ahosts``, ``ahostsv4``, ``ahostsv6``) follow the hosts line of
nsswitch.conf source by source: :mod:`.gethosts`.
"""

from __future__ import annotations

from nuwa.deb.arch import image_machine
from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB, err, quote
from nuwa.script.commands.coreutils import gethosts, nssconf
from nuwa.script.commands.linuxbase.linux_base import image_list, version_cmp
from nuwa.script.context import Defer, Invocation

#: sources answered from the image's files alone (or, for systemd, adding only what a running
#: system knows): a key the files do not hold is NOTFOUND there
_LOCAL = {"files", "compat", "systemd", "cache", "altfiles"}
#: sssd's client reads its memory cache here before asking the daemon
SSS_MEMCACHE = "/var/lib/sss/mc"


def _sss_status(inv: Invocation, db: str) -> str:
    """What libnss_sss answers on a dormant image: sssd is not running, so its socket does not
    answer and the client returns UNAVAIL (``sss_nss_make_request_timeout``: the failed
    ``sss_cli_check_socket``; with ``_SSS_LOOPS=NO`` it returns NOTFOUND before that; without
    the module glibc counts UNAVAIL too). A memory cache left in the image would be read first
    (``sss_nss_mc_get*``): deferred then."""
    if inv.env.get("_SSS_LOOPS") == "NO":
        return nssconf.NOTFOUND
    if db in ("passwd", "group") and inv.fs.exists(f"{SSS_MEMCACHE}/{db}"):
        raise Defer(f"getent {db}: sssd's memory cache {SSS_MEMCACHE}/{db} is in the image and would answer")
    return nssconf.UNAVAIL


def nss_walk(inv: Invocation, db: str, hit: bool, what: str) -> bool:
    """glibc's walk of ``db``'s sources (``__nss_lookup``/``nss_next_action``) for a key the
    image's files hold (``hit``) or not: whether the lookup succeeds. Local sources answer from
    the files, ``sss`` as a dormant image answers (:func:`_sss_status`); any other source (a
    network directory) defers, as does a walk that goes on after a success (``merge``,
    ``SUCCESS=continue``)."""
    for name, acts in nssconf.database_services(inv, db, b"files"):
        if name in _LOCAL:
            status = nssconf.SUCCESS if hit and name in ("files", "compat") else nssconf.NOTFOUND
        elif name == "sss":
            status = _sss_status(inv, db)
        else:
            raise Defer(f"{what}: may be answered by a network directory ({name})")
        action = acts[status]
        if action == "merge" or (status == nssconf.SUCCESS and action != "return"):
            raise Defer(f"{what}: nsswitch.conf's {status}={action} for {name} is not modelled")
        if action == "return":
            return status == nssconf.SUCCESS
    return False


def nss_enumerates_files(inv: Invocation, db: str) -> bool:
    """Whether ``getent DB`` (``set*ent``/``get*ent`` over every source) lists the files and
    nothing else: ``files`` reached before any ``return`` action, other sources empty (local
    ones) or unavailable (``sss`` on a dormant image). A network directory defers."""
    listed = False
    for name, acts in nssconf.database_services(inv, db, b"files"):
        if name in _LOCAL:
            listed = listed or name in ("files", "compat")
            status = nssconf.NOTFOUND  # the end of the entries
        elif name == "sss":
            status = _sss_status(inv, db)
        else:
            raise Defer(f"getent {db}: the network directory would be enumerated too ({name})")
        if acts[status] != "continue":
            if acts[status] == "merge":
                raise Defer(f"getent {db}: nsswitch.conf's merge action is not modelled")
            break
    return listed


# ---- id ----------------------------------------------------------------------------------------

_ID = _args.spec("ugGnrza", {"user": "u", "group": "g", "groups": "G", "name": "n", "real": "r", "zero": "z"})


def id_cmd(inv: Invocation) -> int:
    """``id [-u|-g|-G] [-n] [-r] [USER]`` (the simulated process is root)."""
    try:
        opts, ops = _args.parse(inv, _ID)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = [k for k, _ in opts]
    want = [k for k in keys if k in "ugG"]
    names, zero = "n" in keys, "z" in keys
    if len(set(want)) > 1:
        err(inv, "cannot print \"only\" of more than one choice")
        return 1
    if names and not want:
        err(inv, "cannot print only names or real IDs in default format")
        return 1
    db = UserDB(inv)
    status = 0
    for name in ops or [None]:
        status |= _id_one(inv, db, name, want, names, zero)
    return status


def _id_one(inv: Invocation, db: UserDB, name: str | None, want: list[str], names: bool, zero: bool) -> int:
    if name is not None:
        ent = db.user(name)
        if ent is None and name.isdigit():
            ent = db.user_by_uid(int(name))
        if ent is None:
            nss_walk(inv, "passwd", False, "id: the user")  # a network directory defers; sss is down
            err(inv, f"{quote(name)}: no such user")
            return 1
        uid, gid, uname = int(ent[2]), int(ent[3]), ent[0]
    else:
        creds = getattr(inv.fs, "creds", None)  # a command run by su/runuser as another user
        uid, gid = (creds.uid, creds.gid) if creds is not None else (0, 0)
        ent = db.user_by_uid(uid)
        uname = ent[0] if ent else None
    groups = [gid] + [g for g in (db.groups_of(uname) if uname else []) if g != gid]
    status = 0

    def uname_of(u: int) -> str:
        nonlocal status
        n = db.user_name(u)
        if n is None:
            err(inv, f"cannot find name for user ID {u}")
            status = 1
            return str(u)
        return n

    def gname_of(g: int) -> str:
        nonlocal status
        n = db.group_name(g)
        if n is None:
            err(inv, f"cannot find name for group ID {g}")
            status = 1
            return str(g)
        return n

    end = "\0" if zero else "\n"
    if want == ["u"] or (want and want[0] == "u"):
        inv.out((uname_of(uid) if names else str(uid)) + end)
    elif want and want[0] == "g":
        inv.out((gname_of(gid) if names else str(gid)) + end)
    elif want and want[0] == "G":
        inv.out(("\0" if zero else " ").join(gname_of(g) if names else str(g) for g in groups) + end)
    else:
        def fmt(kind: str, n: int, name: str | None) -> str:
            return f"{n}({name})" if name is not None else str(n)
        line = f"uid={fmt('u', uid, db.user_name(uid))} gid={fmt('g', gid, db.group_name(gid))}"
        line += " groups=" + ",".join(fmt("g", g, db.group_name(g)) for g in groups)
        inv.out(line + "\n")
    return status


# ---- getent ------------------------------------------------------------------------------------

def getent(inv: Invocation) -> int:
    """``getent passwd|group|shadow|gshadow [KEY...]`` from the image's files; the hosts
    databases through :func:`gethosts.hosts`."""
    try:
        opts, ops = _args.parse(inv, _args.spec("s:iA", {"service": "s", "no-idn": "i", "no-addrconfig": "A"}))
    except _args.UsageError as e:
        return _args.usage(inv, e)
    service = None
    for k, v in opts:
        if k == "s":
            service = _hosts_service(v, service)
    if not ops:
        inv.err(f"{inv.argv[0]}: wrong number of arguments\n")
        inv.out(f"Try `{inv.argv[0]} --help' or `{inv.argv[0]} --usage' for more information.\n")
        return 1
    dbname, keys = ops[0], ops[1:]
    files = {"passwd": ("/etc/passwd", 7, 2), "group": ("/etc/group", 4, 2), "shadow": ("/etc/shadow", 9, None),
             "gshadow": ("/etc/gshadow", 4, None)}
    if dbname in ("hosts", "ahosts", "ahostsv4", "ahostsv6"):
        return gethosts.hosts(inv, dbname, keys, addrconfig=("A", None) not in opts, service=service)
    if any(k == "s" for k, _ in opts):
        raise Defer("getent -s")
    if dbname not in files:
        if dbname in ("services", "protocols", "networks", "ethers", "netgroup", "aliases", "rpc", "initgroups"):
            raise Defer(f"getent {dbname}")
        inv.err(f"Unknown database: {dbname}\n")
        inv.out(f"Try `{inv.argv[0]} --help' or `{inv.argv[0]} --usage' for more information.\n")
        return 1
    path, nfields, id_field = files[dbname]
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except OSError:
        text = ""
    rows = []
    for line in text.split("\n"):
        if not line or line.startswith("#") or line[0] in "+-":
            continue
        f = line.split(":")
        if len(f) < nfields - (1 if dbname == "shadow" else 0):
            continue
        f = (f + [""] * nfields)[:nfields]
        rows.append(f)
    if not keys:
        if nss_enumerates_files(inv, dbname):
            for f in rows:
                inv.out(":".join(f) + "\n")
        return 0
    status = 0
    for key in keys:
        hit = None
        for f in rows:
            if f[0] == key:
                hit = f
                break
        if hit is None and id_field is not None and key.isdigit():
            for f in rows:
                if f[id_field] == key:
                    hit = f
                    break
        if not nss_walk(inv, dbname, hit is not None, f"getent {dbname} {key}"):
            status = 2
            continue
        inv.out(":".join(hit) + "\n")
    return status


def _hosts_service(arg: str, current: str | None) -> str | None:
    """``-s CONFIG``: glibc's ``parse_option`` sets every database (no ``DB:``) or the one named;
    only the hosts line matters to :func:`gethosts.hosts` (the other databases defer on -s)."""
    db, colon, _line = arg.partition(":")
    if not colon:
        return arg
    if db in ("aliases", "ethers", "group", "gshadow", "initgroups", "netgroup", "networks", "passwd", "protocols",
              "rpc", "services", "shadow"):
        return current
    raise Defer("getent -s DB:CONFIG for the hosts databases (glibc matches DB by prefix)")


# ---- sync / sleep / uname ----------------------------------------------------------------------

def sync(inv: Invocation) -> int:
    """``sync``: the overlay commits in one ordered flush anyway; nothing to do."""
    return 0


def sleep(inv: Invocation) -> int:
    """``sleep N``: time does not pass in the simulation (the argument is still validated)."""
    import re
    ops = inv.argv[1:]
    if not ops:
        return _args.missing(inv)
    for a in ops:
        if not re.fullmatch(r"(\d+\.?\d*|\.\d+)[smhd]?|inf(inity)?", a):
            err(inv, f"invalid time interval {quote(a)}")
            inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
            return 1
    return 0


def uname(inv: Invocation) -> int:
    """``uname [-snrmpio]`` (coreutils 9.1) answered for the image as it will boot.

    ``-r`` is the release of the newest kernel installed in the image: the ``/boot/vmlinu[xz]-*``
    versions (linux-base's ``image_list``) ordered by ``DebianLinux::version_cmp``, the one
    ``/vmlinuz`` points at after ``linux-update-symlinks`` and the one GRUB boots by default.
    A script that asks is about to run on that kernel at the next boot; the kernel running when
    the image was last up is unknowable offline. No kernel in the image (a container image,
    booted by someone else's kernel) defers. ``-p``/``-i`` are "unknown" on Linux; ``-v`` (the
    kernel's build banner) and ``-a`` (which holds it) are deferred.
    """
    try:
        opts, ops = _args.parse(inv, _args.spec("asnrvmpio", {
            "all": "a", "kernel-name": "s", "nodename": "n", "kernel-release": "r", "kernel-version": "v",
            "machine": "m", "processor": "p", "hardware-platform": "i", "operating-system": "o"}))
    except _args.UsageError as e:
        return _args.usage(inv, e)
    if ops:
        err(inv, f"extra operand {quote(ops[0])}")
        inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
        return 1
    keys = [k for k, _ in opts] or ["s"]
    if set(keys) & set("av"):
        raise Defer("uname -v/-a: the kernel's build banner is known only once it runs")
    out = []
    for k in "snrmpio":
        if k not in keys:
            continue
        if k == "s":
            out.append("Linux")
        elif k == "o":
            out.append("GNU/Linux")
        elif k in "pi":
            out.append("unknown")
        elif k == "r":
            out.append(newest_kernel(inv))
        elif k == "n":
            try:
                out.append(inv.fs.read_bytes("/etc/hostname").decode().split()[0])
            except (OSError, ValueError, IndexError):
                raise Defer("uname -n: no /etc/hostname in the image") from None
        elif k == "m":
            out.append(_machine_name(inv, "uname -m"))
    inv.out(" ".join(out) + "\n")
    return 0


def newest_kernel(inv: Invocation) -> str:
    """The release of the newest kernel image in ``/boot`` (see :func:`uname`); defers if none."""
    best = None
    for version, _path in image_list(inv):
        if best is None or version_cmp(version, best) > 0:
            best = version
    if best is None:
        raise Defer("uname -r: no kernel installed in the image's /boot (the booting kernel is not the image's)")
    return best


def _machine_name(inv: Invocation, what: str) -> str:
    """``uname -m`` of a kernel running the image's userland natively (its architecture is
    decided from the image by :func:`nuwa.deb.arch.native_architecture`, never the host)."""
    m = image_machine(inv.fs)
    if m is None:
        raise Defer(f"{what}: unknown image architecture")
    return m.uname


def arch_cmd(inv: Invocation) -> int:
    """``arch`` (coreutils): ``uname -m``; it takes no operand."""
    rest = inv.argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    elif rest and rest[0].startswith("-") and rest[0] != "-":
        a = rest[0]
        err(inv, f"unrecognized option {quote(a)}" if a.startswith("--") else f"invalid option -- '{a[1:2]}'")
        inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
        return 1
    if rest:
        err(inv, f"extra operand {quote(rest[0])}")
        inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
        return 1
    inv.out(_machine_name(inv, "arch") + "\n")
    return 0
