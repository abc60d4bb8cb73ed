"""mandb (man-db 2.11.2) against the real one in a chroot of a bookworm tree with man-db.

Each case runs the same command lines with real ``sh`` in a chroot of one copy and with Nuwa's
interpreter on the other (an overlay, committed), as man-db's postinst and trigger run mandb
(``setpriv --reuid man --regid man --init-groups -- mandb -cq|-pq``): the same status, stdout
and stderr, nothing deferred, then ``/var/cache/man`` and the man trees path by path (type,
mode, owner, size, content: every index.db byte for byte). The tree holds plain, ``.gz``,
``.so``, symlinked and mdoc pages in several sections and German and other localized trees;
the setups add the forms a tree may not have (hard links, uncompressed and bzip2 pages,
preprocessor lines, several names, a page in a new section); what is not modelled defers.
"""

from __future__ import annotations

import gzip
import os
import shutil

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import ENV, MODELS, ShellPair, write

AS_MAN = "setpriv --reuid man --regid man --init-groups -- /usr/bin/mandb"
PACKAGES = ("man-db", "manpages", "manpages-de", "netcat-openbsd", "openssh-client")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    cls = type("MandbPair", (ShellPair,), {
        "PACKAGES": PACKAGES, "DIRS": ["var/cache/man", "usr/share/man", "usr/local/share/man"],
        "FILES": ["etc/manpath.config"]})
    return cls(str(tmp_path_factory.mktemp("mandb")))


#: a larger spread: Pod::Man pages (perl), DocBook pages (systemd), mdoc pages (bsdextrautils),
#: the Linux programmer's pages, French, Japanese, Chinese and Russian trees
MORE_PACKAGES = ("bsdextrautils", "groff-base", "iproute2", "man-db", "manpages", "manpages-dev",
                 "manpages-fr", "manpages-ja", "manpages-ru", "manpages-zh", "perl", "systemd")


@pytest.fixture(scope="module")
def big_pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    cls = type("MandbBigPair", (ShellPair,), {
        "PACKAGES": MORE_PACKAGES, "DIRS": ["var/cache/man", "usr/share/man"], "FILES": []})
    return cls(str(tmp_path_factory.mktemp("mandb-big")))


def no_index(root: str) -> None:
    """No index.db anywhere: what the postinst of a fresh installation meets."""
    for dirpath, _dirs, files in os.walk(os.path.join(root, "var/cache/man")):
        if "index.db" in files:
            os.unlink(os.path.join(dirpath, "index.db"))


def empty_cache(root: str) -> None:
    """/var/cache/man with nothing in it (the postinst's ``install -d``): catdirs, tags and
    the databases made from nothing."""
    top = os.path.join(root, "var/cache/man")
    for name in os.listdir(top):
        p = os.path.join(top, name)
        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


def page(root: str, rel: str, text: str, gz: bool = True, mtime: int = 1_700_000_000) -> None:
    data = text.encode()
    if gz:
        data = gzip.compress(data, mtime=0)
    write(root, "usr/share/man/" + rel, data)
    os.utime(os.path.join(root, "usr/share/man", rel), (mtime, mtime))


def more_pages(root: str) -> None:
    """Page forms beyond the tree's: a plain page, several names, tbl and eqn lines, a .so
    link and a symlink to it, a hard link, a new section, an mdoc page with
    ``.Nm``/``.Nd``, glyphs and font escapes, a German page."""
    page(root, "man1/zzplain.1", ".TH ZZPLAIN 1\n.SH NAME\nzzplain \\- an uncompressed page\n"
         ".SH DESCRIPTION\n.TS\nl.\nx\n.TE\n", gz=False)
    page(root, "man1/zzmulti.1.gz", ".TH ZZMULTI 1\n.SH NAME\nzzmulti, zzother, ZZUpper \\- "
         "three \\fBnames\\fR, one \\(lqpage\\(rq\n.PP\nzzsecond \\- a second record\n"
         ".SH SEE ALSO\n.EQ\nx\n.EN\n")
    page(root, "man1/zzso.1.gz", ".so man1/zzmulti.1\n")
    os.symlink("zzmulti.1.gz", os.path.join(root, "usr/share/man/man1/zzlink.1.gz"))
    # the record of a symlinked page holds the link's own mtime (lstat): the same on both sides
    os.utime(os.path.join(root, "usr/share/man/man1/zzlink.1.gz"), (1_700_000_000, 1_700_000_000),
             follow_symlinks=False)
    page(root, "man1/zzhard.1.gz", ".TH ZZHARD 1\n.SH NAME\nzzhard \\- hard linked\n")
    os.link(os.path.join(root, "usr/share/man/man1/zzhard.1.gz"),
            os.path.join(root, "usr/share/man/man1/zzahard.1.gz"))
    os.makedirs(os.path.join(root, "usr/share/man/man9"), exist_ok=True)
    page(root, "man9/zzkern.9.gz", ".TH ZZKERN 9\n.SH NAME\nzzkern \\- a new section\n")
    page(root, "man3/zzmdoc.3.gz", ".Dd $Mdocdate$\n.Dt ZZMDOC 3\n.Os\n.Sh NAME\n.Nm zzmdoc ,\n"
         ".Nm zzmdoc_r\n.Nd mdoc names\n.Sh SYNOPSIS\n")
    page(root, "de/man1/zzdeutsch.1.gz", ".TH ZZDEUTSCH 1\n.SH BEZEICHNUNG\nzzdeutsch \\- "
         "Gr\\(:u\\(sse aus M\u00fcnchen\n")


