"""commands/_memo.py: an answer is kept for equal content only, and exceptions are never kept."""

import pytest

from nuwa.script.commands._memo import ContentMemo


def test_content_memo_computes_once_per_content_and_follows_changes():
    calls = []

    def compute(data):
        calls.append(bytes(data))
        if data == b"bad":
            raise ValueError("bad")
        return len(data), data[:1]

    memo = ContentMemo(compute, size=2)
    a, a2, b, c = b"x" * 1000, bytes(b"x" * 1000), b"x" * 999 + b"y", b"z"
    assert memo(a) == (1000, b"x") and memo(a2) == (1000, b"x")  # equal bytes, another object
    assert calls == [a]
    assert memo(b) == (1000, b"x") and calls == [a, b]  # same length, one byte changed: a miss
    assert memo(a) == (1000, b"x") and calls == [a, b]  # still kept (size 2), now most recent
    assert memo(c) == (1, b"z") and calls == [a, b, c]  # b, the least recent, leaves
    assert memo(b) and calls == [a, b, c, b]
    for _ in range(2):  # a failure is raised again at every call, never kept
        with pytest.raises(ValueError):
            memo(b"bad")
    assert calls.count(b"bad") == 2
    # a tuple of contents (dpkg's database: status file and journal records) and make()
    memo2 = ContentMemo(size=2)
    assert memo2(("/var/lib/dpkg", b"s", ("0000", b"j")), lambda: "amd64") == "amd64"
    assert memo2(("/var/lib/dpkg", b"s", ("0000", b"j")), lambda: "wrong") == "amd64"
    assert memo2(("/var/lib/dpkg", b"s"), lambda: "arm64") == "arm64"
