"""``dpkg-query`` (dpkg 1.21.22): -W/--show, -s/--status, -L/--listfiles, -S/--search, -l/--list,
-c/--control-path, --control-list, --control-show; read-only, over the image's database.

The model mirrors ``src/query/main.c`` and ``lib/dpkg/pkg-format.c``: package patterns
(``pkg_spec``: fnmatch on the name, ``:arch`` qualifiers), the ``${field;width}`` show format
with dpkg's virtual fields, ``dpkg-query -l`` column widths (C locale: widths are byte counts),
stanzas for ``-s``, diversion notes for ``-L``/``-S``, and exit codes (1 when something was not
found, 2 for errors). The data comes from :mod:`nuwa.deb` (status, info/ and diversions).

Known divergence: with several packages owning one path, ``dpkg -S`` lists the owners in the
order dpkg happened to load their ``.list`` files, which it sorts by their *physical disk
offset* (FIEMAP); the model lists them in reverse status-file order. Paths matched by a
pattern come out in dpkg's hash-table order (FNV-1a over 262139 bins), as in dpkg.
"""

from __future__ import annotations

from nuwa.deb.arch import native_architecture
from nuwa.deb.diversions import Diversions
from nuwa.deb.infodb import InfoDB
from nuwa.deb.status import StatusFile
from nuwa.errors import CorruptImageError
from nuwa.script.commands.dpkg.common import (DpkgExit, Opt, Tool, arch_name_is_illegal, pkg_name_is_illegal,
                                              trim_slash_slashdot)
from nuwa.script.context import Defer, Invocation
from nuwa.script.expand import match

HINT = "Use --help for help about querying packages."
DEFAULT_FORMAT = "${binary:Package}\t${Version}\n"

OPTS = [
    Opt("listfiles", "L", 0, "listfiles", True), Opt("status", "s", 0, "status", True),
    Opt("print-avail", "p", 0, "print-avail", True), Opt("list", "l", 0, "list", True),
    Opt("search", "S", 0, "search", True), Opt("show", "W", 0, "show", True),
    Opt("control-path", "c", 0, "control-path", True), Opt("control-list", None, 0, "control-list", True),
    Opt("control-show", None, 0, "control-show", True), Opt("help", "?", 0, "help", True),
    Opt("version", None, 0, "version", True),
    Opt("admindir", None, 1, "admindir"), Opt("root", None, 1, "root"),
    Opt("load-avail", None, 0, "load-avail"), Opt("showformat", "f", 1, "showformat"),
    Opt("no-pager", None, 0, "no-pager"),
]

WANT_ABBREV = {"unknown": "u", "install": "i", "hold": "h", "deinstall": "r", "purge": "p"}
STATUS_ABBREV = {"not-installed": "n", "config-files": "c", "half-installed": "H", "unpacked": "U",
                 "half-configured": "F", "triggers-awaited": "W", "triggers-pending": "t", "installed": "i"}
_CHARFIELDS = ("installed-size", "origin", "maintainer", "bugs", "source", "description")
_DEPFIELDS = ("replaces", "provides", "depends", "pre-depends", "recommends", "suggests", "breaks",
              "conflicts", "enhances")
_NULLFIELDS = ("filename", "size", "md5sum", "msdos-filename", "recommended", "optional", "class",
               "revision", "package-revision", "package_revision")
FSYS_BINS = 262139


# --------------------------------------------------------------------------------------------
# the database as dpkg-query sees it
# --------------------------------------------------------------------------------------------


