"""Reading kernel modules as libkmod does: the file (plain, xz, zstd, gzip) and its ELF.

Mirrors kmod 30's ``libkmod/libkmod-file.c`` (compression chosen by magic bytes, not by
the name) and ``libkmod/libkmod-elf.c`` (ELF32/ELF64, little and big endian; sections by
name; ``.modinfo`` strings; exported symbols from the ``__crc_*`` symbols of ``.symtab`` or,
without them, ``__ksymtab_strings``; needed symbols from the undefined symbols of ``.symtab``
with CRCs from ``__versions``). Parsing is pure: bytes in, lists out.

A file libkmod could not open raises :class:`ModuleFileError` carrying the errno libkmod
would report, so depmod's model can say what is wrong and where.
"""

from __future__ import annotations

import array
import errno
import struct
import sys
import zlib
from typing import NamedTuple


MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
MAGIC_XZ = b"\xfd7zXZ\x00"
MAGIC_GZIP = b"\x1f\x8b"

ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
EM_SPARC, EM_SPARCV9 = 2, 43
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_REGISTER = 13

#: module extensions per compression feature (``shared/util.c`` ``kmod_exts``)
EXTENSIONS = {"": ".ko", "zlib": ".ko.gz", "xz": ".ko.xz", "zstd": ".ko.zst"}

#: largest decompressed module accepted (a hostile .ko.xz cannot exhaust memory)
MAX_MODULE = 512 << 20


class ModuleFileError(Exception):
    """libkmod could not open or parse the module; ``errno`` is what it would report."""

    def __init__(self, err: int, detail: str):
        super().__init__(detail)
        self.errno = err
        self.detail = detail


def decompress(raw: bytes, features: frozenset[str]) -> bytes:
    """The module's ELF bytes: decompressed when its magic names a compression that this
    kmod build supports (``kmod_file_open``), else the bytes as they are."""
    # the decompressors are imported when a module needs one (Debian 12's modules are
    # plain ELF: depmod's process then never loads them)
    if "zstd" in features and raw[:4] == MAGIC_ZSTD:
        import zstandard
        try:
            return zstandard.ZstdDecompressor().stream_reader(raw).read(MAX_MODULE + 1)[: MAX_MODULE + 1]
        except zstandard.ZstdError as exc:
            raise ModuleFileError(errno.EINVAL, f"zstd: {exc}") from None
    if "xz" in features and raw[:6] == MAGIC_XZ:
        import lzma
        try:
            return lzma.LZMADecompressor().decompress(raw, MAX_MODULE + 1)
        except lzma.LZMAError as exc:
            raise ModuleFileError(errno.EINVAL, f"xz: {exc}") from None
    if "zlib" in features and raw[:2] == MAGIC_GZIP:
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, MAX_MODULE + 1)
        except zlib.error as exc:
            raise ModuleFileError(errno.EINVAL, f"gzip: {exc}") from None
    return raw


class Symbol(NamedTuple):
    """One exported or needed symbol (``struct kmod_modversion``); :meth:`ModuleElf.needed`
    returns plain tuples of these fields."""

    name: str
    crc: int
    weak: bool = False


