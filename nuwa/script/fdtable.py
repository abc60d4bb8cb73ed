"""Open file descriptions of the simulated shell: output buffers, input buffers, image files.

A shell's fd table maps 0-9 to these objects; a duplicated descriptor (``2>&1``) shares the
object, and so its offset, as ``dup(2)`` does. Files are reached only through the filesystem
model (``fs``), reopened per operation so no host resource stays open however many
redirections a script makes. ``used`` says whether bytes written here can influence the rest
of the run (captured by ``$( )``, piped to the next stage, or stored in a file of the image):
the deferral rules ask it when a deferred command would write here.
"""

from __future__ import annotations

import errno
import os

from nuwa.script.record import ScriptDeferred


class Limits:
    """Budgets shared by a shell and all its subshells: steps, bytes of output, bytes written
    to the image's files.

    Output held in memory (the script's streams, ``$( )`` captures, pipes) and bytes written to
    files of the image are counted apart: a legitimate ``mkinitramfs`` writes its archive
    uncompressed (about 50 MiB for a cloud kernel) and then compressed, more than a sane
    stream budget, while a runaway loop still meets one of the two caps. ``files`` defaults to
    16 times ``output`` (1 GiB for the default 64 MiB).
    """

    def __init__(self, steps: int, output: int, depth: int, files: int | None = None):
        self.max_steps = steps
        self.steps = 0
        self.max_output = output
        self.output = 0
        self.max_files = 16 * output if files is None else files
        self.files = 0
        self.max_depth = depth

    def step(self, line: int = 0) -> None:
        """Count one command; past the budget the script is deferred, never looped on."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise ScriptDeferred(f"step budget of {self.max_steps} commands exceeded", line)

    def emit(self, n: int) -> None:
        """Count ``n`` bytes of output (all streams, captures and files written)."""
        self.output += n
        if self.output > self.max_output:
            raise ScriptDeferred(f"output exceeds {self.max_output} bytes")

    def emit_file(self, n: int) -> None:
        """Count ``n`` bytes written to a file of the image through a redirection."""
        self.files += n
        if self.files > self.max_files:
            raise ScriptDeferred(f"files written exceed {self.max_files} bytes")


class Desc:
    """Base open file description: not readable, writes dropped."""

    used = False
    usage = ""

    def write(self, data: bytes) -> None:
        """Write bytes (at the current offset)."""

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (-1: all remaining)."""
        return b""

    def readline(self) -> bytes:
        """Read through the next newline (or to the end)."""
        return b""


class NullDesc(Desc):
    """``/dev/null``."""


class OutBuf(Desc):
    """Bytes collected in memory: the script's stdout/stderr, a ``$( )`` capture, a pipe."""

    def __init__(self, limits: Limits, usage: str = ""):
        self.data = bytearray()
        self.limits = limits
        self.usage = usage
        self.used = bool(usage)

    def write(self, data: bytes) -> None:
        self.limits.emit(len(data))
        self.data += data


class InBuf(Desc):
    """Bytes to read: a here-document, the previous stage of a pipeline, the script's stdin."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else min(len(self.data), self.pos + n)
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def readline(self) -> bytes:
        j = self.data.find(b"\n", self.pos)
        end = len(self.data) if j < 0 else j + 1
        out = self.data[self.pos : end]
        self.pos = end
        return out


class FileDesc(Desc):
    """A file of the image opened by a redirection (``<``, ``>``, ``>>``, ``<>``)."""

    used = True

    def __init__(self, fs, path: str, readable: bool, writable: bool, append: bool, limits: Limits):
        self.fs = fs
        self.path = path
        self.readable = readable
        self.writable = writable
        self.append = append
        self.pos = 0
        self.limits = limits
        self.usage = f"written to {path}"
        #: a deferred command writes this description's file at boot (external.defer_command)
        self.carried_by = ""

    def write(self, data: bytes) -> None:
        if not self.writable:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self.carried_by:
            # the file belongs to a deferred command's output at boot: writing more now would
            # come before that output, not after it
            raise ScriptDeferred(f"{self.path} is written after deferred `{self.carried_by}` that writes it at boot")
        self.limits.emit_file(len(data))
        h = self.fs.open_handle(self.path, os.O_WRONLY)
        try:
            if self.append:
                self.pos = h.size()
            h.pwrite(self.pos, data)
            self.pos += len(data)
        finally:
            h.close()

    def read(self, n: int = -1) -> bytes:
        if not self.readable:
            raise OSError(errno.EBADF, "Bad file descriptor")
        h = self.fs.open_handle(self.path, os.O_RDONLY)
        try:
            size = h.size()
            want = max(0, size - self.pos) if n < 0 else n
            out = h.pread(self.pos, want)
        finally:
            h.close()
        self.pos += len(out)
        return out

    def readline(self) -> bytes:
        start = self.pos
        chunks = []
        while True:
            chunk = self.read(4096)
            if not chunk:
                break
            j = chunk.find(b"\n")
            if j >= 0:
                chunks.append(chunk[: j + 1])
                self.pos = start + sum(len(c) for c in chunks)
                break
            chunks.append(chunk)
        return b"".join(chunks)


def open_file(fs, path: str, op: str, umask: int, noclobber: bool, limits: Limits) -> FileDesc:
    """Open ``path`` (absolute, in the image) for redirection ``op``; OSError on failure."""
    mode = 0o666 & ~umask
    if op == "<":
        h = fs.open_handle(path, os.O_RDONLY)
        h.close()
        return FileDesc(fs, path, True, False, False, limits)
    if op in (">", ">|", "&>"):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        if noclobber and op != ">|":
            try:
                st = fs.stat(path)
                if st.is_reg:
                    raise OSError(errno.EEXIST, "File exists")
            except FileNotFoundError:
                flags |= os.O_EXCL
        h = fs.open_handle(path, flags, mode)
        h.close()
        return FileDesc(fs, path, False, True, False, limits)
    if op == ">>":
        h = fs.open_handle(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
        h.close()
        return FileDesc(fs, path, False, True, True, limits)
    if op == "<>":
        h = fs.open_handle(path, os.O_RDWR | os.O_CREAT, mode)
        h.close()
        return FileDesc(fs, path, True, True, False, limits)
    raise ValueError(op)
