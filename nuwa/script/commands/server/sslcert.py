"""A model of ssl-cert's ``make-ssl-cert generate-default-snakeoil`` (Debian 12, ssl-cert 1.1.2).

The bash script fills ``/usr/share/ssl-cert/ssleay.cnf`` with the host name (``hostname -f``,
falling back to ``hostname``; the short name when the FQDN is longer than 64) and runs
``openssl req -config TMP -new -x509 -days 3650 -nodes -sha256`` under ``umask 077``, then
``chmod 644`` the certificate, ``chmod 640`` and ``chown root:ssl-cert`` the key, and links
``/etc/ssl/certs/HASH.N`` to the certificate (``create_hash_link``). With both files present
and no ``--force-overwrite`` it keeps them when ``check_min_algo`` passes (a sha256 signature,
an RSA key of at least 2048 bits).

The model makes what OpenSSL 3.0's ``req`` makes from that template, field for field: a
2048-bit RSA key (exponent 65537; PKCS#8 PEM, as ``-nodes -keyout`` writes it), a v3
certificate with a random positive 159-bit serial (``rand_serial``), subject = issuer =
``CN=<host>`` as a UTF8String, notBefore now and notAfter 3650 days later, signed with
sha256WithRSAEncryption, and the extensions basicConstraints ``CA:FALSE``, subjectAltName
``DNS:<host>`` and the subjectKeyIdentifier ``req`` adds (SHA-1 of the public key), in that
order. Keys come from the ``cryptography`` library (OpenSSL's CSPRNG, seeded by the OS) and
the serial from ``os.urandom``: every image gets its own key; nothing is seeded.

Deferred before anything is written: a template that is not Debian 12's (its fields could ask
for anything ``req`` does), a host name that is not a plain DNS name (sed and openssl would
read it), the manual ``<template> <output>`` form (it asks debconf), ``-x`` (the script
stores ``$OPTIND`` as the day count), unknown short options, a present certificate the model
cannot read as ``openssl x509 -text`` would, a missing ``ssl-cert`` group or key directory.
"""

from __future__ import annotations

import datetime
import os
import re
import stat as _stat

from nuwa.script.commands._common import UserDB, now_ns
from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.caches.x509hash import DerError, cert_subject, name_hash, pem_blocks
from nuwa.script.context import Defer, Invocation
from nuwa.script.entropy import random_bytes

PROG = "make-ssl-cert"
TEMPLATE = "/usr/share/ssl-cert/ssleay.cnf"
CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"
#: Debian 12's template: the only one whose meaning the model knows field by field
KNOWN_TEMPLATE = b"""#
# SSLeay example configuration file.
#

[ req ]
default_bits            = 2048
default_keyfile         = privkey.pem
distinguished_name      = req_distinguished_name
prompt                  = no
policy\t\t\t= policy_anything
req_extensions          = v3_req
x509_extensions         = v3_req

[ req_distinguished_name ]
commonName                      = @HostName@

[ v3_req ]
basicConstraints        = CA:FALSE
subjectAltName          = @SubjectAltName@
"""
USAGE = """Usage: {p} [options] <template> <output>
       {p} [options] generate-default-snakeoil

Options:
       -h,--help                 This usage text
       -f,--force-overwrite      Overwrite existing .pem and .key files
       -n,--no-overwrite         Never overwrite existing snakeoil .pem and
                                 .key files, even if algorithms are out of date
       -x,--expiration-days <N>  Override default expiration time
"""
_DNS_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
#: signature algorithm OIDs -> whether ``openssl x509 -text`` names them with "sha256" (grep is case-sensitive)
_SIG_SHA256 = {"1.2.840.113549.1.1.11": True, "1.2.840.113549.1.1.5": False, "1.2.840.113549.1.1.4": False,
               "1.2.840.113549.1.1.12": False, "1.2.840.113549.1.1.13": False, "1.2.840.113549.1.1.14": False}


def _say(inv: Invocation, text: str) -> None:
    """The script's stdout: debconf's confmodule (sourced first) points fd 1 at stderr unless
    a caller that sourced it already did (``DEBCONF_REDIR`` exported)."""
    (inv.out if inv.env.get("DEBCONF_REDIR") else inv.err)(text)


def _usage(inv: Invocation, status: int) -> int:
    _say(inv, USAGE.format(p=PROG))
    return status


