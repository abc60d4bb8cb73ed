"""The slice of libxml2 2.9.14 that update-mime-database uses: a parsed tree with libxml2's
namespace structure, ``xmlDocCopyNode``'s namespace handling, and ``xmlSaveFormatFileEnc(...,
"utf-8", 1)``'s bytes.

Parsing is Python's expat (host code reading bytes; nothing of the image runs) without its
namespace processing, so that prefixes and ``xmlns`` declarations stay where the document
put them, as libxml2's SAX2 tree keeps them (``nsDef`` per element, ``ns`` resolved to the
nearest declaration, attributes in document order, adjacent text merged, CDATA sections,
comments and processing instructions kept). The internal subset's attribute defaults are
not added to the tree (libxml2 adds only ``xmlns`` ones) but attribute look-ups return them,
as ``xmlGetNsProp`` does. What the two parsers could read differently, or what libxml2
reports on stderr while reading, is refused with :class:`Unsupported` before anything is
written: entity declarations and undeclared entities, an encoding other than UTF-8/ASCII/
Latin-1, namespace errors and warnings (undeclared or reserved prefixes, non-QNames, a
relative or empty namespace name, an attribute twice in one namespace), an attribute
declared twice, and every well-formedness error (libxml2 prints its own diagnostics,
which the model does not reproduce).
"""

from __future__ import annotations

import re
import xml.parsers.expat

XML_NS = "http://www.w3.org/XML/1998/namespace"


class Unsupported(Exception):
    """A document the model will not read as libxml2 would (the reason is the message)."""


class Ns:
    """An ``xmlNs``: a prefix (None for the default namespace) bound to an href."""

    __slots__ = ("prefix", "href")

    def __init__(self, prefix: str | None, href: str):
        self.prefix, self.href = prefix, href


_XML_NSOBJ = Ns("xml", XML_NS)


class Node:
    """An ``xmlNode``: kind is "element", "text", "cdata", "comment" or "pi"."""

    __slots__ = ("kind", "name", "ns", "ns_def", "attrs", "children", "parent", "content", "dtd")

    def __init__(self, kind: str, name: str = "", content: str = ""):
        self.kind, self.name, self.content = kind, name, content
        self.ns: Ns | None = None
        self.parent: Node | None = None
        #: the source document's DTD defaults, (element QName, attribute QName) -> value
        self.dtd: dict[tuple[str, str], str] | None = None
        if kind != "element":
            # leaves share empty tuples: a package file has tens of thousands of text nodes
            self.ns_def = self.attrs = self.children = ()  # type: ignore[assignment]
            return
        self.ns_def: list[Ns] = []
        #: (local name, Ns or None, value) in document order
        self.attrs: list[tuple[str, Ns | None, str]] = []
        self.children: list[Node] = []

    def prop(self, name: str) -> str | None:
        """``xmlGetNsProp(node, name, NULL)``: the value of an attribute in no namespace, else
        (libxml2 looks the DTD up too) the internal subset's default for it."""
        for local, ns, value in self.attrs:
            if local == name and ns is None:
                return value
        return self._dtd_default(name)

    def ns_prop(self, name: str, href: str) -> str | None:
        """``xmlGetNsProp(node, name, href)`` (only the ``xml:`` namespace has DTD defaults:
        it is the one namespace bound to a fixed prefix)."""
        for local, ns, value in self.attrs:
            if local == name and ns is not None and ns.href == href:
                return value
        return self._dtd_default("xml:" + name) if href == XML_NS else None

    def plain_ns_prop(self, name: str, href: str) -> str | None:
        """The attribute itself, without DTD defaults (a copy in the output document)."""
        for local, ns, value in self.attrs:
            if local == name and ns is not None and ns.href == href:
                return value
        return None

    def _dtd_default(self, attname: str) -> str | None:
        if not self.dtd:
            return None
        qname = f"{self.ns.prefix}:{self.name}" if self.ns is not None and self.ns.prefix else self.name
        return self.dtd.get((qname, attname))

    def elements(self) -> list["Node"]:
        """The element children (``type == XML_ELEMENT_NODE``) in order."""
        return [c for c in self.children if c.kind == "element"]


