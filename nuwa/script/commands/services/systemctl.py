"""``systemctl`` (systemd 252) on an offline image.

The unit-file verbs run systemd's install logic (``systemd_install.py``) against the image,
as ``systemctl`` does when it runs in a chroot or with ``--root``: ``enable``, ``disable``,
``reenable``, ``preset`` (``--preset-mode=full|enable-only|disable-only``), ``preset-all``,
``mask``, ``unmask``, ``is-enabled``; their messages ("Created symlink A → B.", "Removed
"A".", the errors and the "no installation config" notice) go to stderr as systemctl logs
them, with systemd's glyph choice for the locale. SysV scripts are synchronised as Debian's
``systemd-sysv-install`` does (``update-rc.d NAME defaults`` then ``enable``/``disable``,
through the ``update-rc.d`` model).

Verbs that talk to a running manager (``start``, ``stop``, ``restart``, ``reload``,
``try-restart``, ``condrestart``, ``daemon-reload``, ``daemon-reexec``, ``is-active``,
``is-failed``, ``status``, ``show``, ``kill``, ...) are dropped: the image is not running, so
the model answers as systemctl 252 does in a chroot (``running_in_chroot_or_offline()``):
"Running in chroot, ignoring command 'VERB'" and exit status 0. ``is-system-running``
prints ``offline`` and exits 1, which is what systemctl says there. ``--now`` enables or
disables the files and reports the start or stop as dropped (status 0). What is not
modelled (``link``, ``revert``, ``edit``, ``--user``, other roots, unknown options) is
deferred.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as st

from nuwa.script.commands import _args
from nuwa.script.commands.services.systemd_install import (
    AUX_FAILED,
    DEST_NOT_PRESENT,
    IS_DANGLING,
    IS_MASKED,
    SEARCH_FOLLOW_CONFIG_SYMLINKS,
    SEARCH_LOAD,
    SYMLINK,
    UNLINK,
    Change,
    Context,
    UnitFiles,
    InstallInfo,
    Unsupported,
)
from nuwa.script.commands.services.systemd_units import (
    INSTANCE,
    MASKED,
    TEMPLATE,
    LookupPaths,
    PresetCrash,
    UnitError,
    classify,
    is_valid,
    lstat,
    mangle,
    null_or_empty,
    query_preset,
    read_presets,
    replace_instance,
    stat,
    template_of,
)
from nuwa.script.commands.services.systemctl_list import list_unit_files, parse_option
from nuwa.script.commands.services.sysvinit import update_rc_d_model
from nuwa.script.context import Defer, Drop, Invocation

#: verbs systemctl 252 marks VERB_ONLINE_ONLY (they need the manager)
ONLINE_VERBS = {
    "list-units", "list-automounts", "list-sockets", "list-timers", "list-jobs", "list-machines", "clear-jobs",
    "cancel", "start", "stop", "condstop", "reload", "restart", "try-restart", "reload-or-restart",
    "reload-or-try-restart", "try-reload-or-restart", "force-reload", "condreload", "condrestart", "isolate",
    "kill", "clean", "freeze", "thaw", "is-active", "check", "is-failed", "show", "cat", "status", "help",
    "daemon-reload", "daemon-reexec", "log-level", "log-target", "service-log-level", "service-log-target",
    "show-environment", "set-environment", "unset-environment", "import-environment", "halt", "poweroff",
    "reboot", "kexec", "suspend", "hibernate", "hybrid-sleep", "suspend-then-hibernate", "default", "rescue",
    "emergency", "exit", "switch-root", "list-dependencies", "set-property", "bind", "mount-image",
    "reset-failed", "whoami",
}
#: verbs that need at least one unit argument (min args 2 in the verbs table)
_NEED_ARG = {"start", "stop", "condstop", "reload", "restart", "try-restart", "reload-or-try-restart",
             "try-reload-or-restart", "force-reload", "condreload", "condrestart", "isolate", "kill", "clean",
             "freeze", "thaw", "is-active", "check", "cat", "enable", "disable", "reenable", "preset", "mask",
             "unmask", "is-enabled", "link", "revert", "set-property"}
_INSTALL_VERBS = {"enable", "disable", "reenable", "preset", "preset-all", "mask", "unmask", "is-enabled"}
_ENABLED_STATES = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}

_SPEC = _args.spec("qfalt:p:s:n:o:H:M:", {
    "quiet": "q", "force": "f", "all": "a", "full": "l", "type": "t", "property": "p", "signal": "s",
    "lines": "n", "output": "o", "host": "H", "machine": "M",
    "root": ("root", _args.REQ), "system": "system", "global": "global", "user": "user", "now": "now",
    "no-reload": "no-reload", "no-ask-password": "no-ask-password", "no-block": "no-block",
    "no-pager": "no-pager", "no-legend": "no-legend", "no-warn": "no-warn", "runtime": "runtime",
    "preset-mode": ("preset-mode", _args.REQ), "value": "value", "plain": "plain", "wait": "wait",
    "job-mode": ("job-mode", _args.REQ), "kill-who": ("kill-who", _args.REQ), "state": ("state", _args.REQ),
    "no-wall": "no-wall", "legend": ("legend", _args.REQ),
})

_NOTICE = (
    "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\n"
    "Alias= settings in the [Install] section, and DefaultInstance= for template\n"
    "units). This means they are not meant to be enabled using systemctl.\n"
    " \n"
    "Possible reasons for having this kind of units are:\n"
    "{b} A unit may be statically enabled by being symlinked from another unit's\n"
    "  .wants/ or .requires/ directory.\n"
    "{b} A unit's purpose may be to act as a helper for some other unit which has\n"
    "  a requirement dependency on it.\n"
    "{b} A unit may be started when needed via activation (socket, path, timer,\n"
    "  D-Bus, udev, scripted systemctl call, ...).\n"
    "{b} In case of template units, the unit is meant to be enabled with some\n"
    "  instance name specified.\n"
)


def locale_utf8(env: dict) -> bool:
    """systemd 252's ``is_locale_utf8``: UTF-8 unless C/POSIX is set explicitly (an unset C
    locale counts as UTF-8; so does a locale the image cannot load). 252's systemctl does not
    look at $SYSTEMD_UTF8 (checked against the real one)."""
    loc = next((env[k] for k in ("LC_ALL", "LC_CTYPE", "LANG") if env.get(k)), "")
    if "utf-8" in loc.lower() or "utf8" in loc.lower():
        return True
    if loc in ("C", "POSIX"):
        return False
    return True


def _errtext(code: int) -> str:
    return os.strerror(-code)


def dump_changes(inv: Invocation, verb: str, r: int, changes: list[Change], quiet: bool) -> None:
    """``install_changes_dump`` (systemd 252 wording)."""
    arrow = "\u2192" if locale_utf8(inv.env) else "->"
    logged = False
    for c in changes:
        k = c.kind
        if k == SYMLINK:
            if not quiet:
                inv.err(f"Created symlink {c.path} {arrow} {c.source}.\n")
        elif k == UNLINK:
            if not quiet:
                inv.err(f"Removed \"{c.path}\".\n")
        elif k == IS_MASKED:
            if not quiet:
                inv.err(f"Unit {c.path} is masked, ignoring.\n")
        elif k == IS_DANGLING:
            if not quiet:
                inv.err(f"Unit {c.path} is an alias to a unit that is not present, ignoring.\n")
        elif k == DEST_NOT_PRESENT:
            if not quiet:
                inv.err(f"Unit {c.source} is added as a dependency to a non-existent unit {c.path}.\n")
        elif k == AUX_FAILED:
            if not quiet:
                inv.err(f"Failed to enable auxiliary unit {c.path}, ignoring.\n")
        else:
            logged = True
            inv.err(_error_line(verb, c) + "\n")
    if r < 0 and not logged:
        inv.err(f"Failed to {verb}: {_errtext(r)}.\n")


def _error_line(verb: str, c: Change) -> str:
    k = c.kind
    if k == -errno.EEXIST:
        if c.source:
            return f"Failed to {verb} unit, file \"{c.path}\" already exists and is a symlink to \"{c.source}\"."
        return f"Failed to {verb} unit, file \"{c.path}\" already exists."
    if k == -errno.ERFKILL:
        return f"Failed to {verb} unit, unit {c.path} is masked."
    if k == -errno.EADDRNOTAVAIL:
        return f"Failed to {verb} unit, unit {c.path} is transient or generated."
    if k == -errno.EIDRM:
        return f"Failed to {verb} {c.source}, destination unit {c.path} is a non-template unit."
    if k == -errno.EUCLEAN:
        return f"Failed to {verb} unit, \"{c.path}\" is not a valid unit name."
    if k == -errno.ELOOP:
        return f"Failed to {verb} unit, refusing to operate on linked unit file {c.path}."
    if k == -errno.EXDEV:
        if c.source:
            return f"Failed to {verb} unit, cannot alias {c.source} as {c.path}."
        return f"Failed to {verb} unit, invalid unit reference \"{c.path}\"."
    if k == -errno.ENOENT:
        return f"Failed to {verb} unit, unit {c.path} does not exist."
    return f"Failed to {verb} unit, file \"{c.path}\": {_errtext(k)}"


# -- the operations (install.c unit_file_*) --------------------------------------------------

def op_enable(ctx: Context, names: list[str], force: bool) -> int:
    """``unit_file_enable``: the number of [Install] rules, or a negative errno."""
    for n in names:
        try:
            ctx.discover_and_check(n, SEARCH_LOAD | SEARCH_FOLLOW_CONFIG_SYMLINKS)
        except UnitError as e:
            return e.code
    return ctx.apply(ctx.lp.persistent_config, force, SEARCH_LOAD)


def op_disable(ctx: Context, names: list[str]) -> int:
    """``unit_file_disable``."""
    for n in names:
        if not is_valid(n):
            return -errno.EINVAL
        ctx.add(n)
    marks: set[str] = set()
    ctx.mark_for_removal(marks)
    return ctx.remove_marked(marks, ctx.lp.persistent_config)


def op_mask(ctx: Context, names: list[str], force: bool) -> int:
    """``unit_file_mask``: ``/dev/null`` links in the configuration directory."""
    r = 0
    for n in names:
        if not is_valid(n):
            r = r or -errno.EINVAL
            continue
        q = ctx.create_symlink("/dev/null", posixpath.join(ctx.lp.persistent_config, n), force)
        if q < 0 and r >= 0:
            r = q
    return r


def op_unmask(ctx: Context, names: list[str]) -> int:
    """``unit_file_unmask``: remove masks and any symlink pointing at them."""
    todo: list[str] = []
    for n in names:
        if not is_valid(n):
            return -errno.EINVAL
        p = posixpath.join(ctx.lp.persistent_config, n)
        if lstat(ctx.fs, p) is None or not null_or_empty(ctx.fs, p):
            continue
        if n not in todo:
            todo.append(n)
    marks: set[str] = set()
    r = 0
    for n in todo:
        p = posixpath.join(ctx.lp.persistent_config, n)
        try:
            ctx.fs.unlink(p)
        except OSError as e:
            if e.errno != errno.ENOENT:
                r = r or -e.errno
                ctx.change(-e.errno, p)
            continue
        ctx.change(UNLINK, p)
        marks.add(p)
    q = ctx.remove_marked(marks, ctx.lp.persistent_config)
    return r or q


def op_preset(uf: UnitFiles, changes: list[Change], names: list[str] | None, mode: str, umask: int) -> int:
    """``unit_file_preset`` (``names``) or ``unit_file_preset_all`` (None)."""
    rules = read_presets(uf.fs, uf.lp, uf.log)
    plus, minus = Context(uf, changes, umask), Context(uf, changes, umask)
    ignore = {-errno.EEXIST, -errno.ERFKILL, -errno.EADDRNOTAVAIL, -errno.EBADSLT, -errno.EIDRM, -errno.EUCLEAN,
              -errno.ELOOP, -errno.ENOENT, -errno.EUNATCH, -errno.EXDEV}
    if names is None:
        for d in uf.lp.search_path:
            try:
                entries = uf.fs.readdir(d)
            except OSError:
                continue
            for n in entries:
                s = lstat(uf.fs, posixpath.join(d, n))
                if not is_valid(n) or s is None or not (s.is_lnk or s.is_reg):
                    continue
                r = _preset_one(uf, plus, minus, n, rules, changes)
                if r < 0 and r not in ignore:
                    return r
    else:
        for n in names:
            r = _preset_one(uf, plus, minus, n, rules, changes)
            if r < 0:
                return r
    r = 0
    if mode != "enable-only":
        marks: set[str] = set()
        minus.mark_for_removal(marks)
        r = minus.remove_marked(marks, uf.lp.persistent_config)
    if mode != "disable-only":
        q = plus.apply(uf.lp.persistent_config, False, SEARCH_LOAD, ignore_aux_failure=True)
        if r >= 0:
            r = q if q < 0 else r + q
    return r


def _preset_one(uf: UnitFiles, plus: Context, minus: Context, name: str, rules, changes) -> int:
    """``preset_prepare_one``."""
    if plus.find(name) or minus.find(name):
        return 0
    tmp = Context(uf, changes)
    try:
        i = tmp.discover(name, SEARCH_FOLLOW_CONFIG_SYMLINKS, record=True)
    except UnitError as e:
        return e.code
    if name != i.name:
        return 0
    action, instances = query_preset(rules, name)
    try:
        if action == "enable":
            for n in instances or [name]:
                plus.discover_and_check(n, SEARCH_LOAD | SEARCH_FOLLOW_CONFIG_SYMLINKS)
        else:
            minus.discover(name, SEARCH_FOLLOW_CONFIG_SYMLINKS, record=True)
    except UnitError as e:
        return e.code
    return 0


# -- enablement state (install.c unit_file_lookup_state, find_symlinks*) ----------------------

def unit_state(uf: UnitFiles, name: str) -> str:
    """``unit_file_lookup_state``: enabled, enabled-runtime, linked, linked-runtime, alias,
    masked, masked-runtime, static, disabled, indirect, generated or transient.
    Raises :class:`UnitError` (e.g. -ENOENT) as systemctl's ``unit_file_get_state`` fails."""
    if not is_valid(name):
        raise UnitError(-errno.EINVAL, name)
    ctx = Context(uf)
    i = ctx.discover(name, SEARCH_LOAD | SEARCH_FOLLOW_CONFIG_SYMLINKS)
    lp = uf.lp
    if i.mode == MASKED:
        return "masked-runtime" if lp.is_runtime(posixpath.dirname(i.path)) else "masked"
    if name != posixpath.basename(i.path) and classify(i.name) != INSTANCE:
        return "alias"
    d = posixpath.dirname(i.path)
    if lp.is_generator_dir(d):
        return "generated"
    if d == lp.transient and d:
        return "transient"
    s = _find_in_scope(uf, i, True)
    if s:
        return s
    if _find_in_scope(uf, i, False):
        return "indirect"
    if i.install.has_rules():
        return "disabled"
    return "indirect" if i.install.also else "static"


