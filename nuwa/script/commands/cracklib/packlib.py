"""cracklib's packed dictionary (cracklib 2.9.6 ``src/lib/packlib.c``, ``packer.h``): the
three files ``PWOpen(prefix, "w")``, ``PutPW`` and ``PWClose`` write.

- ``PREFIX.pwd``: the words in blocks of ``NUMWORDS`` (16) slots; a block's first word is
  stored whole and NUL-terminated, each later slot as one byte (the length of the prefix it
  shares with the slot before) and the rest of the word, NUL-terminated; an empty slot is
  one NUL byte. A block is written each time 16 words were put and once more at close
  (``PFOR_FLUSH``), even when that last block is empty.
- ``PREFIX.pwi``: ``struct pi_header`` (``pih_magic`` 0x70775631, ``pih_numwords``,
  ``pih_blocklen`` 16, ``pih_pad`` 0: little-endian u32, u32, u16, u16) then, per block,
  the u32 offset of the block in ``.pwd`` (``ftell``).
- ``PREFIX.hwm``: 256 u32 "high water marks": for each first byte, the number of the last
  word put that starts with it; at close each zero mark from 1 to 255 takes the one before.
"""

from __future__ import annotations

import struct

PIH_MAGIC = 0x70775631
NUMWORDS = 16
MAXWORDLEN = 32
#: fgets(buffer, STRINGSIZE, stdin) in packer.c
STRINGSIZE = 1024


class Packer:
    """One dictionary open for writing: ``put`` each word (bytes without NUL, at most
    ``MAXWORDLEN - 1`` long, as packer.c hands them), then ``close`` for the three files."""

    def __init__(self) -> None:
        self.pwd = bytearray()
        self.pwi = bytearray(struct.pack("<IIHH", PIH_MAGIC, 0, NUMWORDS, 0))
        self.hwms = [0] * 256
        self.numwords = 0
        self.block: list[bytes] = []

    def put(self, word: bytes) -> None:
        """``PutPW(pwp, string)``: the word joins the current block; a full block is written."""
        self.block.append(word[:MAXWORDLEN - 1])
        # hwms[string[0] & 0xff]: the empty word's first byte is its NUL
        self.hwms[word[0] if word else 0] = self.numwords
        self.numwords += 1
        if len(self.block) == NUMWORDS:
            self._flush()

    def _flush(self) -> None:
        self.pwi += struct.pack("<I", len(self.pwd))
        slots = self.block + [b""] * (NUMWORDS - len(self.block))
        out = self.pwd
        out += slots[0] + b"\0"
        prev = slots[0]
        for word in slots[1:]:
            if word:
                j = 0
                while j < len(prev) and j < len(word) and prev[j] == word[j]:
                    j += 1
                out.append(j & 0xFF)
                out += word[j:]
            out.append(0)
            prev = word
        self.block = []

    def close(self) -> tuple[bytes, bytes, bytes]:
        """``PWClose``: the last block (always written), the header with the word count, the
        filled-in high water marks; returns the bytes of ``.pwd``, ``.pwi`` and ``.hwm``."""
        self._flush()
        self.pwi[:12] = struct.pack("<IIHH", PIH_MAGIC, self.numwords & 0xFFFFFFFF, NUMWORDS, 0)
        for i in range(1, 256):
            if not self.hwms[i]:
                self.hwms[i] = self.hwms[i - 1]
        return bytes(self.pwd), bytes(self.pwi), struct.pack("<256I", *self.hwms)


def input_lines(data: bytes):
    """What packer.c's ``fgets(buffer, STRINGSIZE, stdin)`` loop reads: pieces ending after a
    newline, or after ``STRINGSIZE - 1`` bytes, or at the end of the input."""
    pos, n = 0, len(data)
    while pos < n:
        end = data.find(b"\n", pos, pos + STRINGSIZE - 1)
        end = min(pos + STRINGSIZE - 1, n) if end < 0 else end + 1
        yield data[pos:end]
        pos = end


def packer_word(piece: bytes) -> bytes:
    """The word packer.c makes of one ``fgets`` piece: a C string (up to a NUL), cut to
    ``MAXWORDLEN - 1`` bytes (``buffer[MAXWORDLEN - 1] = '\\0'``), then ``Chop`` removes its
    last byte whatever it is (the newline, or a word's last letter)."""
    nul = piece.find(b"\0")
    word = piece[:nul] if nul >= 0 else piece
    return word[:MAXWORDLEN - 1][:-1]
