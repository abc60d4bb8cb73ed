"""A seekable multi-block .xz member decoded on several threads, handed on in order.

xz (and dpkg-deb, when it compresses with threads) cuts a large input into Blocks that are
compressed independently, and the Index at the end of the Stream records where each one is
(:mod:`nuwa.deb.c_xz`). Each Block can therefore be decoded by its own liblzma decoder, and
liblzma releases the GIL while it works. A kernel package's 105 MB data.tar has 5 Blocks
(4 of 24 MiB, one of 7) whose decoding costs 0.59, 0.23, 0.21, 0.22 and 0.06 s of CPU: on two
cores the first Block is the critical path, about 0.85 s for the whole instead of 1.3 s.

How a Block is decoded: its bytes are framed as a small Stream of their own (the original
Stream Header, the Block as it is in the file, a one-record Index holding the original
record, a Stream Footer) and given to ``lzma.LZMADecompressor(FORMAT_XZ)``. liblzma then
checks everything it checks in the whole file: the Block Header's CRC32, the sizes the header
declares, the Block's Check (CRC64 or SHA-256), and, through the Index, that the Block has
exactly the Unpadded and Uncompressed Size the original Index records. Decoding the raw
LZMA2 data (``FORMAT_RAW`` with the header's filters) would leave the Check and the sizes to
Python code; the framing costs about 36 bytes per Block.

What is handed on is exactly what :class:`nuwa.deb.archive` 's single decoder hands on, which
is what dpkg's (``lzma_stream_decoder`` without ``LZMA_CONCATENATED``) does: the first
Stream's data. Later Streams and Stream Padding are read only to check that the member is
well formed. Anything this module does not understand or that would not pay (one Block, a
source without a file descriptor, framing that does not parse, sizes that do not add up to
the member's size, little after the first Block) makes :func:`open_xz_blocks` return None:
the caller then uses the single decoder, so a damaged member fails there at the point of the
stream where it is damaged.

Memory: a worker may decode a Block ahead of the one the consumer reads while fewer than
``threads - 1`` Blocks lie ahead, or while the Blocks ahead up to it (at most
:data:`AHEAD_BLOCKS`) record at most :data:`AHEAD_BUDGET` (48 MiB) of decoded bytes together; a Block ahead holds at most
:data:`AHEAD_MAX` (32 MiB) decoded bytes and never more than its Index record (a Block that
decodes to more is an error), the Block being read at most :data:`QUEUED_MAX` (2 MiB). The
peak added over the single decoder is therefore at most 48 MiB (or one Block of at most
32 MiB) plus one liblzma dictionary per extra thread. For the kernel package (a slow first
Block of 24 MiB, then three of 24 MiB and one of 7 that decode three times faster) the budget
lets the second worker decode the second and third Blocks while the first is read: the
decoding's critical path is the first Block plus half the rest, not the first Block plus
each later one in turn.
"""

from __future__ import annotations

import io
import lzma
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import BinaryIO, Callable

from nuwa.deb import c_xz
from nuwa.deb.c_xz import IndexRecord, XzFramingError
from nuwa.errors import InvalidInputError
from nuwa.host import usable_cpus

