"""The Perl ``config`` scripts dictionaries-common generates, run by debconf's frontend.

debconf's frontend runs a package's ``config`` before its ``postinst`` (see :mod:`frontend`).
Nuwa interprets shell only, so a Perl ``config`` is deferred whole ("config is not a shell
script") -- except the few Perl configs that are *generated text*, recognised here whole and
modelled as what they do with the debconf database through the same
:class:`~nuwa.script.commands.debconf.confmodule.ConfModule` a shell confmodule talks to.

Recognised (dictionaries-common 1.29.5, Debian 12):

- ``installdeb-wordlist`` / ``installdeb-ispell`` (``Devel::DictionariesCommon::build_...``):
  ``#!/usr/bin/perl -w`` followed by ``/usr/share/dictionaries-common/debconf/config-CLASS``
  (CLASS ``wordlist`` or ``ispell``; aspell, hunspell and myspell generate no ``config``);
- ``wamerican``'s hand-written variant (from scowl's packaging), which also requires
  ``/usr/share/dictionaries-common/elanguages``.

Both say ``version('2.0')`` (``Debconf::Client::ConfModule``'s AUTOLOADed function: one
protocol line, one reply read) and, when dictionaries-common is installed, ``require``
``dc-debconf-select.pl`` and call ``dc_debconf_select(CLASS)``. That function is modelled
line by line below for the one version of ``dc-debconf-select.pl`` whose text is known (its
SHA-256 is checked in the image: another version is deferred). Its first-time guess of a
default (``dc_set_default_value_for_class`` of ``dc-debconf-default-value.pl``, 416 lines
reading the installer's answers, the locale and old symlinks) is not modelled: the config is
deferred with that reason when the run would reach it. So is ``DICT_COMMON_DEBUG`` (debug
prints of Perl internals) and any case where Perl's hash order would decide the result.
"""

from __future__ import annotations

import re

from nuwa.script.commands._common import content_sha256
from nuwa.script.commands.debconf.confmodule import ConfModule
from nuwa.script.commands.debconf.db import ENC, ERRORS
from nuwa.script.context import Defer

SELECT = "/usr/share/dictionaries-common/dc-debconf-select.pl"
ELANGUAGES = "/usr/share/dictionaries-common/elanguages"
LANGSCRIPT = "/usr/share/dictionaries-common/dc-debconf-default-value.pl"
FLAGDIR = "/var/cache/dictionaries-common"
PERL = "/usr/bin/perl"
CLIENT = "/usr/share/perl5/Debconf/Client/ConfModule.pm"
#: SHA-256 of the ``dc-debconf-select.pl`` texts modelled here (dictionaries-common 1.29.5)
KNOWN_SELECT = {"baaca5390edb6ae20dbe39bfd276798f9e656974124ff4c01712d8a9d3bd358c"}
#: ``dc_debconf_select``'s ``%title``
TITLES = {"ispell": "Dictionaries-common: Ispell dictionary",
          "wordlist": "Dictionaries-common: Wordlist dictionary"}

#: installdeb-CLASS's config: ``#!/usr/bin/perl -w`` + ``debconf/config-CLASS`` (1.29.5)
_GENERATED = ('#!/usr/bin/perl -w\n'
              'use Debconf::Client::ConfModule q(:all);\n\n'
              "version ('2.0');\n\n"
              'my $class  = "@CLASS@";\n'
              'my $script = "/usr/share/dictionaries-common/dc-debconf-select.pl";\n\n'
              'if ( -e $script ){\n'
              '    require $script;\n'
              '    dc_debconf_select($class);\n'
              '}\n')
