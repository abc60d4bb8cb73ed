"""Reading man pages as mandb 2.11.2 does: the name parts of a page's path
(``lib/filenames.c``, ``lib/compression.c``), its ultimate source (``src/ult_src.c``: ``.so``
requests, symlinks, hard links), its bytes (``src/decompress.c``: zlib in process for ``.gz``)
and its whatis (``find_name``: manconv's recoding, then :mod:`lexgrog`).
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import posixpath
import re
import stat as _stat
import zlib

from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.commands.mandb import lexgrog
from nuwa.script.commands.mandb.store import Mandata
from nuwa.script.context import Defer, Invocation

#: the largest page read (on disk, or decompressed): the largest real pages are a few MB; a
#: larger file (a hostile image's sparse file or gzip bomb) defers instead of filling memory
PAGE_MAX = 64 << 20
#: comp_list of Debian's build (gzip, compress, bzip2, xz, lzip, zstd), in its order
COMP_EXTS = ("gz", "z", "Z", "bz2", "xz", "lzma", "lz", "zst", "zstd")


def b(name: str) -> str:
    """A path or name as its bytes, one character per byte (the records are C strings)."""
    return os.fsencode(name).decode("latin-1")


class _Err(Exception):
    """``ult_src`` gives up (its warnings are silent under -q): the page is skipped."""


class PageReader:
    """The pages one mandb process reads, with its caches (``ult_cache``, the last page
    read) for every tree it processes."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.fs = inv.fs
        self.ult_cache: dict[str, tuple[str, list[str]] | None] = {}
        self._last_read: tuple[str | None, bytes | None] = (None, None)

    # --- ult_src.c --------------------------------------------------------------------------

    def canonicalize(self, path: str) -> str:
        """``canonicalize_file_name`` in the image (every component must exist)."""
        return canonicalize(self.inv, path, "e")

    def access(self, path: str) -> bool:
        try:
            self.fs.stat(path)
            return True
        except OSError:
            return False

    def ult_src(self, name: str, path: str, st) -> tuple[str, list[str]] | None:
        """``ult_src(name, path, &buf, SO_LINK | SOFT_LINK | HARD_LINK)``: the page's
        ultimate source and the trace of files that lead to it."""
        if name in self.ult_cache:
            return self.ult_cache[name]
        trace = [name]
        base = name
        result = None
        try:
            if _stat.S_ISLNK(st.st_mode):
                try:
                    base = self.canonicalize(name)
                except OSError:
                    raise _Err()
            if st.st_nlink > 1:
                base = self._ult_hardlink(base, st.st_ino)
            for _ in range(10):
                include = _test_for_include(self._first_directive(base))
                if include is None:
                    break
                base = self._find_include(name, path, include)
                trace.append(base)
            else:
                raise Defer(f"mandb: {name} is self referencing")
            trace.append(base)
            result = (base, trace)
        except _Err:
            result = None
        self.ult_cache[name] = result
        return result

    def _ult_hardlink(self, fullpath: str, inode: int) -> str:
        d, _, base = fullpath.rpartition("/")
        try:
            names = self.fs.readdir(d)
        except OSError as e:
            raise Defer(f"mandb cannot search {d} ({os.strerror(e.errno or 0)})")
        best = base
        for n in names:
            try:
                ino = self.fs.lstat(f"{d}/{n}").st_ino
            except OSError:
                continue
            if ino == inode and os.fsencode(best) > os.fsencode(n):
                best = n
        return fullpath if best == base else f"{d}/{best}"

    def _first_directive(self, path: str) -> bytes:
        """``find_include_directive``: the first line that is not a ``.\\"`` comment."""
        data = self._decompressed(path)
        if data is None:
            raise _Err()
        for line in data.split(b"\n"):
            if not line.startswith(b'.\\"'):
                return line
        return b""

    def _find_include(self, name: str, path: str, include: str) -> str:
        target = f"{path}/{include}"
        if not self.access(target):
            target = self.comp_file(target)
        if target is None:
            temp = f"{posixpath.dirname(name)}/{include}"
            target = temp if self.access(temp) else self.comp_file(temp)
        if target is None:
            raise _Err()
        try:
            return self.canonicalize(target)
        except OSError:
            raise _Err()

    def comp_file(self, filename: str) -> str | None:
        for ext in COMP_EXTS:
            if self.access(f"{filename}.{ext}"):
                return f"{filename}.{ext}"
        return None

    # --- reading pages ------------------------------------------------------------------------

    def _decompressed(self, path: str) -> bytes | None:
        """The page's bytes as ``decompress_open`` gives them (None where it cannot open).
        The last page read is kept: ``ult_src`` reads a page's first line, then ``find_name``
        the whole page."""
        if self._last_read[0] == path:
            return self._last_read[1]
        data = self._decompress(path)
        self._last_read = (path, data)
        return data

    def _decompress(self, path: str) -> bytes | None:
        try:
            if self.fs.stat(path).st_size > PAGE_MAX:
                raise Defer(f"mandb: {path} is over {PAGE_MAX >> 20} MiB (a page that size is not modelled)")
            raw = self.fs.read_bytes(path)
        except OSError as e:
            if e.errno == errno.EACCES:
                raise Defer(f"mandb cannot read {path} as its user (what it then reads is not modelled)")
            return None
        ext = path.rsplit(".", 1)[-1] if "." in posixpath.basename(path) else ""
        if ext == "gz":
            # decompress_open: zlib in process (in a forked function above 1 MiB)
            try:
                with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                    data = f.read(PAGE_MAX + 1)
            except (OSError, EOFError, zlib.error) as e:
                raise Defer(f"mandb: {path} does not decompress ({e}): what zlib then gives is not modelled")
            if len(data) > PAGE_MAX:
                raise Defer(f"mandb: {path} decompresses to over {PAGE_MAX >> 20} MiB (not modelled)")
            return data
        if ext in COMP_EXTS or ".Z/" in path:
            raise Defer(f"mandb: {path} is read through the image's .{ext} decompressor (not modelled)")
        return raw

    def find_name(self, path: str) -> tuple[str | None, str | None]:
        """``find_name`` of a man page: (whatis, filters), as latin-1 strings of bytes."""
        data = self._decompressed(path)
        if data is None:
            raise Defer(f"mandb: lexgrog cannot open {path}")
        self._check_recoding(path, data)
        try:
            whatis, filters = lexgrog.find_name(data)
        except lexgrog.TooBig:
            raise Defer(f"mandb: the whatis of {path} exceeds {lexgrog.MAX_NAME} bytes (truncated with a warning)")
        except lexgrog.Unsupported as e:
            raise Defer(f"mandb: lexgrog on {path}: {e} (not modelled)")
        return (None if whatis is None else whatis.decode("latin-1")), filters

    def _check_recoding(self, path: str, data: bytes) -> None:
        """``find_name``'s recoding to UTF-8 (manconv) leaves the bytes as they are: valid
        UTF-8 is kept as is by the in-process check of a ``.gz`` page (``manconv_inprocess``
        validates first), and by manconv's trial UTF-8 conversion in a pipeline unless a
        ``coding:`` tag in the first line names another encoding for non-ASCII text."""
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise Defer(f"mandb: {path} is not UTF-8: manconv's recoding is not modelled")
        inprocess = path.endswith(".gz") and len(data) < 1048576
        if inprocess or data.isascii():
            return
        m = re.search(rb"-\*-.*coding:\s*([^\s;]+)", data.split(b"\n", 1)[0])
        if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
            raise Defer(f"mandb: {path} declares the coding {m.group(1).decode('latin-1')}: "
                        f"manconv's recoding is not modelled")


