"""Kernel module utilities (kmod 30, BusyBox's ``modutils/``).

- ``depmod``: the module dependency files, byte for byte (``depmod_cfg``: depmod.d and the
  image's kmod build; ``depmod_out``: the output files; ``kmod_index``: kmod's ``.bin``
  trie format and hash order; ``kmodfile``: module files, compressed or not, and their ELF);
- ``modprobe``: ``--show-depends`` as mkinitramfs uses it;
- ``modinfo``: module fields;
- ``lsmod``: no module loaded (a dormant image runs no kernel).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "depmod": "depmod.depmod",
    "modprobe": "modprobe.modprobe",
    "modinfo": "modinfo.modinfo",
    "lsmod": "lsmod.lsmod",
})
