"""Maintainer scripts that use debconf: real dash + debconf in a chroot vs Nuwa.

A fake package's ``templates``, ``config``, ``postinst`` and ``postrm`` sit in
``/var/lib/dpkg/info`` of two copies of a bookworm tree; the scripts run in order (install,
upgrade, a failing configure, remove, purge) in a chroot and in Nuwa's interpreter. Output,
status, the whole tree and the debconf databases must agree after every step. The real
``tzdata`` postinst (debconf config script included) runs the same way.
"""

from __future__ import annotations

import time

import pytest

from debconf_oracle import debconf_records, diff_trees, environment, make_pair, put, run_nuwa, run_real
from debian_tree import bookworm_tree

INFO = "/var/lib/dpkg/info/nuwa-fake"

TEMPLATES = b"""Template: nuwa-fake/name
Type: string
Default: nobody
Description: Name?

Template: nuwa-fake/enable
Type: boolean
Default: false
Description: Enable it?

Template: nuwa-fake/mode
Type: select
Choices: fast, safe
Default: safe
Description: Mode?

Template: nuwa-fake/secret
Type: password
Description: Secret?
"""

CONFIG = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_version 2.0
echo "config: $0 $*" >&2
db_input high nuwa-fake/name || true
db_input low nuwa-fake/enable || true
db_input critical nuwa-fake/mode || true
db_input high nuwa-fake/secret || true
db_go || true
db_get nuwa-fake/name
if [ "$1" = configure ] && [ -n "$2" ]; then
    db_set nuwa-fake/enable true
fi
"""

POSTINST = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
case "$1" in
configure)
    db_get nuwa-fake/name; name="$RET"
    db_get nuwa-fake/enable; enable="$RET"
    db_get nuwa-fake/mode; mode="$RET"
    db_fget nuwa-fake/name seen; seen="$RET"
    mkdir -p /etc/nuwa-fake
    printf 'name=%s\\nenable=%s\\nmode=%s\\nseen=%s\\n' "$name" "$enable" "$mode" "$seen" > /etc/nuwa-fake/conf
    echo "written for $name"
    db_register nuwa-fake/name nuwa-fake/alias
    db_subst nuwa-fake/name who "$name"
    if [ "$NUWA_FAIL" = 1 ]; then
        db_set nuwa-fake/name failed
        false
    fi
    db_stop
    echo "after stop: stdout is stderr"
    ;;
esac
exit 0
"""

POSTRM = b"""#!/bin/sh
set -e
if [ "$1" = purge ] && [ -e /usr/share/debconf/confmodule ]; then
    . /usr/share/debconf/confmodule
    db_purge
    rm -rf /etc/nuwa-fake
fi
if [ "$1" = remove ]; then
    . /usr/share/debconf/confmodule
    db_get nuwa-fake/mode
    echo "remove sees mode=$RET"
fi
exit 0
"""

STEPS = [
    ("install", "postinst", ["configure", ""], {}),
    ("upgrade", "postinst", ["configure", "1.0"], {}),
    ("failing", "postinst", ["configure", "1.1"], {"NUWA_FAIL": "1"}),
    ("remove", "postrm", ["remove"], {}),
    ("purge", "postrm", ["purge"], {}),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    a, b = make_pair(bookworm_tree(), str(tmp_path_factory.mktemp("debconf-frontend")))
    put((a, b), INFO + ".templates", TEMPLATES, 0o644)
    put((a, b), INFO + ".config", CONFIG)
    put((a, b), INFO + ".postinst", POSTINST)
    put((a, b), INFO + ".postrm", POSTRM)
    return a, b, time.time()


@pytest.fixture(scope="module")
def steps(pair):
    a, b, _ = pair
    out = {}
    for name, script, args, extra in STEPS:
        env = environment(script, "nuwa-fake")
        env.update(extra)
        argv = [f"{INFO}.{script}", *args]
        real = run_real(a, argv, env)
        r = run_nuwa(b, argv, env)
        assert not r.deferred_whole, r.reason
        out[name] = (real, (r.status, r.stdout, r.stderr), debconf_records(a), debconf_records(b), r)
    return out


@pytest.mark.parametrize("name", [s[0] for s in STEPS])
def test_step_matches(steps, name):
    real, nuwa, real_db, nuwa_db, r = steps[name]
    assert nuwa == real
    assert nuwa_db == real_db
    assert not r.deferred_commands


def test_tree_matches(steps, pair):
    a, b, since = pair
    assert diff_trees(a, b, since) == []


def test_tzdata_config_under_frontend(steps, pair):
    """The real tzdata ``config`` script run by debconf's frontend directly (as
    ``dpkg-reconfigure``-like callers do): no package name, so the frontend finds
    ``tzdata.templates`` beside the script and loads it for owner ``unknown``."""
    a, b, since = pair
    wrapper = b"#!/bin/sh\nexec /usr/share/debconf/frontend /var/lib/dpkg/info/tzdata.config configure 2024a-0+deb12u1\n"
    put((a, b), "/tmp/reconf", wrapper)
    env = environment("postinst", "tzdata")
    real = run_real(a, ["/tmp/reconf"], env)
    r = run_nuwa(b, ["/tmp/reconf"], env)
    assert not r.deferred_whole, r.reason
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
