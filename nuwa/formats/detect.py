"""Open a disk image by its content: qcow2 (magic ``QFI\\xfb``) or raw.

The file name never decides the format (a raw image named ``.qcow2`` stays raw). Backing files
follow qemu's rules: a relative name resolves against the overlay's directory, the backing
format extension is honoured when present (so a raw backing file that happens to start with the
qcow2 magic is still read raw), a loop in the chain is an error, and protocol names
(``nbd:``, ``json:``, ``http:``...) are refused because Nuwa only opens local files.
"""

from __future__ import annotations

import os
import re

from nuwa.errors import CorruptImageError, InvalidInputError, UnsupportedFeatureError
from nuwa.formats import c_qcow2 as C
from nuwa.formats.blockdev import BlockDevice, RawFile

#: qemu's protocol syntax: "proto:rest" where proto has no '/' (qemu ``path_has_protocol``)
_PROTOCOL = re.compile(r"^([A-Za-z0-9+._-]+):")
#: longest chain we follow; each level holds a file descriptor
MAX_CHAIN_DEPTH = 256


class RawImage(RawFile):
    """A raw disk image: the file is the guest, byte for byte."""

    format = "raw"
    backing = None
    snapshots: list = []

    def info(self) -> dict:
        """Format and size, in the shape of ``Qcow2Image.info``."""
        return dict(format="raw", filename=self.path, virtual_size=self.size, actual_size=self.file_size(),
                    cluster_size=None, compression_type=None, version=None, backing_file=None,
                    backing_format=None, backing_chain=[], snapshots=[], dirty=False, corrupt=False,
                    incompatible_features=[], compatible_features=[], autoclear_features=[],
                    refcount_bits=None, extended_l2=False, encrypted=None)


def probe_format(path: str) -> str:
    """'qcow2' if the file starts with the qcow2 magic, else 'raw'."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise InvalidInputError(f"cannot open: {err.strerror}", where=path) from err
    return "qcow2" if magic == C.QCOW_MAGIC else "raw"


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
    return _open_as(path, fmt, writable, frozenset())


def _open_as(path: str, fmt: str, writable: bool, chain: frozenset) -> BlockDevice:
    if fmt == "qcow2":
        from nuwa.formats.qcow2 import Qcow2Image

        return Qcow2Image(path, writable=writable, _chain=chain)
    if fmt == "raw":
        return RawImage(path, writable=writable)
    raise UnsupportedFeatureError(f"image format {fmt!r} is not supported (qcow2 and raw are)", where=path,
                                  feature=f"format {fmt}")


def resolve_reference(name: str, referrer: str, what: str) -> str:
    """Resolve a file name stored in an image (backing or data file) like qemu does.

    Relative names are relative to the directory of the image that stores them; protocol
    names are refused.
    """
    m = _PROTOCOL.match(name)
    if m and not name.startswith(("/", "./")):
        proto = m.group(1)
        if proto != "file":
            raise UnsupportedFeatureError(f"{what} {name!r} uses the {proto!r} protocol; only local files are supported",
                                          where=f"{referrer}: qcow2 {what} name", feature=f"protocol {proto}")
        name = name[len("file:"):]
    if not name:
        raise CorruptImageError(f"empty {what} name", where=f"{referrer}: qcow2 {what} name")
    if "\0" in name:
        raise CorruptImageError(f"{what} name contains a NUL byte", where=f"{referrer}: qcow2 {what} name")
    if not os.path.isabs(name):
        name = os.path.join(os.path.dirname(os.path.abspath(referrer)), name)
    if not os.path.exists(name):
        raise CorruptImageError(f"{what} {name!r} does not exist", where=f"{referrer}: qcow2 {what} name")
    return name


def open_backing_file(name: str, fmt: str | None, referrer: str, chain: frozenset) -> BlockDevice:
    """Open the backing file ``name`` of image ``referrer`` read-only (``chain``: realpaths above it)."""
    path = resolve_reference(name, referrer, "backing file")
    real = os.path.realpath(path)
    if real in chain:
        raise CorruptImageError(f"backing chain loop: {name!r} is already in the chain above it",
                                where=f"{referrer}: qcow2 backing file name")
    if len(chain) >= MAX_CHAIN_DEPTH:
        raise UnsupportedFeatureError(f"backing chain deeper than {MAX_CHAIN_DEPTH}", where=referrer,
                                      feature="backing chain depth")
    if fmt is None:
        fmt = probe_format(path)
    elif fmt not in ("qcow2", "raw"):
        raise UnsupportedFeatureError(f"backing format {fmt!r} is not supported (qcow2 and raw are)",
                                      where=f"{referrer}: qcow2 backing format extension", feature=f"format {fmt}")
    return _open_as(path, fmt, False, chain)
