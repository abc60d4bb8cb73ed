"""``update-xmlcatalog`` (xml-core 0.18+nmu1, Debian 12): the root, package and local XML catalogs.

The real program is a Perl script (``/usr/sbin/update-xmlcatalog``). It keeps one *catalog
data* file per catalog under ``/var/lib/xml-core`` (``<key><entry>`` lines) and regenerates
the catalog from it with ``/usr/share/xml-core/catalog.header`` and ``catalog.footer``:

- ``--root --package P``: ``/etc/xml/catalog`` (data ``/var/lib/xml-core/catalog``), entries
  ``<delegatePublic publicIdStartString="ID" catalog="file:///etc/xml/P.xml"/>``;
- ``--package P --local L``: ``/etc/xml/P.xml`` (data ``/var/lib/xml-core/P``), entries
  ``<delegateSystem systemIdStartString="ID" catalog="file://L"/>``;
- ``--local L --file F``: the catalog ``L`` itself (data ``/var/lib/xml-core/`` + ``L`` with
  ``/`` turned into ``_``), entries ``<public publicId="ID" uri="F"/>``.

Every check, message, backup (``CATALOG.old``), exit status and ``die`` of the script is
reproduced in its order, including the partial effects of a ``die`` after the backup was made
(that is what the real program leaves). One choice differs by nature: without ``--sort`` the
script writes the entries in Perl's hash order, which perl randomises per process; the model
keeps the data file's order (a new key last), which is one of the orders the real program can
write. debhelper's ``--add`` calls all pass ``--sort``, so a package's configure step ends in
the same bytes as the real program's.
"""

from __future__ import annotations

import posixpath

from nuwa.script.commands.registries import perlish
from nuwa.script.commands.registries.perlish import b, s
from nuwa.script.context import Defer, Invocation

SCRIPT = "/usr/sbin/update-xmlcatalog"
DATA_DIR = "/var/lib/xml-core"
CATALOG_DIR = "/etc/xml"
HEADER = "/usr/share/xml-core/catalog.header"
FOOTER = "/usr/share/xml-core/catalog.footer"

_SPEC = {"add": "", "del": "", "file": "s", "help": "", "id": "s", "local": "s", "package": "s", "root": "",
         "type": "s", "verbose": "", "sort": ""}

#: the ``die`` lines of update-xmlcatalog 0.18+nmu1 (Perl reports the line a statement starts on)
_LINE_READ_DATA = 475
_LINE_WRITE_DATA = 496
_LINE_UNLINK_BACKUP = 529
_LINE_RENAME = 535
_LINE_HEADER = 549
_LINE_FOOTER = 571
_LINE_WRITE_CATALOG = 583


def _help(name: str) -> str:
    return f"""Usage:
    {name} <options> --add --root --type <type> \\
                                                --id <id> --package <package>
    {name} <options> --del --root --type <type> \\
                                                --id <id>

    {name} <options> --add --package <package> --type <type> \\
                                                --id <id> --local <local>
    {name} <options> --del --package <package> --type <type> \\
                                                --id <id>

    {name} <options> --add --local <local> --type <type> \\
                                                --id <id> --file <file>
    {name} <options> --del --local <local> --type <type> \\
                                                --id <id>

    {name} --help

With:
    --file <file>       = a local filename
    --id <id>           = catalog entry idenitifier
    --local <local>     = a local XML catalog
    --package <package> = a package XML catalog
    --root              = the root XML catalog (= /etc/xml/catalog)
    --type <type>       = catalog entry type (= public, system, uri)

Options:
    --verbose = be verbose
    --sort = sorts the manipulated catalog content

"""


