"""The debconf protocol server: ``Debconf::ConfModule`` with the noninteractive frontend.

A maintainer script that sources ``/usr/share/debconf/confmodule`` talks to debconf's
frontend over a pipe pair: it writes one command per line (``GET foo/bar``) and reads one
reply line, a numeric code and text (``0 true``). :class:`ConfModule` answers those lines
exactly as debconf 1.5.82 does (codes, texts, trailing spaces, the ``escape`` capability)
and changes the databases through :class:`nuwa.script.commands.debconf.questions.Questions`.

The frontend is ``Noninteractive`` (``DEBIAN_FRONTEND=noninteractive``, or any frontend
without a terminal: debconf falls back to it): nothing is shown, ``INPUT`` always answers
``30 question skipped`` and queues a noninteractive element, and ``GO`` stores each queued
question's current value (its template's ``Default`` when unset; a ``select`` value not
among the choices becomes the first choice) back into the database, which is why a real run
writes ``Value:`` fields. Error notes are printed on the frontend's output as debconf prints
them; mailing one (when ``mail`` exists in the image) is not simulated.
"""

from __future__ import annotations

import re

from nuwa.script.commands.debconf.db import WS, TemplateError
from nuwa.script.commands.debconf.questions import PRIORITIES, Questions, split_commas
from nuwa.script.record import ScriptDeferred

SUCCESS, ESCAPED, BADPARAMS, SYNTAX, INVISIBLE, INTERNAL = 0, 1, 10, 20, 30, 100
ARGS = (SYNTAX, "Incorrect number of arguments")


def escape(text: str) -> str:
    """``ConfModule::escape``: backslash and newline escaped (the ``escape`` capability)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape_split(text: str) -> list[str]:
    """``ConfModule::unescape_split``: words split on whitespace, ``\\n`` and ``\\X`` decoded."""
    words, word = [], ""
    for chunk in re.split(r"(\\.|[ \t\n\r\f\v]+)", text):
        if chunk == "\\n":
            word += "\n"
        elif len(chunk) == 2 and chunk[0] == "\\":
            word += chunk[1]
        elif chunk and chunk[0] in WS:
            words.append(word)
            word = ""
        else:
            word += chunk
    if word != "":
        words.append(word)
    return words


def perl_int(s: str) -> int:
    """Perl's numeric value of a string, truncated (``int("2.0")`` is 2, ``int("x")`` 0)."""
    m = re.match(r"[ \t\n\r\f\v]*([+-]?\d+)", s)
    return int(m.group(1)) if m else 0


def wrap(text: str, columns: int = 76) -> str:
    """``Text::Wrap::wrap('', '', text)`` with ``$columns`` = 76: lines of at most 75 characters."""
    width = columns - 1
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "\n".join(out)


class Element:
    """A noninteractive element queued by ``INPUT`` (``Debconf::Element::Noninteractive``)."""

    def __init__(self, question: str, type_: str, markseen: bool):
        self.question = question
        self.type = type_
        self.markseen = markseen
        self.value: str | None = None


class Frontend:
    """``Debconf::FrontEnd::Noninteractive``: never interactive, shows nothing."""

    ELEMENT_TYPES = {"", "boolean", "error", "multiselect", "note", "password", "select", "string", "text"}

    def __init__(self, mail_found: bool):
        self.elements: list[Element] = []
        self.title = ""
        self.requested_title = ""
        self.capb_backup = False
        self.mail_found = mail_found
        self.output = bytearray()  # what the frontend process prints on its stdout

    def default_title(self, package: str) -> None:
        self.title = self.requested_title = f"Configuring {package}"

    def display(self, text: str) -> None:
        """``Noninteractive::display``: wrapped at 76 columns, title underlined once."""
        text = wrap(text)
        lines = text.split("\n")
        if text.endswith("\n"):
            lines = lines[:-1] + [""]
        if self.title:
            lines = [self.title, "-" * len(self.title), ""] + lines
            self.title = ""
        self.output += "".join(x + "\n" for x in lines).encode("utf-8", "surrogateescape")