def _cstr(data: bytes, pos: int) -> bytes:
    end = data.find(b"\0", pos)
    return data[pos:] if end < 0 else data[pos:end]


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class ModuleElf:
    """``struct kmod_elf``: the checks of ``kmod_elf_new`` and the section lookups."""

    def __init__(self, data: bytes):
        self.data = data
        size = len(data)
        if size <= 16 or data[:4] != b"\x7fELF":
            raise ModuleFileError(errno.ENOEXEC, "not an ELF file (no \\x7fELF magic)")
        cls, enc = data[4], data[5]
        if cls not in (ELFCLASS32, ELFCLASS64):
            raise ModuleFileError(errno.EINVAL, f"ELF header: unknown EI_CLASS {cls}")
        if enc not in (ELFDATA2LSB, ELFDATA2MSB):
            raise ModuleFileError(errno.EINVAL, f"ELF header: unknown EI_DATA {enc}")
        self.is64 = cls == ELFCLASS64
        e = "<" if enc == ELFDATA2LSB else ">"
        self.endian = e
        if size <= (64 if self.is64 else 52):
            raise ModuleFileError(errno.EINVAL, "ELF header truncated")
        if self.is64:
            self.machine = struct.unpack_from(e + "H", data, 18)[0]
            shoff, = struct.unpack_from(e + "Q", data, 40)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 58)
            self._shdr = struct.Struct(e + "IIQQQQIIQQ")
            self._sym = struct.Struct(e + "IBBHQQ")
        else:
            self.machine = struct.unpack_from(e + "H", data, 18)[0]
            shoff, = struct.unpack_from(e + "I", data, 32)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 46)
            self._shdr = struct.Struct(e + "IIIIIIIIII")
            self._sym = struct.Struct(e + "IIIBBH")
        if shentsize != self._shdr.size:
            raise ModuleFileError(errno.EINVAL, f"ELF header: e_shentsize {shentsize}, expected {self._shdr.size}")
        if shnum == 0 or shoff + shentsize * shnum > size:
            raise ModuleFileError(errno.EINVAL, f"file is too short to hold {shnum} section headers at offset {shoff}")
        self._shoff, self._shnum, self._shentsize = shoff, shnum, shentsize
        # sh_name of every section header as one array: modules built with
        # -ffunction-sections have thousands of sections, and depmod needs five of them
        words = array.array("I")
        words.frombytes(data[shoff:shoff + shnum * shentsize])
        if (e == "<") != (sys.byteorder == "little"):
            words.byteswap()
        self._sh_names = words[0::shentsize // 4]
        if shstrndx == SHN_UNDEF or shstrndx >= shnum or self.section_at(shstrndx) is None:
            raise ModuleFileError(errno.EINVAL, f"ELF header: bad section-name table index {shstrndx}")
        _, stroff, strsize = self.section_at(shstrndx)
        if strsize == 0 or data[stroff + strsize - 1] != 0:
            raise ModuleFileError(errno.EINVAL, "section-name table does not end with \\0")
        self._names = data[stroff:stroff + strsize]

    def section_at(self, i: int) -> tuple[int, int, int] | None:
        """(sh_name, sh_offset, sh_size) of section ``i``, None when it lies outside the file
        (``elf_get_section_info`` refuses those)."""
        if i <= 0 or i >= self._shnum:
            return None
        f = self._shdr.unpack_from(self.data, self._shoff + i * self._shentsize)
        name, offset, size = f[0], f[4], f[5]
        return (name, offset, size) if offset + size <= len(self.data) else None

    def section(self, name: bytes) -> bytes | None:
        """The bytes of the first section called ``name`` (``kmod_elf_get_section``: the
        lowest index whose name string is ``name`` and whose bytes are inside the file)."""
        want = name + b"\0"
        offsets = []
        p = self._names.find(want)
        while p >= 0:
            offsets.append(p)
            p = self._names.find(want, p + 1)
        best = None
        for off in offsets:
            start = 1
            while True:
                try:
                    i = self._sh_names.index(off, start)
                except ValueError:
                    break
                if best is not None and i >= best:
                    break
                if self.section_at(i) is not None:
                    best = i
                    break
                start = i + 1
        if best is None:
            return None
        _, off, size = self.section_at(best)
        return self.data[off:off + size]

    def strings(self, name: bytes) -> list[str]:
        """``kmod_elf_get_strings``: the NUL-separated non-empty strings of a section."""
        sec = self.section(name)
        if not sec:
            return []
        return [_text(s) for s in sec.split(b"\0") if s]

    def _symtab(self):
        """(.strtab, .symtab), or (None, None) when either is missing or malformed; looked up
        once (both symbol readers need them)."""
        cached = self.__dict__.get("_symtab_cache")
        if cached is None:
            strtab, symtab = self.section(b".strtab"), self.section(b".symtab")
            if strtab is None or symtab is None or len(symtab) % self._sym.size:
                strtab = symtab = None
            cached = self._symtab_cache = (strtab, symtab)
        return cached

    # Field offsets inside Elf32_Sym / Elf64_Sym (gABI "Symbol Table"): name, info, shndx
    def _layout(self):
        return (0, 4, 6) if self.is64 else (0, 12, 14)

    def _undefined(self, symtab: bytes) -> list[int]:
        """Indexes (from 1) of the symbols with ``st_shndx == SHN_UNDEF``, in table order.

        Why column slices: a module has thousands of symbols and only tens undefined, so
        finding the zero ``st_shndx`` bytes with ``bytes.find`` on one column per byte is
        far faster than unpacking every entry in Python (depmod's model must stay within 3x
        of the C program on a full module tree)."""
        size = self._sym.size
        _, _, sh = self._layout()
        lo, hi = symtab[sh::size], symtab[sh + 1::size]
        out = []
        pos = lo.find(0, 1)
        while pos >= 0:
            if hi[pos] == 0:
                out.append(pos)
            pos = lo.find(0, pos + 1)
        return out

    def exported(self) -> list[Symbol]:
        """``kmod_elf_get_symbols``: ``__crc_*`` symbols with their CRCs, else the names of
        ``__ksymtab_strings`` (CRC 0)."""
        strtab, symtab = self._symtab()
        out: list[Symbol] = []
        starts = set()
        if symtab is not None:
            p = strtab.find(b"__crc_")
            while p >= 0:
                starts.add(p)
                p = strtab.find(b"__crc_", p + 1)
        if starts:  # no __crc_ string, no __crc_ symbol: the fallback below, as kmod ends there
            size = self._sym.size
            # kmod falls back when any entry names a string outside .strtab
            names = self._st_names(symtab)
            if not names or max(names) < len(strtab):
                hits = [i for i, n in enumerate(names, 1) if n in starts]
                for i in sorted(hits):
                    f = self._sym.unpack_from(symtab, i * size)
                    name_off, info, shndx, value = self._sym_fields(f)
                    out.append(Symbol(_text(_cstr(strtab, name_off + 6)), self._resolve_crc(value, shndx)))
                if out:
                    return out
        sec = self.section(b"__ksymtab_strings")
        if not sec:
            return []
        return [Symbol(_text(s), 0) for s in sec.split(b"\0") if s]

    def _st_names(self, symtab: bytes) -> array.array:
        """``st_name`` of every symbol after the null one, read with ``array`` at C speed."""
        cached = self.__dict__.get("_names_cache")
        if cached is not None:
            return cached
        words = array.array("I")
        words.frombytes(symtab)
        if (self.endian == "<") != (sys.byteorder == "little"):
            words.byteswap()
        stride = self._sym.size // 4
        self._names_cache = words[stride::stride]
        return self._names_cache

    def _sym_fields(self, s):
        """(st_name, st_info, st_shndx, st_value) of a packed symbol of either class."""
        if self.is64:
            return s[0], s[1], s[3], s[4]
        return s[0], s[3], s[5], s[1]

    def _resolve_crc(self, crc: int, shndx: int) -> int:
        if shndx in (SHN_ABS, SHN_UNDEF):
            return crc
        sec = self.section_at(shndx)
        if sec is None:
            return 0xFFFFFFFFFFFFFFFF
        _, off, size = sec
        if crc > size - 4:
            return 0xFFFFFFFFFFFFFFFF
        return struct.unpack_from(self.endian + "I", self.data, off + crc)[0]

    def _undefined_names(self) -> tuple[bytes, list[int], list[int], bytes]:
        """What both needed-symbol readers start from: ``.strtab``, the indexes of the
        undefined symbols depmod reads (SPARC's register symbols left out), each one's name
        offset (checked to lie inside ``.strtab``, as libkmod refuses the module otherwise)
        and the ``st_info`` column of the whole table."""
        strtab, symtab = self._symtab()
        if symtab is None:
            raise ModuleFileError(errno.EINVAL, "no usable .symtab/.strtab")
        _, info_at, _ = self._layout()
        infos = symtab[info_at::self._sym.size]  # st_info of every symbol, the null one first
        und = self._undefined(symtab)
        if self.machine in (EM_SPARC, EM_SPARCV9):
            und = [i for i in und if infos[i] & 0xF != STT_REGISTER]
        st_names = self._st_names(symtab)
        offs = [st_names[i - 1] for i in und]
        nstr = len(strtab)
        if offs and max(offs) >= nstr:
            i = next(i for i, o in zip(und, offs) if o >= nstr)
            raise ModuleFileError(errno.EINVAL, f".symtab entry {i} wants .strtab offset {st_names[i - 1]} of {nstr}")
        return strtab, und, offs, infos

    def needed(self) -> list[tuple[str, int, bool]]:
        """``kmod_elf_get_dependency_symbols``: undefined symbols in ``.symtab`` order, then
        the ``__versions`` entries no symbol used (``module_layout``)."""
        versions = self.section(b"__versions") or b""
        if len(versions) % 64:
            versions = b""
        # struct modversion_info: crc (unsigned long) then the name in the rest of 64 bytes
        fmt = self.endian + ("Q56s" if self.is64 else "I60s")
        entries = [(n.split(b"\0", 1)[0], crc) for crc, n in struct.iter_unpack(fmt, versions)]
        vers: dict[bytes, tuple[int, int]] = {}
        for i, (name, crc) in enumerate(entries):
            if name not in vers:  # kmod_elf_crc_find takes the first entry of a name
                vers[name] = (i, crc)
        strtab, und, offs, infos = self._undefined_names()
        visited = set()
        out: list[Symbol] = []
        find = strtab.find
        for i, name_off in zip(und, offs):
            end = find(b"\0", name_off)
            name = strtab[name_off:end] if end >= 0 else strtab[name_off:]
            if not name:
                continue
            hit = vers.get(name)
            crc = 0
            if hit is not None:
                visited.add(hit[0])
                crc = hit[1]
            # plain tuples (a Symbol's fields): tens of thousands are made per depmod run
            out.append((name.decode("utf-8", "surrogateescape"), crc, (infos[i] >> 4) == STB_WEAK))
        if len(visited) < len(entries):
            for i, (name, crc) in enumerate(entries):
                if i not in visited:
                    out.append((_text(name), crc, False))
        return out

    def needed_names(self) -> list[str]:
        """The names of :meth:`needed`, in its order, without a ``__versions`` entry whose
        name came earlier (CRCs and binding left out): all that depmod's dependency edges
        read when no ``-e`` report asks about versions and weak symbols.

        Why a second reader: a full module tree has ~50,000 needed symbols and as many
        version entries, and depmod's model must stay within 3x of the C program. The version
        names are cut out of the section in a few C-level passes (see :meth:`_version_names`),
        and each needed name is one slice; :meth:`needed` stays the exact reference, and a
        property test compares the two over hand-built modules, malformed names included."""
        strtab, _und, offs, _infos = self._undefined_names()
        if strtab[-1:] == b"\0" and strtab.isascii():  # every name ends inside the table
            text = strtab.decode("ascii")
            find = text.find
            names = [text[o:find("\0", o)] for o in offs]
        else:
            names = [_text(_cstr(strtab, o)) for o in offs]
        if "" in names:
            names = [n for n in names if n]
        vnames = self._version_names()
        if vnames:
            extra = set(vnames).difference(names)
            if extra:
                names.extend(n for n in vnames if n in extra)
        return names

    def _version_names(self) -> list[str]:
        """The name of every ``__versions`` entry (``struct modversion_info``: the CRC, then
        the name, NUL-terminated or filling the rest of the 64 bytes), in entry order.

        The fast form blanks every CRC and reads the names as the white-space separated
        words of the section; it holds only when each entry's name is one word starting
        right after its CRC (no entry empty, no blank or white space inside a name, nothing
        after a name's NUL) and the section is ASCII: then the words are exactly the names,
        one per entry. Otherwise each entry is cut out alone, as :meth:`needed` does."""
        versions = self.section(b"__versions") or b""
        if len(versions) % 64 or not versions:
            return []
        n = len(versions) // 64
        csize = 8 if self.is64 else 4
        blank = bytearray(versions)
        zeros = bytes(n)
        for j in range(csize):
            blank[j::64] = zeros
        if b"\0" not in blank[csize::64] and blank.isascii() and len(blank.translate(None, _SPACES)) == len(blank):
            names = blank.translate(_NUL_TO_SPACE).decode("ascii").split()
            if len(names) == n:
                return names
        return [_text(versions[k + csize:k + 64].split(b"\0", 1)[0]) for k in range(0, len(versions), 64)]


#: what ``str.split()`` splits an ASCII string at, and the map making NULs blanks
_SPACES = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_NUL_TO_SPACE = bytes.maketrans(b"\0", b" ")


def modinfo_pairs(strings: list[str]) -> list[tuple[str, str]]:
    """``.modinfo`` strings as (key, value) pairs, as ``kmod_module_get_info`` splits them
    (a string without ``=`` is a key with an empty value)."""
    out = []
    for s in strings:
        k, eq, v = s.partition("=")
        out.append((k, v) if eq else (s, ""))
    return out


def modname_normalize(name: str) -> str:
    """``modname_normalize``: up to the first ``.``, with ``-`` turned into ``_``."""
    return name.split(".", 1)[0].replace("-", "_")


def alias_normalize(alias: str) -> str | None:
    """``alias_normalize``: ``-`` becomes ``_`` outside brackets; None on an unmatched bracket."""
    out = []
    i, n = 0, len(alias)
    while i < n:
        c = alias[i]
        if c == "-":
            out.append("_")
        elif c == "]":
            return None
        elif c == "[":
            j = alias.find("]", i)
            if j < 0:
                return None
            out.append(alias[i:j + 1])
            i = j
        else:
            out.append(c)
        i += 1
    return "".join(out)
