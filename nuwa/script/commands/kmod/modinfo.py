"""``modinfo`` (kmod 30 ``tools/modinfo.c``): a module's ``.modinfo`` fields and signature.

An argument is a module file (an existing regular file with a module extension), a module
name (``-m``) or anything ``modprobe`` could look up (aliases, ``symbol:``...). Fields come
from the ELF ``.modinfo`` section, then the signature (``modsig``); a built-in module's
from ``modules.builtin.modinfo``. Output layout, ``-F FIELD``, ``-0``, the ``parm``
folding and the error lines are modinfo's. ``-k``/``-b`` choose the module directory; with
neither, looking a name up needs the running kernel's release and is deferred.
"""

from __future__ import annotations

import os
import posixpath
import stat as st

from nuwa.script.commands import _args
from nuwa.script.commands.kmod import depmod_cfg
from nuwa.script.commands.kmod.kmodctx import KMod, KmodContext
from nuwa.script.commands.kmod.kmodfile import (EXTENSIONS, ModuleElf, ModuleFileError, decompress,
                                                modinfo_pairs, modname_normalize)
from nuwa.script.commands.kmod.modsig import SignatureError, signature_fields
from nuwa.script.context import Defer, Invocation

_SPEC = _args.spec("adlpn0mF:k:b:Vh", {
    "author": "a", "description": "d", "license": "l", "parameters": "p", "filename": "n", "null": "0",
    "modname": "m", "field": ("F", _args.REQ), "set-version": ("k", _args.REQ),
    "basedir": ("b", _args.REQ), "version": "V", "help": "h"})
_FIELD = {"a": "author", "d": "description", "l": "license", "p": "parm", "n": "filename"}


def _builtin_info(inv: Invocation, dirname: str, name: str) -> list[str] | None:
    """``kmod_builtin_get_modinfo``: the strings of the first ``name.`` group of
    modules.builtin.modinfo, prefix removed; None without the file."""
    try:
        data = inv.fs.read_bytes(inv.path(f"{dirname}/modules.builtin.modinfo"))
    except OSError:
        return None
    out: list[str] = []
    current = None
    for raw in data.split(b"\0"):
        if not raw:
            continue
        s = raw.decode("utf-8", "surrogateescape")
        mod, dot, rest = s.partition(".")
        if not dot:
            continue
        if current is not None and mod != current:
            if current == name:
                break
        current = mod
        if mod == name:
            out.append(rest)
    return out


class _Params:
    """``struct param`` list: new names prepended, as modinfo.c's ``add_param`` does."""

    def __init__(self):
        self.items: list[list] = []  # [name, param, type]

    def add(self, key: str, value: str, log) -> None:
        name, colon, rest = value.partition(":")
        if not colon:
            log("ERROR", f'Found invalid "{key}={value}": missing \':\'\n')
            return
        for it in self.items:
            if it[0] == name:
                break
        else:
            it = [name, None, None]
            self.items.insert(0, it)
        it[1 if key == "parm" else 2] = rest


def _do(inv, ctx, mod_path: str | None, name: str, info_src, field: str | None, sep: str, log) -> int:
    """``modinfo_do`` for one module; returns 0 or a negative error."""
    out = []
    filename = mod_path
    if filename is None:
        if field is None:
            out.append(f"{'name:':<16}{name}{sep}")
        elif field == "name":
            out.append(f"{name}{sep}")
        filename = "(builtin)"
    if field == "filename":
        inv.out(f"{filename}{sep}")
        return 0
    if field is None:
        out.append(f"{'filename:':<16}{filename}{sep}")
    try:
        pairs = info_src()
    except ModuleFileError as err:
        inv.out("".join(out))
        log("ERROR", f"could not get modinfo from '{name}': {os.strerror(err.errno)}\n")
        return -err.errno
    if pairs is None:  # built-in without modules.builtin.modinfo: an old kernel
        inv.out("".join(out))
        return 0
    params = _Params()
    if field == "parm":
        for k, v in pairs:
            if k in ("parm", "parmtype"):
                params.add(k, v, log)
        for pname, param, ptype in params.items:
            if param is None:
                out.append(f"{pname}: ({ptype}){sep}")
            elif ptype is not None:
                out.append(f"{pname}:{param} ({ptype}){sep}")
            else:
                out.append(f"{pname}:{param}{sep}")
        inv.out("".join(out))
        return 0
    for k, v in pairs:
        if field is not None:
            if k == field:
                out.append(f"{v}{sep}")
            continue
        if k in ("parm", "parmtype"):
            params.add(k, v, log)
            continue
        if sep == "\0":
            out.append(f"{k}={v}{sep}")
            continue
        # printf's "%-*s" with a negative width pads by its absolute value
        out.append(f"{k}:{'':<{abs(15 - len(k))}}{v}{sep}")
    if field is None:
        for pname, param, ptype in params.items:
            if param is None:
                out.append(f"{'parm:':<16}{pname}:{ptype}{sep}")
            elif ptype is not None:
                out.append(f"{'parm:':<16}{pname}:{param} ({ptype}){sep}")
            else:
                out.append(f"{'parm:':<16}{pname}:{param}{sep}")
    inv.out("".join(out))
    return 0


