"""Model of ``systemd-tmpfiles --create [--prefix=P] [--exclude-prefix=P] [CONFIG...]`` (systemd 252).

What "persistent" means here: a line whose path lies on the image's own filesystem. Lines
for the API and runtime file systems — paths under ``/run``, ``/dev``, ``/proc``, ``/sys``,
or reaching them through a symlink of the image (Debian's ``/var/run`` -> ``/run``,
``/var/lock`` -> ``/run/lock``) — are skipped: those trees are mounted afresh at every boot and
``systemd-tmpfiles-setup.service`` applies every tmpfiles.d line to them then, so creating
them in the dormant image would change nothing the booted system sees. Lines marked ``!``
(boot only) are skipped as the real tool skips them without ``--boot``.

Persistent lines are applied as systemd-tmpfiles applies them:

- ``d D v q Q`` a directory (missing parents 0755), ``f f+`` a file (the argument written
  when created, or always with ``+``), ``p`` a FIFO, ``L L+`` a symlink (target = argument or
  ``/usr/share/factory/PATH``), ``C`` a copy of the argument (or the factory path) when the
  target is missing or an empty directory, ``w w+`` writing to existing files (globs), ``e z Z``
  adjusting existing paths (globs, ``Z`` recursive); then mode (default 0755/0644; ``~``
  masks, ``:`` only on creation) and owner (``:`` only on creation) are set on the created or
  existing path, the owner first. ``x X r R`` do nothing for ``--create``.
- items are applied path by path in the order of their first line, a parent's items before
  its children's, plain paths before globs; duplicate lines for a path keep the first.

``a a+ A A+`` set POSIX ACLs (``tmpfiles_acl``: parsed as the line is read, merged with ``+``,
``A`` recursive, symlinks skipped).

Deferred (first boot): ``--boot``, ``--remove``, ``--clean``, ``--root``, ``--replace``, ``t T
h H c b`` on persistent paths (xattrs, file attributes, device nodes; but an ``h`` line
that only sets or clears ``C`` on an ext2/3/4 root changes nothing and is a no-op, as in
systemd: the kernel refuses the flag there and the tool ignores that), type modifiers
``= ~ ^``, C escapes in arguments, specifiers other than ``%% %S %C %L %t %T %V %h %u %U %g
%G`` (``%b``, ``%m``, ``%H``, ``%v`` and friends describe the running system), and any case
where the real tool would report an error (the model does not reproduce those messages).
"""

from __future__ import annotations

import fnmatch
import posixpath
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands.accounts.db import Accounts, all_or_nothing
from nuwa.script.commands.services import tmpfiles_acl
from nuwa.script.commands.services.systemd_setup import image_machine_id
from nuwa.script.context import Defer, Invocation
from nuwa.script.disklayout import layout_of, mount_of

DIRS = ["/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/local/lib/tmpfiles.d", "/usr/lib/tmpfiles.d"]
RUNTIME = ("/run", "/dev", "/proc", "/sys")
SPECIFIERS = {"%": "%", "S": "/var/lib", "C": "/var/cache", "L": "/var/log", "t": "/run", "T": "/tmp",
              "V": "/var/tmp", "h": "/root", "u": "root", "U": "0", "g": "root", "G": "0"}
GLOB_TYPES = set("wezZxXrRaAtThHm")
#: types that "take ownership" of a path: two different such lines for one path conflict
OWNING = set("fFdDvqQpLcbCwexXrR")


class Missing(Exception):
    """A configuration named on the command line does not exist."""


class Item:
    def __init__(self, kind: str, plus: bool, path: str, mode, user, group, arg: str | None, origin: str):
        self.kind, self.plus, self.path = kind, plus, path
        self.mode, self.user, self.group, self.arg, self.origin = mode, user, group, arg, origin
        #: ``a``/``A`` lines: the (access, default) ACLs parsed from the argument
        self.acl: tuple = (None, None)


def config_files(inv: Invocation, names: list[str]) -> list[str]:
    """The files read for ``names`` (a bare name is searched in the tmpfiles.d directories)."""
    if names:
        out = []
        for n in names:
            if "/" in n:
                if not inv.fs.exists(inv.path(n)):
                    raise Missing(n)
                out.append(inv.path(n))
                continue
            hit = next((f"{d}/{n}" for d in DIRS if inv.fs.exists(f"{d}/{n}")), None)
            if hit is None:
                raise Missing(n)
            out.append(hit)
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


