"""``grub-probe`` and ``grub-mkrelpath`` (GRUB 2.06-13 of Debian 12), answered from the image.

The real programs look at the running system's mounts and block devices; these models answer
the same questions from :class:`nuwa.script.disklayout.DiskLayout`, the patch job's description
of the image's own disk (partition table, filesystems, UUIDs, labels), never from a host
device. How the guest's device names are chosen is in ``nuwa/script/disklayout.py`` and
docs/kernel.md ("GRUB").

Mirrors ``util/grub-probe.c`` (``probe``, ``probe_partmap``, ``probe_abstraction``) and
``grub-core/osdep/linux/getroot.c``/``util/getroot.c`` (``grub_util_guess_bios_drive``,
``..._efi_drive``, ``..._baremetal_drive``, ``grub_util_fprint_full_disk_name``), plus Debian's
``partuuid`` target. What is not answered exactly is deferred: a path on a filesystem other
than the root one (``/boot`` on its own partition: Nuwa opens only the root filesystem), LVM,
RAID and LUKS layouts, filesystems other than ext2/3/4 and FAT, ``zero_check`` (it reads the
whole device), and ``-m`` with another device map.
"""

from __future__ import annotations

from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.context import Defer, Invocation
from nuwa.script.disklayout import (DiskLayout, VolumeFacts, disk_name, mount_of, required_layout,
                                    partition_device, split_device)

#: grub-probe's targets (``targets[]`` in grub-probe.c, plus Debian's partuuid)
TARGETS = ("fs", "fs_uuid", "fs_label", "drive", "device", "partmap", "abstraction", "cryptodisk_uuid",
           "hints_string", "bios_hints", "ieee1275_hints", "baremetal_hints", "efi_hints", "arc_hints",
           "compatibility_hint", "msdos_parttype", "gpt_parttype", "zero_check", "disk", "partuuid")

#: the GRUB filesystem driver's name for what blkid calls the volume (grub-core/fs/*.c ``name``)
_GRUB_FS = {"ext2": "ext2", "ext3": "ext2", "ext4": "ext2", "vfat": "fat"}

_USAGE = ("Usage: {p} [OPTION...] [OPTION]... [PATH|DEVICE]\n"
          "Try '{p} --help' or '{p} --usage' for more information.\n")

DEVICE_MAP = "/boot/grub/device.map"



def _canonical(inv: Invocation, path: str) -> str | None:
    """canonicalize_file_name(3) inside the image; None when it fails (the caller reports it)."""
    try:
        return canonicalize(inv, inv.path(path), "e")
    except OSError:
        return None


def _volume_of_path(inv: Invocation, lay: DiskLayout, canon: str) -> VolumeFacts:
    """The volume holding canonical ``canon``: the root one, unless /etc/fstab mounts another."""
    m = mount_of(inv.fs, canon)
    if m is not None:
        mnt, dev, typ = m
        raise Defer(f"{inv.name}: {canon} is on {mnt} ({dev}, {typ}), a filesystem other than the root one, "
                    f"which Nuwa does not open")
    return lay.root_volume


def _volume_of_device(inv: Invocation, lay: DiskLayout, disk: str, name: str) -> VolumeFacts:
    """The volume a device argument (``-d``) names: a kernel name or a /dev/disk/by-* link."""
    for kind, attr in (("by-uuid", "uuid"), ("by-partuuid", "partuuid"), ("by-label", "label")):
        prefix = f"/dev/disk/{kind}/"
        if name.startswith(prefix):
            want = name[len(prefix):]
            for v in lay.volumes:
                if getattr(v, attr) and getattr(v, attr) == want:
                    return v
            raise Defer(f"{inv.name}: {name} names no volume of this image")
    parts = split_device(name)
    if parts is None or parts[0] != disk:
        raise Defer(f"{inv.name}: {name} is not a device of this image's disk ({disk})")
    v = lay.volume(parts[1])
    if v is None:
        raise Defer(f"{inv.name}: {name}: the image has no such partition")
    return v


def _device_map(inv: Invocation, disk: str) -> str | None:
    """The GRUB drive ``device.map`` gives ``disk`` (grub_util_biosdisk_get_compatibility_hint)."""
    try:
        text = inv.fs.read_bytes(DEVICE_MAP).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0].startswith("(") and words[0].endswith(")"):
            if words[1] == disk:
                return words[0][1:-1]
            if not words[1].startswith("/dev/") or words[1].startswith("/dev/disk/"):
                raise Defer(f"{inv.name}: {DEVICE_MAP} names {words[1]}, which cannot be resolved offline")
    return None


