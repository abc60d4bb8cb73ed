"""ucf/ucfr: the image's real shell scripts run by Nuwa's interpreter vs real dash in a chroot.

Nuwa has no model of ``ucf``/``ucfr``: the interpreter runs the scripts from the image, so
these tests judge the helpers they call (``getopt``, ``seq``, ucf's ``perl`` one-liner against
the host's util-linux, coreutils and perl) and the whole behaviour of a chain of ucf calls in
two copies of a bookworm tree with the ucf package installed by real dpkg: new file, upgrade
of an unmodified file, local changes kept with and without debconf already running (the
noninteractive answer), forced new version, purge, and a registration conflict.
"""

from __future__ import annotations

import glob
import os
import subprocess
import time

import pytest

from debconf_oracle import debconf_records, diff_trees, environment, make_pair, put, run_nuwa, run_real
from debian_tree import bookworm_tree, copy_tree
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation

MODELS = default_models()

UCF_SHORT = "hs:d::D::npP:Zv"
UCF_LONG = ("help,src-dir:,sum-file:,dest-dir:,debug::,DEBUG::,no-action,package:,purge,verbose,three-way,"
            "debconf-ok,debconf-template:,state-dir:")
GETOPT_CASES = [
    ["--three-way", "--debconf-ok", "/a", "/b"], ["-p", "/etc/x"], ["--purge", "/etc/x"], ["-debconf-ok", "x", "y"],
    ["--sum-file", "/s", "a", "b"], ["-d", "a", "b"], ["-d5", "a"], ["--debug=3", "a"], ["--debug", "a"],
    ["--bogus", "a"], ["-x", "a"], ["--src-dir"], ["-s"], ["--de", "a"], ["--thr", "a b", "c'd"], ["-three-way", "a"],
    ["-vn", "a"], ["--", "-p", "x"], ["a", "-p", "b"], ["-P", "pkg", "--state-dir=/x", "a"], ["-deb", "a"],
    ["--purge=x"], ["-pv"],
]


def _model(argv: list[str], stdin: bytes = b"", env=None) -> tuple[int, bytes, bytes]:
    inv = Invocation(argv=argv, fs=None, env=env or {}, stdin=stdin, models=MODELS)
    st = MODELS[argv[0]](inv)
    return st, bytes(inv.stdout), bytes(inv.stderr)


@pytest.mark.parametrize("args", GETOPT_CASES, ids=lambda a: " ".join(a) or "none")
def test_getopt_like_util_linux(args):
    argv = ["getopt", "-a", "-o", UCF_SHORT, "-n", "ucf", "--long", UCF_LONG, "--", *args]
    r = subprocess.run(argv, capture_output=True, env={"PATH": os.environ["PATH"], "LC_ALL": "C"})
    assert _model(argv) == (r.returncode, r.stdout, r.stderr)


EXIM_LONG = "check,keepcomments,removecomments,output:,confdir:,help,verbose"


@pytest.mark.parametrize("argv", [
    ["getopt", "-n", "update-exim4.conf", "-l", EXIM_LONG, "--", "+o:d:vh"],
    ["getopt", "-n", "update-exim4.conf", "-l", EXIM_LONG, "--", "+o:d:vh", "-v", "--output", "/x", "y", "-h"],
    ["getopt", "-n", "update-exim4.conf", "-l", EXIM_LONG, "--", "+o:d:vh", "--bogus"],
    ["getopt", "-l", EXIM_LONG, "+o:d:vh", "-o", "f", "--check"],
    ["getopt", "--", "ab:", "-a", "x", "-b", "y", "-c"],
], ids=lambda a: " ".join(a[1:]))
def test_getopt_optstring_as_first_parameter(argv):
    """Without -o, util-linux getopt takes the first parameter as the short options string;
    the old form with no getopt option at all prints unquoted words: deferred."""
    r = subprocess.run(argv, capture_output=True, env={"PATH": os.environ["PATH"], "LC_ALL": "C"})
    assert _model(argv) == (r.returncode, r.stdout, r.stderr)
    from nuwa.script.context import Defer
    with pytest.raises(Defer):
        _model(["getopt", "ab:", "-ba"])


@pytest.mark.parametrize("args", [["1"], ["3"], ["6", "-1", "0"], ["2", "5"], ["0"], ["5", "1"], ["-2", "2"]])
def test_seq_like_coreutils(args):
    r = subprocess.run(["seq", *args], capture_output=True)
    assert _model(["seq", *args]) == (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("text", [b"/etc/ssh/sshd_config\n", b"/etc/a b+c[1].conf\n", b"x\ny\xc3\xa9\n", b"no-newline"])
def test_perl_quotemeta_like_perl(text):
    prog = ["perl", "-nle", 'print "\\Q$_\\E\\n"']
    r = subprocess.run(prog, input=text, capture_output=True)
    assert _model(prog, text) == (r.returncode, r.stdout, r.stderr)


def test_other_perl_is_deferred():
    from nuwa.script.context import Defer
    with pytest.raises(Defer):
        _model(["perl", "-e", "print 1"])


# ---------------------------------------------------------------------------------------
# the ucf chain
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory):
    """A bookworm minbase copy with ucf (and sensible-utils) installed by real dpkg."""
    work = tmp_path_factory.mktemp("ucf")
    debs = work / "debs"
    debs.mkdir()
    r = subprocess.run(["apt-get", "download", "ucf", "sensible-utils"], cwd=debs, capture_output=True, text=True)
    found = glob.glob(str(debs / "*.deb"))
    if r.returncode != 0 or len(found) != 2:
        pytest.skip(f"apt-get download ucf sensible-utils failed: {r.stderr.strip()[-200:]}")
    base = copy_tree(bookworm_tree(), str(work / "base"))
    for f in found:
        subprocess.run(["cp", f, os.path.join(base, "tmp")], check=True)
    subprocess.run(["chroot", base, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                    "DEBIAN_FRONTEND=noninteractive", "/bin/sh", "-c", "dpkg -i /tmp/*.deb && rm /tmp/*.deb"],
                   check=True, capture_output=True)
    return base


