"""``ckbcomp`` (console-setup 1.221, Debian 12): an XKB keyboard description compiled into
the Linux console keymap that ``loadkeys`` reads, as ``setupcon`` runs it::

    ckbcomp -backspace del|bs [-charmap CHARMAP] [-rules RULES] -model MODEL LAYOUT VARIANT OPTIONS

The model follows ``/usr/bin/ckbcomp`` step by step and runs only when the image's program
is that very text (SHA-256 checked); its data tables are read from it (``ckbtables``):

- arguments: ``-charmap``, ``-ccharmap``, ``-I DIR``, ``-keycodes``, ``-symbols``, ``-rules``,
  ``-model``, ``-layout``, ``-variant``, ``-option``, ``-compact``, ``-backspace bs|del``,
  then LAYOUT, VARIANT and OPTIONS (comma lists, white space removed, Perl's ``split``);
- the rules file chooses keycodes and symbols (``xkbrules``); the files are read from
  ``/etc/console-setup/ckb``, ``INSTALLDIR/etc/console-setup/ckb``,
  ``/usr/local/share/X11/xkb``, ``/usr/share/X11/xkb``, ``/etc/X11/xkb`` (``xkb``);
- ``-charmap``: the ACM table ``INSTALLDIR/share/consoletrans/CHARMAP[.acm][.gz]`` (or
  ``/usr/share/consoletrans``, or the name itself), gzip-compressed or not; keysyms become its
  bytes (``0xNN``) instead of ``U+NNNN``;
- the keymap of the AT and evdev key codes (``keymap``), then ``strings as usual``, the
  charmap's ``compose.CHARMAP.inc`` and ``remap.inc`` from ``/etc/console-setup`` or
  ``INSTALLDIR/etc/console-setup``, as ckbcomp's ``system("cat FILE")`` prints them.

Deferred, with the reason: ``-freebsd``, ``-v``, ``-help``, an option without its value,
everything ckbcomp dies on (unknown option, no keycodes or symbols, missing file, syntax
error; Perl's exit status then depends on ``$!``), what would make Perl warn about an
undefined value, Amiga, Atari and Sun key codes, and results that would depend on Perl's
hash order.
"""

from __future__ import annotations

import gzip
import posixpath
import re
import stat as _stat
import zlib

from nuwa.script.commands.console.ckbtables import TABLES
from nuwa.script.commands.console.keymap import VOID, KeymapWriter
from nuwa.script.commands.console.xkb import XkbReader
from nuwa.script.commands.console.xkbrules import components, perl_true
from nuwa.script.context import Defer, Invocation

_SPACE = re.compile(r"[ \t\n\r\f\v]", re.ASCII)
#: Perl's ``\s`` on a character string (the ACM file is read through ``:utf8``)
_USPACE = "[ \t\n\r\f\v\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_ACM_LINE = re.compile(f"{_USPACE}*0x([0-9a-fA-F]{{1,2}}){_USPACE}+'([^']+)'{_USPACE}*")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._+-]+", re.ASCII)


def _split_commas(text: str) -> list[str]:
    """``split (/,/, $text, -1)`` after white space was removed: nothing for ''."""
    return text.split(",") if text != "" else []


class _Args:
    def __init__(self):
        self.charmap = self.compose_charmap = self.keycodes = self.symbols = None
        self.rules = self.model = None
        self.layouts: list[str] = []
        self.variants: list[str] = []
        self.options: list[str] = []
        self.compact = False
        self.backspace = ""
        self.xdirs_front: list[str] = []


