"""Image locks as QEMU takes them: OFD byte-range locks on the image file.

QEMU's file-posix driver (``block/file-posix.c``: ``raw_apply_lock_bytes``,
``raw_check_lock_bytes``) expresses its block-layer permissions as shared (read) OFD locks on
single bytes of the image file:

- byte ``RAW_LOCK_PERM_BASE + i`` (100 + i) is locked while the holder *uses* permission ``i``;
- byte ``RAW_LOCK_SHARED_BASE + i`` (200 + i) is locked while the holder *does not share*
  permission ``i`` with other users.

with the permission bits of ``include/block/block-common.h``: 0 consistent read, 1 write,
2 write-unchanged, 3 resize. A new user first takes its own bytes, then tests (``F_OFD_GETLK``
with an exclusive lock) the bytes that would conflict: for each permission it wants, the
"not shared" byte 200 + i; for each permission it does not share, the "used" byte 100 + i. A
lock held by anyone else there is a conflict, and the new user gives up its bytes and refuses.

What QEMU 7.2 holds, observed in ``/proc/locks``: a qcow2 image opened for writing (a running
VM, ``qemu-io``) holds bytes 100, 101, 103, 201 and 203 (uses read, write and resize; shares
neither write nor resize); each file of its backing chain holds 100, 201 and 203 (reads it;
lets nobody write or resize it). Nuwa takes exactly the same sets (:data:`WRITE` for the
image it writes, :data:`SHARED` for the backing chain of an image it writes), so

- Nuwa refuses to write an image that QEMU (or ``qemu-img``, or another Nuwa) has open;
- QEMU refuses to start on an image while Nuwa writes it ("Failed to get "write" lock");
- of two Nuwa runs writing one image, the second refuses at once (one line, exit 1); it does
  not wait, because a patch run can take minutes and a caller that wants to queue can retry.

Read-only Nuwa commands take no locks, like ``qemu-img info -U`` (force-share): they never
stop a VM from starting. OFD locks belong to the open file description, so they conflict
between two opens inside one process too, and they are released when the file is closed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from nuwa.errors import OperationFailedError

RAW_LOCK_PERM_BASE = 100
RAW_LOCK_SHARED_BASE = 200

#: QEMU's permission bits (include/block/block-common.h), with the names its messages use
PERM_CONSISTENT_READ = 0x01
PERM_WRITE = 0x02
PERM_WRITE_UNCHANGED = 0x04
PERM_RESIZE = 0x08
PERM_ALL = 0x0F
PERM_NAMES = {PERM_CONSISTENT_READ: "consistent read", PERM_WRITE: "write",
              PERM_WRITE_UNCHANGED: "write unchanged", PERM_RESIZE: "resize"}

#: (perm, shared) of an image Nuwa writes: as QEMU's qcow2 file child of a writable drive
WRITE = (PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE, PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED)
#: (perm, shared) of a backing file under an image Nuwa writes: QEMU's backing-chain locks
SHARED = (PERM_CONSISTENT_READ, PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED)
MODES = {"write": WRITE, "shared": SHARED}

# struct flock (Linux, 64-bit off_t): short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid, padded to its natural size; l_pid must be 0 for OFD locks
_FLOCK = struct.Struct("@hhqqi4x")


def _flock(kind: int, start: int) -> bytes:
    return _FLOCK.pack(kind, os.SEEK_SET, start, 1, 0)


def _set(fd: int, kind: int, byte: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(kind, byte))


def _held_by_other(fd: int, byte: int) -> bool:
    """True if another open file description holds a lock on ``byte`` (an exclusive lock
    there would conflict); our own locks never count (``qemu_lock_fd_test``)."""
    got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK, byte))
    return _FLOCK.unpack(got)[0] != fcntl.F_UNLCK


def _bits(mask: int):
    return [b for b in (PERM_CONSISTENT_READ, PERM_WRITE, PERM_WRITE_UNCHANGED, PERM_RESIZE) if mask & b]


def lock_bytes(perm: int, shared: int) -> list[int]:
    """The bytes a holder of ``perm`` sharing ``shared`` locks (``raw_apply_lock_bytes``)."""
    out = [RAW_LOCK_PERM_BASE + b.bit_length() - 1 for b in _bits(perm)]
    out += [RAW_LOCK_SHARED_BASE + b.bit_length() - 1 for b in _bits(PERM_ALL & ~shared)]
    return out


def conflict(fd: int, perm: int, shared: int) -> str | None:
    """QEMU's wording of the first conflict with locks held by others, or None (``raw_check_lock_bytes``)."""
    for b in _bits(perm):
        if _held_by_other(fd, RAW_LOCK_SHARED_BASE + b.bit_length() - 1):
            return f'failed to get "{PERM_NAMES[b]}" lock'
    for b in _bits(PERM_ALL & ~shared):
        if _held_by_other(fd, RAW_LOCK_PERM_BASE + b.bit_length() - 1):
            return f'failed to get shared "{PERM_NAMES[b]}" lock'
    return None


def unlock(fd: int, mode: str) -> None:
    """Release the bytes ``mode`` locked on ``fd`` (closing the file releases them too)."""
    perm, shared = MODES[mode]
    for byte in lock_bytes(perm, shared):
        _set(fd, fcntl.F_UNLCK, byte)


def lock_image(fd: int, mode: str, name: str) -> None:
    """Take ``mode``'s locks ('write' or 'shared') on the open file ``fd`` of image ``name``.

    As QEMU does, the bytes are locked first and the conflicts tested after, so two users
    racing for one image cannot both pass the test. On a conflict the bytes are released and
    :class:`OperationFailedError` (exit 1: nothing was written) names the image and the lock.
    A filesystem without OFD locks (EINVAL/ENOLCK/EOPNOTSUPP) is used unlocked, as QEMU's
    ``locking=auto`` does.
    """
    perm, shared = MODES[mode]
    try:
        for byte in lock_bytes(perm, shared):
            _set(fd, fcntl.F_RDLCK, byte)
        why = conflict(fd, perm, shared)
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return
        raise OperationFailedError(f"cannot lock the image: {err.strerror}", where=name) from err
    if why is None:
        return
    unlock(fd, mode)
    doing = "write" if mode == "write" else "use as a backing file"
    raise OperationFailedError(
        f"{why}: the image is in use by another process (a running QEMU, qemu-img or nuwa); "
        f"refusing to {doing} it", where=name)
