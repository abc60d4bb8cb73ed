"""What each machine's ldconfig adds to the generic one: the ABI flag of a library, the known
interpreters and libraries, the legacy hwcap subdirectory names, the byte order of the cache.

glibc 2.36 (Debian 12) builds ``ldconfig`` with one ``process_elf_file`` per machine, in
``sysdeps/unix/sysv/linux/<machine>/readelflib.c``, wrapping the generic
``process_elf32_file``/``process_elf64_file`` of ``elf/readelflib.c``:

- x86 (amd64, i386): ``EM_X86_64`` objects are ``FLAG_X8664_LIB64`` (64-bit) or
  ``FLAG_X8664_LIBX32`` (32-bit), always libc6; ``EM_386`` 32-bit objects keep the generic
  flag; any other machine is refused ("is for unknown machine N");
- aarch64 and arm (arm64, armhf, armel): 64-bit objects are ``FLAG_AARCH64_LIB64``; 32-bit
  objects with EABI version 5 are ``FLAG_ARM_LIBHF`` or ``FLAG_ARM_LIBSF`` by their float
  flag (libc6 either way), or plain libc6 when unmarked; no machine check;
- powerpc (ppc64el): 64-bit objects are ``FLAG_POWERPC_LIB64``, 32-bit ones generic;
- s390 (s390x): 64-bit objects are ``FLAG_S390_LIB64``, 32-bit ones generic;
- riscv (riscv64): the float ABI in ``e_flags`` makes ``FLAG_RISCV_FLOAT_ABI_DOUBLE`` or
  ``_SOFT``; another float ABI is refused.

The generic flag is ``FLAG_ELF``, raised to ``FLAG_ELF_LIBC6`` by a known interpreter
(``SYSDEP_KNOWN_INTERPRETER_NAMES`` of the machine's ``ldconfig.h``) or a known needed
library (``libc.so.6``, ``libm.so.6``).

Legacy hwcap subdirectories (``is_hwcap_platform``, removed in glibc 2.37) are computed for
x86, whose names and bits are known to the model; on the other machines only ``tls`` is
computed and a directory named like one of the machine's hwcaps or platforms is deferred.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.deb.arch import EM_386, EM_X86_64, EF_ARM_ABI_FLOAT_HARD, EF_ARM_ABI_FLOAT_SOFT, EF_ARM_EABI_VER5, \
    EF_ARM_EABIMASK, ELFCLASS32, ELFCLASS64, MACHINES
from nuwa.script.commands.caches.ldcache import (
    FLAG_AARCH64_LIB64,
    FLAG_ARM_LIBHF,
    FLAG_ARM_LIBSF,
    FLAG_ELF,
    FLAG_ELF_LIBC6,
    FLAG_POWERPC_LIB64,
    FLAG_RISCV_FLOAT_ABI_DOUBLE,
    FLAG_RISCV_FLOAT_ABI_SOFT,
    FLAG_S390_LIB64,
    FLAG_X8664_LIB64,
    FLAG_X8664_LIBX32,
)
from nuwa.script.commands.caches.elf import ElfInfo

#: riscv ``EF_RISCV_FLOAT_ABI`` mask and values (RISC-V ELF psABI, "e_flags")
EF_RISCV_FLOAT_ABI, EF_RISCV_FLOAT_ABI_SOFT, EF_RISCV_FLOAT_ABI_DOUBLE = 0x6, 0x0, 0x4

_KNOWN_LIBS = {"libc.so.6", "libm.so.6"}


class UnknownMachine(Exception):
    """ldconfig refuses the object with the message ``"%s is for unknown machine %d.\\n"``."""


@dataclass(frozen=True)
class LdAbi:
    """The machine-specific parts of one machine's ldconfig."""

    family: str  # the readelflib.c variant: x86, arm, powerpc, s390, riscv
    interpreters: frozenset[str]
    big_endian: bool = False
    #: legacy hwcap and platform subdirectory -> bit (computed into the entry's hwcap)
    hwcap_bits: dict[str, int] = field(default_factory=dict)
    #: names that are hwcaps or platforms of the machine but not modelled (deferred)
    hwcap_deferred: frozenset[str] = frozenset()

    def file_flag(self, info: ElfInfo) -> int:
        """``process_elf_file``: the cache flag of a shared object (see the module docstring).
        Raises :class:`UnknownMachine` where the machine's ldconfig rejects the object."""
        generic = FLAG_ELF
        if info.interpreter in self.interpreters or any(n in _KNOWN_LIBS for n in info.needed):
            generic = FLAG_ELF_LIBC6
        cls = info.elf_class
        if self.family == "x86":
            if info.machine == EM_X86_64:
                return (FLAG_X8664_LIB64 if cls == ELFCLASS64 else FLAG_X8664_LIBX32) | FLAG_ELF_LIBC6
            if info.machine == EM_386 and cls == ELFCLASS32:
                return generic
            raise UnknownMachine(info.machine)
        if self.family == "arm":
            if cls == ELFCLASS64:
                return FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6
            if (info.e_flags & EF_ARM_EABIMASK) == EF_ARM_EABI_VER5:
                if info.e_flags & EF_ARM_ABI_FLOAT_HARD:
                    return FLAG_ARM_LIBHF | FLAG_ELF_LIBC6
                if info.e_flags & EF_ARM_ABI_FLOAT_SOFT:
                    return FLAG_ARM_LIBSF | FLAG_ELF_LIBC6
                return FLAG_ELF_LIBC6  # unmarked: compatible with every ARM ABI variant
            return generic
        if self.family == "powerpc":
            return FLAG_POWERPC_LIB64 | FLAG_ELF_LIBC6 if cls == ELFCLASS64 else generic
        if self.family == "s390":
            return FLAG_S390_LIB64 | FLAG_ELF_LIBC6 if cls == ELFCLASS64 else generic
        if self.family == "riscv":
            abi = info.e_flags & EF_RISCV_FLOAT_ABI
            if abi == EF_RISCV_FLOAT_ABI_DOUBLE:
                return FLAG_RISCV_FLOAT_ABI_DOUBLE | FLAG_ELF_LIBC6
            if abi == EF_RISCV_FLOAT_ABI_SOFT:
                return FLAG_RISCV_FLOAT_ABI_SOFT | FLAG_ELF_LIBC6
            raise UnknownMachine(info.machine)
        return generic

    def path_hwcap(self, path: str) -> int:
        """``path_hwcap``: hwcap bits implied by trailing hwcap-named components of ``path``."""
        hw = 0
        for comp in reversed(path.rstrip("/").split("/")):
            bit = self.hwcap_bits.get(comp)
            if bit is None:
                break
            hw += 1 << bit
        return hw

    def is_hwcap_dir(self, name: str) -> bool:
        """``is_hwcap_platform``: a subdirectory ldconfig descends into (computed or deferred)."""
        return name in self.hwcap_bits or name in self.hwcap_deferred