#: a compressed member smaller than this is decoded by one decoder (xz's threaded Blocks are
#: 3 dictionaries, 24 MiB at the default level: smaller members hold one Block)
PARALLEL_MIN = 1 << 20
#: the Blocks after the first must decode to this much for a second thread to pay: it saves
#: at most their decoding (16 MiB: ~0.1 s) and costs a dictionary and a Block of memory.
#: libperl5.36 (a 24 MiB Block, then 4 MiB) is below: threaded, +15 MB peak RSS of the whole
#: minbase call for ~0.04 s; a kernel package (83 MiB after its first Block) is well above
PARALLEL_REST_MIN = 16 << 20
#: decoder threads: the consumer needs a core too, and each extra thread may hold a Block
MAX_THREADS = 2
#: an Index larger than this is not read, and a Stream of more Blocks is left to the single
#: decoder (16,384 Blocks of xz's default 24 MiB are 384 GiB; more means tiny Blocks, or a
#: hostile Index that would cost memory per record)
INDEX_MAX = 256 << 10
BLOCKS_MAX = 16384
#: decoded bytes handed on per piece, and how many may wait for the consumer in its Block
CHUNK = 1 << 18
QUEUED_MAX = 8 * CHUNK
#: decoded bytes a Block ahead of the consumer may hold: a whole Block of xz's default level
#: (24 MiB); a larger one (xz -9: 192 MiB) waits there for the consumer, an Index that lies
#: about sizes cannot make a worker hold more
AHEAD_MAX = 32 << 20
#: decoded bytes (as the Index records them) the Blocks ahead of the consumer may hold
#: together, past the one Block ahead always allowed: two of xz's default 24 MiB Blocks
AHEAD_BUDGET = 48 << 20
#: decoded bytes an early decoder (:class:`BlockDecoder` ``early``) may hold before its
#: consumer comes: the first Blocks, one at a time, while they add up to at most this
EARLY_BUDGET = 48 << 20
#: and at most this many Blocks ahead (small Blocks gain nothing from running far ahead)
AHEAD_BLOCKS = 4
#: compressed bytes read per ``pread``
PIECE = 1 << 18


@dataclass(frozen=True)
class XzLayout:
    """Where the first Stream's Blocks are: its Stream Flags and (offset, record) per Block."""

    stream_flags: bytes
    blocks: tuple[tuple[int, IndexRecord], ...]
    streams: int


def _skip_padding(pread: Callable[[int, int], bytes], end: int) -> int:
    """2.2: the offset where the null Stream Padding before ``end`` starts."""
    while end > 0:
        n = min(end, 4096)
        tail = pread(end - n, n)
        if len(tail) != n:
            raise XzFramingError("member shorter than its size")
        stripped = len(tail.rstrip(b"\0"))
        end -= n - stripped
        if stripped:
            break
    return end


def locate_blocks(pread: Callable[[int, int], bytes], size: int) -> XzLayout:
    """The Blocks of the first Stream of a .xz member of ``size`` bytes, walking from its end.

    ``pread(offset, n)`` reads the member. Every Stream is checked (footer, Index, header, and
    that the sizes the Index records lead exactly to the header), so a member whose framing
    disagrees with its size anywhere raises :class:`XzFramingError`.
    """
    if size % 4:
        raise XzFramingError("member size is not a multiple of four")
    end = size
    streams = []
    while end > 0:
        padded = _skip_padding(pread, end)
        if padded % 4:
            raise XzFramingError("stream padding is not a multiple of four")
        end = padded
        if end < c_xz.STREAM_HEADER_SIZE + c_xz.STREAM_FOOTER_SIZE:
            raise XzFramingError("no stream before the padding")
        index_size, flags = c_xz.parse_stream_footer(pread(end - c_xz.STREAM_FOOTER_SIZE, c_xz.STREAM_FOOTER_SIZE))
        index_at = end - c_xz.STREAM_FOOTER_SIZE - index_size
        if index_size > INDEX_MAX or index_at < c_xz.STREAM_HEADER_SIZE:
            raise XzFramingError("index does not fit")
        records = c_xz.parse_index(pread(index_at, index_size))
        start = index_at - sum(r.total_size for r in records) - c_xz.STREAM_HEADER_SIZE
        if start < 0:
            raise XzFramingError("blocks do not fit before the index")
        if c_xz.parse_stream_header(pread(start, c_xz.STREAM_HEADER_SIZE)) != flags:
            raise XzFramingError("stream header and footer flags differ")
        streams.append((start, flags, records))
        end = start
    if not streams:
        raise XzFramingError("no stream")
    start, flags, records = streams[-1]
    at = start + c_xz.STREAM_HEADER_SIZE
    blocks = []
    for r in records:
        blocks.append((at, r))
        at += r.total_size
    return XzLayout(flags, tuple(blocks), len(streams))


def decode_threads() -> int:
    """How many decoder threads this process gets (the CPUs it may run on, at most MAX_THREADS)."""
    return min(usable_cpus(), MAX_THREADS)


def hand_on(buf: memoryview, b) -> tuple[int, memoryview]:
    """``readinto``'s copy: as much of ``buf`` as fits into ``b``; (bytes copied, the rest)."""
    n = min(len(b), len(buf))
    b[:n] = buf[:n]
    return n, buf[n:]