class Pkg:
    """One package instance (a status paragraph, or an empty one for an unknown name)."""

    def __init__(self, qdb: "QueryDB", entry=None, name: str = "", arch: str = ""):
        self.qdb = qdb
        self.entry = entry
        self.name = entry.name if entry is not None else name
        self._arch = arch  # of a blank instance made for ``name:arch`` (``pkg_hash_find_pkg``)

    def field(self, key: str) -> str | None:
        return self.entry.para.get(key) if self.entry is not None else None

    @property
    def status(self) -> str:
        return self._words()[2]

    @property
    def want(self) -> str:
        return self._words()[0]

    @property
    def eflag(self) -> str:
        return self._words()[1]

    def _words(self) -> list[str]:
        v = self.field("Status")
        if not v:
            return ["unknown", "ok", "not-installed"]
        return v.split()

    @property
    def arch(self) -> str:
        return self.field("Architecture") or "" if self.entry is not None else self._arch

    @property
    def multiarch(self) -> str:
        return self.field("Multi-Arch") or "no"

    def needs_arch(self) -> bool:
        """``pkgbin_name_needs_arch(pnaw_nonambig)``."""
        a = self.arch
        if not a:
            return False
        if self.multiarch == "same":
            return True
        return a not in (self.qdb.native, "all")

    def nonambig(self) -> str:
        return f"{self.name}:{self.arch}" if self.needs_arch() else self.name

    def stem(self) -> str:
        """The name of the package's files in info/ (``pkg_infodb_get_file``)."""
        if self.multiarch == "same" and self.arch and self.qdb.info.format() >= 1:
            return f"{self.name}:{self.arch}"
        return self.name

    def informative(self) -> bool:
        return self.entry is not None and self.entry.is_informative()

    def synopsis(self) -> str:
        d = self.field("Description")
        if d is None:
            return "(no description available)"
        return d.split("\n", 1)[0]


class QueryDB:
    """Status, info/ and diversions of one admin directory, loaded on demand."""

    def __init__(self, tool: Tool):
        self.tool = tool
        self.fs = tool.fs
        self.admindir = tool.image_admindir()
        self.status = StatusFile.load(self.fs, self.admindir + "/status")
        self.info = InfoDB(self.fs, self.admindir)
        self.pkgs = [Pkg(self, e) for e in self.status.entries]
        self.native = native_arch(self.status, self.fs)
        # dpkg's package hash also holds every name the relationship fields mention
        # (``f_dependency`` -> ``pkg_hash_find_set``): blank, not-installed instances
        known = {p.name.lower() for p in self.pkgs}
        for e in self.status.entries:
            for f in _DEPFIELDS:
                v = e.para.get(f)
                if not v:
                    continue
                for alt in v.replace("|", ",").split(","):
                    n = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0].strip().lower()
                    if n and n not in known:
                        known.add(n)
                        self.pkgs.append(Pkg(self, None, n))
        self._files: dict[int, list[str]] = {}
        self._diversions: Diversions | None = None

    def sorted_pkgs(self) -> list[Pkg]:
        """``pkg_sorter_by_nonambig_name_arch``."""
        def key(p: Pkg):
            return (p.name.encode(), p.needs_arch(), p.arch.encode() if p.needs_arch() else b"")
        return sorted(self.pkgs, key=key)

    def find_set(self, name: str) -> list[Pkg]:
        return [p for p in self.pkgs if p.name.lower() == name.lower()]

    def parse_pkgname(self, action: str, text: str) -> Pkg:
        """``dpkg_options_parse_pkgname``: one package, or a usage error."""
        name, sep, arch = text.partition(":")
        emsg = pkg_name_is_illegal(name)
        if emsg:
            spec = f"{name}:{arch}" if sep else name
            self.tool.badusage(f"--{action} needs a valid package name but '{text}' is not: "
                               f"illegal package name in specifier '{spec}': {emsg}")
        if sep:
            aerr = arch_name_is_illegal(arch)
            if aerr:
                self.tool.badusage(f"--{action} needs a valid package name but '{text}' is not: "
                                   f"illegal architecture name in specifier '{name}:{arch}': {aerr}")
        cands = self.find_set(name)
        if sep:
            for p in cands:
                if p.arch == arch:
                    return p
            return Pkg(self, None, name.lower(), arch)
        inst = [p for p in cands if p.status != "not-installed"]
        if len(inst) > 1:
            self.tool.badusage(f"--{action} needs a valid package name but '{text}' is not: "
                               f"ambiguous package name '{name}' with more than one installed instance")
        if inst:
            return inst[0]
        for p in cands:
            if p.arch in (self.native, "all"):
                return p
        return cands[0] if cands else Pkg(self, None, name.lower())

    # ---- files --------------------------------------------------------------------------------
    def files(self, pkg: Pkg) -> list[str] | None:
        """``ensure_packagefiles_available``: the package's paths (None: not installed)."""
        if pkg.entry is None or pkg.status == "not-installed":
            return None
        k = id(pkg.entry)
        if k not in self._files:
            data = self.info.read(pkg.stem(), "list")
            out: list[str] = []
            if data is None:
                cv = pkg.field("Config-Version") or (pkg.field("Version") if pkg.status in ("installed", "triggers-pending") else "")
                if pkg.status != "config-files" and cv:
                    self.tool.warning(f"files list file for package '{pkg.nonambig()}' missing; "
                                      "assuming package has no files currently installed")
            elif data:
                text = data.decode("utf-8", "surrogateescape")
                if not text.endswith("\n"):
                    self.tool.error(f"files list file for package '{pkg.nonambig()}' is missing final newline")
                for ln in text.split("\n")[:-1]:
                    if ln.endswith("/"):
                        ln = ln[:-1]
                    if not ln:
                        self.tool.error(f"files list file for package '{pkg.nonambig()}' contains empty filename")
                    out.append(node_name(ln))
            self._files[k] = out
        return self._files[k]

    def diversions(self) -> Diversions:
        if self._diversions is None:
            try:
                self._diversions = Diversions.load(self.fs, self.admindir)
            except CorruptImageError:
                raise Defer("dpkg-query: damaged diversions file") from None
        return self._diversions


