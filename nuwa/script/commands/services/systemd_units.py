"""systemd unit files as ``systemctl`` (systemd 252) sees them in an offline root.

This module holds what ``systemctl enable``/``is-enabled``/``preset`` need to know about unit
files, mirroring systemd's ``src/basic/unit-name.c`` (name classes), ``src/shared/
conf-parser.c`` (the ini syntax: continuation lines, comments, sections), the ``[Install]``
part of ``src/shared/install.c`` (``unit_file_load``, ``install_name_printf``'s specifiers,
``unit_file_search`` with drop-ins and templates, ``unit_file_resolve_symlink``) and
``src/basic/path-lookup.c`` (the search path). Everything reads the image through a
:class:`nuwa.fs.model.FileSystem`; nothing here writes.

Offline choices (documented in docs/command-models.md): the search path of the system
manager without the ``/run`` directories, because ``/run`` is an empty tmpfs when the image
boots and whatever an image holds there is never seen by systemd (``runtime=True`` restores
them, for tests of the runtime states); Debian's ``/lib/systemd/system`` comes before
``/usr/lib/systemd/system`` (Debian 12 builds systemd with ``rootprefix=/``), so on a
merged-``/usr`` image every symlink points into ``/lib/systemd/system`` as systemctl writes it.
"""

from __future__ import annotations

import errno
import fnmatch
import posixpath
import stat as st
from dataclasses import dataclass, field

from nuwa.fs.model import FileSystem

#: unit types (``unit_type_table``) and which may be aliased / templated (unit.c)
UNIT_TYPES = ("service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path",
              "slice", "scope")
_MAY_ALIAS = {"service", "socket", "target", "device", "timer", "path"}
_NO_TEMPLATE = {"device", "mount", "automount", "swap", "scope", "slice"}
_VALID = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\")
_VALID_AT = _VALID | {"@"}

PLAIN, TEMPLATE, INSTANCE = 1, 2, 4
ANY = PLAIN | TEMPLATE | INSTANCE
UNIT_NAME_MAX = 256

# install modes (InstallMode)
REGULAR, LINKED, ALIAS, MASKED = "regular", "linked", "alias", "masked"


class UnitError(Exception):
    """An install.c error: ``code`` is the negative errno systemd would return."""

    def __init__(self, code: int, path: str = ""):
        super().__init__(path)
        self.code = code
        self.path = path


# -- names (unit-name.c) ---------------------------------------------------------------------

def classify(name: str) -> int:
    """PLAIN, TEMPLATE or INSTANCE for a valid unit name, 0 otherwise (``unit_name_classify``)."""
    if not name or len(name) >= UNIT_NAME_MAX:
        return 0
    dot = name.rfind(".")
    if dot <= 0 or name[dot + 1:] not in UNIT_TYPES:
        return 0
    at = name.find("@")
    if at == -1:
        return PLAIN if all(c in _VALID for c in name[:dot]) else 0
    if at == 0 or not all(c in _VALID for c in name[:at]):
        return 0
    if at + 1 == dot:
        return TEMPLATE
    return INSTANCE if all(c in _VALID_AT for c in name[at + 1:dot]) else 0


def is_valid(name: str, kinds: int = ANY) -> bool:
    """``unit_name_is_valid(name, kinds)``."""
    return bool(classify(name) & kinds)


def unit_type(name: str) -> str | None:
    """The type suffix of a valid name, else None (``unit_name_to_type``)."""
    return name.rsplit(".", 1)[1] if is_valid(name) else None


def template_of(name: str) -> str | None:
    """``foo@bar.service`` -> ``foo@.service`` (None unless an instance or template)."""
    c = classify(name)
    if c == TEMPLATE:
        return name
    if c != INSTANCE:
        return None
    at, dot = name.find("@"), name.rfind(".")
    return name[: at + 1] + name[dot:]


def instance_of(name: str) -> str | None:
    """The instance ("" for a template, None for a plain name)."""
    at, dot = name.find("@"), name.rfind(".")
    return None if at < 0 else name[at + 1:dot]


