#!/usr/bin/env python3
"""Real Debian material for the dpkg tests and benchmark, made by the real tools.

For a Debian suite (``bookworm`` by default, ``trixie`` too):

- an outdated minbase tree: ``mmdebstrap --mode=root --variant=minbase SUITE`` from the main
  suite only (so every package newer in the suite's update suites is a pending patch);
- the .debs that ``apt-get dist-upgrade`` would fetch for it from the suite and its update
  suites (:func:`archive_suites`: bookworm-security for bookworm, as the material always had;
  SUITE-updates and SUITE-security for the others), downloaded by apt with a temporary
  configuration (nothing on the host's apt state changes).

Every function also takes the Debian architecture of the material (``arch``, default
``amd64``); a foreign one (``arm64``...) has its tree built by ``mmdebstrap --arch`` (maintainer
scripts under qemu-user: ``qemu-user-static``, ``binfmt-support`` and ``arch-test`` must be
installed) and its .debs and plans made by the host's apt told ``APT::Architecture=ARCH`` (apt
only downloads and plans; nothing of the foreign architecture runs on the host).

Everything is cached under ``/var/tmp/nuwa-dpkg-YYYYMMDD/`` (bookworm, amd64), with ``-ARCH``
appended for another architecture and a ``SUITE/`` subdirectory for another suite: one build
per day, machine, architecture and suite. The mirror URIs come from the machine's own apt
sources at run time.

A variant other than ``minbase`` (:data:`VARIANTS`: ``server`` adds nginx and ca-certificates
with ``mmdebstrap --include``; ``cloud`` is a small cloud server with a kernel, GRUB, python3,
systemd and openssh-server, whose updates come from the host's whole world: the suite,
SUITE-updates and SUITE-security) has its own ``VARIANT/`` subdirectory below that.

Usage: ``python3 tools/dpkg_material.py [SUITE [ARCH [VARIANT]]]`` prints the tree and the .debs.
"""

from __future__ import annotations

import datetime
import fcntl
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host_mirrors  # noqa: E402

SUITE = "bookworm"
# a variant's packages beyond minbase, installed by mmdebstrap --include from the suite's main
VARIANTS = {"minbase": [], "server": ["nginx", "ca-certificates"],
            # the kernel judges' packages (tests/helpers/kerneltree.py) and what a small cloud
            # server has: the material of bench_patch.py's server set
            "cloud": ["linux-image-cloud-amd64", "grub-pc", "initramfs-tools", "zstd", "python3",
                      "ca-certificates", "openssh-server", "systemd-sysv", "cron", "sudo", "curl"]}
#: variants whose updates come from SUITE-updates as well (a server's apt sources have it; the
#: bookworm minbase material keeps the world it always had)
WITH_UPDATES = {"cloud"}


def cache_dir(suite: str = SUITE, arch: str = "amd64", variant: str = "minbase") -> str:
    """The per-day cache directory of a suite's, architecture's and variant's material (created)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown material variant {variant!r} (known: {sorted(VARIANTS)})")
    d = os.environ.get("NUWA_DPKG_CACHE") or "/var/tmp/nuwa-dpkg-" + datetime.date.today().strftime("%Y%m%d")
    if arch != "amd64":  # amd64 keeps the historical name the other tests and benchmarks share
        d += "-" + arch
    if suite != SUITE:  # bookworm keeps the top directory other tests and benchmarks name
        d = os.path.join(d, suite)
    if variant != "minbase":  # minbase keeps the paths every other user of the material names
        d = os.path.join(d, variant)
    os.makedirs(d, exist_ok=True)
    return d


def archive_suites(suite: str = SUITE, variant: str = "minbase") -> list[tuple[str, str]]:
    """The (archive, suite) pairs of a world, ``archive`` being ``debian`` or ``debian-security``
    (the host mirror it comes from, and the directory of the local mirror that serves it).

    bookworm's world is the one the material always had (bookworm + bookworm-security); another
    suite, and a :data:`WITH_UPDATES` variant of bookworm, also have SUITE-updates, where Debian
    publishes point-release updates between releases.
    """
    if suite == SUITE and variant not in WITH_UPDATES:
        return [("debian", suite), ("debian-security", suite + "-security")]
    return [("debian", suite), ("debian", suite + "-updates"), ("debian-security", suite + "-security")]


def _sources_list(suite: str, variant: str = "minbase") -> str:
    """sources.list lines for :func:`archive_suites` on the host's mirrors, main only."""
    main, sec = mirrors()
    signed = f" [signed-by={_keyring()}]" if _keyring() else ""
    return "".join(f"deb{signed} {sec if m == 'debian-security' else main} {s} main\n"
                   for m, s in archive_suites(suite, variant))