def modinfo(inv: Invocation) -> int:
    """The ``modinfo`` model (kmod 30 ``do_modinfo``)."""
    def log(level: str, text: str) -> None:
        inv.err(f"{inv.name}: {level}: {text}")

    try:
        opts, args = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    field = None
    sep = "\n"
    by_name = False
    root = kversion = None
    for key, val in opts:
        if key in _FIELD:
            field = _FIELD[key]
        elif key == "F":
            field = val
        elif key == "0":
            sep = "\0"
        elif key == "m":
            by_name = True
        elif key == "k":
            kversion = val
        elif key == "b":
            root = val
        else:
            raise Defer(f"modinfo -{key} is not modelled")
    if not args:
        log("ERROR", "missing module or filename.\n")
        return 1
    _, features = depmod_cfg.image_kmod(inv)
    exts = tuple(EXTENSIONS[f] for f in ("", "zlib", "xz", "zstd") if f == "" or f in features)
    dirname = None
    if root is not None or kversion is not None:
        if kversion is None:
            raise Defer("modinfo -b without -k needs the running kernel's release (uname -r)")
        dirname = f"{root or ''}/lib/modules/{kversion}"
    ctx = None

    def context() -> KmodContext:
        nonlocal ctx
        if dirname is None:
            raise Defer("modinfo without -k needs the running kernel's release (uname -r) to find modules")
        if ctx is None:
            ctx = KmodContext(inv, dirname, [], log)
        return ctx

    def file_info(path: str):
        def load():
            raw = inv.fs.read_bytes(inv.path(path))
            data = decompress(raw, features)
            elf = ModuleElf(data)
            try:
                sig = signature_fields(data)
            except SignatureError as exc:
                raise Defer(f"modinfo: {path}: {exc}") from None
            return modinfo_pairs(elf.strings(b".modinfo")) + sig
        return load

    def one(mod: KMod) -> int:
        c = context()
        path = c.path(mod)
        if path is None:
            return _do(inv, c, None, mod.name,
                       lambda: (None if (b := _builtin_info(inv, c.dirname, mod.name)) is None else modinfo_pairs(b)),
                       field, sep, log)
        return _do(inv, c, path, mod.name, file_info(path), field, sep, log)

    err = 0
    for name in args:
        if by_name:
            c = context()
            mods = c.lookup_name(name)
            if not mods:
                log("ERROR", f"Module name {name} not found.\n")
                err = -2
                continue
            r = one(mods[0])
        elif _is_module_file(inv, name, exts):
            path = inv.path(name)  # path_make_absolute_cwd: joined, not normalised
            r = _do(inv, None, path, modname_normalize(posixpath.basename(path)), file_info(path), field, sep, log)
        else:
            c = context()
            mods = c.lookup(name)
            if mods is None:
                log("ERROR", f"Module alias {name} not found.\n")
                err = -22
                continue
            if not mods:
                log("ERROR", f"Module {name} not found.\n")
                err = -2
                continue
            r = 0
            for m in mods:
                rr = one(m)
                if rr < 0:
                    r = rr
        if r < 0:
            err = r
    return 1 if err < 0 else 0


def _is_module_file(inv: Invocation, name: str, exts) -> bool:
    """``is_module_filename``: a regular file (following links) with a module extension."""
    try:
        s = inv.fs.stat(inv.path(name))
    except OSError:
        return False
    return st.S_ISREG(s.st_mode) and any(len(name) > len(e) and name.endswith(e) for e in exts)
