"""``newaliases`` / ``postalias`` (Postfix 3.7) against the real ones in a chroot.

A bookworm minbase tree with postfix is copied twice; each case writes the same /etc/aliases
(and main.cf) on both, runs ``newaliases`` with real ``sh`` in a chroot of one copy and Nuwa's
interpreter on the other: status, stdout and stderr equal; then ``/etc/aliases.db``: mode,
owner, size and every byte but the file id (20 bytes at offset 52 of the meta page and of
the last bucket page, where libdb puts inode, device, a unique number and the pid) and the
ten digits of ``YP_LAST_MODIFIED`` (the time: equal within a few seconds). The model's file
id must hold its own file's inode (when the file was there before: one it creates gets the
number the overlay gives it, provisional until commit). Second judge: the real ``postalias -s`` and ``-q`` read the
model's file in a chroot of the model's copy and print what they print on the real one.
"""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess

import pytest

from aliasesdb_judge import masked as _masked
from registry_harness import ENV, ShellPair, write

DB = "etc/aliases.db"


class AliasesPair(ShellPair):
    PACKAGES = ("postfix",)
    DIRS: list[str] = []
    FILES = ["etc/aliases", DB, "etc/postfix/main.cf", "var/lib/dpkg/info/postfix.list", "var/lib/dpkg/status"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return AliasesPair(str(tmp_path_factory.mktemp("newaliases")))


def _live(data: bytes) -> bytes:
    """The file with the bytes that hold nothing zeroed: a hash page's free space between its
    index and its items, a free page's body. Where libdb took a page buffer from heap memory
    that was used before, they are what the heap held (two real runs differ there)."""
    b = bytearray(data)
    for at in range(4096, len(b), 4096):
        entries, hoffset, _, ptype = struct.unpack_from("<HHBB", b, at + 20)
        start = at + 26 + 2 * entries if ptype == 13 else at + 26
        end = at + hoffset if ptype == 13 else at + 4096
        b[start:end] = bytes(end - start)
    return bytes(b)


def _aliases(text: str, mode: int = 0o644):
    def setup(root):
        write(root, "etc/aliases", text.encode())
        os.chmod(os.path.join(root, "etc/aliases"), mode)
    return setup


def _judge(pair, setup, queries=("root", "postmaster"), exact=True):
    pair.reset(setup)
    existed = os.path.exists(os.path.join(pair.model, DB))
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
    if not exact:
        rmask, mmask = _live(rmask), _live(mmask)
    assert rmask == mmask, [i for i in range(len(rmask)) if rmask[i] != mmask[i]][:20]
    # the inode of a file the model created is the number the overlay gave it (provisional)
    inode, = struct.unpack_from("<I", mdata, 52)
    assert inode == ms.st_ino & 0xFFFFFFFF if existed else inode != 0
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


def test_new_file_mode_and_empty_source(pair):
    def setup(root):
        _aliases("root: admin\n", 0o600)(root)
        os.unlink(os.path.join(root, DB))
    _judge(pair, setup)
    _judge(pair, _aliases(""), queries=("root",))


def test_alias_database_settings(pair):
    main = "myhostname = mx.example.org\nmydomain = example.org\n"

    def other(root):
        write(root, "etc/postfix/main.cf", (main + "alias_database = hash:/etc/aliases\n").encode())
        _aliases("a: b\n")(root)
    _judge(pair, other, queries=("a",))

    def empty(root):
        write(root, "etc/postfix/main.cf", (main + "alias_database =\n").encode())
        _aliases("a: b\n")(root)
    pair.check(["newaliases; echo rc=$?"], setup=empty)


def test_tokens(pair):
    """RFC 822 tokens as tok822 scans and prints them again."""
    text = ("a1: b,c\na2 : b , c\na3: \"b\" c\na4: <b>\na5: x <b@c.d>\na6: b;c.d\na7: b . c\n"
            "a8: :include: /x\na9: |\"/usr/bin/x  -y\"\nb1: \"b\nb2: [1.2 .3\nb3 x: c\nb4::b\n"
            "b5: b%c!d\nb6: \"b\tc\"\nb7:\nb8: @\nb9: ,\nc1: a@b@c\nc2 c3 c4: d\n\"c5\"x: y\n")
    keys = ("a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "b3 x", "b4", "b5", "b6", "b8",
            "b9", "c1", "c2 c3 c4", "c5 x")
    _judge(pair, _aliases(text), queries=keys)


def test_leading_space_and_no_final_newline(pair):
    _judge(pair, _aliases(" lead: x\n  more\na: b\nc: d"))


def test_many_entries_one_page(pair):
    text = "".join(f"user{i}: u{i}@example.org\n" for i in range(60))
    _judge(pair, _aliases(text), queries=("user0", "user59"))


def test_buckets_split_and_chain(pair):
    """3,000 short entries: the table grows to 1,024 buckets, pages chain and are freed; real
    runs leave no heap bytes in this file, so every byte but the file id and time is judged."""
    text = "".join(f"user{i}: someone{i}@example.org\n" for i in range(3000))
    _judge(pair, _aliases(text), queries=("user0", "user1234", "user2999", "nobody"))


@pytest.mark.parametrize("seed", [1, 7])
def test_long_entries(pair, seed):
    """Keys up to 300 bytes, values up to 40 addresses (under a quarter page): chains of
    bucket pages, splits, free and truncated pages; the bytes that hold something are judged
    (the real file's free space holds heap memory, different on each real run)."""
    rnd = random.Random(seed)
    lines = []
    for i in range(400):
        key = f"u{i}" + "k" * rnd.choice([0, 0, 5, 40, 300])
        value = ",\n  ".join(f"someone{j}@example.org" for j in range(rnd.choice([1, 1, 3, 30, 40])))
        lines.append(f"{key}: {value}\n")
    _judge(pair, _aliases("".join(lines)), queries=("u0", "u399", "u17", "u18"), exact=False)


@pytest.mark.parametrize("text, reason", [
    ("big: " + ", ".join(f"someone{j}@example.org" for j in range(60)) + "\n", "overflow pages"),
    ("a: b (comment)\n", "not modelled"),
    ("a: b\\c\n", "not modelled"),
    (None, "not Postfix's"),
    ("s390x", "only little-endian"),
])
def test_deferred(pair, text, reason):
    def exim(root):  # another MTA's newaliases: postfix's file list without it
        path = os.path.join(root, "var/lib/dpkg/info/postfix.list")
        kept = [line for line in open(path).read().split("\n") if line != "/usr/bin/newaliases"]
        write(root, "var/lib/dpkg/info/postfix.list", "\n".join(kept).encode())

    def big_endian(root):  # the image's dpkg says s390x: libdb would write big-endian pages
        path = os.path.join(root, "var/lib/dpkg/status")
        paras = open(path).read().split("\n\n")
        paras = [re.sub(r"(?m)^Architecture: .*$", "Architecture: s390x", p) if "Package: dpkg\n" in p + "\n"
                 else p for p in paras]
        write(root, "var/lib/dpkg/status", "\n\n".join(paras).encode())
    pair.reset({None: exim, "s390x": big_endian}.get(text) or _aliases(text))
    before = open(os.path.join(pair.model, DB), "rb").read()
    pair.run_model("newaliases")
    text = pair.last.reason + " ".join(d.reason for d in pair.last.deferred_commands)
    assert reason in text, text
    assert open(os.path.join(pair.model, DB), "rb").read() == before
