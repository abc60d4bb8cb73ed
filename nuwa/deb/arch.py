"""The image's machine: its Debian architecture(s), decided from the image, never the host.

dpkg's view of an architecture (``/usr/share/dpkg/cputable``, ``tupletable`` and
``dpkg-architecture``'s variables) and the ELF identity of its code (System V gABI ``e_machine``,
``EI_CLASS``, ``EI_DATA``; the ARM EABI float flags in ``e_flags``) are declared once here, in
one table, for the release architectures a Debian or Ubuntu VM image may have. Every model
that knows a machine (``ldconfig``, ``uname -m``, ``arch``, ``dpkg --print-architecture``,
``dpkg-architecture``) and ``nuwa info`` take their answers from it.

Which architecture an image is: the ``Architecture`` of its ``dpkg`` package (the one dpkg was
built for, what ``dpkg --print-architecture`` prints); failing that, the first line of
``/var/lib/dpkg/arch``; failing that, the ELF header of the image's own programs
(``/usr/bin/dpkg``, ``/bin/sh``...). The foreign architectures are ``/var/lib/dpkg/arch``'s other
lines (``dpkg --add-architecture``), as ``dpkg_arch_load_list`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from nuwa.deb.status import DATABASE_FILE_MAX

EM_386, EM_ARM, EM_PPC64, EM_S390, EM_X86_64, EM_AARCH64, EM_RISCV = 3, 40, 21, 22, 62, 183, 243
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
#: ARM EABI (``EF_ARM_EABIMASK``, ``EF_ARM_ABI_FLOAT_HARD``): armhf objects carry the hard-float flag
EF_ARM_EABIMASK, EF_ARM_EABI_VER5, EF_ARM_ABI_FLOAT_HARD, EF_ARM_ABI_FLOAT_SOFT = 0xFF000000, 0x05000000, 0x400, 0x200

ADMINDIR = "/var/lib/dpkg"
#: programs whose ELF header tells the machine when the dpkg database does not
_PROBES = ("/usr/bin/dpkg", "/bin/dpkg", "/usr/bin/dash", "/bin/dash", "/bin/sh", "/usr/bin/env", "/bin/ls")


@dataclass(frozen=True)
class Machine:
    """One Debian architecture: dpkg's names for it and the ELF identity of its code."""

    arch: str  # DEB_HOST_ARCH
    cpu: str  # DEB_HOST_ARCH_CPU (cputable column 1)
    gnu_cpu: str  # DEB_HOST_GNU_CPU (cputable column 2)
    abi: str  # DEB_HOST_ARCH_ABI (tupletable)
    gnu_system: str  # DEB_HOST_GNU_SYSTEM
    multiarch: str  # DEB_HOST_MULTIARCH
    bits: int  # DEB_HOST_ARCH_BITS
    endian: str  # DEB_HOST_ARCH_ENDIAN
    e_machine: int
    elf_class: int
    uname: str  # ``uname -m`` of a kernel running this userland natively

    @property
    def gnu_type(self) -> str:
        """DEB_HOST_GNU_TYPE: ``gnu_cpu-gnu_system``."""
        return f"{self.gnu_cpu}-{self.gnu_system}"

    @property
    def elf_data(self) -> int:
        """``EI_DATA`` of the architecture's objects."""
        return ELFDATA2LSB if self.endian == "little" else ELFDATA2MSB


def _m(arch, cpu, gnu_cpu, abi, system, multiarch, bits, endian, em, cls, uname) -> Machine:
    return Machine(arch, cpu, gnu_cpu, abi, system, multiarch, bits, endian, em, cls, uname)


#: dpkg 1.21 (Debian 12) cputable/tupletable rows of the release architectures (and armel)
MACHINES: dict[str, Machine] = {m.arch: m for m in (
    _m("amd64", "amd64", "x86_64", "base", "linux-gnu", "x86_64-linux-gnu", 64, "little", EM_X86_64, ELFCLASS64, "x86_64"),
    _m("arm64", "arm64", "aarch64", "base", "linux-gnu", "aarch64-linux-gnu", 64, "little", EM_AARCH64, ELFCLASS64, "aarch64"),
    _m("armhf", "arm", "arm", "eabihf", "linux-gnueabihf", "arm-linux-gnueabihf", 32, "little", EM_ARM, ELFCLASS32, "armv7l"),
    _m("armel", "arm", "arm", "eabi", "linux-gnueabi", "arm-linux-gnueabi", 32, "little", EM_ARM, ELFCLASS32, "armv5tel"),
    _m("i386", "i386", "i686", "base", "linux-gnu", "i386-linux-gnu", 32, "little", EM_386, ELFCLASS32, "i686"),
    _m("ppc64el", "ppc64el", "powerpc64le", "base", "linux-gnu", "powerpc64le-linux-gnu", 64, "little", EM_PPC64, ELFCLASS64, "ppc64le"),
    _m("s390x", "s390x", "s390x", "base", "linux-gnu", "s390x-linux-gnu", 64, "big", EM_S390, ELFCLASS64, "s390x"),
    _m("riscv64", "riscv64", "riscv64", "base", "linux-gnu", "riscv64-linux-gnu", 64, "little", EM_RISCV, ELFCLASS64, "riscv64"),
)}


