"""Per-path records of a tree as three observers see it: a host directory, a filesystem-model
backend (Nuwa), and debugfs (``ls -p`` + ``stat`` + ``rdump``), so tests can compare them.

A record is a dict with the keys each observer can report; comparisons take the keys both
sides have. Times are integer nanoseconds; ``sha`` is the sha256 of a regular file's content.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile

from judges import run, tool

SKIP = ("/lost+found",)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def host_tree(root: str, xattrs: bool = True) -> dict[str, dict]:
    """Records of a host directory (the oracle for what mke2fs -d copied)."""
    out: dict[str, dict] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = "/" + os.path.relpath(p, root)
            st = os.lstat(p)
            rec = {"type": stat.S_IFMT(st.st_mode), "perm": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
                   "gid": st.st_gid, "nlink": st.st_nlink, "mtime_ns": st.st_mtime_ns}
            if not stat.S_ISDIR(st.st_mode):
                rec["size"] = st.st_size
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rec["sha"] = _sha(f.read())
            if stat.S_ISLNK(st.st_mode):
                rec["target"] = os.readlink(p)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                rec["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if xattrs and not stat.S_ISLNK(st.st_mode):
                rec["xattrs"] = {k: os.getxattr(p, k, follow_symlinks=False)
                                 for k in os.listxattr(p, follow_symlinks=False)}
            out[rel] = rec
    return out


def fs_tree(fs, top: str = "/", xattrs: bool = True) -> dict[str, dict]:
    """Records of a filesystem-model backend, same shape as :func:`host_tree` plus ``ino``."""
    out: dict[str, dict] = {}
    for dirpath, dirnames, filenames in fs.walk(top):
        for n in dirnames + filenames:
            p = dirpath.rstrip("/") + "/" + n
            if p in SKIP:
                continue
            st = fs.lstat(p)
            rec = {"ino": st.st_ino, "type": stat.S_IFMT(st.st_mode), "perm": stat.S_IMODE(st.st_mode),
                   "uid": st.st_uid, "gid": st.st_gid, "nlink": st.st_nlink, "mtime_ns": st.st_mtime_ns}
            if not stat.S_ISDIR(st.st_mode):
                rec["size"] = st.st_size
            if stat.S_ISREG(st.st_mode):
                rec["sha"] = _sha(fs.read_bytes(p))
            if stat.S_ISLNK(st.st_mode):
                rec["target"] = fs.readlink(p)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                rec["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if xattrs and not stat.S_ISLNK(st.st_mode):
                rec["xattrs"] = {k: fs.getxattr(p, k, follow_symlinks=False)
                                 for k in fs.listxattr(p, follow_symlinks=False)}
            out[p] = rec
    return out


def _debugfs_script(image: str, lines: list[str]) -> str:
    script = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    r = run([tool("debugfs"), "-f", "-", image], input=script, check=False, text=False)
    return r.stdout.decode("utf-8", "surrogateescape")


def _quote(path: str) -> str:
    assert '"' not in path and "\n" not in path, path
    return '"' + path + '"'


def _signed32(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


def debugfs_tree(image: str, contents: bool = True) -> dict[str, dict]:
    """Records of an image as debugfs reads it (its own ext2fs library, not Nuwa).

    Names and inode numbers from ``ls -p`` (breadth first), metadata from ``stat <ino>``
    (mtime decoded from the raw ``i_mtime``/``i_mtime_extra`` words debugfs prints), content
    and link targets from ``rdump`` into a temporary directory.
    """
    entries: dict[str, tuple[int, int]] = {}
    level = ["/"]
    while level:
        out = _debugfs_script(image, [f"ls -p {_quote(d)}" for d in level])
        nxt = []
        cur = None
        for line in out.split("\n"):
            if line.startswith("debugfs: ls -p "):
                cur = line[len("debugfs: ls -p ") :].strip()[1:-1]
                continue
            parts = line.split("/")
            if cur is None or len(parts) != 8 or parts[0] != "" or not parts[1].isdigit():
                continue
            ino, mode, name = int(parts[1]), int(parts[2], 8), parts[5]
            if ino == 0 or name in (".", ".."):
                continue
            p = cur.rstrip("/") + "/" + name
            if p in SKIP:
                continue
            entries[p] = (ino, mode)
            if stat.S_ISDIR(mode):
                nxt.append(p)
        level = nxt
    inos = sorted({ino for ino, _ in entries.values()})
    stats: dict[int, dict] = {}
    out = _debugfs_script(image, [f"stat <{i}>" for i in inos])
    for chunk in out.split("debugfs: stat <")[1:]:
        ino = int(chunk.split(">", 1)[0])
        rec: dict = {}
        m = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+).*?Size: (\d+)", chunk)
        rec["uid"], rec["gid"], rec["size"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
        rec["nlink"] = int(re.search(r"Links: (\d+)", chunk).group(1))
        m = re.search(r"^\s*mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))?", chunk, re.M)
        secs = _signed32(int(m.group(1), 16))
        extra = int(m.group(2), 16) if m.group(2) else 0
        rec["mtime_ns"] = (secs + ((extra & 3) << 32)) * 10**9 + (extra >> 2)
        m = re.search(r"Device major/minor number: (\d+):(\d+)", chunk)
        if m:
            rec["rdev"] = (int(m.group(1)), int(m.group(2)))
        stats[ino] = rec
    dump = tempfile.mkdtemp(prefix="nuwa-rdump-")
    try:
        if contents:
            _debugfs_script(image, [f"rdump / {dump}"])
        result: dict[str, dict] = {}
        for p, (ino, mode) in entries.items():
            rec = {"ino": ino, "type": stat.S_IFMT(mode), "perm": stat.S_IMODE(mode), **stats[ino]}
            if stat.S_ISDIR(mode):
                del rec["size"]
            if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
                rec.pop("rdev", None)
            host = os.path.join(dump, p.lstrip("/"))
            if contents and stat.S_ISREG(mode):
                with open(host, "rb") as f:
                    data = f.read()
                # debugfs 1.47 dumps an inline-data file only up to its inline bytes even when
                # i_size is larger (the kernel reads the rest as zeros): no content oracle then.
                if len(data) == rec["size"]:
                    rec["sha"] = _sha(data)
            if contents and stat.S_ISLNK(mode):
                rec["target"] = os.readlink(host)
            result[p] = rec
        return result
    finally:
        shutil.rmtree(dump, ignore_errors=True)


def diff(a: dict[str, dict], b: dict[str, dict], keys: tuple[str, ...] | None = None, limit: int = 15) -> list[str]:
    """Human-readable differences between two record maps (paths, then shared keys)."""
    out = []
    for p in sorted(set(a) - set(b))[:limit]:
        out.append(f"only in first: {p!r}")
    for p in sorted(set(b) - set(a))[:limit]:
        out.append(f"only in second: {p!r}")
    for p in sorted(set(a) & set(b)):
        ks = set(a[p]) & set(b[p])
        if keys is not None:
            ks &= set(keys)
        for k in sorted(ks):
            if a[p][k] != b[p][k]:
                out.append(f"{p!r} {k}: {a[p][k]!r} != {b[p][k]!r}")
        if len(out) > 3 * limit:
            break
    return out
