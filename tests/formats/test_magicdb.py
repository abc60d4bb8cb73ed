"""nuwa.formats.magicdb: file 5.44's compiled magic database (version 18) is read; other
versions, byte orders and sizes are refused naming what is wrong; the image's real
``magic.mgc`` parses into the counts its header gives."""

from __future__ import annotations

import os
import struct

import pytest

from nuwa.formats import magicdb as M

SIZE = M.FILE_MAGICSIZE


def entry(cont_level=0, flag=M.BINTEST, type_=M.T["string"], reln=ord("="), value=b"MZ", desc=b"DOS", lineno=7):
    """One struct magic as file -C writes it (the fields this module reads)."""
    return struct.pack("<HBBBBBBBBBBiiIQ128s64s80s8s64s", cont_level, flag, 0, reln, len(value), type_, 0, 0, 0, 0,
                       0, 0, 0, lineno, 0, value, desc, b"", b"", b"")


def database(set0, set1=(), magic=M.MAGICNO, version=M.VERSIONNO) -> bytes:
    header = struct.pack("<IIII", magic, version, len(set0), len(set1)).ljust(SIZE, b"\0")
    return header + b"".join(set0) + b"".join(set1)


def test_parse_sets_and_fields():
    named = entry(type_=M.T["name"], value=b"part", desc=b"", flag=0)
    s0, s1 = M.parse(database([entry(), entry(cont_level=1, flag=M.NOSPACE, desc=b", v%d", type_=M.T["byte"],
                                                value=b"\x02")], [named]))
    assert [m.cont_level for m in s0] == [0, 1] and len(s1) == 1
    m = s0[0]
    assert (M.TYPE_NAMES[m.type], m.str_value, m.desc, m.lineno, m.flag & M.BINTEST) == ("string", b"MZ", b"DOS", 7,
                                                                                        M.BINTEST)
    assert s0[1].num_value == 2 and s0[1].desc == b", v%d" and s1[0].type == M.T["name"]


@pytest.mark.parametrize("data, words", [
    (database([entry()], version=17), "magic file version 17"),
    (database([entry()], magic=0x12345678), "bad magic 0x12345678"),
    (struct.pack(">IIII", M.MAGICNO, M.VERSIONNO, 1, 0).ljust(SIZE, b"\0") + entry(), "big-endian"),
    (database([entry()])[:-1], "not a multiple"),
    (database([entry()]) + entry(), "do not fill"),
    (b"", "not a multiple"),
], ids=["version17", "magic", "big-endian", "short", "long", "empty"])
def test_refused(data, words):
    with pytest.raises(M.MagicDBError, match=words):
        M.parse(data, "magic.mgc")


def test_the_image_database():
    """The magic.mgc of the cached bookworm tree (file 5.44): counts as in its header."""
    from debian_tree import CACHE  # the cache path only; no tree is built here

    trees = sorted(d for d in os.listdir(CACHE) if "+file+" in d and not d.endswith(".lock")) if os.path.isdir(
        CACHE) else []
    path = os.path.join(CACHE, trees[-1], "usr/lib/file/magic.mgc") if trees else ""
    if not os.path.isfile(path):
        pytest.skip("no cached tree with file installed (tests/script/test_file_magic.py builds it)")
    data = open(path, "rb").read()
    n0, n1 = struct.unpack_from("<II", data, 8)
    s0, s1 = M.parse(data)
    assert (len(s0), len(s1)) == (n0, n1)
    assert all(m.type == M.T["name"] for m in s1 if m.cont_level == 0)
    assert all(m.flag & (M.BINTEST | M.TEXTTEST) for m in s0 if m.cont_level == 0)
