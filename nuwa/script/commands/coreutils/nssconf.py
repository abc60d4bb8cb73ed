"""The files glibc 2.36's resolver reads, parsed as glibc does: the ``hosts:`` line of
``/etc/nsswitch.conf`` (``nss_action_parse``, ``nss_database.c``), ``/etc/hosts`` lines
(``__nss_readline`` and files-hosts.c's line parser) and the numeric address forms
(``inet_pton``, ``__inet_aton_exact``). Used by :mod:`.gethosts`.
"""

from __future__ import annotations

import re
import socket

from nuwa.script.context import Defer, Invocation

AF_INET, AF_INET6, AF_UNSPEC = socket.AF_INET, socket.AF_INET6, socket.AF_UNSPEC
SUCCESS, NOTFOUND, UNAVAIL, TRYAGAIN = "SUCCESS", "NOTFOUND", "UNAVAIL", "TRYAGAIN"
SPACE = b" \t\n\v\f\r"  # C isspace
_DATABASES = {"aliases", "ethers", "group", "group_compat", "gshadow", "hosts", "initgroups", "netgroup", "networks",
              "passwd", "passwd_compat", "protocols", "publickey", "rpc", "services", "shadow", "shadow_compat"}


# ---- nsswitch.conf -----------------------------------------------------------------------------

def parse_actions(line: bytes) -> list[tuple[str, dict[str, str]]] | None:
    """``nss_action_parse``: [(source, {status: action})], or None when glibc rejects the line."""
    out = []
    i, n = 0, len(line)

    def skip(i):
        while i < n and line[i] in SPACE:
            i += 1
        return i
    while True:
        i = skip(i)
        if i >= n:
            return out
        start = i
        while i < n and line[i] not in SPACE and line[i] != ord("["):
            i += 1
        if i == start:
            return out
        acts = {TRYAGAIN: "continue", UNAVAIL: "continue", NOTFOUND: "continue", SUCCESS: "return"}
        name = line[start:i].decode("latin-1")
        i = skip(i)
        if i < n and line[i] == ord("["):
            i = skip(i + 1)
            while True:
                neg = i < n and line[i] == ord("!")
                i += neg
                s = i
                while i < n and line[i] not in SPACE and line[i] not in b"=]":
                    i += 1
                status = line[s:i].upper().decode("latin-1")
                if status not in acts:
                    return None
                i = skip(i)
                if i >= n or line[i] != ord("="):
                    return None
                i = skip(i + 1)
                s = i
                while i < n and line[i] not in SPACE and line[i] not in b"=]":
                    i += 1
                action = line[s:i].lower().decode("latin-1")
                if action not in ("return", "continue", "merge"):
                    return None
                if neg:
                    keep = acts[status]
                    acts = dict.fromkeys(acts, action)
                    acts[status] = keep
                else:
                    acts[status] = action
                i = skip(i)
                if i >= n:
                    return None  # glibc reads past the end: no ']' means a malformed line
                if line[i] == ord("]"):
                    i += 1
                    break
        out.append((name, acts))


