"""``install-info`` (texinfo 6.8): its command line and its files (see :mod:`installinfo`).

Modelled after ``install-info/install-info.c`` (``main`` and the functions it calls; the text
rules are in :mod:`infodir`):

- the options of its ``getopt_long`` table (``--info-dir``/``--dir-file``, ``--remove``/
  ``--delete``, ``--remove-exactly``, ``--section``, ``--regex``, ``--entry``/``--item``,
  ``--name``/``--menuentry``, ``--description``, ``--defsection``, ``--calign``/``--align``/
  ``--max-width``, ``--add-once``, ``--append-new-sections``, ``--keep-old``, ``--no-indent``,
  ``--quiet``/``--silent``, ``--test``/``--dry-run``, ``--debug``) and the old Debian form
  ``--section REGEX TITLE`` (``munge_old_style_debian_options``);
- ``open_possibly_compressed_file``: FILE, else FILE.gz/.xz/.bz2/.lz/.lzma; the first 13
  bytes decide the decompressor (by magic, not by name), run as the image's ``gzip -d`` or
  ``xz -d`` (their models); a file shorter than 13 bytes is "empty"; a missing or short dir
  file is (re)created from the built-in template;
- the merge: entries replace same-named ones in their sections, go in menu order, new
  sections go in alphabetical place (or at the end), entries are re-laid out
  (``format_entry``); ``--remove`` deletes an info file's lines and then empty sections;
- warnings ("no info dir entry in `FILE'", "no entries found for `FILE'; nothing deleted"),
  fatal errors (status 1) and usage errors as the program prints them.

Deferred, before anything is written: ``--help``/``--version``, options it does not know
(glibc's message is not modelled), a dir file that is itself compressed (the program writes
it back through the compressor), bzip2/lzip/lzma input, a decompressor the image lacks or
that fails, a locale whose messages the image translates (texinfo or libc catalogs), a
Turkish or Azeri one, non-ASCII text under any locale other than C, a regular expression
glibc rejects (its message),
NUL bytes in a dir file or an entry, and the forms whose C behaviour is undefined (an entry
without ". " after its name, --calign 1, --max-width not above --align).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re

from nuwa.script.commands import _args
from nuwa.script.commands._regex import RegexError, compile_posix
from nuwa.script.commands.registries import infodir as ii
from nuwa.script.context import Defer, Invocation, strerror

PROG = "install-info"
#: install-info.c's ``longopts`` table, in its order (glibc lists ambiguous names in it)
_LONG = {
    "add-once": "1", "align": "A", "append-new-sections": "a", "calign": "C", "debug": ("g", _args.NO),
    "delete": "r", "defentry": "E", "defsection": ("S", _args.REQ), "dir-file": "d", "entry": "e",
    "name": "t", "menuentry": "t", "description": "c", "help": "h", "no-indent": "I",
    "infodir": ("D", _args.REQ), "info-dir": ("D", _args.REQ), "info-file": "i", "item": "e",
    "keep-old": "k", "maxwidth": "W", "max-width": "W", "quiet": ("q", _args.NO), "remove": "r",
    "remove-exactly": ("x", _args.NO), "section": "s", "regex": ("R", _args.REQ),
    "silent": ("q", _args.NO), "test": ("n", _args.NO), "dry-run": ("n", _args.NO),
    "version": ("V", _args.NO)}
_SPEC = _args.spec("i:d:e:s:t:E:c:C:W:A:hHrk1Ia", _LONG)
_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class Exit(Exception):
    """The program exits with ``status`` (after what it printed)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Run:
    """One run's state: the C globals and ``main``'s locals that several steps share."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.add_all = True
        self.alphabetical = True
        self.keep_old = self.chicken = self.quiet = self.debug = False
        self.delete = self.remove_exactly = False
        self.indent = True
        self.regex = None
        self.default_section: bytes | None = None
        self.infile: str | None = None
        self.dirfile: str | None = None
        self.calign = self.align = self.maxwidth = -1
        self.sections: ii.Section | None = None
        #: path -> the dir file created in memory (None: removed); written only by flush()
        self.pending: dict[str, bytes | None] = {}
        self.removed: list[str] = []
        #: (path, bytes) of the dir file to write at the end
        self.output: tuple[str, bytes] | None = None
        self.entries: list[ii.Entry] = []

    def read(self, path: str) -> bytes:
        """A file's bytes as the run sees them (its pending dir file first)."""
        data = self.pending.get(path)
        return data if data is not None else self.inv.fs.read_bytes(path)

    def flush(self) -> int:
        """Write what the run decided: removals, created dir files, then the new dir file;
        the exit status 1 (with perror's line) if that last write fails, else 0."""
        fs = self.inv.fs
        for path in self.removed:
            fs.unlink(path)
        for path, data in self.pending.items():
            if data is not None:
                fs.write_bytes(path, data, 0o666 & ~self.inv.umask)
        if self.output is not None:
            name, data = self.output
            try:
                fs.write_bytes(self.inv.path(name), data, 0o666 & ~self.inv.umask)
            except OSError as e:
                self.inv.err(f"{name}: {strerror(e)}\n")
                return 1
        return 0

    # ---- messages --------------------------------------------------------------------------
    def fatal(self, msg: str | bytes) -> None:
        """install-info's ``fatal``: ``install-info: MSG`` and exit 1."""
        self.inv.err(f"{PROG}: ".encode() + (msg if isinstance(msg, bytes) else msg.encode("utf-8", "surrogateescape"))
                     + b"\n")
        raise Exit(1)

    def warning(self, msg: str) -> None:
        """install-info's ``warning`` (printed also under --quiet, which only its callers check)."""
        self.inv.err(f"{PROG}: warning: {msg}\n")

    def help_hint(self) -> None:
        """``suggest_asking_for_help``."""
        self.inv.err(f"\tTry `{PROG} --help' for a complete list of options.\n")
        raise Exit(1)

    def pfatal(self, err: int, name: str) -> None:
        """``pfatal_with_name`` (errno 0: "empty file")."""
        if err == 0:
            self.fatal(f"{name}: empty file")
        self.fatal(f"{strerror(OSError(err, ''))} for {name}")