def _known_name(i: InstallInfo, name: str) -> bool:
    """``is_symlink_with_known_name``."""
    if name == i.name or name in i.install.aliases:
        return True
    return bool(i.install.default_instance and classify(i.name) == TEMPLATE
                and name == replace_instance(i.name, i.install.default_instance))


def _find_in_dir(uf: UnitFiles, d: str, i: InstallInfo, ignore_destination: bool, match_name: bool,
                 ignore_same_name: bool, config: str, same: list[bool]) -> bool:
    """``find_symlinks_in_directory``."""
    for n, mode, dest in uf.entries(d):
        if not st.S_ISLNK(mode):
            continue
        found_path = found_dest = False
        if not ignore_destination:
            if not dest.startswith("/"):
                dest = posixpath.join(d, dest)
            found_dest = posixpath.basename(dest) == i.name
        if ignore_destination or not ignore_same_name:
            found_path = n == i.name
        if not found_path and ignore_destination and classify(n) == INSTANCE:
            found_dest = template_of(n) == i.name
        b = found_path and found_dest and posixpath.join(d, n) == posixpath.join(config, i.name)
        if b:
            same[0] = True
        elif found_path or found_dest:
            if not match_name or _known_name(i, n):
                return True
    return False


def _find_in_config(uf: UnitFiles, i: InstallInfo, match_name: bool, ignore_same_name: bool, config: str,
                    same: list[bool]) -> bool:
    """``find_symlinks``: ``.wants``/``.requires``/``.upholds`` first, then the directory itself."""
    for n, mode, _ in uf.entries(config):
        if not st.S_ISDIR(mode):
            continue
        if "." not in n or n[n.rfind("."):] not in (".wants", ".requires", ".upholds"):
            continue
        if _find_in_dir(uf, posixpath.join(config, n), i, True, match_name, ignore_same_name, config, same):
            return True
    return _find_in_dir(uf, config, i, False, match_name, ignore_same_name, config, same)


