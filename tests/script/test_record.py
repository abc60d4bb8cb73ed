"""The script run record's JSON: each command entry is what ``dataclasses.asdict`` gives,
field for field and in field order, whatever the record holds (a field added to the record and
not to its ``to_json`` fails here)."""

from __future__ import annotations

from dataclasses import asdict, fields

from hypothesis import given
from hypothesis import strategies as st

from nuwa.script.record import CommandRecord, RunRecord

_records = st.builds(CommandRecord, line=st.integers(0, 10**6), argv=st.lists(st.text(max_size=8), max_size=5),
                     kind=st.sampled_from(["builtin", "function", "external", "missing"]),
                     classification=st.sampled_from(["simulated", "dropped", "deferred"]),
                     reason=st.text(max_size=20), status=st.integers(0, 255))


@given(st.lists(_records, max_size=6))
def test_command_entries_are_what_asdict_gives(recs):
    run = RunRecord(name="postinst")
    for r in recs:
        run.add(r)
    got = run.to_json()["commands"]
    assert got == [asdict(r) for r in recs]
    assert all(list(e) == [f.name for f in fields(CommandRecord)] for e in got)
    for e, r in zip(got, recs):
        assert e["argv"] is not r.argv  # a copy: the report never shares the record's list


def test_long_arguments_are_kept_bounded_and_distinct():
    """An argument over MAX_ARG characters is kept as its head, its length and a hash prefix:
    the record stays small, two different long arguments stay different, short ones whole."""
    from nuwa.script.record import MAX_ARG

    long_a = "cert.crt " * 2000
    long_b = long_a[:-1] + "X"  # differs in its last character only
    run = RunRecord(name="postinst")
    run.add(CommandRecord(1, ["echo", long_a], "builtin", "simulated"))
    run.add(CommandRecord(2, ["echo", long_b], "builtin", "simulated"))
    run.add(CommandRecord(3, ["echo", "x" * MAX_ARG], "builtin", "simulated"))
    a, b, c = (e.argv for e in run.entries)
    assert a[0] == "echo" and len(a[1]) <= MAX_ARG and a[1].startswith(long_a[:500])
    assert f"[{len(long_a)} characters, sha256 " in a[1]
    assert a[1] != b[1]
    assert c == ["echo", "x" * MAX_ARG]


def test_long_argument_memo_is_exact_and_bounded():
    """The bounded form of a repeated long argument is remembered, never confused with another
    one of the same length, and arguments over MEMO_ARG_MAX are not held by the memo."""
    import hashlib

    from nuwa.script import record as R

    R._bounded_long.cache_clear()
    long_a = "ca.crt " * 3000
    again = (long_a + "!")[:-1]  # equal text, another object, as each expansion makes
    other = long_a[:-1] + "?"
    first, second, third = R.bounded_arg(long_a), R.bounded_arg(again), R.bounded_arg(other)
    assert first == second != third
    assert hashlib.sha256(other.encode()).hexdigest()[:16] in third
    assert R._bounded_long.cache_info().hits == 1
    huge = "y" * (R.MEMO_ARG_MAX + 1)
    assert f"[{len(huge)} characters" in R.bounded_arg(huge)
    assert R._bounded_long.cache_info().currsize == 2