def _guess(osdev: str, kind: str) -> str | None:
    """grub_util_guess_{bios,efi,baremetal}_drive: from the device's base name."""
    base = osdev.rsplit("/", 1)[-1]
    if len(base) < 3:
        return None
    num = ord(base[2]) - ord("a")
    if base[1] == "d" and (base[0] == "h" or (base[0] == "s" and kind != "baremetal")):
        return f"ata{num}" if kind == "baremetal" else f"hd{num}"
    if kind == "baremetal" and base.startswith("sd"):
        return f"ahci{num}"
    if base.startswith("fd") and kind != "baremetal":
        digits = ""
        for c in base[2:]:
            if not c.isdigit():
                break
            digits += c
        return f"fd{int(digits or '0')}"
    return None


def _full(lay: DiskLayout, drive: str, v: VolumeFacts) -> str:
    """grub_util_fprint_full_disk_name: ``drive,gptN`` (commas in ``drive`` escaped)."""
    drive = drive.replace(",", "\\,")
    if v.number is None or lay.scheme is None:
        return drive
    return f"{drive},{lay.scheme}{v.number}"


def grub_probe(inv: Invocation) -> int:
    """The ``grub-probe`` model (GRUB 2.06 ``util/grub-probe.c``; see the module note)."""
    p = inv.name
    target, is_device, zero, dev_map = "fs", False, False, None
    args: list[str] = []
    argv = inv.argv[1:]
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            args += argv[i + 1:]
            break
        if a in ("-d", "--device"):
            is_device = True
        elif a == "-0":
            zero = True
        elif a in ("-v", "--verbose"):
            pass
        elif a in ("-t", "--target", "-m", "--device-map") or a.startswith(("--target=", "--device-map=")) \
                or (a[:2] in ("-t", "-m") and len(a) > 2):
            if "=" in a and a.startswith("--"):
                name, val = a.split("=", 1)
            elif a in ("-t", "--target", "-m", "--device-map"):
                if i + 1 >= len(argv):
                    inv.err(f"{p}: option requires an argument -- '{a.lstrip('-')[0]}'\n" + _USAGE.format(p=p))
                    return 64
                name, val = a, argv[i + 1]
                i += 1
            else:
                name, val = a[:2], a[2:]
            if name in ("-t", "--target"):
                if val not in TARGETS:
                    inv.err(_USAGE.format(p=p))
                    return 64
                target = val
            else:
                dev_map = val
        elif a.startswith("-") and a != "-":
            raise Defer(f"{p}: option {a} not modelled")
        else:
            args.append(a)
        i += 1
    if not args:
        inv.err("No path or device is specified.\n" + _USAGE.format(p=p))
        return 64
    if len(args) != 1 and not is_device:
        inv.err(f"Unknown extra argument `{args[1]}'.\nUsage: {p} [OPTION...] [OPTION]... [PATH|DEVICE]\n")
        return 1
    if dev_map is not None and dev_map != DEVICE_MAP:
        raise Defer(f"{p}: -m {dev_map}: another device map is not modelled")
    if target == "zero_check":
        raise Defer(f"{p}: --target=zero_check reads the whole device")
    lay = required_layout(inv)
    disk, _rule = disk_name(lay, inv.fs)
    delim = "\0" if zero else (" " if target.endswith("_hints") else "\n")
    if is_device:
        pairs = [(a, _volume_of_device(inv, lay, disk, a)) for a in args]
        pairs = [(partition_device(disk, v.number), v) for _, v in pairs]
    else:
        canon = _canonical(inv, args[0])
        if canon is None:
            inv.err(f"{p}: error: failed to get canonical path of `{args[0]}'.\n")
            return 1
        v = _volume_of_path(inv, lay, canon)
        pairs = [(partition_device(disk, v.number), v)]
    st = _print(inv, lay, disk, target, pairs, delim)
    if st == 0 and delim == " ":
        inv.out("\n")
    return st


