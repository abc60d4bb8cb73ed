"""Models of the path utilities: readlink, realpath, basename, dirname, mktemp, which.

Canonicalisation mirrors gnulib's ``canonicalize_filename_mode`` (CAN_EXISTING: every
component must exist; CAN_ALL_BUT_LAST; CAN_MISSING) walking the image through ``inv.fs``,
with absolute symlinks resolved against the image root and ELOOP after 40 links.
"""

from __future__ import annotations

import errno
import os
import posixpath
import random
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, err, errno_text, quote, quotef
from nuwa.script.context import Defer, Invocation

_MAXSYMLINKS = 40


def canonicalize(inv: Invocation, path: str, mode: str, resolve_links: bool = True) -> str:
    """The canonical image path of absolute ``path``; ``mode`` is "e", "f" or "m" (see module doc).

    Raises OSError (ENOENT, ENOTDIR, ELOOP) like the C function.
    """
    if path == "":
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
    res = _canon(inv, path, mode, resolve_links)
    if path.endswith("/") and mode != "m" and res != "/":
        # a trailing slash asks for a directory
        st = inv.fs.stat(res)
        if not _stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    return res


def _canon(inv: Invocation, path: str, mode: str, resolve_links: bool) -> str:
    todo = [c for c in path.split("/") if c]
    todo.reverse()
    out: list[str] = []
    hops = 0
    while todo:
        c = todo.pop()
        if c == ".":
            continue
        if c == "..":
            if out:
                out.pop()
            continue
        cand = "/" + "/".join(out + [c])
        try:
            st = inv.fs.lstat(cand)
        except OSError as e:
            if e.errno != errno.ENOENT or mode == "e" or (mode == "f" and todo):
                if mode == "m" and e.errno in (errno.ENOENT, errno.ENOTDIR):
                    out.append(c)
                    continue
                raise
            out.append(c)
            continue
        if resolve_links and _stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > _MAXSYMLINKS:
                if mode == "m":
                    out.append(c)
                    continue
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
            target = inv.fs.readlink(cand)
            parts = [p for p in target.split("/") if p]
            if target.startswith("/"):
                out = []
            todo.extend(reversed(parts))
            continue
        if todo and not _stat.S_ISDIR(st.st_mode) and mode != "m":
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        out.append(c)
    return "/" + "/".join(out)


def relpath(target: str, base: str) -> str:
    """``target`` relative to directory ``base`` (both canonical absolute paths)."""
    t = [c for c in target.split("/") if c]
    b = [c for c in base.split("/") if c]
    i = 0
    while i < len(t) and i < len(b) and t[i] == b[i]:
        i += 1
    parts = [".."] * (len(b) - i) + t[i:]
    return "/".join(parts) or "."


# ---- readlink / realpath -----------------------------------------------------------------------

_READLINK = _args.spec("femnqsvz", {"canonicalize": "f", "canonicalize-existing": "e",
                                   "canonicalize-missing": "m", "no-newline": "n", "quiet": "q",
                                   "silent": "s", "verbose": "v", "zero": "z"})


def readlink(inv: Invocation) -> int:
    """``readlink [-f|-e|-m] [-nqsvz] FILE...``."""
    try:
        opts, ops = _args.parse(inv, _READLINK)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    mode = None
    no_nl = verbose = zero = False
    for k, _v in opts:
        if k in "fem":
            mode = k
        elif k == "n":
            no_nl = True
        elif k in "qs":
            verbose = False
        elif k == "v":
            verbose = True
        elif k == "z":
            zero = True
    if not ops:
        return _args.missing(inv)
    if no_nl and len(ops) > 1:
        err(inv, "ignoring --no-newline with multiple arguments")
        no_nl = False
    status = 0
    for a in ops:
        try:
            if mode:
                res = canonicalize(inv, apath(inv, a), mode)
            else:
                res = inv.fs.readlink(apath(inv, a))
        except OSError as e:
            if verbose:
                err(inv, f"{quotef(a)}: {errno_text(e)}")
            status = 1
            continue
        inv.out(res + ("\0" if zero else ("" if no_nl else "\n")))
    return status


