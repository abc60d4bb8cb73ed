"""dpkg's status journal (updates/) read and written as lib/dpkg/dbmodify.c does.

The byte-level agreement with real dpkg at every script call is shown by
tests/deb/test_engine_scripts.py; these are the edges: applying records on read, the
checkpoint after 250 records, and journals dpkg refuses.
"""

import pytest

from nuwa.deb.db import Database
from nuwa.deb.journal import PADDING
from nuwa.deb.status import StatusFile
from nuwa.errors import CorruptImageError
from nuwa.fs.memory import MemoryFS

STATUS = ("Package: a\nStatus: install ok installed\nPriority: optional\nSection: misc\nVersion: 1\n\n"
          "Package: b\nStatus: install ok installed\nVersion: 2\n")


def _fs():
    fs = MemoryFS()
    fs.makedirs("/var/lib/dpkg/updates")
    fs.makedirs("/var/lib/dpkg/info")
    fs.write_bytes("/var/lib/dpkg/status", STATUS.encode())
    return fs


def test_records_apply_in_name_order_and_keep_known_classification():
    fs = _fs()
    fs.write_bytes("/var/lib/dpkg/updates/0001", b"Package: a\nStatus: install ok half-configured\nSection: web\n"
                                                 b"Version: 3\n")
    fs.write_bytes("/var/lib/dpkg/updates/0000", b"Package: a\nStatus: install ok unpacked\nVersion: 3\n")
    fs.write_bytes("/var/lib/dpkg/updates/0002", b"Package: c\nStatus: install reinstreq half-installed\nVersion: 9\n")
    fs.write_bytes("/var/lib/dpkg/updates/tmp.i", PADDING)
    sf = StatusFile.load(fs, "/var/lib/dpkg/status")
    a = sf.find("a")
    assert (a.status, a.version, a.get("Section"), a.get("Priority")) == ("half-configured", "3", "misc", "optional")
    assert sf.find("c").eflag == "reinstreq" and sf.journal == ["0000", "0001", "0002"]
    assert StatusFile.load(fs, "/var/lib/dpkg/status", journal=False).find("a").status == "installed"


@pytest.mark.parametrize("names, msg", [(["0000", "00001"], "different length"),
                                        (["12345678901"], "too long")])
def test_journals_dpkg_refuses(names, msg):
    fs = _fs()
    for n in names:
        fs.write_bytes(f"/var/lib/dpkg/updates/{n}", b"Package: a\nStatus: install ok installed\nVersion: 1\n")
    with pytest.raises(CorruptImageError, match=msg):
        StatusFile.load(fs, "/var/lib/dpkg/status")


def test_notes_checkpoint_after_250_records_and_shutdown_cleans_up():
    fs = _fs()
    db = Database.load(fs, log_path=None)
    db.open()
    a = db.status.find("a")
    for i in range(260):
        a.set("Version", str(i))
        db.note(a)
        if i == 0:
            assert fs.read_bytes("/var/lib/dpkg/updates/tmp.i") == PADDING
    # record 0250 made the 251st record: status written, records 0000..0250 gone, numbering restarted
    names = sorted(fs.readdir("/var/lib/dpkg/updates"))
    assert names == [f"{i:04d}" for i in range(9)] + ["tmp.i"]
    assert b"Version: 250\n" in fs.read_bytes("/var/lib/dpkg/status")
    assert fs.read_bytes("/var/lib/dpkg/status-old") == STATUS.encode()
    assert fs.read_bytes("/var/lib/dpkg/updates/0008") == a.render().encode()
    assert StatusFile.load(fs, "/var/lib/dpkg/status").find("a").version == "259"
    db.save()
    assert fs.readdir("/var/lib/dpkg/updates") == []
    assert b"Version: 259\n" in fs.read_bytes("/var/lib/dpkg/status")
    assert b"Version: 250\n" in fs.read_bytes("/var/lib/dpkg/status-old")
    assert db.journal.records == 260 and db.journal.checkpoints == 2
