"""Nuwa's exceptions, split by who is at fault.

Every error is also the builtin exception a caller would expect (``OSError`` with an errno,
``ValueError``, ``RuntimeError``), so library users can catch either family. Messages name the
structure, offset and field at fault; ``str(err)`` is the one line the CLI prints.
"""

from __future__ import annotations

import errno as _errno

# Exit codes of the command line (DESIGN.md "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CORRUPT = 3


class NuwaError(Exception):
    """Base of every error Nuwa raises on purpose."""

    exit_code = EXIT_FAILED

    def __str__(self) -> str:  # OSError would prefix "[Errno N]"; keep one clean line
        return self.message

    @property
    def message(self) -> str:
        return self.args[-1] if self.args else self.__class__.__name__


def _where(message: str, where: str | None) -> str:
    return f"{where}: {message}" if where else message


class CorruptImageError(NuwaError, OSError):
    """The image (or a file inside it) violates its format: the image is at fault."""

    exit_code = EXIT_CORRUPT

    def __init__(self, message: str, *, where: str | None = None):
        OSError.__init__(self, _errno.EUCLEAN, _where(message, where))


class UnsupportedFeatureError(NuwaError, OSError):
    """The image is valid but uses a feature Nuwa refuses (usually: refuses to write)."""

    exit_code = EXIT_CORRUPT

    def __init__(self, message: str, *, where: str | None = None, feature: str | None = None):
        self.feature = feature
        OSError.__init__(self, _errno.EOPNOTSUPP, _where(message, where))


class InvalidInputError(NuwaError, ValueError):
    """Something named by the caller (a path, an option, a .deb) is unusable: the caller is at fault."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, where: str | None = None):
        ValueError.__init__(self, _where(message, where))


class OperationFailedError(NuwaError, RuntimeError):
    """The operation could not be carried out (a package conflict, no space); nothing was written."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, where: str | None = None):
        RuntimeError.__init__(self, _where(message, where))


class InternalError(NuwaError, RuntimeError):
    """A bug in Nuwa: an invariant it relies on does not hold."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, where: str | None = None):
        RuntimeError.__init__(self, _where("internal error: " + message, where))


def fs_error(code: int, path: str | None = None, message: str | None = None) -> OSError:
    """An ``OSError`` subclass exactly as the kernel would report ``code`` for ``path``.

    ``OSError(errno, ...)`` already maps to FileNotFoundError, IsADirectoryError and friends.
    """
    import os

    text = message or os.strerror(code)
    if path is None:
        return OSError(code, text)
    return OSError(code, text, path)