def test_create_fresh(pair):
    """The postinst of a fresh installation: no index.db anywhere."""
    pair.check([AS_MAN + " -cq"], setup=no_index)


def test_create_many_pages(big_pair):
    """-c over 7,630 pages (2,013 of them symlinks) of twelve packages, then -p after one more."""
    big_pair.check([AS_MAN + " -cq", "sleep 0.01; cp -p /usr/share/man/man1/perl.1.gz /usr/share/man/man1/zzperl.1.gz; "
                    + AS_MAN + " -pq"], setup=no_index)


def test_create_from_empty_cache(pair):
    pair.check([AS_MAN + " -cq; echo $?"], setup=empty_cache)


def test_create_over_existing(pair):
    pair.check([AS_MAN + " -cq"])


def test_update_nothing_changed(pair):
    pair.check([AS_MAN + " -pq; echo $?"])


def test_create_more_forms(pair):
    pair.check([AS_MAN + " -cq"], setup=more_pages)


def test_update_after_new_pages(pair):
    """The trigger after an upgrade that shipped pages: -p adds them to the old database."""
    pair.check([AS_MAN + " -cq", "sleep 0.01; " + AS_MAN + " -pq"],
               setup=lambda root: (no_index(root),))


def test_update_adds_pages(pair):
    def setup(root):
        more_pages(root)
    pair.check([AS_MAN + " -pq"], setup=setup)


def test_as_root(pair):
    """mandb run by root: what it creates is handed to user man."""
    pair.check(["mandb -cq"], setup=empty_cache)


def model_run(pair, cmd, setup=None):
    pair.reset(setup)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    r = run_script(fs, cmd, env=dict(ENV), models=MODELS, is_path=False)
    fs.commit()
    return r


def stray_cat(root):
    write(root, "var/cache/man/cat1/zzstray.1.gz", gzip.compress(b"ZZSTRAY(1)\n\nNAME\n  zzstray - x\n"))


def latin1_page(root):
    page(root, "man1/zzlatin.1.gz", ".TH X 1\n.SH NAME\nzzlatin \\- M\xfcnchen\n")
    p = os.path.join(root, "usr/share/man/man1/zzlatin.1.gz")
    with open(p, "wb") as f:
        f.write(gzip.compress(".TH X 1\n.SH NAME\nzzlatin \\- M\xfcnchen\n".encode("latin-1")))


def bzip2_page(root):
    import bz2
    write(root, "usr/share/man/man8/zzbz.8.bz2", bz2.compress(b".TH ZZBZ 8\n.SH NAME\nzzbz \\- x\n"))


def bomb_page(root):  # a hostile image's gzip bomb: 65 MiB of page from 65 KB
    write(root, "usr/share/man/man1/zzbomb.1.gz", gzip.compress(b".TH X 1\n" + b"\n" * (65 << 20), 9))


def sparse_page(root):  # a hostile image's sparse page of 65 MiB (a few blocks on disk)
    write(root, "usr/share/man/man1/zzsparse.1", b".TH X 1\n")
    os.truncate(os.path.join(root, "usr/share/man/man1/zzsparse.1"), 65 << 20)


def empty_cache_latin1(root):  # catdirs and CACHEDIR.TAG are made before the page defers
    empty_cache(root)
    latin1_page(root)


@pytest.mark.parametrize("cmd, setup, reason", [
    (AS_MAN + " -q", None, "purges missing pages"),
    (AS_MAN + " -cq /usr/share/man", None, "MANPATH operand"),
    (AS_MAN + " -c", None, "without -q"),
    (AS_MAN + " -cqt", None, "-t"),
    (AS_MAN + " -cq", stray_cat, "stray cat"),
    (AS_MAN + " -cq", latin1_page, "is not UTF-8"),
    (AS_MAN + " -pq", bzip2_page, "decompressor"),
    (AS_MAN + " -cq", bomb_page, "decompresses to over 64 MiB"),
    (AS_MAN + " -cq", sparse_page, "is over 64 MiB"),
    (AS_MAN + " -cq", empty_cache_latin1, "is not UTF-8"),
])
def test_deferred(pair, cmd, setup, reason):
    """What the model does not reproduce defers the whole invocation, with the reason, and
    nothing of it is written."""
    pair.reset(setup)
    before = pair.facts(pair.model)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    r = run_script(fs, cmd, env=dict(ENV), models=MODELS, is_path=False)
    fs.commit()
    assert [d.reason for d in r.deferred_commands if reason in d.reason], r.deferred_commands
    assert pair.facts(pair.model) == before
