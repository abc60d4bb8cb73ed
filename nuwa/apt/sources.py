"""The image's package sources, read as apt 2.6 reads them (sources.list(5)).

``/etc/apt/sources.list`` first, then ``/etc/apt/sources.list.d/*.list`` (one-line form) and
``*.sources`` (deb822 form) in apt's file order and name filter. Parsing follows
apt-pkg/sourcelist.cc (``ParseLine``, ``ParseStanza``) and the merging of entries follows
apt-pkg/deb/debmetaindex.cc (``GetDebReleaseIndexBy``, ``SetTrusted``, ``SetSignedBy``...):

- one repository per (URI, suite); entries naming the same one add components to it, and the
  same component and architecture configured twice is apt's warning "Target Packages (...) is
  configured multiple times in A and B";
- options that apt keeps per repository (``trusted``, ``check-valid-until``, ``signed-by``)
  must agree between those entries, else apt's error "Conflicting values set for option ...";
- ``deb-src`` entries are checked and then ignored, ``Enabled: no`` stanzas are skipped;
- apt accepts unknown one-line options and deb822 fields silently; Nuwa warns (a typo such as
  ``signed_by=`` would otherwise drop the key restriction without a word), except for deb822
  ``X-*`` fields, which are meant for other tools.

Errors are :class:`InvalidInputError` naming ``file:line``; warnings go to ``warn(msg)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Callable

from nuwa.apt.aptconf import (config_texts, image_architectures, native_architecture, quote_word,
                              read_apt_config, string_to_bool)
from nuwa.errors import InvalidInputError, quote

SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_PARTS = "/etc/apt/sources.list.d"

#: URI schemes Nuwa fetches from (nuwa.apt.fetch); others are skipped with a warning
SUPPORTED_SCHEMES = ("http", "https", "file")

#: one-line option names apt 2.6 acts on (debmetaindex.cc, sources.list(5))
KNOWN_OPTIONS = {
    "arch", "arch+", "arch-", "lang", "lang+", "lang-", "target", "target+", "target-",
    "pdiffs", "by-hash", "allow-insecure", "allow-weak", "allow-downgrade-to-insecure",
    "trusted", "signed-by", "check-valid-until", "valid-until-min", "valid-until-max",
    "check-date", "date-max-future", "inrelease-path",
}
#: options that would make apt accept less-verified metadata; Nuwa does not honour them
IGNORED_OPTIONS = {"allow-insecure", "allow-weak", "allow-downgrade-to-insecure", "check-date",
                   "date-max-future", "valid-until-min", "valid-until-max", "inrelease-path"}

#: deb822 field -> one-line option (ParseStanza's mapping), plus the fields it reads itself
DEB822_FIELDS = {
    "architectures": "arch", "architectures-add": "arch+", "architectures-remove": "arch-",
    "languages": "lang", "languages-add": "lang+", "languages-remove": "lang-",
    "targets": "target", "targets-add": "target+", "targets-remove": "target-",
    "trusted": "trusted", "check-valid-until": "check-valid-until",
    "valid-until-min": "valid-until-min", "valid-until-max": "valid-until-max",
    "check-date": "check-date", "date-max-future": "date-max-future",
    "signed-by": "signed-by", "pdiffs": "pdiffs", "by-hash": "by-hash",
}
DEB822_MULTI = {"architectures", "architectures-add", "architectures-remove", "languages",
                "languages-add", "languages-remove", "targets", "targets-add", "targets-remove"}
DEB822_OWN = {"types", "uris", "suites", "components", "enabled"}

_FINGERPRINT = re.compile(r"[0-9A-F]{40}!?")
_KEY_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

Warn = Callable[[str], None] | None


@dataclass(frozen=True)
class Source:
    """One repository (URI and suite) with the components and options the image gives it."""

    uri: str  # normalised, no trailing '/'; "file:/srv/repo" or "http://host/debian"
    suite: str  # "bookworm-security"; flat repositories: an exact path ending in "/" ("./")
    components: tuple[str, ...]  # () for a flat repository
    architectures: tuple[str, ...] | None  # [arch=...] / Architectures:; None = the image's
    signed_by: tuple[str, ...] = ()  # key file paths or fingerprints as written
    signed_by_key: bytes | None = None  # an inline (deb822 multi-line) armored key block
    trusted: bool = False  # trusted=yes / Trusted: yes
    check_valid_until: bool | None = None  # check-valid-until=no/yes; None = apt.conf's default
    where: str = ""  # "/etc/apt/sources.list:3" for messages

    @property
    def flat(self) -> bool:
        """True for a flat repository (``deb URI path/``: no dists/, no components)."""
        return self.suite.endswith("/")


# ---- deb822 stanzas (pkgTagFile with SUPPORT_COMMENTS) ------------------------------------
@dataclass
class Stanza:
    """One deb822 paragraph: fields by lower-case name -> (name as written, value, line)."""

    line: int
    fields: dict

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of field ``name`` (case-insensitive), or ``default``."""
        f = self.fields.get(name.lower())
        return default if f is None else f[1]


