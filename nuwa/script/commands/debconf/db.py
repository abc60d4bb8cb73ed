"""debconf's databases: the ``File`` driver's rfc822-like format, the drivers, ``debconf.conf``.

An image keeps debconf's state in ``/var/cache/debconf/config.dat``, ``passwords.dat`` and
``templates.dat`` (``debconf.conf``: two ``File`` drivers stacked as the config database,
passwords kept apart by ``Reject-Type``/``Accept-Type: password``, and one ``File`` driver for
templates). This module mirrors debconf 1.5.82:

- :func:`parse_db` / :func:`format_db` are ``Debconf::Format::822`` ``read``/``write``: a
  record is ``Name:``, the fields (keys lowercased when read, sorted and ``ucfirst``-ed when
  written, newlines carried as ``\\n``), ``Owners:``, ``Flags:`` (only the true ones) and an
  indented ``Variables:`` block. Items are written sorted by name. The format is canonical, so
  ``format_db(parse_db(t)) == t`` for every file debconf wrote (tested on real trees).
- :class:`FileDriver` and :class:`StackDriver` are ``Debconf::DbDriver::Cache``/``File`` and
  ``Stack``: the same item operations, the same *dirty* bookkeeping (a driver rewrites its
  file, rotating ``-old`` when ``Backup`` is on, only when something was set), the same
  accept/reject rules that put password questions in ``passwords.dat``.
- :func:`load_databases` reads ``debconf.conf`` from the image (``Debconf::Config::load``);
  a layout using another driver (``DirTree``, ``LDAP``, ``Pipe``...) or the ``DEBCONF_DB_*``
  overrides raises :class:`Defer`: those are not simulated.
- :func:`parse_templates` is ``Debconf::Template::load``'s parser for a package's
  ``templates`` file (extended descriptions joined as debconf joins them).

Parsing is pure (text in, objects out); reading and writing the image is in
:class:`FileDriver` ``load``/``save`` only.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
from dataclasses import dataclass, field

from nuwa.script.context import Defer

ENC = "utf-8"
ERRORS = "surrogateescape"


def _lc(s: str) -> str:
    """Perl ``lc`` on a byte string: ASCII letters only."""
    return s.translate(_LOWER)


def _ucfirst(s: str) -> str:
    """Perl ``ucfirst`` on a byte string: an ASCII first letter only."""
    return s[:1].translate(_UPPER) + s[1:]


#: Perl's ``\s`` on a byte string
WS = " \t\n\r\f\v"
_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def _bkey(s: str) -> bytes:
    """Perl's default ``sort`` compares the bytes of the strings."""
    return s.encode(ENC, ERRORS)


@dataclass
class Item:
    """One record: a question (config database) or a template (templates database)."""

    fields: dict[str, str] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    def copy(self) -> "Item":
        return Item(dict(self.fields), dict(self.owners), dict(self.flags), dict(self.variables))


# ---------------------------------------------------------------------------------------
# Debconf::Format::822
# ---------------------------------------------------------------------------------------


def parse_db(text: str) -> dict[str, Item]:
    """Parse a ``File`` driver database (``Format::822::read`` repeated to the end)."""
    items: dict[str, Item] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        name = None
        it = Item()
        invars = False
        while i < len(lines):
            line = lines[i]
            i += 1
            if line == "":
                break
            if invars:
                if line[:1] and line[0] in WS:
                    var, _, value = _split_var(line.lstrip(WS))
                    it.variables[var] = value.replace("\\n", "\n")
                    continue
                invars = False
            key, sep, value = line.partition(":")
            if sep and value[:1] and value[0] in WS:
                value = value[1:]
            key = _lc(key)
            if key == "owners":
                for o in re.split(r",\s+", value):
                    it.owners[o] = 1
            elif key == "flags":
                for f in re.split(r",\s+", value):
                    it.flags[f] = "true"
            elif key == "variables":
                invars = True
            elif key == "name":
                name = value
            elif key:
                it.fields[key] = value.replace("\\n", "\n")
        if name is not None:
            items[name] = it
    return items


def _split_var(line: str) -> tuple[str, str, str]:
    m = re.search(r"[ \t\n\r\f\v]*=[ \t\n\r\f\v]?", line)
    if m is None:
        return line, "", ""
    return line[: m.start()], "=", line[m.end():]


