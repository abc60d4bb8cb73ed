"""``chronyd -p`` (chrony 4.3) against the real chronyd in a chroot of a bookworm tree.

Each case writes configuration files into a hard-linked copy of the tree (replacing files,
never writing through a link), runs the real ``chronyd -p`` there with ``chroot`` (no /proc,
/dev or /sys: ``-p`` needs none) and the model on the same copy; stdout, stderr (with the
time stamp of each log line replaced by ``<T>``) and the status must agree.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from debian_tree import bookworm_tree, link_tree
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Invocation

MODELS = default_models()
#: the tree shared with tests/script/test_machine_id.py
PACKAGES = ("chrony", "systemd")
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", re.M)


@pytest.fixture(scope="module")
def base():
    return bookworm_tree(PACKAGES)


def _put(root: str, files: dict[str, bytes | str | None]) -> None:
    """Write files (bytes), directories (None) and symlinks (str: the target) into ``root``."""
    for rel, data in files.items():
        p = os.path.join(root, rel.lstrip("/"))
        if os.path.lexists(p) and not os.path.isdir(p):
            os.unlink(p)  # a hard link to the shared tree: replace, never write through it
        if data is None:
            os.makedirs(p, exist_ok=True)
            continue
        if isinstance(data, str):
            os.symlink(data, p)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def _both(base, tmp_path, files, args=("-p",)):
    root = link_tree(base, str(tmp_path / "root"))
    _put(root, files)
    r = subprocess.run([tool("chroot"), root, "chronyd", *args], capture_output=True, env=ENV)
    inv = Invocation(argv=["chronyd", *args], fs=HostDirFS(root), cwd="/", models=MODELS)
    status = MODELS["chronyd"](inv)
    real = (r.returncode, r.stdout, STAMP.sub(b"<T>", r.stderr))
    return real, (status, bytes(inv.stdout), STAMP.sub(b"<T>", bytes(inv.stderr)))


CONF = "etc/chrony/chrony.conf"
CASES = {
    "shipped": {},
    "spacing-comments": {CONF: b"  server   a.example\t iburst   minpoll 4 \r\n# c\n; c\n!c\n%c\n\n \t\n"
                                b"user _chrony # not a comment\nrtcsync\\\n  makestep 1 3\nDriftFile /x\nkeyfile /k"},
    "include-glob-sorted": {CONF: b"include /etc/chrony/inc/*.conf\nlogdir /l\n",
                            "etc/chrony/inc/b.conf": b"user b\n", "etc/chrony/inc/a.conf": b"pool p maxsources 3\n",
                            "etc/chrony/inc/.hidden.conf": b"bogus\n", "etc/chrony/inc/c.txt": b"bogus\n"},
    "include-missing-dir": {CONF: b"rtcsync\ninclude /etc/chrony/nowhere/*.conf\nuser x\n"},
    "include-no-match": {CONF: b"include /etc/chrony/conf.d/*.none\nuser x\n"},
    "include-missing-file": {CONF: b"rtcsync\ninclude /etc/chrony/missing.conf\n"},
    "include-magic-dir": {CONF: b"include /etc/chrony/*/x.conf\n", "etc/chrony/d1/x.conf": b"user one\n",
                          "etc/chrony/d2/x.conf": b"user two\n"},
    "include-magic-dir-missing": {CONF: b"include /etc/chrony/*/absent.conf\nuser x\n"},
    "include-magic-dangling": {CONF: b"include /etc/chrony/d*/x.conf\n", "etc/chrony/d1/x.conf": b"user one\n"},
    "include-magic-links": {CONF: b"include /etc/chrony/l*/x.conf\n", "etc/chrony/d1/x.conf": b"user one\n",
                            "etc/chrony/l1": "d1", "etc/chrony/l2": "nowhere", "etc/chrony/l3": "d1/x.conf"},
    "include-directory": {CONF: b"include /etc/chrony/conf.d\nuser x\n"},
    "include-recursive": {CONF: b"user x\ninclude /etc/chrony/chrony.conf\n"},
    "include-args": {CONF: b"include\n"},
    "confdir": {CONF: b"confdir /etc/chrony/c1 /etc/chrony/none /etc/chrony/c2/\nuser end\n",
                "etc/chrony/c1/20-x.conf": b"user c1-20\n", "etc/chrony/c2/20-x.conf": b"user c2-20\n",
                "etc/chrony/c2/10-y.conf": b"keyfile /c2-10\n", "etc/chrony/c1/README": b"bogus\n",
                "etc/chrony/c2/30.conf.bak": b"bogus\n"},
    "confdir-none": {CONF: b"confdir\n"},
    "sourcedir-not-read": {CONF: b"sourcedir /etc/chrony/s\n", "etc/chrony/s/x.sources": b"bogus line\n"},
    "unknown-directive": {CONF: b"rtcsync\nfrobnicate 1 2\nuser x\n"},
    "removed-directive": {CONF: b"linux_hz 100\ncommandkey 1\nuser x\n"},
    "missing-arg": {CONF: b"user\n"},
    "too-many": {CONF: b"keyfile a b\n"},
    "null-with-arg": {CONF: b"rtcsync yes\n"},
    "int-bad": {CONF: b"port x\n"},
    "int-trailing": {CONF: b"port 123x\nmaxupdateskew 1.5e3\n"},
    "double-bad": {CONF: b"maxupdateskew .\n"},
    "makestep-bad": {CONF: b"makestep 1x 3\n"},
    "maxchange": {CONF: b"maxchange 1000 1 2\nmaxchange 1000 1\n"},
    "source-opts": {CONF: b"server a key 0\n"},
    "source-opt-glued": {CONF: b"server a minpoll 4iburst\nserver b minpoll 4x\n"},
    "source-no-value": {CONF: b"peer a maxpoll\n"},
    "source-extfield": {CONF: b"server a extfield F323 copy xleave\nserver b extfield 1\n"},
    "ratelimit": {CONF: b"ratelimit interval 3 burst 8 leak 2\ncmdratelimit foo 3\n"},
    "log": {CONF: b"log tracking measurements statistics\nlog tracking bogus\n"},
    "leapsecmode": {CONF: b"leapsecmode SLEW\nauthselectmode mix\nleapsecmode fast\n"},
    "mailonchange": {CONF: b"mailonchange root@x 0.5\nmailonchange root@x y\n"},
    "ntstrustedcerts": {CONF: b"ntstrustedcerts 1 /a\nntstrustedcerts /b\nntstrustedcerts x /c\n"},
    "case-user": {CONF: b"USER root\n"},
    "long-line": {CONF: b"user " + b"x" * 2100 + b"\n"},
    "nul-byte": {CONF: b"user a\0junk\nrtcsync\n"},
    "latin1": {CONF: b"user \xe9t\xe9\n"},
    "line-2047": {CONF: b"user " + b"x" * 2042 + b"\nrtcsync\n"},
    "line-2046": {CONF: b"user " + b"x" * 2041 + b"\nrtcsync\n"},
    "crlf-no-final-newline": {CONF: b"user a\r\nrtcsync\r\nmakestep 1 3"},
    "include-relative": {CONF: b"include etc/chrony/rel.conf\n", "etc/chrony/rel.conf": b"user rel\n"},
    "confdir-root-slash": {CONF: b"confdir / /etc/chrony/c1\n", "etc/chrony/c1/a.conf": b"user c1\n"},
    "many-confdirs": {CONF: b"confdir" + b" /d" * 11 + b"\n"},
    "source-numbers": {CONF: b"server a minpoll -6 maxpoll +10 key 4294967295 certset 1 maxdelay .5 offset -1.e3\n"
                             b"pool b maxsources 0x\n"},
}


@pytest.mark.judge
@pytest.mark.parametrize("name", list(CASES))
def test_chronyd_p_matches_real(base, tmp_path, name):
    real, model = _both(base, tmp_path, CASES[name])
    assert model == real


@pytest.mark.judge
@pytest.mark.parametrize("args", [("-p", "-f", "/etc/other.conf"), ("-p", "-f", "/etc/absent.conf"),
                                  ("-p", "user x", "bogus"), ("-p", "server  a   iburst"), ("-n", "-p", "-U")],
                         ids=["f", "f-missing", "argv-lines", "argv-spacing", "other-flags"])
def test_chronyd_p_arguments_match_real(base, tmp_path, args):
    real, model = _both(base, tmp_path, {"etc/other.conf": b"user other\npool q\n"}, args)
    assert model == real


def test_chronyd_postinst_probe(base, tmp_path):
    """chrony's postinst form: the pipeline through grep answers from the image's config."""
    from nuwa.script.interp import run_script
    root = link_tree(base, str(tmp_path / "root"))
    fs = HostDirFS(root)
    text = 'if ! chronyd -p | grep -q "^user"; then echo nouser; else echo user; fi\n'
    r = run_script(fs, text, models=MODELS)
    assert r.stdout == b"nouser\n" and r.status == 0
    _put(root, {CONF: b"confdir /etc/chrony/conf.d\n", "etc/chrony/conf.d/u.conf": b"user ntp\n"})
    r = run_script(fs, text, models=MODELS)
    assert r.stdout == b"user\n"


@pytest.mark.parametrize("args,files,why", [
    (("-q",), {}, "starts the NTP daemon"),
    ((), {}, "starts the NTP daemon"),
    (("-p", "-d"), {}, "-d is not modelled"),
    (("-p",), {CONF: b"allow 10.0.0.0/8\n"}, "allow directive"),
    (("-p",), {CONF: b"makestep 1e 3\n"}, "scanf"),
    (("-p",), {CONF: b"include /etc/chrony/x\\*\n"}, "backslash"),
])
def test_chronyd_defers(tmp_path, args, files, why):
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "etc/chrony"))
    _put(root, {CONF: b"user x\n", **files})
    inv = Invocation(argv=["chronyd", *args], fs=HostDirFS(root), cwd="/", models=MODELS)
    with pytest.raises(Defer, match=why):
        MODELS["chronyd"](inv)
