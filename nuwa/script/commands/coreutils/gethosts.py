"""``getent hosts|ahosts|ahostsv4|ahostsv6`` (glibc 2.36) on a dormant image, through its nsswitch.

glibc's getent answers ``hosts`` with ``gethostbyname2`` (IPv6 first, then IPv4) or, for a
numeric key, ``gethostbyaddr``; ``ahosts*`` with ``getaddrinfo`` (``AI_CANONNAME |
AI_V4MAPPED | AI_ADDRCONFIG``); no key enumerates with ``gethostent``. Each lookup walks the
image's ``/etc/nsswitch.conf`` ``hosts:`` line source by source, applying the
``[STATUS=action]`` items as ``nss/nsswitch.c`` and ``getaddrinfo.c`` do. The sources:

- ``files``: ``/etc/hosts`` parsed as ``nss_files/files-hosts.c`` does (``__nss_readline``,
  the line parser, case-insensitive names, ``multi`` from ``/etc/host.conf``);
- ``dns``: the answer is the network's, which a dormant image does not have and the booted
  machine will: a lookup that reaches the dns source (forward or reverse) is deferred, as
  ``id`` and ``getent passwd`` defer for a network directory. A name ``files`` answers first
  never reaches it;
- ``myhostname`` (systemd 252): it answers with the booted machine's interface addresses
  (the host name), ``::1`` when IPv6 is up (localhost), the gateway: deferred when reached;
- a source whose module the image does not have (no ``libnss_NAME.so.2``) is UNAVAIL, as
  glibc's failed ``dlopen``; any other installed source (resolve, mdns, wins, sss, ldap...)
  needs a running service and defers.

``AI_ADDRCONFIG`` asks which address families the booted machine's interfaces have, and the
RFC 3484 sort of several addresses asks which source address reaches each: both are the
running network's answers, so ``ahosts*`` without ``-A`` (``--no-addrconfig``) and any
getaddrinfo answer of more than one address are deferred.
"""

from __future__ import annotations

import socket

from nuwa.script.commands.coreutils.nssconf import (
    AF_INET, AF_INET6, AF_UNSPEC, NOTFOUND, SUCCESS, TRYAGAIN, UNAVAIL, hosts_lines, hosts_services,
    inet_aton_exact, parse_hosts_line, pton,
)
from nuwa.script.context import Defer, Invocation

_BUILTIN = ("files", "dns")  # compiled into glibc 2.34+ libc
_LIBDIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib")
_ENV_DEFER = ("HOSTALIASES", "RESOLV_HOST_CONF", "RESOLV_MULTI", "RESOLV_REORDER", "RESOLV_ADD_TRIM_DOMAINS",
              "RESOLV_OVERRIDE_TRIM_DOMAINS")


# ---- the sources -------------------------------------------------------------------------------

class Hostent:
    """A ``struct hostent``: canonical name, aliases, family, addresses (bytes)."""

    def __init__(self, name: bytes, aliases: list[bytes], family: int, addrs: list[bytes]):
        self.name, self.aliases, self.family, self.addrs = name, aliases, family, addrs


