"""What a booted guest would know about its own disk: a small, read-only description for models.

Maintainer scripts that configure a boot loader ask about devices (``grub-probe --target=device
/``, ``--target=fs_uuid``...). Nuwa never looks at a host device for that: the patch job
describes the image it opened -- its partition table, each partition's filesystem, UUID and
label, which one is the root -- in a :class:`DiskLayout` (:func:`describe_image`), and hands it
to the simulator in the per-run model state under :data:`STATE_KEY`. Models read it with
:func:`layout_of` and decide the rest (device names, mounts) from the image's own files, at the
time they are called:

- **The disk's name** a booted guest sees (:func:`disk_name`), first match wins:
  ``DiskLayout.disk`` when the caller fixed it; the disk named for ``(hd0)`` in
  ``/boot/grub/device.map``; debconf's ``grub-pc/install_devices`` when it is a kernel name
  (``/dev/sda``, not a ``/dev/disk/by-id`` link); the disk of a ``/dev/...`` device named for
  ``/`` or ``/boot`` in ``/etc/fstab``; a ``root=/dev/...`` in the existing
  ``/boot/grub/grub.cfg``; otherwise ``/dev/vda`` (a virtio disk, what a KVM/QEMU cloud guest
  sees). A ``/dev/loopN`` found in the image is where it was built, not booted: skipped. Partition N of disk ``D`` is ``DN``, or ``DpN`` when ``D`` ends in a digit
  (``/dev/nvme0n1p2``, ``/dev/loop0p2``), as the kernel names them.
- **Mounts**: the layout's root filesystem is ``/``; ``/etc/fstab`` says which other paths
  are separate filesystems (:func:`fstab_mounts`). Nuwa opens only the root filesystem, so a
  model asked about a path on another one defers, naming it.
- **Abstractions** Nuwa cannot describe (LVM, software RAID, LUKS): :func:`abstraction_reason`
  says why a layout using them for ``/`` or ``/boot`` cannot be answered for.
"""

from __future__ import annotations

import posixpath
import re
import struct
from dataclasses import dataclass, field

#: the model-state key the patch job stores the layout under
STATE_KEY = "disk_layout"

#: the disk name used when the image says nothing (virtio-blk, a KVM/QEMU guest's first disk)
DEFAULT_DISK = "/dev/vda"

#: filesystem types of /etc/fstab lines that are not block devices of this disk
_VIRTUAL_FS = {"proc", "sysfs", "devpts", "tmpfs", "devtmpfs", "swap", "none", "cgroup", "cgroup2", "securityfs",
               "debugfs", "efivarfs", "binfmt_misc", "mqueue", "hugetlbfs", "nfs", "nfs4", "cifs", "9p",
               "virtiofs", "fuse", "overlay", "auto"}

#: a kernel disk name (not a partition): sda, vda, xvda, hda, nvme0n1, mmcblk0, loop0
_DISK_RE = re.compile(r"^/dev/(?:[shv]d[a-z]+|xvd[a-z]+|nvme\d+n\d+|mmcblk\d+|loop\d+)$")
#: a kernel partition name, split into disk and number
_PART_RE = re.compile(r"^(/dev/(?:[shv]d[a-z]+|xvd[a-z]+))(\d+)$|^(/dev/(?:nvme\d+n\d+|mmcblk\d+|loop\d+))p(\d+)$")


@dataclass(frozen=True)
class VolumeFacts:
    """One place a filesystem lives: a partition (``number``) or the whole disk (``number`` None)."""

    number: int | None
    fs_type: str = ""  # the sniffed type ("ext4", "vfat", "swap", "LVM2_member", ""...)
    uuid: str = ""  # the filesystem's UUID as blkid prints it
    label: str = ""
    partuuid: str = ""  # GPT unique partition GUID (lower case), MBR "<signature>-<nn>"
    part_type: str = ""  # GPT type GUID (upper case) or MBR type byte as two hex digits
    logical: bool = False  # an MBR logical partition
    #: ext2/3/4 only: s_blocks_count_lo << (10 + s_log_block_size), the size klibc's fstype
    #: prints (0: not an ext filesystem, or not read)
    fs_bytes: int = 0


@dataclass(frozen=True)
class DiskLayout:
    """The image's disk as a booted guest would see it (see the module note)."""

    scheme: str | None  # "gpt", "msdos" (GRUB's names) or None: a bare filesystem
    volumes: tuple[VolumeFacts, ...]
    root: int | None  # the number of the root filesystem's volume (None: the whole disk)
    disk: str = ""  # the guest's name for the disk; empty: decided from the image (disk_name)
    disk_id: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def volume(self, number: int | None) -> VolumeFacts | None:
        """The volume numbered ``number`` (None: the whole-disk filesystem), or None."""
        for v in self.volumes:
            if v.number == number:
                return v
        return None

    @property
    def root_volume(self) -> VolumeFacts:
        """The volume holding the root filesystem."""
        v = self.volume(self.root)
        assert v is not None, "a layout always holds its root volume"
        return v


