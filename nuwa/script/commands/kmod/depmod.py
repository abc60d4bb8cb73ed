"""``depmod`` (kmod 30): the module dependency files of a kernel's module tree, byte for byte.

Mirrors kmod 30's ``tools/depmod.c``: find modules (``depmod_modules_search``, priorities
from ``depmod.d``), put them in kmod's hash order then ``modules.order`` order, read their
exported and needed symbols, resolve dependencies, sort them topologically (or report the
cycles exactly as depmod does and write nothing), then compute every output file. Unlike
depmod, which renames each file into place as soon as it is written, the model computes all
ten files first and writes them only when all succeeded: a run writes all of them or none.

Options: ``-a -A -b DIR -C PATH -E FILE -F FILE -e -n -P C -w`` (and the deprecated
``-u -q -r -m``, accepted with depmod's warning), a version argument. Module paths on the
command line (depmod's "only these modules" mode), ``-v``, ``-V``, ``-h`` and a missing
version (which needs the running kernel) are deferred with that reason.
"""

from __future__ import annotations

import errno
import gc
import re
import stat as st

from nuwa.script.commands import _args
from nuwa.script.commands.kmod import depmod_cfg, depmod_out
from nuwa.script.commands.kmod.depmod_cfg import SEARCH_BUILTIN, SEARCH_EXTERNAL, Cfg
from nuwa.script.commands.kmod.kmod_index import hash_order
from nuwa.script.commands.kmod.kmodfile import (EXTENSIONS, ModuleElf, ModuleFileError, decompress,
                                                modinfo_pairs, modname_normalize)
from nuwa.script.context import Defer, Invocation

_SPEC = _args.spec("aAb:C:E:F:euqrvnP:wmVh", {
    "all": "a", "quick": "A", "basedir": ("b", _args.REQ), "config": ("C", _args.REQ),
    "symvers": ("E", _args.REQ), "filesyms": ("F", _args.REQ), "errsyms": "e",
    "unresolved-error": "u", "quiet": "q", "root": "r", "verbose": "v", "show": "n",
    "dry-run": "n", "symbol-prefix": ("P", _args.REQ), "warn": "w", "map": "m",
    "version": "V", "help": "h"})
_DEPRECATED = {"u": "unresolved-error", "q": "quiet", "r": "root", "m": "map"}
#: ``depmod_load_symvers``'s ``strtok`` separators (a Module.symvers has ~30,000 lines)
_SYMVERS_SEP = re.compile(r"[ \t]")


class Mod:
    """``struct mod``: one module file depmod keeps."""

    __slots__ = ("name", "path", "relpath", "uncrelpath", "sort_idx", "dep_sort_idx", "idx", "users",
                 "deps", "info", "needed", "visited")

    def __init__(self, name: str, path: str, relpath: str | None):
        self.name, self.path, self.relpath = name, path, relpath
        self.uncrelpath = None
        if relpath is not None:
            dirlen = relpath.rfind("/")
            self.uncrelpath = relpath[: dirlen + 1 + len(name) + 3]
        self.sort_idx = 1  # depmod->modules.count + 1 while the array is still empty
        self.dep_sort_idx = 0x7FFFFFFF
        self.idx = 0
        self.users = 0
        self.deps: list[Mod] = []
        self.info: list[tuple[str, str]] = []
        self.needed = []
        self.visited = False

    @property
    def shown(self) -> str:
        """``mod_get_compressed_path``: the path written to the output files."""
        return self.relpath if self.relpath is not None else self.path


