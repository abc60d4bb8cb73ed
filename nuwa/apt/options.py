"""What the command line says about repositories, apart from the code that reads them: a run
of ``.deb`` files alone builds these options without loading apt's repository code, OpenPGP
or HTTP (start-up speed, ``nuwa.apt.repository`` reads them)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


@dataclass
class RepoOptions:
    """What the command line says about repositories (``nuwa scan``/``patch`` options).

    ``repos``: ``--repo`` specs (added to the image's sources, replacing an entry with the same
    URI and suite); ``keyrings``: ``--keyring`` files (trusted for every source);
    ``sources_only``: use only ``repos``; ``allow_insecure``: honour ``trusted=yes``;
    ``allow_expired``: accept a Release past its ``Valid-Until``; ``cache``: the cache
    directory (default ``$XDG_CACHE_HOME/nuwa``); ``offline``: never touch the network.
    """

    repos: list[str] = field(default_factory=list)
    keyrings: list[str] = field(default_factory=list)
    sources_only: bool = False
    allow_insecure: bool = False
    allow_expired: bool = False
    cache: str | None = None
    offline: bool = False
    quiet: bool = True
    proxy: str | None = None
    timeout: float = 30.0
    now: datetime.datetime | None = None
