"""Schema files to schema states (glib 2.74 ``gio/glib-compile-schemas.c``, "Handling of
<enum>", "<key>", "<schema>" and the GMarkup callbacks).

:class:`ParseState` receives the :mod:`~nuwa.script.commands.glib.gmarkup` events of each
file and builds the same tables as the C program: ``schema_table`` (a
:class:`~nuwa.script.commands._ghash.GHashTable`, whose order decides the output layout),
each schema's ``keys`` table, and the enum and flags tables. A callback error raises
:class:`SchemaError` with the C program's message; :class:`Unsupported` means a construct whose
outcome is not reproduced (the command defers).
"""

from __future__ import annotations

import re
import struct

from nuwa.script.commands.glib import gvtext
from nuwa.script.commands._ghash import GHashTable
from nuwa.script.commands.glib.gvariant import compare, is_valid_type

RANGE_TYPES = {"y": ("0", "255"), "n": ("-32768", "32767"), "q": ("0", "65535"),
               "i": ("-2147483648", "2147483647"), "u": ("0", "4294967295"),
               "x": ("-9223372036854775808", "9223372036854775807"), "t": ("0", "18446744073709551615"),
               "d": ("-inf", "inf")}


# strinfo {{{
# The ``strinfo`` word arrays of enums, flags, choices and aliases (glib 2.74 ``gio/strinfo.c``).
#
# A strinfo is a sequence of little-endian 32-bit words: for each item its value word, then the
# string framed by a marker byte (0xff for a name, 0xfe for an alias) and a closing 0xff byte,
# padded to whole words (at least two). glib-compile-schemas stores it as the key's ``au``
# "choices"/"enum"/"flags" entry.
#
# The real ``strinfo_string_to_words`` leaves the bytes between the string's NUL and the closing
# 0xff uninitialised (stack memory), and those bytes end up in ``gschemas.compiled``: they are
# zeros in the real program's runs (a fresh stack), and zeros here.

MAX_WORDS = 17


def string_to_words(s: str, alias: bool) -> bytes | None:
    """``strinfo_string_to_words``: the framed string, or None when longer than 17 words."""
    raw = s.encode()
    n_words = max(2, (len(raw) + 6) >> 2)
    if n_words > MAX_WORDS:
        return None
    out = bytearray(4 * n_words)
    out[0] = 0xFE if alias else 0xFF
    out[1:2 + len(raw)] = raw + b"\0"
    out[-1] = 0xFF
    return bytes(out)


def _words(b: bytes | bytearray) -> list[int]:
    return list(struct.unpack(f"<{len(b) // 4}I", bytes(b)))


def _scan(strinfo: list[int], words: list[int]) -> int:
    """``strinfo_scan``: index of ``words`` in ``strinfo`` (skipping as the C does), or -1."""
    length, n = len(strinfo), len(words)
    if length < n:
        return -1
    i = 0
    while i <= length - n:
        j = 0
        while j < n and strinfo[i + j] == words[j]:
            j += 1
        if j == n:
            return i
        i += j or 1
    return -1


def find_string(strinfo: bytes | bytearray, s: str, alias: bool) -> int:
    """``strinfo_find_string``: the word index of the value word before ``s``'s frame, or -1."""
    if len(strinfo) < 4:
        return -1
    framed = string_to_words(s, alias)
    if framed is None:
        return -1
    return _scan(_words(strinfo)[1:], _words(framed))


def find_integer(strinfo: bytes | bytearray, value: int) -> int:
    """``strinfo_find_integer``: a value word framed by 0xff bytes, or -1."""
    words = _words(strinfo)
    for i, w in enumerate(words):
        if w == value & 0xFFFFFFFF:
            before_ok = i == 0 or strinfo[4 * i - 1] == 0xFF
            if before_ok and 4 * i + 4 < len(strinfo) and strinfo[4 * i + 4] == 0xFF:
                return i
    return -1


