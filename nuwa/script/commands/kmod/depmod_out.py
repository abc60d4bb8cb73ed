"""depmod's output files (kmod 30 ``tools/depmod.c``, ``output_*`` and ``depmod_output``).

:func:`render` computes every file as bytes, in depmod's order; :func:`write_all` writes
them into the module directory only after all were computed (each through a temporary name
and a rename, as depmod does, so a reader never sees a half-written index).
"""

from __future__ import annotations

import os
import re
import stat as st

from nuwa.script.commands.kmod.kmod_index import IndexBuilder, hash_order
from nuwa.script.commands.kmod.kmodfile import alias_normalize, modname_normalize
from nuwa.script.context import Defer

#: ``depfiles[]`` of ``depmod_output``, in the order depmod writes them
FILES = ("modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.softdep",
         "modules.symbols", "modules.symbols.bin", "modules.builtin.bin", "modules.builtin.alias.bin",
         "modules.devname")
_BIN = {"modules.dep.bin", "modules.alias.bin", "modules.symbols.bin", "modules.builtin.bin",
        "modules.builtin.alias.bin"}


def _all_deps(run) -> dict[int, list]:
    """``mod_get_all_sorted_dependencies`` for every module: the transitive closure, ordered
    by topological index (memoised: the graph is acyclic once sorted)."""
    memo: dict[int, list] = {}

    def closure(m):
        got = memo.get(m.idx)
        if got is not None:
            return got
        seen = {}
        for d in m.deps:
            seen[d.idx] = d
            for dd in closure(d):
                seen[dd.idx] = dd
        got = memo[m.idx] = sorted(seen.values(), key=lambda x: x.dep_sort_idx)
        return got

    return {m.idx: closure(m) for m in run.modules}


def _ascii(text: str, where: str) -> str:
    if not text.isascii():
        raise Defer(f"depmod: {where} holds a non-ASCII character, which kmod's index refuses ({text!r})")
    return text


def render(run, show: bool = False) -> dict[str, bytes]:
    """Every output file of ``run`` (a finished :class:`~nuwa.script.commands.kmod.depmod.Depmod`);
    with ``show`` (depmod -n) the index files are empty, as depmod skips them on stdout."""
    warn = run.cfg.warn_dups
    log = run.log
    mods = run.modules
    deps = _all_deps(run)
    out: dict[str, bytes] = {}

    lines = []
    for m in mods:
        ds = deps[m.idx] if m.deps else []
        lines.append(m.shown + ":" + "".join(" " + d.shown for d in ds))
    out["modules.dep"] = "".join(ln + "\n" for ln in lines).encode("utf-8", "surrogateescape")

    aliases = ["# Aliases extracted from modules themselves.\n"]
    softdeps = ["# Soft dependencies extracted from modules themselves.\n"]
    for m in mods:
        for k, v in m.info:
            if k == "alias":
                aliases.append(f"alias {v} {m.name}\n")
            elif k == "softdep":
                softdeps.append(f"softdep {m.name} {v}\n")
    out["modules.alias"] = "".join(aliases).encode("utf-8", "surrogateescape")
    out["modules.softdep"] = "".join(softdeps).encode("utf-8", "surrogateescape")

    owned = [n for n, (owner, _) in run.symbols.items() if owner is not None]
    order = hash_order(owned, 2048)
    out["modules.symbols"] = ("# Aliases for symbols, used by symbol_request().\n" + "".join(
        f"alias symbol:{n} {run.symbols[n][0].name}\n" for n in order)).encode("utf-8", "surrogateescape")
    out["modules.devname"] = _devname(run)

    if show:
        for name in _BIN:
            out[name] = b""
        return {name: out[name] for name in FILES}

    idx = IndexBuilder()
    for m, line in zip(mods, lines):
        if idx.insert(_ascii(m.name, m.path), _ascii(line, m.path), m.idx) and warn:
            log("WARNING", f"duplicate module deps:\n{line}\n")
    out["modules.dep.bin"] = idx.write()

    idx = IndexBuilder()
    for m in mods:
        for k, v in m.info:
            if k != "alias":
                continue
            alias = alias_normalize(v)
            if alias is None:
                log("WARNING", f"Unmatched bracket in {v}\n")
                continue
            if idx.insert(_ascii(alias, m.path), m.name, m.idx) and warn:
                log("WARNING", f"duplicate module alias:\n{alias} {m.name}\n")
    out["modules.alias.bin"] = idx.write()

    idx = IndexBuilder()
    for n in order:
        owner = run.symbols[n][0]
        if idx.insert(_ascii("symbol:" + n, owner.path), owner.name, owner.idx) and warn:
            log("WARNING", f"duplicate module syms:\nsymbol:{n} {owner.name}\n")
    out["modules.symbols.bin"] = idx.write()

    out["modules.builtin.bin"] = _builtin_bin(run)
    out["modules.builtin.alias.bin"] = _builtin_alias_bin(run)
    return {name: out[name] for name in FILES}


def _read(run, name: str) -> bytes | None:
    try:
        return run.inv.fs.read_bytes(run.inv.path(f"{run.cfg.dirname}/{name}"))
    except OSError:
        return None


