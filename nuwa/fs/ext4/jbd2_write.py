"""Crash-atomic writing: a run's changes to blocks in use become one jbd2 transaction.

The reading side (:mod:`nuwa.fs.ext4.jbd2`) replays what the kernel wrote; this module writes
transactions that the kernel, e2fsck and Nuwa's own replay all accept. The rule it keeps
(DESIGN rule 3): until the commit block is on disk, the filesystem is the BEFORE state; from
then on, every reader replays it to the AFTER state.

- :class:`StagedDevice` sits between the ext4 volume and the real device. A write to a block
  that was **free** in the before-state (the on-disk bitmaps at open) goes straight to the
  device: nothing in the before-state refers to it (new file data, new tree and directory
  blocks). A write to a block **in use** before (superblock, descriptors, bitmaps, inode
  tables, directory and extent blocks, data overwritten in place, backup superblocks) is held
  in memory; reads see it. The allocator never hands out a block in use before (see
  :class:`nuwa.fs.ext4.alloc.Allocator`), as jbd2 keeps blocks freed by a running transaction
  from reuse until it commits, so a block freed and reused in one run is never overwritten
  before the commit.
- :class:`JournalWriter` writes the held blocks as one transaction into the (empty) log, in
  the order of kernel ``jbd2_journal_commit_transaction``: descriptor blocks (tags in the
  journal's format: 32/64-bit, csum v2/v3 tag checksums, escaping of blocks that begin with
  the jbd2 magic, the UUID after each descriptor's first tag, LAST_TAG) and the block copies;
  the ext4 superblock's needs_recovery flag; a flush; the journal superblock's ``s_start``
  and the commit block (crc32c over the block with v2/v3); a flush. Then it checkpoints: every
  block home, a flush, the log marked empty (``s_start = 0``, ``s_sequence`` past the
  transaction), a flush. The caller then writes the final superblock without needs_recovery.

The transaction needs no revoke records: the log is empty when it starts (the open replays
anything committed before), so no older transaction can be replayed over a reused block.
Spec: kernel Documentation/filesystems/ext4/journal.rst; FORMAT-NOTES B2.11.
"""

from __future__ import annotations

import struct
import time

from nuwa.errors import InvalidInputError, UnsupportedFeatureError
from nuwa.formats.blockdev import BlockDevice
from nuwa.fs.ext4 import jbd2
from nuwa.fs.ext4 import jbd2_layout as L

_MAGIC_BE = struct.pack(">I", L.JBD2_MAGIC_NUMBER)
#: ext4 s_feature_incompat bit needs_recovery (EXT4_FEATURE_INCOMPAT_RECOVER)
EXT4_INCOMPAT_RECOVER = 0x4
_S_FEATURE_INCOMPAT, _S_FEATURE_RO_COMPAT, _S_CHECKSUM = 0x60, 0x64, 0x3FC
_RO_COMPAT_METADATA_CSUM = 0x400


def with_needs_recovery(sb: bytes) -> bytes:
    """An ext4 superblock (1024 bytes) with needs_recovery set and its checksum updated."""
    buf = bytearray(sb)
    incompat = struct.unpack_from("<I", buf, _S_FEATURE_INCOMPAT)[0]
    struct.pack_into("<I", buf, _S_FEATURE_INCOMPAT, incompat | EXT4_INCOMPAT_RECOVER)
    if struct.unpack_from("<I", buf, _S_FEATURE_RO_COMPAT)[0] & _RO_COMPAT_METADATA_CSUM:
        struct.pack_into("<I", buf, _S_CHECKSUM, L.crc32c_raw(0xFFFFFFFF, buf[:_S_CHECKSUM]))
    return bytes(buf)


def journal_full_error(blocks: int, room: int) -> InvalidInputError:
    """The refusal when a run changes more blocks in use than one transaction can hold."""
    return InvalidInputError(
        f"the run changes {blocks} blocks in use, more than the journal holds in one transaction "
        f"({room} blocks); nothing was changed: write a new overlay with --output instead")


def write_home(dev: BlockDevice, bs: int, held: dict[int, bytearray]) -> None:
    """Write every held block to its place, adjacent blocks coalesced."""
    run_start, run = None, []
    for blk in sorted(held):
        if run and blk == run_start + len(run):
            run.append(bytes(held[blk]))
            continue
        if run:
            dev.pwrite(run_start * bs, b"".join(run))
        run_start, run = blk, [bytes(held[blk])]
    if run:
        dev.pwrite(run_start * bs, b"".join(run))