def _find_in_scope(uf: UnitFiles, i: InstallInfo, match_name: bool) -> str | None:
    """``find_symlinks_in_scope``: the state its symlinks give, or None."""
    lp = uf.lp
    same_config = same_runtime = in_runtime = at_all = False
    ignore_same = False
    for d in lp.search_path:
        same = [False]
        if _find_in_config(uf, i, match_name, ignore_same, d, same):
            if d == lp.persistent_config:
                return "enabled"
            if lp.is_runtime(d):
                in_runtime = True
            else:
                at_all = True
        elif same[0]:
            if d == lp.persistent_config:
                same_config = True
            elif lp.is_runtime(d):
                same_runtime = True
        if not ignore_same and (i.path == d or (i.path or "").startswith(d + "/")):
            ignore_same = True
    if in_runtime:
        return "enabled-runtime"
    if at_all and classify(i.name) == INSTANCE:
        return "static"
    if same_config:
        return "linked"
    if same_runtime:
        return "linked-runtime"
    return None


# -- the command -----------------------------------------------------------------------------

class _Opts:
    def __init__(self):
        self.quiet = self.force = self.now = False
        self.root: str | None = None
        self.scope = "system"
        self.preset_mode = "full"
        self.runtime = False
        self.full = False
        # list-unit-files: --type= / --state= lists, legend shown unless None is overridden
        self.types: list[str] = []
        self.states: list[str] = []
        self.legend: bool | None = None