def parse_stanzas(text: str, where: str, warn: Warn = None) -> list[Stanza]:
    """Split deb822 text into stanzas as apt's ``pkgTagFile`` does: blank lines separate,
    ``#`` at the start of a line is a comment, a line starting with space or tab continues the
    previous field (a ``#`` there is text, as in apt). A field given twice keeps its last
    value (as apt) with a warning.

    A line without ``:`` is what apt's ``pkgTagSection::Scan`` makes of it: the field name
    runs on to the next ``:`` of the stanza, swallowing the lines between (so ``Pin release
    a=x`` followed by ``Pin-Priority: 10`` leaves the stanza without ``Pin``); Nuwa warns
    about it. With no ``:`` left in the stanza it is apt's "Unable to parse" error, here
    naming ``where:line``.
    """
    stanzas: list[Stanza] = []
    cur: Stanza | None = None
    last: str | None = None
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    i = 0
    while i < len(lines):
        n, line = i + 1, lines[i]
        i += 1
        if line.startswith("#"):
            continue
        if not line.strip():
            cur, last = None, None
            continue
        if line[0] in " \t":
            if last is None:
                raise InvalidInputError("continuation line without a field", where=f"{where}:{n}")
            name, value, at = cur.fields[last]
            cur.fields[last] = (name, value + "\n" + line.strip(), at)
            continue
        if ":" not in line:
            # the field name runs on to the next ':' in this stanza (apt's Scan)
            j = i
            while j < len(lines) and lines[j].strip() and ":" not in lines[j]:
                j += 1
            if j == len(lines) or not lines[j].strip():
                raise InvalidInputError(f"unable to parse {quote(line)} (no ':')", where=f"{where}:{n}")
            if warn:
                warn(f"{where}:{n}: line without ':'; apt reads it as part of a field name up to line {j + 1}")
            line = "\n".join(lines[i - 1:j + 1])
            i = j + 1
        name, value = line.split(":", 1)
        name = name.strip()
        if not name:
            raise InvalidInputError("field without a name", where=f"{where}:{n}")
        if cur is None:
            cur = Stanza(n, {})
            stanzas.append(cur)
        if name.lower() in cur.fields and warn:
            warn(f"{where}:{n}: field {name} given twice in one stanza; the last value is used")
        cur.fields[name.lower()] = (name, value.strip(), n)
        last = name.lower()
    return stanzas


# ---- one entry (a line or a stanza) -> items ------------------------------------------------
@dataclass
class Entry:
    """One (type, URI, suite, component) of a sources line or stanza, with its options."""

    type: str
    uri: str
    suite: str
    component: str
    options: dict
    where: str


def _fixup_uri(uri: str, native: str | None) -> str | None:
    """``Type::FixupURI``: must contain ':'; ``$(ARCH)`` substituted; normalised as apt's URI
    class prints it (``file:///x`` -> ``file:/x``), returned without the trailing '/'."""
    if not uri or ":" not in uri:
        return None
    if native:
        uri = uri.replace("$(ARCH)", native)
    scheme, rest = uri.split(":", 1)
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        uri = f"{scheme}:/{path}" if not host and scheme in ("file", "copy") else f"{scheme}://{host}/{path}"
    return uri.rstrip("/") or uri