def describe_image(image, disk: str = "") -> DiskLayout:
    """The :class:`DiskLayout` of an opened :class:`nuwa.image.Image` (its root volume found).

    ``disk`` fixes the guest's disk name (tests comparing with a real run on a loop device);
    empty lets :func:`disk_name` decide from the image's files.
    """
    scheme = {"gpt": "gpt", "mbr": "msdos"}.get(image.table.scheme)
    vols = []
    for vol in image.volumes:
        sig = vol.signature
        p = vol.partition
        ptype = ""
        if p is not None:
            ptype = p.type if isinstance(p.type, str) else f"{p.type:02x}"
        vols.append(VolumeFacts(
            number=vol.number, fs_type=sig.type if sig else "", uuid=sig.uuid if sig else "",
            label=sig.label if sig else "", partuuid=(p.uuid or "").lower() if p is not None else "",
            part_type=ptype, logical=p is not None and p.kind == "logical",
            fs_bytes=_ext_bytes(vol.device) if sig and sig.type in ("ext2", "ext3", "ext4") else 0))
    return DiskLayout(scheme=scheme, volumes=tuple(vols), root=image.root_volume().number, disk=disk,
                      disk_id=image.table.disk_id, warnings=tuple(image.table.warnings))


def _ext_bytes(dev) -> int:
    """klibc fstype's FSSIZE of an ext2/3/4 volume (``usr/kinit/fstype/fstype.c``: the 32-bit
    ``s_blocks_count`` shifted by the block size; the high half of 64-bit counts is ignored)."""
    sb = dev.pread(1024, 1024)
    blocks, log_block = struct.unpack_from("<I", sb, 0x04)[0], struct.unpack_from("<I", sb, 0x18)[0]
    return blocks << (10 + log_block)


def layout_of(state: dict) -> DiskLayout | None:
    """The layout the patch job stored in the model state (None: the caller gave none)."""
    lay = state.get(STATE_KEY)
    return lay if isinstance(lay, DiskLayout) else None


# --- device names ---------------------------------------------------------------------------

def partition_device(disk: str, number: int | None) -> str:
    """The kernel's name of partition ``number`` of ``disk`` (the disk itself for None)."""
    if number is None:
        return disk
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def split_device(name: str) -> tuple[str, int | None] | None:
    """``/dev/vda2`` -> (``/dev/vda``, 2); a disk name -> (name, None); anything else None."""
    if _DISK_RE.match(name):
        return name, None
    m = _PART_RE.match(name)
    if m is None:
        return None
    return (m.group(1), int(m.group(2))) if m.group(1) else (m.group(3), int(m.group(4)))


def volume_named(layout: DiskLayout, disk: str, name: str) -> tuple[VolumeFacts | None, str]:
    """The volume a device name denotes in the guest: a kernel name of ``disk``'s partitions
    (or the disk) or a ``/dev/disk/by-uuid|by-partuuid|by-label`` link; (None, why) otherwise."""
    for kind, attr in (("by-uuid", "uuid"), ("by-partuuid", "partuuid"), ("by-label", "label")):
        prefix = f"/dev/disk/{kind}/"
        if name.startswith(prefix):
            want = name[len(prefix):]
            found = [v for v in layout.volumes if getattr(v, attr) and getattr(v, attr) == want]
            return (found[0], "") if found else (None, f"{name} names no volume of this image")
    parts = split_device(name)
    if parts is None or parts[0] != disk:
        return None, f"{name} is not a device of this image's disk ({disk})"
    v = layout.volume(parts[1])
    return (v, "") if v is not None else (None, f"{name}: the image has no such partition")


def _read(fs, path: str) -> str:
    try:
        return fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except (OSError, ValueError):
        return ""


def _device_map_disk(fs) -> str:
    """The kernel disk name given for ``(hd0)`` in ``/boot/grub/device.map``, or ''."""
    for line in _read(fs, "/boot/grub/device.map").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] == "(hd0)" and _DISK_RE.match(words[1]):
            return words[1]
    return ""


def _debconf_install_device(fs) -> str:
    """debconf's ``grub-pc/install_devices`` when it is one kernel disk name, or ''."""
    text = _read(fs, "/var/cache/debconf/config.dat")
    for para in text.split("\n\n"):
        if "Name: grub-pc/install_devices" in para.splitlines():
            for line in para.splitlines():
                if line.startswith("Value: "):
                    value = line[len("Value: "):].strip()
                    return value if _DISK_RE.match(value) else ""
    return ""


