"""Module signatures as libkmod reports them (kmod 30 ``libkmod/libkmod-signature.c``).

A signed module ends with ``struct module_signature`` (12 bytes: algo, hash, id_type,
signer_len, key_id_len, 3 pad bytes, big-endian sig_len) and the magic
``~Module signature appended~\\n``. For ``id_type`` PKCS#7 (what Debian's kernels use),
kmod built with OpenSSL reads the first SignerInfo of the PKCS#7 SignedData (RFC 2315
section 9): the issuer's commonName as ``signer``, the serial number as ``sig_key``, the
digest algorithm as ``sig_hashalgo`` and the encrypted digest as ``signature``. A small DER
reader does the same here; libcrypto's own parser is not run.
"""

from __future__ import annotations

import struct

SIG_MAGIC = b"~Module signature appended~\n"
PKEY_HASH_ALGO = ("md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3")
PKEY_ID_TYPE = ("PGP", "X509", "PKCS#7")
PKEY_ID_PKCS7 = 2
_HASH_OIDS = {
    "1.2.840.113549.2.4": "md4", "1.2.840.113549.2.5": "md5", "1.3.14.3.2.26": "sha1",
    "1.3.36.3.2.1": "rmd160", "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512", "2.16.840.1.101.3.4.2.4": "sha224", "1.2.156.10197.1.401": "sm3",
}
_CN = "2.5.4.3"


class SignatureError(ValueError):
    """A signature kmod would parse in a way this reader does not reproduce."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise ValueError("unsupported DER length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise ValueError("DER element runs past its container")
    return tag, pos, pos + n


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        t, s, e = _tlv(data, pos)
        out.append((t, s, e))
        pos = e
    return out


def _oid(b: bytes) -> str:
    parts = []
    val = 0
    for c in b:
        val = (val << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(val)
            val = 0
    first = parts[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(x) for x in head + parts[1:])


def hex_str(b: bytes) -> str:
    """``kmod_module_hex_to_str``: ``01:AB:...``, a new ``\\n\\t\\t`` line every 20 bytes."""
    return ":\n\t\t".join(b[i:i + 20].hex(":").upper() for i in range(0, len(b), 20))


def _pkcs7(raw: bytes) -> tuple[str, bytes, str, bytes]:
    """(signer, serial bytes, hash name, signature) of the first SignerInfo."""
    _, s, e = _tlv(raw, 0)  # ContentInfo
    ci = _children(raw, s, e)
    _, s, e = ci[1]  # [0] EXPLICIT content
    _, s, e = _tlv(raw, s)  # SignedData
    sd = _children(raw, s, e)
    signer_infos = sd[-1]
    if signer_infos[0] != 0x31:
        raise ValueError("no signerInfos SET")
    sis = _children(raw, signer_infos[1], signer_infos[2])
    si = _children(raw, sis[0][1], sis[0][2])
    ias = _children(raw, si[1][1], si[1][2])
    issuer, serial = ias[0], ias[1]
    digest_alg = _children(raw, si[2][1], si[2][2])
    hash_name = _HASH_OIDS.get(_oid(raw[digest_alg[0][1]:digest_alg[0][2]]))
    if hash_name is None:
        raise SignatureError("unknown digest algorithm in the module's PKCS#7 signature")
    enc = [c for c in si[3:] if c[0] == 0x04]
    if not enc:
        raise ValueError("no encryptedDigest")
    sig = raw[enc[0][1]:enc[0][2]]
    # x509_name_to_str: the first commonName, or (as its loop leaves it) the last entry
    signer = None
    for rdn in _children(raw, issuer[1], issuer[2]):
        for atv in _children(raw, rdn[1], rdn[2]):
            oid_t, value = _children(raw, atv[1], atv[2])[:2]
            signer = raw[value[1]:value[2]]
            if _oid(raw[oid_t[1]:oid_t[2]]) == _CN:
                break
        else:
            continue
        break
    serial_bytes = raw[serial[1]:serial[2]].lstrip(b"\0")
    signer_text = "" if signer is None else signer.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return signer_text, serial_bytes, hash_name, sig


def signature_fields(data: bytes) -> list[tuple[str, str]]:
    """The ``sig_id``, ``signer``, ``sig_key``, ``sig_hashalgo`` and ``signature`` fields
    libkmod appends to a module's info, or [] for an unsigned module."""
    if len(data) < len(SIG_MAGIC) + 12 or not data.endswith(SIG_MAGIC):
        return []
    size = len(data) - len(SIG_MAGIC) - 12
    algo, hsh, id_type, signer_len, key_id_len = data[size:size + 5]
    (sig_len,) = struct.unpack_from(">I", data, size + 8)
    if algo >= 2 or hsh >= len(PKEY_HASH_ALGO) or id_type >= len(PKEY_ID_TYPE):
        return []
    if sig_len == 0 or size < signer_len + key_id_len + sig_len:
        return []
    if id_type == PKEY_ID_PKCS7:
        try:
            signer, key, hash_name, sig = _pkcs7(data[size - sig_len:size])
        except (ValueError, IndexError):
            return []  # d2i_PKCS7 or the SignerInfo lookup failed: no signature fields
    else:
        end = size - sig_len
        key = data[end - key_id_len:end]
        signer = data[end - key_id_len - signer_len:end - key_id_len].decode("utf-8", "surrogateescape")
        hash_name = PKEY_HASH_ALGO[hsh]
        sig = data[end:size]
    return [("sig_id", PKEY_ID_TYPE[id_type]), ("signer", signer), ("sig_key", hex_str(key)),
            ("sig_hashalgo", hash_name), ("signature", hex_str(sig))]
