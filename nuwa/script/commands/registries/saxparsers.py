"""``update-perl-sax-parsers`` (libxml-sax-perl 1.02+dfsg-3, Debian 12): Perl SAX parser registry.

The real program is a Perl script (``/usr/bin/update-perl-sax-parsers``) with
``XML::SAX::Debian``:

- ``--add MODULE [--priority N]``: ``XML::SAX->add_parser`` loads MODULE and asks its
  ``supported_features``; ``save_parsers_debian`` writes ``[MODULE]``, the features sorted
  (``FEATURE = 1``), a blank line and one more to ``DIR/N-MODULE`` (``DIR/MODULE`` for
  priority 0), after ``chmod 0644`` and ``unlink`` of the old one;
- ``--remove MODULE``: unlinks that file (its result ignored);
- ``--update``: the files of each ``--directory`` (default
  ``/var/lib/libxml-sax-perl/ParserDetails.d``), in Perl's ``sort`` order, concatenated into
  a File::Temp file handed to ``ucf --debconf-ok --sum-file ... TMP
  /etc/perl/XML/SAX/ParserDetails.ini``, or written to ``--file`` (``-``: standard output)
  without ucf.

Loading MODULE runs Perl code of the image, which Nuwa never does. What ``add_parser``
needs from it is the list its ``supported_features`` returns; the model reads it from the
module's source when the source says it plainly (see :func:`features_of`): the module's
file found on Debian perl's ``@INC`` in the image, ``XML::SAX::Base`` its only parent, and
``supported_features`` either inherited (XML::SAX::Base's own literal list) or a ``return``
of ``$_[0]->SUPER::supported_features`` and quoted literals. Anything else is deferred,
as is a missing module (perl's "Can't locate" message is not reproduced). ``ucf`` is run
through the interpreter's lookup (the image's ucf shell script, simulated); the invocation
is all or nothing, so a deferral inside ucf leaves nothing behind.
"""

from __future__ import annotations

import os
import posixpath
import random
import re

from nuwa.deb.arch import image_machine
from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.registries import perlish
from nuwa.script.commands.registries.perlish import b, s
from nuwa.script.context import Defer, Invocation

SCRIPT = "/usr/bin/update-perl-sax-parsers"
DEBIAN_PM = "/usr/share/perl5/XML/SAX/Debian.pm"
DETAILS_DIR = "/var/lib/libxml-sax-perl/ParserDetails.d"
DETAILS_FILE = "/etc/perl/XML/SAX/ParserDetails.ini"
SUM_FILE = "/var/lib/libxml-sax-perl/ParserDetails.ini.md5sum"
BASE = "XML::SAX::Base"

_SPEC = {"add": "s", "directory": "s@", "file": "s", "help": "", "quiet": "", "remove": "s", "test": "",
         "update": "", "version": "", "priority": "i", "ucf": "i"}
_LINE_CHMOD, _LINE_WRITE, _LINE_OPENDIR, _LINE_READ, _LINE_UNLINK = 129, 131, 136, 142, 152
_LINE_SAVE = 29  # XML::SAX::Debian::save_parsers_debian's open
_TEMP_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"  # File::Temp's @CHARS

_USAGE = """Usage:
    {0} <options> --add <parser_module>
    {0} <options> --remove <parser_module>
    {0} <options> --update

Options:
    --directory     Perl SAX parser module info file directory to be used
                    as target for 'add'/'remove' or as sources for 'update'
                    (default = '/var/lib/libxml-sax-perl/ParserDetails.d')
    --priority      The priority of the parser to add. The parser with the
                    highest priority is the default parser.
    --file          Perl SAX parser module info file to be updated
                    (default = '/etc/perl/XML/SAX/ParserDetails.ini')
    --ucf X         Forcibly disable (X == 0) or enable (X != 0) the use
                    of ucf with '--update'.
    --help          display this help text (usage)
    --quiet         be quiet
    --test          do not modify any files, enable debugging mode
    --version       display version number
"""


def _true(v) -> bool:
    """Perl truth: undef, "" and "0" are false."""
    return v is not None and v != "" and v != "0" and v != 0


