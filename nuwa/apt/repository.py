"""From an image's package sources to the package versions they offer, fetched and verified once.

For each source (``nuwa.apt.sources``), as apt's ``apt-get update`` does:

1. ``InRelease`` (clearsigned), else ``Release`` + ``Release.gpg``, fetched from
   ``URI/dists/SUITE/`` (or ``URI/SUITE`` for a flat repository), verified against the keys
   that source allows (``nuwa.apt.keys``) by ``nuwa.apt.release.verify_release``: signature,
   ``Date``/``Valid-Until``, ``Suite``/``Codename``. Only a verified file is kept in the cache's
   named area (for ``--offline``); a source with ``trusted=yes`` is read unsigned only when the
   caller allows insecure repositories, as ``apt --allow-insecure-repositories`` does.
2. For each component and architecture the source and the image want: the ``Packages`` index
   in the first form the Release file lists (``.xz``, ``.gz``, plain; by hash when the
   repository says so), its SHA-256 and size checked before it is parsed (``nuwa.apt.indexes``).

:class:`Repositories` memoises both steps by what they depend on (URI, suite, the allowed keys,
the options), so several images with the same sources in one run share every download and
every parse -- the work of ``nuwa scan IMAGE...`` grows with the distinct sources, not with
the images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import sys
from dataclasses import dataclass
from itertools import starmap

from nuwa.apt import collector
from nuwa.apt.aptconf import image_architectures, read_apt_config
from nuwa.apt.cache import Cache
from nuwa.apt.fetch import Fetcher
from nuwa.apt.indexes import component_problem, index_paths, read_index
from nuwa.apt.keys import keyring_for, load_certs
from nuwa.apt.options import RepoOptions  # noqa: F401 (re-exported: the options Repositories takes)
from nuwa.apt.preferences import read_preferences
from nuwa.apt.progress import Progress
from nuwa.apt.records import PackageRecord
from nuwa.apt.release import ReleaseFile, dist_url, verify_release
from nuwa.apt.sources import Source, parse_repo_spec, read_sources
from nuwa.errors import InvalidInputError, RepositoryError, quote

#: the largest Release/InRelease file read (Debian's main suite: about 150 KiB)
RELEASE_MAX = 16 << 20
#: the largest Packages index read, compressed or not (bookworm main amd64: about 90 MiB plain)
INDEX_MAX = 512 << 20


@dataclass
class ImageSources:
    """What one image's apt configuration asks for."""

    sources: list[Source]
    architectures: list[str]
    pins: list
    conf: object
    warnings: list[str]


#: the record fields a parsed index keeps, in PackageRecord's order; ``release`` (the index's own)
#: is stored as None and set when loaded
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(PackageRecord))
_RELEASE_AT = _RECORD_FIELDS.index("release")


def _parsed_key(index_sha256: str) -> str:
    """The cache key of an index's parsed records: its digest, the record layout and the
    marshal format (both may change between versions of Nuwa and of Python)."""
    layout = hashlib.sha256(" ".join(_RECORD_FIELDS).encode()).hexdigest()[:12]
    return f"parsed-index:{index_sha256}:{layout}:m{marshal.version}:py{sys.version_info[0]}.{sys.version_info[1]}"


def _dump_parsed(records: list[PackageRecord]) -> bytes:
    """The records as data only (marshal holds no code and runs none when loaded): one tuple
    of PackageRecord's arguments per record, None for ``release``."""
    at = _RELEASE_AT
    return marshal.dumps([tuple(getattr(r, f) for f in _RECORD_FIELDS[:at]) + (None,)
                          + tuple(getattr(r, f) for f in _RECORD_FIELDS[at + 1:]) for r in records])


def _load_parsed(data: bytes | None, info) -> list[PackageRecord] | None:
    """Records back from :func:`_dump_parsed` (None when absent or unreadable: parse again).

    Each row is the constructor's whole argument list, so ``starmap`` calls it without a
    Python-level loop or slicing per record (66,000 records: 34 -> 24 ms), then the release is
    set on each."""
    if data is None:
        return None
    try:
        records = list(starmap(PackageRecord, marshal.loads(data)))
    except (ValueError, EOFError, TypeError):
        return None
    for r in records:
        r.release = info
    return records


