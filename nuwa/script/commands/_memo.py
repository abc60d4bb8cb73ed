"""Answers computed from files' bytes, kept for the next call that reads the same bytes.

An initramfs build runs ``modprobe`` and ``modinfo`` hundreds of times, and each call reads
the same few files of the image again (the dpkg status file and ``/bin/kmod`` for the kmod
version and build, the ``modules.*.bin`` indexes); a kernel update asks ``dpkg
--print-architecture`` several times of the same database. Reading is cheap, the answer is
not. The key is the whole content (bytes, or a tuple of them), compared with ``==`` -- a
``memcmp`` that stops at the first difference or at a different length -- instead of hashed
as a ``functools.lru_cache`` key is (SipHash over every byte at every call: for the 130-180
KB files above a third of a modinfo call). So a changed file is always a miss, whatever its
name, time or size, and nothing has to be invalidated.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class ContentMemo(Generic[T]):
    """The last ``size`` (content, ``compute(content)``) pairs, most recently used first;
    content is ``bytes`` or a tuple of ``bytes``."""

    def __init__(self, compute: Callable[..., T] | None = None, size: int = 4):
        self.compute, self.size = compute, size
        self._entries: list[tuple[object, T]] = []

    def __call__(self, data, make: Callable[[], T] | None = None) -> T:
        """``compute(data)`` (or ``make()``, which must compute the same thing from what
        ``data`` was read from), computed once for equal content while it is among the last
        ``size`` contents asked about. An exception is raised again at every call."""
        for i, (known, answer) in enumerate(self._entries):
            if known == data:
                if i:
                    self._entries.insert(0, self._entries.pop(i))
                return answer
        answer = make() if make is not None else self.compute(data)
        self._entries.insert(0, (data, answer))
        del self._entries[self.size:]
        return answer
