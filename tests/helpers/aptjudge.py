"""Real apt as the judge of Nuwa's candidate policy (nuwa.apt.candidates, nuwa.apt.security).

Two worlds, both read by the real apt and by Nuwa from the same files:

- :func:`judge_chroot`: a copy of the cached bookworm server tree (tests/debian_tree.py, main
  only, so updates exist) whose ``sources.list`` names bookworm, bookworm-updates and
  bookworm-security on the machine's own mirrors (tools/host_mirrors.py), after
  ``apt-get update`` run by the tree's own apt in a chroot. Cached per day under
  ``/var/tmp/nuwa-trees``; tests only read it and run read-only apt queries in it.
- :func:`host_apt`: the host's apt (the same 2.6 as bookworm's) pointed by ``-o Dir::...``
  options at a constructed status file, preferences and ``[trusted=yes]`` ``file:``
  repositories made from .debs by :func:`make_repo` (nothing of the host's apt state is read or
  changed).

The Nuwa side reads the same ``*_Packages`` and ``*Release`` files with python-debian into
:class:`nuwa.apt.records.PackageRecord` / :class:`ReleaseInfo` (:func:`records_from_lists`).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import os
import re
import shutil
import subprocess

import pytest
from debian import deb822

from debian_tree import CACHE, bookworm_tree, debian_mirror
from helpers.debtools import build_deb
from judges import tool
from nuwa.apt.records import PackageRecord, ReleaseInfo

#: the cached server tree of tests/debian_tree.py (also used by other tests: no new build)
SERVER_PACKAGES = ("cron", "openssh-server", "rsyslog", "systemd", "systemd-sysv")
LC = {**os.environ, "LC_ALL": "C", "LANG": "C", "DEBIAN_FRONTEND": "noninteractive"}


# ---- the real Debian world ---------------------------------------------------------------------
def _security_mirror() -> str:
    import host_mirrors  # on sys.path through debian_tree
    return host_mirrors.mirrors()[1]


def judge_chroot() -> str:
    """The updated chroot (built once per day): bookworm, bookworm-updates, bookworm-security."""
    tree = bookworm_tree(SERVER_PACKAGES)
    main, sec = debian_mirror(), _security_mirror()
    path = os.path.join(CACHE, "apt-judge-bookworm-" + datetime.date.today().isoformat())
    with open(path + ".lock", "w") as lock:  # its own lock: bookworm_tree holds the tree's
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(path, ".complete")):
            return path
        tmp = path + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["cp", "-a", tree, tmp], check=True)
        with open(os.path.join(tmp, "etc/apt/sources.list"), "w") as f:
            f.write(f"deb {main} bookworm main\ndeb {main} bookworm-updates main\n"
                    f"deb {sec} bookworm-security main\n")
        if os.path.exists("/etc/resolv.conf"):  # name resolution for the chroot's apt
            os.unlink(os.path.join(tmp, "etc/resolv.conf")) if os.path.lexists(
                os.path.join(tmp, "etc/resolv.conf")) else None
            shutil.copy("/etc/resolv.conf", os.path.join(tmp, "etc/resolv.conf"))
        r = subprocess.run([tool("chroot"), tmp, "apt-get", "-q", "-o", "Acquire::Languages=none", "update"],
                           capture_output=True, text=True, env=LC)
        if r.returncode != 0 or "W: " in r.stderr or "E: " in r.stderr:
            msg = f"apt-get update in the judge chroot failed (exit {r.returncode}): {r.stderr.strip()[-400:]}"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        open(os.path.join(tmp, ".complete"), "w").close()
        os.rename(tmp, path)
    return path


def chroot_apt(root: str, *args: str) -> str:
    """stdout of a read-only apt command (``apt``, ``apt-get -s``, ``apt-cache``) in the chroot."""
    r = subprocess.run([tool("chroot"), root, *args], capture_output=True, text=True, env=LC)
    assert r.returncode == 0, f"{' '.join(args)} in {root}: exit {r.returncode}\n{r.stderr[-800:]}"
    return r.stdout


# ---- apt's list files --------------------------------------------------------------------------
def _quote(part: str) -> str:
    """apt's ``QuoteString(part, "\\|{}[]<>\"^~_=!@#$%^&*")``: those bytes, controls, space and
    non-ASCII as lower-case ``%xx``."""
    bad = set('\\|{}[]<>"^~_=!@#$%^&*')
    return "".join(f"%{b:02x}" if (chr(b) in bad or b <= 0x20 or b >= 0x7F) else chr(b)
                   for b in part.encode())


def list_prefix(uri: str, suite: str) -> str:
    """The file-name prefix apt's ``URItoFileName`` gives ``URI/dists/SUITE/`` in lists/:
    scheme and credentials dropped, quoted, '/' -> '_'."""
    rest = uri.split("://", 1)[1] if "://" in uri else uri.split(":", 1)[1]
    host, slash, path = rest.partition("/")
    rest = host.rsplit("@", 1)[-1] + slash + path
    return _quote(rest.rstrip("/") + "/dists/" + suite + "/").replace("/", "_")


def release_info(release_text: str, uri: str, suite: str, component: str) -> ReleaseInfo:
    """A ReleaseInfo from a Release/InRelease text (python-debian strips the signature)."""
    rel = deb822.Release(release_text)
    return ReleaseInfo(uri=uri, suite=suite, component=component, origin=rel.get("Origin", ""),
                       label=rel.get("Label", ""), archive=rel.get("Suite", ""),
                       codename=rel.get("Codename", ""), version=rel.get("Version", ""),
                       not_automatic=rel.get("NotAutomatic", "").lower() == "yes",
                       but_automatic_upgrades=rel.get("ButAutomaticUpgrades", "").lower() == "yes")


def parse_packages(path: str, info: ReleaseInfo) -> list[PackageRecord]:
    """Every stanza of a Packages file as a PackageRecord (python-debian's parser)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for p in deb822.Packages.iter_paragraphs(f, use_apt_pkg=False):
            out.append(PackageRecord(
                package=p["Package"], version=p["Version"], architecture=p["Architecture"], release=info,
                multi_arch=p.get("Multi-Arch", ""), essential=p.get("Essential", "") == "yes",
                priority=p.get("Priority", ""), section=p.get("Section", ""), source=p.get("Source", ""),
                depends=p.get("Depends", ""), pre_depends=p.get("Pre-Depends", ""), provides=p.get("Provides", ""),
                conflicts=p.get("Conflicts", ""), breaks=p.get("Breaks", ""), replaces=p.get("Replaces", ""),
                installed_size=int(p.get("Installed-Size", "0") or 0),
                filename=p.get("Filename", ""), size=int(p.get("Size", "0") or 0), sha256=p.get("SHA256", "")))
    return out


def records_from_lists(lists_dir: str, sources: list[tuple[str, str, str]], archs: tuple[str, ...]) -> list[PackageRecord]:
    """Records of every ``(uri, suite, component)`` source from apt's own lists directory."""
    out = []
    for uri, suite, comp in sources:
        prefix = os.path.join(lists_dir, list_prefix(uri, suite))
        rel = next((prefix + n for n in ("InRelease", "Release") if os.path.exists(prefix + n)), None)
        assert rel, f"no Release file for {uri} {suite} in {lists_dir}"
        with open(rel, encoding="utf-8") as f:
            info = release_info(f.read(), uri, suite, comp)
        for arch in archs:
            pk = f"{prefix}{comp}_binary-{arch}_Packages"
            assert os.path.exists(pk), f"apt has no {pk}"
            out += parse_packages(pk, info)
    return out


# ---- apt's output ------------------------------------------------------------------------------
_LIST_RE = re.compile(r"^(\S+?)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$")


def parse_apt_list(text: str) -> dict[tuple[str, str], tuple[str, str, frozenset[str]]]:
    """``apt list --upgradable``: (name, arch) -> (candidate, installed, archives)."""
    out = {}
    for line in text.splitlines():
        m = _LIST_RE.match(line.strip())
        if m:
            name, archives, ver, arch, old = m.groups()
            name = name.split(":", 1)[0]
            out[(name, arch)] = (ver, old, frozenset(archives.split(",")))
    return out


def parse_simulation(text: str) -> tuple[dict[tuple[str, str], str], set[str]]:
    """``apt-get -s upgrade``: ({(name, arch): new version} of the Inst lines, kept-back names)."""
    inst = {}
    for m in re.finditer(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) .*?\[(\S+)\]\)", text, re.M):
        inst[(m.group(1).split(":", 1)[0], m.group(4))] = m.group(3)
    kept: set[str] = set()
    m = re.search(r"The following packages have been kept back:\n((?:  .*\n)+)", text)
    if m:
        kept = {w.split(":", 1)[0] for w in m.group(1).split()}
    return inst, kept


