"""Python byte-compilation models against the real python3.11 / py3compile / py3clean of a
bookworm tree (``kernel_tree()``), run in a chroot of a copy: the ``.pyc`` files must be
byte-identical, over every Python source of the tree (stdlib, dist-packages, debpython).

The host interpreter (3.11.7 on this machine) makes the code objects for an image whose
interpreter is 3.11.2: same magic number. The measurement that decided the design (a fresh
host worker process, not Nuwa's own) is in ``nuwa/script/commands/python/bytecode.py``.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.commands.python import bytecode
from nuwa.script.context import Defer, Invocation
from nuwa.script.interp import run_script
from nuwa.script.record import DEFERRED

MODELS = default_models()
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
SOURCE_DIRS = ("usr/lib/python3.11", "usr/lib/python3", "usr/share/python3")


def _sources(root: str) -> list[str]:
    """Every .py file of the tree's Python directories, image paths, sorted (sitecustomize.py,
    a symlink into /etc, too: python3.11-minimal's postinst compiles it)."""
    out = []
    for d in SOURCE_DIRS:
        for top, dirs, files in os.walk(os.path.join(root, d)):
            dirs.sort()
            out += ["/" + os.path.relpath(os.path.join(top, f), root) for f in sorted(files)
                    if f.endswith(".py")]
    return out


def _caches(root: str) -> tuple[str, ...]:
    """The ``__pycache__`` directories of the tree's Python directories (relative paths)."""
    return tuple(os.path.relpath(os.path.join(top, "__pycache__"), root) for d in SOURCE_DIRS
                 for top, dirs, _files in os.walk(os.path.join(root, d)) if "__pycache__" in dirs)


def _pycs(root: str) -> dict[str, tuple[int, int, int, bytes]]:
    out = {}
    for d in SOURCE_DIRS:
        for top, _dirs, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith((".pyc", ".pyo")) or "__pycache__" in top:
                    p = os.path.join(top, f)
                    st = os.lstat(p)
                    out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, open(p, "rb").read())
            if top.endswith("__pycache__"):
                st = os.lstat(top)
                out[os.path.relpath(top, root)] = (st.st_mode, st.st_uid, st.st_gid, b"")
    return out


def _diff(real: dict, sim: dict) -> list[str]:
    bad = sorted(k for k in real.keys() | sim.keys() if real.get(k) != sim.get(k))
    return bad


@pytest.fixture
def pair(tmp_path):
    """Two copies of the kernel tree with every __pycache__ dropped. link_tree makes overlay
    copies as root (hard-linked ones otherwise, whose caches are unlinked, not written): the
    kernel, modules and documentation a hard-linked copy used to leave out are there, outside
    the Python directories the programs and the comparisons look at."""
    tree = kernel_tree()
    caches = _caches(tree)
    assert caches
    out = []
    for side in ("real", "sim"):
        d = link_tree(tree, str(tmp_path / side), without=caches)
        assert _caches(d) == ()
        out.append(d)
    return tuple(out)


def _model(sim: str, argv: list[str], stdin: bytes = b"", env: dict | None = None) -> tuple[int, bytes]:
    """Run ``argv`` through the shell simulator (so nested ``dpkg -L`` works); no deferral."""
    fs = HostDirFS(sim, writable=True)
    res = run_script(fs, shlex.join(argv), env=dict(env or ENV), stdin=stdin, models=MODELS)
    assert res.record.counts[DEFERRED] == 0 and not res.deferred_whole, (argv, res.deferred_commands)
    return res.status, res.stderr


def _defers(root: str, argv: list[str]) -> None:
    inv = Invocation(argv=argv, fs=HostDirFS(root, writable=True), env=dict(ENV), models=MODELS)
    MODELS[os.path.basename(argv[0])](inv)


@pytest.mark.judge
@pytest.mark.parametrize("flags,env", [([], {}), (["-O"], {}), ([], {"SOURCE_DATE_EPOCH": "1700000000"}),
                                       (["-OO"], {})], ids=["timestamp", "opt1", "checked-hash", "opt2"])