def machine(arch: str | None) -> Machine | None:
    """The table row of Debian architecture ``arch`` (None when unknown or None)."""
    return MACHINES.get(arch or "")


def arch_of_elf(header: bytes) -> str | None:
    """The Debian architecture whose code an ELF file is, from its first 52 bytes; None if
    the header is not ELF or names no architecture of the table (armhf and armel are told
    apart by the EABI float flag, as glibc's ldconfig does)."""
    if len(header) < 52 or header[:4] != b"\x7fELF":
        return None
    cls, data = header[4], header[5]
    order = "little" if data == ELFDATA2LSB else "big"
    e_machine = int.from_bytes(header[18:20], order)
    flags_at = 48 if cls == ELFCLASS64 else 36
    e_flags = int.from_bytes(header[flags_at : flags_at + 4], order)
    for m in MACHINES.values():
        if m.e_machine != e_machine or m.elf_class != cls or m.elf_data != data:
            continue
        if m.e_machine == EM_ARM:
            hard = (e_flags & EF_ARM_EABIMASK) == EF_ARM_EABI_VER5 and e_flags & EF_ARM_ABI_FLOAT_HARD
            if (m.arch == "armhf") != bool(hard):
                continue
        return m.arch
    return None


def _dpkg_package_arch(fs, admindir: str) -> str | None:
    """``Architecture`` of the ``dpkg`` stanza of the status file, read without a full parse
    (the answer is needed by cheap models such as ``uname -m`` on every call)."""
    try:
        if fs.stat(admindir + "/status").st_size > DATABASE_FILE_MAX:
            return None  # a damaged size (terabytes of holes): the ELF headers decide instead
        text = fs.read_bytes(admindir + "/status").decode("utf-8", "replace")
    except OSError:
        return None
    for para in text.split("\n\n"):
        lines = para.strip("\n").split("\n")
        if "Package: dpkg" not in lines:
            continue
        for line in lines:
            if line.startswith("Architecture:"):
                value = line.split(":", 1)[1].strip()
                return value if value and value != "all" else None
    return None


def arch_file(fs, admindir: str = ADMINDIR) -> list[str]:
    """The architectures listed in ``ADMINDIR/arch`` (dpkg's native and foreign ones), in order."""
    try:
        return fs.read_bytes(admindir + "/arch").decode("utf-8", "replace").split()
    except OSError:
        return []


def elf_architecture(fs) -> str | None:
    """The architecture of the image's own programs (the first probe that is a known ELF)."""
    for path in _PROBES:
        try:
            h = fs.open_handle(path, 0)
        except (OSError, ValueError):
            continue
        try:
            arch = arch_of_elf(h.pread(0, 64))
        finally:
            h.close()
        if arch is not None:
            return arch
    return None


def native_architecture(fs, admindir: str = ADMINDIR) -> str | None:
    """The image's native Debian architecture (dpkg database first, then ELF headers)."""
    arch = _dpkg_package_arch(fs, admindir)
    if arch:
        return arch
    listed = arch_file(fs, admindir)
    if listed:
        return listed[0]
    return elf_architecture(fs)


def foreign_architectures(fs, admindir: str = ADMINDIR) -> list[str]:
    """``dpkg --print-foreign-architectures``: ``ADMINDIR/arch`` without the native one."""
    native = native_architecture(fs, admindir)
    out: list[str] = []
    for a in arch_file(fs, admindir):
        if a not in (native, "all", "any") and a not in out:
            out.append(a)
    return out


def image_machine(fs, admindir: str = ADMINDIR) -> Machine | None:
    """The table row of the image's native architecture (None if unknown)."""
    return machine(native_architecture(fs, admindir))
