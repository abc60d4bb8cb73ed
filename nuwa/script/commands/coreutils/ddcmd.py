"""Model of ``dd`` (coreutils 9.1 ``dd.c``) for the copies maintainer scripts make: a secret
from ``/dev/urandom`` (varnish's postinst), a file cut at an offset, zeros.

Operands ``if= of= bs= ibs= obs= count= skip= seek= conv=notrunc status=none|noxfer``; sizes
take dd's multipliers (``c w b kB K MB M xM``...). The statistics on stderr are dd's: "N+M
records in", "N+M records out" and "B bytes (SI, IEC) copied, T s, R/s" -- except the time
and rate at the end of that last line, which are the model's own elapsed time (the real
program's differ from run to run as well).

The booted guest's devices: a dormant image's ``/dev`` is empty (devtmpfs fills it at boot),
so ``/dev/zero``, ``/dev/null``, ``/dev/random`` and ``/dev/urandom`` are the kernel's (an
entry the image does hold is used only if it is that character device). ``/dev/random`` and
``/dev/urandom`` read the host's ``os.urandom``: a secret made offline must differ from image
to image exactly as one made at boot would, so there is deliberately no seed. Any other
device or special file is deferred, as are the operands and flags not listed.

Reading standard input: a pipe may deliver fewer bytes than a block per read, and then dd
counts partial records by the writer's timing; input larger than one input block from the
shell is therefore deferred (one block or less reads the same however it arrives).
"""

from __future__ import annotations

import os
import re
import stat as _stat
import time

from nuwa.script.commands._common import apath, err, errno_text, quote
from nuwa.script.commands.coreutils.human import NEAREST, human_readable
from nuwa.script.context import Defer, Invocation
from nuwa.script.endless import memory_device
from nuwa.script.entropy import random_bytes


#: dd.c ``parse_integer`` multipliers (xstrtoumax suffixes with dd's own ``c`` and ``w``)
_MULT = {"": 1, "c": 1, "w": 2, "b": 512}
for _i, _p in enumerate("KMGTPEZY", 1):
    _MULT[_p] = _MULT[_p + "iB"] = 1024 ** _i
    _MULT[_p + "B"] = 1000 ** _i
_MULT["k"] = 1024
_MULT["kB"] = 1000


def _number(text: str) -> int | None:
    """dd's size operand: a number with an optional multiplier, ``x``-products (``2x512``)."""
    total = 1
    for part in text.split("x"):
        m = re.fullmatch(r"(\d+)([A-Za-z]*)", part)
        if not m or m.group(2) not in _MULT:
            return None
        total *= int(m.group(1)) * _MULT[m.group(2)]
    return total


class _Source:
    """The input: bytes of a file, the kernel's zero or random device, or standard input."""

    def __init__(self, kind: str, data: bytes = b""):
        self.kind, self.data, self.pos = kind, data, 0

    def read(self, n: int) -> bytes:
        if self.kind == "zero":
            return bytes(n)
        if self.kind == "random":
            return random_bytes(n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def _device(inv: Invocation, path: str) -> str | None:
    """The kernel device ``path`` names in the booted guest ("null", "zero", "random"), or None
    for an ordinary path; defers for any other special file."""
    kind = memory_device(inv.fs, path)
    if kind is not None:
        return kind
    try:
        st = inv.fs.stat(path)
    except OSError:
        st = None
    if st is not None and not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode)):
        raise Defer(f"dd: {path} is a special file of the booted system")
    if st is None and path.startswith("/dev/"):
        raise Defer(f"dd: {path} is not in the dormant image's /dev: a special file of the booted system")
    return None