def is_string_valid(strinfo: bytes | bytearray, s: str) -> bool:
    """``strinfo_is_string_valid``: ``s`` is a name (not an alias) of the strinfo."""
    return find_string(strinfo, s, False) != -1


def contains(strinfo: bytes | bytearray, s: str) -> bool:
    """``strinfo_builder_contains``: ``s`` is a name or an alias."""
    return find_string(strinfo, s, False) != -1 or find_string(strinfo, s, True) != -1


def append_item(strinfo: bytearray, s: str, value: int) -> None:
    """``strinfo_builder_append_item``."""
    framed = string_to_words(s, False)
    if framed is None:  # the C appends 0 words of an uninitialised buffer: not reproduced
        raise ValueError("a strinfo string longer than 65 bytes")
    strinfo += struct.pack("<I", value & 0xFFFFFFFF) + framed


def append_alias(strinfo: bytearray, alias: str, target: str) -> bool:
    """``strinfo_builder_append_alias``: False when ``target`` is not a name."""
    index = find_string(strinfo, target, False)
    if index == -1:
        return False
    framed = string_to_words(alias, True)
    if framed is None:
        raise ValueError("a strinfo string longer than 65 bytes")
    strinfo += struct.pack("<I", index) + framed
    return True
# }}}


class SchemaError(Exception):
    """An error a callback sets (``g_set_error``): the message, without position."""


class Unsupported(Exception):
    """A construct whose real outcome is not reproduced: the command defers with this reason."""


def parse_value(t: str, text: str):
    """``g_variant_parse``: the value; ``gvtext.ParseError`` carries the real message, the
    text-format limits become :class:`Unsupported`."""
    try:
        return gvtext.parse(t, text)
    except gvtext.Unsupported as e:
        raise Unsupported(f"GVariant text {text.strip()!r} of type {t!r}: {e}") from None


class EnumState:
    """``EnumState``: the strinfo of an ``<enum>`` or ``<flags>``."""

    def __init__(self, is_flags: bool) -> None:
        self.strinfo = bytearray()
        self.is_flags = is_flags

    def add_value(self, nick: str, valuestr: str) -> None:
        """``enum_state_add_value``."""
        if len(nick.encode()) < 2:
            raise SchemaError("nick must be a minimum of 2 characters")
        m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", valuestr)
        if not m:
            raise Unsupported(f"enum value {valuestr!r}")  # g_ascii_strtoll's corner cases
        body = m.group(2)
        value = int(body, 16) if body[:2].lower() == "0x" else int(body, 8) if body[0] == "0" else int(body)
        value = -value if m.group(1) == "-" else value
        if (value > 0xFFFFFFFF or value < 0) if self.is_flags else not -2**31 <= value <= 2**31 - 1:
            raise SchemaError("Invalid numeric value")
        if contains(self.strinfo, nick):
            raise SchemaError(f"<value nick='{nick}'/> already specified")
        if find_integer(self.strinfo, value) != -1:
            raise SchemaError(f"value='{valuestr}' already specified")
        if self.is_flags and value == 0:
            return
        if self.is_flags and value & (value - 1):
            raise SchemaError("flags values must have at most 1 bit set")
        _append(self.strinfo, nick, value)


def _append(strinfo: bytearray, s: str, value: int) -> None:
    try:
        append_item(strinfo, s, value)
    except ValueError as e:
        raise Unsupported(str(e)) from None