def _parse_args(argv: list[str]) -> _Args:
    a = _Args()
    args = list(argv)

    def value(name: str) -> str:
        if not args:
            raise Defer(f"ckbcomp: -{name} without its value (Perl warns)")
        return args.pop(0)

    def once(current, name: str) -> None:
        """ckbcomp's ``if ($x)`` / ``if (@x)`` before taking an option a second time."""
        taken = bool(current) if isinstance(current, list) else perl_true(current)
        if taken:
            raise Defer(f"ckbcomp: -{name} given twice (ckbcomp dies)")

    while args:
        arg = args.pop(0)
        if arg.startswith("-"):
            opt = arg[1:]
            if opt in ("charmap", "ccharmap", "keycodes", "symbols", "rules"):
                attr = "compose_charmap" if opt == "ccharmap" else opt
                once(getattr(a, attr), opt)
                setattr(a, attr, value(opt))
            elif re.fullmatch(r"v(erbose)?", opt):
                raise Defer("ckbcomp: -verbose (its messages are not modelled)")
            elif opt.startswith("I"):
                a.xdirs_front.insert(0, opt[1:])
            elif opt == "model":
                once(a.model, opt)
                a.model = _SPACE.sub("", value(opt))
            elif opt in ("layout", "variant"):
                target = a.layouts if opt == "layout" else a.variants
                once(target, opt)
                target[:] = _split_commas(_SPACE.sub("", value(opt)))
            elif opt == "option":
                a.options += _split_commas(_SPACE.sub("", value(opt)))
            elif opt in ("help", "-help", "?"):
                raise Defer("ckbcomp: -help (its usage text is not modelled)")
            elif opt == "compact":
                a.compact = True
            elif opt == "freebsd":
                raise Defer("ckbcomp: -freebsd (FreeBSD keymaps are not modelled)")
            elif opt == "backspace":
                a.backspace = value(opt)
                if a.backspace not in ("del", "bs"):
                    raise Defer("ckbcomp: -backspace neither del nor bs (ckbcomp dies)")
            else:
                raise Defer(f"ckbcomp: unknown option {arg} (ckbcomp dies)")
        else:
            items = _split_commas(_SPACE.sub("", arg))
            if not a.layouts:
                a.layouts = items or ["us"]
            elif not a.variants:
                a.variants = items or [""]
            else:
                a.options += items
    return a


class _Files:
    """Perl's ``-f``, ``-d`` and reads on the image."""

    def __init__(self, inv: Invocation):
        self.inv = inv

    def mode(self, path: str) -> int | None:
        try:
            return self.inv.fs.stat(self.inv.path(path)).st_mode
        except (OSError, ValueError):
            return None

    def is_file(self, path: str) -> bool:
        m = self.mode(path)
        return m is not None and _stat.S_ISREG(m)

    def is_dir(self, path: str) -> bool:
        m = self.mode(path)
        return m is not None and _stat.S_ISDIR(m)

    def read(self, path: str) -> bytes:
        try:
            return self.inv.fs.read_bytes(self.inv.path(path))
        except OSError as e:
            raise Defer(f"ckbcomp: {path} cannot be read ({e.strerror})") from None


def _program(inv: Invocation) -> str:
    """The path Perl's ``$0`` holds: the program as the shell found it."""
    name = inv.argv[0]
    if "/" in name:
        return name
    for d in inv.env.get("PATH", "").split(":"):
        cand = posixpath.join(inv.path(d or "."), name)
        try:
            st = inv.fs.stat(cand)
        except (OSError, ValueError):
            continue
        if _stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            if not d.startswith("/"):
                # Perl's $0 is then relative, and ckbcomp's installation directory with it
                raise Defer(f"ckbcomp: found through the relative PATH entry {d!r}")
            return cand
    raise Defer(f"ckbcomp: {name} not found on PATH")


def _installdir(program: str, files: _Files) -> str:
    d = re.sub(r"/[^/]*\Z", "", program)
    if d.endswith("/bin"):
        d = d[:-4]
    else:
        d += "/.."
    if d == "" or not files.is_dir(f"{d}/bin"):
        d = "/usr"
    return d


