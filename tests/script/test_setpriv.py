"""setpriv (util-linux 2.38.1) against the real one in a chroot of a bookworm minbase tree.

Each case runs one command line with real ``sh`` in a chroot of one copy and with Nuwa's
interpreter on the other (an overlay, committed), compares status, stdout and stderr (nothing
may be deferred), then ``/srv`` and ``/tmp`` of both trees: what the program run as ``man``
may and may not do, what it finds in its environment, and setpriv's own errors.
"""

from __future__ import annotations

import os

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import ENV, MODELS, shell_pair, write

AS_MAN = "setpriv --reuid man --regid man --init-groups"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return shell_pair(tmp_path_factory, "setpriv", ["srv", "tmp"])


def layout(root: str) -> None:
    """A directory man may write in, one it may not, a file only root may run, a script."""
    os.makedirs(os.path.join(root, "srv/mine"))
    os.chown(os.path.join(root, "srv/mine"), 6, 12)
    os.makedirs(os.path.join(root, "srv/closed"), mode=0o700)
    write(root, "srv/closed/tool", b"#!/bin/sh\necho closed\n", 0o755)
    write(root, "srv/rootonly", b"#!/bin/sh\necho rootonly\n", 0o700)
    write(root, "srv/tool", b"#!/bin/sh\nid -un; echo \"$0 $*\"; cat\n", 0o755)
    write(root, "srv/secret", b"s\n", 0o600)
    write(root, "srv/notexec", b"#!/bin/sh\n", 0o644)


CASES = [
    # man-db's postinst form, with programs that show who runs them and what they may do
    f"{AS_MAN} -- id; {AS_MAN} id -G; {AS_MAN} id -un",
    f"{AS_MAN} sh -c 'echo $HOME $USER; umask; touch /srv/x; echo $?; touch /srv/mine/y /tmp/y; "
    "stat -c \"%u %g %a %n\" /srv/mine/y /tmp/y'",
    f"{AS_MAN} cat /srv/secret; echo $?; {AS_MAN} rm -f /srv/secret; echo $?",
    f"echo hello | {AS_MAN} /srv/tool a 'b c'",
    f"{AS_MAN} -- sh -c 'echo $0 $1' a b",
    f"{AS_MAN} --reset-env env; TERM=vt100 setpriv --reset-env env",
    "setpriv --reuid=man --regid=man --init-groups id; setpriv --reuid ' 6' --regid '+12' --init-groups id",
    "setpriv --euid man --ruid man --egid 12 --rgid 12 --init-groups id -un",
    "setpriv --reuid man --regid man --clear-groups id; setpriv --reuid man --regid man --groups 12,man id",
    "setpriv --reuid root --regid root --init-groups id; setpriv --nnp id -u; setpriv --n --no-new-privs true",
    # what execvp finds (with setpriv's capabilities still raised)
    f"{AS_MAN} nosuchprog; echo $?; {AS_MAN} /srv/nothere; echo $?",
    f"{AS_MAN} /srv/notexec; echo $?; {AS_MAN} /srv; echo $?; {AS_MAN} /srv/closed/nothere; echo $?",
    f"cd /srv && {AS_MAN} ./tool x </dev/null",
    # setpriv's own errors
    "setpriv; echo $?",
    "setpriv --bogus id; setpriv -x id; /usr/bin/setpriv --bogus id; echo $?",
    "setpriv --reuid; setpriv --re man id; setpriv --init-groups=x id; echo $?",
    "setpriv --reuid man --regid man id; echo $?",
    "setpriv --reuid nosuchuser --init-groups id; setpriv --reuid abc id; setpriv --regid nogroup-x id",
    "setpriv --reuid 99999999999999999999 id; echo $?",
    "setpriv --reuid 12345 --regid 12345 --init-groups id; echo $?",
    "setpriv --regid man --clear-groups --init-groups id; setpriv --keep-groups --groups 1 id",
    "setpriv --reuid man --reuid man id; setpriv --ruid man --reuid man id; setpriv --euid 1 --euid 1 id",
    "setpriv --regid 1 --egid 1 id; setpriv --init-groups --init-groups id; setpriv --groups 1 --groups 1 id",
    "setpriv --nnp --nnp id; setpriv --init-groups id; setpriv --reuid man --regid man --groups x id",
    "setpriv --reuid man --regid man --groups '' id; setpriv --reuid man --regid man --groups 12, id",
]


@pytest.mark.parametrize("cmd", CASES)
def test_setpriv(pair, cmd):
    pair.check([cmd], setup=layout)


def model_run(pair, cmd):
    pair.reset(layout)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    return run_script(fs, cmd, env=dict(ENV), models=MODELS, is_path=False)


@pytest.mark.parametrize("cmd, reason", [
    ("setpriv --reuid man id", "supplementary groups are kept"),  # and gid 0
    ("setpriv --reuid man --init-groups id", "are not man's login credentials"),  # gid 0 kept
    ("setpriv --reuid man --regid man --keep-groups id", "--keep-groups"),
    ("setpriv --reuid man --regid 0 --init-groups id", "are not man's login credentials"),
    ("setpriv --reuid man --regid man --groups 0 id", "are not man's login credentials"),
    ("setpriv --ruid man --regid man --init-groups id", "real and effective ids differ"),
    ("setpriv --reuid -1 id", "a negative or truncated id"),
    ("setpriv -d", "--dump"),
    ("setpriv --help", "--help"),
    ("setpriv --inh-caps -all id", "capabilities"),
    (f"{AS_MAN} zzfrob -cq", "no model for zzfrob"),  # a program of the image with no model
    (f"{AS_MAN} sh -c 'touch /srv/mine/a; zzfrob -pq'", "zzfrob"),
    (f"{AS_MAN} /srv/closed/tool", "the shell's lookup as the user differs"),
    # a script only root may read: setpriv (capabilities kept) executes it, but the shell,
    # running as man, cannot open it; the interpreter cannot read it either
    (f"{AS_MAN} /srv/rootonly", "rootonly"),
])
def test_deferred(pair, cmd, reason):
    """What the models cannot answer for defers the whole setpriv, with the reason, and
    nothing of it is written."""
    if "zzfrob" in cmd:
        write(pair.model, "usr/bin/zzfrob", b"\x7fELF", 0o755)
    try:
        r = model_run(pair, cmd)
    finally:
        if "zzfrob" in cmd:
            os.unlink(os.path.join(pair.model, "usr/bin/zzfrob"))
    assert [d.reason for d in r.deferred_commands if reason in d.reason], r.deferred_commands
    assert not os.path.exists(os.path.join(pair.model, "srv/mine/a"))

