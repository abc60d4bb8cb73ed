"""What initramfs hooks ask about the image's own block devices: ``blkid`` (util-linux 2.38) and
klibc's ``fstype`` (klibc 2.0.12), answered from the patch job's description of the image's
disk (:class:`nuwa.script.disklayout.DiskLayout`), never from a host device.

initramfs-tools' ``fsck`` hook turns the root entry of ``/etc/fstab`` into a device with
``resolve_device`` (``blkid -l -t UUID=... -o device``), then asks its type with
``/usr/lib/klibc/bin/fstype DEVICE`` (``blkid -o value -s TYPE DEVICE`` when that says
``unknown``) to choose which ``fsck.TYPE`` to copy into the initramfs; the ``resume`` hook asks
``blkid -s UUID -o value`` of a swap device. Device names are the booted guest's
(``disklayout.disk_name``: ``/dev/vda2``...), the same names the simulated ``/dev`` shows.

Only the forms whose output is known exactly are answered; the rest is deferred with the
reason: blkid's full and ``export``/``udev`` output (it lists tags Nuwa does not keep, such as
``BLOCK_SIZE`` and ``PARTLABEL``), low-level probing (``-p``: other tag names), a tag the
volume does not have (the exit status then depends on libblkid's cache), devices that are not
of the image's disk, and filesystems other than ext2/3/4 for ``fstype`` (the size it prints
is computed per filesystem).
"""

from __future__ import annotations

from nuwa.script.context import Defer, Invocation
from nuwa.script.disklayout import (DiskLayout, VolumeFacts, disk_name, required_layout,
                                    partition_device, volume_named)

#: blkid tag name -> VolumeFacts attribute (tags libblkid's cache holds for a partition)
_TAGS = {"UUID": "uuid", "TYPE": "fs_type", "LABEL": "label", "PARTUUID": "partuuid"}

#: blkid options that take an argument (util-linux misc-utils/blkid.c ``getopt_long`` string)
_WITH_ARG = set("cLnoOsStUuw")


def _layout(inv: Invocation) -> tuple[DiskLayout, str]:
    lay = required_layout(inv)
    return lay, disk_name(lay, inv.fs)[0]


def _devices(lay: DiskLayout, disk: str) -> list[tuple[str, VolumeFacts]]:
    """(guest device name, volume) of every volume holding something, in partition order --
    the order of ``/proc/partitions`` that libblkid's ``blkid_probe_all`` scans."""
    return [(partition_device(disk, v.number), v) for v in sorted(lay.volumes, key=lambda v: v.number or 0)
            if v.fs_type]


def _parse_token(inv: Invocation, token: str) -> tuple[str, str]:
    """``NAME=value`` (value optionally quoted), as ``blkid_parse_tag_string``."""
    if "=" not in token:
        raise Defer(f"{inv.name}: -t {token}: a token without '=' is not modelled")
    name, value = token.split("=", 1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if name not in _TAGS:
        raise Defer(f"{inv.name}: -t {name}=...: only {', '.join(_TAGS)} are modelled")
    return name, value


def blkid(inv: Invocation) -> int:
    """``blkid [-c FILE] [-l] -t NAME=VALUE -o device``, ``blkid -L LABEL`` / ``-U UUID``, and
    ``blkid [-c FILE] -o value -s TAG DEVICE...`` about the image's own disk (module note)."""
    p = inv.name
    args = inv.argv[1:]
    opts: list[tuple[str, str]] = []
    devices: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            devices.extend(args[i + 1:])
            break
        if a.startswith("--") or a == "-":
            raise Defer(f"{p}: {a}: long options are not modelled")
        if a.startswith("-"):
            j = 1
            while j < len(a):
                c = a[j]
                if c in _WITH_ARG:
                    val = a[j + 1:]
                    if not val:
                        i += 1
                        if i >= len(args):
                            raise Defer(f"{p}: -{c} without its argument is not modelled")
                        val = args[i]
                    opts.append((c, val))
                    break
                opts.append((c, ""))
                j += 1
        else:
            devices.append(a)
        i += 1
    fmt, tags, tokens, first = "full", [], [], False
    for c, val in opts:
        if c == "c":
            continue  # the cache file: the answers are the same without it
        if c == "l":
            first = True
        elif c == "o":
            fmt = val
        elif c == "s":
            tags.append(val)
        elif c == "t":
            tokens.append(val)
        elif c in "LU":
            tokens.append(("LABEL=" if c == "L" else "UUID=") + val)
            fmt, first = "device", True
        else:
            raise Defer(f"{p}: -{c}: not modelled (only -c, -l, -L, -U, -o device|value, -s, -t)")
    lay, disk = _layout(inv)
    if tokens:
        if devices or tags or fmt != "device" or len(tokens) != 1:
            raise Defer(f"{p}: {' '.join(args)}: only -t NAME=VALUE -o device is modelled")
        name, value = _parse_token(inv, tokens[0])
        found = [dev for dev, v in _devices(lay, disk) if getattr(v, _TAGS[name]) == value]
        if not found:
            return 2  # BLKID_EXIT_NOTFOUND
        for dev in found[:1] if first else found:
            inv.out(dev + "\n")
        return 0
    if fmt != "value" or len(tags) != 1 or tags[0] not in _TAGS or not devices:
        raise Defer(f"{p}: {' '.join(args) or 'no arguments'}: only -o value -s "
                    f"{'|'.join(_TAGS)} DEVICE... and -t NAME=VALUE -o device are modelled")
    for dev in devices:
        v, why = volume_named(lay, disk, dev)
        if v is None:
            raise Defer(f"{p}: {why}")
        value = getattr(v, _TAGS[tags[0]])
        if not value:
            raise Defer(f"{p}: {dev} has no {tags[0]} (blkid's status then depends on its cache)")
        inv.out(value + "\n")
    return 0


def fstype(inv: Invocation) -> int:
    """klibc's ``fstype [DEVICE]``: ``FSTYPE=TYPE`` and ``FSSIZE=BYTES`` of an ext2/3/4 volume of
    the image's disk (``usr/kinit/fstype/main.c`` prints both lines; exit 0)."""
    p = inv.name
    args = inv.argv[1:]
    if len(args) != 1 or args[0] == "-":
        raise Defer(f"{p}: {' '.join(args) or 'standard input'}: only one DEVICE is modelled")
    lay, disk = _layout(inv)
    v, why = volume_named(lay, disk, args[0])
    if v is None:
        raise Defer(f"{p}: {why}")
    if v.fs_type not in ("ext2", "ext3", "ext4") or not v.fs_bytes:
        raise Defer(f"{p}: {args[0]} holds {v.fs_type or 'nothing Nuwa recognises'}; only ext2/3/4 are modelled")
    inv.out(f"FSTYPE={v.fs_type}\nFSSIZE={v.fs_bytes}\n")
    return 0
