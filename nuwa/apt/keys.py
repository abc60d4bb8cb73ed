"""The OpenPGP keys a source's metadata must be signed with, read from the image.

apt 2.6 (methods/gpgv.cc, cmdline/apt-key.in) decides which keys verify a repository:

- ``Signed-By`` with key file paths: exactly those files (``/usr/share/keyrings/*`` is the
  usual place); with an inline key block (deb822): that key;
- ``Signed-By`` with fingerprints only: the default keyrings, and the signer must be one of
  those keys (``!`` after a fingerprint asks for exactly that key rather than its subkeys);
- no ``Signed-By``: the default keyrings, ``/etc/apt/trusted.gpg.d/*.gpg`` and ``*.asc``,
  and ``/etc/apt/trusted.gpg`` (apt tries that legacy file only when no other key matched,
  with a warning; here it is simply part of the default set).

Keys are parsed with pysequoia (Sequoia-PGP, what apt in Debian 13 verifies with through
``sqv``); binary keyrings and ASCII-armored files are both accepted, one or many keys per file.
Every path is read through the image's filesystem model, which confines it: ``../`` and
symlinks (absolute or relative) resolve inside the image, never on the host.
"""

from __future__ import annotations

import stat as _stat
from typing import Sequence

import pysequoia

from nuwa.apt.sources import Source
from nuwa.errors import InvalidInputError, quote

TRUSTED_PARTS = "/etc/apt/trusted.gpg.d"
TRUSTED_LEGACY = "/etc/apt/trusted.gpg"


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


def default_keyring(fs) -> list[pysequoia.Cert]:
    """The image's default trusted keys: ``/etc/apt/trusted.gpg.d/*.gpg|*.asc`` (sorted by
    name; regular files, or symlinks to them inside the image), then ``/etc/apt/trusted.gpg``."""
    certs: list[pysequoia.Cert] = []
    try:
        names = sorted(fs.readdir(TRUSTED_PARTS))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    for name in names:
        if name.endswith((".gpg", ".asc")):
            certs += _read_key_file(fs, TRUSTED_PARTS + "/" + name, TRUSTED_PARTS, required=False)
    certs += _read_key_file(fs, TRUSTED_LEGACY, TRUSTED_LEGACY, required=False)
    return certs


def _fingerprints(cert: pysequoia.Cert) -> set[str]:
    return {cert.fingerprint.upper()}


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


def keyring_for(source: Source, fs, extra: Sequence[bytes] = ()) -> list[pysequoia.Cert]:
    """The certificates that may sign ``source``'s Release file, from the image ``fs``.

    ``extra`` holds the bytes of ``--keyring`` files given on the command line; their keys are
    always added. A Signed-By key file that is missing or unreadable, a fingerprint no default
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
        fingerprints = [s.rstrip("!").upper() for s in source.signed_by if not s.startswith("/")]
        for path in paths:
            got = _read_key_file(fs, path, where, required=True)
            if not got:
                raise InvalidInputError(f"key file {quote(path)} holds no OpenPGP key", where=where)
            certs += got
        if fingerprints:
            pool = certs if paths else default_keyring(fs)
            wanted = set(fingerprints)
            certs = [c for c in pool if _fingerprints(c) & wanted]
            if not certs and not added:
                raise InvalidInputError(f"no key with fingerprint {', '.join(sorted(wanted))} among the "
                                        "image's trusted keys (Signed-By)", where=where)
        elif not paths:
            certs = default_keyring(fs)
    certs += added
    if not certs:
        raise InvalidInputError(f"no trusted key for {source.uri} {source.suite}: no Signed-By and no key "
                                f"in {TRUSTED_PARTS}/ or {TRUSTED_LEGACY} (add one with --keyring)",
                                where=where)
    return _dedupe(certs)
