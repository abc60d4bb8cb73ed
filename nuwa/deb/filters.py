"""dpkg's path filters (``path-exclude``/``path-include``) from the image's dpkg configuration.

Images made small (mmdebstrap's and cloud builders' ``/etc/dpkg/dpkg.cfg.d/*`` snippets) tell
dpkg not to unpack documentation, manual pages or locales. dpkg reads its options from
``/etc/dpkg/dpkg.cfg.d/*`` (names made of ``[A-Za-z0-9_-]`` only, in sorted order) and then
``/etc/dpkg/dpkg.cfg`` (``lib/dpkg/options.c``: ``dpkg_options_load``); each line is an
option name without ``--``, then ``=`` or blanks, then the value; ``#`` lines are comments.

``src/main/filters.c`` ``filter_should_skip``: the *last* pattern matching the member's path
(``fnmatch`` without flags: ``*`` crosses ``/``) decides; an excluded directory or symlink is
kept when an include pattern's fixed prefix (up to its first wildcard, trailing ``/`` dropped)
starts its path, so included files below it have somewhere to go. A filtered member is still
listed in the package's ``list`` but is not extracted, and does not count as shipped
(``FNNF_NEW_INARCHIVE`` cleared) when old files are removed.
"""

from __future__ import annotations

import fnmatch
import re

CONFIG_DIR = "/etc/dpkg/dpkg.cfg.d"
CONFIG_FILE = "/etc/dpkg/dpkg.cfg"
_VALID_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")


def parse_options(text: str) -> list[tuple[str, str]]:
    """(option, value) pairs of one dpkg configuration file, in order."""
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        if ln.startswith("--"):
            ln = ln[2:]
        m = re.match(r"([^=\s]+)\s*(?:=\s*|\s+)?(.*)\Z", ln)
        if m:
            out.append((m.group(1), m.group(2).strip()))
    return out


class PathFilters:
    """The ordered ``(include, pattern)`` list dpkg would build for the image."""

    def __init__(self, rules: list[tuple[bool, str]] | None = None):
        self.rules = rules or []

    @classmethod
    def load(cls, fs) -> "PathFilters":
        """Read the image's dpkg configuration (missing files are no filters)."""
        texts = []
        try:
            names = sorted(n for n in fs.readdir(CONFIG_DIR) if _VALID_NAME.match(n))
        except OSError:
            names = []
        for n in names:
            try:
                texts.append(fs.read_bytes(f"{CONFIG_DIR}/{n}"))
            except OSError:  # a directory or a dangling link: dpkg skips what it cannot read
                pass
        try:
            texts.append(fs.read_bytes(CONFIG_FILE))
        except OSError:
            pass
        rules = []
        for data in texts:
            for opt, value in parse_options(data.decode("utf-8", "surrogateescape")):
                if opt in ("path-include", "path-exclude") and value:
                    rules.append((opt == "path-include", value))
        return cls(rules)

    def skip(self, path: str, is_dir_or_symlink: bool) -> bool:
        """``filter_should_skip`` for the member ``path`` (absolute, as in the package list)."""
        if not self.rules:
            return False
        skip = False
        for include, pattern in self.rules:
            if fnmatch.fnmatchcase(path, pattern):
                skip = not include
        if skip and is_dir_or_symlink:
            for include, pattern in self.rules:
                if not include:
                    continue
                cut = len(pattern)
                for i, c in enumerate(pattern):
                    if c in "*?[\\":
                        cut = i
                        break
                prefix = pattern[:cut].rstrip("/")
                if path.startswith(prefix):
                    return False
        return skip
