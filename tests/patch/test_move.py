"""Moving an image's own changes over a patched base (nuwa.patch.move's rules, nuwa.fs.transplant).

The judge is the tree itself: for each kind of own change, the base is patched once with its
job traced; the image (the base with its own changes) is patched alone; and when the rules of
``nuwa.patch.move`` find no conflict, the image's change set carried onto the patched base
(``apply_changes`` into an overlay, committed) must give exactly the tree patched alone, times
included (``diff_trees(times=True)``). Where the rules find a conflict, the reason names the
path, and the rule is not idle: the image answers the traced job differently (its replay
stops), or carrying the changes anyway fails or gives another tree than patched alone.
"""

from __future__ import annotations

import errno
import stat

import pytest

from helpers.smalltrees import app_job, app_tree, counter_clock
from nuwa.fs.diff import diff_trees
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.fs.trace import Trace, TraceMismatch, TracingFS, footprint, replay
from nuwa.fs.transplant import apply_changes, change_set
from nuwa.patch.move import conflict


def base(extra=None, capacity: int = 1 << 30) -> MemoryFS:
    """tests/fs/test_trace.py's tree with a /home; ``extra(fs)`` gives it changes of its own."""
    return app_tree(extra, capacity, dirs=("/etc/app", "/var/lib/app", "/srv", "/home"))


def job(fs) -> None:
    """A package's unpack and postinst (:func:`helpers.smalltrees.app_job`, without links)."""
    app_job(fs, links=False)


def _patched(fs, trace=None):
    """``fs`` after the job (traced into ``trace`` when given), committed."""
    ov = Overlay(fs if trace is None else TracingFS(fs, trace), clock=counter_clock(1_800_000_000 * 10**9))
    job(ov)
    ov.commit()
    return fs


def _own_elsewhere(fs):
    fs.makedirs("/home/u/docs")
    fs.write_bytes("/home/u/docs/a.txt", b"mine\n")
    fs.link("/home/u/docs/a.txt", "/home/u/hard")
    fs.symlink("docs/a.txt", "/home/u/link")
    fs.mknod("/home/u/fifo", stat.S_IFIFO | 0o600)
    fs.mknod("/home/u/tty", stat.S_IFCHR | 0o620, (4 << 8) | 1)
    fs.chown("/home/u", 1000, 1000)
    fs.setxattr("/home/u/docs/a.txt", "user.tag", b"own")
    fs.utime("/home/u/link", 5 * 10**18, 6 * 10**18, follow_symlinks=False)


def _own_unread_config(fs):
    fs.write_bytes("/etc/app/other.conf", b"mine, not the package's\n")  # listed beside app.conf, never read
    fs.setxattr("/etc/app/other.conf", "user.tag", b"own")


def _home(fs):
    """What the base holds in /home (nothing of it is touched by the job)."""
    fs.makedirs("/home/v/dir")
    fs.write_bytes("/home/v/file", b"a file\n")
    fs.write_bytes("/home/v/dir/inner", b"inner\n")
    fs.symlink("file", "/home/v/link")
    fs.write_bytes("/home/v/one", b"linked\n")
    fs.link("/home/v/one", "/home/v/two")
    fs.link("/home/v/one", "/home/v/three")


def _own_types(fs):
    _home(fs)
    fs.unlink("/home/v/file")
    fs.mkdir("/home/v/file")  # a file became a directory
    fs.write_bytes("/home/v/file/new", b"new\n")
    fs.unlink("/home/v/dir/inner")
    fs.rmdir("/home/v/dir")
    fs.symlink("file", "/home/v/dir")  # a directory became a symlink
    fs.unlink("/home/v/link")
    fs.symlink("dir", "/home/v/link")  # a symlink's target changed
    fs.unlink("/home/v/two")
    fs.write_bytes("/home/v/two", b"linked\n")  # left the hard-link group, same contents
    fs.link("/home/v/one", "/home/v/four")  # joined it


