"""jbd2 (the ext3/ext4 journal) on-disk layout and checksums, declared once.

Layout only: constants, big-endian structures with the upstream C field names (kernel
``include/linux/jbd2.h``), encoders/decoders for the open-coded block types, and the pure
checksum functions. Spec: kernel Documentation/filesystems/ext4/journal.rst; the recovery
logic that reads these lives in :mod:`nuwa.fs.ext4.jbd2`. FORMAT-NOTES B2.11.

**Every jbd2 number is big-endian** (unlike the rest of ext4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from nuwa.fs.ext4 import crc as _crc32c  # the C extension alone (see crc.py)
from nuwa.fs.ext4.c_ext4 import Layout

JBD2_MAGIC_NUMBER = 0xC03B3998

# h_blocktype (journal.rst "Block Header")
JBD2_DESCRIPTOR_BLOCK = 1
JBD2_COMMIT_BLOCK = 2
JBD2_SUPERBLOCK_V1 = 3
JBD2_SUPERBLOCK_V2 = 4
JBD2_REVOKE_BLOCK = 5
JBD2_FC_BLOCK = 6  # fast-commit blocks (no common header in practice; recognised, never replayed)

# s_feature_compat / incompat (journal.rst "Super Block")
JBD2_FEATURE_COMPAT_CHECKSUM = 0x1
JBD2_FEATURE_INCOMPAT_REVOKE = 0x1
JBD2_FEATURE_INCOMPAT_64BIT = 0x2
JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x4
JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x8
JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x10
JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x20
JBD2_KNOWN_COMPAT = JBD2_FEATURE_COMPAT_CHECKSUM
JBD2_KNOWN_INCOMPAT = (
    JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT
    | JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_FAST_COMMIT
)
INCOMPAT_NAMES = {
    JBD2_FEATURE_INCOMPAT_REVOKE: "journal_incompat_revoke",
    JBD2_FEATURE_INCOMPAT_64BIT: "journal_64bit",
    JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT: "journal_async_commit",
    JBD2_FEATURE_INCOMPAT_CSUM_V2: "journal_checksum_v2",
    JBD2_FEATURE_INCOMPAT_CSUM_V3: "journal_checksum_v3",
    JBD2_FEATURE_INCOMPAT_FAST_COMMIT: "journal_fast_commit",
}

# s_checksum_type / h_chksum_type
JBD2_CRC32_CHKSUM = 1
JBD2_MD5_CHKSUM = 2
JBD2_SHA1_CHKSUM = 3
JBD2_CRC32C_CHKSUM = 4
JBD2_CRC32_CHKSUM_SIZE = 4

# tag t_flags (journal.rst "jbd2_tag_flags")
JBD2_FLAG_ESCAPE = 0x1
JBD2_FLAG_SAME_UUID = 0x2
JBD2_FLAG_DELETED = 0x4
JBD2_FLAG_LAST_TAG = 0x8

#: default size of the fast-commit area when ``s_num_fc_blks`` is 0 (jbd2.h JBD2_DEFAULT_FAST_COMMIT_BLOCKS)
JBD2_DEFAULT_FAST_COMMIT_BLOCKS = 256
#: ext4 fast-commit TLV tag that opens a fast-commit area (fs/ext4/fast_commit.h EXT4_FC_TAG_HEAD)
EXT4_FC_TAG_HEAD = 0x0009

JOURNAL_HEADER_SIZE = 12
JOURNAL_SUPERBLOCK_SIZE = 1024
#: struct jbd2_journal_block_tail / jbd2_journal_revoke_tail: one be32 at the block end
JBD2_TAIL_SIZE = 4
UUID_SIZE = 16


def BELayout(cname: str, fields: list[tuple[str, str]], size: int | None = None) -> Layout:
    """A named big-endian C structure (jbd2 is big-endian): ext4's :class:`Layout` with ``>``."""
    return Layout(cname, fields, size, order=">")


JOURNAL_HEADER = BELayout(
    "journal_header_t", [("h_magic", "I"), ("h_blocktype", "I"), ("h_sequence", "I")], JOURNAL_HEADER_SIZE
)

# journal.rst "Super Block": struct journal_superblock_s (1024 bytes); 0x54.. as in jbd2.h since 5.10
JOURNAL_SUPERBLOCK = BELayout(
    "journal_superblock_t",
    [
        ("h_magic", "I"), ("h_blocktype", "I"), ("h_sequence", "I"),
        ("s_blocksize", "I"), ("s_maxlen", "I"), ("s_first", "I"),
        ("s_sequence", "I"), ("s_start", "I"), ("s_errno", "i"),
        ("s_feature_compat", "I"), ("s_feature_incompat", "I"), ("s_feature_ro_compat", "I"),
        ("s_uuid", "16s"), ("s_nr_users", "I"), ("s_dynsuper", "I"),
        ("s_max_transaction", "I"), ("s_max_trans_data", "I"),
        ("s_checksum_type", "B"), ("s_padding2", "3s"),
        ("s_num_fc_blks", "I"), ("s_head", "I"), ("s_padding", "160s"),
        ("s_checksum", "I"), ("s_users", "768s"),
    ],
    JOURNAL_SUPERBLOCK_SIZE,
)
S_CHECKSUM_OFFSET = JOURNAL_SUPERBLOCK.offsets["s_checksum"]  # 0xFC

