#!/usr/bin/env python3
"""Simulation coverage of the Debian 12 maintainer-script corpus: what runs offline, what waits.

For every package of the corpus (tools/build_script_corpus.py, ``/var/tmp/nuwa-corpus``)
that has maintainer scripts, the tool runs the invocations dpkg makes, in dpkg's order, over
a VM disk image of Debian 12 (``CORPUS/vm.raw``, opened read-only by Nuwa's image layer, its
disk layout given to the models). The scenarios follow the package's life, each layer an
overlay on the one before: its dependency closure (tools/coverage_base.py) installed as apt
installs it (each dependency's ``preinst install``, files, ``postinst configure``; those
invocations are not counted, only their outcomes summed in ``dependency_scripts``), then

- install:  ``preinst install``; (unpack); ``postinst configure ''``
- upgrade, from what install left:  ``prerm upgrade NEW``; ``preinst upgrade OLD``; (unpack);
  ``postrm upgrade NEW``; ``postinst configure OLD``  -- OLD is the corpus version, NEW that
  version ``+nuwa1`` (a security update of the installed package, Nuwa's use case)
- remove, from what install left:  ``prerm remove``; (its files removed, conffiles kept);
  ``postrm remove``

``--fresh`` is the measurement of session 6 (dependencies unpacked without their scripts;
upgrade and remove from the package's files alone); ``--base minbase --no-deps --fresh`` the
one before it, over the bare minbase tree (``CORPUS/minbase``) and the package alone.

"Unpack" writes the package's real data.tar members (directories, regular files with their
bytes, modes and owners, symlinks, hard links) into the scenario's overlay, read from the
corpus's kept .deb with Nuwa's own reader (nuwa/deb/archive.py; nothing is executed, no
dpkg-deb). It follows dpkg's ``tarobject`` where the tree already has the path: an existing
directory (or a symlink to one, merged /usr) stays for a directory or symlink member; any
other existing path is replaced. Diversions and stat overrides are not applied (the minbase
tree has no stat overrides, and only dash's diversions of ``/bin/sh`` and ``sh.1.gz``). The
control files go to ``/var/lib/dpkg/info/<package>.*`` (with the ``list`` of the members) and
a ``Status: install ok installed`` paragraph goes to ``/var/lib/dpkg/status`` (for upgrade and
remove from the start, for install after ``preinst``).
A program the package ships is therefore found *and real*: a shell script it ships is
interpreted, a binary with no model is deferred.

``--placeholders`` keeps the older, cheaper mode (the corpus's control areas only): every
file listed in ``md5sums`` and ``conffiles`` is created *empty* (executable in ``bin``/
``sbin``/``libexec`` and ``/etc/init.d``) unless the tree already has it. A package whose .deb
the corpus does not keep falls back to that mode and is counted (``packages_without_data``).

Each command invocation of the record is classified simulated, dropped or deferred; every
command of a script invocation deferred whole counts as deferred (the whole script runs at
boot; what it did offline was rolled back). Each script invocation is *fully simulated* (no
deferral; drops allowed), *partly deferred* (ran, some commands deferred) or *deferred
whole*; a crash of a model is counted apart as an internal error. Nothing runs on the host.

    python3 tools/script_coverage.py [--corpus DIR] [--sample N] [--packages a,b]
                                     [--placeholders] [--report FILE] [--json]
                                     [--base vm|minbase] [--no-deps] [--fresh]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import posixpath
import re
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import coverage_base as CB  # noqa: E402
from build_script_corpus import deb_file  # noqa: E402
from nuwa.deb import archive as A  # noqa: E402
from nuwa.deb.statoverride import read_ids  # noqa: E402
from nuwa.fs.hostdir import HostDirFS  # noqa: E402
from nuwa.fs.overlay import Overlay  # noqa: E402
from nuwa.image import Image  # noqa: E402
from nuwa.script.commands import default_models, maintainer_stand_in  # noqa: E402
from nuwa.script.context import Defer, ModelSet  # noqa: E402
from nuwa.script.disklayout import STATE_KEY, describe_image  # noqa: E402
from nuwa.script.interp import dpkg_environment, run_script  # noqa: E402

DEFAULT_CORPUS = "/var/tmp/nuwa-corpus"
SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
CONTROL_FILES = ("preinst", "postinst", "prerm", "postrm", "config", "templates", "conffiles", "md5sums",
                 "shlibs", "symbols", "triggers")
_EXEC_DIRS = {"bin", "sbin", "libexec"}
TARGET_PCT = 90.0


def ensure_corpus(corpus: str) -> None:
    """Build the corpus with tools/build_script_corpus.py when it is absent (a few minutes)."""
    if os.path.exists(os.path.join(corpus, "index.json")):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "build_script_corpus.py"), "--dest", corpus], check=True,
                   stdout=sys.stderr)


def ensure_minbase(corpus: str) -> str:
    """The minbase bookworm tree the scripts run against (mmdebstrap once, as root)."""
    root = os.path.join(corpus, "minbase")
    if os.path.isdir(os.path.join(root, "var", "lib", "dpkg")):
        return root
    from build_script_corpus import host_mirror  # tools/ is this file's directory

    subprocess.run(["mmdebstrap", "--mode=root", "--variant=minbase", "bookworm", root,
                    f"deb {host_mirror()} bookworm main"], check=True, stdout=sys.stderr)
    return root


# ---- packages --------------------------------------------------------------------------------
class Package:
    """One package's control area from the corpus."""

    def __init__(self, corpus: str, name: str):
        self.name = name
        self.dir = os.path.join(corpus, "control", name)
        self.control = self._read("control").decode("utf-8", "replace")
        fields = {}
        for line in self.control.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        self.version = fields.get("version", "0")
        self.arch = fields.get("architecture", "all")
        self.scripts = {s: self._read(s) for s in SCRIPTS if os.path.isfile(os.path.join(self.dir, s))}
        self.deb = deb_file(corpus, name)
        self._members: list | None = None
        self.skipped: list[str] = []  # members unpack_members could not place

    def members(self) -> list:
        """data.tar's members as ``(DataMember, payload)``, payload the bytes of a regular file
        (read once, kept for the package's three scenarios)."""
        if self._members is None:
            self._members = [(m, m.read() if m.type == A.REG else b"") for m in A.open_deb(self.deb).members()]
        return self._members

    def _read(self, n: str) -> bytes:
        try:
            with open(os.path.join(self.dir, n), "rb") as f:
                return f.read()
        except OSError:
            return b""

    def paths(self) -> list[str]:
        """Every regular file the package ships (md5sums), conffiles included."""
        out = []
        for line in self._read("md5sums").decode("utf-8", "surrogateescape").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                out.append("/" + parts[1].lstrip("/"))
        out += [p.strip() for p in self._read("conffiles").decode("utf-8", "surrogateescape").splitlines()
                if p.strip().startswith("/")]
        return out


