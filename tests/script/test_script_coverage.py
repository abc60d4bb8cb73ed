"""tools/script_coverage.py on a small sample of the Debian 12 corpus: structure and invariants.

The measured numbers live in docs/firstboot.md; this test only checks that the report is
consistent (every count adds up, every invocation is classified once, the scenarios follow
dpkg's order) on real maintainer scripts, in the default mode that unpacks the packages' real
files from their .debs, that the run changed nothing on the host (the base tree, the kept
.debs, the control areas, and its temporary directory is empty again), and that the older
placeholder mode still runs and differs where a package's shipped shell script matters.
Slow: it needs the corpus with its .debs (tools/build_script_corpus.py; skipped when absent)
and runs ~150 script invocations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.environ.get("NUWA_CORPUS", "/var/tmp/nuwa-corpus")


def _need_corpus() -> None:
    if not os.path.exists(os.path.join(CORPUS, "index.json")) or not os.path.isdir(os.path.join(CORPUS, "minbase")):
        pytest.skip(f"no corpus at {CORPUS}: run tools/build_script_corpus.py (and the tool once) first")
    if not os.path.isdir(os.path.join(CORPUS, "debs")) or not os.listdir(os.path.join(CORPUS, "debs")):
        pytest.skip(f"the corpus at {CORPUS} keeps no .debs: run tools/build_script_corpus.py again")


def _host_state(*dirs: str) -> dict:
    """path -> (mode, size, mtime) of everything under ``dirs`` (symlinks not followed)."""
    out = {}
    for top in dirs:
        for d, subdirs, files in os.walk(top):
            for n in subdirs + files:
                st = os.lstat(os.path.join(d, n))
                out[os.path.join(d, n)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _run(tmp_path, *args: str) -> tuple[str, dict]:
    """Run the tool with its temporary files (the overlay's spool) under ``tmp_path/tmp``."""
    report = tmp_path / "cov.json"
    spool = tmp_path / "tmp"
    spool.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(spool), PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/script_coverage.py"), "--corpus", CORPUS,
                        "--report", str(report), *args], capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr
    assert list(spool.iterdir()) == []  # every spooled file is gone again
    return r.stdout, json.loads(report.read_text())


@pytest.mark.slow
def test_coverage_report_on_a_sample(tmp_path):
    _need_corpus()
    _run(tmp_path, "--packages", "adduser")  # builds the VM base image once (about a minute)
    watched = [os.path.join(CORPUS, d) for d in ("minbase", "debs", "control", "vm.raw")]
    before = _host_state(*watched)
    out, rep = _run(tmp_path, "--sample", "25")
    assert _host_state(*watched) == before  # the base image, the .debs and control areas were only read
    assert "unpack mode: real files" in out and "simulated with no deferral:" in out
    assert "base: vm; dependency closures unpacked:" in out
    assert rep["mode"] == "real files" and rep["base"] == "vm" and rep["dependencies"] is True
    assert rep["dependencies_unpacked"]["packages"] == 25
    assert rep["packages_without_data"] == [] and rep["members_not_placed"] == []
    recs = rep["invocation_records"]
    assert rep["invocations"] == len(recs) == sum(rep["outcomes"].values()) > 0
    assert rep["packages"] == 25
    assert sum(sum(c.values()) for c in rep["by_scenario"].values()) == len(recs)
    assert set(rep["by_scenario"]) <= {"install", "upgrade", "remove"}
    assert rep["commands_total"] == sum(rep["commands"].values()) == sum(sum(x["commands"].values()) for x in recs)
    assert rep["programs_total"] == sum(rep["programs"].values()) == sum(sum(x["programs"].values()) for x in recs)
    assert rep["programs_total"] <= rep["commands_total"]
    assert abs(rep["commands_simulated_pct"] - 100 * rep["commands"]["simulated"] / rep["commands_total"]) < 0.01
    assert sum(rep["outcomes_pct"].values()) == pytest.approx(100, abs=0.05)
    for x in recs:
        assert x["outcome"] in ("fully simulated", "partly deferred", "deferred whole", "internal error")
        if x["outcome"] == "fully simulated":
            assert not x["deferred"] and not x["commands"].get("deferred")
        if x["outcome"] == "partly deferred":
            assert len(x["deferred"]) == x["commands"]["deferred"] > 0
        if x["outcome"] == "deferred whole":
            assert x["reason"] and set(x["commands"]) <= {"deferred"}
        elif x["outcome"] != "internal error":
            assert isinstance(x.get("status"), int)
    failed = sum(1 for x in recs if x.get("status"))
    assert len(rep["failed_status"]) == failed == sum(rep["failed_by_outcome"].values())
    # every deferred command of a partly deferred script is in the top list's total (when listed)
    listed = {d["command"]: d["count"] for d in rep["top_deferred_commands"]}
    counted: dict[str, int] = {}
    for x in recs:
        for d in x["deferred"]:
            counted[d["command"]] = counted.get(d["command"], 0) + 1
    for c, k in listed.items():
        assert counted[c] == k
    # the by-program list: a partly deferred command counts once per deferral, a whole script once
    progs = rep["top_deferred_programs"]
    assert sum(p["whole_scripts"] for p in progs) <= rep["outcomes"]["deferred whole"]
    for p in progs:
        assert p["count"] == counted.get(p["program"], 0) + p["whole_scripts"] and p["reason"] and p["packages"]
    # dpkg's order within the upgrade scenario of a package with all four scripts
    order = [(x["package"], x["script"], x["argv"][0]) for x in recs if x["scenario"] == "upgrade"]
    for pkg in {p for p, _, _ in order}:
        seq = [s for p, s, _ in order if p == pkg]
        ranks = [["prerm", "preinst", "postrm", "postinst"].index(s) for s in seq]
        assert ranks == sorted(ranks), (pkg, seq)
    assert rep["outcomes"]["internal error"] == 0, rep["internal_errors"]