def parse_policy(text: str) -> dict[str, dict]:
    """``apt-cache policy PKG...``: name (``name:arch`` as apt prints it) -> {"installed",
    "candidate", "table": [(version, priority, [(file priority, file description)])]}."""
    out: dict[str, dict] = {}
    cur = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            cur = out[line[:-1]] = {"installed": None, "candidate": None, "table": []}
        elif cur is None:
            continue
        elif line.strip().startswith("Installed:"):
            v = line.split(":", 1)[1].strip()
            cur["installed"] = None if v == "(none)" else v
        elif line.strip().startswith("Candidate:"):
            v = line.split(":", 1)[1].strip()
            cur["candidate"] = None if v == "(none)" else v
        elif re.match(r"^ (\*\*\*| {3}) \S+ -?\d+$", line):
            ver, prio = line[5:].split()
            cur["table"].append((ver, int(prio), []))
        elif re.match(r"^ {8}\s*-?\d+ ", line) and cur["table"]:
            prio, desc = line.split(None, 1)
            cur["table"][-1][2].append((int(prio), desc.strip()))
    return out


def parse_policy_files(text: str) -> dict[str, dict[str, str]]:
    """``apt-cache policy`` (no argument): file description -> its ``release`` keys
    (v, o, a, n, l, c, b) and ``priority``."""
    out: dict[str, dict[str, str]] = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^ *(-?\d+) (.+ Packages)$", line)
        if m:
            cur = out[m.group(2)] = {"priority": m.group(1)}
            continue
        m = re.match(r"^ +release (.*)$", line)
        if m and cur is not None:
            for tok in re.split(r",(?=[a-z]=)", m.group(1)):
                k, _, v = tok.partition("=")
                cur[k] = v
    return out


