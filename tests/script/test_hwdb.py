"""``systemd-hwdb update`` (systemd 252) against the real program in a chroot of a bookworm tree
with udev.

Each case prepares two hard-linked copies of the tree the same way (files are replaced, never
written through a link); the real ``systemd-hwdb`` runs in one with ``chroot`` (no /proc, /sys
or /dev mounted, as under dpkg in a chroot), the model in the other through the interpreter.
The written ``hwdb.bin`` (bytes, mode, type) in both places, every other changed path under
``/etc/udev`` and ``/usr/lib/udev``, stdout, stderr and the exit status must agree. The
inputs: the stock sources (what udev's postinst rebuilds), overrides and additions in
``/etc/udev/hwdb.d``, and broken sources (every warning the parser has, odd line ends, an
over-long line, a directory, a dangling link, ``--strict``), plus usage errors.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time

import pytest

from debian_tree import bookworm_tree, link_tree
from helpers.cli import nuwa
from helpers.treecopy import put_anew
from judges import debugfs, e2fsck_clean, qemu_img_check, qemu_img_to_raw, tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.commands.services import hwdb_build, hwdb_trie
from nuwa.script.interp import run_script

MODELS = default_models()
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
LIB = "usr/lib/udev/hwdb.d"
ETC = "etc/udev/hwdb.d"
WATCHED = ("etc", "usr/lib/udev")


@pytest.fixture(scope="module")
def base():
    return bookworm_tree(("udev",))


def _clear_sources(root: str) -> None:
    for d in (LIB, ETC):
        p = os.path.join(root, d)
        for n in os.listdir(p):
            os.unlink(os.path.join(p, n))


def _state(root: str) -> dict:
    """Every path under the watched directories: type, mode, and bytes of regular files."""
    out = {}
    for top in WATCHED:
        for dirpath, dirs, files in os.walk(os.path.join(root, top)):
            for n in sorted(dirs + files):
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                rel = os.path.relpath(p, root)
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        out[rel] = ("f", st.st_mode, st.st_uid, f.read())
                elif stat.S_ISLNK(st.st_mode):
                    out[rel] = ("l", os.readlink(p))
                else:
                    out[rel] = ("d", st.st_mode)
    return out


def _pair(base, tmp_path, setup, args):
    real = link_tree(base, str(tmp_path / "real"))
    model = link_tree(base, str(tmp_path / "model"))
    setup(real)
    setup(model)
    r = subprocess.run([tool("chroot"), real, "systemd-hwdb", *args], capture_output=True, env=ENV)
    # the model writes through an overlay transaction committed afterwards, as `nuwa patch` does
    ov = Overlay(HostDirFS(model, writable=True))
    res = run_script(ov, " ".join(["systemd-hwdb", *args]) + "\n", models=MODELS, env=dict(ENV))
    assert not res.deferred_commands and not res.deferred_whole, res.deferred_commands
    ov.commit()
    return ((r.returncode, r.stdout, r.stderr, _state(real)),
            (res.status, bytes(res.stdout), bytes(res.stderr), _state(model)))


def _stock(root):
    """The tree as it is (the udev postinst's own hwdb.bin in place)."""


def _stock_no_index(root):
    os.unlink(os.path.join(root, "usr/lib/udev/hwdb.bin"))


def _override(root):
    # an /etc file hides the stock one of the same name; a later file overrides a property
    put_anew(root, f"{ETC}/60-keyboard.hwdb", b"evdev:atkbd:dmi:*\n KEYBOARD_KEY_01=reserved\n")
    put_anew(root, f"{ETC}/99-local.hwdb", b"# local\nusb:v1D6Bp0001*\n ID_MODEL_FROM_DATABASE=Local root hub  # why\n"
         b"\nusb:v1D6B*\n ID_VENDOR_FROM_DATABASE=Local vendor\n NEW_KEY=1\n")
    put_anew(root, f"{ETC}/.hidden.hwdb", b"usb:v*\n HIDDEN=1\n")
    put_anew(root, f"{ETC}/notes.txt", b"usb:v*\n TXT=1\n")


MALFORMED = (
    b" INDENTED=first\n"
    b"match:no-props\n\n"
    b"match:a\nmatch:b\n KEY=v\n  MULTI=spaces\n \tTAB=x\n\tNOT_A_PROP\n"
    b"match:c\n NOEQUALS\n  =empty\n =also empty\n KEY = spaced\n KEY=second\n"
    b"  \n"
    b"match:d\r\n CRLF=1\r\n\r\n"
    b"match:e\r CR=1\r\rmatch:f\0 NUL=1\0\n\0\n"
    b"match:g\n \xff\xfe=bin\xe9\n"
    b"match:long\n LONG=" + b"x" * 3000 + b"\n\n"
    b"match:" + b"y" * 2100 + b"\n BAD\n"
    b"\n#comment\nmatch:h # trailing\n HASH=a#b\n"
    b"match:eof-without-props"
)


def _malformed(root):
    _clear_sources(root)
    put_anew(root, f"{LIB}/10-bad.hwdb", MALFORMED)
    put_anew(root, f"{LIB}/15-eof.hwdb", b"match:x\n X=1\n\n\n  \nmatch:eof\nmatch:eof2  ")
    put_anew(root, f"{LIB}/16-empty.hwdb", b"")
    put_anew(root, f"{LIB}/20-good.hwdb", b"match:a\n KEY=from-20\n")


def _bad_files(root):
    _clear_sources(root)
    put_anew(root, f"{LIB}/10-dir.hwdb")
    put_anew(root, f"{LIB}/20-dangling.hwdb", link="/nonexistent/x.hwdb")
    put_anew(root, f"{LIB}/30-ok.hwdb", b"match:x\n OK=1\n")
    put_anew(root, f"{LIB}/40-long.hwdb", b"match:y\n Y=1\n\nmatch:z\n Z=" + b"z" * (1024 * 1024) + b"\n")
    put_anew(root, f"{ETC}/50-masked.hwdb", link="/dev/null")
    put_anew(root, f"{LIB}/50-masked.hwdb", b"match:m\n M=1\n")


def _no_sources(root):
    _clear_sources(root)


def _no_sources_dir_index(root):
    _clear_sources(root)
    put_anew(root, "etc/udev/hwdb.bin")


def _index_is_dir(root):
    _clear_sources(root)
    put_anew(root, f"{LIB}/1.hwdb", b"a\n B=c\n")
    put_anew(root, "usr/lib/udev/hwdb.bin")


def _index_is_link(root):
    _clear_sources(root)
    put_anew(root, f"{LIB}/1.hwdb", b"a\n B=c\n")
    put_anew(root, "etc/udev/hwdb.bin", link="../../usr/lib/udev/hwdb.bin")


def _no_etc_udev(root):
    _clear_sources(root)
    put_anew(root, f"{LIB}/1.hwdb", b"a*\n B=c\nab*\n B=d\nabc\n C=e\n")
    shutil.rmtree(os.path.join(root, "etc/udev"))


def _etc_udev_is_file(root):
    # its hwdb.d is skipped (ENOTDIR), and the index cannot be written there
    _clear_sources(root)
    put_anew(root, f"{LIB}/1.hwdb", b"a\n B=c\n")
    shutil.rmtree(os.path.join(root, "etc/udev"))
    put_anew(root, "etc/udev", b"not a directory\n")


def _etc_links_to_lib(root):
    _clear_sources(root)
    put_anew(root, f"{LIB}/1.hwdb", b"a*\n B=c\n")
    shutil.rmtree(os.path.join(root, ETC))
    os.symlink("/lib/udev/hwdb.d", os.path.join(root, ETC))


def _etc_links_elsewhere(root):
    # the resolved directory is the name hwdb.bin records for each source
    put_anew(root, "srv/my hwdb/z.hwdb", b"pci:v*\n SRV=1\n")
    shutil.rmtree(os.path.join(root, ETC))
    os.symlink("../../srv/my hwdb", os.path.join(root, ETC))


def _prefix_splits(root):
    # match strings that split trie nodes at every depth, shared tails in the string pool,
    # and a later file replacing an earlier file's value on the same match
    _clear_sources(root)
    lines = []
    for m in (b"abcdef", b"abcxyz", b"abc", b"ab", b"abcdef", b"b", b"abd*", b"\xe9t\xe9", b"a", b""):
        lines.append(b"m:" + m + b"\n K" + m + b"=v" + m[::-1] + b"\n KEY=" + m + b"\n")
    put_anew(root, f"{LIB}/1.hwdb", b"\n".join(lines))
    put_anew(root, f"{LIB}/2.hwdb", b"m:abc\n KEY=replaced\n Kabc=\n\nm:ab\nm:abz\n NEW=cdef\n")


def _line_of(n):
    def setup(root):
        # a property line of exactly n bytes (LONG_LINE_MAX is 1 MiB): one byte more fails
        _clear_sources(root)
        line = b" K=" + b"v" * (n - 3)
        put_anew(root, f"{LIB}/1.hwdb", b"m:a\n" + line + b"\n\nm:b\n B=1\n")
    return setup


CASES = {
    "stock-usr": (_stock, ["--usr", "update"]),
    "stock-usr-no-index-strict": (_stock_no_index, ["--strict", "--usr", "update"]),
    "stock-etc-root-slash": (_stock, ["--root=/", "update"]),
    "override": (_override, ["update", "--usr"]),
    "malformed": (_malformed, ["-s", "update"]),
    "bad-files": (_bad_files, ["update"]),
    "bad-files-strict": (_bad_files, ["--strict", "update"]),
    "line-below-limit-strict": (_line_of(1024 * 1024 - 1), ["--strict", "update"]),
    "line-at-limit-strict": (_line_of(1024 * 1024), ["--strict", "update"]),
    "no-sources": (_no_sources, ["update"]),
    "no-sources-removes": (_no_sources, ["--usr", "update"]),
    "no-sources-dir-index": (_no_sources_dir_index, ["-r", "/", "update"]),
    "index-is-dir": (_index_is_dir, ["--usr", "update"]),
    "index-is-link": (_index_is_link, ["update"]),
    "no-etc-udev": (_no_etc_udev, ["update"]),
    "etc-udev-is-file": (_etc_udev_is_file, ["update"]),
    "etc-links-to-lib": (_etc_links_to_lib, ["update"]),
    "etc-links-elsewhere": (_etc_links_elsewhere, ["update"]),
    "prefix-splits": (_prefix_splits, ["update"]),
    "no-verb": (_no_sources, ["--usr"]),
    "unknown-verb": (_no_sources, ["frob"]),
    "too-many": (_no_sources, ["update", "now"]),
    "bad-option": (_no_sources, ["--bogus", "update"]),
    "missing-root": (_no_sources, ["update", "-r"]),
    "option-with-arg": (_no_sources, ["--usr=1", "update"]),
}


@pytest.mark.judge
@pytest.mark.parametrize("name", list(CASES))
def test_hwdb_update_matches_real(base, tmp_path, name):
    setup, args = CASES[name]
    real, model = _pair(base, tmp_path, setup, args)
    assert model[:3] == real[:3]
    assert model[3] == real[3]


def test_strbuf_shares_equal_strings_and_tails():
    """strbuf.c: an equal string or a tail of one reached through the reversed-string trie
    is shared; a string the trie does not lead to is appended even if the buffer holds it."""
    sb = hwdb_trie.StrBuf()
    got = [sb.add(s) for s in (b"foo", b"oo", b"bar", b"foo", b"", b"xfoo", b"fo", b"o", b"r")]
    assert got == [1, 2, 5, 1, 0, 9, 14, 3, 7]
    assert bytes(sb.buf) == b"\0foo\0bar\0xfoo\0fo\0"


def test_header_and_layout_of_a_small_index():
    """The header's sizes and offsets describe the file: nodes end where the strings begin."""
    data, warn, err = hwdb_build.build([(b"/x/1.hwdb", b"usb:v1*\n A=1\n\nusb:v2*\n A=2\n")])
    assert warn == [] and err == 0
    sig, version, size, hsize, nsize, csize, vsize, root_off, nodes_len, strings_len = hwdb_trie.HEADER.unpack(
        data[:80])
    assert (sig, version, size, hsize, nsize, csize, vsize) == (b"KSLPHHRH", 252, len(data), 80, 24, 16, 32)
    assert 80 + nodes_len + strings_len == len(data)
    # post-order: the root is the last node written
    prefix_off, children, values = hwdb_trie.NODE.unpack(data[root_off:root_off + 24])
    assert root_off + 24 + 16 * children + 32 * values == 80 + nodes_len
    assert data[prefix_off] == 0 and (children, values) == (1, 0)
    # one child, "u", whose prefix is the rest of the shared part; it has the two branches
    c, child_off = hwdb_trie.CHILD.unpack(data[root_off + 24:root_off + 40])
    prefix_off, children, values = hwdb_trie.NODE.unpack(data[child_off:child_off + 24])
    assert (chr(c), data[prefix_off:data.index(b"\0", prefix_off)], children, values) == ("u", b"sb:v", 2, 0)


def test_read_lines_follows_read_line_full():
    assert hwdb_build.read_lines(b"a\r\nb\n\rc\0d\n\0\0e") == ([b"a", b"b", b"c", b"d", b"", b"e"], False)
    assert hwdb_build.read_lines(b"a\n\nb\r\r") == ([b"a", b"", b"b", b""], False)
    big = b"x" * hwdb_build.LONG_LINE_MAX
    assert hwdb_build.read_lines(b"a\n" + big + b"\nb\n") == ([b"a"], True)
    assert hwdb_build.read_lines(b"a\n" + big[1:] + b"\n") == ([b"a", big[1:]], False)


@pytest.mark.parametrize("args, env, setup, why", [
    (["query", "usb:v1D6B"], {}, None, "query is not modelled"),
    (["--help"], {}, None, "--help is not modelled"),
    (["update", "--version"], {}, None, "--version is not modelled"),
    (["--root=/mnt", "update"], {}, None, "only the image's own root"),
    (["update"], {"SYSTEMD_LOG_LEVEL": "debug"}, None, "SYSTEMD_LOG_LEVEL set"),
    (["update"], {}, "fifo", "not a regular file"),
    (["update"], {}, "zero", "leads to /dev/zero, on a file system mounted at boot"),
])
def test_what_is_deferred_says_why(tmp_path, args, env, setup, why):
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, LIB))
    os.symlink("usr/lib", os.path.join(root, "lib"))  # merged /usr, as bookworm
    put_anew(root, f"{LIB}/1.hwdb", b"a\n B=c\n")
    # the interpreter finds the program in the image's PATH (never runs it)
    put_anew(root, "usr/bin/systemd-hwdb", b"\x7fELF", mode=0o755)
    if setup == "fifo":
        os.mkfifo(os.path.join(root, LIB, "2.hwdb"))
    elif setup == "zero":
        put_anew(root, f"{ETC}/2.hwdb", link="/dev/zero")
    before = _state(root)
    res = run_script(HostDirFS(root, writable=True), " ".join(["systemd-hwdb", *args]) + "\n", models=MODELS,
                     env={**ENV, **env})
    [d] = res.deferred_commands
    assert why in d.reason
    assert _state(root) == before


