"""Version comparison against the real ``dpkg --compare-versions``."""

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judges import tool
from nuwa.deb.version import Version, compare_strings, compare_versions, is_valid
from nuwa.errors import InvalidInputError

_part = st.text(alphabet="0123456789abz.+~", min_size=1, max_size=6)
_version = st.builds(
    lambda e, u, r: (f"{e}:" if e is not None else "") + u + (f"-{r}" if r else ""),
    st.one_of(st.none(), st.integers(0, 3)),
    st.builds(lambda d, rest: d + rest, st.sampled_from("0123456789"), st.text(alphabet="0123456789abz.+~", max_size=6)),
    st.one_of(st.none(), _part.filter(lambda s: "-" not in s)),
)


def _dpkg_batch(pairs):
    """One shell running dpkg --compare-versions for every pair; returns -1/0/1 per pair."""
    dpkg = tool("dpkg")
    lines = []
    for a, b in pairs:
        qa, qb = a.replace("'", ""), b.replace("'", "")
        lines.append(f"if {dpkg} --compare-versions '{qa}' lt '{qb}' 2>/dev/null; then echo -1; "
                     f"elif {dpkg} --compare-versions '{qa}' eq '{qb}' 2>/dev/null; then echo 0; else echo 1; fi")
    out = subprocess.run(["sh", "-c", "\n".join(lines)], capture_output=True, text=True, check=True).stdout.split()
    return [int(x) for x in out]


@settings(max_examples=25)
@given(st.lists(st.tuples(_version, _version), min_size=20, max_size=40))
def test_compare_matches_dpkg(pairs):
    expected = _dpkg_batch(pairs)
    got = [(compare_strings(a, b) > 0) - (compare_strings(a, b) < 0) for a, b in pairs]
    assert got == expected, [(p, g, e) for p, g, e in zip(pairs, got, expected) if g != e]


def test_known_orderings_from_policy():
    # Debian Policy 5.6.12: ~ sorts before everything, even the end of the string
    assert compare_strings("1.0~rc1", "1.0") < 0
    assert compare_strings("1.0", "1.0-0") == 0
    assert compare_strings("1:0.1", "2.0") > 0
    assert Version.parse("1.0-1") == Version.parse("0:1.0-1")
    assert hash(Version.parse("1.0")) == hash(Version.parse("1.0-0"))


@pytest.mark.parametrize("op", ["lt", "le", "eq", "ne", "ge", "gt", "lt-nl", "le-nl", "ge-nl", "gt-nl", "<<", ">>", "<=", ">=", "="])
@pytest.mark.parametrize("a,b", [("1.0", "1.1"), ("", "1.0"), ("1.0", ""), ("", ""), ("2:1", "1:2"), ("1.0~", "1.0")])
def test_compare_versions_operators_match_dpkg(op, a, b):
    r = subprocess.run([tool("dpkg"), "--compare-versions", a, op, b], capture_output=True)
    assert compare_versions(a, op, b) == (r.returncode == 0)


@pytest.mark.parametrize("bad", ["", "1 0", "a:1.0", "1.0-", ":1.0", "1:"])
def test_invalid_versions_refused(bad):
    assert not is_valid(bad)
    with pytest.raises(InvalidInputError):
        Version.parse(bad)
