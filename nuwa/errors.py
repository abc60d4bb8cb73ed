"""Nuwa's exceptions, split by who is at fault.

Every error is also the builtin exception a caller would expect (``OSError`` with an errno,
``ValueError``, ``RuntimeError``), so library users can catch either family. Messages name the
structure, offset and field at fault; ``str(err)`` is the one line the CLI prints.
"""

from __future__ import annotations

import errno as _errno
import re as _re

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


#: the longest value an error message quotes whole; longer ones are cut (the user needs to
#: recognise the value, not to read 5,000 characters of a fuzzed field on one line)
QUOTE_LIMIT = 200
#: the longest message line; a backstop for values not quoted through :func:`quote`
MESSAGE_LIMIT = 1000


def _escape(text: str) -> str:
    # bytes that were not UTF-8 (read with surrogateescape) and control characters are shown
    # escaped, as dpkg and coreutils quote them: a message is one printable line
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte produced
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def quote(value, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as an error message shows it: quoted, escaped, at most ``limit`` characters.

    A longer value keeps its first ``limit`` characters, then ``...`` and its total length,
    e.g. ``'aaaa...' (5000 characters)``. Bytes are shown as text with undecodable bytes as
    ``\\xNN``. Every error message quotes field values through here.
    """
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "surrogateescape")
    else:
        text = str(value)
    if len(text) > limit:
        return f"'{_escape(text[:limit])}...' ({len(text)} characters)"
    return f"'{_escape(text)}'"


_QUOTED = _re.compile(r"'([^'\n]{%d,})'" % (QUOTE_LIMIT + 1))


def cap_message(text: str) -> str:
    """One bounded line: cut quoted runs over :data:`QUOTE_LIMIT` and the line at :data:`MESSAGE_LIMIT`.

    The backstop for messages built with ``!r`` rather than :func:`quote`; every Nuwa error
    passes through it, so no message repeats a value of unbounded length.
    """
    text = _QUOTED.sub(lambda m: quote(m.group(1)), text)
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT] + f"... ({len(text)} characters)"
    return text


def _where(message: str, where: str | None) -> str:
    return cap_message(f"{where}: {message}" if where else message)


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


class RepositoryError(InvalidInputError):
    """A package repository is unusable: unsigned, badly signed, expired, a hash mismatch, a
    download that failed. The message names the file (URL) and the reason, as apt does; exit 2."""


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
