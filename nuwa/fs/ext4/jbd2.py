"""jbd2 journal recovery in user space: the kernel's three passes (scan, revoke, replay).

A filesystem with ``EXT4_FEATURE_INCOMPAT_RECOVER`` (needs_recovery) has committed
transactions in its journal that may not have reached their home blocks. :func:`replay`
finds them and writes them home exactly as kernel ``fs/jbd2/recovery.c``
(``jbd2_journal_recover``/``do_one_pass``) and e2fsck's copy of it would, then marks the log
empty. Layout and checksums: :mod:`nuwa.fs.ext4.jbd2_layout`; spec: kernel
Documentation/filesystems/ext4/journal.rst; FORMAT-NOTES B2.11.

How the engine uses it (``open_ext4(dev, writable=True)`` on a needs_recovery filesystem):

1. map the journal inode (``s_journal_inum``) to a list of physical fs blocks, one per
   journal block (or a callable doing the mapping);
2. ``result = replay(dev, block_size, journal_blocks)`` -- raises a clear
   ``CorruptImageError``/``UnsupportedFeatureError`` *before writing anything* if the journal
   is corrupt in a way the kernel refuses to mount, or uses fast commits;
3. ``finish_recovery(dev, result)`` -- clears needs_recovery in the primary ext4 superblock
   (and records a journal-reported error in ``s_state`` as the kernel does), fixing its
   checksum; **then** parse the superblock and group descriptors: the replay may have
   rewritten any metadata block, including the superblock itself.

A read-only open must not replay: call :func:`journal_is_empty` to decide, and refuse.
Nothing here trusts the journal: every length, block number and loop is bounded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.formats.blockdev import BlockDevice
from nuwa.fs.ext4 import jbd2_layout as L

#: ext4 superblock fields finish_recovery touches (FORMAT-NOTES B2.2); the engine's
#: c_ext4 layout holds the full structure, these are the three words recovery needs.
_EXT4_SB_OFFSET = 1024
_S_STATE = 0x3A
_S_FEATURE_INCOMPAT = 0x60
_S_FEATURE_RO_COMPAT = 0x64
_S_CHECKSUM = 0x3FC
_EXT4_INCOMPAT_RECOVER = 0x4
_EXT4_RO_COMPAT_METADATA_CSUM = 0x400
_EXT2_VALID_FS = 0x1
_EXT2_ERROR_FS = 0x2


def _tid_gt(x: int, y: int) -> bool:
    """Transaction ids wrap at 2**32; compare them as the kernel's ``tid_gt`` does."""
    return 0 < ((x - y) & 0xFFFFFFFF) < 0x80000000


def _tid_geq(x: int, y: int) -> bool:
    return ((x - y) & 0xFFFFFFFF) < 0x80000000


@dataclass
class Journal:
    """A validated journal: its superblock fields and the logical-to-physical block map."""

    sb: dict
    raw_sb: bytes
    blocksize: int
    maxlen: int
    first: int
    last: int  # one past the last log block (fast-commit area excluded)
    incompat: int
    compat: int
    csum_seed: int
    map: Callable[[int], int]
    where: str

    @property
    def csum_v2or3(self) -> bool:
        return L.has_csum_v2or3(self.incompat)


@dataclass
class ReplayResult:
    """What recovery found and did (``replayed`` etc. are counts of fs blocks)."""

    needed: bool  # False: the log was empty (s_start == 0); nothing was done
    start_transaction: int = 0
    end_transaction: int = 0  # first transaction id *not* replayed
    transactions: int = 0  # committed transactions replayed
    replayed: int = 0  # block writes done (a block written by two transactions counts twice)
    revoke_records: int = 0
    revoke_hits: int = 0
    failed_commit: int | None = None  # tid whose commit block failed its checksum (non-strict)
    bad_data_blocks: list[int] = field(default_factory=list)  # fs blocks skipped for a bad tag csum
    new_sequence: int = 0  # s_sequence written to the journal superblock
    journal_errno: int = 0  # s_errno found in the journal superblock (non-zero: fs had errors)
    written: dict[int, int] = field(default_factory=dict)  # fs block -> journal block finally copied


def _phys(map_: Callable[[int], int] | list[int], n: int | None) -> tuple[Callable[[int], int], int | None]:
    if callable(map_):
        return map_, n
    blocks = list(map_)
    return blocks.__getitem__, len(blocks)