class _Died(Exception):
    """A ``die`` of the script: the status it exits with (the message is already printed)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Run:
    """One invocation: the script's globals and subroutines."""

    def __init__(self, inv: Invocation, verbose: bool, sort: bool):
        self.inv = inv
        self.name = inv.name
        self.verbose = verbose
        self.sort = sort
        self.catalog: dict[bytes, bytes] = {}
        self.catalog_path = ""
        self.data_path = ""

    def _die(self, line: int, msg: str, e: OSError) -> None:
        raise _Died(perlish.die(self.inv, SCRIPT, line, f"{self.name}: {msg}: ", e))

    def _say(self, msg: str) -> None:
        if self.verbose:
            self.inv.out(f"{self.name}: {msg}\n")

    def _keys(self) -> list[bytes]:
        return sorted(self.catalog) if self.sort else list(self.catalog)

    # ---- the script's subroutines, in its order ---------------------------------------------
    def read_catalog_data(self) -> None:
        """``read_catalog_data``: ``chop``, ``split(/>/)``, one leading ``<`` off each half."""
        self._say(f"reading catalog data {self.data_path}")
        try:
            data = perlish.read_file(self.inv, self.inv.path(self.data_path))
        except OSError as e:
            self._die(_LINE_READ_DATA, f"cannot open catalog data {self.data_path} for reading", e)
        for rec in perlish.records(data):
            fields = perlish.split_fields(rb">", perlish.chop(rec))
            key = fields[0] if fields else b""
            entry = fields[1] if len(fields) > 1 else b""
            key = key[1:] if key.startswith(b"<") else key
            entry = entry[1:] if entry.startswith(b"<") else entry
            self.catalog[key] = entry

    def add_entry(self, key: bytes, entry: bytes) -> bool:
        if key in self.catalog:
            if self.catalog[key] != entry:
                self.inv.err(f"{self.name}: error: entity already registered with a different value\n"
                             f" Entity   : [{s(key)}]\n Old value: [{s(self.catalog[key])}]\n"
                             f" New value: [{s(entry)}]\n")
                return False
            if self.verbose:
                self.inv.err(f"{self.name}: notice: entity already registered\n")
            return True
        self._say(f"adding entity to catalog data {self.data_path} with the same value")
        self.catalog[key] = entry
        return True

    def del_entry(self, key: bytes) -> bool:
        if key in self.catalog:
            self._say(f"removing entity from catalog data {self.data_path}")
            del self.catalog[key]
            return True
        self.inv.err(f"{self.name}: error: entity not registered\n")
        return False

    def write_catalog_data(self) -> None:
        self._say(f"writing catalog data {self.data_path}")
        keys = self._keys()
        try:
            perlish.write_file(self.inv, self.inv.path(self.data_path),
                               b"".join(b"<" + k + b"><" + self.catalog[k] + b">\n" for k in keys))
        except OSError as e:
            self._die(_LINE_WRITE_DATA, f"cannot open catalog data {self.data_path} for writing", e)
        if not keys:
            self._say(f"removing catalog data {self.data_path}")
            try:
                self.inv.fs.unlink(self.inv.path(self.data_path))
            except OSError:
                pass  # the script ignores unlink's result

    def create_backup(self) -> None:
        backup = self.catalog_path + ".old"
        if perlish.is_file(self.inv, self.inv.path(backup)):
            self._say(f"removing backup {backup}")
            try:
                self.inv.fs.unlink(self.inv.path(backup))
            except OSError as e:
                self._die(_LINE_UNLINK_BACKUP, f"cannot remove backup {backup}", e)
        self._say(f"moving catalog {self.catalog_path} to backup {backup}")
        try:
            self.inv.fs.rename(self.inv.path(self.catalog_path), self.inv.path(backup))
        except OSError as e:
            self._die(_LINE_RENAME, f"cannot move catalog {self.catalog_path} to backup {backup}", e)

    def _chopped(self, path: str, line: int, what: str) -> list[bytes]:
        try:
            data = perlish.read_file(self.inv, path)
        except OSError as e:
            self._die(line, f"cannot open catalog {what} {path} for reading", e)
        return [perlish.chop(r) for r in perlish.records(data)]

    def write_catalog(self) -> None:
        out = self._chopped(HEADER, _LINE_HEADER, "header")
        keys = self._keys()
        out += [b"<" + k + b" " + self.catalog[k] + b"/>" for k in keys]
        out += self._chopped(FOOTER, _LINE_FOOTER, "footer")
        self._say(f"writing catalog {self.catalog_path}")
        try:
            perlish.write_file(self.inv, self.inv.path(self.catalog_path), b"".join(x + b"\n" for x in out))
        except OSError as e:
            self._die(_LINE_WRITE_CATALOG, f"cannot open catalog {self.catalog_path} for writing", e)
        if not keys:
            self._say(f"removing catalog {self.catalog_path}")
            try:
                self.inv.fs.unlink(self.inv.path(self.catalog_path))
            except OSError:
                pass