class Depmod:
    """One depmod run against the image (``struct depmod``)."""

    def __init__(self, inv: Invocation, cfg: Cfg, features: frozenset[str], log):
        self.inv, self.cfg, self.features, self.log = inv, cfg, features, log
        self.exts = tuple(EXTENSIONS[f] for f in ("", "zlib", "xz", "zstd") if f == "" or f in features)
        self.by_name: dict[str, Mod] = {}
        self.modules: list[Mod] = []
        self.symbols: dict[str, tuple[Mod | None, int]] = {}

    # -- finding modules (depmod_modules_search*) --------------------------------------
    def _is_higher_priority(self, old: Mod, newpath: str) -> bool:
        """``depmod_module_is_higher_priority``: does the module already kept win?"""
        cfg = self.cfg
        d = cfg.dirname
        relnew = newpath[len(d) + 1:] if newpath.startswith(d) else None
        relold = old.path[len(d) + 1:] if old.path.startswith(d) else None
        # depmod compares the path without the compression suffix: up to name + ".ko"
        def trimmed(rel, path):
            if rel is None:
                return None
            base = path.rfind("/")
            cut = len(path) - (base + 1) - len(modname_normalize(path[base + 1:]))
            return rel[: len(rel) - cut]
        for ov in cfg.overrides:
            if trimmed(relnew, newpath) == ov:
                return False
            if trimmed(relold, old.path) == ov:
                return True
        bprio = oldprio = newprio = -1
        i = 0
        for kind, sp in cfg.searches:
            if kind == SEARCH_BUILTIN:
                bprio = i
            elif kind == SEARCH_EXTERNAL:
                for ext in cfg.externals:
                    if newpath.startswith(ext + "/"):
                        newprio = i
                    if old.path.startswith(ext + "/"):
                        oldprio = i
                    i += 1
            elif relnew is not None and relnew.startswith(sp + "/"):
                newprio = i
            elif relold is not None and relold.startswith(sp + "/"):
                oldprio = i
            i += 1
        if newprio < 0:
            newprio = bprio
        if oldprio < 0:
            oldprio = bprio
        return newprio <= oldprio

    def _search_file(self, path: str, name: str) -> None:
        if not any(len(name) > len(e) and name.endswith(e) for e in self.exts):
            return
        modname = modname_normalize(name)
        old = self.by_name.get(modname)
        if old is not None:
            if self._is_higher_priority(old, path):
                return
            del self.by_name[modname]
        d = self.cfg.dirname
        rel = path[len(d) + 1:] if path.startswith(d + "/") else None
        self.by_name[modname] = Mod(modname, path, rel)

    def _search_dir(self, ipath: str, shown: str) -> None:
        fs = self.inv.fs
        # a backend that lists a directory with its entries' lstats in one call saves a
        # resolution of each entry's path (1,100 modules in ~200 directories)
        scan = getattr(fs, "readdir_stat", None)
        listing = scan(ipath) if scan is not None else [(n, None) for n in fs.readdir(ipath)]
        for name, s in listing:
            if name in (".", "..", "build", "source") or name in self.cfg.excludes:
                continue
            child, cshown = f"{ipath}/{name}", f"{shown}/{name}"
            try:
                if s is None:
                    s = fs.lstat(child)
                if st.S_ISLNK(s.st_mode):
                    s = fs.stat(child)
            except OSError as err:
                self.log("ERROR", f"fstatat({cshown}): {err.strerror}\n")
                continue
            if st.S_ISDIR(s.st_mode):
                self._search_dir(child, cshown)
            elif st.S_ISREG(s.st_mode):
                self._search_file(cshown, name)
            else:
                self.log("ERROR", f"unsupported file type {cshown}: {st.S_IFMT(s.st_mode):o}\n")

    def search(self) -> None:
        """``depmod_modules_search``: the module directory, then each external directory."""
        try:
            self._search_dir(self.inv.path(self.cfg.dirname), self.cfg.dirname)
        except OSError as err:
            raise Defer(f"depmod: could not open directory {self.cfg.dirname}: {err.strerror}") from None
        for ext in self.cfg.externals:
            try:
                self._search_dir(self.inv.path(ext), ext)
            except OSError:
                continue  # depmod ignores an absent external directory

    # -- ordering (depmod_modules_build_array, depmod_modules_sort) ----------------------
    def build_array(self) -> None:
        """Modules in kmod's hash order (512 buckets), then stably by ``modules.order``."""
        self.modules = [self.by_name[n] for n in hash_order(self.by_name, 512)]
        try:
            data = self.inv.fs.read_bytes(self.inv.path(self.cfg.dirname + "/modules.order"))
        except OSError:
            data = None
        if data is not None:
            lines = _fgets(data)
            bad = next((i for i, ln in enumerate(lines, 1) if not ln.endswith(b"\n")), None)
            if bad is not None:
                self.log("ERROR", f"{self.cfg.dirname}/modules.order:{bad} corrupted line misses '\\n'\n")
            else:
                total = len(lines) + 1
                by_unc = {m.uncrelpath: m for m in self.modules if m.uncrelpath is not None}
                for idx, ln in enumerate(lines, 1):
                    m = by_unc.get(ln[:-1].decode("utf-8", "surrogateescape"))
                    if m is not None:
                        m.sort_idx = idx - total
                self.modules.sort(key=lambda m: m.sort_idx)
        for i, m in enumerate(self.modules):
            m.idx = i

    # -- symbols and dependencies (depmod_load) ------------------------------------------
    def add_symbol(self, name: str, prefix_skipped: bool, crc: int, owner: Mod | None) -> None:
        """``depmod_symbol_add``: a later owner replaces an earlier one (``hash_add``)."""
        if not prefix_skipped and name[:1] == self.cfg.sym_prefix:
            name = name[1:]
        self.symbols[name] = (owner, crc)

    def find_symbol(self, name: str):
        """``depmod_symbol_find``."""
        if name[:1] == ".":
            name = name[1:]
        if name[:1] == self.cfg.sym_prefix:
            name = name[1:]
        return self.symbols.get(name)

    def load_modules(self) -> None:
        """Exported symbols, ``.modinfo`` and needed symbols of every module; a file libkmod
        could not read defers the whole run (depmod would write files missing its edges)."""
        fs = self.inv.fs
        for m in self.modules:
            try:
                raw = fs.read_bytes(self.inv.path(m.path))
                elf = ModuleElf(decompress(raw, self.features))
                exported = elf.exported()
                m.info = modinfo_pairs(elf.strings(b".modinfo"))
                try:
                    # names alone unless -e reports versions and weak symbols (load_dependencies)
                    m.needed = elf.needed() if self.cfg.print_unknown else elf.needed_names()
                except ModuleFileError:
                    # kmod ignores a failed kmod_module_get_dependency_symbols (an ELF
                    # without .symtab): the module is listed with no dependencies
                    m.needed = []
            except OSError as err:
                raise Defer(f"depmod: cannot read module {m.path}: {err.strerror}") from None
            except ModuleFileError as err:
                raise Defer(f"depmod: module {m.path} is not a readable kernel module "
                            f"({err.detail}); real depmod would report "
                            f"'{errno.errorcode.get(err.errno, err.errno)}' and drop its dependencies") from None
            for sym in exported:
                self.add_symbol(sym.name, False, sym.crc, m)

    def load_dependencies(self) -> None:
        """``depmod_load_dependencies``: an edge to the owner of each needed symbol. With
        ``-e``, ``m.needed`` holds (name, crc, weak) and the warnings are reported first;
        otherwise it holds the names alone (:meth:`ModuleElf.needed_names`)."""
        syms = self.symbols
        special = (".", self.cfg.sym_prefix)
        for m in self.modules:
            names = self._report_needed(m) if self.cfg.print_unknown else m.needed
            seen = set()
            for name in names:
                # find_symbol inlined for the common name (no "." or prefix to strip)
                hit = syms.get(name) if name[:1] not in special else self.find_symbol(name)
                if hit is None:
                    continue
                owner = hit[0]
                if owner is None or id(owner) in seen:
                    continue
                seen.add(id(owner))
                m.deps.append(owner)
                owner.users += 1

    def _report_needed(self, m: Mod) -> list[str]:
        """``-e``'s warnings about ``m``'s needed symbols (unknown, or another version with
        ``-E``), in depmod's order; the names, for the edges."""
        check = self.cfg.check_symvers
        for name, scrc, weak in m.needed:
            if weak:
                continue
            hit = self.find_symbol(name)
            if hit is None:
                self.log("WARNING", f"{m.path} needs unknown symbol {name}\n")
            elif check and hit[1] != scrc:
                self.log("WARNING", f"{m.path} disagrees about version of symbol {name}\n")
        return [name for name, _, _ in m.needed]

    def calculate(self) -> bool:
        """``depmod_calculate_dependencies``: topological order, or report the cycles (as
        depmod prints them) and return False."""
        users = [m.users for m in self.modules]
        roots = [i for i, u in enumerate(users) if u == 0]
        n_sorted = 0
        while roots:
            src = self.modules[roots.pop()]
            src.dep_sort_idx = n_sorted
            n_sorted += 1
            for dst in src.deps:
                users[dst.idx] -= 1
                if users[dst.idx] == 0:
                    roots.append(dst.idx)
        if n_sorted < len(self.modules):
            self._report_cycles(users)
            return False
        for m in self.modules:
            if len(m.deps) > 1:
                m.deps.sort(key=lambda d: d.dep_sort_idx)
        return True

    def _report_cycles(self, users: list[int]) -> None:
        """``depmod_report_cycles``: the same walk, so the same lines in the same order."""
        roots = [m for i, m in enumerate(self.modules) if users[i] > 0]
        loop_set: set[str] = set()

        def remove(mod):
            for k, r in enumerate(roots):
                if r is mod:
                    del roots[k]
                    return

        while roots:
            root = roots.pop(0)
            stack = [(root, None)]
            while stack:
                vertex = stack.pop()
                m = vertex[0]
                if m.visited and m is root:
                    chain = []
                    v = vertex[1]
                    while v is not None:
                        chain.append(v[0])
                        loop_set.add(v[0].name)
                        v = v[1]
                    for p in reversed(chain):
                        remove(p)
                    names = [p.name for p in reversed(chain)] + [m.name]
                    self.log("ERROR", "Cycle detected: " + " -> ".join(names) + "\n")
                    continue
                m.visited = True
                if not m.deps:
                    remove(m)
                    continue
                for dep in m.deps:
                    stack.append((dep, vertex))
        self.log("ERROR", f"Found {len(loop_set)} modules in dependency cycles!\n")

    def load_system_map(self, data: bytes, shown: str) -> None:
        """``depmod_load_system_map``: the kernel's own ``__ksymtab_`` symbols (no owner)."""
        for n, line in enumerate(_fgets(data), 1):
            text = line.decode("utf-8", "surrogateescape")
            parts = text.split(" ", 2)
            if len(parts) < 3:
                self.log("ERROR", f"{shown}:{n}: invalid line: {text}")
                continue
            p = parts[2]
            if p[:1] == self.cfg.sym_prefix:
                p = p[1:]
            if not p.startswith("__ksymtab_"):
                continue
            self.add_symbol(p[len("__ksymtab_"):].split("\n", 1)[0], True, 0, None)
        self.add_fake_symbols()

    def load_symvers(self, data: bytes, shown: str) -> None:
        """``depmod_load_symvers``: ``Module.symvers`` lines of vmlinux with their CRCs."""
        for n, line in enumerate(_fgets(data), 1):
            words = [w for w in _SYMVERS_SEP.split(line.decode("utf-8", "surrogateescape")) if w]
            if len(words) < 3 or words[2] != "vmlinux":
                continue
            try:
                crc = int(words[0], 16)
            except ValueError:
                self.log("ERROR", f"{shown}:{n} Invalid symbol version {words[0]}: Success\n")
                continue
            self.add_symbol(words[1], False, crc, None)
        self.add_fake_symbols()

    def add_fake_symbols(self) -> None:
        """``depmod_add_fake_syms``."""
        self.add_symbol("__this_module", True, 0, None)
        self.add_symbol("_GLOBAL_OFFSET_TABLE_", True, 0, None)
        if self.find_symbol("TOC.") is None:
            self.add_symbol("TOC.", True, 0, None)