class _Block:
    """One Block's decoding state, shared by its worker and the consumer under the condition."""

    __slots__ = ("number", "offset", "record", "chunks", "queued", "produced", "done", "error")

    def __init__(self, number: int, offset: int, record: IndexRecord):
        self.number = number
        self.offset = offset
        self.record = record
        self.chunks: deque = deque()
        self.queued = 0
        self.produced = 0
        self.done = False
        self.error: BaseException | None = None


class BlockDecoder(io.RawIOBase):
    """The decoded bytes of a multi-block .xz Stream, decoded by ``threads`` workers, in order.

    Errors a worker meets (corrupt data, a short read) are raised in the consumer after the
    bytes of that Block decoded before them, as :class:`InvalidInputError` naming the Block.
    ``close`` stops and joins the workers; a consumer that stops early leaves no thread behind.
    ``early``: made before its consumer comes (a prefetch), one worker decodes the first Blocks
    whole, one at a time, while they add up to :data:`EARLY_BUDGET`; the consumer's first read
    lets every worker go on by the usual rules.
    """

    def __init__(self, fd: int, base: int, layout: XzLayout, threads: int, where: str, early: bool = False):
        self._fd = fd
        self._base = base
        self._where = where
        self._header = c_xz.build_stream_header(layout.stream_flags)
        self._flags = layout.stream_flags
        self._blocks = [_Block(i, off, r) for i, (off, r) in enumerate(layout.blocks)]
        self._ahead = threads - 1
        self._cond = threading.Condition()
        self._stop = False
        self._next = 0  # the next Block a worker claims
        self._current = 0  # the Block the consumer reads
        self._buf = memoryview(b"")
        # until the consumer's first read: one worker decodes the first Blocks whole, one after
        # the other, within EARLY_BUDGET (work for an idle core while the stream waits its turn)
        self._early = early
        self._threads = [threading.Thread(target=self._work, name=f"nuwa-xz-block-{i}", daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    # ---- workers --------------------------------------------------------------------------
    def _claim(self) -> _Block | None:
        with self._cond:
            while not self._stop and self._next < len(self._blocks) and not self._may_claim(self._next):
                self._cond.wait()
            if self._stop or self._next >= len(self._blocks):
                return None
            block = self._blocks[self._next]
            self._next += 1
            return block

    def _may_claim(self, k: int) -> bool:
        """May a worker start Block ``k`` now (under the condition)?"""
        if self._early:
            return (all(b.done for b in self._blocks[:k])
                    and sum(b.record.uncompressed_size for b in self._blocks[:k + 1]) <= EARLY_BUDGET)
        if k <= self._current + self._ahead:
            return True
        if k > self._current + AHEAD_BLOCKS:
            return False
        ahead = sum(b.record.uncompressed_size for b in self._blocks[self._current + 1:k + 1])
        return ahead <= AHEAD_BUDGET

    def _emit(self, block: _Block, data: bytes) -> bool:
        if not data:
            return not self._stop
        block.produced += len(data)
        if block.produced > block.record.uncompressed_size:  # liblzma would say so at the Block's end
            raise self._error(block, "corrupt .xz data: block decodes to more than its recorded size")
        with self._cond:
            while not self._stop and block.queued >= (QUEUED_MAX if block.number == self._current and not self._early
                                                       else AHEAD_MAX):
                self._cond.wait()
            if self._stop:
                return False
            block.chunks.append(data)
            block.queued += len(data)
            self._cond.notify_all()
            return True

    def _work(self) -> None:
        while True:
            block = self._claim()
            if block is None:
                return
            error: BaseException | None = None
            try:
                finished = self._decode(block)
            except lzma.LZMAError as e:
                finished, error = True, self._error(block, f"corrupt .xz data: {e}")
            except BaseException as e:  # a short read, memory: handed to the consumer
                finished, error = True, e
            with self._cond:
                block.error = error
                block.done = finished
                self._cond.notify_all()
            if not finished or error is not None:
                return

    def _error(self, block: _Block, message: str) -> InvalidInputError:
        return InvalidInputError(f"{message} (block {block.number + 1} of {len(self._blocks)}, at byte "
                                 f"{block.offset} of the member)", where=self._where)

    def _decode(self, block: _Block) -> bool:
        """Decode ``block`` framed as a Stream of its own; False if the consumer stopped."""
        d = lzma.LZMADecompressor(lzma.FORMAT_XZ)

        def feed(piece: bytes) -> bool:
            out = d.decompress(piece, CHUNK)
            while self._emit(block, out):
                if d.eof or d.needs_input:
                    return True
                out = d.decompress(b"", CHUNK)
            return False

        index = c_xz.build_index([block.record])
        if not feed(self._header):
            return False
        pos, end = block.offset, block.offset + block.record.total_size
        while pos < end:
            n = min(PIECE, end - pos)
            data = os.pread(self._fd, n, self._base + pos)
            if len(data) != n:
                raise self._error(block, "compressed stream (.xz) ends early: truncated")
            pos += n
            try:
                if not feed(data):
                    return False
            except EOFError:  # the frame ended inside the Block: it is shorter than recorded
                raise self._error(block, "corrupt .xz data: block ends before its recorded size") from None
        if not feed(index + c_xz.build_stream_footer(len(index), self._flags)):
            return False
        if not d.eof:
            raise self._error(block, "corrupt .xz data: block does not end where the index says")
        return True

    # ---- consumer -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._early:
            with self._cond:
                self._early = False  # the consumer is here: the usual rules, every worker
                self._cond.notify_all()
        while not self._buf:
            if self._current >= len(self._blocks):
                return 0
            block = self._blocks[self._current]
            with self._cond:
                while not block.chunks and not block.done and block.error is None:
                    self._cond.wait()
                if block.chunks:
                    chunk = block.chunks.popleft()
                    block.queued -= len(chunk)
                    self._buf = memoryview(chunk)
                elif block.error is not None:
                    error, block.error = block.error, None
                    # nothing is handed on after an error: the workers stop, close joins them
                    self._current, self._stop = len(self._blocks), True
                    self._cond.notify_all()
                    raise error
                else:
                    self._current += 1
                self._cond.notify_all()
        n, self._buf = hand_on(self._buf, b)
        return n

    def close(self) -> None:
        if not self.closed:
            with self._cond:
                self._stop = True
                self._cond.notify_all()
            for t in self._threads:
                t.join()
            self._blocks = []
        super().close()


def open_xz_blocks(f: BinaryIO, offset: int, size: int, where: str, threads: int | None = None,
                   early: bool = False, layout: XzLayout | None = None) -> BinaryIO | None:
    """The .xz member at ``offset`` (``size`` bytes) of the open file ``f``, decoded on threads
    (``early``: starting before its reader comes, see :class:`BlockDecoder`; ``layout``: the
    member's :func:`parallel_layout` when the caller has read it already).

    None when the single decoder should do it: a small member, one decoder thread, a source
    that cannot be read at offsets, framing that does not parse or add up, a single Block,
    Blocks after the first too small to pay (:data:`PARALLEL_REST_MIN`), or more than
    :data:`BLOCKS_MAX` Blocks.
    """
    threads = decode_threads() if threads is None else threads
    if threads < 2:
        return None
    layout = parallel_layout(f, offset, size) if layout is None else layout
    if layout is None:
        return None
    return io.BufferedReader(BlockDecoder(f.fileno(), offset, layout, threads, where, early), buffer_size=1 << 17)


def parallel_layout(f: BinaryIO, offset: int, size: int) -> XzLayout | None:
    """The Blocks of the .xz member at ``offset`` when :func:`open_xz_blocks` would decode it
    on threads (given two), else None; starts nothing."""
    if size < PARALLEL_MIN:
        return None
    try:
        if not f.seekable():
            return None
        fd = f.fileno()
        layout = locate_blocks(lambda off, n: os.pread(fd, n, offset + off), size)
    except (XzFramingError, OSError, AttributeError, io.UnsupportedOperation):
        return None
    if not 2 <= len(layout.blocks) <= BLOCKS_MAX:
        return None
    if sum(r.uncompressed_size for _, r in layout.blocks[1:]) < PARALLEL_REST_MIN:
        return None
    return layout
