"""Real Debian material for differential tests: an outdated bookworm minbase tree.

Built once per day with ``mmdebstrap --mode=root --variant=minbase`` from the mirror named in
the machine's apt sources (DESIGN.md, "How to make real material") and cached under
``/var/tmp/nuwa-trees``. Tests copy it (``copy_tree``) before changing anything.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import subprocess
import sys

import pytest

from judges import tool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import host_mirrors  # noqa: E402

CACHE = "/var/tmp/nuwa-trees"
#: Debian architecture -> qemu-user's name for it (its binfmt_misc entry is qemu-NAME)
QEMU_NAMES = {"arm64": "aarch64", "armhf": "arm", "i386": "i386", "ppc64el": "ppc64le",
              "s390x": "s390x", "riscv64": "riscv64", "amd64": "x86_64"}


def debian_mirror() -> str:
    """The Debian mirror URI from the machine's apt sources (tools/host_mirrors.py); without
    one, the test fails under CI and is skipped elsewhere, saying why."""
    try:
        return host_mirrors.mirrors()[0]
    except host_mirrors.NoMirror as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))


def bookworm_tree(extra: tuple[str, ...] = (), arch: str = "amd64") -> str:
    """Path of a cached, read-only-by-convention bookworm minbase tree (root needed to build).

    ``extra`` names packages to ``--include`` (e.g. ``("systemd", "cron")``); each distinct
    set is its own cached tree, keyed by the sorted names and the date. ``arch`` is the
    Debian architecture of the tree (``mmdebstrap --arch``); a foreign one needs
    ``qemu-user-static`` and binfmt_misc enabled (``.ci/run`` sets both up), since its
    maintainer scripts run under emulation.
    """
    if os.geteuid() != 0:
        pytest.skip("building a Debian tree with mmdebstrap --mode=root needs root")
    mmdebstrap = tool("mmdebstrap")
    os.makedirs(CACHE, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    extra = tuple(sorted(set(extra)))
    tag = "minbase" if not extra else "minbase+" + "+".join(extra)
    if arch != "amd64":
        # amd64 keeps its historical name so the trees other tests share stay one cache
        tag = f"{arch}-{tag}"
        # "amd64,i386": a Multi-Arch tree (native first, then dpkg --add-architecture ones);
        # i386 code runs natively on an amd64 host: no handler is registered for it
        for a in arch.split(","):
            if a not in ("amd64", "i386") and not os.path.exists(
                    f"/proc/sys/fs/binfmt_misc/qemu-{QEMU_NAMES.get(a, a)}"):
                msg = f"no binfmt_misc handler for {a} (install qemu-user-static, see .ci/run)"
                if os.environ.get("CI"):
                    pytest.fail(msg)
                pytest.skip(msg)
    # mmdebstrap refuses a target whose name holds ':' (zlib1g:i386) or ','
    tag = tag.replace(":", "_").replace(",", "+")
    path = os.path.join(CACHE, f"bookworm-{tag}-{stamp}")
    # one lock per tree: a slow build (a foreign architecture under emulation) holds up only
    # the runs that need that tree
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(os.path.join(path, "etc/os-release")):
            tmp = path + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            r = subprocess.run(
                [mmdebstrap, "--mode=root", "--variant=minbase", f"--arch={arch}",
                 *([f"--include={','.join(extra)}"] if extra else []), "bookworm", tmp,
                 f"deb {debian_mirror()} bookworm main"],
                capture_output=True, text=True,
            )
            if r.returncode != 0:
                msg = f"mmdebstrap failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}"
                if os.environ.get("CI"):
                    pytest.fail(msg)
                pytest.skip(msg)
            os.rename(tmp, path)
    return path


def link_tree(src: str, dst: str) -> str:
    """A copy whose files are hard links to ``src``'s (``cp -al``: fast, for trees a test only
    reads or replaces whole files in); a full ``cp -a`` copy where links cannot be made (the
    cache and the test's directory on different file systems, e.g. /tmp on tmpfs)."""
    if subprocess.run(["cp", "-al", src, dst], capture_output=True).returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run(["cp", "-a", src, dst], check=True)
    return dst


def copy_tree(src: str, dst: str) -> str:
    """A full copy (ownership, modes, xattrs, hard links) with cp -a."""
    subprocess.run(["cp", "-a", src, dst], check=True)
    return dst
