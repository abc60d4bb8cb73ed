"""The ``gio-querymodules`` model (glib 2.74 ``gio/gio-querymodules.c``).

For each directory the real program loads every ``lib*.so`` in it (``g_module_open``) and
calls the module's query function: that is code of the image, so a directory holding any
such name defers the whole invocation. What needs no module is modelled: a directory with
none (``giomodule.cache`` is removed, an absent cache is fine), a directory that cannot be
opened (its message on stderr, still exit 0), no operand (the usage on stdout, exit 1).
"""

from __future__ import annotations

import errno
import os
import re

from nuwa.script.commands.glib.compile import check_printable, printerr_text
from nuwa.script.context import Defer, Invocation


def _is_module_name(name: str) -> bool:
    """``is_valid_module_name``: ``lib*.so``."""
    return name.startswith("lib") and name.endswith(".so")


def gio_querymodules(inv: Invocation) -> int:
    """The ``gio-querymodules DIRECTORY...`` model (glib 2.74.6 ``main``/``query_dir``)."""
    dirs = inv.argv[1:]
    if not dirs:
        inv.out("Usage: gio-querymodules <directory1> [<directory2> ...]\n"
                "Will update giomodule.cache in the listed directories\n")
        return 1
    listings: list[list[str] | OSError] = []
    for d in dirs:
        try:
            if not d:  # opendir ("") fails; inv.path would give the working directory
                raise FileNotFoundError(2, os.strerror(2))
            names = inv.fs.readdir(inv.path(d))
        except OSError as e:
            listings.append(e)
            continue
        modules = sorted(n for n in names if _is_module_name(n))
        if modules:
            raise Defer(f"gio-querymodules: {d} holds GIO modules ({', '.join(modules[:3])}"
                        f"{', ...' if len(modules) > 3 else ''}): the real program loads each one "
                        "(code of the image) to ask for its extension points")
        listings.append(names)
    for d, listing in zip(dirs, listings):
        if isinstance(listing, OSError):
            check_printable(inv, "gio-querymodules")
            inv.err(printerr_text(inv, f"Unable to open directory {d}: Error opening directory \u201c{d}\u201d: "
                                       f"{os.strerror(listing.errno)}\n"))
            continue
        cache = re.sub("/+", "/", d + "/giomodule.cache")  # g_build_filename
        try:
            inv.fs.unlink(inv.path(cache))
        except OSError as e:
            if e.errno != errno.ENOENT:
                check_printable(inv, "gio-querymodules")
                inv.err(f"Unable to unlink {cache}: {os.strerror(e.errno)}\n")
    return 0
