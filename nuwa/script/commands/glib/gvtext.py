"""The GVariant text format, parsed against a known type (glib 2.74 ``gvariant-parser.c``).

``g_variant_parse (type, text, ...)`` is what glib-compile-schemas calls on every
``<default>``, ``<range min max>`` and override value. This parser follows the same two
steps: the token stream of ``token_stream_prepare`` and the grammar of ``parse`` build a small
syntax tree, then the tree is given the expected type (``ast_get_value``: ``maybe_wrapper``
wraps a bare value in Just, numbers follow ``number_get_value``'s bases and overflow rules).

What is not reproduced raises :class:`Unsupported` (the caller defers): GVariant's own error
messages with their source ranges, byte strings (``b'...'``), format strings, and type
inference inside ``<...>`` beyond strings, booleans, numbers and explicitly typed values.
"""

from __future__ import annotations

import math
import re

from nuwa.script.commands.glib.gvariant import Variant, is_valid_type, members, type_end

KEYWORD_TYPES = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i",
                 "uint32": "u", "int64": "x", "uint64": "t", "double": "d", "string": "s",
                 "objectpath": "o", "signature": "g", "handle": "h"}

INT_RANGE = {"y": (0, 0xFF), "n": (-0x8000, 0x7FFF), "q": (0, 0xFFFF), "i": (-0x80000000, 0x7FFFFFFF),
             "u": (0, 0xFFFFFFFF), "h": (-0x80000000, 0x7FFFFFFF), "x": (-2**63, 2**63 - 1),
             "t": (0, 2**64 - 1)}

_BASIC_KEYS = set("bynqiuxthdsog")  # what a dictionary key may be
_OBJECT_PATH = re.compile(r"/\Z|(/[A-Za-z0-9_]+)+\Z")


class Unsupported(Exception):
    """The text is outside what this parser reproduces (some invalid text included): defer."""


class ParseError(Exception):
    """An error ``g_variant_parse`` reports, with its message ("START-END:text")."""


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """``token_stream_prepare`` applied until the end (or a NUL) of the text: (token, start, end)."""
    out, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in " \t\n\r\f\v":
            i += 1
        if i >= n or text[i] == "\0":
            return out
        c = text[i]
        if c in "-+.0123456789":
            j = i
            while j < n and (text[j].isascii() and text[j].isalnum() or text[j] in "-+."):
                j += 1
        elif c == "b" and i + 1 < n and text[i + 1] in "'\"":
            raise Unsupported("byte string constants")
        elif "a" <= c <= "z":
            j = i
            while j < n and text[j].isascii() and text[j].isalnum():
                j += 1
        elif c in "'\"":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\0":
                if text[j] == "\\":
                    j += 1
                    if j >= n or text[j] == "\0":
                        break
                j += 1
            if j < n and text[j] != "\0":
                j += 1
        elif c == "@":
            j, depth = i + 1, 0
            while j < n and text[j] not in "\0,:>]" and text[j] not in " \t\n\r\f\v":
                if text[j] in "({":
                    depth += 1
                elif text[j] in ")}":
                    if not depth:
                        break
                    depth -= 1
                j += 1
        elif c == "%":
            raise Unsupported("format strings")
        else:
            j = i + 1
        out.append((text[i:j], i, j))
        i = j