class Unresolved(Exception):
    """A specifier whose value only the running system knows."""


def _specifiers(s: str, machine_id: str | None) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "%" and i + 1 < len(s):
            k = s[i + 1]
            if k == "m" and machine_id:
                out.append(machine_id)
            elif k in SPECIFIERS:
                out.append(SPECIFIERS[k])
            else:
                raise Unresolved(k)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def machine_id(inv: Invocation) -> str | None:
    """``%m``: the image's /etc/machine-id as ``sd_id128_get_machine`` reads it (32 hex digits
    of either case and an optional newline, not all zero), printed in lower case; None when it
    holds none (empty, "uninitialized", missing: the ID is made at boot, and ``%m`` with it)."""
    return image_machine_id(inv)


def _words(s: str, n: int) -> tuple[list[str], str]:
    """``extract_many_words`` with unquoting: the first ``n`` words, then the rest verbatim."""
    words, i = [], 0
    while len(words) < n:
        while i < len(s) and s[i] in " \t":
            i += 1
        if i >= len(s):
            break
        w, q = [], None
        while i < len(s) and (q or s[i] not in " \t"):
            c = s[i]
            if q:
                if c == q:
                    q = None
                else:
                    w.append(c)
            elif c in "\"'":
                q = c
            else:
                w.append(c)
            i += 1
        if q:
            raise ValueError("unbalanced quote")
        words.append("".join(w))
    while i < len(s) and s[i] in " \t":
        i += 1
    return words, s[i:]


