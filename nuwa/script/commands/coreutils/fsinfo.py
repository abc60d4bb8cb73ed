"""What a booted guest says about its root filesystem: ``df`` (coreutils 9.1) and the device
number ``stat %d`` prints.

Both answer for the image as the booted guest sees it, never for the host Nuwa runs on:

- the **device** is the guest's block device holding the root filesystem (``/dev/vda1``...,
  named by :func:`nuwa.script.disklayout.disk_name`, numbered as the guest's ``/dev`` in
  :mod:`nuwa.script.guestdev`); only a run given the image's disk layout (the patch job, ``nuwa
  sh`` on an image) knows it. A filesystem model that is a host directory reports the host
  device of its files (``st_dev``), which is what the real program in a chroot of that
  directory prints; without either the invocation is deferred with that reason;
- the **sizes** are the filesystem's own counts (``statvfs``: for an ext4 image the superblock's
  ``s_blocks_count`` minus the overhead, ``s_free_blocks_count`` and ``s_r_blocks_count``, with
  what the pending overlay changes use subtracted). An in-memory filesystem model has a
  configured capacity, not a real one: ``df`` on it is deferred.

``df`` lists the one filesystem the model holds, mounted on ``/``. Other mounts a booted guest
has (``/proc``, ``/run``, ``/dev`` tmpfs, separate ``/boot`` or ``/var`` from ``/etc/fstab``)
exist only at boot: ``df`` without a file operand, or of a path on a separate fstab mount, is
deferred.
"""

from __future__ import annotations

from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, err, errno_text, quotef
from nuwa.script.commands.coreutils.human import human_readable
from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.context import Defer, Invocation
from nuwa.script.disklayout import disk_name, layout_of, mount_of, partition_device, required_layout
from nuwa.script.guestdev import guest_nodes


def root_device(inv: Invocation) -> tuple[str, int]:
    """(the guest's device name, its device number) for the image's root filesystem; defers
    (with the reason) when the run has no usable disk layout."""
    lay = required_layout(inv)
    disk, _ = disk_name(lay, inv.fs)
    name = partition_device(disk, lay.root_volume.number)
    node = guest_nodes(lay, inv.fs).get(name)
    if node is None or node[0] != "blk":
        raise Defer(f"{inv.name}: no device node for the root filesystem {name}")
    return name, node[1]


def device_number(inv: Invocation, st) -> int:
    """``st_dev`` for ``stat %d``: the host's for a host-directory model (the device its files
    are on, what stat in a chroot of it prints); with the image's disk layout the booted
    guest's root partition (the model holds one filesystem); without either the filesystem
    model's own number (0 for an overlay or in-memory model). That last number is no real
    device's, but it is the same for every path of the image, so comparisons between paths --
    what scripts use ``%d`` for (udev's chroot test, same-filesystem checks) -- come out as on
    the guest."""
    if st.st_dev or layout_of(inv.state) is None:
        return st.st_dev
    return root_device(inv)[1]


def _bottom(fs):
    """The backend under any overlays (an Overlay is itself a MemoryFS: look below it)."""
    seen = 0
    while isinstance(fs, Overlay) and seen < 16:
        fs, seen = fs.backend, seen + 1
    base = getattr(fs, "base", None)  # SubtreeFS and views wrap another model
    return _bottom(base) if base is not None and base is not fs else fs


# ---- df ----------------------------------------------------------------------------------------

_FIELDS = ("source", "fstype", "itotal", "iused", "iavail", "ipcent", "size", "used", "avail", "pcent",
           "file", "target")
#: df.c ``field_data``: default header and minimum width of each field
_FIELD_DATA = {"source": ("Filesystem", 14), "fstype": ("Type", 4), "size": ("blocks", 5), "used": ("Used", 5),
               "avail": ("Available", 5), "pcent": ("Use%", 4), "itotal": ("Inodes", 5), "iused": ("IUsed", 5),
               "iavail": ("IFree", 5), "ipcent": ("IUse%", 4), "target": ("Mounted on", 0), "file": ("File", 0)}
_LEFT = {"source", "fstype", "file", "target"}

_DF = _args.spec("aB:hHiklPTt:x:", {
    "all": "a", "block-size": "B", "human-readable": "h", "si": "H", "inodes": "i", "local": "l",
    "portability": "P", "print-type": "T", "type": "t", "exclude-type": "x",
    "output": ("output", _args.OPT), "total": ("total", _args.NO), "sync": ("sync", _args.NO),
    "no-sync": ("no-sync", _args.NO)})

_POWERS = "KMGTPEZY"


