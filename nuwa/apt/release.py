"""A repository's signed metadata: ``InRelease`` (clearsigned) or ``Release`` + ``Release.gpg``,
verified the way apt in Debian 13 verifies it (with Sequoia), then parsed.

Order of the checks (``verify_release``), each failure one :class:`RepositoryError` line naming
the file and the reason:

1. which file: ``InRelease`` if given, else ``Release`` with ``Release.gpg``; neither is "does
   not have a Release file", a ``Release`` without a signature is "not signed" (unless the
   source is ``trusted``);
2. the clearsigned layout, with apt's own rules (``SplitClearSignedFile`` in apt-pkg/contrib/
   gpgv.cc): the file starts with the armor line, no unsigned or dash-started lines;
3. the OpenPGP signature, by pysequoia (Sequoia's standard policy), against the keys the
   source allows; then apt's stricter policy made explicit here (debian/default-sequoia.config
   in apt: SHA-1/MD5/RIPEMD-160 and, since 2026-02-01, SHA-224 digests refused; DSA keys refused
   since 2024-02-01; RSA under 2048 bits refused; RSA-2048 until 2030-02-01). When nothing
   verifies, the reason is found by looking at the signature packets: no signature, a key the
   source does not trust ("missing key"), a weak digest, a weak or expired or revoked key,
   else a bad signature (the text was changed);
4. the text is taken only from what Sequoia verified (never from our own split);
5. the fields: a SHA256 section is required ("No Hash entry ... strong enough"), ``Date`` not in
   the future (apt's ``Acquire::Max-FutureTime``, 10 s), ``Valid-Until`` not passed (unless
   ``check_valid_until`` is off or ``allow_expired``), ``Suite`` or ``Codename`` matching the
   source's suite (apt's ``metaIndex::CheckDist``).

Sequoia's own notion of time is the host's clock (it checks signature and key liveness at
"now"); ``now`` here drives the Date/Valid-Until checks and the explicit algorithm cut-offs.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pysequoia
from pysequoia.packet import PacketPile, Tag

from nuwa.apt.records import ReleaseInfo
from nuwa.errors import RepositoryError

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# apt's policy, made explicit (apt: debian/default-sequoia.config over Sequoia's
# StandardPolicy). A data signature needs collision resistance, which Sequoia withdrew from
# SHA-1 in 2013; apt extends nothing for data signatures. Value: the date from which refused.
WEAK_DIGESTS = {
    "MD5": _EPOCH,
    "RipeMD": _EPOCH,
    "SHA1": dt.datetime(2013, 2, 1, tzinfo=UTC),
    "SHA224": dt.datetime(2026, 2, 1, tzinfo=UTC),
}
_DSA_CUTOFF = dt.datetime(2024, 2, 1, tzinfo=UTC)
_RSA2048_CUTOFF = dt.datetime(2030, 2, 1, tzinfo=UTC)
_RSA_SMALL_CUTOFF = dt.datetime(2014, 2, 1, tzinfo=UTC)  # Sequoia: rsa1024 and below
_RSA_ALGOS = {"RSAEncryptSign", "RSASign", "RSAEncrypt"}
MAX_FUTURE_SECONDS = 10  # apt's Acquire::Max-FutureTime default


@dataclass
class FileEntry:
    """One line of the Release file's SHA256 section."""

    path: str  # relative to the dist directory ("main/binary-amd64/Packages.xz")
    size: int
    sha256: str