def _executable(path: str) -> bool:
    parts = path.split("/")
    return bool(_EXEC_DIRS & set(parts[:-1])) or path.startswith("/etc/init.d/")


def unpack(fs, pkg: Package, real: bool = True) -> None:
    """Make the package's files and control files exist (see the module docstring): its real
    data.tar members when ``real`` and the corpus keeps its .deb, else empty placeholders."""
    listed = ["/."] + pkg.paths()
    if real and pkg.deb:
        listed = unpack_members(fs, pkg)
    else:
        unpack_placeholders(fs, pkg)
    fs.makedirs("/var/lib/dpkg/info")
    for n in CONTROL_FILES:
        data = pkg._read(n)
        if data:
            mode = 0o755 if n in SCRIPTS or n == "config" else 0o644
            fs.write_bytes(f"/var/lib/dpkg/info/{pkg.name}.{n}", data, mode)
    if len(listed) > 1:
        fs.write_bytes(f"/var/lib/dpkg/info/{pkg.name}.list",
                       "".join(p + "\n" for p in listed).encode("utf-8", "surrogateescape"))
    mark_installed(fs, pkg)


def unpack_placeholders(fs, pkg: Package) -> None:
    """Every file of ``md5sums`` and ``conffiles`` created empty unless the tree has it."""
    for p in pkg.paths():
        try:
            if fs.lexists(p):
                continue
            fs.makedirs(posixpath.dirname(p))
            fs.write_bytes(p, b"", 0o755 if _executable(p) else 0o644)
        except (OSError, ValueError):
            continue  # a path the tree cannot hold (e.g. under a file): the package would fail too


def _lstat(fs, path: str):
    try:
        return fs.lstat(path)
    except OSError:
        return None


def _is_dir(fs, path: str) -> bool:
    try:
        return fs.stat(path).is_dir
    except OSError:
        return False


