"""Nuwa: offline patching of dormant Debian/Ubuntu VM images.

Library entry point (docs/api.md; :mod:`nuwa.api`)::

    import nuwa
    with nuwa.open("disk.qcow2") as image:
        image.info()
        root = image.root()
        root.read_bytes("/etc/os-release")
        image.packages()                                   # nuwa packages --json
        image.patch(debs=["x.deb"], output="new.qcow2")    # nuwa patch --deb x.deb --output new.qcow2

Importing ``nuwa`` stays cheap (``nuwa --help`` starts fast): the image code loads on the
first ``nuwa.open``, the shell simulator only for ``patch`` and ``sh``.
"""

from nuwa.errors import (  # noqa: F401  (re-exported)
    CorruptImageError,
    InternalError,
    RepositoryError,
    InvalidInputError,
    NuwaError,
    OperationFailedError,
    UnsupportedFeatureError,
)

__version__ = "0.1.0"


def open(path, writable: bool = False, partition: int | None = None,  # noqa: A001 - mirrors builtins.open
         unsafe_in_place: bool = False):
    """Open a disk image (qcow2, raw disk or bare filesystem); returns a :class:`nuwa.api.Image`."""
    # late: keeps ``import nuwa`` (and so ``nuwa --help``) free of the image code (start-up speed)
    from nuwa import api

    return api.open(path, writable=writable, partition=partition, unsafe_in_place=unsafe_in_place)


def __getattr__(name):
    """``nuwa.RepoOptions`` and ``nuwa.UpgradeRequest``, loaded when first asked for (start-up speed)."""
    if name == "RepoOptions":
        from nuwa.apt.options import RepoOptions  # late: only when asked for

        return RepoOptions
    if name == "UpgradeRequest":
        from nuwa.patch.upgrade import UpgradeRequest  # late: the patch job only when asked for

        return UpgradeRequest
    raise AttributeError(f"module 'nuwa' has no attribute {name!r}")


def scan(paths, repo_options=None, options=None, partition: int | None = None, repositories=None):
    """Pending updates of one or several images (``nuwa scan``); see :func:`nuwa.api.scan`."""
    # late: keeps ``import nuwa`` free of the repository code (start-up speed)
    from nuwa import api

    return api.scan(paths, repo_options, options, partition=partition, repositories=repositories)