def node_name(path: str) -> str:
    """``fsys_hash_find_node``'s name: one leading slash, ``./`` pairs skipped."""
    return "/" + skip_slash_dotslash(path)


def skip_slash_dotslash(path: str) -> str:
    """``path_skip_slash_dotslash``."""
    while path.startswith("/") or path.startswith("./"):
        path = path[1:] if path.startswith("/") else path[2:]
    return path


def fnv_hash(name: str) -> int:
    """``str_fnv_hash``: 32-bit FNV-1a over the bytes, each sign-extended like a C ``char``."""
    h = 2166136261
    for b in name.encode("utf-8", "surrogateescape"):
        h ^= b if b < 0x80 else (b - 0x100) & 0xFFFFFFFF
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def native_arch(status: StatusFile, fs=None) -> str:
    """The native architecture of the image: that of its dpkg package (dpkg's compiled-in
    one); without one, what :func:`nuwa.deb.arch.native_architecture` reads from the image
    ``fs`` (``/var/lib/dpkg/arch``, its programs' ELF headers); never the host's."""
    e = status.find("dpkg")
    if e is not None and e.arch and e.arch != "all":
        return e.arch
    arch = native_architecture(fs) if fs is not None else None
    if arch is None:
        raise Defer("dpkg: the image's native architecture is unknown (no dpkg package in the status "
                    "file, no /var/lib/dpkg/arch, no ELF program of a known machine)")
    return arch


# --------------------------------------------------------------------------------------------
# --showformat
# --------------------------------------------------------------------------------------------


def parse_format(fmt: str) -> tuple[list[tuple[str, str, int]] | None, str]:
    """``pkg_format_parse``: ``[(kind, data, width)]`` or ``(None, error)``."""
    nodes: list[tuple[str, str, int]] = []
    i = 0
    while i < len(fmt):
        if fmt.startswith("${", i):
            end = fmt.find("}", i)
            if end < 0:
                return None, "missing closing brace"
            body = fmt[i + 2:end]
            width = 0
            if ";" in body:
                body, wtext = body.split(";", 1)
                w, rest = _strtol(wtext)
                if rest != "":
                    return None, f"invalid character '{rest[0]}' in field width"
                if not -2**31 <= w < 2**31:
                    return None, "field width is out of range"
                width = w
            nodes.append(("field", body, width))
            i = end + 1
        else:
            j = i + 1
            while j < len(fmt) and not fmt.startswith("${", j):
                j += 1
            nodes.append(("string", _unescape(fmt[i:j]), 0))
            i = j
    if not nodes:
        return None, "may not be empty string"
    return nodes, ""


