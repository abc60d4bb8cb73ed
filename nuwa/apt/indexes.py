"""A repository's package indexes: which ``Packages`` file to fetch (as apt chooses), its
SHA256 check against the verified Release file, decompression, and a fast ``Packages`` parser.

apt's choice (apt-pkg/aptconfiguration.cc ``getCompressionTypes`` with the default
``Acquire::CompressionTypes``): the compressed forms in the order xz, bz2, lzma, gz, lz4, zst,
then the uncompressed file, taking the first one the Release file lists. lz4 is left out here:
no lz4 decompressor is among Nuwa's dependencies and Debian's archive never offers only lz4.
With ``Acquire-By-Hash: yes`` apt fetches ``<dir>/by-hash/SHA256/<hash>`` instead of the name
(and falls back to the name when that fails; :func:`index_paths` takes ``by_hash=False``).

``parse_packages`` is a tight splitter (one regular expression over each stanza, only the
fields a :class:`PackageRecord` keeps); tests cross-check it field by field against
python-debian's parser on the whole Debian ``Packages`` file.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
import sys
import zlib
from typing import Iterable, Iterator

import zstandard

from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.apt.release import FileEntry, ReleaseFile
from nuwa.errors import RepositoryError

# apt's default preference (see the module docstring), without lz4
COMPRESSIONS = (".xz", ".bz2", ".lzma", ".gz", ".zst", "")

_MAGIC = (
    (b"\xfd7zXZ\x00", ".xz"),
    (b"BZh", ".bz2"),
    (b"\x1f\x8b", ".gz"),
    (b"\x28\xb5\x2f\xfd", ".zst"),
    (b"\x5d\x00\x00", ".lzma"),  # lzma-alone: properties byte 0x5d and a 32-bit dict size
)
DEFAULT_MAX_SIZE = 1 << 30  # a decompressed index larger than 1 GiB is refused (a bomb)


def index_base(component: str, arch: str) -> str:
    """The index's path without a compression suffix, relative to the dist directory:
    ``main/binary-amd64/Packages``, or ``Packages`` for a flat repository (component "")."""
    return f"{component}/binary-{arch}/Packages" if component else "Packages"


def index_paths(release: ReleaseFile, component: str, arch: str, *,
                by_hash: bool | None = None) -> list[str]:
    """The paths to try for one component and architecture, in apt's preference, only those
    the Release file lists; by-hash paths when the Release file says ``Acquire-By-Hash: yes``
    (``by_hash`` overrides). ``release.entry(path)`` gives each one's size and SHA256."""
    use_hash = release.acquire_by_hash if by_hash is None else by_hash
    base = index_base(component, arch)
    out = []
    for ext in COMPRESSIONS:
        entry = release.files.get(base + ext)
        if entry is None:
            continue
        if use_hash:
            d = base.rsplit("/", 1)[0] + "/" if "/" in base else ""
            out.append(f"{d}by-hash/SHA256/{entry.sha256}")
        else:
            out.append(entry.path)
    return out


def component_problem(release: ReleaseFile, component: str, arch: str, where: str) -> str | None:
    """apt's message when a source asks for what the Release file does not offer (None when it
    offers an index): a missing component or architecture is what apt only warns about; a
    component it claims but whose index it does not list is apt's "Unable to find expected
    entry" error. Callers decide which to raise."""
    base = index_base(component, arch)
    if any(base + ext in release.files for ext in COMPRESSIONS):
        return None
    comps = release.components
    if component and comps and component not in comps:
        return (f"{where}: skipping {base}: the repository does not have the component "
                f"'{component}' (component misspelt in sources.list?)")
    archs = release.architectures
    if archs and arch not in archs:
        return f"{where}: skipping {base}: the repository does not support architecture '{arch}'"
    return f"{where}: unable to find expected entry '{base}' in the Release file"


def check_file(path: str, data: bytes, entry: FileEntry | None, where: str) -> None:
    """Refuse ``data`` unless its size and SHA256 are those the verified Release file lists."""
    if entry is None:
        raise RepositoryError(f"{where}/{path}: not listed in the Release file (no hash to check "
                              "it against)")
    if len(data) != entry.size:
        raise RepositoryError(f"{where}/{path}: Size mismatch (Release file says {entry.size} "
                              f"bytes, got {len(data)})")
    got = hashlib.sha256(data).hexdigest()
    if got != entry.sha256:
        raise RepositoryError(f"{where}/{path}: Hash Sum mismatch (SHA256 expected "
                              f"{entry.sha256}, got {got})")


def compression_of(path: str, data: bytes) -> str:
    """The compression suffix of an index: from its name, checked against its first bytes (a
    by-hash path has no suffix, so the bytes alone decide)."""
    by_magic = next((ext for magic, ext in _MAGIC if data.startswith(magic)), "")
    name = path.rsplit("/", 1)[-1]
    by_name = next((ext for ext in COMPRESSIONS if ext and name.endswith(ext)), None)
    if by_name is not None and by_name != by_magic:
        raise RepositoryError(f"{path}: not {by_name[1:]} data (Invalid file format)")
    return by_magic


