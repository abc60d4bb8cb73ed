"""Model of ``od`` (coreutils 9.1 ``od.c``): the integer and character dumps scripts make
(``od -Ax -tx1``, ``od -A n -N 2 -l``, ``head -c 5 /dev/zero | od``).

Formats: ``-t`` with ``a``, ``c``, ``d``/``o``/``u``/``x`` and a size (``1 2 4 8`` or ``C S I
L``), a ``z`` suffix (the printable trailer), several ``-t`` accumulating; the traditional
letters ``-a -b -c -d -D -i -I -l -L -o -B -O -s -x -X -h -H``; ``-A d|o|x|n``, ``-j``, ``-N``
(with od's multipliers and ``0x`` numbers), ``-v``, ``-w[N]``. Files are concatenated, ``-`` is
standard input; the kernel's ``/dev/zero`` and ``/dev/urandom`` are read as ``head`` reads
them when ``-N`` bounds the dump (without it od would read them forever: deferred).

Output follows ``write_block``/``dump``: the address in its radix and width, each format's
fields right-aligned in the widths od computes (fields of several formats aligned under each
other by ``pad_width``), a partial last element zero-filled, identical full lines after the
first shown as one ``*`` unless ``-v``, and the end address alone on the last line (nothing
with ``-A n``). Multi-byte values are read in the *image's* byte order and ``long`` has the
image's width (its architecture, :func:`nuwa.deb.arch.image_machine`); an image of unknown
architecture defers them. Deferred: floating-point formats, ``-S``/``--strings``,
``--endian``, ``--traditional`` and the old offset operands (``od FILE +OFFSET``).
"""

from __future__ import annotations

import math
import re

from nuwa.deb.arch import image_machine
from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, quote
from nuwa.script.commands.coreutils.text import read_or_report
from nuwa.script.context import Defer, Invocation
from nuwa.script.endless import NEVER, device_stream, memory_device

_SPEC = _args.spec("A:aBbcDdeFfHhIij:LlN:OoS:st:vw::Xx", {
    "skip-bytes": "j", "address-radix": "A", "read-bytes": "N", "format": "t",
    "output-duplicates": "v", "strings": ("S", _args.OPT), "width": ("w", _args.OPT),
})

#: the traditional letters and the -t string each stands for (od.c CASE_OLD_ARG)
_OLD = {"a": "a", "b": "o1", "c": "c", "D": "u4", "d": "u2", "i": "dI", "I": "dL", "L": "dL", "l": "dL",
        "O": "o4", "B": "o2", "o": "o2", "s": "d2", "h": "x2", "x": "x2", "X": "x4", "H": "x4"}

#: od.c's bytes_to_*_digits, indexed by the size in bytes
_OCT = (0, 3, 6, 8, 11, 14, 16, 19, 22)
_SDEC = (1, 4, 6, 8, 11, 13, 16, 18, 20)
_UDEC = (0, 3, 5, 8, 10, 13, 15, 17, 20)
_HEX = (0, 2, 4, 6, 8, 10, 12, 14, 16)

_CHARNAME = ("nul soh stx etx eot enq ack bel bs ht nl vt ff cr so si dle dc1 dc2 dc3 dc4 nak syn etb "
             "can em sub esc fs gs rs us sp").split()
_ESCAPES = {0: "\\0", 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}

#: xstrtoumax multipliers od accepts ("bEGKkMmPTYZ0" in 9.1), with the optional B/iB forms
_MULT = {"": 1, "b": 512, "k": 1024}
for _i, _p in enumerate("KMGTPEZY", 1):
    _MULT[_p] = _MULT[_p + "iB"] = 1024 ** _i
    _MULT[_p + "B"] = 1000 ** _i
_MULT["m"] = 1024 ** 2


class _Usage(Exception):
    """A fatal message od prints (``od: ...``), status 1."""


class _Fmt:
    """One output format (od.c ``struct tspec``)."""

    def __init__(self, kind: str, size: int, width: int, trailer: bool):
        self.kind, self.size, self.width, self.trailer = kind, size, width, trailer
        self.pad = 0

    def text(self, chunk: bytes, order: str) -> str:
        """One element as od formats it (before the alignment padding)."""
        if self.kind == "a":
            c = chunk[0] & 0x7F
            return "del" if c == 127 else (_CHARNAME[c] if c <= 32 else chr(c))
        if self.kind == "c":
            c = chunk[0]
            return _ESCAPES.get(c) or (chr(c) if 32 <= c < 127 else f"{c:03o}")
        v = int.from_bytes(chunk, order, signed=self.kind == "d")
        if self.kind == "o":
            return f"{v:0{self.width}o}"
        if self.kind == "x":
            return f"{v:0{self.width}x}"
        return str(v)


