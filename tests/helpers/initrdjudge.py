"""The initramfs judge's member table: an archive unpacked by the real ``unmkinitramfs`` in a
chroot, as path -> (type, mode, uid, gid, size, content hash or link target), plus the hard-link
groups. cpio timestamps are left out: the real run stamps the files it creates with the clock.
Shared by tests/script/test_initramfs.py and the kernel update's end-to-end judge.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def members(root: str, image: str, where: str) -> dict[str, tuple]:
    """``unmkinitramfs`` of ``image`` (a path inside ``root``), as a table of members."""
    dest = f"/tmp/unpacked-{where}"
    r = subprocess.run(["chroot", root, "unmkinitramfs", image, dest], capture_output=True, env=PATH)
    assert r.returncode == 0, r.stderr
    top = root + dest
    table, inodes = {}, {}
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = ""
            table[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                          st.st_size if not stat.S_ISDIR(st.st_mode) else 0, what)
    table["<hard links>"] = sorted(sorted(g) for g in inodes.values())
    return table
