#!/usr/bin/env python3
"""Real Debian material for the dpkg tests and benchmark, made by the real tools.

- an outdated Debian 12 minbase tree: ``mmdebstrap --mode=root --variant=minbase bookworm``
  from the main suite only (so every package newer in bookworm-security is a pending patch);
- the .debs that ``apt-get dist-upgrade`` would fetch for it from bookworm + bookworm-security,
  downloaded by apt with a temporary configuration (nothing on the host's apt state changes).

Everything is cached under ``/var/tmp/nuwa-dpkg-YYYYMMDD/`` (one build per day and machine).
The mirror URIs come from the machine's own apt sources at run time.

Usage: ``python3 tools/dpkg_material.py`` prints the tree and the .deb directory.
"""

from __future__ import annotations

import datetime
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys

SUITE = "bookworm"


def cache_dir() -> str:
    """The per-day cache directory (created)."""
    d = os.environ.get("NUWA_DPKG_CACHE") or "/var/tmp/nuwa-dpkg-" + datetime.date.today().strftime("%Y%m%d")
    os.makedirs(d, exist_ok=True)
    return d


def _sources_text() -> str:
    parts = []
    for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
        except OSError:
            pass
    return "\n".join(parts)


def mirrors() -> tuple[str, str]:
    """(debian mirror URI, debian-security mirror URI) from the host's apt sources."""
    text = _sources_text()
    uris = re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^\]]*\]\s*)?)(\S+)", text, re.M)
    main = next((u for u in uris if "debian" in u and "security" not in u), None)
    sec = next((u for u in uris if "security" in u), None)
    if main is None:
        raise SystemExit("no Debian mirror found in /etc/apt/sources.list*")
    if sec is None:
        sec = re.sub(r"/debian/?$", "/debian-security", main)
    return main.rstrip("/"), sec.rstrip("/")


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


def base_tree() -> str:
    """Path of the cached outdated minbase tree (built on first use)."""
    root = cache_dir()
    tree = os.path.join(root, "base")
    with _Lock(os.path.join(root, ".lock")):
        if os.path.exists(os.path.join(tree, ".complete")):
            return tree
        shutil.rmtree(tree, ignore_errors=True)
        main, _ = mirrors()
        subprocess.run(["mmdebstrap", "--mode=root", "--variant=minbase", "--quiet", SUITE, tree,
                        f"deb {main} {SUITE} main"], check=True)
        open(os.path.join(tree, ".complete"), "w").close()
    return tree


def updates_dir() -> str:
    """Directory of the .debs apt would fetch to dist-upgrade the base tree (downloaded once)."""
    root = cache_dir()
    tree = base_tree()
    debs = os.path.join(root, "debs")
    with _Lock(os.path.join(root, ".lock")):
        if os.path.exists(os.path.join(debs, ".complete")):
            return debs
        main, sec = mirrors()
        apt = os.path.join(root, "apt")
        shutil.rmtree(apt, ignore_errors=True)
        shutil.rmtree(debs, ignore_errors=True)
        for d in ("lists/partial", "cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d"):
            os.makedirs(os.path.join(apt, d), exist_ok=True)
        os.makedirs(os.path.join(debs, "partial"), exist_ok=True)
        signed = f" [signed-by={_keyring()}]" if _keyring() else ""
        with open(os.path.join(apt, "sources.list"), "w") as f:
            f.write(f"deb{signed} {main} {SUITE} main\n")
            f.write(f"deb{signed} {sec} {SUITE}-security main\n")
        opts = [
            "-o", "Dir::Etc::SourceList=" + os.path.join(apt, "sources.list"),
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", "Dir::Etc::Preferences=/nonexistent",
            "-o", "Dir::Etc::PreferencesParts=" + os.path.join(apt, "etc/preferences.d"),
            "-o", "Dir::Etc::Parts=" + os.path.join(apt, "etc/apt.conf.d"),
            "-o", "Dir::State::Lists=" + os.path.join(apt, "lists"),
            "-o", "Dir::State::status=" + os.path.join(tree, "var/lib/dpkg/status"),
            "-o", "Dir::State::extended_states=" + os.path.join(apt, "extended_states"),
            "-o", "Dir::Cache=" + os.path.join(apt, "cache"),
            "-o", "Dir::Cache::archives=" + debs,
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Architecture=amd64",
            "-o", "Acquire::Languages=none",
        ]
        subprocess.run(["apt-get", *opts, "-qq", "update"], check=True)
        subprocess.run(["apt-get", *opts, "-qq", "-y", "--download-only", "dist-upgrade"], check=True)
        shutil.rmtree(os.path.join(debs, "partial"), ignore_errors=True)
        for lock in glob.glob(os.path.join(debs, "lock")):
            os.unlink(lock)
        open(os.path.join(debs, ".complete"), "w").close()
    return debs


def deb_files() -> list[str]:
    """The downloaded update .debs, sorted by name."""
    return sorted(glob.glob(os.path.join(updates_dir(), "*.deb")))


def copy_tree(src: str, dst: str) -> None:
    """A faithful copy of a tree (hard links, xattrs, owners, devices) with cp -a."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    subprocess.run(["cp", "-a", "--reflink=auto", src, dst], check=True)


if __name__ == "__main__":
    print(base_tree())
    for d in deb_files():
        print(d)
    sys.exit(0)