def search_ns(node: Node | None, prefix: str | None) -> Ns | None:
    """``xmlSearchNs``: the declaration of ``prefix`` in scope at ``node`` ("xml" is built in)."""
    if prefix == "xml":
        return _XML_NSOBJ
    while node is not None:
        if node.kind == "element":
            for ns in node.ns_def:
                if ns.prefix == prefix and ns.href is not None:
                    return ns
        node = node.parent
    return None


_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ENTITY_DECL = re.compile(rb"<!ENTITY")


def parse(data: bytes, filename: str) -> Node:
    """The document element of ``data`` as libxml2's ``xmlParseFile`` builds it."""
    m = _ENCODING.match(data)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"latin1"):
        raise Unsupported(f"{filename}: encoding {m.group(1).decode()!r} (libxml2's converters are not modelled)")
    if data.startswith((b"\xfe\xff", b"\xff\xfe")) or data[:2] in (b"\x00<", b"<\x00"):
        raise Unsupported(f"{filename}: UTF-16 text")
    if _ENTITY_DECL.search(data):
        raise Unsupported(f"{filename}: an entity declaration (libxml2 keeps entity references as nodes)")
    p = xml.parsers.expat.ParserCreate()
    p.ordered_attributes = True
    # libxml2 (without XML_PARSE_DTDATTR) adds no defaulted attribute from the DTD, except
    # the namespace declarations (``xmlns`` defaults), which xmlParseStartTag2 always applies
    p.specified_attributes = True
    ns_defaults: dict[str, list[tuple[str, str]]] = {}
    dtd: dict[tuple[str, str], str] = {}

    declared: set[tuple[str, str]] = set()

    def attlist(elname: str, attname: str, _type, default, _required) -> None:
        if (elname, attname) in declared:
            raise Unsupported(f"{filename}: attribute {attname} of element {elname} declared twice "
                              "(libxml2 prints a validity warning)")
        declared.add((elname, attname))
        if default is None:
            return  # #IMPLIED/#REQUIRED
        dtd[elname, attname] = default
        if attname == "xmlns" or attname.startswith("xmlns:"):
            ns_defaults.setdefault(elname, []).append((attname, default))

    p.AttlistDeclHandler = attlist

    def skipped(entity: str, _is_param: bool) -> None:
        raise Unsupported(f"{filename}: the undeclared entity {entity!r} (libxml2 reports it)")

    p.SkippedEntityHandler = skipped
    stack: list[Node] = []
    top: list[Node] = []
    cdata: list = [False, None]  # inside a CDATA section; that section's node

    def add(node: Node) -> None:
        if stack:
            node.parent = stack[-1]
            stack[-1].children.append(node)

    def start(name: str, attrs: list[str]) -> None:
        el = Node("element")
        el.dtd = dtd
        parent = stack[-1] if stack else None
        plain = []
        for k in range(0, len(attrs), 2):
            qn = attrs[k]
            if qn == "xmlns":
                el.ns_def.append(Ns(None, _checked_uri(attrs[k + 1], filename)))
            elif qn.startswith("xmlns:"):
                if qn[6:] in ("xml", "xmlns") or not attrs[k + 1]:
                    raise Unsupported(f"{filename}: the declaration {qn}={attrs[k + 1]!r} "
                                      "(libxml2 reports a namespace error)")
                el.ns_def.append(Ns(qn[6:], _checked_uri(attrs[k + 1], filename)))
            else:
                plain.append((qn, attrs[k + 1]))
        defaults = ns_defaults.get(name)
        if defaults:
            given = set(attrs[0::2])
            for qn, value in defaults:
                prefix = qn[6:] or None
                if qn not in given:
                    scope = search_ns(parent, prefix)
                    if scope is None or scope.href != value:
                        el.ns_def.append(Ns(prefix, value))
        if parent is not None:
            el.parent = parent
            parent.children.append(el)
        else:
            top.append(el)
        if ":" in name:
            prefix, _, el.name = name.rpartition(":")
            el.ns = search_ns(el, prefix)
            if el.ns is None:
                raise Unsupported(f"{filename}: namespace prefix {prefix!r} is not defined")
        else:
            el.name = name
            el.ns = search_ns(el, None)
            if el.ns is not None and el.ns.href == "":
                el.ns = None  # xmlns="" undeclares the default namespace
        if name.count(":") > 1 or name.startswith(":") or name.endswith(":"):
            raise Unsupported(f"{filename}: the name {name!r} is no QName (libxml2 reports a namespace error)")
        seen = set()
        for qn, value in plain:
            if ":" not in qn:
                el.attrs.append((qn, None, value))
                seen.add((None, qn))
                continue
            if qn.count(":") > 1 or qn.startswith(":") or qn.endswith(":"):
                raise Unsupported(f"{filename}: the name {qn!r} is no QName (libxml2 reports a namespace error)")
            aprefix, _, alocal = qn.rpartition(":")
            ans = search_ns(el, aprefix)
            if ans is None:
                raise Unsupported(f"{filename}: namespace prefix {aprefix!r} is not defined")
            if (ans.href, alocal) in seen:
                raise Unsupported(f"{filename}: the attribute {alocal!r} twice in {ans.href!r} (libxml2 reports it)")
            seen.add((ans.href, alocal))
            el.attrs.append((alocal, ans, value))
        stack.append(el)

    def end(name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if not stack:
            return
        if cdata[0]:
            # each CDATA section is one node of its own (xmlSAX2CDataBlock never merges)
            if cdata[1] is None:
                cdata[1] = Node("cdata")
                add(cdata[1])
            cdata[1].content += text
            return
        kids = stack[-1].children
        if kids and kids[-1].kind == "text":
            kids[-1].content += text  # xmlSAX2Characters appends to a last text child
            return
        add(Node("text", content=text))

    def start_cdata() -> None:
        cdata[0], cdata[1] = True, None

    def end_cdata() -> None:
        if cdata[1] is None and stack:  # an empty section still makes a node
            add(Node("cdata"))
        cdata[0], cdata[1] = False, None

    def comment(text: str) -> None:
        if stack:
            add(Node("comment", content=text))

    def pi(target: str, text: str) -> None:
        if stack:
            add(Node("pi", name=target, content=text))

    p.StartElementHandler, p.EndElementHandler = start, end
    p.CharacterDataHandler, p.CommentHandler, p.ProcessingInstructionHandler = chars, comment, pi
    p.StartCdataSectionHandler, p.EndCdataSectionHandler = start_cdata, end_cdata
    p.buffer_text = True
    try:
        p.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise Unsupported(f"{filename} is not well-formed XML ({e}); libxml2's diagnostics are not modelled")
    return top[0]


_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\"<>\\^`{|}]*")