class _Died(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


# ---- reading a parser module's supported_features from its source ------------------------------
_POD = re.compile(rb"^=[a-zA-Z].*?(?:^=cut\b[^\n]*\n|\Z)", re.S | re.M)
_END = re.compile(rb"^__(?:END|DATA)__\b.*", re.S | re.M)
_PARENT = [re.compile(rb"^\s*(?:our\s+)?@ISA\s*=\s*\(\s*(['\"])([\w:]+)\1\s*\)\s*;", re.M),
           re.compile(rb"^\s*(?:our\s+)?@ISA\s*=\s*qw\s*[(\[{/]\s*([\w:]+)\s*[)\]}/]\s*;", re.M),
           re.compile(rb"^\s*use\s+(?:base|parent)\s+qw\s*[(\[{/]\s*([\w:]+)\s*[)\]}/]\s*;", re.M),
           re.compile(rb"^\s*use\s+(?:base|parent)\s+(['\"])([\w:]+)\1\s*;", re.M)]
_SUB = re.compile(rb"\bsub\s+supported_features\s*\{(.*?)\n\}", re.S)
_BODY = re.compile(rb"\s*(?:my\s+\$(\w+)\s*=\s*shift\s*;\s*)?return\s*\((.*)\)\s*;\s*", re.S)
_ITEM_SUPER = re.compile(rb"\s*\$(?:_\[0\]|(\w+))->SUPER::supported_features(?:\s*\(\s*\))?\s*")
_ITEM_LIT = re.compile(rb"\s*'([^'\\]*)'\s*")


def perl_inc(inv: Invocation) -> list[str]:
    """Debian perl's ``@INC`` in the image (perl 5.36 on bookworm), from its own directories."""
    m = image_machine(inv.fs)
    if m is None:
        raise Defer("update-perl-sax-parsers: the image's architecture (for perl's @INC) is unknown")
    base = f"/usr/lib/{m.multiarch}/perl"
    try:
        vers = sorted(n for n in inv.fs.readdir(base) if re.fullmatch(r"5\.\d+", n))
    except OSError:
        vers = []
    if len(vers) != 1:
        raise Defer(f"update-perl-sax-parsers: cannot tell the image's perl version from {base}")
    v = vers[0]
    return ["/etc/perl", f"/usr/local/lib/{m.multiarch}/perl/{v}.0", f"/usr/local/share/perl/{v}.0",
            f"/usr/lib/{m.multiarch}/perl5/{v}", "/usr/share/perl5", f"/usr/lib/{m.multiarch}/perl-base",
            f"/usr/lib/{m.multiarch}/perl/{v}", f"/usr/share/perl/{v}", "/usr/local/lib/site_perl"]


def _module_source(inv: Invocation, module: str, inc: list[str]) -> bytes:
    rel = module.replace("::", "/") + ".pm"
    for d in inc:
        p = posixpath.join(d, rel)
        if perlish.is_file(inv, p):
            text = inv.fs.read_bytes(p)
            return _END.sub(b"", _POD.sub(b"", text))
    raise Defer(f"update-perl-sax-parsers: {module} is not on perl's @INC in the image "
                "(perl's \"Can't locate\" error is not modelled)")


def _literal_list(inv: Invocation, module: str, body: bytes, inc: list[str], depth: int) -> list[bytes]:
    # whole-line comments go; a comment after code would need Perl's tokenizer: deferred below
    body = b"\n".join(x for x in body.split(b"\n") if not x.lstrip().startswith(b"#"))
    m = _BODY.fullmatch(body)
    if not m:
        raise Defer(f"update-perl-sax-parsers: {module}::supported_features is code Nuwa does not read")
    out: list[bytes] = []
    for item in _split_items(m.group(2)):
        sup = _ITEM_SUPER.fullmatch(item)
        if sup and (sup.group(1) is None or sup.group(1) == m.group(1)):
            out += features_of(inv, BASE, inc, depth + 1)
            continue
        lit = _ITEM_LIT.fullmatch(item)
        if not lit:
            raise Defer(f"update-perl-sax-parsers: {module}::supported_features returns {s(item.strip())!r}, "
                        "which Nuwa does not evaluate")
        out.append(lit.group(1))
    return out


def _split_items(text: bytes) -> list[bytes]:
    items = [i for i in re.split(rb",(?=(?:[^']*'[^']*')*[^']*$)", text)]
    while items and not items[-1].strip():
        items.pop()  # a trailing comma
    return items


def features_of(inv: Invocation, module: str, inc: list[str], depth: int = 0) -> list[bytes]:
    """What ``MODULE->supported_features()`` returns, read from the module's source in the image."""
    if depth > 1:
        raise Defer("update-perl-sax-parsers: supported_features chain deeper than XML::SAX::Base")
    src = _package_section(inv, module, _module_source(inv, module, inc))
    sub = _SUB.search(src)
    if not sub and re.search(rb"\bsupported_features\b", src):
        raise Defer(f"update-perl-sax-parsers: {module} defines supported_features in a form Nuwa does not read")
    if module == BASE:
        if not sub:
            raise Defer("update-perl-sax-parsers: XML::SAX::Base has no supported_features")
        return _literal_list(inv, module, sub.group(1), inc, depth)
    parents = {m.group(m.lastindex) for pat in _PARENT for m in pat.finditer(src)}
    if parents != {BASE.encode()}:
        raise Defer(f"update-perl-sax-parsers: {module}'s parent classes are not just {BASE}; not read")
    if not sub:
        return features_of(inv, BASE, inc, depth + 1)
    return _literal_list(inv, module, sub.group(1), inc, depth)


def _package_section(inv: Invocation, module: str, src: bytes) -> bytes:
    """The code of ``package MODULE;`` in its file: from that statement to the next
    ``package`` statement (a file may declare helper packages, as XML/SAX/Base.pm does)."""
    marks = list(re.finditer(rb"^\s*package\s+([\w:]+)\s*;", src, re.M))
    parts = [src[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(src))]
             for i, m in enumerate(marks) if m.group(1) == b(module)]
    if not marks:
        raise Defer(f"update-perl-sax-parsers: {module}'s file declares no package (perl's require would fail)")
    if not parts or marks[0].group(1) != b(module):
        raise Defer(f"update-perl-sax-parsers: {module}'s file does not start with its package; not read")
    return b"".join(parts)