def unpack_members(fs, pkg: Package) -> list[str]:
    """Write ``pkg``'s data.tar members into ``fs`` as dpkg's ``tarobject`` places them;
    return the member paths in archive order (the package's ``list``).

    Owners come from the tree's passwd/group by name (numeric ids as fallback), as dpkg does.
    A member the tree cannot take (a file where a non-empty directory is) is skipped: dpkg
    would fail the unpack, and the scripts are what is measured here.
    """
    users = read_ids(fs, "/etc/passwd")
    groups = read_ids(fs, "/etc/group")
    paths = []
    for m, data in pkg.members():
        paths.append(m.path)
        if m.path == "/.":
            continue
        uid = users.get(m.uname, m.uid) if m.uname else m.uid
        gid = groups.get(m.gname, m.gid) if m.gname else m.gid
        try:
            _place(fs, m, data, uid, gid)
        except (OSError, ValueError):
            pkg.skipped.append(m.path)  # counted in the report: the measurement says what it lacked
    return paths


def _place(fs, m, data: bytes, uid: int, gid: int) -> None:
    """One member: keep an existing directory for a directory or symlink member (dpkg's
    ``existingdir``; merged /usr's ``/bin -> usr/bin`` stays), replace anything else."""
    path = m.path
    st = _lstat(fs, path)
    if m.type in (A.DIR, A.SYMLINK) and st is not None and _is_dir(fs, path):
        if m.type == A.DIR or st.is_dir:
            return
    fs.makedirs(posixpath.dirname(path))
    if st is not None:
        if st.is_dir:
            fs.rmdir(path)  # dpkg replaces an empty directory; a non-empty one fails (skipped)
        else:
            fs.unlink(path)
    if m.type == A.DIR:
        fs.mkdir(path, 0)
    elif m.type == A.REG:
        fs.write_bytes(path, data, 0)
    elif m.type == A.HARDLINK:
        fs.link(m.linkname, path)
    elif m.type == A.SYMLINK:
        fs.symlink(m.linkname, path)
        fs.chown(path, uid, gid, follow_symlinks=False)
        return
    elif m.type == A.FIFO:
        fs.mknod(path, stat.S_IFIFO, 0)
    else:
        fs.mknod(path, A.TYPE_BITS[m.type], m.rdev)
    if m.type != A.HARDLINK:  # a hard link shares its target's inode, already set
        fs.chown(path, uid, gid)
        fs.chmod(path, m.mode)
        fs.utime(path, m.mtime * 10**9, m.mtime * 10**9)


def remove_files(fs, pkg: Package) -> None:
    """What dpkg's ``remove`` does between ``prerm remove`` and ``postrm remove``: the files of
    the package's ``list`` go, last first, except its conffiles; a directory goes only when it
    is empty (another package's files keep it)."""
    try:
        listed = fs.read_bytes(f"/var/lib/dpkg/info/{pkg.name}.list").decode("utf-8", "surrogateescape")
    except OSError:
        return
    keep = {p.strip() for p in pkg._read("conffiles").decode("utf-8", "surrogateescape").splitlines()}
    for path in reversed(listed.splitlines()):
        if not path.startswith("/") or path == "/." or path in keep:
            continue
        st = _lstat(fs, path)
        try:
            if st is None:
                continue
            if st.is_dir:
                fs.rmdir(path)
            else:
                fs.unlink(path)
        except OSError:
            continue  # a directory still in use


def mark_installed(fs, pkg: Package) -> None:
    """Add (or keep) the package's paragraph in the status file, as installed."""
    status = "/var/lib/dpkg/status"
    try:
        text = fs.read_bytes(status).decode("utf-8", "surrogateescape")
    except OSError:
        text = ""
    if f"\nPackage: {pkg.name}\n" in "\n" + text:
        return
    lines = [ln for ln in pkg.control.rstrip("\n").splitlines() if ln.strip()]
    para = [lines[0], "Status: install ok installed", *lines[1:]] if lines else []
    if para:
        fs.write_bytes(status, (text.rstrip("\n") + "\n\n" + "\n".join(para) + "\n").lstrip("\n").encode(
            "utf-8", "surrogateescape"))


