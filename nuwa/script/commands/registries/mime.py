"""``update-mime`` (mailcap 3.70+nmu1, Debian 12): ``/etc/mailcap`` from the packages' entries.

The real program is a Perl script (``/usr/sbin/update-mime``), modelled step by step:

- under dpkg (``DPKG_RUNNING_VERSION`` set) a first argument other than ``--triggered``
  makes it exit 0 at once (the old postinst calls; the ``/usr/lib/mime/packages`` trigger
  does the work); no argument at all runs it;
- ``ReadEntries``: every file of ``/usr/lib/mime/packages`` (Perl's ``glob``: no dot files,
  sorted case-insensitively then bytewise, ``.``/``#`` starts and ``~`` ends skipped), one
  entry per non-comment line, its ``priority=N`` (default 5; out of 0..9 reported and 5), the
  "not starting with a media type" warning;
- ``ReadDesktopEntries``: ``.desktop`` files below ``/usr/share/applications`` (each
  directory's subdirectories first, then its files), those whose name no package file has,
  ``[Desktop Entry]``'s ``Terminal``/``Name``/``Icon``/``Exec``/``MimeType`` as the script's
  (partly unanchored) patterns read them; one entry per media type;
- ``ReadOrder`` and ``OrderEntries``: priorities high to low, within one the specific types
  before ``type/*`` before ``*/...`` (a stable sort), then ``/etc/mailcap.order``'s
  ``package:type`` lines pulled to the front;
- ``UpdateMailcap``: ``/etc/mailcap`` (else ``/usr/lib/mime/mailcap``) keeps everything up to
  the "Ends" line of its user section; the entries follow a ``#`` rule; written to
  ``/etc/mailcap.new`` and renamed over ``/etc/mailcap``; a file without the section is
  reported and left alone.

Deferred before anything is written: ``/etc/update-mime.conf`` (Perl code of the image the
script would ``do``), ``--local`` (the user's home), names Perl's ``glob`` would split or
expand, an order line without ``:`` or with a package or type that is more than a plain
name as a Perl pattern, priorities such as ``05`` and ``5`` whose order perl leaves to its
hash, and desktop entries for which perl would print an "uninitialized value" warning.
"""

from __future__ import annotations

import os
import re

from nuwa.script.commands.registries import perlish
from nuwa.script.commands.registries.perlish import b, s
from nuwa.script.context import Defer, Invocation

MAILCAP = "/etc/mailcap"
MAILCAP_DEFAULT = "/usr/lib/mime/mailcap"
MIMEDIR = "/usr/lib/mime/packages"
APPSDIR = "/usr/share/applications"
ORDERFILE = "/etc/mailcap.order"
CONFFILE = "/etc/update-mime.conf"
DEFPRIORITY = b"5"

_SKIP = re.compile(rb"(^|/)(\.|\#)|(\~)$")
_BLANK_OR_COMMENT = re.compile(rb"^\s*$|^\s*\#")
_MEDIA = re.compile(rb"^[a-zA-Z0-9*][a-zA-Z0-9!#$&^_.+-]*/[a-zA-Z0-9*][a-zA-Z0-9!#$&^_.+-]*;")
_PRIORITY = re.compile(rb"priority\s*=\s*(\d+)\s*($|;)", re.I)
_STRIP_PRIORITY = re.compile(rb"\s*priority\s*=\s*\d+\s*($|;)")
_GLOB_UNSAFE = re.compile(rb"[\s*?\[\]{}~\\]")


class _Entries:
    """The script's globals: %entries, %packages, %priorities (insertion-ordered lists)."""

    def __init__(self) -> None:
        self.entries: dict[int, bytes] = {}
        self.packages: dict[bytes, list[int]] = {}
        self.priorities: dict[bytes, list[int]] = {}
        self.counter = 1

    def add(self, pkg: bytes, priority: bytes, entry: bytes) -> None:
        self.entries[self.counter] = entry
        self.packages[pkg].append(self.counter)
        self.priorities.setdefault(priority, []).append(self.counter)
        self.counter += 1


def _glob(inv: Invocation, directory: str) -> list[str]:
    """Perl's ``glob "DIR/*"``: the names not starting with a dot, sorted as bsd_glob's
    GLOB_ALPHASORT (ASCII case folded, ties bytewise); nothing for a missing directory."""
    if _GLOB_UNSAFE.search(b(directory)):
        raise Defer(f"update-mime: Perl's glob would split or expand the directory name {directory!r}")
    try:
        names = [n for n in inv.fs.readdir(directory) if not n.startswith(".")]
    except OSError:
        return []
    paths = [b(directory + "/" + n) for n in names]
    return [s(p) for p in sorted(paths, key=lambda p: (p.lower(), p))]


def _open_read(inv: Invocation, path: str) -> bytes | None:
    """``open(FILE, "<$file")`` and reading it; None (after the script's warning) on failure."""
    try:
        return perlish.read_file(inv, path)
    except OSError as e:
        inv.err(f"Warning: could not open file '{path}' -- {os.strerror(e.errno)}\n")
        return None


