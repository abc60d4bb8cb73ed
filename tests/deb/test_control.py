"""Control paragraphs: python-debian's second opinion is asked only where it could differ.

``parse_paragraphs(..., crosscheck=True)`` skips python-debian for a *plain* paragraph (no
field name starting with ``#``, no line break ``str.splitlines`` knows besides the newline),
claiming that python-debian would split it exactly as dpkg's rules did. These tests hold the
installed python-debian to that claim on generated paragraphs, show that the other
paragraphs are still cross-checked, and that a plain control file never loads python-debian.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from debian import deb822
from hypothesis import given
from hypothesis import strategies as st

from nuwa.deb.control import _plain, parse_control, parse_paragraphs
from nuwa.errors import InvalidInputError

_NAME_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ":")
_names = st.text(_NAME_CHARS, min_size=1, max_size=12).filter(lambda k: not k.startswith("#"))
# any character but the line breaks: values may hold tabs, spaces, colons, non-ASCII
_text = st.text(st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                              blacklist_categories=("Cs",)), max_size=20)
_continuation = st.tuples(st.sampled_from([" ", "\t", "  "]), _text.filter(lambda t: t.strip() != ""))


@st.composite
def plain_paragraphs(draw):
    names = draw(st.lists(_names, min_size=1, max_size=6, unique_by=str.lower))
    lines = []
    for name in names:
        lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{draw(_text)}")
        lines += [a + b for a, b in draw(st.lists(_continuation, max_size=3))]
    return "\n".join(lines) + "\n", names


@given(plain_paragraphs())
def test_python_debian_splits_every_plain_paragraph_as_dpkg_does(case):
    text, names = case
    [(_lead, para, _line)] = list(parse_paragraphs(text, "t", crosscheck=True))
    fields = [(k, para.get(k)) for k in names]
    assert _plain(text, fields)
    assert [k.lower() for k in deb822.Deb822(text.splitlines()).keys()] == [k.lower() for k in names]


@pytest.mark.parametrize("text", [
    "Package: a\n#Version: 1\n",  # a comment line to python-debian, a field to dpkg's rules
    "Package: a\rVersion: 1\nDescription: x\n",  # python-debian splits at the carriage return
    "Package: a\x0cVersion: 1\nDescription: x\n",
])
def test_paragraphs_that_are_not_plain_are_still_cross_checked(text):
    with pytest.raises(InvalidInputError, match="ambiguous"):
        list(parse_paragraphs(text, "t", crosscheck=True))


def test_a_line_break_python_debian_skips_is_still_asked_about():
    """Not plain (a form feed), but python-debian agrees: accepted after asking it."""
    [(_lead, para, _line)] = list(parse_paragraphs("Package: a\nDescription: x\x0c y\n", "t", crosscheck=True))
    assert para.get("Description") == "x\x0c y"


def test_a_plain_control_file_does_not_load_python_debian():
    code = ("import sys; from nuwa.deb.control import parse_control; "
            "p = parse_control(b'Package: a\\nVersion: 1\\nDescription: x\\n more\\n', 't'); "
            "print(p.get('Package'), 'debian.deb822' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["a", "False"]
    assert parse_control(b"Package: a\nVersion: 1\n", "t").get("Version") == "1"