class KeyState:
    """``KeyState``: a ``<key>``, ``<override>`` or ``<child>``."""

    def __init__(self, type_string: str | None = None, gettext_domain: str | None = None,
                 is_enum: bool = False, is_flags: bool = False, strinfo: bytes | None = None,
                 child_schema: str | None = None) -> None:
        self.child_schema = child_schema
        self.type = type_string
        self.have_gettext_domain = gettext_domain is not None
        self.is_enum, self.is_flags = is_enum, is_flags
        self.strinfo = bytearray(strinfo or b"")
        self.l10n = ""
        self.l10n_context: str | None = None
        self.unparsed_default: str | None = None
        self.default_value = None
        self.has_default = False
        self.desktop_overrides: dict | None = None
        self.minimum = self.maximum = None
        self.has_range = False
        self.has_choices = self.has_aliases = self.is_override = False
        self.summary_seen = self.description_seen = False

    def override(self, gettext_domain: str | None) -> KeyState:
        """``key_state_override``."""
        copy = KeyState(self.type, gettext_domain, self.is_enum, self.is_flags, bytes(self.strinfo))
        copy.is_override = True
        if self.has_range:
            copy.has_range, copy.minimum, copy.maximum = True, self.minimum, self.maximum
        return copy

    def is_valid_choices(self, t: str, value) -> bool:
        """``is_valid_choices``: every string inside maybes and arrays is a name."""
        if t[0] in "ma":
            items = [] if value is None else value
            return all(self.is_valid_choices(t[1:], v) for v in items)
        return is_string_valid(self.strinfo, value)

    def check_range(self) -> None:
        """``key_state_check_range``."""
        if not self.has_default:
            return
        tag = "override" if self.is_override else "default"
        if self.has_range:
            if compare(self.default_value, self.minimum) < 0 or compare(self.default_value, self.maximum) > 0:
                raise SchemaError(f"<{tag}> is not contained in the specified range")
        elif self.strinfo and not self.is_valid_choices(self.type, self.default_value):
            if self.is_enum:
                raise SchemaError(f"<{tag}> is not a valid member of the specified enumerated type")
            if self.is_flags:
                raise SchemaError(f"<{tag}> contains string not in the specified flags type")
            raise SchemaError(f"<{tag}> contains a string not in <choices>")

    def set_range(self, min_str: str | None, max_str: str | None) -> None:
        """``key_state_set_range``."""
        if self.has_range:
            raise SchemaError("<range/> already specified for this key")
        if self.type[0] not in RANGE_TYPES:
            raise SchemaError(f"<range> not allowed for keys of type \u201c{self.type}\u201d")
        lo, hi = RANGE_TYPES[self.type[0]]
        try:
            self.minimum = parse_value(self.type, lo if min_str is None else min_str)
            self.maximum = parse_value(self.type, hi if max_str is None else max_str)
        except gvtext.ParseError as e:
            raise SchemaError(str(e)) from None
        self.has_range = True
        if compare(self.minimum, self.maximum) > 0:
            raise SchemaError("<range> specified minimum is greater than maximum")
        self.check_range()

    def start_default(self, l10n: str | None, context: str | None) -> None:
        """``key_state_start_default``."""
        if l10n is not None:
            if l10n == "messages":
                self.l10n = "m"
            elif l10n == "time":
                self.l10n = "t"
            else:
                raise SchemaError(f"unsupported l10n category: {l10n}")
            if not self.have_gettext_domain:
                raise SchemaError("l10n requested, but no gettext domain given")
            self.l10n_context = context
        elif context is not None:
            raise SchemaError("translation context given for value without l10n enabled")

    def end_default(self, text: str) -> None:
        """``key_state_end_default``: parse the text against the key's type."""
        self.unparsed_default = text
        try:
            self.default_value = parse_value(self.type, text)
        except gvtext.ParseError as e:
            raise SchemaError(f"Failed to parse <default> value of type \u201c{self.type}\u201d: {e}") from None
        self.has_default = True
        self.check_range()

    def start_choices(self) -> None:
        """``key_state_start_choices``."""
        if self.is_enum:
            raise SchemaError("<choices> cannot be specified for keys tagged as having an enumerated type")
        if self.has_choices:
            raise SchemaError("<choices> already specified for this key")
        if self.type.lstrip("ma") != "s":
            raise SchemaError(f"<choices> not allowed for keys of type \u201c{self.type}\u201d")

    def add_choice(self, choice: str) -> None:
        """``key_state_add_choice``."""
        if contains(self.strinfo, choice):
            raise SchemaError(f"<choice value='{choice}'/> already given")
        _append(self.strinfo, choice, 0)
        self.has_choices = True

    def end_choices(self) -> None:
        """``key_state_end_choices``."""
        if not self.has_choices:
            raise SchemaError("<choices> must contain at least one <choice>")
        self.check_range()

    def start_aliases(self) -> None:
        """``key_state_start_aliases``."""
        if self.has_aliases:
            raise SchemaError("<aliases> already specified for this key")
        if not self.is_flags and not self.is_enum and not self.has_choices:
            raise SchemaError("<aliases> can only be specified for keys with enumerated or flags types "
                              "or after <choices>")

    def add_alias(self, alias: str, target: str) -> None:
        """``key_state_add_alias``."""
        if contains(self.strinfo, alias):
            if is_string_valid(self.strinfo, alias):
                if self.is_enum:
                    raise SchemaError(f"<alias value='{alias}'/> given when \u201c{alias}\u201d is already "
                                      "a member of the enumerated type")
                raise SchemaError(f"<alias value='{alias}'/> given when <choice value='{alias}'/> was already given")
            raise SchemaError(f"<alias value='{alias}'/> already specified")
        try:
            ok = append_alias(self.strinfo, alias, target)
        except ValueError as e:
            raise Unsupported(str(e)) from None
        if not ok:
            where = "enumerated type" if self.is_enum else "<choices>"
            raise SchemaError(f"alias target \u201c{target}\u201d is not in {where}")
        self.has_aliases = True

    def end_aliases(self) -> None:
        """``key_state_end_aliases``."""
        if not self.has_aliases:
            raise SchemaError("<aliases> must contain at least one <alias>")