#: wamerican's hand-written variant (scowl; wbritish ships the generated one): also requires ``elanguages``
_SCOWL = ('#!/usr/bin/perl -w\n'
          'use Debconf::Client::ConfModule q(:all);\n\n'
          "version ('2.0');\n\n"
          'my $class          = "@CLASS@";\n'
          'my $script         = "/usr/share/dictionaries-common/dc-debconf-select.pl";\n'
          'my $has_elanguages = "/usr/share/dictionaries-common/elanguages";\n\n'
          '# This is not a standard dictionaries-common.config. Since dictionaries-common\n'
          '# will eventually become an optional package, we need to make sure that\n'
          '# @PACKAGE@ does not run common config code unless a recent (e.g., with\n'
          '# elanguages support) dictionaries-common is installed.\n'
          '#\n'
          '# This is not a problem when the whole system is installed from scratch, but\n'
          '# can be when dictionaries-common and @SAME@ are upgraded together from\n'
          '# previous non elanguages dictionaries-common version. In such case $script\n'
          '# is present, so we need an extra check on $has_elanguages.\n\n'
          'if ( -e $script && -e $has_elanguages ){\n'
          '    require $script;\n'
          '    dc_debconf_select($class);\n'
          '}\n')
#: the only parts allowed to vary: the class, and the package named in scowl's comment
_HOLES = {"@CLASS@": "(?P<class>wordlist|ispell)", "@PACKAGE@": "(?P<package>[a-z0-9][a-z0-9.+-]*)",
          "@SAME@": "(?P=package)"}


def _pattern(template: str) -> re.Pattern:
    rx = re.escape(template)
    for hole, group in _HOLES.items():
        rx = rx.replace(re.escape(hole), group)
    return re.compile(rx)


_PATTERNS = [(_pattern(_GENERATED), False), (_pattern(_SCOWL), True)]


def recognise(text: str) -> tuple[str, bool] | None:
    """``(class, needs_elanguages)`` if ``text`` is one of the generated configs, else None."""
    for pat, elang in _PATTERNS:
        m = pat.fullmatch(text)
        if m:
            return m.group("class"), elang
    return None


# ---- Perl's view of values ---------------------------------------------------------------
_PWS = "[ \t\n\r\f\v]"


def _true(v: str | None) -> bool:
    """Perl truthiness of a string: undef, "" and "0" are false."""
    return v is not None and v not in ("", "0")


def _split_commas(s: str) -> list[str]:
    """``split(/\\s*,\\s*/, $s)``: trailing empty fields dropped, a leading one kept."""
    parts = re.split(_PWS + "*," + _PWS + "*", s)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _lc_key(s: str) -> bytes:
    # Perl's lc on a byte string (the client never decodes) lowers ASCII only; cmp is bytewise
    return s.encode(ENC, ERRORS).lower()


def _sorted_lc(items: list[str], key=lambda x: x) -> list[str]:
    """``sort {lc(key $a) cmp lc(key $b)}`` of hash keys/values, refusing ties that differ.

    Equal keys of different strings leave the order to Perl's hash order (random per run).
    """
    out = sorted(items, key=lambda x: _lc_key(key(x)))
    for a, b in zip(out, out[1:]):
        if a != b and _lc_key(key(a)) == _lc_key(key(b)):
            raise Defer(f"dc_debconf_select: {a!r} and {b!r} sort equal; Perl's hash order decides")
    return out


class PerlClient:
    """``Debconf::Client::ConfModule``'s functions, each one protocol line to ``cm``."""

    def __init__(self, cm: ConfModule):
        self.cm = cm

    def call(self, command: str, *args: str) -> tuple[str, str | None]:
        """The AUTOLOADed function in list context: ``(code, text)``; text None if absent."""
        line = " ".join((command.upper(),) + args)
        reply = self.cm.handle(line)
        parts = re.split(_PWS, reply, maxsplit=1)  # split(/\s/, $ret, 2)
        code, text = parts[0], (parts[1] if len(parts) > 1 else None)
        if code == "1":  # escaped data: unescaped, code reported as 0
            text = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text or "", flags=re.S)
            code = "0"
        return code, text

    def scalar(self, command: str, *args: str) -> str | None:
        """The function in scalar context: the text (an error's text too)."""
        return self.call(command, *args)[1]


