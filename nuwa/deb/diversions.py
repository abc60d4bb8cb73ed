"""``/var/lib/dpkg/diversions``, read and written as dpkg does.

diversions (``lib/dpkg/db-fsys-divert.c``): three lines per diversion — the diverted path,
the path it is diverted to, and the diverting package (``:`` for a local diversion made by the
administrator).

The file is saved like dpkg saves it: ``*-new`` then rename, with the previous file kept as
``*-old`` (``atomic_file`` with backup).
"""

from __future__ import annotations

from dataclasses import dataclass

from nuwa.errors import CorruptImageError

LOCAL = ":"


@dataclass
class Diversion:
    """``path`` is diverted to ``divert_to`` by ``package`` (``None``: a local diversion)."""

    path: str
    divert_to: str
    package: str | None


class Diversions:
    """All diversions of an image; ``lookup`` answers dpkg's ``namenodetouse`` question."""

    def __init__(self, items: list[Diversion] | None = None, path: str = "/var/lib/dpkg/diversions"):
        self.items = list(items or [])
        self.path = path

    @classmethod
    def parse(cls, text: str, path: str = "/var/lib/dpkg/diversions") -> "Diversions":
        """Parse the file's text."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) % 3:
            raise CorruptImageError(f"diversions file has {len(lines)} lines, not a multiple of 3 (truncated?)", where=path)
        items = []
        for i in range(0, len(lines), 3):
            a, b, p = lines[i:i + 3]
            if not a.startswith("/") or not b.startswith("/"):
                raise CorruptImageError(f"diversion at line {i + 1} does not name absolute paths", where=path)
            items.append(Diversion(a, b, None if p == LOCAL else p))
        return cls(items, path)

    @classmethod
    def load(cls, fs, admindir: str = "/var/lib/dpkg") -> "Diversions":
        """Read from the image (absent file: no diversions)."""
        path = admindir.rstrip("/") + "/diversions"
        try:
            text = fs.read_bytes(path).decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            text = ""
        return cls.parse(text, path)

    def render(self) -> str:
        return "".join(f"{d.path}\n{d.divert_to}\n{d.package or LOCAL}\n" for d in self.items)

    def save(self, fs) -> None:
        """Write with a ``-old`` backup, atomically."""
        atomic_save(fs, self.path, self.render().encode("utf-8", "surrogateescape"))

    def by_path(self, path: str) -> Diversion | None:
        """The diversion of ``path`` (as the diverted name)."""
        for d in self.items:
            if d.path == path:
                return d
        return None

    def by_target(self, path: str) -> Diversion | None:
        """The diversion whose divert-to is ``path``."""
        for d in self.items:
            if d.divert_to == path:
                return d
        return None

    def use_path(self, path: str, package: str) -> str:
        """Where ``package``'s file ``path`` really goes (dpkg ``namenodetouse``)."""
        d = self.by_path(path)
        if d is None or d.package == package:
            return path
        return d.divert_to


def atomic_save(fs, path: str, data: bytes) -> None:
    new, old = path + "-new", path + "-old"
    fs.write_bytes(new, data)
    fs.chmod(new, 0o644)
    try:
        fs.unlink(old)
    except FileNotFoundError:
        pass
    try:
        fs.link(path, old)
    except FileNotFoundError:
        pass
    fs.rename(new, path)
