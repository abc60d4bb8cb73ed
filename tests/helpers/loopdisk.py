"""Partitioned disk images made by the real tools, and a real chroot on a loop-attached copy.

:func:`make_disk` builds a raw disk from a tree with ``sfdisk`` (GPT or MBR) and ``mkfs.ext4
-d`` (pinned UUID, ``E2FSPROGS_FAKE_TIME``), no root needed. :func:`attached` attaches a disk
with ``losetup -P`` (as root), mounts its partitions as the image's ``/etc/fstab`` would and
gives a chroot whose ``/dev`` is a private tmpfs holding only the basic nodes, the loop
device's own and udev's persistent-storage links for them (the host's ``/dev`` is not bound:
with or without udev on the host, the judge sees the devices a booted system would); ``/proc`` and ``/sys`` are the host's, bound. Everything is undone in
``finally`` blocks, in reverse order, even when the body fails: mounts unmounted (lazily if
busy), the loop device detached, partition nodes this helper had to create in the host's
``/dev`` (a container without udev has none) removed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import pytest

from judges import tool

#: GPT type GUIDs and MBR type bytes sfdisk accepts
BIOS_BOOT = "21686148-6453-6F6E-6E61-6C6D61726B7E"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

_BASIC_NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9))


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def make_disk(path: str, scheme: str, parts: list[dict], size_mb: int) -> list[tuple[int, int]]:
    """A raw disk at ``path``: ``scheme`` "gpt" or "dos"; ``parts`` in order, each
    ``{"sectors": N or None (the rest), "type": ..., "tree": DIR or None, "uuid": ..., "label": ...}``;
    partitions with a ``tree`` get an ext4 filesystem made by ``mkfs.ext4 -d``.
    Returns each partition's (start sector, sectors)."""
    sfdisk, mkfs = tool("sfdisk"), tool("mkfs.ext4")
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
    lines = [f"label: {scheme}"]
    if scheme == "dos":
        lines.append("label-id: 0x4e757761")
    start = 2048
    for p in parts:
        size = f", size={p['sectors']}" if p.get("sectors") else ""
        boot = ", bootable" if p.get("bootable") else ""
        lines.append(f"start={start}{size}, type={p['type']}{boot}")
        start += p.get("sectors") or 0
    _run([sfdisk, "-q", path], input="\n".join(lines) + "\n")
    layout = []
    for line in _run([sfdisk, "-d", path]).stdout.splitlines():
        if line.startswith(path):
            fields = dict(kv.strip().split("=", 1) for kv in line.split(":", 1)[1].split(",") if "=" in kv)
            layout.append((int(fields["start"]), int(fields["size"])))
    env = dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000")
    for p, (st, n) in zip(parts, layout):
        if p.get("tree"):
            _run([mkfs, "-q", "-F", "-t", "ext4", "-U", p["uuid"], "-L", p.get("label", ""), "-d", p["tree"],
                  "-E", f"offset={st * 512},hash_seed=5c1f6bd0-7bb0-4a4a-9a8b-3a0f4b0c2d1e", path, f"{n // 2}k"],
                 env=env)
    return layout


def _part_dev(loop: str, n: int) -> str:
    return f"{loop}p{n}"


def _wait_partitions(loop: str, count: int) -> list[tuple[str, str]]:
    """(node path, "major:minor") of the loop device's partitions, from sysfs."""
    name = os.path.basename(loop)
    for attempt in range(40):
        found = []
        for n in range(1, count + 1):
            devfile = f"/sys/block/{name}/{name}p{n}/dev"
            if os.path.exists(devfile):
                with open(devfile) as f:
                    found.append((_part_dev(loop, n), f.read().strip()))
        if len(found) == count:
            return found
        if attempt == 5:  # the kernel did not scan the table by itself: ask it (util-linux partx)
            subprocess.run([tool("partx"), "-a", loop], capture_output=True)
        time.sleep(0.05)
    raise AssertionError(f"{loop}: the kernel shows {len(found)} of {count} partitions")