def _number(text: str, opt: str, base: int = 0, suffixes: dict = _MULT) -> int:
    """An option's number as gnulib ``xstrtoumax`` reads it (``base`` 0: ``0x`` hex, a leading
    ``0`` octal, else decimal), with a multiplier suffix from ``suffixes``; od's messages."""
    pattern = r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)" if base == 0 else r"([0-9]+)"
    m = re.match(pattern, text)
    if not m:
        raise _Usage(f"invalid {opt} argument {quote(text)}")
    rest = text[m.end():]
    if rest not in suffixes:
        raise _Usage(f"invalid suffix in {opt} argument {quote(text)}")
    digits = m.group(1)
    if base == 0:
        base = 16 if digits[:2].lower() == "0x" else (8 if digits.startswith("0") and len(digits) > 1 else 10)
    return int(digits, base) * suffixes[rest]


def _formats(text: str, machine) -> list[_Fmt]:
    """Decode a -t string (od.c ``decode_one_format``), several formats in a row."""
    out = []
    s = text
    while s:
        c = s[0]
        if c in "doux":
            s = s[1:]
            named = {"C": 1, "S": 2, "I": 4}
            if s[:1] in named or s[:1] == "L":
                size = named.get(s[0]) or (machine.bits // 8 if machine else None)
                s = s[1:]
            else:
                m = re.match(r"\d*", s)
                size = int(m.group(0)) if m.group(0) else 4
                s = s[m.end():]
                if size not in (1, 2, 4, 8):
                    raise _Usage(f"invalid type string {quote(text)};\nthis system doesn't provide a {size}-byte"
                                 " integral type")
            if size is None:
                raise Defer("od: the size of long on an image of unknown architecture")
            width = {"d": _SDEC, "o": _OCT, "u": _UDEC, "x": _HEX}[c][size]
        elif c in "ac":
            s, size, width = s[1:], 1, 3
        elif c == "f":
            raise Defer("od: floating-point formats")
        else:
            raise _Usage(f"invalid character '{c}' in type string {quote(text)}")
        trailer = s[:1] == "z"
        if trailer:
            s = s[1:]
        out.append(_Fmt(c, size, width, trailer))
    return out


def _input(inv: Invocation, files: list[str], skip: int, limit: int | None) -> tuple[bytes | None, int]:
    """The concatenated input after ``skip`` bytes, cut at ``limit`` (None when no file could
    be read: od then prints nothing at all); and the exit status."""
    status = 0
    parts = []
    opened = False
    total = 0
    for name in files:
        kind = memory_device(inv.fs, apath(inv, name)) if name != "-" else None
        if kind in ("zero", "random"):
            if limit is None:
                raise Defer(f"od {name} without -N reads the device to no end")
            need = skip + limit - total
            if need > 1 << 24:
                raise Defer(f"od of {name}: more bytes than modelled")
            parts.append(device_stream(kind, name).take(max(need, 0)))
            total += max(need, 0)
            break  # od stops reading once it has skip + limit bytes
        data = b"" if kind == "null" else read_or_report(inv, name)
        if data is None:
            status = 1
            continue
        parts.append(data)
        opened = True
        total += len(data)
    if not opened and not parts:
        return None, status
    data = b"".join(parts)
    if skip > len(data):
        raise _Usage("cannot skip past end of combined input")
    data = data[skip:]
    return (data if limit is None else data[:limit]), status


def _address(radix: str, n: int) -> str:
    if radix == "n":
        return ""
    return {"o": f"{n:07o}", "d": f"{n:07d}", "x": f"{n:06x}"}[radix]


def _parse(inv: Invocation, machine, formats: bool = True):
    """The command line: (radix, skip, limit, dups, width, formats, files); raises
    :class:`_Usage`, :class:`_args.UsageError` or :class:`Defer`. Without ``formats`` the
    formats are not decoded (they do not change what od reads)."""
    opts, files = _args.parse(inv, _SPEC)
    radix, skip, limit, dups, width, tspecs = "o", 0, None, True, None, []
    modern = False
    for k, v in opts:
        if k == "A":
            modern = True
            if v[:1] not in ("d", "o", "x", "n"):
                raise _Usage(f"invalid output address radix '{v[:1]}'; it must be one character from [doxn]")
            radix = v[0]
        elif k == "j":
            modern, skip = True, _number(v, "-j")
        elif k == "N":
            modern, limit = True, _number(v, "-N")
        elif k == "t":
            modern = True
            tspecs += _formats(v, machine) if formats else []
        elif k == "v":
            modern, dups = True, False
        elif k == "w":
            modern = True
            width = 32 if v is None else _number(v, "-w", 10, {"": 1})
        elif k == "S":
            raise Defer("od -S (strings)")
        elif k in "eFf":
            raise Defer("od: floating-point formats")
        elif formats:
            tspecs += _formats(_OLD[k], machine)
    if not modern and (len(files) == 1 and files[0].startswith("+")
                       or len(files) == 2 and files[1][:1] in tuple("+0123456789")):
        raise Defer("od: an old-style offset operand")
    if not tspecs and formats:
        tspecs = _formats("oS", machine)
    if machine is None and any(f.size > 1 for f in tspecs):
        raise Defer("od: multi-byte values in the byte order of an image of unknown architecture")
    return radix, skip, limit, dups, width, tspecs, files


def od(inv: Invocation) -> int:
    """``od [OPTION]... [FILE]...``: see the module note for what is modelled."""
    machine = image_machine(inv.fs)
    try:
        radix, skip, limit, dups, width, tspecs, files = _parse(inv, machine)
        data, status = _input(inv, files or ["-"], skip, limit)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    except _Usage as e:
        inv.err(f"od: {e}\n")
        return 1
    if data is None:
        return status
    order = machine.endian if machine else "little"
    lcm = math.lcm(*(f.size for f in tspecs))
    if width and width % lcm == 0:
        bpb = width
    elif width is not None:
        inv.err(f"od: warning: invalid width {width}; using {lcm} instead\n")
        bpb = lcm
    else:
        bpb = lcm * (16 // lcm) if lcm < 16 else lcm
    per_block = max((f.width + 1) * (bpb // f.size) for f in tspecs)
    for f in tspecs:
        f.pad = per_block - f.width * (bpb // f.size)
    pad_len = {"n": 0, "x": 6}.get(radix, 7)
    out = []
    prev, star = None, False
    for off in range(0, len(data), bpb):
        block = data[off:off + bpb]
        n = len(block)
        if dups and prev is not None and n == bpb and block == prev:
            if not star:
                out.append("*\n")
                star = True
            continue
        star = False
        padded = block + bytes(-n % lcm)
        for i, f in enumerate(tspecs):
            fields = bpb // f.size
            blank = (bpb - n) // f.size
            line = [_address(radix, skip + off) if i == 0 else " " * pad_len]
            remaining = f.pad
            for k in range(fields, blank, -1):
                nxt = f.pad * (k - 1) // fields
                j = (fields - k) * f.size
                line.append(f.text(padded[j:j + f.size], order).rjust(remaining - nxt + f.width))
                remaining = nxt
            if f.trailer:
                line.append(" " * (blank * f.width + f.pad * blank // fields))
                line.append("  >" + "".join(chr(c) if 32 <= c < 127 else "." for c in block) + "<")
            out.append("".join(line) + "\n")
        prev = block
    if radix != "n":
        out.append(_address(radix, skip + len(data)) + "\n")
    inv.out("".join(out).encode("latin-1"))
    return status


def _pipe_stop(argv: list[str], data: bytes) -> int | None:
    """nuwa.script.endless: od reading only standard input with ``-N`` stops after ``-j`` plus
    ``-N`` bytes; None when ``data`` is shorter; NEVER when od reads to the end."""
    try:
        _, skip, limit, _, _, _, files = _parse(Invocation(argv=list(argv), fs=None), None, formats=False)
    except (_Usage, _args.UsageError, Defer):
        return NEVER
    if limit is None or any(f != "-" for f in files):
        return NEVER
    return skip + limit if len(data) >= skip + limit else None


od.pipe_stop = _pipe_stop
