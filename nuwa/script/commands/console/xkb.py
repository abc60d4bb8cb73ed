"""ckbcomp's reader of XKB keycodes and symbols files (console-setup 1.221,
``/usr/bin/ckbcomp`` "PARSING"): its own small grammar, not xkbcomp's.

A file is first flattened as ``file_to_string`` does (``//`` and ``#`` comments cut at their
first occurrence on a line, white space dropped except one space between two word
characters), then consumed from the front by ckbcomp's regular expressions. Include lists
(``pc+us+inet(evdev)``, ``|``, ``:N``), the include statements and merge modes (override,
augment, replace, alternate), keycode definitions and aliases, ``key <X> { ... }`` with its
groups, ``symbols[GroupN]``, ``type`` and the parts ckbcomp skips are followed as its code
does, including Perl's autovivification of the nested tables (a read of
``$symbols_table{$code}[$group][$level]`` creates the key and the group), which decides which
keys the keymap lists.

Where ckbcomp dies (a syntax error, a missing file or quote, garbage in a key) or its result
would depend on Perl's hash order (an alias of an alias), the model defers.
"""

from __future__ import annotations

import re
import stat as _stat

from nuwa.script.context import Defer

AUGMENT, OVERRIDE, REPLACE, ALTERNATE = 1, 2, 3, 4

_A = re.ASCII
#: includes nested deeper than this are taken for a loop: ckbcomp recurses until Perl runs out
#: of memory (xkb-data's deepest chain is a handful of files)
MAX_INCLUDE_DEPTH = 64
_AI = re.ASCII | re.IGNORECASE
_WORD = re.compile(r"[a-zA-Z0-9_]", _A)
_SPACE = re.compile(r"\s+", _A)
_TOKEN = re.compile(r'[^"\s]+', _A)
_QUOTED = re.compile(r'("[^"]*("|\Z))', _A)
_FLAGS = re.compile(r"(default|partial|hidden|alphanumeric_keys|modifier_keys|keypad_keys|function_keys"
                    r"|alternate_group)\s?", _AI)
_IDENT = re.compile(r"([a-zA-Z0-1_]+) ?", _A)
_STRING = re.compile(r'"([^"]*)"', _A)
_METHODS = ((re.compile(r"alternate ?", _AI), ALTERNATE), (re.compile(r"augment ?", _AI), AUGMENT),
            (re.compile(r"replace ?", _AI), REPLACE), (re.compile(r"override ?", _AI), OVERRIDE))
_INCLUDE = re.compile(r'(include|replace|augment|override)"([^"]*)";?', _AI)
_KC_SKIP = re.compile(r"(minimum|maximum|indicator|virtual\sindicator)[^;]*;", _AI)
_KC_DEF_START = re.compile(r"<([^>]*)>=", _A)
_KC_DEF = re.compile(r"<([^>]+)>=([0-9]*);", _A)
_KC_ALIAS = re.compile(r"alias<([^>]+)>=<([^>]+)>;", _A)
_NAME_START = re.compile(r"name", _AI)
_NAME = re.compile(r'name\[[a-zA-Z0-9_]+\]="[^"]*";', _AI)
_KEYTYPE = re.compile(r'key\.type(?:\[Group1\])?="([^"]+)";', _A)
_SETTING = re.compile(r"[a-zA-Z0-9_]+\.[a-zA-Z0-9_]+=.*?;", _AI)
_SETTING_IX = re.compile(r"[a-zA-Z0-9_]+\.[a-zA-Z0-9_]+\[[a-zA-Z0-9_]+\]=.*?;", _AI)
_KEY_START = re.compile(r"key<", _AI)
_KEY = re.compile(r"key<([^>]+)>\{([^}]*?)\};", _AI)
_MODMAP_START = re.compile(r"(modifier_map|modmap|mod_map)", _AI)
_MODMAP = re.compile(r"(modifier_map|modmap|mod_map)\s?[a-zA-Z0-9_]+\{[^}]*\};", _AI)
_VMODS_START = re.compile(r"virtual_modifiers", _AI)
_VMODS = re.compile(r"virtual_modifiers\s?[a-zA-Z0-9_,]+;", _AI)
_L_GROUP = re.compile(r"\[([^\]]*?)\],", _A)
_L_SYMBOLS = re.compile(r"symbols\[Group([1-4])\]=\[([^\]]*?)\],", _A)
_L_TYPE = re.compile(r'type(?:\[Group1\])?="([^"]+)",', _A)
_L_SKIPS = (re.compile(r"[a-zA-Z0-9_]+(=[a-zA-Z0-9_<>]+)?,", _A), re.compile(r'[a-zA-Z0-9_]+="[^"]+",', _A),
            re.compile(r'type\[[a-zA-Z0-9_]+\]="[^"]+",', _A),
            re.compile(r"actions\[[a-zA-Z0-9_]+\]=\[[^\]]*?\],", _A))