def _may_exist(inv: Invocation, value: str) -> bool:
    """Whether ``setlocale`` could find locale ``value`` in the image (conservatively: any
    locale when the image has a locale archive)."""
    if value.replace("-", "").lower() in ("c.utf8",):
        return inv.fs.exists("/usr/lib/locale/C.utf8")
    base, _, codeset = value.partition(".")
    names = {value, base + "." + codeset.replace("-", "").lower()} if codeset else {value}
    return inv.fs.exists("/usr/lib/locale/locale-archive") or any(
        inv.fs.exists(f"/usr/lib/locale/{n}") for n in names)


def locale_non_c(inv: Invocation) -> bool:
    """``setlocale (LC_ALL, "")``: True when a locale other than C may be in effect, in which
    the model requires ASCII text (its case folding and byte order are then the C locale's);
    Defer when messages would be translated (a ``texinfo`` or ``libc`` catalog for the
    language) or the locale folds ASCII letters its own way (Turkish, Azeri)."""
    env = inv.env
    ctype = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    messages = env.get("LC_ALL") or env.get("LC_MESSAGES") or env.get("LANG") or ""
    non_c = False
    for v in (ctype, messages):
        if v in ("", "C", "POSIX") or not _may_exist(inv, v):
            continue
        non_c = True
        if v.split("@")[0].split(".")[0].split("_")[0] in ("tr", "az"):
            raise Defer(f"install-info: the locale {v!r} folds ASCII letters its own way")
    if messages not in ("", "C", "POSIX") and _may_exist(inv, messages) \
            and not messages.replace("-", "").lower().startswith("c."):
        base = messages.split("@")[0]
        langs = {base, base.split(".")[0], base.split(".")[0].split("_")[0]}
        langs |= {lang for lang in env.get("LANGUAGE", "").split(":") if lang}
        for lang in sorted(langs):
            for domain in ("texinfo", "libc"):
                if inv.fs.exists(f"/usr/share/locale/{lang}/LC_MESSAGES/{domain}.mo"):
                    raise Defer(f"install-info: messages in the locale {messages!r} are translated ({domain}.mo)")
    return non_c


