"""apt-listchanges's debconf helper: the Python program its ``config`` and ``postinst`` write and run.

apt-listchanges 3.24 (Debian 12) keeps its settings in ``/etc/apt/listchanges.conf`` (an INI
file read and written with Python's ``configparser``) and mirrors them in debconf. Both its
``config`` and its ``postinst`` write the same program (``debconf-helper.py``, a here-document)
into a ``mktemp`` directory and run ``python3 -B HELPER config|postinst CONFIG_FILE ARGS``;
the ``config`` first probes ``python3 -B -c 'import debconf'``. Nuwa never runs the image's
Python: this module recognises that exact program by its SHA-256 and does what it does with
the debconf database (through the running frontend's
:class:`~nuwa.script.commands.debconf.confmodule.ConfModule`, the protocol lines
``python3-debconf``'s ``Debconf.command`` writes) and with the file, as CPython 3.11's
``configparser`` reads and writes it (``RawConfigParser._read`` and ``write`` with
``space_around_delimiters=False``; ``BasicInterpolation`` on ``get`` and ``set``).

Guards: the helper's text (an unknown version is deferred), ``python3-debconf``'s
``debconf.py`` (1.5.82) and the stdlib's ``configparser.py`` (3.11.2) by SHA-256, no other
``debconf``/``configparser`` earlier on ``sys.path`` and no ``.pth`` file in the site
directories (they run code at start-up), no ``PYTHON*`` variable, ``-B`` given (without it the
imports may write byte code). Deferred with the reason, before anything is written, where the
real program would raise (a value ``getboolean`` refuses, an interpolation, a debconf error
reply), print debug output (``APT_LISTCHANGES_DEBCONF_DEBUG``) or where the model cannot be
sure of its reading (non-ASCII text, ``\\r``, the ``DEFAULT`` section).
"""

from __future__ import annotations

import posixpath
import re

from nuwa.script.commands._common import content_sha256
from nuwa.script.context import Defer, Invocation
from nuwa.script.record import ScriptDeferred

#: SHA-256 of the helper program apt-listchanges 3.24's config and postinst write
KNOWN_HELPER = {"bf0b72952fa29b3f0db70b9171de33f48d8dc06cb460e763911543ea51801906"}
#: SHA-256 of python3-debconf 1.5.82's /usr/lib/python3/dist-packages/debconf.py
KNOWN_DEBCONF = {"5f0673343daddd98d7dfe32507b9b8a641535563c23c4910acc55d2824d25e12"}
#: SHA-256 of libpython3.11-minimal 3.11.2's /usr/lib/python3.11/configparser.py
KNOWN_CONFIGPARSER = {"d1529aa3309cdc969c1c4e8bfa0cc7d3fc6a72b134e3a6865ee8456cb4f23d7a"}
DEBCONF_PY = "/usr/lib/python3/dist-packages/debconf.py"
SECTION = "apt"
DEFAULT_SEEN_DB = "/var/lib/apt/listchanges.db"
#: NAMES of the helper, in question order: (template, priority, handler, check)
QUESTIONS = [("frontend", "medium", "list", "frontend"), ("which", "medium", "list", "which"),
             ("no-network", "high", "boolean", None), ("email-address", "low", "string", "email"),
             ("email-format", "low", "list", None), ("confirm", "low", "boolean", None),
             ("headers", "low", "boolean", None), ("reverse", "low", "boolean", None),
             ("save-seen", "low", "seen", None)]
BOOLEAN_STATES = {"1": True, "yes": True, "true": True, "on": True, "0": False, "no": False, "false": False,
                  "off": False}


# ---- where Python finds a module -----------------------------------------------------------

def _site_dirs(inv: Invocation, version: str) -> list[str]:
    home = inv.env.get("HOME", "/root")
    return [f"/usr/local/lib/python{version}/dist-packages", "/usr/lib/python3/dist-packages",
            f"/usr/lib/python{version}/dist-packages", f"{home}/.local/lib/python{version}/site-packages"]