def scenarios(pkg: Package, lifecycle: bool = True) -> dict[str, list]:
    """scenario -> steps: ("run", script, argv) or ("unpack",).

    ``lifecycle``: upgrade and remove start from the tree the install scenario left (the
    package installed and configured, as dpkg finds it), so their steps are dpkg's alone;
    otherwise they start from the base with the package's files unpacked and no script run."""
    old, new = pkg.version, pkg.version + "+nuwa1"
    if lifecycle:
        return {
            "install": INSTALL_STEPS,
            "upgrade": [("run", "prerm", ["upgrade", new]), ("run", "preinst", ["upgrade", old]), ("unpack",),
                        ("run", "postrm", ["upgrade", new]), ("run", "postinst", ["configure", old])],
            "remove": [("run", "prerm", ["remove"]), ("remove files",), ("run", "postrm", ["remove"])],
        }
    return {
        "install": INSTALL_STEPS,
        "upgrade": [("unpack",), ("run", "prerm", ["upgrade", new]), ("run", "preinst", ["upgrade", old]),
                    ("run", "postrm", ["upgrade", new]), ("run", "postinst", ["configure", old])],
        "remove": [("unpack",), ("run", "prerm", ["remove"]), ("run", "postrm", ["remove"])],
    }


#: a fresh installation, as dpkg makes it: the new package's preinst, its files, its postinst
INSTALL_STEPS = [("run", "preinst", ["install"]), ("unpack",), ("run", "postinst", ["configure", ""])]


def _interp(data: bytes) -> str:
    first = data.split(b"\n", 1)[0]
    if not first.startswith(b"#!"):
        return "sh"
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return "sh"
    prog = posixpath.basename(words[0])
    if prog == "env" and len(words) > 1:
        prog = posixpath.basename(words[1])
    return prog


CIDIR = "/var/lib/dpkg/tmp.ci"


def _control_area(fs, pkg: Package) -> str:
    """The control area where dpkg's ``process_archive`` puts it (nuwa/deb/unpack.py does the
    same): a new package's preinst runs as ``tmp.ci/preinst``, beside its config and templates."""
    _remove_tree(fs, CIDIR)
    fs.makedirs(CIDIR)
    for n in CONTROL_FILES + ("control",):
        data = pkg._read(n)
        if data:
            fs.write_bytes(f"{CIDIR}/{n}", data, 0o755 if n in SCRIPTS or n == "config" else 0o644)
    return CIDIR


def _remove_tree(fs, path: str) -> None:
    try:
        st = fs.lstat(path)
    except OSError:
        return
    if st.is_dir:
        for n in fs.readdir(path):
            _remove_tree(fs, f"{path}/{n}")
        fs.rmdir(path)
    else:
        fs.unlink(path)


# ---- measuring -------------------------------------------------------------------------------
def run_invocation(fs, pkg: Package, script: str, argv: list[str], budget: int, models: ModelSet,
                   state: dict | None = None) -> dict:
    """Run one script invocation on ``fs`` with ``models``; return its classification record.
    ``state``: the model state to start from (the disk layout of the VM base)."""
    data = pkg.scripts[script]
    rec = {"package": pkg.name, "script": script, "argv": argv, "outcome": "", "commands": {}, "programs": {},
           "deferred": [],
           "dropped": [], "reason": "", "seconds": 0.0}
    shell = _interp(data)
    name = f"/var/lib/dpkg/info/{pkg.name}.{script}"
    env = dpkg_environment(script, pkg.name, pkg.arch if pkg.arch != "all" else "all")
    text = data.decode("utf-8", "surrogateescape")
    if shell not in ("sh", "dash", "bash"):
        # a recognised Perl maintainer script starts as its model does (krb5-config's postinst:
        # Debconf::Client::ConfModule execs debconf's frontend on it); any other is not run
        try:
            stand_in = maintainer_stand_in(data, env) if shell == "perl" else None
        except Defer as d:
            stand_in, shell = None, f"perl: {d.reason}"
        if stand_in is None:
            rec.update(outcome="deferred whole", reason=f"not a shell script ({shell})", commands={"deferred": 0},
                       programs={"deferred": 0})
            return rec
        text, shell = stand_in, "sh"
    sp = fs.savepoint()
    if script == "preinst":  # the new package's preinst runs from dpkg's control area
        name = _control_area(fs, pkg) + "/preinst"
    t0 = time.perf_counter()
    try:
        r = run_script(fs, text, argv, env=env, name=name, budget=budget,
                       bash=shell == "bash", models=models, is_path=False, model_state=dict(state or {}))
    except Exception as e:  # a bug in a model or the shell: count it apart, keep measuring
        fs.rollback_to(sp)
        rec.update(outcome="internal error", reason=f"{type(e).__name__}: {e}"[:300], seconds=time.perf_counter() - t0)
        return rec
    if script == "preinst" and not r.deferred_whole:
        _remove_tree(fs, CIDIR)
    rec["seconds"] = time.perf_counter() - t0
    counts = {k: v for k, v in r.record.counts.items() if v}
    # programs: the record's entries that are not shell builtins or functions
    programs = collections.Counter(e.classification for e in r.record.entries if e.kind not in ("builtin", "function"))
    if r.deferred_whole:
        fs.rollback_to(sp)
        rec.update(outcome="deferred whole", reason=r.reason, commands={"deferred": sum(counts.values())},
                   programs={"deferred": sum(programs.values())})
        return rec
    rec["programs"] = dict(programs)
    # a script that ran and failed is no success even with nothing deferred: dpkg would stop
    rec["status"] = r.status
    if r.status:
        rec["stderr"] = r.stderr[-300:].decode("utf-8", "replace")
    fs.release(sp)
    rec["commands"] = counts
    rec["deferred"] = [{"command": posixpath.basename(d.argv[0]) if d.argv else "", "argv": d.argv[:6],
                        "reason": d.reason, "line": d.line} for d in r.deferred_commands]
    rec["dropped"] = [{"command": posixpath.basename(e.argv[0]) if e.argv else "", "reason": e.reason}
                      for e in r.record.entries if e.classification == "dropped"]
    rec["outcome"] = "partly deferred" if counts.get("deferred") else "fully simulated"
    return rec


