"""A model of glibc's ``locale`` program (Debian 12: glibc 2.36), answered from the image.

``locale`` with no operand prints the locale variables of its environment (``LANG``,
``LANGUAGE``, each ``LC_*`` category, ``LC_ALL``) as shell assignments, exactly as
``show_locale_vars`` in glibc's ``locale/programs/locale.c`` does: a category set in the
environment (and no ``LC_ALL``) is printed as is, an implied one in double quotes. Before
that it calls ``setlocale(LC_CTYPE, "")``, ``setlocale(LC_MESSAGES, "")`` and
``setlocale(LC_ALL, "")`` and warns on stderr for each that fails; whether a locale can be
loaded is decided from the image's ``/usr/lib/locale``: the archive ``locale-archive`` (its
name table; layout after glibc's ``locale/locarchive.h``) and the per-locale directories.
Names glibc might resolve through its fallback variants (``en_US.UTF-8`` loaded from an
``en_US`` directory) are deferred rather than guessed.

``locale -a`` lists the locales of the image (C, POSIX, the archive's names and the
directories holding ``LC_CTYPE``), sorted as glibc's tree walk prints them.
``locale charmap`` is answered for C/POSIX and UTF-8 locales; other keywords are deferred.

Also here: ``gettext`` (gettext-base 0.21 of Debian 12): translate a message, or print it unchanged.

Shell scripts print their messages through ``gettext`` (``grub-mkconfig``'s ``gettext_printf``
and ``grub_warn``, ``gettext.sh``). Under the C or POSIX locale -- what maintainer scripts and
``update-grub`` run with unless the image sets another -- GNU gettext returns the message id
itself, so the model prints it; under any other locale a translation catalogue may apply and
the invocation is deferred. Mirrors ``gettext-runtime/src/gettext.c`` (``main``, ``expand_escape``).
"""

from __future__ import annotations

import stat as _stat
import struct

from nuwa.script.commands import _args
from nuwa.script.context import Defer, Invocation

LOCALEDIR = "/usr/lib/locale"
#: glibc's category order (locale/categories.def without LC_ALL), as ``locale`` prints them
CATEGORIES = ("LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER",
              "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION")

# locale/locarchive.h: struct locarhead (14 uint32, host byte order) and struct namehashent
AR_MAGIC = 0xDE020109
_LOCARHEAD = struct.Struct("<14I")
_NAMEHASHENT = struct.Struct("<3I")
_ARCHIVE_MAX = 256 << 20


def archive_names(inv: Invocation) -> set[str]:
    """The locale names in the image's ``locale-archive`` (empty set when there is none).

    ``locarhead``: magic, serial, namehash_offset, namehash_used, namehash_size,
    string_offset, ...; ``namehashent``: hashval, name_offset, locrec_offset (0 = free slot).
    A little-endian archive is read (every Debian architecture Nuwa patches); anything else
    is deferred.
    """
    cache = inv.state.setdefault("locale-archive", {})
    if "names" in cache:
        return cache["names"]
    try:
        h = inv.fs.open_handle(f"{LOCALEDIR}/locale-archive")
    except (OSError, ValueError):
        cache["names"] = set()
        return cache["names"]
    try:
        size = h.size()
        if size > _ARCHIVE_MAX:
            raise Defer("locale-archive larger than the model reads")
        data = h.pread(0, size)
    finally:
        h.close()
    if len(data) < _LOCARHEAD.size or _LOCARHEAD.unpack_from(data)[0] != AR_MAGIC:
        raise Defer("locale-archive: not a little-endian glibc archive")
    head = _LOCARHEAD.unpack_from(data)
    nh_off, nh_size = head[2], head[4]
    names = set()
    for i in range(nh_size):
        off = nh_off + i * _NAMEHASHENT.size
        if off + _NAMEHASHENT.size > len(data):
            raise Defer("locale-archive: name table past the end of the file")
        _hash, name_off, rec_off = _NAMEHASHENT.unpack_from(data, off)
        if rec_off == 0:
            continue
        end = data.find(b"\0", name_off)
        if name_off >= len(data) or end < 0:
            raise Defer("locale-archive: name past the end of the file")
        names.add(data[name_off:end].decode("utf-8", "surrogateescape"))
    cache["names"] = names
    return names


