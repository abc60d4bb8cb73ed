"""``ldconfig`` offline: soname links and ``/etc/ld.so.cache``, byte for byte.

The model follows glibc 2.36's ``elf/ldconfig.c`` (directory list from ``/etc/ld.so.conf`` and
its ``include`` globs plus the system directories, duplicates dropped by inode; ``search_dir``
choosing one file per soname, creating missing soname links and removing stale ones) and
``elf/cache.c`` (entry order, string table, extension with the generator string). The
generator string is read from the image's own ldconfig binary, so the cache is what that
binary would write. The auxiliary cache (``/var/cache/ldconfig/aux-cache``) is left alone, by
decision: glibc 2.36's ``save_aux_cache`` (magic ``glibc-ld.so.auxcache-2.0``) keys every
entry by the scanned file's ``st_dev``, ``st_ino``, ``st_ctime`` and ``st_size`` *as the
running system that runs ldconfig sees them*. ``st_dev`` is the device number of whatever
block device the filesystem is mounted from then (a host's 254:0 for the oracle's chroot; on
the booted VM a virtio or SCSI number the image does not record, virtio-blk's major being
allocated dynamically), and the ctimes are those of that copy of the tree, so no writer —
nor two real runs on two copies of one tree — can produce the same bytes. The file only
speeds up ldconfig's next run: an entry whose key does not match is ignored and dropped when
ldconfig next saves, and a changed library always gets a new ctime, so a stale entry never
matches it.

Forms modelled: ``ldconfig``, ``ldconfig -r /`` (what libc-bin's trigger runs), ``-r DIR`` (a
chroot into DIR, seen through ``nuwa.fs.subtree.SubtreeFS``: mkinitramfs' ``ldconfig -r
"$DESTDIR"``), ``-X``, ``-N``, ``-C FILE``, ``-f CONF``, ``-i``, ``-p``, ``-n DIR...``, ``-l
LIB...``, ``-v`` (messages only).
Deferred (reported): old or compat formats, glibc-hwcaps and legacy
hwcap subdirectories, a.out libraries, machines outside ``nuwa.deb.arch.MACHINES``.

The machine is the image's, never the host's: the ELF header of the image's own ldconfig
binary names it (amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64), and
``ldabi.LD_ABIS`` holds what that machine's ldconfig does differently (library flags, known
interpreters, hwcap names, the cache's byte order); the multiarch directories are that
machine's (``/usr/lib/aarch64-linux-gnu``...).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import posixpath
import re
import stat as st

from nuwa.fs.model import FileSystem
from nuwa.deb.arch import MACHINES, arch_of_elf
from nuwa.fs.subtree import SubtreeFS
from nuwa.script.commands._common import is_dir
from nuwa.script.commands.caches.elf import ET_DYN, ElfError, read_elf
from nuwa.script.commands.caches.ldabi import LD_ABIS, LdAbi, UnknownMachine
from nuwa.script.commands.caches.ldcache import (
    FLAG_ELF,
    FLAG_ELF_LIBC6,
    CacheEntry,
    encode_cache,
    libcmp,
    print_cache,
    sorted_entries,
)
from nuwa.script.context import Defer, Invocation

LD_SO_CONF = "/etc/ld.so.conf"
LD_SO_CACHE = "/etc/ld.so.cache"
_BINARIES = ("/sbin/ldconfig", "/usr/sbin/ldconfig")
_GENERATOR_RE = re.compile(rb"ldconfig \([^\0]{1,200}?\) \w+ release version [0-9A-Za-z.]+(?=\0)")


def is_dso_name(name: str) -> bool:
    """``_dl_is_dso``: lib*.so*, ld-*.so*, ld.so.*, ld64.so.*."""
    return (
        (name.startswith("lib") or name.startswith("ld-")) and ".so" in name
    ) or name.startswith("ld.so.") or name.startswith("ld64.so.")


def path_hwcap(path: str, abi: LdAbi = LD_ABIS["amd64"]) -> int:
    """``path_hwcap``: hwcap bits implied by trailing hwcap-named components of ``path``."""
    return abi.path_hwcap(path)


class _Ldconfig:
    """One run of ldconfig against a filesystem model."""

    def __init__(self, inv: Invocation, link: bool, verbose: bool, abi: LdAbi = LD_ABIS["amd64"]):
        self.inv = inv
        self.abi = abi
        self.fs: FileSystem = inv.fs
        self.link = link
        self.verbose = verbose
        self.prog = inv.argv[0] if inv.argv else "ldconfig"
        self.dirs: list[dict] = []
        self.entries: list[CacheEntry] = []

    def error(self, msg: str) -> None:
        self.inv.err(f"{self.prog}: {msg}\n")

    # ---- configuration --------------------------------------------------------------------
    def parse_conf(self, filename: str) -> None:
        try:
            text = self.fs.read_bytes(filename).decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            return
        except OSError as err:
            self.error(f"Warning: ignoring configuration file that cannot be opened: {filename}: {os.strerror(err.errno)}")
            return
        for lineno, line in enumerate(text.split("\n"), 1):
            line = line.split("#", 1)[0].lstrip()
            if not line:
                continue
            if line.startswith("include") and len(line) > 7 and line[7] in " \t":
                for pattern in re.split(r"[ \t]", line[8:]):
                    if pattern:
                        self.parse_include(filename, pattern)
            elif line[:5].lower() == "hwcap" and len(line) > 5 and line[5] in " \t":
                self.error(f"{filename}:{lineno}: hwcap directive ignored")
            else:
                self.add_dir(line)

    def parse_include(self, conf: str, pattern: str) -> None:
        if not pattern.startswith("/"):
            pattern = posixpath.join(posixpath.dirname(conf), pattern) if "/" in conf else pattern
        for path in self.glob(pattern):
            self.parse_conf(path)

    def glob(self, pattern: str) -> list[str]:
        """glob(3) over the filesystem model, sorted like glibc's glob in the C locale."""
        paths = ["/"]
        for comp in [c for c in pattern.split("/") if c]:
            nxt = []
            for base in paths:
                if not any(ch in comp for ch in "*?["):
                    cand = posixpath.join(base, comp)
                    if self.fs.lexists(cand):
                        nxt.append(cand)
                    continue
                try:
                    names = self.fs.readdir(base)
                except OSError:
                    continue
                for n in names:
                    if n.startswith(".") and not comp.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(n, comp):
                        nxt.append(posixpath.join(base, n))
            paths = sorted(nxt, key=lambda p: p.encode("utf-8", "surrogateescape"))
        return paths

    def add_dir(self, line: str) -> None:
        path = line.split("=", 1)[0] if "=" in line else line
        if "=" in line:
            kind = line.split("=", 1)[1]
            if kind not in ("libc4", "libc5", "libc6", "glibc2"):
                self.error(f"{kind} is not a known library type")
            elif kind in ("libc4", "libc5"):
                raise Defer(f"ldconfig: directory type '{kind}' is not modelled")
        path = path.rstrip().rstrip("/")
        if not path:
            return
        try:
            s = self.fs.stat(path)
        except OSError:
            return
        key = (s.st_dev, s.st_ino)
        if any(d["key"] == key for d in self.dirs):
            return
        self.dirs.append({"path": path, "key": key})
        hw = posixpath.join(path, "glibc-hwcaps")
        try:
            if self.fs.stat(hw).is_dir and self.fs.readdir(hw):
                raise Defer(f"ldconfig: glibc-hwcaps subdirectories in {path} are not modelled")
        except OSError:
            pass

    # ---- scanning -------------------------------------------------------------------------
    def classify(self, path: str) -> tuple[int, str | None] | None:
        """``process_file``: (flag, soname) of a shared object, or None to skip it."""
        try:
            h = self.fs.open_handle(path, os.O_RDONLY)
        except OSError:
            self.error(f"Input file {path} not found.\n")
            return None
        try:
            size = h.size()
            if size < 64:
                head = h.pread(0, 4)
                if size == 0:
                    self.error(f"File {path} is empty, not checked.")
                elif b"\x7fELF"[: len(head)] == head:
                    self.error(f"File {path} is too small, not checked.")
                return None
            head = h.pread(0, 512)
            magic = int.from_bytes(head[:4], "little") & 0xFFFF
            if magic in (0o413, 0o314):
                raise Defer(f"ldconfig: a.out library {path} is not modelled")
            if head[:4] != b"\x7fELF":
                if b"GROUP" not in head and b"GNU ld script" not in head and not path.endswith("-gdb.py"):
                    self.error(f"{path} is not an ELF file - it has the wrong magic bytes at the start.\n")
                return None
            try:
                info = read_elf(h.pread, size)
            except ElfError:
                self.error(f"file {path} is truncated\n")
                return None
        finally:
            h.close()
        if info.e_type != ET_DYN:
            return None
        try:
            flag = self.abi.file_flag(info)
        except UnknownMachine:
            self.error(f"{path} is for unknown machine {info.machine}.\n")
            return None
        if not info.dynamic_ok:
            return None
        return flag, info.soname

    def search_dir(self, d: dict) -> None:
        path = d["path"]
        hwcap = self.abi.path_hwcap(path)
        try:
            names = self.fs.readdir(path)
        except OSError:
            return
        dlibs: list[dict] = []
        for name in names:
            full = f"{path}/{name}"
            try:
                lst = self.fs.lstat(full)
            except OSError:
                continue
            mode = lst.st_mode
            if not (st.S_ISLNK(mode) or st.S_ISREG(mode) or st.S_ISDIR(mode)):
                continue
            if not is_dso_name(name) and (st.S_ISREG(mode) or not self.abi.is_hwcap_dir(name)):
                continue
            if name.endswith(".#prelink#") or ".#prelink#." in name[-17:]:
                continue
            is_link = st.S_ISLNK(mode)
            if is_link:
                try:
                    target = self.fs.stat(full)
                except OSError:
                    if self.link and ".so." in name:
                        self.fs.unlink(full)  # stale symlink
                    continue
                is_dir = target.is_dir
            else:
                is_dir = st.S_ISDIR(mode)
            if is_dir and self.abi.is_hwcap_dir(name):
                raise Defer(f"ldconfig: hwcap subdirectory {full} is not modelled")
            if not st.S_ISREG(mode) and not is_link:
                continue
            got = self.classify(full)
            if got is None:
                continue
            flag, soname = got
            if soname is None:
                soname = name
            if is_link and name != soname:
                if not (name.endswith(".so") and soname.startswith(name)):
                    is_link = False
            if is_link:
                soname = name
            for lib in dlibs:
                if lib["soname"] == soname:
                    if (not is_link and lib["is_link"]) or (is_link == lib["is_link"] and libcmp(lib["name"], name) < 0):
                        if lib["flag"] != flag:
                            if lib["flag"] == FLAG_ELF and flag == FLAG_ELF_LIBC6:
                                lib["flag"] = flag
                            elif lib["flag"] == FLAG_ELF_LIBC6 and flag == FLAG_ELF:
                                lib["flag"] = flag
                            else:
                                self.error(
                                    f"libraries {lib['name']} and {name} in directory {path} have same soname but different type."
                                )
                        lib["name"], lib["is_link"] = name, is_link
                    break
            else:
                dlibs.insert(0, {"name": name, "soname": soname, "flag": flag, "is_link": is_link})
        for lib in dlibs:
            if not lib["is_link"]:
                self.create_links(path, lib["name"], lib["soname"])
            self.entries.append(CacheEntry(lib["soname"], f"{path}/{lib['soname']}", lib["flag"], hwcap))

    def create_links(self, path: str, libname: str, soname: str) -> None:
        full_lib, full_so = f"{path}/{libname}", f"{path}/{soname}"
        do_link = do_remove = True
        try:
            so = self.fs.stat(full_so)
        except OSError:
            so = None
        if so is not None:
            try:
                lib = self.fs.stat(full_lib)
            except OSError:
                self.error(f"Can't stat {full_lib}\n")
                return
            if (lib.st_dev, lib.st_ino) == (so.st_dev, so.st_ino):
                do_link = False
            elif not self.fs.lstat(full_so).is_lnk:
                self.error(f"{full_so} is not a symbolic link\n")
                do_link = do_remove = False
        else:
            try:
                do_remove = self.fs.lstat(full_so).is_lnk
            except OSError:
                do_remove = False
        if self.verbose:
            self.inv.out(f"\t{soname} -> {libname}")
        if do_link and self.link:
            if do_remove:
                try:
                    self.fs.unlink(full_so)
                except OSError:
                    self.error(f"Can't unlink {full_so}")
                    do_link = False
            if do_link:
                try:
                    self.fs.symlink(libname, full_so)
                except OSError:
                    self.error(f"Can't link {full_so} to {libname}")
                    do_link = False
            if self.verbose:
                self.inv.out(" (changed)\n" if do_link else " (SKIPPED)\n")
        elif self.verbose:
            self.inv.out("\n")

    def save_cache(self, cache_file: str, generator: str) -> None:
        data = encode_cache(sorted_entries(self.entries), generator, self.abi.big_endian)
        tmp = cache_file + "~"
        self.fs.write_bytes(tmp, data, 0o600)
        self.fs.chmod(tmp, 0o644)
        self.fs.rename(tmp, cache_file)