def dd(inv: Invocation) -> int:
    """``dd [OPERAND]...``: see the module note for what is modelled."""
    ops: dict[str, str] = {}
    for arg in inv.argv[1:]:
        if arg == "--":
            continue
        key, eq, value = arg.partition("=")
        if not eq:
            if arg.startswith("-"):
                raise Defer(f"dd option {arg}")
            err(inv, f"unrecognized operand {quote(arg)}")
            inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
            return 1
        if key not in ("if", "of", "bs", "ibs", "obs", "count", "skip", "seek", "conv", "status"):
            raise Defer(f"dd operand {key}=")
        ops[key] = value
    sizes = {}
    for key in ("bs", "ibs", "obs", "count", "skip", "seek"):
        if key in ops:
            n = _number(ops[key])
            if n is None or (key in ("bs", "ibs", "obs") and n == 0):
                err(inv, f"invalid number: {quote(ops[key])}")
                return 1
            sizes[key] = n
    conv = set(filter(None, ops.get("conv", "").split(",")))
    if conv - {"notrunc"}:
        raise Defer(f"dd conv={ops['conv']}")
    status = ops.get("status", "")
    if status not in ("", "none", "noxfer"):
        raise Defer(f"dd status={status}")
    ibs = sizes.get("bs", sizes.get("ibs", 512))
    obs = sizes.get("bs", sizes.get("obs", 512))
    if "bs" not in sizes and ibs != obs:
        raise Defer("dd with different ibs and obs (reblocking)")
    count = sizes.get("count")
    # the input is opened first, as dd.c does (a failed input leaves the output untouched)
    src = _open_input(inv, ops.get("if"))
    if isinstance(src, int):
        return src
    if src.kind == "stdin" and len(src.data) > ibs and (count is None or count > 1 or "skip" in sizes):
        raise Defer("dd reading more than one block of a pipe (its records depend on the writer's timing)")
    started = time.monotonic()
    # then the output, created and cut at the seek offset before anything is read (dd.c)
    st = _open_output(inv, ops.get("of"), sizes.get("seek", 0) * obs, "notrunc" in conv)
    if st:
        return st
    if src.kind == "dir":  # opening a directory works; reading it fails
        err(inv, f"error reading {quote(ops['if'])}: {os.strerror(21)}")
        _statistics(inv, status, 0, 0, 0, obs, started)
        return 1
    if src.kind == "file" and "skip" in sizes:
        src.pos = min(len(src.data), sizes["skip"] * ibs)
        skipped_short = sizes["skip"] * ibs > len(src.data)
    else:
        skipped_short = False
        for _ in range(sizes.get("skip", 0)):
            if src.kind == "stdin" and not src.read(ibs):
                skipped_short = True
                break
            if src.kind != "stdin":
                src.read(ibs)
    if skipped_short:
        err(inv, f"{quote(ops.get('if', 'standard input'))}: cannot skip to specified offset")
    full = partial = 0
    chunks = []
    while count is None or full + partial < count:
        block = src.read(ibs)
        if not block:
            break
        if len(block) == ibs:
            full += 1
        else:
            partial += 1
        chunks.append(block)
    data = b"".join(chunks)
    _write_output(inv, ops.get("of"), data, sizes.get("seek", 0) * obs)
    _statistics(inv, status, full, partial, len(data), obs, started)
    return 0


def _statistics(inv: Invocation, status: str, full: int, partial: int, nbytes: int, obs: int,
                started: float) -> None:
    """The records lines and the transfer line on stderr (none under ``status=none``)."""
    if status == "none":
        return
    out_full, out_part = nbytes // obs, int(nbytes % obs != 0)
    inv.err(f"{full}+{partial} records in\n{out_full}+{out_part} records out\n")
    if status != "noxfer":
        inv.err(_transfer_line(nbytes, time.monotonic() - started))


def _open_input(inv: Invocation, name: str | None) -> _Source | int:
    if name is None:
        return _Source("stdin", bytes(inv.stdin))
    p = apath(inv, name)
    dev = _device(inv, p)
    if dev == "null":
        return _Source("file")
    if dev is not None:
        return _Source(dev)
    try:
        st = inv.fs.stat(p)
        if _stat.S_ISDIR(st.st_mode):
            return _Source("dir")
        return _Source("file", inv.fs.read_bytes(p))
    except OSError as e:
        err(inv, f"failed to open {quote(name)}: {errno_text(e)}")
        return 1


def _open_output(inv: Invocation, name: str | None, offset: int, notrunc: bool) -> int:
    """Open the output as dd.c does (O_WRONLY|O_CREAT, 0666 minus the umask) and, unless
    ``conv=notrunc``, cut it at the seek offset; returns dd's status on failure."""
    if name is None:
        if offset:
            raise Defer("dd seek= on standard output")
        return 0
    p = apath(inv, name)
    dev = _device(inv, p)
    if dev == "null":
        return 0
    if dev is not None:
        raise Defer(f"dd writes to the device {name}")
    try:
        h = inv.fs.open_handle(p, os.O_WRONLY | os.O_CREAT, 0o666 & ~inv.umask)
        try:
            if not notrunc:
                h.truncate(offset)
        finally:
            h.close()
    except OSError as e:
        err(inv, f"failed to open {quote(name)}: {errno_text(e)}")
        return 1
    return 0


def _write_output(inv: Invocation, name: str | None, data: bytes, offset: int) -> None:
    """The copied bytes at ``offset`` of the output opened by :func:`_open_output`."""
    if name is None:
        inv.out(data)
        return
    p = apath(inv, name)
    if _device(inv, p) == "null" or not data:
        return
    h = inv.fs.open_handle(p, os.O_WRONLY)
    try:
        h.pwrite(offset, data)
    finally:
        h.close()


def _transfer_line(nbytes: int, seconds: float) -> str:
    """dd.c ``print_xfer_stats``: the byte count (with SI and IEC sizes once they have a prefix),
    then the elapsed time ("%g s") and the rate -- the model's own, see the module note."""
    opts = dict(rounding_style=NEAREST, space=True, unit_b=True)
    si, iec = human_readable(nbytes, 1000, **opts), human_readable(nbytes, 1024, **opts)
    if seconds > 0:
        rate = human_readable(int(nbytes / seconds), 1000, **opts) + "/s"
    else:
        rate = "Infinity B/s"
    when = f"{seconds:g} s"
    if si.endswith(" B"):
        noun = "byte" if nbytes == 1 else "bytes"
        return f"{nbytes} {noun} copied, {when}, {rate}\n"
    if iec.endswith(" B"):
        return f"{nbytes} bytes ({si}) copied, {when}, {rate}\n"
    return f"{nbytes} bytes ({si}, {iec}) copied, {when}, {rate}\n"
