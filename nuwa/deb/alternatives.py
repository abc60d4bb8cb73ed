"""``/var/lib/dpkg/alternatives/NAME``: update-alternatives' administrative files (data side).

Format (``utils/update-alternatives.c``, ``alternative_load``/``alternative_save``), one value
per line: the status (``auto`` or ``manual``); the master link; for each slave its name and
link; an empty line; then for each choice its path, its priority and one line per slave with
that slave's path for this choice (empty when the choice has none); a final empty line.
The current selection itself lives in ``/etc/alternatives/NAME`` (a symlink), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.deb.diversions import atomic_save
from nuwa.errors import CorruptImageError


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
        """Parse an administrative file's text."""
        where = where or f"/var/lib/dpkg/alternatives/{name}"
        lines = text.split("\n")
        pos = [0]

        def take(what: str) -> str:
            if pos[0] >= len(lines):
                raise CorruptImageError(f"unexpected end of file while reading {what}", where=where)
            v = lines[pos[0]]
            pos[0] += 1
            return v

        status = take("status")
        if status not in ("auto", "manual"):
            raise CorruptImageError(f"invalid status {status!r} (line 1)", where=where)
        alt = cls(name, status, take("master link"))
        while True:
            sname = take("slave name")
            if sname == "":
                break
            alt.slaves.append((sname, take(f"slave link of {sname}")))
        while True:
            path = take("choice path")
            if path == "":
                break
            prio = take(f"priority of {path}")
            try:
                priority = int(prio)
            except ValueError:
                raise CorruptImageError(f"priority of {path} is not a number: {prio!r}", where=where) from None
            ch = Choice(path, priority)
            for sname, _ in alt.slaves:
                sp = take(f"slave {sname} of {path}")
                if sp:
                    ch.slaves[sname] = sp
            alt.choices.append(ch)
        return alt

    def render(self) -> str:
        """The file's text, as update-alternatives writes it."""
        out = [self.status, self.link]
        for sname, slink in self.slaves:
            out += [sname, slink]
        out.append("")
        for ch in self.choices:
            out += [ch.path, str(ch.priority)]
            out += [ch.slaves.get(sname, "") for sname, _ in self.slaves]
        out.append("")
        return "\n".join(out) + "\n"

    def best(self) -> Choice | None:
        """The choice auto mode selects: highest priority (first in file order on ties)."""
        best = None
        for ch in self.choices:
            if best is None or ch.priority > best.priority:
                best = ch
        return best


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
        """Write one group (``NAME.dpkg-new`` then rename; an empty group removes the file)."""
        path = f"{self.dir}/{alt.name}"
        if not alt.choices:
            try:
                self.fs.unlink(path)
            except FileNotFoundError:
                pass
            return
        self.fs.makedirs(self.dir)
        new = path + ".dpkg-new"
        self.fs.write_bytes(new, alt.render().encode("utf-8", "surrogateescape"))
        self.fs.rename(new, path)


__all__ = ["Alternative", "AlternativesDB", "Choice", "atomic_save"]