@dataclass
class ReleaseFile:
    """A verified Release file: its fields, its SHA256 file list and who signed it."""

    fields: dict[str, str]  # Origin, Label, Suite, Codename, Date, Valid-Until, ... (as written)
    files: dict[str, FileEntry]  # the SHA256 section, by path relative to dists/<suite>/
    signer: str | None  # primary-key fingerprint (upper-case hex) that verified it; None if trusted
    acquire_by_hash: bool = False
    by_hash: dict[str, str] = field(default_factory=dict)  # by-hash path -> the file's own path

    @property
    def components(self) -> list[str]:
        """The Components field, with apt's extra short name for ``updates/main`` styles."""
        out = []
        for comp in self.fields.get("Components", "").split():
            out.append(comp)
            if "/" in comp:  # Debian's security archive says "updates/main" for "main"
                out.append(comp.rsplit("/", 1)[1])
        return out

    @property
    def architectures(self) -> list[str]:
        """The Architectures field ("all" included when written)."""
        return self.fields.get("Architectures", "").split()

    @property
    def date(self) -> dt.datetime | None:
        """The Date field as a time (None when absent or unreadable)."""
        return parse_date(self.fields["Date"]) if "Date" in self.fields else None

    @property
    def valid_until(self) -> dt.datetime | None:
        """The Valid-Until field as a time (None when absent or unreadable)."""
        return parse_date(self.fields["Valid-Until"]) if "Valid-Until" in self.fields else None

    def entry(self, path: str) -> FileEntry | None:
        """The SHA256 entry of ``path``: a file's own path or its by-hash path."""
        return self.files.get(self.by_hash.get(path, path))

    def info(self, source, component: str = "") -> ReleaseInfo:
        """The :class:`ReleaseInfo` of this repository for ``source`` (anything with ``uri``
        and ``suite``) and one of its components ("" for a flat repository)."""
        f = self.fields
        return ReleaseInfo(
            uri=source.uri, suite=source.suite, component=component,
            origin=f.get("Origin", ""), label=f.get("Label", ""), archive=f.get("Suite", ""),
            codename=f.get("Codename", ""), version=f.get("Version", ""),
            not_automatic=f.get("NotAutomatic", "").lower() == "yes",
            but_automatic_upgrades=f.get("ButAutomaticUpgrades", "").lower() == "yes",
            trusted=self.signer is not None)


def dist_url(uri: str, suite: str) -> str:
    """The directory holding ``InRelease``/``Release`` for a source, without a trailing '/':
    ``URI/dists/SUITE``, or for a flat repository (suite ending in '/') ``URI/SUITE``."""
    uri = uri.rstrip("/")
    if suite.endswith("/"):
        sub = suite.strip("/")
        return uri if sub in ("", ".") else f"{uri}/{sub}"
    return f"{uri}/dists/{suite}"


def pool_url(uri: str, suite: str, filename: str) -> str:
    """The URL of a ``Packages`` stanza's Filename: below the URI, or for a flat repository
    below its directory (apt's ``debRecordParser``/flat ``ArchiveURI``)."""
    base = dist_url(uri, suite) if suite.endswith("/") else uri.rstrip("/")
    return f"{base}/{filename[2:] if filename.startswith('./') else filename}"


def parse_date(value: str) -> dt.datetime | None:
    """An RFC 1123 date as Release files write it (``Sat, 05 Dec 2026 19:48:03 UTC``); None if
    it cannot be read."""
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def time_to_str(seconds: int) -> str:
    """A duration as apt prints it (``TimeToStr``): ``7d 3h 42min 1s``, ``3h 0min 5s``..."""
    s = int(seconds)
    if s > 86400:
        return f"{s // 86400}d {s // 3600 % 24}h {s // 60 % 60}min {s % 60}s"
    if s > 3600:
        return f"{s // 3600}h {s // 60 % 60}min {s % 60}s"
    if s > 60:
        return f"{s // 60}min {s % 60}s"
    return f"{s}s"


_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"
_SIG_BEGIN = b"-----BEGIN PGP SIGNATURE-----"
_SIG_END = b"-----END PGP SIGNATURE-----"