def load_journal(
    dev: BlockDevice,
    fs_block_size: int,
    journal_blocks: Callable[[int], int] | list[int],
    journal_len: int | None = None,
) -> Journal:
    """Read and validate the journal superblock (kernel ``journal_get_superblock``/``load_superblock``).

    ``journal_len`` is the journal inode's size in blocks (taken from the list when a list is
    given). Raises ``CorruptImageError`` naming the field for a bad magic, block size,
    ``s_maxlen``/``s_first``/``s_start`` outside the journal, conflicting checksum features or
    a superblock checksum mismatch; ``UnsupportedFeatureError`` for unknown incompat features.
    """
    map_, n = _phys(journal_blocks, journal_len)
    where = "jbd2 superblock (journal block 0)"
    if n is not None and n < 2:
        raise CorruptImageError(f"journal is only {n} blocks long", where=where)
    raw = _read(dev, fs_block_size, map_, 0, where)[: L.JOURNAL_SUPERBLOCK_SIZE]
    sb = L.JOURNAL_SUPERBLOCK.unpack(raw)
    if sb["h_magic"] != L.JBD2_MAGIC_NUMBER:
        raise CorruptImageError(f"bad magic 0x{sb['h_magic']:08x} (expected 0x{L.JBD2_MAGIC_NUMBER:08x})", where=where + " h_magic")
    if sb["h_blocktype"] not in (L.JBD2_SUPERBLOCK_V1, L.JBD2_SUPERBLOCK_V2):
        raise CorruptImageError(f"unknown superblock type {sb['h_blocktype']}", where=where + " h_blocktype")
    if sb["s_blocksize"] != fs_block_size:
        raise CorruptImageError(
            f"journal block size {sb['s_blocksize']} differs from the filesystem's {fs_block_size}",
            where=where + " s_blocksize",
        )
    v2 = sb["h_blocktype"] == L.JBD2_SUPERBLOCK_V2
    compat = sb["s_feature_compat"] if v2 else 0
    incompat = sb["s_feature_incompat"] if v2 else 0
    unknown = incompat & ~L.JBD2_KNOWN_INCOMPAT
    if unknown:
        raise UnsupportedFeatureError(
            f"unknown journal incompat features 0x{unknown:x}", where=where + " s_feature_incompat",
            feature=f"jbd2_incompat_0x{unknown:x}",
        )
    maxlen, first = sb["s_maxlen"], sb["s_first"]
    if n is not None and maxlen > n:
        raise CorruptImageError(f"s_maxlen {maxlen} exceeds the journal inode's {n} blocks", where=where + " s_maxlen")
    if maxlen < 2 or first == 0 or first >= maxlen:
        raise CorruptImageError(f"s_first {first} is outside the journal (s_maxlen {maxlen})", where=where + " s_first")
    if incompat & L.JBD2_FEATURE_INCOMPAT_CSUM_V2 and incompat & L.JBD2_FEATURE_INCOMPAT_CSUM_V3:
        raise CorruptImageError("checksum v2 and v3 are both set", where=where + " s_feature_incompat")
    if L.has_csum_v2or3(incompat) and compat & L.JBD2_FEATURE_COMPAT_CHECKSUM:
        raise CorruptImageError("checksum v1 and v2/v3 are both set", where=where + " s_feature_compat")
    last = maxlen
    if incompat & L.JBD2_FEATURE_INCOMPAT_FAST_COMMIT:
        nfc = sb["s_num_fc_blks"] or L.JBD2_DEFAULT_FAST_COMMIT_BLOCKS
        if nfc >= maxlen - first:
            raise CorruptImageError(f"fast-commit area of {nfc} blocks leaves no log", where=where + " s_num_fc_blks")
        last = maxlen - nfc
    if L.has_csum_v2or3(incompat):
        if sb["s_checksum_type"] != L.JBD2_CRC32C_CHKSUM:
            raise CorruptImageError(f"unknown checksum type {sb['s_checksum_type']}", where=where + " s_checksum_type")
        want = L.superblock_csum(raw)
        if sb["s_checksum"] != want:
            raise CorruptImageError(
                f"checksum 0x{sb['s_checksum']:08x} does not match computed 0x{want:08x}", where=where + " s_checksum"
            )
    start = sb["s_start"]
    if start and not first <= start < last:
        raise CorruptImageError(f"s_start {start} is outside the log [{first}, {last})", where=where + " s_start")
    return Journal(
        sb=sb, raw_sb=bytes(raw), blocksize=fs_block_size, maxlen=maxlen, first=first, last=last,
        incompat=incompat, compat=compat, csum_seed=L.journal_csum_seed(sb["s_uuid"]), map=map_, where=where,
    )


