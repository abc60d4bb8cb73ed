"""Models of md5sum/sha*sum (with ``-c``), cmp, ``diff -q`` and ``stat -c`` (coreutils 9.1,
diffutils 3.8). A ``diff`` that would print differences is deferred: scripts use its status.
"""

from __future__ import annotations

import collections
import hashlib
import re
import stat as _stat
import time

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB, apath, err, errno_text, mode_string, quote, quotef
from nuwa.script.commands.coreutils.attrs import _utc_only
from nuwa.script.commands.coreutils.fsinfo import device_number
from nuwa.script.context import Defer, Invocation

_ALGOS = {"md5sum": "md5", "sha1sum": "sha1", "sha224sum": "sha224", "sha256sum": "sha256",
          "sha384sum": "sha384", "sha512sum": "sha512"}
_SUM = _args.spec("bctwz", {"binary": "b", "check": "c", "text": "t", "warn": "w", "zero": "z",
                           "status": ("status", _args.NO), "quiet": ("quiet", _args.NO),
                           "strict": ("strict", _args.NO), "ignore-missing": ("ignore-missing", _args.NO),
                           "tag": ("tag", _args.NO)})


def _read(inv: Invocation, name: str) -> bytes:
    if name == "-":
        return bytes(inv.stdin)
    p = apath(inv, name)
    st = inv.fs.stat(p)
    if _stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory")
    if not _stat.S_ISREG(st.st_mode):
        raise Defer(f"{inv.name} reads a special file {name!r}")
    return inv.fs.read_bytes(p)


def _escape_name(name: str) -> tuple[str, str]:
    if "\\" in name or "\n" in name or "\r" in name:
        return "\\", name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "", name


def digest(inv: Invocation) -> int:
    """``md5sum``/``sha*sum [-c] [--status] [--quiet] [--strict] [--ignore-missing] [FILE...]``."""
    algo = _ALGOS[inv.name]
    try:
        opts, ops = _args.parse(inv, _SUM)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = {k for k, _ in opts}
    if "tag" in keys or "z" in keys:
        raise Defer(f"{inv.name} --tag/-z")
    if "c" in keys:
        return _check(inv, algo, ops or ["-"], keys)
    status = 0
    binary = "b" in keys
    for name in ops or ["-"]:
        try:
            data = _read(inv, name)
        except OSError as e:
            err(inv, f"{quotef(name)}: {errno_text(e)}")
            status = 1
            continue
        esc, shown = _escape_name(name)
        inv.out(f"{esc}{hashlib.new(algo, data).hexdigest()} {'*' if binary else ' '}{shown}\n")
    return status


def _check(inv: Invocation, algo: str, files: list[str], keys: set[str]) -> int:
    quiet, silent, strict, ignore_missing, warn = ("quiet" in keys, "status" in keys, "strict" in keys,
                                                  "ignore-missing" in keys, "w" in keys)
    hexlen = hashlib.new(algo).digest_size * 2
    line_re = re.compile(r"^(\\?)([0-9a-fA-F]{%d}) ([ *])(.*)$" % hexlen)
    status = 0
    for listing in files:
        bad_fmt = failed = unreadable = 0
        try:
            data = _read(inv, listing)
        except OSError as e:
            err(inv, f"{quotef(listing)}: {errno_text(e)}")
            status = 1
            continue
        ok_lines = 0
        text = data.decode("utf-8", "surrogateescape")
        for lineno, line in enumerate(text.split("\n")[: -1 if text.endswith("\n") else None], 1):
            if line.startswith("#"):
                continue
            m = line_re.match(line)
            if not m:
                bad_fmt += 1
                if warn:
                    err(inv, f"{quotef(listing)}: {lineno}: improperly formatted "
                             f"{algo.upper().replace('SHA', 'SHA')} checksum line")
                continue
            ok_lines += 1
            name = m.group(4)
            if m.group(1):
                name = name.replace("\\\\", "\0").replace("\\n", "\n").replace("\\r", "\r").replace("\0", "\\")
            try:
                content = _read(inv, name)
            except OSError as e:
                if ignore_missing and e.errno == 2:
                    continue
                unreadable += 1
                err(inv, f"{quotef(name)}: {errno_text(e)}")
                if not silent:
                    inv.out(f"{name}: FAILED open or read\n")
                continue
            good = hashlib.new(algo, content).hexdigest() == m.group(2).lower()
            if not good:
                failed += 1
            if not silent and (not good or not quiet):
                inv.out(f"{name}: {'OK' if good else 'FAILED'}\n")
        if ok_lines == 0:
            shown = "standard input" if listing == "-" else listing
            err(inv, f"{quotef(shown)}: no properly formatted checksum lines found")
            status = 1
            continue
        # md5sum.c digest_check: the warnings are per listing, after it is read
        if not silent:
            if bad_fmt:
                err(inv, f"WARNING: {bad_fmt} line{'s are' if bad_fmt > 1 else ' is'} improperly formatted")
            if unreadable:
                err(inv, f"WARNING: {unreadable} listed file{'s' if unreadable > 1 else ''} could not be read")
            if failed:
                err(inv, f"WARNING: {failed} computed checksum{'s' if failed > 1 else ''} did NOT match")
        if failed or unreadable or (strict and bad_fmt):
            status = 1
    return status