class StagedDevice(BlockDevice):
    """A device view that holds writes to blocks in use before, and passes the rest through.

    ``in_use_before(block)`` answers from the before-state bitmaps. ``limit`` (None: no
    bound) bounds how many blocks may be held (the journal's room in an atomic run): one more
    raises the refusal of :func:`journal_full_error` before anything in use was written.
    """

    def __init__(self, dev: BlockDevice, block_size: int, in_use_before, limit: int):
        self.dev = dev
        self.size = dev.size
        self.writable = dev.writable
        self.name = dev.name
        self.bs = block_size
        self.in_use_before = in_use_before
        self.limit = limit
        #: fs block -> its pending content (whole blocks)
        self.held: dict[int, bytearray] = {}
        self.direct_bytes = 0

    def _pread(self, offset: int, n: int) -> bytes:
        held = self.held
        if not held:
            return self.dev.pread(offset, n)
        bs = self.bs
        first, last = offset // bs, (offset + n - 1) // bs
        if last - first < len(held):
            hits = [b for b in range(first, last + 1) if b in held]
        else:
            hits = [b for b in held if first <= b <= last]
        if not hits:
            return self.dev.pread(offset, n)
        buf = bytearray(self.dev.pread(offset, n))
        for b in hits:
            lo, hi = max(offset, b * bs), min(offset + n, (b + 1) * bs)
            buf[lo - offset : hi - offset] = held[b][lo - b * bs : hi - b * bs]
        return bytes(buf)

    def _pwrite(self, offset: int, data: bytes) -> None:
        bs = self.bs
        pos, n = 0, len(data)
        direct_from = None  # start (in data) of a run of free-before blocks not yet written
        while pos < n:
            b = (offset + pos) // bs
            end = min(n, (b + 1) * bs - offset)
            if not self.in_use_before(b):
                if direct_from is None:
                    direct_from = pos
                pos = end
                continue
            if direct_from is not None:
                self._direct(offset + direct_from, data[direct_from:pos])
                direct_from = None
            blk = self.held.get(b)
            if blk is None:
                if self.limit is not None and len(self.held) >= self.limit:
                    raise journal_full_error(len(self.held) + 1, self.limit)
                whole = end - pos == bs
                blk = bytearray(data[pos:end]) if whole else bytearray(self.dev.pread(b * bs, bs))
                self.held[b] = blk
            lo = offset + pos - b * bs
            blk[lo : lo + end - pos] = data[pos:end]
            pos = end
        if direct_from is not None:
            self._direct(offset + direct_from, data[direct_from:])

    def _direct(self, offset: int, data: bytes) -> None:
        self.direct_bytes += len(data)
        self.dev.pwrite(offset, data)

    def source_of(self, offset: int, length: int):
        """Delegated where no held block overlaps (held bytes exist nowhere else)."""
        bs = self.bs
        first, last = offset // bs, (offset + max(length, 1) - 1) // bs
        if any(first <= b <= last for b in self.held):
            return None
        hook = getattr(self.dev, "source_of", None)
        return hook(offset, length) if hook else None

    def flush(self) -> None:
        """Nothing: durability comes with the transaction (:meth:`JournalWriter.commit`)."""

    def close(self) -> None:
        """The real device is closed by its owner."""


