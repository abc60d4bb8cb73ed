"""ext4 directory-index hashes: legacy, half-MD4 and TEA, signed and unsigned.

Hash-indexed ("htree") directories order their leaf blocks by a 32-bit hash of each name.
Which function is used is stored per directory in ``dx_root_info.hash_version`` (a copy of
``s_def_hash_version``); when the superblock's ``s_flags`` has ``EXT2_FLAGS_UNSIGNED_HASH``
the reader adds 3 to select the unsigned-char variant. The variants differ only for name
bytes >= 0x80, which the original implementation fed through a plain ``char`` (signed on
x86). Reference: kernel Documentation/filesystems/ext4/directory.rst ("Hash Tree
Directories"), the algorithms of kernel ``fs/ext4/hash.c`` and e2fsprogs
``lib/ext2fs/dirhash.c``; FORMAT-NOTES B2.7.

All arithmetic is on unsigned 32-bit words; Python ints are masked with ``_M``.
"""

from __future__ import annotations

from nuwa.errors import UnsupportedFeatureError

#: ``dx_root_info.hash_version`` values (e2fsprogs ``ext2_fs.h`` EXT2_HASH_*)
DX_HASH_LEGACY = 0
DX_HASH_HALF_MD4 = 1
DX_HASH_TEA = 2
DX_HASH_LEGACY_UNSIGNED = 3
DX_HASH_HALF_MD4_UNSIGNED = 4
DX_HASH_TEA_UNSIGNED = 5
DX_HASH_SIPHASH = 6  # casefold + encrypt only; not supported here

#: names as e2fsprogs prints them (``lib/e2p/hashstr.c``)
HASH_NAMES = {DX_HASH_LEGACY: "legacy", DX_HASH_HALF_MD4: "half_md4", DX_HASH_TEA: "tea"}

#: superblock ``s_flags`` bits that say how to interpret name bytes
EXT2_FLAGS_SIGNED_HASH = 0x1
EXT2_FLAGS_UNSIGNED_HASH = 0x2

#: the MD4 initial state, used when ``s_hash_seed`` is all zero
MD4_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)

#: the end-of-directory cookie the kernel reserves (``EXT4_HTREE_EOF_32BIT``)
HTREE_EOF_32BIT = 0x7FFFFFFF

_M = 0xFFFFFFFF


def effective_version(hash_version: int, s_flags: int) -> int:
    """The hash variant a reader must use for ``hash_version`` under superblock ``s_flags``.

    Mirrors the kernel's ``dx_probe``/``ext4_fill_super``: versions 0..2 become 3..5 when the
    filesystem is flagged unsigned. (Neither flag set means the kernel's native char, which is
    signed on x86; mkfs always sets one of the two flags.)
    """
    if hash_version <= DX_HASH_TEA and s_flags & EXT2_FLAGS_UNSIGNED_HASH:
        return hash_version + 3
    return hash_version


def _chars(name: bytes, signed: bool) -> list[int]:
    """Name bytes as the C code sees them: sign-extended to 32 bits for a signed ``char``."""
    if not signed:
        return list(name)
    return [(b - 256) & _M if b >= 0x80 else b for b in name]


def _legacy(chars: list[int]) -> int:
    """The original "dx_hack_hash" (Daniel Phillips): a two-register multiplicative mix."""
    h0, h1 = 0x12A3FE2D, 0x37ABE8F9
    for c in chars:
        # The product is computed in C int (wraps mod 2**32), then xored into an unsigned word.
        h = (h1 + (h0 ^ ((c * 7152373) & _M))) & _M
        if h & 0x80000000:
            h = (h - 0x7FFFFFFF) & _M
        h1, h0 = h0, h
    return (h0 << 1) & _M


def _pack_words(chars: list[int], words: int) -> list[int]:
    """Pack the next ``4*words`` name characters big-endian-wise into 32-bit words.

    ``chars`` is the *remaining* name (already sign-adjusted). Short input is filled with a
    pad word made of the remaining length replicated in every byte (the upstream
    ``str2hashbuf`` convention), so that names differing only in length hash differently.
    """
    n = len(chars)
    pad = (n | (n << 8)) & _M
    pad = (pad | (pad << 16)) & _M
    out: list[int] = []
    val = pad
    take = min(n, words * 4)
    for i in range(take):
        val = (chars[i] + (val << 8)) & _M
        if i % 4 == 3:
            out.append(val)
            val = pad
    if len(out) < words:
        out.append(val)  # a partly filled word (or the pad itself when the name ran out evenly)
    while len(out) < words:
        out.append(pad)
    return out


def _rotl(x: int, s: int) -> int:
    return ((x << s) | (x >> (32 - s))) & _M