def hosts_services(inv: Invocation, override: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """The ``hosts:`` sources of the image's nsswitch.conf (``nss_database.c``; default
    ``files dns``), or the ``getent -s`` override when glibc accepts it."""
    return database_services(inv, "hosts", b"files dns", override)


def database_services(inv: Invocation, db: str, default: bytes,
                      override: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """The sources of database ``db`` in the image's nsswitch.conf (``nss_database.c``:
    ``default`` when the file or the line is missing), or the ``getent -s`` override when
    glibc accepts it. A line glibc rejects makes it refuse the whole file: deferred."""
    services = None
    try:
        data = inv.fs.read_bytes("/etc/nsswitch.conf")
    except OSError:
        data = b""
    for raw in data.split(b"\n"):
        line = raw.lstrip(SPACE)
        j = 0
        while j < len(line) and line[j] not in SPACE and line[j] != ord(":"):
            j += 1
        if j == 0 or j >= len(line):
            continue
        name, rest = line[:j], line[j:].lstrip(SPACE + b":")
        if name.decode("latin-1") not in _DATABASES:
            continue
        parsed = parse_actions(rest)
        if parsed is None:
            raise Defer(f"getent {db}: /etc/nsswitch.conf's {name.decode('latin-1')} line does not parse "
                        "(glibc then refuses the whole file)")
        if name == db.encode():
            services = parsed
    if override is not None:
        parsed = parse_actions(override.encode("utf-8", "surrogateescape"))
        if parsed is not None:
            services = parsed
    return services if services is not None else parse_actions(default)


# ---- /etc/hosts and addresses ------------------------------------------------------------------

def hosts_lines(data: bytes) -> list[bytes]:
    """``__nss_readline``: the lines glibc hands to the parser, leading white space removed
    with its ``memmove`` that does not move the terminating NUL (a last line with no newline
    keeps a copy of its tail, as glibc 2.36 does)."""
    out = []
    parts = data.split(b"\n")
    for raw in [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else []):
        cstr = raw.split(b"\0", 1)[0]
        k = len(cstr) - len(cstr.lstrip(SPACE))
        rest = cstr[k:]
        if not rest or rest[:1] == b"#":
            continue
        if k:
            buf = raw + b"\0"
            rest = (rest + buf[len(cstr) - k:]).split(b"\0", 1)[0]
        out.append(rest)
    return out


def parse_hosts_line(line: bytes, af: int) -> tuple[bytes, list[bytes], int, bytes] | None:
    """files-hosts.c's LINE_PARSER: (name, aliases, family, address) or None for an ignored line.

    ``af`` is the family asked for: AF_INET maps ``::ffff:a.b.c.d`` and ``::1`` to IPv4 and drops
    other IPv6 lines; AF_INET6 drops IPv4 lines; AF_UNSPEC keeps both.
    """
    for c in b"#\n":
        p = line.find(bytes([c]))
        if p >= 0:
            line = line[:p]
    fields = line.split(b"\n")[0]
    addr_text, rest = _field(fields)
    addr = pton(AF_INET if af == AF_UNSPEC else af, addr_text)
    if addr is not None:
        fam = AF_INET if af == AF_UNSPEC else af
    else:
        six = pton(AF_INET6, addr_text)
        if af == AF_INET and six is not None:
            if six[:12] == b"\0" * 10 + b"\xff\xff":
                addr = six[12:]
            elif six == b"\0" * 15 + b"\1":
                addr = bytes([127, 0, 0, 1])
            else:
                return None
            fam = AF_INET
        elif af == AF_UNSPEC and six is not None:
            addr, fam = six, AF_INET6
        else:
            return None
    name, rest = _field(rest)
    aliases = [a for a in _split_space(rest) if a]
    return name, aliases, fam, addr


def _field(line: bytes) -> tuple[bytes, bytes]:
    """STRING_FIELD(var, isspace, 1): the text up to white space, and the rest after it."""
    i = 0
    while i < len(line) and line[i] not in SPACE:
        i += 1
    return line[:i], line[i:].lstrip(SPACE)


def _split_space(text: bytes) -> list[bytes]:
    return re.split(rb"[ \t\n\v\f\r]", text)


def pton(af: int, text: bytes) -> bytes | None:
    try:
        return socket.inet_pton(af, text.decode("ascii"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def inet_aton_exact(text: bytes) -> bytes | None:
    """glibc's ``__inet_aton_exact``: 1 to 4 parts, each decimal, octal (0...) or hex (0x...)."""
    parts, vals = text.split(b"."), []
    for k, p in enumerate(parts):
        if not p[:1].isdigit():
            return None
        if p[:2].lower() == b"0x" and len(p) > 2:
            digits, base = p[2:], 16
        elif p[:1] == b"0" and len(p) > 1:
            digits, base = p[1:], 8
        else:
            digits, base = p, 10
        try:
            v = int(digits, base)
        except ValueError:
            return None
        if not digits.isalnum() or v > 0xffffffff or (k < len(parts) - 1 and v > 0xff):
            return None
        vals.append(v)
    if len(vals) > 4:
        return None
    last = vals[-1]
    if last >= 1 << (8 * (5 - len(vals))):
        return None
    return bytes(vals[:-1]) + last.to_bytes(5 - len(vals), "big")
