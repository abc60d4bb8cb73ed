"""Traces (nuwa.fs.trace): a job recorded over one filesystem, replayed over another.

The judge is the tree itself: a trace replayed on a filesystem that answers alike leaves it
exactly (times included) as the job left the traced one -- compared with ``diff_trees`` -- and
a filesystem that answers any read the job made differently stops the replay.
"""

from __future__ import annotations

import errno
import os

import pytest

from helpers.smalltrees import app_job, app_tree, counter_clock
from nuwa.fs.diff import diff_trees
from nuwa.fs.memory import BLOCK, MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.fs.trace import Trace, TraceMismatch, TracingFS, footprint, replay


def job(fs) -> None:
    """A package's unpack and postinst (:func:`helpers.smalltrees.app_job`, links included)."""
    app_job(fs)


def record(fs) -> Trace:
    trace = Trace()
    ov = Overlay(TracingFS(fs, trace), clock=counter_clock(1_800_000_000 * 10**9))
    job(ov)
    ov.commit()
    return trace


def test_a_replay_on_an_equal_tree_ends_as_the_job_did():
    a, b = app_tree(), app_tree()
    trace = record(a)
    assert trace.writes > 0 and trace.data > 0
    replay(trace, b)
    assert diff_trees(a, b, times=True) == []
    assert b.read_bytes("/usr/share/app/seen") == b"MODE=FAST\n"


def test_a_read_answered_differently_stops_the_replay():
    trace = record(app_tree())
    b = app_tree(lambda fs: fs.write_bytes("/etc/app/app.conf", b"mode=slow\n"))  # read by the job
    with pytest.raises(TraceMismatch):
        replay(trace, b)


def test_a_listed_name_the_job_never_looked_up_may_differ():
    # other.conf is listed with /etc/app (the overlay loads whole directories) but never looked up
    a = app_tree()
    trace = record(a)
    b = app_tree(lambda fs: fs.write_bytes("/etc/app/other.conf", b"changed, and longer than before\n"))
    replay(trace, b)
    assert b.read_bytes("/usr/share/app/seen") == a.read_bytes("/usr/share/app/seen")
    assert b.read_bytes("/etc/app/other.conf") == b"changed, and longer than before\n"
    assert [e.path for e in diff_trees(a, b, times=True)] == ["/etc/app/other.conf"]


def test_a_listing_with_other_names_stops_the_replay():
    trace = record(app_tree())
    with pytest.raises(TraceMismatch):
        replay(trace, app_tree(lambda fs: fs.write_bytes("/etc/app/extra.conf", b"")))


def test_free_space_is_a_bound_not_a_value():
    a = app_tree()
    trace = record(a)
    assert trace.peak[0] > 0 and trace.peak[1] > 0
    # more free space (bigger filesystem): every "does it fit?" is answered alike
    replay(trace, app_tree(capacity=1 << 31))
    # less than the job's overlay used at its peak: not replayed
    small = MemoryFS(capacity=(trace.peak[0] - 1) * BLOCK, clock=counter_clock())
    tight = app_tree()
    for p in ("/etc/app", "/var/lib/app", "/srv"):
        small.makedirs(p)
    with pytest.raises(TraceMismatch):
        replay(trace, _copy(tight, small))


def _copy(src: MemoryFS, dst: MemoryFS) -> MemoryFS:
    for top, dirs, files in src.walk("/"):
        for d in dirs:
            dst.makedirs(os.path.join(top, d))
        for f in files:
            p = os.path.join(top, f)
            st = src.lstat(p)
            if st.is_lnk:
                dst.symlink(src.readlink(p), p)
            else:
                try:
                    dst.write_bytes(p, src.read_bytes(p))
                except OSError as e:
                    assert e.errno == errno.ENOSPC
    return dst


def test_a_refused_write_is_noted():
    fs = MemoryFS(capacity=4 * BLOCK, clock=counter_clock())
    trace = Trace()
    ov = Overlay(TracingFS(fs, trace))
    with pytest.raises(OSError) as e:
        ov.write_bytes("/big", b"x" * (8 * BLOCK))
    assert e.value.errno == errno.ENOSPC
    assert trace.space_refused


def test_the_outcome_of_a_write_is_checked():
    # the job removes /srv/data; a tree where that fails (a directory there) must not pass
    trace = record(app_tree())

    def directory(fs):
        fs.unlink("/srv/data")
        fs.makedirs("/srv/data")
    with pytest.raises(TraceMismatch):
        replay(trace, app_tree(directory))


def test_the_backend_clock_is_given_back():
    a, b = app_tree(), app_tree()
    trace = record(a)
    assert trace.clock  # the backend's own "now" (ctime of what the commit changed...)
    replay(trace, b)
    for p in ("/usr/share/app/seen", "/var/lib/app", "/usr/share/app"):
        assert a.lstat(p) == b.lstat(p)


def _counting(fs: MemoryFS, reads: list) -> MemoryFS:
    """``fs``, with every read of the protocol counted into ``reads``."""
    class Counting(MemoryFS):
        pass
    for name in ("lstat", "stat", "readdir", "getxattr", "listxattr", "readlink", "statvfs"):
        def counted(self, *args, _name=name, **kw):
            reads.append(_name)
            return getattr(MemoryFS, _name)(self, *args, **kw)
        setattr(Counting, name, counted)
    fs.__class__ = Counting
    return fs


def test_a_trusted_replay_makes_no_read():
    a = app_tree()
    trace = record(a)
    checked, trusted = [], []
    b = _counting(app_tree(), checked)
    replay(trace, b)
    c = _counting(app_tree(), trusted)
    replay(trace, c, trusted=True)
    assert checked and not trusted
    assert diff_trees(a, c, times=True) == []


def test_the_footprint_names_what_the_job_wrote_read_and_listed():
    trace = record(app_tree())
    fp = footprint(trace)
    assert fp.whole is None
    # written: the paths changed, and the parents of the names made or removed
    assert {"/usr/share/app/seen", "/usr/share/app/seen2", "/usr/share/app/latest", "/usr/share/app",
            "/var/lib/app/state", "/var/lib/app", "/srv/data", "/srv", "/etc/app/app.conf"} <= fp.written
    assert "/etc/app/other.conf" not in fp.written | fp.read  # listed beside app.conf, never looked at
    assert {"/etc/app/app.conf", "/etc/app", "/etc"} <= fp.read
    assert {"/", "/etc", "/etc/app"} <= fp.listed
    assert {"/srv/data"} <= fp.moved and "/etc/app/app.conf" not in fp.moved