def test_py_compile_stdin_every_source_of_the_tree(pair, flags, env):
    """``python3.11 [-O|-OO] -m py_compile -`` over every source of the tree: identical .pyc."""
    real, sim = pair
    names = "".join(n + "\n" for n in _sources(real)).encode()
    assert names.count(b"\n") > 500
    r = subprocess.run(["chroot", real, "/usr/bin/python3.11", *flags, "-m", "py_compile", "-"], input=names,
                       capture_output=True, env={**ENV, **env})
    status, err = _model(sim, ["/usr/bin/python3.11", *flags, "-m", "py_compile", "-"], names, {**ENV, **env})
    assert (status, err) == (r.returncode, r.stderr)
    want, got = _pycs(real), _pycs(sim)
    assert len(want) > 500
    assert _diff(want, got) == []


@pytest.mark.judge
def test_postinsts_of_python3_packages_byte_compile_like_the_real_ones(pair):
    """python3.11-minimal, python3.11 (py_compile.py FILES) and python3-minimal, python3
    (py3compile -p PKG DIR): the postinsts run with no deferral, results identical."""
    real, sim = pair
    scripts = ["python3.11-minimal", "python3.11", "python3-minimal", "python3"]
    for s in scripts:
        r = subprocess.run(["chroot", real, f"/var/lib/dpkg/info/{s}.postinst", "configure", ""],
                           capture_output=True, env={**ENV, "DEBIAN_FRONTEND": "noninteractive"})
        assert r.returncode == 0, r.stderr
    fs = HostDirFS(sim, writable=True)
    for s in scripts:
        res = run_script(fs, f"/var/lib/dpkg/info/{s}.postinst", ["configure", ""], name=s,
                         env={**ENV, "DEBIAN_FRONTEND": "noninteractive"}, models=MODELS)
        assert res.status == 0, res.stderr
        assert res.record.counts[DEFERRED] == 0 and not res.deferred_whole, (s, res.deferred_commands)
    want, got = _pycs(real), _pycs(sim)
    assert any("debpython/__pycache__" in k for k in want) and len(want) > 500
    assert _diff(want, got) == []


@pytest.mark.judge
def test_py3compile_is_incremental_and_py3clean_removes(pair):
    """Second py3compile skips up-to-date files (a touched source is redone); py3clean -p
    removes the package's caches and the emptied __pycache__ directories."""
    real, sim = pair
    # the stdlib's caches first, as python3.11's postinst leaves them: the real py3compile is
    # itself a Python program, and its interpreter writes the caches of the modules it
    # imports when they are missing (a divergence noted in docs/limitations.md)
    stdlib = [n for n in _sources(real) if n.startswith("/usr/lib/python3.11/")]
    steps = [["python3.11", "-E", "-S", "/usr/lib/python3.11/py_compile.py", *stdlib],
             ["py3compile", "-p", "python3-minimal", "/usr/share/python3/"],
             ["touch", "-d", "2020-01-02 03:04:05", "/usr/share/python3/debpython/files.py"],
             ["py3compile", "-p", "python3-minimal", "/usr/share/python3/"],
             ["py3compile", "-O", "/usr/share/python3/debpython/version.py"],
             ["py3compile", "-f", "-X", "interp.*", "/usr/share/python3/debpython"],
             ["py3compile", "-p", "python3", "-V", "3.7-", "/usr/share/python3/", "/nonexistent"],
             ["py3compile", "-p", "libpython3.11-stdlib"],  # public modules only: none in the stdlib
             ["py3clean", "/usr/share/python3/debpython/files.py"],
             ["py3clean", "-p", "python3-minimal"]]
    for argv in steps:
        r = subprocess.run(["chroot", real, *argv], capture_output=True, env=ENV)
        assert r.returncode == 0, r.stderr
        if argv[0] == "touch":
            os.utime(os.path.join(sim, argv[-1].lstrip("/")), (1577934245, 1577934245))
        else:
            status, err = _model(sim, ["/usr/bin/" + argv[0], *argv[1:]])
            assert (status, err) == (r.returncode, r.stderr), argv
        if "-O" in argv:
            # the real -O worker also writes .opt-1.pyc files of the stdlib modules it imports
            # itself (none exist yet): compare what py3compile was asked to compile
            want, got = _pycs(real), _pycs(sim)
            want = {k: v for k, v in want.items() if k.startswith("usr/share/")}
            got = {k: v for k, v in got.items() if k.startswith("usr/share/")}
            assert _diff(want, got) == [], argv
            real_opt = {k for k in _pycs(real) if ".opt-1." in k and k.startswith("usr/lib/")}
            for k in real_opt:
                os.unlink(os.path.join(real, k))
        else:
            assert _diff(_pycs(real), _pycs(sim)) == [], argv


