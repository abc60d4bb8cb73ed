"""What two real ``newaliases`` runs on the same /etc/aliases differ in, masked: the judge of
an ``aliases.db`` the model wrote (tests/script/test_newaliases.py and the postfix postinst's
tree comparison in tests/script/test_debconf_postfixconfig.py).

libdb writes the file id (20 bytes at offset 52 of the meta page: inode, device, a unique
number and the pid, then 4 zero bytes) and copies the meta page's bytes into page 2 where its
index does not cover them; postalias writes the time as ``YP_LAST_MODIFIED``'s ten digits."""

from __future__ import annotations

import re
import struct

_STAMP = re.compile(rb"\x01(\d{10})\x01YP_LAST_MODIFIED")


def masked(data: bytes) -> tuple[bytes, int]:
    """The file with its file-id copies and the time's digits zeroed, and that time."""
    b = bytearray(data)
    pagesize, = struct.unpack_from("<I", b, 20)
    b[52:72] = bytes(20)
    # page 2 was written from the meta page's buffer: its copy of the id shows where the
    # page's index does not cover it
    entries, = struct.unpack_from("<H", b, 2 * pagesize + 20)
    start = max(52, 26 + 2 * entries)
    if start < 72:
        b[2 * pagesize + start:2 * pagesize + 72] = bytes(72 - start)
    m = _STAMP.search(b)
    assert m, "no YP_LAST_MODIFIED"
    b[m.start(1):m.end(1)] = b"0" * 10
    return bytes(b), int(m.group(1))
