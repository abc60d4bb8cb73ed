"""The first-boot job: files written into the image, and the runner run by real dash.

Layout tests write the job into a MemoryFS (and an Overlay) and check every file against the
design (docs/firstboot.md). The runner, the entries' ``run`` files and the init script must
pass ``dash -n``; the unit must pass ``systemd-analyze verify`` (skipped visibly without it).
The behaviour test writes a job through an Overlay into a small chroot made from a real
bookworm tree (its /usr hard-linked from the cached mmdebstrap tree) and runs the runner with
real dash in that chroot: entries run in order with their argv, environment, cwd, umask and
stdin, a failure does not stop the others, and the job disables itself.
"""

from __future__ import annotations

import json
import os
import stat as S
import subprocess

import pytest

from judges import tool
from nuwa.errors import CorruptImageError
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script import firstboot as fb
from nuwa.script.commands import default_models
from nuwa.script.firstboot import FirstBootJob
from nuwa.script.interp import dpkg_environment, run_script
from nuwa.script.record import DeferredCommand

MODELS = default_models()

BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C"}


def image_fs(systemd: bool = True, sysv: bool = True) -> MemoryFS:
    m = MemoryFS()
    for d in ("/var/lib", "/var/log", "/tmp", "/usr/sbin"):
        m.makedirs(d)
    if systemd:
        m.makedirs("/etc/systemd/system")
    if sysv:
        m.makedirs("/etc/init.d")
    return m


def cmd(argv, env=None, cwd="/", umask=0o022, stdin=b"", reason="no model", line=1):
    return DeferredCommand(list(argv), cwd, dict(env or {}), umask, stdin, reason, line)


def links(m):
    out = {}
    for d, _, files in m.walk("/etc"):
        for n in files:
            p = d + "/" + n
            if S.S_ISLNK(m.lstat(p).st_mode):
                out[p] = m.readlink(p)
    return out


def test_enable_through_models_gives_the_same_links():
    """The systemctl/update-rc.d models enable the unit; without them (no model set) the
    fallback makes the same links directly."""
    with_models = image_fs()
    job = FirstBootJob()
    job.add_command(cmd(["x"]), BASE_ENV)
    job.write(with_models, MODELS)
    direct = image_fs()
    job2 = FirstBootJob()
    job2.add_command(cmd(["x"]), BASE_ENV)
    job2.write(direct)
    assert links(with_models) == links(direct) and len(links(direct)) == 5


def test_layout_exactly_as_designed():
    m = image_fs()
    job = FirstBootJob.load(m)
    assert job.entries == []
    e1 = job.add_command(cmd(["update-initramfs", "-u"], {"FOO": "bar", "LANG": None}, "/tmp", 0o027, b"in\n",
                             "no model for update-initramfs", 7),
                         BASE_ENV, "/var/lib/dpkg/info/foo.postinst", "foo")
    e2 = job.add_script(b"#!/bin/sh\nexit 0\n", ["configure", "1.2-3"], dpkg_environment("postinst", "foo", "amd64"),
                        "/var/lib/dpkg/info/foo.postinst", reason="line 3: output used", package="foo",
                        extra_files={"foo.config": b"#!/bin/sh\n"})
    assert job.write(m) == ["systemd", "sysvinit"]
    assert (e1.id, e2.id) == ("000001", "000002")
    assert e1.env == {"PATH": BASE_ENV["PATH"], "HOME": "/root", "FOO": "bar"}  # LANG unset by the diff

    def mode(p):
        return S.S_IMODE(m.lstat(p).st_mode)

    d = fb.JOB_DIR
    assert mode(d) == 0o700 and mode(d + "/entries") == 0o700
    assert m.read_bytes(d + "/job") == b"000001\n000002\n"
    assert m.read_bytes(d + "/run") == fb.RUNNER.encode() and mode(d + "/run") == 0o755
    assert m.read_bytes(fb.UNIT_PATH) == fb.UNIT.encode() and mode(fb.UNIT_PATH) == 0o644
    assert m.readlink(fb.WANTS_LINK) == fb.UNIT_PATH
    assert m.read_bytes(fb.INITD_PATH) == fb.INITD.encode() and mode(fb.INITD_PATH) == 0o755
    for link in fb.RC_LINKS:
        assert m.readlink(link) == "../init.d/nuwa-firstboot"
    doc = json.loads(m.read_bytes(d + "/job.json"))
    assert doc["format"] == 1 and doc["activation"] == ["systemd", "sysvinit"]
    assert [x["id"] for x in doc["entries"]] == ["000001", "000002"]
    assert doc["entries"][0]["umask"] == "0027" and doc["entries"][0]["stdin_size"] == 3
    assert doc["entries"][1]["script_name"] == "foo.postinst" and doc["entries"][1]["extra_files"] == ["foo.config"]
    ed = d + "/entries/000001"
    assert sorted(m.readdir(ed)) == ["label", "package", "run", "stdin", "timeout"]
    assert m.read_bytes(ed + "/timeout") == b"600\n" and m.read_bytes(ed + "/package") == b"foo\n"
    assert m.read_bytes(ed + "/stdin") == b"in\n"
    run1 = m.read_bytes(ed + "/run").decode()
    assert "cd '/tmp' || exit 126\numask 0027\n" in run1
    assert run1.rstrip().endswith(
        "exec /usr/bin/env -i 'DEBCONF_NONINTERACTIVE_SEEN=true' 'DEBIAN_FRONTEND=noninteractive' 'FOO=bar' 'HOME=/root' 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "
        "/bin/sh -c 'exec \"$@\"' nuwa-firstboot 'update-initramfs' '-u' <'/var/lib/nuwa/firstboot/entries/000001/stdin'")
    assert m.read_bytes(ed + "/label") == (
        b"update-initramfs -u (from /var/lib/dpkg/info/foo.postinst line 7): no model for update-initramfs\n")
    sd = d + "/entries/000002"
    assert sorted(m.readdir(sd)) == ["foo.config", "foo.postinst", "label", "package", "run", "timeout"]
    assert m.read_bytes(sd + "/foo.postinst") == b"#!/bin/sh\nexit 0\n" and mode(sd + "/foo.postinst") == 0o755
    assert "'/var/lib/nuwa/firstboot/entries/000002/foo.postinst' 'configure' '1.2-3' </dev/null" in \
        m.read_bytes(sd + "/run").decode()