# ---- constructed repositories judged by the host's apt ---------------------------------------------
def make_repo(root: str, suite: str, packages: list[tuple], release: dict[str, str],
              archs: tuple[str, ...] = ("amd64",), component: str = "main") -> str:
    """A ``file:`` repository suite at ``root`` made from real .debs (build_deb).

    ``packages``: ``(name, version, arch)`` or ``(name, version, arch, extra_control)``;
    ``Architecture: all`` ones go into every architecture's index, as Debian's do. The Release
    has the given fields plus SHA256 lines for the indexes (no signature: the judge uses
    ``[trusted=yes]``). Returns the ``file:`` URI.
    """
    pool = os.path.join(root, "pool", suite)
    os.makedirs(pool, exist_ok=True)
    stanzas: dict[str, list[str]] = {a: [] for a in archs}
    for spec in packages:
        name, version, arch = spec[:3]
        extra = spec[3] if len(spec) > 3 else ""
        deb = build_deb(pool, name, version, {f"/usr/share/doc/{name}/v": version.encode()}, extra=extra, arch=arch)
        shutil.rmtree(os.path.join(pool, f"stage-{name}-{version}"), ignore_errors=True)
        control = subprocess.run(["dpkg-deb", "--field", deb], capture_output=True, text=True, check=True).stdout
        with open(deb, "rb") as f:
            data = f.read()
        stanza = (control.rstrip("\n") + f"\nFilename: {os.path.relpath(deb, root)}\nSize: {len(data)}\n"
                  f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
        for a in archs:
            if arch in (a, "all"):
                stanzas[a].append(stanza)
    sums = []
    for a in archs:
        rel = f"{component}/binary-{a}/Packages"
        p = os.path.join(root, "dists", suite, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        body = "\n".join(stanzas[a]).encode()
        with open(p, "wb") as f:
            f.write(body)
        sums.append(f" {hashlib.sha256(body).hexdigest()} {len(body)} {rel}")
    fields = {"Suite": suite, "Codename": suite, **release, "Architectures": " ".join(archs),
              "Components": component, "Date": "Sat, 05 Dec 2026 00:00:00 UTC"}
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()) + "SHA256:\n" + "\n".join(sums) + "\n"
    with open(os.path.join(root, "dists", suite, "Release"), "w") as f:
        f.write(text)
    return "file:" + root


def host_apt(work: str, sources: list[str], status: str, preferences: str = "",
             archs: tuple[str, ...] = ("amd64",), options: tuple[str, ...] = ()):
    """A runner of the host's apt confined to ``work`` (sources, lists, cache, status,
    preferences; ``options``: more ``-o`` settings); ``apt-get update`` already run. Returns
    ``run(*args, stderr=False, check=True) -> stdout`` (plus stderr)."""
    apt_get = tool("apt-get")
    for d in ("lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d", "dpkg"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    with open(os.path.join(work, "sources.list"), "w") as f:
        f.write("".join(f"deb [trusted=yes] {s}\n" for s in sources))
    with open(os.path.join(work, "dpkg/status"), "w") as f:
        f.write(status)
    with open(os.path.join(work, "preferences"), "w") as f:
        f.write(preferences)
    opts = [
        "-o", "Dir::Etc::SourceList=" + os.path.join(work, "sources.list"),
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", "Dir::Etc::Preferences=" + os.path.join(work, "preferences"),
        "-o", "Dir::Etc::PreferencesParts=" + os.path.join(work, "etc/preferences.d"),
        "-o", "Dir::Etc::Parts=" + os.path.join(work, "etc/apt.conf.d"),
        "-o", "Dir::State::Lists=" + os.path.join(work, "lists"),
        "-o", "Dir::State::status=" + os.path.join(work, "dpkg/status"),
        "-o", "Dir::State::extended_states=" + os.path.join(work, "extended_states"),
        "-o", "Dir::Cache=" + os.path.join(work, "cache"),
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Architecture=" + archs[0],
        "-o", "APT::Architectures=" + ",".join(archs),
        "-o", "Acquire::Languages=none",
        "-o", "Acquire::GzipIndexes=false",  # the lists plain, whatever the host's apt.conf.d says
    ]
    for o in options:
        opts += ["-o", o]

    def run(*args: str, stderr: bool = False, check: bool = True) -> str:
        prog = {"apt-get": apt_get, "apt-cache": tool("apt-cache"), "apt": tool("apt"),
                "apt-mark": tool("apt-mark")}[args[0]]
        r = subprocess.run([prog, *opts, *args[1:]], capture_output=True, text=True, env=LC)
        if check:  # check=False: a refusal (exit 100, "E: ...") is what the caller compares
            assert r.returncode == 0, f"{' '.join(args)}: exit {r.returncode}\n{r.stderr[-800:]}"
            assert "E: " not in r.stderr, r.stderr
        return r.stdout + r.stderr if stderr else r.stdout

    run("apt-get", "-q", "update")
    return run


def lists_of(work: str) -> str:
    """The lists directory of a :func:`host_apt` work area."""
    return os.path.join(work, "lists")


def status_text(entries: list[tuple]) -> str:
    """A dpkg status file: ``(name, version, arch)`` or ``(name, version, arch, want, extra)``
    entries (``want``: install or hold; ``extra``: more fields such as Multi-Arch)."""
    out = []
    for e in entries:
        name, version, arch = e[:3]
        want = e[3] if len(e) > 3 else "install"
        extra = e[4] if len(e) > 4 else ""
        out.append(f"Package: {name}\nStatus: {want} ok installed\nPriority: optional\nSection: misc\n"
                   f"Maintainer: Test <t@example.org>\nArchitecture: {arch}\n{extra}Version: {version}\n"
                   f"Description: test package {name}\n long text\n")
    return "\n".join(out)


# ---- pins for the tests (nuwa.apt.preferences is another engineer's module) -----------------------
class SimplePin:
    """A pin with the shape :class:`nuwa.apt.candidates.PinLike` asks for, matching the way apt's
    ``pkgVersionMatch`` does for the forms the tests use (``release`` keys a/n/o/l/c/v and bare
    archive-or-codename, ``origin`` site, ``version`` with a trailing ``*`` prefix), and
    :meth:`stanza` giving the same pin as an apt preferences record for the judge."""

    def __init__(self, packages: str, kind: str, expr: str, priority: int):
        self.packages = "*" if packages == "*" else tuple(packages.split())
        self.kind, self.expr, self.priority = kind, expr, priority

    def stanza(self) -> str:
        """The apt preferences record for this pin."""
        names = self.packages if isinstance(self.packages, str) else " ".join(self.packages)
        prio = "never" if self.priority == -32768 else str(self.priority)
        return f"Package: {names}\nPin: {self.kind} {self.expr}\nPin-Priority: {prio}\n\n"

    @staticmethod
    def _glob(pattern: str, value: str) -> bool:
        import fnmatch
        return fnmatch.fnmatch(value.lower(), pattern.lower())  # apt: FNM_CASEFOLD

    def matches(self, record: PackageRecord) -> bool:
        """Whether the pin applies to this record (see the class docstring)."""
        if self.packages != "*" and not any(self._glob(n, record.package) for n in self.packages):
            return False
        rel = record.release
        status = rel.archive == "now" and rel.component == "now" and not rel.uri
        if self.kind == "version":
            e = self.expr
            return (record.version.lower().startswith(e[:-1].lower()) if e.endswith("*")
                    else record.version.lower() == e.lower()) or self._glob(e, record.version)
        if self.kind == "origin":
            return not status and self._glob(self.expr.strip('"'), rel.site)
        keys = {}
        if "=" not in self.expr:
            keys["v" if self.expr[:1].isdigit() else "rel"] = self.expr
        else:
            for tok in self.expr.split(","):
                k, _, v = tok.strip().partition("=")
                keys[k] = v
        if status and any(k in keys for k in "olvn"):
            return False
        fields = {"o": rel.origin, "l": rel.label, "a": rel.archive, "n": rel.codename, "c": rel.component,
                  "v": rel.version}
        for k, v in keys.items():
            if k == "rel":
                if not (self._glob(v, rel.archive) or self._glob(v, rel.codename)):
                    return False
            elif k in fields and not self._glob(v, fields[k]):
                return False
        return True
