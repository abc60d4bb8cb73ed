"""nuwa.fs.ext4.dirhash against the real e2fsprogs implementation (``debugfs dx_hash``).

debugfs 1.47 takes ``-h HASHALG_<n>`` for any numeric version (0..2 signed, 3..5 unsigned)
and ``-s <uuid>`` for the seed (the UUID's 16 bytes are the four little-endian seed words);
without ``-s`` the seed is zero, i.e. the MD4 initial vector. Names are passed double-quoted
in a ``debugfs -f -`` script, so they may hold spaces and any byte except NUL, newline, ``"``
and ``\\``; everything else, including bytes >= 0x80 and 255-byte names, is covered.
"""

from __future__ import annotations

import random
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from judges import run, tool
from nuwa.fs.ext4.dirhash import (
    DX_HASH_HALF_MD4,
    DX_HASH_HALF_MD4_UNSIGNED,
    EXT2_FLAGS_UNSIGNED_HASH,
    MD4_IV,
    dirhash,
    effective_version,
    seed_from_uuid,
)

pytestmark = pytest.mark.judge

_FORBIDDEN = {0, 0x0A, 0x0D, ord('"'), ord("\\")}
_ALPHABET = bytes(b for b in range(1, 256) if b not in _FORBIDDEN and b >= 0x20 and b != 0x7F)
_HASH_LINE = re.compile(rb"Hash of .* is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)$")


def _names() -> list[bytes]:
    """A deterministic spread of names: every length class the chunking cares about."""
    rng = random.Random(20240501)
    names = [b"a", b".", b"..", b"lost+found", b"hello", b"A" * 255, b"\xff" * 255, b"\x80", b"\xe9t\xe9"]
    # Lengths around the 16-byte (TEA) and 32-byte (half-MD4) chunk boundaries and the maximum.
    for n in (1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 200, 254, 255):
        names.append(bytes(rng.choice(_ALPHABET) for _ in range(n)))
        names.append(bytes(rng.choice(range(0x80, 0x100)) for _ in range(n)))
    for _ in range(60):
        names.append(bytes(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 255))))
    names.append("fichier-été-日本語".encode())
    return names


def _debugfs_hashes(version: int, seed_uuid: str | None, names: list[bytes]) -> list[tuple[int, int]]:
    seed_opt = f" -s {seed_uuid}" if seed_uuid else ""
    # "--": a name that starts with "-" is an operand, not an option (hypothesis found b"-\x01")
    script = b"".join(b'dx_hash -h HASHALG_%d%s -- "%s"\n' % (version, seed_opt.encode(), n) for n in names)
    r = run([tool("debugfs"), "-f", "-"], input=script, text=False)
    got = [m for m in (_HASH_LINE.search(ln) for ln in r.stdout.splitlines()) if m]
    assert len(got) == len(names), r.stdout[-2000:] + r.stderr[-2000:]
    return [(int(m.group(1), 16), int(m.group(2), 16)) for m in got]


SEEDS = [None, "01234567-89ab-cdef-0123-456789abcdef", "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f"]


@pytest.mark.parametrize("seed_uuid", SEEDS)
@pytest.mark.parametrize("version", range(6))
def test_matches_debugfs(version: int, seed_uuid: str | None) -> None:
    names = _names()
    seed = seed_from_uuid(uuid.UUID(seed_uuid).bytes) if seed_uuid else None
    want = _debugfs_hashes(version, seed_uuid, names)
    for name, expected in zip(names, want):
        assert dirhash(name, version, seed) == expected, (version, seed_uuid, name)


@pytest.mark.parametrize("base", range(3))
def test_signed_flag_overrides_version(base: int) -> None:
    """``signed=False`` on version v equals version v+3, and ``signed=True`` on v+3 equals v."""
    names = _names()
    for name in names:
        assert dirhash(name, base, None, signed=False) == dirhash(name, base + 3, None)
        assert dirhash(name, base + 3, None, signed=True) == dirhash(name, base, None)


def test_all_zero_seed_is_md4_iv() -> None:
    for name in _names()[:20]:
        assert dirhash(name, DX_HASH_HALF_MD4, (0, 0, 0, 0)) == dirhash(name, DX_HASH_HALF_MD4, MD4_IV)
        assert dirhash(name, DX_HASH_HALF_MD4, None) == dirhash(name, DX_HASH_HALF_MD4, MD4_IV)


def test_effective_version() -> None:
    assert effective_version(DX_HASH_HALF_MD4, EXT2_FLAGS_UNSIGNED_HASH) == DX_HASH_HALF_MD4_UNSIGNED
    assert effective_version(DX_HASH_HALF_MD4, 1) == DX_HASH_HALF_MD4


def test_rejects_unknown_version_and_str() -> None:
    with pytest.raises(OSError, match="hash version 6"):
        dirhash(b"x", 6)
    with pytest.raises(TypeError):
        dirhash("x", 1)  # type: ignore[arg-type]


@given(
    name=st.binary(min_size=1, max_size=255).filter(lambda b: not (set(b) & _FORBIDDEN) and b.strip() == b),
    version=st.integers(0, 5),
    seed=st.sampled_from(SEEDS),
)
def test_random_names_match_debugfs(name: bytes, version: int, seed: str | None) -> None:
    sw = seed_from_uuid(uuid.UUID(seed).bytes) if seed else None
    assert dirhash(name, version, sw) == _debugfs_hashes(version, seed, [name])[0]


@given(name=st.binary(min_size=1, max_size=255).map(lambda b: bytes(c & 0x7F for c in b)))
def test_ascii_names_are_signedness_independent(name: bytes) -> None:
    for base in range(3):
        assert dirhash(name, base) == dirhash(name, base + 3)