def _acm_table(charmap: str, installdir: str, files: _Files) -> dict[int, int]:
    acm = None
    for cand in (f"{installdir}/share/consoletrans/{charmap}", f"{installdir}/share/consoletrans/{charmap}.gz",
                 f"{installdir}/share/consoletrans/{charmap}.acm",
                 f"{installdir}/share/consoletrans/{charmap}.acm.gz", f"/usr/share/consoletrans/{charmap}",
                 f"/usr/share/consoletrans/{charmap}.gz", f"/usr/share/consoletrans/{charmap}.acm",
                 f"/usr/share/consoletrans/{charmap}.acm.gz", charmap):
        if files.is_file(cand):
            acm = cand
            break
    if acm is None:
        raise Defer(f"ckbcomp: no ACM for {charmap} exists (ckbcomp dies)")
    data = files.read(acm)
    if acm.endswith("gz"):
        if not _SAFE_NAME.fullmatch(posixpath.basename(acm)) or not re.fullmatch(r"[A-Za-z0-9._+/-]+", acm):
            raise Defer(f"ckbcomp: zcat {acm!r} through the shell")
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise Defer(f"ckbcomp: {acm} is not what zcat reads") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Defer(f"ckbcomp: {acm} is not UTF-8 (Perl's :utf8 layer)") from None
    table: dict[int, int] = {}
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        cut = line.find("#")
        if cut >= 0:
            line = line[:cut]
        if not re.search(f"[^{_USPACE[1:-1]}]", line):
            continue
        m = _ACM_LINE.fullmatch(line)
        if not m:
            raise Defer(f"ckbcomp: a line of {acm} ckbcomp dies on")
        table[ord(m.group(2)[0])] = int(m.group(1), 16)
    return table


def _xkbsym_table(tables, compact: bool, backspace: str) -> dict:
    """The final ``%xkbsym_table`` of a Linux run."""
    table = dict(tables.xkbsym_base)
    table.update(tables.xkbsym_linux)
    if compact:
        table.update({"Mode_switch": "AltGr", "ISO_Group_Shift": "AltGr", "ISO_Group_Latch": "AltGr"})
        for name in ("ISO_Group_Lock", "ISO_Next_Group", "ISO_Next_Group_Lock", "ISO_Prev_Group",
                     "ISO_Prev_Group_Lock", "ISO_First_Group", "ISO_First_Group_Lock", "ISO_Last_Group",
                     "ISO_Last_Group_Lock"):
            table[name] = "AltGr_Lock"
    if backspace == "bs":
        table["BackSpace"], table["Delete"] = "BackSpace", "Delete"
    return table


def _arch(keycodes: str) -> str:
    for arch, pattern in (("ataritt", r"ataritt(\([^)]*\))?"), ("amiga", r"amiga(\([^)]*\))?"),
                          ("sun", r"sun(\(type[45][^)]*\))?"), ("evdev", r"evdev(\([^)]*\))?")):
        if re.search(r"(^|\+|\|)" + pattern + r"($|\+|\|)", keycodes, re.ASCII):
            return arch
    return "at"


def _include_text(dirs: tuple[str, ...], name: str, files: _Files) -> bytes:
    """What ``system("cat FILE")`` prints for the first of ``dirs``/NAME that is a file."""
    for d in dirs:
        path = f"{d}/{name}"
        if files.is_file(path):
            if not re.fullmatch(r"[A-Za-z0-9._+/-]+", path):
                raise Defer(f"ckbcomp: cat {path!r} through the shell")
            return files.read(path)
    return b""


