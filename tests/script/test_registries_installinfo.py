"""install-info: the model against texinfo 6.8's real install-info in a chroot of bookworm.

The cases add info files to the tree's own (coreutils, diffutils, find, grep, gzip, sed):
several sections per file, several entries per block, an entry without a section, a name
another file already has, long and tabbed descriptions that wrap, the "Individual
utilities" columns, an XEmacs-style item, non-ASCII bytes (signed-char ordering), a START
without END, an empty and a too-short file, a file without entries, a gzip'd and an xz'd file. They run
``update-info-dir`` (the real shell script under real sh, and the simulator running it)
and single ``install-info`` calls (add, re-add, --remove, --section/--entry/--name/
--description on the command line, the old Debian ``--section REGEX TITLE``, --regex,
--keep-old, --add-once, --append-new-sections, --calign/--align/--max-width, --test,
--debug, --quiet, usage errors) against dir files with local edits; every step's output
and status and the resulting /usr/share/info are compared.
"""

from __future__ import annotations

import os

import pytest

from info_harness import ENV, MODELS, make_pair, write
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.context import Defer, Invocation

pytestmark = pytest.mark.root

INFO = "usr/share/info"
DIR = "/usr/share/info/dir"
UPDATE = ["sh", "/usr/sbin/update-info-dir"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory)


MULTI = b"""This is multi.info, produced by hand.

INFO-DIR-SECTION Alpha tools
INFO-DIR-SECTION beta
START-INFO-DIR-ENTRY
* Multi: (multi).               An entry in two sections.
* Multi two: (multi)Two.  Second entry of the same block, with a fairly long description
that continues. On the next line, and needs wrapping at the width of seventy-nine columns.
END-INFO-DIR-ENTRY
INFO-DIR-SECTION Gamma
START-INFO-DIR-ENTRY
* Gam: (multi)Gam.
    A description on the next line,
    and a third line.
END-INFO-DIR-ENTRY

\x1f
File: multi.info,  Node: Top,  Next: Two,  Up: (dir)

Nothing here.
"""
NOSECTION = b"""This is lonely.info.

START-INFO-DIR-ENTRY
* Lonely: (lonely).	A tab\tinside and an entry without a section.
END-INFO-DIR-ENTRY
"""
DUPLICATE = b"""This is sed2.info, a second sed manual.

INFO-DIR-SECTION Text creation and manipulation
START-INFO-DIR-ENTRY
* sed: (sed2).                  Another stream editor, which replaces the first one's entry.
END-INFO-DIR-ENTRY
"""
UTILS = b"""This is tools.info.

INFO-DIR-SECTION Individual utilities
START-INFO-DIR-ENTRY
* frob: (tools)frob invocation.                 Frobnicate files.
* a-very-long-utility-name-that-is-wide: (tools)wide invocation.  A long name.
* aardvark: (tools)Aardvark.
END-INFO-DIR-ENTRY
INFO-DIR-SECTION XEmacs
START-INFO-DIR-ENTRY
* Tools::Messaging.     An XEmacs-style item.
END-INFO-DIR-ENTRY
"""
HIGH = b"""This is high.info.

INFO-DIR-SECTION Text creation and manipulation
START-INFO-DIR-ENTRY
* \xc3\xa9dit: (high).     Non-ASCII name (UTF-8 bytes).
* zed: (high)Zed.  Ordinary.
* Sed: (high)Sed.  Same letters, other case.
END-INFO-DIR-ENTRY
"""
NOEND = b"""This is noend.info.

INFO-DIR-SECTION Broken
START-INFO-DIR-ENTRY
* Noend: (noend).   No end marker follows.
"""
NOENTRY = b"This is plain.info, produced without any dir entry at all.\n\x1f\nFile: plain.info\n"
PACKED = b"""This is packed.info, read through xz -d.

INFO-DIR-SECTION Compression
START-INFO-DIR-ENTRY
* Packed: (packed).             An xz-compressed manual.
END-INFO-DIR-ENTRY
"""
EDITED_TAIL = b"""
Local additions
* Mine: (mine).                 A local entry an administrator added.
  with a continuation line.
* Zzz: (zzz).                   Another one."""  # no newline at the end