def sys_path(inv: Invocation, first: str, version: str) -> list[str]:
    """``sys.path`` of Debian's python3.X started with no PYTHON* variable: the script's
    directory (or the working directory for ``-c``), the stdlib, then the site directories."""
    return [first, f"/usr/lib/python{version.replace('.', '')}.zip", f"/usr/lib/python{version}",
            f"/usr/lib/python{version}/lib-dynload"] + _site_dirs(inv, version)


def check_startup(inv: Invocation, version: str) -> None:
    """Defer what would make the interpreter run other code at start-up or read another path."""
    for k in inv.env:
        if k.startswith("PYTHON"):
            raise Defer(f"python{version}: ${k} changes how the interpreter starts")
    for d in _site_dirs(inv, version):
        try:
            names = inv.fs.listdir(d)
        except OSError:
            continue
        pth = sorted(n for n in names if n.endswith(".pth"))
        if pth:
            raise Defer(f"python{version}: {d}/{pth[0]} runs at start-up (site.py); not modelled")


def find_module(inv: Invocation, name: str, path: list[str]) -> str | None:
    """The plain ``NAME.py`` the path finder imports, None if nothing is found; ``Defer`` if a
    package, extension, byte-code file or zip archive could supply it first."""
    for d in path:
        if d.endswith(".zip"):
            if inv.fs.exists(d):
                raise Defer(f"python: {d} is on sys.path (a zip archive is not modelled)")
            continue
        base = posixpath.join(d, name)
        for cand in (base, base + ".pyc") + tuple(base + s for s in (".so", ".abi3.so")):
            if inv.fs.exists(cand):
                raise Defer(f"python: {cand} could supply module {name!r}; not modelled")
        try:
            names = inv.fs.listdir(d)
        except OSError:
            continue
        if any(n.startswith(name + ".cpython-") and n.endswith(".so") for n in names):
            raise Defer(f"python: an extension module {name!r} in {d}; not modelled")
        if inv.fs.exists(base + ".py"):
            return base + ".py"
    return None


def _no_module(inv: Invocation, name: str, where: str) -> int:
    inv.err(f'Traceback (most recent call last):\n  File "{where}", line 1, in <module>\n'
            f"ModuleNotFoundError: No module named '{name}'\n")
    return 1


def import_probe(inv: Invocation, version: str, code: str) -> int:
    """``python3 -B -c 'import debconf'``: 0 when python3-debconf's module is found, else the
    ModuleNotFoundError traceback and status 1."""
    check_startup(inv, version)
    found = find_module(inv, "debconf", sys_path(inv, inv.cwd, version))
    if found is None:
        return _no_module(inv, "debconf", "<string>")
    if found != DEBCONF_PY or content_sha256(inv.fs, found) not in KNOWN_DEBCONF:
        raise Defer(f"python{version} -c {code!r}: {found} is not python3-debconf 1.5.82's")
    return 0


# ---- configparser (CPython 3.11, ConfigParser() with its defaults) ---------------------------

_SECTCRE = re.compile(r"\[(?P<header>.+)\]")
_OPTCRE = re.compile(r"(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$")
_KEYCRE = re.compile(r"%\(([^)]+)\)s")


