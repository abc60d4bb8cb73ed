"""Which repositories carry security updates, decided as unattended-upgrades decides by default.

unattended-upgrades selects packages by matching a candidate's repository (its Release file's
Origin, Label, Suite, Codename, the component and the site) against "origin patterns":
``Unattended-Upgrade::Origins-Pattern`` lines such as
``origin=Debian,codename=${distro_codename}-security,label=Debian-Security`` and the older
``Unattended-Upgrade::Allowed-Origins`` pairs ``"${distro_id}:${distro_codename}-security"``
(turned into ``o=...,a=...``). The matcher mirrors its ``match_whitelist_string``: comma
separated ``key=value`` tokens (``\\,`` escapes a comma), every token must match, values are
shell globs matched case-sensitively (Python's ``fnmatch`` on POSIX).

Of the shipped defaults (``data/50unattended-upgrades.Debian`` and ``.Ubuntu``), only the lines
naming a security archive count as "security" here; the others select ordinary stable updates:

- Debian: ``origin=Debian,codename=${distro_codename}-security,label=Debian-Security`` (the
  ``bookworm-security`` layout since bullseye) and
  ``origin=Debian,codename=${distro_codename},label=Debian-Security`` (the older
  ``buster/updates`` layout, whose Release says ``Codename: buster``). The default's third line,
  ``origin=Debian,codename=${distro_codename},label=Debian``, is the point-release suite: not
  security.
- Ubuntu: ``${distro_id}:${distro_codename}-security`` and Ubuntu Pro's
  ``${distro_id}ESMApps:${distro_codename}-apps-security``, ``...-apps-legacy-security``,
  ``${distro_id}ESM:${distro_codename}-infra-security``, ``...-infra-legacy-security``. The
  release pocket ``${distro_id}:${distro_codename}`` is not security.

``distro_id`` and ``codename`` are what ``lsb_release -i -s`` / ``-c -s`` print in the image
(``Debian``/``Ubuntu`` and ``bookworm``/``jammy``); :func:`distro_from_os_release` derives them
from the image's ``/etc/os-release`` (and ``/etc/lsb-release`` on Ubuntu) without running it.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable

from nuwa.apt.records import ReleaseInfo

# The security subset of unattended-upgrades' shipped Origins-Pattern defaults (see above).
DEBIAN_SECURITY_PATTERNS = (
    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
    "origin=Debian,codename=${distro_codename},label=Debian-Security",
)
# The security subset of the Ubuntu default's Allowed-Origins ("origin:archive" pairs).
UBUNTU_SECURITY_ALLOWED = (
    "${distro_id}:${distro_codename}-security",
    "${distro_id}ESMApps:${distro_codename}-apps-security",
    "${distro_id}ESMApps:${distro_codename}-apps-legacy-security",
    "${distro_id}ESM:${distro_codename}-infra-security",
    "${distro_id}ESM:${distro_codename}-infra-legacy-security",
)

_KEYS = {
    "o": "origin", "origin": "origin",
    "l": "label", "label": "label",
    "a": "archive", "suite": "archive", "archive": "archive",
    "c": "component", "component": "component",
    "n": "codename", "codename": "codename",
    "site": "site",
}


class OriginPatternError(ValueError):
    """An origin pattern names a key unattended-upgrades does not know (its
    ``UnknownMatcherError``), or a token has no ``=``."""


def substitute(pattern: str, distro_id: str, codename: str, release: str = "") -> str:
    """Expand ``${distro_id}``, ``${distro_codename}`` and ``${distro_release}`` as
    unattended-upgrades does (``string.Template.substitute``: an unknown name is an error)."""
    try:
        return string.Template(pattern).substitute(
            distro_id=distro_id, distro_codename=codename, distro_release=release)
    except (KeyError, ValueError) as e:
        raise OriginPatternError(f"origin pattern {pattern!r}: unknown or bad macro {e}") from None


def allowed_origin_to_pattern(pair: str) -> str:
    """An ``Allowed-Origins`` entry (``"origin:archive"``, or ``"origin archive"``) as the
    ``o=...,a=...`` pattern unattended-upgrades converts it to (``get_allowed_origins_legacy``:
    ``\\:`` keeps a colon in the origin, a comma in either part is escaped)."""
    if re.search(r"(?<!\\):", pair):
        origin, archive = re.split(r"(?<!\\):", pair, maxsplit=1)
    else:
        origin, archive = pair.split(None, 1)
    origin = origin.replace("\\:", ":")
    origin = re.sub(r"([^\\]),", r"\1\\,", origin)
    archive = re.sub(r"([^\\]),", r"\1\\,", archive)
    return f"o={origin},a={archive}"


def match_origin_pattern(pattern: str, info: ReleaseInfo) -> bool:
    """Whether repository ``info`` matches one origin pattern (macros already expanded).

    An empty pattern matches nothing, as in unattended-upgrades."""
    pattern = pattern.strip()
    if not pattern:
        return False
    pattern = pattern.replace("\\,", "%2C")  # the escaped comma survives the split
    for token in pattern.split(","):
        key, sep, value = token.partition("=")
        if not sep:
            raise OriginPatternError(f"origin pattern {pattern!r}: token {token!r} has no '='")
        attr = _KEYS.get(key.strip())
        if attr is None:
            raise OriginPatternError(f"origin pattern {pattern!r}: unknown key {key.strip()!r}")
        value = value.strip().replace("%2C", ",")
        if not fnmatch.fnmatchcase(getattr(info, attr), value):
            return False
    return True


def security_patterns(distro_id: str, codename: str) -> list[str]:
    """The expanded security patterns for a distribution (Debian's or Ubuntu's defaults; any
    other ``distro_id`` gets both sets: Debian's lines name the Debian origin literally, the
    Ubuntu-style pairs ``${distro_id}:${distro_codename}-security`` take that id)."""
    debian = [substitute(p, distro_id, codename) for p in DEBIAN_SECURITY_PATTERNS]
    ubuntu = [allowed_origin_to_pattern(substitute(p, distro_id, codename)) for p in UBUNTU_SECURITY_ALLOWED]
    if distro_id.lower() == "debian":
        return debian
    if distro_id.lower() == "ubuntu":
        return ubuntu
    return debian + ubuntu


def is_security(info: ReleaseInfo, distro_id: str, codename: str) -> bool:
    """Whether packages from repository ``info`` are security updates for an image of
    ``distro_id`` (``Debian``, ``Ubuntu``) release ``codename`` (``bookworm``)."""
    return any(match_origin_pattern(p, info) for p in security_patterns(distro_id, codename))


def any_security(infos: Iterable[ReleaseInfo], distro_id: str, codename: str) -> bool:
    """Whether any of the repositories offering one version is a security one (apt lists every
    repository a version is in; unattended-upgrades accepts a version any of whose origins
    match)."""
    return any(is_security(i, distro_id, codename) for i in infos)


def _shell_vars(text: str) -> dict[str, str]:
    """KEY=value lines of an os-release / lsb-release file (quotes removed, comments skipped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def distro_from_os_release(os_release: str, lsb_release: str = "") -> tuple[str, str]:
    """(distro id, codename) as ``lsb_release -i -s`` and ``-c -s`` would print them in the
    image, from the texts of its ``/etc/os-release`` and (optional) ``/etc/lsb-release``.

    lsb_release prefers ``/etc/lsb-release``'s DISTRIB_ID/DISTRIB_CODENAME (Ubuntu ships it);
    Debian's lsb_release (since bookworm a wrapper over os-release) prints the first word of
    NAME ("Debian GNU/Linux" -> "Debian") and VERSION_CODENAME.
    """
    lsb = _shell_vars(lsb_release)
    osr = _shell_vars(os_release)
    distro_id = lsb.get("DISTRIB_ID") or (osr.get("NAME", "").split() or [""])[0] or osr.get("ID", "").capitalize()
    codename = lsb.get("DISTRIB_CODENAME") or osr.get("VERSION_CODENAME", "")
    if not codename:  # Debian 9 and older name it only in VERSION="9 (stretch)"
        m = re.search(r"\(([a-z]+)\)", osr.get("VERSION", ""))
        codename = m.group(1) if m else ""
    return distro_id, codename