def added(root):
    write(root, f"{INFO}/multi.info", MULTI)
    write(root, f"{INFO}/lonely.info.gz", NOSECTION, compress=True)
    write(root, f"{INFO}/sed2.info", DUPLICATE)
    write(root, f"{INFO}/tools.info", UTILS)
    write(root, f"{INFO}/high.info", HIGH)
    write(root, f"{INFO}/plain.info", NOENTRY)
    write(root, f"{INFO}/multi.info-1", b"skipped by update-info-dir's pattern\n")
    write(root, f"{INFO}/packed.info.xz", PACKED, compress="xz")


def broken(root):
    added(root)
    write(root, f"{INFO}/noend.info", NOEND)
    write(root, f"{INFO}/empty.info", b"")
    write(root, f"{INFO}/tiny.info", b"tiny\n")


def test_update_info_dir_over_the_trees_files(pair):
    pair.check([UPDATE])
    assert b"* sed: (sed)." in pair.dir_file()


def test_update_info_dir_over_added_files(pair):
    pair.check([UPDATE, UPDATE], setup=added)
    text = pair.dir_file()
    assert b"\nAlpha tools\n* Multi two:" in text and b"\nbeta\n* Multi two:" in text
    assert b"\nMiscellaneous\n* Lonely:" in text
    assert b"* Tools::Messaging." in text and b"* sed: (sed2)." in text and b"* Packed: (packed)." in text


def test_update_info_dir_with_errors(pair):
    results = pair.check([UPDATE], setup=broken)
    # the script counts errors in the pipeline's subshell, so its summary never prints
    assert results[0][0] == 0 and b"without matching END-INFO-DIR-ENTRY" in results[0][2]
    assert results[0][2].count(b"empty file") == 2


def test_utf8_locale(pair):
    """Under C.UTF-8 (bookworm has it built in) ASCII text is handled as in C."""
    env = {**ENV, "LC_ALL": "C.UTF-8"}
    pair.check([UPDATE, ["install-info", "--remove", f"/{INFO}/sed.info.gz", DIR],
                ["install-info", f"/{INFO}/multi.info", DIR]], setup=lambda r: write(r, f"{INFO}/multi.info", MULTI),
               env=env)


def test_add_readd_remove(pair):
    steps = [["install-info", f"/{INFO}/multi.info", DIR],
             ["install-info", f"/{INFO}/multi.info", DIR],
             ["install-info", f"/{INFO}/tools.info", DIR],
             ["install-info", "--remove", f"/{INFO}/multi.info", DIR],
             ["install-info", "--delete", "--quiet", f"/{INFO}/multi.info", DIR],
             ["install-info", "--remove", f"/{INFO}/multi.info", DIR],
             ["install-info", "--remove", f"/{INFO}/tools", DIR],
             ["install-info", "--remove-exactly", "gone", DIR],
             ["install-info", "--remove", f"/{INFO}/gone.info", DIR],
             ["install-info", "--remove", f"/{INFO}/multi.info", "/tmp/nodir"],
             ["install-info", f"/{INFO}/packed.info", DIR],  # found as packed.info.xz
             ["install-info", "--remove", f"/{INFO}/packed", DIR]]  # packed, packed.gz...: none
    pair.check(steps, setup=added)


def test_missing_and_odd_dir_files(pair):
    def setup(root):
        added(root)
        os.unlink(os.path.join(root, f"{INFO}/dir"))
        write(root, "tmp/short/dir", b"short\n")
    pair.check([["install-info", f"/{INFO}/plain.info", DIR],  # the template is made, no entry
                ["install-info", f"/{INFO}/multi.info", "/tmp/short/dir"],  # < 13 bytes: remade
                ["install-info", f"/{INFO}/multi.info", "/tmp/nosuchdir/dir"],
                ["install-info", "--test", f"/{INFO}/multi.info", "/tmp/absent"],
                ["install-info", "--test", "--debug", f"/{INFO}/multi.info", DIR],
                ["install-info", f"/{INFO}/missing.info", DIR],
                ["install-info", f"/{INFO}/plain.info", DIR],
                ["install-info", "--quiet", f"/{INFO}/plain.info", DIR],
                ["install-info", f"/{INFO}", DIR]], setup=setup)