class Config:
    """The sections of a ``ConfigParser``: name -> {option: value}, in file order."""

    def __init__(self):
        self.sections: dict[str, dict[str, str]] = {}

    def read(self, text: str, where: str) -> None:
        """``RawConfigParser._read`` for the default parser (``#``/``;`` whole-line comments, no
        inline comments, ``=``/``:``, strict, empty lines kept in values, lower-cased keys)."""
        cursect: dict[str, list[str]] | None = None
        sectname = optname = None
        indent = 0
        seen: set = set()
        lists: dict[str, dict[str, list[str]]] = {}
        for line in re.findall(r"[^\n]*\n|[^\n]+$", text):  # a text file's lines end at \n only
            comment = line.strip().startswith(("#", ";"))
            value = "" if comment else line.strip()
            if not value:
                if not comment and cursect is not None and optname:
                    cursect[optname].append("")
                continue
            m = re.search(r"\S", line)
            cur = m.start() if m else 0
            if cursect is not None and optname and cur > indent:
                cursect[optname].append(value)
                continue
            indent = cur
            mo = _SECTCRE.match(value)
            if mo:
                sectname = mo.group("header")
                if sectname == "DEFAULT":
                    raise Defer(f"{where}: a [DEFAULT] section (its values join every section); not modelled")
                if sectname in seen:
                    raise Defer(f"{where}: section {sectname!r} twice (configparser raises); not modelled")
                seen.add(sectname)
                cursect = lists.setdefault(sectname, {})
                optname = None
            elif cursect is None:
                raise Defer(f"{where}: no section header before a value (configparser raises); not modelled")
            else:
                mo = _OPTCRE.match(value)
                if not mo or not mo.group("option"):
                    raise Defer(f"{where}: a line configparser cannot parse (it raises); not modelled")
                optname = mo.group("option").rstrip().lower()
                if (sectname, optname) in seen:
                    raise Defer(f"{where}: option {optname!r} twice in [{sectname}] (configparser raises)")
                seen.add((sectname, optname))
                cursect[optname] = [mo.group("value").strip()]
        for name, opts in lists.items():  # _join_multiline_values
            self.sections[name] = {k: "\n".join(v).rstrip() for k, v in opts.items()}

    def get(self, option: str) -> str | None:
        """``get(SECTION, option, fallback=None)`` with BasicInterpolation (deferred if it applies)."""
        value = self.sections.get(SECTION, {}).get(option)
        if value is not None and "%" in value:
            raise Defer(f"configparser: interpolation of {option}={value!r}; not modelled")
        return value

    def getboolean(self, option: str) -> bool | None:
        value = self.get(option)
        if value is None:
            return None
        if value.lower() not in BOOLEAN_STATES:
            raise Defer(f"configparser: {option}={value!r} is not a boolean (the helper raises ValueError)")
        return BOOLEAN_STATES[value.lower()]

    def set(self, option: str, value: str) -> None:
        """``set`` through BasicInterpolation.before_set (a lone ``%`` raises ValueError)."""
        if "%" in _KEYCRE.sub("", value.replace("%%", "")):
            raise Defer(f"configparser: {value!r} is refused by set() (ValueError); not modelled")
        if "%" in value:
            raise Defer(f"configparser: interpolation syntax in {value!r}; not modelled")
        self.sections.setdefault(SECTION, {})[option] = value

    def write(self) -> str:
        """``write(fp, space_around_delimiters=False)``."""
        out = []
        for name, opts in self.sections.items():
            out.append(f"[{name}]\n")
            out += [f"{k}={str(v).replace(chr(10), chr(10) + chr(9))}\n" for k, v in opts.items()]
            out.append("\n")
        return "".join(out)


# ---- python3-debconf's Debconf on the running frontend ---------------------------------------

class DebconfError(Exception):
    """A reply other than 0/1: the helper does not catch it (a traceback, status 1)."""


class Debconf:
    """``debconf.Debconf`` (1.5.82): one ``COMMAND params\\n`` line, one reply line."""

    def __init__(self, cm):
        self.cm = cm
        version = self.command("version", 2)
        if version[:2] != "2.":
            raise Defer(f"debconf: wrong version {version!r} (the helper raises DebconfError)")
        self.command("capb")

    def command(self, command: str, *params) -> str:
        line = "%s %s" % (command.upper(), " ".join(map(str, params)))
        if "\n" in line or not line.isascii():
            raise Defer(f"debconf: the line {line[:60]!r} is not modelled (newline or non-ASCII)")
        resp = self.cm.handle(line)
        if not resp.isascii():
            raise Defer("debconf: a non-ASCII reply (the helper decodes it by its locale); not modelled")
        status, _, data = resp.partition(" ") if " " in resp else (resp, "", "")
        try:
            code = int(status)
        except ValueError:
            raise Defer(f"debconf: reply {resp!r} (the helper raises ValueError)") from None
        if code == 0:
            return data
        if code == 1:
            return "".join(("\n" if c[1] == "n" else c[1]) if c.startswith("\\") and len(c) == 2 else c
                           for c in re.split(r"(\\.)", data))
        raise DebconfError(code, data)

    def force_input(self, priority: str, question: str) -> None:
        try:
            self.command("input", priority, question)
        except DebconfError as e:
            if e.args[0] != 30:
                raise

    def get(self, question: str) -> str:
        return self.command("get", question)