_REALPATH = _args.spec("emLPqsz", {"canonicalize-existing": "e", "canonicalize-missing": "m",
                                  "logical": "L", "physical": "P", "quiet": "q", "strip": "s",
                                  "no-symlinks": "s", "zero": "z",
                                  "relative-to": ("relative-to", _args.REQ),
                                  "relative-base": ("relative-base", _args.REQ)})


def realpath(inv: Invocation) -> int:
    """``realpath [-e|-m] [-s] [-qz] [--relative-to=DIR] [--relative-base=DIR] FILE...``."""
    try:
        opts, ops = _args.parse(inv, _REALPATH)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    mode, strip, quiet, zero, rel_to, rel_base = "f", False, False, False, None, None
    for k, v in opts:
        if k in ("e", "m"):
            mode = k
        elif k == "s":
            strip = True
        elif k == "q":
            quiet = True
        elif k == "z":
            zero = True
        elif k == "L":
            raise Defer("realpath -L")
        elif k == "relative-to":
            rel_to = v
        elif k == "relative-base":
            rel_base = v
    if not ops:
        return _args.missing(inv)

    def canon(p: str, m: str) -> str:
        if strip:
            return posixpath.normpath(apath(inv, p)).replace("//", "/")
        return canonicalize(inv, apath(inv, p), m)

    try:
        if rel_to is not None:
            rel_to = canon(rel_to, mode)
        if rel_base is not None:
            rel_base = canon(rel_base, mode)
    except OSError as e:
        err(inv, f"{quotef(rel_to or rel_base)}: {errno_text(e)}")
        return 1
    if rel_base is not None and rel_to is None:
        rel_to = rel_base
    status = 0
    for a in ops:
        try:
            res = canon(a, mode)
        except OSError as e:
            if not quiet:
                err(inv, f"{quotef(a)}: {errno_text(e)}")
            status = 1
            continue
        if rel_to is not None and (rel_base is None or _under(res, rel_base) and _under(rel_to, rel_base)):
            res = relpath(res, rel_to)
        inv.out(res + ("\0" if zero else "\n"))
    return status


def _under(p: str, base: str) -> bool:
    return base == "/" or p == base or p.startswith(base.rstrip("/") + "/")


# ---- basename / dirname ------------------------------------------------------------------------

_BASENAME = _args.spec("as:z", {"multiple": "a", "suffix": "s", "zero": "z"})


def _base(name: str, suffix: str | None) -> str:
    s = name.rstrip("/")
    if not s:
        return "/" if name else ""
    b = s.rsplit("/", 1)[-1]
    if suffix and b != suffix and b.endswith(suffix):
        b = b[: -len(suffix)]
    return b


def basename(inv: Invocation) -> int:
    """``basename NAME [SUFFIX]`` / ``basename -a [-s SUFFIX] NAME...``."""
    try:
        opts, ops = _args.parse(inv, _BASENAME)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    multiple = zero = False
    suffix = None
    for k, v in opts:
        if k == "a":
            multiple = True
        elif k == "s":
            suffix, multiple = v, True
        elif k == "z":
            zero = True
    if not ops:
        return _args.missing(inv)
    end = "\0" if zero else "\n"
    if not multiple:
        if len(ops) > 2:
            return _args.usage(inv, _args.UsageError(f"extra operand {quote(ops[2])}"))
        inv.out(_base(ops[0], ops[1] if len(ops) == 2 else None) + end)
        return 0
    for o in ops:
        inv.out(_base(o, suffix) + end)
    return 0


def _dir(name: str) -> str:
    s = name.rstrip("/")
    if not s:
        return "/" if name.startswith("/") else "."
    if "/" not in s:
        return "."
    d = s.rsplit("/", 1)[0].rstrip("/")
    if not d:
        return "/"
    return d


def dirname(inv: Invocation) -> int:
    """``dirname [-z] NAME...``."""
    try:
        opts, ops = _args.parse(inv, _args.spec("z", {"zero": "z"}))
    except _args.UsageError as e:
        return _args.usage(inv, e)
    if not ops:
        return _args.missing(inv)
    end = "\0" if opts else "\n"
    for o in ops:
        inv.out(_dir(o) + end)
    return 0


# ---- mktemp ------------------------------------------------------------------------------------