CONF_V1, CONF_V2, CONF_V3 = b"a=1\nb=2\n", b"a=1\nb=3\n", b"a=2\nb=3\n"

PLAIN = b"""#!/bin/sh
set -e
ucf /usr/share/nuwa-u/conf /etc/nuwa-u.conf
ucfr nuwa-u /etc/nuwa-u.conf
echo done $?
"""

WITH_DEBCONF = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_version 2.0
ucf --three-way --debconf-ok /usr/share/nuwa-u/conf /etc/nuwa-u.conf
ucfr nuwa-u /etc/nuwa-u.conf
db_stop
echo done
"""

PURGE = b"""#!/bin/sh
set -e
for ext in '' '.ucf-new' '.ucf-old' '.ucf-dist'; do rm -f /etc/nuwa-u.conf$ext; done
if which ucf >/dev/null; then ucf --purge /etc/nuwa-u.conf; fi
if which ucfr >/dev/null; then ucfr --purge nuwa-u /etc/nuwa-u.conf; fi
echo purged
"""

CONFLICT = b"""#!/bin/sh
ucfr other-pkg /etc/nuwa-u.conf
echo "status $?"
ucfr --force other-pkg /etc/nuwa-u.conf
echo "status $?"
ucfq /etc/nuwa-u.conf >/dev/null 2>&1 || true
"""

# (name, package conf, local edit appended to /etc/nuwa-u.conf, script, extra env)
STEPS = [
    ("new-file", CONF_V1, None, PLAIN, {}),
    ("unmodified-upgrade", CONF_V2, None, PLAIN, {}),
    ("same-version-again", CONF_V2, None, PLAIN, {}),
    ("local-change-debconf-ok", CONF_V3, b"local=1\n", WITH_DEBCONF, {}),
    ("local-change-own-frontend", CONF_V1, b"local=2\n", PLAIN, {}),
    ("force-conffnew", CONF_V2, b"local=3\n", PLAIN, {"UCF_FORCE_CONFFNEW": "1"}),
    ("force-conffold", CONF_V3, b"local=4\n", WITH_DEBCONF, {"UCF_FORCE_CONFFOLD": "1"}),
    ("conflict", CONF_V3, None, CONFLICT, {}),
    ("purge", CONF_V3, None, PURGE, {}),
]


@pytest.fixture(scope="module")
def chain(ucf_tree, tmp_path_factory):
    a, b = make_pair(ucf_tree, str(tmp_path_factory.mktemp("ucf-pair")))
    since = time.time()
    out = {}
    for name, conf, edit, script, extra in STEPS:
        put((a, b), "/usr/share/nuwa-u/conf", conf, 0o644)
        if edit:
            for r in (a, b):
                with open(os.path.join(r, "etc/nuwa-u.conf"), "ab") as f:
                    f.write(edit)
        put((a, b), "/tmp/step", script)
        env = environment("postinst", "nuwa-u")
        env.update(extra)
        real = run_real(a, ["/tmp/step"], env)
        r = run_nuwa(b, ["/tmp/step"], env)
        state = {}
        for root, tag in ((a, "real"), (b, "nuwa")):
            files = {}
            for rel in ("var/lib/ucf", "etc"):
                for dp, _, fs_ in os.walk(os.path.join(root, rel)):
                    for n in fs_:
                        if rel == "etc" and not n.startswith("nuwa-u"):
                            continue
                        p = os.path.join(dp, n)
                        files[os.path.relpath(p, root)] = open(p, "rb").read()
            state[tag] = (files, debconf_records(root))
        out[name] = (real, r, state)
        if os.environ.get("NUWA_SHOW_UCF"):
            print(name, real, sorted(state["real"][0]))
    yield a, b, since, out


@pytest.mark.parametrize("name", [s[0] for s in STEPS])
def test_ucf_step(chain, name):
    real, r, state = chain[3][name]
    assert not r.deferred_whole, r.reason
    assert (r.status, r.stdout, r.stderr) == real
    assert state["nuwa"] == state["real"]
    deferred = [e.argv[0] for e in r.record.entries if e.classification == "deferred"]
    assert deferred == []  # ucfq too (the conflict step), since it has a model


def test_ucf_chain_trees_match(chain):
    a, b, since, _ = chain
    assert diff_trees(a, b, since) == []