class ConfModule:
    """One confmodule (a running script) talking to the frontend; :meth:`handle` a line."""

    def __init__(self, qs: Questions, frontend: Frontend, owner: str, read_file=None):
        self.qs = qs
        #: reads a file of the image for X_LOADTEMPLATEFILE (``path -> str``, OSError if absent)
        self.read_file = read_file or _no_files
        self.frontend = frontend
        self.owner = owner or "unknown"
        self.version = "2.0"
        self.client_capb: list[str] | None = None
        self.seen: list[str] = []
        self.busy: list[str] = []
        self.backed_up = False
        self.stopped = False
        self.frontend.capb_backup = False
        self.frontend.elements = []  # ConfModule::startup clears the frontend

    # ---- the line protocol ---------------------------------------------------------------
    def handle(self, line: str) -> str:
        """Process one command line (without its newline); the reply line (no newline)."""
        if self.client_capb is not None and "escape" in self.client_capb:
            words = unescape_split(line)
        else:
            words = [w for w in re.split(r"[ \t\n\r\f\v]+", line.strip(WS)) if w != ""]
        if not words:
            return f'{SYNTAX} Bad line "{line}" received from confmodule.'
        command, params = words[0].lower(), words[1:]
        if command == "stop":
            self.finish()
            return ""
        func = getattr(self, "command_" + command, None)
        if func is None:
            return (f'{SYNTAX} Unsupported command "{command}" (full line was "{line}") '
                    "received from confmodule.")
        ret = " ".join("" if x is None else str(x) for x in func(*params))
        return ret.split("\n", 1)[0]

    def finish(self) -> None:
        """``ConfModule::finish``: questions shown (here: passed through GO) are marked seen."""
        for q in self.seen:
            if self.qs.exists(q):
                self.qs.set_flag(q, "seen", "true")
        self.seen = []
        self.stopped = True

    def _question(self, name: str, quoted: bool = False):
        if self.qs.exists(name):
            return None
        return (BADPARAMS, f'"{name}" doesn\'t exist' if quoted else f"{name} doesn't exist")

    def _escaping(self) -> bool:
        return self.client_capb is not None and "escape" in self.client_capb

    # ---- commands (ConfModule.pm's command_*) ----------------------------------------------
    def command_input(self, *a):
        if len(a) != 2:
            return ARGS
        priority, q = a
        err = self._question(q, quoted=True)
        if err:
            return err
        if priority not in PRIORITIES:
            return (SYNTAX, f'"{priority}" is not a valid priority')
        self.qs.priority_of[q] = priority
        type_ = self.qs.qtype(q)
        visible = True
        if type_ != "error":
            if not self.qs.high_enough(priority):
                visible = False
            if not self.qs.setting("reshow") and self.qs.flag(q, "seen") == "true":
                visible = False
        markseen = visible
        if visible:  # the frontend is not interactive
            markseen = self.qs.setting("noninteractive_seen", "DEBCONF_NONINTERACTIVE_SEEN", "false") == "true"
        if type_ not in Frontend.ELEMENT_TYPES:
            raise ScriptDeferred(f"debconf: no noninteractive element for question type {type_!r} ({q})")
        el = Element(q, type_, markseen)
        self.busy.append(q)
        if not any(e.question == q for e in self.frontend.elements):
            self.frontend.elements.append(el)
        return (INVISIBLE, "question skipped")

    def command_clear(self, *a):
        if a:
            return ARGS
        self.frontend.elements = []
        self.busy = []
        return (SUCCESS,)

    def command_version(self, *a):
        if len(a) > 1:
            return ARGS
        if a:
            if perl_int(a[0]) < perl_int(self.version):
                return (INVISIBLE, f"Version too low ({a[0]})")
            if perl_int(a[0]) > perl_int(self.version):
                return (INVISIBLE, f"Version too high ({a[0]})")
        return (SUCCESS, self.version)

    def command_capb(self, *a):
        self.client_capb = list(a)
        self.frontend.capb_backup = "backup" in a
        return (SUCCESS, "multiselect", "escape", "")

    def command_title(self, *a):
        self.frontend.title = self.frontend.requested_title = " ".join(a)
        return (SUCCESS,)

    def command_settitle(self, *a):
        if len(a) != 1:
            return ARGS
        err = self._question(a[0], quoted=True)
        if err:
            return err
        self.frontend.title = self.frontend.requested_title = self.qs.description(a[0])
        return (SUCCESS,)

    def command_beginblock(self, *a):
        return (SUCCESS,)

    def command_endblock(self, *a):
        return (SUCCESS,)

    def command_go(self, *a):
        if a:
            return ARGS
        for el in self.frontend.elements:  # FrontEnd::go: every element's show
            self._show(el)
        for el in self.frontend.elements:
            self.qs.set_value(el.question, el.value)
            if el.markseen:
                self.seen.append(el.question)
        self.frontend.elements = []
        self.busy = []
        self.backed_up = False
        return (SUCCESS, "ok")

    def _show(self, el: Element) -> None:
        qs, q = self.qs, el.question
        if el.type == "text":
            el.value = ""
        elif el.type == "error":
            if qs.flag(q, "seen") != "true":
                if qs.setting("admin_email", "DEBCONF_ADMIN_EMAIL", "root") and self.frontend.mail_found:
                    raise ScriptDeferred(f"debconf would mail the error note {q} (mail is installed)")
                self.frontend.display(qs.description(q) + "\n\n" + qs.extended_description(q) + "\n")
            el.value = ""
        elif el.type == "select":
            qs.i18n = False
            try:
                choices = split_commas(qs.choices(q))
            finally:
                qs.i18n = True
            v = qs.value(q)
            v = "" if v is None else v
            el.value = v if v in choices else (choices[0] if choices else "")
        else:
            v = qs.value(q)
            el.value = "" if v is None else v

    def command_get(self, *a):
        if len(a) != 1:
            return ARGS
        err = self._question(a[0])
        if err:
            return err
        v = self.qs.value(a[0])
        if v is None:
            return (SUCCESS, "")
        return (ESCAPED, escape(v)) if self._escaping() else (SUCCESS, v)

    def command_set(self, *a):
        if len(a) < 1:
            return ARGS
        err = self._question(a[0])
        if err:
            return err
        self.qs.set_value(a[0], " ".join(a[1:]))
        return (SUCCESS, "value set")

    def command_reset(self, *a):
        if len(a) != 1:
            return ARGS
        err = self._question(a[0])
        if err:
            return err
        self.qs.set_value(a[0], self.qs.qfield(a[0], "default"))
        self.qs.set_flag(a[0], "seen", "false")
        return (SUCCESS,)

    def command_subst(self, *a):
        if len(a) < 2:
            return ARGS
        err = self._question(a[0])
        if err:
            return err
        if self.qs.config.setvariable(a[0], a[1], " ".join(a[2:])) is None:
            return (INTERNAL, "Substitution failed")
        return (SUCCESS,)

    def command_register(self, *a):
        if len(a) != 2:
            return ARGS
        template, name = a
        if not self.qs.exists(template):
            return (BADPARAMS, f'No such template, "{template}"')
        type_ = self.qs.qtype(template)
        if not self.qs.exists(name) and not self.qs.new_question(name, self.owner, type_):
            return (INTERNAL, "Internal error making question")
        if self.qs.addowner(name, self.owner, type_) is None:
            return (INTERNAL, "Internal error adding owner")
        self.qs.set_template(name, template)
        return (SUCCESS,)

    def command_unregister(self, *a):
        if len(a) != 1:
            return ARGS
        err = self._question(a[0])
        if err:
            return err
        if a[0] in self.busy:
            return (BADPARAMS, f"{a[0]} is busy, cannot unregister right now")
        self.qs.removeowner(a[0], self.owner)
        return (SUCCESS,)

    def command_purge(self, *a):
        if a:
            return ARGS
        for q in self.qs.iterate():
            if self.qs.exists(q):
                self.qs.removeowner(q, self.owner)
        return (SUCCESS,)

    def command_metaget(self, *a):
        if len(a) != 2:
            return ARGS
        q, fld = a
        err = self._question(q)
        if err:
            return err
        lc = fld.lower()
        qs = self.qs
        named = {"description": qs.description, "extended_description": qs.extended_description,
                 "choices": qs.choices, "value": qs.value, "owners": qs.owners,
                 "template": qs.template_name, "name": lambda n: n, "priority": qs.priority_of.get}
        v = named[lc](q) if lc in named else qs.qfield(q, lc)
        if v is None:
            return (BADPARAMS, f"{fld} does not exist")
        return (ESCAPED, escape(v)) if self._escaping() else (SUCCESS, v)

    def command_fget(self, *a):
        if len(a) != 2:
            return ARGS
        err = self._question(a[0])
        if err:
            return err
        return (SUCCESS, self.qs.flag(a[0], a[1]))

    def command_fset(self, *a):
        if len(a) < 3:
            return ARGS
        q, flag = a[0], a[1]
        err = self._question(q)
        if err:
            return err
        if flag == "seen":
            self.seen = [x for x in self.seen if x != q]
        return (SUCCESS, self.qs.set_flag(q, flag, " ".join(a[2:])))

    def command_info(self, *a):
        if len(a) > 1:
            return ARGS
        if a:
            err = self._question(a[0], quoted=True)
            if err:
                return err
        return (SUCCESS,)

    def command_progress(self, *a):
        if len(a) < 1:
            return ARGS
        sub, rest = a[0].lower(), a[1:]
        if sub == "start":
            if len(rest) != 3:
                return ARGS
            if perl_int(rest[0]) > perl_int(rest[1]):
                return (SYNTAX, f"min ({rest[0]}) > max ({rest[1]})")
            err = self._question(rest[2])
            if err:
                return err
        elif sub in ("set", "step"):
            if len(rest) != 1:
                return ARGS
        elif sub == "info":
            if len(rest) != 1:
                return ARGS
            err = self._question(rest[0])
            if err:
                return err
        elif sub == "stop":
            if rest:
                return ARGS
        else:
            return (SYNTAX, "Unknown subcommand")
        return (SUCCESS, "OK")  # the noninteractive progress bar accepts everything

    def command_data(self, *a):
        if len(a) < 3:
            return ARGS
        t, item = a[0], a[1]
        value = re.sub(r'\\([n"\\])', lambda m: "\n" if m.group(1) == "n" else m.group(1), " ".join(a[2:]))
        if not self.qs.template_exists(t):
            if item != "type":
                return (BADPARAMS, f"Template data field '{item}' received before type field")
            try:
                ok = self.qs.new_template(t, self.owner, value)
            except TemplateError:
                ok = False
            if not ok:
                return (INTERNAL, "Internal error making template")
        else:
            if item == "type":
                return (BADPARAMS, "Template type already set")
            # $tempobj->$item(convert("UTF-8", $value)): without Text::Iconv convert returns an
            # empty list, so the accessor is called as a getter and nothing is set
            if self.qs.charmap is not None:
                self.qs.templates.setfield(t, item, self.qs.convert_from_utf8(value))
        return (SUCCESS,)

    def command_exist(self, *a):
        if len(a) != 1:
            return ARGS
        return (SUCCESS, "true" if self.qs.exists(a[0]) else "false")

    def command_visible(self, *a):
        raise ScriptDeferred("debconf VISIBLE crashes debconf's frontend; not simulated")

    def command_x_loadtemplatefile(self, *a):
        if len(a) < 1 or len(a) > 2:
            return ARGS
        path = a[0]
        try:
            text = self.read_file(path)
        except OSError as e:
            return (BADPARAMS, f"failed to open {path}: {e.strerror or 'No such file or directory'}")
        owner = a[1] if len(a) > 1 else self.owner
        try:
            self.qs.load_templates(text, owner, path)
        except TemplateError as e:  # Perl's die text, newlines escaped as the command does
            return (INTERNAL, (str(e) + "\n").replace("\n", "\\n"))
        return (SUCCESS,)


def _no_files(path: str) -> str:
    raise FileNotFoundError(2, "No such file or directory", path)