@pytest.mark.judge
def test_syntax_error_and_missing_file_stop_like_py_compile(pair):
    """The first failure ends the run with status 1 and py_compile's message; later names are
    not compiled."""
    real, sim = pair
    for root in (real, sim):
        os.makedirs(os.path.join(root, "srv/p"))
        for name, text in (("a.py", "x = 1\nif x is 1:\n    pass\n"), ("b.py", "y = 1 is 1\ndef f(:\n"),
                           ("c.py", "y = 2\n"), ("d.py", "# -*- coding: latin-1 -*-\nz = 'caf\xe9' is 'x'  \n")):
            with open(os.path.join(root, "srv/p", name), "wb") as f:
                f.write(text.encode("latin-1"))
            os.utime(os.path.join(root, "srv/p", name), (1600000000, 1600000000))
    for names in (["/srv/p/a.py", "/srv/p/b.py", "/srv/p/c.py"], ["/srv/p/nothere.py", "/srv/p/c.py"],
                  ["/srv/p/d.py", "srv/p/a.py"]):
        argv = ["/usr/bin/python3.11", "-E", "-S", "/usr/lib/python3.11/py_compile.py", *names]
        r = subprocess.run(["chroot", real, *argv], capture_output=True, env=ENV)
        status, err = _model(sim, argv)
        assert (status, err) == (r.returncode, r.stderr)
        assert (b"SyntaxWarning" in err) == ("/srv/p/nothere.py" not in names)
        assert sorted(os.listdir(os.path.join(real, "srv/p"))) == sorted(os.listdir(os.path.join(sim, "srv/p")))
    # (the real interpreter also cached the stdlib modules it imported: none exist in the copies)
    cache = {root: {n: open(os.path.join(root, "srv/p/__pycache__", n), "rb").read()
                    for n in os.listdir(os.path.join(root, "srv/p/__pycache__"))} for root in (real, sim)}
    assert sorted(cache[real]) == ["a.cpython-311.pyc", "d.cpython-311.pyc"] and cache[real] == cache[sim]


@pytest.mark.judge
def test_a_name_whose_file_an_earlier_name_rewrites_is_read_at_its_turn(pair):
    """Sources are read ahead of their turn (bytecode.Compiler runs ahead): a later name that
    is an earlier name's .pyc path (there before, holding valid Python, or made by the run,
    directly or through a symlink) is compiled from what its turn reads, as py_compile does --
    here the .pyc just written, whose null bytes fail (not the file read ahead, or its absence)."""
    real, sim = pair
    for root in (real, sim):
        os.makedirs(os.path.join(root, "srv/r/__pycache__"))
        os.makedirs(os.path.join(root, "srv/s"))
        for rel, text in (("srv/r/a.py", "x = 1\n"), ("srv/r/__pycache__/a.cpython-311.pyc", "y = 2\n"),
                          ("srv/s/b.py", "z = 3\n"), ("srv/s/c.py", "w = 4\n")):
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
            os.utime(os.path.join(root, rel), (1600000000, 1600000000))
        os.symlink("__pycache__/c.cpython-311.pyc", os.path.join(root, "srv/s/link.py"))
    for names in (["/srv/r/a.py", "/srv/s/b.py", "/srv/r/__pycache__/a.cpython-311.pyc"],
                  ["/srv/s/c.py", "/srv/s/b.py", "/srv/s/__pycache__/c.cpython-311.pyc"],
                  ["/srv/s/c.py", "/srv/s/link.py"]):
        argv = ["/usr/bin/python3.11", "-E", "-S", "/usr/lib/python3.11/py_compile.py", *names]
        r = subprocess.run(["chroot", real, *argv], capture_output=True, env=ENV)
        status, err = _model(sim, argv)
        # (the image's 3.11.2 raises ValueError for null bytes, the host's 3.11.7 SyntaxError:
        # py_compile's texts differ, a divergence of the host interpreter not tested here)
        assert r.returncode == 1 and b"null bytes" in r.stderr, r.stderr
        assert status == 1 and b"null bytes" in err, err
        for d in ("srv/r", "srv/s"):
            assert _tree(os.path.join(real, d)) == _tree(os.path.join(sim, d))


