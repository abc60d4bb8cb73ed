"""``nuwa sh``: a script run against an image in the simulator, as a subprocess.

Judges: every image written passes ``qemu-img check`` and ``e2fsck -fn`` (the root partition
cut out of the guest bytes ``qemu-img convert`` gives), and ``debugfs`` reads back what the
script wrote; the input image is byte-identical afterwards (hashed); real dash gives the
stdout, stderr and status a pure script must reproduce. The default image is only ever
read: everything is written to ``--output`` under tmp_path.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess

import pytest

from helpers.cli import C_ENV, nuwa
from helpers.hashing import file_sha256
from helpers.images import root_partition
from helpers.paths import DEFAULT_IMAGE, REPO
from judges import debugfs, e2fsck_clean, qemu_img_check, tool

ENV = {**os.environ, **C_ENV, "PYTHONPATH": REPO}
MTIME = 1_700_000_000
#: ``nuwa sh ARGS``, bytes out (compared with dash byte for byte)
nuwa_sh = functools.partial(nuwa, "sh", text=False, env=C_ENV, timeout=300)


def judge(img, tmp_path) -> str:
    """qemu-img check (qcow2) and e2fsck -fn on the root fs; return the root fs file for debugfs."""
    with open(img, "rb") as f:
        if f.read(4) == b"QFI\xfb":
            qemu_img_check(str(img))
    fsimg = root_partition(str(img), str(tmp_path / (os.path.basename(img) + ".root")))
    e2fsck_clean(fsimg)
    return fsimg


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A bare ext4 image (mkfs.ext4 -d) with systemd's unit dir and an unmodelled program."""
    d = tmp_path_factory.mktemp("shimg")
    tree = d / "tree"
    for sub in ("etc/systemd/system", "var/lib/dpkg", "var/log", "usr/bin", "tmp", "root"):
        os.makedirs(tree / sub)
    (tree / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tree / "etc/group").write_text("root:x:0:\n")
    (tree / "var/lib/dpkg/status").write_text("")
    (tree / "etc/bytes.dat").write_bytes(b"\xffx")  # not UTF-8
    (tree / "usr/bin/frob").write_bytes(b"\x7fELF not really")  # executable, no model: deferred
    os.chmod(tree / "usr/bin/frob", 0o755)
    for prog in ("cat", "touch", "mkdir", "chmod", "rm"):  # modelled programs must exist in the image's PATH
        (tree / "usr/bin" / prog).write_bytes(b"\x7fELF stub")
        os.chmod(tree / "usr/bin" / prog, 0o755)
    img = d / "small.raw"
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-d", str(tree), "-E", "root_owner=0:0", str(img), "16M"],
                   check=True, capture_output=True, env={**ENV, "E2FSPROGS_FAKE_TIME": str(MTIME)})
    return img


def test_default_image_script_file_written_to_new_overlay(tmp_path):
    before = file_sha256(DEFAULT_IMAGE)
    script = tmp_path / "setup.sh"
    script.write_text('#!/bin/sh\nset -e\necho "args: $# [$1] [$2]"\nmkdir -p /etc/nuwa-sh\n'
                      'printf "%s\\n" "$1" "$2" > /etc/nuwa-sh/conf\nchmod 600 /etc/nuwa-sh/conf\n'
                      'cat /etc/hostname\necho warn >&2\niconvconfig --nostdlib\nexit 5\n')
    out = tmp_path / "out.qcow2"
    r = nuwa_sh(DEFAULT_IMAGE, script, "one", "two words", "--output", out, check=5)
    assert r.stdout == b"args: 2 [one] [two words]\nnuwa-default\n"
    err = r.stderr.decode().splitlines()
    assert err[0] == "warn"
    assert any(ln.startswith("nuwa sh: deferred: line 9: iconvconfig --nostdlib: no model for iconvconfig") for ln in err)
    assert any(ln.startswith("nuwa sh: first-boot job: 1 entries (1 new)") for ln in err)
    assert file_sha256(DEFAULT_IMAGE) == before
    fsimg = judge(out, tmp_path)
    assert debugfs(fsimg, "cat /etc/nuwa-sh/conf") == "one\ntwo words\n"
    assert "Mode:  0600" in debugfs(fsimg, "stat /etc/nuwa-sh/conf")
    run = debugfs(fsimg, "cat /var/lib/nuwa/firstboot/entries/000001/run")
    assert "'iconvconfig' '--nostdlib'" in run
    assert debugfs(fsimg, "cat /var/lib/nuwa/firstboot/job") == "000001\n"


def test_pure_script_matches_dash(tmp_path):
    dash = tool("dash")
    text = 'x="a  b"; printf "<%s>\\n" $x; echo "to err" >&2; for i in 1 2 3; do echo $((i*i)); done; exit 4'
    ref = subprocess.run([dash, "-c", text], capture_output=True, cwd=tmp_path)
    r = nuwa_sh(DEFAULT_IMAGE, "-c", text, "--dry-run")
    assert (r.returncode, r.stdout) == (ref.returncode, ref.stdout)
    assert r.stderr.decode().splitlines()[0] == ref.stderr.decode().rstrip("\n")


def test_dry_run_writes_nothing(tmp_path):
    before = file_sha256(DEFAULT_IMAGE)
    out = tmp_path / "never.qcow2"
    r = nuwa_sh(DEFAULT_IMAGE, "-c", "echo hi > /etc/motd; iconvconfig", "--dry-run", "--output", out, "--json", check=0)
    doc = json.loads(r.stdout)
    assert not out.exists() and file_sha256(DEFAULT_IMAGE) == before
    assert doc["written"] is None and doc["dry_run"] is True
    paths = {c["path"] for c in doc["changes"]}
    assert "/etc/motd" in paths and "/var/lib/nuwa/firstboot/job" in paths
    assert doc["firstboot"]["activation"] == [] and doc["firstboot"]["new_entries"] == ["000001"]