def replace_instance(name: str, instance: str) -> str:
    """``unit_name_replace_instance``."""
    at, dot = name.find("@"), name.rfind(".")
    return name[: at + 1] + instance + name[dot:]


def prefix_of(name: str) -> str:
    """``unit_name_to_prefix``: the part before ``@`` or the suffix."""
    at = name.find("@")
    return name[:at] if at >= 0 else name[: name.rfind(".")]


def mangle(name: str, suffix: str = ".service") -> str | None:
    """systemctl's name mangling for the names scripts pass: a valid name stays, a name without a
    unit type gets ``suffix``; anything that would need escaping returns None (the caller defers)."""
    if is_valid(name):
        return name
    if "." in name and name.rsplit(".", 1)[1] in UNIT_TYPES:
        return None
    cand = name + suffix
    return cand if is_valid(cand) else None


# -- the ini syntax (conf-parser.c) ---------------------------------------------------------

def extract_words(value: str) -> tuple[list[str], bool]:
    """``extract_first_word`` with EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE, repeated.

    Returns (words, ok); ``ok`` is False on a syntax error (an unterminated quote or a trailing
    backslash), where systemd keeps the words before the bad one.
    """
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t\n\r":
            i += 1
        if i >= n:
            return words, True
        word, quote, seen = [], None, False
        while i < n:
            c = value[i]
            if c == "\\":
                if i + 1 >= n:
                    return words, False
                word.append(value[i:i + 2])
                i += 2
                continue
            if quote:
                if c == quote:
                    quote = None
                else:
                    word.append(c)
            elif c in "'\"":
                quote = c
            elif c in " \t\n\r":
                break
            else:
                word.append(c)
            seen = True
            i += 1
        if quote:
            return words, False
        if seen:
            words.append("".join(word))


@dataclass
class InstallSection:
    """The ``[Install]`` settings of one unit file (and its drop-ins), as ``unit_file_load`` keeps them."""

    aliases: list[str] = field(default_factory=list)
    wanted_by: list[str] = field(default_factory=list)
    required_by: list[str] = field(default_factory=list)
    upheld_by: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    default_instance: str | None = None

    def has_rules(self) -> bool:
        """``install_info_has_rules``."""
        return bool(self.aliases or self.wanted_by or self.required_by or self.upheld_by)


#: sections systemctl accepts silently (the "-" prefixed list given to config_parse)
_IGNORED_SECTIONS = {"Unit", "Automount", "Device", "Mount", "Path", "Scope", "Service", "Slice", "Socket",
                     "Swap", "Target", "Timer"}
#: systemd 252 knows no UpheldBy= in [Install] (added in 254): it is an unknown key there
_STRV_KEYS = {"Alias": "aliases", "WantedBy": "wanted_by", "RequiredBy": "required_by"}


def logical_lines(text: str):
    """conf-parser's line reading: comments dropped even inside a continuation, a trailing
    backslash joins the next line (the backslash becomes a space). Yields (line_no, text)."""
    cont = None
    n = 0
    for raw in text.split("\n"):
        n += 1
        stripped = raw.lstrip(" \t\n\r")
        if stripped and stripped[0] in "#;":
            continue
        p = raw if cont is None else cont + raw
        escaped = False
        for ch in p:
            escaped = False if escaped else ch == "\\"
        if escaped:
            cont = p[:-1] + " "
            continue
        cont = None
        yield n, p
    if cont is not None:
        yield n, cont


