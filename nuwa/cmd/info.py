"""``nuwa info IMAGE [--json] [--partition N]``: the disk, its partitions, the root filesystem.

The text form starts like ``qemu-img info`` (same labels, same size notation) so the two can be
read side by side, then lists the partitions with what each holds, and the root
filesystem's label, UUID, features and operating system. ``--json`` prints
:meth:`nuwa.image.Image.info` as one JSON document.
"""

from __future__ import annotations

import json
import sys
import time

from nuwa.errors import EXIT_CORRUPT
from nuwa.api import Image  # the API's Image: info() includes the guest's architecture

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def size_to_str(n: int) -> str:
    """A byte count the way qemu-img prints it: three significant digits and a binary unit."""
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.3g} {_UNITS[unit]}"


def _clock(nsec: int) -> str:
    secs, ms = divmod(nsec // 1_000_000, 1000)
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{ms:03d}"


def _yes(b) -> str:
    return "true" if b else "false"


def format_disk(info: dict) -> list[str]:
    """The ``qemu-img info`` part: format, sizes, backing chain, snapshots, format details."""
    lines = [
        f"image: {info.get('image') or info.get('filename')}",
        f"file format: {info.get('format')}",
        f"virtual size: {size_to_str(info['virtual_size'])} ({info['virtual_size']} bytes)",
    ]
    if info.get("actual_size") is not None:
        lines.append(f"disk size: {size_to_str(info['actual_size'])}")
    if info.get("cluster_size"):
        lines.append(f"cluster_size: {info['cluster_size']}")
    if info.get("backing_file"):
        chain = info.get("backing_chain") or []
        actual = f" (actual path: {chain[0]['path']})" if chain and chain[0].get("path") != info["backing_file"] else ""
        lines.append(f"backing file: {info['backing_file']}{actual}")
        if info.get("backing_format"):
            lines.append(f"backing file format: {info['backing_format']}")
        for depth, link in enumerate(chain[1:], start=2):
            lines.append(f"backing chain level {depth}: {link.get('path')} ({link.get('format')})")
    snaps = info.get("snapshots") or []
    if snaps:
        lines.append("Snapshot list:")
        lines.append(f"{'ID':<10}{'TAG':<18}{'VM SIZE':>8}{'DATE':>20}{'VM CLOCK':>16}{'ICOUNT':>11}")
        for s in snaps:
            date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.get("date_sec", 0)))
            icount = s.get("icount")
            lines.append(f"{s.get('id', ''):<10}{s.get('name', ''):<18}{size_to_str(s.get('vm_state_size', 0)):>8}"
                         f"{date:>20}{_clock(s.get('vm_clock_nsec', 0)):>16}"
                         f"{'' if icount is None else icount:>11}")
    if info.get("format") == "qcow2":
        lines.append("Format specific information:")
        lines.append(f"    compat: {info.get('compat')}")
        lines.append(f"    compression type: {info.get('compression_type')}")
        lines.append(f"    lazy refcounts: {_yes(info.get('lazy_refcounts'))}")
        if info.get("bitmaps"):
            lines.append("    bitmaps: " + ", ".join(b["name"] for b in info["bitmaps"]))
        lines.append(f"    refcount bits: {info.get('refcount_bits')}")
        if info.get("encrypted"):
            lines.append(f"    encrypted: {info['encrypted']}")
        lines.append(f"    corrupt: {_yes(info.get('corrupt'))}")
        lines.append(f"    dirty: {_yes(info.get('dirty'))}")
        if info.get("data_file"):
            lines.append(f"    data file: {info['data_file']}")
        lines.append(f"    extended l2: {_yes(info.get('extended_l2'))}")
    return lines


def _fs_text(fs: dict | None) -> str:
    if not fs:
        return "-"
    text = fs["type"]
    if fs.get("version") and fs["type"] in ("vfat", "crypto_LUKS"):
        text += f" ({fs['version']})"
    if fs.get("label"):
        text += f" label={json.dumps(fs['label'], ensure_ascii=False)}"
    if fs.get("uuid"):
        text += f" uuid={fs['uuid']}"
    return text


def format_partitions(info: dict) -> list[str]:
    """The partition table (or the bare filesystem) as an aligned table."""
    table = info["partition_table"]
    lines = [""]
    if table["scheme"] is None:
        lines.append(f"Partition table: none (bare filesystem: {_fs_text(info.get('filesystem'))})")
        return lines
    ident = f", disk id {table['disk_id']}" if table.get("disk_id") else ""
    lines.append(f"Partition table: {table['scheme']}, {table['sector_size']}-byte sectors{ident}")
    rows = [("#", "Start", "End", "Sectors", "Size", "Type", "Name", "Filesystem")]
    for p in info["partitions"]:
        type_text = p["type_name"] if p["type_name"] != "unknown" else p["type"]
        if p["kind"] in ("extended", "logical"):
            type_text += f" ({p['kind']})"
        if p["bootable"]:
            type_text += " *"
        rows.append((str(p["number"]), str(p["start"]), str(p["end"]), str(p["size"]),
                     size_to_str(p["length"]), type_text, p["name"] or "-", _fs_text(p["filesystem"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        lines.append("  " + "  ".join(c.rjust(w) if 0 < i < 5 else c.ljust(w)
                                       for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[-1])
    for w in table["warnings"]:
        lines.append(f"  warning: {w}")
    return lines


def format_root(info: dict) -> list[str]:
    """The root filesystem and the OS it holds."""
    root = info.get("root") or {}
    lines = [""]
    if "error" in root:
        lines.append(f"Root filesystem: not available: {root['error']}")
        return lines
    where = f"partition {root['partition']}" if root.get("partition") is not None else "whole disk"
    lines.append(f"Root filesystem: {where}, {root.get('type')}")
    lines.append(f"  label: {root.get('label') or '-'}")
    lines.append(f"  UUID: {root.get('uuid') or '-'}")
    if root.get("features"):
        lines.append(f"  features: {' '.join(root['features'])}")
    os_info = root.get("os") or {}
    if "error" in os_info:
        lines.append(f"  OS: unknown ({os_info['error']})")
    elif os_info:
        name = os_info.get("pretty_name") or os_info.get("name") or os_info.get("id", "?")
        facts = " ".join(f"{k.upper()}={os_info[k]}" for k in ("id", "version_id", "version_codename") if k in os_info)
        lines.append(f"  OS: {name} ({facts})")
    arch = root.get("architecture") or {}
    if "error" in arch:
        lines.append(f"  architecture: unknown ({arch['error']})")
    elif arch.get("native"):
        foreign = f", foreign: {' '.join(arch['foreign'])}" if arch.get("foreign") else ""
        machine = f" ({arch['machine']})" if arch.get("machine") else ""
        lines.append(f"  architecture: {arch['native']}{machine}{foreign}")
    return lines


def format_info(info: dict) -> str:
    """The whole human-readable report."""
    return "\n".join(format_disk(info) + format_partitions(info) + format_root(info)) + "\n"


def run_info(args) -> int:
    """Handler of ``nuwa info``."""
    with Image.open(args.image, writable=False, partition=getattr(args, "partition", None)) as image:
        info = image.info()
        root_error = image.root_error
    if getattr(args, "json", False):
        json.dump(info, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_info(info))
    # A disk without a Debian root is still described (exit 0); a damaged or refused root
    # filesystem is the image's fault: report it after the description, with its exit code.
    if root_error is not None and root_error.exit_code == EXIT_CORRUPT:
        sys.stdout.flush()
        print(f"nuwa info: {root_error}", file=sys.stderr)
        return EXIT_CORRUPT
    return 0
