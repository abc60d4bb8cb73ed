"""The image's pins (apt_preferences(5)): ``/etc/apt/preferences`` and ``preferences.d/*``.

Read as apt 2.6's ``ReadPinFile``/``ReadPinDir`` (apt-pkg/policy.cc) read them, and matched as
``pkgVersionMatch`` (apt-pkg/versionmatch.cc) matches:

- a stanza needs ``Package`` (several names separated by spaces; ``*`` makes a generic pin
  that applies to whole repositories; ``src:NAME`` pins the binaries of a source package;
  ``NAME:ARCH`` one architecture; a name with ``*``, ``[`` or ``?``, or in ``/slashes/``, is a
  glob or regular expression), ``Pin`` (``release ...``, ``version ...``, ``origin ...``; a
  stanza without ``Pin`` is skipped, an unknown pin type is apt's warning) and a non-zero
  ``Pin-Priority`` (``never`` only for ``Package: *``);
- ``release`` keys ``a=`` (Suite), ``n=`` (Codename), ``v=`` (Version, ``*`` suffix = prefix),
  ``o=`` (Origin), ``l=`` (Label), ``c=`` (component), ``b=`` (architecture); a word without
  ``=`` is a version if it starts with a digit, else an archive-or-codename; every value is a
  glob or ``/regex/``, compared case-insensitively;
- ``version`` matches the version string (``*`` suffix = prefix, else glob or ``/regex/``);
- ``origin`` matches the repository's host name (``""`` = a local ``file:`` repository).

Which pin wins is the policy's business (:mod:`nuwa.apt.candidates`): apt gives a version the
first specific pin (in file order) that matches it, and a repository the first generic pin.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from nuwa.apt.aptconf import config_texts
from nuwa.apt.records import PackageRecord, ReleaseInfo
from nuwa.apt.sources import Warn, parse_stanzas
from nuwa.errors import InvalidInputError, quote

PREFERENCES = "/etc/apt/preferences"
PREFERENCES_PARTS = "/etc/apt/preferences.d"
#: ``Pin-Priority: never`` (policy.h NEVER_PIN: the lowest short)
NEVER_PIN = -32768


def expression_matches(pattern: str, text: str) -> bool:
    """``pkgVersionMatch::ExpressionMatches``: ``/regex/`` (extended, case-insensitive,
    unanchored) or an ``fnmatch`` glob with ``FNM_CASEFOLD``."""
    if len(pattern) >= 2 and pattern[0] == "/" and pattern[-1] == "/":
        try:
            return re.search(pattern[1:-1], text, re.IGNORECASE) is not None
        except re.error:
            return False  # apt: "Invalid regular expression" warning, no match
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def _match_ver(value: str, wanted: str, prefix: bool) -> bool:
    """``pkgVersionMatch::MatchVer``: equal (or a prefix), case-insensitively."""
    if prefix:
        return value[:len(wanted)].lower() == wanted.lower()
    return value.lower() == wanted.lower()


@dataclass(frozen=True)
class Pin:
    """One pin: which packages, which versions (``pin_kind`` + ``expr``), what priority."""

    packages: tuple[str, ...]  # the Package field's names as written; ("*",) for a generic pin
    pin_kind: str  # "release", "version" or "origin"
    expr: str  # the Pin field after its type word
    priority: int
    where: str = ""  # "/etc/apt/preferences.d/x.pref:4"
    # a release pin's expression cut up once (pkgVersionMatch's constructor), not per record
    _release: dict = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_release", parse_release_expr(self.expr) if self.pin_kind == "release" else {})

    @property
    def generic(self) -> bool:
        """True for ``Package: *`` (a repository-wide pin)."""
        return self.packages == ("*",)

    # ---- matching ---------------------------------------------------------------------------
    def matches_package(self, record: PackageRecord, native_arch: str | None = None) -> bool:
        """Whether the Package field names ``record``'s package.

        A name without ``:ARCH`` applies to the native architecture only (apt's ``CreatePin``
        looks it up with the cache's native architecture; ``Architecture: all`` packages count
        as native); ``native_arch=None`` skips that check.
        """
        if self.generic:
            return True
        arch = record.architecture
        if arch == "all" and native_arch:
            arch = native_arch
        for name in self.packages:
            source = name.startswith("src:")
            if source:
                name = name[4:]
            want_arch = None
            if ":" in name:
                name, want_arch = name.rsplit(":", 1)
            if want_arch is not None:
                if want_arch not in ("any", arch):
                    continue
            elif native_arch and arch != native_arch:
                continue
            subject = record.source_name if source else record.package
            if (name[:1] == "/" and name[-1:] == "/" and len(name) > 1) or any(c in name for c in "*[?"):
                if expression_matches(name, subject):
                    return True
            elif name == subject:
                return True
        return False

    def matches_version(self, record: PackageRecord) -> bool:
        """Whether the Pin field selects ``record`` (its version, or its repository)."""
        if self.pin_kind == "version":
            if not self.expr:
                return False
            prefix = self.expr.endswith("*")
            wanted = self.expr[:-1] if prefix else self.expr
            return _match_ver(record.version, wanted, prefix) or expression_matches(wanted, record.version)
        return self.matches_release(record.release, record.architecture)

    def matches_release(self, info: ReleaseInfo, architecture: str = "") -> bool:
        """Whether a ``release``/``origin`` pin selects the repository ``info`` (``FileMatch``).

        ``b=`` is compared with ``architecture`` (the caller passes the index's architecture;
        :meth:`matches` passes the package's).
        """
        if self.pin_kind == "origin":
            site = self.expr
            if len(site) >= 2 and site[0] == '"' and site[-1] == '"':
                site = site[1:-1]
            return expression_matches(site, info.site)
        if self.pin_kind != "release":
            return False
        r = self._release
        if r.get("all"):
            return True
        if not any(r.get(k) for k in "vaonlcbR"):
            return False
        if r.get("v") and not _match_ver(info.version, r["v"], r["vprefix"]) \
                and not expression_matches(r["v"], info.version):
            return False
        for key, value in (("o", info.origin), ("a", info.archive), ("n", info.codename), ("l", info.label)):
            if r.get(key) and not expression_matches(r[key], value):
                return False
        if r.get("R") and not expression_matches(r["R"], info.archive) \
                and not expression_matches(r["R"], info.codename):
            return False
        if r.get("c") and not expression_matches(r["c"], info.component):
            return False
        if r.get("b") and not expression_matches(r["b"], architecture):
            return False
        return True

    def matches(self, record: PackageRecord, native_arch: str | None = None) -> bool:
        """Whether this pin applies to ``record``: its Package field names the package and its
        Pin field selects the version (or the repository it comes from)."""
        return self.matches_package(record, native_arch) and self.matches_version(record)


def parse_release_expr(expr: str) -> dict:
    """A ``release`` pin's expression as ``pkgVersionMatch`` cuts it up: keys ``v o a n l c b``,
    ``R`` (a word without ``=``: archive or codename), ``all`` (``*``), ``vprefix``."""
    r: dict = {"vprefix": False}
    if expr == "*":
        r["all"] = True
        return r
    if not expr:
        return r
    if "=" not in expr:
        if expr[0].isdigit():
            r["v"] = expr
        else:
            r["R"] = expr
    else:
        # TokSplitString(','): pieces with surrounding blanks removed; under 3 characters ignored
        for frag in (p.strip() for p in expr.split(",")):
            if len(frag) < 3 or frag[1] != "=":
                continue
            key = frag[0].lower()
            if key in "voanlcb":
                r[key] = frag[2:]
    if r.get("v", "").endswith("*"):
        r["v"], r["vprefix"] = r["v"][:-1], True
    return r


def parse_preferences(text: str, where: str, warn: Warn = None) -> list[Pin]:
    """The pins of one preferences file's text (``where`` = its name for messages)."""
    pins: list[Pin] = []
    for st in parse_stanzas(text, where, warn):
        at = f"{where}:{st.line}"
        name = st.get("Package")
        if not name:
            raise InvalidInputError(f"invalid record in the preferences file {where}, no Package header", where=at)
        pin = st.get("Pin")
        if pin is None:
            continue
        kind, _, expr = pin.strip().partition(" ")
        kind = kind.lower()
        expr = expr.strip()
        if kind == "version" and name.strip() == "*":
            kind = "?"  # apt accepts a version pin only for named packages
        if kind not in ("version", "release", "origin"):
            if warn:
                warn(f"{at}: did not understand pin type {quote(pin.split()[0] if pin.split() else '')}; stanza ignored")
            continue
        text_prio = (st.get("Pin-Priority") or "").strip()
        generic = name.strip() == "*"
        if text_prio == "never":
            if not generic:
                raise InvalidInputError("the special 'Pin-Priority: never' can only be used for "
                                        "'Package: *' records", where=at)
            priority = NEVER_PIN
        else:
            # FindI is strtol: leading digits count ("10abc" is 10), none at all is 0
            m = re.match(r"[+-]?\d+", text_prio)
            priority = int(m.group(0)) if m else 0
            if priority == NEVER_PIN:  # apt silently clamps a written -32768 to -32767
                priority += 1
            if priority is not None and not -32768 <= priority <= 32767:
                raise InvalidInputError(f"value {quote(text_prio)} is outside the range of valid pin priorities "
                                        f"(-32768 to 32767)", where=at)
            if not priority:
                raise InvalidInputError("no priority (or zero) specified for pin", where=at)
        packages = ("*",) if generic else tuple(name.split())
        pins.append(Pin(packages, kind, expr, priority, at))
    return pins


def read_preferences(fs, warn: Warn = None) -> list[Pin]:
    """The image's pins in apt's order: ``/etc/apt/preferences``, then ``preferences.d/*``
    (``*.pref`` or no extension, apt's file-name filter, sorted)."""
    pins: list[Pin] = []
    for path, text in config_texts(fs, PREFERENCES, PREFERENCES_PARTS, ("pref", "")):
        pins += parse_preferences(text, path, warn)
    return pins
