"""The block-device protocol every layer above ``formats`` sees.

A block device is a fixed-size byte array with positional I/O: ``size``, ``pread``,
``pwrite``, ``flush``, ``close``. Raw files, qcow2 images (with backing chains), partition
slices and in-memory buffers implement it; ext4 code never knows which one it sits on
(the pattern of libext2fs's ``io_manager`` and dissect.util's streams).

Rules of the protocol:

- ``pread(offset, n)`` returns exactly ``n`` bytes; reading past ``size`` is an error
  (``InvalidInputError``), never a short read, so a truncated structure cannot be mistaken for
  zeros.
- ``pwrite`` on a read-only device raises ``OSError(EROFS)``; writing past ``size`` is an
  error (devices do not grow).
- ``close()`` flushes. Devices are context managers.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod

from nuwa.errors import InvalidInputError, fs_error
from nuwa.formats.locking import lock_image


class BlockDevice(ABC):
    """Abstract fixed-size device with positional reads and writes."""

    #: virtual size in bytes
    size: int
    #: False for a read-only handle; ``pwrite`` then raises EROFS
    writable: bool = False
    #: a short human name used in error messages (usually the file name)
    name: str = "<device>"

    @abstractmethod
    def _pread(self, offset: int, n: int) -> bytes:
        """Read ``n`` bytes at ``offset``; the range is already checked to lie inside ``size``."""

    def _pwrite(self, offset: int, data: bytes) -> None:
        raise fs_error(errno.EROFS, self.name)

    def pread(self, offset: int, n: int) -> bytes:
        """Exactly ``n`` bytes at ``offset``; the range must lie inside the device."""
        if n < 0 or offset < 0 or offset + n > self.size:
            raise InvalidInputError(
                f"read of {n} bytes at offset {offset} is outside the device ({self.size} bytes)",
                where=self.name,
            )
        if n == 0:
            return b""
        return self._pread(offset, n)

    def pwrite(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``; the range must lie inside the device."""
        if not self.writable:
            raise fs_error(errno.EROFS, self.name)
        if offset < 0 or offset + len(data) > self.size:
            raise InvalidInputError(
                f"write of {len(data)} bytes at offset {offset} is outside the device ({self.size} bytes)",
                where=self.name,
            )
        if data:
            self._pwrite(offset, bytes(data))

    def source_of(self, offset: int, length: int):
        """A key of the one storage layer that provides all of ``[offset, offset+length)``, or None.

        The key is ``(layer identity..., offset, length)`` in that layer's own address space, so
        it names the bytes completely: two devices (of any kind, e.g. two qcow2 overlays over
        one backing file, seen through partition slices at different starts) that answer with
        equal non-None keys read identical bytes there, and a caller (the tree diff) can skip
        reading them. Optional and read-only (no data is read). None means unknown (the
        default), mixed layers, or zeros that no file stores.
        """
        return None

    def content_identity(self):
        """A key such that two devices with equal non-None keys read identical bytes everywhere.

        Read-only and cheap (file metadata and allocation tables, no data). A fleet uses it to
        know that two images' filesystems answer every read alike without asking them
        (``nuwa.fs.trace``). None means unknown (the default).
        """
        return None

    def flush(self) -> None:
        """Make every completed ``pwrite`` durable (ordered against later writes)."""

    def close(self) -> None:
        """Flush and release the device; idempotent."""
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"<{type(self).__name__} {self.name!r} size={self.size} {mode}>"


