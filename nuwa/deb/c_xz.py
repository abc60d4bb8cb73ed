"""The .xz container's framing, declared once: stream header and footer, index, integers.

Spec: "The .xz File Format" 1.1.0 (xz-utils ``doc/xz-file-format.txt``); section numbers are
cited per structure, field names are the spec's. Only the framing is here, never LZMA2: a
file is Streams (2.1) possibly separated by Stream Padding (2.2, null bytes in multiples of
four); a Stream is a Stream Header, Blocks (3), an Index (4) and a Stream Footer. The Index
records each Block's Unpadded Size (Block Header + Compressed Data + Check, without the Block
Padding) and Uncompressed Size, so a reader of a seekable file finds every Block from the end.

Parsing is pure: functions take bytes and return values or raise :class:`XzFramingError`
(which callers turn into "use the plain decoder", never into an answer).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from construct import Bytes, Const, Int32ul, Struct

#: 2.1.1.1 Header Magic Bytes; 2.1.2.4 Footer Magic Bytes
HEADER_MAGIC = b"\xfd7zXZ\x00"
FOOTER_MAGIC = b"YZ"

# --- 2.1.1 Stream Header (12 bytes) ------------------------------------------------------------
StreamHeader = Struct(
    "header_magic" / Const(HEADER_MAGIC),
    "stream_flags" / Bytes(2),
    "crc32" / Int32ul,  # of stream_flags
)
# --- 2.1.2 Stream Footer (12 bytes) ------------------------------------------------------------
StreamFooter = Struct(
    "crc32" / Int32ul,  # of backward_size and stream_flags
    "backward_size" / Int32ul,  # real Index size = (backward_size + 1) * 4
    "stream_flags" / Bytes(2),
    "footer_magic" / Const(FOOTER_MAGIC),
)
STREAM_HEADER_SIZE = STREAM_FOOTER_SIZE = 12

#: 2.1.1.2: Check ID (low nibble of the second flags byte) -> size of the Check field (3.4)
CHECK_SIZES = (0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64)
#: 1.2: a multibyte integer is at most 9 bytes and below 2^63
VLI_BYTES_MAX = 9
VLI_MAX = (1 << 63) - 1
#: 4: Index Indicator (a Block Header's first byte is never 0x00)
INDEX_INDICATOR = 0x00
#: 4.3.1: the smallest Unpadded Size liblzma accepts (``UNPADDED_SIZE_MIN`` in index.h)
UNPADDED_SIZE_MIN = 5


class XzFramingError(ValueError):
    """The bytes are not the .xz framing this module reads (a reason, not a user error)."""


@dataclass(frozen=True)
class IndexRecord:
    """4.3: one Block as the Index records it."""

    unpadded_size: int
    uncompressed_size: int

    @property
    def total_size(self) -> int:
        """The Block's size in the file: Unpadded Size rounded up to four (Block Padding)."""
        return (self.unpadded_size + 3) & ~3


def check_size(stream_flags: bytes) -> int:
    """The Check size the Stream Flags (2.1.1.2) name; reserved bits set is an error."""
    if len(stream_flags) != 2 or stream_flags[0] != 0 or stream_flags[1] & 0xF0:
        raise XzFramingError(f"unsupported stream flags {stream_flags.hex()}")
    return CHECK_SIZES[stream_flags[1]]


def parse_stream_header(raw: bytes) -> bytes:
    """2.1.1: the Stream Flags of a Stream Header, its magic and CRC32 checked."""
    if len(raw) != STREAM_HEADER_SIZE or raw[:6] != HEADER_MAGIC:
        raise XzFramingError("no stream header magic")
    h = StreamHeader.parse(raw)
    if zlib.crc32(h.stream_flags) != h.crc32:
        raise XzFramingError("stream header CRC32 mismatch")
    check_size(h.stream_flags)
    return h.stream_flags


def build_stream_header(stream_flags: bytes) -> bytes:
    """2.1.1: a Stream Header for ``stream_flags``."""
    return StreamHeader.build(dict(stream_flags=stream_flags, crc32=zlib.crc32(stream_flags)))


def parse_stream_footer(raw: bytes) -> tuple[int, bytes]:
    """2.1.2: (real Index size, Stream Flags) of a Stream Footer, its magic and CRC32 checked."""
    if len(raw) != STREAM_FOOTER_SIZE or raw[10:] != FOOTER_MAGIC:
        raise XzFramingError("no stream footer magic")
    f = StreamFooter.parse(raw)
    if zlib.crc32(raw[4:10]) != f.crc32:
        raise XzFramingError("stream footer CRC32 mismatch")
    check_size(f.stream_flags)
    return (f.backward_size + 1) * 4, f.stream_flags


def build_stream_footer(index_size: int, stream_flags: bytes) -> bytes:
    """2.1.2: a Stream Footer for an Index of ``index_size`` bytes (a multiple of four)."""
    backward = index_size // 4 - 1
    crc = zlib.crc32(backward.to_bytes(4, "little") + stream_flags)
    return StreamFooter.build(dict(crc32=crc, backward_size=backward, stream_flags=stream_flags))


def decode_vli(buf: bytes, pos: int) -> tuple[int, int]:
    """1.2: the multibyte integer at ``pos`` and the position after it."""
    value = 0
    for i in range(VLI_BYTES_MAX):
        if pos + i >= len(buf):
            raise XzFramingError("integer runs past the index")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise XzFramingError("integer not in its shortest form")
            return value, pos + i + 1
    raise XzFramingError("integer longer than nine bytes")


def encode_vli(value: int) -> bytes:
    """1.2: ``value`` as a multibyte integer."""
    if not 0 <= value <= VLI_MAX:
        raise XzFramingError(f"integer {value} out of range")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_index(raw: bytes) -> list[IndexRecord]:
    """4: the records of a whole Index (indicator to CRC32), every rule of the section checked."""
    if len(raw) < 8 or len(raw) % 4 or raw[0] != INDEX_INDICATOR:
        raise XzFramingError("not an index")
    if zlib.crc32(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
        raise XzFramingError("index CRC32 mismatch")
    count, pos = decode_vli(raw, 1)
    if count > (len(raw) - pos) // 2:  # each record takes two bytes at least
        raise XzFramingError("index holds fewer records than it counts")
    records = []
    for _ in range(count):
        unpadded, pos = decode_vli(raw, pos)
        uncompressed, pos = decode_vli(raw, pos)
        if unpadded < UNPADDED_SIZE_MIN or unpadded > VLI_MAX & ~3:
            raise XzFramingError(f"unpadded size {unpadded} out of range")
        records.append(IndexRecord(unpadded, uncompressed))
    padding = raw[pos:-4]
    if len(padding) > 3 or padding.strip(b"\0"):  # 4.4 Index Padding: 0-3 null bytes
        raise XzFramingError("index records do not fill the index")
    return records


def build_index(records: list[IndexRecord]) -> bytes:
    """4: a whole Index holding ``records``."""
    out = bytearray([INDEX_INDICATOR]) + encode_vli(len(records))
    for r in records:
        out += encode_vli(r.unpadded_size) + encode_vli(r.uncompressed_size)
    out += b"\0" * (-len(out) % 4)
    return bytes(out + zlib.crc32(out).to_bytes(4, "little"))
