"""The text rules of ``install-info`` (texinfo 6.8, ``install-info/install-info.c``), pure.

Everything here works on bytes and mirrors one C function of install-info.c, named in its
docstring, down to the pointer arithmetic that decides edge cases: lines are
``findlines``'s (the last line needs no newline; a sentinel line follows), C strings end at
the first NUL or at the end of the data, ``char`` is signed (``menu_line_lessp`` compares
bytes above 0x7f as negative numbers, as gcc on x86 does), and the case-insensitive
comparisons are gnulib's ``mbsncasecmp``/``mbscasecmp`` in the C locale (ASCII folding only;
the caller defers a multibyte locale with non-ASCII text). glibc's ``qsort`` is its merge
sort (``msort.c``), reproduced so that comparators that are not a total order
(``compare_entries_text`` compares name prefixes) give the same order.

Forms whose C behaviour is undefined (an entry without ". " after its name, whose text
``reformat_new_entries`` frees and never replaces) raise :class:`Defer` here.
"""

from __future__ import annotations

from collections.abc import Callable

from nuwa.script.context import Defer

TAB_WIDTH = 8
#: ``ensure_dirfile_exists``: the dir file install-info creates (the C locale's text)
DIR_TEMPLATE = (b"This is the file .../info/dir, which contains the\n"
                b"topmost node of the Info hierarchy, called (dir)Top.\n"
                b"The first time you invoke Info you start off looking at this node.\n"
                b"\x1f\n"
                b"File: dir,\tNode: Top\tThis is the top of the INFO tree\n"
                b"\n"
                b"  This (the Directory node) gives a menu of major topics.\n"
                b"  Typing \"q\" exits, \"H\" lists all Info commands, \"d\" returns here,\n"
                b"  \"h\" gives a primer for first-timers,\n"
                b"  \"mEmacs<Return>\" visits the Emacs manual, etc.\n"
                b"\n"
                b"  In Emacs, you can click mouse button 2 on a menu item or cross reference\n"
                b"  to select it.\n"
                b"\n"
                b"* Menu:\n")
_SPACE = b" \t\n\v\f\r"


def cstr(data: bytes, off: int = 0) -> bytes:
    """The C string at ``data[off:]``: up to the first NUL or the end of the data."""
    end = data.find(b"\0", off)
    return data[off:] if end < 0 else data[off:end]


def ncasecmp(a: bytes, b: bytes, n: int) -> int:
    """``mbsncasecmp`` with MB_CUR_MAX 1 (``strncasecmp``): at most ``n`` bytes, NUL ends."""
    for i in range(n):
        c1 = a[i] if i < len(a) else 0
        c2 = b[i] if i < len(b) else 0
        if 65 <= c1 <= 90:
            c1 += 32
        if 65 <= c2 <= 90:
            c2 += 32
        if c1 != c2 or c1 == 0:
            return c1 - c2
    return 0


def casecmp(a: bytes, b: bytes) -> int:
    """``mbscasecmp`` in the C locale."""
    return ncasecmp(a, b, max(len(a), len(b)) + 1)


def _signed(c: int) -> int:
    return c - 256 if c > 127 else c


def msort(items: list, cmp: Callable) -> list:
    """glibc's ``qsort`` (``msort_with_tmp``): top-down merge sort, the left run first on ties."""
    n = len(items)
    if n <= 1:
        return list(items)
    n1 = n // 2
    left, right = msort(items[:n1], cmp), msort(items[n1:], cmp)
    out, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


class Line:
    """``struct line_data``: one line of a file read into core."""

    __slots__ = ("start", "size", "add_entries_before", "add_sections_before", "delete")

    def __init__(self, start: int | None, size: int):
        self.start = start
        self.size = size
        self.add_entries_before: list | None = None
        self.add_sections_before: list = []
        self.delete = False


def findlines(data: bytes) -> list[Line]:
    """``findlines``: the lines of ``data`` and the sentinel (``start`` None) after them."""
    lines: list[Line] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            lines.append(Line(pos, len(data) - pos))
            break
        lines.append(Line(pos, nl - pos))
        pos = nl + 1
    lines.append(Line(None, 0))
    return lines


class Section:
    """``struct spec_section``: a section named for the new entries (a linked list)."""

    __slots__ = ("name", "next", "missing")

    def __init__(self, name: bytes, nxt: Section | None, missing: bool = True):
        self.name, self.next, self.missing = name, nxt, missing


