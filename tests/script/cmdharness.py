"""Differential harness for command models: the real program is the oracle.

Each case builds the same scratch tree twice under ``tmp_path``; the real GNU program runs in
one (cwd = the tree, ``LC_ALL=C``, the case's umask, relative paths only), the model runs on a
:class:`HostDirFS` rooted at the other with cwd ``/``. Stdout, stderr, the exit status and the
resulting trees (type, mode, owner, size, content hash, link target) must agree.
"""

from __future__ import annotations

import os
import shlex
import shutil

from helpers import runs
from helpers.trees import brief_facts, tree_facts
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer

MODELS = default_models()

ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TZ": "UTC"}

LINES = b"one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\ntwelve\n"
TABLE = (b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
         b"bin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n"
         b"www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n")
CONF = (b"# a config file\nPort 22\n#PermitRootLogin yes\nPermitRootLogin no\n\n"
        b"Match User anoncvs\n\tX11Forwarding no\n\tAllowTcpForwarding no\nUsePAM yes\n"
        b"Subsystem sftp /usr/lib/openssh/sftp-server\nfoo=bar\nFOO=BAZ\n")


def build_tree(root: str) -> None:
    """The standard scratch tree every case starts from (made the same way each time)."""
    os.makedirs(root)

    def w(rel: str, data: bytes, mode: int = 0o644) -> None:
        p = os.path.join(root, rel)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)

    for d in ("etc", "d", "d/sub", "d/sub/deep", "e", "tmp", "var", "var/lib", "usr", "usr/bin"):
        os.mkdir(os.path.join(root, d))
        os.chmod(os.path.join(root, d), 0o755)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copyfile("/etc/passwd", os.path.join(root, "etc/passwd"))
    shutil.copyfile("/etc/group", os.path.join(root, "etc/group"))
    w("f1", b"hello\n")
    w("f2", b"world\nand more\n", 0o600)
    w("exe", b"#!/bin/sh\necho hi\n", 0o755)
    w("empty", b"")
    w("lines", LINES)
    w("table", TABLE)
    w("conf", CONF)
    w("nonl", b"no newline at end")
    w("d/a", b"a\n")
    w("d/b", b"bb\n")
    w("d/sub/c", b"ccc\n", 0o640)
    w("d/sub/deep/e", b"eeee\n")
    w("usr/bin/tool", b"#!/bin/sh\n", 0o755)
    w("h1", b"hard\n")
    os.link(os.path.join(root, "h1"), os.path.join(root, "h2"))
    os.symlink("f1", os.path.join(root, "lf"))
    os.symlink("d", os.path.join(root, "ld"))
    os.symlink("nowhere", os.path.join(root, "dangling"))
    os.symlink("../f1", os.path.join(root, "d/up"))
    os.symlink("loop2", os.path.join(root, "loop1"))
    os.symlink("loop1", os.path.join(root, "loop2"))
    os.mkfifo(os.path.join(root, "fifo"))
    os.chmod(os.path.join(root, "fifo"), 0o644)
    os.chown(os.path.join(root, "f2"), 1, 1)
    # fixed times so that -r/-newer/-p cases compare exactly (parents last: entries touch them)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for i, n in enumerate(sorted(filenames + dirnames)):
            os.utime(os.path.join(dirpath, n), ns=(1_600_000_000 * 10**9 + i, 1_600_000_000 * 10**9 + i * 1000),
                     follow_symlinks=False)
    os.utime(root, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))


def snapshot(root: str) -> dict[str, tuple]:
    """Every path below ``root``: :func:`helpers.trees.brief_facts` (mode, owner, size, hash or
    link target, link count)."""
    return tree_facts(root, brief_facts)


def mtimes(root: str) -> dict[str, int]:
    """mtime (ns) of every path below ``root`` (for the cases that set times explicitly)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p).st_mtime_ns
    return out


def run_real(root: str, argv: list[str], stdin: bytes, umask: int) -> tuple[int, bytes, bytes]:
    """The real program with cwd in the scratch tree (relative paths only)."""
    return runs.run_real(argv, cwd=root, env=ENV, stdin=stdin, umask=umask, timeout=30)


def normalise(res: tuple[int, bytes, bytes], root: str) -> tuple[int, bytes, bytes]:
    """Rewrite the scratch root in the real program's output as the image root ``/``."""
    return res[0], *(runs.strip_root(b, root) for b in res[1:])


