"""``nuwa patch IMAGE --deb FILE...`` on the default test image, judged by the real tools.

The .debs are the real bookworm-security updates listed in
``testimages/default.security-updates.txt`` (what ``apt-get -s upgrade`` listed when the image
was built), shipped in ``testimages/updates`` (the archive drops superseded versions, so a
download would stop working). The patched overlay is judged by
``qemu-img check``, ``e2fsck -fn`` on its root partition, debugfs read-back of the files the
new versions ship (md5sums from the new database) and ``nuwa packages``; the original image is
hashed before and after. Bad input (a missing .deb, a corrupt one, a file conflict without
Replaces, options that are not available yet) must give one line, the documented exit code,
and write nothing.
"""

import hashlib
import json
import os
import re
import subprocess

import pytest

from helpers.cli import nuwa
from helpers.debtools import build_deb
from helpers.hashing import file_sha256
from helpers.images import root_partition
from helpers.paths import DEFAULT_IMAGE as IMAGE, TESTIMAGES
from judges import debugfs, e2fsck_clean, qemu_img_check, tool

UPDATES = os.path.join(TESTIMAGES, "default.security-updates.txt")


def pending_updates() -> list[tuple[str, str, str]]:
    """(package, old version, new version) from the image's ``apt-get -s upgrade`` listing."""
    out = []
    with open(UPDATES) as f:
        for line in f:
            m = re.match(r"Inst (\S+) \[([^\]]+)\] \((\S+) ", line)
            if m:
                out.append(m.groups())
    return out


@pytest.fixture(scope="module")
def debs():
    """The security updates of the default image, shipped in testimages/updates (the archive
    drops superseded versions, so the tests never download them)."""
    if not os.path.exists(IMAGE):
        pytest.skip("testimages/default.qcow2 is missing")
    updates = pending_updates()
    assert updates, "default.security-updates.txt lists no update"
    shipped = os.path.join(TESTIMAGES, "updates")
    files = [os.path.join(shipped, f"{p}_{new.replace(':', '%3a')}_{arch}.deb")
             for p, _, new in updates for arch in ("amd64", "all")
             if os.path.exists(os.path.join(shipped, f"{p}_{new.replace(':', '%3a')}_{arch}.deb"))]
    assert len(files) == len(updates), f"testimages/updates does not hold every update listed: {files}"
    return sorted(files)


def deb_args(files) -> list[str]:
    out = []
    for f in files:
        out += ["--deb", f]
    return out


