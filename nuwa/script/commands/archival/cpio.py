"""``cpio -o -H newc`` (GNU cpio 2.13, Debian 12): the archive mkinitramfs builds.

mkinitramfs pipes ``find . | LC_ALL=C sort`` into ``cpio --quiet [-R 0:0] [--reproducible] -o
-H newc``; the model writes the same bytes the real copy-out does (``src/copyout.c``,
``process_copy_out``; the header of ``write_out_new_ascii_header``):

- one ``070701`` header per name read from standard input (newline- or, with ``-0``,
  NUL-terminated), the name as given, NUL, padded to 4; then the data (a regular file's
  contents, a symbolic link's target) padded to 4; fields are 8 upper-case hex digits;
- a regular file with more than one link is *deferred* until its last link in the archive:
  the earlier links get headers with size 0, in most-recent-first order (``add_link_defer``
  prepends, ``writeout_other_defers`` walks from the head); links whose other names never
  come are written after the last name (``writeout_final_defers``), the data with the last
  of each inode's group;
- ``--reproducible`` is ``--ignore-devno --renumber-inodes``: device numbers 0, inodes
  numbered 0, 1, 2... in the order files are met (``util.c``, ``find_inode_val``);
- ``-R USER:GROUP`` sets every owner; ``TRAILER!!!`` ends the archive, which is padded with
  zeros to a whole 512-byte block; without ``--quiet`` "N blocks" goes to stderr;
- a name that cannot be stat'ed prints ``cpio: NAME: Cannot stat: ...`` and the exit status
  becomes 2, the other names still being archived.

Other modes (``-i``, ``-p``, ``-t``), other formats and options are deferred.
"""

from __future__ import annotations

import os
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB
from nuwa.script.context import Defer, Invocation, strerror

_SPEC = _args.spec("oH:R:0v", {"create": "o", "format": "H", "owner": "R", "null": "0", "quiet": "quiet",
                               "reproducible": "reproducible", "ignore-devno": "ignore-devno",
                               "renumber-inodes": "renumber-inodes", "verbose": "v"})

TRAILER = "TRAILER!!!"
BLOCK = 512


def _header(ino: int, mode: int, uid: int, gid: int, nlink: int, mtime: int, size: int,
            dev: int, rdev: int, name: bytes) -> bytes:
    """A newc header with its name, padded to 4 bytes (``write_out_new_ascii_header``)."""
    # dev_t split as the kernel's MAJOR()/MINOR() of glibc's gnu_dev_major/minor (os.major is
    # that pure arithmetic, no system call)
    fields = (ino, mode, uid, gid, nlink, mtime, size, os.major(dev), os.minor(dev), os.major(rdev), os.minor(rdev),
              len(name) + 1, 0)
    if any(f < 0 or f > 0xFFFFFFFF for f in fields):
        raise Defer("cpio: a field does not fit the newc header (file over 4 GiB?)")
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + bytes(-len(head) % 4)


class _Writer:
    """The copy-out loop's state: output, inode numbering, deferred hard links."""

    def __init__(self, renumber: bool, ignore_dev: bool, owner: tuple[int, int] | None):
        self.out = bytearray()
        self.renumber, self.ignore_dev, self.owner = renumber, ignore_dev, owner
        self.inodes: dict[tuple[int, int], int] = {}
        #: deferred links, most recent first: (key, header fields, data reader)
        self.defers: list[tuple] = []

    def ino(self, st) -> int:
        if not self.renumber:
            return st.st_ino & 0xFFFFFFFF
        key = (st.st_dev, st.st_ino)
        if key not in self.inodes:
            self.inodes[key] = len(self.inodes)
        return self.inodes[key]

    def write(self, name: bytes, st, ino: int, data: bytes | None, size: int | None = None) -> None:
        uid, gid = self.owner if self.owner else (st.st_uid, st.st_gid)
        dev = 0 if self.ignore_dev else st.st_dev
        rdev = st.st_rdev if _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode) else 0
        body = data if data is not None else b""
        self.out += _header(ino, st.st_mode, uid, gid, st.st_nlink, st.st_mtime_ns // 10**9,
                            len(body) if size is None else size, dev, rdev, name)
        self.out += body  # then its padding (body + padding would copy every file's data once more)
        self.out += bytes(-len(body) % 4)


