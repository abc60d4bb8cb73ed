"""A cheap copy of a cached read-only tree for judges that only replace or remove whole files
(``py_compile`` writes a temporary file and renames it; ``linux-update-symlinks`` renames new
symlinks over old ones): directories are made, files are hard links, symlinks are copied.
"""
from __future__ import annotations

import os
import shutil
import stat

#: what a judge that needs no kernel does not need: the modules and images, documentation
NO_KERNEL = ("lib/modules", "usr/lib/modules", "usr/share/doc", "usr/share/man", "usr/share/locale")


def hardlink_copy(src: str, dst: str, skip: tuple[str, ...] = (), hard: bool = True) -> str:
    """Copy ``src`` to ``dst`` (hard-linked files), leaving out the relative paths ``skip``.

    Never write into a file of a hard-linked copy in place: it is the cache's file too. With
    ``hard=False`` the files are real copies (mode, owner, times, xattrs), for dpkg's writes.
    """
    for top, dirs, files in os.walk(src):
        rel = os.path.relpath(top, src)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in skip]
        out = os.path.join(dst, rel)
        os.makedirs(out, exist_ok=True)
        shutil.copystat(top, out)
        st = os.lstat(top)
        os.chown(out, st.st_uid, st.st_gid)
        for n in list(dirs) + files:
            p, q = os.path.join(top, n), os.path.join(out, n)
            if os.path.islink(p):
                if n in dirs:
                    dirs.remove(n)
                os.symlink(os.readlink(p), q)
                os.lchown(q, os.lstat(p).st_uid, os.lstat(p).st_gid)
            elif n in files and not stat.S_ISREG(os.lstat(p).st_mode):
                st = os.lstat(p)
                os.mknod(q, st.st_mode, st.st_rdev)  # /dev's nodes: a chroot needs /dev/null
                os.chown(q, st.st_uid, st.st_gid)
            elif n in files and hard:
                os.link(p, q)
            elif n in files:
                shutil.copy2(p, q)
                os.chown(q, os.lstat(p).st_uid, os.lstat(p).st_gid)
    return dst


def put_anew(root: str, rel: str, data: bytes | None = None, mode: int = 0o644, link: str | None = None) -> None:
    """Create or replace ``rel`` under ``root`` as a new inode (a hard-linked copy shares its
    files with the cache: never write into them): a file with ``data`` and ``mode``, a
    symbolic link to ``link``, or a directory when neither is given."""
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.lexists(p):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    if link is not None:
        os.symlink(link, p)
    elif data is None:
        os.mkdir(p)
    else:
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
