"""OpenSSL's subject-name hash (``X509_NAME_hash_ex``, ``openssl x509 -hash``), computed offline.

The hash is the first four bytes, little-endian, of SHA-1 over the *canonical* encoding of a
distinguished name (OpenSSL ``crypto/x509/x_name.c``, ``x509_name_canon`` and
``asn1_string_canon``): each attribute value of a string type is converted to UTF-8, ASCII
letters are lower-cased, leading and trailing white space is dropped and inner runs of white
space become one space, and it is re-encoded as a UTF8String; the canonical encoding is the
concatenation of the DER of every RDN ``SET`` (without the outer ``SEQUENCE``). The old
(pre-1.0) hash is MD5 over the plain DER of the name.

The certificate itself is parsed with ``cryptography``; only the name canonicalisation, which
``cryptography`` does not expose, is done here, with ``hashlib`` for the digests.
"""

from __future__ import annotations

import base64
import hashlib
import re

# ASN.1 universal tags (X.680)
_UTF8, _PRINTABLE, _T61, _IA5, _VISIBLE, _UNIVERSAL, _BMP = 12, 19, 20, 22, 26, 28, 30
_CANON_TYPES = {_UTF8, _PRINTABLE, _T61, _IA5, _VISIBLE, _UNIVERSAL, _BMP}
_SPACE = b" \t\n\v\f\r"


class DerError(ValueError):
    """Malformed DER."""


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(tag byte, content start, content end, next position) of the TLV at ``pos``."""
    if pos + 2 > len(data):
        raise DerError("truncated TLV")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used in names")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise DerError("truncated content")
    return tag, pos, end, end


def _encode_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + content


def _to_utf8(tag: int, raw: bytes) -> bytes:
    if tag == _BMP:
        return raw.decode("utf-16-be", "surrogatepass").encode("utf-8", "surrogatepass")
    if tag == _UNIVERSAL:
        return raw.decode("utf-32-be", "surrogatepass").encode("utf-8", "surrogatepass")
    if tag == _T61:
        # OpenSSL treats T61String as Latin-1 (ASN1_STRING_to_UTF8 with MBSTRING_ASC semantics)
        return raw.decode("latin-1").encode("utf-8")
    return raw  # UTF8, Printable, IA5, Visible are already byte-compatible


def canon_value(value: bytes) -> bytes:
    """``asn1_string_canon`` on UTF-8 bytes: trim, collapse white space, lower-case ASCII."""
    start, end = 0, len(value)
    while start < end and value[start] in _SPACE and value[start] < 0x80:
        start += 1
    while end > start and value[end - 1] in _SPACE and value[end - 1] < 0x80:
        end -= 1
    out = bytearray()
    i = start
    while i < end:
        c = value[i]
        if c & 0x80:
            out.append(c)
            i += 1
        elif c in _SPACE:
            out.append(0x20)
            while i < end and value[i] in _SPACE:
                i += 1
        else:
            out.append(c + 32 if 0x41 <= c <= 0x5A else c)
            i += 1
    return bytes(out)


def canonical_name(name_der: bytes) -> bytes:
    """The canonical encoding of a DER ``Name`` (x509_name_canon)."""
    tag, start, end, _ = _read_tlv(name_der, 0)
    if tag != 0x30:
        raise DerError("Name is not a SEQUENCE")
    out = bytearray()
    pos = start
    while pos < end:
        set_tag, s_start, s_end, pos = _read_tlv(name_der, pos)
        if set_tag != 0x31:
            raise DerError("RDN is not a SET")
        avas = []
        p = s_start
        while p < s_end:
            seq_tag, a_start, a_end, p = _read_tlv(name_der, p)
            if seq_tag != 0x30:
                raise DerError("AttributeTypeAndValue is not a SEQUENCE")
            oid_tag, o_start, o_end, q = _read_tlv(name_der, a_start)
            if oid_tag != 0x06:
                raise DerError("attribute type is not an OID")
            v_tag, v_start, v_end, _ = _read_tlv(name_der, q)
            raw = name_der[v_start:v_end]
            if v_tag in _CANON_TYPES:
                value = _encode_tlv(_UTF8, canon_value(_to_utf8(v_tag, raw)))
            else:
                value = name_der[q:v_end]
            avas.append(_encode_tlv(0x30, name_der[a_start:o_end] + value))
        # DER orders SET OF members by their encodings
        out += _encode_tlv(0x31, b"".join(sorted(avas)))
    return bytes(out)


def name_hash(name_der: bytes) -> int:
    """``X509_NAME_hash_ex`` of a DER ``Name``."""
    md = hashlib.sha1(canonical_name(name_der)).digest()
    return int.from_bytes(md[:4], "little")


def name_hash_old(name_der: bytes) -> int:
    """``X509_NAME_hash_old``: MD5 of the plain DER encoding."""
    md = hashlib.md5(name_der, usedforsecurity=False).digest()
    return int.from_bytes(md[:4], "little")


_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(label, DER) of every well-formed PEM block, in order (headers such as Proc-Type refused)."""
    out = []
    for m in _PEM_RE.finditer(data):
        body = m.group(2)
        if b":" in body:
            raise DerError("encrypted or header-carrying PEM block")
        out.append((m.group(1).decode(), base64.b64decode(b"".join(body.split()), validate=False)))
    return out


def cert_subject(cert_der: bytes) -> bytes:
    """The DER ``Name`` of a certificate's subject, read straight from the TBSCertificate.

    Parsed here rather than with ``cryptography`` because real CA roots carry non-positive
    serial numbers, which ``cryptography`` warns about and will reject.
    """
    _t, c_start, c_end, _ = _read_tlv(cert_der, 0)  # Certificate
    tag, t_start, t_end, _ = _read_tlv(cert_der, c_start)  # TBSCertificate
    if tag != 0x30:
        raise DerError("TBSCertificate is not a SEQUENCE")
    fields = []
    pos = t_start
    while pos < t_end and len(fields) < 6:
        ftag, _s, _e, nxt = _read_tlv(cert_der, pos)
        fields.append((ftag, pos, nxt))
        pos = nxt
    if fields and fields[0][0] == 0xA0:  # explicit [0] version
        fields = fields[1:]
    # serial, signature, issuer, validity, subject
    if len(fields) < 5 or fields[4][0] != 0x30:
        raise DerError("no subject in certificate")
    return cert_der[fields[4][1] : fields[4][2]]


def crl_issuer(crl_der: bytes) -> bytes:
    """The DER ``Name`` of a CRL's issuer (TBSCertList: version?, signature, issuer)."""
    _t, c_start, _c_end, _ = _read_tlv(crl_der, 0)
    tag, t_start, t_end, _ = _read_tlv(crl_der, c_start)
    pos = t_start
    fields = []
    while pos < t_end and len(fields) < 3:
        ftag, _s, _e, nxt = _read_tlv(crl_der, pos)
        fields.append((ftag, pos, nxt))
        pos = nxt
    if fields and fields[0][0] == 0x02:  # optional INTEGER version
        fields = fields[1:]
    if len(fields) < 2 or fields[1][0] != 0x30:
        raise DerError("no issuer in CRL")
    return crl_der[fields[1][1] : fields[1][2]]