# ---- the program ------------------------------------------------------------------------------
def _canonical(inv: Invocation, d: str) -> None:
    # File::Spec->catfile would canonicalise these spellings; the model does not
    if d == "" or "//" in d or "/./" in d or d.startswith("./") or d.endswith("/.") or (d.endswith("/") and d != "/"):
        raise Defer(f"update-perl-sax-parsers: the directory {d!r} is not in canonical form")


def _save(inv: Invocation, module: str, directory: str, priority: int) -> None:
    """``XML::SAX::Debian::save_parsers_debian``."""
    features = sorted(set(features_of(inv, module, perl_inc(inv))))
    name = f"{priority}-{module}" if priority != 0 else module
    _canonical(inv, directory)
    path = posixpath.join(directory, name) if directory else name
    full = inv.path(path)
    try:
        inv.fs.chmod(full, 0o644)
    except OSError:
        pass  # chmod's result is ignored
    try:
        inv.fs.unlink(full)
    except OSError:
        pass
    body = b"[" + b(module) + b"]\n" + b"".join(f + b" = 1\n" for f in features) + b"\n\n"
    try:
        perlish.write_file(inv, full, body)
    except OSError as e:
        raise _Died(perlish.die(inv, DEBIAN_PM, _LINE_SAVE, f"Cannot write to {path}: ", e))


def _concatenate(inv: Invocation, directories: list[str]) -> tuple[bytes, _Died | None]:
    """The files of each directory in ``sort`` order, concatenated; and the ``die`` that
    stopped the loop, if one did (what was printed before it still reaches the file, as
    perl flushes its buffers when it exits)."""
    out = b""
    for d in directories:
        try:
            names = sorted(b(n) for n in inv.fs.readdir(inv.path(d)))
        except OSError as e:
            return out, _Died(perlish.die(inv, SCRIPT, _LINE_OPENDIR, f"Cannot access {d}: ", e))
        for n in names:
            if n in (b".", b".."):
                continue
            try:
                out += perlish.read_file(inv, inv.path(d + "/" + s(n)))
            except OSError as e:
                return out, _Died(perlish.die(inv, SCRIPT, _LINE_READ, f"Cannot read from {s(n)}: ", e))
    return out, None