class Entry:
    """``struct spec_entry``: one entry to add; its sections run from ``sections`` to ``tail``."""

    __slots__ = ("text", "sections", "tail", "missing_name", "missing_description", "missing_basename")

    def __init__(self, text: bytes | None, sections: Section | None = None, tail: Section | None = None):
        self.text = text
        self.sections, self.tail = sections, tail
        self.missing_name = self.missing_description = self.missing_basename = False

    def section_names(self):
        """The names of the chain ``sections`` .. ``tail`` (exclusive), as the C loops walk it."""
        s = self.sections
        while s is not None and s is not self.tail:
            yield s.name
            s = s.next


class Fatal(Exception):
    """install-info's ``fatal``: the message (without the program name); status 1."""


def _line_is(data: bytes, line: Line, word: bytes) -> bool:
    return line.size == len(word) and data[line.start:line.start + line.size] == word


def parse_input(data: bytes, lines: list[Line], sections: Section | None, entries: list[Entry],
                delete_flag: bool) -> tuple[Section | None, int]:
    """``parse_input``: the INFO-DIR-SECTION lines and START/END-INFO-DIR-ENTRY blocks.

    ``entries`` is the C list (head first) and grows at the front. Returns the new head of
    the section list and the number of entries read.
    """
    n_entries = 0
    head, tail, reset_tail = sections, None, False
    start_entry: int | None = None
    ignore_sections = sections is not None
    ignore_entries = False if delete_flag else bool(entries)
    if ignore_sections and ignore_entries:
        return sections, 0
    prefix = b"INFO-DIR-SECTION "
    for i, line in enumerate(lines[:-1]):
        if not ignore_sections and data[line.start:line.start + len(prefix)] == prefix:
            sections = Section(data[line.start + len(prefix):line.start + line.size], sections)
            if reset_tail:
                tail, reset_tail = sections.next, False
            head = sections
        elif not ignore_entries:
            if _line_is(data, line, b"START-INFO-DIR-ENTRY"):
                if sections is None:
                    sections = head = Section(b"Miscellaneous", None)
                reset_tail = True
                if start_entry is not None:
                    raise Fatal("START-INFO-DIR-ENTRY without matching END-INFO-DIR-ENTRY")
                # the sentinel's start is NULL: a START on the last line opens nothing
                start_entry = lines[i + 1].start
            elif start_entry is not None:
                is_end = _line_is(data, line, b"END-INFO-DIR-ENTRY")
                if (data[line.start:line.start + 2] == b"* " and line.start > start_entry) or is_end:
                    text = data[start_entry:line.start]
                    if b"\0" in text:
                        raise Defer("install-info: an entry of the info file holds a NUL byte")
                    entries.insert(0, Entry(text, head, tail))
                    n_entries += 1
                    start_entry = None if is_end else line.start
            # an END outside an entry is ignored: the C's "without matching START" check sits
            # in the branch for lines inside an entry, where END was already taken
    if start_entry is not None:
        raise Fatal("START-INFO-DIR-ENTRY without matching END-INFO-DIR-ENTRY")
    return sections, n_entries


class MenuSection:
    """``struct menu_section``: a section of a node's menu (1-based start/end lines)."""

    __slots__ = ("name", "start_line", "end_line")

    def __init__(self, name: bytes, start_line: int):
        self.name, self.start_line, self.end_line = name, start_line, 0


class Node:
    """``struct node``: a node of the dir file."""

    __slots__ = ("name", "start_line", "end_line", "menu_start", "sections")

    def __init__(self, start_line: int):
        self.name: bytes | None = None
        self.start_line, self.end_line = start_line, 0
        self.menu_start: int | None = None
        self.sections: list[MenuSection] = []


def _menu_start(lines: list[Line], i: int) -> int | None:
    return lines[i + 1].start


def parse_dir_file(data: bytes, lines: list[Line]) -> list[Node]:
    """``parse_dir_file``: the nodes (newest first, as the C list) and their menu sections."""
    nodes: list[Node] = []
    header = False
    n = len(lines) - 1
    for i in range(n):
        line = lines[i]
        if header:
            j = 0
            while j < line.size:
                if data[line.start + j:line.start + j + 5] == b"Node:":
                    j += 5
                    p = line.start + j
                    while p < len(data) and data[p] in b" \t":
                        p += 1
                    end = p
                    while end < len(data) and data[end] not in b"\0,\n\t":
                        end += 1
                    j = p - line.start
                    nodes[0].name = data[p:end]
                j += 1
            header = False
        first = data[line.start]
        if first == 0x1F:
            if nodes:
                nodes[0].end_line = i
                if nodes[0].sections:
                    nodes[0].sections[-1].end_line = i
            nodes.insert(0, Node(i))
            header = True
        if nodes and data[line.start:line.start + 7] == b"* Menu:":
            nodes[0].menu_start = _menu_start(lines, i)
        if nodes and nodes[0].menu_start is not None and first not in b"\n* \t":
            sec = MenuSection(data[line.start:line.start + line.size], i + 1)
            if nodes[0].sections:
                nodes[0].sections[-1].end_line = i
            nodes[0].sections.append(sec)
    if nodes:
        nodes[0].end_line = n
        if nodes[0].sections:
            nodes[0].sections[-1].end_line = n
    return nodes