def _munge(inv: Invocation, argv: list[str]) -> list[str]:
    """``munge_old_style_debian_options``: ``--section REGEX TITLE`` (a TITLE that is neither an
    option nor an existing file) becomes ``--regex=REGEX --section=TITLE --add-once``."""
    out: list[str] = []
    munge = False
    i = 0
    while i < len(argv):
        if argv[i] == "--section":
            if i + 2 >= len(argv):
                return argv
            regex, title = argv[i + 1], argv[i + 2]
            i += 2
            if title.startswith("-") or (title != "" and inv.fs.exists(inv.path(title))):  # fopen ("") fails
                break  # the C leaves its loop here: later arguments are dropped if it munged
            munge = True
            out += [f"--regex={regex}", f"--section={title}", "--add-once"]
        else:
            out.append(argv[i])
        i += 1
    return out if munge else argv


def _number(run: Run, value: str) -> int:
    """``strtoul (optarg, &end, 0)`` then ``<= 0`` rejected, as the -A/-C/-W cases check."""
    m = _NUMBER.match(value)
    if not m:
        run.help_hint()
    digits = m.group(2)
    n = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits.startswith("0") else int(digits)
    if m.group(1) == "-" and n:
        run.help_hint()
    if n >= 2**31:
        raise Defer(f"install-info: the column {value!r} overflows the program's int")
    if n <= 0:
        run.help_hint()
    return n


def options(run: Run) -> None:
    """The ``getopt_long`` loop of ``main`` and the operands after it."""
    inv = run.inv
    argv = _munge(inv, list(inv.argv))
    try:
        opts, operands = _args.parse(inv, _SPEC, argv[1:])
    except _args.UsageError as e:
        text = e.text
        if "is ambiguous" in text:
            text = _ambiguous(text)
        inv.err(f"{argv[0]}: {text}\n")
        run.help_hint()
    for key, val in opts:
        if key == "1":
            run.add_all = False
        elif key == "a":
            run.alphabetical = False
        elif key in "ACW":
            n = _number(run, val)
            setattr(run, {"A": "align", "C": "calign", "W": "maxwidth"}[key], n)
        elif key == "c":
            _description(run, val)
        elif key in "dD":
            if run.dirfile is not None:
                inv.err(f"{PROG}: already have dir file: {run.dirfile}\n")
                run.help_hint()
            run.dirfile = val if key == "d" else val + "/dir"
        elif key == "t":
            _name(run, val)
        elif key == "e":
            text = val.encode("utf-8", "surrogateescape")
            if not text.endswith(b"\n"):
                text += b"\n"
            run.entries.insert(0, ii.Entry(text))
        elif key == "E":
            pass  # --defentry: kept in a list nothing reads
        elif key == "g":
            run.debug = True
        elif key in "hHV":
            raise Defer("install-info: --help/--version text is not modelled")
        elif key == "i":
            if run.infile is not None:
                inv.err(f"{PROG}: Specify the Info file only once.\n")
                run.help_hint()
            run.infile = val
        elif key == "I":
            run.indent = False
        elif key == "k":
            run.keep_old = True
        elif key == "n":
            run.chicken = True
        elif key == "q":
            run.quiet = True
        elif key == "r":
            run.delete = True
        elif key == "R":
            if run.regex is not None:
                run.warning(f"Extra regular expression specified, ignoring `{val}'")
                continue
            try:
                run.regex = compile_posix(val.encode("utf-8", "surrogateescape").decode("latin-1"), False, icase=True)
            except RegexError:
                raise Defer(f"install-info: --regex {val!r}: glibc's regerror text is not modelled") from None
        elif key == "S":
            run.default_section = val.encode("utf-8", "surrogateescape")
        elif key == "s":
            run.sections = ii.Section(val.encode("utf-8", "surrogateescape"), run.sections)
        elif key == "x":
            run.delete = run.remove_exactly = True
    for arg in operands:
        if run.infile is None:
            run.infile = arg
        elif run.dirfile is None:
            run.dirfile = arg
        else:
            inv.err(f"{PROG}: excess command line argument `{arg}'\n")