def run_model(root: str, argv: list[str], stdin: bytes, umask: int, fs=None, cwd: str = "/") -> tuple[int, bytes, bytes]:
    fs = fs or HostDirFS(root, writable=True)
    if os.path.basename(argv[0]) == "echo":
        # the interpreter's builtin; xargs/find -exec cases call it through inv.run
        return 0, (" ".join(argv[1:]) + "\n").encode("utf-8", "surrogateescape"), b""
    if os.path.basename(argv[0]) in ("true", "false"):
        return int(argv[0].endswith("false")), b"", b""
    # a nested program (xargs, find -exec) may be given its own working directory (-execdir)
    return runs.run_model(root, argv, env=ENV, stdin=stdin, umask=umask, fs=fs, models=MODELS, cwd=cwd,
                          run=lambda a, i, env=None, cwd="/": run_model(root, a, i, umask, fs, cwd))


def compare(tmp_path, cmd: str | list[str], stdin: bytes = b"", umask: int = 0o022, times: tuple = (),
            setup=None) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` both ways and assert everything observable agrees; returns the real result."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    real, model = str(tmp_path / "real"), str(tmp_path / "model")
    for r in (real, model):
        build_tree(r)
        if setup:
            setup(r)
    want = normalise(run_real(real, argv, stdin, umask), real)
    try:
        got = run_model(model, argv, stdin, umask)
    except Defer as d:
        raise AssertionError(f"model deferred: {d.reason}") from None
    got_out, want_out = got[1].decode("utf-8", "replace"), want[1].decode("utf-8", "replace")
    if not _same_inode_order(real, model):
        # cp/find order entries by inode number (gnulib savedir FASTREAD); when the two scratch
        # trees got their inodes in different orders (allocation interleaved with other work on
        # the host filesystem), only the set of output lines can be compared
        got_out, want_out = sorted(got_out.splitlines()), sorted(want_out.splitlines())
    assert (got[0], got_out, got[2].decode("utf-8", "replace")) == \
           (want[0], want_out, want[2].decode("utf-8", "replace")), cmd
    assert snapshot(model) == snapshot(real), cmd
    if times:
        mr, mm = mtimes(real), mtimes(model)
        assert [mm.get(t) for t in times] == [mr.get(t) for t in times], cmd
    return want


def _same_inode_order(a: str, b: str) -> bool:
    """True when every directory lists its entries in the same inode-number order in both trees."""
    for dirpath, dirnames, filenames in os.walk(a):
        rel = os.path.relpath(dirpath, a)
        other = os.path.join(b, rel)
        names = dirnames + filenames
        try:
            ka = sorted(names, key=lambda n: os.lstat(os.path.join(dirpath, n)).st_ino)
            kb = sorted(names, key=lambda n: os.lstat(os.path.join(other, n)).st_ino)
        except OSError:
            return False
        if ka != kb:
            return False
    return True


def deferred(tmp_path, cmd: str) -> str:
    """Run ``cmd`` on the model only and return the Defer reason (AssertionError if none)."""
    model = str(tmp_path / "model")
    build_tree(model)
    try:
        run_model(model, shlex.split(cmd), b"", 0o022)
    except Defer as d:
        return d.reason
    raise AssertionError(f"{cmd} was not deferred")


def library_links(root: str, libdir: str) -> dict[str, str]:
    """What ldconfig leaves in ``libdir`` and ``opt/extra`` of a host tree: each name's link
    target, or "file"/"other" (the ldconfig judges compare the real tree with the model's)."""
    out = {}
    for d in (libdir, "opt/extra"):
        base = os.path.join(root, d)
        if not os.path.isdir(base):
            continue
        for n in sorted(os.listdir(base)):
            p = os.path.join(base, n)
            out[f"{d}/{n}"] = os.readlink(p) if os.path.islink(p) else ("file" if os.path.isfile(p) else "other")
    return out