def menu_item_equal(item: bytes, term: int, name: bytes, remove_exactly: bool) -> bool:
    """``menu_item_equal``: ITEM (a C string) names NAME, maybe with an info suffix, then TERM."""
    base = item
    if not remove_exactly:
        k = 0
        while k < len(item) and item[k] != 0x2F and item[k] != term:
            k += 1
        base = item if k >= len(item) or item[k] == term else item[k + 1:]
    if ncasecmp(base, name, len(name)) != 0:
        return False
    for suffix in (b"", b".info.gz", b".info", b".inf", b".gz"):
        rest = base[len(name):]
        at = len(name) + len(suffix)
        if ncasecmp(rest, suffix, len(suffix)) == 0 and at < len(base) and base[at] == term:
            return True
    return False


def mark_entry_for_deletion(data: bytes, lines: list[Line], name: bytes, remove_exactly: bool) -> bool:
    """``mark_entry_for_deletion``: flag every menu line naming NAME and its continuations."""
    deleted = False
    text = cstr(data)
    for i, line in enumerate(lines[:-1]):
        first = data[line.start]
        if first == 0x2A:
            p = line.start + 1
            while p < len(text) and text[p] == 0x20:
                p += 1
            q = p
            # the item name runs to the next ':' anywhere in the data, as the C loop scans
            while p < len(text) and text[p] != 0x3A:
                p += 1
            p += 1
            if p < len(text) and text[p] == 0x3A:
                if menu_item_equal(text[q:], 0x3A, name, remove_exactly):
                    line.delete = deleted = True
            else:
                while p < len(text) and text[p] == 0x20:
                    p += 1
                if p < len(text) and text[p] == 0x28:
                    if menu_item_equal(text[p + 1:], 0x29, name, remove_exactly):
                        line.delete = deleted = True
        elif i > 0 and first in b" \t":
            line.delete = lines[i - 1].delete
    return deleted


def menu_line_lessp(a: bytes, b: bytes) -> bool:
    """``menu_line_lessp``: A's item name sorts before B's (signed chars; prefix first)."""
    for i in range(min(len(a), len(b))):
        if a[i] == 0x3A and b[i] != 0x3A:
            return True
        if b[i] == 0x3A and a[i] != 0x3A:
            return False
        if _signed(a[i]) < _signed(b[i]):
            return True
        if _signed(a[i]) > _signed(b[i]):
            return False
    return False


def menu_line_equal(a: bytes, b: bytes) -> bool:
    """``menu_line_equal``: the item names of A and B are the same."""
    for i in range(min(len(a), len(b))):
        if a[i] == 0x3A and b[i] == 0x3A:
            return True
        if a[i] != b[i]:
            return False
    return True


def adjust_column(column: int, c: int) -> int:
    """``adjust_column``: the screen column after printing C."""
    if c == 8:
        return column - 1 if column > 0 else column
    if c == 13:
        return 0
    if c == 9:
        return column + TAB_WIDTH - column % TAB_WIDTH
    return column + 1


def split_entry(entry: bytes) -> tuple[bytes | None, int, bytes | None]:
    """``split_entry``: (name, name_len, description) of an entry's text (a C string)."""
    entry = cstr(entry)
    ptr = entry.find(b".")
    while ptr >= 0 and (ptr + 1 >= len(entry) or entry[ptr + 1] not in b" \t\n"):
        ptr = entry.find(b".", ptr + 1)
    if ptr < 0:
        if not entry:
            return None, 0, None
        return entry, len(entry) + 1, None
    name_len = ptr + 1
    name = entry[:name_len]
    desc = bytearray()
    p = ptr + 1
    while p < len(entry):
        while p < len(entry) and entry[p] in _SPACE:
            p += 1
        if p >= len(entry):
            continue
        nl = entry.find(b"\n", p)
        if nl >= 0:
            length = nl - p
            desc += entry[p:nl]
            p = nl + 1
            if length > 1 and p < len(entry):
                prev = entry[nl - 1]
                if prev == 0x2E:
                    desc += b"  "
                elif prev not in _SPACE:
                    desc += b" "
        else:
            desc += entry[p:]
            p = len(entry)
    desc += b"\n"
    return name, name_len, bytes(desc)


