"""``systemctl list-unit-files`` (systemd 252) on an offline image.

In a chroot (``running_in_chroot_or_offline()``) systemctl lists unit files client-side:
``unit_file_get_list`` (``src/shared/install.c``) walks the search path, keeps the first
file of each valid unit name that is a regular file or a symlink, asks
``unit_file_lookup_state`` for its state (the one ``is-enabled`` prints; a lookup error is
``bad``), and ``verb_list_unit_files`` (``src/systemctl/systemctl-list-unit-files.c``) sorts
the entries by type then name (``strcasecmp``), adds the preset column and prints the table
with ``format-table.c`` as it does when stdout is not a terminal: no width limit, columns
separated by one space, the last column without trailing blanks, ``-`` for an empty cell.

The options that matter are parsed by systemctl's ``parse_argv`` before any verb runs
(:func:`parse_option`): ``--state=`` and ``-t``/``--type=`` (comma lists; a load state given
to ``-t`` is a state, as 252 keeps for compatibility), ``--legend=BOOL``, ``--no-legend`` and
``-q`` (which hides the legend unless ``--legend`` said otherwise). ``--all``, ``--full``,
``--plain`` and ``--no-pager`` change nothing when stdout is a pipe. Offline, the search
path has no ``/run`` directories (see ``systemd_units.LookupPaths``), which is what a chroot
of a dormant image shows too, so ``generated`` and ``transient`` do not arise.
"""

from __future__ import annotations

import stat as st
from collections.abc import Callable

from nuwa.script.commands import _args
from nuwa.script.commands.services.systemd_install import UnitFiles
from nuwa.script.commands.services.systemd_units import (
    UNIT_TYPES,
    LookupPaths,
    UnitError,
    is_valid,
    read_presets,
)
from nuwa.script.context import Defer, Invocation
from nuwa.script.expand import match

#: ``unit_load_state_table``: accepted by ``-t`` as states (compatibility with old versions)
LOAD_STATES = ("stub", "loaded", "not-found", "bad-setting", "error", "merged", "masked")
#: states whose preset column is left empty (``show_preset_for_state``)
_NO_PRESET = {"alias", "static", "generated", "transient"}
_TRUE = ("1", "yes", "y", "true", "t", "on")
_FALSE = ("0", "no", "n", "false", "f", "off")


def _comma_list(value: str, what: str) -> list[str]:
    """``extract_first_word(&p, &s, ",", 0)`` repeated: empty words vanish."""
    if "\\" in value or "'" in value or '"' in value:
        # flags 0 still treats a backslash as an escape (and a trailing one as an error)
        raise Defer(f"systemctl --{what}={value}: escapes in the list are not modelled")
    return [w for w in value.split(",") if w]


def parse_option(o, key: str, value: str | None) -> None:
    """One of ``-t``/``--type``, ``--state``, ``--legend``, ``--no-legend``, ``-q`` from
    ``parse_argv``, into ``o`` (``types``, ``states``, ``legend``). A usage error raises
    :class:`_args.UsageError` with 252's message; ``help`` lists are deferred."""
    if key == "t":
        if not value:
            raise _args.UsageError("--type= requires arguments.", hint=False)
        for t in _comma_list(value, "type"):
            if t == "help":
                raise Defer("systemctl -t help is not modelled")
            if t in UNIT_TYPES:
                o.types.append(t)
            elif t in LOAD_STATES:
                o.states.append(t)
            else:
                raise _args.UsageError(f"Unknown unit type or load state '{t}'.\n"
                                       "Use -t help to see a list of allowed values.", hint=False)
    elif key == "state":
        if not value:
            raise _args.UsageError("--state= requires arguments.", hint=False)
        for s in _comma_list(value, "state"):
            if s == "help":
                raise Defer("systemctl --state=help is not modelled")
            o.states.append(s)
    elif key == "legend":
        v = (value or "").lower()
        if v not in _TRUE + _FALSE:
            raise _args.UsageError(f"Failed to parse boolean argument to --legend: {value}.", hint=False)
        o.legend = v in _TRUE
    elif key == "no-legend":
        o.legend = False
    elif key == "q" and o.legend is None:
        o.legend = False


def _fnmatch_noescape(pattern: str, name: str) -> bool:
    """``fnmatch(pattern, name, FNM_NOESCAPE)``: a backslash is an ordinary character."""
    if "\\" in pattern:
        if "[" in pattern:
            raise Defer(f"systemctl list-unit-files: pattern {pattern!r} with a backslash and a bracket")
        pattern = pattern.replace("\\", "\\\\")
    return match(pattern, name)