_TLS = {"tls": 63}
# x86 legacy hwcap and platform names (sysdeps/x86/dl-hwcap.h, dl-procinfo.c) and "tls".
_X86_HWCAPS = {"x86_64": 1, "avx512_1": 2, "i586": 48, "i686": 49, "haswell": 50, "xeon_phi": 51, **_TLS}
_ARM_INTERP = {"/lib/ld-linux.so.3", "/lib/ld-linux-armhf.so.3"}

_X86 = LdAbi("x86", frozenset({"/lib/ld-linux.so.2", "/libx32/ld-linux-x32.so.2", "/lib64/ld-linux-x86-64.so.2"}),
             hwcap_bits=_X86_HWCAPS)
#: by Debian architecture
LD_ABIS: dict[str, LdAbi] = {
    "amd64": _X86,
    "i386": _X86,
    # aarch64's dl-procinfo.h has no string hwcaps or platforms: only "tls"
    "arm64": LdAbi("arm", frozenset({"/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-aarch64_be.so.1", *_ARM_INTERP}),
                   hwcap_bits=_TLS),
    # arm's dl-procinfo.h: HWCAP_IMPORTANT is vfp|neon; platforms v5l..v8l are not modelled
    "armhf": LdAbi("arm", frozenset(_ARM_INTERP), hwcap_bits=_TLS,
                   hwcap_deferred=frozenset({"vfp", "neon", "vfpv3", "v5l", "v6l", "v7l", "v8l"})),
    "armel": LdAbi("arm", frozenset(_ARM_INTERP), hwcap_bits=_TLS,
                   hwcap_deferred=frozenset({"vfp", "neon", "vfpv3", "v5l", "v6l", "v7l", "v8l"})),
    "ppc64el": LdAbi("powerpc", frozenset({"/lib/ld.so.1", "/lib64/ld64.so.1", "/lib64/ld64.so.2"}), hwcap_bits=_TLS,
                     hwcap_deferred=frozenset({"power4", "power5", "power5+", "power6", "power6x", "power7",
                                               "power8", "power9", "power10", "ppc970", "cell", "altivec", "vsx"})),
    "s390x": LdAbi("s390", frozenset({"/lib/ld.so.1", "/lib/ld64.so.1", "/lib64/ld64.so.1"}), big_endian=True,
                   hwcap_bits=_TLS,
                   hwcap_deferred=frozenset({"g5", "z900", "z990", "z9-109", "z10", "z196", "zEC12", "z13", "z14",
                                             "z15", "z16", "esan3", "zarch", "high_gprs", "vx"})),
    "riscv64": LdAbi("riscv", frozenset({"/lib/ld-linux-riscv64-lp64.so.1", "/lib/ld-linux-riscv64-lp64d.so.1"}),
                     hwcap_bits=_TLS),
}

assert set(LD_ABIS) <= set(MACHINES)