def split_clearsigned(data: bytes, where: str) -> tuple[bytes, bytes]:
    """(text, armored signatures) of a clearsigned file, refusing what apt's
    ``SplitClearSignedFile`` refuses. The text is for unsigned (trusted=yes) use only: verified
    text always comes from Sequoia."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    if not lines or lines[0] != _BEGIN:
        if _BEGIN in lines:
            raise RepositoryError(f"{where}: clearsigned file does not start with a signed "
                                  "message block")
        raise RepositoryError(f"{where}: not a clearsigned file (the repository is not signed)")
    i = 1
    while i < len(lines) and lines[i] != b"":  # armor headers ("Hash: SHA512")
        if lines[i].startswith(b"-"):
            raise RepositoryError(f"{where}: clearsigned file contains unexpected line starting "
                                  "with a dash (armor)")
        i += 1
    i += 1
    text: list[bytes] = []
    while True:
        if i >= len(lines):
            raise RepositoryError(f"{where}: clearsigned file has no signature block")
        ln = lines[i]
        i += 1
        if ln.startswith(b"-"):
            if ln == _SIG_BEGIN:
                break
            if not ln.startswith(b"- "):
                raise RepositoryError(f"{where}: clearsigned file contains unexpected line "
                                      "starting with a dash (msg)")
            ln = ln[2:]
        text.append(ln)
    sig = [_SIG_BEGIN]
    open_sig = True
    for ln in lines[i:]:
        if ln == b"" and not open_sig:
            continue
        if open_sig:
            if ln == _SIG_END:
                open_sig = False
            elif ln.startswith(b"-"):
                raise RepositoryError(f"{where}: clearsigned file contains unexpected line "
                                      "starting with a dash (sig)")
        elif ln == _SIG_BEGIN:
            open_sig = True
        else:
            raise RepositoryError(f"{where}: clearsigned file contains unsigned lines")
        sig.append(ln)
    if open_sig:
        raise RepositoryError(f"{where}: signature in the file was not closed")
    # the line break before the signature armor is not part of the text (RFC 9580 7.1)
    body = b"\n".join(text)
    return body if body.endswith(b"\n") else body + b"\n", b"\n".join(sig) + b"\n"


@dataclass
class _Key:
    fingerprint: str  # this (sub)key's, upper-case
    primary: str  # its certificate's primary fingerprint, upper-case
    algo: str
    bits: int
    created: dt.datetime | None
    expires: dt.datetime | None
    revoked: bool


def _key_table(certs: Sequence[pysequoia.Cert]) -> dict[str, _Key]:
    """Every primary key and subkey of ``certs``, by fingerprint and by 16-hex key id."""
    table: dict[str, _Key] = {}
    for cert in certs:
        primary = cert.fingerprint.upper()
        current: _Key | None = None
        for pkt in PacketPile.from_bytes(bytes(cert)):
            tag = pkt.tag
            if tag in (Tag.PublicKey, Tag.PublicSubkey, Tag.SecretKey, Tag.SecretSubkey):
                algo = str(pkt.key_algorithm).rsplit(".", 1)[-1]
                body = pkt.body
                bits = int.from_bytes(body[6:8], "big") if body[:1] == b"\x04" and len(body) > 8 \
                    else 0  # v4: version, time, algorithm, then the first MPI's bit count
                current = _Key(pkt.fingerprint.upper(), primary, algo, bits, pkt.key_created,
                               None, bool(_cert_attr(cert, "is_revoked", False)))
                table[current.fingerprint] = current
                table[current.fingerprint[-16:]] = current
            elif tag == Tag.Signature and current is not None:
                period = pkt.key_validity_period
                stype = pkt.signature_type
                if stype in (pysequoia.packet.SignatureType.SubkeyRevocation,
                             pysequoia.packet.SignatureType.KeyRevocation):
                    current.revoked = True
                elif period is not None and current.created is not None:
                    # the newest self-signature's validity period is the one in force
                    current.expires = current.created + period
        expiration = _cert_attr(cert, "expiration", None)
        if expiration is not None:  # an expired certificate expires all its keys
            for k in table.values():
                if k.primary == primary and (k.expires is None or k.expires > expiration):
                    k.expires = expiration
    return table


def _cert_attr(cert, name: str, default):
    # pysequoia evaluates these under Sequoia's policy and raises for a certificate it rejects
    # (an RSA-1024 key); the packets still tell why, so such a key is classified, not fatal
    try:
        return getattr(cert, name)
    except Exception:  # noqa: BLE001 - pysequoia raises RuntimeError with a policy message
        return default


def _hash_name(algo) -> str:
    return str(algo).rsplit(".", 1)[-1]


def policy_problem(hash_name: str, key: _Key, at: dt.datetime) -> str | None:
    """Why apt's policy refuses a signature made with ``hash_name`` by ``key`` at time ``at``
    (None when it accepts it)."""
    cutoff = WEAK_DIGESTS.get(hash_name)
    if cutoff is not None and at >= cutoff:
        return f"weak digest algorithm {hash_name.replace('RipeMD', 'RIPEMD160')} (apt refuses it)"
    if key.algo == "DSA" and at >= _DSA_CUTOFF:
        return f"weak key: DSA {key.bits} bits (apt refuses DSA keys)"
    if key.algo == "ElGamalEncryptSign":
        return "weak key: ElGamal signing key (apt refuses it)"
    if key.algo in _RSA_ALGOS and key.bits:
        if key.bits < 2048 and at >= _RSA_SMALL_CUTOFF:
            return f"weak key: RSA {key.bits} bits (apt refuses RSA under 2048 bits)"
        if key.bits < 3072 and at >= _RSA2048_CUTOFF:
            return f"weak key: RSA {key.bits} bits (apt refuses RSA-2048 from 2030-02-01)"
    return None


@dataclass
class _SigInfo:
    hash_name: str
    issuers: tuple[str, ...]  # fingerprint and/or key id, upper-case
    created: dt.datetime | None


def _signatures(armored: bytes, where: str) -> list[_SigInfo]:
    try:
        pile = PacketPile.from_bytes(armored)
    except Exception as exc:  # noqa: BLE001 - pysequoia raises plain exceptions
        raise RepositoryError(f"{where}: the signature cannot be read ("
                              f"{str(exc).splitlines()[0]})") from None
    out = []
    for pkt in pile:
        if pkt.tag != Tag.Signature:
            continue
        ids = tuple(x.upper() for x in (pkt.issuer_fingerprint, pkt.issuer_key_id) if x)
        out.append(_SigInfo(_hash_name(pkt.hash_algorithm), ids, pkt.signature_created))
    return out


def _find_key(sig: _SigInfo, keys: dict[str, _Key]) -> _Key | None:
    for ident in sig.issuers:
        if ident in keys:
            return keys[ident]
    return None


def verify_signature(data: bytes, detached: bytes | None, certs: Sequence[pysequoia.Cert],
                     where: str, now: dt.datetime,
                     warn: Callable[[str], None] | None = None) -> tuple[bytes, str]:
    """Verify ``data`` (clearsigned, or signed by ``detached``) with ``certs``; return the
    verified text and the primary fingerprint of a certificate whose good signature apt's
    policy accepts. Raise :class:`RepositoryError` naming the reason otherwise."""
    if detached is None:
        _, armored = split_clearsigned(data, where)
    else:
        armored = detached
    sigs = _signatures(armored, where)
    if not sigs:
        raise RepositoryError(f"{where}: contains no OpenPGP signature")
    keys = _key_table(certs)
    certs = list(certs)
    verified: bytes | None = None
    good: list = []
    if detached is None:
        try:
            result = pysequoia.verify(bytes=data, store=lambda ids: certs)
            verified, good = result.bytes, list(result.valid_sigs)
        except Exception:  # noqa: BLE001 - pysequoia says only "no valid signatures found"
            pass
    else:
        # a detached Release.gpg holds one signature packet per archive key; pysequoia's Sig
        # reads one, so each is verified on its own
        verified = data
        for pkt in PacketPile.from_bytes(detached):
            if pkt.tag != Tag.Signature:
                continue
            try:
                result = pysequoia.verify(bytes=data, store=lambda ids: certs,
                                          signature=pysequoia.Sig.from_bytes(bytes(pkt)))
                good += list(result.valid_sigs)
            except Exception:  # noqa: BLE001 - as above
                continue
    problems: list[str] = []
    year_ahead = now + dt.timedelta(days=365)
    for vs in good:
        sk = str(vs.signing_key).upper()
        key = keys.get(sk)
        sig = next((s for s in sigs if sk in s.issuers or sk[-16:] in s.issuers),
                   sigs[0] if len(sigs) == 1 else None)  # a lone signature without issuer
        if key is None or sig is None:
            continue
        why = policy_problem(sig.hash_name, key, now)
        if why:
            problems.append(f"signature by key {key.primary} uses a {why}"
                            if why.startswith("weak digest") else f"key {key.primary}: {why}")
            continue
        if warn is not None and policy_problem(sig.hash_name, key, year_ahead):
            # apt's sqv method checks a year ahead first and warns when only "now" passes
            warn(f"{where}: policy will reject signature within a year "
                 f"({policy_problem(sig.hash_name, key, year_ahead)})")
        return verified, key.primary
    if problems:
        raise RepositoryError(f"{where}: no good signature: " + "; ".join(dict.fromkeys(problems)))
    raise RepositoryError(f"{where}: " + _why_bad(sigs, keys, certs, now))


def _why_bad(sigs: list[_SigInfo], keys: dict[str, _Key], certs: list, now: dt.datetime) -> str:
    """The reason nothing verified, from the signature packets and the keys we hold."""
    reasons: list[str] = []
    unknown: list[str] = []
    for sig in sigs:
        key = _find_key(sig, keys)
        if key is None:
            unknown.append(sig.issuers[0] if sig.issuers else "(no issuer)")
            continue
        at = sig.created or now
        if key.revoked:
            reasons.append(f"key {key.primary} is revoked")
        elif key.expires is not None and key.expires <= at:
            which = f"key {key.primary}" if key.fingerprint == key.primary else \
                f"subkey {key.fingerprint} of key {key.primary}"
            reasons.append(f"{which} expired on {key.expires:%Y-%m-%d} "
                           f"(signature made {at:%Y-%m-%d})")
        elif (why := policy_problem(sig.hash_name, key, now)) is not None:
            reasons.append(f"signature by key {key.primary} uses a {why}"
                           if why.startswith("weak digest") else f"key {key.primary}: {why}")
        else:
            reasons.append(f"BAD signature from key {key.primary} (the signed text or the "
                           "signature was changed)")
    if reasons:
        return "no good signature: " + "; ".join(dict.fromkeys(reasons))
    if not certs:
        return ("missing key " + ", ".join(unknown) + ": the source has no key to verify it "
                "with (no Signed-By key and no trusted.gpg keys)")
    return ("missing key " + ", ".join(unknown) + ", which is needed to verify the signature: "
            f"it is not among the {len(certs)} key(s) this source trusts "
            f"({_fingerprints(certs)})")


def _fingerprints(certs: list, limit: int = 4) -> str:
    # a Debian keyring holds nine keys: name a few, keep the message one readable line
    fprs = [c.fingerprint.upper() for c in certs]
    return ", ".join(fprs[:limit]) + (f", ... {len(fprs) - limit} more" if len(fprs) > limit else "")


def parse_release(text: bytes, where: str) -> ReleaseFile:
    """The fields and SHA256 file list of a Release file's first paragraph (unverified text:
    callers verify first)."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        raise RepositoryError(f"{where}: the Release file is not UTF-8 text") from None
    fields: dict[str, str] = {}
    name = None
    for ln in s.split("\n"):
        if not ln.strip():
            if fields:
                break  # apt reads only the first paragraph
            continue
        if ln[0] in " \t":
            if name is None:
                raise RepositoryError(f"{where}: continuation line before any field: {ln!r}")
            fields[name] += "\n" + ln.strip()
            continue
        if ":" not in ln:
            raise RepositoryError(f"{where}: malformed line in the Release file: {ln[:60]!r}")
        name, value = ln.split(":", 1)
        name = _canonical(name.strip())
        fields[name] = value.strip()
    if not fields:
        raise RepositoryError(f"{where}: no sections in the Release file")
    files: dict[str, FileEntry] = {}
    for ln in fields.get("SHA256", "").split("\n"):
        if not ln.strip():
            continue
        parts = ln.split()
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            raise RepositoryError(f"{where}: malformed SHA256 line in the Release file: {ln!r}")
        files[parts[2]] = FileEntry(parts[2], int(parts[1]), parts[0].lower())
    by_hash = fields.get("Acquire-By-Hash", "").lower() == "yes"
    index = {}
    if by_hash:
        for e in files.values():
            d = e.path.rsplit("/", 1)[0] + "/" if "/" in e.path else ""
            index[f"{d}by-hash/SHA256/{e.sha256}"] = e.path
    return ReleaseFile(fields=fields, files=files, signer=None, acquire_by_hash=by_hash,
                       by_hash=index)