def _read(dev: BlockDevice, bs: int, map_: Callable[[int], int], jblock: int, what: str) -> bytes:
    """Journal block ``jblock`` through the inode map, with errors naming the block."""
    try:
        phys = map_(jblock)
    except (IndexError, KeyError) as err:
        raise CorruptImageError(f"journal block {jblock} is not mapped", where=what) from err
    if phys is None or phys <= 0 or (phys + 1) * bs > dev.size:
        raise CorruptImageError(f"journal block {jblock} maps to fs block {phys}, outside the device", where=what)
    return dev.pread(phys * bs, bs)


def journal_is_empty(
    dev: BlockDevice,
    fs_block_size: int,
    journal_blocks: Callable[[int], int] | list[int],
    journal_len: int | None = None,
) -> bool:
    """True when the log holds nothing to replay (``s_start == 0``), after validating the superblock.

    A writer may bypass the journal only when this is true *and* the ext4 superblock's
    needs_recovery flag is clear (FORMAT-NOTES B2.11); e2fsck flags the mismatch
    "needs_recovery clear but journal has data" (``PR_0_JOURNAL_RECOVERY_CLEAR``).
    """
    return load_journal(dev, fs_block_size, journal_blocks, journal_len).sb["s_start"] == 0


class _Pass:
    """State shared by the three passes (kernel ``struct recovery_info``)."""

    def __init__(self, j: Journal, dev: BlockDevice):
        self.j = j
        self.dev = dev
        self.start_transaction = j.sb["s_sequence"]
        self.end_transaction: int | None = None
        self.failed_commit: int | None = None
        self.revoked: dict[int, int] = {}  # fs block -> highest tid that revoked it
        self.revoke_records = 0
        self.revoke_hits = 0
        # replay plan: (tid, fs block, journal block, escaped) in log order
        self.plan: list[tuple[int, int, int, bool]] = []
        self.bad_data: list[tuple[int, int, int]] = []  # (tid, fs block, journal block)

    def read(self, jblock: int, what: str) -> bytes:
        return _read(self.dev, self.j.blocksize, self.j.map, jblock, what)

    def wrap(self, b: int) -> int:
        """Log blocks are circular between ``s_first`` and the end of the log (kernel ``wrap``)."""
        return self.j.first + (b - self.j.first) % (self.j.last - self.j.first) if b >= self.j.last else b

    def is_revoked(self, blocknr: int, tid: int) -> bool:
        """Revoked by a record of this or a later transaction (kernel ``jbd2_journal_test_revoke``)."""
        rec = self.revoked.get(blocknr)
        return rec is not None and not _tid_gt(tid, rec)