def test_dir_file_with_local_edits(pair):
    def setup(root):
        added(root)
        p = os.path.join(root, f"{INFO}/dir")
        data = open(p, "rb").read()
        data = data.replace(b"* Menu:\n", b"* Menu:\nSome text an admin wrote.\n\n", 1) + EDITED_TAIL
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, 0o600)
    pair.check([["install-info", f"/{INFO}/multi.info", DIR],
                ["install-info", "--keep-old", f"/{INFO}/sed2.info", DIR],
                ["install-info", f"/{INFO}/sed2.info", DIR],
                ["install-info", f"/{INFO}/high.info", DIR],
                ["install-info", "--remove", "mine", DIR],
                ["install-info", "--remove", "--keep-old", "zzz", DIR],
                ["install-info", "--remove", f"/{INFO}/sed2.info", DIR]], setup=setup)


def test_command_line_entries_and_sections(pair):
    long_desc = "A command-line entry whose description is long enough that it wraps more than once at " \
                "the default width of seventy-nine columns, even twice."
    pair.check([["install-info", "--section", "Foo", "--entry", f"* Bar: (bar).  {long_desc}",
                 f"/{INFO}/gzip.info.gz", DIR],
                ["install-info", "--name", "baz", "--description", "Baz the tool.", f"/{INFO}/plain.info", DIR],
                ["install-info", "--description", "Nameless.", f"/{INFO}/plain.info", DIR],
                ["install-info", "--name=* Starred: (starred).", f"/{INFO}/multi.info", DIR],
                ["install-info", "--name", "quux", f"/{INFO}/tools.info", DIR],
                ["install-info", "--entry", "* E1: (e).  one", "--description", "more", "--entry=* E2: (e).  two",
                 "--section=Zeta", "--section=alpha", f"/{INFO}/plain.info", DIR],
                ["install-info", "--defsection=Defaulted", "--entry=* D: (d).  d", f"/{INFO}/plain.info", DIR],
                ["install-info", "--calign=20", "--align=24", "--max-width=50", f"/{INFO}/multi.info", DIR],
                ["install-info", "--calign=0x30", "--no-indent", f"/{INFO}/tools.info", DIR],
                ["install-info", "--append-new-sections", f"/{INFO}/lonely.info", DIR],
                ["install-info", "--info-dir=/usr/share/info", f"/{INFO}/high.info"],
                ["install-info", "--dir-file", DIR, "--info-file", f"/{INFO}/sed2.info"]], setup=added)


def test_regex_and_old_debian_section(pair):
    pair.check([["install-info", "--section", "text", "Text things", f"/{INFO}/tools.info", DIR],
                ["install-info", "--section", "^nomatch$", "New by regex", f"/{INFO}/multi.info", DIR],
                ["install-info", "--regex=^Text", "--regex=second", f"/{INFO}/lonely.info", DIR],
                ["install-info", "--add-once", "--section=Once A", "--section=Once B", f"/{INFO}/high.info", DIR],
                ["install-info", "--section", "x", f"/{INFO}/multi.info", f"/{INFO}/sed2.info", DIR]],
               setup=added)


def test_usage_errors(pair):
    pair.check([["install-info"], ["install-info", f"/{INFO}/multi.info"],
                ["install-info", "--dir-file"], ["install-info", "--dir-file=/a", "--info-dir=/b", "x"],
                ["install-info", "-i", "a", "--info-file=b"], ["install-info", "--calign=0", "a", "b"],
                ["install-info", "--align=x", "a", "b"], ["install-info", "--max-width=-3", "a", "b"],
                ["install-info", f"/{INFO}/multi.info", DIR, "extra", "more"],
                ["install-info", "--info", "a", "b"]], setup=added)


