"""``/var/lib/dpkg/status``: read, change and write back round-trip-safely.

Every paragraph keeps its exact text until it is changed; untouched paragraphs (and the blank
lines between them) are written back byte for byte. A changed paragraph is written the way
dpkg's ``writedb`` writes it (``lib/dpkg/dump.c``): known fields in dpkg's order, other fields
after them in their own order and spelling. New paragraphs are inserted where dpkg's sort
(``pkg_sorter_by_nonambig_name_arch``) puts them; paragraphs that carry no information any
more (``pkg_is_informative``: purged packages) are dropped, as dpkg drops them.

Saving mirrors ``atomic_file`` with ``ATOMIC_FILE_BACKUP``: write ``status-new``, replace
``status-old`` by a hard link to the current ``status``, then rename ``status-new`` over
``status`` — all inside the image's filesystem model.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from nuwa.deb.control import DPKG_FIELD_ORDER, Paragraph, package_name_problem, parse_paragraphs, parse_relations
from nuwa.deb.version import version_problem
from nuwa.errors import CorruptImageError, InvalidInputError, quote

WANTS = ("unknown", "install", "hold", "deinstall", "purge")
EFLAGS = ("ok", "reinstreq")
#: in dpkg's enum pkgstatus order (lib/dpkg/dpkg-db.h): comparisons use this order
STATES = ("not-installed", "config-files", "half-installed", "unpacked", "half-configured",
          "triggers-awaited", "triggers-pending", "installed")
STATE_RANK = {s: i for i, s in enumerate(STATES)}

#: dpkg's journal (lib/dpkg/dpkg.h): ``updates/NNNN`` records, written through ``tmp.i``
UPDATESDIR = "updates"
IMPORTANTTMP = "tmp.i"
IMPORTANTMAXLEN = 10
IMPORTANTFMT = "{:04d}"
MAXUPDATES = 250

NEWCONFFILEFLAG = "newconffile"
NONEXISTENTFLAG = "nonexistent"
EMPTYHASHFLAG = "-"


@dataclass
class Conffile:
    """One line of a ``Conffiles`` field."""

    name: str
    hash: str
    obsolete: bool = False
    remove_on_upgrade: bool = False

    def render(self) -> str:
        s = f" {self.name} {self.hash}"
        if self.obsolete:
            s += " obsolete"
        if self.remove_on_upgrade:
            s += " remove-on-upgrade"
        return s


def parse_conffiles_field(lines: list[str], where: str) -> list[Conffile]:
    """dpkg ``f_conffiles``: ``name hash [obsolete] [remove-on-upgrade]`` per line.

    As dpkg does (``conffvalue_lastword``), the words are taken from the end of the line, so
    a conffile name may hold spaces ("/etc/foo bar"): only the last one to three words are
    the hash and flags.
    """
    out = []
    for ln in lines:
        text = ln.strip()
        rest, word = _last_word(text, ln, where)
        rou = word == "remove-on-upgrade"
        if rou:
            rest, word = _last_word(rest, ln, where)
        obsolete = word == "obsolete"
        if obsolete:
            rest, word = _last_word(rest, ln, where)
        if not skip_slash_dotslash(rest):
            raise CorruptImageError(f"root or empty directory listed as a conffile in 'Conffiles' field: {quote(ln)}",
                                    where=where)
        out.append(Conffile(rest, word, obsolete, rou))
    return out


def skip_slash_dotslash(path: str) -> str:
    """dpkg ``path_skip_slash_dotslash``: ``path`` without its leading ``/`` and ``./`` runs."""
    while path.startswith(("/", "./")):
        path = path[1:] if path[0] == "/" else path[2:]
    return path


def _last_word(text: str, line: str, where: str) -> tuple[str, str]:
    """dpkg ``conffvalue_lastword``: split off the word after the last space (both non-empty)."""
    i = text.rfind(" ")
    if i <= 0 or i >= len(text) - 1:
        raise CorruptImageError(f"value for 'Conffiles' has malformed line {quote(line)}", where=where)
    return text[:i], text[i + 1 :]


class PkgEntry:
    """One package's paragraph, with typed accessors that edit the paragraph in place."""

    def __init__(self, para: Paragraph, where: str = "status"):
        self.para = para
        self.where = where
        self.dirty = False
        self._cv: str | None = None  # dpkg's in-memory configversion

    def relations(self, field: str) -> list:
        """The parsed relationship ``field`` (``parse_relations``): a syntax error in the
        database is a damaged image, not the caller's input."""
        try:
            return parse_relations(self.para.get(field), field)
        except InvalidInputError as e:
            raise CorruptImageError(str(e), where=self.where) from None

    # ---- identity --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.para.get("Package", "")

    @property
    def arch(self) -> str:
        return self.para.get("Architecture", "") or ""

    @property
    def multiarch(self) -> str:
        return self.para.get("Multi-Arch", "no") or "no"

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.arch)

    def nonambig(self) -> str:
        """``name`` or ``name:arch`` for Multi-Arch: same (dpkg ``pnaw_nonambig``)."""
        return f"{self.name}:{self.arch}" if self.multiarch == "same" and self.arch else self.name

    def infodb_name(self) -> str:
        """The stem of this package's files in ``info/`` (multi-arch layout, format 1)."""
        return self.nonambig()

    # ---- Status ----------------------------------------------------------------------------
    def _status_words(self) -> list[str]:
        words = (self.para.get("Status") or "").split()
        if len(words) != 3:
            raise CorruptImageError(f"package {self.name}: 'Status' field {quote(self.para.get('Status'))} is not "
                                    "'want flag state'", where=self.where)
        # dpkg f_status (lib/dpkg/fields.c) checks each word against its table, not only the count
        for word, table, what in zip(words, (WANTS, EFLAGS, STATES),
                                     ("first (want)", "second (error)", "third (status)")):
            if word not in table:
                raise CorruptImageError(f"package {self.name}: {what} word in 'Status' field has invalid value "
                                        f"{quote(word)}", where=self.where)
        return words

    @property
    def want(self) -> str:
        return self._status_words()[0]

    @property
    def eflag(self) -> str:
        return self._status_words()[1]

    @property
    def status(self) -> str:
        return self._status_words()[2]

    def set_status(self, want: str | None = None, eflag: str | None = None, status: str | None = None) -> None:
        """Change any of the three Status words."""
        w, e, s = self._status_words() if "Status" in self.para else ("unknown", "ok", "not-installed")
        w, e, s = want or w, eflag or e, status or s
        assert w in WANTS and e in EFLAGS and s in STATES, (w, e, s)
        cv = self.config_version
        self.set("Status", f"{w} {e} {s}")
        self.set_config_version(cv)

    # ---- other fields ----------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        return self.para.get(key, default)

    def set(self, key: str, value: str | None) -> None:
        before = self.para.raw
        self.para.set(key, value)
        if self.para.raw is None and before is not None or self.para.raw is None:
            self.dirty = True

    @property
    def version(self) -> str:
        return self.para.get("Version", "") or ""

    @property
    def config_version(self) -> str:
        """dpkg's ``configversion``: the field, or for installed/triggers-pending the version."""
        if self._cv is None:
            v = self.para.get("Config-Version")
            if v:
                self._cv = v
            elif "Status" in self.para and self._status_words()[2] in ("installed", "triggers-pending"):
                self._cv = self.version
            else:
                self._cv = ""
        return self._cv

    def set_config_version(self, version: str) -> None:
        """Set ``configversion``; the field shows only where ``w_configversion`` writes it."""
        self._cv = version or ""
        hidden = "Status" in self.para and self._status_words()[2] in ("installed", "not-installed", "triggers-pending")
        self.set("Config-Version", None if hidden or not self._cv else self._cv)

    @property
    def essential(self) -> bool:
        return (self.para.get("Essential") or "no") == "yes"

    @property
    def protected(self) -> bool:
        return (self.para.get("Protected") or "no") == "yes"

    @property
    def conffiles(self) -> list[Conffile]:
        return parse_conffiles_field(self.para.lines("Conffiles"), f"{self.where}: package {self.name}")

    def set_conffiles(self, cfs: list[Conffile]) -> None:
        self.set("Conffiles", "\n" + "\n".join(c.render() for c in cfs) if cfs else None)

    @property
    def triggers_pending(self) -> list[str]:
        return (self.para.get("Triggers-Pending") or "").split()

    def set_triggers_pending(self, names: list[str]) -> None:
        self.set("Triggers-Pending", " ".join(names) if names else None)

    @property
    def triggers_awaited(self) -> list[str]:
        return (self.para.get("Triggers-Awaited") or "").split()

    def set_triggers_awaited(self, names: list[str]) -> None:
        self.set("Triggers-Awaited", " ".join(names) if names else None)

    def is_informative(self) -> bool:
        """dpkg ``pkg_is_informative`` for the installed half: does this paragraph say anything?"""
        try:
            w, e, s = self._status_words()
        except CorruptImageError:
            return True
        if w != "unknown" or e != "ok" or s != "not-installed" or self.config_version:
            return True
        informative = ("Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks", "Conflicts", "Enhances",
                       "Replaces", "Provides", "Description", "Maintainer", "Origin", "Bugs",
                       "Installed-Size", "Source", "Version", "Conffiles")
        return any(self.para.get(f) for f in informative) or any(
            k not in DPKG_FIELD_ORDER for k in self.para.keys())

    def render(self) -> str:
        return self.para.render()

    def __repr__(self) -> str:
        return f"<PkgEntry {self.nonambig()} {self.version} {self.para.get('Status')}>"


