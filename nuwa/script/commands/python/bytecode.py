"""Byte-compiling an image's Python sources on the host, to the bytes the image's interpreter
writes (CPython 3.11's ``py_compile.compile`` and ``importlib._bootstrap_external``).

Why a separate host interpreter process, and not ``compile()`` in Nuwa's own process: the
``.pyc`` body is ``marshal.dumps(code)``, and marshal (``w_ref`` in ``Python/marshal.c``) marks
an object with ``FLAG_REF`` only when its reference count is above one. An interned name that
appears once in a module therefore marshals differently depending on whether some *other*
live object in the process holds the same string. Measured on the 542 stdlib ``.pyc`` files
of bookworm's tree whose source is a regular file: compiled inside a process that has imported
Nuwa and pytest, 221 differ from the real ``python3.11 py_compile.py`` output; compiled in a
fresh ``-E -S`` host interpreter that has imported what ``py_compile.py``'s ``main`` imports,
all are identical. So one short-lived
host interpreter (the host's own Python, never the image's) is started per invocation, with
the modules the real run has loaded, and it only compiles bytes handed to it (it never reads
the image or any file).

The compilation happens only when the host's magic number (``importlib.util.MAGIC_NUMBER``)
is the image interpreter's, read from the image's own ``importlib/_bootstrap_external.py``;
otherwise the caller defers with that reason.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import marshal
import posixpath
import queue
import re
import struct
import subprocess
import sys
import threading
import tokenize

from nuwa.fs.model import FileSystem
from nuwa.host import usable_cpus
from nuwa.script.context import Defer

#: The worker: a tiny loop in a fresh host interpreter. It imports what ``py_compile.py``'s
#: ``main`` has loaded when it compiles (argparse, py_compile; runpy for ``-m``), and keeps
#: its own names few, because live strings change marshal's output (see the module text).
_WORKER = r"""
import sys, marshal, warnings, argparse, py_compile, importlib.machinery, importlib.util
if sys.argv[1] == '-m':
    import runpy
parser = argparse.ArgumentParser(description='A simple command-line interface for py_compile module.')
parser.add_argument('-q', '--quiet', action='store_true', help='Suppress error output')
parser.add_argument('filenames', nargs='+', help='Files to compile')
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while True:
    try:
        filename, source_bytes, optimize = marshal.load(stdin)
    except EOFError:
        break
    with warnings.catch_warnings(record=True) as caught:
        try:
            code = compile(source_bytes, filename, 'exec', dont_inherit=True, optimize=optimize)
            data = [True, marshal.dumps(code)]
            del code
        except Exception as err:
            data = [False, py_compile.PyCompileError(err.__class__, err, filename).msg]
    data.append([(str(msg.filename), msg.lineno, msg.category.__name__, str(msg.message)) for msg in caught])
    marshal.dump(tuple(data), stdout)
    stdout.flush()
