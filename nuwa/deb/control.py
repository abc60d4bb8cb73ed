"""Control-file paragraphs (deb822) and package relationships, as dpkg reads and writes them.

A :class:`Paragraph` keeps each field's key exactly as spelled and its value exactly as
written (continuation lines included), so a paragraph that is not modified renders back to
the same bytes. Parsing follows dpkg's ``parse_stanza`` (``lib/dpkg/parse.c``) strictly
enough to refuse what dpkg refuses (a line without a colon, an empty field name, a duplicate
field); python-debian's deb822 parser is used as a second opinion on the field split (it is
lenient, so it can only confirm, never reject).

Relationship fields (``Depends``, ``Pre-Depends``, ``Replaces``...) are parsed into
:class:`Dep` alternatives and written back in dpkg's canonical spelling (``w_dependency``):
``name[:arch] (op version)`` joined with ``" | "`` and ``", "``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from nuwa.deb.version import compare_strings, version_problem
from nuwa.errors import InvalidInputError, quote

#: fields dpkg writes, in its order (lib/dpkg/parse.c fieldinfos[]); others follow as "arbitrary"
DPKG_FIELD_ORDER = [
    "Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size", "Origin",
    "Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version", "Config-Version",
    "Replaces", "Provides", "Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks", "Conflicts",
    "Enhances", "Conffiles", "Filename", "Size", "MD5sum", "MSDOS-Filename", "Description",
    "Triggers-Pending", "Triggers-Awaited",
]
KNOWN_FIELDS = {f.lower(): f for f in DPKG_FIELD_ORDER}
#: obsolete fields dpkg parses but never writes (w_null)
OBSOLETE_FIELDS = {"recommended", "optional", "class", "revision", "package-revision", "package_revision"}
DEPENDENCY_FIELDS = ["Replaces", "Provides", "Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks",
                     "Conflicts", "Enhances"]

_FIELD_NAME = re.compile(r"^[!-9;-~][!-9;-~]*$")  # printable, no colon, no space (deb822(5))


class Paragraph:
    """An ordered, case-insensitive field map that remembers its original text.

    ``raw`` is the paragraph's exact text (without the blank line that ends it) while the
    paragraph is unmodified; any change clears it and :meth:`render` then writes each field as
    ``Key: value``.
    """

    def __init__(self, fields: list[tuple[str, str]] | None = None, raw: str | None = None):
        self._keys: list[str] = []  # original spelling, in order
        self._vals: dict[str, str] = {}  # lower-case key -> value as written after "Key:"
        for k, v in fields or []:
            self._keys.append(k)
            self._vals[k.lower()] = v
        self.raw = raw

    # ---- reading ---------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        """The value as dpkg sees it: leading blanks of the first line and trailing blanks stripped."""
        v = self._vals.get(key.lower())
        if v is None:
            return default
        return v.strip(" \t").rstrip()

    def __getitem__(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._vals

    def keys(self) -> list[str]:
        """Field names as spelled, in order."""
        return list(self._keys)

    def items(self) -> Iterator[tuple[str, str]]:
        """(key as spelled, stripped value) in order."""
        for k in self._keys:
            yield k, self.get(k)

    def raw_value(self, key: str) -> str | None:
        """The value exactly as written after the colon (continuation lines included)."""
        return self._vals.get(key.lower())

    def lines(self, key: str) -> list[str]:
        """A multi-line field (Conffiles, Description) split into stripped, non-empty lines."""
        v = self._vals.get(key.lower())
        if v is None:
            return []
        return [ln.strip() for ln in v.split("\n") if ln.strip()]

    # ---- changing --------------------------------------------------------------------------
    def set(self, key: str, value: str | None) -> None:
        """Set (or with None, delete) a field; a new field goes where dpkg would write it."""
        lk = key.lower()
        cur = self._vals.get(lk)
        if value is None:
            if cur is not None:
                self._keys = [k for k in self._keys if k.lower() != lk]
                del self._vals[lk]
                self.raw = None
            return
        new = value if value.startswith("\n") or value == "" else " " + value
        if cur is not None:
            if cur.strip(" \t").rstrip() == value.strip() and cur.count("\n") == value.count("\n"):
                return
            self._vals[lk] = new
            self.raw = None
            return
        self._vals[lk] = new
        self._keys.insert(self._insert_position(key), KNOWN_FIELDS.get(lk, key))
        self.raw = None

    def _insert_position(self, key: str) -> int:
        """Before the first known field dpkg writes later; else after the last known field."""
        lk = key.lower()
        if lk not in KNOWN_FIELDS:
            return len(self._keys)
        rank = DPKG_FIELD_ORDER.index(KNOWN_FIELDS[lk])
        last_known = -1
        for i, k in enumerate(self._keys):
            kl = k.lower()
            if kl in KNOWN_FIELDS:
                if DPKG_FIELD_ORDER.index(KNOWN_FIELDS[kl]) > rank:
                    return i
                last_known = i
        return last_known + 1

    def copy(self) -> "Paragraph":
        """An independent copy (same raw text)."""
        return Paragraph([(k, self._vals[k.lower()]) for k in self._keys], self.raw)

    # ---- writing ---------------------------------------------------------------------------
    def render(self) -> str:
        """The paragraph's text, ending in a newline (no blank separator line)."""
        if self.raw is not None:
            return self.raw
        out = []
        for k in self._keys:
            v = self._vals[k.lower()]
            out.append(f"{k}:{v}\n")
        return "".join(out)

    def canonical(self) -> "Paragraph":
        """This paragraph in dpkg's field order (known fields first, then the others in order)."""
        known = sorted((k for k in self._keys if k.lower() in KNOWN_FIELDS),
                       key=lambda k: DPKG_FIELD_ORDER.index(KNOWN_FIELDS[k.lower()]))
        other = [k for k in self._keys if k.lower() not in KNOWN_FIELDS]
        p = Paragraph([(KNOWN_FIELDS.get(k.lower(), k), self._vals[k.lower()]) for k in known + other])
        return p

    def __repr__(self) -> str:
        return f"Paragraph({self.get('Package')!r}, {len(self._keys)} fields)"