def parse_install(text: str, unit: str, filename: str, sec: InstallSection, warn: list[str],
                  printf=None, also_hook=None) -> None:
    """Parse one file's ``[Install]`` settings into ``sec`` (``config_parse`` with
    install.c's item table). Warnings go to ``warn`` as systemd logs them; a fatal syntax error
    raises :class:`UnitError` (-EBADMSG). ``printf`` expands specifiers for ``Also=`` and
    ``DefaultInstance=`` (they are expanded at parse time); ``also_hook`` is called with each
    expanded ``Also=`` name, as ``config_parse_also`` adds it to the install context."""
    section: str | None = None
    ignored = False
    utype = unit.rsplit(".", 1)[-1]
    for lineno, line in logical_lines(text):
        line = line.strip(" \t\n\r")
        if not line:
            continue
        if line[0] == "[":
            if line[-1] != "]":
                warn.append(f"{filename}:{lineno}: Invalid section header '{line}'")
                raise UnitError(-errno.EBADMSG, filename)
            name = line[1:-1]
            if name == "Install":
                section, ignored = name, False
            else:
                if name not in _IGNORED_SECTIONS and not name.startswith("X-"):
                    warn.append(f"{filename}:{lineno}: Unknown section '{name}'. Ignoring.")
                section, ignored = None, True
            continue
        if section is None:
            if not ignored:
                warn.append(f"{filename}:{lineno}: Assignment outside of section. Ignoring.")
            continue
        key, eq, value = line.partition("=")
        if not eq:
            warn.append(f"{filename}:{lineno}: Missing '=', ignoring line.")
            continue
        if not key:
            warn.append(f"{filename}:{lineno}: Missing key name before '=', ignoring line.")
            continue
        key, value = key.strip(" \t\n\r"), value.strip(" \t\n\r")
        if key in _STRV_KEYS:
            if key == "Alias" and utype not in _MAY_ALIAS:
                warn.append(f"{filename}:{lineno}: Alias= is not allowed for {utype} units, ignoring.")
                continue
            target = getattr(sec, _STRV_KEYS[key])
            if not value:
                target.clear()
                continue
            words, ok = extract_words(value)
            target.extend(words)
            if not ok:
                warn.append(f"{filename}:{lineno}: Invalid syntax, ignoring: {value}")
        elif key == "Also":
            words, ok = extract_words(value)
            for w in words:
                name = printf(w) if printf else w
                if also_hook:
                    also_hook(name)
                sec.also.append(name)
            if not ok:
                raise UnitError(-errno.EINVAL, filename)
        elif key == "DefaultInstance":
            if classify(unit) == INSTANCE:
                continue
            if classify(unit) != TEMPLATE:
                warn.append(f"{filename}:{lineno}: DefaultInstance= only makes sense for template units, ignoring.")
                continue
            v = printf(value) if printf else value
            if v and not all(c in _VALID_AT for c in v):
                # log_syntax() with an errno: config_parse() gives up on the whole file
                warn.append(f"{filename}:{lineno}: Invalid DefaultInstance= value \"{v}\".")
                raise UnitError(-errno.EINVAL, filename)
            sec.default_instance = v or None
        else:
            warn.append(f"{filename}:{lineno}: Unknown key '{key}' in section [Install], ignoring.")


class NeedsRuntime(Exception):
    """A specifier whose value only a running system knows (``%b``, ``%H`` ...)."""


def install_printf(text: str, name: str, default_instance: str | None) -> str:
    """``install_name_printf``: the specifiers systemctl expands in ``[Install]`` values.

    ``%n %N %p %i %j %%`` come from the unit name (a template's default instance filled in, as
    install-printf.c does); ``%u %U %g %G`` are root's for the system manager. Specifiers that
    depend on the running machine raise :class:`NeedsRuntime` (the caller defers).
    """
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        s = text[i + 1]
        i += 2
        full = replace_instance(name, default_instance) if classify(name) == TEMPLATE and default_instance else name
        if s == "%":
            out.append("%")
        elif s == "n":
            out.append(full)
        elif s == "N":
            out.append(full[: full.rfind(".")])
        elif s == "p":
            out.append(prefix_of(name))
        elif s == "i":
            inst = instance_of(name) or ""
            out.append(inst or (default_instance or ""))
        elif s == "j":
            p = prefix_of(name)
            out.append(p[p.rfind("-") + 1:] if "-" in p else p)
        elif s in "ug":
            out.append("root")
        elif s in "UG":
            out.append("0")
        else:
            raise NeedsRuntime(f"specifier %{s} in [Install] of {name}")
    return "".join(out)


# -- the search path (path-lookup.c) --------------------------------------------------------

