"""Just enough ELF to do what ldconfig does: class, machine, type, interpreter, SONAME, NEEDED.

Layout from the System V gABI ("ELF header", "Program header", "Dynamic section") and
glibc's ``elf/readelflib.c`` for what ldconfig looks at. Reads go through a ``pread``
callable so a 2 MB library costs a few small reads, not a full copy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

ELFMAG = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_EXEC, ET_DYN = 2, 3
EM_386, EM_X86_64, EM_AARCH64, EM_ARM = 3, 62, 183, 40
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME = 0, 1, 5, 14
DT_RPATH, DT_RUNPATH, DT_FLAGS_1 = 15, 29, 0x6FFFFFFB
DF_1_NODEFLIB = 0x800

#: refuse to parse tables larger than this (a hostile file cannot make us allocate much)
_MAX_TABLE = 1 << 20


class ElfError(ValueError):
    """The file is not an ELF object ldconfig would accept (message as ldconfig words it)."""


@dataclass
class ElfInfo:
    """What ldconfig reads from one shared object."""

    elf_class: int
    machine: int
    e_type: int
    #: processor flags (the ARM EABI version and float ABI, RISC-V's float ABI)
    e_flags: int = 0
    interpreter: str | None = None
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    #: a PT_DYNAMIC segment with a DT_STRTAB was found (ldconfig skips objects without one)
    dynamic_ok: bool = False
    #: the object has a PT_DYNAMIC segment at all (ldd: without one, "not a dynamic executable")
    has_dynamic: bool = False
    #: DT_RPATH and DT_RUNPATH strings (the loader's search path of this object), DT_FLAGS_1
    rpath: str | None = None
    runpath: str | None = None
    flags_1: int = 0


def read_elf(pread: Callable[[int, int], bytes], size: int, all_types: bool = False) -> ElfInfo:
    """Parse the ELF header, program headers and dynamic section through ``pread(off, n)``.

    ldconfig looks only at shared objects (``ET_DYN``); ``all_types`` also reads the program
    and dynamic headers of executables (``ET_EXEC``), as the loader does for ldd.

    Raises :class:`ElfError` for anything that is not a well-formed ELF file.
    """
    ident = pread(0, 16)
    if len(ident) < 16 or ident[:4] != ELFMAG:
        raise ElfError("wrong magic bytes")
    cls, data = ident[4], ident[5]
    if cls not in (ELFCLASS32, ELFCLASS64) or data not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ElfError("unknown ELF class or data encoding")
    e = "<" if data == ELFDATA2LSB else ">"
    if cls == ELFCLASS64:
        hdr = pread(16, 48)
        if len(hdr) < 48:
            raise ElfError("truncated ELF header")
        e_type, e_machine, _v, _entry, e_phoff, _shoff, e_flags, _ehsize, e_phentsize, e_phnum = struct.unpack(
            e + "HHIQQQIHHH", hdr[:42]
        )
        ph_fmt, ph_size = e + "IIQQQQQQ", 56
    else:
        hdr = pread(16, 36)
        if len(hdr) < 36:
            raise ElfError("truncated ELF header")
        e_type, e_machine, _v, _entry, e_phoff, _shoff, e_flags, _ehsize, e_phentsize, e_phnum = struct.unpack(
            e + "HHIIIIIHHH", hdr[:30]
        )
        ph_fmt, ph_size = e + "IIIIIIII", 32
    info = ElfInfo(cls, e_machine, e_type, e_flags)
    if e_type != ET_DYN and not (all_types and e_type == ET_EXEC):
        return info
    if e_phentsize < ph_size or e_phnum * e_phentsize > _MAX_TABLE or e_phoff + e_phnum * e_phentsize > size:
        raise ElfError("file is truncated")
    table = pread(e_phoff, e_phnum * e_phentsize)
    loads, dynamic = [], None
    for i in range(e_phnum):
        raw = struct.unpack_from(ph_fmt, table, i * e_phentsize)
        if cls == ELFCLASS64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = raw
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _flags, _align = raw
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC and dynamic is None:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            raw_interp = pread(p_offset, min(p_filesz, 4096)) if p_offset < size else b""
            info.interpreter = raw_interp.split(b"\0", 1)[0].decode("latin-1")
    if dynamic is None or dynamic[1] == 0:
        return info
    info.has_dynamic = True
    d_off, d_size = dynamic
    if d_off >= size or d_size > _MAX_TABLE:
        raise ElfError("file is truncated")
    dyn = pread(d_off, min(d_size, size - d_off))
    ent_fmt, ent_size = (e + "qQ", 16) if cls == ELFCLASS64 else (e + "iI", 8)
    entries = []
    for pos in range(0, len(dyn) - ent_size + 1, ent_size):
        tag, val = struct.unpack_from(ent_fmt, dyn, pos)
        if tag == DT_NULL:
            break
        entries.append((tag, val))
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        return info
    # Map the string table's address to a file offset through the PT_LOAD that holds it
    # (readelflib.c: "Find the file offset of the segment containing the dynamic string table").
    loadoff = 0
    for vaddr, offset, filesz in loads:
        if vaddr <= strtab < vaddr + filesz:
            loadoff = vaddr - offset
            break
    base = strtab - loadoff
    info.dynamic_ok = True

    def string(off: int) -> str:
        pos = base + off
        if pos < 0 or pos >= size:
            raise ElfError("file is truncated")
        chunk = pread(pos, min(4096, size - pos))
        return chunk.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    for tag, val in entries:
        if tag == DT_NEEDED:
            info.needed.append(string(val))
        elif tag == DT_SONAME and info.soname is None:
            info.soname = string(val)
        elif tag == DT_RPATH and info.rpath is None:
            info.rpath = string(val)
        elif tag == DT_RUNPATH and info.runpath is None:
            info.runpath = string(val)
        elif tag == DT_FLAGS_1:
            info.flags_1 = val
    return info