def _print(inv: Invocation, lay: DiskLayout, disk: str, target: str, pairs, delim: str) -> int:
    p = inv.name
    if target == "device":
        inv.out("".join(dev + delim for dev, _ in pairs))
        return 0
    if target == "disk":
        inv.out("".join(disk + delim for _ in pairs))
        return 0
    mapped = _device_map(inv, disk)
    drive = mapped if mapped is not None else f"hostdisk/{disk}"
    if target == "drive":
        inv.out("".join(f"({_full(lay, drive, v)})" + delim for _, v in pairs))
        return 0
    if target in ("fs", "fs_uuid", "fs_label"):
        v = pairs[0][1]
        fs = _GRUB_FS.get(v.fs_type)
        if not v.fs_type:
            inv.err(f"{p}: error: unknown filesystem.\n")
            return 1
        if fs is None:
            raise Defer(f"{p}: the filesystem {v.fs_type} is not modelled")
        value = {"fs": fs, "fs_uuid": v.uuid, "fs_label": v.label}[target]
        inv.out(value + delim)
        return 0
    out = []
    for n, (dev, v) in enumerate(pairs):
        if target == "hints_string":
            hints = [f"--hint-{k}={_full(lay, g, v)} " for k, g in
                     (("bios", _guess(dev, "bios")), ("efi", _guess(dev, "efi")),
                      ("baremetal", _guess(dev, "baremetal"))) if g]
            if mapped is not None:
                hints.append(f"--hint='{_full(lay, mapped, v)}' ")
            if not hints and not dev.rsplit("/", 1)[-1].startswith(("sd", "hd", "fd", "sr", "nvme")):
                # ofpath.c: grub_util_devname_to_ofpath knows no such device type
                inv.err(f"{p}: warning: unknown device type {disk.rsplit('/', 1)[-1]}.\n")
            out.append("".join(hints) + (" " if n + 1 < len(pairs) else "\n"))
        elif target == "compatibility_hint":
            g = mapped if mapped is not None else _guess(dev, "bios")
            if g:
                out.append(_full(lay, g, v) + delim)
                break  # "Compatibility hint is one device only."
        elif target == "bios_hints":
            g = _guess(dev, "bios")
            out.append(_full(lay, g, v) + delim if g else "")
        elif target in ("efi_hints", "baremetal_hints"):
            g = _guess(dev, target.split("_")[0])
            out.append((_full(lay, mapped, v) + delim if mapped else "") + (_full(lay, g, v) + delim if g else ""))
        elif target in ("ieee1275_hints", "arc_hints"):
            out.append(_full(lay, mapped, v) + delim if mapped else "")
        elif target in ("abstraction", "cryptodisk_uuid"):
            pass  # a plain partition: no LVM, RAID or LUKS layer (those were deferred above)
        elif target == "partmap":
            out.append(lay.scheme + delim if lay.scheme and v.number is not None else "")
        elif target == "partuuid":
            out.append((v.partuuid if v.number is not None else "") + delim)
        elif target == "msdos_parttype":
            out.append((v.part_type if lay.scheme == "msdos" and v.number is not None else "") + delim)
        elif target == "gpt_parttype":
            out.append((v.part_type.lower() if lay.scheme == "gpt" and v.number is not None else "") + delim)
    inv.out("".join(out))
    return 0


def grub_mkrelpath(inv: Invocation) -> int:
    """``grub-mkrelpath PATH`` (GRUB 2.06 ``util/grub-mkrelpath.c``): PATH relative to the root
    of the filesystem holding it; on the image's root filesystem that is its canonical form."""
    p = inv.name
    args = [a for a in inv.argv[1:]]
    if any(a.startswith("-") and a != "-" for a in args) or len(args) != 1:
        raise Defer(f"{p}: {' '.join(inv.argv[1:]) or 'no arguments'}: only one PATH is modelled")
    canon = _canonical(inv, args[0])
    if canon is None:
        inv.err(f"{p}: error: failed to get canonical path of `{args[0]}'.\n")
        return 1
    m = mount_of(inv.fs, canon)
    if m is not None:
        raise Defer(f"{p}: {canon} is on {m[0]} ({m[1]}), a filesystem other than the root one, "
                    f"which Nuwa does not open")
    # btrfs subvolumes would be stripped too; the root filesystem Nuwa opens is ext2/3/4
    inv.out(canon + "\n")
    return 0

