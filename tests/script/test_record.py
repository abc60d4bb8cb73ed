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