def _tempfile(inv: Invocation) -> str:
    """File::Temp's ``tempfile()``: ``/tmp/XXXXXXXXXX`` created 0600 (O_EXCL), retried on a clash.
    The name is drawn from a generator seeded per run, as the mktemp model's names are."""
    if inv.env.get("TMPDIR"):
        raise Defer("update-perl-sax-parsers: File::Temp would honour TMPDIR; not modelled")
    rng = inv.state.setdefault("file_temp_rng", random.Random(0x53415850))
    for _ in range(100):
        path = "/tmp/" + "".join(rng.choice(_TEMP_CHARS) for _ in range(10))
        try:
            h = inv.fs.open_handle(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as e:
            raise Defer(f"update-perl-sax-parsers: File::Temp cannot create its file in /tmp ({e.strerror})")
        h.close()
        return path
    raise Defer("update-perl-sax-parsers: no free temporary file name")


@all_or_nothing
def update_perl_sax_parsers(inv: Invocation) -> int:
    """The ``update-perl-sax-parsers`` model (libxml-sax-perl 1.02+dfsg-3's Perl script, whole)."""
    name = inv.name
    try:
        o = perlish.getoptions(inv, _SPEC)
    except perlish.UsageError as e:
        inv.err(e.text + _USAGE.format(name))
        return 1
    if o.has("version"):
        inv.out(f"Debian {name} version 0.4\n")
        return 0
    if o.has("help"):
        inv.err(_USAGE.format(name))
        return 0
    if o.has("test") and not o.has("quiet"):
        inv.err(f"{name}: test mode - Perl SAX parsers file will not be updated\n")
    directories = list(o.get("directory", []))
    priority = o.get("priority")
    if priority is None:
        priority = 0 if directories else 50
    if not directories:
        directories = [DETAILS_DIR]
    file = o.get("file", "")
    ucf = o.get("ucf")
    if ucf is None:
        ucf = 0 if _true(file) else 1
    if not _true(file):
        file = DETAILS_FILE
    # the script's `use XML::SAX; use XML::SAX::Debian;`: without them perl stops compiling it
    inc = perl_inc(inv)
    sax = _package_section(inv, "XML::SAX", _module_source(inv, "XML::SAX", inc))
    _package_section(inv, "XML::SAX::Debian", _module_source(inv, "XML::SAX::Debian", inc))
    if not re.search(rb"\bsub\s+_is_vendor_supplied\b", sax):
        inv.err(f"{name}: Non-vendor version of XML::SAX is installed.\n"
                f"{name}: Automatic registration of SAX parsers might not work.\n")
    quiet = o.has("quiet")
    add, remove = o.get("add", ""), o.get("remove", "")
    try:
        if _true(add):
            if not quiet:
                inv.out(f"{name}: Registering Perl SAX parser {add} with priority {priority}...\n")
            _save(inv, add, directories[0], priority)
        elif _true(remove):
            if not quiet:
                inv.out(f"{name}: Unregistering Perl SAX parser {remove} with priority {priority}...\n")
            _canonical(inv, directories[0])
            target = posixpath.join(directories[0], f"{priority}-{remove}" if priority != 0 else remove)
            try:
                inv.fs.unlink(inv.path(target))
            except OSError:
                pass  # unlink's result is ignored
        elif o.has("update"):
            if not quiet:
                inv.out(f"{name}: Updating overall Perl SAX parser modules info file...\n")
            _update(inv, file, directories, _true(ucf))
    except _Died as d:
        return d.status
    return 0


def _update(inv: Invocation, file: str, directories: list[str], ucf: bool) -> None:
    if ucf:
        if inv.run is None:
            raise Defer("update-perl-sax-parsers --update runs ucf, which needs the interpreter's lookup")
        tmp = _tempfile(inv)
        inv.fs.chmod(tmp, 0o644)
        data, died = _concatenate(inv, directories)
        perlish.write_file(inv, tmp, data)
        if died:
            raise died
        status, out, err = inv.run(["ucf", "--debconf-ok", "--sum-file", SUM_FILE, tmp, file], b"")
        inv.out(out)
        inv.err(err)
        try:
            inv.fs.unlink(tmp)
        except OSError as e:
            raise _Died(perlish.die(inv, SCRIPT, _LINE_UNLINK, f"unlink {tmp}: ", e))
        return
    if file == "-":  # two-argument open(">-") is standard output
        data, died = _concatenate(inv, directories)
        inv.out(data)
    else:
        if file != file.strip(" \t\n") or file[:1] in "<>|+&":
            raise Defer(f"update-perl-sax-parsers: the file name {file!r} means something else to Perl's open()")
        try:
            perlish.write_file(inv, inv.path(file), b"")
        except OSError as e:
            raise _Died(perlish.die(inv, SCRIPT, _LINE_WRITE, f"Cannot write to {file}: ", e))
        data, died = _concatenate(inv, directories)
        perlish.write_file(inv, inv.path(file), data)
    if died:
        raise died