def _parse_line(line: str, where: str, native: str | None) -> list[Entry]:
    """One non-comment line of a ``.list`` file (``ParseFileOldStyle`` + ``ParseLine``)."""
    m = re.match(r"(\S+)\s", line)
    if not m:
        raise InvalidInputError("malformed line (type)", where=where)
    kind = m.group(1)
    if kind not in ("deb", "deb-src"):
        raise InvalidInputError(f"type {quote(kind)} is not known", where=where)
    rest = line[m.end():].lstrip()
    options: dict[str, str] = {}
    if rest.startswith("["):
        rest = rest[1:].lstrip()
        while not rest.startswith("]"):
            option, after = quote_word(rest)
            if option is None:
                raise InvalidInputError("malformed entry ([option] unparsable)", where=where)
            if len(option) < 3:
                raise InvalidInputError(f"malformed entry ([option] too short: {quote(option)})", where=where)
            if option.endswith("]"):  # "arch=amd64]" with no space before the ']'
                option = option[:-1]
                after = "]" + after
            key, eq, value = option.partition("=")
            if not eq:
                raise InvalidInputError(f"malformed entry ([option] not assignment: {quote(option)})", where=where)
            if not key:
                raise InvalidInputError("malformed entry ([option] no key)", where=where)
            if not value:
                raise InvalidInputError(f"malformed entry ([option] no value: {quote(key)})", where=where)
            options[key] = value
            rest = after
        rest = rest[1:].lstrip()
    uri, rest = quote_word(rest)
    if uri is None:
        raise InvalidInputError("malformed entry (URI)", where=where)
    suite, rest = quote_word(rest)
    if suite is None:
        raise InvalidInputError("malformed entry (Suite)", where=where)
    fixed = _fixup_uri(uri, native)
    if fixed is None:
        raise InvalidInputError(f"malformed entry (URI parse: {quote(uri)})", where=where)
    if suite.endswith("/"):
        comp, rest = quote_word(rest)
        if comp is not None:
            raise InvalidInputError("malformed entry (absolute Suite Component)", where=where)
        # apt 2.6 substitutes $(ARCH) in a flat path only (ParseLine), and in every deb822 suite
        if native:
            suite = suite.replace("$(ARCH)", native)
        return [Entry(kind, fixed, suite, "", options, where)]
    comps = []
    while True:
        comp, rest = quote_word(rest)
        if comp is None:
            break
        comps.append(comp)
    if not comps:
        raise InvalidInputError("malformed entry (Component)", where=where)
    return [Entry(kind, fixed, suite, c, options, where) for c in comps]


def _parse_stanza(st: Stanza, file: str, native: str | None, warn: Warn) -> list[Entry]:
    """One deb822 stanza (``ParseFileDeb822`` + ``ParseStanza``)."""
    where = f"{file}:{st.line}"
    kinds = (st.get("Types") or "").split()
    if st.get("Types") is None or not kinds:
        raise InvalidInputError("malformed stanza (type)", where=where)
    for k in kinds:
        if k not in ("deb", "deb-src"):
            raise InvalidInputError(f"type {quote(k)} is not known", where=where)
    enabled = st.get("Enabled")
    if enabled and not string_to_bool(enabled, True):
        return []
    options: dict[str, str] = {}
    for lname, (name, value, line) in st.fields.items():
        if lname in DEB822_FIELDS:
            opt = DEB822_FIELDS[lname]
            options[opt] = ",".join(value.split()) if lname in DEB822_MULTI else value
        elif lname not in DEB822_OWN and not lname.startswith("x-") and warn:
            warn(f"{file}:{line}: unknown field {quote(name)} ignored")
    uris = (st.get("URIs") or "").split()
    suites = (st.get("Suites") or "").split()
    comps = (st.get("Components") or "").split()
    if not uris:
        raise InvalidInputError("malformed entry (URI)", where=where)
    if not suites:
        raise InvalidInputError("malformed entry (Suite)", where=where)
    if native:
        suites = [s.replace("$(ARCH)", native) for s in suites]
    items = []
    for k in kinds:
        for uri in uris:
            fixed = _fixup_uri(uri, native)
            if fixed is None:
                raise InvalidInputError(f"malformed entry (URI parse: {quote(uri)})", where=where)
            for s in suites:
                if s.endswith("/"):
                    if comps:
                        raise InvalidInputError("malformed entry (absolute Suite Component)", where=where)
                    items.append(Entry(k, fixed, s, "", options, where))
                else:
                    if not comps:
                        raise InvalidInputError("malformed entry (Component)", where=where)
                    items.extend(Entry(k, fixed, s, c, options, where) for c in comps)
    return items