def parse_line(line: str, where: str, inv: Invocation | None = None, mid: str | None = None) -> Item | None:
    """One tmpfiles.d(5) line, or None for comments and blank lines."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    try:
        fields, rest = _words(s, 6)
    except ValueError:
        raise Defer(f"systemd-tmpfiles: unparsable line {where}") from None
    if len(fields) < 2:
        raise Defer(f"systemd-tmpfiles: short line {where} (the error is not modelled)")
    arg = rest if rest else None
    tword, path, mode, user, group, _age = (fields + ["-"] * 6)[:6]
    kind, mods = tword[0], tword[1:]
    if "!" in mods or kind in "xXrR":
        # boot-only lines, and lines that only matter to --remove/--clean: nothing to do
        return Item("!", False, path, None, None, None, None, where)
    if "^" in mods:
        if kind == "f" and "+" not in mods:
            # f^: content from a service credential; a maintainer script has none, and the
            # real tool then skips the line
            return Item("!", False, path, None, None, None, None, where)
        raise Defer(f"systemd-tmpfiles: credential line {where}")
    if set(mods) - set("+-"):
        raise Defer(f"systemd-tmpfiles: type modifier in {tword!r} at {where}")
    if arg is not None and "\\" in arg:
        raise Defer(f"systemd-tmpfiles: C escapes in the argument at {where}")
    try:
        path = _specifiers(path, mid)
        if arg is not None:
            arg = _specifiers(arg, mid)
    except Unresolved as u:
        literal = path.split("%", 1)[0]
        if inv is not None and literal.startswith("/") and _runtime(inv, posixpath.dirname(literal + "x")):
            # a runtime path: left to the boot anyway, whatever the specifier's value
            return Item("!", False, path, None, None, None, None, where)
        if u.args[0] == "m":
            raise Defer(f"systemd-tmpfiles: specifier %m in {where}: the image's /etc/machine-id holds no ID yet"
                        " (it is made at the first boot)") from None
        raise Defer(f"systemd-tmpfiles: specifier %{u.args[0]} in {where} describes the running system") from None
    if not path.startswith("/"):
        raise Defer(f"systemd-tmpfiles: relative path at {where}")
    return Item(kind, "+" in mods, posixpath.normpath(path), mode, user, group, arg, where)


def _runtime(inv: Invocation, path: str) -> bool:
    """True when the path lies on a file system mounted at boot (see the module doc)."""
    real = _canonical(inv, path)
    return any(real == r or real.startswith(r + "/") for r in RUNTIME)


def _canonical(inv: Invocation, path: str) -> str:
    parts = [p for p in path.split("/") if p]
    cur = "/"
    for i, p in enumerate(parts):
        nxt = posixpath.join(cur, p)
        try:
            st = inv.fs.lstat(nxt)
        except OSError:
            return posixpath.join(nxt, *parts[i + 1:])
        if _stat.S_ISLNK(st.st_mode):
            target = inv.fs.readlink(nxt)
            base = target if target.startswith("/") else posixpath.join(cur, target)
            return _canonical(inv, posixpath.normpath(posixpath.join(base, *parts[i + 1:])))
        cur = nxt
    return cur


@all_or_nothing
def tmpfiles(inv: Invocation) -> int:
    """``systemd-tmpfiles --create [--prefix=P]... [--exclude-prefix=P]... [CONFIG...]``."""
    try:
        opts, ops = _args.parse(inv, _args.spec("hE", {
            "create": ("create", 0), "clean": ("clean", 0), "remove": ("remove", 0), "boot": ("boot", 0),
            "prefix": ("prefix", 1), "exclude-prefix": ("exclude", 1), "root": ("root", 1),
            "image": ("image", 1), "replace": ("replace", 1), "cat-config": ("cat", 0), "user": ("user", 0),
            "no-pager": ("nopager", 0), "help": "h", "version": ("version", 0), "graceful": ("graceful", 0),
            "dry-run": ("dry", 0), "purge": ("purge", 0), "tldr": ("tldr", 0)}))
    except _args.UsageError as e:
        raise Defer(f"systemd-tmpfiles: usage error ({e.text})") from None
    keys = [k for k, _ in opts]
    prefixes = [v.rstrip("/") or "/" for k, v in opts if k == "prefix"]
    excludes = [v.rstrip("/") or "/" for k, v in opts if k == "exclude"]
    if "root" in keys and all(v in ("", "/") for k, v in opts if k == "root"):
        keys = [k for k in keys if k != "root"]
    if set(keys) - {"create", "prefix", "exclude", "nopager", "E"} or "create" not in keys:
        raise Defer(f"systemd-tmpfiles {' '.join(inv.argv[1:])}: only --create is modelled")
    if "E" in keys:
        excludes += ["/dev", "/proc", "/run", "/sys"]
    items: dict[str, list[Item]] = {}
    globs: dict[str, list[Item]] = {}
    try:
        files = config_files(inv, ops)
    except Missing as m:
        # read_config_files stops at the first one; nothing is created
        inv.err(f"Failed to open '{m.args[0]}': No such file or directory\n")
        return 1
    db = Accounts(inv.fs)
    mid = machine_id(inv)
    status = 0
    for path in files:
        try:
            text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
        except IsADirectoryError:  # `systemd-tmpfiles --create /` (a fuzzed postinst): stops there
            inv.err(f"Failed to read '{path}': Is a directory\n")
            return 1
        for n, line in enumerate(text.split("\n"), 1):
            it = parse_line(line, f"{path}:{n}", inv, mid)
            if it is None or it.kind == "!":
                continue
            if it.kind in "aA" and not _parse_acl(inv, db, it):
                status = 65  # no argument: an invalid line, dropped
                continue
            if not _resolve_owners(inv, db, it):
                status = 65  # EX_DATAERR: the line is dropped, the others still apply
                continue
            if prefixes and not any(_under(it.path, p) for p in prefixes):
                continue
            if any(_under(it.path, p) for p in excludes):
                continue
            table = globs if it.kind in GLOB_TYPES else items
            if it.path in table:
                first = table[it.path][0]
                if it.kind in OWNING and first.kind in OWNING:
                    same = (first.kind, first.mode, first.user, first.group, first.arg) == \
                        (it.kind, it.mode, it.user, it.group, it.arg)
                    if not same:
                        inv.err(f"{it.origin}: Duplicate line for path \"{it.path}\", ignoring.\n")
                    continue
                table[it.path].append(it)
                continue
            table[it.path] = [it]
    keep = {t: {p: [i for i in its if not _runtime(inv, i.path)] for p, its in tab.items()}
            for t, tab in (("items", items), ("globs", globs))}
    todo = [i for tab in keep.values() for its in tab.values() for i in its]
    for it in todo:
        _check(inv, db, it)
    _check_transitions(inv, db, todo)
    # process_item_array: plain paths, then globs, each path's nearest ancestor array first
    done: set[tuple[str, str]] = set()

    def parent_of(path: str):
        p = posixpath.dirname(path)
        while True:
            for t in ("items", "globs"):
                if p in keep[t]:
                    return t, p
            if p == "/":
                return None
            p = posixpath.dirname(p)

    def process(t: str, path: str) -> None:
        if (t, path) in done:
            return
        par = parent_of(path)
        if par is not None:
            process(*par)
        done.add((t, path))
        for it in keep[t][path]:
            _apply(inv, db, it)

    for t in ("items", "globs"):
        for path in keep[t]:
            process(t, path)
    return status


def _under(path: str, prefix: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def _parse_acl(inv: Invocation, db: Accounts, it: Item) -> bool:
    """An ``a``/``A`` line's argument parsed as the line is read (``parse_acls_from_arg``):
    before the owner fields are resolved and before ``--prefix`` filters the line. False (with
    the real message) when the argument is missing; an unparsable ACL is warned about and the
    line then sets nothing."""
    if it.arg is None:
        inv.err(f"{it.origin}: Set ACLs requires argument.\n")
        return False
    try:
        it.acl = tmpfiles_acl.parse(it.arg, db, not it.plus)
    except tmpfiles_acl.BadAcl:
        inv.err(f'Failed to parse ACL "{it.arg}": Invalid argument. Ignoring\n')
    return True


def _resolve_owners(inv: Invocation, db: Accounts, it: Item) -> bool:
    """Names in the user and group fields, resolved in the image as the parser does (with its
    messages); False drops the line."""
    u = (it.user or "-").lstrip(":")
    if u not in ("-", "") and not u.isdigit() and db.user(u) is None:
        inv.err(f"{it.origin}: Failed to resolve user '{u}': No such process\n")
        return False
    g = (it.group or "-").lstrip(":")
    if g not in ("-", "") and not g.isdigit() and db.grp(g) is None:
        inv.err(f"{it.origin}: Failed to resolve group '{g}'.\n")
        return False
    return True


def _check(inv: Invocation, db: Accounts, it: Item) -> None:
    """Refuse (defer) before changing anything what the model does not reproduce."""
    if it.kind == "h" and _nocow_noop(inv, it):
        return
    if it.kind in "tThHcb":
        raise Defer(f"systemd-tmpfiles: '{it.kind}' line for persistent {it.path} ({it.origin})")
    if it.kind not in "dDvqQfFpLCwezZxXrRmaA":
        raise Defer(f"systemd-tmpfiles: unknown line type '{it.kind}' ({it.origin})")
    if it.mode not in (None, "-") and not all(c in "01234567" for c in it.mode.lstrip("~:")):
        raise Defer(f"systemd-tmpfiles: mode {it.mode!r} ({it.origin})")


def _nocow_noop(inv: Invocation, it: Item) -> bool:
    """An ``h`` line that only sets or clears ``C`` (no copy-on-write) on paths of an ext2/3/4
    root filesystem changes nothing: those filesystems do not carry the flag (the kernel
    refuses ``+C`` with EOPNOTSUPP, and ``-C`` finds it clear), and systemd-tmpfiles logs that
    at debug level and goes on (``fd_set_attribute``). Known only with the image's disk layout."""
    arg = (it.arg or "").strip()
    if arg[:1] in "+-=":
        arg = arg[1:]
    if arg != "C":
        return False
    lay = layout_of(inv.state)
    if lay is None or lay.root_volume.fs_type not in ("ext2", "ext3", "ext4"):
        return False
    return mount_of(inv.fs, it.path) is None