_KNOWN = {k.lower(): k for k in ("Origin", "Label", "Suite", "Codename", "Version", "Date",
                                 "Valid-Until", "Acquire-By-Hash", "Architectures",
                                 "Components", "Description", "NotAutomatic",
                                 "ButAutomaticUpgrades", "MD5Sum", "SHA1", "SHA256", "SHA512",
                                 "Signed-By", "Changelogs", "No-Support-for-Architecture-all")}


def _canonical(name: str) -> str:
    # deb822 field names are case-insensitive; keep one spelling for lookups
    return _KNOWN.get(name.lower(), name)


def check_dist(release: ReleaseFile, suite: str) -> bool:
    """apt's ``metaIndex::CheckDist``: the source's suite names the Release file's Suite or
    Codename (a flat "./" and "dir/" forms by their directory)."""
    codename, rsuite = release.fields.get("Codename", ""), release.fields.get("Suite", "")
    if not suite or suite in (codename, rsuite):
        return True
    t = "experimental" if suite == "../project/experimental" else suite
    if "/" in t:
        t = t[:t.rfind("/")]
    if t == ".":
        t = ""
    return t == "" or t in (codename, rsuite)


def verify_release(*, inrelease: bytes | None, release: bytes | None, release_gpg: bytes | None,
                   certs: Sequence[pysequoia.Cert], where: str, suite: str,
                   now: dt.datetime | None = None, check_valid_until: bool = True,
                   allow_expired: bool = False, trusted: bool = False,
                   warn: Callable[[str], None] | None = None) -> ReleaseFile:
    """Verify and parse a repository's Release metadata (see the module docstring for the
    order of the checks). ``where`` is the URL of the directory holding the files
    (:func:`dist_url`); messages name ``where/InRelease`` etc. ``warn``: when given, a
    Suite/Codename mismatch is only a warning, as in apt; without it, it is refused."""
    now = now or dt.datetime.now(UTC)
    if inrelease is not None:
        fname = f"{where}/InRelease"
        if trusted:
            text, signer = split_clearsigned(inrelease, fname)[0], None
        else:
            text, signer = verify_signature(inrelease, None, certs, fname, now, warn)
    elif release is not None:
        fname = f"{where}/Release"
        if release_gpg is not None and not trusted:
            text, signer = verify_signature(release, release_gpg, certs, f"{where}/Release.gpg",
                                            now, warn)
        elif trusted:
            text, signer = release, None
        else:
            raise RepositoryError(f"{fname}: the repository is not signed (no InRelease and no "
                                  "Release.gpg)")
    else:
        raise RepositoryError(f"{where}/InRelease: the repository does not have a Release file")
    rel = parse_release(text, fname)
    rel.signer = signer
    _check_fields(rel, fname, suite, now, check_valid_until, allow_expired, warn)
    return rel