# ---- the helper's main ---------------------------------------------------------------------

class Helper:
    """One run of debconf-helper.py: ``argv`` its arguments after the program path."""

    def __init__(self, inv: Invocation, db: Debconf, config: Config, postinst: bool):
        self.inv, self.db, self.config, self.postinst = inv, db, config, postinst
        self.skip = {name: False for name, *_ in QUESTIONS}

    def handle(self, kind: str, key: str, tmpl: str, from_config: bool) -> None:
        """``_handleString``/``_handleList``/``_handleBoolean``/``_handleSeen``."""
        c, db = self.config, self.db
        if kind == "string":
            if from_config:
                value = c.get(key)
                db.command("set", tmpl, "" if value == "none" else value)
            else:
                value = db.get(tmpl)
                c.set(key, "none" if value == "" else value)
        elif kind == "list":
            if from_config:
                db.command("set", tmpl, c.get(key).lower())
            else:
                c.set(key, db.get(tmpl))
        elif kind == "boolean":
            value = c.getboolean(key)
            if from_config:
                db.command("set", tmpl, str(value).lower())
            else:
                new = db.get(tmpl) == "true"
                if value is None or value != new:
                    c.set(key, str(new).lower())
        else:  # seen: a path in the file, a boolean in debconf
            value = c.get(key)
            if from_config:
                db.command("set", tmpl, str(value and value != "none").lower())
                return
            if db.get(tmpl) != "true":
                value = "none"
            elif not value or value == "none":
                value = DEFAULT_SEEN_DB
            c.set(key, value)

    def check(self, which: str, value: str) -> bool:
        """``_checkFrontend``/``_checkWhich``/``_checkEmailAddress``: True ends the walk."""
        if which == "frontend":
            if value == "none":
                return True
            self.skip["confirm"] = value == "mail"
        elif which == "which":
            self.skip["no-network"] = value == "news"
        else:
            self.skip["email-format"] = not value
        return False

    def run(self) -> None:
        if not self.postinst:  # _updateDebconfFromConfig (NAMES' order is the question order)
            for name, _prio, kind, _check in QUESTIONS:
                key = name.replace("-", "_")
                if key in self.config.sections.get(SECTION, {}):
                    self.handle(kind, key, f"apt-listchanges/{name}", True)
                    self.db.command("fset", f"apt-listchanges/{name}", "seen", "true")
        for name, prio, kind, check in QUESTIONS:  # _communicateWithDebconf
            tmpl = f"apt-listchanges/{name}"
            if self.skip[name]:
                continue
            if self.postinst:
                self.handle(kind, name.replace("-", "_"), tmpl, False)
            else:
                self.db.force_input(prio, tmpl)
                if check:
                    self.db.command("go")
            if check and self.check(check, self.db.get(tmpl)):
                return
        if not self.postinst:
            self.db.command("go")


def _precheck(config: Config, postinst: bool, label: str) -> None:
    """What would make the helper raise on the file's values, found before the first debconf
    command (the config mode SETs as it goes; a deferral then would leave half of it done)."""
    opts = config.sections.get(SECTION, {})
    for name, _prio, kind, _check in QUESTIONS:
        key = name.replace("-", "_")
        if key not in opts:
            continue
        config.get(key)  # an interpolation defers
        if kind == "boolean":
            config.getboolean(key)
        if not postinst and "\n" in opts[key]:
            raise Defer(f"{label}: {key}'s value spans lines (the debconf SET line would break)")