def cpio(inv: Invocation) -> int:
    """``cpio -o -H newc [-R U:G] [--reproducible] [-0] [--quiet]`` (GNU cpio 2.13 copy-out)."""
    try:
        opts, rest = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        raise Defer(f"cpio: {e.text} (usage errors are not modelled)") from None
    names = {o for o, _ in opts}
    if "o" not in names or rest or "v" in names:
        raise Defer("cpio: only copy-out (-o) to standard output without -v is modelled")
    fmt = [v for o, v in opts if o == "H"]
    if fmt[-1:] != ["newc"]:
        raise Defer(f"cpio: archive format {fmt[-1] if fmt else 'bin'} is not modelled")
    owner = None
    for o, v in opts:
        if o == "R":
            owner = _owner(inv, v)
    reproducible = "reproducible" in names
    w = _Writer(reproducible or "renumber-inodes" in names, reproducible or "ignore-devno" in names, owner)
    sep = b"\0" if "0" in names else b"\n"
    status = 0
    for raw in inv.stdin.split(sep):
        if not raw:
            continue
        name = raw.decode("utf-8", "surrogateescape")
        path = inv.path(name)
        try:
            st = inv.fs.lstat(path)
            data = b""
            if _stat.S_ISREG(st.st_mode):
                data = inv.fs.read_bytes(path)
            elif _stat.S_ISLNK(st.st_mode):
                data = inv.fs.readlink(path).encode("utf-8", "surrogateescape")
        except OSError as e:
            inv.err(f"cpio: {name}: Cannot stat: {strerror(e)}\n")
            status = 2
            continue
        if _stat.S_ISSOCK(st.st_mode):
            raise Defer("cpio: sockets in the archive are not modelled")
        raw = _strip_dot_slash(raw)
        ino = w.ino(st)  # numbered when met, even if the header is written later
        if _stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            earlier = [d for d in w.defers if d[0] == key]
            if len(earlier) != st.st_nlink - 1:  # not the last link: keep it for later
                w.defers.insert(0, (key, raw, st, ino, data))
                continue
            for d in earlier:  # writeout_other_defers: the earlier links, with size 0
                w.write(d[1], d[2], d[3], None, 0)
            w.defers = [d for d in w.defers if d[0] != key]
        w.write(raw, st, ino, data)
    while w.defers:  # writeout_final_defers
        key, raw, st, ino, data = w.defers.pop(0)
        last = not any(d[0] == key for d in w.defers)
        w.write(raw, st, ino, data if last else None, None if last else 0)
    w.out += _header(0, 0, 0, 0, 1, 0, 0, 0, 0, TRAILER.encode())
    w.out += bytes(-len(w.out) % BLOCK)
    blocks = len(w.out) // BLOCK
    inv.out_buffer(w.out)
    if "quiet" not in names:
        inv.err(f"{blocks} block{'' if blocks == 1 else 's'}\n")
    return status


def _strip_dot_slash(name: bytes) -> bytes:
    """copyout.c: "Strip leading `./' from the filename" (and the slashes after it)."""
    while name[:2] == b"./":
        name = name[2:].lstrip(b"/")
    return name


def _owner(inv: Invocation, spec: str) -> tuple[int, int]:
    """``-R USER:GROUP`` (or ``USER.GROUP``), names from the image's account files."""
    user, sep, group = spec.partition(":") if ":" in spec else spec.partition(".")
    if not sep or not user or not group:
        raise Defer(f"cpio: -R {spec} without an explicit group is not modelled")

    db = UserDB(inv)
    uid, gid = db.uid(user), db.gid(group)
    if uid is None or gid is None:
        raise Defer(f"cpio: unknown owner in -R {spec}")
    return uid, gid
