"""``/var/lib/dpkg/alternatives/NAME``: update-alternatives' administrative files (data side).

Format (``utils/update-alternatives.c``, ``alternative_load``/``alternative_save``), one value
per line: the status (``auto`` or ``manual``); the master link; for each slave its name and
link; an empty line; then for each choice its path, its priority and one line per slave with
that slave's path for this choice (empty when the choice has none); a final empty line.
The current selection itself lives in ``/etc/alternatives/NAME`` (a symlink), not here.

:func:`parse_admin` reads a file exactly as ``alternative_load`` does (its checks and its
wording, which update-alternatives prints as ``FILE corrupt: REASON``; choices whose path is
missing dropped on the way); ``update-alternatives`` writes ``NAME.dpkg-tmp`` and renames it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nuwa.deb.diversions import atomic_save
from nuwa.errors import CorruptImageError

#: update-alternatives' temporary suffix (``ALT_TMP_EXT`` in utils/Makefile.am)
ALT_TMP_EXT = ".dpkg-tmp"
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class AdminFileError(CorruptImageError):
    """A malformed administrative file; ``reason`` is update-alternatives' own wording."""

    def __init__(self, reason: str, where: str):
        super().__init__(reason, where=where)
        self.reason = reason


def c_strtol(text: str) -> tuple[int | None, bool]:
    """C ``strtol(text, &end, 10)`` as the callers use it: (value, out of range).

    The value is None unless the whole string is one number (leading C-locale white space
    and a sign allowed, nothing after the digits); out of range means ``ERANGE`` (outside
    a 64-bit ``long``) or outside ``int``, which both callers treat alike.
    """
    m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    if not m:
        return None, False
    v = int(m.group(1))
    if v < _LONG_MIN or v > _LONG_MAX:
        return (_LONG_MIN if v < 0 else _LONG_MAX), True
    return v, v < INT_MIN or v > INT_MAX


@dataclass
class Choice:
    path: str
    priority: int
    slaves: dict[str, str] = field(default_factory=dict)  # slave name -> path ("" omitted)


@dataclass
class Alternative:
    """One link group."""

    name: str
    status: str  # "auto" | "manual"
    link: str
    slaves: list[tuple[str, str]] = field(default_factory=list)  # (name, link) in file order
    choices: list[Choice] = field(default_factory=list)

    @classmethod
    def parse(cls, name: str, text: str, where: str = "") -> "Alternative":
        """Parse an administrative file's text (every choice kept; see :func:`parse_admin`)."""
        where = where or f"/var/lib/dpkg/alternatives/{name}"
        alt = parse_admin(name, text.encode("utf-8", "surrogateescape"), where)
        if alt is None:
            raise AdminFileError("empty file", where)
        return alt

    def lines(self) -> list[str]:
        """The file's lines (without their newlines), in this object's order."""
        out = [self.status, self.link]
        for sname, slink in self.slaves:
            out += [sname, slink]
        out.append("")
        for ch in self.choices:
            out += [ch.path, str(ch.priority)]
            out += [ch.slaves.get(sname, "") for sname, _ in self.slaves]
        out.append("")
        return out

    def render(self) -> str:
        """The file's text, as update-alternatives writes it (``alternative_save``)."""
        return "".join(ln + "\n" for ln in self.lines())

    def choice(self, path: str) -> Choice | None:
        """The choice for ``path`` (``alternative_get_fileset``)."""
        return next((c for c in self.choices if c.path == path), None)

    def best(self, current: str | None = None) -> Choice | None:
        """The choice auto mode selects (``alternative_get_best``).

        The highest priority; on ties the current choice (the target of ``/etc/alternatives/
        NAME``) stays, else the first in list order wins.
        """
        best = self.choice(current) if current is not None else None
        if best is None and self.choices:
            best = self.choices[0]
        for ch in self.choices:
            if ch.priority > best.priority:
                best = ch
        return best