def recognise(inv: Invocation, script: str) -> bool:
    """Whether ``script`` (a path in the image) is the helper this module models."""
    return content_sha256(inv.fs, script) in KNOWN_HELPER


def run_helper(inv: Invocation, version: str, flags: str, script: str, args: list[str]) -> int:
    """``python3 -B HELPER config|postinst CONFIG_FILE ...`` under the running frontend.

    What the helper leaves (the debconf answers, ``CONFIG_FILE.new``) is what the rest of the
    script works on, so a deferral here defers the whole script, never the command alone.
    """
    try:
        return _run_helper(inv, version, flags, script, args)
    except Defer as e:
        raise ScriptDeferred(f"`{inv.argv[0]}` runs apt-listchanges's debconf helper: {e}") from None


def _run_helper(inv: Invocation, version: str, flags: str, script: str, args: list[str]) -> int:
    # late: the debconf frontend and its config models load only when a helper runs
    from nuwa.script.commands.debconf.frontend import CONFMODULES

    label = f"apt-listchanges's {posixpath.basename(script)}"
    if "B" not in flags:
        raise Defer(f"{label}: without -B the interpreter may write byte code; not modelled")
    check_startup(inv, version)
    path = sys_path(inv, posixpath.dirname(script), version)
    for mod, want, known in (("configparser", f"/usr/lib/python{version}/configparser.py", KNOWN_CONFIGPARSER),
                             ("debconf", DEBCONF_PY, KNOWN_DEBCONF)):  # imported before main() runs
        found = find_module(inv, mod, path)
        if found is None:  # the traceback names the helper's line and source: not modelled
            raise Defer(f"{label}: no module {mod!r} on sys.path (the helper fails with a traceback)")
        if found != want or content_sha256(inv.fs, found) not in known:
            raise Defer(f"{label}: {found} is not a version modelled")
    if len(args) < 2:
        inv.err("Usage: script postinst|config config_file mainscript_params\n")
        return 1
    if "APT_LISTCHANGES_DEBCONF_DEBUG" in inv.env:
        raise Defer(f"{label}: the debug output of APT_LISTCHANGES_DEBCONF_DEBUG is not modelled")
    if "DEBIAN_HAS_FRONTEND" not in inv.env:
        raise Defer(f"{label}: runFrontEnd would exec debconf's frontend with the image's Python")
    running = inv.state.get(CONFMODULES)
    if not running:
        raise Defer(f"{label}: DEBIAN_HAS_FRONTEND is set but no debconf frontend is running")
    postinst = args[0] == "postinst"
    conf_path = inv.path(args[1])
    config = Config()
    try:
        st = inv.fs.stat(conf_path)
    except OSError:
        st = None  # configparser.read skips a file it cannot open
    if st is not None:
        if not st.is_reg:
            raise Defer(f"{label}: {conf_path} is not a regular file; not modelled")
        data = inv.fs.read_bytes(conf_path)
        if not data.isascii() or b"\r" in data:
            raise Defer(f"{label}: {conf_path} holds non-ASCII text or \\r (locale decoding, universal "
                        "newlines); not modelled")
        config.read(data.decode("ascii"), conf_path)
    config.sections.setdefault(SECTION, {})
    _precheck(config, postinst, label)
    try:
        Helper(inv, Debconf(running[-1]), config, postinst).run()
    except DebconfError as e:
        raise Defer(f"{label}: debconf replied {e.args[0]} {e.args[1]!r} (the helper raises DebconfError)") from None
    if postinst:
        new = conf_path + ".new"
        try:
            nst = inv.fs.lstat(new)
        except OSError:
            nst = None
        if nst is not None and not nst.is_reg:
            raise Defer(f"{label}: {new} exists and is not a regular file; not modelled")
        try:
            inv.fs.write_bytes(new, config.write().encode("ascii"), 0o666 & ~inv.umask)
            inv.fs.chmod(new, 0o644)
        except OSError as e:
            raise Defer(f"{label}: cannot write {new} ({e}); the helper's traceback is not modelled") from None
    return 0