_MKTEMP = _args.spec("dqup:t", {"directory": "d", "quiet": "q", "dry-run": "u", "tmpdir": ("tmpdir", _args.OPT),
                               "suffix": ("suffix", _args.REQ)})
_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def mktemp(inv: Invocation) -> int:
    """``mktemp [-d] [-q] [-u] [-t] [-p DIR | --tmpdir[=DIR]] [--suffix=S] [TEMPLATE]``.

    Names are drawn from a generator seeded per run (``inv.state``), so a simulation is
    reproducible, and retried on EEXIST like glibc's ``gen_tempname``.
    """
    try:
        opts, ops = _args.parse(inv, _MKTEMP)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    make_dir = quiet = dry = use_t = False
    tmpdir: str | None = None
    use_tmpdir = False
    suffix = ""
    for k, v in opts:
        if k == "d":
            make_dir = True
        elif k == "q":
            quiet = True
        elif k == "u":
            dry = True
        elif k == "t":
            use_t = True
        elif k in ("p", "tmpdir"):
            use_tmpdir = True
            tmpdir = v
        elif k == "suffix":
            suffix = v
    if len(ops) > 1:
        return _args.usage(inv, _args.UsageError("too many templates"))
    if ops:
        template = ops[0]
    else:
        template = "tmp.XXXXXXXXXX"
        use_tmpdir = True
    if not template.endswith("X") and "X" in template and not suffix:
        # the last run of X's is the one replaced; what follows it is a suffix (mktemp.c)
        i = template.rfind("X")
        template, suffix = template[: i + 1], template[i + 1:]
    n_x = len(template) - len(template.rstrip("X"))
    if n_x < 3:
        if not quiet:
            err(inv, f"too few X's in template {quote(template + suffix)}")
        return 1
    if use_t or use_tmpdir:
        if "/" in template and (use_t or ops):
            if not quiet:
                err(inv, f"invalid template, {quote(template)}, contains directory separator")
            return 1
        base = tmpdir or inv.env.get("TMPDIR") or "/tmp"
        if use_t and not tmpdir:
            base = inv.env.get("TMPDIR") or "/tmp"
        template = base.rstrip("/") + "/" + template if base != "/" else "/" + template
    rng = inv.state.setdefault("mktemp_rng", random.Random(0x6E757761))
    stem = template[:-n_x]
    for _ in range(1000):
        name = stem + "".join(rng.choice(_CHARS) for _ in range(n_x)) + suffix
        p = apath(inv, name)
        if dry:
            if not inv.fs.lexists(p):
                inv.out(name + "\n")
                return 0
            continue
        try:
            if make_dir:
                inv.fs.mkdir(p, 0o700)
            else:
                inv.fs.open_handle(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600).close()
        except FileExistsError:
            continue
        except OSError as e:
            if not quiet:
                what = "directory" if make_dir else "file"
                err(inv, f"failed to create {what} via template {quote(template + suffix)}: {errno_text(e)}")
            return 1
        inv.out(name + "\n")
        return 0
    err(inv, f"failed to create file via template {quote(template + suffix)}: File exists")
    return 1


# ---- which -------------------------------------------------------------------------------------

def find_program(inv: Invocation, name: str, all_matches: bool = False) -> list[str]:
    """Executables named ``name`` along the simulated PATH, as debianutils' which finds them."""
    if "/" in name:
        return [name] if _executable(inv, apath(inv, name)) else []
    found = []
    for d in inv.env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        cand = (d or ".") + "/" + name
        if _executable(inv, apath(inv, cand)):
            found.append(cand)
            if not all_matches:
                break
    return found


def _executable(inv: Invocation, p: str) -> bool:
    try:
        st = inv.fs.stat(p)
    except (OSError, ValueError):
        return False
    return _stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def which(inv: Invocation) -> int:
    """``which [-a] [-s] PROGRAM...`` (debianutils 5.7)."""
    try:
        opts, ops = _args.parse(inv, _args.spec("as"))
    except _args.UsageError as e:
        return _args.usage(inv, e, 2)
    keys = {k for k, _ in opts}
    if not ops:
        return 1
    status = 0
    for name in ops:
        hits = find_program(inv, name, "a" in keys)
        if not hits:
            status = 1
        elif "s" not in keys:
            for h in hits:
                inv.out(h + "\n")
    return status
