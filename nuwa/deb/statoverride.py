"""``/var/lib/dpkg/statoverride``: owner, group and mode forced on paths (dpkg-statoverride).

Format (``lib/dpkg/db-fsys-override.c``): one ``USER GROUP MODE PATH`` line per path; user
and group are names (``#UID`` / ``#GID`` for bare numbers), the mode is octal. Names are
resolved against the image's own ``/etc/passwd`` and ``/etc/group``, never the host's.
Saved like dpkg saves it: ``statoverride-new``, then rename, previous file kept as ``-old``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nuwa.deb.diversions import atomic_save
from nuwa.errors import CorruptImageError


@dataclass
class StatOverride:
    """``dpkg-statoverride`` entry: owner, group and mode forced on ``path``."""

    user: str
    group: str
    mode: int
    path: str
    uid: int | None = None
    gid: int | None = None


def parse_id_db(text: str) -> dict[str, int]:
    """``name -> id`` from /etc/passwd or /etc/group text."""
    out = {}
    for ln in text.splitlines():
        parts = ln.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(parts[0], int(parts[2]))
    return out


class StatOverrides:
    """All stat overrides of an image."""

    def __init__(self, items: list[StatOverride] | None = None, path: str = "/var/lib/dpkg/statoverride"):
        self.items = {o.path: o for o in items or []}
        self.path = path

    @classmethod
    def parse(cls, text: str, users: dict[str, int], groups: dict[str, int],
              path: str = "/var/lib/dpkg/statoverride", lax: bool = False) -> "StatOverrides":
        """Parse the file's text, resolving names with ``users``/``groups``.

        ``lax`` (dpkg's ``STATDB_PARSE_LAX``, what dpkg-statoverride uses) keeps an entry whose
        user or group is unknown, with ``uid``/``gid`` None, instead of refusing the file.
        """
        items = []
        for i, ln in enumerate(text.split("\n")):
            if not ln.strip():
                continue
            parts = ln.split(" ", 3)
            if len(parts) != 4:
                raise CorruptImageError(f"syntax error in statoverride line {i + 1}: {ln[:80]!r}", where=path)
            user, group, mode, p = parts
            try:
                m = int(mode, 8)
            except ValueError:
                raise CorruptImageError(f"invalid mode {mode!r} at line {i + 1}", where=path) from None
            uid = int(user[1:]) if user.startswith("#") and user[1:].isdigit() else users.get(user)
            gid = int(group[1:]) if group.startswith("#") and group[1:].isdigit() else groups.get(group)
            if uid is None and not lax:
                raise CorruptImageError(f"unknown system user {user!r} in statoverride line {i + 1}", where=path)
            if gid is None and not lax:
                raise CorruptImageError(f"unknown system group {group!r} in statoverride line {i + 1}", where=path)
            items.append(StatOverride(user, group, m, p, uid, gid))
        return cls(items, path)

    @classmethod
    def load(cls, fs, admindir: str = "/var/lib/dpkg", lax: bool = False) -> "StatOverrides":
        """Read from the image, resolving names against its /etc/passwd and /etc/group."""
        path = admindir.rstrip("/") + "/statoverride"
        try:
            text = fs.read_bytes(path).decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            return cls([], path)
        return cls.parse(text, read_ids(fs, "/etc/passwd"), read_ids(fs, "/etc/group"), path, lax)

    def get(self, path: str) -> StatOverride | None:
        return self.items.get(path)

    def render(self) -> str:
        # dpkg-statoverride writes the entries sorted by path (db-fsys-override.c)
        return "".join(f"{o.user} {o.group} {o.mode:o} {o.path}\n" for o in sorted(self.items.values(), key=lambda o: o.path))

    def save(self, fs) -> None:
        atomic_save(fs, self.path, self.render().encode("utf-8", "surrogateescape"))


def read_ids(fs, path: str) -> dict[str, int]:
    """Names to ids from the image's passwd/group file (empty if absent)."""
    try:
        return parse_id_db(fs.read_bytes(path).decode("utf-8", "replace"))
    except FileNotFoundError:
        return {}
