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

import importlib.util
import io
import marshal
import posixpath
import re
import struct
import subprocess
import sys
import tokenize

from nuwa.fs.model import FileSystem
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
    """One host worker process; :meth:`code` returns marshalled code or raises ``SyntaxError``-like
    :class:`CompileFailed` with py_compile's message. Use as a context manager."""

    def __init__(self, module_mode: bool):
        self.module_mode = module_mode
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Compiler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        if self.proc is None:
            # -E -S: the host interpreter ignores its environment and site (nothing of them
            # may change what is alive in it); cwd "/" and an empty environment.
            self.proc = subprocess.Popen(
                [sys.executable, "-E", "-S", "-c", _WORKER, "-m" if self.module_mode else "-"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/", env={},
            )
        return self.proc

    def code(self, filename: str, source: bytes, optimize: int) -> tuple[bytes, str]:
        """``marshal.dumps(compile(source, filename, "exec", optimize=optimize))`` as the worker
        makes it, and the warnings the compiler issued, as the real process prints them."""
        proc = self._start()
        marshal.dump((filename, source, optimize), proc.stdin)
        proc.stdin.flush()
        try:
            ok, data, caught = marshal.load(proc.stdout)
        except (EOFError, ValueError, TypeError):
            self.close()
            raise Defer("python: the host byte-compilation worker stopped") from None
        text = "".join(format_warning(source, *w) for w in caught)
        if not ok:
            raise CompileFailed(text + data)
        return data, text

    def close(self) -> None:
        """End the worker (it exits at end of input)."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:  # a worker that died has closed its end
                pass
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None


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
