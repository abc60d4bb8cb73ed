"""The ``ar`` container of a .deb: layout, member headers, bounded member readers.

Layout (deb(5), ar(5); dpkg ``lib/dpkg/ar.h`` ``struct dpkg_ar_hdr``): the global magic
``!<arch>\\n``, then for each member a 60-byte ASCII header followed by the member's data,
padded with one ``\\n`` to an even offset. Numbers are decimal (mode: octal) padded with
spaces. GNU ar ends names with ``/``; dpkg accepts and strips it.

Parsing is pure (:func:`parse_header`); :class:`ArReader` walks a seekable binary file and
hands out :class:`MemberReader` objects that can never read past their member.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import construct as cs

from nuwa.errors import InvalidInputError

#: ar(5) global header
AR_MAGIC = b"!<arch>\n"
#: ``ar_fmag``: the two bytes ending each member header
AR_FMAG = b"`\n"

# struct dpkg_ar_hdr (dpkg lib/dpkg/ar.h; ar(5)): all fields are space-padded ASCII.
dpkg_ar_hdr = cs.Struct(
    "ar_name" / cs.Bytes(16),
    "ar_date" / cs.Bytes(12),
    "ar_uid" / cs.Bytes(6),
    "ar_gid" / cs.Bytes(6),
    "ar_mode" / cs.Bytes(8),
    "ar_size" / cs.Bytes(10),
    "ar_fmag" / cs.Bytes(2),
)
AR_HDR_SIZE = dpkg_ar_hdr.sizeof()  # 60


@dataclass(frozen=True)
class ArMember:
    """One member header, decoded, with the offset of its data in the container."""

    name: str
    date: int
    uid: int
    gid: int
    mode: int
    size: int
    offset: int  # of the member data
    header_offset: int


def _num(raw: bytes, base: int, field: str, where: str) -> int:
    text = raw.decode("ascii", "replace").strip()
    if text == "":
        return 0
    try:
        value = int(text, base)
    except ValueError:
        raise InvalidInputError(f"ar member header field {field} is not a number ({text!r})", where=where) from None
    if value < 0:
        raise InvalidInputError(f"ar member header field {field} is negative", where=where)
    return value


def parse_header(raw: bytes, offset: int, where: str) -> ArMember:
    """Decode one 60-byte member header found at ``offset`` (pure)."""
    at = f"{where}: ar header @{offset:#x}"
    if len(raw) != AR_HDR_SIZE:
        raise InvalidInputError(f"truncated ar member header ({len(raw)} of {AR_HDR_SIZE} bytes)", where=at)
    h = dpkg_ar_hdr.parse(raw)
    if h.ar_fmag != AR_FMAG:
        raise InvalidInputError(f"bad ar_fmag {h.ar_fmag!r} (expected {AR_FMAG!r})", where=at)
    name = h.ar_name.decode("ascii", "replace").rstrip(" ")
    if name.endswith("/"):  # GNU ar terminator (dpkg dpkg_ar_normalize_name)
        name = name[:-1]
    return ArMember(
        name=name,
        date=_num(h.ar_date, 10, "ar_date", at),
        uid=_num(h.ar_uid, 10, "ar_uid", at),
        gid=_num(h.ar_gid, 10, "ar_gid", at),
        mode=_num(h.ar_mode, 8, "ar_mode", at),
        size=_num(h.ar_size, 10, "ar_size", at),
        offset=offset + AR_HDR_SIZE,
        header_offset=offset,
    )


def build_header(name: str, size: int, date: int = 0, uid: int = 0, gid: int = 0, mode: int = 0o100644) -> bytes:
    """Encode a member header (used by tests to make deliberately odd archives)."""
    def f(v: str, n: int) -> bytes:
        b = v.encode("ascii")
        if len(b) > n:
            raise InvalidInputError(f"ar field too long: {v!r}")
        return b.ljust(n, b" ")

    return dpkg_ar_hdr.build(dict(
        ar_name=f(name, 16), ar_date=f(str(date), 12), ar_uid=f(str(uid), 6), ar_gid=f(str(gid), 6),
        ar_mode=f(f"{mode:o}", 8), ar_size=f(str(size), 10), ar_fmag=AR_FMAG,
    ))


def build_archive(members: list[tuple[str, bytes]]) -> bytes:
    """A whole ar archive from ``(name, data)`` pairs (tests and fixtures)."""
    out = bytearray(AR_MAGIC)
    for name, data in members:
        out += build_header(name, len(data)) + data
        if len(data) % 2:
            out += b"\n"
    return bytes(out)


class MemberReader(io.RawIOBase):
    """A read-only stream over one member's data; reading past the member is impossible.

    A short read from the underlying file (the container is truncated) raises
    InvalidInputError naming the member and offset instead of returning a silent EOF.
    """

    def __init__(self, f: BinaryIO, member: ArMember, where: str):
        self._f = f
        self._m = member
        self._pos = 0
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._m.size - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._m.offset + self._pos)
        data = self._f.read(n)
        if len(data) < n:
            raise InvalidInputError(
                f"ar member {self._m.name!r} is truncated: {self._m.size} bytes declared, "
                f"file ends at {self._m.offset + self._pos + len(data):#x}", where=self._where)
        b[:n] = data
        self._pos += n
        return n


class ArReader:
    """Walk the members of an ar archive in a seekable binary file."""

    def __init__(self, f: BinaryIO, where: str):
        self.f = f
        self.where = where
        f.seek(0, io.SEEK_END)
        self.file_size = f.tell()
        f.seek(0)
        magic = f.read(len(AR_MAGIC))
        if magic != AR_MAGIC:
            raise InvalidInputError(f"bad ar magic {magic!r} (expected {AR_MAGIC!r}): not a .deb archive", where=f"{where} @0x0")

    def members(self) -> Iterator[ArMember]:
        """Member headers in file order (data is not read)."""
        off = len(AR_MAGIC)
        while off < self.file_size:
            self.f.seek(off)
            raw = self.f.read(AR_HDR_SIZE)
            if len(raw) == 1 and raw == b"\n":  # trailing pad byte of the last member
                return
            m = parse_header(raw, off, self.where)
            if m.offset + m.size > self.file_size:
                raise InvalidInputError(
                    f"ar member {m.name!r} is truncated: {m.size} bytes declared at {m.offset:#x}, "
                    f"file has {self.file_size} bytes", where=self.where)
            yield m
            off = m.offset + m.size + (m.size & 1)

    def open(self, member: ArMember) -> io.BufferedReader:
        """A buffered stream over ``member``'s data."""
        return io.BufferedReader(MemberReader(self.f, member, self.where), buffer_size=1 << 16)

    def read(self, member: ArMember, limit: int) -> bytes:
        """All of ``member``'s data, refusing members larger than ``limit`` bytes."""
        if member.size > limit:
            raise InvalidInputError(f"ar member {member.name!r} is {member.size} bytes (limit {limit})", where=self.where)
        return self.open(member).read()