def _block_size(spec: str) -> tuple[int, str] | None:
    """``-B SPEC`` in gnulib ``human_options``' plain forms: N, K, 2M, MB, KiB... (None: other):
    (the block size, the suffix printed after each number: a unit given without a number is
    printed, ``humblock``'s ``human_SI``; "kB" for the decimal kilo)."""
    import re
    # xstrtoumax takes k, m, g, t in lower case too (df's valid suffixes "eEgGkKmMpPtTYZ0")
    m = re.fullmatch(r"(\d*)([KMGTPEZYkmgt]?)(iB|B)?", spec)
    if not m or not (m.group(1) or m.group(2)) or (m.group(3) and not m.group(2)):
        return None
    unit = m.group(2).upper()
    n = int(m.group(1) or 1)
    if unit:
        n *= (1000 if m.group(3) == "B" else 1024) ** (_POWERS.index(unit) + 1)
    if not n:
        return None
    suffix = ""
    if not m.group(1):
        suffix = ("k" if unit == "K" and m.group(3) == "B" else unit) + (m.group(3) or "")
    return n, suffix


#: gnulib human.c ``block_size_args``: the names a block size variable may give instead of a size
_HUMAN_NAMES = {"human-readable": 1024, "si": 1000}


def _env_block_size(inv: Invocation, posix: bool) -> tuple[int, int, str]:
    """The block size when no option gave one (df.c ``main``; gnulib ``humblock``): with ``-P``
    1024, or 512 when ``POSIXLY_CORRECT`` is set; otherwise the first of ``DF_BLOCK_SIZE``,
    ``BLOCK_SIZE``, ``BLOCKSIZE`` that is *set*, even empty (an empty or invalid value is not
    skipped for the next one: it gives the default size), then the default (1024, 512 under
    ``POSIXLY_CORRECT``). Returns (block size, human base or 0, unit suffix)."""
    default = 512 if "POSIXLY_CORRECT" in inv.env else 1024
    if posix:
        return default, 0, ""
    name = next((n for n in ("DF_BLOCK_SIZE", "BLOCK_SIZE", "BLOCKSIZE") if n in inv.env), None)
    if name is None:
        return default, 0, ""
    spec = inv.env[name]
    if spec.startswith("'"):
        raise Defer(f"df with {name}={spec}: digit grouping (the locale's) is not modelled")
    # ARGMATCH: a name or an unambiguous abbreviation of one
    names = [h for h in _HUMAN_NAMES if spec and h.startswith(spec)]
    if spec in _HUMAN_NAMES or len(names) == 1:
        return 1, _HUMAN_NAMES[spec if spec in _HUMAN_NAMES else names[0]], ""
    if not spec:
        return default, 0, ""  # xstrtoumax fails on "": human_options falls back to the default
    got = _block_size(spec)
    if got is None:
        raise Defer(f"df with {name}={spec}: block size forms other than N, K, M, G... are not modelled")
    return got[0], 0, got[1]


