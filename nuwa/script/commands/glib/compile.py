"""The ``glib-compile-schemas`` model (glib 2.74 ``gio/glib-compile-schemas.c``: ``main``,
``set_overrides``, ``key_state_serialise``, ``output_schema``/``output_key``, ``write_to_file``).

``DIRECTORY``'s ``*.gschema.xml`` and ``*.enums.xml`` (enums files first, then by ``strcmp``)
are parsed into schemas, vendor ``*.gschema.override`` files (same order, later ones win) set
defaults, and the result is written as ``gschemas.compiled``, a GVDB file byte-identical to the
real program's. Options: ``--targetdir``, ``--strict``, ``--dry-run``, ``--allow-any-name``,
``--version``. Deferred, with the reason: GVariant text, markup or override syntax this model
does not reproduce (and so cannot print the real error for), the hidden test options, help.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat as _stat
import struct

from nuwa.script.commands.glib import gvdb, gvtext
from nuwa.script.commands._ghash import GHashTable
from nuwa.script.commands.glib.gparse import ParseState
from nuwa.script.commands.glib.gschema import Unsupported, parse_value
from nuwa.script.commands.glib.gvariant import Variant, compare
from nuwa.script.context import Defer, Invocation

VERSION = "2.74.6"
_SPACE = " \t\n\v\f\r"
GPRINTERR = "\0"  # marks a line printed by g_printerr (converted to the locale charset)


# Messages: how the glib tools' messages reach the terminal.
# How the glib tools' messages reach the terminal: gettext and ``g_printerr``'s charset.
#
# Both programs call ``setlocale (LC_ALL, "")`` and translate their messages with the
# ``glib20`` domain. The models print the untranslated English text, which is what the C,
# POSIX and C.UTF-8 locales give (always present in glibc 2.36); any other locale may
# translate them, so a model with something to print defers there. ``g_printerr`` (unlike
# ``fprintf``) converts its UTF-8 text to the locale's charset with ``?`` for what ASCII cannot
# hold (``strdup_convert`` in ``gmessages.c``), so under C a “quote” prints as ``?``.


def _ctype(inv: Invocation) -> str:
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        if inv.env.get(var):
            return inv.env[var]
    return "C"


def locale_kind(inv: Invocation) -> str | None:
    """"ascii" (C, POSIX), "utf8" (C.UTF-8) or None (another locale: messages may differ)."""
    value = _ctype(inv)
    if value in ("C", "POSIX"):
        return "ascii"
    if value in ("C.UTF-8", "C.utf8"):
        return "utf8"
    return None


def check_printable(inv: Invocation, prog: str) -> None:
    """Defer when messages are to be printed in a locale whose text this model cannot know."""
    if locale_kind(inv) is None:
        raise Defer(f"{prog}: messages in locale {_ctype(inv)!r} (gettext may translate them)")


def printerr_text(inv: Invocation, text: str) -> str:
    """``g_printerr``'s conversion of UTF-8 text to the locale charset."""
    if locale_kind(inv) == "ascii":
        return "".join(c if c.isascii() else "?" for c in text)
    return text


def _sort_key(name: str):
    """``compare_strings``: ``.enums.xml`` files first, then ``strcmp`` order."""
    return (not name.endswith(".enums.xml"), name.encode())


def serialise_key(ks) -> tuple[str, object]:
    """``key_state_serialise``: (GVariant type, value) of a key's GVDB entry."""
    if ks.child_schema is not None:
        return "s", ks.child_schema
    types, values = [ks.type], [ks.default_value]
    if ks.l10n:
        text = ks.unparsed_default.strip(_SPACE)
        if ks.l10n_context is not None:
            text = ks.l10n_context + "\x04" + text
        types.append("(y(ys))")
        values.append((ord("l"), (ord(ks.l10n), text)))
    if ks.strinfo:
        words = list(struct.unpack(f"<{len(ks.strinfo) // 4}I", bytes(ks.strinfo)))
        types.append("(yau)")
        values.append((ord("f" if ks.is_flags else "e" if ks.is_enum else "c"), words))
    if ks.has_range:
        types.append(f"(y({ks.type}{ks.type}))")
        values.append((ord("r"), (ks.minimum, ks.maximum)))
    if ks.desktop_overrides is not None:
        types.append("(ya{sv})")
        values.append((ord("d"), [(k, v) for k, v in ks.desktop_overrides.items()]))
    return "(" + "".join(types) + ")", tuple(values)


