"""Damaged dpkg databases found by tools/fuzz.py (its ``dpkgdb`` kind: the seed status file or an
info file mutated, then a package installed over it). Each leaked a plain Python exception or
was reported as the caller's bad input (exit 2); the database is part of the image, so each is
now a damaged image (CorruptImageError, exit 3) naming the file, or, where dpkg copes, handled
as dpkg handles it."""

from __future__ import annotations


import pytest

from helpers.paths import tool_module
from nuwa.errors import CorruptImageError
from nuwa.fs.memory import MemoryFS
from nuwa.patch.install import install_debs


@pytest.fixture(scope="module")
def seed():
    return tool_module("fuzz_seeds")


def _install(seed, tmp_path, status: str, info: dict[str, bytes] | None = None, mkdirs=()) -> MemoryFS:
    deb = tmp_path / "good.deb"
    deb.write_bytes(seed.build_deb(seed.deb_parts()))
    fs = MemoryFS()
    for d in ("/etc", "/var", "/var/lib", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/dpkg/updates",
              "/var/log", "/usr", "/usr/share", "/usr/bin"):
        fs.mkdir(d, 0o755)
    fs.write_bytes("/var/lib/dpkg/status", status.encode("utf-8", "surrogateescape"))
    fs.write_bytes("/var/lib/dpkg/info/format", b"1\n")
    fs.write_bytes("/etc/fuzzpkg.conf", b"hello")
    for prog in ("dpkg", "mkdir", "ln", "printf", "test", "rm", "sh", "dpkg-maintscript-helper", "ldconfig"):
        # the simulator runs a command's model only where the image has the program
        fs.write_bytes(f"/usr/bin/{prog}", b"\x7fELF", 0o755)
    for name, data in (info or {}).items():
        fs.write_bytes(f"/var/lib/dpkg/info/{name}", data)
    for d in mkdirs:
        fs.mkdir(d, 0o755)
    install_debs(fs, [str(deb)])
    return fs


@pytest.mark.parametrize("old,new,words", [
    # ValueError from int('') leaked from the version comparison of a dependency
    ("Version: 12.4", "Version: :12.4", ["error in 'Version' field string", "epoch in version is empty"]),
    ("Version: 1.0", "Version: x:1.0", ["epoch in version is not number"]),
    # a relationship of another installed package that dpkg reads while installing this one
    ("Version: 12.4", "Version: 12.4\nBreaks: fuzzpkg (<< :1)", ["'Breaks' field", "epoch in version is empty"]),
    ("Version: 12.4", "Version: 12.4\nBreaks: fuzzpkg (<< 1", ["syntax error in 'Breaks' field"]),
])
def test_bad_versions_and_relations_in_the_status_file_are_a_damaged_image(seed, tmp_path, old, new, words):
    assert old in seed.STATUS
    with pytest.raises(CorruptImageError) as e:
        _install(seed, tmp_path, seed.STATUS.replace(old, new, 1))
    msg = str(e.value)
    assert "/var/lib/dpkg/status" in msg and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_a_nul_byte_in_a_files_list_is_a_damaged_image(seed, tmp_path):
    # was InvalidInputError "embedded null byte in path" (exit 2) from the path resolver
    with pytest.raises(CorruptImageError) as e:
        _install(seed, tmp_path, seed.STATUS, {"fuzzpkg.list": b"/.\n/etc\n/\0.\n/etc/fuzzpkg.conf\n"})
    assert "fuzzpkg.list" in str(e.value) and "NUL byte" in str(e.value)


def test_a_version_that_is_not_utf8_reaches_the_log_as_its_bytes(seed, tmp_path):
    # UnicodeEncodeError leaked writing dpkg.log: the old version (read with surrogate escapes)
    # is logged byte for byte, as dpkg logs what its database holds
    status = seed.STATUS.replace("Version: 1.0", "Version: 1.0\udcff", 1)
    fs = _install(seed, tmp_path, status)
    log = fs.read_bytes("/var/log/dpkg.log")
    assert b"upgrade fuzzpkg:all 1.0\xff 2.0" in log, log


def test_a_directory_in_the_triggers_directory_is_a_damaged_image(seed, tmp_path):
    # fuzz finding (in-place kind): a directory entry in /var/lib/dpkg/triggers turned into a
    # directory; reading it as an interest file leaked "Is a directory" (exit 1). dpkg cannot
    # read it either: a damaged database, exit 3, naming the entry
    with pytest.raises(CorruptImageError) as e:
        _install(seed, tmp_path, seed.STATUS, mkdirs=("/var/lib/dpkg/triggers", "/var/lib/dpkg/triggers/x\udcff"))
    assert "trigger interest file" in str(e.value) and "is a directory" in str(e.value) and "\\xff" in str(e.value)