def _strtol(text: str) -> tuple[int, str]:
    """``strtol(s, &end, 0)``: value and the unparsed rest."""
    s = text.lstrip(" \t\n\v\f\r")
    sign = 1
    k = 0
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        k = 1
    base = 10
    if s[k:k + 2].lower() == "0x" and len(s) > k + 2 and s[k + 2] in "0123456789abcdefABCDEF":
        base, k = 16, k + 2
    elif s[k:k + 1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    j = k
    while j < len(s) and s[j].lower() in digits:
        j += 1
    if j == k:
        return 0, text
    return sign * int(s[k:j], base), s[j:]


def _unescape(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            i += 1
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(s[i], s[i]))
        elif c == "\\":
            out.append("\0")  # a trailing backslash copies the terminator: the string ends here
        else:
            out.append(c)
        i += 1
    text = "".join(out)
    return text.split("\0", 1)[0]


def field_value(qdb: QueryDB, pkg: Pkg, name: str) -> str | None:
    """The text of ``${name}`` for ``pkg`` (None: no such field, the node prints nothing)."""
    key = name.lower()
    if key == "package":
        return pkg.name
    if key in ("essential", "protected"):
        return "yes" if (pkg.field(name) or "no") == "yes" else "no"
    if key == "status":
        return " ".join(pkg._words())
    if key == "priority" or key == "section":
        return pkg.field(name) or ""
    if key == "architecture":
        return pkg.arch
    if key == "multi-arch":
        return pkg.multiarch
    if key == "version":
        return pkg.field("Version") or ""
    if key == "config-version":
        if pkg.status in ("installed", "not-installed", "triggers-pending"):
            return ""
        return pkg.field("Config-Version") or ""
    if key in _CHARFIELDS or key in _DEPFIELDS:
        return pkg.field(name) or ""
    if key == "conffiles":
        if pkg.entry is None:
            return ""
        return "\n".join(c.render() for c in pkg.entry.conffiles)
    if key in ("triggers-pending", "triggers-awaited"):
        return "".join(" " + t for t in (pkg.field(name) or "").split())
    if key in _NULLFIELDS:
        return ""
    if key == "binary:package":
        return pkg.nonambig()
    if key in ("binary:synopsis", "binary:summary"):
        return pkg.synopsis()
    if key.startswith("db:status-"):
        w = pkg._words()
        sub = key[len("db:status-"):]
        if sub == "abbrev":
            return WANT_ABBREV[w[0]] + STATUS_ABBREV[w[2]] + (" " if w[1] == "ok" else "R")
        if sub in ("want", "eflag", "status"):
            return w[("want", "eflag", "status").index(sub)]
    if key == "db-fsys:files":
        files = qdb.files(pkg) or []
        return "".join(f" {p}\n" for p in files)
    if key == "db-fsys:last-modified":
        if pkg.status == "not-installed":
            return ""
        try:
            return str(int(qdb.fs.stat(qdb.info.path(pkg.stem(), "list")).st_mtime))
        except FileNotFoundError:
            return ""
    if key == "source:package":
        src = pkg.field("Source") or pkg.name
        return src.split(" ", 1)[0]
    if key in ("source:version", "source:upstream-version"):
        src = pkg.field("Source") or ""
        ver = pkg.field("Version") or ""
        if "(" in src and src.rstrip().endswith(")"):
            ver = src[src.index("(") + 1:src.rindex(")")].strip()
        if key == "source:version":
            return ver
        v = ver.split(":", 1)[1] if ":" in ver else ver
        return v.rsplit("-", 1)[0] if "-" in v else v
    if pkg.entry is not None and name in pkg.entry.para:
        return pkg.entry.para.get(name)
    return None


def format_pkg(qdb: QueryDB, nodes, pkg: Pkg) -> str:
    """``pkg_format_print``: each node padded (``%*s``) then cut to |width| characters."""
    out = []
    for kind, data, width in nodes:
        text = data if kind == "string" else field_value(qdb, pkg, data)
        if text is None:
            continue
        if width:
            text = text.rjust(width) if width > 0 else text.ljust(-width)
            b = text.encode("utf-8", "surrogateescape")[:abs(width)]
            text = b.decode("utf-8", "surrogateescape")
        out.append(text)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# actions
# --------------------------------------------------------------------------------------------


def match_patterns(tool: Tool, qdb: QueryDB, pkgs: list[Pkg], patterns: list[str], visit) -> int:
    """``pkg_array_match_patterns``: visit each matching package once, in order; count misses."""
    specs = [_spec(p) for p in patterns]
    found = [0] * len(specs)
    for pkg in pkgs:
        hit = False
        for i, sp in enumerate(specs):
            if _spec_match(sp, pkg):
                hit = True
                found[i] += 1
        if hit:
            visit(pkg)
    rc = 0
    for i, pat in enumerate(patterns):
        if not found[i]:
            tool.notice(f"no packages found matching {pat}")
            rc += 1
    return rc


def _spec(text: str):
    name, sep, arch = text.partition(":")
    return (name, any(c in name for c in "*[?\\"), arch if sep else None,
            sep and any(c in arch for c in "*[?\\"))


def _spec_match(sp, pkg: Pkg) -> bool:
    name, name_pat, arch, arch_pat = sp
    if not (match(name, pkg.name) if name_pat else name == pkg.name):
        return False
    if arch is None:
        return True
    if arch_pat:
        return match(arch, pkg.arch)
    return arch == pkg.arch and arch != ""


def act_show(tool: Tool, qdb: QueryDB, args: list[str], fmt: str) -> int:
    nodes, err = parse_format(fmt)
    if nodes is None:
        tool.notice(f"error in show format: {err}")
        return 1
    pkgs = qdb.sorted_pkgs()
    if not args:
        for p in pkgs:
            if p.status != "not-installed":
                tool.out(format_pkg(qdb, nodes, p))
        return 0
    return match_patterns(tool, qdb, pkgs, args, lambda p: tool.out(format_pkg(qdb, nodes, p)))


def act_list(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    pkgs = qdb.sorted_pkgs()
    chosen: list[Pkg] = []
    if not args:
        chosen = [p for p in pkgs if p.status != "not-installed"]
        rc = 0
    else:
        rc = match_patterns(tool, qdb, pkgs, args, chosen.append)
    if not chosen:
        return rc
    nw, vw, aw, dw = 14, 12, 12, 33
    for p in chosen:
        nw = max(nw, _width(p.nonambig()))
        vw = max(vw, _width(p.field("Version") or "<none>"))
        aw = max(aw, _width(p.arch or "<none>"))
        dw = max(dw, len(p.synopsis().encode("utf-8", "surrogateescape")))
    lines = ["Desired=Unknown/Install/Remove/Purge/Hold\n"
             "| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend\n"
             "|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n"]
    lines.append(_row("||/", "Name", "Version", "Architecture", "Description", (nw, vw, aw), dw))
    lines.append("+++-" + "=" * nw + "-" + "=" * vw + "-" + "=" * aw + "-" + "=" * dw + "\n")
    for p in chosen:
        w = p._words()
        ab = WANT_ABBREV[w[0]] + STATUS_ABBREV[w[2]] + (" " if w[1] == "ok" else "R")
        lines.append(_row(ab, p.nonambig(), p.field("Version") or "<none>", p.arch or "<none>", p.synopsis(),
                          (nw, vw, aw), dw))
    tool.out("".join(lines))
    return rc


def _width(s: str) -> int:
    """``str_width`` in the C locale: non-ASCII text falls back to its byte length."""
    return len(s.encode("utf-8", "surrogateescape"))


def _crop(s: str, width: int) -> tuple[bytes, int]:
    """``str_gen_crop``: (bytes shown, field width in bytes)."""
    b = s.encode("utf-8", "surrogateescape")
    if any(x >= 0x80 for x in b):
        return b[:width], width
    n = 0
    while n < len(b) and n < width and b[n] >= 0x20 and b[n] != 0x7F:
        n += 1
    return b[:n], width


def _row(ab: str, name: str, ver: str, arch: str, desc: str, widths, dw: int) -> str:
    parts = [ab.encode()]
    for s, w in zip((name, ver, arch), widths):
        shown, field = _crop(s, w)
        parts.append(shown.ljust(field))
    d, _ = _crop(desc, dw)
    parts.append(d)
    return b" ".join(parts).decode("utf-8", "surrogateescape") + "\n"


def act_status(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    if not args:
        for p in qdb.status.entries:
            if p.is_informative():
                tool.out(stanza(p) + "\n")
        return 0
    failures = 0
    for i, a in enumerate(args):
        pkg = qdb.parse_pkgname("status", a)
        if pkg.status == "not-installed" and pkg.want == "unknown" and not (pkg.field("Priority") or pkg.field("Section")) \
                and not pkg.informative():
            tool.notice(f"package '{pkg.nonambig()}' is not installed and no information is available")
            failures += 1
        else:
            tool.out(stanza(pkg.entry))
        if i + 1 < len(args):
            tool.out("\n")
    if failures:
        tool.inv.err("Use dpkg --info (= dpkg-deb --info) to examine archive files.\n")
    return failures


def stanza(entry) -> str:
    """``write_stanza``: the paragraph as dpkg writes it (its status text is already that)."""
    return entry.render()


def act_listfiles(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    if not args:
        tool.badusage("--listfiles needs at least one package name argument")
    failures = 0
    for i, a in enumerate(args):
        pkg = qdb.parse_pkgname("listfiles", a)
        files = qdb.files(pkg)
        if files is None:
            tool.notice(f"package '{pkg.nonambig()}' is not installed")
            failures += 1
        elif not files:
            tool.out(f"Package '{pkg.nonambig()}' does not contain any files (!)\n")
        else:
            div = qdb.diversions()
            for f in files:
                tool.out(f + "\n")
                d = div.by_path(f)
                if d is not None:
                    if d.package is None:
                        tool.out(f"locally diverted to: {d.divert_to}\n")
                    elif d.package == pkg.name:
                        tool.out(f"package diverts others to: {d.divert_to}\n")
                    else:
                        tool.out(f"diverted by {d.package} to: {d.divert_to}\n")
        if i + 1 < len(args):
            tool.out("\n")
    if failures:
        tool.inv.err("Use dpkg --contents (= dpkg-deb --contents) to list archive files contents.\n")
    return failures


def act_search(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    if not args:
        tool.badusage("--search needs at least one file name pattern argument")
    owners: dict[str, list[Pkg]] = {}
    order: list[str] = []
    for pkg in qdb.pkgs:  # load order (see the module note); owners are prepended like dpkg
        for f in qdb.files(pkg) or []:
            if f not in owners:
                owners[f] = []
                order.append(f)
            if pkg not in owners[f]:
                owners[f].insert(0, pkg)
    div = qdb.diversions()
    divmap = {}
    for d in div.items:
        for p in (d.path, d.divert_to):
            n = node_name(p)
            divmap[n] = d
            if n not in owners:
                owners[n] = []
                order.append(n)
    failures = 0
    for arg in args:
        pat = arg if arg[:1] in ("*", "[", "?", "/") else f"*{arg}*"
        found = 0
        if not any(c in pat for c in "*[?\\"):
            n = node_name(trim_slash_slashdot(pat))
            found += _search_output(tool, n, owners.get(n, []), divmap.get(n))
        else:
            seq = sorted(((fnv_hash(n[1:]) % FSYS_BINS, i, n) for i, n in enumerate(order)))
            for _, _, n in seq:
                if match(pat, n):
                    found += _search_output(tool, n, owners[n], divmap.get(n))
        if not found:
            tool.notice(f"no path found matching pattern {pat}")
            failures += 1
    return failures


def _search_output(tool: Tool, name: str, owners: list[Pkg], d) -> int:
    if d is not None:
        if d.package:
            tool.out(f"diversion by {d.package} from: {d.path}\ndiversion by {d.package} to: {d.divert_to}\n")
        else:
            tool.out(f"local diversion from: {d.path}\nlocal diversion to: {d.divert_to}\n")
    if owners:
        tool.out(", ".join(p.nonambig() for p in owners) + f": {name}\n")
    return len(owners) + (1 if d is not None else 0)


def act_control_path(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    if not args:
        tool.badusage("--control-path needs at least one package name argument")
    if len(args) > 2:
        tool.badusage("--control-path takes at most two arguments")
    if len(args) == 2:
        _check_filetype(tool, args[1])
    pkg = qdb.parse_pkgname("control-path", args[0])
    if pkg.status == "not-installed":
        tool.error(f"package '{pkg.nonambig()}' is not installed")
    stem = pkg.stem()
    if len(args) == 2:
        p = qdb.info.path(stem, args[1])
        try:
            ok = qdb.fs.stat(p).is_reg
        except OSError:
            ok = False
        if ok and not _internal(args[1]):
            tool.out(tool.admindir.rstrip("/") + "/info/" + p.rsplit("/", 1)[1] + "\n")
        return 0
    for ft in _filetypes(qdb, stem):
        tool.out(f"{tool.admindir.rstrip('/')}/info/{stem}.{ft}\n")
    return 0


def act_control_list(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    if len(args) != 1:
        tool.badusage("--control-list takes one package name argument")
    pkg = qdb.parse_pkgname("control-list", args[0])
    if pkg.status == "not-installed":
        tool.error(f"package '{pkg.nonambig()}' is not installed")
    for ft in _filetypes(qdb, pkg.stem()):
        tool.out(ft + "\n")
    return 0


def act_control_show(tool: Tool, qdb: QueryDB, args: list[str]) -> int:
    if len(args) != 2:
        tool.badusage("--control-show takes exactly two arguments")
    _check_filetype(tool, args[1])
    pkg = qdb.parse_pkgname("control-show", args[0])
    if pkg.status == "not-installed":
        tool.error(f"package '{pkg.nonambig()}' is not installed")
    data = qdb.info.read(pkg.stem(), args[1]) if args[1] in qdb.info.filetypes(pkg.stem()) else None
    if data is None:
        tool.error(f"control file '{args[1]}' does not exist")
    tool.inv.out(data)
    return 0


def _check_filetype(tool: Tool, ft: str) -> None:
    for c in "/.":
        if c in ft:
            tool.badusage(f"control file contains {c}")


def _internal(ft: str) -> bool:
    return ft in ("list", "conffiles") or len(ft) > 100


def _filetypes(qdb: QueryDB, stem: str) -> list[str]:
    """``pkg_infodb_foreach`` in readdir order of info/ (dpkg does not sort)."""
    out = []
    try:
        names = qdb.fs.readdir(qdb.info.dir)
    except FileNotFoundError:
        return out
    for n in names:
        if not n.startswith(stem + "."):
            continue
        ft = n[len(stem) + 1:]
        if "." in ft or _internal(ft):
            continue
        out.append(ft)
    return out


ACTIONS = {"show": act_show, "list": act_list, "status": act_status, "listfiles": act_listfiles,
           "search": act_search, "control-path": act_control_path, "control-list": act_control_list,
           "control-show": act_control_show}


def query_main(inv: Invocation, args: list[str], progname: str = "dpkg-query") -> int:
    """Run dpkg-query with ``args`` (also what ``dpkg -s/-L/-l/-S/-p`` execute)."""
    tool = Tool(inv, progname, HINT)
    state = {"format": DEFAULT_FORMAT}

    def setter(o: Opt, v):
        if o.key == "showformat":
            state["format"] = v
        elif o.key == "load-avail":
            raise Defer("dpkg-query --load-avail reads the available file (not modelled)")

    try:
        rest = tool.parse(args, OPTS, setter)
        if tool.action is None:
            tool.badusage("need an action option")
        key = tool.action.key
        if key not in ACTIONS:
            raise Defer(f"dpkg-query --{key} is not modelled")
        try:
            qdb = QueryDB(tool)
        except CorruptImageError as e:
            raise Defer(f"dpkg-query: the package database cannot be read ({e})") from None
        if key == "show":
            rc = act_show(tool, qdb, rest, state["format"])
        else:
            rc = ACTIONS[key](tool, qdb, rest)
        return 1 if rc else 0
    except DpkgExit as e:
        return e.status


def dpkg_query(inv: Invocation) -> int:
    """The ``dpkg-query`` model."""
    return query_main(inv, inv.argv[1:])
