"""libmagic's compiled magic database (``magic.mgc``, file 5.44 ``src/file.h`` ``struct
magic``, ``src/apprentice.c`` ``apprentice_map``/``check_buffer``).

The file is a header the size of one entry (``MAGICNO``, ``VERSIONNO``, then the entry
count of each of the ``MAGIC_SETS`` (2) sets) followed by the entries of set 0 (every
test, already in the order ``apprentice_sort`` gave them: by strength, top-level entries
flagged ``BINTEST``/``TEXTTEST``) and of set 1 (the ``name`` entries ``use`` calls).
Only version 18 in the byte order this module reads (little-endian, what an amd64 or
arm64 ``file -C`` writes) is read; anything else raises :class:`MagicDBError`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MAGICNO = 0xF11E041C
VERSIONNO = 18
FILE_MAGICSIZE = 376
MAGIC_SETS = 2
MAXSTRING = 128

# struct magic: word 1-3 (cont_level, flag, factor, reln, vallen, type, in_type, in_op,
# mask_op, cond, factor_op), offset, in_offset, lineno, the mask/str_range+str_flags union,
# union VALUETYPE, desc[MAXDESC], mimetype[MAXMIME], apple[8], ext[64]
_ENTRY = struct.Struct("<HBBBBBBBBBBiiIQ128s64s80s8s64s")
assert _ENTRY.size == FILE_MAGICSIZE

# flag
INDIR, OFFADD, INDIROFFADD, UNSIGNED, NOSPACE, BINTEST, TEXTTEST, OFFNEGATIVE = (1 << i for i in range(8))
# in_op / mask_op
FILE_OPS = "&|^+-*/%"
FILE_OPS_MASK, FILE_OPSIGNED, FILE_OPINVERSE, FILE_OPINDIRECT = 0x07, 0x20, 0x40, 0x80
# str_flags
(STRING_COMPACT_WHITESPACE, STRING_COMPACT_OPTIONAL_WHITESPACE, STRING_IGNORE_LOWERCASE, STRING_IGNORE_UPPERCASE,
 REGEX_OFFSET_START, STRING_TEXTTEST, STRING_BINTEST, PSTRING_1, PSTRING_2_BE, PSTRING_2_LE, PSTRING_4_BE,
 PSTRING_4_LE, PSTRING_LENGTH_INCLUDES_ITSELF, STRING_TRIM, STRING_FULL_WORD) = (1 << i for i in range(15))
REGEX_LINE_COUNT = PSTRING_4_LE
STRING_IGNORE_CASE = STRING_IGNORE_LOWERCASE | STRING_IGNORE_UPPERCASE
# cond
COND_NONE, COND_IF, COND_ELIF, COND_ELSE = range(4)

#: file.h's FILE_* type numbers -> names (as magic(5) spells them)
TYPE_NAMES = (
    "invalid", "byte", "short", "default", "long", "string", "date", "beshort", "belong", "bedate", "leshort",
    "lelong", "ledate", "pstring", "ldate", "beldate", "leldate", "regex", "bestring16", "lestring16", "search",
    "medate", "meldate", "melong", "quad", "lequad", "bequad", "qdate", "leqdate", "beqdate", "qldate",
    "leqldate", "beqldate", "float", "befloat", "lefloat", "double", "bedouble", "ledouble", "beid3", "leid3",
    "indirect", "qwdate", "leqwdate", "beqwdate", "name", "use", "clear", "der", "guid", "offset", "bevarint",
    "levarint", "msdosdate", "lemsdosdate", "bemsdosdate", "msdostime", "lemsdostime", "bemsdostime", "octal",
)
T = {name: i for i, name in enumerate(TYPE_NAMES)}
STRING_TYPES = frozenset(T[n] for n in ("string", "pstring", "bestring16", "lestring16", "regex", "search",
                                         "indirect", "name", "use", "octal"))


class MagicDBError(ValueError):
    """The bytes are not a magic database this module reads (names what and where)."""


class Magic(NamedTuple):
    """One ``struct magic`` (upstream field names; ``value`` is the raw VALUETYPE union)."""

    cont_level: int
    flag: int
    factor: int
    reln: int
    vallen: int
    type: int
    in_type: int
    in_op: int
    mask_op: int
    cond: int
    factor_op: int
    offset: int
    in_offset: int
    lineno: int
    num_mask: int  # the union's 64 bits; for string types str_range | str_flags << 32
    value: bytes
    desc: bytes
    mimetype: bytes
    apple: bytes
    ext: bytes

    @property
    def str_range(self) -> int:
        return self.num_mask & 0xFFFFFFFF

    @property
    def str_flags(self) -> int:
        return self.num_mask >> 32

    @property
    def num_value(self) -> int:
        """The value union read as ``uint64_t q``."""
        return int.from_bytes(self.value[:8], "little")

    @property
    def str_value(self) -> bytes:
        """The ``vallen`` bytes of the string value."""
        return self.value[:self.vallen]


def _cstr(b: bytes) -> bytes:
    n = b.find(b"\0")
    return b if n < 0 else b[:n]


def parse(data: bytes, name: str = "magic.mgc") -> tuple[list[Magic], list[Magic]]:
    """The two sets of entries of a compiled database (``apprentice_map``'s checks)."""
    if len(data) < FILE_MAGICSIZE or len(data) % FILE_MAGICSIZE:
        raise MagicDBError(f"{name}: size {len(data)} is not a multiple of {FILE_MAGICSIZE}")
    magic, version, n0, n1 = struct.unpack_from("<IIII", data)
    if magic != MAGICNO:
        if struct.unpack_from(">I", data)[0] == MAGICNO:
            raise MagicDBError(f"{name}: a big-endian magic database (not read)")
        raise MagicDBError(f"{name}: bad magic 0x{magic:08x}")
    if version != VERSIONNO:
        raise MagicDBError(f"{name}: magic file version {version} (only {VERSIONNO}, file 5.44's, is read)")
    if (1 + n0 + n1) * FILE_MAGICSIZE != len(data):
        raise MagicDBError(f"{name}: {n0} + {n1} entries do not fill {len(data)} bytes")
    entries = []
    for f in _ENTRY.iter_unpack(memoryview(data)[FILE_MAGICSIZE:]):
        entries.append(Magic(*f[:16], _cstr(f[16]), _cstr(f[17]), _cstr(f[18]), _cstr(f[19])))
    return entries[:n0], entries[n0:]
