"""debconf's database format and templates parser, judged by what real debconf wrote.

The bookworm tree's ``/var/cache/debconf/*.dat`` were written by debconf itself while
mmdebstrap installed the packages; its ``templates.dat`` holds what debconf parsed from each
package's ``templates`` file. Our parser/printer must reproduce those bytes and records.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debian_tree import bookworm_tree
from nuwa.script.commands.debconf.db import (
    FileDriver, Item, StackDriver, TemplateError, format_db, parse_db, parse_templates,
)

DBS = ("config.dat", "templates.dat", "config.dat-old", "templates.dat-old", "passwords.dat")


@pytest.fixture(scope="module")
def tree() -> str:
    return bookworm_tree()


@pytest.mark.parametrize("name", DBS)
def test_real_database_round_trip(tree, name):
    path = os.path.join(tree, "var/cache/debconf", name)
    data = open(path, "rb").read()
    items = parse_db(data.decode("utf-8", "surrogateescape"))
    if name != "passwords.dat":
        assert len(items) == data.count(b"\nName: ") + data.startswith(b"Name: ") > 10
    assert format_db(items).encode("utf-8", "surrogateescape") == data


def test_real_templates_files_parse_like_debconf(tree):
    """Every ``*.templates`` of the tree, parsed, equals the fields debconf stored."""
    stored = parse_db(open(os.path.join(tree, "var/cache/debconf/templates.dat"), encoding="utf-8",
                           errors="surrogateescape").read())
    info = os.path.join(tree, "var/lib/dpkg/info")
    parsed: dict[str, list[dict]] = {}
    for n in sorted(os.listdir(info)):
        if not n.endswith(".templates"):
            continue
        text = open(os.path.join(info, n), encoding="utf-8", errors="surrogateescape").read()
        for data in parse_templates(text, n):
            parsed.setdefault(data.pop("template"), []).append(data)
    # a template shipped by several packages (libraries/restart-without-asking) holds the
    # text of whichever package debconf loaded last
    for name, versions in parsed.items():
        assert stored[name].fields in versions, name
    assert len(parsed) > 20


def test_format_details():
    it = Item(fields={"value": "a\nb", "template": "p/q", "description-de.utf-8": "x"},
              owners={"zz": 1, "aa": 1}, flags={"seen": "true", "other": "false"},
              variables={"b": "2", "a": "line1\nline2"})
    text = format_db({"p/q": it, "deleted": None})
    assert text == ("Name: p/q\nDescription-de.utf-8: x\nTemplate: p/q\nValue: a\\nb\nOwners: aa, zz\n"
                    "Flags: seen\nVariables:\n a = line1\\nline2\n b = 2\n\n")
    back = parse_db(text)["p/q"]
    assert back.fields == it.fields and back.variables == it.variables
    assert back.flags == {"seen": "true"}  # false flags are not written


_word = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=",:=\\"), min_size=1, max_size=8)
_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\\"), max_size=20).map(str.strip)


@given(st.dictionaries(_word, st.builds(
    Item,
    fields=st.dictionaries(_word.map(lambda s: s.lower().replace("name", "nm").replace("owners", "ow")
                                     .replace("flags", "fl").replace("variables", "vr")), _value, max_size=4),
    owners=st.dictionaries(_word, st.just(1), max_size=3),
    flags=st.dictionaries(_word, st.just("true"), max_size=2),
    variables=st.dictionaries(_word, _value, max_size=2)), max_size=4))
def test_format_parse_round_trip(items):
    text = format_db(items)
    assert parse_db(text) == items
    assert format_db(parse_db(text)) == text


def test_templates_parser_rules():
    text = ("Template: a/b\nType: select\nChoices: x, y\nDefault: y  \nDescription: Short\n"
            " First para\n continues.\n .\n  verbatim line\n  another\n back\n\n"
            "Template: a/c\nType: note\nDescription: n\n")
    a, c = parse_templates(text)
    assert a == {"template": "a/b", "type": "select", "choices": "x, y", "default": "y", "description": "Short",
                 "extended_description": "First para continues.\n\n verbatim line\n another\nback"}
    assert c == {"template": "a/c", "type": "note", "description": "n"}
    with pytest.raises(TemplateError, match="does not contain a 'Template:' line"):
        parse_templates("Type: note\n")
    with pytest.raises(TemplateError, match="duplicate field"):
        parse_templates("Template: a\nType: note\nType: text\n")
    with pytest.raises(TemplateError, match="parse error"):
        parse_templates("Template: a\nbad line\n")


def test_stack_puts_passwords_apart():
    """``Reject-Type: password`` / ``Accept-Type: password`` as in debconf.conf."""
    tmpl = FileDriver("templatedb", "/t")
    tmpl.cache = {"p/pw": Item(fields={"type": "password"}), "p/s": Item(fields={"type": "string"})}
    cfg = FileDriver("config", "/c", reject_type="password")
    pw = FileDriver("passwords", "/p", accept_type="password")
    for d in (cfg, pw):
        d.templates = tmpl
    stack = StackDriver("configdb", [cfg, pw])
    assert stack.addowner("p/pw", "pkg", "password") == "pkg"
    assert stack.addowner("p/s", "pkg", "string") == "pkg"
    assert list(pw.cache) == ["p/pw"] and list(cfg.cache) == ["p/s"]
    stack.setfield("p/pw", "value", "secret")
    assert pw.cache["p/pw"].fields == {"value": "secret"} and pw.dirty == {"p/pw"}
    assert stack.getfield("p/pw", "value") == "secret"
    assert stack.setfield("nothing", "value", "x") is None  # no item, nothing created
    stack.removeowner("p/s", "pkg")
    assert cfg.cache["p/s"] is None and "p/s" in cfg.dirty  # deleted: written without it
    assert format_db(cfg.cache) == ""