def parse_sources_text(text: str, where: str, deb822: bool, native: str | None = None,
                       warn: Warn = None) -> list[Entry]:
    """The entries of one sources file's text (``where`` = its name for messages)."""
    if deb822:
        items = []
        for st in parse_stanzas(text, where, warn):
            items.extend(_parse_stanza(st, where, native, warn))
        return items
    items = []
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw
        # a '#' starts a comment unless it sits inside [options] (ParseFileOldStyle)
        pos = 0
        while (pos := line.find("#", pos)) >= 0:
            if line.count("[", 0, pos) > line.count("]", 0, pos):
                pos += 1
                continue
            line = line[:pos]
            break
        line = line.strip(" \t\r")
        if line:
            items.extend(_parse_line(line, f"{where}:{n}", native))
    return items


# ---- merging entries into repositories (debmetaindex.cc) ------------------------------------
def _tri(options: dict, name: str) -> bool | None:
    value = options.get(name)
    return None if value is None else string_to_bool(value, False)


def _signed_by(value: str, item: Entry) -> tuple[tuple[str, ...], bytes | None]:
    """``NormalizeSignedBy(value, introducer=true)``: an inline key block, or a list of
    absolute key file paths and 40-hex-digit fingerprints (``!`` suffix allowed)."""
    if _KEY_BEGIN in value:
        lines = ["" if ln.strip() == "." else ln.strip() for ln in value.split("\n")]
        return (), ("\n".join(lines).strip("\n") + "\n").encode()
    parts = [p for p in re.split(r"[\s,]+", value) if p]
    out = []
    for p in parts:
        if p.startswith("/"):
            out.append(p)
        elif _FINGERPRINT.fullmatch(p.upper()):
            out.append(p.upper())
        else:
            raise InvalidInputError(f"invalid value set for option Signed-By regarding source {item.uri} "
                                    f"{item.suite} (not a fingerprint: {quote(p)})", where=item.where)
    return tuple(out), None


@dataclass
class _Repo:
    uri: str
    suite: str
    where: str
    release_options: dict = None  # GetDebReleaseIndexBy's options: must be equal for all entries
    tri: dict = None  # Trusted/Check-Valid-Until/Check-Date: "unset" until the first entry
    times: dict = None  # Min-/Max-ValidTime, Date-Max-Future: 0 until set
    signed_by: tuple | None = None
    signed_by_key: bytes | None = None
    targets: list = None  # [(component, archs or None, where)]


#: (option, apt's name in messages) of the per-repository tri-state and time options
_TRI_OPTIONS = (("trusted", "Trusted"), ("check-valid-until", "Check-Valid-Until"), ("check-date", "Check-Date"))
_TIME_OPTIONS = (("valid-until-max", "Max-ValidTime"), ("valid-until-min", "Min-ValidTime"),
                 ("date-max-future", "Date-Max-Future"))
#: release options and the apt.conf defaults of the boolean ones (GetDebReleaseIndexBy)
_RELEASE_OPTIONS = (("allow-insecure", "ALLOW_INSECURE", "Acquire::AllowInsecureRepositories"),
                    ("allow-weak", "ALLOW_WEAK", "Acquire::AllowWeakRepositories"),
                    ("allow-downgrade-to-insecure", "ALLOW_DOWNGRADE_TO_INSECURE",
                     "Acquire::AllowDowngradeToInsecureRepositories"))


def _release_options(it: Entry, defaults: dict) -> dict:
    out = {}
    for opt, name, conf_key in _RELEASE_OPTIONS:
        value = it.options.get(opt)
        if string_to_bool(value, False) if value is not None else defaults.get(conf_key, False):
            out[name] = "true"
    if "inrelease-path" in it.options:
        out["INRELEASE_PATH"] = it.options["inrelease-path"]
    return out