# ---- cmp ---------------------------------------------------------------------------------------

def cmp(inv: Invocation) -> int:
    """``cmp [-s] FILE1 [FILE2]``: status 0 same, 1 different, 2 trouble (diffutils 3.8)."""
    try:
        opts, ops = _args.parse(inv, _args.spec("slbn:i:", {"silent": "s", "quiet": "s", "verbose": "l"}))
    except _args.UsageError as e:
        return _args.usage(inv, e, 2)
    keys = {k for k, _ in opts}
    if keys - {"s"}:
        raise Defer("cmp -l/-b/-n/-i")
    silent = "s" in keys
    if not ops:
        return _args.usage(inv, _args.UsageError("missing operand after 'cmp'"), 2)
    if len(ops) > 2:
        return _args.usage(inv, _args.UsageError(f"extra operand {quote(ops[2])}"), 2)
    names = ops + ["-"] if len(ops) == 1 else ops
    datas = []
    for n in names:
        try:
            datas.append(_read(inv, n))
        except OSError as e:
            if not silent:
                err(inv, f"{n}: {errno_text(e)}")
            return 2
    a, b = datas
    if a == b:
        return 0
    if silent:
        return 1
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    if i < n:
        line = a[:i].count(b"\n") + 1
        inv.out(f"{names[0]} {names[1]} differ: char {i + 1}, line {line}\n")
        return 1
    short = names[0] if len(a) < len(b) else names[1]
    data = a if len(a) < len(b) else b
    if not data:
        err(inv, f"EOF on {short} which is empty")
        return 1
    lines = data.count(b"\n")
    where = f"line {lines}" if data.endswith(b"\n") else f"in line {lines + 1}"
    err(inv, f"EOF on {short} after byte {len(data)}, {where}")
    return 1


# ---- diff --------------------------------------------------------------------------------------

def diff(inv: Invocation) -> int:
    """``diff [-q] [-s] [-w] [-B] FILE1 FILE2`` for regular files; differing output is deferred
    unless -q. ``-w``/``-B`` (diffutils 3.8) are answered where the edit script's shape cannot
    matter: see :func:`_same_ignoring`."""
    try:
        opts, ops = _args.parse(inv, _args.spec("qsuNrwB", {"brief": "q", "report-identical-files": "s",
                                                            "ignore-all-space": "w", "ignore-blank-lines": "B"}))
    except _args.UsageError as e:
        return _args.usage(inv, e, 2)
    keys = {k for k, _ in opts}
    if keys & {"N", "r"}:
        raise Defer("diff -N/-r")
    if len(ops) != 2:
        if len(ops) < 2:
            return _args.usage(inv, _args.UsageError(f"missing operand after {quote(ops[-1]) if ops else 'diff'}"), 2)
        return _args.usage(inv, _args.UsageError(f"extra operand {quote(ops[2])}"), 2)
    datas = []
    for n in ops:
        try:
            p = apath(inv, n) if n != "-" else None
            if p is not None and inv.fs.stat(p).is_dir:
                raise Defer("diff of directories")
            datas.append(_read(inv, n))
        except OSError as e:
            err(inv, f"{n}: {errno_text(e)}")
            return 2
    if datas[0] == datas[1]:
        if "s" in keys:
            inv.out(f"Files {ops[0]} and {ops[1]} are identical\n")
        return 0
    if keys & {"w", "B"} and not (b"\0" in datas[0] or b"\0" in datas[1]):  # binary files compare bytes
        if "s" in keys:
            raise Defer("diff -s with -w/-B")
        if _same_ignoring(datas[0], datas[1], "w" in keys, "B" in keys):
            return 0
    if "q" in keys:
        inv.out(f"Files {ops[0]} and {ops[1]} differ\n")
        return 1
    raise Defer("diff output of differing files")