def _fgets(data: bytes) -> list[bytes]:
    """Lines as ``fgets`` returns them (with their newline; a last line may lack it)."""
    lines = data.split(b"\n")
    out = [ln + b"\n" for ln in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def depmod(inv: Invocation) -> int:
    """The ``depmod`` model (kmod 30 ``do_depmod``)."""
    # A run allocates ~100k small acyclic objects (symbols, tuples, trie nodes); the cyclic
    # garbage collector finds nothing in them but costs ~10% of the run, so it is paused.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _depmod(inv)
    finally:
        if was_enabled:
            gc.enable()


def _depmod(inv: Invocation) -> int:
    def log(level: str, text: str) -> None:
        inv.err(f"{inv.name}: {level}: {text}")

    try:
        opts, rest = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    quick = show = False
    root = None
    config_paths: list[str] = []
    system_map = symvers = None
    flags = {"e": False, "w": False, "E": False}
    prefix = "\0"
    for key, val in opts:
        if key == "a":
            pass  # a version argument alone already means "all" (do_depmod)
        elif key == "A":
            quick = True
        elif key == "b":
            root = inv.path(val) if val else inv.cwd  # path_make_absolute_cwd: not normalised
        elif key == "C":
            config_paths.append(val)
        elif key == "E":
            symvers, flags["E"] = val, True
        elif key == "F":
            system_map = val
        elif key in ("e", "w"):
            flags[key] = True
        elif key == "n":
            show = True
        elif key == "P":
            if len(val) != 1:
                inv.err(f"{inv.name}: FATAL: -P only takes a single char\n")
                return 1
            prefix = val
        elif key in _DEPRECATED:
            log("WARNING", f"Ignored deprecated option -{key}\n")
        else:
            raise Defer(f"depmod -{key} is not modelled")
    if not rest:
        raise Defer("depmod without a version needs the running kernel's release (uname -r)")
    if not re.match(r"\s*[+-]?\d+\.\s*[+-]?\d+", rest[0]):
        log("ERROR", f"Bad version passed {rest[0]}\n")
        return 1
    kversion = rest[0]
    if len(rest) > 1:
        raise Defer("depmod with module paths on the command line is not modelled")
    _, features = depmod_cfg.image_kmod(inv)
    dirname = f"{root or ''}/lib/modules/{kversion}"
    cfg = Cfg(kversion, dirname, sym_prefix=prefix, check_symvers=flags["E"], print_unknown=flags["e"],
              warn_dups=flags["w"])
    run = Depmod(inv, cfg, features, log)
    if quick and (show or depmod_out.up_to_date(run)):
        return 0  # do_depmod: -A with -n, or nothing newer than modules.dep: done
    for path, loader in ((symvers, run.load_symvers), (system_map if symvers is None else None, run.load_system_map)):
        if path is None:
            continue
        try:
            data = inv.fs.read_bytes(inv.path(path))
        except OSError as err:
            inv.err(f"{inv.name}: FATAL: could not load {path}: {err.strerror}\n")
            return 1
        loader(data, path)
    if symvers is None and system_map is None and cfg.print_unknown:
        log("WARNING", "-e needs -E or -F\n")
        cfg.print_unknown = False
    depmod_cfg.load(inv, cfg, config_paths or None, log)
    run.search()
    run.build_array()
    run.load_modules()
    run.load_dependencies()
    if not run.calculate():
        return 1
    files = depmod_out.render(run, show)
    if show:
        inv.out(b"".join(files.values()))
        return 0
    depmod_out.write_all(run, files)
    return 0