# journal.rst "Commit Block": struct commit_header (the block is zero-filled beyond 0x3C)
COMMIT_HEADER = BELayout(
    "commit_header",
    [
        ("h_magic", "I"), ("h_blocktype", "I"), ("h_sequence", "I"),
        ("h_chksum_type", "B"), ("h_chksum_size", "B"), ("h_padding", "2s"),
        ("h_chksum", "32s"), ("h_commit_sec", "Q"), ("h_commit_nsec", "I"),
    ],
    0x3C,
)
H_CHKSUM_OFFSET = COMMIT_HEADER.offsets["h_chksum"]  # 0x10

# journal.rst "Revocation Block": jbd2_journal_revoke_header_t
REVOKE_HEADER = BELayout(
    "jbd2_journal_revoke_header_t",
    [("h_magic", "I"), ("h_blocktype", "I"), ("h_sequence", "I"), ("r_count", "I")],
    16,
)

# Tags are open-coded; both forms keep the low 16 flag bits at byte 6 (be16), which is why
# the kernel reads ``t_flags`` through the old struct even for tag3.
_TAG3 = struct.Struct(">IIII")  # journal_block_tag3_t: t_blocknr, t_flags, t_blocknr_high, t_checksum
_TAG = struct.Struct(">IHHI")  # journal_block_tag_t: t_blocknr, t_checksum(16), t_flags, t_blocknr_high


def tag_bytes(incompat: int) -> int:
    """Size of one descriptor tag without its UUID (kernel ``journal_tag_bytes``).

    csum v3 tags are always 16 bytes; otherwise 12 with 64bit, 8 without, plus 2 unused
    bytes when csum v2 is on (a wart of the v2 format kept for compatibility).
    """
    if incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3:
        return _TAG3.size
    size = _TAG.size
    if incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2:
        size += 2
    if incompat & JBD2_FEATURE_INCOMPAT_64BIT:
        return size
    return size - 4


def has_csum_v2or3(incompat: int) -> bool:
    """Whether per-block crc32c checksums (descriptor/revoke tails, tags, commit) are on."""
    return bool(incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3))


@dataclass(frozen=True)
class BlockTag:
    """One decoded descriptor tag: where the next journal data block belongs."""

    blocknr: int
    flags: int
    checksum: int
    uuid: bytes | None = None  # present only without JBD2_FLAG_SAME_UUID


def parse_tags(block: bytes, incompat: int) -> list[BlockTag]:
    """The tags of a descriptor block (kernel ``count_tags``/``do_one_pass`` tag walk).

    Walks from byte 12 while a whole tag fits before the checksum tail, stopping after the
    tag flagged LAST_TAG. The 64-bit high word is used only with the 64BIT feature.
    """
    size = len(block) - (JBD2_TAIL_SIZE if has_csum_v2or3(incompat) else 0)
    tb = tag_bytes(incompat)
    v3 = bool(incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)
    wide = bool(incompat & JBD2_FEATURE_INCOMPAT_64BIT)
    tags: list[BlockTag] = []
    pos = JOURNAL_HEADER_SIZE
    while pos + tb <= size:
        if v3:
            lo, flags, hi, csum = _TAG3.unpack_from(block, pos)
            flags &= 0xFFFF
        else:
            raw = block[pos : pos + 12].ljust(12, b"\0")
            lo, csum, flags, hi = _TAG.unpack(raw)
        blocknr = lo | (hi << 32 if wide else 0)
        pos += tb
        uuid = None
        if not flags & JBD2_FLAG_SAME_UUID:
            uuid = bytes(block[pos : pos + UUID_SIZE])
            pos += UUID_SIZE
        tags.append(BlockTag(blocknr, flags, csum, uuid))
        if flags & JBD2_FLAG_LAST_TAG:
            break
    return tags


