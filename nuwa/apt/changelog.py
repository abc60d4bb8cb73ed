"""CVE ids an update fixes, read from the candidate's Debian changelog.

A Debian changelog (``/usr/share/doc/<pkg>/changelog.Debian.gz``) is a list of entries, each
opened by a line ``source (version) distributions; urgency=...``. The entries newer than the
installed source version, up to the candidate's, are what the update brings; every
``CVE-YYYY-NNNN`` they mention is reported -- the same reading apt-listchanges and Debian's
security announcements make. Packages of one source often share a documentation directory
(``/usr/share/doc/libfoo1 -> libfoo-common``); :func:`deb_changelog` says where it points so
the caller can read the sibling's ``.deb`` instead.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib

from nuwa.deb.archive import open_deb
from nuwa.deb.version import compare_strings
from nuwa.errors import InvalidInputError

_HEADER = re.compile(r"^(\S+) \(([^()\s]+)\)[^;]*;", re.M)
_CVE = re.compile(r"\bCVE-(\d{4})-(\d{4,7})\b")
#: a changelog larger than this (uncompressed) is read only this far (glibc's is ~1 MiB)
CHANGELOG_MAX = 16 << 20


def cves_between(text: str, installed: str | None, candidate: str) -> list[str]:
    """The CVE ids named by the entries with ``installed < version <= candidate``, sorted.

    ``installed`` None means every entry up to the candidate. Entries are read in file order
    (newest first) and reading stops at the first entry not newer than ``installed``, as
    apt-listchanges does: older text can mention a CVE that was fixed long ago.
    """
    found: set[str] = set()
    heads = list(_HEADER.finditer(text))
    for i, m in enumerate(heads):
        version = m.group(2)
        if installed is not None and compare_strings(version, installed) <= 0:
            break
        if compare_strings(version, candidate) > 0:
            continue  # an entry newer than the candidate (not part of this update)
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        for c in _CVE.finditer(text, m.end(), end):
            found.add(f"CVE-{c.group(1)}-{c.group(2)}")
    return sorted(found, key=lambda c: (int(c.split("-")[1]), int(c.split("-")[2])))


def deb_changelog(path: str, package: str) -> tuple[str | None, str | None]:
    """``(changelog text, None)`` from the .deb at ``path``, or ``(None, other)`` when the
    package's doc directory is a symlink to ``/usr/share/doc/<other>``, or ``(None, None)``.
    """
    doc = f"/usr/share/doc/{package}"
    want = (doc + "/changelog.Debian.gz", doc + "/changelog.gz")
    deb = open_deb(path)
    found: dict[str, bytes] = {}
    link = None
    for m in deb.members():
        if m.path == doc and m.type == "symlink":
            link = m.linkname.rstrip("/").rsplit("/", 1)[-1]
        elif m.path in want and m.type == "file":
            found[m.path] = m.read(CHANGELOG_MAX)
            if want[0] in found:
                break
    data = found.get(want[0]) or found.get(want[1])
    if data is None:
        return None, link
    try:
        raw = gzip.GzipFile(fileobj=io.BytesIO(data)).read(CHANGELOG_MAX)
    except (OSError, EOFError, zlib.error) as e:
        raise InvalidInputError(f"{doc}/changelog.Debian.gz is not a readable gzip file: {e}", where=path) from None
    return raw.decode("utf-8", "replace"), None

