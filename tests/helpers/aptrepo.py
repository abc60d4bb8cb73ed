"""A real, signed apt repository built at test time (others reuse it: fetch, scan, patch tests).

``build_repo(root, {"main": [deb, ...]})`` lays out what a Debian archive serves:

    pool/<component>/<name>_<version>_<arch>.deb
    dists/<suite>/<component>/binary-<arch>/Packages{,.gz,.xz}   (+ by-hash/SHA256/<hash>)
    dists/<suite>/Release, Release.gpg (detached), InRelease (clearsigned)

or, with ``flat=True``, a flat repository (``Packages*``, ``Release``, ``InRelease`` at the top,
``.deb`` files beside them). ``Packages`` stanzas are the packages' own control fields as
``dpkg-deb --field`` prints them, plus Filename, Size, MD5sum and SHA256, as
dpkg-scanpackages writes them. Keys are generated with pysequoia (Ed25519 by default); a
signature made with a weak digest (SHA1) comes from the real ``gpg`` in a private GNUPGHOME
under the repository's parent directory, because pysequoia refuses to make one.

Options for the bad cases the signature tests need: another key (``sign_with``), a SHA1
signature (``digest="SHA1"``), ``valid_until`` in the past, a ``date`` in the future, no
SHA256 section, and ``tamper(path)`` to change one byte of a file after signing.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
from dataclasses import dataclass, field

import pysequoia

UTC = dt.timezone.utc


def make_key(name: str = "Nuwa Test Repository <repo@example.invalid>", *,
             rsa: bool = False, validity_seconds: int | None = None) -> pysequoia.Tsk:
    """A fresh signing key (secret) made by pysequoia; ``rsa`` makes an RSA-3072 one."""
    suite = pysequoia.CipherSuite.RSA3k if rsa else None
    return pysequoia.Tsk.generate(name, cipher_suite=suite, validity_seconds=validity_seconds)


def rfc1123(when: dt.datetime) -> str:
    """A date as Debian's Release files write it: ``Sat, 05 Dec 2026 19:48:03 UTC``."""
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")


def gpg_sign(key: pysequoia.Tsk, data: bytes, *, home: str, digest: str = "SHA1",
             clear: bool = True) -> bytes:
    """Sign ``data`` with the real gpg (fixtures only) using ``digest``; ``home`` becomes a
    private GNUPGHOME holding ``key``. Returns the clearsigned text or an armored detached sig."""
    os.makedirs(home, mode=0o700, exist_ok=True)
    env = dict(os.environ, GNUPGHOME=home)
    keyfile = os.path.join(home, "key.asc")
    with open(keyfile, "w") as f:
        f.write(str(key))
    subprocess.run(["gpg", "--batch", "--quiet", "--import", keyfile], env=env, check=True,
                   capture_output=True)
    src = os.path.join(home, "data")
    out = os.path.join(home, "out.asc")
    with open(src, "wb") as f:
        f.write(data)
    mode = ["--clearsign"] if clear else ["--detach-sign", "--armor"]
    try:
        subprocess.run(["gpg", "--batch", "--yes", "--digest-algo", digest, "--local-user",
                        key.extract_certificate().fingerprint, *mode, "-o", out, src],
                       env=env, check=True, capture_output=True)
    finally:
        stop_gpg_agent(home)
    with open(out, "rb") as f:
        return f.read()


def stop_gpg_agent(home: str) -> None:
    """End the gpg-agent gpg started for ``home`` (it would outlive the test otherwise)."""
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False,
                   capture_output=True)


def _control_text(deb: str) -> str:
    # dpkg-deb prints the package's own control paragraph, as dpkg-scanpackages reads it
    out = subprocess.run(["dpkg-deb", "--field", deb], check=True, capture_output=True).stdout
    return out.decode().rstrip("\n") + "\n"


def packages_stanza(deb: str, filename: str) -> str:
    """The ``Packages`` stanza dpkg-scanpackages would write for ``deb`` served at ``filename``."""
    with open(deb, "rb") as f:
        data = f.read()
    return (_control_text(deb) + f"Filename: {filename}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n")