def _tools():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import script_coverage

    return script_coverage


def _dpkg_deb_members(deb: str) -> dict:
    """The judge: ``dpkg-deb --fsys-tarfile`` (only reads the archive) -> path -> (kind, mode,
    bytes or link target)."""
    import io
    import tarfile

    raw = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], check=True, capture_output=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        for ti in tf:
            path = "/" + ti.name.lstrip("./") if ti.name not in ("./", ".") else "/."
            if ti.isreg():
                out[path] = ("file", ti.mode & 0o7777, tf.extractfile(ti).read())
            elif ti.issym():
                out[path] = ("symlink", 0, ti.linkname)
            elif ti.isdir():
                out[path] = ("dir", ti.mode & 0o7777, None)
            elif ti.islnk():
                out[path] = ("hardlink", ti.mode & 0o7777, "/" + ti.linkname.lstrip("./"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("package", ["python3-minimal", "ca-certificates", "cracklib-runtime"])
def test_unpack_writes_the_real_members_and_placeholders_stay_empty(package):
    """The real-files unpack puts every data.tar member into the overlay as dpkg-deb reads it
    (bytes, mode, symlink target; a directory the tree already has, or reaches through merged
    /usr's symlinks, stays a directory); the placeholder mode makes the same regular files empty."""
    _need_corpus()
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.fs.overlay import Overlay

    sc = _tools()
    pkg = sc.Package(CORPUS, package)
    if not pkg.deb:
        pytest.skip(f"the corpus keeps no .deb of {package}")
    want = _dpkg_deb_members(pkg.deb)
    base = HostDirFS(os.path.join(CORPUS, "minbase"), writable=False)
    fs = Overlay(base)
    try:
        sc.unpack(fs, pkg)
        listed = fs.read_bytes(f"/var/lib/dpkg/info/{package}.list").decode().splitlines()
        assert sorted(listed) == sorted(want)
        files = 0
        for path, (kind, mode, data) in want.items():
            if kind == "file":
                st = fs.lstat(path)
                assert st.is_reg and st.st_mode & 0o7777 == mode, path
                assert fs.read_bytes(path) == data, path
                files += 1
            elif kind == "symlink" and not base.lexists(path):
                assert fs.readlink(path) == data, path
            elif kind == "dir":
                assert fs.stat(path).is_dir, path
            elif kind == "hardlink":
                assert fs.read_bytes(path) == fs.read_bytes(data), path
        assert files > 0
    finally:
        fs.discard()
    fs = Overlay(base)
    try:
        sc.unpack(fs, pkg, real=False)
        for path in pkg.paths():
            if not base.lexists(path) and want.get(path, ("",))[0] == "file":
                assert fs.lstat(path).st_size == 0, path
    finally:
        fs.discard()


@pytest.mark.slow
def test_vm_base_and_dependency_closure(tmp_path):
    """The default base is the VM disk image opened by Nuwa's image layer (a kernel, the host
    name in /etc/hosts, a disk layout for df); a package's Depends that the base lacks are
    unpacked first (postgresql-common's Perl module from postgresql-client-common); the older
    measurement (--base minbase --no-deps) still runs and defers what the VM answers."""
    _need_corpus()
    sc = _tools()
    import coverage_base as CB
    from nuwa.image import Image

    _run(tmp_path, "--packages", "adduser")  # builds the image once
    with Image.open(CB.vm_image_path(CORPUS)) as img:
        root = img.root()
        assert root.read_bytes("/etc/hostname") == b"vm\n"
        assert b"127.0.1.1\tvm\n" in root.read_bytes("/etc/hosts")
        assert any(n.startswith("vmlinuz-") for n in root.readdir("/boot"))
        status = root.read_bytes("/var/lib/dpkg/status").decode()
    base = CB.installed_names(status)
    assert {"systemd-sysv", "openssh-server", "grub-pc", "adduser"} <= base
    closure = CB.Closure(base, sc._corpus_controls(CORPUS))
    need, missing = closure.of("postgresql-common")
    assert "postgresql-client-common" in need and missing == []
    assert closure.of("adduser") == ([], [])  # everything it needs is in the base
    # dependencies come before what needs them
    for i, name in enumerate(need):
        for alts in CB.parse_relations(CB.control_fields(closure.controls[name]).get("depends", "")):
            for a in alts:
                if a in need:
                    assert need.index(a) < i or a == name
    out, rep = _run(tmp_path, "--packages", "libc6,postgresql-common")
    assert not [r for r in rep["invocation_records"] if "uname" in r.get("reason", "")]
    assert not [d for r in rep["invocation_records"] for d in r["deferred"] if "PgCommon" in d["reason"]]
    out, old = _run(tmp_path, "--packages", "libc6,postgresql-common", "--base", "minbase", "--no-deps")
    assert old["base"] == "minbase" and old["dependencies"] is False
    assert [r for r in old["invocation_records"] if "uname -r" in r.get("reason", "")]
    assert [d for r in old["invocation_records"] for d in r["deferred"] if "PgCommon" in d["reason"]]


@pytest.mark.slow
def test_lifecycle_scenarios(tmp_path):
    """By default the scenarios follow a package's life: its dependencies are installed with
    their scripts (a user a dependency's postinst makes exists), upgrade and remove start from
    the package as its install scenario left it, and remove takes the package's files away
    (conffiles and shared directories stay) before ``postrm remove``, as dpkg does. ``--fresh``
    keeps the older measurement."""
    _need_corpus()
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.fs.overlay import Overlay

    sc = _tools()
    pkg = sc.Package(CORPUS, "cracklib-runtime")
    if not pkg.deb:
        pytest.skip("the corpus keeps no .deb of cracklib-runtime")
    fs = Overlay(HostDirFS(os.path.join(CORPUS, "minbase"), writable=False))
    try:
        sc.unpack(fs, pkg)
        listed = fs.read_bytes("/var/lib/dpkg/info/cracklib-runtime.list").decode().splitlines()
        conffiles = [p for p in pkg._read("conffiles").decode().split() if p.startswith("/")]
        assert conffiles and all(fs.lexists(p) for p in conffiles)
        sc.remove_files(fs, pkg)
        gone = [p for p in listed if p != "/." and p not in conffiles and not fs.lexists(p)]
        assert "/usr/sbin/update-cracklib" in gone
        assert all(fs.lexists(p) for p in conffiles)
        assert fs.stat("/usr/sbin").is_dir  # other packages' files keep it
    finally:
        fs.discard()
    out, rep = _run(tmp_path, "--packages", "munin-node,cracklib-runtime")
    assert rep["lifecycle"] is True and sum(rep["dependency_scripts"].values()) > 0
    steps = sc.scenarios(pkg)
    assert steps["remove"] == [("run", "prerm", ["remove"]), ("remove files",), ("run", "postrm", ["remove"])]
    assert ("unpack",) not in steps["remove"] and steps["upgrade"][2] == ("unpack",)
    out, old = _run(tmp_path, "--packages", "munin-node", "--fresh")
    assert old["lifecycle"] is False and old["dependency_scripts"] == {}


def test_perl_postinst_runs_through_its_stand_in_and_emacs_remove(tmp_path):
    """krb5-config's Perl postinst starts as Perl would (debconf's frontend on it) instead of
    being refused; on the VM base (bind9-host installed) its config defers for DNS. emacs-nox's
    prerm runs emacs-remove to the end; its postinst's emacs-install defers for emacs."""
    _need_corpus()
    out, rep = _run(tmp_path, "--packages", "krb5-config,emacs-nox")
    recs = {(r["package"], r["scenario"], r["script"]): r for r in rep["invocation_records"]}
    for scenario in ("install", "upgrade"):
        r = recs[("krb5-config", scenario, "postinst")]
        assert r["outcome"] == "deferred whole" and "asks DNS" in r["reason"], r["reason"]
        assert "not a shell script" not in r["reason"]
    for scenario in ("upgrade", "remove"):
        r = recs[("emacs-nox", scenario, "prerm")]
        assert r["outcome"] == "fully simulated" and not r.get("status"), r
    r = recs[("emacs-nox", "install", "postinst")]
    assert [d["command"] for d in r["deferred"]] == ["emacs-install"] and "emacs" in r["deferred"][0]["reason"]
    assert rep["internal_errors"] == []


def test_relations_parse():
    import importlib
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    CB = importlib.import_module("coverage_base")
    assert CB.parse_relations("libc6 (>= 2.34), perl:any, a | b (<< 2) [amd64], ,") == [["libc6"], ["perl"], ["a", "b"]]
    c = CB.Closure({"libc6", "mail-transport-agent"}, {
        "x": "Package: x\nDepends: libc6, y | z, mail-transport-agent\nPre-Depends: w\n",
        "y": "Package: y\nDepends: x, nothere\n",
        "w": "Package: w\n",
        "v": "Package: v\nProvides: virt\n",
        "u": "Package: u\nDepends: virt | other\n"})
    assert c.of("x") == (["w", "y"], ["nothere"])  # Pre-Depends first; a cycle back to x stops
    assert c.of("u") == (["v"], [])  # a virtual package through Provides


@pytest.mark.slow
def test_placeholder_mode_still_reports(tmp_path):
    _need_corpus()
    out, rep = _run(tmp_path, "--placeholders", "--packages", "python3-minimal,cracklib-runtime,ca-certificates")
    assert "unpack mode: placeholders" in out and rep["mode"] == "placeholders"
    assert rep["packages"] == 3
    assert rep["invocations"] == len(rep["invocation_records"]) == sum(rep["outcomes"].values()) > 0
    assert rep["outcomes"]["internal error"] == 0


def _fake_corpus(root, packages: dict) -> None:
    """control/<pkg>/{control,.deb} for ``packages`` (name -> (version, kept .deb or None))."""
    for name, (version, deb) in packages.items():
        d = root / "control" / name
        d.mkdir(parents=True)
        (d / "control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\n")
        (d / ".deb").write_text(f"{name}_{version}_all.deb\n")
        if deb:
            (root / "debs").mkdir(exist_ok=True)
            (root / "debs" / f"{name}_{version}_all.deb").write_bytes(b"kept")


def test_fetch_data_refuses_over_the_size_limit_before_downloading(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_script_corpus as b

    _fake_corpus(tmp_path, {"a": ("1.0", None), "b": ("2.0", None), "kept": ("1", "yes")})
    index = {"a": {"Version": "1.0", "Size": "3000"}, "b": {"Version": "2.0", "Size": "2000"},
             "kept": {"Version": "1", "Size": "999999"}}
    with pytest.raises(SystemExit, match="total 0.00 GB, over the limit"):
        b.fetch_data(str(tmp_path), ["-o", "never-used"], index, max_bytes=4999)
    assert b.deb_file(str(tmp_path), "kept") and not b.deb_file(str(tmp_path), "a")


def test_fetch_data_reports_versions_the_archive_no_longer_has(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_script_corpus as b

    # nothing is downloadable at the control areas' versions: apt is never called
    _fake_corpus(tmp_path, {"old": ("1.0", None), "gone": ("3", None), "kept": ("1", "yes")})
    index = {"old": {"Version": "1.1", "Size": "10"}, "kept": {"Version": "1", "Size": "10"}}
    got = b.fetch_data(str(tmp_path), ["-o", "never-used"], index, max_bytes=10**9)
    assert got == {"fetched": 0, "bytes": 0, "missing": ["gone", "old"]}