def _parse(inv: Invocation) -> tuple[_Opts, list[str]]:
    o = _Opts()
    opts, args = _args.parse(inv, _SPEC)
    for k, v in opts:
        if k == "q":
            o.quiet = True
        elif k == "f":
            o.force = True
        elif k == "now":
            o.now = True
        elif k == "root":
            o.root = v
        elif k in ("system", "global", "user"):
            o.scope = k
        elif k == "preset-mode":
            if v not in ("full", "enable-only", "disable-only"):
                raise _args.UsageError(f"Failed to parse preset mode: {v}.", hint=False)
            o.preset_mode = v
        elif k == "runtime":
            o.runtime = True
        elif k in ("H", "M"):
            raise Defer(f"systemctl -{k}: another host or machine")
        elif k == "l":
            o.full = True
        if k in ("t", "state", "legend", "no-legend", "q"):
            parse_option(o, k, v)
    return o, args


def systemctl(inv: Invocation) -> int:
    """The ``systemctl`` model."""
    try:
        o, args = _parse(inv)
    except _args.UsageError as e:
        inv.err(e.text + "\n")
        return 1
    verb = args[0] if args else "list-units"
    rest = args[1:]
    if verb not in ONLINE_VERBS and verb not in _INSTALL_VERBS and verb not in ("is-system-running",
                                                                                  "list-unit-files"):
        if verb in ("link", "revert", "edit", "add-wants", "add-requires", "set-default", "get-default",
                    "list-dependencies"):
            raise Defer(f"systemctl {verb} is not modelled")
        inv.err(f"Unknown command verb {verb}.\n")
        return 1
    if verb in _NEED_ARG and not rest:
        inv.err("Too few arguments.\n")
        return 1
    if o.root not in (None, "/", ""):
        if verb in ONLINE_VERBS:
            inv.err(f"Verb '{verb}' cannot be used with --root= or --image=.\n")
            return 1
        raise Defer(f"systemctl --root={o.root}: a root inside the image")
    if verb in ONLINE_VERBS:
        raise Drop(f"systemctl {verb}: the image is not running (systemctl in a chroot: "
                   f"\"Running in chroot, ignoring command '{verb}'\")", 0)
    if verb == "is-system-running":
        if not o.quiet:
            inv.out("offline\n")
        return 1
    if o.scope == "user":
        raise Defer("systemctl --user needs a user's manager")
    if verb == "list-unit-files":
        lp = LookupPaths.global_() if o.scope == "global" else LookupPaths.system()
        try:
            return list_unit_files(inv, o, rest, lp, unit_state)
        except Unsupported as e:
            raise Defer(f"systemctl {verb}: {e}") from None
    if o.runtime:
        raise Drop(f"systemctl --runtime {verb}: /run does not survive until the image boots", 0)
    if o.full and verb == "is-enabled":
        raise Defer("systemctl is-enabled --full is not modelled")
    lp = LookupPaths.global_() if o.scope == "global" else LookupPaths.system()
    try:
        return _install_verb(inv, o, verb, rest, lp)
    except (Unsupported, PresetCrash) as e:
        raise Defer(f"systemctl {verb}: {e}") from None


