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

import os
import shutil
import stat
import subprocess
import time

import pytest

from debian_tree import bookworm_tree, link_tree
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.commands.services import hwdb_build, hwdb_trie
from nuwa.script.interp import run_script

MODELS = default_models()
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
LIB = "usr/lib/udev/hwdb.d"
ETC = "etc/udev/hwdb.d"
WATCHED = ("etc/udev", "usr/lib/udev")


@pytest.fixture(scope="module")
def base():
    return bookworm_tree(("udev",))


def _put(root: str, rel: str, data: bytes | None = None, link: str | None = None, mode: int = 0o644) -> None:
    """Create or replace ``rel`` (a new inode: the copies share the cache's files)."""
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.lexists(p):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    if link is not None:
        os.symlink(link, p)
    elif data is None:
        os.mkdir(p)
    else:
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)


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
    res = run_script(HostDirFS(model, writable=True), " ".join(["systemd-hwdb", *args]) + "\n", models=MODELS,
                     env=dict(ENV))
    assert not res.deferred_commands and not res.deferred_whole, res.deferred_commands
    return ((r.returncode, r.stdout, r.stderr, _state(real)),
            (res.status, bytes(res.stdout), bytes(res.stderr), _state(model)))


def _stock(root):
    """The tree as it is (the udev postinst's own hwdb.bin in place)."""


def _stock_no_index(root):
    os.unlink(os.path.join(root, "usr/lib/udev/hwdb.bin"))


def _override(root):
    # an /etc file hides the stock one of the same name; a later file overrides a property
    _put(root, f"{ETC}/60-keyboard.hwdb", b"evdev:atkbd:dmi:*\n KEYBOARD_KEY_01=reserved\n")
    _put(root, f"{ETC}/99-local.hwdb", b"# local\nusb:v1D6Bp0001*\n ID_MODEL_FROM_DATABASE=Local root hub  # why\n"
         b"\nusb:v1D6B*\n ID_VENDOR_FROM_DATABASE=Local vendor\n NEW_KEY=1\n")
    _put(root, f"{ETC}/.hidden.hwdb", b"usb:v*\n HIDDEN=1\n")
    _put(root, f"{ETC}/notes.txt", b"usb:v*\n TXT=1\n")


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
    _put(root, f"{LIB}/10-bad.hwdb", MALFORMED)
    _put(root, f"{LIB}/20-good.hwdb", b"match:a\n KEY=from-20\n")


def _bad_files(root):
    _clear_sources(root)
    _put(root, f"{LIB}/10-dir.hwdb")
    _put(root, f"{LIB}/20-dangling.hwdb", link="/nonexistent/x.hwdb")
    _put(root, f"{LIB}/30-ok.hwdb", b"match:x\n OK=1\n")
    _put(root, f"{LIB}/40-long.hwdb", b"match:y\n Y=1\n\nmatch:z\n Z=" + b"z" * (1024 * 1024) + b"\n")
    _put(root, f"{ETC}/50-masked.hwdb", link="/dev/null")
    _put(root, f"{LIB}/50-masked.hwdb", b"match:m\n M=1\n")


def _no_sources(root):
    _clear_sources(root)


def _no_sources_dir_index(root):
    _clear_sources(root)
    _put(root, "etc/udev/hwdb.bin")


def _index_is_dir(root):
    _clear_sources(root)
    _put(root, f"{LIB}/1.hwdb", b"a\n B=c\n")
    _put(root, "usr/lib/udev/hwdb.bin")


def _index_is_link(root):
    _clear_sources(root)
    _put(root, f"{LIB}/1.hwdb", b"a\n B=c\n")
    _put(root, "etc/udev/hwdb.bin", link="../../usr/lib/udev/hwdb.bin")


def _no_etc_udev(root):
    _clear_sources(root)
    _put(root, f"{LIB}/1.hwdb", b"a*\n B=c\nab*\n B=d\nabc\n C=e\n")
    shutil.rmtree(os.path.join(root, "etc/udev"))


def _etc_links_to_lib(root):
    _clear_sources(root)
    _put(root, f"{LIB}/1.hwdb", b"a*\n B=c\n")
    shutil.rmtree(os.path.join(root, ETC))
    os.symlink("/lib/udev/hwdb.d", os.path.join(root, ETC))


CASES = {
    "stock-usr": (_stock, ["--usr", "update"]),
    "stock-usr-no-index-strict": (_stock_no_index, ["--strict", "--usr", "update"]),
    "stock-etc-root-slash": (_stock, ["--root=/", "update"]),
    "override": (_override, ["update", "--usr"]),
    "malformed": (_malformed, ["-s", "update"]),
    "bad-files": (_bad_files, ["update"]),
    "bad-files-strict": (_bad_files, ["--strict", "update"]),
    "no-sources": (_no_sources, ["update"]),
    "no-sources-removes": (_no_sources, ["--usr", "update"]),
    "no-sources-dir-index": (_no_sources_dir_index, ["-r", "/", "update"]),
    "index-is-dir": (_index_is_dir, ["--usr", "update"]),
    "index-is-link": (_index_is_link, ["update"]),
    "no-etc-udev": (_no_etc_udev, ["update"]),
    "etc-links-to-lib": (_etc_links_to_lib, ["update"]),
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
