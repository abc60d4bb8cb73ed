"""``openssl rehash`` / ``c_rehash`` offline: the subject-hash links of a certificate directory.

Mirrors OpenSSL 3.0's ``apps/rehash.c``: the directory's names are read and sorted (strcmp);
existing hash links (``XXXXXXXX.N`` / ``XXXXXXXX.rN``) are collected with their ids; every
``.pem``/``.crt``/``.cer``/``.crl`` file holding exactly one certificate or CRL gets an entry in
its (type, hash) bucket, duplicates by SHA-1 fingerprint are skipped with a warning; then
links already right are kept, missing ones take the lowest free id, and unneeded ones are
removed. ``update-ca-certificates`` (a shell script in the image) calls ``openssl rehash .``.

``openssl rand`` is in openssl_rand.py. Other ``openssl`` subcommands are deferred: they are not file-system operations we can
reproduce exactly (key generation, network clients, ...).
"""

from __future__ import annotations

import hashlib
import os
import stat as st

from nuwa.script.commands.caches import openssl_rand
from nuwa.script.commands.caches.x509hash import DerError, cert_subject, crl_issuer, name_hash, name_hash_old, pem_blocks
from nuwa.script.context import Defer, Invocation

_EXTENSIONS = ("pem", "crt", "cer", "crl")
_SUFFIXES = ("", "r")
_MAX_COLLISIONS = 256
_HEX = set("0123456789abcdefABCDEF")


class _Bucket:
    def __init__(self, kind: int, hash_: int):
        self.kind, self.hash = kind, hash_
        self.entries: list[dict] = []
        self.num_needed = 0


def _rehash_dir(inv: Invocation, dirname: str, which: str, remove_links: bool, verbose: bool, prog: str) -> int:
    fs = inv.fs
    path = inv.path(dirname)
    try:
        if not fs.stat(path).is_dir:
            raise NotADirectoryError
        names = fs.readdir(path)
    except OSError:
        inv.err(f"Skipping {dirname}, can't write\n")
        return 1
    sep = "" if dirname.endswith("/") or not dirname else "/"
    if verbose:
        inv.out(f"Doing {dirname}\n")
    buckets: dict[tuple[int, int], _Bucket] = {}
    order: list[_Bucket] = []
    errs = 0

    def add(kind: int, hash_: int, filename: str, digest: bytes | None, need: bool, old_id: int) -> int:
        key = (kind, hash_)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = _Bucket(kind, hash_)
            order.append(b)
        found = None
        for ep in b.entries:
            if digest is not None and ep["digest"] == digest:
                inv.err(f"{prog}: warning: skipping duplicate {'certificate' if kind == 0 else 'CRL'} in {filename}\n")
                return 0
            if ep["filename"] == filename:
                found = ep
                if digest is None:
                    break
        ep = found
        if ep is None:
            if b.num_needed >= _MAX_COLLISIONS:
                inv.err(f"{prog}: error: hash table overflow for {filename}\n")
                return 1
            ep = {"filename": filename, "old_id": 0xFFFF, "need": False, "digest": None}
            b.entries.append(ep)
        ep["old_id"] = min(ep["old_id"], old_id)
        if need and not ep["need"]:
            ep["need"] = True
            b.num_needed += 1
            ep["digest"] = digest
        return 0

    for filename in sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape")):
        full = f"{dirname}{sep}{filename}"
        try:
            lst = fs.lstat(inv.path(full))
        except OSError:
            continue
        if st.S_ISLNK(lst.st_mode):
            parsed = _parse_link_name(filename)
            if parsed is not None:
                kind, hash_, id_ = parsed
                target = fs.readlink(inv.path(full))
                if add(kind, hash_, target, None, False, id_) == 0:
                    continue
        errs += _do_file(inv, filename, full, which, add, prog)

    # rehash.c walks its 257-slot hash table in slot order, newest bucket first within a slot;
    # only the order of the verbose lines depends on it
    slots = sorted(range(len(order)), key=lambda k: ((order[k].kind + order[k].hash) % 257, -k))
    for b in (order[k] for k in slots):
        idmask = {ep["old_id"] for ep in b.entries if ep["old_id"] < b.num_needed}
        nextid = 0
        for ep in b.entries:
            if ep["old_id"] < b.num_needed:
                if verbose:
                    inv.out(f"link {ep['filename']} -> {b.hash:08x}.{_SUFFIXES[b.kind]}{ep['old_id']}\n")
            elif ep["need"]:
                while nextid in idmask:
                    nextid += 1
                link = f"{b.hash:08x}.{_SUFFIXES[b.kind]}{nextid}"
                if verbose:
                    inv.out(f"link {ep['filename']} -> {link}\n")
                target = inv.path(f"{dirname}{sep}{link}")
                try:
                    fs.unlink(target)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    inv.err(f"{prog}: Can't unlink {dirname}{sep}{link}, {os.strerror(err.errno)}\n")
                    errs += 1
                try:
                    fs.symlink(ep["filename"], target)
                except OSError as err:
                    inv.err(f"{prog}: Can't symlink {ep['filename']}, {os.strerror(err.errno)}\n")
                    errs += 1
                idmask.add(nextid)
            elif remove_links:
                link = f"{b.hash:08x}.{_SUFFIXES[b.kind]}{ep['old_id']}"
                if verbose:
                    inv.out(f"unlink {link}\n")
                try:
                    fs.unlink(inv.path(f"{dirname}{sep}{link}"))
                except FileNotFoundError:
                    pass
                except OSError as err:
                    inv.err(f"{prog}: Can't unlink {dirname}{sep}{link}, {os.strerror(err.errno)}\n")
                    errs += 1
    return errs