def _checked_uri(href: str, filename: str) -> str:
    """A namespace name libxml2 takes silently: empty or an absolute URI (it warns on stderr
    that a relative one "is not absolute", and errs on one it cannot parse)."""
    if href and not _ABSOLUTE_URI.fullmatch(href):
        raise Unsupported(f"{filename}: the namespace name {href!r} (libxml2 warns it is not an absolute URI)")
    return href


def copy_into_default_ns(node: Node, href: str) -> Node:
    """A top-level copy as the update program leaves it after its hack (``nsDef`` dropped when
    the copy's namespace is the default one of ``href``). An element of that default
    namespace that declares nothing, whose attributes are plain or ``xml:`` ones and whose
    children are all text, copies to the same structure without a walk: its attributes and
    text children are shared (neither is ever changed afterwards)."""
    if (node.ns is not None and node.ns.prefix is None and node.ns.href == href and not node.ns_def
            and all(a[1] is None or a[1] is _XML_NSOBJ for a in node.attrs)
            and all(c.kind == "text" for c in node.children)):
        ret = Node("element", node.name)
        ret.ns = node.ns
        ret.attrs = node.attrs
        ret.children = node.children
        return ret
    ret = copy_node(node)
    if ret.ns is not None and ret.ns.prefix is None and ret.ns.href == href:
        ret.ns_def = []
    return ret