def format_item(name: str, it: Item) -> str:
    """One record as ``Format::822::write`` prints it."""
    out = [f"Name: {name}\n"]
    for k in sorted(it.fields, key=_bkey):
        v = it.fields[k] or ""  # undef (a DATA field without Text::Iconv) prints empty
        out.append(_ucfirst(k) + ": " + v.replace("\n", "\\n") + "\n")
    if it.owners:
        out.append("Owners: " + ", ".join(sorted(it.owners, key=_bkey)) + "\n")
    true_flags = sorted((f for f, v in it.flags.items() if v == "true"), key=_bkey)
    if true_flags:
        out.append("Flags: " + ", ".join(true_flags) + "\n")
    if it.variables:
        out.append("Variables:\n")
        for k in sorted(it.variables, key=_bkey):
            out.append(f" {k} = " + it.variables[k].replace("\n", "\\n") + "\n")
    out.append("\n")
    return "".join(out)


def format_db(items: dict[str, Item | None]) -> str:
    """A whole database file as ``DbDriver::File::shutdown`` writes it (deleted items skipped)."""
    return "".join(format_item(n, items[n]) for n in sorted(items, key=_bkey) if items[n] is not None)


# ---------------------------------------------------------------------------------------
# Debconf::DbDriver::Cache + File
# ---------------------------------------------------------------------------------------


class FileDriver:
    """A ``File`` driver: every item in memory, the file rewritten at shutdown if dirty."""

    def __init__(self, name: str, filename: str, mode: int = 0o600, backup: bool = True,
                 readonly: bool = False, required: bool = True, accept_type: str | None = None,
                 reject_type: str | None = None, accept_name: str | None = None,
                 reject_name: str | None = None):
        self.name = name
        self.filename = filename
        self.mode = mode
        self.backup = backup
        self.readonly = readonly
        self.required = required
        self.accept_type = re.compile(accept_type, re.I) if accept_type else None
        self.reject_type = re.compile(reject_type, re.I) if reject_type else None
        self.accept_name = re.compile(accept_name, re.I) if accept_name else None
        self.reject_name = re.compile(reject_name, re.I) if reject_name else None
        self.cache: dict[str, Item | None] = {}
        self.dirty: set[str] = set()
        #: the template database, for accept/reject by type (set by the Databases)
        self.templates: "FileDriver | None" = None

    # ---- I/O at the edges ----------------------------------------------------------------
    def load(self, fs, umask: int = 0o022) -> None:
        """``File::init``: create a missing file (and its directory), then read every item."""
        d = posixpath.dirname(self.filename)
        if d and not fs.exists(d):
            fs.mkdir(d, 0o777 & ~umask)
        try:
            data = fs.read_bytes(self.filename)
        except FileNotFoundError:
            self.backup = False
            fs.write_bytes(self.filename, b"", self.mode & ~umask)
            data = b""
        except OSError as e:
            if self.required:
                raise Defer(f"debconf database {self.filename}: {os.strerror(e.errno or errno.EIO)}") from None
            data = b""
        self.cache = dict(parse_db(data.decode(ENC, ERRORS)))
        self.dirty = set()

    def save(self, fs, umask: int = 0o022) -> bool:
        """``File::shutdown``: write ``FILE-new``, rotate ``FILE-old``, rename; False if clean."""
        if self.readonly or not self.dirty:
            return False
        new = self.filename + "-new"
        if fs.lexists(new):
            fs.unlink(new)  # sysopen O_TRUNC keeps an old inode's mode; a fresh file is exact enough
        fs.write_bytes(new, format_db(self.cache).encode(ENC, ERRORS), self.mode & ~umask)
        if self.backup and fs.exists(self.filename):
            fs.rename(self.filename, self.filename + "-old")
        fs.rename(new, self.filename)
        self.dirty = set()
        return True

    # ---- Cache semantics -----------------------------------------------------------------
    def exists(self, item: str) -> bool:
        return self.cache.get(item) is not None

    def accept(self, item: str, type_: str | None = None) -> bool:
        """``DbDriver::accept``: the name and type filters of this driver."""
        if self.accept_name is not None and not self.accept_name.search(item):
            return False
        if self.reject_name is not None and self.reject_name.search(item):
            return False
        if self.accept_type is not None or self.reject_type is not None:
            if not type_:
                tname = self.getfield(item, "template")
                t = self.templates.cache.get(tname) if (self.templates and tname is not None) else None
                if t is None:
                    return True
                type_ = t.fields.get("type", "")
            if self.accept_type is not None and not self.accept_type.search(type_):
                return False
            if self.reject_type is not None and self.reject_type.search(type_):
                return False
        return True

    def iterate(self) -> list[str]:
        return [n for n, v in self.cache.items() if v is not None]

    def addowner(self, item: str, owner: str, type_: str | None = None):
        if self.readonly:
            return None
        it = self.cache.get(item)
        if it is None:
            if not self.accept(item, type_):
                return None
            it = self.cache[item] = Item()
        if owner not in it.owners:
            it.owners[owner] = 1
            self.dirty.add(item)
        return owner

    def removeowner(self, item: str, owner: str):
        if self.readonly:
            return None
        it = self.cache.get(item)
        if it is None:
            return None
        if owner in it.owners:
            del it.owners[owner]
            self.dirty.add(item)
        if not it.owners:
            self.cache[item] = None
            self.dirty.add(item)
        return owner

    def owners(self, item: str) -> list[str]:
        it = self.cache.get(item)
        return list(it.owners) if it is not None else []

    def getfield(self, item: str, name: str) -> str | None:
        it = self.cache.get(item)
        return it.fields.get(name) if it is not None else None

    def setfield(self, item: str, name: str, value: str):
        if self.readonly or self.cache.get(item) is None:
            return None
        self.dirty.add(item)
        self.cache[item].fields[name] = value
        return value

    def removefield(self, item: str, name: str):
        if self.readonly or self.cache.get(item) is None:
            return None
        self.dirty.add(item)
        return self.cache[item].fields.pop(name, None)

    def fields(self, item: str) -> list[str]:
        it = self.cache.get(item)
        return list(it.fields) if it is not None else []

    def getflag(self, item: str, flag: str) -> str | None:
        it = self.cache.get(item)
        if it is None:
            return None
        return it.flags.get(flag, "false")

    def setflag(self, item: str, flag: str, value: str):
        if self.readonly or self.cache.get(item) is None:
            return None
        self.dirty.add(item)
        self.cache[item].flags[flag] = value
        return value

    def flags(self, item: str) -> list[str]:
        it = self.cache.get(item)
        return list(it.flags) if it is not None else []

    def getvariable(self, item: str, var: str) -> str | None:
        it = self.cache.get(item)
        return it.variables.get(var) if it is not None else None

    def setvariable(self, item: str, var: str, value: str):
        if self.readonly or self.cache.get(item) is None:
            return None
        self.dirty.add(item)
        self.cache[item].variables[var] = value
        return value

    def variables(self, item: str) -> list[str]:
        it = self.cache.get(item)
        return list(it.variables) if it is not None else []