def measure(corpus: str, packages: list[str], budget: int = 200_000, progress=None, real: bool = True,
            base_kind: str = "vm", deps: bool = True, lifecycle: bool = True) -> dict:
    """Run every scenario of ``packages`` with every command model; return the report (see
    :func:`summarize`). ``real``: unpack the packages' real files, else placeholders.
    ``base_kind``: "vm" (the VM disk image) or "minbase" (the bare tree); ``deps``: unpack each
    package's dependency closure first (tools/coverage_base.py)."""
    image = None
    state: dict = {}
    if base_kind == "vm":
        from build_script_corpus import host_mirror  # tools/ is this file's directory

        image = Image.open(CB.ensure_vm_image(corpus, host_mirror()))
        base = image.root()
        state = {STATE_KEY: describe_image(image)}
    else:
        base = HostDirFS(ensure_minbase(corpus), writable=False)
    try:
        rep = _measure(corpus, packages, budget, progress, real, base, state, deps, lifecycle)
    finally:
        if image is not None:
            image.close()
    rep["base"] = base_kind
    rep["dependencies"] = deps
    return rep


def _corpus_controls(corpus: str) -> dict[str, str]:
    out = {}
    root = os.path.join(corpus, "control")
    for name in sorted(os.listdir(root)):
        try:
            with open(os.path.join(root, name, "control"), encoding="utf-8", errors="replace") as f:
                out[name] = f.read()
        except OSError:
            continue
    return out


class _DepCache:
    """Dependency packages' data, kept while they fit (a closure repeats across packages)."""

    LIMIT = 300 << 20

    def __init__(self, corpus: str):
        self.corpus = corpus
        self.pkgs: dict[str, Package] = {}
        self.size = 0

    def get(self, name: str) -> Package:
        pkg = self.pkgs.pop(name, None)
        if pkg is None:
            pkg = Package(self.corpus, name)
        self.pkgs[name] = pkg  # most recently used last
        return pkg

    def trim(self) -> None:
        sizes = {n: sum(len(d) for _, d in p._members or ()) for n, p in self.pkgs.items()}
        total = sum(sizes.values())
        for n in list(self.pkgs):
            if total <= self.LIMIT:
                break
            total -= sizes[n]
            self.pkgs[n]._members = None


def _steps(fs, pkg: Package, steps: list, real: bool, budget: int, models: ModelSet, state: dict):
    """Carry out ``steps`` of ``pkg`` on ``fs``; yields each script invocation's record."""
    for step in steps:
        if step[0] == "unpack":
            unpack(fs, pkg, real)
        elif step[0] == "remove files":
            remove_files(fs, pkg)
        elif step[1] in pkg.scripts:
            yield run_invocation(fs, pkg, step[1], step[2], budget, models, state)


