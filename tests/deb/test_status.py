"""The status file: byte-exact round trips on real files, dpkg's field order on change, refusal of bad ones."""

import os

import pytest

from nuwa.deb.status import StatusFile
from nuwa.errors import CorruptImageError
from nuwa.fs.memory import MemoryFS
from helpers.oracle import dpkg_material

REAL = ["/var/lib/dpkg/status", "/var/lib/dpkg/status-old"]


@pytest.mark.parametrize("path", REAL)
def test_host_status_round_trip(path):
    if not os.path.exists(path):
        pytest.skip(f"{path} absent")
    text = open(path, encoding="utf-8").read()
    sf = StatusFile(text, path)
    assert len(sf.entries) > 10
    assert sf.render() == text


@pytest.mark.slow
def test_mmdebstrap_status_round_trip():
    text = open(os.path.join(dpkg_material.base_tree(), "var/lib/dpkg/status"), encoding="utf-8").read()
    assert StatusFile(text).render() == text


def test_unknown_fields_key_case_and_untouched_paragraphs_kept():
    text = ("Package: b\nStatus: install ok installed\nX-Odd-Case: v\nVersion: 1\n\n"
            "Package: a\nSTATUS: install ok installed\nversion: 2\nDescription: d\n .\n x\n\n")
    sf = StatusFile(text)
    b = sf.find("b")
    b.set_status(status="unpacked")
    out = sf.render()
    assert out.endswith("Package: a\nSTATUS: install ok installed\nversion: 2\nDescription: d\n .\n x\n\n")
    assert out.startswith("Package: b\nStatus: install ok unpacked\nX-Odd-Case: v\nVersion: 1\nConfig-Version: 1\n\n")


def test_atomic_save_with_backup():
    fs = MemoryFS()
    fs.makedirs("/var/lib/dpkg")
    fs.write_bytes("/var/lib/dpkg/status", b"Package: a\nStatus: install ok installed\nVersion: 1\n\n")
    sf = StatusFile.load(fs)
    sf.find("a").set("Version", "2")
    sf.save(fs)
    assert fs.read_bytes("/var/lib/dpkg/status-old") == b"Package: a\nStatus: install ok installed\nVersion: 1\n\n"
    assert b"Version: 2" in fs.read_bytes("/var/lib/dpkg/status")
    assert not fs.lexists("/var/lib/dpkg/status-new")


@pytest.mark.parametrize("text,msg", [
    ("Package: a\nStatus install ok installed\n", "must be followed by colon"),
    ("Package: a\nPackage: b\n", "duplicate value for 'Package'"),
    (" continuation\n", "continuation line without a field"),
    ("Version: 1\n", "no 'Package' field"),
])
def test_broken_paragraph_refused(text, msg):
    fs = MemoryFS()
    fs.makedirs("/var/lib/dpkg")
    fs.write_bytes("/var/lib/dpkg/status", text.encode())
    with pytest.raises(CorruptImageError, match=msg):
        StatusFile.load(fs)
    assert fs.read_bytes("/var/lib/dpkg/status") == text.encode()


def _db(status: bytes, journal: bool = False):
    from nuwa.deb.db import Database

    fs = MemoryFS()
    fs.makedirs("/var/lib/dpkg/updates")
    fs.makedirs("/var/lib/dpkg/info")
    fs.write_bytes("/var/lib/dpkg/status", status)
    if journal:
        fs.write_bytes("/var/lib/dpkg/updates/0000", b"Package: a\nStatus: install ok half-configured\n")
    return fs, Database.load(fs)


@pytest.mark.parametrize("status,journal,msg", [
    (b"Package: a\nStatus: install ok installed\nVersion: 1\n", True, r"updates/ holds 1 unapplied journal entry"),
    (b"Package: a\nStatus: install ok half-configured\nVersion: 1\n", False, r"package a 1 is half-configured: .*--configure -a"),
    (b"Package: a\nStatus: install reinstreq half-installed\nVersion: 1\n", False, r"reinstreq.*must be reinstalled"),
    (b"Package: a\nStatus: install ok unpacked\nVersion: 1\n", False, r"unpacked but not configured"),
])
def test_audit_refuses_interrupted_database(status, journal, msg):
    from nuwa.deb.operations import Dpkg
    from nuwa.errors import UnsupportedFeatureError

    fs, db = _db(status, journal)
    with pytest.raises(UnsupportedFeatureError, match=msg):
        Dpkg(fs)
    assert fs.read_bytes("/var/lib/dpkg/status") == status