def _size_header(block: int) -> str:
    """df.c ``get_header``: the size column's "1K-blocks", "1M-blocks", "1kB-blocks"... (the base
    that divides the block size more exactly wins; ``human_suppress_point_zero``)."""
    q1000 = q1024 = block
    while True:
        d1000, d1024 = q1000 % 1000 == 0, q1024 % 1024 == 0
        q1000, q1024 = q1000 // 1000, q1024 // 1024
        if not (d1000 and d1024):
            break
    # neither divides: the options' base, which has no human_base_1024 for a plain number
    base = 1024 if d1024 and not d1000 else 1000
    # human_B only for the decimal base (the binary one prints "1K", not "1KiB")
    return human_readable(block, base, unit_b=base == 1000, suppress_point_zero=True) + "-blocks"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def df(inv: Invocation) -> int:
    """``df [-P] [-k] [-B SIZE] [-h|-H] [-i] [-T] [--output[=FIELDS]] FILE...`` (coreutils 9.1
    ``df.c``) for files on the image's root filesystem; see the module note."""
    try:
        opts, ops = _args.parse(inv, _DF)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    posix = inodes = ptype = False
    block, human, output, suffix = None, 0, None, ""
    for k, v in opts:
        if k == "P":
            posix = True
        elif k == "k":
            block, human, suffix = 1024, 0, ""
        elif k == "B":
            got, human = _block_size(v), 0
            if got is None:
                raise Defer(f"df -B {v}: block size forms other than N, K, M, G... are not modelled")
            block, suffix = got
        elif k in "hH":
            block, human, suffix = 1, (1024 if k == "h" else 1000), ""
        elif k == "i":
            inodes = True
        elif k == "T":
            ptype = True
        elif k == "output":
            output = (v or ",".join(_FIELDS)).split(",")
        elif k in ("l", "sync", "no-sync"):
            pass  # one local filesystem; its counts are the same synced or not
        else:
            raise Defer(f"df {'-' + k if len(k) == 1 else '--' + k}: filesystem selection is not modelled")
    if output is not None and (any(f not in _FIELDS for f in output) or len(set(output)) < len(output)
                               or posix or inodes or ptype):
        raise Defer("df --output with other options or unknown fields (usage errors are not modelled)")
    if not ops:
        raise Defer("df without a file lists every mount of the booted system (/proc, /run, tmpfs...)")
    if block is None:
        block, human, suffix = _env_block_size(inv, posix)
    if isinstance(_bottom(inv.fs), MemoryFS):
        raise Defer("df: an in-memory filesystem model has no real size")
    source, _ = root_device(inv)
    mode = "output" if output is not None else "inodes" if inodes else "human" if human else \
        "posix" if posix else "default"
    if output is None:
        output = ["source"] + (["fstype"] if ptype else [])
        output += ["itotal", "iused", "iavail", "ipcent"] if inodes else ["size", "used", "avail", "pcent"]
        output += ["target"]
    caption = {f: _FIELD_DATA[f][0] for f in output}
    if mode == "output":
        caption.update(size="Size", avail="Avail")
    elif mode == "human":
        caption.update(size="Size", avail="Avail")
    elif mode == "posix":
        caption["pcent"] = "Capacity"
    if "size" in output and (mode == "default" or (mode == "output" and not human)):
        caption["size"] = _size_header(block)
    elif "size" in output and mode == "posix":
        caption["size"] = f"{block}-blocks"
    rows = [[caption[f] for f in output]]
    status = 0
    for name in ops:
        p = apath(inv, name)
        try:
            inv.fs.stat(p)
        except OSError as e:
            err(inv, f"{quotef(name)}: {errno_text(e)}")
            status = 1
            continue
        if mount_of(inv.fs, _canonical(inv, p)) is not None:
            raise Defer(f"df {name}: on a separate filesystem of /etc/fstab, mounted only at boot")
        rows.append([_cell(inv, f, name, source, block, human, suffix) for f in output])
    if len(rows) == 1:  # every operand failed: its message was the error (no "no file systems")
        return status
    _print(inv, rows, output)
    return status


def _canonical(inv: Invocation, p: str) -> str:
    try:
        return canonicalize(inv, p, "e")
    except OSError:
        return p


def _cell(inv: Invocation, field: str, name: str, source: str, block: int, human: int, suffix: str) -> str:
    v = inv.fs.statvfs("/")
    if field == "source":
        return source
    if field == "fstype":
        return required_layout(inv).root_volume.fs_type or "-"
    if field == "target":
        return "/"
    if field == "file":
        return name
    if field.startswith("i") and field != "ipcent" or field == "ipcent":
        total, free = v.f_files, v.f_ffree
        used = total - free
        if field == "itotal":
            return _num(total, 1, 1, False)
        if field == "iused":
            return _num(used, 1, 1, False)
        if field == "iavail":
            return _num(v.f_favail, 1, 1, False)
        return _pct(used, v.f_favail)
    unit = v.f_frsize
    used = v.f_blocks - v.f_bfree
    if field == "size":
        return _num(v.f_blocks, unit, block, human) + suffix
    if field == "used":
        return _num(used, unit, block, human) + suffix
    if field == "avail":
        return _num(v.f_bavail, unit, block, human) + suffix
    return _pct(used, v.f_bavail)


def _num(n: int, unit: int, block: int, human) -> str:
    """A count of ``unit``-byte blocks in ``block``-byte output blocks, rounded up (human.c's
    default ``human_ceiling``), or human-readable."""
    if human:
        return human_readable(n * unit, human)
    return str(_ceil_div(n * unit, block))


def _pct(used: int, avail: int) -> str:
    """df.c: used / (used + available), rounded up; '-' when both are 0."""
    total = used + avail
    if total == 0:
        return "-"
    return f"{_ceil_div(used * 100, total)}%"


def _print(inv: Invocation, rows: list[list[str]], fields: list[str]) -> None:
    """df.c ``print_table``: columns as wide as their widest cell and at least the field's
    minimum, separated by one space; the last column is not padded."""
    widths = [max([len(r[i]) for r in rows] + [_FIELD_DATA[f][1]]) for i, f in enumerate(fields)]
    for r in rows:
        cells = []
        for i, (f, c) in enumerate(zip(fields, r)):
            if f in _LEFT:
                cells.append(c if i == len(fields) - 1 else c.ljust(widths[i]))
            else:
                cells.append(c.rjust(widths[i]))
        inv.out(" ".join(cells) + "\n")