def _preset_enabled(rules, name: str) -> bool:
    """``query_presets(name, presets, NULL)``: the first rule whose pattern matches by
    ``fnmatch`` wins (without an instance list the template-instance rules match by pattern
    only); no rule means enable."""
    for r in rules:
        if r.pattern is None:
            raise Defer(f"systemctl list-unit-files: 252 crashes on a bare 'enable' preset line (querying {name})")
        if _fnmatch_noescape(r.pattern, name):
            return r.action == "enable"
    return True


def _sort_key(name: str) -> tuple[str, str]:
    """``compare_unit_file_list``: ``strcasecmp`` of the suffixes, then of the names."""
    return name[name.rfind("."):].lower(), name.lower()


def collect(inv: Invocation, uf: UnitFiles, patterns: list[str], states: list[str],
            state_of: Callable[[UnitFiles, str], str]) -> list[tuple[str, str]]:
    """``unit_file_get_list``: (name, state) of every unit file found, first in the search
    path wins; ``state_of`` is ``unit_file_lookup_state`` (systemctl.unit_state). systemd's
    log lines (unit file warnings) go to stderr as they are met."""
    found: dict[str, str] = {}
    for d in uf.lp.search_path:
        for name, mode, _ in uf.entries(d):
            if name.startswith(".") or not is_valid(name):
                continue  # FOREACH_DIRENT skips hidden files; then unit_name_is_valid()
            if patterns and not any(_fnmatch_noescape(p, name) for p in patterns):
                continue
            if name in found or not (st.S_ISLNK(mode) or st.S_ISREG(mode)):
                continue
            try:
                state = state_of(uf, name)
            except UnitError:
                state = "bad"
            for line in uf.log:
                inv.err(line + "\n")
            uf.log.clear()
            if states and state not in states:
                continue
            found[name] = state
    return list(found.items())


def _table(rows: list[list[str]], header: list[str] | None) -> str:
    """format-table's output on a pipe: columns as wide as their widest shown cell, one space
    between them, trailing blanks of the last column dropped."""
    shown = ([header] if header else []) + rows
    widths = [max(len(r[i]) for r in shown) for i in range(len(shown[0]))] if shown else []
    out = []
    for r in shown:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        out.append(" ".join(cells).rstrip(" ") + "\n")
    return "".join(out)


def list_unit_files(inv: Invocation, o, patterns: list[str], lp: LookupPaths,
                    state_of: Callable[[UnitFiles, str], str]) -> int:
    """``verb_list_unit_files`` run client-side: the table on stdout, exit status 1 when
    nothing is listed (252 returns -ENOENT there without a message)."""
    colors = inv.env.get("SYSTEMD_COLORS")
    if colors is not None and colors.lower() not in _FALSE:
        raise Defer(f"systemctl list-unit-files with SYSTEMD_COLORS={colors}: colours on a pipe")
    uf = UnitFiles(inv.fs, lp)
    uf.dir_cache = {}  # nothing is written: directories are read once
    entries = collect(inv, uf, patterns, o.states, state_of)
    if o.types:
        entries = [(n, s) for n, s in entries if n[n.rfind(".") + 1:] in o.types]
    entries.sort(key=lambda e: _sort_key(e[0]))
    for a, b in zip(entries, entries[1:]):
        if _sort_key(a[0]) == _sort_key(b[0]):
            # qsort of two equal keys: their order is the hash table's, not reproducible here
            raise Defer(f"systemctl list-unit-files: {a[0]} and {b[0]} differ only in case")
    rows = []
    rules = None
    for name, state in entries:
        if state in _NO_PRESET:
            preset = "-"
        else:
            if not rules:
                # unit_file_query_preset() reads the files again while it holds no rule
                warn: list[str] = []
                rules = read_presets(inv.fs, lp, warn)
                for line in warn:
                    inv.err(line + "\n")
            preset = "enabled" if _preset_enabled(rules, name) else "disabled"
        rows.append([name, state, preset])
    legend = o.legend is not False
    inv.out(_table(rows, ["UNIT FILE", "STATE", "PRESET"] if legend else None))
    if legend:
        inv.out(f"\n{len(rows)} unit files listed.\n")
    return 0 if rows else 1