def _udev_links(devdir: str, node: str) -> None:
    """The persistent-storage links of one partition, from what ``blkid -p`` reads on it."""
    r = subprocess.run([tool("blkid"), "-p", "-o", "export", node], capture_output=True, text=True)
    info = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    links = []
    if info.get("UUID") and info.get("USAGE") in ("filesystem", "other", "crypto"):
        links.append(("by-uuid", info["UUID"]))
    if info.get("LABEL") and info.get("USAGE") in ("filesystem", "other", "crypto"):
        links.append(("by-label", info["LABEL"]))
    if info.get("PART_ENTRY_UUID"):
        links.append(("by-partuuid", info["PART_ENTRY_UUID"]))
    for kind, name in links:
        os.makedirs(os.path.join(devdir, "disk", kind), exist_ok=True)
        os.symlink("../../" + os.path.basename(node), os.path.join(devdir, "disk", kind, name))


def _mknod(path: str, majmin: str) -> None:
    major, minor = (int(x) for x in majmin.split(":"))
    os.mknod(path, 0o600 | 0o060000, os.makedev(major, minor))


@contextlib.contextmanager
def attached(disk: str, workdir: str, nparts: int, root: int, mounts: dict[str, int] | None = None,
             udev_links: bool = True):
    """Yield ``(loop device, chroot dir)`` for ``disk`` attached and mounted (see the module note).

    ``root`` is the partition mounted at the chroot's ``/``; ``mounts`` maps other mount points
    (``/boot``) to partition numbers. ``udev_links`` adds the ``/dev/disk/by-uuid``,
    ``by-partuuid`` and ``by-label`` links udev's ``60-persistent-storage.rules`` would make
    (from ``blkid -p``), as a booted system has them.
    """
    if os.geteuid() != 0:
        pytest.skip("a loop-attached disk needs root")
    losetup, mount, umount = tool("losetup"), tool("mount"), tool("umount")
    mnt = os.path.join(workdir, "mnt")
    devdir = os.path.join(workdir, "dev")
    os.makedirs(mnt, exist_ok=True)
    os.makedirs(devdir, exist_ok=True)
    undo: list = []
    try:
        loop = _run([losetup, "-P", "-f", "--show", disk]).stdout.strip()
        undo.append(lambda: subprocess.run([losetup, "-d", loop], capture_output=True))
        parts = _wait_partitions(loop, nparts)
        for node, majmin in parts:
            if not os.path.exists(node):  # no udev: make the node the kernel announced, and remove it after
                _mknod(node, majmin)
                undo.append(lambda node=node: os.path.exists(node) and os.unlink(node))

        def mount_on(args: list[str], where: str) -> None:
            _run([mount, *args, where])
            undo.append(lambda: subprocess.run([umount, where], capture_output=True).returncode == 0
                        or subprocess.run([umount, "-l", where], capture_output=True))

        mount_on([_part_dev(loop, root)], mnt)
        for point, n in sorted((mounts or {}).items()):
            mount_on([_part_dev(loop, n)], os.path.join(mnt, point.lstrip("/")))
        # the chroot's /dev: a private tmpfs with the basic nodes and this disk's, nothing else
        mount_on(["-t", "tmpfs", "-o", "mode=0755,size=1m", "nuwa-judge-dev"], devdir)
        for name, major, minor in _BASIC_NODES:
            os.mknod(os.path.join(devdir, name), 0o666 | 0o020000, os.makedev(major, minor))
            os.chmod(os.path.join(devdir, name), 0o666)  # mknod's mode passes the umask (022)
        with open(f"/sys/block/{os.path.basename(loop)}/dev") as f:
            _mknod(os.path.join(devdir, os.path.basename(loop)), f.read().strip())
        for node, majmin in parts:
            _mknod(os.path.join(devdir, os.path.basename(node)), majmin)
            if udev_links:
                _udev_links(devdir, node)
        mount_on(["--bind", devdir], os.path.join(mnt, "dev"))
        mount_on(["--bind", "/proc"], os.path.join(mnt, "proc"))
        mount_on(["--bind", "/sys"], os.path.join(mnt, "sys"))
        yield loop, mnt
    finally:
        for fn in reversed(undo):
            try:
                fn()
            except OSError:
                pass


def chroot_run(mnt: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``chroot MNT argv`` with exactly ``env`` (nothing of the caller's environment)."""
    return subprocess.run([tool("chroot"), mnt, *argv], env=env, capture_output=True, text=True)
