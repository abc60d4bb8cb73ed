"""``ldd`` (glibc 2.36, Debian 12's libc-bin): the shared objects a program would load.

The real ldd is a bash script (``elf/ldd.bash.in``) that asks each loader of ``RTLDLIST``
whether it handles the file (``ld.so --verify``) and then runs the loader with
``LD_TRACE_LOADED_OBJECTS=1``, which maps the dependency tree and prints the link map
(``elf/rtld.c``, the ``--list`` branch). Running the image's loader is out of the question,
so this model walks the same tree itself, reading the image's files:

- the objects are loaded breadth first in ``DT_NEEDED`` order, each name at most once
  (``elf/dl-deps.c``, ``_dl_map_object_deps``); a name already loaded, by one of its names or
  its ``DT_SONAME``, or a file already loaded under another name, is not loaded again
  (``elf/dl-load.c``, ``_dl_map_object`` and the st_dev/st_ino check of
  ``_dl_map_object_from_fd``);
- a name with a slash is opened as it is; other names are searched as ``_dl_map_object``
  does: the requester's ``DT_RPATH`` and those of the objects that loaded it up to the
  program (only when the requester has no ``DT_RUNPATH``), ``LD_LIBRARY_PATH``, the
  requester's ``DT_RUNPATH``, ``/etc/ld.so.cache`` (unless ``DF_1_NODEFLIB``), then the
  system directories (Debian's multiarch directories, then ``/lib`` and ``/usr/lib``);
  ``$ORIGIN`` in a path is the directory of the object that names it;
- the vDSO comes first, the program interpreter where the dependency walk finds it.

The output is glibc's: ``\\tNAME => PATH (0xADDR)``, ``\\tPATH (0xADDR)`` when the name is the
path, ``\\tNAME => not found``. Load addresses are random on a real system (ASLR); the model
prints fixed, plausible ones. ``copy_exec`` in initramfs-tools' ``hook-functions`` keeps only
the paths.

Deferred: what depends on the CPU that will boot the image (``glibc-hwcaps`` and legacy
hardware-capability subdirectories, cache entries with hwcaps), ``LD_LIBRARY_PATH`` and
``LD_PRELOAD``, ``$LIB``/``$PLATFORM`` tokens, architectures other than x86-64 and AArch64
(and objects of another class or machine than the program's), libraries that are not
dynamic, and ldd's options.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from nuwa.script.commands.caches.elf import (DF_1_NODEFLIB, ELFCLASS64, EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC,
                                             ElfError, ElfInfo, read_elf)
from nuwa.script.commands.caches.ldcache import FLAG_AARCH64_LIB64, FLAG_ELF_LIBC6, FLAG_X8664_LIB64, decode_cache
from nuwa.script.context import Defer, Invocation

#: machine -> (multiarch triplet, ld.so.cache flags the loader accepts, vDSO name)
_ARCHES = {
    EM_X86_64: ("x86_64-linux-gnu", FLAG_ELF_LIBC6 | FLAG_X8664_LIB64, "linux-vdso.so.1"),
    EM_AARCH64: ("aarch64-linux-gnu", FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64, "linux-vdso.so.1"),
}

#: subdirectories the loader tries before a directory itself, depending on the CPU
#: (``ld.so --help``: "Subdirectories of glibc-hwcaps directories", "Legacy HWCAP
#: subdirectories"); a library found in one of them could differ from boot to boot
_HWCAP_DIRS = ("glibc-hwcaps", "tls", "haswell", "xeon_phi", "avx512_1", "x86_64", "i686", "sse2")

LD_SO_CACHE = "/etc/ld.so.cache"


@dataclass
class _Map:
    """One loaded object (glibc's ``struct link_map``, the parts ldd prints)."""

    libname: str                 # the first name it was requested by
    path: str | None             # where it was found (None: "not found")
    info: ElfInfo | None = None
    names: set[str] = field(default_factory=set)
    loader: "_Map | None" = None


class _Loader:
    """The dependency walk of one program, over the image's files."""

    def __init__(self, inv: Invocation, main_path: str, main: ElfInfo):
        self.inv = inv
        self.fs = inv.fs
        arch = _ARCHES.get(main.machine)
        if arch is None or main.elf_class != ELFCLASS64:
            raise Defer(f"ldd: the loader of ELF machine {main.machine} (class {main.elf_class}) is not modelled")
        self.machine, self.elf_class = main.machine, main.elf_class
        self.triplet, self.cache_flags, self.vdso = arch
        self.system_dirs = [f"/lib/{self.triplet}", f"/usr/lib/{self.triplet}", "/lib", "/usr/lib"]
        self.main = _Map(main_path, main_path, main, {main_path})
        self._cache: dict[str, list] | None = None
        self._ids: dict[tuple, _Map] = {}
        self.rtld: _Map | None = None

    # -- files ---------------------------------------------------------------------------------

    def _identity(self, path: str) -> tuple | None:
        try:
            st = self.fs.stat(path)
        except (OSError, ValueError):
            return None
        return (st.st_dev, st.st_ino) if st.is_reg else None

    def _elf(self, path: str) -> ElfInfo | None:
        """The object at ``path`` if the loader would accept it (right class and machine)."""
        try:
            h = self.fs.open_handle(path)
        except (OSError, ValueError):
            return None
        try:
            size = self.fs.stat(path).st_size
            info = read_elf(h.pread, size, all_types=True)
        except (OSError, ElfError):
            return None
        finally:
            h.close()
        if info.elf_class != self.elf_class or info.machine != self.machine:
            # the loader skips an object of another class or machine and searches on
            # (open_verify); that search order is modelled, the rare mixed case is not
            raise Defer(f"ldd: {path} is an object of another architecture")
        return info

    def _cache_entries(self) -> dict[str, list]:
        if self._cache is None:
            self._cache = {}
            try:
                data = self.fs.read_bytes(LD_SO_CACHE)
                entries, _gen = decode_cache(data)
            except (OSError, ValueError):
                entries = []  # the loader ignores a missing or unreadable cache
            for e in entries:
                self._cache.setdefault(e.soname, []).append(e)
        return self._cache

    # -- search --------------------------------------------------------------------------------

    def _expand(self, path_list: str, origin_of: _Map) -> list[str]:
        """A DT_RPATH/DT_RUNPATH string as directories (``elf/dl-load.c``, ``fillin_rpath``)."""
        out = []
        for d in path_list.split(":"):
            if "$LIB" in d or "${LIB}" in d or "$PLATFORM" in d or "${PLATFORM}" in d:
                raise Defer(f"ldd: $LIB/$PLATFORM in a search path ({path_list}) is not modelled")
            if "$ORIGIN" in d or "${ORIGIN}" in d:
                origin = posixpath.dirname(self._abs(origin_of.path or ""))
                d = d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            out.append(d or ".")  # an empty element is the current directory
        return out

    def _abs(self, p: str) -> str:
        return posixpath.normpath(self.inv.path(p))

    def _in_dirs(self, name: str, dirs: list[str]) -> str | None:
        for d in dirs:
            for sub in _HWCAP_DIRS:
                if _is_dir(self.fs, posixpath.join(self._abs(d), sub)):
                    raise Defer(f"ldd: {d}/{sub} makes the library found depend on the booting CPU")
            p = posixpath.join(d, name)
            if self._identity(self._abs(p)) is not None and self._elf(self._abs(p)) is not None:
                return p
        return None

    def _search(self, name: str, requester: _Map) -> str | None:
        info = requester.info
        if info is not None and info.runpath is None:
            m: _Map | None = requester
            while m is not None:  # the requester's DT_RPATH, then its loaders' up to the program
                if m.info is not None and m.info.rpath is not None and m.info.runpath is None:
                    found = self._in_dirs(name, self._expand(m.info.rpath, m))
                    if found:
                        return found
                m = m.loader
        if info is not None and info.runpath is not None:
            found = self._in_dirs(name, self._expand(info.runpath, requester))
            if found:
                return found
        if info is None or not info.flags_1 & DF_1_NODEFLIB:
            cands = [e for e in self._cache_entries().get(name, []) if e.flags == self.cache_flags]
            if any(e.hwcap for e in cands):
                raise Defer(f"ldd: ld.so.cache has hardware-capability entries for {name}")
            for e in cands:
                if self._identity(e.path) is not None and self._elf(e.path) is not None:
                    return e.path
            return self._in_dirs(name, self.system_dirs)
        return None

    # -- the walk ------------------------------------------------------------------------------

    def walk(self, rtld_path: str) -> list[_Map]:
        """The link map after ``_dl_map_object_deps``, without the program itself.

        ``rtld_path`` is the loader ldd runs; it calls itself by the program's ``PT_INTERP``
        name when there is one (``rtld.c``, ``_dl_rtld_libname``).
        """
        maps: list[_Map] = []
        interp = self.main.info.interpreter or rtld_path
        rtld = None
        if interp:
            rinfo = self._elf(interp)
            if rinfo is None:
                raise Defer(f"ldd: the program interpreter {interp} is missing or not an ELF object")
            rtld = _Map(interp, interp, rinfo, {interp} | ({rinfo.soname} if rinfo.soname else set()))
            self.rtld = rtld
            ident = self._identity(interp)
            if ident:
                self._ids[ident] = rtld
        main_id = self._identity(self.main.path)
        if main_id:
            self._ids[main_id] = self.main
        queue = [self.main]
        placed_rtld = False
        while queue:
            obj = queue.pop(0)
            for name in (obj.info.needed if obj.info else []):
                known = self._lookup(name, maps, rtld)
                if known is not None:
                    if known is rtld and not placed_rtld:
                        maps.append(rtld)
                        placed_rtld = True
                    continue
                path = self._abs(name) if "/" in name else self._search(name, obj)
                if path is None:
                    maps.append(_Map(name, None, None, {name}, obj))
                    continue
                ident = self._identity(self._abs(path))
                same = self._ids.get(ident)
                if same is not None:
                    same.names.add(name)
                    if same is rtld and not placed_rtld:
                        maps.append(rtld)
                        placed_rtld = True
                    continue
                info = self._elf(self._abs(path))
                if info is None:
                    maps.append(_Map(name, None, None, {name}, obj))
                    continue
                if info.e_type != ET_DYN:
                    raise Defer(f"ldd: {path} is not a shared object")
                m = _Map(name, path, info, {name} | ({info.soname} if info.soname else set()), obj)
                self._ids[ident] = m
                maps.append(m)
                queue.append(m)
        return maps

    @staticmethod
    def _lookup(name: str, maps: list[_Map], rtld: _Map | None) -> _Map | None:
        for m in maps:
            if m.path is not None and name in m.names:
                return m
        if rtld is not None and name in rtld.names:
            return rtld
        return None


def _is_dir(fs, path: str) -> bool:
    try:
        return fs.stat(path).is_dir
    except (OSError, ValueError):
        return False


def _rtld(inv: Invocation, info: ElfInfo) -> str:
    """The loader ldd.bash picks for the file: the first of the ``RTLDLIST`` written in the
    image's own ldd script that exists and accepts the file's class and machine (``--verify``)."""
    rtlds: list[str] = []
    for d in ("/usr/bin", "/bin"):
        try:
            text = inv.fs.read_bytes(d + "/ldd").decode("utf-8", "surrogateescape")
        except (OSError, ValueError):
            continue
        for line in text.splitlines():
            if line.startswith("RTLDLIST="):
                rtlds = line.split("=", 1)[1].strip('"').split()
                break
        break
    for r in rtlds:
        try:
            h = inv.fs.open_handle(r)
            try:
                ri = read_elf(h.pread, inv.fs.stat(r).st_size)
            finally:
                h.close()
        except (OSError, ValueError):
            continue
        if (ri.elf_class, ri.machine) == (info.elf_class, info.machine):
            return r
    raise Defer("ldd: no loader of the image's ldd RTLDLIST accepts this file")


def _trace(inv: Invocation, path: str, lines: list[str]) -> int:
    """One file: append what the loader prints for it; return ldd's status for it."""
    try:
        h = inv.fs.open_handle(path)
        try:
            info = read_elf(h.pread, inv.fs.stat(path).st_size, all_types=True)
        finally:
            h.close()
    except ElfError:
        info = None
    if info is None or info.e_type not in (ET_DYN, ET_EXEC) or not info.has_dynamic:
        # `ld.so --verify` exits 1 for a file without a dynamic section (a static or klibc
        # program) or that is no ELF object; ldd.bash then says so on stderr
        inv.err("\tnot a dynamic executable\n")
        return 1
    loader = _Loader(inv, path, info)
    maps = loader.walk(_rtld(inv, info))
    if not info.needed:
        raise Defer(f"ldd: {path} has no DT_NEEDED entries (the loader's 'statically linked' case)")
    # The chain the loader prints: the program, the vDSO (set up before the dependencies),
    # then the dependencies in search-list order -- except the loader itself, which rtld.c
    # unlinks and puts back right after the object that precedes it in the search list (so
    # before the vDSO when the program needs it directly and first).
    rtld = loader.rtld if any(m is loader.rtld for m in maps) else None
    chain: list = [loader.vdso] + [m for m in maps if m is not rtld]
    if rtld is not None:
        i = maps.index(rtld)
        chain.insert(0 if i == 0 else chain.index(maps[i - 1]) + 1, rtld)
    addr = 0x7F0000000000
    for i, m in enumerate(chain):
        a = addr - i * 0x200000 + 0x1000
        if isinstance(m, str):
            lines.append(f"\t{m} (0x{a:016x})")
        elif m.path is None:
            lines.append(f"\t{m.libname} => not found")
        elif m.libname == m.path:
            lines.append(f"\t{m.path} (0x{a:016x})")
        else:
            lines.append(f"\t{m.libname} => {m.path} (0x{a:016x})")
    return 0


def ldd(inv: Invocation) -> int:
    """``ldd [--] FILE...`` (glibc 2.36 ``ldd.bash.in`` and ``rtld.c``'s trace mode)."""
    args = inv.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    elif any(a.startswith("-") and a != "-" for a in args):
        raise Defer("ldd: options are not modelled")
    if not args:
        inv.err("ldd: missing file arguments\nTry `ldd --help' for more information.\n")
        return 1
    for var in ("LD_LIBRARY_PATH", "LD_PRELOAD"):
        if inv.env.get(var):
            raise Defer(f"ldd: {var} is set")
    if inv.fs.exists("/etc/ld.so.preload") and inv.fs.read_bytes("/etc/ld.so.preload").strip():
        raise Defer("ldd: /etc/ld.so.preload is not modelled")
    status = 0
    for a in args:
        if len(args) > 1:
            inv.out(f"{a}:\n")
        a = a if "/" in a else "./" + a  # as ldd.bash does before its messages
        p = inv.path(a)
        try:
            st = inv.fs.stat(p)
        except OSError:
            inv.err(f"ldd: {a}: No such file or directory\n")
            status = 1
            continue
        if not st.is_reg:
            inv.err(f"ldd: {a}: not regular file\n")
            status = 1
            continue
        lines: list[str] = []
        if _trace(inv, p, lines):
            status = 1
        inv.out("".join(line + "\n" for line in lines))
    return status