class JournalWriter:
    """Writes one transaction into an empty internal journal and checkpoints it."""

    def __init__(self, dev: BlockDevice, block_size: int, journal_blocks: list[int]):
        self.dev = dev
        self.bs = block_size
        self.jblocks = journal_blocks
        self.j = jbd2.load_journal(dev, block_size, journal_blocks, len(journal_blocks))
        if self.j.sb["s_start"]:
            raise UnsupportedFeatureError("the journal is not empty (it should have been replayed at open)",
                                          where=self.j.where, feature="needs_recovery")
        inc = self.j.incompat
        self.tag_size = L.tag_bytes(inc)
        self.tail = L.JBD2_TAIL_SIZE if self.j.csum_v2or3 else 0
        # tags per descriptor block: the first carries the 16-byte UUID after it
        self.per_desc = (block_size - L.JOURNAL_HEADER_SIZE - self.tail - L.UUID_SIZE) // self.tag_size
        self.transactions = 0

    @property
    def room(self) -> int:
        """How many fs blocks one transaction can carry (descriptors and commit block aside)."""
        log = self.j.last - self.j.first
        n = max(0, (log - 1) * self.per_desc // (self.per_desc + 1))
        while self.log_blocks(n + 1) <= log:
            n += 1
        while n > 0 and self.log_blocks(n) > log:
            n -= 1
        return n

    def log_blocks(self, n: int) -> int:
        """Log blocks a transaction of ``n`` fs blocks takes (descriptors, copies, commit)."""
        return n + (n + self.per_desc - 1) // self.per_desc + 1

    # ---- the transaction ---------------------------------------------------------------------
    def commit(self, held: dict[int, bytearray], recover_sb: bytes) -> None:
        """Log ``held`` (fs block -> content) as one transaction, commit it, write it home, and
        mark the log empty. ``recover_sb`` is the on-disk (before) ext4 superblock with
        needs_recovery set, written before the commit block so that any reader replays."""
        j, bs = self.j, self.bs
        blocks = sorted(held)
        if self.log_blocks(len(blocks)) > j.last - j.first:
            raise journal_full_error(len(blocks), self.room)
        tid = j.sb["s_sequence"]
        seed = j.csum_seed
        inc = j.incompat
        writes: list[tuple[int, bytes]] = []  # (journal block, content) in log order
        pos = j.first
        for i in range(0, len(blocks), self.per_desc):
            chunk = blocks[i : i + self.per_desc]
            desc = bytearray(bs)
            desc[0:12] = L.JOURNAL_HEADER.pack({"h_magic": L.JBD2_MAGIC_NUMBER,
                                                 "h_blocktype": L.JBD2_DESCRIPTOR_BLOCK, "h_sequence": tid})
            at = L.JOURNAL_HEADER_SIZE
            copies = []
            for k, blk in enumerate(chunk):
                data = bytearray(held[blk])
                flags = 0
                if data[:4] == _MAGIC_BE:  # a copy must not look like a journal block
                    data[:4] = bytes(4)
                    flags |= L.JBD2_FLAG_ESCAPE
                if k:
                    flags |= L.JBD2_FLAG_SAME_UUID
                if k == len(chunk) - 1:
                    flags |= L.JBD2_FLAG_LAST_TAG
                csum = L.data_tag_csum(seed, tid, data) if j.csum_v2or3 else 0
                tag = L.build_tag(L.BlockTag(blk, flags, csum, None if k else j.sb["s_uuid"]), inc)
                desc[at : at + len(tag)] = tag
                at += len(tag)
                copies.append(bytes(data))
            if self.tail:
                struct.pack_into(">I", desc, bs - 4, L.block_tail_csum(seed, desc))
            writes.append((pos, bytes(desc)))
            pos += 1
            for c in copies:
                writes.append((pos, c))
                pos += 1
        self._write_log(writes)
        self.dev.pwrite(1024, recover_sb)
        self.dev.flush()  # every copy durable before the commit block can be
        self._write_jsb(start=j.first, sequence=tid)
        self._write_log([(pos, self._commit_block(tid))])
        self.dev.flush()
        self.transactions += 1
        write_home(self.dev, bs, held)  # the checkpoint
        self.dev.flush()
        self._write_jsb(start=0, sequence=(tid + 1) & 0xFFFFFFFF)
        self.dev.flush()

    def _commit_block(self, tid: int) -> bytes:
        now = time.time_ns()
        blk = bytearray(self.bs)
        blk[0 : L.COMMIT_HEADER.size] = L.COMMIT_HEADER.pack({
            "h_magic": L.JBD2_MAGIC_NUMBER, "h_blocktype": L.JBD2_COMMIT_BLOCK, "h_sequence": tid,
            # v1 (COMPAT_CHECKSUM) accepts a commit with no checksum (type and size 0); v2/v3
            # carry crc32c of the block in h_chksum[0]
            "h_chksum_type": 0, "h_chksum_size": 0, "h_padding": bytes(2), "h_chksum": bytes(32),
            "h_commit_sec": now // 10**9, "h_commit_nsec": now % 10**9,
        })
        if self.j.csum_v2or3:
            struct.pack_into(">I", blk, L.H_CHKSUM_OFFSET, L.commit_csum(self.j.csum_seed, blk))
        return bytes(blk)

    def _write_jsb(self, start: int, sequence: int) -> None:
        raw = bytearray(self.j.raw_sb)
        struct.pack_into(">I", raw, L.JOURNAL_SUPERBLOCK.offsets["s_sequence"], sequence)
        struct.pack_into(">I", raw, L.JOURNAL_SUPERBLOCK.offsets["s_start"], start)
        if self.j.csum_v2or3:
            struct.pack_into(">I", raw, L.S_CHECKSUM_OFFSET, L.superblock_csum(raw))
        self.dev.pwrite(self.jblocks[0] * self.bs, bytes(raw))
        self.j.sb["s_sequence"], self.j.sb["s_start"] = sequence, start
        self.j.raw_sb = bytes(raw)

    def _write_log(self, writes: list[tuple[int, bytes]]) -> None:
        # journal blocks map to fs blocks through the journal inode; contiguous runs coalesce
        run_phys, run = None, []
        for jb, data in writes:
            phys = self.jblocks[jb]
            if run and phys == run_phys + len(run):
                run.append(data)
                continue
            if run:
                self.dev.pwrite(run_phys * self.bs, b"".join(run))
            run_phys, run = phys, [data]
        if run:
            self.dev.pwrite(run_phys * self.bs, b"".join(run))