class Repositories:
    """Verified Release files and parsed indexes, shared by every image of one run."""

    def __init__(self, options: RepoOptions | None = None, progress=None):
        self.options = options or RepoOptions()
        self.cache = Cache(self.options.cache) if self.options.cache else Cache()
        self._fetchers: dict[str | None, Fetcher] = {}
        # downloads show progress on a terminal's stderr unless quiet (Progress checks both)
        self._progress = progress if progress is not None else Progress(sys.stderr, quiet=self.options.quiet)
        self._releases: dict[tuple, ReleaseFile] = {}
        self._indexes: dict[tuple, list[PackageRecord]] = {}
        self._by_name: dict[int, dict[str, list[PackageRecord]]] = {}
        self._extra_keys = [self._read_keyring(p) for p in self.options.keyrings]
        self._repo_sources: list[Source] | None = None
        self.warnings: list[str] = []

    # -- configuration --------------------------------------------------------------------

    @staticmethod
    def _read_keyring(path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                data = f.read(16 << 20)
        except OSError as e:
            raise InvalidInputError(f"--keyring {quote(path)}: {e.strerror or e}") from None
        load_certs(data, path)  # refuse a file that holds no key now, not at the first source
        return data

    def repo_sources(self) -> list[Source]:
        """The ``--repo`` sources (parsed once)."""
        if self._repo_sources is None:
            out: list[Source] = []
            for spec in self.options.repos:
                out.extend(parse_repo_spec(spec, warn=self.warnings.append))
            self._repo_sources = out
        return self._repo_sources

    def image_sources(self, fs) -> ImageSources:
        """The sources, architectures and pins of the image whose root filesystem is ``fs``."""
        warnings: list[str] = []
        conf = read_apt_config(fs)
        archs = image_architectures(fs, conf)
        own = [] if self.options.sources_only else read_sources(fs, warn=warnings.append)
        extra = self.repo_sources()
        replaced = {(s.uri, s.suite) for s in extra}
        sources = [s for s in own if (s.uri, s.suite) not in replaced] + extra
        if not sources:
            if self.options.sources_only:
                raise InvalidInputError("--sources-only given without any --repo")
            raise InvalidInputError("the image names no package sources (/etc/apt/sources.list, "
                                    "/etc/apt/sources.list.d/) and no --repo was given")
        pins = read_preferences(fs, warn=warnings.append)
        return ImageSources(sources, archs, pins, conf, warnings)

    def fetcher(self, conf=None) -> Fetcher:
        """The fetcher for the proxy the image's apt.conf (or ``--proxy``) names."""
        proxy = self.options.proxy
        if proxy is None and conf is not None:
            proxy = conf.get("Acquire::http::Proxy", None) or None
        if proxy not in self._fetchers:
            self._fetchers[proxy] = Fetcher(self.cache, proxy=proxy, timeout=self.options.timeout,
                                            offline=self.options.offline, progress=self._progress)
        return self._fetchers[proxy]

    def close(self) -> None:
        """End the run: the progress display's summary, the kept-alive connections closed."""
        self._progress.close()
        for f in self._fetchers.values():
            f.close()

    # -- metadata -------------------------------------------------------------------------

    def release(self, source: Source, fs, conf) -> ReleaseFile:
        """The verified Release file of ``source`` (fetched once per run for the same keys)."""
        # trusted=yes is honoured only when the user asked for it on the command line
        # (--allow-insecure); otherwise such a source is verified like any other
        insecure = bool(source.trusted and self.options.allow_insecure)
        certs = [] if insecure else keyring_for(source, fs, self._extra_keys)
        fingerprints = tuple(sorted(c.fingerprint for c in certs))
        cvu = source.check_valid_until
        if cvu is None:
            cvu = conf.get_bool("Acquire::Check-Valid-Until", True) if conf is not None else True
        key = (source.uri, source.suite, fingerprints, cvu, insecure)
        if key in self._releases:
            return self._releases[key]
        where = dist_url(source.uri, source.suite)
        fetcher = self.fetcher(conf)
        inrelease = self._optional(fetcher, where + "/InRelease")
        release = release_gpg = None
        if inrelease is None:
            release = self._optional(fetcher, where + "/Release")
            if release is not None:
                release_gpg = self._optional(fetcher, where + "/Release.gpg")
        if inrelease is None and release is None and self.options.offline:
            raise RepositoryError(f"{where}/InRelease: not in the cache ({self.cache.root}) and --offline "
                                  "forbids downloading it")
        rel = verify_release(inrelease=inrelease, release=release, release_gpg=release_gpg, certs=certs,
                             where=where, suite=source.suite, now=self.options.now,
                             check_valid_until=cvu, allow_expired=self.options.allow_expired,
                             trusted=insecure, warn=self.warnings.append)
        # only now, verified, may the files serve a later --offline run
        if not self.options.offline:
            for name, data in (("InRelease", inrelease), ("Release", release), ("Release.gpg", release_gpg)):
                if data is not None:
                    self.cache.put_named(f"{where}/{name}", data)
        self._releases[key] = rel
        return rel

    def _optional(self, fetcher: Fetcher, url: str) -> bytes | None:
        """The file at ``url``, or None when it does not exist (apt falls back to the next)."""
        if self.options.offline and not url.startswith("file:"):
            return self.cache.get_named(url)
        return fetcher.get(url, max_size=RELEASE_MAX, missing_ok=True)

    def index(self, source: Source, rel: ReleaseFile, component: str, arch: str, conf) -> list[PackageRecord]:
        """The records of one ``Packages`` index (fetched and parsed once per run)."""
        paths = index_paths(rel, component, arch)
        if not paths:
            return []
        where = dist_url(source.uri, source.suite)
        key = (where, component, arch, rel.entry(paths[0]).sha256)
        if key in self._indexes:
            return self._indexes[key]
        info = rel.info(source, component)
        parsed_key = _parsed_key(rel.entry(paths[0]).sha256)
        data = self.cache.get_named(parsed_key)
        with collector.paused():  # tens of thousands of acyclic, long-lived records
            records = _load_parsed(data, info)
        if records is not None:
            self._indexes[key] = records
            return records
        fetcher = self.fetcher(conf)
        last: Exception | None = None
        records: list[PackageRecord] | None = None
        # apt tries the next form the Release lists when one cannot be had, and a by-hash URL
        # the mirror lacks under the file's own name (the bytes are checked the same way)
        tries = []
        for path in paths:
            entry = rel.entry(path)
            tries += [(path, entry)] + ([(entry.path, entry)] if entry.path != path else [])
        for path, entry in tries:
            try:
                data = fetcher.get(f"{where}/{path}", sha256=entry.sha256, size=entry.size, max_size=INDEX_MAX)
            except RepositoryError as e:
                # a by-hash URL says nothing to a reader: name the index it stands for
                last = e if entry.path == path else RepositoryError(f"{e} (the index {entry.path})")
                continue
            with collector.paused():
                records = list(read_index(rel, path, data, info, where))
            break
        if records is None:
            raise last
        self._indexes[key] = records
        # the next run loads the parsed records instead of parsing again (apt's pkgcache.bin)
        with collector.paused():
            dumped = _dump_parsed(records)
        self.cache.put_named(parsed_key, dumped)
        return records

    def records_for(self, fs) -> tuple[ImageSources, list[PackageRecord]]:
        """Every package version the image's sources offer, for the image's architectures."""
        img, chunks = self.indexes_for(fs)
        return img, [r for chunk in chunks for r in chunk]

    def records_named(self, chunks: list[list[PackageRecord]], names) -> list[PackageRecord]:
        """The records of ``chunks`` (from :meth:`indexes_for`) whose package is in ``names``.

        Each index is grouped by package name once per run, so an image that only needs its
        installed packages' versions (a scan) does not walk 60,000 records again.
        """
        out: list[PackageRecord] = []
        for chunk in chunks:
            groups = self._by_name.get(id(chunk))
            if groups is None:
                groups = {}
                with collector.paused():  # a list per package name: ~60,000 of them
                    for r in chunk:
                        groups.setdefault(r.package, []).append(r)
                self._by_name[id(chunk)] = groups  # the chunk lives in self._indexes: its id is stable
            for n in names:
                out.extend(groups.get(n, ()))
        return out

    def indexes_for(self, fs) -> tuple[ImageSources, list[list[PackageRecord]]]:
        """The image's sources and one record list per index they name (shared, not copied)."""
        img = self.image_sources(fs)
        out: list[list[PackageRecord]] = []
        for source in img.sources:
            rel = self.release(source, fs, img.conf)
            where = dist_url(source.uri, source.suite)
            archs = list(source.architectures or img.architectures)
            for comp in (source.components or ("",)):
                for arch in archs:
                    problem = component_problem(rel, comp, arch, where)
                    if problem is not None:
                        if "unable to find expected entry" in problem:
                            raise RepositoryError(problem)
                        img.warnings.append(problem)  # apt only warns (a misspelt component)
                        continue
                    out.append(self.index(source, rel, comp, arch, img.conf))
        return img, out
