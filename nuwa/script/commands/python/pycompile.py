"""``python3.X`` for byte-compilation (``py_compile.py`` run as a script or as ``-m``) and the few
programs modelled by their text (:mod:`.listchanges`).

Mirrors CPython 3.11's ``Lib/py_compile.py`` (``compile`` and ``main``) and the parts of
``importlib._bootstrap_external`` it uses (``cache_from_source``, ``_calc_mode``,
``_write_atomic``), as python3.11's own postinsts call it (``/usr/bin/python3.11 -E -S
/usr/lib/python3.11/py_compile.py FILES``) and as dh-python's py3compile feeds it
(``python3.11 [-O] -m py_compile -`` with names on stdin). The code object is made by a host
interpreter of the same bytecode format (see ``bytecode``); everything else -- which file, the
header, the ``__pycache__`` directory, the file mode -- is done here through the image's
filesystem model. apt-listchanges's debconf helper is modelled by its text (:mod:`.listchanges`).
Any other use of the interpreter (a script, ``-c``, another module) is deferred: the image's
Python is never run.
"""

from __future__ import annotations

import collections
import os
import posixpath
import re

from nuwa.script.commands.python import bytecode, listchanges
from nuwa.script.context import Defer, Invocation

_NAME_RE = re.compile(r"python(3\.\d+)$")
#: interpreter flags that change nothing in what py_compile writes (-O is handled apart)
_HARMLESS = set("ESsIBuqbd")


def interpreter_version(inv: Invocation) -> str:
    """"3.11" for ``python3.11``; for ``python3``, the version its symlink names in the image."""
    name = inv.name
    m = _NAME_RE.match(name)
    if m:
        return m.group(1)
    if name == "python3":
        path = inv.path(inv.argv[0]) if "/" in inv.argv[0] else "/usr/bin/python3"
        try:
            target = posixpath.basename(inv.fs.readlink(path))
        except OSError:
            target = ""
        m = _NAME_RE.match(target)
        if m:
            return m.group(1)
    raise Defer(f"{name}: which Python version this interpreter is cannot be told from the image")


def parse_interpreter_args(argv: list[str]) -> tuple[int, str, list[str]]:
    """(optimize level, what to run: "-m MOD" or a script path, its arguments) from a
    ``python`` command line; ``Defer`` for anything but the flags that do not matter here."""
    optimize = 0
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-m" and i + 1 < len(argv):
            return optimize, "-m " + argv[i + 1], argv[i + 2:]
        if a.startswith("-m") and len(a) > 2:
            return optimize, "-m " + a[2:], argv[i + 1:]
        if a in ("-X", "-W") and i + 1 < len(argv):
            i += 2  # -X/-W options change warnings and diagnostics, not the code compiled
            continue
        if a.startswith(("-X", "-W")) and len(a) > 2:
            i += 1
            continue
        if a == "-c" or a.startswith("-c") or a == "-" or a == "--":
            raise Defer("python: running Python code (-c, stdin) is not modelled")
        if a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "O":
                    optimize += 1
                elif ch not in _HARMLESS:
                    raise Defer(f"python: interpreter option -{ch} is not modelled")
            i += 1
            continue
        return optimize, a, argv[i + 1:]
    raise Defer("python: an interactive interpreter is not modelled")


def python(inv: Invocation) -> int:
    """``python3.X``: ``py_compile`` (as ``-m py_compile`` or the stdlib's ``py_compile.py``
    run as a script); everything else is deferred."""
    version = interpreter_version(inv)
    if inv.argv[1:] == ["-B", "-c", "import debconf"]:  # apt-listchanges's config probes it
        return listchanges.import_probe(inv, version, inv.argv[-1])
    optimize, what, args = parse_interpreter_args(inv.argv)
    optimize = min(optimize, 2)
    if what == "-m py_compile":
        return py_compile_main(inv, version, optimize, args, module_mode=True)
    if what.startswith("-m "):
        raise Defer(f"python{version} {what}: running this module is not modelled")
    script = posixpath.normpath(inv.path(what))
    if script == f"/usr/lib/python{version}/py_compile.py":
        return py_compile_main(inv, version, optimize, args, module_mode=False)
    if listchanges.recognise(inv, script):
        flags = "".join(a[1:] for a in inv.argv[1:inv.argv.index(what)] if a.startswith("-"))
        return listchanges.run_helper(inv, version, flags, script, args)
    raise Defer(f"python{version}: running the Python program {what} is not modelled")