def _walk(p: _Pass, pass_name: str) -> int:
    """One pass over the log (kernel ``do_one_pass``); returns the next transaction id.

    ``scan`` finds the end of the log and checks commit, descriptor and revoke checksums;
    ``revoke`` collects revoke records; ``replay`` builds the plan of home writes. Every pass
    stops at the first block without the magic, with the wrong sequence, or of unknown
    type, and never reads more blocks than the log holds (a corrupt log cannot loop).
    """
    j = p.j
    tid = j.sb["s_sequence"]
    blk = j.sb["s_start"]
    # Blocks in the circular log, plus the one read that finds its end after a full lap.
    budget = j.last - j.first + 1
    crc32_sum = 0xFFFFFFFF  # COMPAT_CHECKSUM (v1) running crc32_be over a transaction
    last_commit_time = 0
    need_check_commit_time = False
    v1 = bool(j.compat & L.JBD2_FEATURE_COMPAT_CHECKSUM)
    consumed = 0

    def take(n: int = 1) -> None:
        nonlocal consumed
        consumed += n
        if consumed > budget:
            raise CorruptImageError(
                f"transaction {tid} runs past the whole log ({budget - 1} blocks) without ending",
                where=f"jbd2 log, pass {pass_name}",
            )

    while True:
        if pass_name != "scan" and _tid_geq(tid, p.end_transaction):
            break
        here = blk
        what = f"jbd2 log block {here} (transaction {tid})"
        take()
        buf = p.read(here, what)
        blk = p.wrap(blk + 1)
        hdr = L.JOURNAL_HEADER.unpack(buf)
        if hdr["h_magic"] != L.JBD2_MAGIC_NUMBER or hdr["h_sequence"] != tid:
            break
        btype = hdr["h_blocktype"]

        if btype == L.JBD2_DESCRIPTOR_BLOCK:
            if j.csum_v2or3 and L.block_tail_csum(j.csum_seed, buf) != struct.unpack_from(">I", buf, j.blocksize - 4)[0]:
                if pass_name != "scan":
                    raise CorruptImageError("descriptor block checksum mismatch", where=what)
                # Possibly a stale block from an older use of the log: decided at the commit.
                need_check_commit_time = True
            tags = L.parse_tags(buf, j.incompat)
            if pass_name == "scan":
                if v1 and not need_check_commit_time and not p.end_transaction:
                    crc32_sum = L.crc32_be(crc32_sum, buf)
                for tag in tags:
                    jb = blk
                    take()
                    blk = p.wrap(blk + 1)
                    if v1 and not need_check_commit_time and not p.end_transaction:
                        crc32_sum = L.crc32_be(crc32_sum, p.read(jb, what))
                continue
            if pass_name == "revoke":
                take(len(tags))
                blk = p.wrap(blk + len(tags))
                continue
            for tag in tags:
                jb = blk
                take()
                blk = p.wrap(blk + 1)
                if p.is_revoked(tag.blocknr, tid):
                    p.revoke_hits += 1
                    continue
                p.plan.append((tid, tag.blocknr, jb, bool(tag.flags & L.JBD2_FLAG_ESCAPE)))
                if j.csum_v2or3:
                    data = p.read(jb, f"jbd2 log block {jb} (data for fs block {tag.blocknr}, transaction {tid})")
                    want = L.data_tag_csum(j.csum_seed, tid, data)
                    if not L.tag_csum_matches(j.incompat, tag.checksum, want):
                        p.plan.pop()
                        p.bad_data.append((tid, tag.blocknr, jb))
            continue

        if btype == L.JBD2_COMMIT_BLOCK:
            ch = L.COMMIT_HEADER.unpack(buf)
            commit_time = ch["h_commit_sec"]
            if need_check_commit_time:
                if commit_time >= last_commit_time:
                    raise CorruptImageError(
                        f"invalid descriptor or revoke block checksum in committed transaction {tid}", where=what
                    )
                break  # stale blocks from an earlier pass through the log: the log ends here
            bad = False
            if pass_name == "scan" and v1:
                if p.end_transaction:  # recovery.c tests the id for zero (see the end of the scan)
                    p.failed_commit = p.end_transaction
                    break
                found = struct.unpack_from(">I", buf, L.H_CHKSUM_OFFSET)[0]
                ok = (crc32_sum == found and ch["h_chksum_type"] == L.JBD2_CRC32_CHKSUM
                      and ch["h_chksum_size"] == L.JBD2_CRC32_CHKSUM_SIZE) or (
                    ch["h_chksum_type"] == 0 and ch["h_chksum_size"] == 0 and found == 0)
                bad = not ok
                crc32_sum = 0xFFFFFFFF
            if pass_name == "scan" and not bad and j.csum_v2or3:
                bad = L.commit_csum(j.csum_seed, buf) != struct.unpack_from(">I", buf, L.H_CHKSUM_OFFSET)[0]
            if bad:
                if commit_time < last_commit_time:
                    break  # stale commit block: end of log, not corruption
                p.end_transaction = tid
                if not j.incompat & L.JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT:
                    p.failed_commit = tid
                    break
            if pass_name == "scan":
                last_commit_time = commit_time
            tid = (tid + 1) & 0xFFFFFFFF
            continue

        if btype == L.JBD2_REVOKE_BLOCK:
            if pass_name == "scan" and j.csum_v2or3 and (
                L.block_tail_csum(j.csum_seed, buf) != struct.unpack_from(">I", buf, j.blocksize - 4)[0]
            ):
                need_check_commit_time = True
            if pass_name != "revoke":
                continue
            records = L.parse_revoke_records(buf, j.incompat)
            if records is None:
                raise CorruptImageError("revoke block r_count exceeds the block", where=what + " r_count")
            for b in records:
                p.revoke_records += 1
                old = p.revoked.get(b)
                if old is None or _tid_gt(tid, old):
                    p.revoked[b] = tid
            continue

        break  # unknown block type: end of the log (kernel: "Unrecognised magic")

    if pass_name == "scan":
        # do_one_pass: `if (!info->end_transaction) info->end_transaction = next_commit_ID;` --
        # 0 means "unset" there, so a bad async commit of transaction 0 (after the id wraps)
        # does not end the log: the scan's last id does (e2fsck 1.47 and the kernel agree)
        if not p.end_transaction:
            p.end_transaction = tid
    elif tid != p.end_transaction:
        raise CorruptImageError(
            f"recovery pass {pass_name} ended at transaction {tid}, scan ended at {p.end_transaction}",
            where="jbd2 log",
        )
    return tid


