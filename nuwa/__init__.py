"""Nuwa: offline patching of dormant Debian/Ubuntu VM images.

Library entry point::

    import nuwa
    with nuwa.open("disk.qcow2") as image:
        image.info()
        root = image.root()
        root.read_bytes("/etc/os-release")
"""

from nuwa.errors import (  # noqa: F401  (re-exported)
    CorruptImageError,
    InternalError,
    InvalidInputError,
    NuwaError,
    OperationFailedError,
    UnsupportedFeatureError,
)

__version__ = "0.1.0"


def open(path, writable: bool = False, partition: int | None = None):  # noqa: A001 - mirrors builtins.open
    """Open a disk image (qcow2, raw disk or bare filesystem); see :class:`nuwa.image.Image`."""
    from nuwa.image import Image

    return Image.open(path, writable=writable, partition=partition)
