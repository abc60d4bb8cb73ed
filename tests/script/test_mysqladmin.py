"""``mysqladmin`` on a dormant image against MariaDB 10.11's real client in a chroot of a
bookworm tree with mariadb-server, no server running (what a dormant image's next boot has
before the service starts): the same message, bell, socket and status, with the option files
the client reads; the forms that need the network, a terminal or a retry loop defer."""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import bookworm_tree
from helpers import runs
from nuwa.script.context import Defer

pytestmark = [pytest.mark.judge, pytest.mark.root]

EXTRA = {"tmp/a.cnf": '[client]\nsocket = "/q/s.sock"  # c\n[mysqladmin]\nno-beep\n[mysqld]\nsocket=/srv.sock\n',
         "tmp/b.cnf": "[client]\nsocket=/r.sock\n!include /tmp/a.cnf\n",
         "tmp/c.cnf": "[client]\nhost=dbhost\n",
         "tmp/d.cnf": "# nothing for the client\n[mysqld]\nsocket = /x.sock\n",
         "tmp/inc/z.cnf": "[client-mariadb]\nsocket=/z.sock\n", "tmp/inc/a.cnf": "[client]\nsocket=/a.sock\n",
         "tmp/inc/n.conf": "[client]\nsocket=/ignored.sock\n", "tmp/e.cnf": "!includedir /tmp/inc\n"}
SIMULATED = [["mysqladmin", "ping"], ["mysqladmin", "--defaults-file=/etc/mysql/debian.cnf", "ping"],
             ["mysqladmin", "status"], ["mysqladmin", "version"], ["mysqladmin", "-u", "root", "ping"],
             ["mysqladmin", "--defaults-file=/nonexistent", "ping"], ["mysqladmin", "shutdown"],
             ["mysqladmin", "-s", "ping"], ["mysqladmin", "--silent", "ping"], ["mysqladmin", "-b", "ping"],
             ["mysqladmin", "-S", "/tmp/x.sock", "ping"], ["mysqladmin", "--socket=/y", "ping"],
             ["mysqladmin", "ping", "extended-status"], ["mysqladmin", "--no-defaults", "ping"],
             ["mysqladmin", "-uroot", "-pfoo", "ping"], ["mariadb-admin", "ping"], ["/usr/bin/mysqladmin", "ping"],
             ["mysqladmin", "--defaults-file=/tmp/b.cnf", "ping"], ["mysqladmin", "--defaults-extra-file=/tmp/b.cnf", "ping"],
             ["mysqladmin", "--defaults-file=/tmp/b.cnf", "-S", "/cmd.sock", "ping"],
             ["mysqladmin", "--defaults-file=/tmp/d.cnf", "ping"], ["mysqladmin", "--defaults-file=/tmp/e.cnf", "ping"]]
DEFERRED = [["mysqladmin", "-h", "127.0.0.1", "ping"], ["mysqladmin", "--protocol=tcp", "ping"],
            ["mysqladmin", "--defaults-file=/tmp/c.cnf", "ping"], ["mysqladmin", "-w", "ping"], ["mysqladmin", "-p", "ping"],
            ["mysqladmin"], ["mysqladmin", "--help"]]


@pytest.fixture(scope="module")
def tree():
    return bookworm_tree(("mariadb-server",))


def _extra(root: str) -> None:
    for rel, text in EXTRA.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


@pytest.mark.parametrize("argv", SIMULATED, ids=" ".join)
def test_mysqladmin_finds_no_server_like_mariadb(tmp_path, tree, argv):
    script = ('mount -t tmpfs none "$1/tmp" && mount -t tmpfs none "$1/run" && mkdir -p "$1/tmp/inc" && '
              + " && ".join(f"printf '%s' '{t}' > \"$1/{r}\"" for r, t in EXTRA.items())
              + ' && root="$1" && shift && exec chroot "$root" "$@"')
    p = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", tree, *argv], capture_output=True, timeout=60)
    assert p.returncode == 1 and (p.stderr or "-s" in argv or "--silent" in argv)  # the judge ran
    model_root = str(tmp_path / "img")
    subprocess.run(["cp", "-a", f"{tree}/etc", f"{model_root}/etc"] if os.makedirs(model_root) is None else [],
                   check=True)
    _extra(model_root)
    got = runs.run_model(model_root, argv, env={"PATH": "/usr/bin:/bin", "HOME": "/root"}, name="mysqladmin")
    assert got == (p.returncode, p.stdout, p.stderr)


@pytest.mark.parametrize("argv", DEFERRED, ids=" ".join)
def test_mysqladmin_network_terminal_and_waiting_defer(tmp_path, tree, argv):
    model_root = str(tmp_path / "img")
    os.makedirs(model_root)
    subprocess.run(["cp", "-a", f"{tree}/etc", f"{model_root}/etc"], check=True)
    _extra(model_root)
    with pytest.raises(Defer):
        runs.run_model(model_root, argv, env={"PATH": "/usr/bin:/bin", "HOME": "/root"}, name="mysqladmin")