def _measure(corpus, packages, budget, progress, real, base, state, deps, lifecycle) -> dict:
    models = default_models()
    dep_outcomes: collections.Counter = collections.Counter()
    invocations = []
    without_data = []
    skipped = []
    closure = None
    dep_cache = _DepCache(corpus)
    dep_counts = []
    dep_missing: dict[str, list[str]] = {}
    if deps:
        try:
            status = base.read_bytes("/var/lib/dpkg/status").decode("utf-8", "surrogateescape")
        except OSError:
            status = ""
        closure = CB.Closure(CB.installed_names(status), _corpus_controls(corpus))
    for i, name in enumerate(packages):
        pkg = Package(corpus, name)
        if not pkg.scripts:
            continue
        if real and not pkg.deb:
            without_data.append(name)
        need, missing = closure.of(name) if closure else ([], [])
        if missing:
            dep_missing[name] = missing
        dep_counts.append(len(need))
        layers = [Overlay(base)]  # the dependencies, then (lifecycle) the package installed
        try:
            for d in need:
                dep = dep_cache.get(d)
                if lifecycle:  # installed as apt installs it: preinst, files, postinst
                    for rec in _steps(layers[0], dep, INSTALL_STEPS, real, budget, models, state):
                        dep_outcomes[rec["outcome"] if not rec.get("status") else "failed"] += 1
                else:
                    unpack(layers[0], dep, real)
            for scen, steps in scenarios(pkg, lifecycle).items():
                if not lifecycle or scen == "install":
                    fs = Overlay(layers[0])
                    layers.append(fs)
                else:
                    fs = Overlay(layers[1])
                for rec in _steps(fs, pkg, steps, real, budget, models, state):
                    rec["scenario"] = scen
                    invocations.append(rec)
                if fs is not layers[1] or not lifecycle:
                    fs.discard()
        finally:
            for layer in reversed(layers):
                layer.discard()
        dep_cache.trim()
        skipped += [f"{name} {p}" for p in pkg.skipped]
        pkg._members = None  # the next package's data replaces this one's in memory
        if progress:
            progress(i + 1, len(packages), name)
    rep = summarize(invocations)
    rep["mode"] = "real files" if real else "placeholders"
    rep["packages_without_data"] = without_data
    rep["members_not_placed"] = skipped
    rep["dependencies_unpacked"] = {"packages": len(dep_counts), "total": sum(dep_counts),
                                    "max": max(dep_counts, default=0)}
    rep["dependencies_missing"] = dep_missing
    rep["dependency_scripts"] = dict(dep_outcomes)
    rep["lifecycle"] = lifecycle
    return rep


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 2) if b else 0.0


def summarize(invocations: list[dict]) -> dict:
    """Totals, percentages, the top deferred commands and reasons, and every invocation."""
    cmd = collections.Counter()
    prog = collections.Counter()
    outcome = collections.Counter()
    by_scenario: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    deferred_cmd = collections.Counter()
    deferred_reason: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    whole_reason = collections.Counter()
    dropped_cmd = collections.Counter()
    for rec in invocations:
        outcome[rec["outcome"]] += 1
        by_scenario[rec["scenario"]][rec["outcome"]] += 1
        for k, v in rec["commands"].items():
            cmd[k] += v
        for k, v in rec["programs"].items():
            prog[k] += v
        for d in rec["deferred"]:
            deferred_cmd[d["command"]] += 1
            deferred_reason[d["command"]][d["reason"][:120]] += 1
        for d in rec["dropped"]:
            dropped_cmd[d["command"]] += 1
        if rec["outcome"] == "deferred whole":
            r = rec["reason"]
            r = r.split(": ", 1)[1] if r.startswith("line ") and ": " in r else r
            whole_reason[r.split(" (")[0][:120]] += 1
    total_cmd = sum(cmd.values())
    n = len(invocations)
    return {
        "invocations": n,
        "packages": len({r["package"] for r in invocations}),
        "scripts": len({(r["package"], r["script"]) for r in invocations}),
        "outcomes": {k: outcome.get(k, 0) for k in ("fully simulated", "partly deferred", "deferred whole",
                                                     "internal error")},
        "outcomes_pct": {k: _pct(outcome.get(k, 0), n) for k in ("fully simulated", "partly deferred",
                                                                 "deferred whole", "internal error")},
        "by_scenario": {s: dict(c) for s, c in sorted(by_scenario.items())},
        "commands": {k: cmd.get(k, 0) for k in ("simulated", "dropped", "deferred")},
        "commands_total": total_cmd,
        "commands_simulated_pct": _pct(cmd.get("simulated", 0), total_cmd),
        "commands_offline_pct": _pct(cmd.get("simulated", 0) + cmd.get("dropped", 0), total_cmd),
        "programs": {k: prog.get(k, 0) for k in ("simulated", "dropped", "deferred")},
        "programs_total": sum(prog.values()),
        "programs_simulated_pct": _pct(prog.get("simulated", 0), sum(prog.values())),
        "target_pct": TARGET_PCT,
        "top_deferred_commands": [
            {"command": c, "count": k, "reasons": [{"reason": r, "count": m} for r, m in deferred_reason[c].most_common(3)]}
            for c, k in deferred_cmd.most_common(20)],
        "top_whole_script_reasons": [{"reason": r, "count": k} for r, k in whole_reason.most_common(20)],
        "top_dropped_commands": [{"command": c, "count": k} for c, k in dropped_cmd.most_common(10)],
        "top_deferred_programs": deferred_programs(invocations)[:30],
        "internal_errors": [f"{r['package']} {r['script']} {' '.join(r['argv'])}: {r['reason']}"
                            for r in invocations if r["outcome"] == "internal error"][:50],
        "failed_by_outcome": dict(collections.Counter(r["outcome"] for r in invocations if r.get("status"))),
        "failed_status": [f"{r['package']} {r['scenario']} {r['script']} {' '.join(r['argv'])}: exit {r['status']}: "
                          f"{(r.get('stderr', '').strip().splitlines() or [''])[-1][:160]}"
                          for r in invocations if r.get("status")],
        "seconds": round(sum(r["seconds"] for r in invocations), 2),
        "invocation_records": invocations,
    }