def check_package_name(name: str, where: str) -> None:
    """Refuse a database entry whose name dpkg refuses (``pkg_name_is_illegal``, lib/dpkg/parse.c).

    dpkg-query stops at such a status file ("invalid package name in 'Package' field"), so
    the database is damaged: a name that is not even UTF-8 (decoded with surrogate escapes)
    is reported with its bytes escaped, never printed raw.
    """
    problem = package_name_problem(name)
    if problem:
        raise CorruptImageError(problem, where=where)


def check_versions(para: Paragraph, where: str) -> None:
    """Refuse an entry whose version dpkg cannot parse ("error in 'Version' field string")."""
    for field in ("Version", "Config-Version"):
        v = para.get(field)
        problem = version_problem(v) if v else None
        if problem:
            raise CorruptImageError(f"error in '{field}' field string {quote(v)}: {problem}", where=where)


def _sort_key(e: PkgEntry) -> tuple:
    """dpkg's sort: by name (bytes), then arch-unqualified first, then arch name."""
    # surrogateescape: a name read from a non-UTF-8 file sorts by its original bytes
    return (e.name.encode("utf-8", "surrogateescape"), e.multiarch == "same",
            e.arch.encode("utf-8", "surrogateescape") if e.multiarch == "same" else b"")


class StatusFile:
    """The whole status database, in file order."""

    def __init__(self, text: str = "", where: str = "/var/lib/dpkg/status"):
        self.where = where
        self.entries: list[PkgEntry] = []
        self._lead: dict[int, str] = {}  # id(entry) -> blank text before it, as read
        self.trailer = ""
        self.original = text
        self.journal: list[str] = []  # names of the updates/ records applied by load()
        pos_text = text
        for lead, para, line in parse_paragraphs(pos_text, where):
            e = PkgEntry(para, f"{where} line {line}")
            if not para.get("Package"):
                raise CorruptImageError(f"paragraph at line {line} has no 'Package' field", where=where)
            check_package_name(para.get("Package"), f"{where} line {line}")
            check_versions(para, f"{where} line {line}")
            self._lead[id(e)] = lead
            self.entries.append(e)
        # what follows the last paragraph (dpkg writes nothing there; keep whatever is there)
        stripped = text.rstrip("\n")
        self.trailer = text[len(stripped) + (1 if stripped and text.endswith("\n") else 0):] if self.entries else text
        if self.entries and not self.entries[-1].para.raw.endswith("\n"):
            self.trailer = ""
        self._index = {}
        for e in self.entries:
            self._index.setdefault(e.name, []).append(e)

    @classmethod
    def load(cls, fs, path: str = "/var/lib/dpkg/status", journal: bool = True) -> "StatusFile":
        """Read and parse ``path`` in the image (a missing file is an empty database).

        With ``journal`` (the default, as every dpkg program reads the database through
        ``modstatdb_open``), the entries of the ``updates/`` directory beside ``path`` are
        applied on top, in name order: what dpkg has recorded but not yet written to
        ``status`` (a run in progress, or an interrupted one). :attr:`journal` lists them.
        """
        try:
            sf = cls(_decode(_read_or_empty(fs, path)), path)
        except InvalidInputError as e:  # the image's file is at fault, not the caller
            raise CorruptImageError(f"malformed status file: {e}", where=path) from None
        if journal:
            updates = posixpath.join(posixpath.dirname(path), UPDATESDIR)
            for name in journal_names(fs, updates):
                where = f"{updates}/{name}"
                sf.apply_update(_decode(_read_or_empty(fs, where)), where)
                sf.journal.append(name)
        return sf

    def apply_update(self, text: str, where: str) -> PkgEntry | None:
        """Merge one journal record (``pdb_parse_update``: a single stanza) into the database.

        The record replaces the installed half of the package it names (``pkg_parse_copy``),
        in the slot ``parse_find_pkg_slot`` picks; Priority and Section already known stay
        (``pdb_weakclassification``). An empty record changes nothing.
        """
        try:
            paras = list(parse_paragraphs(text, where))
        except InvalidInputError as e:
            raise CorruptImageError(f"malformed journal entry: {e}", where=where) from None
        if not paras:
            return None
        if len(paras) > 1:
            raise CorruptImageError("journal entry holds more than one stanza", where=where)
        para = paras[0][1]
        name = para.get("Package")
        if not name:
            raise CorruptImageError("journal entry has no 'Package' field", where=where)
        check_package_name(name, where)
        check_versions(para, where)
        new = PkgEntry(para, where)
        slot = self._update_slot(new)
        if slot is None:
            return self.add(new)
        for k in ("Priority", "Section"):
            if slot.para.get(k) and new.para.get(k) != slot.para.get(k):
                para.set(k, slot.para.get(k))
        slot.para = para
        slot.where = where
        slot._cv = None
        slot.dirty = True
        return slot

    def _update_slot(self, new: PkgEntry) -> PkgEntry | None:
        """The existing entry a journal record for ``new`` goes to (None: a new one)."""
        cands = self._index.get(new.name, [])
        installed = [e for e in cands if "Status" in e.para and e.status != "not-installed"]
        if len(installed) == 1:
            one = installed[0]
            if not (one.multiarch == "same" and new.multiarch == "same"):
                return one
        for e in cands:
            if e.arch == new.arch:
                return e
        return None

    # ---- lookup ----------------------------------------------------------------------------
    def find_all(self, name: str) -> list[PkgEntry]:
        """Every paragraph for package ``name`` (several for Multi-Arch: same)."""
        return list(self._index.get(name, []))

    def find(self, name: str, arch: str | None = None) -> PkgEntry | None:
        """The paragraph for ``name`` (``name:arch`` accepted); with several arches, the installed one of ``arch``."""
        if arch is None and ":" in name:
            name, arch = name.split(":", 1)
        cands = self._index.get(name, [])
        if arch is not None:
            cands = [e for e in cands if e.arch in (arch, "all")] or [e for e in cands if not e.arch]
        return cands[0] if cands else None

    def installed(self) -> list[PkgEntry]:
        """Entries whose state is not not-installed."""
        return [e for e in self.entries if e.status != "not-installed"]

    # ---- changes ---------------------------------------------------------------------------
    def add(self, entry: PkgEntry) -> PkgEntry:
        """Insert a new paragraph where dpkg's sort order puts it."""
        k = _sort_key(entry)
        pos = len(self.entries)
        for i, e in enumerate(self.entries):
            if _sort_key(e) > k:
                pos = i
                break
        self.entries.insert(pos, entry)
        entry.dirty = True
        self._lead[id(entry)] = ""
        self._index.setdefault(entry.name, []).append(entry)
        return entry

    def remove(self, entry: PkgEntry) -> None:
        """Drop a paragraph."""
        self.entries = [e for e in self.entries if e is not entry]
        self._index[entry.name] = [e for e in self._index.get(entry.name, []) if e is not entry]

    # ---- writing ---------------------------------------------------------------------------
    def render(self) -> str:
        """The file's text: untouched paragraphs byte for byte, uninformative ones dropped."""
        out = []
        for e in self.entries:
            if e.dirty and not e.is_informative():
                continue
            text = e.render()
            lead = self._lead.get(id(e), "")
            if out and not lead:
                lead = "\n"  # dpkg separates paragraphs with one blank line
            out.append(lead + text)
        body = "".join(out)
        if self.entries and body:
            body += self.trailer if self.trailer else "\n"
        return body

    def save(self, fs, path: str | None = None) -> None:
        """Write atomically with a ``-old`` backup, as dpkg's ``writedb`` does."""
        path = path or self.where
        data = self.render().encode("utf-8", "surrogateescape")
        new, old = path + "-new", path + "-old"
        fs.write_bytes(new, data)
        try:
            fs.chmod(new, 0o644)
        except OSError:
            pass
        try:
            fs.unlink(old)
        except FileNotFoundError:
            pass
        try:
            fs.link(path, old)
        except FileNotFoundError:
            pass
        fs.rename(new, path)