def mirrors() -> tuple[str, str]:
    """(debian mirror URI, debian-security mirror URI) from the host's apt sources."""
    try:
        return host_mirrors.mirrors()
    except host_mirrors.NoMirror as e:
        raise SystemExit(str(e)) from None


def _keyring() -> str:
    k = "/usr/share/keyrings/debian-archive-keyring.gpg"
    return k if os.path.exists(k) else ""


class _Lock:
    def __init__(self, path: str):
        self.f = open(path, "w")

    def __enter__(self):
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def base_tree(suite: str = SUITE, arch: str = "amd64", variant: str = "minbase") -> str:
    """Path of the cached outdated tree of ``suite``, ``arch`` and ``variant`` (built on first use):
    minbase, plus the variant's :data:`VARIANTS` packages from the suite's main."""
    root = cache_dir(suite, arch, variant)
    tree = os.path.join(root, "base")
    with _Lock(os.path.join(root, ".lock")):
        if os.path.exists(os.path.join(tree, ".complete")):
            return tree
        shutil.rmtree(tree, ignore_errors=True)
        main, _ = mirrors()
        include = [f"--include={','.join(VARIANTS[variant])}"] if VARIANTS[variant] else []
        subprocess.run(["mmdebstrap", "--mode=root", "--variant=minbase", "--quiet", f"--arch={arch}", *include, suite,
                        tree, f"deb {main} {suite} main"], check=True)
        open(os.path.join(tree, ".complete"), "w").close()
    return tree


def updates_dir(suite: str = SUITE, arch: str = "amd64", variant: str = "minbase") -> str:
    """Directory of the .debs apt would fetch to dist-upgrade the base tree (downloaded once).

    It may be empty (only ``.complete``) when nothing is pending for the suite today; callers
    that need updates say so with a :class:`PlanError`."""
    root = cache_dir(suite, arch, variant)
    tree = base_tree(suite, arch, variant)
    debs = os.path.join(root, "debs")
    with _Lock(os.path.join(root, ".lock")):
        if os.path.exists(os.path.join(debs, ".complete")):
            return debs
        apt = os.path.join(root, "apt")
        shutil.rmtree(apt, ignore_errors=True)
        shutil.rmtree(debs, ignore_errors=True)
        for d in ("lists/partial", "cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d"):
            os.makedirs(os.path.join(apt, d), exist_ok=True)
        os.makedirs(os.path.join(debs, "partial"), exist_ok=True)
        with open(os.path.join(apt, "sources.list"), "w") as f:
            f.write(_sources_list(suite, variant))
        opts = _apt_options(apt, tree, debs, arch=arch)
        subprocess.run(["apt-get", *opts, "-qq", "update"], check=True)
        subprocess.run(["apt-get", *opts, "-qq", "-y", "--download-only", "dist-upgrade"], check=True)
        shutil.rmtree(os.path.join(debs, "partial"), ignore_errors=True)
        for lock in glob.glob(os.path.join(debs, "lock")):
            os.unlink(lock)
        open(os.path.join(debs, ".complete"), "w").close()
    return debs


def _apt_options(apt: str, tree: str, archives: str, extended_states: str | None = None,
                 arch: str = "amd64") -> list[str]:
    """apt-get options that use only ``apt`` (sources, lists, cache) and ``tree``'s dpkg status.

    The host's apt configuration parts (hooks such as debconf's ``Pre-Install-Pkgs``) are not
    read: ``Dir::Etc::Parts`` names an empty directory of ``apt``.
    """
    return [
        "-o", "Dir::Etc::SourceList=" + os.path.join(apt, "sources.list"),
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", "Dir::Etc::Preferences=/nonexistent",
        "-o", "Dir::Etc::PreferencesParts=" + os.path.join(apt, "etc/preferences.d"),
        "-o", "Dir::Etc::Parts=" + os.path.join(apt, "etc/apt.conf.d"),
        "-o", "Dir::State::Lists=" + os.path.join(apt, "lists"),
        "-o", "Dir::State::status=" + os.path.join(tree, "var/lib/dpkg/status"),
        "-o", "Dir::State::extended_states=" + (extended_states or os.path.join(apt, "extended_states")),
        "-o", "Dir::Cache=" + os.path.join(apt, "cache"),
        "-o", "Dir::Cache::archives=" + archives,
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Architecture=" + arch,
        # apt would ask the host's dpkg for foreign architectures; the material has none
        *(["-o", "APT::Architectures::=" + arch] if arch != "amd64" else []),
        "-o", "Acquire::Languages=none",
    ]


