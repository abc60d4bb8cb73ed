"""debconf's questions and templates over its databases (``Debconf::Question``/``Template``).

A *question* lives in the config database (``Template:``, ``Value:``, ``Owners:``, flags,
substitution variables); a *template* in the templates database (``Type:``, ``Default:``,
``Description:``, ``Choices:`` and their translations, owned by the questions that use it).
:class:`Questions` holds both databases and implements the operations debconf's confmodule
commands are written in, with debconf 1.5.82's exact side effects: which fields are set,
which items become dirty (and so whether a database file is rewritten), when an item is
deleted because its last owner went away, how a missing value falls back to the template's
``Default`` and how template fields are looked up through the message language
(``Debconf::Template``'s ``AUTOLOAD``).
"""

from __future__ import annotations

import posixpath
import re

from nuwa.script.commands.debconf.db import WS, Databases, TemplateError, parse_templates
from nuwa.script.context import Defer

PRIORITIES = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _getlocalelist(locale: str) -> list[str]:
    """``Template::_getlocalelist``: ``de_DE.UTF-8@euro`` -> the variants tried, best first."""
    mod = None
    m = re.search(r"(@[^.]+)", locale)
    if m:
        mod = m.group(1)
        locale = locale[: m.start()] + locale[m.end():]
    m = re.match(r"([^_@.]+)(_[^_@.]+)?(\..+)?", locale)
    if not m:
        return []
    lang, territory, charset = m.groups()
    ret = [lang]
    if mod is not None:
        ret = [x for r in ret for x in (r + mod, r)]
    if territory is not None:
        ret = [x for r in ret for x in (re.sub(r"^([^_@.]+)", lambda mm: mm.group(1) + territory, r, 1), r)]
    if charset is not None:
        ret = [x for r in ret for x in (re.sub(r"^([^@.]+)", lambda mm: mm.group(1) + charset, r, 1), r)]
    return ret


def message_languages(env: dict[str, str], fs) -> list[str]:
    """The languages ``Debconf::Template`` tries (``_getlangs``), lowercased, ``c`` -> ``en``.

    Perl sets the locale from the environment; a locale the image does not have falls back
    to ``C``. Nuwa cannot read ``locale-archive``'s index, so a non-C locale counts as present
    when the image has a ``locale-archive`` or the locale's directory.
    """
    loc = next((env[v] for v in ("LC_ALL", "LC_MESSAGES", "LANG") if env.get(v)), "C")
    if loc not in ("C", "POSIX") and not loc.startswith("C."):
        base = posixpath.join("/usr/lib/locale", loc)
        if not (fs.exists("/usr/lib/locale/locale-archive") or fs.exists(base)):
            loc = "C"
    elif loc == "POSIX" or loc.startswith("C."):
        loc = "C" if loc == "POSIX" else loc
    langs: list[str] = []
    if env.get("LANGUAGE"):
        for part in env["LANGUAGE"].split(":"):
            langs += _getlocalelist(part)
    langs += _getlocalelist(loc)
    return ["en" if x.lower() == "c" else x.lower() for x in langs]


def split_commas(text: str) -> list[str]:
    """``choices_split``/``value_split``: items separated by ``, ``; ``\\,`` and ``\\ `` escape."""
    items, item = [], ""
    for chunk in re.split(r"(\\[, ]|,[ \t\n\r\f\v]+)", text):
        if re.fullmatch(r"\\[, ]", chunk):
            item += chunk[1]
        elif re.fullmatch(r",[ \t\n\r\f\v]+", chunk):
            items.append(item)
            item = ""
        else:
            item += chunk
    if item != "":
        items.append(item)
    return items