def normalize_codeset(codeset: str) -> str:
    """glibc ``_nl_normalize_codeset``: alphanumerics only, lower case, ``iso`` before digits."""
    kept = "".join(c.lower() for c in codeset if c.isascii() and c.isalnum())
    return "iso" + kept if kept.isdigit() else kept


def normalize_name(name: str) -> str:
    """A locale name with its codeset normalized (``en_US.UTF-8`` -> ``en_US.utf8``)."""
    base, at, mod = name.partition("@")
    lang, dot, cs = base.partition(".")
    if not dot or not cs:
        return name
    return f"{lang}.{normalize_codeset(cs)}{at}{mod}"


def loadable(inv: Invocation, name: str, category: str) -> bool:
    """Whether ``setlocale(category, "")`` succeeds for locale ``name`` in the image."""
    if name in ("", "C", "POSIX"):
        return True
    if "/" in name or "LOCPATH" in inv.env:
        raise Defer(f"locale {name!r}: a path or LOCPATH")
    norm = normalize_name(name)
    if norm in archive_names(inv):
        return True
    for n in (name, norm):
        if inv.fs.exists(f"{LOCALEDIR}/{n}/{category}"):
            return True
    # glibc would try less specific variants (language_territory, language) in directories
    lang = name.split("_")[0].split(".")[0].split("@")[0]
    try:
        dirs = inv.fs.listdir(LOCALEDIR)
    except (OSError, ValueError):
        dirs = []
    if any(d == lang or d.startswith((lang + "_", lang + ".", lang + "@")) for d in dirs):
        raise Defer(f"locale {name!r}: glibc's fallback variants of the name")
    return False


def effective(env: dict[str, str], category: str) -> str:
    """The locale name ``setlocale(category, "")`` uses: LC_ALL, then the category, then LANG."""
    for var in ("LC_ALL", category, "LANG"):
        v = env.get(var, "")
        if v:
            return v
    return "C"


_SHELL_ESC = set(" \t\n'\"\\$`;&|<>()~")
_DQUOTE_ESC = set("\"\\$`")


def assignment(name: str, value: str, dquote: bool) -> str:
    """glibc ``print_assignment``: ``NAME=value`` escaped for the shell, or ``NAME="value"``."""
    esc = _DQUOTE_ESC if dquote else _SHELL_ESC
    body = "".join("\\" + c if c in esc else c for c in value)
    return f'{name}="{body}"\n' if dquote else f"{name}={body}\n"


_LOCALE = _args.spec("amckvh", {"all-locales": "a", "charmaps": "m", "category-name": "c", "keyword-name": "k",
                               "verbose": "v", "help": "h", "version": ("V", _args.NO)})