def format_entry(name: bytes, name_len: int, desc: bytes, calign: int, align: int, width: int) -> bytes:
    """``format_entry``: the name, the description from column CALIGN, wrapped at WIDTH with
    continuation lines indented to ALIGN (the indent itself is not counted, as in the C)."""
    if calign < 2 or align < 1 or width <= align:
        # size_t arithmetic in the C (calign - 2, width - align) wraps: no defined output
        raise Defer(f"install-info: --calign={calign}/--align={align}/--max-width={width} leave no defined layout")
    desc_len = len(desc)
    out = bytearray(cstr(name)[:name_len])
    column = name_len
    if name_len > calign - 2:
        if desc_len > 1:
            out += b"\n"
            column = 0
            for _ in range(calign - 1):
                column = adjust_column(column, 0x20)
                out += b" "
    else:
        for _ in range(calign - name_len - 1):
            if desc_len <= 2:
                break
            column = adjust_column(column, 0x20)
            out += b" "
    line = bytearray()
    if desc_len > 2:
        for c in desc:
            if c == 0x0A:
                line.append(c)
                out += line
                column = 0
                line.clear()
                continue
            while True:  # the C's "rescan" label
                column = adjust_column(column, c)
                if column <= width:
                    line.append(c)
                    break
                end = len(line)
                found = False
                while end:
                    end -= 1
                    if line[end] in b" \t":
                        found = True
                        break
                if found:
                    end += 1
                    out += line[:end] + b"\n"
                    for _ in range(align - 1):
                        column = adjust_column(column, 0x20)
                        out += b" "
                    del line[:end]
                    column = 0
                    for ch in line:
                        column = adjust_column(column, ch)
                    continue
                if not line:
                    line.append(c)
                    break
                line.append(0x0A)
                out += line
                column = 0
                line.clear()
    if desc_len <= 2:
        out += b"\n"
    out += line
    return bytes(out)


def reformat_new_entries(entries: list[Entry], calign_cli: int, align_cli: int, maxwidth_cli: int) -> None:
    """``reformat_new_entries``: each entry re-laid out by ``format_entry`` (defaults 33/35,
    49/51 in the "Individual utilities" section, width 79)."""
    for entry in entries:
        name, name_len, desc = split_entry(entry.text)
        if name is None or desc is None:
            raise Defer("install-info: an entry without '. ' after its name (install-info frees its "
                        "text and writes whatever memory holds)")
        calign, align = calign_cli, align_cli
        if calign == -1 or align == -1:
            if b"Individual utilities" in entry.section_names():
                calign = 49 if calign == -1 else calign
                align = 51 if align == -1 else align
            calign = 33 if calign == -1 else calign
            align = 35 if align == -1 else align
        width = 79 if maxwidth_cli == -1 else maxwidth_cli
        entry.text = format_entry(name, name_len, desc, calign, align, width)


def compare_entries_text(e1: Entry, e2: Entry) -> int:
    """``compare_entries_text``: the texts up to the shorter of their first colons, no case."""
    t1, t2 = cstr(e1.text), cstr(e2.text)
    c1, c2 = t1.find(b":"), t2.find(b":")
    len1 = len(t1) if c1 < 0 else c1
    len2 = len(t2) if c2 < 0 else c2
    return ncasecmp(t1, t2, min(len1, len2))


def compare_section_names(s1: Section, s2: Section) -> int:
    """``compare_section_names``: ``strcmp`` of the names."""
    a, b = cstr(s1.name), cstr(s2.name)
    return (a > b) - (a < b)


def insert_entry_here(entry: Entry, line: Line, n_entries: int) -> None:
    """``insert_entry_here``: ENTRY into LINE's vector of entries to add, in menu order."""
    if line.add_entries_before is None:
        line.add_entries_before = [None] * n_entries
    vec = line.add_entries_before
    i = 0
    while i < n_entries:
        if vec[i] is None or menu_line_lessp(entry.text, vec[i].text):
            break
        i += 1
    if i == n_entries:
        raise Defer("install-info: more entries land before one dir line than it counted (it aborts)")
    if vec[i] is not None:
        vec[i + 1:] = vec[i:n_entries - 1]
    vec[i] = entry