class Questions:
    """The question and template operations of debconf over loaded :class:`Databases`."""

    def __init__(self, dbs: Databases, env: dict[str, str], fs):
        self.dbs = dbs
        self.config = dbs.config
        self.templates = dbs.templates
        self.env = env
        self.qcache: set[str] = set()  # Question's %question: objects outlive deleted items
        self.tcache: set[str] = set()  # Template's %template
        self.priority_of: dict[str, str] = {}  # the in-memory ``priority`` of a question
        self.i18n = True
        self.langs = message_languages(env, fs)
        self.charmap = locale_charmap(env, fs)

    # ---- Debconf::Config -----------------------------------------------------------------
    def setting(self, name: str, env_var: str | None = None, default: str = "") -> str:
        if env_var and env_var in self.env:
            return self.env[env_var]
        return self.dbs.settings.get(name, default)

    def config_priority(self) -> str:
        if "DEBIAN_PRIORITY" in self.env:
            return self.env["DEBIAN_PRIORITY"]
        if "priority" in self.dbs.settings:
            return self.dbs.settings["priority"]
        if self.exists("debconf/priority"):
            return self.value("debconf/priority") or "high"
        return "high"

    def high_enough(self, priority: str) -> bool:
        if priority not in PRIORITIES:
            return True
        return PRIORITIES[priority] >= PRIORITIES.get(self.config_priority(), 0)

    # ---- Question ------------------------------------------------------------------------
    def exists(self, q: str) -> bool:
        """``Question->get`` succeeds."""
        if q in self.qcache:
            return True
        if self.config.exists(q):
            self.qcache.add(q)
            return True
        return False

    def new_question(self, q: str, owner: str, type_: str) -> bool:
        if self.config.addowner(q, owner, type_) is None:
            return False
        self.config.setflag(q, "seen", "false")
        self.qcache.add(q)
        return True

    def template_name(self, q: str) -> str | None:
        return self.config.getfield(q, "template")

    def template_of(self, q: str) -> str | None:
        t = self.template_name(q)
        return t if t is not None and self.template_exists(t) else None

    def set_template(self, q: str, new: str) -> None:
        old = self.config.getfield(q, "template")
        if old is None or old != new:
            if old:
                self.templates.removeowner(old, q)
            self.config.setfield(q, "template", new)
            self.templates.addowner(new, q, self.templates.getfield(new, "type"))

    def value(self, q: str) -> str | None:
        v = self.config.getfield(q, "value")
        if v is not None:
            return v
        t = self.template_of(q)
        return self.tfield(t, "default") if t is not None else None

    def set_value(self, q: str, v: str | None):
        return self.config.setfield(q, "value", v)

    def flag(self, q: str, f: str) -> str | None:
        if f == "isdefault":
            return "false" if self.config.getflag(q, "seen") == "true" else "true"
        return self.config.getflag(q, f)

    def set_flag(self, q: str, f: str, v: str):
        if f == "isdefault":
            self.config.setflag(q, "seen", "false" if v == "true" else "true")
            return self.flag(q, f)
        return self.config.setflag(q, f, v)

    def addowner(self, q: str, owner: str, type_: str | None = None):
        return self.config.addowner(q, owner, type_)

    def removeowner(self, q: str, owner: str) -> None:
        t = self.config.getfield(q, "template")
        if self.config.removeowner(q, owner) is None:
            return
        if t and not self.config.exists(q):
            self.templates.removeowner(t, q)
            self.qcache.discard(q)

    def owners(self, q: str) -> str:
        return ", ".join(sorted(self.config.owners(q), key=lambda s: s.encode("utf-8", "surrogateescape")))

    def qfield(self, q: str, f: str) -> str | None:
        """``Question``'s ``AUTOLOAD`` getter: the config field, else the template's."""
        v = self.config.getfield(q, f)
        if v is None:
            t = self.template_of(q)
            if t is not None:
                v = self.tfield(t, f)
        if v is not None and re.match(r"(?i)(description|extended_description|choices)-", f):
            v = self.expand_vars(q, v)
        return v

    def qtype(self, q: str) -> str:
        return self.qfield(q, "type") or ""

    def description(self, q: str) -> str:
        t = self.template_of(q)
        return self.expand_vars(q, self.tfield(t, "description") if t is not None else None)

    def extended_description(self, q: str) -> str:
        t = self.template_of(q)
        return self.expand_vars(q, self.tfield(t, "extended_description") if t is not None else None)

    def choices(self, q: str) -> str:
        t = self.template_of(q)
        return self.expand_vars(q, self.tfield(t, "choices") if t is not None else None)

    def expand_vars(self, q: str, text: str | None) -> str:
        """``Question::_expand_vars``: ``${var}`` from the question's variables, ``\\${x}`` kept."""
        if text is None:
            return ""
        out, rest = "", text
        while True:
            m = re.match(r"(.*?)(\\)?\$\{([^{}]+)\}(.*)\Z", rest, re.S)
            if not m:
                break
            out += m.group(1)
            if m.group(2):
                out += "${" + m.group(3) + "}"
            else:
                v = self.config.getvariable(q, m.group(3))
                out += v if v is not None else ""
            rest = m.group(4)
        return out + rest

    # ---- Template ------------------------------------------------------------------------
    def template_exists(self, t: str) -> bool:
        if t in self.tcache:
            return True
        if self.templates.exists(t):
            self.tcache.add(t)
            return True
        return False

    def tfield(self, t: str, f: str) -> str:
        """``Template``'s ``AUTOLOAD`` getter: translated field first, then the plain one."""
        get = self.templates.getfield
        want_i18n = self.i18n and self.setting("c_values", "DEBCONF_C_VALUES", "false") != "true"
        if want_i18n and self.langs:
            for lang in self.langs:
                v = get(t, f + "-" + lang)
                if v is not None:
                    return v
                if self.charmap is not None:
                    for name in self.templates.fields(t):
                        m = re.match(re.escape(f + "-" + lang) + r"\.(.+)", name)
                        if m:
                            v = self._convert(m.group(1), get(t, name.lower()), t)
                            if v is not None:
                                return v
                if lang == "en":
                    break
        elif not want_i18n and not f.lower().endswith("-c"):
            v = get(t, f + "-c")
            if v is not None:
                return v
        v = get(t, f)
        if v is not None:
            return v
        if "-" in f:
            v = get(t, f.split("-", 1)[0])
            return v if v is not None else ""
        return ""

    def convert_from_utf8(self, value: str) -> str | None:
        """``Debconf::Encoding::convert("UTF-8", value)``: None when Text::Iconv is missing."""
        if self.charmap is None:
            return None
        return value if self.charmap == "UTF-8" or value.isascii() else None

    def _convert(self, charset: str, value: str | None, t: str) -> str | None:
        """``Debconf::Encoding::convert`` (iconv to the locale's charmap; None when it fails)."""
        if value is None:
            return None
        if charset.lower().replace("-", "") != "utf8":
            raise Defer(f"template {t}: a {charset} field needs iconv")
        if self.charmap == "UTF-8" or value.isascii():
            return value
        return None


    def new_template(self, t: str, owner: str, type_: str | None) -> bool:
        """``Template->new``: make sure the template and its same-named question exist."""
        owner = owner or "unknown"
        if not type_:
            raise TemplateError("no template type specified")
        if self.templates.exists(t) and self.templates.owners(t):
            if self.config.exists(t):
                self.exists(t)
                self.addowner(t, owner, type_)
            else:
                if t in self.qcache:  # Question->new dies on a cached question
                    raise TemplateError(f'A question called "{t}" already exists')
                if self.new_question(t, owner, type_):
                    self.set_template(t, t)
            for q in self.templates.owners(t):
                if not self.exists(q):
                    if self.new_question(q, owner, type_):
                        self.set_template(q, t)
            self.tcache.add(t)
            return True
        if self.config.exists(t):
            self.exists(t)
            self.addowner(t, owner, type_)
        else:
            if t in self.qcache:
                raise TemplateError(f'A question called "{t}" already exists')
            if self.new_question(t, owner, type_):
                self.set_template(t, t)
        if self.templates.addowner(t, t, type_) is None:
            return False
        self.templates.setfield(t, "type", type_)
        self.tcache.add(t)
        return True

    def load_templates(self, text: str, owner: str, filename: str) -> list[str]:
        """``Template->load``: every stanza replaces the template's fields."""
        names = []
        for data in parse_templates(text, filename):
            t = data["template"]
            if not self.new_template(t, owner, data.get("type")):
                continue
            for f in self.templates.fields(t):
                self.templates.removefield(t, f)
            for k, v in data.items():
                if k != "template":
                    self.templates.setfield(t, k, v)
            names.append(t)
        return names

    def iterate(self) -> list[str]:
        return self.config.iterate()


