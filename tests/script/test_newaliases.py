"""``newaliases`` / ``postalias`` (Postfix 3.7) against the real ones in a chroot.

A bookworm minbase tree with postfix is copied twice; each case writes the same /etc/aliases
(and main.cf) on both, runs ``newaliases`` with real ``sh`` in a chroot of one copy and Nuwa's
interpreter on the other: status, stdout and stderr equal; then ``/etc/aliases.db``: mode,
owner, size and every byte but the file id (20 bytes at offset 52 of the meta page and of
the last bucket page, where libdb puts inode, device, a unique number and the pid) and the
ten digits of ``YP_LAST_MODIFIED`` (the time: equal within a few seconds). The model's file
id must hold its own file's inode. Second judge: the real ``postalias -s`` and ``-q`` read the
model's file in a chroot of the model's copy and print what they print on the real one.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess

import pytest

from registry_harness import ENV, ShellPair, write

DB = "etc/aliases.db"
_STAMP = re.compile(rb"\x01(\d{10})\x01YP_LAST_MODIFIED")


class AliasesPair(ShellPair):
    PACKAGES = ("postfix",)
    DIRS: list[str] = []
    FILES = ["etc/aliases", DB, "etc/postfix/main.cf"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return AliasesPair(str(tmp_path_factory.mktemp("newaliases")))


def _masked(data: bytes) -> tuple[bytes, int]:
    """The file with its file-id copies and the time's digits zeroed, and that time."""
    b = bytearray(data)
    pagesize, = struct.unpack_from("<I", b, 20)
    max_bucket, = struct.unpack_from("<I", b, 72)
    for at in (52, (max_bucket + 1) * pagesize + 52):
        b[at:at + 20] = bytes(20)
    m = _STAMP.search(b)
    assert m, "no YP_LAST_MODIFIED"
    b[m.start(1):m.end(1)] = b"0" * 10
    return bytes(b), int(m.group(1))


def _aliases(text: str, mode: int = 0o644):
    def setup(root):
        write(root, "etc/aliases", text.encode())
        os.chmod(os.path.join(root, "etc/aliases"), mode)
    return setup


def _judge(pair, setup, queries=("root", "postmaster")):
    pair.reset(setup)
    cmd = "newaliases; echo rc=$?"
    real = pair.run_real(cmd)
    model = pair.run_model(cmd)
    assert not pair.last.deferred_commands, pair.last.deferred_commands
    assert model == real, f"model {model}\nreal  {real}"
    ra, ma = os.path.join(pair.real, DB), os.path.join(pair.model, DB)
    rs, ms = os.stat(ra), os.stat(ma)
    assert (rs.st_mode, rs.st_uid, rs.st_gid, rs.st_size) == (ms.st_mode, ms.st_uid, ms.st_gid, ms.st_size)
    rdata, mdata = open(ra, "rb").read(), open(ma, "rb").read()
    (rmask, rtime), (mmask, mtime) = _masked(rdata), _masked(mdata)
    assert abs(rtime - mtime) < 30
    assert rmask == mmask, [i for i in range(len(rmask)) if rmask[i] != mmask[i]][:20]
    assert struct.unpack_from("<I", mdata, 52)[0] == ms.st_ino & 0xFFFFFFFF
    assert mdata[52 + 16:52 + 20] == bytes(4)
    # the second judge: the real reader on the model's file
    for argv in (["postalias", "-s", "hash:/etc/aliases"],
                 *(["postalias", "-q", q, "hash:/etc/aliases"] for q in queries)):
        outs = []
        for root in (pair.real, pair.model):
            p = subprocess.run(["chroot", root, *argv], env=ENV, capture_output=True, timeout=60)
            outs.append((p.returncode, re.sub(rb"YP_LAST_MODIFIED:\t\d+", b"YP_LAST_MODIFIED", p.stdout),
                         p.stderr))
        assert outs[0] == outs[1], argv
    return real


def test_default_aliases(pair):
    _judge(pair, None)


def test_varied_aliases(pair):
    text = ("# c\npostmaster:    root\nRoot: Admin, \"x y\"@example.org,\n  bob\n# mid\n\tcarol\nbad line\n"
            "postmaster: dup\nfoo@bar: x\nlist: :include:/etc/l, |\"/usr/bin/x -y\", /var/mail/a\n"
            "q: \"a b\"\n  \nz:\"\" \n\"Qk x\": [1.2.3.4] <a@b>\n: nokey\nnovalue:\n@: at\n"
            "a,b: c\nx%y: z\nlong: " + ", ".join(f"user{i}@example.org" for i in range(40)) + "\n")
    status, out, err = _judge(pair, _aliases(text, 0o640), queries=("root", "list", "long", "qk x"))
    assert b"duplicate entry" in err and b"need name:value" in err and b"must be local" in err


def test_leading_space_and_no_final_newline(pair):
    _judge(pair, _aliases(" lead: x\n  more\na: b\nc: d"))


def test_many_entries_one_page(pair):
    text = "".join(f"user{i}: u{i}@example.org\n" for i in range(60))
    _judge(pair, _aliases(text), queries=("user0", "user59"))


@pytest.mark.parametrize("text, reason", [
    ("".join(f"user{i}: someone{i}@example.org\n" for i in range(400)), "bucket page is full"),
    ("big: " + "x" * 1100 + "\n", "overflow pages"),
    ("a: b (comment)\n", "not modelled"),
])
def test_deferred(pair, text, reason):
    pair.reset(_aliases(text))
    before = open(os.path.join(pair.model, DB), "rb").read()
    pair.run_model("newaliases")
    text = pair.last.reason + " ".join(d.reason for d in pair.last.deferred_commands)
    assert reason in text, text
    assert open(os.path.join(pair.model, DB), "rb").read() == before