def _check_fast_commit(p: _Pass) -> None:
    """Refuse when the fast-commit area holds an area header for a transaction we replay."""
    j = p.j
    if not j.incompat & L.JBD2_FEATURE_INCOMPAT_FAST_COMMIT:
        return
    buf = p.read(j.last, f"jbd2 fast-commit block {j.last}")
    tag, length = struct.unpack_from("<HH", buf, 0)
    if tag != L.EXT4_FC_TAG_HEAD or length < 8:
        return
    fc_tid = struct.unpack_from("<I", buf, 8)[0]  # struct ext4_fc_head {le32 fc_features; le32 fc_tid}
    if _tid_geq(fc_tid, p.start_transaction):
        raise UnsupportedFeatureError(
            f"the journal holds fast-commit data for transaction {fc_tid}; replay it with the kernel or e2fsck",
            where=f"jbd2 fast-commit area (journal block {j.last})",
            feature="fast_commit",
        )


def replay(
    dev: BlockDevice,
    fs_block_size: int,
    journal_blocks: Callable[[int], int] | list[int],
    *,
    journal_len: int | None = None,
    fs_blocks_count: int | None = None,
    strict: bool = True,
    dry_run: bool = False,
) -> ReplayResult:
    """Recover the journal onto ``dev``: scan, revoke and replay passes, then reset the log.

    ``journal_blocks`` maps journal block *i* to its physical fs block (a list, or a callable
    with ``journal_len``). ``fs_blocks_count`` bounds the home block numbers (default: the
    device size). With ``strict`` (the default) anything the kernel would refuse to mount --
    a commit block with a bad checksum, a data block whose tag checksum fails -- raises
    ``CorruptImageError`` before a single byte is written. With ``strict=False`` recovery
    behaves like e2fsck: it replays the transactions before a failed commit, skips data blocks
    with bad tag checksums and reports both in the result (:func:`finish_recovery` then marks
    the filesystem ``EXT2_ERROR_FS``, as e2fsck does).
    ``dry_run`` does everything but write, returning the plan in ``written``.

    The caller must then run :func:`finish_recovery` (clear needs_recovery) and re-read the
    filesystem metadata.
    """
    j = load_journal(dev, fs_block_size, journal_blocks, journal_len)
    res = ReplayResult(needed=bool(j.sb["s_start"]), journal_errno=j.sb["s_errno"])
    res.start_transaction = res.end_transaction = res.new_sequence = j.sb["s_sequence"]
    if not j.sb["s_start"]:
        return res
    if not dev.writable and not dry_run:
        raise UnsupportedFeatureError(
            "the journal needs recovery and the device is read-only; open it writable to replay",
            where=j.where, feature="needs_recovery",
        )
    p = _Pass(j, dev)
    _walk(p, "scan")
    _check_fast_commit(p)
    if p.failed_commit is not None and strict:
        raise CorruptImageError(
            f"commit block of transaction {p.failed_commit} fails its checksum; the kernel refuses to mount "
            "(e2fsck -fy replays the transactions before it)",
            where="jbd2 log",
        )
    _walk(p, "revoke")
    _walk(p, "replay")
    if p.bad_data and strict:
        tid, blocknr, jb = p.bad_data[0]
        raise CorruptImageError(
            f"data block for fs block {blocknr} in transaction {tid} fails its tag checksum",
            where=f"jbd2 log block {jb}",
        )
    limit = fs_blocks_count if fs_blocks_count is not None else dev.size // fs_block_size
    for tid, blocknr, jb, _esc in p.plan:
        if blocknr >= limit:
            raise CorruptImageError(
                f"transaction {tid} writes fs block {blocknr}, outside the filesystem ({limit} blocks)",
                where=f"jbd2 descriptor tag for log block {jb}",
            )

    res.end_transaction = p.end_transaction
    res.transactions = (p.end_transaction - p.start_transaction) & 0xFFFFFFFF
    res.revoke_records = p.revoke_records
    res.revoke_hits = p.revoke_hits
    res.failed_commit = p.failed_commit
    res.bad_data_blocks = [b for _, b, _ in p.bad_data]
    # e2fsck leaves s_sequence alone when recovery hit a bad data block (its recovery "failed"
    # after writing the rest); otherwise the log restarts after the last transaction seen
    # (kernel: ``j_transaction_sequence = ++info.end_transaction``).
    res.new_sequence = j.sb["s_sequence"] if p.bad_data else (p.end_transaction + 1) & 0xFFFFFFFF
    for tid, blocknr, jb, esc in p.plan:
        res.written[blocknr] = jb
        res.replayed += 1
        if dry_run:
            continue
        data = bytearray(p.read(jb, f"jbd2 log block {jb}"))
        if esc:
            data[0:4] = struct.pack(">I", L.JBD2_MAGIC_NUMBER)
        dev.pwrite(blocknr * fs_block_size, bytes(data))
    if dry_run:
        return res
    dev.flush()  # home blocks are durable before the log is declared empty
    _reset_superblock(dev, j, res.new_sequence)
    dev.flush()
    return res