def installed(image: str) -> dict[str, str]:
    """``nuwa packages --json`` as {name: version}."""
    r = nuwa("packages", image, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = doc["packages"] if isinstance(doc, dict) else doc
    return {p["package"].split(":")[0]: p["version"] for p in rows}


@pytest.fixture(scope="module")
def patched(debs, tmp_path_factory):
    """One real run to a new overlay, with --json and --report: (output, stdout doc, report doc, hashes)."""
    d = tmp_path_factory.mktemp("patched")
    out, report = str(d / "patched.qcow2"), str(d / "report.json")
    before = file_sha256(IMAGE)
    r = nuwa("patch", IMAGE, *deb_args(debs), "--output", out, "--report", report, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return out, json.loads(r.stdout), json.load(open(report)), before, file_sha256(IMAGE)


def test_patch_writes_a_clean_overlay_with_the_new_versions(patched, tmp_path):
    out, doc, report, before, after = patched
    assert before == after  # the original is byte-identical
    qemu_img_check(out)
    info = json.loads(subprocess.run([tool("qemu-img"), "info", "--output=json", out], capture_output=True,
                                     text=True, check=True).stdout)
    # a relative backing name is relative to the overlay's own directory (qcow2 spec)
    backing = os.path.join(os.path.dirname(out), info["backing-filename"])
    assert os.path.realpath(backing) == os.path.realpath(IMAGE)
    raw = root_partition(out, str(tmp_path / "root.ext4"))
    e2fsck_clean(raw)
    versions = installed(out)
    for name, old, new in pending_updates():
        assert versions[name] == new, (name, versions.get(name))
        assert {"action": "upgrade", "package": name, "old_version": old, "new_version": new} in \
            [{k: p[k] for k in ("action", "package", "old_version", "new_version")} for p in doc["packages"]]
    # debugfs reads back a file each new version ships, matching the md5sums of the new database
    status = debugfs(raw, "cat /var/lib/dpkg/status")
    checked = 0
    for name, _, new in pending_updates():
        assert re.search(rf"Package: {re.escape(name)}\n(?:.+\n)*?Version: {re.escape(new)}\n", status), name
        md5 = debugfs(raw, f"cat /var/lib/dpkg/info/{name}:amd64.md5sums") or debugfs(
            raw, f"cat /var/lib/dpkg/info/{name}.md5sums")
        digest, path = md5.splitlines()[0].split(None, 1)
        data = subprocess.run([tool("debugfs"), "-R", f"cat /{path}", raw], capture_output=True, check=True).stdout
        assert data and hashlib.md5(data).hexdigest() == digest, path
        # merged /usr: dpkg's name /lib/... is the file /usr/lib/... that the overlay changed
        assert {"/" + path, "/usr/" + path} & {c["path"] for c in doc["changes"]}, path
        checked += 1
    assert checked == len(pending_updates())


def test_json_and_report_documents(patched, debs):
    out, doc, report, _, _ = patched
    assert doc == report
    assert doc["written"] == {"path": out, "in_place": False}
    assert doc["dry_run"] is False
    assert [d["file"] for d in doc["debs"]] == debs
    # every script run is listed with what its commands became; the counts add up
    assert doc["counts"]["scripts"] == len(doc["scripts"]) > 0
    assert sum(s["commands"]["counts"].get("simulated", 0) for s in doc["scripts"] if "commands" in s) \
        == doc["counts"]["simulated"]
    assert ("libc-bin", "postinst") in {(s["package"], s["script"]) for s in doc["scripts"]}  # ldconfig trigger
    assert doc["triggers"]
    paths = [c["path"] for c in doc["changes"]]
    assert paths == sorted(paths) and "/var/lib/dpkg/status" in paths


def test_dry_run_writes_nothing_and_reports_the_same(patched, debs, tmp_path):
    _, doc, _, before, _ = patched
    r = nuwa("patch", IMAGE, *deb_args(debs), "--dry-run", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dry = json.loads(r.stdout)
    assert file_sha256(IMAGE) == before
    assert os.listdir(tmp_path) == []
    assert dry["written"] is None and dry["dry_run"] is True
    for k in ("packages", "conffiles", "triggers", "counts"):
        assert dry[k] == doc[k], k
    assert [(c["path"], c["status"]) for c in dry["changes"]] == [(c["path"], c["status"]) for c in doc["changes"]]
    # the human summary names the versions and says nothing was written
    r = nuwa("patch", IMAGE, *deb_args(debs), "--dry-run")
    assert r.returncode == 0 and r.stderr == ""
    for name, old, new in pending_updates():
        assert f"upgrade: {name} {old} -> {new}" in r.stdout
    assert "dry run: nothing written" in r.stdout
    assert "maintainer scripts" in r.stdout


def test_quiet_with_a_report_still_lists_the_changes(debs, tmp_path):
    """--quiet alone shows no report, so the run leaves out its list of changes (the API's
    ``changes=False``); with --report (or --json) the list is there as always."""
    report = tmp_path / "r.json"
    r = nuwa("patch", IMAGE, *deb_args(debs), "--dry-run", "--quiet", "--report", str(report))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    changes = json.loads(report.read_text())["changes"]
    assert changes and any(c["path"] == "/var/lib/dpkg/status" for c in changes)


def test_quiet_and_in_place_on_a_copy(debs, tmp_path):
    from nuwa.formats.qcow2_create import create_overlay

    # --in-place on a private overlay of the image (so the shared image is never written)
    mine = str(tmp_path / "mine.qcow2")
    create_overlay(mine, IMAGE)
    before = file_sha256(IMAGE)
    r = nuwa("patch", mine, *deb_args(debs), "--in-place", "--quiet")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert file_sha256(IMAGE) == before
    qemu_img_check(mine)
    e2fsck_clean(root_partition(mine, str(tmp_path / "root.ext4")))
    versions = installed(mine)
    assert all(versions[n] == new for n, _, new in pending_updates())
    # a second run of the same .debs has nothing to do, as `apt install ./x.deb` says "x is already
    # the newest version" (apt does not reinstall a file whose version is installed): nothing written
    after = file_sha256(mine)
    r = nuwa("patch", mine, *deb_args(debs), "--in-place", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["nothing_to_do"] and doc["packages"] == [] and doc["written"] is None
    assert sorted(doc["plan"]["already_installed"]) == sorted(n for n, _, _ in pending_updates())
    assert file_sha256(mine) == after
    qemu_img_check(mine)


# ---- bad input: one line, the documented exit code, nothing written ---------------------------

def _refused(args, code, tmp_path, pattern):
    out = str(tmp_path / "out.qcow2")
    report = str(tmp_path / "report.json")
    before = file_sha256(IMAGE)
    r = nuwa("patch", IMAGE, *args, "--output", out, "--report", report)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert not os.path.exists(out) and not os.path.exists(report)
    assert file_sha256(IMAGE) == before
    return lines[0]


def test_missing_deb(tmp_path):
    _refused(["--deb", str(tmp_path / "nope.deb")], 2, tmp_path, r"nope\.deb: no such file")


def test_corrupt_deb(tmp_path):
    bad = tmp_path / "bad_1.0_all.deb"
    bad.write_bytes(b"!<arcx>\n" + b"\0" * 120)
    _refused(["--deb", str(bad)], 2, tmp_path, r"bad_1\.0_all\.deb.*ar magic")


def test_corrupt_deb_after_a_good_one(debs, tmp_path):
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"not an archive at all")
    _refused([*deb_args(debs), "--deb", str(bad)], 2, tmp_path, r"bad\.deb")


def test_corrupt_data_member_found_while_unpacking(debs, tmp_path):
    # a valid header, then 64 flipped bytes inside data.tar.xz: found only when unpacking, after the
    # other packages were unpacked into the overlay -- which is discarded whole
    data = bytearray(open(debs[-1], "rb").read())
    i = len(data) - 2000
    data[i:i + 64] = bytes(b ^ 0xFF for b in data[i:i + 64])
    bad = tmp_path / os.path.basename(debs[-1]).replace(".deb", "-corrupt.deb")
    bad.write_bytes(bytes(data))
    _refused([*deb_args(debs[:-1]), "--deb", str(bad)], 2, tmp_path, r"-corrupt\.deb.*corrupt \.xz data")


def test_file_conflict_without_replaces(debs, tmp_path):
    # /usr/bin/xz belongs to xz-utils in the image: dpkg refuses to overwrite it without Replaces
    d = str(tmp_path / "build")
    os.makedirs(d)
    clash = build_deb(d, "nuwa-clash", "1.0", {"/usr/bin/xz": b"#!/bin/sh\n"}, arch="amd64")
    line = _refused([*deb_args(debs), "--deb", clash], 1, tmp_path,
                    r"trying to overwrite '/usr/bin/xz', which is also in package xz-utils")
    assert "nuwa-clash" in line


def test_unmet_dependency_is_refused_in_apts_words(debs, tmp_path):
    d = str(tmp_path / "build")
    os.makedirs(d)
    needy = build_deb(d, "nuwa-needy", "1.0", {"/usr/share/nuwa-needy/x": b"x\n"},
                      extra="Depends: nuwa-not-there (>= 1)\n")
    # apt's refusal (exit 2): nothing offers nuwa-not-there (the image's repository has no key)
    _refused([*deb_args(debs), "--deb", needy], 2, tmp_path,
             r"nuwa-needy : Depends: nuwa-not-there \(>= 1\) but it is not installable")


def test_repo_alone_is_nothing_to_apply(tmp_path):
    _refused(["--repo", "deb http://127.0.0.1:9/debian bookworm main"], 2, tmp_path, r"nothing to apply")


@pytest.mark.parametrize("opt", [["--upgrade"], ["--security-only"], ["--install", "curl"], ["--remove", "xz-utils"]])
def test_apt_jobs_need_a_trusted_key(opt, tmp_path):
    # the default image names an archive but holds no key for it: refused before any download
    _refused([*opt, "--cache", str(tmp_path / "cache")], 2, tmp_path, r"no trusted key for .* bookworm")


@pytest.mark.parametrize("opts,pattern", [
    (["--upgrade", "--remove", "xz-utils"], r"cannot be combined"),
    (["--install", "curl", "--deb", "x.deb"], r"--deb and --install cannot be combined"),
    (["--security-only", "--full-upgrade"], r"--security-only goes with --upgrade")])
def test_apt_job_mixtures_are_refused(opts, pattern, tmp_path):
    _refused(opts, 2, tmp_path, pattern)


def test_target_is_required_and_never_overwritten(tmp_path):
    deb = str(tmp_path / "x.deb")
    r = nuwa("patch", IMAGE, "--deb", deb)
    assert r.returncode == 2 and "--output OUT" in r.stderr and len(r.stderr.splitlines()) == 1
    out = tmp_path / "exists.qcow2"
    out.write_bytes(b"keep me")
    r = nuwa("patch", IMAGE, "--deb", deb, "--output", str(out))
    assert r.returncode == 2 and "output exists" in r.stderr
    assert out.read_bytes() == b"keep me"
    r = nuwa("patch", IMAGE, "--dry-run")
    assert r.returncode == 2 and "nothing to apply" in r.stderr


DEFER_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    mkdir -p /var/lib/nuwa-defer
    echo configured > /var/lib/nuwa-defer/state
    iconvconfig --nostdlib
    hostname nuwa-defer-test
fi
"""


def test_deferred_command_goes_to_the_first_boot_job(tmp_path):
    """A postinst command without a model: simulated rest committed, the command in the job."""
    if not os.path.exists(IMAGE):
        pytest.skip("testimages/default.qcow2 is missing")
    d = str(tmp_path / "build")
    os.makedirs(d)
    deb = build_deb(d, "nuwa-defer", "1.0", {"/etc/nuwa-defer.conf": b"a=1\n"}, conffiles=("/etc/nuwa-defer.conf",),
                    scripts={"postinst": DEFER_POSTINST})
    out = str(tmp_path / "out.qcow2")
    r = nuwa("patch", IMAGE, "--deb", deb, "--output", out)
    assert r.returncode == 0, r.stderr
    assert "install: nuwa-defer 1.0" in r.stdout
    assert "conffile /etc/nuwa-defer.conf (nuwa-defer): new" in r.stdout
    assert "deferred: line 6: iconvconfig --nostdlib: no model for iconvconfig" in r.stdout
    assert "first-boot job: 1 entries (1 new)" in r.stdout
    assert "  dropped: line 7: hostname nuwa-defer-test: sets the running system" in r.stdout
    qemu_img_check(out)
    raw = root_partition(out, str(tmp_path / "root.ext4"))
    e2fsck_clean(raw)
    assert debugfs(raw, "cat /var/lib/nuwa-defer/state") == "configured\n"
    assert debugfs(raw, "cat /etc/nuwa-defer.conf") == "a=1\n"
    job = json.loads(debugfs(raw, "cat /var/lib/nuwa/firstboot/job.json"))
    assert [e["argv"] for e in job["entries"]] == [["iconvconfig", "--nostdlib"]]
    assert installed(out)["nuwa-defer"] == "1.0"
    r = nuwa("patch", IMAGE, "--deb", deb, "--dry-run", "--json")
    doc = json.loads(r.stdout)
    assert (doc["counts"]["deferred"], doc["counts"]["dropped"]) == (1, 1) and doc["firstboot"]["new_entries"] == [job["entries"][0]["id"]]
    assert doc["scripts"][0]["deferred_commands"][0]["argv"][0] == "iconvconfig"


def test_report_that_cannot_be_written_cancels_the_run(debs, tmp_path):
    # the report is written (aside, then renamed) before the commit; here its temporary name is a
    # directory, so writing it fails: exit 1, and neither OUT nor the report exists
    report = tmp_path / "report.json"
    os.mkdir(str(report) + ".nuwa-tmp")
    out = str(tmp_path / "out.qcow2")
    before = file_sha256(IMAGE)
    r = nuwa("patch", IMAGE, *deb_args(debs), "--output", out, "--report", str(report))
    assert r.returncode == 1, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "cannot write the report" in r.stderr
    assert not os.path.exists(out) and not report.exists()
    assert file_sha256(IMAGE) == before


def test_missing_dependency_taken_from_a_repository(tmp_path):
    """``--deb`` as ``apt install ./tool.deb``: tool's dependency comes from the repository
    (--repo, a file: one), installed as automatic; without the repository the same run is
    refused with the dependency named (exit 2), as apt refuses it."""
    from helpers.aptjudge import make_repo

    uri = make_repo(str(tmp_path / "repo"), "stable", [("nuwa-libdep", "1.0", "all"), ("nuwa-other", "1.0", "all")],
                    {"Origin": "T"})
    d = str(tmp_path / "build")
    os.makedirs(d)
    tool_deb = build_deb(d, "nuwa-tool", "1.0", {"/usr/share/nuwa-tool/x": b"x\n"}, extra="Depends: nuwa-libdep\n")
    out = str(tmp_path / "with-repo.qcow2")
    repo = ["--repo", f"deb [trusted=yes] {uri} stable main", "--allow-insecure", "--sources-only",
            "--cache", str(tmp_path / "cache")]
    r = nuwa("patch", IMAGE, "--deb", tool_deb, *repo, "--output", out, "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    assert [(i["package"], i["local"], i["new"]) for i in plan["install"]] == [("nuwa-libdep", False, True),
                                                                           ("nuwa-tool", True, True)]
    assert plan["auto"] == ["nuwa-libdep"]
    got = installed(out)
    assert got["nuwa-tool"] == "1.0" and got["nuwa-libdep"] == "1.0"
    assert nuwa("cat", out, "/var/lib/apt/extended_states").stdout == (
        "Package: nuwa-libdep\nArchitecture: amd64\nAuto-Installed: 1\n\n")  # as apt-mark writes it
    qemu_img_check(out)
    _refused(["--deb", tool_deb], 2, tmp_path, r"nuwa-tool : Depends: nuwa-libdep but it is not installable")


def _stderr_on_a_terminal(args) -> tuple[int, bytes, bytes]:
    """Run ``nuwa patch ARGS`` with stderr on a pseudo-terminal; (status, stdout, terminal)."""
    import select
    import sys
    import threading

    from helpers.cli import nuwa_env

    master, slave = os.openpty()
    got = bytearray()

    def drain():
        while True:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                got.extend(chunk)
            elif proc.poll() is not None:
                return

    proc = subprocess.Popen([sys.executable, "-m", "nuwa", "patch", *args], stdout=subprocess.PIPE, stderr=slave,
                            env=nuwa_env())
    t = threading.Thread(target=drain)
    t.start()
    out, _ = proc.communicate(timeout=600)
    os.close(slave)
    t.join()
    os.close(master)
    return proc.returncode, out, bytes(got)


def test_progress_of_the_whole_run_on_a_terminal_only(debs, tmp_path):
    out = str(tmp_path / "out.qcow2")
    code, stdout, tty = _stderr_on_a_terminal([IMAGE, *deb_args(debs), "--output", out])
    assert code == 0, tty
    text = tty.decode()
    for stage in ("nuwa: plan", "nuwa: unpack 1/3", "nuwa: configure 1/2", "nuwa: triggers", "nuwa: write"):
        assert stage in text, text
    assert text.endswith("\r\x1b[K"), text[-80:]  # the line is cleared: the result follows on stdout
    assert b"wrote " in stdout and b"nuwa:" not in stdout
    # --quiet and --json: nothing on the terminal (stdout keeps the JSON document alone)
    for extra in (["--quiet"], ["--json"]):
        code, stdout, tty = _stderr_on_a_terminal([IMAGE, *deb_args(debs), "--dry-run", *extra])
        assert (code, tty) == (0, b"")


def test_a_file_of_another_architecture_is_refused_as_dpkg_refuses_it(tmp_path):
    """An arm64 .deb on the amd64 default image: dpkg's one-line refusal, exit 2, nothing
    written (it used to reach the resolver and end with "did not converge")."""
    d = str(tmp_path / "build")
    os.makedirs(d)
    deb = build_deb(d, "nuwa-foreign", "1.0", {"/usr/share/nuwa-foreign/x": b"x\n"}, arch="arm64")
    out = tmp_path / "out.qcow2"
    before = file_sha256(IMAGE)
    r = nuwa("patch", IMAGE, "--deb", deb, "--output", out)
    assert r.returncode == 2
    assert r.stderr.strip().endswith("package architecture (arm64) does not match system (amd64)")
    assert len(r.stderr.splitlines()) == 1 and not out.exists() and file_sha256(IMAGE) == before
