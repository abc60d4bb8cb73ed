"""A test-side jbd2 log writer: puts hand-built transactions into the journal of a real image.

Used only to produce inputs for differential tests: whatever it writes is replayed both by
e2fsck (``e2fsck -E journal_only``, the kernel's recovery.c) and by Nuwa, and the two
results are compared byte for byte. It does not decide what the right answer is.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from judges import run, tool
from nuwa.fs.ext4 import jbd2_layout as L


@dataclass
class Txn:
    """One transaction: home blocks with their contents, revokes, and how it ends."""

    blocks: list[tuple[int, bytes]] = field(default_factory=list)
    revokes: list[int] = field(default_factory=list)
    commit: bool = True
    corrupt_commit: bool = False  # flip a byte of the commit block after checksumming
    corrupt_tag: int | None = None  # index of a data block whose tag checksum is made wrong
    commit_sec: int = 1_700_000_000


def journal_blocks(image: str) -> list[int]:
    """Physical block of each journal block, by debugfs (``stat <8>``: indirect blocks skipped)."""
    tool("debugfs")
    from fixtures import gen

    return gen.inode_blocks(image, 8)


def write_log(
    image: str,
    bs: int,
    txns: list[Txn],
    *,
    incompat: int = L.JBD2_FEATURE_INCOMPAT_REVOKE,
    compat: int = 0,
    sequence: int = 1,
    start: int | None = None,
    tags_per_descriptor: int | None = None,
    set_needs_recovery: bool = True,
) -> None:
    """Write ``txns`` into the journal of ``image`` starting at log block ``start`` (default s_first)."""
    jb = journal_blocks(image)
    fd = os.open(image, os.O_RDWR)
    try:
        sbraw = bytearray(os.pread(fd, 1024, jb[0] * bs))
        sb = L.JOURNAL_SUPERBLOCK.unpack(sbraw)
        first, last = sb["s_first"], sb["s_maxlen"]
        sb.update(h_blocktype=L.JBD2_SUPERBLOCK_V2, s_feature_incompat=incompat, s_feature_compat=compat,
                  s_sequence=sequence, s_start=start or first)
        if L.has_csum_v2or3(incompat):
            sb["s_checksum_type"] = L.JBD2_CRC32C_CHKSUM
        seed = L.journal_csum_seed(sb["s_uuid"])
        pos = start or first

        def put(block: bytes) -> None:
            nonlocal pos
            assert len(block) == bs
            os.pwrite(fd, bytes(block), jb[pos] * bs)
            pos += 1
            if pos >= last:
                pos = first

        tb = L.tag_bytes(incompat)
        tail = L.JBD2_TAIL_SIZE if L.has_csum_v2or3(incompat) else 0
        for tid_off, t in enumerate(txns):
            tid = (sequence + tid_off) & 0xFFFFFFFF
            crc = 0xFFFFFFFF
            todo = list(enumerate(t.blocks))
            while todo:
                desc = bytearray(bs)
                desc[0:12] = L.JOURNAL_HEADER.pack({"h_magic": L.JBD2_MAGIC_NUMBER,
                                                    "h_blocktype": L.JBD2_DESCRIPTOR_BLOCK, "h_sequence": tid})
                off = 12
                batch = []
                while todo:
                    i, (blocknr, data) = todo[0]
                    data = bytes(data).ljust(bs, b"\0")[:bs]
                    escaped = data[:4] == struct.pack(">I", L.JBD2_MAGIC_NUMBER)
                    flags = (L.JBD2_FLAG_ESCAPE if escaped else 0) | (L.JBD2_FLAG_SAME_UUID if batch else 0)
                    csum = L.data_tag_csum(seed, tid, data) if L.has_csum_v2or3(incompat) else 0
                    if t.corrupt_tag == i:
                        csum ^= 0x5A5A
                    todo.pop(0)
                    after = off + tb + (0 if batch else L.UUID_SIZE)
                    full = after + tb > bs - tail or (tags_per_descriptor and len(batch) + 1 >= tags_per_descriptor)
                    if not todo or full:
                        flags |= L.JBD2_FLAG_LAST_TAG
                    raw = L.build_tag(L.BlockTag(blocknr, flags, csum, None if batch else sb["s_uuid"]), incompat)
                    desc[off : off + len(raw)] = raw
                    off += len(raw)
                    batch.append(bytes(4) + data[4:] if escaped else data)
                    if flags & L.JBD2_FLAG_LAST_TAG:
                        break
                if tail:
                    struct.pack_into(">I", desc, bs - 4, L.block_tail_csum(seed, desc))
                crc = L.crc32_be(crc, desc)
                put(desc)
                for d in batch:
                    crc = L.crc32_be(crc, d)
                    put(d)
            if t.revokes:
                rec = 8 if incompat & L.JBD2_FEATURE_INCOMPAT_64BIT else 4
                per = (bs - 16 - tail) // rec
                for k in range(0, len(t.revokes), per):
                    rb = L.build_revoke_block(tid, t.revokes[k : k + per], incompat, bs)
                    if tail:
                        struct.pack_into(">I", rb, bs - 4, L.block_tail_csum(seed, rb))
                    put(rb)
            if not t.commit:
                break
            cb = bytearray(bs)
            ch = {"h_magic": L.JBD2_MAGIC_NUMBER, "h_blocktype": L.JBD2_COMMIT_BLOCK, "h_sequence": tid,
                  "h_chksum_type": 0, "h_chksum_size": 0, "h_padding": b"\0\0", "h_chksum": bytes(32),
                  "h_commit_sec": t.commit_sec, "h_commit_nsec": 0}
            if compat & L.JBD2_FEATURE_COMPAT_CHECKSUM:
                ch.update(h_chksum_type=L.JBD2_CRC32_CHKSUM, h_chksum_size=4, h_chksum=struct.pack(">I", crc).ljust(32, b"\0"))
            cb[: L.COMMIT_HEADER.size] = L.COMMIT_HEADER.pack(ch)
            if L.has_csum_v2or3(incompat):
                struct.pack_into(">I", cb, L.H_CHKSUM_OFFSET, L.commit_csum(seed, cb))
            if t.corrupt_commit:
                cb[0x40] ^= 0xFF
            put(cb)
        # A terminator so that a stale block after the log cannot extend it.
        put(bytes(bs))
        newsb = bytearray(L.JOURNAL_SUPERBLOCK.pack(sb))
        if L.has_csum_v2or3(incompat):
            struct.pack_into(">I", newsb, L.S_CHECKSUM_OFFSET, L.superblock_csum(newsb))
        os.pwrite(fd, bytes(newsb), jb[0] * bs)
    finally:
        os.close(fd)
    if set_needs_recovery:
        set_recover_flag(image)


def set_recover_flag(image: str) -> None:
    """Set needs_recovery in the ext4 superblock (debugfs ``feature needs_recovery``)."""
    run([tool("debugfs"), "-w", "-R", "feature needs_recovery", image])