def fstab_entries(fs) -> list[tuple[str, str, str]]:
    """``(device, mount point, type)`` of each ``/etc/fstab`` line (fstab(5), octal escapes kept)."""
    out = []
    for line in _read(fs, "/etc/fstab").splitlines():
        words = line.split()
        if len(words) >= 3 and not words[0].startswith("#"):
            out.append((words[0], posixpath.normpath(words[1]) if words[1].startswith("/") else words[1], words[2]))
    return out


def _fstab_disk(fs) -> str:
    for dev, mnt, _ in fstab_entries(fs):
        if mnt in ("/", "/boot"):
            parts = split_device(dev)
            if parts is not None:
                return parts[0]
    return ""


def _grub_cfg_disk(fs) -> str:
    m = re.search(r"\sroot=(/dev/[a-z0-9]+)\s", _read(fs, "/boot/grub/grub.cfg"))
    parts = split_device(m.group(1)) if m else None
    return parts[0] if parts else ""


def disk_name(layout: DiskLayout, fs) -> tuple[str, str]:
    """(the guest's name for the disk, which rule decided it); see the module note."""
    if layout.disk:
        return layout.disk, "given by the caller"
    for rule, fn in (("/boot/grub/device.map", _device_map_disk),
                     ("debconf grub-pc/install_devices", _debconf_install_device),
                     ("/etc/fstab", _fstab_disk), ("/boot/grub/grub.cfg", _grub_cfg_disk)):
        name = fn(fs)
        # a loop device is where an image was *built* (a grub.cfg written on the build host),
        # never the disk a guest boots from
        if name and not name.startswith("/dev/loop"):
            return name, rule
    return DEFAULT_DISK, "the default (a virtio disk)"


# --- mounts and abstractions ----------------------------------------------------------------

def fstab_mounts(fs) -> list[tuple[str, str, str]]:
    """Separate filesystems of ``/etc/fstab`` other than ``/``: (mount point, device, type)."""
    return [(mnt, dev, typ) for dev, mnt, typ in fstab_entries(fs)
            if mnt.startswith("/") and mnt != "/" and typ not in ("swap", "none")]


def mount_of(fs, path: str) -> tuple[str, str, str] | None:
    """The fstab mount (mount point, device, type) holding canonical ``path``; None: the root."""
    best = None
    for mnt, dev, typ in fstab_mounts(fs):
        if path == mnt or path.startswith(mnt.rstrip("/") + "/"):
            if best is None or len(mnt) > len(best[0]):
                best = (mnt, dev, typ)
    return best


def required_layout(inv) -> DiskLayout:
    """The run's disk description for a model that needs one (``inv``: its Invocation); the
    model is deferred, with the reason, when there is none or the layout is one it cannot
    describe (LVM, RAID, LUKS, a separate /boot...: :func:`abstraction_reason`)."""
    from nuwa.script.context import Defer  # late: context is the models' protocol, above this module

    lay = layout_of(inv.state)
    if lay is None:
        raise Defer(f"{inv.name}: no description of the image's disk was given to the simulator "
                    f"(the patch job gives one; a bare filesystem model has none)")
    why = abstraction_reason(inv.fs, lay)
    if why:
        raise Defer(f"{inv.name}: {why}")
    return lay


def abstraction_reason(fs, layout: DiskLayout) -> str:
    """Why ``/`` or ``/boot`` use a layer Nuwa cannot describe (LVM, RAID, LUKS); '' if none."""
    for dev, mnt, _ in fstab_entries(fs):
        if mnt not in ("/", "/boot"):
            continue
        if dev.startswith("/dev/mapper/") or dev.startswith("/dev/dm-"):
            return f"/etc/fstab mounts {mnt} from {dev} (LVM or LUKS, a device-mapper layout grub-probe " \
                   f"cannot be answered for offline)"
        if dev.startswith("/dev/md"):
            return f"/etc/fstab mounts {mnt} from {dev} (software RAID, which Nuwa cannot describe)"
        if re.match(r"^/dev/[^/]+/[^/]+$", dev) and not dev.startswith(("/dev/disk/",)):
            return f"/etc/fstab mounts {mnt} from {dev} (an LVM logical volume, which Nuwa cannot describe)"
    crypttab = [ln for ln in _read(fs, "/etc/crypttab").splitlines() if ln.split() and not ln.lstrip().startswith("#")]
    if crypttab and any(v.fs_type == "crypto_LUKS" for v in layout.volumes):
        return "the disk holds a LUKS volume listed in /etc/crypttab, which Nuwa cannot describe"
    if any(ln.startswith("ARRAY") for ln in _read(fs, "/etc/mdadm/mdadm.conf").splitlines()):
        return "/etc/mdadm/mdadm.conf declares a software RAID array, which Nuwa cannot describe"
    return ""