def test_json_document(small, tmp_path):
    out = tmp_path / "j.qcow2"
    r = nuwa_sh(small, "-c", "cat /etc/bytes.dat; echo e >&2; echo data | frob --flag; touch /tmp/t; exit 3",
             "--output", out, "--json", check=3)
    doc = json.loads(r.stdout)
    assert r.stderr == b""  # with --json everything is in the document
    assert doc["status"] == 3 and doc["deferred_whole"] is False
    assert doc["stdout"] == {"text": base64.b64encode(b"\xffx").decode(), "encoding": "base64"}
    assert doc["stderr"] == {"text": "e\n", "encoding": "utf-8"}
    (d,) = doc["deferred_commands"]
    assert d["argv"] == ["frob", "--flag"] and d["stdin_size"] == 5 and d["umask"] == "0022" and d["cwd"] == "/"
    counts = doc["record"]["counts"]
    assert counts["deferred"] == 1 and counts["simulated"] >= 4
    assert doc["firstboot"]["activation"] == ["systemd"]
    assert doc["written"] == {"path": str(out), "in_place": False}
    paths = {c["path"]: c["status"] for c in doc["changes"]}
    assert paths["/tmp/t"] == "added" and paths["/etc/systemd/system/multi-user.target.wants/nuwa-firstboot.service"] == "added"
    fsimg = judge(out, tmp_path)
    assert debugfs(fsimg, "cat /var/lib/nuwa/firstboot/entries/000001/stdin") == "data\n"
    assert "/etc/systemd/system/nuwa-firstboot.service" in debugfs(
        fsimg, "stat /etc/systemd/system/multi-user.target.wants/nuwa-firstboot.service")


def test_whole_script_deferral_undoes_effects(small, tmp_path):
    out = tmp_path / "w.qcow2"
    text = 'echo before > /tmp/before\nv=$(frob --print)\necho "$v" > /tmp/v\necho visible\n'
    r = nuwa_sh(small, "-c", text, "--output", out, check=0)
    assert r.stdout == b""  # the run was undone: its output is not shown
    assert "the whole script is deferred to first boot" in r.stderr.decode()
    fsimg = judge(out, tmp_path)
    assert debugfs(fsimg, "stat /tmp/before") == ""  # debugfs: "File not found" on stderr
    assert "Inode:" in debugfs(fsimg, "stat /tmp")
    assert debugfs(fsimg, "cat /var/lib/nuwa/firstboot/entries/000001/nuwa-sh-c") == text
    run = debugfs(fsimg, "cat /var/lib/nuwa/firstboot/entries/000001/run")
    assert "/bin/sh '/var/lib/nuwa/firstboot/entries/000001/nuwa-sh-c' </dev/null" in run


def test_second_run_extends_the_job_in_place(small, tmp_path):
    img = tmp_path / "copy.raw"
    img.write_bytes(small.read_bytes())
    nuwa_sh(img, "-c", "frob one", "--in-place", check=0)
    r = nuwa_sh(img, "-c", "frob two", "--in-place", check=0)
    assert "first-boot job: 2 entries (1 new)" in r.stderr.decode()
    fsimg = judge(img, tmp_path)
    assert debugfs(fsimg, "cat /var/lib/nuwa/firstboot/job") == "000001\n000002\n"
    assert "'frob' 'two'" in debugfs(fsimg, "cat /var/lib/nuwa/firstboot/entries/000002/run")
    wants = debugfs(fsimg, "ls -l /etc/systemd/system/multi-user.target.wants")
    assert wants.count("nuwa-firstboot.service") == 1


def test_bad_input_one_line_and_nothing_written(small, tmp_path):
    before = file_sha256(small)
    out = tmp_path / "o.qcow2"
    bad_img = tmp_path / "garbage.img"
    bad_img.write_bytes(b"\x00not an image" * 100)
    script = tmp_path / "s.sh"
    script.write_text("echo hi\n")
    cases = [
        ((small, tmp_path / "missing.sh", "--output", out), 2, "no such script file"),
        # after IMAGE, argparse itself refuses the extra word; before it, nuwa sh does
        ((small, "-c", "echo", str(script), "--output", out), 2, "unrecognized arguments"),
        (("-c", "echo", small, str(script), "--output", out), 2, "not both"),
        ((small, "-c", "echo"), 2, "give --output OUT"),
        ((small, tmp_path, "--output", out), 2, "is a directory"),
        ((small, "-c", "echo", "--output", script), 2, "output exists"),
        ((bad_img, "-c", "echo", "--output", out), None, "garbage.img:"),  # names IMAGE, not OUT
        ((tmp_path / "nope.img", "-c", "echo", "--output", out), None, ""),
    ]
    for args, code, text in cases:
        r = nuwa_sh(*args)
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nuwa"), (args, lines)
        assert text in lines[0], (args, lines)
        assert (r.returncode == code) if code else r.returncode in (2, 3), (args, r.returncode)
        assert not out.exists(), args
    assert file_sha256(small) == before
    assert script.read_text() == "echo hi\n"


def test_parse_error_is_reported_like_dash(small, tmp_path):
    dash = tool("dash")
    script = tmp_path / "broken.sh"
    script.write_text("if true; then\n  echo x\nfi fi\n")
    ref = subprocess.run([dash, str(script)], capture_output=True)
    out = tmp_path / "p.qcow2"
    r = nuwa_sh(small, script, "--output", out)
    assert r.returncode == ref.returncode == 2
    assert r.stderr.decode().splitlines()[0] == ref.stderr.decode().rstrip("\n")
    assert not out.exists()