def ckbcomp(inv: Invocation) -> int:
    """``ckbcomp [args] [LAYOUT [VARIANT [OPTION...]]]``: mirrors console-setup 1.221's
    ``/usr/bin/ckbcomp`` for Linux; see the module note."""
    files = _Files(inv)
    program = _program(inv)
    tables = TABLES(files.read(program))
    a = _parse_args(inv.argv[1:])
    installdir = _installdir(program, files)
    xdirs = a.xdirs_front + ["/etc/console-setup/ckb", f"{installdir}/etc/console-setup/ckb",
                             "/usr/local/share/X11/xkb", "/usr/share/X11/xkb", "/etc/X11/xkb"]
    rules = a.rules if perl_true(a.rules) else "base"
    model = a.model if perl_true(a.model) else "pc104"
    backspace = a.backspace or "del"
    xkbsym = _xkbsym_table(tables, a.compact, backspace)
    warnings: list[str] = []
    reader = XkbReader(inv.fs, [inv.path(d) if d else d for d in xdirs],
                       {k for k, v in xkbsym.items() if v == "NoSymbol"}, warnings.append)
    keycodes, symbols = a.keycodes, a.symbols
    if a.layouts:
        variants = a.variants + [""] * (len(a.layouts) - len(a.variants))
        path = reader.xfilename(f"rules/{rules}")
        r_keycodes, r_symbols = components(reader.load(path).decode("latin-1"), rules, model, a.layouts, variants,
                                           a.options)
        if not perl_true(keycodes):
            keycodes = r_keycodes
        if not perl_true(symbols):
            symbols = r_symbols
    if not perl_true(keycodes) or not perl_true(symbols):
        raise Defer("ckbcomp: no keycodes or no symbols to read (ckbcomp dies)")
    arch = _arch(keycodes)
    if arch not in ("at", "evdev"):
        raise Defer(f"ckbcomp: {arch} key codes (only AT and evdev are modelled)")
    acmtable = _acm_table(a.charmap, installdir, files) if perl_true(a.charmap) else None
    reader.include_file("keycodes", keycodes)
    reader.resolve_aliases()
    reader.include_file("symbols", symbols)
    table = reader.symbols
    # Pause - 110, Break - 114, PrintScreen - 111, SysRq - 92 (reading autovivifies 110, 111)
    for group in range(4):
        for src, dst in (("110", "114"), ("111", "92")):
            level = reader.level_of(src, group, 1)
            if level is not None:
                groups = table.setdefault(dst, [])
                groups.extend([None] * (group + 1 - len(groups)))
                groups[group] = [level]
    for key, groups in table.items():
        for g, levels in enumerate(groups):
            if levels is None:
                groups[g] = []
            else:
                groups[g] = ["NoSymbol" if v is None else v for v in levels]
        reader.types.setdefault(key, "DEFAULT")
    writer = KeymapWriter(xkbsym, acmtable, a.compact, warnings.append)
    non_latin = ":2" in symbols
    out = ["keymaps 0-4,6,8,10,12,14\n" if a.compact else "keymaps 0-127\n"]
    for key in sorted(table, key=int):
        kernel_code = tables.at_scancodes.get(key) if arch == "at" else int(key) - 8
        if kernel_code is None or kernel_code < 0:
            continue
        vector = writer.flatten(table[key], reader.types[key])
        if kernel_code == 99:
            for coord in (0, 1, 16, 17, 32, 33, 48, 49):
                vector[coord] = VOID
        elif kernel_code in (83, 111):
            for coord in (6, 12, 14, 22, 28, 30, 38, 44, 46, 54, 60, 62):
                vector[coord] = "Boot"
        out.append(writer.line(kernel_code, vector, non_latin))
    keymap = "".join(out)
    if writer.broken_caps:
        keymap = keymap.replace("Caps_Lock", "CtrlL_Lock")
    inv.err("".join(warnings).encode("latin-1"))  # the XKB files' bytes, as Perl prints them
    inv.out(keymap.encode("latin-1"))
    inv.out(b"strings as usual\n")
    compose = a.compose_charmap if perl_true(a.compose_charmap) else a.charmap
    if perl_true(compose):
        inv.out(_include_text(("/etc/console-setup", f"{installdir}/etc/console-setup"),
                              f"compose.{compose}.inc", files))
    inv.out(_include_text(("/etc/console-setup", f"{installdir}/etc/console-setup"), "remap.inc", files))
    return 0
