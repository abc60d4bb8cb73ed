"""glibc 2.36's account-file readers and writers, as update-passwd (base-passwd 3.6.1) uses them.

update-passwd reads with ``fgetpwent``/``fgetgrent``/``fgetspent`` and writes every entry
formatted anew (its own ``fputpwent``, glibc's ``putgrent`` and ``putspent``), unlike
shadow-utils, which keeps the lines it read (:mod:`.db`). So what glibc makes of a line is what
ends up in the file after a rewrite:

- ``__nss_readline`` (nss/nss_readline.c): leading white space is skipped, blank lines and
  ``#`` comments are skipped; the skip is a ``memmove(buf, p, strlen(p))`` that leaves the
  old tail after the moved text (harmless when a newline ends the line, not on a last line
  without one: ``"  ab"`` reads as ``"abab"``, as glibc does);
- the line parsers (nss/nss_files/files-parse.c, pwd/fgetpwent_r.c, grp/fgetgrent_r.c,
  shadow/sgetspent_r.c): a string field runs to the next ``:`` (or the end: missing trailing
  fields are empty), a number is ``strtoul``'s, and a line whose number field is empty (where
  one is required), past 32 bits or not followed by ``:``/end is skipped (``EINVAL``);
- group members split on ``,`` with leading white space skipped and empty members dropped
  (``parse_list``); shadow numbers are ``(long)(int)`` of that, empty meaning -1, and a line
  with only five fields is the "old form" (warn, inact, expire = -1).
"""

from __future__ import annotations

import dataclasses
import os

WS = b" \t\n\v\f\r"
ULONG_MAX = (1 << 64) - 1
#: putspent prints a flag field unless it is ``~0ul``
NOFLAG = ULONG_MAX


def strerror(e: OSError) -> str:
    """The C library's message for an errno."""
    return os.strerror(e.errno) if e.errno else str(e)


@dataclasses.dataclass
class Entry:
    """One ``struct passwd``, ``struct group`` or ``struct spwd`` (update-passwd's ``_node``)."""

    kind: str
    name: bytes
    passwd: bytes = b""
    uid: int = 0
    gid: int = 0
    gecos: bytes = b""
    home: bytes = b""
    shell: bytes = b""
    members: list[bytes] = dataclasses.field(default_factory=list)
    #: shadow: lstchg, min, max, warn, inact, expire (-1 = empty) and the flag
    nums: list[int] = dataclasses.field(default_factory=list)
    flag: int = NOFLAG
    #: the node's id: the uid of a passwd entry, the gid of a group, 0 for shadow
    id: int = 0

    def copy(self) -> "Entry":
        """``copy_node``."""
        return dataclasses.replace(self, members=list(self.members), nums=list(self.nums))


def lines(data: bytes):
    """The lines ``__nss_readline`` hands to a parser (newline removed)."""
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        buf = data[pos:end]
        pos = end
        p = buf.lstrip(WS)
        if not p or p[:1] == b"#":
            continue
        if len(p) != len(buf):
            buf = p + buf[len(p):]  # memmove without the terminator, as glibc
        yield buf.split(b"\n", 1)[0]


def _strtou32(s: bytes, i: int) -> tuple[int, int]:
    """``strtoul`` as the number fields read it: (value, end index); end == i when no digits
    were read. A value past 32 bits (a negative one is, as strtoul negates it in 64 bits;
    overflow is ``ULONG_MAX``) makes glibc 2.36 skip the line (measured: ``-1`` and
    ``4294967296`` are refused, ``-0`` and ``4294967295`` read)."""
    j = i
    while j < len(s) and s[j] in WS:
        j += 1
    neg = False
    if j < len(s) and s[j:j + 1] in (b"+", b"-"):
        neg = s[j:j + 1] == b"-"
        j += 1
    k = j
    while k < len(s) and 48 <= s[k] <= 57:
        k += 1
    if k == j:
        return 0, i
    v = int(s[j:k])
    if v > ULONG_MAX:
        v = ULONG_MAX
    elif neg:
        v = (-v) & ULONG_MAX
    if v > 0xFFFFFFFF:
        raise _Skip()
    return v, k


class _Skip(Exception):
    """The parser returned 0: glibc skips the line."""


