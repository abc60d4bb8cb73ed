"""Helpers shared by the command models: coreutils' quoting, error lines, users and groups.

Quoting follows gnulib's ``quotearg`` in the C locale, as coreutils 9.1 use it:
:func:`quote` is ``quoteaf`` (shell-escape-always: ``'x'``, ``"a'b"``, ``'a'$'\\n''b'``) used in
most file-utility messages; :func:`quotef` is ``quotef`` (shell-escape: quotes only when the
name needs it) used by cat, wc, md5sum and friends.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat as _stat
import time

from nuwa.script.context import Defer, Invocation

_NAMED_ESC = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}
#: characters that make shell-escape style quote a name (gnulib quotearg.c, shell style)
_SHELL_SPECIAL = set(" \t\n!\"#$&'()*;<>?[\\]^`{|}~=")


def _printable(c: str) -> bool:
    o = ord(c)
    return 0x20 <= o < 0x7F


def _octal(c: str) -> str:
    o = ord(c)
    if c in _NAMED_ESC:
        return "\\" + _NAMED_ESC[c]
    if 0xDC80 <= o <= 0xDCFF:  # surrogateescape'd raw byte
        return f"\\{o - 0xDC00:03o}"
    elif o >= 0x80:  # a decoded non-ASCII character: its UTF-8 bytes, each escaped (C locale)
        return "".join(f"\\{b:03o}" for b in c.encode("utf-8"))
    return f"\\{o:03o}"


def quote(s: str) -> str:
    """gnulib ``quoteaf``: shell-escape-always quoting (what rm, mv, chmod... print)."""
    if s == "":
        return "''"
    needs_esc = any(not _printable(c) for c in s)
    if "'" in s and not needs_esc and not any(c in s for c in '$`"\\'):
        return '"' + s + '"'
    segs: list[tuple[str, str]] = []  # ("lit"|"esc"|"sq", text), rendered 'lit' $'esc' \'
    for c in s:
        kind = "sq" if c == "'" else ("lit" if _printable(c) else "esc")
        text = c if kind != "esc" else _octal(c)
        if segs and segs[-1][0] == kind and kind != "sq":
            segs[-1] = (kind, segs[-1][1] + text)
        else:
            segs.append((kind, text))
    out = [] if segs[0][0] == "lit" else ["''"]
    for kind, text in segs:
        out.append({"lit": f"'{text}'", "esc": f"$'{text}'", "sq": "\\'"}[kind])
    return "".join(out)


def quotef(s: str) -> str:
    """gnulib ``quotef``: shell-escape quoting, only when the name needs it."""
    if s and all(_printable(c) and c not in _SHELL_SPECIAL for c in s):
        return s
    return quote(s)


def prog(inv: Invocation) -> str:
    """The program name as coreutils print it (``argv[0]`` as given)."""
    return inv.argv[0] if inv.argv else inv.name


def err(inv: Invocation, msg: str) -> None:
    """Print ``prog: msg`` on stderr."""
    inv.err(f"{prog(inv)}: {msg}\n")


def errno_text(e: OSError) -> str:
    """The C library's text for ``e.errno``."""
    return os.strerror(e.errno) if e.errno else str(e)


def oserr(inv: Invocation, what: str, e: OSError) -> None:
    """Print ``prog: WHAT: strerror`` (``what`` already quoted by the caller)."""
    err(inv, f"{what}: {errno_text(e)}")


def apath(inv: Invocation, p: str) -> str:
    """An operand made absolute in the image (empty stays empty so it fails with ENOENT)."""
    if p == "":
        return ""
    return inv.path(p)


def now_ns() -> int:
    """The current time; simulated commands stamp files with the real clock like the kernel."""
    return time.time_ns()


def read_input(inv: Invocation, name: str) -> bytes:
    """The bytes of an input operand (``-`` is stdin); OSError as the kernel gives it."""
    if name == "-":
        return bytes(inv.stdin)
    p = apath(inv, name)
    st = inv.fs.stat(p)
    if _stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, os.strerror(21), name)
    return inv.fs.read_bytes(p)


def is_dir(inv: Invocation, p: str, follow: bool = True) -> bool:
    """True if image path ``p`` is a directory (following symlinks unless told not to)."""
    try:
        st = inv.fs.stat(p) if follow else inv.fs.lstat(p)
    except (OSError, ValueError):
        return False
    return _stat.S_ISDIR(st.st_mode)