class _Parser:
    """``parse``: the syntax tree, as tuples (kind, ..., (start, end)) whose last item is the
    node's source range (``token_stream_start_ref``/``end_ref``: from its first token's start
    to its last token's end)."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0
        self.last_end = 0

    def peek(self) -> str | None:
        """The next token, not consumed (None at the end)."""
        return self.toks[self.pos][0] if self.pos < len(self.toks) else None

    def take(self) -> str:
        """Consume the next token."""
        if self.pos >= len(self.toks):
            raise Unsupported("unexpected end of input")
        tok, _, self.last_end = self.toks[self.pos]
        self.pos += 1
        return tok

    def want(self, tok: str) -> None:
        """``token_stream_require``: consume ``tok`` or give up."""
        if self.take() != tok:
            raise Unsupported(f"expected {tok!r}")

    def value(self, depth: int = 0):
        """``parse``: one value and its source range."""
        if self.pos >= len(self.toks):
            raise Unsupported("expected value")
        start = self.toks[self.pos][1]
        node = self._value(depth)
        return node + ((start, self.last_end),)

    def _value(self, depth: int):
        if depth > 128:
            raise Unsupported("nesting too deep")
        tok = self.take()
        if tok == "[":
            items = []
            while self.peek() != "]":
                if items:
                    self.want(",")
                items.append(self.value(depth + 1))
            self.take()
            return ("array", items)
        if tok == "(":
            items = []
            while self.peek() != ")":
                items.append(self.value(depth + 1))
                if len(items) == 1:
                    self.want(",")
                elif self.peek() != ")":
                    self.want(",")
            self.take()
            return ("tuple", items)
        if tok == "<":
            inner = self.value(depth + 1)
            self.want(">")
            return ("variant", inner)
        if tok == "{":
            if self.peek() == "}":
                self.take()
                return ("dict", [])
            key = self.value(depth + 1)
            if self.peek() == ":":
                self.take()
                pairs = [(key, self.value(depth + 1))]
                while self.peek() != "}":
                    self.want(",")
                    k = self.value(depth + 1)
                    self.want(":")
                    pairs.append((k, self.value(depth + 1)))
                self.take()
                return ("dict", pairs)
            self.want(",")
            val = self.value(depth + 1)
            self.want("}")
            return ("entry", key, val)
        if tok in ("true", "false"):
            return ("bool", tok == "true")
        if tok[0] in "-+.0123456789" or tok in ("inf", "nan"):
            return ("num", tok)
        if tok == "nothing":
            return ("nothing",)
        if tok == "just":
            return ("just", self.value(depth + 1))
        if tok[0] == "@":
            t = tok[1:]
            if not is_valid_type(t):
                raise Unsupported(f"type annotation {tok!r}")
            return ("typed", t, self.value(depth + 1))
        if tok in KEYWORD_TYPES:
            return ("typed", KEYWORD_TYPES[tok], self.value(depth + 1))
        if tok[0] in "'\"":
            return ("str", _unescape(tok))
        raise Unsupported(f"token {tok!r}")


def _unescape(tok: str) -> str:
    """``string_parse``: the escapes of the text format (C escapes, ``\\uXXXX``, ``\\UXXXXXXXX``)."""
    quote, out, i = tok[0], [], 1
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\n": ""}
    while True:
        if i >= len(tok):
            raise Unsupported("unterminated string constant")
        c = tok[i]
        if c == quote:
            return "".join(out)
        if c == "\\":
            i += 1
            if i >= len(tok):
                raise Unsupported("unterminated string constant")
            c = tok[i]
            if c in "uU":
                width = 4 if c == "u" else 8
                digits = tok[i + 1:i + 1 + width]
                if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits) \
                        or int(digits, 16) == 0 or int(digits, 16) > 0x10FFFF:
                    raise Unsupported("unicode escape")
                out.append(chr(int(digits, 16)))
                i += 1 + width
                continue
            if c in simple:
                out.append(simple[c])
                i += 1
                continue
        out.append(c)
        i += 1


def _strtoull(s: str) -> tuple[int, int, bool]:
    """C ``strtoull (s, &end, 0)``: (value, characters consumed, ERANGE)."""
    m = re.match(r"([+-]?)(0[xX](?=[0-9a-fA-F])[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", s)
    if not m:
        return 0, 0, False
    body = m.group(2)
    v = int(body, 16) if body[:2].lower() == "0x" else int(body, 8) if body[0] == "0" else int(body)
    if v >= 2**64:
        return 2**64 - 1, m.end(), True
    if m.group(1) == "-":
        v = (-v) % 2**64
    return v, m.end(), False


_FLOAT = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|infinity|inf|nan)", re.I)


def _infer(node) -> str:
    """The type ``ast_resolve`` gives a value inside ``<...>`` (the simple cases only)."""
    kind = node[0]
    if kind == "str":
        return "s"
    if kind == "bool":
        return "b"
    if kind == "typed":
        return node[1]
    if kind == "num":  # number_get_pattern, case-sensitive as it is
        tok = node[1]
        if "." in tok or (not tok.startswith("0x") and "e" in tok) or "inf" in tok or "nan" in tok:
            return "d"
        return "i"
    if kind == "variant":
        return "v"
    if kind == "just":
        return "m" + _infer(node[1])
    if kind == "entry" and _infer(node[1]) in _BASIC_KEYS:
        return "{" + _infer(node[1]) + _infer(node[2]) + "}"
    if kind == "dict" and node[1]:
        keys = {_infer(k) for k, _ in node[1]}
        vals = {_infer(v) for _, v in node[1]}
        if len(keys) == 1 and len(vals) == 1 and next(iter(keys)) in _BASIC_KEYS:
            return "a{" + keys.pop() + vals.pop() + "}"
    if kind == "tuple":
        return "(" + "".join(_infer(n) for n in node[1]) + ")"
    if kind == "array" and node[1]:
        types = {_infer(n) for n in node[1]}
        if len(types) == 1:  # a mixed array ([1, 2.5]) is unified by GVariant: not reproduced
            return "a" + types.pop()
    raise Unsupported("type inference of a variant's contents")


class _Values:
    """``ast_get_value`` over the tree, with ``gvariant-parser.c``'s errors and source ranges."""

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, ref: tuple[int, int], message: str) -> ParseError:
        """``parser_set_error``: "START-END:message" (one number when the range is empty),
        offsets in bytes of the text."""
        start, end = (len(self.text[:i].encode()) for i in ref)
        where = f"{start}" if start == end else f"{start}-{end}"
        return ParseError(f"{where}:{message}")

    def type_error(self, node, t: str) -> ParseError:
        """``ast_type_error``."""
        return self.error(node[-1], f"can not parse as value of type '{t}'")

    def number(self, node, t: str):
        """``number_get_value``: parse the token first, then check the type."""
        tok, ref = node[1], node[-1]
        if t == "d":
            m = _FLOAT.match(tok)
            if not m or m.end() != len(tok):
                raise Unsupported(f"number {tok!r} for a double")
            v = float(tok)
            if math.isinf(v) and "inf" not in tok.lower():
                raise self.error(ref, "number too big for any type")
            if v != 0 and abs(v) < 2.2250738585072014e-308:
                raise Unsupported("a denormal double (strtod's ERANGE)")
            return v
        negative = tok.startswith("-")
        body = tok[1:] if negative else tok
        value, used, erange = _strtoull(body)
        if erange:
            raise self.error(ref, "integer too big for any type")
        if value == 0:
            negative = False
        if used != len(body):
            at = ref[0] + (len(tok) - len(body)) + used
            raise self.error((at, at + 1), "invalid character in number")
        if t not in INT_RANGE:
            raise self.type_error(node, t)
        lo, hi = INT_RANGE[t]
        v = -value if negative else value
        if not lo <= v <= hi:
            raise self.error(ref, f"number out of range for type '{t}'")
        return v

    def value(self, node, t: str):
        """``ast_get_value``: typedecls and maybes directly, the rest through ``maybe_wrapper``."""
        kind = node[0]
        if kind == "typed":  # typedecl_get_value passes the asked type on, unchecked
            return self.value(node[2], t)
        if kind in ("nothing", "just"):  # maybe_get_value
            if t[0] != "m":
                raise self.type_error(node, t)
            return None if kind == "nothing" else (self.value(node[1], t[1:]),)
        depth = len(t) - len(t.lstrip("m"))  # maybe_wrapper: Just, as many times as needed
        v = self.base(node, t[depth:])
        for _ in range(depth):
            v = (v,)
        return v

    def base(self, node, t: str):
        """``get_base_value`` of each node class, for a type that is not a maybe."""
        kind = node[0]
        if kind == "num":
            return self.number(node, t)
        if kind == "bool":
            if t != "b":
                raise self.type_error(node, t)
            return node[1]
        if kind == "str":
            if t not in ("s", "o", "g"):
                raise self.type_error(node, t)
            if t == "o" and not _OBJECT_PATH.match(node[1]):
                raise Unsupported("an invalid object path")
            if t == "g" and not _is_signature(node[1]):
                raise Unsupported("an invalid signature")
            return node[1]
        if kind == "array":
            if t[0] != "a":
                raise self.type_error(node, t)
            return [self.value(n, t[1:]) for n in node[1]]
        if kind == "tuple":
            if t[0] != "(":
                raise self.type_error(node, t)
            mts = members(t)
            out = []
            for i, n in enumerate(node[1]):
                if i >= len(mts):
                    raise self.type_error(node, t)
                out.append(self.value(n, mts[i]))
            if len(mts) != len(node[1]):
                raise self.type_error(node, t)
            return tuple(out)
        if kind == "entry":
            if t[0] != "{":
                raise self.type_error(node, t)
            kt, vt = members(t)
            return (self.value(node[1], kt), self.value(node[2], vt))
        if kind == "dict":
            if not t.startswith("a{"):
                raise self.type_error(node, t)
            kt, vt = members(t[1:])
            return [(self.value(k, kt), self.value(v, vt)) for k, v in node[1]]
        if kind == "variant":
            if t != "v":
                raise self.type_error(node, t)
            it = _infer(node[1])
            return Variant(it, self.value(node[1], it))
        raise Unsupported(f"a {kind} value")


def _is_signature(s: str) -> bool:
    """``g_variant_is_signature``: definite type strings in sequence."""
    i = 0
    try:
        while i < len(s):
            i = type_end(s, i)
    except (ValueError, RecursionError):
        return False
    return True


def parse(t: str, text: str):
    """``g_variant_parse (t, text)``: the value; :class:`ParseError` with the real message,
    or :class:`Unsupported`."""
    p = _Parser(text)
    node = p.value()
    value = _Values(text).value(node, t)
    if p.peek() is not None:  # checked after the value, as g_variant_parse does
        at = p.toks[p.pos][1]
        raise _Values(text).error((at, at), "expected end of input")
    return value