def _check_transitions(inv: Invocation, db: Accounts, todo: list[Item]) -> None:
    """Defer when the real tool would refuse an "unsafe path transition" (chase with CHASE_SAFE).

    Walking a path, a directory owned by a non-root user may only lead to entries of the same
    owner. The owners are those the items will leave (created paths are root's unless a user is
    given), so the refusal is found before anything changes.
    """
    planned: dict[str, int] = {}
    for it in todo:
        if it.kind in GLOB_TYPES or it.kind == "L":
            continue
        uid = _ids(db, it)[0]
        if uid is not None:
            planned[it.path] = uid
    for it in todo:
        if it.kind in GLOB_TYPES:
            continue
        prev, cur = None, "/"
        for comp in [c for c in it.path.split("/") if c]:
            cur = posixpath.join(cur, comp)
            try:
                st = inv.fs.lstat(cur)
                owner = planned.get(cur, st.st_uid)
                if _stat.S_ISLNK(st.st_mode):
                    break
            except OSError:
                owner = planned.get(cur, 0)
            if prev not in (None, 0) and owner != prev:
                raise Defer(f"systemd-tmpfiles: unsafe path transition to {cur} ({it.origin}; error not modelled)")
            prev = owner


def _ids(db: Accounts, it: Item) -> tuple[int | None, int | None, bool, bool]:
    def one(w, look, field):
        if w in (None, "-", ""):
            return None, False
        only = w.startswith(":")
        w = w.lstrip(":")
        return (int(w) if w.isdigit() else int(look(w)[field])), only
    uid, uonly = one(it.user, db.user, 2)
    gid, gonly = one(it.group, db.grp, 2)
    return uid, gid, uonly, gonly