def _whole_program(reason: str) -> tuple[str, str]:
    """(program, why it was deferred) behind a whole-script deferral's reason."""
    m = re.search(r"deferred `([^`]+)`", reason)
    if m:
        why = re.search(r" \(([^()]*(?:\([^()]*\)[^()]*)*)\)$", reason)
        return posixpath.basename(m.group(1)), why.group(1) if why else reason.split(": ", 1)[-1]
    if reason.startswith("not a shell script"):
        return "(maintainer script not in sh)", reason
    m = re.match(r"debconf's frontend runs (\S+): (.*)", reason, re.S)
    if m and "not a shell script" not in m.group(2):
        # a Perl script the frontend runs as its model, deferred for its own reason
        return posixpath.basename(m.group(1)), m.group(2).split(": ", 1)[-1]
    if reason.startswith("debconf's frontend"):
        return "(debconf config script not in sh)", reason.split(": ", 1)[-1]
    return "(other)", reason


def deferred_programs(invocations: list[dict]) -> list[dict]:
    """What is left to model, by program: each deferred command of a partly deferred script
    and each program whose deferral deferred a whole script counts once, with the packages
    and the most common reason; most frequent first."""
    count = collections.Counter()
    whole = collections.Counter()
    reasons: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    packages: dict[str, set] = collections.defaultdict(set)
    for rec in invocations:
        if rec["outcome"] == "deferred whole":
            prog, why = _whole_program(rec["reason"])
            count[prog] += 1
            whole[prog] += 1
            reasons[prog][why[:160]] += 1
            packages[prog].add(rec["package"])
        for d in rec["deferred"]:
            count[d["command"]] += 1
            reasons[d["command"]][d["reason"][:160]] += 1
            packages[d["command"]].add(rec["package"])
    return [{"program": p, "count": k, "whole_scripts": whole[p], "packages": sorted(packages[p]),
             "reason": reasons[p].most_common(1)[0][0]} for p, k in count.most_common()]