class _Line:
    """A cursor over one line, with the files-parse.c field macros."""

    def __init__(self, s: bytes):
        self.s = s
        self.i = 0

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def string(self) -> bytes:
        """``STRING_FIELD(var, ISCOLON, 0)``: up to the next colon (or the end)."""
        j = self.s.find(b":", self.i)
        if j < 0:
            v, self.i = self.s[self.i:], len(self.s)
        else:
            v, self.i = self.s[self.i:j], j + 1
        return v

    def rest(self) -> bytes:
        v, self.i = self.s[self.i:], len(self.s)
        return v

    def _after_number(self, end: int) -> None:
        if end < len(self.s):
            if self.s[end:end + 1] != b":":
                raise _Skip()
            end += 1
        self.i = end

    def int_field(self) -> int:
        """``INT_FIELD``: a number is required."""
        v, end = _strtou32(self.s, self.i)
        if end == self.i:
            raise _Skip()
        self._after_number(end)
        return v

    def int_maybe_null(self, default: int, signed: bool = True) -> int:
        """``INT_FIELD_MAYBE_NULL`` with ``(long)(int)`` (or ``unsigned long``) conversion."""
        if self.at_end():
            raise _Skip()
        v, end = _strtou32(self.s, self.i)
        if end == self.i:
            v = default
        elif signed:
            v = v - (1 << 32) if v >= 1 << 31 else v
        self._after_number(end)
        return v


def parse_passwd(line: bytes) -> Entry:
    """pwd/fgetpwent_r.c's parser (NIS ``+``/``-`` names are the caller's business)."""
    c = _Line(line)
    e = Entry("passwd", c.string())
    e.passwd = c.string()
    e.uid = c.int_field()
    e.gid = c.int_field()
    e.gecos = c.string()
    e.home = c.string()
    e.shell = c.rest()
    e.id = e.uid
    return e


def parse_group(line: bytes) -> Entry:
    """grp/fgetgrent_r.c's parser with the trailing member list (``parse_list``)."""
    c = _Line(line)
    e = Entry("group", c.string())
    e.passwd = c.string()
    e.gid = c.int_field()
    e.id = e.gid
    for m in c.rest().split(b","):
        m = m.lstrip(WS)
        if m:
            e.members.append(m)
    return e


def parse_shadow(line: bytes) -> Entry:
    """shadow/sgetspent_r.c's parser."""
    c = _Line(line)
    e = Entry("shadow", c.string())
    e.passwd = c.string()
    e.nums = [c.int_maybe_null(-1) for _ in range(3)]
    while not c.at_end() and c.s[c.i] in WS:
        c.i += 1
    if c.at_end():
        e.nums += [-1, -1, -1]  # the old form
        return e
    e.nums += [c.int_maybe_null(-1) for _ in range(3)]
    if not c.at_end():
        end = c.s.find(b":", c.i)
        if end >= 0:
            raise _Skip()  # the flag must end the line (measured: "...:1:" is refused)
        e.flag = c.int_maybe_null(NOFLAG, signed=False)
    return e


PARSERS = {"passwd": parse_passwd, "group": parse_group, "shadow": parse_shadow}


class NisEntry(ValueError):
    """A NIS compat line (``+``/``-`` name): glibc parses it apart, update-passwd moves it."""


def read_entries(kind: str, data: bytes) -> list[Entry]:
    """Every entry ``fget*ent`` returns from ``data``, in order (skipped lines left out)."""
    out = []
    for line in lines(data):
        if line[:1] in (b"+", b"-"):
            raise NisEntry(line)
        try:
            out.append(PARSERS[kind](line))
        except _Skip:
            continue
    return out


def find_name(entries: list[Entry], name: bytes) -> Entry | None:
    """``find_by_named_entry``: the first entry of that name."""
    for e in entries:
        if e.name == name:
            return e
    return None


def find_id(entries: list[Entry], ident: int) -> Entry | None:
    """``find_by_id``: the first entry with that node id."""
    for e in entries:
        if e.id == ident:
            return e
    return None


def format_passwd(e: Entry) -> bytes:
    """update-passwd's ``fputpwent`` (non-NIS branch)."""
    return b"%s:%s:%d:%d:%s:%s:%s\n" % (e.name, e.passwd, e.uid, e.gid, e.gecos, e.home, e.shell)


def format_group(e: Entry) -> bytes:
    """glibc's ``putgrent``."""
    return b"%s:%s:%d:%s\n" % (e.name, e.passwd, e.gid, b",".join(e.members))


def format_shadow(e: Entry) -> bytes:
    """glibc's ``putspent``: -1 numbers print empty, the flag only when not ``~0ul``."""
    nums = b"".join(b"%d:" % n if n != -1 else b":" for n in e.nums)
    flag = b"%d" % e.flag if e.flag != NOFLAG else b""
    return b"%s:%s:%s%s\n" % (e.name, e.passwd, nums, flag)