def locale(inv: Invocation) -> int:
    """``locale``, ``locale -a``, ``locale charmap`` (see the module docstring)."""
    try:
        opts, ops = _args.parse(inv, _LOCALE)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = {k for k, _ in opts}
    if keys - {"a"}:
        raise Defer(f"locale {' '.join(inv.argv[1:])}: option not modelled")
    env = inv.env
    status = 0
    # main(): the three setlocale calls and their warnings come first
    warn = []
    for cat in ("LC_CTYPE", "LC_MESSAGES"):
        if not loadable(inv, effective(env, cat), cat):
            warn.append(cat)
    if "a" in keys:
        # ``-a`` sets only LC_COLLATE before listing (for the sort), never LC_ALL
        coll = effective(env, "LC_COLLATE")
        if not loadable(inv, coll, "LC_COLLATE"):
            warn.append("LC_COLLATE")
        elif coll not in ("C", "POSIX") and not normalize_name(coll).startswith("C.utf8"):
            # the names are sorted with strcoll: only the C collations are byte order
            raise Defer(f"locale -a sorted in the {coll!r} collation")
    elif not all(loadable(inv, effective(env, c), c) for c in CATEGORIES):
        warn.append("LC_ALL")
    for cat in warn:
        inv.err(f"{inv.name}: Cannot set {cat} to default locale: No such file or directory\n")
    if "a" in keys:
        if ops:
            raise Defer("locale -a with operands")
        names = {"C", "POSIX"} | archive_names(inv)
        try:
            entries = inv.fs.listdir(LOCALEDIR)
        except (OSError, ValueError):
            entries = []
        for d in entries:
            try:
                if _stat.S_ISREG(inv.fs.stat(f"{LOCALEDIR}/{d}/LC_CTYPE").st_mode):
                    names.add(d)
            except (OSError, ValueError):
                pass
        for n in sorted(names, key=lambda s: s.encode("utf-8", "surrogateescape")):
            inv.out(n + "\n")
        return status
    if not ops:
        lcall, lang = env.get("LC_ALL", ""), env.get("LANG", "")
        out = [assignment("LANG", lang, False), f"LANGUAGE={env.get('LANGUAGE', '')}\n"]
        for cat in CATEGORIES:
            val = env.get(cat)
            if lcall or val is None:
                out.append(assignment(cat, lcall or lang or "POSIX", True))
            else:
                out.append(assignment(cat, val, False))
        out.append(assignment("LC_ALL", lcall, False))
        inv.out("".join(out))
        return status
    for op in ops:
        if op != "charmap":
            raise Defer(f"locale {op}: keyword queries other than charmap are not modelled")
        name = effective(env, "LC_CTYPE")
        if not loadable(inv, name, "LC_CTYPE") or name in ("C", "POSIX"):
            inv.out("ANSI_X3.4-1968\n")
            continue
        cs = normalize_name(name).partition(".")[2].partition("@")[0]
        if cs != "utf8":
            raise Defer(f"locale charmap of {name!r}: read from the compiled locale")
        inv.out("UTF-8\n")
    return status


# --- gettext (gettext-base 0.21) -------------------------------------------------------------

#: gettext.c ``expand_escape``: the escapes -e understands
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def message_locale(env: dict[str, str]) -> str:
    """The LC_MESSAGES locale setlocale(3) would pick from ``env`` (LC_ALL, LC_MESSAGES, LANG)."""
    for k in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(k):
            return env[k]
    return "C"


def _expand(s: str) -> tuple[str, bool]:
    """``-e``: backslash escapes; returns (text, whether a ``\\c`` was seen: it is dropped and
    suppresses the final newline of ``-s``, as gettext.c's ``expand_escape`` does)."""
    out, i, stop = [], 0, False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "c":
                stop = True
                i += 2
                continue
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            if n in "01234567":
                j, v = i + 1, 0
                while j < len(s) and j < i + 4 and s[j] in "01234567":
                    v = v * 8 + int(s[j])
                    j += 1
                out.append(chr(v))
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out), stop


def gettext(inv: Invocation) -> int:
    """The ``gettext`` model (see the module note)."""
    args = inv.argv[1:]
    escapes = newline_mode = False
    no_newline = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        a = args.pop(0)
        if a == "--":
            break
        if a.startswith("--domain=") or a == "-d" or (a.startswith("-d") and len(a) > 2):
            if a == "-d":
                if not args:
                    raise Defer("gettext -d without a domain")
                args.pop(0)
            continue
        if set(a[1:]) <= set("eEns"):
            escapes = escapes or "e" in a
            escapes = escapes and "E" not in a
            no_newline = no_newline or "n" in a
            newline_mode = newline_mode or "s" in a
            continue
        raise Defer(f"gettext {a}: option not modelled")
    loc = message_locale(inv.env)
    if loc not in ("C", "POSIX") and not loc.startswith("C."):
        raise Defer(f"gettext: translations for the locale {loc!r} are not modelled")
    if not newline_mode:
        if not args:
            inv.err("gettext: missing arguments\n")
            return 1
        if len(args) > 2:
            inv.err(f"gettext: too many arguments\n")
            return 1
        msg = args[-1]  # [TEXTDOMAIN] MSGID: the C locale returns MSGID untranslated
        if escapes:
            msg, _ = _expand(msg)
        inv.out(msg)
        return 0
    # -s: like echo, every argument a message, a newline unless -n
    parts = []
    for a in args:
        if escapes:
            a, stop = _expand(a)
            no_newline = no_newline or stop
        parts.append(a)
    inv.out(" ".join(parts) + ("" if no_newline else "\n"))
    return 0
