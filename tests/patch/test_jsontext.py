"""nuwa.jsontext.dumps writes exactly json.dumps(indent=N)'s text (the report's bytes)."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.patch.jsontext import dumps

_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
_docs = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=4), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(_docs, st.sampled_from([1, 2, 4]))
def test_same_text_as_json(doc, indent):
    assert dumps(doc, indent=indent) == json.dumps(doc, indent=indent)


def test_report_shaped_document():
    doc = {"image": "/x/é.qcow2", "debs": [{"file": "a\"b\\c\n", "version": "1:2.3~rc1"}], "dry_run": False,
           "counts": {"files": 3, "ratio": 0.5, "inf": math.inf, "nan": math.nan, "neg": -1e300},
           "changes": [], "plan": {}, "reboot": None, "pairs": (1, (2, [])), "ctrl": "\x00\x7f\u2028\ud800"}
    assert dumps(doc, indent=1) == json.dumps(doc, indent=1)


def test_anything_else_is_json_dumps():
    class Str(str):
        pass

    class Int(int):
        def __repr__(self):
            return "seven"

    for doc in ({1: "int key"}, {"k": Str("sub")}, [Int(7)], {"t": (True, None)}, {None: 1}):
        assert dumps(doc, indent=1) == json.dumps(doc, indent=1)
    cyclic: list = []
    cyclic.append(cyclic)
    try:
        dumps(cyclic)
    except ValueError as e:  # json.dumps's "Circular reference detected"
        assert "Circular" in str(e)
    else:
        raise AssertionError("a cycle must fail as json.dumps fails")


@settings(max_examples=100, deadline=None)
@given(_docs)
def test_dump_writes_json_dump_text_in_pieces(tmp_path_factory, doc):
    import nuwa.patch.jsontext as J

    path = tmp_path_factory.mktemp("dump") / "doc.json"
    old = J.PIECES
    J.PIECES = 3  # many writes, as a large report makes
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write("x")  # the fallback takes back only what dump wrote
            J.dump(doc, f, indent=1)
    finally:
        J.PIECES = old
    assert path.read_text(encoding="utf-8") == "x" + json.dumps(doc, indent=1)


def test_dump_falls_back_after_writing_pieces(tmp_path):
    import nuwa.patch.jsontext as J

    doc = [{"k": list(range(50))}] * 50 + [{1: "an int key, late"}]
    path = tmp_path / "doc.json"
    old = J.PIECES
    J.PIECES = 4
    try:
        with open(path, "w", encoding="utf-8") as f:
            J.dump(doc, f, indent=1)
    finally:
        J.PIECES = old
    assert path.read_text(encoding="utf-8") == json.dumps(doc, indent=1)
