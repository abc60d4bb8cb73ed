"""CRC32C (Castagnoli), from the ``crc32c`` package's C extension.

The package's ``__init__`` asks ``importlib.metadata`` for its own version when it is
imported, which loads that machinery and reads the installed distributions' metadata: 25-30 ms
on every Nuwa process that touches ext4, more than the rest of the ext4 engine's imports
together. The C extension module needs none of it, so it is loaded alone, without the package
around it. Should the package ever lay itself out otherwise, it is imported as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys


def _load():
    """``crc32c.crc32c``, the standard CRC-32C of ``data`` continuing from ``value``."""
    pkg = sys.modules.get("crc32c")
    if pkg is not None:
        return pkg.crc32c
    try:
        where = importlib.util.find_spec("crc32c").submodule_search_locations
        spec = importlib.machinery.PathFinder.find_spec("crc32c._crc32c", where)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.crc32c
    except (ImportError, AttributeError):
        import crc32c
        return crc32c.crc32c


crc32c = _load()
