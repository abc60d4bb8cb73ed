"""Tiny kernel-module ELF files for the kmod judges: relocatable ELF32/ELF64, little or big
endian, with the sections libkmod reads (``.modinfo``, ``__ksymtab_strings``, ``__versions``,
``.symtab``/``.strtab``) and nothing else.

Real depmod and modinfo read them like any module, which lets a test build what the Debian
tree does not hold: a dependency loop, big-endian and 32-bit modules, ``__crc_`` symbols.
Layout from the System V gABI ("ELF Header", "Sections", "Symbol Table").
"""

from __future__ import annotations

import struct

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHN_ABS = 0xFFF1
STB_GLOBAL, STB_WEAK = 1, 2


def build_module(name: str, exports=(), needs=(), weak_needs=(), modinfo=(), versions=(), crcs=None,
                 bits: int = 64, big: bool = False, machine: int = 62) -> bytes:
    """A module ELF. ``exports`` go to ``__ksymtab_strings`` (and, when ``crcs`` maps them to
    values, to ``__crc_NAME`` absolute symbols); ``needs``/``weak_needs`` are undefined
    symbols; ``versions`` is ``__versions`` as (name, crc) pairs; ``modinfo`` the
    ``key=value`` strings (``name=`` is added)."""
    e = ">" if big else "<"
    is64 = bits == 64
    info = b"".join(s.encode() + b"\0" for s in (f"name={name}", *modinfo))
    ksym = b"".join(s.encode() + b"\0" for s in exports)
    vers = b"".join((struct.pack(e + ("Q" if is64 else "I"), c) + n.encode()).ljust(64, b"\0") for n, c in versions)

    strtab = bytearray(b"\0")
    syms = [(0, 0, 0, 0)]  # (name offset, info, shndx, value)

    def add(sym: str, bind: int, shndx: int, value: int = 0):
        syms.append((len(strtab), bind << 4, shndx, value))
        strtab.extend(sym.encode() + b"\0")

    text_index = 1  # defined symbols live in .modinfo's section index: any defined index works
    for s in exports:
        add(s, STB_GLOBAL, text_index)
    for s, c in (crcs or {}).items():
        add("__crc_" + s, STB_GLOBAL, SHN_ABS, c)
    for s in needs:
        add(s, STB_GLOBAL, 0)
    for s in weak_needs:
        add(s, STB_WEAK, 0)
    if is64:
        symtab = b"".join(struct.pack(e + "IBBHQQ", n, i, 0, sh, v, 0) for n, i, sh, v in syms)
    else:
        symtab = b"".join(struct.pack(e + "IIIBBH", n, v, 0, i, 0, sh) for n, i, sh, v in syms)

    sections = [(".modinfo", SHT_PROGBITS, info, 0, 0), ("__ksymtab_strings", SHT_PROGBITS, ksym, 0, 0)]
    if versions:
        sections.append(("__versions", SHT_PROGBITS, vers, 0, 0))
    symtab_index = len(sections) + 1
    sections.append((".symtab", SHT_SYMTAB, symtab, symtab_index + 1, 24 if is64 else 16))
    sections.append((".strtab", SHT_STRTAB, bytes(strtab), 0, 0))
    shstr = bytearray(b"\0")
    names = []
    for sname, *_ in sections + [(".shstrtab",)]:
        names.append(len(shstr))
        shstr.extend(sname.encode() + b"\0")
    sections.append((".shstrtab", SHT_STRTAB, bytes(shstr), 0, 0))

    ehsize = 64 if is64 else 52
    body = bytearray()
    offsets = []
    for _, _, data, _, _ in sections:
        while (ehsize + len(body)) % 8:
            body.append(0)
        offsets.append(ehsize + len(body))
        body.extend(data)
    while (ehsize + len(body)) % 8:
        body.append(0)
    shoff = ehsize + len(body)
    shnum = len(sections) + 1
    shstrndx = len(sections)
    shdrs = bytearray(64 if is64 else 40)
    for k, (sname, stype, data, link, entsize) in enumerate(sections):
        if is64:
            shdrs += struct.pack(e + "IIQQQQIIQQ", names[k], stype, 0, 0, offsets[k], len(data), link, 1, 1, entsize)
        else:
            shdrs += struct.pack(e + "IIIIIIIIII", names[k], stype, 0, 0, offsets[k], len(data), link, 1, 1, entsize)
    ident = b"\x7fELF" + bytes((2 if is64 else 1, 2 if big else 1, 1)) + b"\0" * 9
    if is64:
        hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, machine, 1, 0, 0, shoff, 0, ehsize, 0, 0, 64, shnum, shstrndx)
    else:
        hdr = ident + struct.pack(e + "HHIIIIIHHHHHH", 1, machine, 1, 0, 0, shoff, 0, ehsize, 0, 0, 40, shnum, shstrndx)
    return bytes(hdr) + bytes(body) + bytes(shdrs)