def parse_admin(name: str, data: bytes, where: str, is_missing=None, on_missing=None) -> Alternative | None:
    """``alternative_load``: one administrative file's bytes, read as update-alternatives does.

    None for an empty file. Lines are read like ``altdb_get_line`` (a last line without its
    newline, or the end of the file before the group is complete, are errors); slave names and
    links must be unique and differ from the master link; priorities are C ``strtol`` integers
    within ``int``. Anything after the final empty line is ignored, as the C reader never
    looks at it. ``is_missing(path)`` (``fsys_pathname_is_missing``) drops a choice whose file
    is gone, after calling ``on_missing(path)``; its priority and slave lines are skipped
    unchecked. Errors raise :class:`AdminFileError` with update-alternatives' reason text.
    """
    if not data:
        return None
    text = data.decode("utf-8", "surrogateescape")
    pos = 0

    def line(what: str) -> str:
        nonlocal pos
        if pos >= len(text):
            raise AdminFileError(f"unexpected end of file while trying to read {what}", where)
        nl = text.find("\n", pos)
        if nl < 0:
            raise AdminFileError(f"line not terminated while trying to read {what}", where)
        v, pos = text[pos:nl], nl + 1
        return v

    status = line("status")
    if status not in ("auto", "manual"):
        raise AdminFileError("invalid status", where)
    alt = Alternative(name, status, line("master link"))
    while True:
        sname = line("slave name")
        if sname == "":
            break
        if any(n == sname for n, _ in alt.slaves):
            raise AdminFileError(f"duplicate slave name {sname}", where)
        slink = line("slave link")
        if slink == alt.link:
            raise AdminFileError(f"slave link same as main link {alt.link}", where)
        if any(lk == slink for _, lk in alt.slaves):
            raise AdminFileError(f"duplicate slave link {slink}", where)
        alt.slaves.append((sname, slink))
    while True:
        path = line("master file")
        if path == "":
            break
        if alt.choice(path) is not None:
            raise AdminFileError(f"duplicate path {path}", where)
        if is_missing is not None and is_missing(path):
            if on_missing is not None:
                on_missing(path)
            line("priority")
            for _ in alt.slaves:
                line("slave file")
            continue
        prio = line("priority")
        value, erange = c_strtol(prio)
        if value is None:
            raise AdminFileError(f"priority of {path}: {prio}", where)
        if erange:
            raise AdminFileError(f"priority of {path} is out of range: {prio}", where)
        ch = Choice(path, value)
        for sname, _ in alt.slaves:
            sp = line("slave file")
            if sp:
                ch.slaves[sname] = sp
        alt.choices.append(ch)
    return alt


class AlternativesDB:
    """All link groups of an image (``admindir/alternatives``)."""

    def __init__(self, fs, admindir: str = "/var/lib/dpkg"):
        self.fs = fs
        self.dir = admindir.rstrip("/") + "/alternatives"

    def names(self) -> list[str]:
        try:
            return sorted(self.fs.readdir(self.dir))
        except FileNotFoundError:
            return []

    def load(self, name: str) -> Alternative | None:
        """One group, or None if it has no administrative file."""
        path = f"{self.dir}/{name}"
        try:
            text = self.fs.read_bytes(path).decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            return None
        return Alternative.parse(name, text, path)

    def save(self, alt: Alternative) -> None:
        """Write one group (``NAME.dpkg-tmp`` then rename; an empty group removes the file)."""
        path = f"{self.dir}/{alt.name}"
        if not alt.choices:
            try:
                self.fs.unlink(path)
            except FileNotFoundError:
                pass
            return
        self.fs.makedirs(self.dir)
        new = path + ALT_TMP_EXT
        self.fs.write_bytes(new, alt.render().encode("utf-8", "surrogateescape"))
        self.fs.rename(new, path)


__all__ = ["ALT_TMP_EXT", "AdminFileError", "Alternative", "AlternativesDB", "Choice", "atomic_save", "c_strtol",
           "parse_admin"]
