"""``file`` (file 5.44 ``src/file.c``, libmagic's ``magic.c`` ``file_or_fd``, ``fsmagic.c``,
``funcs.c`` ``file_buffer``, ``compress.c`` ``file_zmagic``) on paths of the image, with the
image's own compiled magic database.

Options: ``-b`` (``--brief``), ``-z`` (``--uncompress``: gzip, bzip2 and xz data are
decompressed and described, then the compressed data in parentheses), ``-L``
(``--dereference``), ``-h`` (``--no-dereference``); ``POSIXLY_CORRECT`` makes ``-L`` the
default, as in file.c. Any other option, a ``MAGIC`` variable, a ``~/.magic`` or an
``/etc/magic`` with entries, and whatever the evaluation does not implement
(:class:`~nuwa.script.commands.magic.softmagic.Unmodelled`) defer the whole invocation.
"""

from __future__ import annotations

import bz2
import lzma
import posixpath
import stat
import zlib

from nuwa.formats import magicdb
from nuwa.formats.magicdb import BINTEST
from nuwa.script.commands import _args
from nuwa.script.commands._memo import ContentMemo
from nuwa.script.commands.magic import builtins
from nuwa.script.commands.magic.softmagic import Buffer, SoftMagic, Unmodelled
from nuwa.script.commands.magic.textmagic import FILE_BYTES_MAX, ascmagic, encoding
from nuwa.script.context import Defer, Invocation, strerror

_SPEC = _args.spec("bzLh", {"brief": "b", "uncompress": "z", "dereference": "L", "no-dereference": "h"})
#: libmagic's default MAGIC path as Debian builds it (``file --version``)
MAGIC_PATH = ("/etc/magic", "/usr/share/misc/magic")
def _sets(data: bytes) -> tuple[list, dict]:
    """Set 0, and set 1 as name -> its block of entries (``file_magicfind``)."""
    entries, names = magicdb.parse(data)
    named = {}
    for i, m in enumerate(names):
        if m.cont_level == 0 and m.type == magicdb.T["name"]:
            j = i + 1
            while j < len(names) and names[j].cont_level != 0:
                j += 1
            named.setdefault(m.value[:m.value.find(b"\0")], names[i:j])
    return entries, named


_DB = ContentMemo(_sets, size=1)


def _load(inv: Invocation) -> list:
    """The entries of the image's magic (``file_apprentice`` over MAGIC_PATH): set 0 and
    the named blocks of set 1."""
    if "MAGIC" in inv.env:
        raise Defer("file: the MAGIC variable names another magic database")
    home = inv.env.get("HOME")
    if home:
        for name in (".magic.mgc", ".magic"):
            if inv.fs.lexists(posixpath.join(home, name)):
                raise Defer(f"file: {home}/{name} is read before the system magic")
    entries = None
    for path in MAGIC_PATH:
        try:
            data = inv.fs.read_bytes(path + ".mgc")
        except OSError:
            data = None
        if data is not None:
            try:
                got = _DB(data)
            except magicdb.MagicDBError as e:
                raise Defer(f"file: {e}") from None
            if entries is not None:
                raise Defer("file: more than one compiled magic database")
            entries = got
            continue
        try:
            text = inv.fs.read_bytes(path)
        except OSError:
            continue
        if any(line.strip() and not line.lstrip().startswith(b"#") for line in text.splitlines()):
            raise Defer(f"file: {path} holds magic entries (text magic is not compiled here)")
    if entries is None:
        raise Defer("file: no compiled magic database (/usr/share/misc/magic.mgc)")
    return entries


def _describe(inv: Invocation, entries: list, name: str, follow: bool, uncompress: bool) -> str:
    """``magic_file``: what ``file`` prints for one path (after ``NAME: ``)."""
    path = inv.path(name)
    fs = inv.fs
    try:
        st = fs.stat(path) if follow else fs.lstat(path)
    except OSError as e:
        return f"cannot open `{name}' ({strerror(e)})"
    mode = st.st_mode
    prefix = []
    if mode & stat.S_ISUID:
        prefix.append("setuid")
    if mode & stat.S_ISGID:
        prefix.append("setgid")
    if mode & stat.S_ISVTX:
        prefix.append("sticky")
    fmt = stat.S_IFMT(mode)
    if fmt == stat.S_IFDIR:
        return ", ".join(prefix + ["directory"])
    if fmt == stat.S_IFLNK:
        if prefix:
            raise Defer("file: a symbolic link with set-id or sticky bits")
        target = fs.readlink(path)
        try:
            fs.stat(path)
        except OSError:
            return f"broken symbolic link to {target}"
        return f"symbolic link to {target}"
    if fmt == stat.S_IFIFO:
        return ", ".join(prefix + ["fifo (named pipe)"])
    if fmt == stat.S_IFSOCK:
        return ", ".join(prefix + ["socket"])
    if fmt != stat.S_IFREG:
        raise Defer("file: a device file (its numbers are printed from the image's stat)")
    if prefix:
        raise Defer("file: a set-id or sticky regular file")
    if st.st_size == 0:
        return "empty"
    with fs.open(path, "rb") as f:
        data = f.read(FILE_BYTES_MAX)
    size = st.st_size

    def tail(n: int) -> bytes:
        elen = min(size, n)
        if size <= len(data):
            return data[size - elen:]
        with fs.open(path, "rb") as f:
            f.seek(size - elen)
            return f.read(elen)
    return file_buffer(entries, data, mode, tail, uncompress, True)