def image_ldconfig_facts(fs: FileSystem, state: dict) -> tuple[str, str, LdAbi]:
    """(generator string, multiarch triplet, machine rules) of the image's own ldconfig
    binary, the machine read from its ELF header; Defer if unknown."""
    for path in _BINARIES:
        try:
            s = fs.stat(path)
        except OSError:
            continue
        key = ("ldconfig-facts", s.st_ino, s.st_size, s.st_mtime_ns)
        if key in state:
            return state[key]
        data = fs.read_bytes(path)
        if data[:4] != b"\x7fELF" or len(data) < 64:  # 64: the ELF header the machine is read from
            raise Defer(f"ldconfig: {path} is not an ELF binary")
        arch = arch_of_elf(data[:64])
        if arch not in LD_ABIS:
            order = "big" if data[5] == 2 else "little"
            machine = int.from_bytes(data[18:20], order)
            raise Defer(f"ldconfig: image ldconfig for ELF machine {machine} (class {data[4]}) is not modelled "
                        f"(known: {', '.join(LD_ABIS)})")
        m = _GENERATOR_RE.search(data)
        if m is None:
            raise Defer(f"ldconfig: cannot find the generator string in {path}")
        state[key] = (m.group(0).decode("ascii", "replace"), MACHINES[arch].multiarch, LD_ABIS[arch])
        return state[key]
    raise Defer("ldconfig: the image has no ldconfig binary")