class SelectRun:
    """``dc_debconf_select($class)`` of dc-debconf-select.pl (1.29.5) on one confmodule."""

    def __init__(self, client: PerlClient, inv, fs, cls: str):
        self.c = client
        self.inv = inv
        self.fs = fs
        self.cls = cls

    def _exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def _isdir(self, path: str) -> bool:
        try:
            return self.fs.stat(path).is_dir
        except (OSError, ValueError):
            return False

    def _isreg(self, path: str) -> bool:
        try:
            return self.fs.stat(path).is_reg
        except (OSError, ValueError):
            return False

    def packages(self) -> list[str]:
        """``dico_get_packages``: the owners of ``shared/packages-CLASS``."""
        code, text = self.c.call("metaget", f"shared/packages-{self.cls}", "owners")
        return [] if _true(code) else _split_commas(text or "")

    def parse_languages(self, variant: str, packages: list[str]) -> dict[str, str]:
        """``dico_parse_languages``: each package's ``PKG/VARIANT`` default, trimmed."""
        out = {}
        for pkg in packages:
            code, entry = self.c.call("metaget", f"{pkg}/{variant}", "default")
            if not _true(code):
                out[pkg] = re.sub(_PWS + "+$", "", re.sub("^" + _PWS + "+", "", entry or ""))
        return out

    def all_choices(self, languages: dict[str, str]) -> tuple[str, str]:
        """``dico_get_all_choices``: choices and echoices, sorted by echoice."""
        elanguages = self.parse_languages("elanguages", list(languages))
        mapping: dict[str, str] = {}
        for pkg, value in languages.items():
            langs = _split_commas(value)
            elangs = langs
            if pkg in elanguages:
                tmp = _split_commas(elanguages[pkg])
                if len(tmp) == len(langs):
                    elangs = tmp
            for lang, elang in zip(langs, elangs):
                if lang in mapping and mapping[lang] != elang:
                    raise Defer(f"dc_debconf_select: two packages name {lang!r} differently; "
                                "Perl's hash order decides")
                mapping[lang] = elang
        echoices = ", ".join(_sorted_lc(list(mapping.values())))
        choices = ", ".join(_sorted_lc(list(mapping), key=lambda k: mapping[k]))
        return choices, echoices

    def default_value(self, newchoices: set[str]) -> str | None:
        """``dico_get_default_value``: the system default file wins over debconf's value."""
        question = f"dictionaries-common/default-{self.cls}"
        sys_file = f"{FLAGDIR}/{self.cls}-default"
        sys_value = None
        if self._isreg(sys_file):
            try:
                data = self.fs.read_bytes(sys_file).decode(ENC, ERRORS)
            except OSError as e:
                raise Defer(f"dc_debconf_select: cannot read {sys_file}: {e}") from None
            for line in data.splitlines(keepends=True):
                if re.match("^" + _PWS + "*#", line) or re.fullmatch(_PWS + "*", line.rstrip("\n")):
                    continue
                line = line[:-1] if line.endswith("\n") else line
                sys_value = re.sub(_PWS + "+$", "", re.sub("^" + _PWS + "+", "", line))
                break
        current = self.c.scalar("get", question)
        if current is None:
            raise Defer("dc_debconf_select: GET answered without a value (Perl would warn about undef)")
        if _true(sys_value) and sys_value != current:
            if sys_value in newchoices:
                self.c.call("set", question, sys_value)
                self.inv.err(f"[{self.cls},dico_get_default_value]: dictionaries-common warning:\n"
                             f" debconf question \"{question}\" value did not match that in \"{sys_file}\"\n"
                             f" Changing debconf value \"{current}\" to \"{sys_value}\"\n")
                return sys_value
            if _true(current):
                if self.inv.env.get("DPKG_MAINTSCRIPT_NAME") == "config":
                    self.inv.err(f" \"{sys_value}\" in \"{sys_file}\" seems not available.\n"
                                 f" Will set to debconf value \"{current}\" in trigger. Be patient.\n")
                return current
            return current  # the elsif's false condition is the sub's value: false either way
        return current

    def run(self) -> None:
        """The whole of ``dc_debconf_select`` for a config (``$classinfo`` a class name)."""
        cls, inv = self.cls, self.inv
        reconfigure = "DEBCONF_RECONFIGURE" in inv.env
        packages = self.packages()
        question = f"dictionaries-common/default-{cls}"
        newflag = f"{FLAGDIR}/flag-{cls}-new"
        prefix = f"[{cls},dc_debconf_select]"
        languages = self.parse_languages("languages", packages)
        newchoices: set[str] = set()
        for value in languages.values():
            newchoices.update(_split_commas(value))
        choices = ", ".join(_sorted_lc(list(newchoices)))
        old = _split_commas(self.c.scalar("metaget", question, "choices-c") or "")
        old = old[:-1]  # pop: the "Manual symlink setting" entry
        oldchoices = ", ".join(_sorted_lc(old))
        # root reads anything, so -r is -e here
        if self._exists(LANGSCRIPT) and newchoices and not _true(oldchoices):
            raise Defer(f"dc_debconf_select configures class {cls} for the first time: its guess of a "
                        f"default (dc_set_default_value_for_class, {LANGSCRIPT}) is not modelled")
        curval = self.default_value(newchoices)
        if not _true(curval) and self._exists(LANGSCRIPT) and newchoices:
            raise Defer(f"dc_debconf_select: {question} unset with {cls} elements installed: its guess of a "
                        f"default (dc_set_default_value_for_class, {LANGSCRIPT}) is not modelled")
        wrong = None
        if newchoices:
            if _true(curval) and (curval.startswith("Manual") or curval in newchoices):
                priority = "medium"
            else:
                priority = "high"
                if _true(curval):
                    wrong = curval
                    inv.err(f"{prefix} error: \"{curval}\" does not correspond to any package.\n")
                else:
                    wrong = "Question unset"
                    inv.err(f"{prefix} error: \"{question}\" unset but {cls} elements installed.\n")
        else:
            priority = "low"
        if wrong:
            inv.err(f"{prefix}:\n * Class: {cls}, Priority: {priority}\n"
                    f" * Question: \"{question}\", Previous or guessed value: \"{wrong}\"\n"
                    f" * New choices: [{choices}]\n * Old choices: [{oldchoices}]\n")
        if not newchoices:
            return
        # computed before anything is written: a deferral inside it must leave no flag behind
        # (its METAGETs change nothing, so asking them early is not observable)
        all_choices = self.all_choices(languages)
        if choices != oldchoices:
            self.c.call("fset", question, "seen", "false")
            if self._isdir(FLAGDIR):
                self._write_flag(newflag)
        seen = self.c.call("fget", question, "seen")[1]
        if seen == "false" or reconfigure:
            choices, echoices = all_choices
            self.c.call("subst", question, "choices", choices)
            self.c.call("subst", question, "echoices", echoices)
        self.c.call("input", priority, question)
        self.c.call("title", TITLES[cls])
        self.c.call("go")
        self.c.call("subst", question, "echoices", choices)  # "Be backwards consistent"

    def _write_flag(self, path: str) -> None:
        # open(my $FLAG, "> $newflag") or die: created 0666 & ~umask, or truncated in place
        try:
            self.fs.write_bytes(path, b"1\n", 0o666 & ~self.inv.umask)
        except OSError as e:
            raise Defer(f"dc_debconf_select dies: Could not open {path} for write ({e})") from None