def _test_for_include(line: bytes) -> str | None:
    """``test_for_include``: the relative target of a ``.so`` request, or None."""
    s = line.lstrip(b" \t\n\v\f\r")
    if not s.startswith(b".so"):
        return None
    s = s[3:].lstrip(b" \t\n\v\f\r")
    if s.startswith(b"/"):
        return None
    m = re.match(rb"[^ \t\n\v\f\r]*", s)
    return os.fsdecode(m.group(0))


def comp_info(filename: str) -> tuple[str, str] | None:
    """``comp_info(filename, true)``: (stem, extension) of a compressed name, or None."""
    dot = filename.rfind(".")
    if dot >= 0 and filename[dot + 1:] in COMP_EXTS:
        return filename[:dot], filename[dot + 1:]
    i = filename.find(".Z/")
    if i >= 0:
        return filename[:i], ""
    return None


def filename_info(file: str) -> Mandata | None:
    """``filename_info``: name, section extension, section and compression of a page's
    path, or None for a name mandb ignores as bogus (silently under -q)."""
    base = posixpath.basename(file)
    info = Mandata()
    c = comp_info(base)
    if c is not None:
        info.comp = c[1]
        base = c[0]
    dot = base.rfind(".")
    if dot < 0 or dot == len(base) - 1:
        return None
    ext = base[dot + 1:]
    base = base[:dot]
    d = posixpath.dirname(file)
    sec = d[d.rfind("/") + 4:] if len(d) - d.rfind("/") > 3 else None
    if sec is None:
        raise Defer(f"mandb: {file}'s directory name is shorter than 'man'")
    if sec and ext and sec[0] != ext[0]:
        return None
    info.name, info.ext, info.sec = base, b(ext), b(sec)
    if info.comp is not None:
        info.comp = b(info.comp)
    return info
