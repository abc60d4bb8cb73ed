"""Opening the ``.deb`` files a patch job is given, before anything else is done.

Kept apart from :mod:`nuwa.patch.install` (which loads the package engine and the script
simulator): a fleet worker that replays an effect (:mod:`nuwa.patch.effect`) opens the files
to check what is installed, and needs nothing else of the job.
"""

from __future__ import annotations

from nuwa.deb.archive import DebArchive, open_deb
from nuwa.errors import InvalidInputError, NuwaError


def open_debs(debs) -> list[DebArchive]:
    """Open (and check the headers of) every .deb before anything is created (bad input: exit 2).

    ``debs`` are paths or already opened :class:`DebArchive` (kept as they are).
    """
    out = []
    for p in debs:
        if isinstance(p, DebArchive):
            out.append(p)
            continue
        try:
            out.append(open_deb(p))
        except NuwaError:
            raise
        except OSError as e:  # permission, I/O: named with the file
            raise InvalidInputError(f"cannot read the .deb ({e.strerror or e})", where=p) from None
    return out