def _builtin_bin(run) -> bytes:
    """``output_builtin_bin``: modules.builtin's names (an empty file without it)."""
    data = _read(run, "modules.builtin")
    if data is None:
        return b""
    idx = IndexBuilder()
    for line in _fgets_max(data, 4095):
        text = line.decode("utf-8", "surrogateescape")
        if not (text[:1].isascii() and text[:1].isalpha()):
            run.log("ERROR", f"Invalid modules.builtin line: {text}\n")
            continue
        base = text[text.rfind("/") + 1:] if "/" in text else text
        idx.insert(_ascii(modname_normalize(base), "modules.builtin"), "", 0)
    return idx.write()


def _fgets_max(data: bytes, n: int) -> list[bytes]:
    """``fgets`` with a ``PATH_MAX`` buffer: lines, split further every ``n`` bytes."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos, pos + n)
        end = min(pos + n, len(data)) if end < 0 else end + 1
        out.append(data[pos:end])
        pos = end
    return out


def _builtin_alias_bin(run) -> bytes:
    """``output_builtin_alias_bin``: ``modname.alias=value`` entries of
    modules.builtin.modinfo, read with depmod's own stream rules."""
    data = _read(run, "modules.builtin.modinfo")
    if data is None:
        return b""
    idx = IndexBuilder()
    n = len(data)
    pos = 0
    eof = False

    def flush_to(end: int) -> bytes | None:
        # flush_stream_to: read up to end, NUL or EOF; the text only if end was met
        nonlocal pos, eof
        start = pos
        while pos < n and data[pos] != end and data[pos] != 0:
            pos += 1
        if pos >= n:
            eof = True
            return None
        c = data[pos]
        text = data[start:pos]
        pos += 1
        return text if c == end else None

    while not eof:
        modname = flush_to(ord("."))
        if not modname:
            continue
        key = flush_to(ord("="))
        if key != b"alias":
            if key is None and eof:
                break
            while pos < n and data[pos] != 0:
                pos += 1
            if pos >= n:
                eof = True
            else:
                pos += 1
            continue
        value = flush_to(0)
        if not value:
            continue
        v = value.decode("utf-8", "surrogateescape")
        alias = alias_normalize(v)
        if alias is None:
            run.log("WARNING", f"Unmatched bracket in {v}\n")
            continue
        idx.insert(_ascii(alias, "modules.builtin.modinfo"), _ascii(modname.decode("utf-8", "surrogateescape"),
                                                                     "modules.builtin.modinfo"), 0)
    return idx.write()


_MAJMIN = re.compile(r"(char|block)-major-(\d+)-(\d+)")


def _devname(run) -> bytes:
    """``output_devname``: modules with a ``devname:`` alias and a char/block major-minor."""
    out = []
    for m in run.modules:
        devname = None
        kind = ""
        major = minor = 0
        for k, v in m.info:
            if k != "alias":
                continue
            if v.startswith("devname:"):
                devname = v[len("devname:"):]
            else:
                mm = _MAJMIN.match(v)
                if mm:
                    kind = "c" if mm.group(1) == "char" else "b"
                    major, minor = int(mm.group(2)) & 0xFFFFFFFF, int(mm.group(3)) & 0xFFFFFFFF
            if kind and devname is not None:
                break
        if devname is not None:
            if kind:
                if not out:
                    out.append("# Device nodes to trigger on-demand module loading.\n")
                out.append(f"{m.name} {devname} {kind}{major}:{minor}\n")
            else:
                run.log("ERROR", f"Module '{m.name}' has devname ({devname}) but lacks major and minor "
                                 "information. Ignoring.\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def write_all(run, files: dict[str, bytes]) -> None:
    """Write every file into the module directory (mode 0644 less the umask), each through a
    temporary name; nothing is written before all contents exist."""
    fs = run.inv.fs
    d = run.inv.path(run.cfg.dirname)
    mode = 0o644 & ~run.inv.umask
    pid = os.getpid()
    for name, data in files.items():
        tmp = f"{d}/{name}.{pid}.nuwa"
        fs.write_bytes(tmp, data, mode)
        fs.rename(tmp, f"{d}/{name}")


def up_to_date(run) -> bool:
    """``depfile_up_to_date`` (depmod -A): no module file is newer than modules.dep."""
    fs = run.inv.fs
    d = run.inv.path(run.cfg.dirname)
    try:
        mtime = fs.stat(d + "/modules.dep").st_mtime
    except OSError:
        return False

    def walk(path: str) -> bool:
        try:
            names = fs.readdir(path)
        except OSError:
            return True
        for name in names:
            if name in (".", "..", "build", "source"):
                continue
            try:
                s = fs.stat(f"{path}/{name}")
            except OSError:
                continue
            if st.S_ISDIR(s.st_mode):
                if not walk(f"{path}/{name}"):
                    return False
            elif st.S_ISREG(s.st_mode) and any(name.endswith(e) and len(name) > len(e) for e in run.exts):
                if int(s.st_mtime) > int(mtime):
                    return False
        return True

    return walk(d)
