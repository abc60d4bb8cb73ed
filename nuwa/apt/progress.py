"""The download progress display: files, bytes and rate on one redrawn line of a terminal.

DESIGN.md "The command line": progress goes to stderr, only when stderr is a terminal, never
with ``--quiet`` or ``--json``, never on stdout (stdout carries the JSON document or the text
report a script may parse). :class:`Progress` enforces all of it itself, so a caller cannot
get it wrong: it is disabled unless its stream is a terminal other than file descriptor 1.

The line looks like apt's (``apt-pkg/acquire-worker.cc``'s status line, simplified)::

    Get 3/10  12.3 MB/40.1 MB  2.1 MB/s  libc6_2.36-9+deb12u9_amd64.deb

and a summary is printed when the display is closed, as apt's "Fetched N B in T (R)".
Units are SI (kB, MB), as apt prints them.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time


def human_bytes(n: float) -> str:
    """``n`` bytes the way apt prints sizes: ``512 B``, ``12.3 kB``, ``4.0 MB`` (SI units)."""
    if n < 1000:
        return f"{int(n)} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000.0
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def is_terminal(stream) -> bool:
    """True when ``stream`` is a terminal other than stdout (where a progress display may draw)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # a StringIO, a closed stream: not a terminal
    # file descriptor 1 is stdout even when it is the same terminal as stderr
    return fd != 1 and os.isatty(fd)


class Progress:
    """A progress display for downloads; every method is a no-op when it is disabled.

    ``stream`` defaults to ``sys.stderr``; the display is enabled only when that stream is a
    terminal (not stdout) and ``quiet`` is false. ``interval`` limits redraws (seconds);
    ``clock`` is injectable for tests. Safe to call from several download threads.
    """

    def __init__(self, stream=None, *, quiet: bool = False, interval: float = 0.2, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = not quiet and is_terminal(self.stream)
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._last_draw = -1e9
        self._drawn = False
        self.files_total = 0  # files the caller announced (0: unknown)
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self._current = ""

    def expect(self, files: int = 0, total_bytes: int = 0) -> None:
        """Announce how many files and bytes the coming downloads are (for "3/10", "of X MB")."""
        with self._lock:
            self.files_total += files
            self.bytes_total += total_bytes

    def start(self, name: str, size: int | None = None) -> None:
        """A download of ``name`` (a file name or URL) begins; ``size`` if known."""
        with self._lock:
            self._current = name.rstrip("/").rsplit("/", 1)[-1] or name
            self._draw(force=True)

    def advance(self, n: int) -> None:
        """``n`` more bytes arrived (resumed bytes are not counted: they were not downloaded)."""
        with self._lock:
            self.bytes_done += n
            self._draw()

    def done(self, name: str) -> None:
        """The download of ``name`` finished (or was served from the cache)."""
        with self._lock:
            self.files_done += 1
            self._draw(force=True)

    def close(self) -> None:
        """Clear the line and print the summary (only if something was downloaded)."""
        with self._lock:
            if not self.enabled:
                return
            if self._drawn:
                self._write("\r\x1b[K")
            if self.bytes_done:
                secs = max(self.clock() - self._start, 1e-6)
                self._write(f"Fetched {human_bytes(self.bytes_done)} in {_duration(secs)} "
                            f"({human_bytes(self.bytes_done / secs)}/s)\n")
            self._drawn = False
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- drawing (called with the lock held) -----------------------------------------------

    def line(self) -> str:
        """The status line as it is drawn now (without the carriage return)."""
        now = self.clock()
        count = f"{self.files_done}/{self.files_total}" if self.files_total else f"{self.files_done}"
        size = human_bytes(self.bytes_done)
        if self.bytes_total:
            size += f"/{human_bytes(self.bytes_total)}"
        rate = self.bytes_done / max(now - self._start, 1e-6)
        return f"Get {count}  {size}  {human_bytes(rate)}/s  {self._current}"

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        try:
            width = shutil.get_terminal_size((80, 24)).columns
            width = os.get_terminal_size(self.stream.fileno()).columns or width
        except OSError:
            width = 80
        # one character short of the width: writing the last column wraps on some terminals
        self._write("\r\x1b[K" + self.line()[: max(width - 1, 10)])
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False  # the terminal went away: downloads go on without display


class Stages:
    """The display of a whole patch run: one redrawn line naming the stage and how far it is
    (``plan``, ``download`` -- drawn by :class:`Progress` --, ``unpack 3/15 libc6``,
    ``configure 2/15 libc6``, ``triggers``, ``write``), cleared at the end.

    The same rules as :class:`Progress`: only on a terminal other than stdout, never when
    ``quiet`` (the command line passes ``--quiet or --json``). Every method is a no-op when
    disabled, so the job code calls it unconditionally.
    """

    def __init__(self, stream=None, *, quiet: bool = False, interval: float = 0.1, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = not quiet and is_terminal(self.stream)
        self.interval = interval
        self.clock = clock
        self._last = -1e9
        self._drawn = False

    def stage(self, name: str, done: int | None = None, total: int | None = None, item: str = "") -> None:
        """Show stage ``name`` (``done``/``total`` steps so far, ``item`` the current package)."""
        if not self.enabled:
            return
        now = self.clock()
        # the first step of a stage is always drawn; the rest at most every ``interval``
        if done not in (None, 0, 1) and done != total and now - self._last < self.interval:
            return
        self._last = now
        count = f" {done}/{total}" if done is not None and total else ""
        text = f"nuwa: {name}{count}" + (f"  {item}" if item else "")
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns or 80
        except OSError:
            width = 80
        self._write("\r\x1b[K" + text[: max(width - 1, 10)])
        self._drawn = True

    def close(self) -> None:
        """Clear the line (the run's result is printed after it, on stdout)."""
        if self.enabled and self._drawn:
            self._write("\r\x1b[K")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False


def _duration(secs: float) -> str:
    # apt's TimeToStr: "4s", "1min 5s", "1h 2min 3s"
    s = int(round(secs))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}min {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}min {s % 60}s"
