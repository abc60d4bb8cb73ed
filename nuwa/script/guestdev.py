"""The block-device nodes a booted guest's ``/dev`` would hold, shown to simulated scripts.

A dormant image's ``/dev`` is an empty directory: on a running system devtmpfs fills it with
the disk and its partitions, and udev adds the ``/dev/disk/by-uuid``, ``by-partuuid`` and
``by-label`` links (``60-persistent-storage.rules``). Scripts test for them: ``grub-mkconfig``'s
``10_linux`` writes ``root=UUID=...`` only if ``/dev/disk/by-uuid/$GRUB_DEVICE_UUID`` exists,
``root=/dev/vda1`` otherwise -- a kernel command line that boots only where the disk has that
name. So that a simulated script decides as it would in the booted guest, :class:`GuestDevView`
shows those nodes, computed from the patch job's :class:`nuwa.script.disklayout.DiskLayout`
(device names by :func:`nuwa.script.disklayout.disk_name`), over the image's filesystem.

The view is read-only and minimal: ``lstat``/``stat``/``readlink``/``readdir``/``exists`` of the
nodes and their directories; a real entry of the image always wins; every other call (and
every write) goes to the image's filesystem unchanged, so nothing synthesized is ever written.
Opening a device node for reading is not modelled (the image's filesystem answers ENOENT).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat as _stat
import types
import zlib

from nuwa.fs.model import FileSystem, Stat
from nuwa.script.disklayout import DiskLayout, disk_name, layout_of, partition_device

#: what udev links by UUID (blkid ID_FS_USAGE filesystem, other (swap) or crypto)
_LINKED_TYPES = {"ext2", "ext3", "ext4", "vfat", "xfs", "btrfs", "swap", "crypto_LUKS"}

#: block major numbers of the kernel's drivers (Documentation/admin-guide/devices.txt; virtio-blk
#: and NVMe are dynamic, these are what a typical guest gets)
_MAJORS = (("/dev/sd", 8), ("/dev/hd", 3), ("/dev/vd", 254), ("/dev/xvd", 202), ("/dev/nvme", 259),
           ("/dev/mmcblk", 179), ("/dev/loop", 7))

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")


def guest_nodes(layout: DiskLayout, fs) -> dict[str, tuple]:
    """path -> ("dir",) | ("blk", rdev) | ("lnk", target): the guest's disk nodes and links."""
    disk, _ = disk_name(layout, fs)
    major = next((m for prefix, m in _MAJORS if disk.startswith(prefix)), 254)
    nodes: dict[str, tuple] = {"/dev/disk": ("dir",)}
    nodes[disk] = ("blk", os.makedev(major, 0))
    for minor, v in enumerate(sorted(layout.volumes, key=lambda v: v.number or 0)):
        dev = partition_device(disk, v.number)
        if v.number is not None:
            nodes[dev] = ("blk", os.makedev(major, v.number if major != 259 else minor + 1))
        target = "../../" + posixpath.basename(dev)
        links = []
        if v.uuid and v.fs_type in _LINKED_TYPES:
            links.append(("by-uuid", v.uuid))
        if v.label and v.fs_type in _LINKED_TYPES and _SAFE_NAME.match(v.label):
            links.append(("by-label", v.label))  # udev escapes other labels (\x20...): not shown
        if v.partuuid and v.number is not None:
            links.append(("by-partuuid", v.partuuid))
        for kind, name in links:
            nodes[f"/dev/disk/{kind}"] = ("dir",)
            nodes[f"/dev/disk/{kind}/{name}"] = ("lnk", target)
    return nodes


class GuestDevView:
    """The image's filesystem with :func:`guest_nodes` visible under ``/dev`` (module note)."""

    def __init__(self, fs, nodes: dict[str, tuple]):
        self._fs = fs
        self._nodes = nodes
        self._children: dict[str, list[str]] = {}
        for p in nodes:
            self._children.setdefault(posixpath.dirname(p), []).append(posixpath.basename(p))

    def __getattr__(self, name):
        value = getattr(self._fs, name)
        if isinstance(value, types.MethodType) and value.__self__ is self._fs:
            self.__dict__[name] = value  # the wrapped filesystem's method, found once
        return value

    def _entry(self, path: str) -> tuple | None:
        if "dev" not in path:
            return None  # every node is under /dev, however the path is spelt
        p = posixpath.normpath("/" + path.lstrip("/")) if path else path
        e = self._nodes.get(p)
        if e is None:
            return None
        try:
            self._fs.lstat(p)
            return None  # the image has a real entry there: it wins
        except OSError:
            return e

    @staticmethod
    def _as_stat(e: tuple, path: str) -> Stat:
        ino = 0x6E750000 + (zlib.crc32(path.encode()) & 0xFFFF)  # reproducible, above the image's numbers
        if e[0] == "dir":
            return Stat(st_mode=_stat.S_IFDIR | 0o755, st_ino=ino, st_nlink=2, st_uid=0, st_gid=0, st_size=0)
        if e[0] == "lnk":
            return Stat(st_mode=_stat.S_IFLNK | 0o777, st_ino=ino, st_nlink=1, st_uid=0, st_gid=0,
                        st_size=len(e[1]))
        return Stat(st_mode=_stat.S_IFBLK | 0o660, st_ino=ino, st_nlink=1, st_uid=0, st_gid=6, st_size=0,
                    st_rdev=e[1])

    def lstat(self, path: str) -> Stat:
        """``lstat`` of the image, or of a guest node where the image has none."""
        e = self._entry(path)
        return self._as_stat(e, path) if e is not None else self._fs.lstat(path)

    def stat(self, path: str) -> Stat:
        """``stat``: a guest link is followed to its node (links are relative, inside /dev)."""
        p = path
        for _ in range(8):
            e = self._entry(p)
            if e is None:
                return self._fs.stat(p)
            if e[0] != "lnk":
                return self._as_stat(e, p)
            p = posixpath.normpath(posixpath.join(posixpath.dirname(posixpath.normpath(p)), e[1]))
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)

    def readlink(self, path: str) -> str:
        """``readlink`` of the image, or a guest link's target."""
        e = self._entry(path)
        if e is None:
            return self._fs.readlink(path)
        if e[0] != "lnk":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        return e[1]

    def readdir(self, path: str) -> list[str]:
        """The image's entries plus the guest nodes it lacks."""
        p = posixpath.normpath("/" + path.lstrip("/"))
        extra = self._children.get(p, [])
        e = self._entry(p)
        if e is not None:
            if e[0] != "dir":
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            return list(extra)
        names = self._fs.readdir(path)
        return names + [n for n in extra if n not in names]

    # the protocol's own helpers, run against this view's stat/lstat/readdir (not the wrapped fs's)
    listdir = FileSystem.listdir
    exists = FileSystem.exists
    lexists = FileSystem.lexists


def guest_view(fs, model_state: dict | None):
    """``fs`` seen with the guest's device nodes when the run has a disk layout; else ``fs``."""
    if isinstance(fs, GuestDevView) or not model_state:
        return fs
    lay = layout_of(model_state)
    if lay is None:
        return fs
    return GuestDevView(fs, guest_nodes(lay, fs))
