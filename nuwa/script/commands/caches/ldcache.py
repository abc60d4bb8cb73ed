"""The glibc ``/etc/ld.so.cache`` file: the "new" format (``glibc-ld.so.cache1.1``).

Layout (glibc ``sysdeps/generic/dl-cache.h``, glibc 2.36 as in Debian 12):

- header: ``magic[17] "glibc-ld.so.cache"``, ``version[3] "1.1"``, ``u32 nlibs``,
  ``u32 len_strings``, ``u8 flags`` (2 = little-endian, 3 = big-endian), ``u8 padding[3]``,
  ``u32 extension_offset``, ``u32 unused[3]`` — 48 bytes;
- ``nlibs`` entries ``{i32 flags, u32 key, u32 value, u32 osversion_unused, u64 hwcap}``;
- the string table (string offsets count from the start of the file);
- at ``extension_offset`` (4-aligned): ``{u32 magic 0xeaa42174, u32 count}`` and ``count``
  sections ``{u32 tag, u32 flags, u32 offset, u32 size}``; tag 0 is the generator string.

Every integer is in the byte order of the machine whose ldconfig writes the file
(``cache_file_new_flags_endian_current``): little-endian on amd64, arm64, armhf, i386, ppc64el
and riscv64, big-endian on s390x; the header's flags byte says which.

This module is pure: it encodes and decodes bytes. The order of entries and strings mirrors
``elf/cache.c`` (``compare``, ``save_cache``) and ``elf/stringtable.c`` (tail merging) so the
output is byte-identical to what the image's own ldconfig writes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC_NEW = b"glibc-ld.so.cache1.1"
HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, extension_offset
ENTRY = struct.Struct("<iIIIQ")  # flags, key, value, osversion_unused, hwcap
EXT_MAGIC = 0xEAA42174
EXT_HEADER = struct.Struct("<II")
EXT_SECTION = struct.Struct("<IIII")
EXT_TAG_GENERATOR = 0
FLAGS_ENDIAN_LITTLE = 2
FLAGS_ENDIAN_BIG = 3
#: offset of the header's flags byte (after magic+version, nlibs, len_strings)
_FLAGS_AT = 28


def _structs(big_endian: bool) -> tuple[struct.Struct, struct.Struct, struct.Struct, struct.Struct]:
    """(header, entry, extension header, extension section) in the file's byte order."""
    if not big_endian:
        return HEADER, ENTRY, EXT_HEADER, EXT_SECTION
    return tuple(struct.Struct(">" + x.format[1:]) for x in (HEADER, ENTRY, EXT_HEADER, EXT_SECTION))

# Library flags (dl-cache.h): type in the low byte, required ABI in the next.
FLAG_ELF = 0x0001
FLAG_ELF_LIBC6 = 0x0003
FLAG_S390_LIB64 = 0x0400
FLAG_POWERPC_LIB64 = 0x0500
FLAG_X8664_LIB64 = 0x0300
FLAG_X8664_LIBX32 = 0x0800
FLAG_ARM_LIBHF = 0x0900
FLAG_AARCH64_LIB64 = 0x0A00
FLAG_ARM_LIBSF = 0x0B00
FLAG_RISCV_FLOAT_ABI_SOFT = 0x0F00
FLAG_RISCV_FLOAT_ABI_DOUBLE = 0x1000

# print_entry in elf/cache.c
_FLAG_ABI_NAMES = {0x0300: ",x86-64", 0x0400: ",64bit", 0x0500: ",64bit", 0x0800: ",x32",
                   0x0900: ",hard-float", 0x0A00: ",AArch64", 0x0B00: ",soft-float",
                   0x0F00: ",soft-float", 0x1000: ",double-float"}
_FLAG_TYPE_NAMES = {0: "libc4", 1: "ELF", 2: "libc5", 3: "libc6"}


@dataclass(frozen=True)
class CacheEntry:
    """One library in the cache: ``soname`` is the key, ``path`` where the loader finds it."""

    soname: str
    path: str
    flags: int
    hwcap: int = 0