def _tree(top: str) -> dict[str, bytes | str]:
    """Every file's content (a symlink's target) under ``top``."""
    out = {}
    for d, _dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, top)] = os.readlink(p) if os.path.islink(p) else open(p, "rb").read()
    return out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_compiler_answers_in_order_and_a_dead_worker_defers(workers):
    """Sources sent ahead to several workers come back in the order sent, as one worker
    compiles them (the stdlib sources of the kernel tree, optimize 0 and 2); a worker that dies
    ends in a deferral, and closing with answers unread does not hang."""
    root = os.path.join(kernel_tree(), "usr/lib/python3.11")
    names = sorted(os.path.join(root, f) for f in os.listdir(root) if f.endswith(".py"))[:60]
    sources = [open(n, "rb").read() for n in names]
    for optimize in (0, 2):
        with bytecode.Compiler(False, workers=1) as one:
            want = [one.code(n, s, optimize)[0] for n, s in zip(names, sources)]
        with bytecode.Compiler(False, workers=workers) as comp:
            tickets = [comp.submit(n, s, optimize) for n, s in zip(names, sources)]
            assert [comp.result(t)[0] for t in tickets] == want
            assert sum(w is not None for w in comp.procs) == min(workers, len(names))
    with bytecode.Compiler(False, workers=workers) as comp:
        tickets = [comp.submit(n, s, 0) for n, s in zip(names, sources)]
        comp.result(tickets[0])
        procs = [w.proc for w in comp.procs if w is not None]
        procs[-1].kill()
        with pytest.raises(Defer, match="worker stopped"):
            for t in tickets[1:]:
                comp.result(t)
    assert all(p.poll() is not None for p in procs)
    with bytecode.Compiler(False, workers=workers) as comp:
        tickets = [comp.submit(n, s, 0) for n, s in zip(names, sources)]
        with pytest.raises(bytecode.CompileFailed, match="invalid syntax"):
            comp.result(comp.submit("/srv/bad.py", b"def f(:\n", 0))
        procs = [w.proc for w in comp.procs if w is not None]
    assert all(p.poll() is not None for p in procs)


def test_other_python_uses_and_foreign_magic_are_deferred(tmp_path):
    """-c code, a script, another module, and an image interpreter whose magic differs."""
    root = tmp_path / "t"
    (root / "usr/lib/python3.11/importlib").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib/python3.11/importlib/_bootstrap_external.py").write_text(
        "MAGIC_NUMBER = (3439).to_bytes(2, 'little') + b'\\r\\n'\n")
    (root / "srv").mkdir()
    (root / "srv/a.py").write_text("x = 1\n")
    for argv, why in ((["python3.11", "-c", "print(1)"], "-c"),
                      (["python3.11", "/usr/bin/foo.py"], "Python program"),
                      (["python3.11", "-m", "pip", "install"], "-m pip"),
                      (["python3.11", "-m", "py_compile", "/srv/a.py"], "magic 3439")):
        with pytest.raises(Defer, match=why):
            _defers(str(root), argv)
    assert not (root / "srv/__pycache__").exists()


def test_magic_number_is_read_from_the_image(tmp_path):
    """The image's magic comes from its own importlib source, never from running it."""
    base = kernel_tree()
    fs = HostDirFS(base)
    assert bytecode.image_magic(fs, "3.11") == open(
        os.path.join(base, "usr/lib/python3.11/__pycache__/os.cpython-311.pyc"), "rb").read(4)
    assert bytecode.image_magic(fs, "3.99") is None