def _reset_superblock(dev: BlockDevice, j: Journal, sequence: int) -> None:
    """Mark the log empty: ``s_start = 0``, ``s_sequence`` past the last transaction, checksum.

    ``s_errno`` is cleared: like the kernel's ``ext4_clear_journal_err`` and e2fsck, the error
    moves into the ext4 superblock's ``s_state`` (done by :func:`finish_recovery` from the
    result), so the journal can be reused.
    """
    raw = bytearray(j.raw_sb)
    struct.pack_into(">I", raw, L.JOURNAL_SUPERBLOCK.offsets["s_sequence"], sequence)
    struct.pack_into(">I", raw, L.JOURNAL_SUPERBLOCK.offsets["s_start"], 0)
    struct.pack_into(">i", raw, L.JOURNAL_SUPERBLOCK.offsets["s_errno"], 0)
    if j.csum_v2or3:
        struct.pack_into(">I", raw, L.S_CHECKSUM_OFFSET, L.superblock_csum(raw))
    phys = j.map(0)
    dev.pwrite(phys * j.blocksize, bytes(raw))


def finish_recovery(dev: BlockDevice, result: ReplayResult | None = None) -> None:
    """Clear needs_recovery in the primary ext4 superblock after :func:`replay`.

    Mirrors the kernel's ``ext4_mark_recovery_complete`` + ``ext4_clear_journal_err``: the
    ``EXT4_FEATURE_INCOMPAT_RECOVER`` bit is cleared; if the journal reported an error
    (``s_errno`` non-zero, or a corrupt commit found by a non-strict replay) the filesystem is
    marked ``EXT2_ERROR_FS``, and after skipped bad data blocks it is marked not clean
    (``EXT2_VALID_FS`` cleared), both exactly as e2fsck leaves it, so that the writer refuses
    it and the next e2fsck checks it fully.
    The superblock checksum is recomputed (crc32c from ~0, FORMAT-NOTES B0) when
    metadata_csum is on. Backup superblocks never carry the flag. Call it before the engine
    parses the superblock.
    """
    sb = bytearray(dev.pread(_EXT4_SB_OFFSET, 1024))
    incompat = struct.unpack_from("<I", sb, _S_FEATURE_INCOMPAT)[0]
    struct.pack_into("<I", sb, _S_FEATURE_INCOMPAT, incompat & ~_EXT4_INCOMPAT_RECOVER)
    state = struct.unpack_from("<H", sb, _S_STATE)[0]
    if result is not None and result.bad_data_blocks:
        # e2fsck's answer to "Journal checksum error": the filesystem is left not clean.
        struct.pack_into("<H", sb, _S_STATE, state & ~_EXT2_VALID_FS)
    elif result is not None and (result.journal_errno or result.failed_commit):
        # `if (journal->j_failed_commit)` in e2fsck and the kernel: a corrupt commit of the
        # transaction whose id wrapped to 0 is (quirkily) not reported; mirror the judges
        struct.pack_into("<H", sb, _S_STATE, state | _EXT2_ERROR_FS)
    if struct.unpack_from("<I", sb, _S_FEATURE_RO_COMPAT)[0] & _EXT4_RO_COMPAT_METADATA_CSUM:
        struct.pack_into("<I", sb, _S_CHECKSUM, L.crc32c_raw(0xFFFFFFFF, sb[:_S_CHECKSUM]))
    dev.pwrite(_EXT4_SB_OFFSET, bytes(sb))
    dev.flush()