class Sources:
    """What the hosts sources answer on the image; a method returns (status, result) or None
    when the source has no such function (its module is missing: UNAVAIL for the walk)."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        for var in _ENV_DEFER:
            if var in inv.env:
                raise Defer(f"getent hosts: ${var} changes how the resolver reads its files")
        self.multi = self._host_conf()
        self._lines: list[bytes] | None = None
        self._have: dict[str, bool] = {}

    def _host_conf(self) -> bool:
        try:
            data = self.inv.fs.read_bytes("/etc/host.conf")
        except OSError:
            return False
        multi = False
        for n, raw in enumerate(data.split(b"\n"), 1):
            words = raw.split(b"#")[0].split()
            if not words:
                continue
            cmd = words[0].lower()
            if cmd == b"order" or (cmd in (b"multi", b"reorder") and len(words) == 2
                                   and words[1].lower() in (b"on", b"off")):
                if cmd == b"multi":
                    multi = words[1].lower() == b"on"
                elif cmd == b"reorder" and words[1].lower() == b"on":
                    raise Defer("getent hosts: /etc/host.conf 'reorder on' sorts by the running interfaces")
                continue
            raise Defer(f"getent hosts: /etc/host.conf line {n} is not modelled (glibc warns or trims domains)")
        return multi

    def dns_forward(self) -> None:
        """A forward lookup that reaches the dns source: the booted machine's network answers it."""
        raise Defer("getent hosts: only DNS could answer, and the booted machine's network decides "
                    "(a dormant image has none)")

    def lines(self) -> list[bytes] | None:
        """The parser's lines of /etc/hosts; None when it cannot be opened (UNAVAIL)."""
        if self._lines is None:
            try:
                self._lines = hosts_lines(self.inv.fs.read_bytes("/etc/hosts"))
            except IsADirectoryError:
                raise Defer("getent hosts: /etc/hosts is a directory") from None
            except OSError:
                return None
        return self._lines

    def have(self, source: str) -> bool:
        """Whether the image has the module of ``source`` (files and dns are inside libc)."""
        if source in _BUILTIN:
            return True
        if source not in self._have:
            lib = f"libnss_{source}.so.2"
            found = False
            for top in _LIBDIRS:
                for d in [top] + [f"{top}/{e}" for e in self._listdir(top) if "-linux-" in e]:
                    if self._exists(f"{d}/{lib}"):
                        found = True
            self._have[source] = found
        return self._have[source]

    def _listdir(self, d: str) -> list[str]:
        try:
            return list(self.inv.fs.listdir(d))
        except OSError:
            return []

    def _exists(self, p: str) -> bool:
        try:
            self.inv.fs.stat(p)
            return True
        except OSError:
            return False

    def check(self, source: str) -> bool:
        """False for a module the image lacks; defers for one whose answer needs a service."""
        if source in ("files", "dns", "myhostname"):
            return self.have(source)
        if self.have(source):
            raise Defer(f"getent hosts: the {source} source needs a running service")
        return False

    # -- files
    def files_byname(self, name: bytes, af: int) -> tuple[str, Hostent | None]:
        lines = self.lines()
        if lines is None:
            return UNAVAIL, None
        key = name.lower()
        hit = None
        for line in lines:
            e = parse_hosts_line(line, af)
            if e is None or not _matches(key, e):
                continue
            if hit is None:
                hit = Hostent(e[0], list(e[1]), e[2], [e[3]])
                if not self.multi:
                    break
            else:
                hit.addrs.append(e[3])
                hit.aliases += e[1]
                if e[0] != hit.name:
                    hit.aliases.append(e[0])
        return (SUCCESS, hit) if hit else (NOTFOUND, None)

    def files_byaddr(self, addr: bytes, af: int) -> tuple[str, Hostent | None]:
        lines = self.lines()
        if lines is None:
            return UNAVAIL, None
        for line in lines:
            e = parse_hosts_line(line, af)
            if e is not None and e[3] == addr:
                return SUCCESS, Hostent(e[0], e[1], e[2], [e[3]])
        return NOTFOUND, None

    def files_byname4(self, name: bytes) -> tuple[str, list]:
        lines = self.lines()
        if lines is None:
            return UNAVAIL, []
        key, out = name.lower(), []
        for line in lines:
            e = parse_hosts_line(line, AF_UNSPEC)
            if e is None or not _matches(key, e):
                continue
            out.append((None if out else e[0], e[2], e[3]))
            if not self.multi:
                break
        return (SUCCESS, out) if out else (NOTFOUND, [])

    # -- dns and myhostname: the booted machine's answers
    def byname(self, source: str, name: bytes, af: int) -> tuple[str, Hostent | None]:
        """A forward lookup in ``source``: ``files`` answers; ``dns`` and ``myhostname`` defer."""
        if source == "files":
            return self.files_byname(name, af)
        if source == "dns":
            self.dns_forward()
        return self.myhostname_byname(name)

    def myhostname_byname(self, name: bytes):
        """systemd's myhostname answers with the addresses of the machine's interfaces (the host
        name), ``::1`` when IPv6 is up (localhost), the gateway: the booted machine's. Defers."""
        raise Defer(f"getent hosts {name.decode('utf-8', 'replace')}: the myhostname source answers with the "
                    "booted machine's interface addresses")

    def myhostname_byaddr(self, addr: bytes, af: int) -> tuple[str, Hostent | None]:
        """See :meth:`myhostname_byname`."""
        raise Defer("getent hosts: the myhostname source answers a reverse lookup from the booted machine's "
                    "interfaces")


def _matches(key: bytes, e) -> bool:
    return e[0].lower() == key or any(a.lower() == key for a in e[1])