def _merge_options(repo: _Repo, it: Entry, defaults: dict) -> None:
    """apt's checks that every entry of one repository agrees (debmetaindex.cc: MapsAreEqual,
    SetTrusted, SetCheckValidUntil, SetValidUntilMin/Max, SetCheckDate, SetDateMaxFuture,
    SetSignedBy); a disagreement is apt's "Conflicting values" error."""
    def conflict(label: str, detail: str = "") -> InvalidInputError:
        return InvalidInputError(f"conflicting values set for option {label} regarding source "
                                 f"{it.uri}/ {it.suite}{detail}", where=it.where)

    release = _release_options(it, defaults)
    if repo.release_options is None:
        repo.release_options = release
    elif release != repo.release_options:
        label = sorted(set(release.items()) ^ set(repo.release_options.items()))[0][0]
        raise conflict(label)
    for opt, label in _TRI_OPTIONS:
        value = _tri(it.options, opt)
        old = repo.tri.get(opt, "unset")
        if old == "unset":
            repo.tri[opt] = value
        elif old != value:
            raise conflict(label)
    for opt, label in _TIME_OPTIONS:
        try:
            value = int(it.options.get(opt, "0") or 0)
        except ValueError:
            raise InvalidInputError(f"option {opt} is not a number of seconds: {quote(it.options[opt])}",
                                    where=it.where) from None
        old = repo.times.get(opt, 0)
        if old == 0:
            repo.times[opt] = value
        elif old != value:
            raise conflict(label)
    paths, key = _signed_by(it.options.get("signed-by", ""), it)
    if repo.signed_by is None or (not repo.signed_by and repo.signed_by_key is None):
        # SetSignedBy: the first non-empty value is taken
        repo.signed_by, repo.signed_by_key = paths, key
    elif (paths, key) != (repo.signed_by, repo.signed_by_key):
        def show(p, k):
            return "an inline key" if k else ",".join(p) or "(none)"
        raise conflict("Signed-By", f": {show(repo.signed_by, repo.signed_by_key)} != {show(paths, key)}")


def merge_items(items: list[Entry], image_archs: list[str] | None, warn: Warn = None,
                defaults: dict | None = None) -> list[Source]:
    """Entries -> one :class:`Source` per (URI, suite, architecture set), as apt merges them.

    ``defaults`` holds the apt.conf booleans apt uses for entries without the option
    (``Acquire::AllowInsecureRepositories``...); ``deb-src`` entries take part in apt's
    agreement checks but give no source.
    """
    defaults = defaults or {}
    repos: dict[tuple[str, str], _Repo] = {}
    for it in items:
        for key in it.options:
            if key not in KNOWN_OPTIONS and warn:
                warn(f"{it.where}: unknown option {quote(key)} ignored")
            elif key in IGNORED_OPTIONS and warn and string_to_bool(it.options[key], True):
                warn(f"{it.where}: option {key} is not supported by Nuwa and is ignored")
        repo = repos.get((it.uri, it.suite))
        if repo is None:
            repo = repos[(it.uri, it.suite)] = _Repo(it.uri, it.suite, it.where, tri={}, times={}, targets=[])
        _merge_options(repo, it, defaults)
        if it.type != "deb":
            continue  # deb-src: source packages are never fetched
        archs = _architectures(it, image_archs)
        for arch in (archs if archs is not None else image_archs or ["*"]):
            # apt names the first earlier entry that has the same target, once per target
            for comp, old_archs, old_where in repo.targets:
                if comp == it.component and arch in (old_archs if old_archs is not None else image_archs or ["*"]):
                    if warn:
                        path = f"{comp}/binary-{arch}/Packages" if comp else "Packages"
                        warn(f"Target Packages ({path}) is configured multiple times in {old_where} and {it.where}")
                    break
        repo.targets.append((it.component, archs, it.where))
    out: list[Source] = []
    for repo in repos.values():
        groups: dict[tuple | None, list[str]] = {}
        wheres: dict[tuple | None, str] = {}
        for comp, archs, where in repo.targets:
            comps = groups.setdefault(archs, [])
            wheres.setdefault(archs, where)
            if comp and comp not in comps:
                comps.append(comp)
        for archs, comps in groups.items():
            out.append(Source(
                uri=repo.uri, suite=repo.suite, components=tuple(comps), architectures=archs,
                signed_by=repo.signed_by or (), signed_by_key=repo.signed_by_key,
                trusted=bool(repo.tri.get("trusted")), check_valid_until=repo.tri.get("check-valid-until"),
                where=wheres[archs]))
    return out


