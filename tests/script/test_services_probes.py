"""Probes of the running system answered as a dormant system answers (ss, netstat, ps, lsof,
fuser), judged against the real programs run where nothing listens and nothing runs: an empty
network and pid namespace (``unshare --net --pid --fork --mount-proc``).

Inside that namespace the only processes are the probe itself (pid 1), so ``ps`` forms that
list every process are judged on their header line; the forms that select (by pid, name, user)
match nothing there and are judged whole. The model's pid columns are sized by the image's
``kernel.pid_max``; the model's tree is given the namespace's value.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from cmdharness import build_tree, run_model
from judges import tool
from nuwa.script.context import Defer

UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


def _real(root: str, argv: list[str]) -> tuple[int, bytes, bytes]:
    if os.geteuid() != 0:
        pytest.skip("needs root for an empty namespace")
    tool("unshare")
    tool(argv[0])  # the real program is the judge: missing, it skips (fails under CI)
    p = subprocess.run(UNSHARE + argv, cwd=root, capture_output=True, timeout=30,
                       env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if b"unshare failed" in p.stderr:
        pytest.skip(p.stderr.decode().strip())
    return p.returncode, p.stdout, p.stderr


def _trees(tmp_path) -> tuple[str, str]:
    real, model = str(tmp_path / "real"), str(tmp_path / "model")
    build_tree(real)
    build_tree(model)
    pid_max = subprocess.run(UNSHARE + ["cat", "/proc/sys/kernel/pid_max"], capture_output=True, text=True).stdout
    os.makedirs(os.path.join(model, "usr/lib/sysctl.d"))
    with open(os.path.join(model, "usr/lib/sysctl.d/50-pid-max.conf"), "w") as f:
        f.write(f"# as systemd ships it\nkernel.pid_max = {pid_max.strip() or 32768}\n")
    with open(os.path.join(model, "usr/bin/true"), "wb") as f:  # the host's, which the real one stats
        f.write(b"\x7fELF")
    return real, model


WHOLE = [
    # ss: nginx's probe and the forms around it
    "ss -nlt 'sport = 80'", "ss -nlt", "ss -lnt", "ss -tln", "ss -ltnp", "ss -lntu", "ss -tulpn", "ss -xl",
    "ss -lnu", "ss -lnw", "ss -lnx", "ss -lnt4", "ss -lnt6", "ss -lnte", "ss -ln -A tcp", "ss -ln -A tcp,udp",
    "ss -ltno", "ss -ltnm", "ss -ltni", "ss -H -nlt", "ss -nltH 'sport = 80'", "ss -nlt sport = :80",
    "ss -ltn -4 sport = :22 or sport = :80", "ss --tcp --listening --numeric", "ss -tan", "ss -tn",
    "ss -lnt '( sport = :443 or sport = :80 )'", "ss -f inet -lnt", "ss -lnt -f inet6", "ss -f unix -l",
    "ss -lnt dport = 80 and sport = 22", "ss -lnt not sport = 80", "ss -nlt 'sport = :53'",
    # netstat
    "netstat -tulpen", "netstat -lnt", "netstat -tlnp", "netstat -an", "netstat -ln", "netstat -tulpn",
    "netstat -lntp", "netstat -ltn --numeric-ports", "netstat -a", "netstat -lx", "netstat -lxp", "netstat -plunt",
    "netstat -nat", "netstat -lnu", "netstat", "netstat -e", "netstat -la", "netstat -A inet -ln", "netstat -4ln",
    "netstat --tcp --listening --numeric --programs", "netstat -A unix", "netstat -ltne",
    # lsof (mariadb's probe), fuser
    "lsof -nt f1", "lsof f1", "lsof -t -i :80", "lsof -i :80", "lsof -i tcp:22", "lsof -nt nonexist",
    "lsof f1 nonexist", "lsof +D d", "lsof -nP -i", "lsof -w f1 d",
    "fuser f1", "fuser -s f1", "fuser -k f1", "fuser -v f1", "fuser 80/tcp", "fuser 80/tcp 53/udp",
    "fuser -n tcp 80", "fuser nonexist", "fuser -s nonexist f1", "fuser -k -TERM f1", "fuser -ku f1",
    "fuser -KILL -k f1",
    # ps selections that match nothing (rabbitmq's `ps --no-headers -o comm 1` is pid 1: see below)
    "ps -p 99999", "ps -C nginx", "ps -fC nginx", "ps -o pid= -C nginx", "ps -o pid,comm -p 99999",
    "ps -f -p 99999", "ps -o pid,ppid,pgid,sid,lwp,comm,args -p 99999", "ps -o comm,pid -p 99999",
    "ps -o user,group,uid,gid,etime,stat,tty,time,rss,vsz,%cpu,%mem,lstart,stime,ni,wchan,c -p 99999",
    "ps --no-headers -p 99999", "ps h -p 99999", "ps -o pid= -o comm= -p 99999", "ps --pid 99999",
    "ps -o pid --ppid 99999", "ps u -p 99999", "ps -u daemon", "ps -U daemon -o pid,cmd", "ps -C sshd,nginx -o pid=",
    "ps -o pid,comm --ppid 99999",
    # start-stop-daemon finds nothing to signal or report (needs /proc: judged here, not in the chroot)
    "start-stop-daemon --stop --exec /usr/bin/true", "start-stop-daemon --stop --user daemon",
    "start-stop-daemon --stop --oknodo --name nginx", "start-stop-daemon --stop --quiet --exec /nonexist",
    "start-stop-daemon --status --exec /nonexist", "start-stop-daemon --status --exec /usr/bin/true",
    "start-stop-daemon --status --name nginx", "start-stop-daemon -K -q -o -x /usr/bin/true",
    "start-stop-daemon --stop --pidfile /run/nonexist.pid --exec=/usr/bin/true --retry 5",
    "ps --format pid,comm -p 99999", "ps -o pid -o comm -p 99999",
]


@pytest.mark.judge
@pytest.mark.parametrize("cmd", WHOLE)
def test_probe_matches_the_real_program_where_nothing_runs(tmp_path, cmd):
    real, model = _trees(tmp_path)
    argv = shlex.split(cmd)
    want = _real(real, argv)
    try:
        got = run_model(model, argv, b"", 0o022)
    except Defer as d:
        raise AssertionError(f"model deferred: {d.reason}") from None
    assert (got[0], got[1].decode(), got[2].decode()) == (want[0], want[1].decode(), want[2].decode()), cmd


@pytest.mark.judge
@pytest.mark.parametrize("cmd", ["ps -e", "ps -ef", "ps -A", "ps aux", "ps ax", "ps x", "ps -aux", "ps axu",
                                 "ps -e -o pid,comm", "ps -eo pid,args", "ps -ef --sort pid", "ps -eH", "ps -ew",
                                 "ps axww"])
def test_ps_listing_everything_prints_the_header_of_an_empty_list(tmp_path, cmd):
    """The namespace still holds the probe itself; the model lists nothing under the same header
    and exits 1, the status procps gives an empty list (``ps -p 99999``)."""
    real, model = _trees(tmp_path)
    argv = shlex.split(cmd)
    want = _real(real, argv)
    got = run_model(model, argv, b"", 0o022)
    assert got[1].decode().splitlines() == want[1].decode().splitlines()[:1]
    assert (got[0], got[2]) == (1, b"")


def test_ps_of_pid_1_finds_no_init(tmp_path):
    """rabbitmq-server's postinst asks ``ps --no-headers -o comm 1`` whether systemd is pid 1: on a
    dormant image no pid 1 exists (a selection matching nothing: no output, exit 1)."""
    _, model = _trees(tmp_path)
    assert run_model(model, ["ps", "--no-headers", "-o", "comm", "1"], b"", 0o022) == (1, b"", b"")


def test_pid_columns_follow_the_image_pid_max(tmp_path):
    model = str(tmp_path / "m")
    build_tree(model)
    assert run_model(model, ["ps", "-p", "1"], b"", 0o022)[1] == b"  PID TTY          TIME CMD\n"
    os.makedirs(os.path.join(model, "etc/sysctl.d"))
    with open(os.path.join(model, "etc/sysctl.d/pid.conf"), "w") as f:
        f.write("kernel.pid_max = 4194304\n")
    assert run_model(model, ["ps", "-p", "1"], b"", 0o022)[1] == b"    PID TTY          TIME CMD\n"


@pytest.mark.parametrize("cmd", ["ss", "ss -s", "ss -a", "ss -ln4", "ss -f inet -l", "ss -lnt src 10.0.0.1",
                                 "ss -tn state established",
                                 "ss -lntZ", "ss -lnt sport = :http", "netstat -r", "netstat -i", "netstat -s",
                                 "lsof", "lsof -p 1", "lsof -i @10.0.0.1", "fuser -m /", "fuser", "fuser -l",
                                 "ps -l -p 1", "start-stop-daemon --stop --exec rel/prog", "ps -o pid=PROCESS -p 1",
                                 "ps -o cgroup -p 1", "ps -u nosuchuser"])
def test_forms_not_judged_are_deferred(tmp_path, cmd):
    model = str(tmp_path / "m")
    build_tree(model)
    with pytest.raises(Defer):
        run_model(model, shlex.split(cmd), b"", 0o022)


NGINX_PROBE = """if [ -z "$(ss -nlt 'sport = 80' | grep -v ^State)" ]; then
  echo start
else
  echo "Not attempting to start NGINX, port 80 is already in use."
fi
"""


@pytest.mark.judge
def test_nginx_postinst_probe_runs_offline_as_dash_runs_it_where_nothing_listens(tmp_path):
    """nginx's postinst (Debian 12) asks ss whether port 80 is taken before starting nginx: the
    same lines run by dash in an empty network namespace and by Nuwa's interpreter."""
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.script.commands import default_models
    from nuwa.script.interp import run_script

    real, model = _trees(tmp_path)
    want = _real(real, ["dash", "-c", NGINX_PROBE])
    for prog in ("ss", "grep"):
        with open(os.path.join(model, "usr/bin", prog), "wb") as f:
            f.write(b"\x7fELF")
        os.chmod(os.path.join(model, "usr/bin", prog), 0o755)
    got = run_script(HostDirFS(model, writable=True), NGINX_PROBE, ["configure", "1.22.1-9"],
                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, models=default_models())
    assert not got.deferred_whole and not got.deferred_commands, (got.reason, got.deferred_commands)
    assert (got.status, got.stdout, got.stderr) == want == (0, b"start\n", b"")
