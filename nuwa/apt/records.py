"""The records the apt layer passes between its parts: what a repository's Release file says
about it (:class:`ReleaseInfo`) and one package version it offers (:class:`PackageRecord`).

Kept apart so that sources, metadata, candidates and the scan report share one definition.
``PackageRecord`` uses ``__slots__``: a full Debian ``Packages`` index has about 64,000 of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nuwa.errors import InvalidInputError


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


# ---- local .deb files ---------------------------------------------------------------------------
# ``apt install ./a.deb ./b.deb``: apt 2.x turns each file named on its command line into a package
# version of an index of its own (apt-pkg/deb/debindexfile.cc ``debDebPkgFileIndex``: the control
# file is the record, the file itself the archive), and the request selects exactly that version
# (apt-private/private-install.cc sets it as the candidate before ``MarkInstall``). So the file wins
# for its package name whatever the repositories offer; its dependencies are resolved like those of
# any package asked for (nuwa.apt.resolver, ``Request.local``).

#: the index local files belong to: never fetched (``filename`` is the host path itself)
LOCAL_RELEASE = ReleaseInfo(uri="", suite="local", component="local", archive="local")

# the control fields a record keeps as attributes (what the resolver and the orderer read)
_FIELDS = {
    "Multi-Arch": "multi_arch", "Priority": "priority", "Section": "section", "Source": "source",
    "Depends": "depends", "Pre-Depends": "pre_depends", "Recommends": "recommends", "Suggests": "suggests",
    "Conflicts": "conflicts", "Breaks": "breaks", "Replaces": "replaces", "Provides": "provides",
}


def deb_record(archive) -> PackageRecord:
    """The :class:`PackageRecord` of an opened ``.deb`` (``nuwa.deb.archive.DebArchive``).

    ``filename`` is the file's path on the host, ``size`` its length (apt counts it in the
    archives' total but not in what is to get), ``installed_size`` the control file's
    ``Installed-Size`` (KiB)."""
    ctl = archive.control
    name, version, arch = ctl.get("Package", ""), ctl.get("Version", ""), ctl.get("Architecture", "")
    if not name or not version or not arch:
        missing = [f for f, v in (("Package", name), ("Version", version), ("Architecture", arch)) if not v]
        raise InvalidInputError(f"control file lacks {', '.join(missing)}", where=archive.where)
    try:
        installed = int((ctl.get("Installed-Size") or "0").strip() or 0)
    except ValueError:
        raise InvalidInputError(f"control file: bad Installed-Size {ctl.get('Installed-Size')!r}",
                                where=archive.where) from None
    kwargs = {attr: (ctl.get(f) or "").strip() for f, attr in _FIELDS.items()}
    if kwargs["multi_arch"] == "no":
        kwargs["multi_arch"] = ""
    return PackageRecord(package=name, version=version, architecture=arch, release=LOCAL_RELEASE,
                         essential=(ctl.get("Essential") or "").strip() == "yes",
                         filename=archive.path, size=os.path.getsize(archive.path), installed_size=installed,
                         **kwargs)


def is_local(record: PackageRecord) -> bool:
    """Whether ``record`` stands for a file given on the command line (nothing to download)."""
    return record.release is LOCAL_RELEASE or record.release == LOCAL_RELEASE