class PlanError(AssertionError):
    """apt's plan for the material is not one the differential tests can replay; the message
    says which assumption about the archive no longer holds."""


def apt_steps(tree: str, packages: list[str] | None = None, download: bool = False,
              suite: str = SUITE, arch: str = "amd64", variant: str = "minbase") -> list[tuple[str, list[str]]]:
    """The dpkg calls real apt makes to bring ``tree`` up to date with the downloaded updates.

    apt itself plans (``dist-upgrade``, or ``install --only-upgrade PACKAGES``) with
    ``Debug::pkgDPkgPM`` set, which makes it print each dpkg command line instead of running
    it; nothing is installed and ``tree`` is not changed. Returns ``(action, operands)`` steps:
    ``("unpack", [deb paths])``, ``("configure", [package:arch ...])``,
    ``("configure-pending", [])``, ``("remove", [...])``, ``("purge", [...])``, each with
    ``--no-triggers`` except ``configure-pending`` (as apt 2.6 calls dpkg).

    Assumptions about the archive, each checked with a :class:`PlanError` naming it: every
    .deb apt wants is already in the material (``--no-download``; with ``download``, apt fetches
    what is missing into the material, as it would for a tree that has more packages than the
    minbase one), and apt's dpkg calls use only the actions above.
    """
    root = cache_dir(suite, arch, variant)
    debs = updates_dir(suite, arch, variant)
    apt = os.path.join(root, "apt")
    es = os.path.join(root, "plan-extended_states")
    shutil.copy(os.path.join(apt, "extended_states"), es) if os.path.exists(
        os.path.join(apt, "extended_states")) else open(es, "w").close()
    request = ["install", "--only-upgrade", *packages] if packages else ["dist-upgrade"]
    with _Lock(os.path.join(root, ".lock")):
        if download:  # fetched .debs go beside links to the material's, never into it
            archives = os.path.join(root, "debs-fetched")
            os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
            for f in glob.glob(os.path.join(debs, "*.deb")):
                if not os.path.exists(os.path.join(archives, os.path.basename(f))):
                    os.link(f, os.path.join(archives, os.path.basename(f)))
        else:
            archives = debs
        r = subprocess.run(["apt-get", *_apt_options(apt, tree, archives, es, arch), "-o", "Debug::pkgDPkgPM=1",
                            # 5+ .debs in one call would go as --recursive on a temporary directory of
                            # links that is gone when apt returns: name each .deb instead
                            "-o", "Dpkg::Install::Recursive::Minimum=100000",
                            "-o", "Dpkg::Use-Pty=0", *([] if download else ["--no-download"]), "-y", *request],
                           capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if r.returncode != 0:
        where = "the archive" if download else f"the downloaded material alone ({debs})"
        raise PlanError(f"apt could not plan {' '.join(request)} from {where} (assumption: apt can fetch every "
                        f".deb its plan needs): {r.stderr.strip()[-500:]}")
    steps: list[tuple[str, list[str]]] = []
    for line in (r.stdout + r.stderr).splitlines():  # apt prints the debug lines on stderr
        words = line.split()
        if not words or not words[0].endswith("/dpkg"):
            continue
        flags = [w for w in words[1:] if w.startswith("--")]
        operands = [w for w in words[1:] if not w.startswith("--") and not w.isdigit()]
        if "--unpack" in flags:
            if "--recursive" in flags:
                raise PlanError(f"apt's plan unpacks a directory, not named .debs: {line.strip()}")
            steps.append(("unpack", operands))
        elif "--configure" in flags and "--pending" in flags:
            steps.append(("configure-pending", []))
        elif "--configure" in flags:
            steps.append(("configure", operands))
        elif "--remove" in flags or "--purge" in flags:
            steps.append(("purge" if "--purge" in flags else "remove", operands))
        else:
            raise PlanError(f"apt's plan has a dpkg call the replay does not know (assumption: apt only "
                            f"unpacks, configures and removes): {line.strip()}")
        if step_triggers(steps[-1][0]) == ("--no-triggers" in flags):
            raise PlanError(f"apt's dpkg call does not use --no-triggers as apt 2.6 does: {line.strip()}")
    if not steps:
        raise PlanError(f"apt planned no dpkg call for {' '.join(request)}: {r.stdout.strip()[-300:]}")
    return steps


def steps_packages(steps) -> set[str]:
    """Names of the packages the steps unpack (from the .deb file names)."""
    return {os.path.basename(p).split("_")[0] for action, ops in steps if action == "unpack" for p in ops}


def step_triggers(action: str) -> bool:
    """Whether apt lets dpkg process triggers in a step of this kind (only the final
    ``--configure --pending``; every other call carries ``--no-triggers``)."""
    return action == "configure-pending"


def deb_files(suite: str = SUITE, arch: str = "amd64", variant: str = "minbase") -> list[str]:
    """The downloaded update .debs of a suite's and architecture's material, sorted by name."""
    return sorted(glob.glob(os.path.join(updates_dir(suite, arch, variant), "*.deb")))


def local_mirror(suite: str = SUITE, arch: str = "amd64",
                 variant: str = "minbase") -> tuple[str, list[tuple[str, str]]]:
    """A directory laid out like the archive for the material's world, to serve on 127.0.0.1:
    ``<m>/dists/<suite>/InRelease`` (as Debian signed it) and the plain ``main`` index apt
    downloaded for each of :func:`archive_suites`, and ``<m>/pool/...`` holding the material's
    update .debs at the ``Filename`` the index gives them. Returns (directory, [(m, suite)]).

    Built once per day beside the material (hard links into it). Assumption, checked: every
    update .deb is listed, by its SHA-256, in one of the indexes.
    """
    import hashlib

    root = cache_dir(suite, arch, variant)
    out = os.path.join(root, "mirror")
    suites = archive_suites(suite, variant)
    debs = updates_dir(suite, arch, variant)
    tree = base_tree(suite, arch, variant)  # before the lock: base_tree takes it too (flock is per open file)
    with _Lock(os.path.join(root, ".lock")):
        if os.path.exists(os.path.join(out, ".complete")):
            return out, suites
        shutil.rmtree(out, ignore_errors=True)
        main, sec = mirrors()
        apt = os.path.join(root, "apt-plain")
        shutil.rmtree(apt, ignore_errors=True)
        for d in ("lists/partial", "cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d"):
            os.makedirs(os.path.join(apt, d), exist_ok=True)
        with open(os.path.join(apt, "sources.list"), "w") as f:
            f.write(_sources_list(suite, variant))
        subprocess.run(["apt-get", *_apt_options(apt, tree, debs, arch=arch), "-o", "Acquire::GzipIndexes=false",
                        "-qq", "update"], check=True)
        by_sha = {}
        for d in glob.glob(os.path.join(debs, "*.deb")):
            with open(d, "rb") as f:
                by_sha[hashlib.sha256(f.read()).hexdigest()] = d
        placed = set()
        for m, name in suites:
            uri = sec if m == "debian-security" else main
            prefix = uri.split("://", 1)[1].replace("/", "_") + f"_dists_{name}_"
            lists = os.path.join(apt, "lists")
            dist = os.path.join(out, m, "dists", name)
            os.makedirs(os.path.join(dist, f"main/binary-{arch}"))
            os.link(os.path.join(lists, prefix + "InRelease"), os.path.join(dist, "InRelease"))
            index = os.path.join(dist, f"main/binary-{arch}/Packages")
            os.link(os.path.join(lists, prefix + f"main_binary-{arch}_Packages"), index)
            with open(index, "rb") as f:
                for stanza in f.read().split(b"\n\n"):
                    fields = dict(ln.split(b": ", 1) for ln in stanza.split(b"\n") if b": " in ln and not ln[:1].isspace())
                    sha = fields.get(b"SHA256", b"").decode()
                    if sha in by_sha and sha not in placed:
                        dest = os.path.join(out, m, fields[b"Filename"].decode())
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        os.link(by_sha[sha], dest)
                        placed.add(sha)
        missing = sorted(os.path.basename(by_sha[s]) for s in set(by_sha) - placed)
        if missing:
            raise PlanError(f"update .debs not listed in the indexes (assumption: the material's .debs come from "
                            f"{', '.join(n for _, n in suites)}): {missing}")
        open(os.path.join(out, ".complete"), "w").close()
    return out, suites


def copy_tree(src: str, dst: str) -> None:
    """A faithful copy of a tree (hard links, xattrs, owners, devices) with cp -a."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    subprocess.run(["cp", "-a", "--reflink=auto", src, dst], check=True)


if __name__ == "__main__":
    _suite = sys.argv[1] if len(sys.argv) > 1 else SUITE
    _arch = sys.argv[2] if len(sys.argv) > 2 else "amd64"
    _variant = sys.argv[3] if len(sys.argv) > 3 else "minbase"
    print(base_tree(_suite, _arch, _variant))
    for d in deb_files(_suite, _arch, _variant):
        print(d)
    sys.exit(0)
