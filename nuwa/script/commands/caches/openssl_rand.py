"""``openssl rand [-hex|-base64] [-out FILE] NUM`` (OpenSSL 3.0): NUM random bytes.

Scripts make secrets with it (rabbitmq-server's postinst: ``umask 077; openssl rand -base64
-out /var/lib/rabbitmq/.erlang.cookie 42``). A secret made offline must differ from image to
image exactly as one made at boot would, so the bytes come from the host's ``os.urandom``
with no seed (as ``dd`` of ``/dev/urandom``, coreutils/ddcmd.py).

As ``apps/rand.c``: options are read up to the first operand or ``--`` (``-x`` and ``--x`` alike;
the last of ``-hex``/``-base64`` wins); exactly one operand, parsed as C's ``strtol`` with base 0
(``010`` is 8, ``0x10`` 16, leading blanks and a sign allowed) into an int, must remain; a number
that does not parse is "Can't parse", zero or less, or a second operand, is the usage hint; no
operand at all does nothing, successfully. Output: the raw bytes; ``-hex``: lower-case hex and a
newline; ``-base64``: 64-character lines. ``-out`` writes FILE (created 0666 less the umask,
an existing one truncated). ``-engine``, ``-rand``, ``-writerand``, the provider options,
``-help`` and an ``-out`` that cannot be opened (OpenSSL prints its error queue, with thread
ids) are deferred.
"""

from __future__ import annotations

import re

from nuwa.script.commands.coreutils.encode import encode
from nuwa.script.context import Defer, Invocation
from nuwa.script.entropy import random_bytes

_INT_MAX = 2**31 - 1
_DEFERRED = {"engine", "rand", "writerand", "provider", "provider-path", "propquery", "help"}


def _strtol(text: str) -> int | None:
    """C ``strtol(text, &end, 0)`` with ``*end`` required to be NUL; None if not a number."""
    m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return None
    body = m.group(2)
    if body[:2] in ("0x", "0X"):
        v = int(body[2:], 16)
    elif body.startswith("0"):
        v = int(body, 8)
    else:
        v = int(body)
    return -v if m.group(1) == "-" else v


def _usage(inv: Invocation, msg: str = "") -> int:
    inv.err(msg + "rand: Use -help for summary.\n")
    return 1


def rand(inv: Invocation, args: list[str]) -> int:
    """See the module note."""
    fmt, out = "raw", None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        name = a[2:] if a.startswith("--") else a[1:]
        if name in ("hex", "base64"):
            fmt = name
        elif name == "out":
            if i + 1 >= len(args):
                return _usage(inv, "rand: Option -out needs a value\n")
            i += 1
            out = args[i]
        elif name in _DEFERRED:
            raise Defer(f"openssl rand -{name} is not modelled")
        else:
            return _usage(inv, f"rand: Unknown option: {a}\n")
        i += 1
    rest = args[i:]
    if not rest:
        return 0
    if len(rest) > 1:
        return _usage(inv)
    num = _strtol(rest[0])
    if num is None or not -2**63 <= num < 2**63:  # strtol's ERANGE reads as a failed parse
        return _usage(inv, f"rand: Can't parse \"{rest[0]}\" as a number\n")
    if not -_INT_MAX - 1 <= num <= _INT_MAX:  # opt_int: a long that is no int
        return _usage(inv, f"rand: Value \"{rest[0]}\" outside integer range\n")
    if num <= 0:
        return _usage(inv)
    data = random_bytes(num)
    text = data.hex().encode() + b"\n" if fmt == "hex" else encode(data, 64) if fmt == "base64" else data
    if out is None:
        inv.out(text)
        return 0
    path = inv.path(out)
    fs = inv.fs
    try:
        if fs.lexists(path):
            if fs.stat(path).is_dir:
                raise Defer(f"openssl rand -out {out}: a directory (OpenSSL's error queue is not modelled)")
            fs.write_bytes(path, text)
        else:
            fs.write_bytes(path, text, 0o666 & ~inv.umask)
    except OSError as e:
        raise Defer(f"openssl rand -out {out}: cannot be written ({e.strerror}; OpenSSL's error queue is not "
                    "modelled)") from None
    return 0