class StackDriver:
    """``DbDriver::Stack``: queries go to the first driver that answers, changes to the driver
    that holds the item (or the first one that accepts it, copying the item there)."""

    def __init__(self, name: str, stack: list[FileDriver]):
        self.name = name
        self.stack = stack
        self.readonly = False

    def drivers(self) -> list[FileDriver]:
        return list(self.stack)

    def exists(self, item: str) -> bool:
        return any(d.exists(item) for d in self.stack)

    def iterate(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in reversed(self.stack):  # Stack::iterator pops the last driver's iterator first
            for n in d.iterate():
                seen.setdefault(n, None)
        return list(seen)

    def _query(self, cmd: str, item: str, *args, many: bool = False):
        for d in self.stack:
            r = getattr(d, cmd)(item, *args)
            if (r if many else r is not None):
                return r
        return [] if many else None

    def _change(self, cmd: str, item: str, *args):
        for d in self.stack:
            if d.exists(item):
                if d.readonly:
                    break
                return getattr(d, cmd)(item, *args)
        src = None
        for d in self.stack:
            if d.exists(item):
                nochange = _nochange(d, cmd, item, *args)
                if nochange is not _CHANGE:
                    return nochange
                src = d
                break
        writer = None
        for d in self.stack:
            if d is src:
                return None
            if not d.readonly:
                ok = d.accept(item, args[1] if cmd == "addowner" and len(args) > 1 else None)
                if ok:
                    writer = d
                    break
        if writer is None:
            return None
        if src is not None:
            writer.cache[item] = src.cache[item].copy()
            writer.dirty.add(item)
        return getattr(writer, cmd)(item, *args)

    def addowner(self, item, owner, type_=None):
        return self._change("addowner", item, owner, type_)

    def removeowner(self, item, owner):
        return self._change("removeowner", item, owner)

    def setfield(self, item, name, value):
        return self._change("setfield", item, name, value)

    def removefield(self, item, name):
        return self._change("removefield", item, name)

    def setflag(self, item, flag, value):
        return self._change("setflag", item, flag, value)

    def setvariable(self, item, var, value):
        return self._change("setvariable", item, var, value)

    def owners(self, item):
        return self._query("owners", item, many=True)

    def fields(self, item):
        return self._query("fields", item, many=True)

    def flags(self, item):
        return self._query("flags", item, many=True)

    def variables(self, item):
        return self._query("variables", item, many=True)

    def getfield(self, item, name):
        return self._query("getfield", item, name)

    def getflag(self, item, flag):
        return self._query("getflag", item, flag)

    def getvariable(self, item, var):
        return self._query("getvariable", item, var)


_CHANGE = object()


def _nochange(d: FileDriver, cmd: str, item: str, *args):
    """``Stack::_nochange``: the value a change would return when it changes nothing."""
    if cmd == "addowner":
        return args[0] if args[0] in d.owners(item) else _CHANGE
    if cmd == "removeowner":
        return _CHANGE if args[0] in d.owners(item) else args[0]
    if cmd == "removefield":
        return _CHANGE if args[0] in d.fields(item) else args[0]
    lst, get = {"setfield": (d.fields, d.getfield), "setflag": (d.flags, d.getflag),
                "setvariable": (d.variables, d.getvariable)}[cmd]
    cur = get(item, args[0])
    if args[0] not in lst(item) or cur == args[1]:
        return cur
    return _CHANGE


# ---------------------------------------------------------------------------------------
# debconf.conf (Debconf::Config::load) and the two databases
# ---------------------------------------------------------------------------------------


@dataclass
class Databases:
    """The loaded ``config`` and ``templates`` databases plus the global configuration."""

    config: StackDriver | FileDriver
    templates: FileDriver
    drivers: list[FileDriver]
    settings: dict[str, str]

    def save(self, fs, umask: int = 0o022) -> list[str]:
        """``Debconf::Db::save``: shut every driver down; the files rewritten."""
        return [d.filename for d in self.drivers if d.save(fs, umask)]


def parse_conf(text: str, env: dict[str, str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """``debconf.conf``: the global stanza (keys lowercased, ``-`` as ``_``) and the driver
    stanzas, with ``${VAR}`` replaced from the environment as ``_hashify`` does."""
    stanzas: list[dict[str, str]] = []
    for chunk in re.split(r"\n\n", text):
        chunk = re.sub(r"\$\{([^}]+)\}", lambda m: env.get(m.group(1), ""), chunk)
        h: dict[str, str] = {}
        for line in chunk.split("\n"):
            if re.match(r"\s*#", line) or not line.strip():
                continue
            key, _, value = _kv(line.strip())
            h[_lc(key.replace("-", "_"))] = value
        if h:
            stanzas.append(h)
    if not stanzas:
        raise Defer("debconf.conf has no global stanza")
    return stanzas[0], stanzas[1:]


def _kv(line: str) -> tuple[str, str, str]:
    m = re.search(r"\s*:\s*", line)
    if m is None:
        return line, "", ""
    return line[: m.start()], ":", line[m.end():]


CONF_FILES = ("/etc/debconf.conf", "/usr/share/debconf/debconf.conf")


def load_databases(fs, env: dict[str, str], umask: int = 0o022, home: str = "/root") -> Databases:
    """Read ``debconf.conf`` as ``Debconf::Config::load`` finds it and load the databases."""
    for var in ("DEBCONF_DB_REPLACE", "DEBCONF_DB_OVERRIDE", "DEBCONF_DB_FALLBACK"):
        if var in env:
            raise Defer(f"{var} database overrides are not simulated")
    files = [env["DEBCONF_SYSTEMRC"]] if env.get("DEBCONF_SYSTEMRC") else [posixpath.join(home, ".debconfrc")]
    files += list(CONF_FILES)
    root = env.get("DPKG_ROOT", "")
    if root:
        raise Defer("DPKG_ROOT is set: debconf on another root is not simulated")
    text = None
    for f in files:
        if fs.exists(f):
            text = fs.read_bytes(f).decode(ENC, ERRORS)
            break
    if text is None:
        raise Defer("no debconf.conf in the image")
    settings, stanzas = parse_conf(text, env)
    if "config" not in settings or "templates" not in settings:
        raise Defer("debconf.conf names no Config or Templates database")
    named: dict[str, FileDriver | StackDriver] = {}
    files_: list[FileDriver] = []
    for st in stanzas:
        drv = st.get("driver", "")
        name = st.get("name", "(unknown)")
        if drv == "File":
            if "filename" not in st:
                raise Defer(f"debconf database {name} has no Filename")
            d = FileDriver(
                name, st["filename"], int(st["mode"], 8) if "mode" in st else 0o600,
                _bool(st.get("backup"), True), _bool(st.get("readonly"), False),
                _bool(st.get("required"), True), st.get("accept_type"), st.get("reject_type"),
                st.get("accept_name"), st.get("reject_name"))
            named[name] = d
            files_.append(d)
        elif drv == "Stack":
            parts = [p for p in re.split(r"\s*,\s", st.get("stack", "")) if p]
            members = [named[p] for p in parts if p in named]
            if not members or any(not isinstance(m, FileDriver) for m in members):
                raise Defer(f"debconf stack {name}: only stacks of File databases are simulated")
            named[name] = StackDriver(name, members)  # type: ignore[arg-type]
        else:
            raise Defer(f"debconf database driver {drv or '(none)'} ({name}) is not simulated")
    config, templates = named.get(settings["config"]), named.get(settings["templates"])
    if config is None or not isinstance(templates, FileDriver):
        raise Defer("debconf.conf: Config/Templates database not defined")
    used = config.drivers() if isinstance(config, StackDriver) else [config]
    used = used + [templates]
    for d in used:
        d.templates = templates
        try:
            d.load(fs, umask)
        except OSError as e:
            raise Defer(f"debconf database {d.filename}: {os.strerror(e.errno or errno.EIO)}") from None
    return Databases(config, templates, used, settings)


def _bool(v: str | None, default: bool) -> bool:
    if v is None:
        return default
    if v.lower() == "true":
        return True
    if v.lower() == "false":
        return False
    return bool(v)


# ---------------------------------------------------------------------------------------
# a package's templates file (Debconf::Template::load's parser)
# ---------------------------------------------------------------------------------------

_KNOWN = {"template", "description", "choices", "default", "type"}


class TemplateError(ValueError):
    """A templates file debconf would refuse (its own message)."""


def parse_templates(text: str, filename: str = "templates") -> list[dict[str, str]]:
    """Stanzas of a templates file: ``{field: value, "extended_"+field: text}``, keys lowercased.

    Stanzas are what ``$/ = "\\n\\n"`` reads; a continuation line ``" ."`` is a paragraph
    break, lines indented twice are kept verbatim, others are joined with spaces.
    """
    out = []
    chunks = text.split("\n\n")
    if chunks and chunks[-1] == "":
        chunks.pop()
    for n, chunk in enumerate(chunks, 1):
        chunk = chunk.strip("\n")
        data: dict[str, str] = {}
        fld, value, ext = "", "", ""

        def save(fld: str, value: str, ext: str) -> None:
            ext = ext.rstrip("\n")
            if fld:
                if fld in data:
                    raise TemplateError(f'Template #{n} in {filename} has a duplicate field "{fld}" with new value "{value}". '
                                        "Probably two templates are not properly separated by a lone newline.")
                data[fld] = value
                if ext:
                    data["extended_" + fld] = ext

        for line in chunk.split("\n") if chunk else []:
            m = re.match(r"([-_@.A-Za-z0-9]*):[ \t\r\f\v]?(.*)", line)
            if m:
                save(fld, value, ext)
                fld, value, ext = _lc(m.group(1)), m.group(2).rstrip(WS), ""
            elif len(line) == 2 and line[0] in WS and line[1] == ".":
                ext += "\n\n"
            elif len(line) >= 2 and line[0] in WS and line[1] in WS:
                bit = line[1:].rstrip(WS)
                if ext and not ext.endswith(("\n", " ")):
                    ext += "\n"
                ext += bit + "\n"
            elif line[:1] and line[0] in WS:
                bit = line[1:].rstrip(WS)
                if ext and not ext.endswith(("\n", " ")):
                    ext += " "
                ext += bit
            else:
                raise TemplateError(f"Template parse error near `{line}', in stanza #{n} of {filename}")
        save(fld, value, ext)
        if not data.get("template"):
            raise TemplateError(f"Template #{n} in {filename} does not contain a 'Template:' line")
        out.append(data)
    return out
