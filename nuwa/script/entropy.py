"""Random bytes for command models, counted.

A model that makes a secret or an identifier (a TLS key's serial, an rndc key, a D-Bus machine
id, ``dd if=/dev/urandom``...) takes the host's ``os.urandom``, unseeded, so that two images
patched alike still get different secrets, as two machines would. Every model takes them
through :func:`random_bytes`, which also counts the draws: a job that drew any produced
something that belongs to one image alone, and a fleet must not copy its effect into another
image (``nuwa.fleet``, effect reuse). The count is per process; a fleet worker runs one image
at a time.
"""

from __future__ import annotations

import os
import uuid

_draws = 0


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the host's ``os.urandom``; counted (see the module note)."""
    global _draws
    _draws += 1
    return os.urandom(n)


def random_uuid() -> uuid.UUID:
    """A random (version 4) UUID from :func:`random_bytes`, as ``uuid.uuid4`` makes one."""
    return uuid.UUID(bytes=random_bytes(16), version=4)


def draws() -> int:
    """How many times this process has drawn random bytes for a model so far."""
    return _draws
