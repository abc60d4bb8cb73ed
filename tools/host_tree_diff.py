#!/usr/bin/env python3
"""The host-side comparison of two unpacked trees: which paths differ, and how.

    python3 tools/host_tree_diff.py TREE_A TREE_B

Walks both trees with ``os.lstat`` (never following symlinks) and reports every path whose
type, permission bits, owner, group, size (not for directories), device number, link target,
content (sha256) or xattrs differ, or that exists on one side only. mtimes are compared only
with ``times=True``. This is the reference ``nuwa diff`` is checked against (tests) and timed
against (benchmarks/bench_diff.py) when ``rsync`` is not installed.
"""

from __future__ import annotations

import hashlib
import os
import stat as S
import sys


def _sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _walk(top: str, times: bool) -> dict:
    out = {}
    for dirpath, dirs, names in os.walk(top):
        for n in dirs + names:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            kind = S.S_IFMT(st.st_mode)
            info = (kind, S.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                    None if kind == S.S_IFDIR else st.st_size,
                    st.st_rdev if kind in (S.S_IFCHR, S.S_IFBLK) else 0)
            if kind == S.S_IFLNK:
                info += (os.readlink(p),)
            else:
                info += (tuple(sorted((x, os.getxattr(p, x, follow_symlinks=False))
                                      for x in os.listxattr(p, follow_symlinks=False))),)
            if times:
                info += (st.st_mtime_ns,)
            out["/" + os.path.relpath(p, top)] = (info, p if kind == S.S_IFREG else None)
    return out


def host_tree_diff(a: str, b: str, times: bool = False) -> set[str]:
    """Paths (image-style, starting with /) that differ between host trees ``a`` and ``b``."""
    wa, wb = _walk(a, times), _walk(b, times)
    diff = set(wa.keys() ^ wb.keys())
    for p in wa.keys() & wb.keys():
        (ia, fa), (ib, fb) = wa[p], wb[p]
        if ia != ib or (fa and fb and _sha(fa) != _sha(fb)):
            diff.add(p)
    return diff


if __name__ == "__main__":
    for p in sorted(host_tree_diff(sys.argv[1], sys.argv[2])):
        print(p)