def _model(pair, argv, env=None):
    fs = HostDirFS(pair.model, writable=True)
    inv = Invocation(argv=argv, fs=fs, cwd="/", env=dict(env or ENV), stdin=b"", umask=0o022, models=MODELS)
    return MODELS["install-info"](inv)


def test_deferred_forms_write_nothing(pair):
    def setup(root):
        added(root)
        write(root, f"{INFO}/nodot.info", b"This is nodot.\n\nSTART-INFO-DIR-ENTRY\n* Nodot: (nodot)\n"
                                          b"END-INFO-DIR-ENTRY\n")
        write(root, "tmp/zdir/dir.gz", open(os.path.join(root, f"{INFO}/dir"), "rb").read(), compress=True)
        write(root, f"{INFO}/broken.info.xz", b"\xfd7zXZ\0" + b"\0" * 30)
        write(root, f"{INFO}/bz.info.bz2", b"BZh91AY&SY" + b"\0" * 30)
    pair.reset(setup)
    before = pair.facts(pair.model)
    for argv in (["install-info", f"/{INFO}/nodot.info", DIR],  # its text is freed, never replaced
                 ["install-info", f"/{INFO}/multi.info", "/tmp/zdir/dir"],  # dir.gz is written via gzip
                 ["install-info", f"/{INFO}/broken.info.xz", DIR],  # xz -d fails: its messages
                 ["install-info", f"/{INFO}/bz.info", DIR],  # found as bz.info.bz2: bzip2 by magic
                 ["install-info", "--calign=1", f"/{INFO}/multi.info", DIR],
                 ["install-info", "--regex=a\\{2,1\\}", f"/{INFO}/multi.info", DIR],
                 ["install-info", "--help"]):
        with pytest.raises(Defer):
            _model(pair, argv)
    with pytest.raises(Defer):  # multibyte case folding is not modelled
        _model(pair, ["install-info", f"/{INFO}/high.info", DIR], env={**ENV, "LC_ALL": "C.UTF-8"})
    assert pair.facts(pair.model) == before
    # the template a missing dir file gets is only written when the run is not deferred
    os.unlink(os.path.join(pair.model, f"{INFO}/dir"))
    write(pair.model, "tmp/shortdir/dir", b"short")
    with pytest.raises(Defer):
        _model(pair, ["install-info", f"/{INFO}/nodot.info", DIR])
    with pytest.raises(Defer):
        _model(pair, ["install-info", f"/{INFO}/nodot.info", "/tmp/shortdir/dir"])
    assert not os.path.lexists(os.path.join(pair.model, f"{INFO}/dir"))
    assert open(os.path.join(pair.model, "tmp/shortdir/dir"), "rb").read() == b"short"


def test_postinst_configure_and_trigger(pair):
    """install-info's own postinst, as dpkg runs it for an upgrade and for its trigger on
    /usr/share/info: real sh in the chroot against the simulator (nothing deferred)."""
    from nuwa.script.interp import dpkg_environment

    env = {**dpkg_environment("postinst", "install-info", "amd64"), "DEBIAN_FRONTEND": "noninteractive"}
    script = "/var/lib/dpkg/info/install-info.postinst"
    steps = [["env", "-i", *(f"{k}={v}" for k, v in env.items()), "sh", script, "triggered", "/usr/share/info"],
             ["env", "-i", *(f"{k}={v}" for k, v in env.items()), "sh", script, "configure", "6.8-6+b1"]]
    pair.reset(added)
    for argv in steps:
        real = pair.run_real(argv, env)
        model = pair.run_model(["sh", script, *argv[-2:]], env)
        assert model == real, argv
        assert real[0] == 0
    fa, fb = pair.facts(pair.real), pair.facts(pair.model)
    assert fa == fb
    assert b"* Gam: (multi)Gam." in pair.dir_file()