def test_stock_database_builds_in_seconds(base):
    """The stock bookworm sources (~9 MB, 120,000 match lines): within a few seconds of CPU."""
    d = os.path.join(base, LIB)
    sources = [(f"/{LIB}/{n}".encode(), open(os.path.join(d, n), "rb").read()) for n in sorted(os.listdir(d))]
    t = time.process_time()
    data, warn, err = hwdb_build.build(sources)
    spent = time.process_time() - t
    with open(os.path.join(base, "usr/lib/udev/hwdb.bin"), "rb") as f:
        assert data == f.read()
    assert spent < 6, spent


@pytest.mark.judge
def test_udev_postinst_line_on_an_ext4_image(base, tmp_path):
    """udev's postinst line through `nuwa sh` on an ext4 image made by mkfs.ext4 from a small
    tree (the stock sources, the program only looked up): the qcow2 overlay passes qemu-img
    check, its ext4 passes e2fsck -fn, and debugfs reads back the real program's hwdb.bin
    (the one udev's postinst made in the cached tree), mode 0444, owned by root."""
    tree = tmp_path / "tree"
    for d in ("usr/bin", "usr/lib/udev", "etc/udev/hwdb.d", "var/lib/dpkg"):
        os.makedirs(tree / d)
    os.symlink("usr/lib", tree / "lib")
    shutil.copytree(os.path.join(base, LIB), tree / LIB)
    for rel in ("usr/bin/systemd-hwdb", "etc/os-release", "var/lib/dpkg/status"):
        shutil.copy2(os.path.join(base, rel), tree / rel)
    img, out, raw = tmp_path / "disk.raw", tmp_path / "out.qcow2", tmp_path / "out.raw"
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), "-E", "root_owner=0:0", str(img), "64M"],
                   check=True, capture_output=True)
    r = nuwa("sh", img, "-c", "systemd-hwdb --usr update || true", "--output", out, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["deferred_commands"] == [] and not doc["deferred_whole"] and doc["status"] == 0, r.stdout
    qemu_img_check(str(out))
    qemu_img_to_raw(str(out), str(raw))
    e2fsck_clean(str(raw))
    debugfs(str(raw), f"dump /usr/lib/udev/hwdb.bin {tmp_path / 'hwdb.bin'}")
    with open(tmp_path / "hwdb.bin", "rb") as f, open(os.path.join(base, "usr/lib/udev/hwdb.bin"), "rb") as g:
        assert f.read() == g.read()
    st = debugfs(str(raw), "stat /usr/lib/udev/hwdb.bin")
    assert "Mode:  0444" in st and "User:     0   Group:     0" in st
