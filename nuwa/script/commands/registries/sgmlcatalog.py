"""``update-catalog`` (sgml-base 1.31, Debian 12): centralized SGML catalogs and the super catalog.

The real program is a Perl script (``/usr/sbin/update-catalog``):

- ``--add CENTRALIZED ORDINARY`` / ``--remove CENTRALIZED ORDINARY``: the centralized catalog
  is read without the lines that match ORDINARY (a Perl pattern), or made from the template
  ``/usr/share/sgml-base/catalog.centralized`` when it is not a file; ``--add`` appends
  ``CATALOG ORDINARY``; the old file becomes ``CENTRALIZED.old``;
- ``--add|--remove --super X``: no file is touched: ``dpkg-trigger /etc/sgml`` is run (through
  the interpreter's lookup, so the dpkg-trigger model answers), and only when it fails is
  the super catalog rebuilt;
- ``--update-super``: ``/var/lib/sgml-base/supercatalog`` rebuilt from ``/etc/sgml/*.cat``
  (each checked as ``check_catalog`` tokenises it: a ``CATALOG`` entry naming a missing file
  drops that ``.cat`` with a warning), via ``supercatalog.new``, the old one kept as
  ``supercatalog.old``;
- ``--quiet``, ``--test`` (nothing written, what would be written printed).

Messages, their streams, exit statuses and the ``die`` lines are the script's. Forms whose
Perl meaning is not reproduced (an ORDINARY that is more than a plain path when used as a
pattern, file names that two-argument ``open`` would reinterpret) are deferred before
anything is written.
"""

from __future__ import annotations

import re

from nuwa.script.commands.registries import perlish
from nuwa.script.commands.registries.perlish import b, s
from nuwa.script.context import Defer, Invocation

SCRIPT = "/usr/sbin/update-catalog"
SUPER_CATALOG = "/etc/sgml/catalog"
CATDIR = "/etc/sgml"
SUPERCAT = "/var/lib/sgml-base/supercatalog"
TEMPLATE = "/usr/share/sgml-base/catalog.centralized"

#: the statements that ``die`` (Perl reports the line a statement starts on)
_LINE_READ, _LINE_TEMPLATE, _LINE_UNLINK, _LINE_RENAME, _LINE_WRITE = 178, 193, 223, 226, 229
_LINE_OPENDIR, _LINE_NEW, _LINE_OLD, _LINE_INSTALL = 299, 313, 323, 326

# check_catalog's tokens (a401.htm): whitespace and comments, literals, other tokens (/sx)
_TOKENS = re.compile(rb"((?:\s+|--.*?--)+|'.*?'|\".*?\"|\S+)", re.S)
_QUOTED = re.compile(rb"^(['\"])(.*)\1$")
_CATNAME = re.compile(rb"^[^.].*\.cat$")


def _help(name: str) -> str:
    return f"""Usage:
    {name} <options> --add --super <centralized_catalog>
    {name} <options> --add <centralized_catalog> <ordinary_catalog>
or
    {name} <options> --remove --super <centralized_catalog>
    {name} <options> --remove <centralized_catalog> <ordinary_catalog>

Options:
    --quiet         be quiet
    --test          do not modify any files, enables debugging mode
    --version       display version number
    --help          display this text
"""