def ldconfig(inv: Invocation) -> int:
    """The ``ldconfig`` model (see the module docstring for the forms covered)."""
    args = inv.argv[1:]
    link, build, only_cline, verbose, print_mode, manual = True, True, False, False, False, False
    cache_file, conf, root = LD_SO_CACHE, LD_SO_CONF, None
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i + 1 :]
            break
        if a in ("-p", "--print-cache"):
            print_mode = True
        elif a in ("-v", "--verbose"):
            verbose = True
        elif a == "-N":
            build = False
        elif a == "-X":
            link = False
        elif a == "-n":
            build, only_cline = False, True
        elif a == "-l":
            manual = True
        elif a in ("-i", "--ignore-aux-cache"):
            pass
        elif a in ("-r", "-C", "-f", "-c") or a.startswith(("-r", "-C", "-f", "-c", "--format=")):
            if a.startswith("--format="):
                opt, val = "-c", a.split("=", 1)[1]
            elif len(a) > 2:
                opt, val = a[:2], a[2:]
            else:
                if i + 1 >= len(args):
                    return inv.fail(f"option requires an argument -- '{a[1]}'", 64)
                opt, val = a, args[i + 1]
                i += 1
            if opt == "-r":
                root = val
            elif opt == "-C":
                cache_file = val
            elif opt == "-f":
                conf = val
            elif val != "new":
                raise Defer(f"ldconfig: cache format '{val}' is not modelled")
        elif a.startswith("-") and a != "-":
            raise Defer(f"ldconfig: option {a} is not modelled")
        else:
            rest.append(a)
        i += 1
    # the facts of the ldconfig binary that runs (the image's), read before any chroot
    generator, triplet, abi = image_ldconfig_facts(inv.fs, inv.state)
    if root is not None and root.rstrip("/") != "":
        # -r DIR: every path ldconfig uses -- configuration, directories, links, the cache --
        # is canonicalised inside DIR (ldconfig.c with opt_chroot, chroot_canon): links resolve
        # against DIR as after a chroot (mkinitramfs runs `ldconfig -r "$DESTDIR"` on the
        # initramfs tree). Its messages then name DIR-prefixed paths; the model's name paths
        # inside the tree (a known divergence; the initramfs tree gives none)
        if not is_dir(inv, root):
            raise Defer(f"ldconfig: -r {root}: the tree does not exist (its error path is not modelled)")
        inv = dataclasses.replace(inv, fs=SubtreeFS(inv.fs, inv.path(root)), cwd="/")
    run = _Ldconfig(inv, link, verbose, abi)
    if print_mode:
        try:
            data = inv.fs.read_bytes(cache_file)
        except OSError as err:
            return inv.fail(f"Can't open cache file {cache_file}\n: {os.strerror(err.errno)}")
        if not data:
            return 0
        try:
            inv.out(print_cache(data, cache_file))
        except ValueError as err:
            return inv.fail(str(err))
        return 0
    if manual:
        raise Defer("ldconfig -l is not modelled")
    for d in rest:
        if build and not d.startswith("/"):
            return inv.fail(f"relative path `{d}' used to build cache")
        run.add_dir(d)
    if not only_cline:
        run.parse_conf(conf)
        # SYSTEM_DIRS of Debian's glibc 2.36: the multiarch pair, then /lib and /usr/lib (on
        # arm64 /lib holds the ld-linux-aarch64.so.1 link, which the real cache lists)
        for d in (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib"):
            run.add_dir(d)
    for d in list(run.dirs):
        run.search_dir(d)
    if build:
        run.save_cache(cache_file, generator)
    return 0