@dataclass
class LookupPaths:
    """``LookupPaths`` for the system or global (user) scope of an offline root."""

    search_path: list[str]
    persistent_config: str
    runtime_config: str
    generator: str
    generator_early: str
    generator_late: str
    transient: str
    control: tuple[str, ...]
    preset_dirs: tuple[str, ...]

    @classmethod
    def system(cls, runtime: bool = False) -> LookupPaths:
        """The system manager's paths (``lookup_paths_init`` for RUNTIME_SCOPE_SYSTEM)."""
        run = ["/run/systemd/system.control", "/run/systemd/transient", "/run/systemd/generator.early"]
        sp = ["/etc/systemd/system.control", *(run if runtime else []), "/etc/systemd/system",
              "/etc/systemd/system.attached",
              *(["/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator"] if runtime else []),
              "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
              *(["/run/systemd/generator.late"] if runtime else [])]
        return cls(sp, "/etc/systemd/system", "/run/systemd/system", "/run/systemd/generator",
                   "/run/systemd/generator.early", "/run/systemd/generator.late", "/run/systemd/transient",
                   ("/etc/systemd/system.control", "/run/systemd/system.control"),
                   ("/etc/systemd/system-preset", *(["/run/systemd/system-preset"] if runtime else []),
                    "/usr/local/lib/systemd/system-preset", "/usr/lib/systemd/system-preset",
                    "/lib/systemd/system-preset"))

    @classmethod
    def global_(cls, runtime: bool = False) -> LookupPaths:
        """``systemctl --global``: the user manager's shared configuration."""
        sp = ["/etc/systemd/user", *(["/run/systemd/user"] if runtime else []), "/usr/local/share/systemd/user",
              "/usr/share/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"]
        return cls(sp, "/etc/systemd/user", "/run/systemd/user", "", "", "", "", (),
                   ("/etc/systemd/user-preset", *(["/run/systemd/user-preset"] if runtime else []),
                    "/usr/local/lib/systemd/user-preset", "/usr/lib/systemd/user-preset"))

    def is_runtime(self, path: str) -> bool:
        """``path_is_runtime`` on a directory."""
        return path.startswith("/run/") or path == "/run"

    def is_generator_dir(self, d: str) -> bool:
        return d in (self.generator, self.generator_early, self.generator_late) and d != ""


# -- image path helpers ----------------------------------------------------------------------

def lstat(fs: FileSystem, path: str):
    """lstat, or None when the path does not resolve."""
    try:
        return fs.lstat(path)
    except (OSError, ValueError):
        return None


def stat(fs: FileSystem, path: str):
    """stat, or None."""
    try:
        return fs.stat(path)
    except (OSError, ValueError):
        return None


def chase(fs: FileSystem, path: str, follow_last: bool) -> str:
    """systemd's ``chase(..., CHASE_NONEXISTENT[|CHASE_NOFOLLOW])`` inside the image: the
    canonical path with symlinks resolved (the last one only if ``follow_last``), absolute links
    against the image root, missing components kept as they are."""
    todo = [c for c in path.split("/") if c]
    done: list[str] = []
    hops = 0
    missing = False
    while todo:
        c = todo.pop(0)
        if c == ".":
            continue
        if c == "..":
            if done:
                done.pop()
            continue
        cand = "/" + "/".join(done + [c])
        s = None if missing else lstat(fs, cand)
        if s is None:
            missing = True
            done.append(c)
            continue
        if st.S_ISLNK(s.st_mode) and (todo or follow_last):
            hops += 1
            if hops > 32:
                raise UnitError(-errno.ELOOP, path)
            target = fs.readlink(cand)
            if target.startswith("/"):
                done = []
            todo = [x for x in target.split("/") if x] + todo
            continue
        done.append(c)
    return "/" + "/".join(done)


def null_or_empty(fs: FileSystem, path: str) -> bool:
    """``null_or_empty_path_with_root``: ``/dev/null`` by name (an offline image has no device
    there), an empty regular file, or a device node."""
    if chase(fs, path, True) == "/dev/null":
        return True
    s = stat(fs, path)
    if s is None:
        return False
    return (st.S_ISREG(s.st_mode) and s.st_size == 0) or st.S_ISCHR(s.st_mode) or st.S_ISBLK(s.st_mode)