class _Died(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _plain_name(inv: Invocation, path: str) -> None:
    # two-argument open() strips surrounding blanks and reads "-" as standard input
    if path != path.strip(" \t\n") or path in ("", "-") or path[:1] in "<>|+&":
        raise Defer(f"update-catalog: the file name {path!r} means something else to Perl's open()")


class _Run:
    def __init__(self, inv: Invocation, quiet: bool, debug: bool):
        self.inv, self.quiet, self.debug = inv, quiet, debug

    def die(self, line: int, msg: str, e: OSError) -> None:
        raise _Died(perlish.die(self.inv, SCRIPT, line, msg + ": ", e))

    def read_without_entry(self, catalog: str, entry: str) -> list[bytes]:
        """``read_catalog_without_entry``."""
        inv = self.inv
        data: list[bytes] = []
        if perlish.is_file(inv, inv.path(catalog)):
            pattern = perlish.perl_regex(inv, entry, "the ordinary catalog")
            if self.debug:
                inv.out(f"Reading catalog {catalog} and removing entry {entry}...\n")
            try:
                text = perlish.read_file(inv, inv.path(catalog))
            except OSError as e:
                self.die(_LINE_READ, f"cannot open catalog {catalog} for reading", e)
            for rec in perlish.records(text):
                line = perlish.chop(rec)
                if not pattern.search(line):
                    data.append(line)
        else:
            if self.debug:
                inv.out(f"Reading template {TEMPLATE}...\n")
            try:
                text = perlish.read_file(inv, TEMPLATE)
            except OSError as e:
                self.die(_LINE_TEMPLATE, f"cannot open template {TEMPLATE} for reading", e)
            for rec in perlish.records(text):
                data.append(perlish.chop(rec).replace(b"CATALOG", b(catalog), 1))
        return data

    def write_catalog(self, catalog: str, data: list[bytes]) -> None:
        inv = self.inv
        body = b"".join(x + b"\n" for x in data)
        if self.debug:
            inv.out(f"Writing new entry to {catalog}...\n")
            inv.out(body)
            return
        backup = catalog + ".old"
        if perlish.is_file(inv, inv.path(catalog)):
            if perlish.is_file(inv, inv.path(backup)):
                try:
                    inv.fs.unlink(inv.path(backup))
                except OSError as e:
                    self.die(_LINE_UNLINK, f"cannot remove backup copy {backup}", e)
            try:
                inv.fs.rename(inv.path(catalog), inv.path(backup))
            except OSError as e:
                self.die(_LINE_RENAME, f"cannot rename {catalog} to {backup}", e)
        try:
            perlish.write_file(inv, inv.path(catalog), body)
        except OSError as e:
            self.die(_LINE_WRITE, f"cannot open catalog {catalog} for writing", e)

    def check_catalog(self, catalog: str) -> bool:
        """``check_catalog``: False (with the script's warning) when a ``CATALOG`` entry of
        the file names a file that does not exist, or the file cannot be opened."""
        inv = self.inv
        try:
            contents = perlish.read_file(inv, catalog)
        except OSError:
            if not self.quiet:
                inv.out(f"Warning: Ignoring unreadable catalog file `{catalog}'.\n")
            return False
        base = re.sub(rb"/[^/]+$", b"", b(catalog), count=1)
        prev = None
        for m in _TOKENS.finditer(contents):
            token = m.group(1)
            if prev:
                if token[:1].isspace() or token.startswith(b"--"):
                    continue
                q = _QUOTED.match(token)
                if q:
                    token = q.group(2)
                if prev == "base":
                    base = token
                else:
                    path = token if token.startswith(b"/") else base + b"/" + token
                    if not perlish.is_file(inv, inv.path(s(path))):
                        if not self.quiet:
                            inv.out(f"Warning ignoring catalog `{catalog}' which references non-existent catalogs. "
                                    "See man update-catalog for details.\n")
                        return False
                prev = None
            elif token.lower() == b"catalog":
                prev = "catalog"
            elif token.lower() == b"base":
                prev = "base"
        return True

    def update_super(self) -> None:
        """``update_super``: the ``.cat`` files of /etc/sgml that pass ``check_catalog``, sorted."""
        inv = self.inv
        try:
            names = inv.fs.readdir(CATDIR)
        except OSError as e:
            self.die(_LINE_OPENDIR, f"cannot open catalog directory {CATDIR}", e)
        cats = []
        for n in names:  # readdir order: the order of the warnings
            if not _CATNAME.match(b(n)):
                continue
            catfile = CATDIR + "/" + n
            if self.check_catalog(catfile):
                cats.append(b(catfile))
        cats.sort()
        lines = b"".join(b"CATALOG " + c + b"\n" for c in cats)
        if self.debug:
            inv.out(b"The new super catalog would contain the following entries.\n" + lines)
            return
        new = SUPERCAT + ".new"
        try:
            perlish.write_file(inv, new, b"--\n## This file is created by update-catalog with update-super.\n"
                                         b"## Please see update-catalog(8) for how to modify this file.\n--\n" + lines)
        except OSError as e:
            self.die(_LINE_NEW, f"cannot open {new} for writing", e)
        if perlish.exists(inv, SUPERCAT):
            try:
                inv.fs.rename(SUPERCAT, SUPERCAT + ".old")
            except OSError as e:
                self.die(_LINE_OLD, f"cannot rename {SUPERCAT} to {SUPERCAT}.old", e)
        try:
            inv.fs.rename(new, SUPERCAT)
        except OSError as e:
            self.die(_LINE_INSTALL, f"cannot rename {new} to {SUPERCAT}", e)


def update_catalog(inv: Invocation) -> int:
    """The ``update-catalog`` model (sgml-base 1.31's Perl script, whole)."""
    name = inv.name
    args = list(inv.argv[1:])
    flags: set[str] = set()
    known = {"--add", "--remove", "--quiet", "--super", "--test", "--update-super"}
    while args and args[0].startswith("--"):
        a = args.pop(0)
        if a == "--":
            break
        if a in known:
            flags.add(a)
        elif a in ("--help", "--version"):
            inv.err(_help(name))  # version() is never called: both print the usage
            return 255
        else:
            inv.err(f"{name}: unknown option `{a}'\n" + _help(name))
            return 1
    add, remove, updsuper = "--add" in flags, "--remove" in flags, "--update-super" in flags
    quiet, debug, sup = "--quiet" in flags, "--test" in flags, "--super" in flags
    if add + remove + updsuper != 1:
        inv.out("Huh? You have to use precisely one out of --add --remove or --update-super.\n")
        return 1
    catalog = entry = ""
    if add or remove:
        if not args:
            inv.err("\n" + _help(name))
            return 1
        catalog = SUPER_CATALOG if sup else args.pop(0)
        if not args:
            inv.err("\n" + _help(name))
            return 1
        entry = args.pop(0)
    if args:
        inv.err(f"{name}: too many arguments\n" + _help(name))
        return 1
    if add or remove:
        _plain_name(inv, catalog)
        if entry == "":
            raise Defer("update-catalog: an empty pattern means Perl's last successful pattern")
    run = _Run(inv, quiet, debug)
    if debug and not quiet:
        inv.err(f"{name}: test mode - catalog file will not be updated\n")
    try:
        if sup:
            inv.out("update-catalog: Suppressing action on super catalog. Invoking trigger instead.\n")
            if inv.run is None:
                raise Defer("update-catalog --super runs dpkg-trigger, which needs the interpreter's lookup")
            status, out, err = inv.run(["dpkg-trigger", "/etc/sgml"], b"")
            inv.out(out)
            inv.err(err)
            if status != 0:
                inv.out(f"Invocation of dpkg-trigger failed with status {(status & 0xFF) << 8}.\n"
                        "Forcing update of the super catalog...\n")
                run.update_super()
        elif add:
            if not quiet:
                inv.out(f"Adding entry {entry} to catalog {catalog}...\n")
            data = run.read_without_entry(catalog, entry)
            if debug:
                inv.out(f"Appending entry {entry}...\n")
            data.append(b"CATALOG " + b(entry))
            run.write_catalog(catalog, data)
        elif remove:
            if not quiet:
                inv.out(f"Removing entry {entry} from catalog {catalog}...\n")
            run.write_catalog(catalog, run.read_without_entry(catalog, entry))
        else:
            if not quiet:
                inv.out("Updating the super catalog...\n")
            run.update_super()
    except _Died as d:
        return d.status
    return 0