# ---- the lookups -------------------------------------------------------------------------------

def _walk(services, call):
    """``__nss_lookup``/``__nss_next2``: call each source in turn; a source without the
    function counts as UNAVAIL for its action. Returns (status, result) of the last call."""
    _no_merge(services)
    status, result = UNAVAIL, None
    for name, acts in services:
        got = call(name)
        if got is None:
            if acts[UNAVAIL] == "return":
                break
            continue
        status, result = got
        if acts[status] == "return":
            break
    return status, result


def _no_merge(services) -> None:
    if any("merge" in acts.values() for _n, acts in services):
        raise Defer("getent hosts: a [STATUS=merge] action (the hosts database cannot merge)")


def gethostbyname2(src: Sources, services, name: bytes, af: int) -> Hostent | None:
    """``gethostbyname2``: the numeric forms ``__nss_hostname_digits_dots`` answers, then the walk."""
    if name[:1].isdigit() or name[:1] in b"abcdefABCDEF:":
        if name[:1].isdigit():
            if name and all(c in b"0123456789." for c in name) and not name.endswith(b"."):
                addr = inet_aton_exact(name) if af == AF_INET else pton(AF_INET6, name)
                return Hostent(name, [], af, [addr]) if addr is not None else None
        if (name[:1] in b"0123456789abcdefABCDEF" and b":" in name) or name[:1] == b":":
            if af == AF_INET:
                return None
            if all(c in b"0123456789abcdefABCDEF:." for c in name) and not name.endswith(b"."):
                addr = pton(AF_INET6, name)
                return Hostent(name, [], af, [addr]) if addr is not None else None

    def call(source):
        return src.byname(source, name, af) if src.check(source) else None
    status, result = _walk(services, call)
    return result if status == SUCCESS else None


def gethostbyaddr(src: Sources, services, addr: bytes, af: int) -> Hostent | None:
    """``gethostbyaddr``: ``::`` is never found; then the walk (DNS's PTR query is NOTFOUND)."""
    if addr == bytes(16):
        return None

    def call(source):
        if not src.check(source):
            return None
        if source == "files":
            return src.files_byaddr(addr, af)
        if source == "dns":
            raise Defer("getent hosts: a reverse lookup only DNS could answer; the booted machine's network "
                        "decides")
        return src.myhostname_byaddr(addr, af)
    status, result = _walk(services, call)
    return result if status == SUCCESS else None


def _gai_nss(src: Sources, services, name: bytes, family: int):
    """``get_nss_addresses``: [(family, addr)] and the canonical name, or None."""
    _no_merge(services)
    status, found, canon = UNAVAIL, [], None
    for source, acts in services:
        found, canon, got_ipv6 = [], None, False  # every source starts afresh
        if not src.check(source):
            status = UNAVAIL
        elif family == AF_UNSPEC:
            if source != "files":
                src.byname(source, name, AF_INET)  # dns and myhostname defer
            status, tuples = src.files_byname4(name)
            if status == SUCCESS:
                canon = tuples[0][0]
                found = [(f, a) for _n, f, a in tuples]
        else:
            st6 = UNAVAIL
            status = UNAVAIL
            if family == AF_INET6:
                status, h = src.byname(source, name, AF_INET6)
                st6 = status
                if h:
                    found += [(AF_INET6, a) for a in h.addrs]
                    canon, got_ipv6 = h.name, True
            if family == AF_INET or not got_ipv6:
                status, h = src.byname(source, name, AF_INET)
                if family == AF_INET:
                    st6 = status
                if h:
                    if family == AF_INET6:
                        found += [(AF_INET6, bytes(10) + b"\xff\xff" + a) for a in h.addrs]
                    else:
                        found += [(AF_INET, a) for a in h.addrs]
                    got_ipv6 = False
                    canon = canon or h.name
            if st6 == SUCCESS or status == SUCCESS:
                status = SUCCESS
            elif st6 == TRYAGAIN:
                status = TRYAGAIN
            elif status == UNAVAIL and st6 != UNAVAIL:
                status = st6
            if family == AF_INET6 and got_ipv6:
                # generate_addrinfo drops mapped addresses once a real IPv6 one was found
                found = [(f, a) for f, a in found if a[:12] != bytes(10) + b"\xff\xff"]
        if acts[status] == "return":
            break
    return (found, canon) if found else None


