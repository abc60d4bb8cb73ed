"""libkmod's context as modprobe and modinfo use it: configuration, indexes, lookups.

Mirrors kmod 30: ``libkmod/libkmod-config.c`` (``modprobe.d`` files and the module
directory's ``modules.softdep``, one file per name, parsed in name order; ``alias``,
``options``, ``install``, ``remove``, ``softdep``, ``blacklist``), ``libkmod/libkmod.c`` (the
lookup chain of ``kmod_module_new_from_lookup``: configuration aliases, ``modules.dep``,
``modules.symbols``, install/remove commands, ``modules.alias``, ``modules.builtin``,
``modules.builtin.alias``) and ``libkmod/libkmod-module.c`` (module objects kept in one pool
per context, so flags set while probing one module are seen by the next).

The indexes are read from the image (``kmod_index.read_index``); nothing reads the host's
``/proc`` or ``/sys``: the model answers as modprobe does in a chroot without them, and an
image whose ``/proc/cmdline`` exists is deferred (module options would come from it).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import stat as st

from nuwa.script.commands._memo import ContentMemo
from nuwa.script.commands.kmod.kmod_index import IndexError_, lookup_wild, read_index
from nuwa.script.commands.kmod.kmodfile import alias_normalize, modname_normalize
from nuwa.script.context import Defer, Invocation

#: ``default_config_paths`` of libkmod (SYSCONFDIR is /etc on Debian)
CONFIG_PATHS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d")

#: ``read_index`` memoised by the file's bytes: an initramfs build runs modprobe and modinfo
#: hundreds of times over the same few files (an exact key: a changed file is decoded again;
#: the decoded index is shared, read-only)
_decoded = ContentMemo(read_index, size=8)

#: a configuration line: the command, its first argument, the rest (``kmod_config_parse``'s
#: ``strtok_r`` on tabs and spaces)
_DIRECTIVE = re.compile(r"[\t ]*([^\t ]+)[\t ]*([^\t ]*)[\t ]*(.*)$")
_BLANKS = re.compile(r"[\t ]+")


class KMod:
    """``struct kmod_module``: a module by name (and the alias it was found through)."""

    def __init__(self, name: str, alias: str | None = None):
        self.name, self.alias = name, alias
        self.path: str | None = None
        self.deps: list[KMod] | None = None  # from the modules.dep line
        self.builtin: bool | None = None
        self.visited = self.required = self.ignorecmd = False


class KmodContext:
    """One ``kmod_ctx`` over the module directory ``dirname`` of the image."""

    def __init__(self, inv: Invocation, dirname: str, config_paths: list[str] | None, log):
        self.inv, self.dirname, self.log = inv, dirname, log
        self.aliases: list[tuple[str, str]] = []
        self.options: list[tuple[str, str]] = []
        self.install: list[tuple[str, str]] = []
        self.remove: list[tuple[str, str]] = []
        self.softdeps: list[tuple[str, list[str], list[str]]] = []
        self.blacklist: list[str] = []
        self.pool: dict[str, KMod] = {}
        self._indexes: dict[str, dict | None] = {}
        self._load_config(list(CONFIG_PATHS) if config_paths is None else config_paths)
        try:
            inv.fs.lstat("/proc/cmdline")
        except OSError:
            pass
        else:
            raise Defer("modprobe: the image has a /proc/cmdline, whose module options only the running kernel knows")

    # -- configuration ------------------------------------------------------------------
    def _load_config(self, paths: list[str]) -> None:
        files: dict[str, str] = {"modules.softdep": f"{self.dirname}/modules.softdep"}
        for base in paths:
            ip = self.inv.path(base)
            try:
                s = self.inv.fs.stat(ip)
            except OSError:
                continue
            if not st.S_ISDIR(s.st_mode):
                files.setdefault(posixpath.basename(base), base)
                continue
            try:
                names = self.inv.fs.readdir(ip)
            except OSError:
                continue
            for name in names:
                if name.startswith(".") or not (name.endswith(".conf") or name.endswith(".alias")):
                    continue
                try:
                    if st.S_ISDIR(self.inv.fs.stat(f"{ip}/{name}").st_mode):
                        continue
                except OSError:
                    continue
                files.setdefault(name, f"{base}/{name}")
        for name in sorted(files, key=lambda n: n.encode("utf-8", "surrogateescape")):
            try:
                data = self.inv.fs.read_bytes(self.inv.path(files[name]))
            except OSError:
                continue
            self._parse(data, files[name])

    def _parse(self, data: bytes, filename: str) -> None:
        """``kmod_config_parse``: one file's directives appended to the lists."""
        buf = ""
        for n, raw in enumerate(data.decode("utf-8", "surrogateescape").split("\n"), 1):
            if raw.endswith("\\"):
                buf += raw[:-1]
                continue
            line, buf = buf + raw, ""
            if line == "" or line[0] == "#":
                continue
            m = _DIRECTIVE.match(line)
            if not m:
                continue
            cmd, first, rest = m.groups()
            words = [w for w in _BLANKS.split(line) if w]
            bad = False
            if cmd == "alias" and len(words) >= 3:
                a, mod = _underscores(words[1]), _underscores(words[2])
                bad = a is None or mod is None
                if not bad:
                    self.aliases.append((a, mod))
            elif cmd == "blacklist" and len(words) >= 2:
                mod = _underscores(words[1])
                bad = mod is None
                if not bad:
                    self.blacklist.append(mod)
            elif cmd in ("options", "install", "remove", "softdep") and first and rest:
                mod = _underscores(first)
                bad = mod is None
                if not bad:
                    if cmd == "options":
                        self.options.append((mod, rest))
                    elif cmd == "install":
                        self.install.append((mod, rest))
                    elif cmd == "remove":
                        self.remove.append((mod, rest))
                    else:
                        pre, post, mode = [], [], None
                        for w in rest.split():
                            if w == "pre:":
                                mode = pre
                            elif w == "post:":
                                mode = post
                            elif mode is not None:
                                mode.append(w)
                        self.softdeps.append((mod, pre, post))
            elif cmd in ("include", "config"):
                _libkmod_err(self.inv, 708, f"{filename}: command {cmd} is deprecated and not parsed anymore\n")
            else:
                bad = True
            if bad:
                _libkmod_err(self.inv, 712, f"{filename} line {n}: ignoring bad line starting with '{cmd}'\n")

    # -- indexes --------------------------------------------------------------------------
    def index(self, name: str) -> dict | None:
        """The decoded ``NAME.bin`` index of the module directory, None when absent."""
        if name not in self._indexes:
            try:
                data = self.inv.fs.read_bytes(self.inv.path(f"{self.dirname}/{name}.bin"))
            except OSError:
                self._indexes[name] = None
            else:
                try:
                    self._indexes[name] = _decoded(data)
                except IndexError_ as exc:
                    raise Defer(f"modprobe: {self.dirname}/{name}.bin: {exc}") from None
        return self._indexes[name]

    def _module(self, name: str, alias: str | None = None) -> KMod:
        key = name if alias is None else f"{name}\\{alias}"
        mod = self.pool.get(key)
        if mod is None:
            mod = self.pool[key] = KMod(name, alias)
        return mod

    def _depline(self, mod: KMod) -> None:
        if mod.deps is not None:
            return
        mod.deps = []
        idx = self.index("modules.dep")
        vals = idx.get(mod.name) if idx else None
        if not vals:
            return
        line = vals[0][1]
        path, _, rest = line.partition(":")
        mod.path = path if path.startswith("/") else f"{self.dirname}/{path}"
        for p in rest.split():
            full = p if p.startswith("/") else f"{self.dirname}/{p}"
            dep = self._module(modname_normalize(posixpath.basename(p)))
            if dep.path is None:
                dep.path = full
            mod.deps.append(dep)
        mod.deps.reverse()  # kmod_module_parse_depline prepends each dependency

    def dependencies(self, mod: KMod) -> list[KMod]:
        """``kmod_module_get_dependencies``: the modules of its modules.dep line."""
        self._depline(mod)
        return list(mod.deps or [])

    def path(self, mod: KMod) -> str | None:
        """``kmod_module_get_path``."""
        self._depline(mod)
        return mod.path

    def is_builtin(self, mod: KMod) -> bool:
        """``kmod_module_is_builtin``: listed in modules.builtin.bin (or found as built-in)."""
        if mod.builtin is None:
            idx = self.index("modules.builtin")
            mod.builtin = bool(idx and mod.name in idx)
        return mod.builtin

    def lookup(self, given: str) -> list[KMod] | None:
        """``kmod_module_new_from_lookup``; None when the alias is malformed."""
        name = alias_normalize(given)
        if name is None:
            return None
        found = [self._module(mod, a) for a, mod in self.aliases if fnmatch.fnmatchcase(name, a)]
        if found:
            return found
        if ":" not in name:
            idx = self.index("modules.dep")
            if idx and name in idx:
                mod = self._module(name)
                self._depline(mod)
                return [mod]
        if name.startswith("symbol:"):
            idx = self.index("modules.symbols")
            found = [self._module(v, name) for v in lookup_wild(idx, name)] if idx else []
            if found:
                return found
        if any(m == name for m, _ in self.install + self.remove):
            return [self._module(name)]
        idx = self.index("modules.alias")
        if idx:
            found = [self._module(v, name) for v in lookup_wild(idx, name)]
            if found:
                return found
        idx = self.index("modules.builtin")
        if idx and name in idx:
            mod = self._module(name)
            mod.builtin = True
            return [mod]
        idx = self.index("modules.builtin.alias")
        if idx:
            found = [self._module(v, name) for v in lookup_wild(idx, name)]
            for mod in found:
                mod.builtin = True
            return found
        return []

    def lookup_name(self, given: str) -> list[KMod]:
        """``kmod_module_new_from_name_lookup``: modules.dep, then the built-in indexes."""
        name = modname_normalize(given)
        idx = self.index("modules.dep")
        if idx and name in idx:
            mod = self._module(name)
            self._depline(mod)
            return [mod]
        idx = self.index("modules.builtin")
        if idx and name in idx:
            mod = self._module(name)
            mod.builtin = True
            return [mod]
        idx = self.index("modules.builtin.alias")
        found = [self._module(v, name) for v in lookup_wild(idx, name)] if idx else []
        for mod in found:
            mod.builtin = True
        return found[:1]

    def module_options(self, mod: KMod) -> str:
        """``kmod_module_get_options``: every ``options`` line for its name or alias."""
        return " ".join(o for m, o in self.options if (m == mod.name or (mod.alias is not None and m == mod.alias)) and o)

    def install_command(self, mod: KMod) -> str | None:
        """``kmod_module_get_install_commands``: the first matching ``install`` line."""
        for pat, cmd in self.install:
            if fnmatch.fnmatchcase(mod.name, pat):
                return cmd
        return None

    def softdeps_of(self, mod: KMod) -> tuple[list[KMod], list[KMod]]:
        """``kmod_module_get_softdeps``: the first matching softdep, each name looked up."""
        for pat, pre, post in self.softdeps:
            if fnmatch.fnmatchcase(mod.name, pat):
                out = []
                for names in (pre, post):
                    mods: list[KMod] = []
                    for n in names:
                        got = self.lookup(n)
                        if got is None:
                            self.log("ERROR", f"failed to lookup soft dependency '{n}', continuing anyway.\n")
                            continue
                        mods.extend(got)
                    out.append(mods)
                return out[0], out[1]
        return [], []

    def is_blacklisted(self, mod: KMod) -> bool:
        """``module_is_blacklisted``."""
        return mod.name in self.blacklist


def _libkmod_err(inv: Invocation, line: int, text: str) -> None:
    """An error libkmod logs while ``kmod_new`` parses the configuration: the tools install
    their own log function only after that, so libkmod's default format is what appears,
    with the source position of kmod 30's ``kmod_config_parse`` as Debian builds it."""
    inv.err(f"libkmod: ERROR ../libkmod/libkmod-config.c:{line} kmod_config_parse: {text}")


def _underscores(s: str) -> str | None:
    """``underscores``: ``-`` to ``_`` outside brackets; None on an unmatched bracket."""
    return alias_normalize(s)
