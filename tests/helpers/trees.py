"""The facts of a host directory tree, path by path: what a differential test compares after
the real program ran in one copy of a tree and Nuwa's model in the other.

One walker (:func:`tree_facts`) and a few fact functions, each naming what a comparison
looks at. Tests differ in what they must ignore -- a short content hash where only "same or
not" matters, whole contents where a failure must show the bytes, mtimes only where the tool
sets them deterministically -- so the facts are a parameter, never a second walker.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from typing import Callable, Iterable

from helpers.paths import TOOLS

if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
# the facts tools/fidelity.py compares too, defined once there (tools/ runs without the tests)
from treefacts import full_facts  # noqa: E402,F401

__all__ = ["Facts", "tree_facts", "full_facts", "brief_facts", "content_facts", "dated_facts"]

#: (host path, lstat result) -> the facts compared for one entry
Facts = Callable[[str, os.stat_result], tuple]


def tree_facts(root: str, facts: Facts, subs: Iterable[str] = ("",), prune: Iterable[str] = (),
               include_subs: bool = False) -> dict[str, tuple]:
    """Relative path -> ``facts(path, lstat)`` for every entry below ``root/sub`` for each of
    ``subs`` (``""``: the whole tree; a missing sub gives nothing).

    Paths are relative to ``root`` (``os.path.relpath``), whatever the sub. ``prune`` names
    relative paths left out with everything below them (``proc``, ``.bin``); with
    ``include_subs`` each sub that is a directory is listed itself too. Symlinks are never followed.
    """
    pruned = {os.path.normpath(p.strip("/")) for p in prune}
    out: dict[str, tuple] = {}

    def keep(rel: str) -> bool:
        return not any(rel == p or rel.startswith(p + os.sep) for p in pruned)

    for sub in subs:
        top = os.path.join(root, sub) if sub else root
        if not os.path.lexists(top):
            continue
        if include_subs and os.path.isdir(top):
            out[os.path.relpath(top, root)] = facts(top, os.lstat(top))
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if keep(os.path.relpath(os.path.join(dirpath, d), root))]
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, root)
                if keep(rel):
                    out[rel] = facts(p, os.lstat(p))
    return out


def brief_facts(path: str, st: os.stat_result) -> tuple:
    """(``ls -l`` mode, uid, gid, size, short sha256 or link target, link count): what a
    coreutils-style command can change (a directory's size and link count read 0)."""
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            extra = hashlib.sha256(f.read()).hexdigest()[:16]
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(path)
    else:
        extra = ""
    isdir = stat.S_ISDIR(st.st_mode)
    return (stat.filemode(st.st_mode), st.st_uid, st.st_gid, 0 if isdir else st.st_size, extra,
            0 if isdir else st.st_nlink)


def content_facts(path: str, st: os.stat_result) -> tuple:
    """``("l", target)``, ``("d", mode)`` or ``("f", mode, contents)``: small trees whose
    differences should show the bytes themselves (modes as octal strings)."""
    if stat.S_ISLNK(st.st_mode):
        return ("l", os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("d", oct(st.st_mode & 0o7777))
    with open(path, "rb") as f:
        return ("f", oct(st.st_mode & 0o7777), f.read())


def dated_facts(since: int | None = None) -> Facts:
    """:func:`brief_facts` without the link count, a regular file's entry carrying (short
    sha256, mtime in ns) -- the mtime read as ``"new"`` when at or after ``since``: a file the
    run wrote carries each side's own clock, one it copied keeps its source's time."""

    def facts(path: str, st: os.stat_result) -> tuple:
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                extra = (hashlib.sha256(f.read()).hexdigest()[:16],
                         "new" if since is not None and st.st_mtime_ns >= since else st.st_mtime_ns)
        elif stat.S_ISLNK(st.st_mode):
            extra = os.readlink(path)
        else:
            extra = ""
        return (stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                extra)

    return facts