_SOCKTYPES = ("STREAM", "DGRAM", "RAW")


def getaddrinfo(src: Sources, services, name: bytes, family: int, addrconfig: bool):
    """getent's ``getaddrinfo`` call: [(family, addr)] in the sorted order and the canonical
    name, or None (every error: getent prints nothing and exits 2)."""
    if addrconfig:
        raise Defer("getent ahosts: AI_ADDRCONFIG asks which addresses the booted machine's interfaces have")
    if name == b"*":
        return None  # a NULL name with AI_CANONNAME: EAI_BADFLAGS
    if any(b >= 0x80 for b in name):
        raise Defer("getent ahosts: a non-ASCII name (IDN)")
    v4 = inet_aton_exact(name)
    if v4 is not None:
        if family == AF_INET6:
            return [(AF_INET6, bytes(10) + b"\xff\xff" + v4)], name
        return [(AF_INET, v4)], name
    if b"%" in name:
        raise Defer("getent ahosts: an IPv6 scope id names a running interface")
    v6 = pton(AF_INET6, name)
    if v6 is not None:
        if family == AF_INET:
            return ([(AF_INET, v6[12:])], name) if v6[:12] == bytes(10) + b"\xff\xff" else None
        return [(AF_INET6, v6)], name
    got = _gai_nss(src, services, name, family)
    if got is None:
        return None
    found, canon = got
    if len(set(found)) > 1:  # the same address twice: any order prints the same
        raise Defer("getent ahosts: the order of several addresses (RFC 3484) depends on the booted machine's "
                    "source addresses")
    return found, canon


def _ntop(fam: int, a: bytes) -> str:
    return socket.inet_ntop(fam, a)


def print_hostent(inv: Invocation, h: Hostent) -> None:
    """getent's ``print_hosts``: one line per address, the name and the aliases."""
    names = b" ".join([h.name] + h.aliases).decode("utf-8", "surrogateescape")
    for a in h.addrs:
        inv.out(f"{_ntop(h.family, a):<15} {names}\n")


def enumerate_hosts(inv: Invocation, src: Sources, services) -> int:
    """``sethostent``/``gethostent``: files lists /etc/hosts (parsed for AF_INET); the other
    sources cannot enumerate (UNAVAIL for the walk)."""
    for source, acts in services:
        if source == "files" and acts[SUCCESS] != "return":
            raise Defer("getent hosts: enumeration with [SUCCESS=continue] on files (glibc's setent walk moves on)")
        if not src.check(source) or source != "files":
            if acts[UNAVAIL] == "return":
                break
            continue
        lines = src.lines()
        if lines is None:
            status = UNAVAIL
        else:
            for line in lines:
                e = parse_hosts_line(line, AF_INET)
                if e is not None:
                    print_hostent(inv, Hostent(e[0], e[1], e[2], [e[3]]))
            status = NOTFOUND
        if acts[status] == "return":
            break
    return 0


def hosts(inv: Invocation, db: str, keys: list[str], addrconfig: bool = True, service: str | None = None) -> int:
    """``getent hosts|ahosts|ahostsv4|ahostsv6 [KEY...]``: 0, or 2 when a key is not found."""
    services = hosts_services(inv, service)
    src = Sources(inv)
    if not keys:
        return enumerate_hosts(inv, src, services)
    status = 0
    for key in keys:
        name = key.encode("utf-8", "surrogateescape")
        if db == "hosts":
            if (a := pton(AF_INET6, name)) is not None:
                h = gethostbyaddr(src, services, a, AF_INET6)
            elif (a := pton(AF_INET, name)) is not None:
                h = gethostbyaddr(src, services, a, AF_INET)
            else:
                h = gethostbyname2(src, services, name, AF_INET6) or gethostbyname2(src, services, name, AF_INET)
            if h is None:
                status = 2
            else:
                print_hostent(inv, h)
            continue
        family = {"ahosts": AF_UNSPEC, "ahostsv4": AF_INET, "ahostsv6": AF_INET6}[db]
        got = getaddrinfo(src, services, name, family, addrconfig)
        if got is None:
            status = 2
            continue
        found, canon = got
        first = True
        for fam, a in found:
            text = _ntop(fam, a)
            for sock in _SOCKTYPES:
                cn = canon.decode("utf-8", "surrogateescape") if first and canon is not None else ""
                inv.out(f"{text:<15} {sock:<6} {cn}\n")
                first = False
    return status