# half-MD4: MD4's three rounds with only 8 input words each; the schedule is
# (boolean function, input word order, shifts, additive constant) per round.
_MD4_ROUNDS = (
    (lambda x, y, z: z ^ (x & (y ^ z)), (0, 1, 2, 3, 4, 5, 6, 7), (3, 7, 11, 19), 0),
    (lambda x, y, z: ((x & y) + ((x ^ y) & z)) & _M, (1, 3, 5, 7, 0, 2, 4, 6), (3, 5, 9, 13), 0x5A827999),
    (lambda x, y, z: x ^ y ^ z, (3, 7, 2, 6, 1, 5, 0, 4), (3, 9, 11, 15), 0x6ED9EBA1),
)


def _half_md4_transform(state: list[int], words: list[int]) -> None:
    """One half-MD4 compression of 8 words into the 4-word ``state`` (in place)."""
    r = list(state)  # registers a, b, c, d
    for func, order, shifts, k in _MD4_ROUNDS:
        for step, w in enumerate(order):
            # Registers rotate roles each step: a, d, c, b receive the result in turn.
            t = (4 - step) % 4
            a, b, c, d = r[t], r[(t + 1) % 4], r[(t + 2) % 4], r[(t + 3) % 4]
            r[t] = _rotl((a + func(b, c, d) + ((words[w] + k) & _M)) & _M, shifts[step % 4])
    for i in range(4):
        state[i] = (state[i] + r[i]) & _M


_TEA_DELTA = 0x9E3779B9


def _tea_transform(state: list[int], words: list[int]) -> None:
    """16 rounds of the TEA block cipher keyed by ``words``, fed back into ``state[0:2]``."""
    s = 0
    b0, b1 = state[0], state[1]
    a, b, c, d = words
    for _ in range(16):
        s = (s + _TEA_DELTA) & _M
        b0 = (b0 + ((((b1 << 4) + a) & _M) ^ ((b1 + s) & _M) ^ (((b1 >> 5) + b) & _M))) & _M
        b1 = (b1 + ((((b0 << 4) + c) & _M) ^ ((b0 + s) & _M) ^ (((b0 >> 5) + d) & _M))) & _M
    state[0] = (state[0] + b0) & _M
    state[1] = (state[1] + b1) & _M


def dirhash(
    name: bytes,
    version: int,
    seed: tuple[int, int, int, int] | list[int] | None = None,
    signed: bool | None = None,
) -> tuple[int, int]:
    """``(major, minor)`` hash of a directory entry name, as stored in an htree.

    ``version`` is a ``DX_HASH_*`` value (0..5); versions 3..5 are the unsigned variants of
    0..2. ``signed`` overrides the signedness implied by ``version`` when given (True: bytes
    >= 0x80 are sign-extended, as on x86 with ``EXT2_FLAGS_SIGNED_HASH``). ``seed`` is the
    superblock's ``s_hash_seed`` as four host-order words; None or all zero selects the MD4
    initial vector. The major hash has its low bit cleared (htree uses it to flag hash
    collisions continuing in the next block) and never equals the EOF cookie
    ``0x7fffffff << 1`` (kernel ``ext4fs_dirhash``); the legacy hash has minor 0.
    """
    if isinstance(name, str):
        raise TypeError("dirhash takes the on-disk name bytes, not str")
    if version not in (0, 1, 2, 3, 4, 5):
        raise UnsupportedFeatureError(
            f"directory hash version {version} is not supported (only legacy, half_md4, tea)",
            where="dx_root_info.hash_version",
            feature=f"dx_hash_{version}",
        )
    base = version % 3
    if signed is None:
        signed = version < 3
    state = list(MD4_IV)
    if seed is not None and any(seed):
        state = [int(w) & _M for w in seed]
    chars = _chars(bytes(name), signed)

    if base == DX_HASH_LEGACY:
        major, minor = _legacy(chars), 0
    elif base == DX_HASH_HALF_MD4:
        # 32 name bytes per compression; the pad word encodes the remaining length.
        for off in range(0, len(chars), 32):
            _half_md4_transform(state, _pack_words(chars[off:], 8))
        major, minor = state[1], state[2]
    else:
        for off in range(0, len(chars), 16):
            _tea_transform(state, _pack_words(chars[off:], 4))
        major, minor = state[0], state[1]

    major &= ~1 & _M
    if major == (HTREE_EOF_32BIT << 1) & _M:
        major = (HTREE_EOF_32BIT - 1) << 1
    return major, minor


def seed_from_uuid(uuid_bytes: bytes) -> tuple[int, int, int, int]:
    """The ``s_hash_seed`` words stored for a UUID-formatted seed (16 bytes, little-endian words)."""
    if len(uuid_bytes) != 16:
        raise ValueError("a hash seed is 16 bytes")
    return tuple(int.from_bytes(uuid_bytes[i : i + 4], "little") for i in range(0, 16, 4))  # type: ignore[return-value]