def _architectures(it: Entry, image_archs: list[str] | None) -> tuple[str, ...] | None:
    """``parsePlusMinusArchOptions``: ``arch=`` replaces, ``arch+=``/``arch-=`` edit the
    image's list; None when no option is given (the image's architectures)."""
    opts = it.options
    if not any(k in opts for k in ("arch", "arch+", "arch-")):
        return None
    if "arch" in opts:
        values = [a for a in opts["arch"].split(",") if a]
    elif image_archs is None:
        raise InvalidInputError("arch+=/arch-= need the image's architectures", where=it.where)
    else:
        values = list(image_archs)
    for a in (opts.get("arch+") or "").split(","):
        if a and a not in values:
            values.append(a)
    minus = set((opts.get("arch-") or "").split(","))
    return tuple(a for a in values if a not in minus and a != "all")


def _supported(sources: list[Source], warn: Warn) -> list[Source]:
    out = []
    for s in sources:
        scheme = s.uri.split(":", 1)[0]
        if scheme in SUPPORTED_SCHEMES:
            out.append(s)
        elif warn:
            warn(f"{s.where}: {scheme}: sources are not supported by Nuwa; {s.uri} {s.suite} skipped")
    return out


# ---- the public readers ------------------------------------------------------------------------
def read_sources(fs, warn: Warn = None) -> list[Source]:
    """The image's sources: ``/etc/apt/sources.list``, then ``sources.list.d/*.list`` and
    ``*.sources`` (apt's filter and order), merged as apt merges them. Everything is read from
    the image's filesystem ``fs``."""
    conf = read_apt_config(fs)
    archs = image_architectures(fs, conf)
    native = conf.get("APT::Architecture") or native_architecture(fs)
    items: list[Entry] = []
    for path, text in config_texts(fs, SOURCES_LIST, SOURCES_PARTS, ("list", "sources")):
        items += parse_sources_text(text, path, path.endswith(".sources"), native, warn)
    defaults = {key: conf.get_bool(key) for _, _, key in _RELEASE_OPTIONS}
    return _supported(merge_items(items, archs, warn, defaults), warn)


def parse_repo_spec(spec: str, warn: Warn = None) -> list[Source]:
    """The sources one ``--repo SPEC`` names: a one-line ``deb ...`` entry, a host path of a
    ``.list``/``.sources`` file, or a local directory / ``file:`` URL of a repository (flat if
    it has ``Packages*``/``Release``/``InRelease`` at its top, else one source per
    ``dists/<suite>`` with the components found there)."""
    text = spec.strip()
    if re.match(r"deb(-src)?\s", text):
        return _supported(merge_items(parse_sources_text(text, "--repo", False, None, warn), None, warn), warn)
    path = text[len("file:"):] if text.startswith("file:") else text
    if text.startswith("file:") and path.startswith("//"):
        path = "/" + path[2:].partition("/")[2]
    if os.path.isfile(path) and path.endswith((".list", ".sources")):
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "surrogateescape")
        items = parse_sources_text(data, path, path.endswith(".sources"), None, warn)
        return _supported(merge_items(items, None, warn), warn)
    if os.path.isdir(path):
        return _directory_sources(os.path.abspath(path), spec)
    raise InvalidInputError(f"--repo {quote(spec)}: not a 'deb ...' line, a .list/.sources file "
                            "or a repository directory")


def _directory_sources(root: str, spec: str) -> list[Source]:
    uri = "file:" + root.rstrip("/")
    top = set(os.listdir(root))
    if top & {"Release", "InRelease", "Packages", "Packages.gz", "Packages.xz"}:
        return [Source(uri, "./", (), None, where=f"--repo {spec}")]
    dists = os.path.join(root, "dists")
    out = []
    if os.path.isdir(dists):
        for suite in sorted(os.listdir(dists)):
            sdir = os.path.join(dists, suite)
            if not os.path.isdir(sdir) or os.path.islink(sdir):
                continue  # a codename symlink (stable -> bookworm) would list a suite twice
            comps = tuple(sorted(c for c in os.listdir(sdir) if os.path.isdir(os.path.join(sdir, c))
                                 and any(d.startswith("binary-") for d in os.listdir(os.path.join(sdir, c)))))
            if comps:
                out.append(Source(uri, suite, comps, None, where=f"--repo {spec}"))
    if not out:
        raise InvalidInputError(f"--repo {quote(spec)}: no Release or Packages file at its top and no "
                                "dists/<suite>/<component>/binary-* below it")
    return out


def with_architectures(source: Source, archs: list[str]) -> Source:
    """``source`` with its architectures made explicit (None -> ``archs``)."""
    return source if source.architectures is not None else replace(source, architectures=tuple(archs))
