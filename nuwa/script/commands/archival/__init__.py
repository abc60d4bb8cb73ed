"""Archivers and compressors (BusyBox keeps them in ``archival/``): what mkinitramfs packs with.

- ``cpio``: GNU cpio 2.13, copy-out in the ``newc`` format (``cpio.py``);
- ``gzip``, ``xz``, ``zstd``: gzip 1.12, xz-utils 5.4, zstd 1.5.4 -- compressing to standard
  output and decompressing files in place, with the options initramfs-tools passes
  (``compress.py``); ``lz4`` is recognised and deferred (no lz4 library among Nuwa's
  dependencies).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "cpio": "cpio.cpio",
    "gzip": "compress.gzip",
    "xz": "compress.xz",
    "zstd": "compress.zstd",
    "lz4": "compress.lz4",
})