def file_buffer(entries: list, data: bytes, mode: int, tail, uncompress: bool, has_fd: bool) -> str:
    """``file_buffer`` (funcs.c): the description of ``data``; ``tail`` gives the end of
    the file for negative offsets (None for a decompressed buffer)."""
    nb = len(data)
    if nb == 0:
        return "empty"
    if nb == 1:
        return "very short file (no magic)"
    looks_text = encoding(data)[0]
    if uncompress:
        z = _zmagic(entries, data)
        if z is not None:
            return z
    builtins.check_tar(data)
    json = builtins.json_type(data)
    if json:
        return json
    if builtins.is_csv(data, looks_text):
        return "CSV text"
    builtins.check_cdf(data)
    if has_fd and nb > 5:
        builtins.check_elf(data)
    sm = SoftMagic(*entries, mode)
    if sm.softmagic(Buffer(data, tail), BINTEST, looks_text):
        return sm.text()
    if ascmagic(sm, data, looks_text, tail, len(data)):
        return sm.text()
    return "data"


def _zmagic(entries: list, data: bytes) -> str | None:
    """``file_zmagic``: gzip, bzip2 and xz data decompressed (at most FILE_BYTES_MAX bytes)
    and described, then ``(`` the compressed data's description ``)``."""
    if data[:2] in (b"\x1f\x9d", b"\x1f\x9e", b"\x1f\xa0", b"\x1f\x1e") or data[:4] in (b"PK\3\4", b"LZIP", b"LRZI",
                                                                                        b'\x04"M\x18',
                                                                                        b"\x28\xb5\x2f\xfd"):
        raise Unmodelled("compressed data of a kind not decompressed here (-z)")
    if data[:2] == b"\x1f\x8b":
        out = _inflate(data)
    elif data[:3] == b"BZh":
        out = _unbzip2(data)
    elif data[:6] == b"\xfd7zXZ\0":
        out = _unxz(data)
    else:
        # compress.c's lzmacmp and zlibcmp (a deflate header whose check bits work out: text
        # starting "x^", "8&"... is tried and fails with zlib's own message)
        if len(data) >= 13 and data[0] == 0x5D and not data[1] and not data[2] and data[12] in (0, 0xFF):
            raise Unmodelled("data that may be lzma compressed (-z)")
        if data[0] & 0xF == 8 and not data[0] & 0x80 and (data[0] << 8 | data[1]) % 31 == 0:
            raise Unmodelled("data with a zlib header (-z: zlib's error text)")
        return None
    inner = file_buffer(entries, out, 0, None, False, False)
    outer = file_buffer(entries, data, 0, None, False, False)
    return f"{inner} ({outer})"


def _decompressed(d, data: bytes, kind: str, errors) -> bytes:
    """At most FILE_BYTES_MAX bytes of ``data`` through decompressor ``d``; what libmagic would
    answer with its own error text (``errors``, or a stream cut short) is not modelled."""
    try:
        out = d.decompress(data, FILE_BYTES_MAX)
    except errors:
        raise Unmodelled(f"{kind} data that does not decompress (libmagic's error text)") from None
    if not d.eof and len(out) < FILE_BYTES_MAX:
        raise Unmodelled(f"truncated {kind} data (-z)")
    return out


def _inflate(data: bytes) -> bytes:
    return _decompressed(zlib.decompressobj(16 + zlib.MAX_WBITS), data, "gzip", zlib.error)


def _unbzip2(data: bytes) -> bytes:
    return _decompressed(bz2.BZ2Decompressor(), data, "bzip2", OSError)


def _unxz(data: bytes) -> bytes:
    return _decompressed(lzma.LZMADecompressor(lzma.FORMAT_XZ), data, "xz", lzma.LZMAError)


def file(inv: Invocation) -> int:
    """``file [-bzLh] FILE...`` (file 5.44 main/process): one line per file, names padded
    to the widest (without ``-b``); status 0 (a file that cannot be opened is described)."""
    try:
        opts, names = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        raise Defer(f"file: usage error ({e.text})") from None
    brief = uncompress = False
    follow = "POSIXLY_CORRECT" in inv.env
    for key, _ in opts:
        if key == "b":
            brief = True
        elif key == "z":
            uncompress = True
        elif key == "L":
            follow = True
        elif key == "h":
            follow = False
    if not names:
        raise Defer("file: no file operand (usage text)")
    for name in names:
        if name == "-" or not all(0x20 < ord(c) < 0x7F for c in name):
            raise Defer(f"file: operand {name!r} (standard input, or a name printed in the locale's form)")
    entries = _load(inv)
    wid = max(len(n) for n in names)
    out = []
    for name in names:
        try:
            desc = _describe(inv, entries, name, follow, uncompress)
        except Unmodelled as e:
            raise Defer(f"file: {name}: {e}") from None
        if not all(0x20 <= ord(c) < 0x7F for c in desc):
            raise Defer(f"file: {name}: a description with characters printed in the locale's form")
        if brief:
            out.append(desc + "\n")
        else:
            out.append(f"{name}:{' ' * (wid - len(name))} {desc}\n")
    inv.out("".join(out))
    return 0