def same_file(a, b) -> bool:
    """Two Stat results name the same inode."""
    return a.st_ino == b.st_ino and a.st_dev == b.st_dev


def basename_of(p: str) -> str:
    """``basename`` of an operand, ignoring trailing slashes (``a/b/`` -> ``b``)."""
    s = p.rstrip("/")
    return posixpath.basename(s) if s else "/"


# ---- users and groups from the image ---------------------------------------------------------

class UserDB:
    """The image's ``/etc/passwd`` and ``/etc/group`` (the files NSS ``files`` reads)."""

    def __init__(self, inv: Invocation):
        self.passwd = _table(inv, "/etc/passwd")
        self.group = _table(inv, "/etc/group")

    def user(self, name: str) -> list[str] | None:
        """The passwd entry (fields) of ``name``, or None."""
        for f in self.passwd:
            if f[0] == name:
                return f
        return None

    def user_by_uid(self, uid: int) -> list[str] | None:
        for f in self.passwd:
            if len(f) > 2 and f[2] == str(uid):
                return f
        return None

    def grp(self, name: str) -> list[str] | None:
        for f in self.group:
            if f[0] == name:
                return f
        return None

    def grp_by_gid(self, gid: int) -> list[str] | None:
        for f in self.group:
            if len(f) > 2 and f[2] == str(gid):
                return f
        return None

    def uid(self, name: str) -> int | None:
        """Resolve a user name, then a number, as coreutils' parse_user_spec does."""
        e = self.user(name)
        if e is not None and len(e) > 3 and e[2].isdigit():
            return int(e[2])
        return _number(name)

    def gid(self, name: str) -> int | None:
        e = self.grp(name)
        if e is not None and len(e) > 2 and e[2].isdigit():
            return int(e[2])
        return _number(name)

    def user_name(self, uid: int) -> str | None:
        e = self.user_by_uid(uid)
        return e[0] if e else None

    def group_name(self, gid: int) -> str | None:
        e = self.grp_by_gid(gid)
        return e[0] if e else None

    def groups_of(self, name: str) -> list[int]:
        """Supplementary group ids whose member list names ``name`` (getgrouplist order)."""
        out = []
        for f in self.group:
            if len(f) > 3 and name in f[3].split(",") and f[2].isdigit():
                out.append(int(f[2]))
        return out


def _number(s: str) -> int | None:
    if s.isdigit() and int(s) < 2**32 - 1:
        return int(s)
    return None


def _table(inv: Invocation, path: str) -> list[list[str]]:
    try:
        data = inv.fs.read_bytes(path)
    except (OSError, ValueError):
        return []
    rows = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        if not line or line.startswith("#") or line.startswith("+") or line.startswith("-"):
            continue
        rows.append(line.split(":"))
    return rows


def selinux_context_option(inv: Invocation, value: str | None, warning: str | None) -> None:
    """``-Z``/``--context[=CTX]`` of mkdir, cp, mv on the booted VM.

    coreutils act on it only when the kernel runs SELinux (or SMACK): a Debian image that
    configures SELinux (``/etc/selinux/config`` not ``disabled``) is deferred; otherwise plain
    ``-Z`` is ignored silently and ``--context=CTX`` prints the program's ``warning``.
    """
    try:
        conf = inv.fs.read_bytes("/etc/selinux/config").decode("utf-8", "replace")
    except (OSError, ValueError):
        conf = ""
    for line in conf.splitlines():
        key, _, val = line.strip().partition("=")
        if key.strip() == "SELINUX" and val.strip().lower() not in ("disabled", ""):
            raise Defer(f"{inv.name} -Z: the image runs SELinux")
    if value is not None and warning:
        err(inv, warning)


def mode_string(mode: int) -> str:
    """``ls -l``'s ten-character mode string (``drwxr-xr-x``), as ``stat %A`` prints it."""
    return _stat.filemode(mode)


def content_sha256(fs, path: str) -> str | None:
    """The SHA-256 (hex) of the file at image path ``path``, None when it cannot be read: how
    the models that recognise a fixed program or module by its text guard it."""
    try:
        return hashlib.sha256(fs.read_bytes(path)).hexdigest()
    except (OSError, ValueError):
        return None
