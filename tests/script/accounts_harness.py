"""Differential harness for the account-tool models: the real tool in a chroot is the oracle.

One full bookworm tree is copied twice per test module (``pair``). Each case restores
``/etc`` and the directories cases touch on both copies, runs a sequence of commands with the
real programs (``chroot A CMD``) and with the models (on :class:`HostDirFS` of B), and checks
after every command that stdout, stderr and the exit status agree; at the end the account files
(and their ``-`` backups) are compared byte for byte with mode and owner, and the trees below
the touched directories path by path (type, mode, owner, size, content, link target).

Every run sets ``SOURCE_DATE_EPOCH`` (honoured by shadow-utils' ``gettime`` and by
systemd-sysusers), so the ``lastchg`` field of shadow lines compares exactly too.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess

from debian_tree import copy_tree, restore_paths
from helpers import runs
from helpers.trees import dated_facts, tree_facts
from nuwa.script.commands import default_models
from nuwa.script.context import Defer

MODELS = default_models()

EPOCH = "1700000000"
ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "SOURCE_DATE_EPOCH": EPOCH}
ACCOUNT_FILES = ["passwd", "shadow", "group", "gshadow", "subuid", "subgid"]
#: directories a case may create things in; emptied back to the pristine state between cases
SCRATCH = ["home", "var/mail", "var/lib/nuwa-test", "srv", "run"]


class Pair:
    """Two copies of one tree: ``real`` (chroot oracle) and ``model`` (HostDirFS)."""

    def __init__(self, base: str, where: str):
        self.base = base
        self.real = os.path.join(where, "real")
        self.model = os.path.join(where, "model")
        self.pristine = os.path.join(where, "pristine")
        for d in (self.real, self.model):
            copy_tree(base, d)
        os.makedirs(self.pristine)
        for d in ["etc"] + SCRATCH:
            src = os.path.join(base, d)
            if os.path.isdir(src):
                os.makedirs(os.path.dirname(os.path.join(self.pristine, d)), exist_ok=True)
                subprocess.run(["cp", "-a", src, os.path.join(self.pristine, d)], check=True)

    def reset(self, setup=None) -> None:
        """Both copies back to the pristine ``/etc`` and scratch directories, then ``setup(root)``
        (an overlay copy whose changes all lie in them is remounted fresh instead:
        :func:`debian_tree.renew_copy`)."""
        for root in (self.real, self.model):
            restore_paths(self.base, root, ["etc"] + SCRATCH, self.pristine)
            if setup:
                setup(root)

    def run_real(self, argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, bytes]:
        # a private /proc: glibc's fchmodat(AT_SYMLINK_NOFOLLOW), used when copying /etc/skel,
        # needs /proc/self/fd, as on a booted system; a bare chroot would make it fail
        return runs.run_real(["unshare", "--mount", "--pid", "--fork", f"--mount-proc={self.real}/proc",
                              "chroot", self.real, *argv], env=ENV, stdin=stdin)

    def run_model(self, argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, bytes]:
        return runs.run_model(self.model, argv, env=ENV, stdin=stdin, umask=0o022, models=MODELS)


def file_facts(root: str, rel: str):
    p = os.path.join(root, rel)
    if not os.path.lexists(p):
        return None
    st = os.lstat(p)
    with open(p, "rb") as f:
        data = f.read()
    return stat.filemode(st.st_mode), st.st_uid, st.st_gid, data


def tree(root: str, rel: str, since: int | None = None) -> dict[str, tuple]:
    """Path facts below ``root/rel``, itself included (mtimes of regular files too: useradd's
    skeleton copies keep them); a file written during the case (mtime >= ``since``) reads "new":
    the clocks differ (:func:`helpers.trees.dated_facts`)."""
    return tree_facts(root, dated_facts(since), subs=(rel,), include_subs=True)


def fs_clock_now(directory: str) -> int:
    """Now, as the kernel stamps files in ``directory`` (ns).

    File times come from the kernel's coarse clock, which lags ``time.time_ns()`` by up to one
    timer tick (4 ms at HZ=250): a file written right after ``time.time_ns()`` was read can carry
    an *earlier* mtime. So "written during the case" is decided against a probe file's own
    mtime, which no later write can precede.
    """
    probe = os.path.join(directory, ".nuwa-clock-probe")
    with open(probe, "w"):
        pass
    try:
        return os.stat(probe).st_mtime_ns
    finally:
        os.unlink(probe)


def check_case(pair: Pair, cmds: list[str], setup=None, dirs: tuple[str, ...] = (),
               defer_ok: bool = False) -> list[tuple[int, bytes, bytes]]:
    """Run ``cmds`` both ways; assert outputs after each and the files at the end agree."""
    pair.reset(setup)
    since = fs_clock_now(pair.real)
    results = []
    for cmd in cmds:
        argv = shlex.split(cmd)
        want = pair.run_real(argv)
        try:
            got = pair.run_model(argv)
        except Defer as d:
            if defer_ok:
                return results
            raise AssertionError(f"{cmd}: model deferred ({d.reason}); real gave {want}") from None
        assert got == want, f"{cmd}:\n real  {want}\n model {got}"
        results.append(want)
    for name in ACCOUNT_FILES:
        for suffix in ("", "-"):
            rel = f"etc/{name}{suffix}"
            assert file_facts(pair.model, rel) == file_facts(pair.real, rel), rel
    for rel in ("etc/.pwd.lock", "var/log/lastlog", "var/log/faillog", "run/adduser"):
        a, b = file_facts(pair.real, rel), file_facts(pair.model, rel)
        assert a == b, rel
    for d in ("home", "var/mail") + tuple(dirs):
        assert tree(pair.model, d, since) == tree(pair.real, d, since), d
    return results