def _check(inv: Invocation, o: perlish.Options) -> str | None:
    """The script's argument checks, in its order: the error text, or None."""
    add, dele = o.has("add"), o.has("del")
    root, package, local, file = o.has("root"), o.get("package"), o.get("local"), o.get("file")
    if not add and not dele:
        return "either 'add' or 'del' must be given"
    if add and dele:
        return "only one of 'add' and 'del' can be given"
    if add:
        if root:
            if package is None:
                return "package catalog not given"
            cat = posixpath.join(CATALOG_DIR, f"{package}.xml")
            if not perlish.is_file(inv, cat):
                return f"package catalog {cat} not found"
            if local is not None or file is not None:
                return "local catalog and file not for adding to root catalog file"
        elif package is not None:
            if local is None:
                return "local catalog not given"
            if not perlish.is_file(inv, inv.path(local)):
                return f"local catalog {local} not found"
            if file is not None:
                return "file not for adding to package catalog file"
        elif local is not None:
            if file is None:
                return "file not given"
            if not perlish.is_file(inv, inv.path(file)):
                return f"file {file} not found"
        else:
            return "catalog not given"
    else:
        if root:
            cat = posixpath.join(CATALOG_DIR, "catalog")
            if not perlish.is_file(inv, cat):
                return f"root catalog {cat} not found"
            if package is not None or local is not None or file is not None:
                return "package catalog, local catalog or file not for deleting from root catalog file"
        elif package is not None:
            cat = posixpath.join(CATALOG_DIR, f"{package}.xml")
            if not perlish.is_file(inv, cat):
                return f"package catalog {cat} not found"
            if local is not None or file is not None:
                return "local catalog or file not for deleting from package catalog file"
        elif local is not None:
            if not perlish.is_file(inv, inv.path(local)):
                return f"local catalog {local} not found"
            if file is not None:
                return "file not for deleting from local catalog file"
        else:
            return "catalog not given"
    typ = o.get("type")
    if typ is None:
        return "type not given"
    if typ not in ("public", "system", "uri"):
        return "wrong type"
    if o.get("id") is None:
        return "id not given"
    return None


def update_xmlcatalog(inv: Invocation) -> int:
    """The ``update-xmlcatalog`` model (xml-core 0.18+nmu1's Perl script, whole)."""
    name = inv.name
    try:
        o = perlish.getoptions(inv, _SPEC)
    except perlish.UsageError as e:
        inv.err(e.text)
        inv.out(_help(name))
        return 1
    if o.has("help"):
        inv.out(_help(name))
        return 255  # exit -1
    # File::Spec->catfile would canonicalise such names ("a//b", "./x"); not modelled
    package = o.get("package")
    if package is not None and ("/" in package or package in ("", ".", "..")):
        raise Defer(f"update-xmlcatalog: the package name {package!r} is not a plain file name")
    if o.get("local") is not None and "//" in o.get("local"):
        raise Defer("update-xmlcatalog: a local catalog path with '//' is not modelled")
    problem = _check(inv, o)
    if problem:
        inv.err(f"{name}: error: {problem}\n")
        return 1
    run = _Run(inv, o.has("verbose"), o.has("sort"))
    typ, ident = o.get("type"), o.get("id")
    package, local, file = o.get("package"), o.get("local"), o.get("file")
    if o.has("root") or package is not None:
        start = typ + ("" if typ == "uri" else "Id") + "StartString"
        dtype = "delegate" + ("URI" if typ == "uri" else typ[:1].upper() + typ[1:])
        key = f'{dtype} {start}="{ident}"'
        if o.has("root"):
            run.data_path = posixpath.join(DATA_DIR, "catalog")
            run.catalog_path = posixpath.join(CATALOG_DIR, "catalog")
            entry = f'catalog="file:///etc/xml/{package or ""}.xml"'
        else:
            run.data_path = posixpath.join(DATA_DIR, package)
            run.catalog_path = posixpath.join(CATALOG_DIR, f"{package}.xml")
            entry = f'catalog="file://{local or ""}"'
    else:
        start = ("name" if typ == "uri" else typ) + ("" if typ == "uri" else "Id")
        key = f'{typ} {start}="{ident}"'
        entry = f'uri="{file or ""}"'
        run.catalog_path = local
        run.data_path = posixpath.join(DATA_DIR, local.replace("/", "_"))
    try:
        if o.has("add"):
            if perlish.is_file(inv, inv.path(run.data_path)):
                run.read_catalog_data()
            if not run.add_entry(b(key), b(entry)):
                return 1
            if perlish.is_file(inv, inv.path(run.catalog_path)):
                run.create_backup()
        else:
            run.read_catalog_data()
            if not run.del_entry(b(key)):
                return 1
            run.create_backup()
        run.write_catalog_data()
        run.write_catalog()
    except _Died as d:
        return d.status
    return 0