def _names(inv: Invocation, verb: str, args: list[str]) -> list[str]:
    out = []
    for a in args:
        if "/" in a:
            raise Defer(f"systemctl {verb} with a unit file path ({a}) is not modelled")
        m = mangle(a)
        if m is None:
            raise Defer(f"systemctl {verb}: unit name {a!r} needs escaping")
        out.append(m)
    return out


def _install_verb(inv: Invocation, o: _Opts, verb: str, rest: list[str], lp: LookupPaths) -> int:
    names = _names(inv, verb, rest)
    uf = UnitFiles(inv.fs, lp)
    sysv_enabled = None
    if o.scope == "system" and verb in ("enable", "disable", "is-enabled") \
            and inv.env.get("SYSTEMCTL_SKIP_SYSV", "").lower() not in ("1", "yes", "y", "true", "t", "on"):
        names, sysv_enabled, status = _sysv(inv, o, verb, names, uf)
        if status is not None:
            return status
        if not names:
            return 0 if verb != "is-enabled" else (0 if sysv_enabled else 1)
    if verb == "is-enabled":
        uf.dir_cache = {}  # nothing is written from here on
        enabled = bool(sysv_enabled)
        for n in names:
            try:
                state = unit_state(uf, n)
            except UnitError as e:
                _flush_log(inv, uf)
                inv.err(f"Failed to get unit file state for {n}: {_errtext(e.code)}\n")
                return 1
            _flush_log(inv, uf)
            if state in _ENABLED_STATES:
                enabled = True
            if not o.quiet:
                inv.out(state + "\n")
        return 0 if enabled else 1
    changes: list[Change] = []
    ctx = Context(uf, changes, inv.umask)
    carries = None
    if verb == "enable":
        r = carries = op_enable(ctx, names, o.force)
    elif verb == "disable":
        r = op_disable(ctx, names)
    elif verb == "reenable":
        r = op_disable(ctx, names)
        if r >= 0:
            r = carries = op_enable(Context(uf, changes, inv.umask), names, o.force)
    elif verb == "mask":
        r = op_mask(ctx, names, o.force)
    elif verb == "unmask":
        r = op_unmask(ctx, names)
    elif verb == "preset":
        r = op_preset(uf, changes, names, o.preset_mode, inv.umask)
    else:
        r = op_preset(uf, changes, None, o.preset_mode, inv.umask)
    _flush_log(inv, uf)
    dump_changes(inv, "preset" if verb == "preset-all" else verb, r, changes, o.quiet)
    if r < 0:
        return 1
    if carries == 0:
        inv.err(_NOTICE.format(b="\u2022" if locale_utf8(inv.env) else "*"))
    if o.now and verb in ("enable", "disable", "mask") and names:
        action = "start" if verb == "enable" else "stop"
        if inv.run is not None:
            inv.run(["systemctl", action, *names], b"")
    return 0


