"""``ls -l`` formatting shared by ``nuwa ls`` and the simulated ``ls`` of maintainer scripts.

coreutils 9.1's long format: the mode string (``filemodestring``), link count, owner and group
names (from the *image's* ``/etc/passwd`` and ``/etc/group``; a number when unknown), size or
``major, minor``, the date (``%b %e %H:%M`` for the last six months, ``%b %e  %Y`` otherwise)
and the name with `` -> target`` for links, columns aligned as ``ls`` aligns them. Every
function takes any :class:`nuwa.fs.model.FileSystem`. The date is rendered in the host's
local zone unless the caller passes ``date_of`` (the ``ls`` model renders it in the image's).
"""

from __future__ import annotations

import os
import stat as S
import time
from typing import Callable

from nuwa.fs.model import FileSystem

_ID_FILE_MAX = 8 << 20
SIX_MONTHS = 15778476  # seconds; coreutils' "recent" limit for the short date form


def id_names(fs: FileSystem, path: str) -> dict[int, str]:
    """uid (or gid) -> name from the image's ``/etc/passwd`` (or ``/etc/group``)."""
    try:
        h = fs.open_handle(path)
        try:
            data = h.pread(0, min(h.size(), _ID_FILE_MAX))
        finally:
            h.close()
    except OSError:
        return {}
    out: dict[int, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        f = line.split(":")
        if len(f) >= 3 and f[2].isdigit():
            out.setdefault(int(f[2]), f[0])
    return out


class Owners:
    """Owner and group names of one image, loaded once."""

    def __init__(self, fs: FileSystem):
        self.users, self.groups = id_names(fs, "/etc/passwd"), id_names(fs, "/etc/group")

    def user(self, uid: int, unknown: str | None = None) -> str:
        """The name (``ls`` shows the number for an unknown id, ``stat`` shows UNKNOWN)."""
        return self.users.get(uid, str(uid) if unknown is None else unknown)

    def group(self, gid: int, unknown: str | None = None) -> str:
        return self.groups.get(gid, str(gid) if unknown is None else unknown)


def mode_string(mode: int) -> str:
    """``ls -l``'s ten-character mode (coreutils ``filemodestring``)."""
    kind = {S.S_IFREG: "-", S.S_IFDIR: "d", S.S_IFLNK: "l", S.S_IFIFO: "p", S.S_IFSOCK: "s",
            S.S_IFCHR: "c", S.S_IFBLK: "b"}.get(S.S_IFMT(mode), "?")
    out = [kind]
    for shift, special, ch in ((6, S.S_ISUID, "s"), (3, S.S_ISGID, "s"), (0, S.S_ISVTX, "t")):
        bits = (mode >> shift) & 7
        out.append("r" if bits & 4 else "-")
        out.append("w" if bits & 2 else "-")
        x = bool(bits & 1)
        if mode & special:
            out.append(ch if x else ch.upper())
        else:
            out.append("x" if x else "-")
    return "".join(out)


def major_minor(rdev: int) -> tuple[int, int]:
    """Linux's major and minor numbers of a device number."""
    return os.major(rdev), os.minor(rdev)


def ls_date(mtime_ns: int, now: float) -> str:
    """``ls -l``'s date column in the host's local zone."""
    t = mtime_ns / 1e9
    lt = time.localtime(t)
    if now - SIX_MONTHS < t <= now + 60:  # coreutils: recent -> time of day, else the year
        return time.strftime("%b %e %H:%M", lt)
    return time.strftime("%b %e  %Y", lt)


def ls_long_lines(fs: FileSystem, items: list[tuple[str, str]], owners: Owners, now: float | None = None,
                  date_of: Callable[[int, float], str] | None = None, numeric: bool = False,
                  follow: bool = False) -> list[str]:
    """``ls -l`` lines for ``(path, display name)`` pairs, columns aligned as coreutils does.

    ``date_of(mtime_ns, now)`` renders the date column (default :func:`ls_date`);
    ``numeric`` shows ids as numbers (``ls -n``); ``follow`` describes what a symlink points
    to instead of the link (``ls -L``).
    """
    now = time.time() if now is None else now
    date_of = date_of or ls_date
    rows = []
    for path, name in items:
        st = fs.stat(path) if follow else fs.lstat(path)
        kind = S.S_IFMT(st.st_mode)
        if kind in (S.S_IFCHR, S.S_IFBLK):
            ma, mi = major_minor(st.st_rdev)
            size = f"{ma}, {mi:>3}"
        else:
            size = str(st.st_size)
        tail = f" -> {fs.readlink(path)}" if kind == S.S_IFLNK else ""
        rows.append((mode_string(st.st_mode), str(st.st_nlink), (str(st.st_uid) if numeric else owners.user(st.st_uid)),
                     (str(st.st_gid) if numeric else owners.group(st.st_gid)),
                     size, date_of(st.st_mtime_ns, now), name + tail))
    if not rows:
        return []
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    return [f"{r[0]} {r[1]:>{w[1]}} {r[2]:<{w[2]}} {r[3]:<{w[3]}} {r[4]:>{w[4]}} {r[5]} {r[6]}" for r in rows]