_OPEN = re.compile(r"[^}{]*\{", _A)
_CLOSE = re.compile(r"[^}{]*(\}|\Z)", _A)
_INCLUDE_ITEMS = (re.compile(r"([\^+|])([^(|+]+)\(([^)]+)\):([1234])", _A),
                  re.compile(r"([\^+|])([^(|+]+)\(([^)]+)\)", _A),
                  re.compile(r"([\^+|])([^(|+]+):([1234])", _A),
                  re.compile(r"([\^+|])([^(|+]+)", _A))
_NONSPACE = re.compile(r"[^ ]", _A)


def _fields(text: str) -> list[str]:
    """``(my $symbols = $1) =~ s/,/ /g; split ' ', $symbols``."""
    return re.findall(r"[^ \t\n\r\f\v,]+", text)


def flatten_text(data: bytes) -> str:
    """``file_to_string``: the file's text as ckbcomp parses it."""
    parts = []
    lines = data.decode("latin-1").split("\n")
    if lines[-1] == "":
        lines.pop()  # the empty piece after the last newline is no line
    for line in lines:
        cut = line.find("//")
        if cut >= 0:
            line = line[:cut]
        cut = line.find("#")
        if cut >= 0:
            line = line[:cut]
        parts.append(line + " ")
    string = "".join(parts)
    out: list[str] = []
    final = False
    i, n = 0, len(string)
    while i < n and not (i == n - 1 and string[i] == "0"):  # Perl's truth of the rest
        m = _SPACE.match(string, i)
        if m:
            i = m.end()
            if final and i < n and _WORD.match(string, i):
                out.append(" ")
                final = False
        m = _TOKEN.match(string, i)
        if m:
            out.append(m.group())
            final = bool(_WORD.match(m.group()[-1]))
            i = m.end()
            continue
        m = _QUOTED.match(string, i)
        if m:
            out.append(m.group(1))
            final = False
            i = m.end()
            if m.group(2) != '"':
                raise Defer("ckbcomp: a missing quote in an XKB file (ckbcomp dies)")
            continue
        if string[i:] not in ("", "0"):
            raise Defer("ckbcomp: an XKB file ckbcomp's reader fails on (Internal error)")
    return "".join(out)