def _options(inv: Invocation) -> tuple[set[str], list[str]] | int:
    """The script's long-to-short rewriting, then bash's ``getopts "hfnx:"``."""
    short: list[str] = []
    for a in inv.argv[1:]:
        if a == "--help":
            short.append("-h")
        elif a == "--force-overwrite":
            short.insert(0, "-f")  # moved to the front, as the script does
        elif a == "--no-overwrite":
            short.append("-n")
        elif a == "--expiration-days":
            short.append("-x")
        elif a.startswith("--"):
            _say(inv, f"Unrecognized option {a}\n\n")
            return _usage(inv, 1)
        else:
            short.append(a)
    flags: set[str] = set()
    i = 0
    while i < len(short) and short[i].startswith("-") and short[i] != "-":
        if short[i] == "--":
            i += 1
            break
        for c in short[i][1:]:
            if c == "h":
                return _usage(inv, 0)
            if c not in "fn":
                raise Defer(f"{PROG}: option -{c} (getopts' message, or -x storing $OPTIND as the day count)")
            flags.add(c)
        i += 1
    return flags, short[i:]


def _cert_der(inv: Invocation, path: str) -> bytes:
    """The first certificate of a PEM file, as ``openssl x509 -in`` reads it (or Defer)."""
    try:
        blocks = pem_blocks(inv.fs.read_bytes(path))
    except OSError as e:
        raise Defer(f"{PROG}: reading {path}: {os.strerror(e.errno)}") from None
    for label, der in blocks:
        if label == "CERTIFICATE":
            return der
    raise Defer(f"{PROG}: {path} holds no PEM certificate (openssl's error text is not modelled)")