def test_the_offline_debconf_session_does_not_reach_the_boot():
    """A command deferred inside a postinst that sourced confmodule was recorded with that
    session's DEBCONF_REDIR/DEBIAN_HAS_FRONTEND; at boot there is no such frontend, and with
    them a debconf-using program and its own frontend wait on each other for ever."""
    m = image_fs(systemd=False, sysv=False)
    job = FirstBootJob.load(m)
    job.add_command(cmd(["pam-auth-update", "--package"], {"DEBCONF_REDIR": "1", "DEBIAN_HAS_FRONTEND": "1"}),
                    BASE_ENV, "/var/lib/dpkg/info/libpam-runtime.postinst", "libpam-runtime")
    job.add_script(b"#!/bin/sh\nexit 0\n", ["configure", ""], dict(BASE_ENV, DEBCONF_REDIR="1"),
                   "/var/lib/dpkg/info/foo.postinst", reason="r", package="foo")
    job.write(m)
    for i in ("000001", "000002"):
        run = m.read_bytes(f"{fb.JOB_DIR}/entries/{i}/run").decode()
        assert "DEBCONF_REDIR" not in run and "DEBIAN_HAS_FRONTEND" not in run, run
        assert "'DEBIAN_FRONTEND=noninteractive'" in run


def test_quoting_survives_any_argument():
    m = image_fs(systemd=False, sysv=False)
    job = FirstBootJob()
    odd = ["a=b", "it's", "two words", "$HOME", "`x`", "new\nline", "\udcff"]
    job.add_command(cmd(["/usr/sbin/probe", *odd]), BASE_ENV)
    assert job.write(m) == []  # neither systemd nor /etc/init.d: no activation, job still written
    run = m.read_bytes(fb.JOB_DIR + "/entries/000001/run")
    assert b"'it'\\''s'" in run and b"'\xff'" in run
    assert not m.lexists(fb.UNIT_PATH) and not m.lexists(fb.INITD_PATH)