def _ambiguous(text: str) -> str:
    """glibc's list for an ambiguous abbreviation: the first match in table order, then the
    later ones that differ from it in argument kind or meaning (synonyms are left out)."""
    opt = text.split("'")[1]
    names = [n for n in _LONG if n.startswith(opt[2:])]
    first = _SPEC.long[names[0]]
    names = [names[0]] + [n for n in names[1:] if _SPEC.long[n] != first]
    return f"option '{opt}' is ambiguous; possibilities: " + " ".join(f"'--{n}'" for n in names)


def _description(run: Run, val: str) -> None:
    """``case 'c'``: the description joins the newest entry (or starts one without a name)."""
    if not val:
        raise Defer("install-info: an empty --description (the program reads before its start)")
    if not run.entries:
        e = ii.Entry(None)
        e.missing_name = e.missing_basename = True
        run.entries.insert(0, e)
    e = run.entries[0]
    e.missing_description = False
    text = e.text
    if text is not None:
        nl = text.rfind(b"\n")
        if nl >= 0:
            text = text[:nl]
    d = val.encode("utf-8", "surrogateescape")
    e.text = (text if text is not None else b" ") + d + (b"" if d.endswith(b"\n") else b"\n")


def _name(run: Run, val: str) -> None:
    """``case 't'``: ``* NAME: (). `` whose file name is filled in later, or ``*...`` as given."""
    v = val.encode("utf-8", "surrogateescape")
    e = ii.Entry(b"* " + v + b": (). " if not v.startswith(b"*") else v + b" ")
    e.missing_basename = not v.startswith(b"*")
    e.missing_description = True
    run.entries.insert(0, e)


def _which(inv: Invocation, prog: str) -> bool:
    for d in (inv.env.get("PATH") or _DEFAULT_PATH).split(":"):
        try:
            st = inv.fs.stat(f"{d or '.'}/{prog}")
        except OSError:
            continue
        if st.is_reg and st.st_mode & 0o111:
            return True
    return False


def _decompress(inv: Invocation, prog: str, name: str, data: bytes) -> bytes:
    """``popen ("PROG -d")`` on the file: the image's program, through its model."""
    model = inv.models.get(prog) if inv.models is not None else None
    # popen runs "sh -c 'PROG -d'": the program must be on the image's PATH
    if model is None or not _which(inv, prog):
        raise Defer(f"install-info: {name} needs {prog} -d, which the image or the model set lacks")
    sub = Invocation(argv=[prog, "-d"], fs=inv.fs, cwd=inv.cwd, env=dict(inv.env), stdin=data, umask=inv.umask,
              models=inv.models)
    status = model(sub)
    if status != 0 or sub.stderr:
        raise Defer(f"install-info: {prog} -d fails on {name} (its messages are not modelled)")
    return bytes(sub.stdout)


def _stat(run: Run, path: str):
    """``stat`` through the run's pending changes: None for a dir file created in memory."""
    if path in run.pending:
        if run.pending[path] is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return None
    return run.inv.fs.stat(path)