def py_compile_main(inv: Invocation, version: str, optimize: int, args: list[str], module_mode: bool,
                    precompiled: "Precompiled | None" = None) -> int:
    """``py_compile.main`` (3.11): ``[-q] FILE...`` or ``-`` (names from stdin, one a line);
    stops at the first failure with status 1 and the error text (no newline added).
    ``precompiled`` holds the code of every name already (py3compile's worker, below)."""
    bytecode.require_same_magic(inv.fs, version)
    quiet = False
    names: list[str] = []
    for a in args:
        if a in ("-q", "--quiet"):
            quiet = True
        elif a.startswith("-") and a != "-":
            raise Defer(f"python{version} py_compile: option {a} is not modelled")
        else:
            names.append(a)
    if not names:
        raise Defer(f"python{version} py_compile: argparse's usage error is not modelled")
    if names == ["-"]:
        names = inv.stdin.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    mode = bytecode.invalidation_mode(inv.env)
    names = [name.rstrip("\n") for name in names]
    with bytecode.Compiler(module_mode, bytecode.worker_count(len(names))) as comp:
        ahead = Ahead(inv, comp, names, optimize) if precompiled is None else None
        for name in names:
            try:
                compile_file(inv, precompiled or comp, name, version, optimize, mode, ahead)
            except bytecode.CompileFailed as e:
                if not quiet:
                    inv.err(e.msg)
                return 1
            except OSError as e:
                if not quiet:
                    inv.err(os_error_text(e))
                return 1
    return 0


class Precompiled:
    """Every name compiled before anything is written; ``Defer`` when one fails.

    For py3compile, which keeps writing names into the pipe of a ``py_compile`` worker that
    has exited at a failure: its own end (a status, or a BrokenPipeError traceback) depends
    on timing and cannot be reproduced, so such a run is deferred whole, with nothing written.
    """

    def __init__(self, inv: Invocation, names: list[str], optimize: int):
        self.done: dict[str, tuple[bytes, str]] = {}
        # nothing is written meanwhile, so every source may be read and sent ahead; the
        # results are taken in order, so the failure named is the first one in order
        jobs: collections.deque = collections.deque()  # (name, ticket or the read's error)
        with bytecode.Compiler(True, bytecode.worker_count(len(names))) as comp:
            todo = iter(names)
            while True:
                for name in todo:
                    try:
                        jobs.append((name, comp.submit(name, inv.fs.read_bytes(inv.path(name)), optimize)))
                    except OSError as e:
                        jobs.append((name, e))
                    if not comp.room() or len(jobs) >= comp.AHEAD * comp.workers:
                        break
                if not jobs:
                    break
                name, ticket = jobs.popleft()
                try:
                    if isinstance(ticket, OSError):
                        raise ticket
                    self.done[name] = comp.result(ticket)
                except (bytecode.CompileFailed, OSError) as e:
                    raise Defer(f"py3compile: {name} does not byte-compile ({str(e).strip()[-200:]}); the "
                                "real program's end then depends on timing") from None

    def code(self, name: str, source: bytes, optimize: int) -> tuple[bytes, str]:
        """The result computed for ``name`` (its source was read from the same model)."""
        return self.done[name]


def os_error_text(e: OSError) -> str:
    """``str(OSError)`` as Python prints it: ``[Errno 2] No such file or directory: 'x'``."""
    if e.errno is None:
        return str(e.args[0]) if e.args else ""
    text = f"[Errno {e.errno}] {os.strerror(e.errno)}"
    return text + (f": {e.filename!r}" if e.filename is not None else "")


