"""SHA-256 digests: of a file (images must stay byte-identical after a read, a refusal or a
dry run) and of a whole host tree (a refused or rolled-back run must not touch it)."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

from helpers.paths import TOOLS

# one definition of a file's digest for the tests and tools/fidelity.py (tools/ runs without the tests)
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
from treefacts import file_sha256  # noqa: E402

__all__ = ["file_sha256", "tree_hash"]


def tree_hash(root: str) -> str:
    """One digest over every path, type, mode, owner, size, content, link target and xattr under
    ``root`` (walked in sorted order, so two equal trees give equal digests)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)}|{st.st_mode}|{st.st_uid}|{st.st_gid}|{st.st_size}|".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h.update(f.read())
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                h.update(x.encode() + os.getxattr(p, x, follow_symlinks=False))
    return h.hexdigest()
