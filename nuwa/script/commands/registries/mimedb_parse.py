"""update-mime-database (shared-mime-info 2.2): reading ``packages/*.xml`` into the database.

Follows src/update-mime-database.c's ``scan_source_dir``/``load_source_file``/``load_type``
step by step, with its quirks kept because they decide the output:

- the files are the names ending in ``.xml`` sorted bytewise, ``Override.xml`` last;
- a ``<glob>`` pattern is lower-cased (ASCII) unless ``case-sensitive="true"``; a bad
  weight is reported but the glob is still added, with weight -1;
- an error in a type's element stops that type's remaining elements (earlier ones stay);
- ``<comment>``, ``<acronym>``, ``<expanded-acronym>``, ``<glob>``, ``<glob-deleteall>``,
  ``<alias>``, ``<sub-class-of>``, ``<icon>``, ``<generic-icon>`` and elements of other
  namespaces are copied to the type's XML (a new ``<comment>`` replaces the one with the
  same ``xml:lang``); other freedesktop.org elements are consumed or dropped;
- numbers are C's ``strtol``/``strtoul`` (leading blanks, a sign, base prefixes); the magic
  byte strings are file(1)'s C escapes over the UTF-8 bytes.

Warnings are GLib ``g_warning``s, which the program's log handler prints on *stdout*;
``g_message``s only with ``-V``. Cases where the C program leaves its defined behaviour
(a ``g_return_if_fail`` firing, an ``errno`` left over from an earlier call deciding an
"out of range" error, a glob ``*`` whose suffix walk reads past its end) raise
:class:`Defer` with the reason.
"""

from __future__ import annotations

from nuwa.script.commands.registries import mimedb_xml as mx
from nuwa.script.commands._ghash import GHashTable as GStrHashTable
from nuwa.script.context import Defer

FREE_NS = "http://www.freedesktop.org/standards/shared-mime-info"
NOGLOBS = b"__NOGLOBS__"
NOMAGIC = b"__NOMAGIC__"
MEDIA_TYPES = ("all", "uri", "print", "text", "application", "image", "audio", "inode", "video",
               "message", "model", "multipart", "x-content", "x-epoc", "x-scheme-handler", "font")
LONG_MIN, LONG_MAX, ULONG_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


class MimeError(Exception):
    """A GError of MIME_ERROR: the message the warning quotes."""


class Type:
    """A MIME type and the XML document the program writes for it."""

    def __init__(self, name: str):
        self.media, _, self.subtype = name.partition("/")
        self.name = name.encode("utf-8", "surrogatepass")
        self.root = mx.Node("element", "mime-type")
        ns = mx.Ns(None, FREE_NS)
        self.root.ns_def.append(ns)
        self.root.ns = ns
        self.root.attrs.append(("type", None, name))
        c = mx.Node("comment", content="Created automatically by update-mime-database. DO NOT EDIT!")
        c.parent = self.root
        self.root.children.append(c)
        #: xml:lang (None for none) -> the output's freedesktop.org <comment>s, in order
        self.comments: dict[str | None, list[mx.Node]] = {}


class Glob:
    """A ``<glob>`` (or ``<glob-deleteall>``: ``noglob``, pattern ``__NOGLOBS__``)."""

    __slots__ = ("weight", "pattern", "type", "noglob", "case_sensitive")

    def __init__(self, pattern: bytes, type_: Type, weight: int, cs: bool, noglob: bool = False):
        self.pattern, self.type, self.weight, self.case_sensitive, self.noglob = pattern, type_, weight, cs, noglob


class Match:
    """A ``<match>``: offset range, word size, value bytes, optional mask, nested matches."""

    __slots__ = ("range_start", "range_length", "word_size", "data", "mask", "matches")

    def __init__(self) -> None:
        self.range_start, self.range_length, self.word_size = 0, 1, 1
        self.data, self.mask = b"", None
        self.matches: list[Match] = []


class Magic:
    """A ``<magic>`` or ``<treemagic>`` (or ``<magic-deleteall>``: ``nomagic``)."""

    __slots__ = ("priority", "type", "matches", "nomagic")

    def __init__(self, priority: int, type_: Type, matches: list, nomagic: bool = False):
        self.priority, self.type, self.matches, self.nomagic = priority, type_, matches, nomagic


