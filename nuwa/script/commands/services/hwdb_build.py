"""Reading hwdb sources as systemd 252's ``systemd-hwdb update`` does (``src/shared/hwdb-util.c``).

Pure functions over bytes: ``read_lines`` is ``read_line_full(f, LONG_LINE_MAX,
READ_LINE_NOT_A_TTY)`` over a whole file, ``import_file`` is the parser of the same name (its
three states, the comment and whitespace rules and its warnings, word for word) filling a
:class:`~nuwa.script.commands.services.hwdb_trie.Trie`, and ``log_syntax`` formats a warning
as the program writes it on stderr (``log_syntax_internal`` through ``log_struct_internal``,
both cut at ``LINE_MAX``). Which files are read, and writing the result into the image, is
``hwdb_update``'s job.
"""

from __future__ import annotations

import errno
import gc
import re

from nuwa.script.commands.services.hwdb_trie import Trie

#: fileio.h's LONG_LINE_MAX: a longer line fails the file with ENOBUFS
LONG_LINE_MAX = 1024 * 1024
#: limits.h's LINE_MAX: the size of log.c's formatting buffers
LINE_MAX = 2048
#: read_line_full's line ends: \n, \r, both in either order, each optionally followed by one
#: NUL, or a NUL alone (a marker already seen, or anything after a NUL, starts the next line)
_EOL = re.compile(rb"\n\r?\0?|\r\n?\0?|\0")

HW_NONE, HW_MATCH, HW_DATA = 0, 1, 2


class ReadError(Exception):
    """``import_file`` returned an error (the file is read no further); ``errno`` says which."""

    def __init__(self, err: int):
        super().__init__(err)
        self.errno = err


def read_lines(data: bytes) -> tuple[list[bytes], bool]:
    """The lines ``read_line_full`` returns for a file holding ``data``, and whether it then
    fails with ENOBUFS (a line of ``LONG_LINE_MAX`` bytes or more: the lines before it are read)."""
    if b"\r" in data or b"\0" in data:
        lines = _EOL.split(data)
    else:
        lines = data.split(b"\n")
    if lines[-1] == b"":
        # the file ends with a line end (or is empty): the next read sees EOF
        lines.pop()
    if len(data) >= LONG_LINE_MAX:
        for n, line in enumerate(lines):
            if len(line) >= LONG_LINE_MAX:
                return lines[:n], True
    return lines, False


def log_syntax(filename: bytes, line: int, msg: bytes) -> bytes:
    """A ``log_syntax()`` warning as written to the console: ``FILE:LINE: MSG``, the message
    cut to LINE_MAX-1 bytes and then the whole (after its 8-byte ``MESSAGE=``) to LINE_MAX-9."""
    text = b"%s:%d: %s" % (filename, line, msg[:LINE_MAX - 1])
    return text[:LINE_MAX - 1 - len(b"MESSAGE=")] + b"\n"


def _isblank(c: bytes) -> bool:
    return c in (b" ", b"\t")


def insert_data(trie: Trie, matches: list[bytes], line: bytes, filename: bytes, priority: int, number: int,
                warn: list[bytes]) -> None:
    """``insert_data``: one property line (it starts with a space) under every match."""
    key, eq, value = line.partition(b"=")
    if not eq:
        warn.append(log_syntax(filename, number, b'Key-value pair expected but got "%s", ignoring.' % line))
        return
    # "Replace multiple leading spaces by a single space": drop blanks while the next is one too
    i = 0
    while _isblank(key[i:i + 1]) and _isblank(key[i + 1:i + 2]):
        i += 1
    key = key[i:]
    if len(key) <= 1:
        warn.append(log_syntax(filename, number, b'Empty key in "%s=%s", ignoring.' % (key, value)))
        return
    for match in matches:
        trie.insert(match, key, value, filename, priority, number)


def import_file(trie: Trie, filename: bytes, data: bytes, priority: int, warn: list[bytes]) -> None:
    """``import_file``: parse one hwdb source into ``trie``; warnings are appended to ``warn``.

    Raises :class:`ReadError` (ENOBUFS) after the lines before an over-long one were imported,
    as the C function returns then (without the end-of-file warning).
    """
    lines, too_long = read_lines(data)
    state = HW_NONE
    matches: list[bytes] = []
    number = 0
    for line in lines:
        number += 1
        if line[:1] == b"#":
            continue
        pos = line.find(b"#")
        if pos >= 0:
            line = line[:pos]
        # isspace() in the C locale: the same set as bytes.rstrip()
        line = line.rstrip()
        if state == HW_NONE:
            if not line:
                continue
            if line[0] == 0x20:
                warn.append(log_syntax(filename, number,
                                       b'Match expected but got indented property "%s", ignoring line.' % line))
                continue
            state = HW_MATCH
            matches = [line]
        elif state == HW_MATCH:
            if not line:
                warn.append(log_syntax(filename, number, b"Property expected, ignoring record with no properties."))
                state, matches = HW_NONE, []
            elif line[0] != 0x20:
                matches.append(line)
            else:
                state = HW_DATA
                insert_data(trie, matches, line, filename, priority, number, warn)
        else:
            if not line:
                state, matches = HW_NONE, []
            elif line[0] != 0x20:
                warn.append(log_syntax(filename, number,
                                       b'Property or empty line expected, got "%s", ignoring record.' % line))
                state, matches = HW_NONE, []
            else:
                insert_data(trie, matches, line, filename, priority, number, warn)
    if too_long:
        raise ReadError(errno.ENOBUFS)
    if state == HW_MATCH:
        warn.append(log_syntax(filename, number, b"Property expected, ignoring record with no properties."))


def build(sources: list[tuple[bytes, bytes | int]]) -> tuple[bytes, list[bytes], int]:
    """``hwdb_update``'s middle part: import ``sources`` (file name, then its bytes or the errno
    opening or reading it failed with), in order and with priorities 1, 2, ...; returns the
    ``hwdb.bin`` bytes, the warnings and the last import error (0 if none: only
    ``--strict`` turns it into a failure)."""
    trie = Trie()
    warn: list[bytes] = []
    last = 0
    # the trie is some 10^6 small lists that hold no cycles: the cyclic collector, which
    # would rescan them all again and again as they are made, is paused meanwhile (a
    # third of the time of the stock database)
    paused = gc.isenabled()
    gc.disable()
    try:
        for priority, (filename, data) in enumerate(sources, start=1):
            if isinstance(data, int):
                last = data
                continue
            try:
                import_file(trie, filename, data, priority, warn)
            except ReadError as e:
                last = e.errno
        return trie.store(), warn, last
    finally:
        if paused:
            gc.enable()