def build_tag(tag: BlockTag, incompat: int) -> bytes:
    """Encode one tag (and its UUID unless SAME_UUID) in the journal's tag format."""
    lo, hi = tag.blocknr & 0xFFFFFFFF, tag.blocknr >> 32
    if incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3:
        raw = _TAG3.pack(lo, tag.flags, hi, tag.checksum & 0xFFFFFFFF)
    else:
        raw = _TAG.pack(lo, tag.checksum & 0xFFFF, tag.flags, hi)
        raw = raw.ljust(tag_bytes(incompat), b"\0")[: tag_bytes(incompat)]
    if not tag.flags & JBD2_FLAG_SAME_UUID:
        raw += (tag.uuid or bytes(UUID_SIZE)).ljust(UUID_SIZE, b"\0")[:UUID_SIZE]
    return raw


def parse_revoke_records(block: bytes, incompat: int) -> list[int] | None:
    """Block numbers revoked by a revoke block, or None if ``r_count`` overruns the block.

    ``r_count`` counts bytes used including the 16-byte header (kernel ``scan_revoke_records``).
    """
    r_count = REVOKE_HEADER.unpack(block)["r_count"]
    limit = len(block) - (JBD2_TAIL_SIZE if has_csum_v2or3(incompat) else 0)
    if r_count > limit:
        return None
    rec = 8 if incompat & JBD2_FEATURE_INCOMPAT_64BIT else 4
    fmt = ">Q" if rec == 8 else ">I"
    return [struct.unpack_from(fmt, block, off)[0] for off in range(16, r_count - rec + 1, rec)]


def build_revoke_block(sequence: int, blocks: list[int], incompat: int, blocksize: int) -> bytearray:
    """A revoke block (without its checksum tail filled in)."""
    rec = 8 if incompat & JBD2_FEATURE_INCOMPAT_64BIT else 4
    fmt = ">Q" if rec == 8 else ">I"
    body = b"".join(struct.pack(fmt, b) for b in blocks)
    buf = bytearray(blocksize)
    hdr = {"h_magic": JBD2_MAGIC_NUMBER, "h_blocktype": JBD2_REVOKE_BLOCK, "h_sequence": sequence,
           "r_count": 16 + len(body)}
    buf[0:16] = REVOKE_HEADER.pack(hdr)
    buf[16 : 16 + len(body)] = body
    return buf


# ---- checksums ----------------------------------------------------------------------------


def crc32c_raw(seed: int, data) -> int:
    """The kernel's raw crc32c register update (no final inversion; FORMAT-NOTES B0)."""
    return ~_crc32c.crc32c(bytes(data), ~seed & 0xFFFFFFFF) & 0xFFFFFFFF


def _crc32_be_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        table.append(c & 0xFFFFFFFF)
    return table


_CRC32_BE = _crc32_be_table()


def crc32_be(crc: int, data) -> int:
    """Linux ``crc32_be``: MSB-first CRC-32 (poly 0x04C11DB7), no inversion (JBD2 COMPAT_CHECKSUM)."""
    t = _CRC32_BE
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ t[(crc >> 24) ^ b]
    return crc


def journal_csum_seed(uuid: bytes) -> int:
    """``j_csum_seed``: crc32c of the journal UUID from ~0 (kernel ``load_superblock``)."""
    return crc32c_raw(0xFFFFFFFF, uuid)


def superblock_csum(sb: bytes) -> int:
    """``s_checksum``: crc32c from ~0 over the 1024-byte superblock with the field zeroed."""
    buf = bytearray(sb[:JOURNAL_SUPERBLOCK_SIZE])
    buf[S_CHECKSUM_OFFSET : S_CHECKSUM_OFFSET + 4] = bytes(4)
    return crc32c_raw(0xFFFFFFFF, buf)


def block_tail_csum(seed: int, block: bytes) -> int:
    """Descriptor/revoke tail checksum: whole block with the final be32 zeroed."""
    buf = bytearray(block)
    buf[-JBD2_TAIL_SIZE:] = bytes(JBD2_TAIL_SIZE)
    return crc32c_raw(seed, buf)


def commit_csum(seed: int, block: bytes) -> int:
    """Commit-block checksum (v2/v3): whole block with ``h_chksum[0]`` zeroed."""
    buf = bytearray(block)
    buf[H_CHKSUM_OFFSET : H_CHKSUM_OFFSET + 4] = bytes(4)
    return crc32c_raw(seed, buf)


def data_tag_csum(seed: int, sequence: int, data: bytes) -> int:
    """Tag checksum of a journalled data block: crc32c(seed, be32 sequence, data).

    csum v3 stores all 32 bits, v2 only the low 16 (kernel ``jbd2_block_tag_csum_verify``).
    """
    return crc32c_raw(crc32c_raw(seed, struct.pack(">I", sequence)), data)


def tag_csum_matches(incompat: int, stored: int, computed: int) -> bool:
    """Compare a stored tag checksum with a computed 32-bit one for this journal's format."""
    if incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3:
        return stored == computed
    return stored == computed & 0xFFFF
