"""``read``'s field splitting: the whitespace-IFS shortcut gives what the general splitter
(backslashes, any IFS; judged against dash in dash_cases.txt) gives, once the names are
assigned (missing fields are empty)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.script.builtins_text import _read_split, read_split_chars

lines = st.text(alphabet=" \t\nab:c", max_size=14)
ifss = st.sampled_from([" \t\n", " ", "\t", " \t", "\n", " \n"])


def _assigned(fields: list[str], n: int) -> list[str]:
    return [fields[i] if i < len(fields) else "" for i in range(n)]


@settings(max_examples=2000, deadline=None)
@given(lines, ifss, st.integers(1, 4), st.booleans())
def test_whitespace_shortcut_agrees_with_the_general_split(line, ifs, n, raw):
    got = _read_split(line, ifs, n, raw)
    assert len(got) <= n
    assert _assigned(got, n) == _assigned(read_split_chars(line, ifs, n, raw), n)
