"""``modprobe`` (kmod 30): what it would load, as ``--show-depends`` prints it.

Mirrors kmod 30's ``tools/modprobe.c`` (``insmod``, ``print_action``) and
``kmod_module_probe_insert_module`` with ``__kmod_module_get_probe_list`` (dependencies in
modules.dep order, each with its softdeps; pre-softdeps, the module, post-softdeps; the
top module's own softdeps skipped under ``--ignore-install``). This is how mkinitramfs's
``manual_add_modules`` finds the files of a module and its dependencies.

Modelled: ``-D/--show-depends`` with ``-a/--all``, ``-i/--ignore-install``, ``-q``,
``-S/--set-version``, ``-d/--dirname``, ``-C/--config``, ``-b/--use-blacklist``,
``-n``; ``-R/--resolve-alias``. Loading or removing a module only matters to a running
kernel and is dropped; a missing ``--set-version`` (which needs ``uname -r``),
``MODPROBE_OPTIONS``, ``--show-config`` and the other query options are deferred.
"""

from __future__ import annotations

from nuwa.script.commands import _args
from nuwa.script.commands.kmod import depmod_cfg
from nuwa.script.commands.kmod.kmodctx import KMod, KmodContext
from nuwa.script.context import Defer, Drop, Invocation

_SPEC = _args.spec("arw:RibfDcnC:d:S:sqvVh", {
    "all": "a", "remove": "r", "remove-dependencies": "remove-deps", "remove-holders": "remove-deps",
    "wait": ("w", _args.REQ), "resolve-alias": "R", "first-time": "first-time", "ignore-install": "i",
    "ignore-remove": "i", "use-blacklist": "b", "force": "f", "force-modversion": "force-modversion",
    "force-vermagic": "force-vermagic", "show-depends": "D", "showconfig": "c", "show-config": "c",
    "show-modversions": "show-modversions", "dump-modversions": "show-modversions",
    "show-exports": "show-exports", "dry-run": "n", "show": "n", "config": ("C", _args.REQ),
    "dirname": ("d", _args.REQ), "set-version": ("S", _args.REQ), "syslog": "s", "quiet": "q",
    "verbose": "v", "version": "V", "help": "h"})


def _probe_list(ctx: KmodContext, mod: KMod, ignorecmd: bool) -> list[KMod]:
    """``kmod_module_get_probe_list``."""
    for m in ctx.pool.values():
        m.visited = m.required = False
    out: list[KMod] = []

    def fill_softdep(m: KMod) -> None:
        pre, post = ctx.softdeps_of(m)
        for p in pre:
            walk(p, False, False)
        out.append(m)
        m.ignorecmd = bool(pre or post)
        for p in post:
            walk(p, False, False)

    def walk(m: KMod, required: bool, ignore: bool) -> None:
        if m.visited:
            return
        m.visited = True
        deps = ctx.dependencies(m)
        if required:
            m.required = True
            for d in deps:
                d.required = True
        for d in deps:
            fill_softdep(d)
        if ignore:
            out.append(m)
            m.ignorecmd = True
        else:
            fill_softdep(m)

    walk(mod, True, ignorecmd)
    return out


def _show(ctx: KmodContext, inv: Invocation, given: str, flags: dict, extra: str | None, log) -> int:
    """``insmod`` of modprobe.c with the show callback; returns its error (<0) or 0."""
    mods = ctx.lookup(given)
    if not mods:
        log("WARNING" if flags["a"] else "FATAL", f"Module {given} not found in directory {ctx.dirname}\n")
        return -2
    for mod in mods:
        if flags["R"]:
            inv.out(mod.name + "\n")
            continue
        if mod.alias is not None and ctx.is_blacklisted(mod):
            continue  # KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY: modprobe always sets it
        if flags["b"] and ctx.is_blacklisted(mod):
            continue
        for m in _probe_list(ctx, mod, flags["i"]):
            opts = ctx.module_options(m)
            x = extra if m is mod else None
            options = "" if not opts and not x else (opts + " " if opts else "") + (x or "")
            cmd = ctx.install_command(m)
            if cmd is not None and not m.ignorecmd:
                if flags["D"]:
                    inv.out(f"install {cmd} {options}\n")
                continue
            path = ctx.path(m)
            if not flags["D"]:
                continue
            if path is None:
                if ctx.is_builtin(m):
                    inv.out(f"builtin {m.name}\n")
            else:
                inv.out(f"insmod {path} {options}\n")
    return 0


def modprobe(inv: Invocation) -> int:
    """The ``modprobe`` model (kmod 30 ``do_modprobe``)."""
    quiet = False

    def log(level: str, text: str) -> None:
        if not quiet:  # -q lowers modprobe's log priority to LOG_EMERG
            inv.err(f"{inv.name}: {level}: {text}")

    if inv.env.get("MODPROBE_OPTIONS"):
        raise Defer("modprobe: options from $MODPROBE_OPTIONS are not modelled")
    try:
        opts, args = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    flags = dict.fromkeys("aiqbDRnr", False)
    root = kversion = None
    configs: list[str] = []
    for key, val in opts:
        if key in flags:
            flags[key] = True
        elif key == "d":
            root = val
        elif key == "S":
            kversion = val
        elif key == "C":
            configs.append(val)
        elif key in ("s", "f", "force-modversion", "force-vermagic", "first-time"):
            pass  # only change how a module is inserted, which never happens here
        else:
            raise Defer(f"modprobe option {key if len(key) > 1 else '-' + key} is not modelled")
    quiet = flags["q"]
    if not args:
        log("ERROR", "missing parameters. See -h.\n")
        return 1
    if flags["r"]:
        raise Drop("modprobe -r removes a module from the running kernel")
    if not (flags["D"] or flags["R"]):
        if flags["n"]:
            return 0  # a dry run without --show prints nothing and changes nothing
        raise Drop("modprobe loads a module into the running kernel")
    if kversion is None:
        raise Defer("modprobe without --set-version needs the running kernel's release (uname -r)")
    depmod_cfg.image_kmod(inv)  # the lookup rules and formats modelled are kmod 30's
    dirname = f"{root or ''}/lib/modules/{kversion}"
    ctx = KmodContext(inv, dirname, configs or None, log)
    err = 0
    if flags["a"]:
        for name in args:
            r = _show(ctx, inv, name, flags, None, log)
            if r < 0:
                err = r
    else:
        extra = _options_from_args(args[1:])
        err = _show(ctx, inv, args[0], flags, extra, log)
    return 1 if err < 0 else 0


def _options_from_args(args: list[str]) -> str | None:
    """``options_from_array``: the parameters after the module name, quoted when a value
    holds a space."""
    parts = []
    for a in args:
        k, eq, v = a.partition("=")
        if eq and v[:1] not in ('"', "'") and " " in v:
            a = f'{k}="{v}"'
        parts.append(a)
    return " ".join(parts) if parts else None