def select(corpus: str, sample: int, names: list[str] | None) -> list[str]:
    """The packages with maintainer scripts, in name order (every ``sample``-th one if set)."""
    with open(os.path.join(corpus, "index.json")) as f:
        have = sorted({e["package"] for e in json.load(f)})
    if names:
        missing = [n for n in names if n not in have]
        if missing:
            raise SystemExit(f"script_coverage: not in the corpus (or without scripts): {', '.join(missing)}")
        return names
    if sample:
        step = max(1, len(have) // sample)
        return have[::step][:sample]
    return have


def print_report(rep: dict) -> None:
    """The human summary."""
    n = rep["invocations"]
    print(f"unpack mode: {rep['mode']}" + (f" ({len(rep['packages_without_data'])} packages without a kept .deb, "
                                            f"placeholders for them)" if rep["packages_without_data"] else "")
          + (f"; {len(rep['members_not_placed'])} data members could not be placed" if rep.get("members_not_placed")
             else ""))
    print(f"base: {rep.get('base', 'minbase')}" + (
        f"; dependency closures unpacked: {rep['dependencies_unpacked']['total']} packages for "
        f"{rep['dependencies_unpacked']['packages']} (at most {rep['dependencies_unpacked']['max']}), "
        f"{len(rep['dependencies_missing'])} with a dependency neither base nor corpus has"
        if rep.get("dependencies") else "; dependencies not unpacked"))
    print(f"packages: {rep['packages']}, scripts: {rep['scripts']}, script invocations: {n}")
    print("invocations: " + ", ".join(f"{k} {v} ({rep['outcomes_pct'][k]}%)" for k, v in rep["outcomes"].items()))
    for s, c in rep["by_scenario"].items():
        print(f"  {s:8s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    c = rep["commands"]
    print(f"command invocations: {rep['commands_total']}: simulated {c['simulated']}, dropped {c['dropped']}, "
          f"deferred {c['deferred']} (deferred-whole scripts' commands included)")
    print(f"simulated with no deferral: {rep['commands_simulated_pct']}% (target {TARGET_PCT}%); "
          f"handled offline (simulated + dropped): {rep['commands_offline_pct']}%")
    p = rep["programs"]
    print(f"of which programs (not builtins or functions): {rep['programs_total']}: simulated {p['simulated']}, "
          f"dropped {p['dropped']}, deferred {p['deferred']} -> {rep['programs_simulated_pct']}% simulated")
    print("top deferred commands:")
    for d in rep["top_deferred_commands"]:
        print(f"  {d['count']:6d}  {d['command']}: " + "; ".join(f"{r['reason']} ({r['count']})" for r in d["reasons"]))
    print("top reasons for deferring a whole script:")
    for d in rep["top_whole_script_reasons"]:
        print(f"  {d['count']:6d}  {d['reason']}")
    print("left to model, by program (count; of which whole scripts; packages; reason):")
    for d in rep["top_deferred_programs"][:25]:
        print(f"  {d['count']:6d}  {d['program']} ({d['whole_scripts']} whole; {', '.join(d['packages'][:3])}"
              f"{', ...' if len(d['packages']) > 3 else ''}): {d['reason']}")
    if rep["top_dropped_commands"]:
        print("dropped: " + ", ".join(f"{d['command']} {d['count']}" for d in rep["top_dropped_commands"]))
    if rep["failed_status"]:
        print(f"ran to a non-zero exit status (counted by deferral above; dpkg would stop): {len(rep['failed_status'])} ("
              + ", ".join(f"{k} {v}" for k, v in sorted(rep["failed_by_outcome"].items())) + ")")
        for e in rep["failed_status"][:10]:
            print("  " + e)
    for e in rep["internal_errors"][:20]:
        print("  INTERNAL " + e)
    print(f"interpreter time: {rep['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: measure, print, write the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--sample", type=int, default=0, help="only N packages, evenly spread over the corpus")
    ap.add_argument("--packages", default="", help="comma-separated package names")
    ap.add_argument("--report", default=None, help="JSON report file (default CORPUS/coverage.json)")
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--placeholders", action="store_true",
                    help="empty placeholders for the packages' files instead of their real data (the older mode)")
    ap.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")
    ap.add_argument("--base", choices=("vm", "minbase"), default="vm",
                    help="what the scripts meet: the VM disk image (default) or the bare minbase tree")
    ap.add_argument("--no-deps", action="store_true",
                    help="do not unpack each package's dependency closure first (the older measurement)")
    ap.add_argument("--fresh", action="store_true",
                    help="no scripts of the dependencies, and upgrade/remove from the package's files alone "
                         "instead of from its installation (the older measurement)")
    args = ap.parse_args(argv)
    ensure_corpus(args.corpus)
    names = select(args.corpus, args.sample, [n for n in args.packages.split(",") if n] or None)
    rep = measure(args.corpus, names, args.budget, real=not args.placeholders, base_kind=args.base,
                  deps=not args.no_deps, lifecycle=not args.fresh)
    path = args.report or os.path.join(args.corpus, "coverage.json")
    with open(path, "w") as f:
        json.dump(rep, f, indent=1)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print_report(rep)
        print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