@pytest.mark.judge
def test_py3compile_with_a_broken_source_defers_whole_and_writes_nothing(pair):
    """A source that does not compile: py3compile's end is a race in the real program, so the
    command is deferred and not one .pyc or __pycache__ is written."""
    _real, sim = pair
    os.makedirs(os.path.join(sim, "srv/q"))
    for name, text in (("a.py", "x = 1\n"), ("b.py", "def f(:\n")):
        with open(os.path.join(sim, "srv/q", name), "w") as f:
            f.write(text)
    with pytest.raises(Defer, match="b.py does not byte-compile"):
        _defers(sim, ["/usr/bin/py3compile", "/srv/q"])
    assert sorted(os.listdir(os.path.join(sim, "srv/q"))) == ["a.py", "b.py"]


@pytest.mark.judge
def test_py3compile_honours_bcep_exclusions(pair):
    """``/usr/share/python3/bcep`` files (python3-jinja2 ships one): ``re``, ``file`` and ``dir``
    entries, a version range no installed Python meets (ignored), a line without a pattern,
    comments, a hidden file (not read); the same .pyc files appear as with the real py3compile."""
    real, sim = pair
    files = ("a.py", "files.py", "inter_x.py", "version.py", "tools.py", "sub/c.py", "skip/d.py", "keep/e.py")
    for root in (real, sim):
        for rel in files:
            path = os.path.join(root, "usr/share/python3/nuwa-test", rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(f"X = {rel!r}\n")
            os.utime(path, (1600000000, 1600000000))
    stdlib = [n for n in _sources(real) if n.startswith("/usr/lib/python3.11/")]
    # py3compile's own imports get their caches first (its interpreter writes them)
    warm = [["python3.11", "-E", "-S", "/usr/lib/python3.11/py_compile.py", *stdlib],
            ["py3compile", "-p", "python3-minimal", "/usr/share/python3/"]]
    bcep = ("# nuwa's test exclusions\n"
            "re|-3.6|/usr/share/python3/nuwa-test|.*files\\.py\n"
            "re||/usr/share/python3/nuwa-test|.*/inter.*\\.py\n"
            "file|3.11-|/usr/share/python3/nuwa-test/version.py\n"
            "re|3.11|/usr/share/python3/nuwa-test/|(tools|sub/)\n"
            "dir||/usr/share/python3/nuwa-test/skip\n")
    steps = [["py3compile", "/usr/share/python3/nuwa-test"], ["py3compile", "-f", "-X", "a\\.py", "/usr/share/python3/nuwa-test/"]]
    for n, argv in enumerate(warm + steps):
        if n == len(warm):
            for root in (real, sim):
                os.makedirs(os.path.join(root, "usr/share/python3/bcep"), exist_ok=True)
                with open(os.path.join(root, "usr/share/python3/bcep/nuwa-test"), "w") as f:
                    f.write(bcep)
                with open(os.path.join(root, "usr/share/python3/bcep/.hidden"), "w") as f:
                    f.write("dir||/usr/share/\n")
        r = subprocess.run(["chroot", real, *argv], capture_output=True, env=ENV)
        assert r.returncode == 0, r.stderr
        status, err = _model(sim, ["/usr/bin/" + argv[0], *argv[1:]])
        if argv[0] != "python3.11":
            assert (status, err) == (r.returncode, r.stderr), argv
        assert _diff(_pycs(real), _pycs(sim)) == [], argv
    names = {k.split("nuwa-test/", 1)[1] for k in _pycs(real) if "nuwa-test" in k and k.endswith(".pyc")}
    assert names == {"__pycache__/a.cpython-311.pyc", "__pycache__/files.cpython-311.pyc",
                     "keep/__pycache__/e.cpython-311.pyc"}, names  # the judge excluded the rest
    with open(os.path.join(sim, "usr/share/python3/bcep/bad"), "w") as f:
        f.write("re||/usr/share/python3/nuwa-test|(unclosed\n")
    with pytest.raises(Defer):
        _defers(sim, ["py3compile", "/usr/share/python3/nuwa-test"])
