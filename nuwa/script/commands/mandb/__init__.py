"""man-db (2.11.2-2, bookworm): the index caches of the manual pages.

- ``mandb``: ``mandb -c`` (create) and ``mandb -p`` (update without purging), quiet (``-q``),
  as man-db's postinst and its ``/usr/share/man`` trigger run them (as user ``man`` through
  ``setpriv``): the man trees of ``/etc/manpath.config``'s ``MANDB_MAP`` lines and their
  locale subdirectories, each page's whatis (``lexgrog.py``), the records (``store.py``), the
  gdbm file byte for byte (``nuwa.formats.gdbm``), the pages' sources and bytes
  (``pages.py``), the cache directories and their
  ``CACHEDIR.TAG``. Everything else (purging, ``-t``, ``-f``, ``-u``, a MANPATH operand,
  verbose output, stray cat pages, page forms not reproduced exactly) is deferred with the
  reason.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "mandb": "mandb.mandb",
})