"""

_MAGIC_RE = re.compile(rb"^MAGIC_NUMBER = \((\d+)\)\.to_bytes\(2, 'little'\) \+ b'\\r\\n'", re.M)


def image_magic(fs: FileSystem, version: str) -> bytes | None:
    """The magic number of the image's python``version`` (e.g. "3.11"), from its own
    ``importlib/_bootstrap_external.py`` (the interpreter's frozen copy is built from it)."""
    try:
        text = fs.read_bytes(f"/usr/lib/python{version}/importlib/_bootstrap_external.py")
    except OSError:
        return None
    m = _MAGIC_RE.search(text)
    return int(m.group(1)).to_bytes(2, "little") + b"\r\n" if m else None


def require_same_magic(fs: FileSystem, version: str) -> None:
    """Defer unless the host interpreter writes the same bytecode format as the image's."""
    magic = image_magic(fs, version)
    if magic is None:
        raise Defer(f"python{version}: the image's bytecode magic number cannot be read "
                    f"(/usr/lib/python{version}/importlib/_bootstrap_external.py)")
    host = importlib.util.MAGIC_NUMBER
    if magic != host:
        hv = f"{sys.version_info[0]}.{sys.version_info[1]}"
        raise Defer(f"python{version}: the image's bytecode format (magic {int.from_bytes(magic[:2], 'little')}) "
                    f"is not the host Python {hv}'s ({int.from_bytes(host[:2], 'little')}); "
                    "byte-compilation needs the image's own interpreter")


def cache_from_source(path: str, version: str, optimize: int) -> str:
    """PEP 3147/488 location: ``dir/__pycache__/name.cpython-3XY[.opt-N].pyc``."""
    head, tail = posixpath.split(path)
    base, sep, rest = tail.rpartition(".")
    base = base if sep else rest
    tag = "cpython-" + version.replace(".", "")
    opt = f".opt-{optimize}" if optimize else ""
    return posixpath.join(head, "__pycache__", f"{base}.{tag}{opt}.pyc")


class Compiler:
    """Host worker processes compiling in the order given: :meth:`submit` queues a source,
    :meth:`result` returns its marshalled code and warnings or raises :class:`CompileFailed`
    with py_compile's message; :meth:`code` is both at once. Use as a context manager.

    Several workers (``workers``, default two) compile at once and the sources are sent ahead
    of the answers, so the parent reads and writes the image while the workers compile. That
    does not change a byte: the code of one file does not depend on what its worker compiled
    before it (measured on the 542 stdlib sources of bookworm's tree: a fresh worker per file,
    one worker in order, shuffled, reversed, split in halves or round-robin between two --
    every ``marshal`` output identical, and identical to the image's ``.pyc`` bodies); the
    worker keeps nothing of a compilation alive but the bytes it has sent.
    A worker is started when a source is first sent to it, so one file starts one process;
    :func:`worker_count` says how many are worth starting for a number of files.
    """

    #: most sources in flight per worker, and their total size: enough to keep both busy,
    #: bounded so a long list of names never holds more than a few MB of sources
    AHEAD = 8
    AHEAD_BYTES = 8 << 20

    def __init__(self, module_mode: bool, workers: int | None = None):
        self.module_mode = module_mode
        self.workers = max(1, workers if workers is not None else worker_count(1 << 30))
        self.procs: list[_Worker | None] = [None] * self.workers
        self.sent = 0          # tickets handed out
        self.taken = 0         # results consumed, in ticket order
        self.pending: collections.deque[tuple[int, bytes]] = collections.deque()  # (worker, source)
        self.pending_bytes = 0
        self.early: dict[int, tuple] = {}  # results read while waiting for a later ticket

    def __enter__(self) -> "Compiler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def room(self) -> bool:
        """Whether another source may be sent before taking a result (the bounds above)."""
        return not self.pending or (len(self.pending) < self.AHEAD * self.workers
                                    and self.pending_bytes < self.AHEAD_BYTES)

    def submit(self, filename: str, source: bytes, optimize: int) -> int:
        """Send one source to the worker with the least in flight; returns its ticket."""
        load = [0] * self.workers
        for w, src in self.pending:
            load[w] += len(src) + 1
        w = min(range(self.workers), key=lambda i: (load[i], i))
        if self.procs[w] is None:
            self.procs[w] = _Worker(self.module_mode)
        self.procs[w].send((filename, source, optimize))
        self.pending.append((w, source))
        self.pending_bytes += len(source)
        self.sent += 1
        return self.sent - 1

    def result(self, ticket: int) -> tuple[bytes, str]:
        """``marshal.dumps(compile(source, filename, "exec", optimize=optimize))`` as the worker
        makes it, and the warnings the compiler issued, as the real process prints them."""
        while ticket not in self.early:
            if self.taken > ticket or not self.pending:
                raise ValueError(f"no compilation {ticket} in flight")
            w, source = self.pending.popleft()
            self.pending_bytes -= len(source)
            try:
                ok, data, caught = marshal.load(self.procs[w].proc.stdout)
            except (EOFError, ValueError, TypeError):
                self.close()
                raise Defer("python: the host byte-compilation worker stopped") from None
            self.early[self.taken] = (ok, data, caught, source)
            self.taken += 1
        ok, data, caught, source = self.early.pop(ticket)
        text = "".join(format_warning(source, *w) for w in caught)
        if not ok:
            raise CompileFailed(text + data)
        return data, text

    def code(self, filename: str, source: bytes, optimize: int) -> tuple[bytes, str]:
        """:meth:`submit` and :meth:`result` of one source."""
        return self.result(self.submit(filename, source, optimize))

    def close(self) -> None:
        """End the workers: at end of input, or killed when answers are still unread (a run
        that stopped at a failure), whose writes would otherwise block."""
        unread = {w for w, _ in self.pending}
        for i, worker in enumerate(self.procs):
            if worker is not None:
                worker.close(kill=i in unread)
        self.procs = [None] * self.workers
        self.pending.clear()
        self.pending_bytes = 0
        self.early.clear()


def worker_count(files: int) -> int:
    """Workers for ``files`` sources: two when two CPUs are ours and there are at least 32
    files. A worker's start costs 22 ms of CPU, a stdlib source 1.5 ms on average (measured),
    so a second one pays for itself from about 15 files of its own, if a CPU is free."""
    return 2 if usable_cpus() >= 2 and files >= 32 else 1


class _Worker:
    """One host interpreter running ``_WORKER``, fed by a thread: the parent never blocks
    writing a source while the worker blocks writing an answer the parent has not read yet."""

    def __init__(self, module_mode: bool):
        # -E -S: the host interpreter ignores its environment and site (nothing of them
        # may change what is alive in it); cwd "/" and an empty environment.
        self.proc = subprocess.Popen(
            [sys.executable, "-E", "-S", "-c", _WORKER, "-m" if module_mode else "-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/", env={},
        )
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.feeder = threading.Thread(target=self._feed, name="nuwa-pyc-feed", daemon=True)
        self.feeder.start()

    def send(self, job: tuple) -> None:
        self.queue.put(job)

    def _feed(self) -> None:
        stdin = self.proc.stdin
        try:
            while (job := self.queue.get()) is not None:
                marshal.dump(job, stdin)
                stdin.flush()
        except OSError:  # the worker died; the parent sees its output end
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def close(self, kill: bool) -> None:
        if kill:
            self.proc.kill()
        self.queue.put(None)
        self.feeder.join()
        self.proc.wait()
        self.proc.stdout.close()


def format_warning(source: bytes, filename: str, lineno: int, category: str, message: str) -> str:
    """``warnings._formatwarnmsg_impl``: the real process has ``warnings`` loaded, so a
    compiler warning (a ``SyntaxWarning``) is printed with the source line ``linecache``
    reads -- from the file just compiled, whose bytes we hold."""
    text = f"{filename}:{lineno}: {category}: {message}\n"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        lines = io.TextIOWrapper(io.BytesIO(source), encoding, newline=None).readlines()
    except (SyntaxError, UnicodeDecodeError, LookupError):
        lines = []
    line = lines[lineno - 1].strip() if 1 <= lineno <= len(lines) else ""
    return text + (f"  {line}\n" if line else "")


class CompileFailed(Exception):
    """The source does not compile; ``msg`` is ``PyCompileError.msg``."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


def pyc_bytes(code: bytes, source: bytes, mtime: float, size: int, mode: str) -> bytes:
    """The 16-byte header and the code: ``_code_to_timestamp_pyc`` / ``_code_to_hash_pyc``."""
    if mode == "timestamp":
        return importlib.util.MAGIC_NUMBER + struct.pack("<III", 0, int(mtime) & 0xFFFFFFFF,
                                                         size & 0xFFFFFFFF) + code
    flags = 0b1 | (0b10 if mode == "checked-hash" else 0)
    return importlib.util.MAGIC_NUMBER + struct.pack("<I", flags) + importlib.util.source_hash(source) + code


def invalidation_mode(env: dict) -> str:
    """``py_compile._get_default_invalidation_mode``: checked-hash when SOURCE_DATE_EPOCH is set."""
    return "checked-hash" if env.get("SOURCE_DATE_EPOCH") else "timestamp"
