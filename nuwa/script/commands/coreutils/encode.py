"""Model of ``base64`` (GNU coreutils 9.1, ``basenc.c`` with gnulib's ``base64.c``).

``base64 [-w COLS] [FILE]`` encodes (RFC 4648 alphabet, ``=`` padding), wrapping the output
every COLS characters (76 by default; 0: no wrapping and no final newline) with a newline after
the last line. ``-d`` decodes: newlines are skipped anywhere; each group of four characters is
decoded as gnulib's ``decode_4`` does, and at the first group that is not valid base64 the bytes
of its valid beginning are still written, then ``base64: invalid input`` and status 1. ``-i``
drops every byte outside the alphabet (``=`` kept) before decoding. The input is FILE, or
standard input for none or ``-``.

Scripts use it for secrets made from random bytes (``head -c 15 /dev/urandom | base64``, slapd).
"""

from __future__ import annotations

import base64 as _b64

from nuwa.script.commands import _args
from nuwa.script.commands._common import err, quote
from nuwa.script.commands.coreutils.text import read_or_report
from nuwa.script.context import Invocation

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_SPEC = _args.spec("diw:", {"decode": "d", "ignore-garbage": "i", "wrap": "w"})


def _decode4(g: bytes) -> tuple[bool, bytes]:
    """One group: (valid, the bytes its valid beginning gives)."""
    n = len(g)
    if n < 2 or g[0] not in _VALUE or g[1] not in _VALUE:
        return False, b""
    v0, v1 = _VALUE[g[0]], _VALUE[g[1]]
    out = bytes([((v0 << 2) | (v1 >> 4)) & 0xFF])
    if n == 2:
        return False, out
    if g[2] == 0x3D:  # "="
        return n == 4 and g[3] == 0x3D, out
    if g[2] not in _VALUE:
        return False, out
    v2 = _VALUE[g[2]]
    out += bytes([((v1 << 4) | (v2 >> 2)) & 0xFF])
    if n == 3:
        return False, out
    if g[3] == 0x3D:
        return True, out
    if g[3] not in _VALUE:
        return False, out
    return True, out + bytes([((v2 << 6) | _VALUE[g[3]]) & 0xFF])


def decode(data: bytes, ignore_garbage: bool = False) -> tuple[bytes, bool]:
    """(decoded bytes, valid) -- see the module note."""
    if ignore_garbage:
        data = bytes(c for c in data if c in _VALUE or c == 0x3D)
    else:
        data = data.replace(b"\n", b"")
    out = bytearray()
    for i in range(0, len(data), 4):
        ok, part = _decode4(data[i:i + 4])
        out += part
        if not ok:
            return bytes(out), False
    return bytes(out), True


def encode(data: bytes, wrap: int = 76) -> bytes:
    """The encoding of ``data``, wrapped every ``wrap`` characters (0: not at all)."""
    text = _b64.b64encode(data)
    if not wrap or not text:
        return text
    return b"".join(text[i:i + wrap] + b"\n" for i in range(0, len(text), wrap))


def base64(inv: Invocation) -> int:
    """``base64 [-d] [-i] [-w COLS] [FILE]``: see the module note."""
    try:
        opts, ops = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    decoding = ignore = False
    wrap = 76
    for k, v in opts:
        if k == "d":
            decoding = True
        elif k == "i":
            ignore = True
        elif k == "w":
            if not v.isdigit():  # xstrtoimax: digits only, no sign (a leading space is taken by C)
                err(inv, f"invalid wrap size: {quote(v)}")
                return 1
            wrap = int(v)
    if len(ops) > 1:
        err(inv, f"extra operand {quote(ops[1])}")
        inv.err(f"Try '{inv.name} --help' for more information.\n")
        return 1
    data = read_or_report(inv, ops[0] if ops else "-")
    if data is None:
        return 1
    if not decoding:
        inv.out(encode(data, wrap))
        return 0
    out, ok = decode(data, ignore)
    inv.out(out)
    if not ok:
        err(inv, "invalid input")
        return 1
    return 0
