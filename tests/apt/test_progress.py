"""The progress display: drawn on a real pseudo-terminal, silent everywhere else (a pipe, a
file, ``quiet``, and stdout even when stdout is a terminal)."""

from __future__ import annotations

import hashlib
import io
import os
import select
import subprocess
import sys
import textwrap

import pytest

from helpers.httpserve import Server
from helpers.paths import REPO
from nuwa.apt.cache import Cache
from nuwa.apt.fetch import Fetcher
from nuwa.apt.progress import Progress, _duration, human_bytes


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed (EIO on a pty)
            break
        if not chunk:
            break
        out += chunk
    return out


@pytest.fixture
def pty():
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", buffering=1)
    yield master, stream
    stream.close()
    os.close(master)


def test_human_units_as_apt_prints_them():
    assert [human_bytes(n) for n in (0, 999, 1000, 12_345, 4_000_000, 2.5e9, 7e15)] == [
        "0 B", "999 B", "1.0 kB", "12.3 kB", "4.0 MB", "2.5 GB", "7000.0 TB"]
    assert [_duration(s) for s in (0.2, 4, 65, 3723)] == ["0s", "4s", "1min 5s", "1h 2min 3s"]


def test_drawn_on_a_terminal(pty):
    master, stream = pty
    clock = Clock()
    p = Progress(stream, clock=clock)
    assert p.enabled
    p.expect(2, 3_000_000)
    p.start("http://127.0.0.1/pool/main/a/a_1_amd64.deb", 2_000_000)
    clock.t += 1
    p.advance(2_000_000)
    p.done("a")
    assert p.line() == "Get 1/2  2.0 MB/3.0 MB  2.0 MB/s  a_1_amd64.deb"
    clock.t += 1
    p.close()
    out = read_all(master).decode()
    assert "\r\x1b[KGet 0/2  0 B/3.0 MB  0 B/s  a_1_amd64.deb" in out
    assert "\r\x1b[KGet 1/2  2.0 MB/3.0 MB  2.0 MB/s  a_1_amd64.deb" in out
    assert out.endswith("\r\x1b[KFetched 2.0 MB in 2s (1.0 MB/s)\r\n")  # the pty turns \n into \r\n


def test_redraws_are_limited(pty):
    master, stream = pty
    clock = Clock()
    p = Progress(stream, clock=clock, interval=0.5)
    p.start("f", 100)
    for _ in range(100):
        p.advance(1)  # all within one interval: no redraw
    clock.t += 0.6
    p.advance(1)
    out = read_all(master).decode()
    assert out.count("\r\x1b[K") == 2  # start, then one after the interval


def test_line_fits_the_terminal(pty):
    master, stream = pty
    import fcntl
    import struct
    import termios
    fcntl.ioctl(stream.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    p = Progress(stream)
    p.start("x" * 200)
    out = read_all(master).decode()
    assert len(out.replace("\r\x1b[K", "")) == 39


def test_silent_when_quiet_or_not_a_terminal(pty):
    _, stream = pty
    assert not Progress(stream, quiet=True).enabled
    buf = io.StringIO()
    p = Progress(buf)
    assert not p.enabled
    p.start("a")
    p.advance(10)
    p.done("a")
    p.close()
    assert buf.getvalue() == ""


def test_never_on_stdout_even_on_a_terminal():
    # a child whose stdout AND stderr are terminals: the display goes to stderr only, and a
    # display asked to write to stdout stays disabled
    code = """
        import sys
        from nuwa.apt.progress import Progress
        out = Progress(sys.stdout)
        err = Progress()
        print("enabled", out.enabled, err.enabled, file=sys.stderr, flush=True)
        err.start("file.deb"); err.advance(5000); err.done("file.deb"); err.close()
        out.start("file.deb"); out.advance(5000); out.done("file.deb"); out.close()
        """
    m_out, s_out = os.openpty()
    m_err, s_err = os.openpty()
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=s_out, stderr=s_err,
                         env={**os.environ, "PYTHONPATH": REPO})
    os.close(s_out)
    os.close(s_err)
    p.wait(30)
    out, err = read_all(m_out), read_all(m_err)
    os.close(m_out)
    os.close(m_err)
    assert p.returncode == 0, err
    assert out == b""
    assert b"enabled False True" in err and b"Get 1  5.0 kB" in err and b"Fetched 5.0 kB" in err


def test_fetcher_reports_bytes_and_files(tmp_path, pty):
    master, stream = pty
    (tmp_path / "r").mkdir()
    data = os.urandom(150_000)
    (tmp_path / "r" / "a.deb").write_bytes(data)
    h = hashlib.sha256(data).hexdigest()
    with Server(str(tmp_path / "r")) as srv:
        prog = Progress(stream, interval=0)
        srv.drop("a.deb", after=50_000)
        f = Fetcher(Cache(str(tmp_path / "c")), progress=prog, retries=1, backoff=0.01)
        f.get_files([(srv.url_for("a.deb"), h, len(data))])
        assert (prog.files_done, prog.bytes_done, prog.files_total) == (1, 150_000, 1)
        f.get_file(srv.url_for("a.deb"), sha256=h, size=len(data))  # a cache hit counts as a file
        assert (prog.files_done, prog.bytes_done) == (2, 150_000)
        prog.close()
    out = read_all(master).decode()
    assert "a.deb" in out and "Fetched 150.0 kB" in out
