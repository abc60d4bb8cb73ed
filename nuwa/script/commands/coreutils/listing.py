"""A model of GNU ``ls`` (coreutils 9.1) for the forms maintainer scripts use.

Output goes to a pipe or file, never a terminal, so it is one name per line (``-1``), with
the ``literal`` quoting style, no colours, and names sorted by ``strcoll`` — byte order in
the C and C.UTF-8 locales the scripts run in (another collation is deferred). Options: ``-1
-a -A -d -l -n -L -t -v -r --color[=never|auto]``; ``-v`` sorts by gnulib's ``filevercmp``
(ties by bytes), and of ``-t`` and ``-v`` the last one given decides, as in ``ls.c``; pathname expansion is the shell's. Operands
that are not directories (or all of them under ``-d``) are listed first, then each directory,
with a ``DIR:`` header when there is more than one operand, as ``ls.c`` does. Without ``-l``
or ``-d`` a symlink to a directory named on the command line is followed. A missing operand
prints ``cannot access`` and makes the status 2.

``-l`` shares :mod:`nuwa.fs.lsformat` with ``nuwa ls``; dates are rendered in the image's time
zone (:func:`nuwa.script.commands.coreutils.datecmd.image_zone`), recent files (the last six months)
with the time of day. Files carrying an ACL or an SELinux label (``+``/``.`` after the mode)
are deferred, as are ``-R``, ``-F``, ``-i``, ``-h``, ``-S``... (undeclared options).
"""

from __future__ import annotations

import functools
import os
import stat as _stat

from nuwa.fs.lsformat import Owners, ls_long_lines
from nuwa.script.commands import _args
from nuwa.script.commands._common import quote
from nuwa.script.commands.coreutils.datecmd import image_zone, strftime
from nuwa.script.commands.coreutils.transform import filevercmp
from nuwa.script.commands.miscutils.locales import effective
from nuwa.script.context import Defer, Invocation

_LS = _args.spec("1aAdlnLtvr", {"all": "a", "almost-all": "A", "directory": "d", "numeric-uid-gid": "n",
                               "dereference": "L", "reverse": "r", "color": ("color", _args.OPT)})
_HALF_YEAR = 31556952 // 2  # coreutils: half of the average Gregorian year


def _bkey(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


class _Lister:
    def __init__(self, inv: Invocation, keys: set[str], sort: str | None = None):
        self.inv, self.keys, self.sort = inv, keys, sort
        self.long = "l" in keys or "n" in keys
        self.owners = Owners(inv.fs) if self.long else None
        self.zone = image_zone(inv) if self.long else None

    def st(self, path: str, follow: bool):
        return self.inv.fs.stat(path) if follow else self.inv.fs.lstat(path)

    def order(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Sort ``(path, name)`` by name, by mtime (newest first, then name) under -t, or by
        version under -v."""
        if self.sort == "v":
            out = sorted(items, key=functools.cmp_to_key(
                lambda a, b: filevercmp(_bkey(a[1]), _bkey(b[1])) or (_bkey(a[1]) > _bkey(b[1])) - (_bkey(a[1]) < _bkey(b[1]))))
        elif self.sort == "t":
            def k(it):
                s = self.st(it[0], "L" in self.keys)
                return (-s.st_mtime_ns, _bkey(it[1]))
            out = sorted(items, key=k)
        else:
            out = sorted(items, key=lambda it: _bkey(it[1]))
        return out[::-1] if "r" in self.keys else out

    def date(self, mtime_ns: int, now: float) -> str:
        t = mtime_ns // 10**9
        recent = now - _HALF_YEAR < mtime_ns / 1e9 < now
        return strftime("%b %e %H:%M" if recent else "%b %e  %Y", t, 0, self.zone)

    def lines(self, items: list[tuple[str, str]]) -> list[str]:
        if not self.long:
            return [name for _, name in items]
        for path, _ in items:
            try:
                xattrs = self.inv.fs.listxattr(path, follow_symlinks="L" in self.keys)
            except OSError:
                xattrs = []
            if any(x in ("system.posix_acl_access", "system.posix_acl_default", "security.selinux") for x in xattrs):
                raise Defer("ls -l of a file with an ACL or SELinux label")
            s = self.st(path, "L" in self.keys)
            if _stat.S_ISCHR(s.st_mode) or _stat.S_ISBLK(s.st_mode):
                raise Defer("ls -l of a device file")
        import time
        return ls_long_lines(self.inv.fs, items, self.owners, time.time(), self.date, numeric="n" in self.keys,
                             follow="L" in self.keys)


def ls(inv: Invocation) -> int:
    """``ls [-1aAdlnLtr] [FILE...]`` (see the module docstring)."""
    try:
        opts, ops = _args.parse(inv, _LS)
    except _args.UsageError as e:
        return _args.usage(inv, e, 2)
    keys = {k for k, _ in opts}
    for k, v in opts:
        if k == "color" and v not in (None, "never", "no", "none", "auto", "tty", "if-tty"):
            raise Defer(f"ls --color={v}")
    for var in ("LS_BLOCK_SIZE", "BLOCK_SIZE", "BLOCKSIZE", "QUOTING_STYLE", "TIME_STYLE", "LS_COLUMNS"):
        if inv.env.get(var):
            raise Defer(f"ls with {var} set")
    coll = effective(inv.env, "LC_COLLATE")
    if coll not in ("C", "POSIX") and not coll.lower().replace("-", "").startswith("c.utf8"):
        raise Defer(f"ls sorting in the {coll!r} collation")
    sort = next((k for k, _ in reversed(opts) if k in ("t", "v")), None)
    lister = _Lister(inv, keys, sort)
    status = 0
    files: list[tuple[str, str]] = []
    dirs: list[tuple[str, str]] = []
    follow_arg = "L" in keys or not (lister.long or "d" in keys)
    for op in ops or ["."]:
        p = inv.path(op)
        try:
            st = lister.st(p, "L" in keys)
            if follow_arg and not ("L" in keys) and _stat.S_ISLNK(st.st_mode):
                try:
                    if _stat.S_ISDIR(inv.fs.stat(p).st_mode):
                        st = inv.fs.stat(p)
                except OSError:
                    pass  # a dangling link is listed as itself
        except OSError as e:
            inv.err(f"{inv.argv[0]}: cannot access {quote(op)}: {os.strerror(e.errno)}\n")
            status = 2
            continue
        if _stat.S_ISDIR(st.st_mode) and "d" not in keys:
            dirs.append((p, op))
        else:
            files.append((p, op))
    out: list[str] = []
    if files:
        out.extend(lister.lines(lister.order(files)))
    header = len(ops) > 1
    first = not files
    for p, op in lister.order(dirs):
        try:
            names = inv.fs.readdir(p)
        except OSError as e:
            inv.err(f"{inv.argv[0]}: cannot open directory {quote(op)}: {os.strerror(e.errno)}\n")
            status = 2
            continue
        if "a" in keys:
            names = [".", ".."] + list(names)
        elif "A" not in keys:
            names = [n for n in names if not n.startswith(".")]
        items = lister.order([(p.rstrip("/") + "/" + n if n not in (".", "..") else p.rstrip("/") + "/" + n, n)
                              for n in names])
        if not first:
            out.append("")
        first = False
        if header:
            out.append(f"{op}:")
        if lister.long:
            blocks = sum(lister.st(path, "L" in keys).st_blocks for path, _ in items)
            out.append(f"total {(blocks + 1) // 2}")
        out.extend(lister.lines(items))
    if out:
        inv.out("\n".join(out) + "\n")
    return status
