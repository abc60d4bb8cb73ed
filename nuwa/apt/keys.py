"""The OpenPGP keys a source's metadata must be signed with, read from the image.

apt 2.6 (methods/gpgv.cc, cmdline/apt-key.in) decides which keys verify a repository:

- ``Signed-By`` with key file paths: exactly those files (``/usr/share/keyrings/*`` is the
  usual place); with an inline key block (deb822): that key;
- ``Signed-By`` with fingerprints only: the default keyrings, and the signer must be one of
  those keys: a plain fingerprint is compared with each certificate's primary key, one with
  ``!`` with each of its keys (a signing subkey named exactly). The certificate is returned
  whole: restricting a signature to the one subkey named with ``!`` is not modelled;
- no ``Signed-By``: the default keyrings, ``/etc/apt/trusted.gpg.d/*.gpg`` and ``*.asc``,
  and ``/etc/apt/trusted.gpg`` (apt tries that legacy file only when no other key matched,
  with a warning; here it is simply part of the default set). As apt-key's
  ``is_supported_keyring``, a default ``*.gpg`` file must be a binary keyring (first byte
  0x98, 0x99 or 0xC6) and a ``*.asc`` file armored; another one is ignored with apt's warning.

Keys are parsed with pysequoia (Sequoia-PGP, what apt in Debian 13 verifies with through
``sqv``); binary keyrings and ASCII-armored files are both accepted, one or many keys per file.
Every path is read through the image's filesystem model, which confines it: ``../`` and
symlinks (absolute or relative) resolve inside the image, never on the host.
"""

from __future__ import annotations

import stat as _stat
from typing import Callable, Sequence

import pysequoia

from nuwa.apt.sources import Source
from nuwa.errors import InvalidInputError, quote

TRUSTED_PARTS = "/etc/apt/trusted.gpg.d"
TRUSTED_LEGACY = "/etc/apt/trusted.gpg"
#: the first byte of a binary keyring apt-key accepts: an old-format public-key packet with a
#: 1- or 2-byte length (0x98, 0x99) or a new-format one (0xC6)
BINARY_KEYRING_START = (0x98, 0x99, 0xC6)
ARMOR_BEGIN = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"

Warn = Callable[[str], None] | None


def load_certs(data: bytes, where: str) -> list[pysequoia.Cert]:
    """Every OpenPGP certificate in ``data`` (a binary keyring or armored blocks, one or many).

    Unparsable data is an :class:`InvalidInputError` naming ``where`` and Sequoia's reason.
    """
    try:
        return list(pysequoia.Cert.split_bytes(bytes(data)))
    except Exception as e:  # pysequoia raises RuntimeError/ValueError with a Rust backtrace
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInputError(f"not an OpenPGP key or keyring ({reason})", where=where) from None


def _read_key_file(fs, path: str, where: str, required: bool) -> list[pysequoia.Cert]:
    """The certificates of one key file of the image; a missing or unreadable file is an error
    when ``required`` (a Signed-By path), else skipped (a default keyring that is absent)."""
    try:
        st = fs.stat(path)
        if not _stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file", path)
        data = fs.read_bytes(path)
    except OSError as e:
        if not required:
            return []
        raise InvalidInputError(f"key file {quote(path)} of this source cannot be read from the image: "
                                f"{e.strerror or e}", where=where) from None
    if not data.strip():
        if required:
            raise InvalidInputError(f"key file {quote(path)} is empty", where=where)
        return []  # apt-key skips empty keyring files
    return load_certs(data, f"{where}: {path}" if required else path)


def supported_keyring(path: str, data: bytes) -> bool:
    """apt-key's ``is_supported_keyring``: an empty file, a ``*.gpg`` file starting like a
    binary keyring, or an armored ``*.asc`` file."""
    if not data:
        return True
    if path.endswith(".gpg"):
        return data[0] in BINARY_KEYRING_START
    if path.endswith(".asc"):
        return ARMOR_BEGIN in data
    return False