def test_extending_twice_gives_one_unit_and_entries_in_order():
    m = image_fs()
    j1 = FirstBootJob.load(m)
    j1.add_command(cmd(["first"], stdin=b"abc"), BASE_ENV)
    j1.write(m)
    first = json.loads(m.read_bytes(fb.JOB_DIR + "/job.json"))["entries"][0]
    j2 = FirstBootJob.load(m)
    assert [e.id for e in j2.entries] == ["000001"] and not j2.entries[0].new
    j2.add_command(cmd(["second"]), BASE_ENV)
    j2.add_script(b"#!/bin/sh\n", ["remove"], BASE_ENV, "bar.prerm")
    j2.write(m)
    assert m.read_bytes(fb.JOB_DIR + "/job") == b"000001\n000002\n000003\n"
    assert sorted(m.readdir(fb.JOB_DIR + "/entries")) == ["000001", "000002", "000003"]
    assert m.readdir("/etc/systemd/system/multi-user.target.wants") == [fb.UNIT_NAME]
    assert [n for n in m.readdir("/etc/systemd/system") if "nuwa" in n] == [fb.UNIT_NAME]
    assert m.readdir("/etc/rc2.d") == ["S01nuwa-firstboot"]
    assert json.loads(m.read_bytes(fb.JOB_DIR + "/job.json"))["entries"][0] == first  # kept as it was
    assert first["stdin_size"] == 3
    j3 = FirstBootJob.load(m)
    assert [e.argv for e in j3.entries] == [["first"], ["second"], ["remove"]]
    assert j3.entries[2].kind == "script" and j3.entries[2].script_name == "bar.prerm"


def test_written_through_an_overlay():
    m = image_fs()
    ov = Overlay(m)
    job = FirstBootJob.load(ov)
    job.add_command(cmd(["depmod", "-a"]), BASE_ENV)
    job.write(ov)
    changed = {c.path for c in ov.changes()}
    assert {fb.JOB_DIR + "/job", fb.UNIT_PATH, fb.WANTS_LINK, fb.INITD_PATH} <= changed
    assert not m.lexists(fb.JOB_DIR)
    ov.commit()
    assert m.read_bytes(fb.JOB_DIR + "/job") == b"000001\n"


def test_depend_start_gets_the_script():
    m = image_fs(systemd=False)
    m.write_bytes(fb.DEPEND_START, b"TARGETS = rsyslog ssh\nINTERACTIVE =\nssh: rsyslog\n")
    job = FirstBootJob()
    job.add_command(cmd(["x"]), BASE_ENV)
    assert job.write(m) == ["sysvinit"]
    job.write(m)  # idempotent
    assert m.read_bytes(fb.DEPEND_START) == b"TARGETS = rsyslog ssh nuwa-firstboot\nINTERACTIVE =\nssh: rsyslog\nnuwa-firstboot:\n"


def test_bad_job_description_is_refused():
    from nuwa.errors import CorruptImageError, UnsupportedFeatureError

    m = image_fs()
    m.makedirs(fb.JOB_DIR)
    m.write_bytes(fb.JOB_DIR + "/job.json", b"{not json")
    with pytest.raises(CorruptImageError, match="job.json"):
        FirstBootJob.load(m)
    m.write_bytes(fb.JOB_DIR + "/job.json", b'{"format": 9, "entries": []}')
    with pytest.raises(UnsupportedFeatureError, match="format 9"):
        FirstBootJob.load(m)


def test_scripts_pass_dash_n(tmp_path):
    dash = tool("dash")
    m = image_fs()
    job = FirstBootJob()
    job.add_command(cmd(["a", "it's", "$x"], {"X": "1 2"}, "/tmp", 0o077, b"data"), BASE_ENV)
    job.add_script(b"echo no shebang\n", ["configure", ""], BASE_ENV, "nuwa-sh-script")
    job.write(m)
    files = {"runner": m.read_bytes(fb.JOB_DIR + "/run"), "initd": m.read_bytes(fb.INITD_PATH)}
    for e in job.entries:
        files[e.id] = m.read_bytes(f"{fb.JOB_DIR}/entries/{e.id}/run")
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        r = subprocess.run([dash, "-n", str(p)], capture_output=True, text=True)
        assert r.returncode == 0, (name, r.stderr)


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = tool("systemd-analyze")
    unit = tmp_path / fb.UNIT_NAME
    unit.write_text(fb.UNIT)
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and "nuwa-firstboot" not in r.stderr, r.stderr


# ---- the runner in a chroot of a real bookworm tree -------------------------------------------
PROBE = b"""#!/bin/sh
# records how it was started
n=$1; shift
{
  echo "argc=$#"
  for a in "$@"; do printf 'arg=[%s]\\n' "$a"; done
  echo "pwd=$(pwd)"
  echo "umask=$(umask)"
  printf 'stdin=['; cat; echo ']'
  env | LC_ALL=C sort | grep -v '^_='
} > /tmp/probe-$n
echo "$n" >> /tmp/order
echo "probe $n says hello"
exit "${PROBE_STATUS:-0}"
"""


