"""``${x#p}``, ``${x##p}``, ``${x%p}``, ``${x%%p}``: the quick forms (a literal, ``*`` and a
literal, a literal and ``*``) give what trying the pattern at every position gives, for any
value and any pattern made of literal and pattern characters (dash's results for these forms
are judged in dash_cases.txt)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.script.expand import _affix_quick, affix_by_pattern, remove_affix

values = st.text(alphabet="ab/.=-\n*", max_size=12)
patterns = st.text(alphabet="ab/.=*?\\[]", max_size=5)
ops = st.sampled_from(["#", "##", "%", "%%"])


@settings(max_examples=3000, deadline=None)
@given(values, patterns, ops)
def test_quick_affix_removal_agrees_with_the_pattern_match(value, pat, op):
    quick = _affix_quick(value, pat, op)
    assert quick is None or quick == affix_by_pattern(value, pat, op)
    assert remove_affix(value, pat, op) == affix_by_pattern(value, pat, op)


def test_the_common_forms_take_the_quick_path():
    cases = [("/usr/lib/x.ko", "*/", "##", "x.ko"), ("/usr/lib/x.ko", "/*", "%", "/usr/lib"),
             ("a.b.c", ".*", "%%", "a"), ("--opt=v=w", "*=", "#", "v=w"), ("--opt", "--", "#", "opt"),
             ("x/", "/", "%", "x"), ("abc", "*", "##", ""), ("abc", "*", "%", "abc")]
    for value, pat, op, want in cases:
        assert _affix_quick(value, pat, op) == want == affix_by_pattern(value, pat, op)
    assert _affix_quick("a?b", "*?", "#") is None and _affix_quick("a*b", "*\\*", "#") is None