def copy_node(node: Node, parent: Node | None = None) -> Node:
    """``xmlStaticCopyNode(node, doc, parent, 1)``: a deep copy whose namespaces are re-found
    in the copy's scope; one found only in the source's scope is declared anew on the copy's
    topmost ancestor (``xmlNewNs`` appends to its ``nsDef``)."""
    ret = Node(node.kind, node.name, node.content)
    ret.parent = parent
    if node.kind != "element":
        return ret
    ret.ns_def = [Ns(n.prefix, n.href) for n in node.ns_def]
    if node.ns is not None:
        ns = search_ns(ret, node.ns.prefix)
        if ns is None:
            src = search_ns(node, node.ns.prefix)
            root = ret
            while root.parent is not None:
                root = root.parent
            ns = _new_ns(root, src.href, src.prefix)
        ret.ns = ns
    for local, ans, value in node.attrs:
        ret.attrs.append((local, _copy_attr_ns(ret, node, ans), value))
    for child in node.children:
        ret.children.append(copy_node(child, ret))
    return ret


def _new_ns(node: Node, href: str, prefix: str | None) -> Ns:
    ns = Ns(prefix, href)
    node.ns_def.append(ns)
    return ns


def _copy_attr_ns(target: Node, src: Node, ans: Ns | None) -> Ns | None:
    """``xmlCopyPropInternal``'s namespace choice for one attribute."""
    if ans is None:
        return None
    ns = search_ns(target, ans.prefix)
    if ns is None:
        found = search_ns(src, ans.prefix)
        root = target
        while root.parent is not None:
            root = root.parent
        return _new_ns(root, found.href, found.prefix)
    if ns.href == ans.href:
        return ns
    raise Unsupported("an attribute prefix bound to another namespace in the copy (xmlNewReconciledNs)")


def _esc_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _esc_attr(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def _qname(name: str, ns: Ns | None) -> str:
    return f"{ns.prefix}:{name}" if ns is not None and ns.prefix else name


def _dump(node: Node, out: list[str], level: int, fmt: bool) -> None:
    """``xmlNodeDumpOutputInternal`` for one node (format on: two spaces per level)."""
    if node.kind == "text":
        out.append(_esc_text(node.content))
        return
    if node.kind == "comment":
        out.append(f"<!--{node.content}-->")
        return
    if node.kind == "cdata":
        out.append("<![CDATA[" + node.content.replace("]]>", "]]]]><![CDATA[>") + "]]>")
        return
    if node.kind == "pi":
        out.append(f"<?{node.name} {node.content}?>" if node.content else f"<?{node.name}?>")
        return
    name = _qname(node.name, node.ns)
    out.append("<" + name)
    for ns in node.ns_def:
        out.append(f' xmlns:{ns.prefix}="{_esc_attr(ns.href)}"' if ns.prefix else f' xmlns="{_esc_attr(ns.href)}"')
    for local, ans, value in node.attrs:
        out.append(f' {_qname(local, ans)}="{_esc_attr(value)}"')
    if not node.children:
        out.append("/>")
        return
    out.append(">")
    child_fmt = fmt and not any(c.kind in ("text", "cdata") for c in node.children)
    if child_fmt:
        out.append("\n")
    for c in node.children:
        if child_fmt:
            out.append("  " * min(level + 1, 30))
        _dump(c, out, level + 1, child_fmt)
        if child_fmt:
            out.append("\n")
    if child_fmt:
        out.append("  " * min(level, 30))
    out.append(f"</{name}>")


def save_format_utf8(root: Node) -> bytes:
    """``xmlSaveFormatFileEnc(file, doc, "utf-8", 1)`` of a document whose element is ``root``."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _dump(root, out, 0, True)
    out.append("\n")
    return "".join(out).encode("utf-8", "surrogatepass")