class XkbReader:
    """The tables ckbcomp fills from the keycodes and symbols files: ``keycodes``
    (key name -> list of codes, as text), ``aliases``, ``symbols`` (code -> list of groups,
    each None or a list of levels, each None or a keysym name) and ``types``.
    ``fs``: the image; ``xdirs``: ckbcomp's search directories (absolute); ``nosymbols``: the
    keysym names ``%xkbsym_table`` maps to ``NoSymbol``; ``warn`` receives its warnings."""

    def __init__(self, fs, xdirs: list[str], nosymbols: set[str], warn):
        self.fs, self.xdirs, self.nosymbols, self.warn = fs, xdirs, nosymbols, warn
        self.keycodes: dict[str, list[str]] = {}
        self.aliases: dict[str, str] = {}
        self.symbols: dict[str, list] = {}
        self.types: dict[str, str] = {}
        self.method = OVERRIDE
        self.base_group = 0
        self.s, self.p = "", 0
        self.filename = None
        self.depth = 0

    # --- the file system, as Perl's -f and open see it
    def is_file(self, path: str) -> bool:
        try:
            return _stat.S_ISREG(self.fs.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def xfilename(self, file: str) -> str:
        """``xfilename``: the first of DIR/FILE, DIR/BASENAME over the search directories."""
        m = re.fullmatch(r".*/(.+)", file, re.ASCII | re.DOTALL)
        base = m.group(1) if m else file
        for d in self.xdirs:
            for cand in (f"{d}/{file}", f"{d}/{base}"):
                if self.is_file(cand):
                    return cand
        raise Defer(f'ckbcomp: no file "{file}" in its directories (ckbcomp dies)')

    def load(self, path: str) -> bytes:
        try:
            return self.fs.read_bytes(path)
        except OSError as e:
            raise Defer(f"ckbcomp: {path} cannot be read ({e.strerror}): ckbcomp dies") from None

    # --- the stream
    def truthy(self) -> bool:
        n = len(self.s)
        return self.p < n and not (self.p == n - 1 and self.s[self.p] == "0")

    def take(self, pattern: re.Pattern):
        m = pattern.match(self.s, self.p)
        if m:
            self.p = m.end()
        return m

    def looking_at(self, pattern: re.Pattern) -> bool:
        return pattern.match(self.s, self.p) is not None

    def syntax_error(self, what: str):
        raise Defer(f"ckbcomp: a syntax error in XKB file {self.filename} (expected {what}; ckbcomp dies)")

    # --- autovivifying access to %symbols_table
    def group_of(self, code: str, group: int, create: bool):
        groups = self.symbols.setdefault(code, [])
        if group < len(groups) and groups[group] is not None:
            return groups[group]
        if not create:
            return None
        groups.extend([None] * (group + 1 - len(groups)))
        groups[group] = []
        return groups[group]

    def level_of(self, code: str, group: int, level: int):
        levels = self.group_of(code, group, create=True)
        return levels[level] if level < len(levels) else None

    def set_level(self, code: str, group: int, level: int, value: str) -> None:
        levels = self.group_of(code, group, create=True)
        levels.extend([None] * (level + 1 - len(levels)))
        levels[level] = value

    # --- the grammar
    def flags(self) -> None:
        while self.take(_FLAGS):
            pass

    def method_word(self) -> int:
        for pattern, value in _METHODS:
            if self.take(pattern):
                return value
        return self.method

    def include(self, file_type: str) -> bool:
        m = self.take(_INCLUDE)
        if not m:
            return False
        old = self.method
        word = m.group(1).lower()
        if word == "replace":
            self.method = REPLACE
        elif word == "augment":
            self.method = AUGMENT
        elif word == "override":
            self.method = OVERRIDE
        self.include_file(file_type, m.group(2))
        self.method = old
        return True

    def keycodes_definitions(self) -> None:
        old = self.method
        while self.truthy():
            self.method = old
            if self.include("keycodes"):
                continue
            self.method = self.method_word()
            if self.take(_KC_SKIP):
                continue
            if self.looking_at(_KC_DEF_START):
                m = self.take(_KC_DEF) or self.syntax_error("keycode definition")
                key, code = m.group(1), m.group(2)
                if code == "" or (code.startswith("0") and code != "0"):
                    raise Defer(f"ckbcomp: key code {code!r} of <{key}> (a hash key other than its number)")
                if self.method in (REPLACE, OVERRIDE) or (self.method == AUGMENT and key not in self.keycodes):
                    self.keycodes[key] = [code]
                    self.aliases.pop(key, None)
                elif self.method == ALTERNATE:
                    self.keycodes.setdefault(key, []).append(code)
                continue
            if self.s.startswith("alias", self.p):
                m = self.take(_KC_ALIAS) or self.syntax_error("alias definition")
                alias, key = m.group(1), m.group(2)
                if self.method in (REPLACE, OVERRIDE) or (self.method == AUGMENT and alias not in self.keycodes):
                    self.keycodes[alias] = []
                    self.aliases[alias] = key
                continue
            break
        self.method = old

    def symbols_for_group(self, code: str, group: int, syms: list[str]) -> None:
        if not (self.method == REPLACE
                or (self.method == OVERRIDE and (syms or self.group_of(code, group, create=False) is None))
                or (self.method == AUGMENT and code not in self.symbols)):
            return
        for level, sym in enumerate(syms):
            if "(" not in sym and sym != "" and (
                    sym not in self.nosymbols or self.level_of(code, group, level) is None):
                self.set_level(code, group, level, sym)

    def key(self, default_type: str) -> bool:
        if not self.looking_at(_KEY_START):
            return False
        m = self.take(_KEY) or self.syntax_error("key definition")
        name, lst = m.group(1), m.group(2) + ","
        for code in self.keycodes.setdefault(name, []):
            if self.method == REPLACE:
                self.symbols[code] = []
            group = self.base_group
            while _NONSPACE.search(lst):
                g = _L_GROUP.match(lst)
                if g:
                    lst = lst[g.end():]
                    self.symbols_for_group(code, group, _fields(g.group(1)))
                    group += 1
                    continue
                g = _L_SYMBOLS.match(lst)
                if g:
                    lst = lst[g.end():]
                    self.symbols_for_group(code, int(g.group(1)) - 1 + self.base_group, _fields(g.group(2)))
                    continue
                g = _L_TYPE.match(lst)
                if g:
                    lst = lst[g.end():]
                    if self.method in (REPLACE, OVERRIDE) or (self.method == AUGMENT and code not in self.types):
                        self.types[code] = g.group(1)
                    continue
                for pattern in _L_SKIPS:
                    g = pattern.match(lst)
                    if g:
                        lst = lst[g.end():]
                        break
                else:
                    raise Defer(f"ckbcomp: garbage in a key definition in {self.filename} (ckbcomp dies)")
            if code not in self.types or self.types[code] == "DEFAULT":
                self.types[code] = default_type
        return True

    def symbols_definitions(self) -> None:
        old = self.method
        default_type = "DEFAULT"
        while self.truthy():
            self.method = old
            if self.include("symbols"):
                continue
            self.method = self.method_word()
            if self.looking_at(_NAME_START):
                self.take(_NAME) or self.syntax_error("group name")
                continue
            m = self.take(_KEYTYPE)
            if m:
                default_type = m.group(1)
                continue
            if self.take(_SETTING) or self.take(_SETTING_IX):
                continue
            if self.key(default_type):
                continue
            if self.looking_at(_MODMAP_START):
                self.take(_MODMAP) or self.syntax_error("modifier_map")
                continue
            if self.looking_at(_VMODS_START):
                self.take(_VMODS) or self.syntax_error("virtual_modifiers")
                continue
            break
        self.method = old

    def skip_to_brace(self) -> None:
        while self.truthy() and self.take(_OPEN):
            self.skip_to_brace()
        self.take(_CLOSE)

    def block_list(self, file_type: str, block: str) -> bool:
        first, ok = True, False
        saved = self.p
        while self.truthy():
            self.flags()
            m = self.take(_IDENT)
            if not m:
                self.syntax_error("identifier")
            if m.group(1) != "xkb_" + file_type:
                self.syntax_error("xkb_" + file_type)
            m = self.take(_STRING) or self.syntax_error("string")
            name = m.group(1)
            structured = self.s.startswith("{", self.p)
            if structured:
                self.p += 1
            if name == block or (first and block in ("", "0")):
                if file_type == "symbols":
                    self.symbols_definitions()
                else:
                    self.keycodes_definitions()
                if structured:
                    if not self.s.startswith("};", self.p):
                        self.syntax_error("};")
                self.p = len(self.s)
                ok = True
            else:
                if not structured:
                    break
                self.skip_to_brace()
                if not self.s.startswith(";", self.p):
                    self.syntax_error(";")
                self.p += 1
            first = False
        if not ok:
            self.p = saved
        return ok

    def include_file(self, file_type: str, request: str) -> None:
        """``include_xkb_file``: every file(block):N of an include list."""
        rest = "^" + request
        old_method, old_base = self.method, self.base_group
        while rest not in ("", "0"):
            for i, pattern in enumerate(_INCLUDE_ITEMS):
                m = pattern.match(rest)
                if m:
                    break
            else:
                raise Defer(f"ckbcomp: bad include list {rest} (ckbcomp dies)")
            rest = rest[m.end():]
            if m.group(1) == "+":
                self.method = OVERRIDE
            elif m.group(1) == "|":
                self.method = AUGMENT
            file = m.group(2)
            block = m.group(3) if i in (0, 1) else ""
            if i in (0, 2):
                self.base_group = int(m.group(4 if i == 0 else 3)) - 1 + self.base_group
            if re.match(r"\.?/", file):
                raise Defer(f"ckbcomp: an XKB include of the path {file!r} (outside its directories)")
            if self.depth >= MAX_INCLUDE_DEPTH:
                raise Defer(f"ckbcomp: XKB includes nested {MAX_INCLUDE_DEPTH} deep at {file!r} (a loop: "
                            "ckbcomp recurses until Perl runs out of memory)")
            saved = (self.s, self.p, self.filename)
            self.s, self.p = flatten_text(self.load(self.xfilename(f"{file_type}/{file}"))), 0
            self.filename = file
            self.depth += 1
            try:
                if not self.block_list(file_type, block):
                    self.warn(f'WARNING: Can not find "{block}" in "{file}".\n')
                    self.block_list(file_type, "")
            finally:
                self.depth -= 1
            if file == "gr":
                self.patch_greek()
            self.s, self.p, self.filename = saved
            self.method, self.base_group = old_method, old_base

    def patch_greek(self) -> None:
        """ckbcomp 1.221's patch after reading ``gr`` (Debian bug 1026986): shift+w is
        dead_breve, not Greek_SIGMA."""
        codes = self.keycodes.setdefault("AD02", [])
        if not codes:
            return
        code = codes[0]
        symbol = self.level_of(code, self.base_group, 1)
        if symbol is None:
            raise Defer("ckbcomp: the Greek patch reads an undefined symbol (Perl warns)")
        if symbol == "Greek_SIGMA":
            self.set_level(code, self.base_group, 1, "dead_breve")

    def resolve_aliases(self) -> None:
        """The alias loop after the keycodes: each alias gets its target's codes."""
        for alias, key in self.aliases.items():
            if key in self.aliases and self.aliases[key] != key:
                raise Defer(f"ckbcomp: keycode alias <{alias}> names the alias <{key}> (Perl's hash order decides)")
            if key not in self.keycodes:
                raise Defer(f"ckbcomp: undefined keyname {key} in a keycode alias (ckbcomp dies)")
        for alias, key in self.aliases.items():
            self.keycodes[alias] = self.keycodes[alias] + self.keycodes[key]
