"""``systemctl list-unit-files`` against the real systemctl 252 in a chroot of the bookworm
service tree (systemd-sysv, cron, openssh-server, rsyslog), stdout a pipe as in scripts.

Two roots, hard-linked copies of the cached tree: ``plain`` as mmdebstrap left it, and
``synth`` with svcharness's synthetic units (enabled, masked, aliased, linked, template and
instance units, drop-ins, presets) plus a few more made here: a dangling link, a masking empty
file, a directory named like a unit, a hidden unit, a template of a type that cannot be
templated, unit file warnings, a bad preset line, a mask in /usr/local. Nothing writes: both
programs read the same root, and stdout, stderr and the exit status must be identical.
"""

from __future__ import annotations

import os
import shlex

import pytest

from debian_tree import bookworm_tree, link_tree
from helpers.treecopy import put_anew
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.interp import run_script
from svcharness import ENV, MODELS, SERVICES, SYNTHETIC, outcome, run_chroot

pytestmark = pytest.mark.judge

#: more cases than svcharness.SYNTHETIC has; value: text, or ("link", target), or None (a directory)
EXTRA = {
    "usr/lib/systemd/system/zz.path": "[Path]\n",
    "usr/lib/systemd/system/m@.mount": "[Mount]\n",
    "usr/lib/systemd/system/.hidden.service": "[Service]\n",
    "usr/lib/systemd/system/warn.service": "[Service]\n[Bogus]\nx=1\n[Install]\nWantedBy=multi-user.target\nNope=1\n",
    "etc/systemd/system/warnalias.service": ("link", "/lib/systemd/system/warn.service"),
    "etc/systemd/system/dangling.service": ("link", "/nonexistent/dangling.service"),
    "etc/systemd/system/ti@five.service": ("link", "/lib/systemd/system/ti@.service"),
    "etc/systemd/system/dir.service": None,
    "etc/systemd/system/emptymask.socket": "",
    "usr/lib/systemd/system/Caps.service": "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    "usr/lib/systemd/system/back\\x2dslash.service": "[Service]\n",
    "usr/lib/systemd/system-preset/80-bad.preset": "frobnicate foo\ndisable\nenable x@.service a b\n",
    "usr/local/lib/systemd/system/cron.service": ("link", "/dev/null"),
}

#: argument sets run on both roots
ARGS = [
    "", "'*.s*'", "--no-legend", "-q", "--no-legend 'ssh*'", "-q 'ssh*'", "'cron*' 'ssh*'", "nomatch",
    "-q nomatch", "--no-legend nomatch", "--state=enabled,masked", "--state=enabled --state=static",
    "--state=a,,b 'cron*'", "--state=ENABLED", "-t masked", "-t service,timer --state=enabled", "--type=target",
    "-t mount,loaded", "--all 'cron*'", "--plain --full --no-pager 'cron*'", "-a -l", "--legend=no 'cron*'",
    "--legend=yes -q 'cron*'", "-q --legend=1 'cron*'", "--root=/ 'cron*'", "--global", "--system 'e2*'",
    "'?.path'", "--no-legend '?.path'", "'*[a-c]*.service'", "'[!a-z]*'", "'[^a-z]*'", "'*\\*'",
    "'*@*'", "--runtime 'ssh*'",
]
#: usage errors (parse_argv) on both roots
BAD = ["-t bogus", "-t Service", "--type=", "--state=", "--legend=bad", "-t service,bogus"]


def _synth(root: str) -> None:
    for rel, v in {**SYNTHETIC, **EXTRA}.items():
        if v is None:
            put_anew(root, rel)
        elif isinstance(v, tuple):
            put_anew(root, rel, link=v[1])
        else:
            put_anew(root, rel, v.encode())


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    base = bookworm_tree(extra=SERVICES)
    where = tmp_path_factory.mktemp("lsunits")
    plain = link_tree(base, str(where / "plain"))
    synth = link_tree(base, str(where / "synth"))
    _synth(synth)
    return {"plain": plain, "synth": synth}


def both(root: str, args: str, env: dict | None = None):
    argv = ["systemctl", "list-unit-files", *shlex.split(args)]
    return run_chroot(root, argv, env or ENV), outcome(root, argv, env or ENV)


@pytest.mark.parametrize("which", ["plain", "synth"])
def test_listings(roots, which):
    listed = 0
    for args in ARGS + BAD:
        real, model = both(roots[which], args)
        assert model == real, args
        listed += real[1].count("\n")
    assert listed > 400  # the cases list real tables, not only errors