class TreeMatch:
    """A ``<treematch>`` (type 0 any, 1 file, 2 directory, 3 link)."""

    __slots__ = ("path", "match_case", "executable", "non_empty", "type", "mimetype", "matches")

    def __init__(self) -> None:
        self.path, self.mimetype = "", None
        self.match_case = self.executable = self.non_empty = False
        self.type = 0
        self.matches: list[TreeMatch] = []


class Database:
    """The program's global tables, GLib hash tables where their order reaches the output."""

    def __init__(self) -> None:
        self.types = GStrHashTable()          # name -> Type
        self.globs = GStrHashTable()          # pattern -> [Glob]
        self.namespaces = GStrHashTable()     # b"uri local" -> Type
        self.subclasses = GStrHashTable()     # type name -> [parent names]
        self.aliases = GStrHashTable()        # alias -> Type
        self.icons = GStrHashTable()          # type name -> icon name
        self.generic_icons = GStrHashTable()
        self.magic: list[Magic] = []
        self.tree_magic: list[Magic] = []
        self.stdout: list[bytes] = []         # g_warning/g_message lines, in order
        self.verbose = False

    def warning(self, text: str) -> None:
        """``g_warning``: a line on stdout."""
        self.stdout.append(text.encode("utf-8", "surrogateescape") + b"\n")

    def message(self, text: str) -> None:
        """``g_message``: a line on stdout with ``-V`` only."""
        if self.verbose:
            self.warning(text)


def b(text: str) -> bytes:
    """A parsed string's UTF-8 bytes (what the C program holds)."""
    return text.encode("utf-8", "surrogatepass")


def get_type(db: Database, name: str) -> Type:
    """``get_type``: the existing Type or a new one; a name without exactly one '/' fails."""
    slash = name.find("/")
    if slash < 0 or "/" in name[slash + 1:]:
        raise MimeError(f"Invalid MIME-type '{name}'")
    t = db.types.get(b(name))
    if t is not None:
        return t
    t = Type(name)
    db.types.insert(b(name), t)
    if t.media not in MEDIA_TYPES:
        db.message(f"Unknown media type in type '{name}'")
    return t


