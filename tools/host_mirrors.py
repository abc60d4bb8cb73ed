#!/usr/bin/env python3
"""The Debian mirrors this machine's apt sources name, for building test material.

The project never names an archive host: the material (mmdebstrap trees, downloaded .debs,
the script corpus) comes from whatever mirror the machine's own ``/etc/apt/sources.list`` and
``sources.list.d/*.list|*.sources`` name, read at run time. With none, :class:`NoMirror` says
so in one line (tests turn it into a failure under CI, a skip elsewhere).

Usage: ``python3 tools/host_mirrors.py`` prints the two URIs.
"""

from __future__ import annotations

import glob
import re


class NoMirror(RuntimeError):
    """The machine's apt sources name no Debian mirror."""


def _sources_text() -> str:
    parts = []
    for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")
                                                + glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
        except OSError:
            pass
    return "\n".join(parts)


def uris(text: str) -> list[str]:
    """Every archive URI of ``deb`` lines (one-line form, with ``[options]``) and deb822
    ``URIs:`` fields (several per field allowed), in file order, without a trailing slash."""
    found = []
    for m in re.finditer(r"(?m)^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?(\S+)|URIs:\s*(.+)$)", text):
        for u in (m.group(1) or m.group(2)).split():
            found.append(u.rstrip("/"))
    return found


def mirrors() -> tuple[str, str]:
    """(Debian mirror, Debian security mirror) from the machine's apt sources.

    The main mirror is the first URI ending in ``/debian``; the security one the first ending
    in ``/debian-security``, else the main one's sibling directory of that name.
    """
    found = uris(_sources_text())
    main = next((u for u in found if u.endswith("/debian")), None)
    if main is None:
        raise NoMirror("no Debian mirror (a URI ending in /debian) in /etc/apt/sources.list or "
                       "/etc/apt/sources.list.d/: configure one to build test material")
    sec = next((u for u in found if u.endswith("/debian-security")), main + "-security")
    return main, sec


if __name__ == "__main__":
    print(*mirrors(), sep="\n")