def libcmp(a: str, b: str) -> int:
    """``_dl_cache_libcmp``: compare names with embedded numbers compared numerically."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la:
        ca = a[i]
        cb = b[j] if j < lb else ""
        if ca.isdigit() and ca.isascii():
            if cb.isdigit() and cb.isascii():
                si = i
                while i < la and a[i].isdigit() and a[i].isascii():
                    i += 1
                sj = j
                while j < lb and b[j].isdigit() and b[j].isascii():
                    j += 1
                va, vb = int(a[si:i]), int(b[sj:j])
                if va != vb:
                    return va - vb
                continue
            return 1
        if cb.isdigit() and cb.isascii():
            return -1
        if ca != cb:
            return ord(ca) - (ord(cb) if cb else 0)
        i += 1
        j += 1
    return 0 - (ord(b[j]) if j < lb else 0)


def _entry_compare(e1: CacheEntry, e2: CacheEntry) -> int:
    """``compare`` in elf/cache.c (entries without glibc-hwcaps subdirectories)."""
    res = libcmp(e2.soname, e1.soname)  # swapped on purpose, as upstream
    if res == 0:
        if e1.flags != e2.flags:
            return 1 if e1.flags < e2.flags else -1
        b1, b2 = bin(e1.hwcap).count("1"), bin(e2.hwcap).count("1")
        if b2 != b1:
            return 1 if b2 > b1 else -1
        if e2.hwcap != e1.hwcap:
            return 1 if e2.hwcap > e1.hwcap else -1
    return res


def sorted_entries(entries: list[CacheEntry]) -> list[CacheEntry]:
    """Insert each entry as ``add_to_cache`` does: before the first entry comparing greater."""
    out: list[CacheEntry] = []
    for new in entries:
        pos = len(out)
        for k, cur in enumerate(out):
            if _entry_compare(cur, new) > 0:
                pos = k
                break
        out.insert(pos, new)
    return out


def _finalize_strings(strings: list[str]) -> tuple[bytes, dict[str, int]]:
    """``stringtable_finalize``: sort reversed strings descending, share suffixes."""
    import functools

    raw = {s: s.encode("utf-8", "surrogateescape") for s in strings}

    def cmp(l_: bytes, r_: bytes) -> int:
        n = min(len(l_), len(r_))
        for i in range(1, n + 1):
            lc, rc = l_[-i], r_[-i]
            if lc != rc:
                return rc - lc
        if len(l_) == len(r_):
            return 0
        return 1 if len(l_) < len(r_) else -1

    order = sorted(set(raw.values()), key=functools.cmp_to_key(cmp))
    offsets: dict[bytes, int] = {}
    if order:
        offsets[order[0]] = 0
        for prev, cur in zip(order, order[1:]):
            if len(prev) >= len(cur) and prev.endswith(cur):
                offsets[cur] = offsets[prev] + len(prev) - len(cur)
            else:
                offsets[cur] = offsets[prev] + len(prev) + 1
        size = offsets[order[-1]] + len(order[-1]) + 1
    else:
        size = 0
    table = bytearray(size)
    for b, off in offsets.items():
        if table[off] == 0:
            table[off : off + len(b)] = b
    return bytes(table), {s: offsets[b] for s, b in raw.items()}


def encode_cache(entries: list[CacheEntry], generator: str, big_endian: bool = False) -> bytes:
    """The bytes ``save_cache`` writes for ``entries`` (already in cache order), in the byte
    order of the machine whose ldconfig writes them."""
    header, entry, ext_header, ext_section = _structs(big_endian)
    strings = []
    for e in entries:
        strings += [e.soname, e.path]
    table, offs = _finalize_strings(strings)
    str_offset = header.size + entry.size * len(entries)
    ext_offset = (str_offset + len(table) + 3) & ~3
    endian = FLAGS_ENDIAN_BIG if big_endian else FLAGS_ENDIAN_LITTLE
    out = bytearray(header.pack(MAGIC_NEW, len(entries), len(table), endian, ext_offset))
    for e in entries:
        out += entry.pack(e.flags, str_offset + offs[e.soname], str_offset + offs[e.path], 0, e.hwcap)
    out += table
    out += bytes(ext_offset - len(out))
    gen = generator.encode()
    gen_offset = ext_offset + ext_header.size + ext_section.size
    out += ext_header.pack(EXT_MAGIC, 1) + ext_section.pack(EXT_TAG_GENERATOR, 0, gen_offset, len(gen))
    out += gen
    return bytes(out)


def decode_cache(data: bytes) -> tuple[list[CacheEntry], str | None]:
    """Entries and generator string of a new-format cache; ``ValueError`` if malformed."""
    if len(data) < HEADER.size or not data.startswith(MAGIC_NEW):
        raise ValueError("File is not a cache file.")
    HEADER_, ENTRY_, EXT_HEADER_, EXT_SECTION_ = _structs(data[_FLAGS_AT] == FLAGS_ENDIAN_BIG)
    _magic, nlibs, _len, _flags, ext_off = HEADER_.unpack_from(data)
    if HEADER.size + nlibs * ENTRY.size > len(data):
        raise ValueError("File is not a cache file.")

    def cstr(off: int) -> str:
        end = data.find(b"\0", off)
        if off >= len(data) or end < 0:
            raise ValueError("File is not a cache file.")
        return data[off:end].decode("utf-8", "surrogateescape")

    entries = []
    for i in range(nlibs):
        flags, key, value, _os, hwcap = ENTRY_.unpack_from(data, HEADER.size + i * ENTRY.size)
        entries.append(CacheEntry(cstr(key), cstr(value), flags, hwcap))
    generator = None
    if ext_off and ext_off + EXT_HEADER.size <= len(data):
        magic, count = EXT_HEADER_.unpack_from(data, ext_off)
        if magic == EXT_MAGIC:
            for k in range(min(count, 16)):
                pos = ext_off + EXT_HEADER.size + k * EXT_SECTION.size
                if pos + EXT_SECTION.size > len(data):
                    break
                tag, _f, off, size = EXT_SECTION_.unpack_from(data, pos)
                if tag == EXT_TAG_GENERATOR and off + size <= len(data):
                    generator = data[off : off + size].decode("utf-8", "replace")
    return entries, generator


def describe_flags(flags: int) -> str:
    """The "(libc6,x86-64)" part of ``ldconfig -p`` output."""
    kind = _FLAG_TYPE_NAMES.get(flags & 0xFF, "unknown")
    abi = flags & 0xFF00
    return kind + (_FLAG_ABI_NAMES.get(abi, f",{abi}") if abi else "")


def print_cache(data: bytes, name: str) -> str:
    """What ``ldconfig -p`` prints for a new-format cache file."""
    entries, generator = decode_cache(data)
    lines = [f"{len(entries)} libs found in cache `{name}'"]
    for e in entries:
        hw = f", hwcap: {e.hwcap:#018x}" if e.hwcap else ""
        lines.append(f"\t{e.soname} ({describe_flags(e.flags)}{hw}) => {e.path}")
    if generator is not None:
        lines.append(f"Cache generated by: {generator}")
    return "\n".join(lines) + "\n"
