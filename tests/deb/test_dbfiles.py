"""Round trips of dpkg's small database files on files written by the real tools."""

import os
import subprocess

import pytest

from judges import tool
from nuwa.deb.alternatives import Alternative, AlternativesDB
from nuwa.deb.diversions import Diversions
from nuwa.deb.statoverride import StatOverrides
from nuwa.errors import CorruptImageError
from nuwa.fs.hostdir import HostDirFS

ALT_DIR = "/var/lib/dpkg/alternatives"


def test_host_alternatives_round_trip():
    if not os.path.isdir(ALT_DIR) or not os.listdir(ALT_DIR):
        pytest.skip("no alternatives on this host")
    for n in os.listdir(ALT_DIR):
        text = open(os.path.join(ALT_DIR, n), encoding="utf-8").read()
        alt = Alternative.parse(n, text)
        assert alt.render() == text, n


def test_alternative_written_by_nuwa_is_read_by_update_alternatives(tmp_path):
    ua = tool("update-alternatives")
    admin, altdir = tmp_path / "admin" / "alternatives", tmp_path / "etc-alt"
    admin.mkdir(parents=True)
    altdir.mkdir()
    base = [ua, "--admindir", str(admin), "--altdir", str(altdir), "--log", "/dev/null"]
    r = subprocess.run(base + ["--install", str(tmp_path / "ed"), "nuwa-ed", "/bin/true", "10",
                               "--slave", str(tmp_path / "ed.1"), "nuwa-ed.1", "/dev/null"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fs = HostDirFS(str(tmp_path), writable=True)
    db = AlternativesDB(fs, "/admin")
    alt = db.load("nuwa-ed")
    assert alt.best().path == "/bin/true" and alt.best().slaves == {"nuwa-ed.1": "/dev/null"}
    alt.choices[0].priority = 50
    db.save(alt)
    q = subprocess.run(base + ["--query", "nuwa-ed"], capture_output=True, text=True, check=True).stdout
    assert "Priority: 50" in q and "Best: /bin/true" in q


def test_diversions_and_statoverride(tmp_path):
    fs = HostDirFS(str(tmp_path), writable=True)
    fs.makedirs("/var/lib/dpkg")
    fs.makedirs("/etc")
    fs.write_bytes("/etc/passwd", b"root:x:0:0::/root:/bin/sh\nmessagebus:x:100:101::/:/bin/false\n")
    fs.write_bytes("/etc/group", b"root:x:0:\nmessagebus:x:101:\n")
    text = "/usr/bin/a\n/usr/bin/a.distrib\npkg\n/etc/b\n/etc/b.local\n:\n"
    fs.write_bytes("/var/lib/dpkg/diversions", text.encode())
    d = Diversions.load(fs)
    assert d.render() == text
    assert d.use_path("/usr/bin/a", "other") == "/usr/bin/a.distrib" and d.use_path("/usr/bin/a", "pkg") == "/usr/bin/a"
    d.save(fs)
    assert fs.read_bytes("/var/lib/dpkg/diversions-old") == text.encode()
    fs.write_bytes("/var/lib/dpkg/statoverride", b"root messagebus 4754 /usr/lib/dbus-1.0/dbus-daemon-launch-helper\n")
    so = StatOverrides.load(fs)
    o = so.get("/usr/lib/dbus-1.0/dbus-daemon-launch-helper")
    assert (o.uid, o.gid, o.mode) == (0, 101, 0o4754)
    assert so.render() == "root messagebus 4754 /usr/lib/dbus-1.0/dbus-daemon-launch-helper\n"
    fs.write_bytes("/var/lib/dpkg/diversions", b"/a\n/b\n")
    with pytest.raises(CorruptImageError, match="not a multiple of 3"):
        Diversions.load(fs)