#: kind -> (own changes, the conflict the rules must name, or None: moved)
CASES = {
    "types-and-links": (_own_types, None),
    "elsewhere": (_own_elsewhere, None),
    "unread-config": (_own_unread_config, None),
    "read-config": (lambda fs: fs.write_bytes("/etc/app/app.conf", b"mode=slow\n"),
                    "/etc/app/app.conf (changed here and written by the update)"),
    "state": (lambda fs: fs.write_bytes("/var/lib/app/state", b"7\n"),
              "/var/lib/app/state (changed here and written by the update)"),
    "new-name-in-a-listed-directory": (lambda fs: fs.write_bytes("/etc/app/zzz.conf", b"new\n"),
                                       "/etc/app (changed here and read by the update)"),
    "removed-what-the-update-removes": (lambda fs: fs.unlink("/srv/data"),
                                        "/srv (changed here and written by the update)"),
    "symlink-retargeted": (lambda fs: (fs.unlink("/etc/app/current"), fs.symlink("other.conf", "/etc/app/current")),
                           "/etc/app (changed here and read by the update)"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_moved_equals_patched_alone_and_conflicts_are_named(kind):
    own, want = CASES[kind]
    start = _home if kind == "types-and-links" else None
    trace = Trace()
    patched = _patched(base(start), trace)
    image = base(own)
    cs = change_set(base(start), image)
    assert cs.paths, "the own change must show in the change set"
    why = conflict(cs, footprint(trace))
    assert why == want
    if want is not None:  # the rule is not idle: the job reads the image otherwise, or the two would differ
        try:
            replay(trace, base(own))
        except TraceMismatch:
            return
        alone = _patched(base(own))
        moved = Overlay(patched)
        try:
            apply_changes(cs, image, moved)
            moved.commit()
        except OSError:
            return
        assert diff_trees(patched, alone, times=True) != []
        return
    alone = _patched(base(own))
    moved = Overlay(patched)
    apply_changes(cs, image, moved)
    moved.commit()
    assert diff_trees(patched, alone, times=True) == []


def test_the_change_set_names_parents_of_added_and_removed_names_and_the_root():
    cs = change_set(base(), base(lambda fs: (fs.unlink("/srv/data"), fs.chmod("/", 0o700))))
    assert {"/srv/data", "/srv", "/"} <= cs.paths
    assert cs.renamed == {"/srv"}


def test_a_whole_filesystem_read_moves_nothing():
    trace = Trace()
    fs = TracingFS(base(), trace)
    fs.statvfs("/")
    assert conflict(change_set(base(), base(_own_elsewhere)), footprint(trace)) == \
        "the update asked for the free space (statvfs)"


def test_below_a_renamed_directory_is_a_conflict():
    trace = Trace()
    fs = TracingFS(base(), trace)
    fs.rename("/var/lib/app", "/var/lib/app.old")
    fp = footprint(trace)
    assert fp.moved == {"/var/lib/app", "/var/lib/app.old"}
    cs = change_set(base(), base(lambda f: f.write_bytes("/var/lib/app/state", b"9\n")))
    assert conflict(cs, fp) == \
        "/var/lib/app/state (changed here, below /var/lib/app, which the update renamed or removed)"


def test_an_own_change_that_does_not_fit_raises_enospc():
    patched = _patched(base())
    image = base(lambda fs: fs.write_bytes("/srv/big", b"\1" * (1 << 20)))
    cs = change_set(base(), image)
    small = base(capacity=64 * 1024)
    moved = Overlay(small)
    with pytest.raises(OSError) as e:
        apply_changes(cs, image, moved)
    assert e.value.errno == errno.ENOSPC
    assert patched.lexists("/usr/share/app/seen")


def test_an_access_time_of_its_own_is_part_of_the_change_set_and_is_carried():
    def own(fs):
        fs.utime("/etc/app/other.conf", 3 * 10**18, None)  # read on the machine, never changed
    image = base(own)
    cs = change_set(base(), image)
    assert cs.paths == {"/etc/app/other.conf"}
    assert cs.entries[0].changes == ["atime"]
    trace = Trace()
    patched = _patched(base(), trace)
    assert conflict(cs, footprint(trace)) is None
    moved = Overlay(patched)
    apply_changes(cs, image, moved)
    moved.commit()
    assert patched.lstat("/etc/app/other.conf").st_atime_ns == 3 * 10**18