def run_config(inv, fs, path: str, cm: ConfModule) -> int | None:
    """Run the Perl config at ``path`` as debconf's frontend's child, talking to ``cm``.

    Returns its exit status, or None if ``path`` is not a recognised config (the caller then
    defers as before). Raises :class:`Defer` with the reason for a recognised config whose
    run reaches something not modelled; nothing has been written to ``fs`` then, and the
    frontend saves nothing.
    """
    try:
        text = fs.read_bytes(path).decode(ENC, ERRORS)
    except (OSError, ValueError):
        return None
    found = recognise(text)
    if found is None:
        return None
    cls, needs_elanguages = found
    for need in (PERL, CLIENT):
        if not fs.exists(need):
            raise Defer(f"{path}: a Perl config, and {need} is not in the image")
    if "DICT_COMMON_DEBUG" in inv.env:
        raise Defer(f"{path}: DICT_COMMON_DEBUG's debug output is not modelled")
    client = PerlClient(cm)
    client.call("version", "2.0")
    if fs.exists(SELECT) and (not needs_elanguages or fs.exists(ELANGUAGES)):
        if content_sha256(fs, SELECT) not in KNOWN_SELECT:
            raise Defer(f"{path}: requires {SELECT} of a dictionaries-common version not modelled")
        SelectRun(client, inv, fs, cls).run()
    return 0