#: the line boundaries ``str.splitlines`` knows besides "\n" (python-debian splits there, dpkg not)
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _plain(raw: str, fields) -> bool:
    """True when python-debian's deb822 parser (1.1) is bound to split this accepted paragraph
    as dpkg's rules did, so asking it would only cost its import (50 ms of a short run): no
    field name starts with ``#`` (a comment line to deb822) and no line holds a character
    ``splitlines`` breaks at besides the newline. Its key pattern ``[^: \\t\\n\\r\\f\\v]+`` then
    matches every field name :data:`_FIELD_NAME` let through, its value pattern every rest
    of a line, and its continuation rule (a leading blank, not only blanks) is dpkg's.
    ``tests/deb/test_control.py`` holds python-debian to this on generated paragraphs."""
    return not any(k.startswith("#") for k, _ in fields) and _OTHER_BREAKS.search(raw) is None


def _deb822():
    from debian import deb822  # late: only a paragraph that is not plain asks it (start-up speed)

    return deb822


def parse_paragraphs(text: str, where: str, crosscheck: bool = False) -> Iterator[tuple[str, Paragraph, int]]:
    """Split deb822 text into ``(leading_blank_text, paragraph, line_number)``.

    Strict like dpkg's ``parse_stanza``: every field line is ``Name:`` followed by its value;
    continuation lines start with a space or tab; a field may appear once per paragraph.
    """
    lines = text.split("\n")
    # text.split leaves a final "" for a trailing newline; a last line without one still counts
    i = 0
    n = len(lines)
    while i < n:
        lead_start = i
        while i < n and lines[i].strip() == "":
            i += 1
        if i >= n:
            return
        start = i
        fields: list[tuple[str, str]] = []
        seen: set[str] = set()
        while i < n and lines[i].strip() != "":
            line = lines[i]
            if line[0] in " \t":
                if not fields:
                    raise InvalidInputError(f"continuation line without a field at line {i + 1}", where=where)
                k, v = fields[-1]
                fields[-1] = (k, v + "\n" + line)
                i += 1
                continue
            if ":" not in line:
                raise InvalidInputError(f"field name {line[:50]!r} must be followed by colon (line {i + 1})", where=where)
            key, value = line.split(":", 1)
            if key == "" or not _FIELD_NAME.match(key):
                raise InvalidInputError(f"invalid field name {key[:50]!r} (line {i + 1})", where=where)
            if key.lower() in seen:
                raise InvalidInputError(f"duplicate value for '{key}' field (line {i + 1})", where=where)
            seen.add(key.lower())
            fields.append((key, value))
            i += 1
        raw_lines = lines[start:i]
        raw = "\n".join(raw_lines) + "\n"
        lead = "\n".join(lines[lead_start:start]) + ("\n" if start > lead_start else "")
        if i >= n and not text.endswith("\n"):
            raw = raw[:-1]  # the file's last line had no newline: keep that too
        # python-debian must agree on the field split (it never rejects; it can only disagree)
        if crosscheck and not _plain(raw, fields) and [k.lower() for k in _deb822().Deb822(raw.splitlines()).keys()] \
                != [k.lower() for k, _ in fields]:
            raise InvalidInputError(f"paragraph at line {start + 1} is ambiguous (deb822 parsers disagree)", where=where)
        yield lead, Paragraph(fields, raw), start + 1