def read_entries(inv: Invocation, st: _Entries) -> None:
    """``ReadEntries``: the files of /usr/lib/mime/packages."""
    for file in _glob(inv, MIMEDIR):
        if _SKIP.search(b(file)):
            continue
        pkg = b(file.rsplit("/", 1)[1])
        st.packages.setdefault(pkg, [])
        data = _open_read(inv, file)
        if data is None:
            continue
        for rec in perlish.records(data):
            line = perlish.chomp(rec)
            if _BLANK_OR_COMMENT.search(line):
                continue
            if not _MEDIA.search(line):
                inv.err(b"Warning: mailcap line not starting with a media type in " + pkg + b"\n"
                        b"Problematic line: " + line + b"\n")
            m = _PRIORITY.search(line)
            priority = m.group(1) if m else DEFPRIORITY
            if int(priority) > 9:
                inv.err(b"Error: priority of " + priority + b" is out of range (0 <= pri <= 9)\n"
                        b"       " + line + b"\n")
                priority = DEFPRIORITY
            st.add(pkg, priority, line)


def _desktop_files(inv: Invocation, dirs: list[str], depth: int = 0) -> list[str]:
    """``RecurseIntoDirectories``: each directory's subdirectories' files first, then its own."""
    if depth > 32:
        raise Defer("update-mime: /usr/share/applications nests deeper than the model follows")
    files: list[str] = []
    for d in dirs:
        if _SKIP.search(b(d)):
            continue
        entries = _glob(inv, d)
        subdirs = [e for e in entries if _is_dir(inv, e)]
        files += _desktop_files(inv, subdirs, depth + 1)
        files += [e for e in entries if perlish.is_file(inv, e)]
    return files


def _is_dir(inv: Invocation, path: str) -> bool:
    try:
        return inv.fs.stat(path).is_dir
    except OSError:
        return False


def read_desktop_entries(inv: Invocation, st: _Entries) -> None:
    """``ReadDesktopEntries``: the ``[Desktop Entry]`` groups of applications' desktop files."""
    for file in _desktop_files(inv, [APPSDIR]):
        bf = b(file)
        if _SKIP.search(bf) or not bf.endswith(b".desktop"):
            continue
        pkg = re.search(rb"/([^/]*)\.desktop$", bf).group(1)
        if pkg in st.packages:
            continue
        st.packages[pkg] = []
        data = _open_read(inv, file)
        if data is None:
            continue
        terminal, name, icon, exec_, types = b'test=test -n "$DISPLAY"', pkg, None, None, []
        in_group = False
        for lineno, rec in enumerate(perlish.records(data), 1):
            line = perlish.chomp(rec)
            if _BLANK_OR_COMMENT.search(line):
                continue
            if re.search(rb"^\[Desktop Entry\]$", line):
                in_group = True
                continue
            if re.search(rb"^\[.*\]$", line):
                in_group = False
                continue
            if not in_group:
                continue
            m = re.search(rb"^Terminal=(\w+)", line, re.I)
            if m:
                if m.group(1) == b"true":
                    terminal = b"needsterminal"
                continue
            m = re.search(rb"^Name=(.+)", line, re.I)
            if m:
                name = m.group(1)
                continue
            m = re.search(rb"^Icon=(.+)", line, re.I)
            if m:
                icon = m.group(1)
                continue
            m = re.search(rb"Exec=(.*)$", line, re.I)
            if m:
                exec_ = re.sub(rb"%[fFuU]", b"%s", m.group(1))
                if b"%s" not in exec_:
                    exec_ += b" %s"
                continue
            m = re.search(rb"MimeType=(.*)", line, re.I)
            if m:
                fields = perlish.split_fields(rb"\s*;\s*", m.group(1))
                if any(not f for f in fields):
                    inv.err(b"Warning: " + bf + b":" + str(lineno).encode() + b": ignoring empty entries in MimeType\n")
                types += [f for f in fields if f]
        if exec_ is None or not types:
            continue
        if b"%i" in exec_ and icon is None:
            raise Defer(f"update-mime: {file} has %i in Exec and no Icon (perl warns of an uninitialized value)")
        exec_ = exec_.replace(b"%c", name)
        if icon is not None:
            exec_ = exec_.replace(b"%i", b"--icon " + icon)
        for typ in types:
            st.add(pkg, DEFPRIORITY, typ + b"; " + exec_ + b"; " + terminal)