_WHITE = re.compile(rb"[ \t\v\f\r]")  # C isspace without the newline that ends a line


def _same_ignoring(a: bytes, b: bytes, all_space: bool, blank: bool) -> bool:
    """Whether ``diff -w``/``-B`` finds no difference to report between two texts.

    Lines compare after every white-space byte is removed (``-w``, ``IGNORE_ALL_SPACE``); with
    ``-B`` a hunk whose lines are all blank (empty once white space is skipped) is ignored. When
    the texts are the same line for line, no hunk exists; when their non-blank lines differ, some
    hunk holds a non-blank line. Between the two (the same non-blank lines, different blank ones)
    the answer depends on how diff's edit script aligns the lines: deferred, as is a last line
    without a newline on one side only (how it then compares is not modelled). "Blank" is taken
    in its widest sense (white space only): non-blank lines that differ in that sense differ in
    any narrower one too, since the same filter applied to equal texts gives equal texts.
    """
    if a.endswith(b"\n") != b.endswith(b"\n") and a and b:
        raise Defer("diff -w/-B: one file's last line has no newline")

    def lines(data: bytes) -> list[bytes]:
        out = data.split(b"\n")
        if out and out[-1] == b"":
            out.pop()
        return [_WHITE.sub(b"", ln) for ln in out] if all_space else out

    la, lb = lines(a), lines(b)
    if la == lb:
        return True
    if not blank:
        return False

    def is_blank(ln: bytes) -> bool:
        return not (_WHITE.sub(b"", ln) if not all_space else ln)
    if [ln for ln in la if not is_blank(ln)] != [ln for ln in lb if not is_blank(ln)]:
        return False
    # One text is the other with empty lines added (a file that ends in one more blank line):
    # every minimal edit script then only adds those lines, and diff's script is minimal for
    # costs below its TOO_EXPENSIVE bound (4096, ``diag``); the added lines are the same
    # multiset whichever match is taken.
    short, long_ = sorted((la, lb), key=len)
    if len(long_) < 4096 and _subsequence(short, long_):
        extra = collections.Counter(long_) - collections.Counter(short)
        if set(extra) == {b""}:
            return True
    raise Defer("diff -B: the files differ in blank lines only; which hunks diff makes decides")


def _subsequence(short: list[bytes], long_: list[bytes]) -> bool:
    it = iter(long_)
    return all(any(x == y for y in it) for x in short)


# ---- stat --------------------------------------------------------------------------------------

_FTYPE = {_stat.S_IFREG: "regular file", _stat.S_IFDIR: "directory", _stat.S_IFLNK: "symbolic link",
          _stat.S_IFIFO: "fifo", _stat.S_IFCHR: "character special file", _stat.S_IFBLK: "block special file",
          _stat.S_IFSOCK: "socket"}