def list_packages(fs, admindir: str = "/var/lib/dpkg") -> list[dict]:
    """The package rows of the status database, in ``dpkg-query -W`` order (``nuwa packages``).

    Every package whose state is not ``not-installed``, sorted by name, then architecture for
    ``Multi-Arch: same`` instances (whose ``binary_package`` is ``name:arch``).
    """
    sf = StatusFile.load(fs, admindir.rstrip("/") + "/status")
    rows = []
    for e in sf.entries:
        if e.status == "not-installed":
            continue
        rows.append({"package": e.name, "binary_package": e.nonambig(), "version": e.version,
                     "architecture": e.arch, "multi_arch": e.multiarch, "want": e.want, "flag": e.eflag,
                     "state": e.status})
    rows.sort(key=lambda r: (r["package"].encode("utf-8", "surrogateescape"), r["multi_arch"] == "same",
                             r["architecture"].encode("utf-8", "surrogateescape") if r["multi_arch"] == "same" else b""))
    return rows


#: the largest dpkg database file read: real status files are a few MiB; a damaged inode can
#: claim terabytes of holes, which reading whole would exhaust memory (a fuzz finding)
DATABASE_FILE_MAX = 256 << 20


def _read_or_empty(fs, path: str) -> bytes:
    try:
        size = fs.stat(path).st_size
        if size > DATABASE_FILE_MAX:
            raise CorruptImageError(f"the file claims {size} bytes, more than a dpkg database file can hold "
                                    f"({DATABASE_FILE_MAX} bytes read at most)", where=path)
        return fs.read_bytes(path)
    except FileNotFoundError:
        return b""


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


def journal_names(fs, updates: str) -> list[str]:
    """The journal records in ``updates`` in the order dpkg applies them.

    ``cleanupdates``: names made only of digits (``tmp.i`` and anything else is ignored),
    all of one length and at most ``IMPORTANTMAXLEN`` long (dpkg refuses otherwise), sorted
    as ``alphasort`` sorts them (byte order, since they are ASCII digits).
    """
    try:
        names = fs.readdir(updates)
    except (FileNotFoundError, NotADirectoryError):
        return []
    digits = [n for n in names if n and all("0" <= c <= "9" for c in n)]
    length = None
    for n in digits:
        if len(n) > IMPORTANTMAXLEN:
            raise CorruptImageError(f"updates directory contains file '{n}' whose name is too long "
                                    f"(length={len(n)}, max={IMPORTANTMAXLEN})", where=updates)
        if length is None:
            length = len(n)
        elif len(n) != length:
            raise CorruptImageError(f"updates directory contains files with different length names "
                                    f"(both {length} and {len(n)})", where=updates)
    return sorted(digits)
