"""Open a disk image by its content: qcow2 (magic ``QFI\\xfb``) or raw.

The file name never decides the format (a raw image named ``.qcow2`` stays raw). Backing files
follow qemu's rules: a relative name resolves against the overlay's directory, the backing
format extension is honoured when present (so a raw backing file that happens to start with the
qcow2 magic is still read raw), a loop in the chain is an error, and protocol names
(``nbd:``, ``json:``, ``http:``...) are refused because Nuwa only opens local files. Those
rules live with the qcow2 reader (``qcow2.open_backing_file``), which opens its own chain;
this module is the entry point that picks the format of the file named by the user.
"""

from __future__ import annotations

import os

from nuwa.errors import InvalidInputError
from nuwa.formats.blockdev import BlockDevice
from nuwa.formats.qcow2 import open_chain_member, probe_format


def open_disk(path, writable: bool = False, format: str | None = None) -> BlockDevice:
    """Open a disk image, detecting qcow2 vs raw from its content unless ``format`` is given.

    The returned device has ``format`` and ``info()``; qcow2 images come with their backing
    chain opened read-only.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidInputError("no such file", where=path)
    if os.path.isdir(path):
        raise InvalidInputError("is a directory, not a disk image", where=path)
    fmt = format or probe_format(path)
    return open_chain_member(path, fmt, writable, frozenset())