def stat_cmd(inv: Invocation) -> int:
    """``stat [-L] -c FORMAT|--printf=FORMAT FILE...`` (the default long output is deferred).

    ``%d``/``%D`` (the device number) is the booted guest's: see :func:`fsinfo.device_number`.
    udev's ``stat -c %d/%i /`` against ``stat -Lc %d/%i /proc/1/root`` finds no
    ``/proc/1/root`` in a dormant image (nothing is mounted on /proc): the second stat fails
    as it does in a chroot without /proc, and the script takes its "in a chroot" branch, the
    one real dpkg in a chroot of the image takes too.
    """
    try:
        opts, ops = _args.parse(inv, _args.spec("Lc:t", {"dereference": "L", "format": "c",
                                                         "printf": ("printf", _args.REQ), "terse": "t"}))
    except _args.UsageError as e:
        return _args.usage(inv, e)
    deref = False
    fmt = None
    printf = False
    for k, v in opts:
        if k == "L":
            deref = True
        elif k == "c":
            fmt, printf = v, False
        elif k == "printf":
            fmt, printf = v, True
        else:
            raise Defer("stat -t")
    if fmt is None:
        raise Defer("stat without --format (long output)")
    if not ops:
        return _args.missing(inv)
    db = UserDB(inv)
    status = 0
    for name in ops:
        p = apath(inv, name)
        try:
            st = inv.fs.stat(p) if deref else inv.fs.lstat(p)
        except OSError as e:
            err(inv, f"cannot statx {quote(name)}: {errno_text(e)}")
            status = 1
            continue
        text = _format(inv, db, fmt, name, p, st, printf)
        inv.out(text + ("" if printf else "\n"))
    return status


def _format(inv: Invocation, db: UserDB, fmt: str, name: str, p: str, st, printf: bool) -> str:
    if printf:
        fmt = _printf_escapes(fmt)
    out = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c)
            i += 1
            continue
        m = re.match(r"%([-#0 +']*)(\d*)(?:\.(\d+))?([a-zA-Z%])", fmt[i:])
        if not m:
            out.append(c)
            i += 1
            continue
        flags, width, _prec, d = m.groups()
        i += len(m.group(0))
        if d == "%":
            out.append("%")
            continue
        val = _directive(inv, db, d, name, p, st)
        if width:
            w = int(width)
            val = val.ljust(w) if "-" in flags else (val.rjust(w, "0") if "0" in flags and val.isdigit() else val.rjust(w))
        out.append(val)
    return "".join(out)


def _directive(inv, db, d, name, p, st) -> str:
    mode = st.st_mode
    if d == "a":
        return f"{_stat.S_IMODE(mode):o}"
    if d == "A":
        return mode_string(mode)
    if d == "f":
        return f"{mode:x}"
    if d == "u":
        return str(st.st_uid)
    if d == "g":
        return str(st.st_gid)
    if d == "U":
        return db.user_name(st.st_uid) or "UNKNOWN"
    if d == "G":
        return db.group_name(st.st_gid) or "UNKNOWN"
    if d == "s":
        return str(st.st_size)
    if d == "n":
        return name
    if d == "N":
        if _stat.S_ISLNK(mode):
            return f"{quote(name)} -> {quote(inv.fs.readlink(p))}"
        return quote(name)
    if d == "F":
        t = _FTYPE.get(_stat.S_IFMT(mode), "weird file")
        return "regular empty file" if t == "regular file" and st.st_size == 0 else t
    if d == "i":
        return str(st.st_ino)
    if d in "dD":
        dev = device_number(inv, st)
        return str(dev) if d == "d" else f"{dev:x}"
    if d == "h":
        return str(st.st_nlink)
    if d in "XYZW":
        ns = {"X": st.st_atime_ns, "Y": st.st_mtime_ns, "Z": st.st_ctime_ns}.get(d)
        if ns is None:
            return "0"
        return str(ns // 10**9)
    if d in "xyz":
        ns = {"x": st.st_atime_ns, "y": st.st_mtime_ns, "z": st.st_ctime_ns}[d]
        _utc_only(inv)  # times are printed in the image's zone: only UTC is answered offline
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d} +0000"
    if d == "b":
        return str(st.st_blocks)
    if d == "B":
        return "512"
    if d in "tT":
        return f"{(st.st_rdev >> 8) & 0xFFF:x}" if d == "t" else f"{(st.st_rdev & 0xFF) | ((st.st_rdev >> 12) & 0xFFF00):x}"
    raise Defer(f"stat format %{d}")


def _printf_escapes(s: str) -> str:
    table = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "v": "\v", '"': '"'}
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in table:
                out.append(table[n])
                i += 2
                continue
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            if m:
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
        out.append(s[i])
        i += 1
    return "".join(out)