def _check_fields(rel: ReleaseFile, fname: str, suite: str, now: dt.datetime,
                  check_valid_until: bool, allow_expired: bool, warn) -> None:
    if not rel.files:
        raise RepositoryError(f"{fname}: No Hash entry in Release file which is considered "
                              "strong enough for security purposes (no SHA256 section)")
    date = parse_date(rel.fields["Date"]) if "Date" in rel.fields else None
    if date is None and warn is not None:
        warn(f"{fname}: invalid 'Date' entry in the Release file")
    if date is not None:
        ahead = (date - dt.timedelta(seconds=MAX_FUTURE_SECONDS) - now).total_seconds()
        if ahead > 0:
            raise RepositoryError(f"{fname}: Release file is not valid yet (invalid for another "
                                  f"{time_to_str(ahead)})")
    if check_valid_until and "Valid-Until" in rel.fields:
        until = parse_date(rel.fields["Valid-Until"])
        if until is None:
            raise RepositoryError(f"{fname}: invalid 'Valid-Until' entry in the Release file")
        since = (now - until).total_seconds()
        if since > 0 and not allow_expired:
            raise RepositoryError(f"{fname}: Release file is expired (invalid since "
                                  f"{time_to_str(since)}); use --allow-expired to use it anyway")
    if not check_dist(rel, suite):
        msg = (f"{fname}: Conflicting distribution (expected {suite} but got "
               f"{rel.fields.get('Codename') or rel.fields.get('Suite', '')})")
        if warn is None:
            raise RepositoryError(msg)
        warn(msg)