def build_table(schema_table: GHashTable, stderr: list[str]) -> GHashTable:
    """``write_to_file`` up to the GVDB writer: the root table of schemas."""
    root_table = GHashTable()
    root = gvdb.table_insert(root_table, "")
    for sid, state in schema_table.items():
        table = GHashTable()
        sroot = gvdb.table_insert(table, "")
        item = gvdb.table_insert(root_table, sid)
        gvdb.set_parent(item, root)
        item.table = table
        l10n = False
        for name, ks in state.keys.items():
            kitem = gvdb.table_insert(table, name)
            gvdb.set_parent(kitem, sroot)
            kitem.value = serialise_key(ks)
            l10n = l10n or bool(ks.l10n)
            if ks.child_schema is not None and ks.child_schema not in schema_table:
                stderr.append(GPRINTERR + f"Warning: undefined reference to <schema id='{ks.child_schema}'/>")
        if state.path is not None:
            gvdb.insert_string(table, ".path", state.path)
        if state.extends_name:
            gvdb.insert_string(table, ".extends", state.extends_name)
        if state.list_of:
            gvdb.insert_string(table, ".list-of", state.list_of)
        if l10n:
            if state.gettext_domain is None:
                raise Unsupported("a localised key in a schema without a gettext domain")
            gvdb.insert_string(table, ".gettext-domain", state.gettext_domain)
    return root_table