class Ahead:
    """The next names' sources read and sent to the compiler before their turn, so the workers
    compile while the parent writes (``py_compile.main``'s loop, one name after the other).

    Reading ahead moves a name's read before the earlier names' writes. Those writes only make
    new files and directories and rename a new file over a ``.pyc`` path, so a source read
    ahead is still what its turn would read unless its file is one that a rename replaced
    (its inode is in :attr:`replaced`) or it could not be read then (an earlier ``makedirs``
    may have made its path): in both cases the name is read again at its turn. Checks and
    errors stay in turn: a source that failed ahead raises only when its name comes.
    """

    def __init__(self, inv: Invocation, comp: bytecode.Compiler, names: list[str], optimize: int):
        self.inv, self.comp, self.names, self.optimize = inv, comp, names, optimize
        self.next = 0
        self.jobs: collections.deque = collections.deque()  # (name, source, stat, ticket | None)
        self.replaced: set[int] = set()

    def fill(self) -> None:
        """Read and send names while the compiler has room (names that could not be read
        count too: a run of missing files is not read through to its end)."""
        most = self.comp.AHEAD * self.comp.workers
        while self.next < len(self.names) and len(self.jobs) < most and self.comp.room():
            name = self.names[self.next]
            self.next += 1
            try:
                source, sst = read_source(self.inv, name)
            except OSError:
                self.jobs.append((name, None, None, None))
                continue
            self.jobs.append((name, source, sst, self.comp.submit(name, source, self.optimize)))

    def take(self, name: str) -> tuple[bytes, object, bytes, str]:
        """(source, its stat, code, warnings) of ``name``, the next name in turn."""
        self.fill()
        jname, source, sst, ticket = self.jobs.popleft()
        assert jname == name, (jname, name)
        if ticket is None or sst.st_ino in self.replaced:
            source, sst = read_source(self.inv, name)
            ticket = self.comp.submit(name, source, self.optimize)
        code, warned = self.comp.result(ticket)
        self.fill()
        return source, sst, code, warned


def read_source(inv: Invocation, name: str) -> tuple[bytes, object]:
    """The source's bytes and stat; ``OSError`` naming ``name`` as ``py_compile`` does."""
    aname = inv.path(name)
    try:
        return inv.fs.read_bytes(aname), inv.fs.stat(aname)
    except OSError as e:
        raise OSError(e.errno, os.strerror(e.errno), name) from None


def compile_file(inv: Invocation, comp: "bytecode.Compiler | Precompiled", name: str, version: str, optimize: int,
                 mode: str, ahead: Ahead | None = None) -> str:
    """``py_compile.compile(name, doraise=True)``: write the ``.pyc`` into the image.

    Raises :class:`bytecode.CompileFailed` or ``OSError`` (with the filename Python's
    message names) as the real function does; returns the cache path. With ``ahead``, the
    source was read and compiled ahead (see :class:`Ahead`).
    """
    fs = inv.fs
    cfile = bytecode.cache_from_source(name, version, optimize)
    acfile = inv.path(cfile)
    try:
        cst = fs.lstat(acfile)
    except OSError:
        cst = None
    if cst is not None and cst.is_lnk:
        raise _Msg(
            f"{cfile} is a symlink and will be changed into a regular file if "
            "import writes a byte-compiled file to it")
    if cst is not None and fs.exists(acfile) and not fs.stat(acfile).is_reg:
        raise _Msg(f"{cfile} is a non-regular file and will be changed into a regular "
                   "one if import writes a byte-compiled file to it")
    if ahead is not None:
        source, sst, code, warned = ahead.take(name)
    else:
        source, sst = read_source(inv, name)
        code, warned = comp.code(name, source, optimize)
    inv.err(warned)
    makedirs(inv, posixpath.dirname(acfile))
    data = bytecode.pyc_bytes(code, source, sst.st_mtime, sst.st_size, mode)
    # _calc_mode: the source's mode with the owner's write bit; _write_atomic: a temporary
    # file opened with that mode (& 0o666, under the umask), then os.replace over the target
    fmode = (sst.st_mode | 0o200) & 0o666 & ~inv.umask
    tmp = f"{acfile}.{id(data)}"
    h = fs.open_handle(tmp, os.O_EXCL | os.O_CREAT | os.O_WRONLY, fmode)
    try:
        h.pwrite(0, data)
    finally:
        h.close()
    fs.chmod(tmp, fmode)
    if ahead is not None and cst is not None:
        ahead.replaced.add(cst.st_ino)
    fs.rename(tmp, acfile)
    return cfile


class _Msg(OSError):
    """``FileExistsError(msg)``: an OSError whose text is just the message."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.errno = None


def makedirs(inv: Invocation, path: str) -> None:
    """``os.makedirs(path)`` (mode 0o777 under the umask), an existing directory being fine."""
    if not path or inv.fs.lexists(path):
        return  # py_compile ignores FileExistsError; writing into a non-directory then fails
    makedirs(inv, posixpath.dirname(path.rstrip("/")))
    try:
        inv.fs.mkdir(path, 0o777 & ~inv.umask)
    except FileExistsError:
        pass
