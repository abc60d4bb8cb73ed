"""The records the apt layer passes between its parts: what a repository's Release file says
about it (:class:`ReleaseInfo`) and one package version it offers (:class:`PackageRecord`).

Kept apart so that sources, metadata, candidates and the scan report share one definition.
``PackageRecord`` uses ``__slots__``: a full Debian ``Packages`` index has about 64,000 of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReleaseInfo:
    """One repository (a source's suite) as its verified Release file describes it.

    The fields are those apt's pinning and unattended-upgrades' origin patterns look at
    (``o=``, ``l=``, ``a=``/suite, ``n=``/codename, ``c=``, ``site``), plus the two flags that
    lower a repository's default pin priority.
    """

    uri: str  # the source's URI, normalised without a trailing '/'
    suite: str  # the suite as the source names it ("bookworm-security", or "./" for a flat one)
    component: str = ""  # the component this index belongs to ("" for a flat repository)
    origin: str = ""
    label: str = ""
    archive: str = ""  # the Release file's Suite field ("stable-security")
    codename: str = ""
    version: str = ""
    not_automatic: bool = False
    but_automatic_upgrades: bool = False
    trusted: bool = True  # False only for a source used with trusted=yes and --allow-insecure

    @property
    def site(self) -> str:
        """The host name of the URI (apt's ``origin`` pin key), "" for ``file:``."""
        rest = self.uri.split("://", 1)[1] if "://" in self.uri else ""
        return rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]


@dataclass(slots=True)
class PackageRecord:
    """One package version offered by one repository index (a ``Packages`` stanza).

    Relationship fields keep the stanza's text (parsed by the planner when needed); an absent
    field is "". ``release`` is the index it came from; the same version offered by several
    repositories appears once per repository, as in apt.
    """

    package: str
    version: str
    architecture: str
    release: ReleaseInfo
    multi_arch: str = ""
    essential: bool = False
    priority: str = ""
    section: str = ""
    source: str = ""  # "src" or "src (ver)", as the Source field says; "" = same as package
    depends: str = ""
    pre_depends: str = ""
    recommends: str = ""
    suggests: str = ""
    conflicts: str = ""
    breaks: str = ""
    replaces: str = ""
    provides: str = ""
    filename: str = ""  # path below the source URI (pool/main/...)
    size: int = 0
    sha256: str = ""
    installed_size: int = 0  # KiB
    extra: dict = field(default_factory=dict)  # other fields a caller asked to keep

    @property
    def source_name(self) -> str:
        """The source package's name (the Source field without a version, else the package)."""
        return self.source.split(" ", 1)[0] if self.source else self.package

    @property
    def source_version(self) -> str:
        """The source package's version (from ``Source: src (ver)``, else the binary's)."""
        if "(" in self.source:
            return self.source.split("(", 1)[1].rstrip(") ").strip()
        return self.version