def decompress(path: str, data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """The content of an index file (xz, bz2, lzma, gz, zst or plain); truncated or corrupt data
    and output beyond ``max_size`` raise :class:`RepositoryError` naming ``path``."""
    ext = compression_of(path, data)
    if ext == "":
        return data
    try:
        if ext in (".xz", ".lzma"):
            d = lzma.LZMADecompressor(lzma.FORMAT_XZ if ext == ".xz" else lzma.FORMAT_ALONE)
        elif ext == ".bz2":
            d = bz2.BZ2Decompressor()
        elif ext == ".gz":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(data, max_size + 1) if ext != ".zst" else d.decompress(data)
        eof = d.eof
    except (lzma.LZMAError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise RepositoryError(f"{path}: corrupt {ext[1:]} data ({exc})") from None
    if len(out) > max_size:
        raise RepositoryError(f"{path}: decompresses to more than {max_size} bytes")
    if not eof:
        raise RepositoryError(f"{path}: truncated {ext[1:]} data (the stream ends early)")
    if ext == ".gz" and d.unused_data:
        # a gzip file may hold several members; Debian's never do, gzip(1) reads them all
        out += gzip.decompress(d.unused_data)
    return out


# field name -> PackageRecord attribute; the fields apt's cache keeps for planning
_FIELDS = {
    "package": "package", "version": "version", "architecture": "architecture",
    "multi-arch": "multi_arch", "essential": "essential", "priority": "priority",
    "section": "section", "source": "source", "depends": "depends",
    "pre-depends": "pre_depends", "recommends": "recommends", "suggests": "suggests",
    "conflicts": "conflicts", "breaks": "breaks", "replaces": "replaces",
    "provides": "provides", "filename": "filename", "size": "size", "sha256": "sha256",
    "installed-size": "installed_size",
}
# short values repeated across tens of thousands of stanzas: one shared string each
_INTERN = {"architecture", "multi_arch", "priority", "section", "source"}


# any field at a line start, its value up to the end of the line plus continuation lines;
# one generic pattern and a dict lookup measured 3x faster than an alternation of the names
_FIELD_RE = re.compile(r"^([^:\s][^:\n]*):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", re.M)
_BLANKISH = re.compile(rb"\n[ \t]+\n")
_INTS = ("size", "installed_size")


def parse_packages(data: bytes, info: ReleaseInfo, *, where: str = "Packages",
                   keep: Iterable[str] = ()) -> Iterator[PackageRecord]:
    """The package versions of a ``Packages`` index (decompressed bytes), in file order.

    ``keep`` names more fields to keep in ``record.extra`` (by their written names). A
    stanza without Package, Version or Architecture, or with a malformed number, raises
    :class:`RepositoryError` naming ``where`` and the stanza. A folded field value (continued
    on indented lines) is joined into one line; field names are case-insensitive (deb822).
    """
    names: dict[str, str] = {}
    for low, attr in _FIELDS.items():
        # the spellings Debian writes first, so the lower() fallback is rarely taken
        names[low] = attr
        names["SHA256" if low == "sha256" else low.title()] = attr
    extra_names = {k.lower(): k for k in keep}
    for low, orig in extra_names.items():
        names[low] = names[orig] = "+" + orig
    if _BLANKISH.search(data):
        # deb822: a line of only blanks ends a paragraph too; rare, so normalised only then
        data = _BLANKISH.sub(b"\n\n", data)
    findall = _FIELD_RE.findall
    get = names.get
    pos, n, end_all = 0, 0, len(data)
    while pos < end_all:
        end = data.find(b"\n\n", pos)
        if end < 0:
            end = end_all
        chunk = data[pos:end]
        pos = end + 2
        n += 1
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            text = chunk.decode("latin-1")  # apt keeps the bytes; names and versions are ASCII
        kw: dict[str, str] = {}
        for key, value in findall(text):
            attr = get(key)
            if attr is None:
                attr = get(key.lower())
                if attr is None:
                    continue
            kw[attr] = " ".join(value.split()) if "\n" in value else value.rstrip()
        if not kw:
            if chunk.strip():
                raise RepositoryError(f"{where}: stanza {n} has no fields this parser reads")
            continue
        yield _record(kw, info, where, n, bool(extra_names))


def _record(kw: dict, info: ReleaseInfo, where: str, n: int, extras: bool) -> PackageRecord:
    for attr in _INTS:
        if attr in kw:
            try:
                kw[attr] = int(kw[attr])
            except ValueError:
                raise RepositoryError(f"{where}: package {kw.get('package', '?')}: malformed "
                                      f"{attr.replace('_', '-').title()} {kw[attr]!r}") from None
    if "essential" in kw:
        kw["essential"] = kw["essential"].lower() == "yes"
    intern = sys.intern
    for attr in _INTERN:
        value = kw.get(attr)
        if value is not None:
            kw[attr] = intern(value)
    extra = {k[1:]: kw.pop(k) for k in [k for k in kw if k[0] == "+"]} if extras else None
    for need in ("package", "version", "architecture"):
        if need not in kw:
            raise RepositoryError(f"{where}: stanza {n} has no {need.title()} field "
                                  f"({kw.get('package') or kw.get('filename') or '?'})")
    rec = PackageRecord(release=info, **kw)
    if extra:
        rec.extra = extra
    return rec


def read_index(release: ReleaseFile, path: str, data: bytes, info: ReleaseInfo, where: str, *,
               keep: Iterable[str] = ()) -> Iterator[PackageRecord]:
    """Check ``data`` (fetched from ``where/path``) against the verified Release file,
    decompress it and parse it: the one call a repository reader needs per index."""
    check_file(path, data, release.entry(path), where)
    return parse_packages(decompress(f"{where}/{path}", data), info, where=f"{where}/{path}",
                          keep=keep)