def check_keyname(key: str, allow_any_name: bool) -> None:
    """``is_valid_keyname``."""
    if key == "":
        raise SchemaError("Empty names are not permitted")
    if allow_any_name:
        return
    if not ("a" <= key[0] <= "z"):
        raise SchemaError(f"Invalid name \u201c{key}\u201d: names must begin with a lowercase letter")
    for i in range(1, len(key)):
        c = key[i]
        if c != "-" and not ("a" <= c <= "z") and not ("0" <= c <= "9"):
            if not c.isascii():
                raise Unsupported("a key name with a non-ASCII character (C prints one byte of it)")
            raise SchemaError(f"Invalid name \u201c{key}\u201d: invalid character \u201c{c}\u201d; only lowercase "
                              "letters, numbers and hyphen (\u201c-\u201d) are permitted")
        if c == "-" and key[i + 1:i + 2] == "-":
            raise SchemaError(f"Invalid name \u201c{key}\u201d: two successive hyphens (\u201c--\u201d) are not permitted")
    if key[-1] == "-":
        raise SchemaError(f"Invalid name \u201c{key}\u201d: the last character may not be a hyphen (\u201c-\u201d)")
    if len(key) > 1024:
        raise SchemaError(f"Invalid name \u201c{key}\u201d: maximum length is 1024")


class SchemaState:
    """``SchemaState``: one ``<schema>``."""

    def __init__(self, path, gettext_domain, extends, extends_name, list_of) -> None:
        self.path, self.gettext_domain = path, gettext_domain
        self.extends, self.extends_name, self.list_of = extends, extends_name, list_of
        self.keys = GHashTable()


def is_valid_type_string(t: str) -> bool:
    """``g_variant_type_string_is_valid`` (definite and indefinite types: ``*``, ``?``, ``r``...)."""
    if is_valid_type(t):
        return True
    if any(c in t for c in "*?r"):
        raise Unsupported(f"an indefinite GVariant type {t!r}")
    return False