def default_keyring(fs, warn: Warn = None) -> list[pysequoia.Cert]:
    """The image's default trusted keys: ``/etc/apt/trusted.gpg.d/*.gpg|*.asc`` (sorted by
    name; regular files, or symlinks to them inside the image), then ``/etc/apt/trusted.gpg``.

    A file apt-key would ignore (wrong file type for its extension) is skipped with apt's
    warning; one that does not parse is an error (apt would fail the verification with it).
    """
    certs: list[pysequoia.Cert] = []
    try:
        names = sorted(fs.readdir(TRUSTED_PARTS))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    paths = [TRUSTED_PARTS + "/" + n for n in names if n.endswith((".gpg", ".asc"))] + [TRUSTED_LEGACY]
    for path in paths:
        try:
            if not _stat.S_ISREG(fs.stat(path).st_mode):
                continue
            data = fs.read_bytes(path)
        except OSError:
            continue  # apt-key's accessible_file_exists: an unreadable default keyring is skipped
        if not supported_keyring(path, data):
            if warn:
                warn(f"The key(s) in the keyring {path} are ignored as the file has an unsupported filetype.")
            continue
        if data.strip():
            certs += load_certs(data, path)
    return certs


def describe(cert: pysequoia.Cert) -> str:
    """``FINGERPRINT (first user id)`` for messages and reports."""
    uids = [str(u) for u in cert.user_ids]
    return f"{cert.fingerprint.upper()} ({uids[0]})" if uids else cert.fingerprint.upper()


def key_fingerprints(cert: pysequoia.Cert) -> list[str]:
    """The fingerprints of a certificate's primary key, then of its subkeys (upper case)."""
    pile = pysequoia.packet.PacketPile.from_bytes(bytes(cert))
    keys = (pysequoia.packet.Tag.PublicKey, pysequoia.packet.Tag.PublicSubkey)
    return [p.fingerprint.upper() for p in pile if p.tag in keys and p.fingerprint]


def selects(cert: pysequoia.Cert, fingerprint: str) -> bool:
    """Whether a ``Signed-By`` fingerprint names ``cert``, as apt's gpgv method compares: a
    plain fingerprint is the primary key's; with ``!`` it names that exact key, primary or
    subkey (methods/gpgv.cc)."""
    if fingerprint.endswith("!"):
        return fingerprint[:-1].upper() in key_fingerprints(cert)
    return cert.fingerprint.upper() == fingerprint.upper()


def _dedupe(certs: list[pysequoia.Cert]) -> list[pysequoia.Cert]:
    seen: dict[str, int] = {}
    out: list[pysequoia.Cert] = []
    for c in certs:
        fp = c.fingerprint.upper()
        if fp in seen:  # the same key in two files: one certificate with both files' packets
            out[seen[fp]] = out[seen[fp]].merge(c)
            continue
        seen[fp] = len(out)
        out.append(c)
    return out


def keyring_for(source: Source, fs, extra: Sequence[bytes] = (), warn: Warn = None) -> list[pysequoia.Cert]:
    """The certificates that may sign ``source``'s Release file, from the image ``fs``.

    ``extra`` holds the bytes of ``--keyring`` files given on the command line; their keys are
    always added; ``warn`` gets apt's warnings about ignored default keyring files. A Signed-By key file that is missing or unreadable, a fingerprint no default
    key has, or a source left with no key at all is an :class:`InvalidInputError` naming the
    source's ``file:line``.
    """
    where = source.where or f"{source.uri} {source.suite}"
    added = [c for i, data in enumerate(extra) for c in load_certs(data, f"--keyring #{i + 1}")]
    certs: list[pysequoia.Cert] = []
    if source.signed_by_key is not None:
        certs = load_certs(source.signed_by_key, f"{where}: Signed-By inline key")
    else:
        paths = [s for s in source.signed_by if s.startswith("/")]
        fingerprints = [s.upper() for s in source.signed_by if not s.startswith("/")]
        for path in paths:
            got = _read_key_file(fs, path, where, required=True)
            if not got:
                raise InvalidInputError(f"key file {quote(path)} holds no OpenPGP key", where=where)
            certs += got
        if fingerprints:
            pool = certs if paths else default_keyring(fs, warn)
            certs = [c for c in pool if any(selects(c, f) for f in fingerprints)]
            if not certs and not added:
                raise InvalidInputError(f"no key with fingerprint {', '.join(fingerprints)} among the "
                                        "image's trusted keys (Signed-By)", where=where)
        elif not paths:
            certs = default_keyring(fs, warn)
    certs += added
    if not certs:
        raise InvalidInputError(f"no trusted key for {source.uri} {source.suite}: no Signed-By and no key "
                                f"in {TRUSTED_PARTS}/ or {TRUSTED_LEGACY} (add one with --keyring)",
                                where=where)
    return _dedupe(certs)