def parse_control(data: bytes, where: str) -> Paragraph:
    """The single paragraph of a DEBIAN/control file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    paras = list(parse_paragraphs(text, where, crosscheck=True))
    if len(paras) != 1:
        raise InvalidInputError(f"control file has {len(paras)} paragraphs, expected one", where=where)
    p = paras[0][1]
    for f in ("Package", "Version"):
        if not p.get(f):
            raise InvalidInputError(f"missing '{f}' field", where=where)
    problem = package_name_problem(p.get("Package")) or version_problem(p.get("Version"))
    if problem:
        raise InvalidInputError(problem if "package name" in problem else
                                f"'Version' field value {p.get('Version')[:80]!r}: {problem}", where=where)
    return p


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+._")


def package_name_problem(name: str) -> str | None:
    """What dpkg's ``pkg_name_is_illegal`` says of ``name`` (lib/dpkg/parse.c), or None.

    dpkg sets no length limit, but a name must fit the info database's file names
    (``NAME:ARCH.postinst`` ...) in one 255-byte directory entry, or dpkg fails writing them.
    """
    if not name[0].isascii() or not name[0].isalnum():
        return f"invalid package name {quote(name)} in 'Package' field: must start with an alphanumeric character"
    bad = next((c for c in name if c not in _NAME_CHARS), None)
    if bad is not None:
        return (f"invalid package name {quote(name)} in 'Package' field: character {quote(bad)} not allowed "
                "(only letters, digits and characters '-+._')")
    if len(name) > MAX_NAME_BYTES:
        return f"invalid package name {quote(name)} in 'Package' field: longer than {MAX_NAME_BYTES} bytes"
    return None


#: room left in a 255-byte file name for ``:ARCH`` and the longest info suffix dpkg writes
MAX_NAME_BYTES = 200


# ---- relationships --------------------------------------------------------------------------

_REL_OPS = {"<<": "<<", "<=": "<=", "=": "=", ">=": ">=", ">>": ">>", "<": "<=", ">": ">="}
_ATOM = re.compile(r"^\s*([a-zA-Z0-9][a-zA-Z0-9+.\-]*)(?::([a-zA-Z0-9][a-zA-Z0-9-]*))?\s*"
                   r"(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^)\s]+)\s*\))?\s*$")


@dataclass(frozen=True)
class Dep:
    """One alternative of a relationship: ``name[:arch] (op version)``."""

    name: str
    arch: str | None = None
    op: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        s = self.name + (f":{self.arch}" if self.arch else "")
        if self.op:
            s += f" ({self.op} {self.version})"
        return s


def parse_relations(value: str | None, field: str = "Depends", where: str = "") -> list[list[Dep]]:
    """``a (>= 1) | b, c`` -> ``[[Dep(a,>=,1), Dep(b)], [Dep(c)]]`` (dpkg ``f_dependency``)."""
    if not value or not value.strip():
        return []
    out = []
    for group in value.replace("\n", " ").split(","):
        if not group.strip():
            raise InvalidInputError(f"empty dependency in '{field}' field", where=where)
        alts = []
        for atom in group.split("|"):
            m = _ATOM.match(atom)
            if not m:
                raise InvalidInputError(f"syntax error in '{field}' field near {atom.strip()[:60]!r}", where=where)
            name, arch, op, ver = m.groups()
            problem = version_problem(ver) if ver is not None else None
            if problem:
                raise InvalidInputError(f"'{field}' field, reference to '{name}': error in version: {problem}",
                                        where=where)
            alts.append(Dep(name, arch, _REL_OPS[op] if op else None, ver))
        if len(alts) > 1 and field in ("Replaces", "Provides", "Breaks", "Conflicts"):
            raise InvalidInputError(f"alternatives ('|') not allowed in '{field}' field", where=where)
        out.append(alts)
    return out


def format_relations(rel: list[list[Dep]]) -> str:
    """dpkg's canonical spelling of a relationship field (``w_dependency``)."""
    return ", ".join(" | ".join(str(d) for d in alts) for alts in rel)


def satisfies(installed_version: str | None, dep: Dep) -> bool:
    """Does a package (or virtual provision) at ``installed_version`` satisfy ``dep``'s version?"""
    if dep.op is None:
        return True
    if installed_version is None:
        return False
    r = compare_strings(installed_version, dep.version)
    return {"<<": r < 0, "<=": r <= 0, "=": r == 0, ">=": r >= 0, ">>": r > 0}[dep.op]