@pytest.fixture
def chroot_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    tool("chroot")
    from debian_tree import bookworm_tree, link_tree

    tree = bookworm_tree()
    root = tmp_path / "root"
    root.mkdir()
    # /usr hard-linked (fast); nothing in the test writes to an existing file under /usr
    link_tree(os.path.join(tree, "usr"), str(root / "usr"))
    for n in ("bin", "sbin", "lib", "lib64"):
        os.symlink(os.readlink(os.path.join(tree, n)), root / n)
    for d in ("etc/systemd/system", "etc/init.d", "etc/rc2.d", "etc/rc3.d", "etc/rc4.d", "etc/rc5.d", "var/lib",
              "var/log", "tmp/work dir", "run", "dev", "usr/local/bin"):
        os.makedirs(root / d, exist_ok=True)
    os.mknod(root / "dev/null", 0o666 | S.S_IFCHR, os.makedev(1, 3))
    os.chmod(root / "dev/null", 0o666)
    probe = root / "usr/local/bin/nuwa-probe"
    probe.write_bytes(PROBE)
    probe.chmod(0o755)
    return root


def run_runner(root):
    return subprocess.run(["chroot", str(root), "/bin/sh", fb.JOB_DIR + "/run"], capture_output=True,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, timeout=60)


def test_runner_in_a_chroot_runs_entries_in_order_and_disables_itself(chroot_root):
    root = chroot_root
    ov = Overlay(HostDirFS(str(root), writable=True))
    # entry 1 comes from a real simulated run: the interpreter defers nuwa-probe (a program
    # without a model in that image; in the chroot it is the recording script)
    sim = image_fs()
    sim.makedirs("/usr/local/bin")
    sim.makedirs("/tmp/work dir")
    sim.write_bytes("/usr/local/bin/nuwa-probe", b"\x7fELF", 0o755)
    r = run_script(sim, "set -e\ncd '/tmp/work dir'\numask 027\nprintf 'in\\nput' | X='a b' nuwa-probe 1 \"it's\" '$HOME'\n",
                   [], env=dict(BASE_ENV), name="test-script", models=MODELS)
    assert not r.deferred_whole and len(r.deferred_commands) == 1
    job = FirstBootJob.load(ov)
    job.add_result(r, b"", [], BASE_ENV, "test-script")
    job.add_command(cmd(["nuwa-probe", "2"], {"PROBE_STATUS": "3"}), BASE_ENV, "failing")
    script = b"#!/bin/sh\necho \"$0 $*\" > /tmp/script-out\nenv | LC_ALL=C sort > /tmp/script-env\nls \"${0%/*}\" > /tmp/script-dir\nnuwa-probe 3\n"
    job.add_script(script, ["configure", "1.2-3"], dpkg_environment("postinst", "foo", "amd64"), "/var/lib/dpkg/info/foo.postinst",
                   reason="output used", package="foo", extra_files={"foo.config": b"#!/bin/sh\n"})
    assert job.write(ov) == ["systemd", "sysvinit"]
    ov.commit()

    p = run_runner(root)
    out = p.stdout.decode()
    assert p.returncode == 1, (out, p.stderr)  # entry 2 failed; the others still ran
    assert (root / "tmp/order").read_text() == "1\n2\n3\n"
    probe1 = (root / "tmp/probe-1").read_text().splitlines()
    assert probe1[:6] == ["argc=2", "arg=[it's]", "arg=[$HOME]", "pwd=/tmp/work dir", "umask=0027", "stdin=[in"]
    assert probe1[6] == "put]"
    env1 = probe1[7:]
    assert "X=a b" in env1 and "PWD=/tmp/work dir" in env1 and "LANG=C" in env1 and "HOME=/root" in env1
    assert not any(v.startswith("INVOCATION_ID=") for v in env1)
    assert "umask=0022" in (root / "tmp/probe-2").read_text()
    done = sorted(n for n in os.listdir(root / "var/lib/nuwa") if n.startswith("firstboot.done."))
    assert len(done) == 1 and os.readlink(root / "var/lib/nuwa/firstboot.last") == done[0]
    d = root / "var/lib/nuwa" / done[0]
    assert (root / "tmp/script-out").read_text() == "/var/lib/nuwa/firstboot/entries/000003/foo.postinst configure 1.2-3\n"
    assert "foo.config" in (root / "tmp/script-dir").read_text().split()
    script_env = (root / "tmp/script-env").read_text().splitlines()
    assert "DPKG_MAINTSCRIPT_PACKAGE=foo" in script_env and "DPKG_MAINTSCRIPT_NAME=postinst" in script_env
    assert (d / "results").read_text() == "000001\t0\n000002\t3\n000003\t0\n"
    # disabled: job gone (ConditionPathExists fails), links removed, unit kept for the next job
    assert not (root / "var/lib/nuwa/firstboot").exists()
    assert not os.path.lexists(root / fb.WANTS_LINK.lstrip("/"))
    assert not any(os.path.lexists(root / link.lstrip("/")) for link in fb.RC_LINKS)
    assert (root / fb.UNIT_PATH.lstrip("/")).exists()
    log = (root / "var/log/nuwa-firstboot.log").read_text()
    assert "probe 1 says hello" in log and "entry 000002: exit status 3" in log and "finished with failures" in log
    assert "probe 3 says hello" in out  # stdout (the journal under systemd) has the same lines
    assert not (root / "run/nuwa-firstboot.lock").exists()