def _set_perms(inv: Invocation, db: Accounts, it: Item, path: str, created: bool) -> None:
    """``fd_set_perms``: owner, then mode (``~`` masks by the existing bits, ``:`` creation only)."""
    st = inv.fs.lstat(path)
    if _stat.S_ISLNK(st.st_mode):
        return
    uid, gid, uonly, gonly = _ids(db, it)
    nuid = uid if uid is not None and (created or not uonly) else st.st_uid
    ngid = gid if gid is not None and (created or not gonly) else st.st_gid
    if (nuid, ngid) != (st.st_uid, st.st_gid):
        inv.fs.chown(path, nuid, ngid)
        st = inv.fs.lstat(path)
    if it.mode not in (None, "-"):
        mask, only = "~" in it.mode, ":" in it.mode
        mode = int(it.mode.strip("~:"), 8)
        if mask and not created:
            mode = _mask(mode, st.st_mode)
        if (created or not only) and (st.st_mode & 0o7777) != mode:
            inv.fs.chmod(path, mode)


def _mask(mode: int, old: int) -> int:
    """``~MODE`` on an existing path: drop the r, w, x bits the path had in no class."""
    for bits in (0o111, 0o222, 0o444):
        if not old & bits:
            mode &= ~bits
    if not _stat.S_ISDIR(old):
        mode &= ~0o7000
    return mode


def _default_mode(it: Item) -> int:
    return 0o755 if it.kind in "dDvqQC" else 0o644


def _mkparents(inv: Invocation, path: str) -> None:
    parent = posixpath.dirname(path)
    missing = []
    while parent != "/" and not inv.fs.lexists(parent):
        missing.append(parent)
        parent = posixpath.dirname(parent)
    for p in reversed(missing):
        inv.fs.mkdir(p, 0o755)


def _apply(inv: Invocation, db: Accounts, it: Item) -> None:
    k, p, fs = it.kind, it.path, inv.fs
    if k in "xXrRh":  # nothing for --create; an "h" line got here only as a no-op (_nocow_noop)
        return
    if k in "dDvqQ":
        _mkparents(inv, p)
        created = not fs.lexists(p)
        if created:
            mode = int(it.mode.strip("~:"), 8) if it.mode not in (None, "-") else 0o755
            fs.mkdir(p, mode & 0o7777)
            fs.chmod(p, mode & 0o7777)
        elif not fs.stat(p).is_dir:
            raise Defer(f"systemd-tmpfiles: {p} exists and is not a directory (error not modelled)")
        _set_perms(inv, db, it, p, created)
    elif k in "fF":
        _mkparents(inv, p)
        created = not fs.lexists(p)
        data = (it.arg or "").encode("utf-8", "surrogateescape")
        if created:
            mode = int(it.mode.strip("~:"), 8) if it.mode not in (None, "-") else 0o644
            fs.write_bytes(p, data, 0)
            fs.chmod(p, mode)
        else:
            if not fs.stat(p).is_reg:
                raise Defer(f"systemd-tmpfiles: {p} exists and is not a regular file (error not modelled)")
            if it.plus or k == "F":
                fs.write_bytes(p, data)
        _set_perms(inv, db, it, p, created)
    elif k == "p":
        _mkparents(inv, p)
        created = not fs.lexists(p)
        if created:
            mode = int(it.mode.strip("~:"), 8) if it.mode not in (None, "-") else 0o644
            fs.mknod(p, _stat.S_IFIFO | mode)
            fs.chmod(p, mode)
        elif not _stat.S_ISFIFO(fs.lstat(p).st_mode):
            raise Defer(f"systemd-tmpfiles: {p} exists and is not a FIFO (error not modelled)")
        _set_perms(inv, db, it, p, created)
    elif k == "L":
        target = it.arg or f"/usr/share/factory{p}"
        _mkparents(inv, p)
        if fs.lexists(p):
            st = fs.lstat(p)
            if _stat.S_ISLNK(st.st_mode) and fs.readlink(p) == target:
                return
            if not it.plus:
                return  # create_symlink: "is not a symlink or does not point to the correct path" (debug)
            _rm_rf(inv, p)
        fs.symlink(target, p)
        uid, gid, _, _ = _ids(db, it)
        if uid is not None or gid is not None:
            fs.chown(p, uid if uid is not None else 0, gid if gid is not None else 0, follow_symlinks=False)
    elif k == "C":
        src = it.arg or f"/usr/share/factory{p}"
        if fs.lexists(p) and not (fs.stat(p).is_dir and not fs.readdir(p)):
            _set_perms(inv, db, it, p, False)
            return
        if not fs.lexists(src):
            raise Defer(f"systemd-tmpfiles: C source {src} is missing (error not modelled)")
        _mkparents(inv, p)
        created = not fs.lexists(p)
        _copy(inv, src, p)
        _set_perms(inv, db, it, p, created)
    else:  # globs: w e z Z
        for m in _glob(inv, p):
            if k == "w":
                if fs.stat(m).is_reg:
                    data = (it.arg or "").encode("utf-8", "surrogateescape")
                    # write_one_file: O_APPEND for w+, otherwise written from offset 0
                    # *without* O_TRUNC (a longer old content keeps its tail)
                    with fs.open(m, "ab" if it.plus else "r+b") as f:
                        f.write(data)
            elif k == "e":
                if fs.stat(m).is_dir:
                    _set_perms(inv, db, it, m, False)
            elif k == "z":
                _set_perms(inv, db, it, m, False)
            elif k == "Z":
                for q in _walk(inv, m):
                    _set_perms(inv, db, it, q, False)
            elif k in "aA":
                for q in (_walk(inv, m) if k == "A" else [m]):
                    tmpfiles_acl.set_acls(inv, *it.acl, it.plus, q)


