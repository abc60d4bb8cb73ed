"""The GMarkup callbacks and file loop of glib-compile-schemas (glib 2.74
``glib-compile-schemas.c``: ``start_element``, ``end_element``, ``text``,
``parse_state_start_schema``, ``schema_state_add_key``/``_child``/``_override`` and
``parse_gschema_files``).
"""

from __future__ import annotations

from nuwa.script.commands.glib import gmarkup
from nuwa.script.commands._ghash import GHashTable
from nuwa.script.commands.glib.gschema import (EnumState, KeyState, SchemaError, SchemaState, Unsupported,
                                               check_keyname, is_valid_type_string)


def collect(element: str, attrs: list, spec: list[tuple[str, bool]]) -> dict:
    """``g_markup_collect_attributes``: (name, optional) specs; missing first, then unknown."""
    given = dict(attrs)
    for name, optional in spec:
        if name not in given and not optional:
            raise SchemaError(f"element '{element}' requires attribute '{name}'")
    names = {n for n, _ in spec}
    for name, _ in attrs:
        if name not in names:
            raise SchemaError(f"attribute '{name}' invalid for element '{element}'")
    return {n: given.get(n) for n, _ in spec}


class ParseState:
    """``ParseState``: the tables built over all files, and the per-element cursor."""

    def __init__(self, strict: bool, allow_any_name: bool = False) -> None:
        self.strict = strict
        self.allow_any_name = allow_any_name
        self.schema_table = GHashTable()
        self.enum_table = GHashTable()
        self.flags_table = GHashTable()
        self.this_file: list[tuple[GHashTable, str]] = []
        self.schemalist_domain = None
        self.schema_state: SchemaState | None = None
        self.key_state: KeyState | None = None
        self.enum_state: EnumState | None = None
        self.string: list[str] | None = None
        self.warnings: list[str] = []  # lines g_printerr prints while parsing

    # <schema> {{{
    def start_schema(self, id_, path, gettext_domain, extends_name, list_of) -> None:
        """``parse_state_start_schema``."""
        table = self.schema_table
        if id_ in table:
            raise SchemaError(f"<schema id='{id_}'> already specified")
        extends = None
        if extends_name:
            extends = table.get(extends_name)
            if extends is None:
                raise SchemaError(f"<schema id='{id_}'> extends not yet existing schema \u201c{extends_name}\u201d")
        if list_of:
            tmp = table.get(list_of)
            if tmp is None:
                raise SchemaError(f"<schema id='{id_}'> is list of not yet existing schema \u201c{list_of}\u201d")
            if tmp.path:
                raise SchemaError("Cannot be a list of a schema with a path")
        if extends:
            if extends.path:
                raise SchemaError("Cannot extend a schema with a path")
            if list_of:
                raise Unsupported("a list-of schema extending another schema")
            list_of = extends.list_of
        if path is not None and not (path.startswith("/") and path.endswith("/")):
            raise SchemaError("A path, if given, must begin and end with a slash")
        if path is not None and list_of and not path.endswith(":/"):
            raise SchemaError("The path of a list must end with \u201c:/\u201d")
        # upstream warns here about paths under /apps/, /desktop/ and /system/; Debian's
        # glib2.0 2.74.6-2 drops that warning (its binary has no such message), so neither do we
        self.schema_state = SchemaState(path, gettext_domain, extends, extends_name, list_of)
        self.this_file.append((table, id_))
        table.insert(id_, self.schema_state)

    def add_key(self, name, type_string, enum_type, flags_type) -> KeyState:
        """``schema_state_add_key``."""
        state = self.schema_state
        if state.list_of:
            raise SchemaError("Cannot add keys to a \u201clist-of\u201d schema")
        check_keyname(name, self.allow_any_name)
        if name in state.keys:
            raise SchemaError(f"<key name='{name}'> already specified")
        node = state
        while node:
            if node.extends:
                shadow = node.extends.keys.get(name)
                if shadow and not shadow.is_override:
                    raise SchemaError(f"<key name='{name}'> shadows <key name='{name}'> in <schema "
                                      f"id='{node.extends_name}'>; use <override> to modify value")
            node = node.extends
        if (type_string is not None) + (enum_type is not None) + (flags_type is not None) != 1:
            raise SchemaError("Exactly one of \u201ctype\u201d, \u201cenum\u201d or \u201cflags\u201d must be "
                              "specified as an attribute to <key>")
        strinfo = None
        if type_string is None:
            enum_state = (self.enum_table.get(enum_type) if enum_type is not None
                          else self.flags_table.get(flags_type))
            if enum_state is None:
                kind, ident = ("flags", flags_type) if flags_type is not None else ("enum", enum_type)
                raise SchemaError(f"<{kind} id='{ident}'> not (yet) defined.")
            type_string = "as" if flags_type is not None else "s"
            strinfo = bytes(enum_state.strinfo)
        elif not is_valid_type_string(type_string):
            raise SchemaError(f"Invalid GVariant type string \u201c{type_string}\u201d")
        key = KeyState(type_string, state.gettext_domain, enum_type is not None, flags_type is not None, strinfo)
        state.keys.insert(name, key)
        return key

    def add_child(self, name, schema) -> None:
        """``schema_state_add_child``."""
        check_keyname(name, self.allow_any_name)
        childname = name + "/"
        if childname in self.schema_state.keys:
            raise SchemaError(f"<child name='{name}'> already specified")
        self.schema_state.keys.insert(childname, KeyState(child_schema=schema))

    def add_override(self, key, l10n, context) -> None:
        """``schema_state_add_override``."""
        state = self.schema_state
        if state.extends is None:
            raise SchemaError("<override> given but schema isn\u2019t extending anything")
        original, parent = None, state.extends
        while parent:
            original = parent.keys.get(key)
            if original:
                break
            parent = parent.extends
        if original is None:
            raise SchemaError(f"No <key name='{key}'> to override")
        if key in state.keys:
            raise SchemaError(f"<override name='{key}'> already specified")
        self.key_state = original.override(state.gettext_domain)
        self.key_state.start_default(l10n, context)
        self.string = []
        state.keys.insert(key, self.key_state)
    # }}}

    def start_element(self, name: str, attrs: list, stack: tuple) -> None:
        """``start_element``: ``stack`` is the element stack, innermost (this element) first."""
        container = stack[1] if len(stack) > 1 else None
        if container is None:
            if name == "schemalist":
                self.schemalist_domain = collect(name, attrs, [("gettext-domain", True)])["gettext-domain"]
                return
        elif container == "schemalist":
            if name == "schema":
                a = collect(name, attrs, [("id", False), ("path", True), ("gettext-domain", True),
                                          ("extends", True), ("list-of", True)])
                domain = a["gettext-domain"] if a["gettext-domain"] is not None else self.schemalist_domain
                self.start_schema(a["id"], a["path"], domain, a["extends"], a["list-of"])
                return
            if name in ("enum", "flags"):
                ident = collect(name, attrs, [("id", False)])["id"]
                table = self.flags_table if name == "flags" else self.enum_table
                if ident in table:
                    raise SchemaError(f"<{name} id='{ident}'> already specified")
                self.enum_state = EnumState(name == "flags")
                self.this_file.append((table, ident))
                table.insert(ident, self.enum_state)
                return
        elif container == "schema":
            if name == "key":
                a = collect(name, attrs, [("name", False), ("type", True), ("enum", True), ("flags", True)])
                self.key_state = self.add_key(a["name"], a["type"], a["enum"], a["flags"])
                return
            if name == "child":
                a = collect(name, attrs, [("name", False), ("schema", False)])
                self.add_child(a["name"], a["schema"])
                return
            if name == "override":
                a = collect(name, attrs, [("name", False), ("l10n", True), ("context", True)])
                self.add_override(a["name"], a["l10n"], a["context"])
                return
        elif container == "key":
            ks = self.key_state
            if name == "default":
                a = collect(name, attrs, [("l10n", True), ("context", True)])
                ks.start_default(a["l10n"], a["context"])
                self.string = []
                return
            if name in ("summary", "description"):
                collect(name, attrs, [])
                attr = "summary_seen" if name == "summary" else "description_seen"
                if getattr(ks, attr) and self.strict:
                    raise SchemaError(f"Only one <{name}> element allowed inside <{container}>")
                self.string = []
                setattr(ks, attr, True)
                return
            if name == "range":
                a = collect(name, attrs, [("min", True), ("max", True)])
                ks.set_range(a["min"], a["max"])
                return
            if name == "choices":
                collect(name, attrs, [])
                ks.start_choices()
                return
            if name == "aliases":
                collect(name, attrs, [])
                ks.start_aliases()
                return
        elif container == "choices":
            if name == "choice":
                self.key_state.add_choice(collect(name, attrs, [("value", False)])["value"])
                return
        elif container == "aliases":
            if name == "alias":
                a = collect(name, attrs, [("value", False), ("target", False)])
                self.key_state.add_alias(a["value"], a["target"])
                return
        elif container in ("enum", "flags"):
            if name == "value":
                a = collect(name, attrs, [("nick", False), ("value", False)])
                self.enum_state.add_value(a["nick"], a["value"])
                return
        if container:
            raise SchemaError(f"Element <{name}> not allowed inside <{container}>")
        raise SchemaError(f"Element <{name}> not allowed at the top level")

    def end_element(self, name: str) -> None:
        """``end_element``."""
        try:
            if name == "schemalist":
                self.schemalist_domain = None
            elif name in ("enum", "flags"):
                state, self.enum_state = self.enum_state, None
                if not state.strinfo:
                    raise SchemaError(f"<{'flags' if state.is_flags else 'enum'}> must contain at least one <value>")
            elif name == "schema":
                self.schema_state = None
            elif name == "override":
                ks, self.key_state = self.key_state, None
                ks.end_default("".join(self.string))
            elif name == "key":
                ks, self.key_state = self.key_state, None
                if not ks.has_default:
                    raise SchemaError("Element <default> is required in <key>")
            elif name == "default":
                self.key_state.end_default("".join(self.string))
            elif name == "choices":
                self.key_state.end_choices()
            elif name == "aliases":
                self.key_state.end_aliases()
        finally:
            self.string = None

    def text(self, text: str, element: str) -> None:
        """``text``: kept when a string is expected, otherwise only whitespace is allowed."""
        if self.string is not None:
            self.string.append(text)
        elif text.strip(" \t\n\r\f\v"):
            raise SchemaError(f"Text may not appear inside <{element}>")

    def parse_file(self, data: bytes) -> tuple[tuple[int, int], str] | None:
        """One file of ``parse_gschema_files``: None, or the error's position and message
        (the file's schemas, enums and flags are then backed out, as the C does)."""
        self.this_file = []
        error = None
        try:
            for ev in gmarkup.events(data):
                try:
                    if ev.kind == "start":
                        self.start_element(ev.name, ev.attrs, ev.stack)
                    elif ev.kind == "end":
                        self.end_element(ev.name)
                    else:
                        self.text(ev.text, ev.stack[0])
                except SchemaError as e:
                    if ev.kind == "cdata":
                        raise Unsupported(f"an error in a CDATA section ({e}): GMarkup's report of it "
                                          "is not modelled") from None
                    # emit_start_element and the text callback prefix the position
                    # (propagate_error); emit_end_element passes the message as it is
                    prefix = "" if ev.kind == "end" else f"Error on line {ev.pos[0]} char {ev.pos[1]}: "
                    error = (ev.pos, prefix + str(e))
                    break
        except gmarkup.MarkupError as e:
            error = (e.pos, e.message)
        except gmarkup.MarkupUnsupported as e:
            raise Unsupported(f"markup GMarkup rejects or this reader does not handle: {e}") from None
        if error:
            # back out the file's schemas, flags and enums; the cursor fields are left as
            # they were, as parse_gschema_files leaves them
            for table, ident in reversed(self.this_file):
                table.remove(ident)
        return error
