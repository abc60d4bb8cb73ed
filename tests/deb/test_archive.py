"""The .deb container and its tar members, on archives made by dpkg-deb and on malformed ones."""

import gzip
import os
import subprocess

import pytest

from helpers.debtools import build_deb, raw_deb
from judges import tool
from nuwa.deb import archive as A
from nuwa.deb.ar import build_archive
from nuwa.errors import InvalidInputError


@pytest.mark.parametrize("z", ["gzip", "xz", "zstd", "none"])
def test_dpkg_deb_built_archive_reads_back(tmp_path, z):
    tool("dpkg-deb")
    stage = tmp_path / "s"
    (stage / "DEBIAN").mkdir(parents=True)
    (stage / "usr/bin").mkdir(parents=True)
    (stage / "usr/bin/tool").write_bytes(b"#!/bin/sh\necho hi\n" * 100)
    os.chmod(stage / "usr/bin/tool", 0o755)
    os.symlink("tool", stage / "usr/bin/alias")
    os.link(stage / "usr/bin/tool", stage / "usr/bin/hard")
    (stage / "DEBIAN/control").write_text("Package: t\nVersion: 1:2.0-1\nArchitecture: all\nMaintainer: a <a@b>\n"
                                          "Description: d\n long\n")
    out = tmp_path / "t.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{z}", "--build", str(stage), str(out)], check=True,
                   capture_output=True)
    deb = A.open_deb(str(out))
    assert deb.package == "t" and deb.control["Version"] == "1:2.0-1"
    ms = list((m.path, m.type, m.mode, m.linkname, m.read()) for m in deb.members())
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(out)], capture_output=True, check=True).stdout
    names = subprocess.run(["tar", "-t"], input=listing, capture_output=True, check=True).stdout.decode().split()
    assert [m[0] for m in ms] == [("/" + n[2:]).rstrip("/") if n != "./" else "/." for n in names]
    by = {m[0]: m for m in ms}
    first, second = sorted(["/usr/bin/tool", "/usr/bin/hard"], key=lambda p: [m[0] for m in ms].index(p))
    assert by[first][1] == A.REG and by[first][2] == 0o755
    assert by[first][4] == (stage / "usr/bin/tool").read_bytes()
    assert by[second][1] == A.HARDLINK and by[second][3] == first
    assert by["/usr/bin/alias"][1:4:2] == (A.SYMLINK, "tool")


def test_bzip2_data_member(tmp_path):
    import bz2
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("./etc/x")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    ctl = gzip.compress(_ctl_tar())
    p = tmp_path / "b.deb"
    p.write_bytes(build_archive([("debian-binary", b"2.0\n"), ("control.tar.gz", ctl),
                                 ("data.tar.bz2", bz2.compress(buf.getvalue()))]))
    assert [(m.path, m.read()) for m in A.open_deb(str(p)).members()] == [("/etc/x", b"abc")]


def _ctl_tar():
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"Package: bad\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@e>\nDescription: bad\n"
        ti = tarfile.TarInfo("./control")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _consume(path):
    for m in A.open_deb(str(path)).members():
        m.read()


def test_bad_ar_magic(tmp_path):
    p = tmp_path / "x.deb"
    p.write_bytes(b"!<arce>\n" + b"\0" * 100)
    with pytest.raises(InvalidInputError, match=r"x\.deb @0x0: bad ar magic"):
        A.open_deb(str(p))


def test_truncated_data_tar(tmp_path):
    good = build_deb(str(tmp_path), "t", "1", {"/usr/share/t/big": os.urandom(200000)})
    data = open(good, "rb").read()
    p = tmp_path / "trunc.deb"
    p.write_bytes(data[: len(data) - 5000])
    with pytest.raises(InvalidInputError, match="truncated"):
        _consume(p)


def test_corrupt_compressed_data(tmp_path):
    good = build_deb(str(tmp_path), "t", "1", {"/usr/share/t/big": os.urandom(50000)})
    data = bytearray(open(good, "rb").read())
    data[-3000:-2000] = b"\x55" * 1000
    p = tmp_path / "corrupt.deb"
    p.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="package t.*(corrupt|truncated)"):
        _consume(p)


def test_unknown_compression(tmp_path):
    p = raw_deb(str(tmp_path / "u.deb"), [("./etc/x", "file", b"x")], compression=".lz4")
    with pytest.raises(InvalidInputError, match="unknown compression for member 'data.tar.lz4'"):
        A.open_deb(p)


def test_member_order_and_header(tmp_path):
    ctl = gzip.compress(_ctl_tar())
    p = tmp_path / "o.deb"
    p.write_bytes(build_archive([("control.tar.gz", ctl), ("debian-binary", b"2.0\n")]))
    with pytest.raises(InvalidInputError, match="not 'debian-binary'"):
        A.open_deb(str(p))
    p.write_bytes(build_archive([("debian-binary", b"3.0\n"), ("control.tar.gz", ctl)]))
    with pytest.raises(InvalidInputError, match="format version 3.0"):
        A.open_deb(str(p))
    p.write_bytes(build_archive([("debian-binary", b"2.0\n"), ("data.tar", b""), ("control.tar.gz", ctl)]))
    with pytest.raises(InvalidInputError, match="premature member 'data.tar'"):
        A.open_deb(str(p))


@pytest.mark.parametrize("name,msg", [("../../etc/passwd", "'..' component"), ("/etc/shadow", "absolute path"),
                                      ("./a/../../x", "'..' component"), ("./a\nb", "newline")])
def test_escaping_member_names(tmp_path, name, msg):
    p = raw_deb(str(tmp_path / "e.deb"), [("./etc/", "dir", None), (name, "file", b"root::0:0")])
    with pytest.raises(InvalidInputError, match=f"package bad: data.tar member .*{msg}"):
        _consume(p)


def test_file_through_symlink_member(tmp_path):
    p = raw_deb(str(tmp_path / "s.deb"), [("./evil", "symlink", "/etc"), ("./evil/passwd", "file", b"x")])
    with pytest.raises(InvalidInputError, match="'./evil/passwd'.*through symlink '/evil'"):
        _consume(p)


def test_hardlink_to_later_or_foreign_member(tmp_path):
    p = raw_deb(str(tmp_path / "h.deb"), [("./a", "hardlink", "./etc/shadow"), ("./etc/shadow", "file", b"x")])
    with pytest.raises(InvalidInputError, match="hard link to './etc/shadow', which is not an earlier member"):
        _consume(p)