_COMPRESS = {"": lambda b: b, ".gz": lambda b: gzip.compress(b, mtime=0),
             ".xz": lzma.compress, ".bz2": bz2.compress}


@dataclass
class AptRepo:
    """A repository directory on disk and what it was built with."""

    root: str  # the URI's directory (file:<root>)
    suite: str  # the suite as a source names it ("stable"; "./" for a flat one)
    key: pysequoia.Tsk  # the repository's own key (what a good Signed-By names)
    signer: pysequoia.Tsk  # the key that actually signed (differs for "wrong key")
    components: tuple[str, ...] = ()
    archs: tuple[str, ...] = ("amd64",)
    flat: bool = False
    debs: dict = field(default_factory=dict)  # component -> [pool path relative to root]

    @property
    def uri(self) -> str:
        """The ``file:`` URI of the repository, as a sources.list entry names it."""
        return "file:" + self.root

    @property
    def cert(self) -> pysequoia.Cert:
        """The public key a source should trust."""
        return self.key.extract_certificate()

    @property
    def dist(self) -> str:
        """The directory holding Release/InRelease (``dists/<suite>`` or the flat directory)."""
        if self.flat:
            return os.path.normpath(os.path.join(self.root, self.suite))
        return os.path.join(self.root, "dists", self.suite)

    def path(self, rel: str) -> str:
        """A file of the dist directory (``InRelease``, ``main/binary-amd64/Packages.xz``)."""
        return os.path.join(self.dist, rel)

    def read(self, rel: str) -> bytes | None:
        """A dist file's bytes, None when the repository does not have it."""
        try:
            with open(self.path(rel), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_key(self, path: str, *, armor: bool = True) -> str:
        """Write the repository's public key (armored ``.asc`` or binary ``.gpg``) to ``path``,
        e.g. into an image tree's /etc/apt/trusted.gpg.d or /usr/share/keyrings."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(str(self.cert).encode() if armor else bytes(self.cert))
        return path

    def sources_line(self, signed_by: str | None = None, uri: str | None = None) -> str:
        """A one-line ``deb`` entry for this repository (``uri`` overrides the file: URI, e.g.
        for the same directory served over HTTP)."""
        opts = f"[signed-by={signed_by}] " if signed_by else ""
        comps = "" if self.flat else " " + " ".join(self.components)
        return f"deb {opts}{uri or self.uri} {self.suite}{comps}"

    def tamper(self, rel: str, *, find: bytes | None = None, offset: int | None = None) -> None:
        """Change one byte of a dist file after signing (at ``find``'s first match, else at
        ``offset``, else in the middle), keeping its size."""
        p = self.path(rel)
        with open(p, "rb") as f:
            data = bytearray(f.read())
        if find is not None:
            at = data.index(find)
        else:
            at = len(data) // 2 if offset is None else offset
        data[at] ^= 0x01
        with open(p, "wb") as f:
            f.write(bytes(data))


def build_repo(root: str, debs, *, suite: str = "stable", codename: str = "nuwa-test",
               origin: str = "Nuwa Test", label: str = "Nuwa Test", version: str = "1.0",
               archs=("amd64",), key: pysequoia.Tsk | None = None,
               sign_with: pysequoia.Tsk | None = None, digest: str | None = None,
               date: dt.datetime | None = None, valid_until: dt.datetime | None | str = "week",
               by_hash: bool = True, compressions=("", ".gz", ".xz"), flat: bool = False,
               inrelease: bool = True, release_gpg: bool = True, sha256: bool = True,
               extra_fields: dict | None = None) -> AptRepo:
    """Build a signed repository under ``root`` from ``debs`` (a list for one component
    "main", or ``{component: [deb, ...]}``; empty components allowed).

    ``valid_until``: a datetime, None for no field, "week" (the default) for Date + 7 days.
    ``sign_with`` signs with another key than ``key`` (the "wrong key" case); ``digest`` (e.g.
    "SHA1") signs with the real gpg using that digest instead of pysequoia.
    """
    key = key or make_key()
    signer = sign_with or key
    if isinstance(debs, (list, tuple)):
        debs = {"": list(debs)} if flat else {"main": list(debs)}
    date = date or dt.datetime.now(UTC).replace(microsecond=0)
    if valid_until == "week":
        valid_until = date + dt.timedelta(days=7)
    repo = AptRepo(root=root, suite="./" if flat else suite, key=key, signer=signer,
                   components=tuple(c for c in debs if c), archs=tuple(archs), flat=flat)
    os.makedirs(repo.dist, exist_ok=True)
    index_files: dict[str, bytes] = {}
    for comp, files in debs.items():
        stanzas = []
        repo.debs[comp] = []
        for deb in files:
            pool_rel = os.path.basename(deb) if flat else \
                f"pool/{comp}/{os.path.basename(deb)[0]}/{os.path.basename(deb)}"
            dest = os.path.join(repo.dist if flat else root, pool_rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(deb, dest)
            repo.debs[comp].append(pool_rel)
            stanzas.append(packages_stanza(dest, pool_rel))
        for arch in archs:
            # each arch index holds the arch's packages and the Architecture: all ones
            mine = [st for st in stanzas if _arch_of(st) in (arch, "all")]
            body = "\n".join(mine).encode()
            base = "" if flat else f"{comp}/binary-{arch}/"
            for ext in compressions:
                index_files[base + "Packages" + ext] = _COMPRESS[ext](body)
            if flat:
                break
    release = _release_text(index_files, suite=suite, codename=codename, origin=origin,
                            label=label, version=version, archs=archs,
                            components=repo.components, date=date, valid_until=valid_until,
                            by_hash=by_hash and not flat, sha256=sha256,
                            extra=extra_fields or {}, flat=flat)
    for rel, data in index_files.items():
        _write(repo.path(rel), data)
        if by_hash and not flat:
            h = hashlib.sha256(data).hexdigest()
            _write(os.path.join(os.path.dirname(repo.path(rel)), "by-hash", "SHA256", h), data)
    _write(repo.path("Release"), release)
    home = os.path.join(os.path.dirname(os.path.abspath(root)), f".gnupg-{os.path.basename(root)}")
    if inrelease:
        if digest:
            signed = gpg_sign(signer, release, home=home, digest=digest, clear=True)
        else:
            signed = pysequoia.sign(signer.signer(), release, mode=pysequoia.SignatureMode.CLEAR)
        _write(repo.path("InRelease"), signed)
    if release_gpg:
        if digest:
            sig = gpg_sign(signer, release, home=home, digest=digest, clear=False)
        else:
            sig = pysequoia.sign(signer.signer(), release, mode=pysequoia.SignatureMode.DETACHED)
        _write(repo.path("Release.gpg"), sig)
    return repo


def _arch_of(stanza: str) -> str:
    for line in stanza.splitlines():
        if line.startswith("Architecture:"):
            return line.split(":", 1)[1].strip()
    return ""


def _release_text(files: dict, *, suite, codename, origin, label, version, archs, components,
                  date, valid_until, by_hash, sha256, extra, flat) -> bytes:
    lines = [f"Origin: {origin}", f"Label: {label}"]
    if not flat:
        lines += [f"Suite: {suite}", f"Version: {version}", f"Codename: {codename}"]
    lines.append(f"Date: {rfc1123(date)}")
    if valid_until is not None:
        lines.append(f"Valid-Until: {rfc1123(valid_until)}")
    if by_hash:
        lines.append("Acquire-By-Hash: yes")
    lines.append("Architectures: " + " ".join(archs))
    if components:
        lines.append("Components: " + " ".join(components))
    lines += [f"{k}: {v}" for k, v in extra.items()]
    lines.append("Description: a repository built by tests/helpers/aptrepo.py")
    width = max((len(str(len(d))) for d in files.values()), default=1)
    lines.append("MD5Sum:")
    lines += [f" {hashlib.md5(d).hexdigest()} {len(d):>{width}} {p}" for p, d in sorted(files.items())]
    if sha256:
        lines.append("SHA256:")
        lines += [f" {hashlib.sha256(d).hexdigest()} {len(d):>{width}} {p}"
                  for p, d in sorted(files.items())]
    return ("\n".join(lines) + "\n").encode()


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