def read_text(fs: FileSystem, path: str) -> str:
    """A unit or preset file as text (bytes that are not UTF-8 kept by surrogateescape)."""
    return fs.read_bytes(path).decode("utf-8", "surrogateescape")


def conf_files(fs: FileSystem, dirs, suffix: str) -> list[str]:
    """``conf_files_list_strv`` without flags: ``*suffix`` entries (files or symlinks, not
    hidden) over ``dirs``; a name in an earlier directory hides the same name later (so a link
    to ``/dev/null`` masks it); sorted by name bytewise."""
    chosen: dict[str, str] = {}
    for d in dirs:
        try:
            names = fs.readdir(d)
        except (OSError, ValueError):
            continue
        for n in names:
            if not n.endswith(suffix) or n.startswith(".") or n in chosen:
                continue
            p = posixpath.join(d, n)
            s = lstat(fs, p)
            if s is None or not (st.S_ISREG(s.st_mode) or st.S_ISLNK(s.st_mode)):
                continue
            chosen[n] = p
    return [chosen[n] for n in sorted(chosen, key=lambda x: x.encode("utf-8", "surrogateescape"))]


def first_word(line: str, word: str) -> str | None:
    """systemd's ``first_word``: the rest after ``word`` and whitespace, or None."""
    if not line.startswith(word):
        return None
    rest = line[len(word):]
    if rest and rest[0] not in " \t\n\r":
        return None
    return rest.lstrip(" \t\n\r")


# -- presets (install.c read_presets/query_presets) ----------------------------------------

class PresetCrash(Exception):
    """systemd 252 reached a preset rule from a bare ``enable`` line: its pattern is NULL and
    ``fnmatch()`` dereferences it (systemctl dies of SIGSEGV); the caller defers."""


@dataclass
class PresetRule:
    #: None for a bare ``enable`` line (a NULL pattern in 252)
    pattern: str | None
    action: str  # "enable" | "disable"
    instances: list[str] | None = None


def read_presets(fs: FileSystem, lp: LookupPaths, warn: list[str]) -> list[PresetRule]:
    """Every rule of every preset file, files in name order (first match wins when querying)."""
    rules: list[PresetRule] = []
    for path in conf_files(fs, lp.preset_dirs, ".preset"):
        if null_or_empty(fs, path):
            continue
        try:
            text = read_text(fs, path)
        except OSError:
            continue
        for n, line in enumerate(text.split("\n"), 1):
            line = line.strip(" \t\n\r")
            if not line or line[0] in "#;":
                continue
            rest = first_word(line, "enable")
            if rest is not None:
                words = rest.split()
                if not words:
                    # split_pattern_into_name_and_instances("") leaves the pattern NULL
                    rules.append(PresetRule(None, "enable"))
                elif len(words) > 1:
                    if classify(words[0]) != TEMPLATE:
                        warn.append(f"{path}:{n}: Couldn't parse line '{line}'. Ignoring.")
                        continue
                    rules.append(PresetRule(words[0], "enable", words[1:]))
                else:
                    rules.append(PresetRule(words[0], "enable"))
                continue
            rest = first_word(line, "disable")
            if rest is not None:
                # a bare "disable" is a rule whose empty pattern matches no name (no warning)
                rules.append(PresetRule(rest, "disable"))
                continue
            warn.append(f"{path}:{n}: Couldn't parse line '{line}'. Ignoring.")
    return rules


def query_preset(rules: list[PresetRule], name: str) -> tuple[str, list[str] | None]:
    """First matching rule's action (``fnmatch`` without escapes, or a template rule listing
    instances); no rule means enable. Returns (action, instance names to enable or None)."""
    for r in rules:
        if r.pattern is None:
            raise PresetCrash(f"systemctl 252 crashes on a bare 'enable' preset line (querying {name})")
        if r.instances is not None:
            tmpl = template_of(name)
            if tmpl == r.pattern:
                if classify(name) == TEMPLATE:
                    return r.action, [replace_instance(name, i) for i in r.instances]
                if instance_of(name) in r.instances:
                    return r.action, None
        if fnmatch.fnmatchcase(name, r.pattern):
            return r.action, None
    return "enable", None
