"""Small filesystem trees the model tests share: built through the FileSystem interface, so
any backend (memory, host directory, ext4, an overlay) can hold them."""

from __future__ import annotations

import itertools
import stat

from nuwa.fs.memory import MemoryFS


def counter_clock(start: int = 1_700_000_000 * 10**9):
    """A clock that ticks 1 us at each reading (the model's times become deterministic)."""
    ticks = itertools.count(start, 1000)
    return lambda: next(ticks)


def app_tree(extra=None, capacity: int = 1 << 30, dirs=("/etc/app", "/var/lib/app", "/srv")) -> MemoryFS:
    """A package's world in miniature: its configuration, state and a big data file, in
    ``dirs``; ``extra(fs)`` gives the tree changes of its own."""
    fs = MemoryFS(capacity=capacity, clock=counter_clock())
    for d in dirs:
        fs.makedirs(d)
    fs.write_bytes("/etc/app/app.conf", b"mode=fast\n")
    fs.write_bytes("/etc/app/other.conf", b"unrelated\n")
    fs.write_bytes("/var/lib/app/state", b"1\n")
    fs.symlink("app.conf", "/etc/app/current")
    fs.write_bytes("/srv/data", b"x" * 10000)
    if extra is not None:
        extra(fs)
    return fs


def node_tree(fs) -> None:
    """Every kind of node in a few names (so an overlay over it has origins to load)."""
    fs.mkdir("/a", 0o755)
    fs.mkdir("/a/b", 0o750)
    fs.write_bytes("/a/a", b"hello")
    fs.write_bytes("/c", b"x" * 5000)
    fs.link("/c", "/a/c")
    fs.symlink("/a/b", "/b")
    fs.symlink("../c", "/a/b/a")
    fs.setxattr("/a/a", "user.k", b"v")
    fs.mknod("/a/b/p", stat.S_IFIFO | 0o644)  # opening a FIFO is refused (ENXIO) by the model
    fs.chown("/a", 5, 6)


def app_job(fs, links: bool = True) -> None:
    """What a package's unpack and postinst do to :func:`app_tree`: read configuration, write
    files, rename, remove, change modes, owners and xattrs (and, with ``links``, make a hard
    link and a symlink)."""
    conf = fs.read_bytes("/etc/app/app.conf")
    fs.makedirs("/usr/share/app")
    fs.write_bytes("/usr/share/app/seen", conf.upper())
    fs.write_bytes("/var/lib/app/state.new", b"2\n")
    fs.rename("/var/lib/app/state.new", "/var/lib/app/state")
    fs.unlink("/srv/data")
    fs.chmod("/etc/app/app.conf", 0o600)
    fs.chown("/usr/share/app/seen", 7, 8)
    if links:
        fs.link("/usr/share/app/seen", "/usr/share/app/seen2")
    fs.setxattr("/usr/share/app/seen", "user.origin", b"trace")
    if links:
        fs.symlink("/usr/share/app/seen", "/usr/share/app/latest")