def _check_min_algo(inv: Invocation, path: str) -> bool:
    """``check_min_algo``: True when the present certificate is kept."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    try:
        cert = x509.load_der_x509_certificate(_cert_der(inv, path))
        oid = cert.signature_algorithm_oid.dotted_string
        key = cert.public_key()
    except (ValueError, TypeError) as e:
        raise Defer(f"{PROG}: {path}: {e}") from None
    if oid not in _SIG_SHA256 or not isinstance(key, rsa.RSAPublicKey):
        raise Defer(f"{PROG}: {path}: a signature or key type whose openssl -text lines are not modelled")
    if not _SIG_SHA256[oid]:
        inv.err(f"Signature algorithm of {path} is not sha256. Recreating.\n")
        return False
    bits = key.key_size
    if not 1000 <= bits <= 9999:  # the script's case pattern: four digits
        inv.err("WARNING: Cannot determine RSA key length\n")
        return True
    if bits < 2048:
        inv.err(f"RSA key length of {path} is {bits}. Recreating with 2048 bits\n")
        return False
    return True


def _host_name(inv: Invocation) -> tuple[str, str]:
    """``make_snakeoil``: (the common name, the subjectAltName value)."""
    if inv.run is None:
        raise Defer(f"{PROG}: asks hostname, which needs the interpreter")
    status, out, err = inv.run(["hostname", "-f"], b"")
    if status != 0:
        raise Defer(f"{PROG}: hostname -f fails: the script's fallback message is not modelled")
    inv.err(err)
    name = out.decode("utf-8", "surrogateescape").rstrip("\n")
    alt = f"DNS:{name}"
    if len(name) > 64:
        status, out, err = inv.run(["hostname"], b"")
        inv.err(err)
        name = out.decode("utf-8", "surrogateescape").rstrip("\n")
    for n in (name, alt[4:]):
        if not _DNS_NAME.fullmatch(n) or len(n) > 253:
            raise Defer(f"{PROG}: host name {n!r} is not a plain DNS name (sed and openssl would read it)")
    if len(name) > 64:
        raise Defer(f"{PROG}: the short host name is longer than a common name may be")
    return name, alt


def _make(cn: str, alt: str, days: int) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM) as ``openssl req -new -x509 -nodes -sha256`` makes them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # UTF8String: req's utf8only mask
    now = datetime.datetime.fromtimestamp(now_ns() // 1_000_000_000, datetime.timezone.utc)
    # apps/lib/apps.c rand_serial: 159 random bits, so the INTEGER stays positive in 20 bytes
    serial = int.from_bytes(random_bytes(20), "big") >> 1
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(alt[4:])]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    cert = builder.sign(key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _write(inv: Invocation, path: str, data: bytes, create_mode: int) -> None:
    """Open for writing as openssl does (O_TRUNC keeps an existing file's mode and owner)."""
    inv.fs.write_bytes(path, data, create_mode)


def _hash_link(inv: Invocation, cert_pem: bytes) -> None:
    """``create_hash_link /etc/ssl/certs/ssl-cert-snakeoil.pem``."""
    fs = inv.fs
    try:
        h = name_hash(cert_subject(pem_blocks(cert_pem)[0][1]))
    except (DerError, IndexError) as e:
        raise Defer(f"{PROG}: the new certificate's subject hash: {e}") from None
    base = f"/etc/ssl/certs/{h:08x}"
    i = 0
    while True:
        link = f"{base}.{i}"
        try:
            if not _stat.S_ISLNK(fs.lstat(link).st_mode):
                break
        except OSError:
            break
        if fs.readlink(link) == "ssl-cert-snakeoil.pem":
            return
        i += 1
    # ln -sf: whatever non-directory is there is replaced
    try:
        if fs.stat(link).is_dir:
            raise Defer(f"{PROG}: {link} is a directory (ln -sf would link inside it)")
    except OSError:
        pass
    if fs.lexists(link):
        fs.unlink(link)
    fs.symlink("ssl-cert-snakeoil.pem", link)


@all_or_nothing  # every Defer comes before the first write; this also undoes a failed write
def make_ssl_cert(inv: Invocation) -> int:
    """``make-ssl-cert generate-default-snakeoil [-f|--force-overwrite] [-n|--no-overwrite]``.

    Mirrors ssl-cert 1.1.2's ``/usr/sbin/make-ssl-cert`` (Debian 12); see the module doc.
    """
    # the script's first line sources debconf's confmodule: outside a frontend it starts one
    if "DEBIAN_HAS_FRONTEND" not in inv.env and inv.env.get("DEBIAN_FRONTEND") != "noninteractive":
        raise Defer(f"{PROG}: sourcing debconf's confmodule starts a frontend whose messages depend on the terminal")
    parsed = _options(inv)
    if isinstance(parsed, int):
        return parsed
    flags, rest = parsed
    if "f" in flags and "n" in flags:
        return _usage(inv, 1)
    if not rest or rest[0] != "generate-default-snakeoil":
        if not rest or len(rest) < 2:
            return _usage(inv, 1)
        raise Defer(f"{PROG} {rest[0]} {rest[1]}: the manual form asks debconf for the host names")
    fs = inv.fs
    if _is_file(fs, CERT) and _is_file(fs, KEY):
        if "n" in flags:
            return 0
        if "f" not in flags and _check_min_algo(inv, CERT):
            return 0
    cn, alt = _host_name(inv)
    try:
        template = fs.read_bytes(TEMPLATE)
    except OSError as e:
        raise Defer(f"{PROG}: {TEMPLATE}: {os.strerror(e.errno)} (sed's and openssl's messages)") from None
    if template != KNOWN_TEMPLATE:
        raise Defer(f"{PROG}: {TEMPLATE} is not Debian 12's template; openssl req would read fields the model does not")
    for d in ("/etc/ssl/certs", "/etc/ssl/private"):
        if not _is_dir(fs, d):
            raise Defer(f"{PROG}: {d} is missing: openssl req's error output is not modelled")
    gid = UserDB(inv).gid("ssl-cert")
    if gid is None:
        raise Defer(f"{PROG}: no ssl-cert group: chown fails (its message is not modelled)")
    cert_pem, key_pem = _make(cn, alt, 3650)
    _write(inv, KEY, key_pem, 0o600 & ~0o077)
    _write(inv, CERT, cert_pem, 0o666 & ~0o077)
    fs.chmod(CERT, 0o644)
    fs.chmod(KEY, 0o640)
    fs.chown(KEY, 0, gid)
    _hash_link(inv, cert_pem)
    return 0


def _is_file(fs, p: str) -> bool:
    try:
        return _stat.S_ISREG(fs.stat(p).st_mode)
    except OSError:
        return False


def _is_dir(fs, p: str) -> bool:
    try:
        return _stat.S_ISDIR(fs.stat(p).st_mode)
    except OSError:
        return False