def _parse_link_name(filename: str) -> tuple[int, int, int] | None:
    """``handle_symlink``'s name test: 8 hex digits, '.', optional 'r', a decimal id."""
    if len(filename) < 10 or not all(c in _HEX for c in filename[:8]) or filename[8] != ".":
        return None
    rest = filename[9:]
    kind = 1 if rest[:1].lower() == "r" else 0
    rest = rest[len(_SUFFIXES[kind]) :]
    if not rest.isdigit() or not rest.isascii():
        # strtoul accepts an empty string as 0 only when endptr lands on NUL: "abcdef01." -> id 0
        if rest != "":
            return None
        id_ = 0
    else:
        id_ = int(rest)
    return kind, int(filename[:8], 16), id_ & 0xFFFF


def _do_file(inv: Invocation, filename: str, full: str, which: str, add, prog: str) -> int:
    ext = filename.rsplit(".", 1)[1].lower() if "." in filename else None
    if ext not in _EXTENSIONS:
        return 0
    try:
        data = inv.fs.read_bytes(inv.path(full))
    except OSError:
        inv.err(f"{prog}: error: skipping {filename}, cannot open file\n")
        return 1
    try:
        blocks = pem_blocks(data)
    except (DerError, ValueError):
        raise Defer(f"openssl rehash: {full} holds PEM blocks with headers or bad base64") from None
    items = []
    for label, der in blocks:
        if label in ("CERTIFICATE", "X509 CERTIFICATE"):
            items.append(("cert", der))
        elif label == "X509 CRL":
            items.append(("crl", der))
        elif label == "TRUSTED CERTIFICATE" or "PRIVATE KEY" in label or label in ("PUBLIC KEY",):
            raise Defer(f"openssl rehash: {full} holds a {label} block (X509_INFO grouping not modelled)")
    if len(items) != 1:  # an empty X509_INFO stack (no PEM block at all) is warned about too
        inv.err(f"{prog}: warning: skipping {filename},it does not contain exactly one certificate or CRL\n")
        return 0
    kind_name, der = items[0]
    try:
        name = cert_subject(der) if kind_name == "cert" else crl_issuer(der)
    except DerError:
        return 0  # PEM_X509_INFO_read_bio fails: the file is skipped silently
    kind = 0 if kind_name == "cert" else 1
    digest = hashlib.sha1(der).digest()
    errs = 0
    if which in ("new", "both"):
        errs += add(kind, name_hash(name), filename, digest, True, 0xFFFF)
    if which in ("old", "both"):
        errs += add(kind, name_hash_old(name), filename, digest, True, 0xFFFF)
    return errs


def rehash(inv: Invocation, args: list[str], prog: str) -> int:
    """``openssl rehash [-old|-compat] [-n] [-v] [DIR...]``."""
    which, remove_links, verbose = "new", True, False
    dirs = []
    for i, a in enumerate(args):
        if a in ("-old",):
            which = "old"
        elif a == "-compat":
            which = "both"
        elif a == "-n":
            remove_links = False
        elif a == "-v":
            verbose = True
        elif a in ("-h", "-help"):
            raise Defer("openssl rehash -help output is not modelled")
        elif a == "--":
            dirs += args[i + 1 :]
            break
        elif a.startswith("-"):
            inv.err(f"{prog}: Unknown option: {a}\n{prog}: Use -help for summary.\n")
            return 1
        else:
            dirs.append(a)
    if not dirs:
        env = inv.env.get("SSL_CERT_DIR")
        dirs = [d for d in env.split(":") if d] if env else ["/usr/lib/ssl/certs"]
    errs = 0
    for d in dirs:
        errs += _rehash_dir(inv, d, which, remove_links, verbose, prog)
    return min(errs, 255)


def openssl(inv: Invocation) -> int:
    """``openssl``: the ``rehash`` and ``rand`` subcommands are simulated; the rest is deferred."""
    if len(inv.argv) >= 2 and inv.argv[1] == "rehash":
        return rehash(inv, inv.argv[2:], "rehash")
    if len(inv.argv) >= 2 and inv.argv[1] == "rand":
        return openssl_rand.rand(inv, inv.argv[2:])
    raise Defer(f"openssl {' '.join(inv.argv[1:2])}: not modelled offline")