def test_states_and_presets_seen(roots):
    # the synthetic root shows every state that can arise offline, and both preset answers
    status, out, err = both(roots["synth"], "--no-legend")[0]
    states = {line.split()[1] for line in out.splitlines()}
    assert {"enabled", "disabled", "static", "masked", "alias", "linked", "indirect", "bad"} <= states
    assert {line.split()[2] for line in out.splitlines()} == {"enabled", "disabled", "-"}
    assert "Unknown section 'Bogus'" in err and "80-bad.preset:1:" in err


def test_c_locale(roots):
    env = dict(ENV, LANG="C", LC_ALL="C")
    for args in ("'ssh*'", "--state=alias"):
        real, model = both(roots["synth"], args, env)
        assert model == real, args


def test_bare_enable_preset_defers(roots, tmp_path):
    # 252 keeps a NULL pattern for a bare "enable" line and fnmatch() dies on it (SIGSEGV) once
    # a query reaches the rule; the model defers there, and answers when an earlier rule decides
    root = roots["synth"]
    put_anew(root, "etc/systemd/system-preset/20-bare.preset", b"enable\n")
    put_anew(root, "etc/systemd/system-preset/05-first.preset", b"disable Caps.service\n")
    try:
        real, model = both(root, "'Caps*'")
        assert model == real
        real, model = both(root, "'a.*'")
        assert real[0] == -11
        assert model[0] == "deferred" and "bare 'enable'" in model[1]
        # a static unit has no preset column: no query, no crash
        real, model = both(root, "apt-daily.service")
        assert model == real and real[0] == 0
    finally:
        os.unlink(os.path.join(root, "etc/systemd/system-preset/20-bare.preset"))
        os.unlink(os.path.join(root, "etc/systemd/system-preset/05-first.preset"))


def test_deferred_forms(roots):
    root = roots["plain"]
    for args, env in (("-t help", None), ("--state=help", None), ("--user", None),
                      ("'cron*'", dict(ENV, SYSTEMD_COLORS="1")), ("--state='a\\,b'", None)):
        model = both(root, args, env)[1]
        assert model[0] == "deferred", args


#: erlang-base 25.2's prerm (the same lines are in its postinst): find the packages whose
#: services are static or enabled through the listing, dpkg -S with globs and dpkg -s
ERLANG = r"""
        if command -v systemctl >/dev/null && systemctl >/dev/null 2>&1 ; then
            # native service files:
            services1=$(systemctl list-unit-files '*.s*' | grep -P '(static|enabled)' | cut -f 1 -d ' ' | sed -e's:^:/lib/systemd/*/:')
            # generated service files:
            services2=$(systemctl list-unit-files '*.s*' | grep -P '(generated)' | cut -f 1 -d ' ' | sed -e's:^\(.*\)\..*:/etc/init.d/\1:')
            
            # find the packages they belong
            inits=$(dpkg -S $services1 $services2 2>/dev/null | sed -e's:/.*/::')
        else
            # find all init scripts and packages they belong
            inits=$(dpkg -S '/etc/init.d/*' 2>/dev/null | sed -e's:/etc/init.d/::')
        fi
        # filter the list of the packages
        packs=$(echo $inits | sed -e's/:[[:space:]]\+[^[:space:]]*//g' | sed -e's/ /\n/g' | sort -u)
        # find packages, which depend on erlang
        packs=$(dpkg -s $packs 2>/dev/null | \
                egrep '^Package:|^Status:|^Depends' | \
                awk '{if ($1 ~ /^Package:/) {package=$2;inst=0} else if ($0 ~ /^Status:.* installed$/) {inst=1} else if ((inst==1) && ($0 ~ /^Depends:.* erlang/)) {print package}}')
echo "inits=$inits"; echo "packs=$packs"
"""


def test_erlang_pipeline(roots):
    # erlang-base's maintainer scripts read the listing through pipes (grep -P, cut, sed)
    for name in ("plain", "synth"):
        root = roots[name]
        for cmd in (ERLANG, "systemctl list-unit-files '*.s*' | grep -E '(static|enabled)' | cut -f 1 -d ' ' "
                            "| sed -e's:^:/lib/systemd/*/:'; systemctl list-unit-files nomatch; echo \"$?\""):
            real = run_chroot(root, ["/bin/sh", "-c", cmd])
            res = run_script(HostDirFS(root), cmd, env=dict(ENV), models=MODELS, is_path=False)
            assert not res.deferred_commands, res.deferred_commands
            assert (res.status, res.stdout.decode(), res.stderr.decode()) == real, cmd
            assert real[1].count("\n") > 30