def read_order(inv: Invocation, st: _Entries) -> list[bytes]:
    """``ReadOrder``: /etc/mailcap.order's lines (comments and blanks dropped)."""
    order: list[bytes] = []
    if not perlish.exists(inv, ORDERFILE):
        return order
    data = _open_read(inv, ORDERFILE)
    if data is None:
        return order
    for rec in perlish.records(data):
        line = re.sub(rb"\s*\#.*$", b"", perlish.chomp(rec), count=1)
        if re.search(rb"^\s*$", line):
            continue
        order.append(line)
        if b":" not in line:
            raise Defer(f"update-mime: {ORDERFILE} line {s(line)!r} has no ':' (perl reuses a stale match)")
        pkg = line.rsplit(b":", 1)[0]
        pat = perlish.perl_regex(inv, s(pkg), f"the package named in {ORDERFILE}")
        if not any(re.search(b"^" + pat.pattern + b"$", k) for k in st.packages):
            inv.err(b"Warning: package " + pkg + b" listed in /etc/mailcap.order does not have mailcap entries.\n")
    return order


def _specificity(entry: bytes) -> int:
    return (1 if re.search(rb"^\S+/\*", entry) else 0) + (2 if re.search(rb"^\*/", entry) else 0)


def order_entries(inv: Invocation, st: _Entries, order: list[bytes]) -> list[int]:
    """``OrderEntries``: by priority, specificity, then the order file's pulls."""
    numeric: dict[int, bytes] = {}
    for p in st.priorities:
        if int(p) in numeric:
            raise Defer(f"update-mime: priorities {s(numeric[int(p)])!r} and {s(p)!r} tie; perl's order "
                        "between them is its hash order")
        numeric[int(p)] = p
    entrylist: list[int] = []
    for n in sorted(numeric, reverse=True):
        entrylist += sorted(st.priorities[numeric[n]], key=lambda c: _specificity(st.entries[c]))
    orderlist: list[int] = []
    placed: set[int] = set()
    for code in order:
        m = re.search(rb"^(.*):(\S*)", code)
        pkg, typ = m.group(1), m.group(2) or b"*/*"
        if re.search(rb"[^A-Za-z0-9./_+*-]", typ) or b"++" in typ or typ.startswith((b"+", b"*+")):
            raise Defer(f"update-mime: the type {s(typ)!r} of {ORDERFILE} is more than a plain name as a Perl pattern")
        typ_re = re.compile(b"^" + typ.replace(b"*", b".*") + b"$")
        members = set(st.packages.get(pkg, []))
        for c in entrylist:
            if c in placed or c not in members:
                continue
            em = re.search(rb"^(.*?)(;|\s)", st.entries[c])
            if not em:
                raise Defer(f"update-mime: the entry {s(st.entries[c])!r} has no type field (perl warns)")
            if typ_re.search(em.group(1)):
                orderlist.append(c)
                placed.add(c)
    return orderlist + [c for c in entrylist if c not in placed]


def update_mailcap(inv: Invocation, st: _Entries, entrylist: list[int]) -> int:
    """``UpdateMailcap``: the new /etc/mailcap, or the script's refusal."""
    data = None
    for path in (MAILCAP, MAILCAP_DEFAULT):
        try:
            data = perlish.read_file(inv, path)
            break
        except OSError:
            continue
    if data is None:
        return 0
    above: list[bytes] = []
    user: list[bytes] = []
    below: list[bytes] = []
    state = 0
    for rec in perlish.records(data):
        rec = rec.replace(b"install-mime", b"update-mime")
        if state == 0:
            above.append(rec)
        if state == 1 and re.search(rb"^\# ----- .* Ends ", rec):
            state = 2
        if state == 1:
            user.append(rec)
        if state == 0 and re.search(rb"^\# ----- .* Begins ", rec):
            state = 1
        if state == 2:
            below.append(rec)
        if state == 2:
            state = 3
    if state != 3:
        inv.err(f"Error: '{MAILCAP}' is not in required format -- not updated\n"
                "       Restore from backup or delete and re-install mime-support package")
        return 0
    new = b"".join(above + user + below) + b"\n" + b"#" * 79 + b"\n\n"
    for c in entrylist:
        entry = _STRIP_PRIORITY.sub(b"", st.entries[c], count=1)
        entry = re.sub(rb"\s*;\s*$", b"", entry, count=1)
        new += entry + b"\n"
    try:
        perlish.write_file(inv, MAILCAP + ".new", new)
    except OSError as e:
        inv.err(f"Error: could not write '{MAILCAP}.new' -- {os.strerror(e.errno)}\n")
        return 1
    try:
        inv.fs.rename(MAILCAP + ".new", MAILCAP)
    except OSError:
        pass  # the script does not check rename's result
    return 0


def update_mime(inv: Invocation) -> int:
    """The ``update-mime`` model (mailcap 3.70+nmu1's Perl script, whole)."""
    args = inv.argv[1:]
    if "DPKG_RUNNING_VERSION" in inv.env and args and args[0] != "--triggered":
        return 0
    if args and args[0] == "--local":
        raise Defer("update-mime --local writes the user's ~/.mailcap; not modelled")
    if perlish.is_file(inv, CONFFILE):
        raise Defer(f"update-mime runs {CONFFILE} (Perl code of the image) with `do`")
    st = _Entries()
    read_entries(inv, st)
    read_desktop_entries(inv, st)
    order = read_order(inv, st)
    return update_mailcap(inv, st, order_entries(inv, st, order))