def test_runner_replays_a_deferred_commands_output_redirections(chroot_root):
    """``cmd > FILE 2>&1 || (printf ...; exit 1)`` (fontconfig's fc-cache, gdk-pixbuf's
    loaders.cache): the simulator defers the command alone with its redirections; at boot
    the entry writes FILE (stdout and stderr), ``>>`` appends, ``2>/dev/null`` discards, and
    the script's other effects were made offline. A path with a quote survives."""
    root = chroot_root
    ov = Overlay(HostDirFS(str(root), writable=True))
    sim = image_fs()
    sim.makedirs("/usr/local/bin")
    sim.makedirs("/var/log")
    sim.write_bytes("/usr/local/bin/nuwa-probe", b"\x7fELF", 0o755)
    script = ("set -e\nnuwa-probe 1 >/var/log/probe.log 2>&1 || (printf 'failed.\\n'; exit 1)\n"
              "echo seen > /tmp/after\nnuwa-probe 2 >> \"/var/log/it's.log\" 2>/dev/null\n")
    r = run_script(sim, script, [], env=dict(BASE_ENV), name="test-script", models=MODELS)
    assert not r.deferred_whole, r.reason
    assert [d.redirects for d in r.deferred_commands] == [
        ((1, ">", "/var/log/probe.log"), (2, ">&", "1")), ((1, ">>", "/var/log/it's.log"), (2, ">", "/dev/null"))]
    assert sim.read_bytes("/tmp/after") == b"seen\n"
    (root / "var/log/it's.log").write_text("before\n")
    job = FirstBootJob.load(ov)
    job.add_result(r, b"", [], BASE_ENV, "test-script")
    job.write(ov)
    ov.commit()
    stored = json.loads((root / fb.JOB_DIR.lstrip("/") / "job.json").read_text())
    assert [e.get("redirects") for e in stored["entries"]] == [
        [[1, ">", "/var/log/probe.log"], [2, ">&", "1"]], [[1, ">>", "/var/log/it's.log"], [2, ">", "/dev/null"]]]
    p = run_runner(root)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert (root / "tmp/order").read_text() == "1\n2\n"
    assert (root / "var/log/probe.log").read_text() == "probe 1 says hello\n"
    assert (root / "var/log/it's.log").read_text() == "before\nprobe 2 says hello\n"
    log = (root / "var/log/nuwa-firstboot.log").read_text()
    assert "probe 1 says hello" not in log  # it went to the command's own file
    # a job with a damaged redirection is refused, as any damaged entry
    bad = dict(stored)
    bad["entries"] = [dict(stored["entries"][0], redirects=[[1, ">", "relative"]])]
    with pytest.raises(CorruptImageError, match="bad redirection"):
        fb.JobEntry.from_json(bad["entries"][0], "job.json")


def test_runner_never_reruns_an_interrupted_entry(chroot_root):
    root = chroot_root
    fs = HostDirFS(str(root), writable=True)
    job = FirstBootJob()
    job.add_command(cmd(["nuwa-probe", "1"]), BASE_ENV)
    job.add_command(cmd(["nuwa-probe", "2"]), BASE_ENV)
    job.write(fs)
    (root / "var/lib/nuwa/firstboot/entries/000001/started").write_bytes(b"")  # a boot cut short
    p = run_runner(root)
    assert p.returncode == 1
    assert (root / "tmp/order").read_text() == "2\n"
    (done,) = [n for n in os.listdir(root / "var/lib/nuwa") if n.startswith("firstboot.done.")]
    assert (root / "var/lib/nuwa" / done / "results").read_text() == "000001\tinterrupted\n000002\t0\n"
