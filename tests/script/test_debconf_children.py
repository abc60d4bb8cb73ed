"""Programs a debconf-using maintainer script starts: real debconf in a chroot vs Nuwa.

Under debconf's frontend the confmodule keeps the protocol pipe to the frontend on fd 3
(``exec 3>&1``) and the replies on stdin; a child script (``ucf`` from grub-pc's postinst,
run through ``env``) inherits both and talks to the same frontend. And the frontend runs the
maintainer script again by its own ``#!`` line: a ``#!/bin/bash`` postinst (mariadb-server's)
may ``set -o pipefail`` after sourcing the confmodule. Each case runs in a chroot of a bookworm
tree and in Nuwa: output, status, the debconf databases and the whole tree must agree.
"""

from __future__ import annotations

import time

import pytest

from debconf_oracle import debconf_records, diff_trees, environment, make_pair, put, run_nuwa, run_real
from debian_tree import bookworm_tree

INFO = "/var/lib/dpkg/info/nuwa-kid"

TEMPLATES = b"""Template: nuwa-kid/name
Type: string
Default: nobody
Description: Name?
"""

# the child: what ucf does with debconf (sources the confmodule, which finds the frontend
# already running, then db_get/db_set over fd 3 and stdin), plus a file and some output
CHILD = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_get nuwa-kid/name
echo "child $1 got $RET"
echo "child $1 on stderr" >&2
printf '%s\\n' "$RET" > /etc/nuwa-kid.$1
db_set nuwa-kid/name "$1"
"""

POSTINST_SH = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
/usr/local/sbin/nuwa-kid direct
env NUWA_X=1 /usr/local/sbin/nuwa-kid viaenv
env /usr/local/sbin/nuwa-kid plainenv
env -u NUWA_Y /usr/bin/env /usr/local/sbin/nuwa-kid nested
db_get nuwa-kid/name
echo "postinst sees $RET"
"""

POSTINST_BASH = b"""#!/bin/bash
set -e
. /usr/share/debconf/confmodule
set -o pipefail
if false | true; then echo "pipefail off"; else echo "pipefail on: $?"; fi
[[ $1 == configure ]] && echo "bash syntax: $1"
set +o pipefail
false | true && echo "pipefail off again"
db_get nuwa-kid/name
echo "bash postinst sees $RET"
"""

# the child reads its replies from /dev/null: the frontend's answer stays in the pipe and the
# postinst's own db_get reads it instead, leaving one reply unread at exit, which real
# debconf may or may not die writing (SIGPIPE: status 128): deferred, never guessed
POSTINST_UNREAD = b"""#!/bin/sh
set -e
. /usr/share/debconf/confmodule
env /usr/local/sbin/nuwa-kid nostdin </dev/null || echo "no replies: $?"
db_get nuwa-kid/name
echo "postinst sees $RET"
"""

# a last command without newline is answered after the script exited: real debconf gives
# 128 (SIGPIPE) or the script's status depending on timing (both seen): deferred too
POSTINST_LATE = b"""#!/bin/sh
. /usr/share/debconf/confmodule
db_get nuwa-kid/name
echo "late: $RET"
printf 'GET nuwa-kid/name' >&3
exit 0
"""

CASES = {
    "sh-children": (POSTINST_SH, ["configure", ""]),
    "bash-pipefail": (POSTINST_BASH, ["configure", "1.0"]),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    a, b = make_pair(bookworm_tree(), str(tmp_path_factory.mktemp("debconf-children")))
    put((a, b), INFO + ".templates", TEMPLATES, 0o644)
    put((a, b), "/usr/local/sbin/nuwa-kid", CHILD)
    return a, b, time.time()


@pytest.mark.judge
@pytest.mark.parametrize("case", list(CASES))
def test_child_and_interpreter_under_frontend(pair, case):
    a, b, since = pair
    script, args = CASES[case]
    put((a, b), INFO + ".postinst", script)
    env = environment("postinst", "nuwa-kid")
    argv = [INFO + ".postinst", *args]
    real = run_real(a, argv, env)
    r = run_nuwa(b, argv, env)
    assert not r.deferred_whole, r.reason
    assert (r.status, r.stdout, r.stderr) == real
    assert real[0] == 0, real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, since) == []
    assert not r.deferred_commands


@pytest.mark.parametrize("script", [POSTINST_UNREAD, POSTINST_LATE], ids=["unread", "late-command"])
def test_unread_reply_is_deferred(pair, script):
    a, b, since = pair
    put((a, b), INFO + ".postinst", script)
    env = environment("postinst", "nuwa-kid")
    r = run_nuwa(b, [INFO + ".postinst", "configure", "1.2"], env)
    assert r.deferred_whole and "debconf reply unread" in r.reason, r.reason