def parse_keyfile(data: bytes, name: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The groups and keys of an override file, for the plain ``GKeyFile`` syntax only."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise Unsupported(f"override file {name} is not UTF-8") from None
    groups: list = []
    for line in text.split("\n"):
        s = line.strip(" \t")
        if not s or s.startswith("#"):
            continue
        m = re.fullmatch(r"\[([^\[\]\x00-\x1f]+)\]", s)
        if m:
            if any(g == m.group(1) for g, _ in groups):
                raise Unsupported(f"override file {name} repeats group [{m.group(1)}]")
            groups.append((m.group(1), []))
            continue
        m = re.fullmatch(r"([A-Za-z0-9-]+)[ \t]*=[ \t]*(.*)", line.lstrip(" \t"))
        if not m or not groups or "\\" in m.group(2) or m.group(2) != m.group(2).rstrip(" \t\r"):
            raise Unsupported(f"override file {name} has a line this model does not read: {line!r}")
        keys = groups[-1][1]
        if any(k == m.group(1) for k, _ in keys):
            raise Unsupported(f"override file {name} repeats key {m.group(1)}")
        keys.append((m.group(1), m.group(2)))
    return groups


def set_overrides(schema_table: GHashTable, files: list[tuple[str, bytes]], strict: bool,
                  stderr: list[str]) -> bool:
    """``set_overrides``: False when ``--strict`` stops the program."""
    for filename, data in files:
        for group, keys in parse_keyfile(data, filename):
            schema_name, _, desktop = group.partition(":")
            desktop_id = desktop if ":" in group else None
            schema = schema_table.get(schema_name)
            if schema is None:
                continue
            for key, string in keys:
                state = schema.keys.get(key)
                where = f"key \u201c{key}\u201d in schema \u201c{group}\u201d"
                if state is None:
                    if not strict:
                        stderr.append(f"No such {where} as specified in override file \u201c{filename}\u201d; "
                                      "ignoring override for this key.")
                        continue
                    stderr.append(f"No such {where} as specified in override file \u201c{filename}\u201d and "
                                  "--strict was specified; exiting.")
                    return False
                if state.child_schema is not None:
                    raise Unsupported(f"an override of the child {key!r} (the real program crashes)")
                if desktop_id is not None and state.l10n:
                    tail = ("; ignoring override for this key." if not strict
                            else " and --strict was specified; exiting.")
                    stderr.append(f"Cannot provide per-desktop overrides for localized {where} (override "
                                  f"file \u201c{filename}\u201d){tail}")
                    if strict:
                        return False
                    continue
                try:
                    value = parse_value(state.type, string)
                except gvtext.ParseError as e:
                    head = f"Error parsing {where} as specified in override file \u201c{filename}\u201d: {e}."
                    if not strict:
                        stderr.append(f"{head} Ignoring override for this key.")
                        continue
                    stderr.append(f"{head} --strict was specified; exiting.")
                    return False
                bad = None
                if state.has_range:
                    if compare(value, state.minimum) < 0 or compare(value, state.maximum) > 0:
                        bad = "is outside the range given in the schema"
                elif state.strinfo and not state.is_valid_choices(state.type, value):
                    bad = "is not in the list of valid choices"
                if bad:
                    head = f"Override for {where} in override file \u201c{filename}\u201d {bad}"
                    if not strict:
                        stderr.append(f"{head}; ignoring override for this key.")
                        continue
                    stderr.append(f"{head} and --strict was specified; exiting.")
                    return False
                if desktop_id is not None:
                    if state.desktop_overrides is None:
                        state.desktop_overrides = GHashTable()  # GVariantDict's table
                    state.desktop_overrides.insert(desktop_id, Variant(state.type, value))
                else:
                    state.default_value = value
    return True


def _parse_args(inv: Invocation) -> tuple[dict, list[str]] | int:
    """GOption's parse of the entries glib-compile-schemas declares."""
    opts = {"targetdir": None, "strict": False, "dry-run": False, "allow-any-name": False, "version": False}
    rest, args, i = [], inv.argv[1:], 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            rest += args[i:]
            break
        if not a.startswith("-") or a == "-":
            rest.append(a)
            continue
        name, eq, val = a[2:].partition("=") if a.startswith("--") else (a, "", "")
        if name in ("strict", "dry-run", "allow-any-name", "version") and not eq:
            opts[name] = True
        elif name == "targetdir":
            if not eq:
                if i >= len(args):
                    check_printable(inv, "glib-compile-schemas")
                    inv.err(f"Missing argument for {a}\n")
                    return 1
                val = args[i]
                i += 1
            opts["targetdir"] = val
        elif name in ("schema-file", "override-file", "help", "help-all", "h", "-?"):
            raise Defer(f"glib-compile-schemas: option {a} is not modelled")
        else:
            raise Defer(f"glib-compile-schemas: option {a}: GOption's message for it is not modelled")
    return opts, rest


def glib_compile_schemas(inv: Invocation) -> int:
    """The ``glib-compile-schemas`` model (glib 2.74.6 ``main``)."""
    parsed = _parse_args(inv)
    if isinstance(parsed, int):
        return parsed
    opts, rest = parsed
    if opts["version"]:
        inv.out(VERSION + "\n")
        return 0
    if len(rest) != 1:
        check_printable(inv, "glib-compile-schemas")
        inv.err("You should give exactly one directory name\n")
        return 1
    srcdir = rest[0]
    target = posixpath.join(opts["targetdir"] if opts["targetdir"] is not None else srcdir, "gschemas.compiled")
    target = re.sub("/+", "/", target)  # g_build_filename collapses repeated separators
    try:
        if not srcdir:  # opendir ("") fails; inv.path would give the working directory
            raise FileNotFoundError(2, os.strerror(2))
        names = inv.fs.readdir(inv.path(srcdir))
    except OSError as e:
        check_printable(inv, "glib-compile-schemas")
        inv.err(f"Error opening directory \u201c{srcdir}\u201d: {os.strerror(e.errno)}\n")
        return 1
    schema_files = sorted((n for n in names if n.endswith((".gschema.xml", ".enums.xml"))), key=_sort_key)
    override_files = sorted((n for n in names if n.endswith(".gschema.override")
                             and not n.endswith((".gschema.xml", ".enums.xml"))), key=_sort_key)
    if not schema_files:
        check_printable(inv, "glib-compile-schemas")
        try:
            inv.fs.unlink(inv.path(target))
            inv.out("No schema files found: removed existing output file.\n")
        except OSError:
            inv.out("No schema files found: doing nothing.\n")
        return 0
    try:
        return _compile(inv, srcdir, schema_files, override_files, target, opts)
    except Unsupported as e:
        raise Defer(f"glib-compile-schemas: {e}") from None


def _read(inv: Invocation, srcdir: str, name: str) -> tuple[str, bytes]:
    path = srcdir.rstrip("/") + "/" + name if srcdir.strip("/") else "/" + name
    try:
        st = inv.fs.stat(inv.path(path))
        if not _stat.S_ISREG(st.st_mode):
            raise Unsupported(f"{path} is not a regular file")
        return path, inv.fs.read_bytes(inv.path(path))
    except OSError as e:
        raise Unsupported(f"{path} cannot be read ({os.strerror(e.errno)})") from None


def _compile(inv: Invocation, srcdir: str, schema_files: list[str], override_files: list[str], target: str,
             opts: dict) -> int:
    strict = opts["strict"]
    state = ParseState(strict, opts["allow-any-name"])
    for name in schema_files:
        filename, data = _read(inv, srcdir, name)
        error = state.parse_file(data)
        if error:
            (line, col), message = error
            tail = "--strict was specified; exiting." if strict else "This entire file has been ignored."
            state.warnings.append(f"{filename}:{line}:{col}  {message}.  {tail}")
            if strict:
                _emit(inv, state.warnings)
                return 1
    stderr = state.warnings
    overrides = [_read(inv, srcdir, n) for n in override_files]
    if not set_overrides(state.schema_table, overrides, strict, stderr):
        _emit(inv, stderr)
        return 1
    if opts["dry-run"]:
        _emit(inv, stderr)
        return 0
    data = gvdb.write_contents(build_table(state.schema_table, stderr))
    if stderr:  # decided before anything is written
        check_printable(inv, "glib-compile-schemas")
    _write(inv, target, data)
    _emit(inv, stderr)
    return 0


def _emit(inv: Invocation, lines: list[str]) -> None:
    """Print the collected stderr lines (fprintf's as they are, g_printerr's converted)."""
    if lines:
        check_printable(inv, "glib-compile-schemas")
    inv.err("".join((printerr_text(inv, w[1:]) if w.startswith(GPRINTERR) else w) + "\n" for w in lines))


def _write(inv: Invocation, target: str, data: bytes) -> None:
    """``g_file_set_contents``: a new file (0666 under the umask) renamed over the target."""
    path = inv.path(target)
    try:
        st = inv.fs.lstat(path)
        if _stat.S_ISLNK(st.st_mode) or _stat.S_ISDIR(st.st_mode):
            raise Defer(f"glib-compile-schemas: {target} is a symbolic link or a directory")
    except FileNotFoundError:
        pass
    except OSError as e:
        raise Defer(f"glib-compile-schemas: {target}: {os.strerror(e.errno)} (the real message names a "
                    "random temporary file)") from None
    tmp = path + ".nuwa-tmp"
    try:
        h = inv.fs.open_handle(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~inv.umask)
    except OSError as e:
        raise Defer(f"glib-compile-schemas: cannot create {target} ({os.strerror(e.errno)}; the real message "
                    "names a random temporary file)") from None
    try:
        h.pwrite(0, data)
    finally:
        h.close()
    inv.fs.rename(tmp, path)
