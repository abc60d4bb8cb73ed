"""The ``strinfo`` word arrays of enums, flags, choices and aliases (glib 2.74 ``gio/strinfo.c``).

A strinfo is a sequence of little-endian 32-bit words: for each item its value word, then the
string framed by a marker byte (0xff for a name, 0xfe for an alias) and a closing 0xff byte,
padded to whole words (at least two). glib-compile-schemas stores it as the key's ``au``
"choices"/"enum"/"flags" entry.

The real ``strinfo_string_to_words`` leaves the bytes between the string's NUL and the closing
0xff uninitialised (stack memory). Those bytes end up in ``gschemas.compiled``; this module
writes zeros there, and :func:`padding_is_uncertain` tells the caller when a string has such
bytes so that it can decide what to do about them.
"""

from __future__ import annotations

import struct

MAX_WORDS = 17


def string_to_words(s: str, alias: bool) -> bytes | None:
    """``strinfo_string_to_words``: the framed string, or None when longer than 17 words."""
    raw = s.encode()
    n_words = max(2, (len(raw) + 6) >> 2)
    if n_words > MAX_WORDS:
        return None
    out = bytearray(4 * n_words)
    out[0] = 0xFE if alias else 0xFF
    out[1:2 + len(raw)] = raw + b"\0"
    out[-1] = 0xFF
    return bytes(out)


def padding_is_uncertain(s: str) -> bool:
    """True when the framed string has bytes C leaves uninitialised (see the module doc)."""
    size = len(s.encode())
    return 4 * max(2, (size + 6) >> 2) - (size + 2) - 1 > 0


def _words(b: bytes | bytearray) -> list[int]:
    return list(struct.unpack(f"<{len(b) // 4}I", bytes(b)))


def _scan(strinfo: list[int], words: list[int]) -> int:
    """``strinfo_scan``: index of ``words`` in ``strinfo`` (skipping as the C does), or -1."""
    length, n = len(strinfo), len(words)
    if length < n:
        return -1
    i = 0
    while i <= length - n:
        j = 0
        while j < n and strinfo[i + j] == words[j]:
            j += 1
        if j == n:
            return i
        i += j or 1
    return -1


def find_string(strinfo: bytes | bytearray, s: str, alias: bool) -> int:
    """``strinfo_find_string``: the word index of the value word before ``s``'s frame, or -1."""
    if len(strinfo) < 4:
        return -1
    framed = string_to_words(s, alias)
    if framed is None:
        return -1
    return _scan(_words(strinfo)[1:], _words(framed))


def find_integer(strinfo: bytes | bytearray, value: int) -> int:
    """``strinfo_find_integer``: a value word framed by 0xff bytes, or -1."""
    words = _words(strinfo)
    for i, w in enumerate(words):
        if w == value & 0xFFFFFFFF:
            before_ok = i == 0 or strinfo[4 * i - 1] == 0xFF
            if before_ok and 4 * i + 4 < len(strinfo) and strinfo[4 * i + 4] == 0xFF:
                return i
    return -1


def is_string_valid(strinfo: bytes | bytearray, s: str) -> bool:
    """``strinfo_is_string_valid``: ``s`` is a name (not an alias) of the strinfo."""
    return find_string(strinfo, s, False) != -1


def contains(strinfo: bytes | bytearray, s: str) -> bool:
    """``strinfo_builder_contains``: ``s`` is a name or an alias."""
    return find_string(strinfo, s, False) != -1 or find_string(strinfo, s, True) != -1


def append_item(strinfo: bytearray, s: str, value: int) -> None:
    """``strinfo_builder_append_item``."""
    framed = string_to_words(s, False)
    if framed is None:  # the C appends 0 words of an uninitialised buffer: not reproduced
        raise ValueError("a strinfo string longer than 65 bytes")
    strinfo += struct.pack("<I", value & 0xFFFFFFFF) + framed


def append_alias(strinfo: bytearray, alias: str, target: str) -> bool:
    """``strinfo_builder_append_alias``: False when ``target`` is not a name."""
    index = find_string(strinfo, target, False)
    if index == -1:
        return False
    framed = string_to_words(alias, True)
    if framed is None:
        raise ValueError("a strinfo string longer than 65 bytes")
    strinfo += struct.pack("<I", index) + framed
    return True