class RawFile(BlockDevice):
    """A raw disk image or any regular file used as a device.

    ``lock`` names the QEMU-compatible OFD locks taken at open (:mod:`nuwa.formats.locking`):
    "write", "shared", None (the default: a bare file used as a device), or "auto" ("write"
    for a writable file, none for a read-only one: what ``open_disk`` asks for). A conflict
    with another user of the file refuses the open.
    """

    def __init__(self, path: str | os.PathLike, writable: bool = False, size: int | None = None,
                 lock: str | None = None):
        self.path = os.fspath(path)
        self.name = self.path
        self.writable = writable
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd = os.open(self.path, flags)
        except OSError as err:
            raise InvalidInputError(f"cannot open: {err.strerror}", where=self.path) from err
        self.lock = ("write" if writable else None) if lock == "auto" else lock
        if self.lock:
            try:
                lock_image(self._fd, self.lock, self.path)  # before anything is read for a write
            except BaseException:
                os.close(self._fd)
                raise
        self._closed = False
        self.size = os.fstat(self._fd).st_size if size is None else size

    def _pread(self, offset: int, n: int) -> bytes:
        data = os.pread(self._fd, n, offset)
        if len(data) < n:
            # The file is shorter than the device size we were told; the rest reads as zeros
            # (a sparse tail), as qemu's raw driver does.
            data += bytes(n - len(data))
        return data

    def _pwrite(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(self._fd, view, offset)
            view = view[done:]
            offset += done

    def fileno(self) -> int:
        return self._fd

    def source_of(self, offset: int, length: int):
        """``("file", st_dev, st_ino, offset, length)``: a raw file provides all its bytes itself."""
        if offset < 0 or length < 0 or offset + length > self.size or self._closed:
            return None
        st = os.fstat(self._fd)
        return ("file", st.st_dev, st.st_ino, offset, length)

    def content_identity(self):
        """``("file", st_dev, st_ino, size, st_mtime_ns)``: the file is all of its bytes; a write
        through any other path changes its mtime."""
        if self._closed:
            return None
        st = os.fstat(self._fd)
        return ("file", st.st_dev, st.st_ino, self.size, st.st_mtime_ns)

    def file_size(self) -> int:
        """The host file's current length (may differ from ``size`` for container formats)."""
        return os.fstat(self._fd).st_size

    def set_file_size(self, length: int) -> None:
        """Grow or shrink the host file (used by container formats that append clusters)."""
        os.ftruncate(self._fd, length)

    def flush(self) -> None:
        if self.writable and not self._closed:
            os.fsync(self._fd)

    def close(self) -> None:
        if not self._closed:
            self.flush()
            os.close(self._fd)
            self._closed = True


class MemoryDevice(BlockDevice):
    """A device held in a ``bytearray`` (tests, and scratch filesystems)."""

    def __init__(self, data: bytes | bytearray | int, writable: bool = True, name: str = "<memory>"):
        self.buf = bytearray(data) if not isinstance(data, int) else bytearray(data)
        self.size = len(self.buf)
        self.writable = writable
        self.name = name

    def _pread(self, offset: int, n: int) -> bytes:
        return bytes(self.buf[offset : offset + n])

    def _pwrite(self, offset: int, data: bytes) -> None:
        self.buf[offset : offset + len(data)] = data


class SliceDevice(BlockDevice):
    """A window ``[start, start + size)`` of another device: a partition."""

    def __init__(self, parent: BlockDevice, start: int, size: int, name: str | None = None):
        if start < 0 or size < 0 or start + size > parent.size:
            raise InvalidInputError(
                f"slice [{start}, {start + size}) lies outside the device ({parent.size} bytes)",
                where=parent.name,
            )
        self.parent = parent
        self.start = start
        self.size = size
        self.writable = parent.writable
        self.name = name or f"{parent.name}@{start}"

    def _pread(self, offset: int, n: int) -> bytes:
        return self.parent.pread(self.start + offset, n)

    def _pwrite(self, offset: int, data: bytes) -> None:
        self.parent.pwrite(self.start + offset, data)

    def source_of(self, offset: int, length: int):
        """The parent's answer for the same bytes (shifted by the slice's start)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            return None
        hook = getattr(self.parent, "source_of", None)
        return hook(self.start + offset, length) if hook else None

    def content_identity(self):
        """The parent's identity and this window of it."""
        hook = getattr(self.parent, "content_identity", None)
        key = hook() if hook else None
        return None if key is None else ("slice", key, self.start, self.size)

    def flush(self) -> None:
        self.parent.flush()

    def close(self) -> None:
        # A slice does not own its parent; closing the parent is the owner's job.
        self.flush()


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