def _int_attribute(node: mx.Node, name: str) -> int:
    v = node.prop(name)
    if v is None:
        return 50
    n, end = strtol(b(v), 10)
    n = ((n + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # strtol's long stored in an int
    if not v or end != len(b(v)):
        n = -1
    return n if 0 <= n <= 100 else -1


def _true(node: mx.Node, name: str) -> bool:
    return node.prop(name) == "true"


def strtol(s: bytes, base: int, unsigned: bool = False) -> tuple[int, int]:
    """C ``strtol``/``strtoul``: (value, index where parsing stopped); out of range defers
    (the program tests ``errno`` without clearing it first, so what it reports depends on
    calls the model cannot see)."""
    i, n = 0, len(s)
    while i < n and s[i] in b" \t\n\v\f\r":
        i += 1
    neg = False
    if i < n and s[i] in b"+-":
        neg = s[i] == 0x2D
        i += 1
    if base == 0:
        if s[i:i + 2].lower() == b"0x" and i + 2 < n and chr(s[i + 2]) in "0123456789abcdefABCDEF":
            base, i = 16, i + 2
        elif s[i:i + 1] == b"0":
            base = 8
        else:
            base = 10
    start, value = i, 0
    while i < n:
        c = chr(s[i]).lower()
        d = "0123456789abcdef".find(c)
        if d < 0 or d >= base:
            break
        value = value * base + d
        i += 1
    if i == start:
        return 0, 0
    if unsigned:
        if value > ULONG_MAX:
            raise Defer(f"update-mime-database: the number {s.decode(errors='replace')!r} is out of range "
                        "(the program's errno test is not reliable there)")
        return (-value) & ULONG_MAX if neg else value, i
    value = -value if neg else value
    if not LONG_MIN <= value <= LONG_MAX:
        raise Defer(f"update-mime-database: the number {s.decode(errors='replace')!r} is out of range "
                    "(the program's errno test is not reliable there)")
    return value, i


def load_packages(db: Database, fs, package_dir: str, resolve=lambda p: p) -> None:
    """``scan_source_dir`` over an existing, listable directory (the caller checked);
    ``package_dir`` is the name as the program builds it (messages quote it), ``resolve``
    makes a name absolute for ``fs``."""
    def raw(name: str) -> bytes:
        return name.encode("utf-8", "surrogateescape")  # file names are bytes to the program

    names = [n for n in fs.readdir(resolve(package_dir)) if len(raw(n)) >= 4 and n.endswith(".xml")]
    override = "Override.xml" in names
    files = sorted((n for n in names if n != "Override.xml"), key=raw)
    if override:
        files.append("Override.xml")
    for leaf in files:
        path = package_dir + "/" + leaf
        try:
            data = fs.read_bytes(resolve(path))
        except OSError as e:
            raise Defer(f"update-mime-database: cannot read {path} ({e.strerror}); libxml2's I/O messages are not modelled")
        load_source(db, data, path)


def load_source(db: Database, data: bytes, filename: str) -> None:
    """``load_source_file`` for one parsed document."""
    try:
        root = mx.parse(data, filename)
    except mx.Unsupported as e:
        raise Defer(f"update-mime-database: {e}")
    db.message(f"Parsing source file {filename}...")
    if root.ns is None or root.ns.href != FREE_NS:
        db.warning(f"Wrong namespace on document element in '{filename}' (should be {FREE_NS})")
        return
    if root.name != "mime-info":
        db.warning(f"Root element <{root.name}> is not <mime-info> (in '{filename}')")
        return
    for node in root.elements():
        t = None
        try:
            if node.ns is None or node.ns.href != FREE_NS or node.name != "mime-type":
                raise MimeError("Excepted <mime-type>, but got wrong name or namespace")
            name = node.prop("type")
            if name is None:
                raise MimeError("<mime-type> element has no 'type' attribute")
            t = get_type(db, name)
            load_type(db, t, node)
        except MimeError as e:
            media, sub = (t.media, t.subtype) if t else ("unknown", "unknown")
            db.warning(f"Error in type '{media}/{sub}' (in {filename}): {e}.")


def load_type(db: Database, t: Type, node: mx.Node) -> None:
    """``load_type``: each element child processed or copied; the first error ends it."""
    for field in node.elements():
        if field.ns is not None and field.ns.href == FREE_NS:
            if not _freedesktop_field(db, t, field):
                continue
        # xmlDocCopyNode, then the program's hack against xmlns= on every node
        copy = mx.copy_into_default_ns(field, FREE_NS)
        if field.ns is not None and field.ns.href == FREE_NS and field.name == "comment":
            # remove_old: the first <comment> of the output with the same xml:lang goes
            # the new element's xml:lang as libxml2 reads it (DTD default included), the
            # outputs' as their copies carry it (the output document has no DTD)
            same = t.comments.get(field.ns_prop("lang", mx.XML_NS))
            if same:
                t.root.children.remove(same.pop(0))
            t.comments.setdefault(copy.plain_ns_prop("lang", mx.XML_NS), []).append(copy)
        copy.parent = t.root
        t.root.children.append(copy)


def _freedesktop_field(db: Database, t: Type, field: mx.Node) -> bool:
    """``process_freedesktop_node``: True when the element is copied to the type's XML."""
    name = field.name
    if name == "glob":
        weight = _int_attribute(field, "weight")
        cs = _true(field, "case-sensitive")
        pattern = field.prop("pattern")
        if not pattern:
            if weight == -1:
                raise Defer("update-mime-database: a <glob> with a bad weight and no pattern "
                            "(GLib warns about a GError set twice)")
            raise MimeError("Missing 'pattern' attribute in <glob> element")
        pat = b(pattern) if cs else b(pattern).translate(_ASCII_LOWER)
        _add_glob(db, Glob(pat, t, weight, cs))
        if weight == -1:
            raise MimeError(f"Bad weight ({weight}) in <glob> element")
        return True
    if name == "glob-deleteall":
        _add_glob(db, Glob(NOGLOBS, t, 0, False, noglob=True))
        return True
    if name == "magic":
        db.magic.append(_magic(field, t))
        return False
    if name == "magic-deleteall":
        m = Match()
        m.data = NOMAGIC
        db.magic.append(Magic(0, t, [m], nomagic=True))
        return False
    if name == "treemagic":
        db.tree_magic.append(_tree_magic(field, t))
        return False
    if name in ("comment", "acronym", "expanded-acronym"):
        return True
    if name in ("alias", "sub-class-of"):
        other = field.prop("type")
        if not other or "/" not in other:
            raise MimeError(f"Incorrect or missing 'type' attribute in <{name}>")
        if name == "alias":
            db.aliases.insert(b(other), t)
        else:
            lst = db.subclasses.get(t.name)
            if lst is None:
                db.subclasses.insert(t.name, [b(other)])
            else:
                lst.append(b(other))
        return True
    if name == "root-XML":
        uri, local = field.prop("namespaceURI"), field.prop("localName")
        if uri is None:
            raise MimeError("Missing 'namespaceURI' attribute'")
        if local is None:
            raise MimeError("Missing 'localName' attribute'")
        if not uri and not local:
            raise MimeError("namespaceURI and localName attributes can't both be empty")
        if any(c in uri or c in local for c in " \n"):
            raise MimeError("namespaceURI and localName cannot contain spaces or newlines")
        db.namespaces.insert(b(uri) + b" " + b(local), t)
        return False
    if name in ("icon", "generic-icon"):
        icon = field.prop("name")
        if icon is None:
            return False
        (db.icons if name == "icon" else db.generic_icons).insert(t.name, b(icon))
        return True
    return False


_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def _add_glob(db: Database, g: Glob) -> None:
    lst = db.globs.get(g.pattern)
    if lst is None:
        db.globs.insert(g.pattern, [g])
    else:
        lst.append(g)


def _magic(node: mx.Node, t: Type) -> Magic:
    """``magic_new``."""
    prio = _int_attribute(node, "priority")
    if prio == -1:
        raise MimeError(f"Bad priority ({prio}) in <magic> element")
    try:
        matches = _build_matches(node)
    except MimeError as e:
        raise MimeError(f"Error in <match> element: {e}")
    if not matches:
        raise MimeError("Incomplete <magic> element")
    return Magic(prio, t, matches)


def _build_matches(parent: mx.Node) -> list[Match]:
    out = []
    for node in parent.elements():
        if node.ns is None or node.ns.href != FREE_NS:
            raise MimeError("Element found with non-freedesktop.org namespace")
        if node.name != "match":
            raise MimeError(f"Expected <match> element, but found <{node.name}> instead")
        m = Match()
        _match_offset(m, node)
        typ = node.prop("type")
        if typ is None:
            raise MimeError("Missing 'type' attribute in <match>")
        if typ == "host16":
            m.word_size = 2
        elif typ == "host32":
            m.word_size = 4
        elif typ not in ("big16", "big32", "little16", "little32", "string", "byte"):
            raise MimeError(f"Unknown magic type '{typ}'")
        _match_value(m, typ, node.prop("value"), node.prop("mask"))
        out.append(m)
        m.matches = _build_matches(node)
    return out


def _match_offset(m: Match, node: mx.Node) -> None:
    offset = node.prop("offset")
    if not offset:
        raise MimeError("Missing 'offset' attribute")
    s = b(offset)
    m.range_start, end = strtol(s, 10)
    if s[end:end + 1] == b":" and end + 1 < len(s) and m.range_start >= 0:
        last, end2 = strtol(s[end + 1:], 10)
        last = ((last + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # stored in an int
        if end + 1 + end2 == len(s) and last >= m.range_start:
            m.range_length = ((last - m.range_start + 1 + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        else:
            raise MimeError("Invalid offset")
    elif end != len(s):
        raise MimeError("Invalid offset")


def _match_value(m: Match, typ: str, value: str | None, mask: str | None) -> None:
    if not value:
        raise MimeError("No value specified")
    if "16" in typ or "32" in typ:
        nbytes = 2 if "16" in typ else 4
        _int_value(m, nbytes, b(value), None if mask is None else b(mask), typ[0] != "l")
    elif typ == "byte":
        _int_value(m, 1, b(value), None if mask is None else b(mask), False)
    else:
        m.data = getstr(b(value))
        if mask is not None:
            if not m.data:
                raise Defer("update-mime-database: a string mask on an empty value (g_return_val_if_fail)")
            m.mask = _string_mask(b(mask), len(m.data))


def _int_value(m: Match, nbytes: int, value: bytes, mask: bytes | None, big: bool) -> None:
    v, end = strtol(value, 0, unsigned=True)
    if end != len(value):
        raise MimeError("Value is not a number")
    if (nbytes == 1 and v & ~0xFF) or (nbytes == 2 and v & ~0xFFFF):
        raise MimeError(f"Number out-of-range ({v:x} should fit in {nbytes} bytes)")
    order = "big" if big else "little"
    m.data = (v & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, order)
    if mask is not None:
        mv, end = strtol(mask, 0, unsigned=True)
        if end != len(mask):
            raise MimeError("Mask is not a number")
        m.mask = (mv & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, order)


def _hex(c: int) -> int:
    return "0123456789abcdef".find(chr(c).lower()) if c < 0x80 and chr(c).isalnum() else -1


def getstr(s: bytes) -> bytes:
    """``getstr``: file(1)'s C escapes (\\n, \\t, octal up to 3 digits, \\x up to 2 hex)."""
    out = bytearray()
    i, n = 0, len(s)
    simple = {0x6E: 10, 0x72: 13, 0x62: 8, 0x74: 9, 0x66: 12, 0x76: 11}
    while i < n:
        c = s[i]
        i += 1
        if c != 0x5C:
            out.append(c)
            continue
        if i >= n:
            break
        c = s[i]
        i += 1
        if c in simple:
            out.append(simple[c])
        elif 0x30 <= c <= 0x37:
            val = c - 0x30
            for _ in range(2):
                if i < n and 0x30 <= s[i] <= 0x37:
                    val = (val << 3) | (s[i] - 0x30)
                    i += 1
                else:
                    break
            out.append(val & 0xFF)
        elif c == 0x78:
            d = _hex(s[i]) if i < n else -1
            if d < 0:
                out.append(0x78)
            else:
                i += 1
                d2 = _hex(s[i]) if i < n else -1
                if d2 >= 0:
                    d, i = (d << 4) + d2, i + 1
                out.append(d)
        else:
            out.append(c)
    return bytes(out)


def _string_mask(mask: bytes, length: int) -> bytes:
    if mask[:2] != b"0x":
        raise MimeError("String masks must be in base 16 (starting with 0x)")
    digits = mask[2:]
    out = bytearray(length)
    for i, c in enumerate(digits):
        d = _hex(c)
        if d == -1:
            raise MimeError(f"'{chr(c) if c < 0x80 else bytes([c]).decode('latin-1')}' is not a valid hex digit")
        if i >= length * 2:
            raise MimeError("Mask is longer than value")
        out[i >> 1] |= d if i & 1 else d << 4
    return bytes(out)


def _tree_magic(node: mx.Node, t: Type) -> Magic:
    prio = _int_attribute(node, "priority")
    if prio == -1:
        raise MimeError(f"Bad priority ({prio}) in <treemagic> element")
    try:
        return Magic(prio, t, _build_tree_matches(node))
    except MimeError as e:
        raise MimeError(f"Error in <treematch> element: {e}")


def _build_tree_matches(parent: mx.Node) -> list[TreeMatch]:
    out = []
    for node in parent.elements():
        if node.ns is None or node.ns.href != FREE_NS:
            raise MimeError("Element found with non-freedesktop.org namespace")
        if node.name != "treematch":
            raise MimeError(f"Expected <treematch> element, but found <{node.name}> instead")
        m = TreeMatch()
        path = node.prop("path")
        if path is None:
            raise MimeError("Missing 'path' attribute in <treematch>")
        m.path = path
        typ = node.prop("type")
        if typ is not None:
            if typ not in ("file", "directory", "link"):
                raise MimeError("Invalid 'type' attribute in <treematch>")
            m.type = ("file", "directory", "link").index(typ) + 1
        m.executable = _true(node, "executable")
        m.match_case = _true(node, "match-case")
        m.non_empty = _true(node, "non-empty")
        m.mimetype = node.prop("mimetype")
        out.append(m)
        m.matches = _build_tree_matches(node)
    return out