def _ensure_dirfile(run: Run, dirfile: str) -> None:
    """``ensure_dirfile_exists``: create a missing dir file from the template (not under
    --test). The file is created in memory and written by :meth:`Run.flush`, so that a later
    deferral leaves the image untouched."""
    if run.chicken:
        return
    p = run.inv.path(dirfile)
    try:
        _stat(run, p)
        return
    except OSError as e:
        if e.errno != errno.ENOENT:
            return
    parent = posixpath.dirname(p) or "/"
    try:
        err = 0 if run.inv.fs.stat(parent).is_dir else errno.ENOTDIR
    except OSError as e:
        err = e.errno
    if err:
        run.fatal(f"{dirfile}: could not read ({os.strerror(errno.ENOENT)}) and could not create ({os.strerror(err)})")
    run.pending[p] = ii.DIR_TEMPLATE


def _remove(run: Run, path: str) -> int:
    """``remove (filename)`` of a too-short dir file, pending like the creation; the errno."""
    if run.pending.get(path) is not None:
        run.pending[path] = None
        return 0
    if path in run.pending or not run.inv.fs.lexists(path):
        return errno.ENOENT
    if run.inv.fs.lstat(path).is_dir:
        return errno.EISDIR
    run.removed.append(path)
    run.pending[path] = None
    return 0


def readfile(run: Run, filename: str, create: bool) -> tuple[bytes | None, str, str | None, int]:
    """``readfile``/``open_possibly_compressed_file``: (data or None, opened name, compressor,
    errno for the failure)."""
    inv = run.inv
    missing = object()
    opened, found, err = filename, missing, 0
    for suffix in ("", ".gz", ".xz", ".bz2", ".lz", ".lzma"):
        try:
            found = _stat(run, inv.path(filename + suffix))
            opened = filename + suffix
            break
        except OSError as e:
            err = e.errno
    if found is missing:
        opened = filename
        if not create:
            return None, opened, None, err
        _ensure_dirfile(run, filename)
        try:
            found = _stat(run, inv.path(opened))
        except OSError as e:
            return None, opened, None, e.errno
    if found is not None and found.is_dir:
        return None, opened, None, 0  # fread fails with EISDIR, not at EOF: errno is reset
    if found is not None and not found.is_reg:
        raise Defer(f"install-info: {opened} is not a regular file")
    data = run.read(inv.path(opened))
    if len(data) < 13:
        if not create:
            return None, opened, None, 0
        err = _remove(run, inv.path(filename))
        if err:
            return None, opened, None, err
        _ensure_dirfile(run, filename)
        if run.pending.get(inv.path(opened)) is None:
            return None, opened, None, errno.ENOENT  # --test: removed, not re-created
        data = run.read(inv.path(opened))
    prog = _magic(data)
    if prog in ("gzip", "xz"):
        data = _decompress(inv, prog, opened, data)
    elif prog is not None:
        raise Defer(f"install-info: {opened} is {prog}-compressed (not modelled)")
    return data, opened, prog, 0


def _magic(d: bytes) -> str | None:
    """The compressor ``open_possibly_compressed_file`` picks from the first 13 bytes."""
    if d[:2] == b"\x1f\x8b":
        return "gzip"
    if d[:6] == b"\xfd7zXZ\0":
        return "xz"
    if d[:3] == b"BZh":
        return "bzip2"
    if d[:3] == b"BZ0":
        return "bzip"
    if d[:5] == b"LZIP\x01":
        return "lzip"
    if d[9:13] == b"\0\0\0\0" or d[5:13] == b"\xff" * 8 or d[:6] == b"\xffLZMA\0":
        return "lzma"
    return None


def strip_info_suffix(name: str) -> str:
    """``strip_info_suffix``: one compression suffix, then ``.info`` or ``.inf``."""
    for s in (".gz", ".xz", ".bz2", ".lz", ".lzma"):
        if len(name) > len(s) and name.endswith(s):
            name = name[: -len(s)]
            break
    for s in (".info", ".inf"):
        if len(name) > len(s) and name.endswith(s):
            return name[: -len(s)]
    return name
