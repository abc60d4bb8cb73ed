"""Images for the scan tests: a small Debian-like root filesystem made by ``mkfs.ext4 -d``.

The image holds what ``nuwa scan`` reads -- ``/etc/os-release``, ``/var/lib/dpkg/status``,
``/etc/apt/sources.list`` (and ``sources.list.d``, ``preferences.d``, ``apt.conf.d``) and the
trusted keys -- and is a bare ext4 filesystem, which Nuwa opens like a disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from judges import tool

OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
              'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')


def make_image(work: str, name: str, *, status: str, sources: str, keys: dict[str, bytes] | None = None,
               files: dict[str, bytes] | None = None, os_release: str = OS_RELEASE, size: str = "16M") -> str:
    """A bare ext4 image at ``work/name.img``; ``keys``: file name in /etc/apt/trusted.gpg.d ->
    bytes; ``files``: any other path -> bytes. Returns its path."""
    tree = os.path.join(work, name + ".tree")
    shutil.rmtree(tree, ignore_errors=True)
    all_files = {"/etc/os-release": os_release.encode(), "/var/lib/dpkg/status": status.encode(),
                 "/etc/apt/sources.list": sources.encode(), "/var/lib/dpkg/arch": b"amd64\n", **(files or {})}
    for k, data in (keys or {}).items():
        all_files[f"/etc/apt/trusted.gpg.d/{k}"] = data
    for d in ("/etc/apt/sources.list.d", "/etc/apt/preferences.d", "/etc/apt/apt.conf.d", "/var/lib/dpkg/info"):
        os.makedirs(tree + d, exist_ok=True)
    for path, data in all_files.items():
        p = tree + path
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    img = os.path.join(work, name + ".img")
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-d", tree, "-E", "root_owner=0:0", img, size],
                   check=True, capture_output=True)
    return img


def image_from_tree(work: str, name: str, tree: str, sources: str, size: str = "64M") -> str:
    """An image of a real Debian tree's dpkg status, archive keys (/etc/apt/trusted.gpg.d) and
    os-release, with ``sources`` as its sources.list (see :func:`make_image`)."""
    keys = {}
    tdir = os.path.join(tree, "etc/apt/trusted.gpg.d")
    for key in os.listdir(tdir):
        with open(os.path.join(tdir, key), "rb") as f:
            keys[key] = f.read()
    with open(os.path.join(tree, "var/lib/dpkg/status"), encoding="utf-8") as f:
        status = f.read()
    with open(os.path.join(tree, "usr/lib/os-release"), encoding="utf-8") as f:
        os_release = f.read()
    return make_image(work, name, status=status, sources=sources, keys=keys, os_release=os_release, size=size)