def _glob(inv: Invocation, pattern: str) -> list[str]:
    if not any(c in pattern for c in "*?["):
        return [pattern] if inv.fs.lexists(pattern) else []
    out = ["/"]
    for comp in [c for c in pattern.split("/") if c]:
        nxt = []
        for base in out:
            if any(c in comp for c in "*?["):
                try:
                    names = sorted(inv.fs.readdir(base))
                except OSError:
                    continue
                nxt += [posixpath.join(base, n) for n in names if fnmatch.fnmatchcase(n, comp)
                        and (comp.startswith(".") or not n.startswith("."))]
            elif inv.fs.lexists(posixpath.join(base, comp)):
                nxt.append(posixpath.join(base, comp))
        out = nxt
    return out


def _walk(inv: Invocation, top: str) -> list[str]:
    out = [top]
    st = inv.fs.lstat(top)
    if _stat.S_ISDIR(st.st_mode):
        for n in sorted(inv.fs.readdir(top)):
            out += _walk(inv, posixpath.join(top, n))
    return out


def _rm_rf(inv: Invocation, p: str) -> None:
    st = inv.fs.lstat(p)
    if _stat.S_ISDIR(st.st_mode):
        for n in inv.fs.readdir(p):
            _rm_rf(inv, posixpath.join(p, n))
        inv.fs.rmdir(p)
    else:
        inv.fs.unlink(p)


def _copy(inv: Invocation, src: str, dst: str) -> None:
    """``copy_tree`` as tmpfiles uses it: modes, owners and times kept."""
    fs = inv.fs
    st = fs.lstat(src)
    if _stat.S_ISDIR(st.st_mode):
        if not fs.lexists(dst):
            fs.mkdir(dst, 0o700)
        for n in sorted(fs.readdir(src)):
            _copy(inv, posixpath.join(src, n), posixpath.join(dst, n))
    elif _stat.S_ISLNK(st.st_mode):
        fs.symlink(fs.readlink(src), dst)
    elif _stat.S_ISREG(st.st_mode):
        fs.write_bytes(dst, fs.read_bytes(src), 0)
    else:
        raise Defer(f"systemd-tmpfiles: special file {src} in a C source")
    fs.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not _stat.S_ISLNK(st.st_mode):
        fs.chmod(dst, _stat.S_IMODE(st.st_mode))
    fs.utime(dst, st.st_atime_ns, st.st_mtime_ns, follow_symlinks=False)