def _flush_log(inv: Invocation, uf: UnitFiles) -> None:
    for line in uf.log:
        inv.err(line + "\n")
    uf.log.clear()


def _sysv(inv: Invocation, o: _Opts, verb: str, names: list[str], uf: UnitFiles):
    """``enable_sysv_units`` with Debian's ``systemd-sysv-install``: (native names left,
    is-enabled answer or None, an exit status to stop with or None)."""
    left: list[str] = []
    enabled = None
    for n in names:
        if not n.endswith(".service"):
            left.append(n)
            continue
        j = uf.exists(n)
        if j < 0 and j not in (-errno.ELOOP, -errno.ERFKILL, -errno.EADDRNOTAVAIL):
            inv.err(f"Failed to look up unit file state: {_errtext(j)}\n")
            return left, enabled, 1
        native = j != 0
        if native and verb == "is-enabled":
            left.append(n)
            continue
        base = n[: -len(".service")]
        if stat(inv.fs, "/etc/init.d/" + base) is None and lstat(inv.fs, "/etc/init.d/" + base) is None:
            left.append(n)
            continue
        helper = "/lib/systemd/systemd-sysv-install"
        if not o.quiet:
            if native:
                inv.err(f"Synchronizing state of {n} with SysV service script with {helper}.\n")
            else:
                inv.err(f"{n} is not a native service, redirecting to systemd-sysv-install.\n")
        root = [f"--root={o.root}"] if o.root else []
        if not o.quiet:
            inv.err(f"Executing: {' '.join([helper, *root, verb, base])}\n")
        s = stat(inv.fs, helper)
        if s is None or not s.is_reg:
            raise Defer(f"systemctl {verb}: {helper} is missing in the image")
        if verb == "is-enabled":
            rc = 0 if _rc_glob(inv, base) else 1
            if rc == 0:
                enabled = True
            elif enabled is None:
                enabled = False
            if not o.quiet:
                inv.out("enabled\n" if rc == 0 else "disabled\n")
        else:
            rc = update_rc_d_model(inv, [base, "defaults"], skip_native=True)
            if rc == 0:
                rc = update_rc_d_model(inv, [base, verb], skip_native=True)
            if rc != 0:
                return left, enabled, 1
        if native:
            left.append(n)
    return left, enabled, None


def _rc_glob(inv: Invocation, name: str) -> bool:
    """``ls /etc/rc[S5].d/S??NAME``: any entry (a dangling link counts)."""
    for lvl in "S5":
        d = f"/etc/rc{lvl}.d"
        try:
            entries = inv.fs.readdir(d)
        except OSError:
            continue
        for e in entries:
            if len(e) == len(name) + 3 and e[0] == "S" and e[3:] == name and e[1] != "/" and e[2] != "/":
                return True
    return False