def locale_charmap(env: dict[str, str], fs) -> str | None:
    """``$Debconf::Encoding::charmap``: ``locale charmap`` if Text::Iconv is installed, else None.

    Text::Iconv comes with ``libtext-iconv-perl`` (pulled in by ``debconf-i18n``); without it
    debconf never looks at the ``FIELD-LANG.CHARSET`` fields at all.
    """
    found = False
    for libdir in ("/usr/lib", "/usr/local/lib"):
        try:
            triplets = fs.listdir(libdir)
        except OSError:
            continue
        for trip in triplets:
            base = posixpath.join(libdir, trip, "perl5")
            try:
                versions = fs.listdir(base)
            except OSError:
                continue
            if any(fs.exists(posixpath.join(base, v, "Text/Iconv.pm")) for v in versions):
                found = True
    if not found:
        return None
    loc = next((env[v] for v in ("LC_ALL", "LC_CTYPE", "LANG") if env.get(v)), "C")
    if loc in ("C", "POSIX"):
        return "ANSI_X3.4-1968"
    if re.search(r"(?i)\.utf-?8", loc):
        return "UTF-8"
    raise Defer(f"locale {loc}: its charmap is not known offline")


__all__ = ["Questions", "PRIORITIES", "split_commas", "message_languages", "WS"]
