"""update-mime-database (shared-mime-info 2.2) against the real program in a chroot.

A bookworm minbase tree with shared-mime-info is copied twice (the install-info harness's
pair: ``real`` runs ``chroot real update-mime-database ...`` or the maintainer script,
``model`` the model on :class:`HostDirFS` or the simulator running the same script). Every
case restores ``/usr/share/mime``, ``/srv`` and ``/tmp`` on both, applies the same setup,
compares each step's stdout, stderr and exit status, then every file below the restored
directories byte for byte (with mode and owner): the per-type XML files, ``globs``,
``globs2``, ``magic``, ``aliases``, ``subclasses``, ``types``, ``icons``, ``generic-icons``,
``treemagic``, ``XMLnamespaces``, ``version`` and ``mime.cache``.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

import info_harness
from info_harness import ENV
from nuwa.script.context import Defer

MIME = "usr/share/mime"
PKGS = MIME + "/packages"
UMD = "update-mime-database"

#: a package's types exercising every element the program knows, and every error it reports
EXTRA = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a package's own types -->
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info" xmlns:x="urn:example:ext">
  <mime-type type="application/x-nuwa-test">
    <comment>Nuwa test document</comment>
    <comment xml:lang="de">Nuwa-Testdokument</comment>
    <comment xml:lang="fr">Document d’essai &amp; &lt;Nuwa&gt; "quoted"</comment>
    <acronym>NTD</acronym>
    <expanded-acronym>Nuwa Test Document</expanded-acronym>
    <icon name="nuwa-icon"/>
    <generic-icon name="x-office-document"/>
    <sub-class-of type="text/plain"/>
    <sub-class-of type="application/xml"/>
    <alias type="application/x-nuwa-old"/>
    <alias type="text/x-nuwa"/>
    <glob pattern="*.ntd" weight="80"/>
    <glob pattern="*.NTD2" case-sensitive="true"/>
    <glob pattern="NUWAFILE" weight="60"/>
    <glob pattern="nuwa-*.[ch]" weight="45"/>
    <glob pattern="*.tar.ntd" weight="90"/>
    <glob pattern="*.pdf" weight="10"/>
    <glob pattern="*.é" />
    <magic priority="90">
      <match type="string" value="NUWA\\x00\\001\\t" offset="0">
        <match type="big16" value="0x1234" mask="0xff00" offset="8:12"/>
        <match type="little32" value="305419896" offset="16">
          <match type="byte" value="0x7f" mask="0x70" offset="20:30"/>
        </match>
      </match>
      <match type="host16" value="0377" offset="4"/>
      <match type="host32" value="0xdeadbeef" mask="0xffff0000" offset="0:2"/>
      <match type="string" value="abc" mask="0xff00ff" offset="100"/>
    </magic>
    <magic>
      <match type="little16" value="0x0102" offset="2"/>
      <match type="big32" value="  +17" offset=" 3"/>
    </magic>
    <treemagic priority="70">
      <treematch path="NUWA/index" type="file" match-case="true" executable="true" non-empty="true" mimetype="text/plain">
        <treematch path="sub" type="directory"/>
      </treematch>
      <treematch path="other" type="link"/>
      <treematch path="any"/>
    </treemagic>
    <root-XML namespaceURI="urn:example:nuwa" localName="doc"/>
    <root-XML namespaceURI="" localName="nuwadoc"/>
    <x:extra x:a="1" plain="2">text <x:inner>nested</x:inner> tail</x:extra>
    <x:empty/>
    <foreign xmlns="urn:example:foreign" attr="v">
      <child>  spaced  </child>
    </foreign>
    <unknown-freedesktop-element/>
  </mime-type>
  <mime-type type="text/plain">
    <comment xml:lang="de">Einfaches Textdokument (nuwa)</comment>
    <glob pattern="*.NTXT" weight="55"/>
    <glob-deleteall/>
    <glob pattern="*.ntxt2"/>
  </mime-type>
  <mime-type type="image/x-nuwa">
    <comment>image</comment>
    <magic-deleteall/>
    <magic priority="50"><match type="string" value="\\x89NUWA" offset="0"/></magic>
    <glob pattern="*.nimg"/>
    <glob pattern="*.nimg" weight="70"/>
    <glob pattern="Makefile.nuwa"/>
  </mime-type>
  <mime-type type="x-nuwa-media/thing">
    <comment>unknown media</comment>
    <glob pattern="*.thing"/>
  </mime-type>
  <mime-type type="Application/X-Nuwa-Upper">
    <comment>upper case type</comment>
    <glob pattern="*.UP"/>
  </mime-type>
  <mime-type type="application/x-nuwa-errors">
    <comment>first</comment>
    <glob pattern="*.ok1"/>
    <glob pattern="*.bad" weight="200"/>
    <glob pattern="*.never"/>
  </mime-type>
  <mime-type type="application/x-nuwa-magicerr">
    <comment>bad magic</comment>
    <magic><match type="string16" value="x" offset="0"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-maskerr">
    <magic><match type="string" value="ab" mask="0x1234567" offset="0"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-hexerr">
    <magic><match type="string" value="ab" mask="0xzz" offset="0"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-offerr">
    <magic><match type="string" value="ab" offset="5:2"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-rangeerr">
    <magic><match type="byte" value="256" offset="0"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-negerr">
    <magic><match type="little16" value="-2" offset="2"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-negoff">
    <magic><match type="little32" value="-2" offset="-4"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-nanerr">
    <magic><match type="big16" value="12ab" offset="0"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-empty-magic">
    <magic priority="101"/>
  </mime-type>
  <mime-type type="application/x-nuwa-incomplete">
    <magic/>
  </mime-type>
  <mime-type type="application/x-nuwa-nsmagic">
    <magic><x:match type="byte" value="1" offset="0"/></magic>
  </mime-type>
  <mime-type type="application/x-nuwa-treeerr">
    <treemagic><treematch path="a" type="socket"/></treemagic>
  </mime-type>
  <mime-type type="application/x-nuwa-rooterr">
    <root-XML namespaceURI="a b" localName="c"/>
  </mime-type>
  <mime-type type="application/x-nuwa-aliaserr">
    <alias type="noslash"/>
  </mime-type>
  <mime-type type="application/x-nuwa-globerr">
    <glob weight="20"/>
  </mime-type>
  <mime-type type="no-slash-type">
    <comment>x</comment>
  </mime-type>
  <mime-type>
    <comment>no type</comment>
  </mime-type>
  <x:mime-type type="application/x-wrong-ns"/>
</mime-info>
"""

#: read last whatever its name sorts as; its comment replaces the one without xml:lang
OVERRIDE = """<?xml version="1.0"?>
<mime-info xmlns='http://www.freedesktop.org/standards/shared-mime-info'>
  <mime-type type="application/x-nuwa-test">
    <comment>Overridden comment</comment>
    <glob pattern="*.ovr" weight="100" case-sensitive="true"/>
  </mime-type>
</mime-info>
"""


class Pair(info_harness.Pair):
    """The pair over a tree with shared-mime-info (its postinst made the stock database)."""

    PACKAGES, DIRS, FILES, TIMEOUT = ("shared-mime-info",), [MIME, "srv", "tmp"], [], 300

    def run_real(self, argv, env=None):
        """The real program without its fdatasync of every file (PKGSYSTEM_ENABLE_FSYNC=0:
        the same bytes, minutes less on a loaded disk); the model has nothing to sync."""
        return super().run_real(argv, dict(env or ENV, PKGSYSTEM_ENABLE_FSYNC="0"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return Pair(str(tmp_path_factory.mktemp("mimedb")))


def write(root: str, rel: str, data: str | bytes, mtime: float | None = None) -> None:
    """A file of a case's setup (parents made, 0644, optionally a fixed mtime)."""
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(p, 0o644)
    if mtime is not None:
        os.utime(p, (mtime, mtime))


def generated(root: str) -> None:
    """Remove everything the program generates (``packages`` stays)."""
    top = os.path.join(root, MIME)
    for n in os.listdir(top):
        if n != "packages":
            p = os.path.join(top, n)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


def with_extra(root: str) -> None:
    write(root, PKGS + "/extra.xml", EXTRA)
    write(root, PKGS + "/Override.xml", OVERRIDE)
    write(root, PKGS + "/wrongns.xml", '<?xml version="1.0"?>\n<mime-info xmlns="urn:wrong"><mime-type type="a/b"/></mime-info>\n')
    write(root, PKGS + "/wrongroot.xml", '<info xmlns="http://www.freedesktop.org/standards/shared-mime-info"/>')
    write(root, PKGS + "/notes.txt", "not read\n")
    write(root, MIME + "/video/x-stale.xml", "stale\n")  # no such type: removed
    write(root, MIME + "/video/readme.txt", "kept\n")
    write(root, MIME + "/uri/x-stale.xml", "stale\n")
    write(root, MIME + "/globs.new", "left by an interrupted run\n")
    os.chmod(os.path.join(root, MIME, "globs.new"), 0o600)  # fopen("wb") keeps its mode


def test_stock_database_from_scratch(pair):
    """The stock freedesktop.org.xml (~850 types) into an empty directory: every file equal."""
    pair.check([[UMD, "/usr/share/mime"]], setup=generated)
    assert os.path.getsize(os.path.join(pair.real, MIME, "mime.cache")) > 100_000
    assert len(os.listdir(os.path.join(pair.real, MIME, "application"))) > 400


def test_stock_database_again(pair):
    """Regenerating over an existing database: the same bytes, messages with -V."""
    res = pair.check([[UMD, "-V", "/usr/share/mime"], [UMD, "/usr/share/mime/"]])
    assert b"Wrote magic at" in res[0][1]


def test_extra_package(pair):
    """New types, weighted and case-sensitive globs, magic with masks, ranges, nesting and
    every word size, aliases, subclasses, icons, treemagic, root-XML, foreign elements,
    deletions, Override.xml, the program's error reports, stale files removed."""
    res = pair.check([[UMD, "-V", "/usr/share/mime"]], setup=with_extra)
    out = res[0][1]
    assert b"Bad weight (-1) in <glob> element" in out and b"is not a valid hex digit" in out
    assert b"Wrong namespace on document element" in out and b"Root element <info>" in out
    assert not os.path.exists(os.path.join(pair.real, MIME, "video/x-stale.xml"))
    xml = open(os.path.join(pair.real, MIME, "application/x-nuwa-test.xml"), "rb").read()
    assert b'<x:extra xmlns:x="urn:example:ext"' in xml and b"Overridden comment" in xml
    assert b"[70:application/x-nuwa-test]" in open(os.path.join(pair.real, MIME, "treemagic"), "rb").read()


def test_extra_package_quiet_and_twice(pair):
    """Without -V only the warnings (on stdout); a second run over its own output."""
    pair.check([[UMD, "/usr/share/mime"], [UMD, "/usr/share/mime"]], setup=with_extra)


def test_maintainer_scripts(pair):
    """shared-mime-info's postinst and its trigger, through the simulator (no deferral)."""
    pair.check([["sh", "/var/lib/dpkg/info/shared-mime-info.postinst", "configure", "2.2-1"],
                ["sh", "/var/lib/dpkg/info/shared-mime-info.postinst", "triggered", "/usr/share/mime/packages"]],
               setup=with_extra)


CORNERS = """<?xml version="1.0" encoding="utf-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/X-Case"><comment>upper</comment><glob pattern="*.CASE"/></mime-type>
  <mime-type type="application/x-case"><comment>lower</comment><glob pattern="*.case" weight="51"/></mime-type>
  <mime-type type="text/x-newline">
    <glob pattern="a&#10;b"/>
    <glob pattern="*.tab&#9;x" case-sensitive="true"/>
    <glob pattern="  spaced  " weight=" 7"/>
    <magic priority="+60">
      <match type="string" value="\\777\\x4g\\q\\" offset="0:0"/>
      <match type="big32" value="4294967297" mask="010" offset="2"/>
      <match type="little16" value=" 0X1F" offset="+3:+9"/>
    </magic>
    <magic priority="60"><match type="string" value="dup" offset="0"/></magic>
    <magic-deleteall/>
    <treemagic><treematch path="x" mimetype="a/b"/></treemagic>
    <root-XML namespaceURI="urn:x" localName=""/>
    <alias type="a/b"/><alias type="a/b"/>
    <icon/><generic-icon name="x"/><generic-icon name="y"/>
  </mime-type>
  <mime-type type="text/x-newline"><sub-class-of type="a/c"/><comment xml:lang="de">a</comment><comment xml:lang="de">b</comment></mime-type>
  <mime-type type="text/x-zero-x"><magic><match type="byte" value="0x" offset="1"/></magic></mime-type>
  <!-- comments and processing instructions between types -->
  <?pi data?>
  <mime-type type="x-epoc/x-sisx-app"><glob pattern="*.sisx" weight="100"/><glob-deleteall/></mime-type>
</mime-info>
"""


def test_corners(pair):
    """Types differing only in case (one file), newlines in globs, numbers as C reads them,
    escapes, duplicate aliases and comments, an empty localName."""
    def setup(root):
        write(root, PKGS + "/corners.xml", CORNERS)
    pair.check([[UMD, "-V", "/usr/share/mime"]], setup=setup)


#: libxml2's serialisation and namespace copying: escapes in attributes and text, CDATA,
#: comments and PIs inside a copied element (formatting off), prefixed freedesktop.org
#: elements, foreign elements re-declaring the default namespace, xmlns="", a DTD whose
#: #FIXED xmlns supplies the namespace and whose other default is not applied; globs that
#: differ in case, non-ASCII suffixes, full globs; empty and range-truncated magic values
SERIAL = """<?xml version="1.0"?>
<!DOCTYPE mime-info [
<!ATTLIST mime-info xmlns CDATA #FIXED "http://www.freedesktop.org/standards/shared-mime-info">
<!ATTLIST comment x CDATA "default">
]>
<mime-info>
  <mime-type type="text/x-a">
    <comment a="&lt;&gt;&amp;&quot;'&#9;&#10;&#13;x" b='single "q"'>te&#13;xt &lt;&gt; ]]&gt; <![CDATA[cdata <&> ]]> after</comment>
    <comment xml:lang="en"><!-- c --><?pi x?>mixed<b/>x</comment>
    <m:comment xmlns:m="http://www.freedesktop.org/standards/shared-mime-info" xml:lang="m">prefixed</m:comment>
    <f:a xmlns:f="urn:f" xmlns:g="urn:g" g:x="1"><g:b f:y="2"/><c/>
    </f:a>
    <z xmlns="urn:z"><y xmlns=""/><x/></z>
    <glob pattern="*.Ab"/><glob pattern="*.aB"/><glob pattern="*.ab" weight="10"/><glob pattern="*.ab" weight="90"/>
    <glob pattern="*.b" case-sensitive="true"/><glob pattern="*.b"/>
    <glob pattern="[a-z]*.x"/><glob pattern="a?c"/><glob pattern="x\\y"/>
    <glob pattern="*.ü"/><glob pattern="*.€"/><glob pattern="*.😀"/>
  </mime-type>
  <mime-type type="text/x-b">
    <glob pattern="*.ab" weight="10"/>
    <glob pattern="*.tar.gz"/><glob pattern="*.gz"/>
    <sub-class-of type="text/x-a"/><alias type="text/x-aa"/>
    <magic priority="0"><match type="string" value="" offset="0"/></magic>
    <magic priority="100"><match type="string" value="\\" offset="0"/></magic>
    <magic><match type="string" value="a" offset="0:0"/><match type="host16" value="1" offset="0:4294967296"/></magic>
  </mime-type>
</mime-info>
"""


def test_serialisation(pair):
    """The per-type XML exactly as libxml2 writes it, the suffix tree with non-ASCII."""
    def setup(root):
        write(root, "srv/t1/packages/s1.xml", SERIAL)
    pair.check([[UMD, "-V", "/srv/t1"]], setup=setup)
    xml = open(os.path.join(pair.real, "srv/t1/text/x-a.xml"), "rb").read()
    assert b'<f:a xmlns:f="urn:f" xmlns:g="urn:g" xmlns="http://www.freedesktop.org' in xml


#: defaults of the internal subset: libxml2 adds none to the tree (the copies show none) but
#: xmlGetNsProp returns them, so the program reads them: a glob weight, case-sensitivity,
#: a magic priority, a match offset, an icon name, a comment's xml:lang (remove_old)
DTD_DEFAULTS = """<?xml version="1.0"?>
<!DOCTYPE mime-info [
<!ATTLIST glob weight CDATA "70">
<!ATTLIST glob case-sensitive (true|false) "true">
<!ATTLIST magic priority CDATA "33">
<!ATTLIST match offset CDATA "2:5">
<!ATTLIST comment xml:lang CDATA "en">
<!ATTLIST icon name CDATA "dtd-icon">
<!ATTLIST sub-class-of type CDATA #IMPLIED>
]>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="text/x-d">
    <comment>first</comment>
    <comment xml:lang="en">second</comment>
    <comment>third</comment>
    <glob pattern="*.DTD"/>
    <glob pattern="*.W" weight="10" case-sensitive="false"/>
    <icon/>
    <magic><match type="string" value="x"/></magic>
  </mime-type>
</mime-info>
"""


def test_dtd_defaults(pair):
    """What the program reads through the DTD's attribute defaults."""
    def setup(root):
        write(root, "srv/t2/packages/s2.xml", DTD_DEFAULTS)
    pair.check([[UMD, "-V", "/srv/t2"]], setup=setup)
    assert b"70:text/x-d:*.DTD:cs" in open(os.path.join(pair.real, "srv/t2/globs2"), "rb").read()


def test_other_directories_and_xdg_note(pair):
    """A database outside the XDG data directories (the note on stderr), the same with
    XDG_DATA_DIRS naming it, a relative path, an empty packages directory."""
    def setup(root):
        write(root, "srv/mime/packages/one.xml", CORNERS)
        os.makedirs(os.path.join(root, "srv/empty/packages"))
    pair.check([[UMD, "/srv/mime"], [UMD, "/srv/empty"], [UMD, "srv/mime//"]], setup=setup)
    env = dict(ENV, XDG_DATA_DIRS="/srv:/usr/share", XDG_DATA_HOME="/tmp")
    pair.check([[UMD, "/srv/mime"]], setup=setup, env=env)
    pair.check([[UMD, "/srv/mime"]], setup=setup, env=dict(ENV, XDG_DATA_DIRS=""))


def test_usage_and_missing_directories(pair):
    """Options, usage errors, a missing directory, a missing or unreadable packages."""
    def setup(root):
        os.makedirs(os.path.join(root, "srv/nopkgs"))
        write(root, "srv/filepkgs/packages", "a file\n")
    pair.check([[UMD], [UMD, "-h"], [UMD, "-v"], [UMD, "-x", "/usr/share/mime"], [UMD, "a", "b"],
                [UMD, "-V", "-h", "-x"], [UMD, "--help"], [UMD, "-Vx", "/usr/share/mime"], [UMD, "-nV", "-"], [UMD, "--", "/srv/nopkgs"],
                [UMD, "/nonexistent", "-Vh"], [UMD, "/nonexistent"], [UMD, "-V", "/srv/nopkgs"],
                [UMD, "/srv/filepkgs"], [UMD, "-V", "/srv/filepkgs"]], setup=setup)


def test_if_newer(pair):
    """-n: nothing when version is newer than packages and its files; a run otherwise."""
    now = time.time()

    def fresh(root):
        os.utime(os.path.join(root, MIME, "version"), (now, now))
        for n in os.listdir(os.path.join(root, PKGS)):
            os.utime(os.path.join(root, PKGS, n), (now - 100, now - 100))
        os.utime(os.path.join(root, PKGS), (now - 100, now - 100))

    def stale(root):
        fresh(root)
        write(root, PKGS + "/extra.xml", EXTRA, mtime=now + 100)

    pair.check([[UMD, "-n", "-V", "/usr/share/mime"], [UMD, "-n", "/usr/share/mime"]], setup=fresh)
    pair.check([[UMD, "-n", "/usr/share/mime"]], setup=stale)
    pair.check([[UMD, "-n", "-V", "/srv"]], setup=lambda root: os.makedirs(os.path.join(root, "srv/packages")))


FD = '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info"><mime-type type="a/b">'
#: (file name, content, what the real program's stderr shows: libxml2's own diagnostics)
BROKEN = [
    ("unclosed.xml", FD, b"parser error"),
    ("empty.xml", "", b"Document is empty"),
    ("entity.xml", '<!DOCTYPE m [<!ENTITY e "x">]><m>&e;</m>', b""),
    ("koi8.xml", '<?xml version="1.0" encoding="KOI8-R"?><m/>', b""),
    ("relative-ns.xml", FD + '<x xmlns="foo"/></mime-type></mime-info>', b"is not absolute"),
    ("empty-prefix.xml", FD + '<x:y xmlns:x=""/></mime-type></mime-info>', b"namespace error"),
    ("undeclared.xml", FD + '<x:y/></mime-type></mime-info>', b"namespace error"),
    ("attlist-twice.xml", '<!DOCTYPE m [<!ATTLIST g w CDATA "1"><!ATTLIST g w CDATA "2">]>'
     '<m xmlns="http://www.freedesktop.org/standards/shared-mime-info"/>', b"already defined"),
]


@pytest.mark.parametrize("name,data,marker", BROKEN, ids=[b[0] for b in BROKEN])
def test_malformed_package_defers(pair, name, data, marker):
    """A file libxml2 rejects or reports on (its own diagnostics on stderr), or would read
    differently from expat: the model defers before writing anything."""
    def setup(root):
        write(root, PKGS + "/" + name, data)
    pair.reset(setup)
    before = pair.facts(pair.model)
    with pytest.raises(Defer, match="update-mime-database"):
        pair.run_model([UMD, "/usr/share/mime"])
    assert pair.facts(pair.model) == before
    status, out, err = pair.run_real([UMD, "/usr/share/mime"])
    assert status == 0 and marker in err


@pytest.mark.parametrize("where", ["application", "globs.new", "mime.cache", "text/plain.xml.new"])
def test_unwritable_target_defers(pair, where):
    """Where the program would stop half-way (a media directory that is a file, a target or
    its .new that is a directory), the model defers before its first change."""
    def setup(root):
        p = os.path.join(root, MIME, where)
        if where == "application":
            shutil.rmtree(p)
            write(root, MIME + "/" + where, "a file\n")
        else:
            if os.path.exists(p):
                os.unlink(p)
            os.makedirs(p)
    pair.reset(setup)
    before = pair.facts(pair.model)
    with pytest.raises(Defer, match="stops half-way"):
        pair.run_model([UMD, "/usr/share/mime"])
    assert pair.facts(pair.model) == before
    assert pair.run_real([UMD, "/usr/share/mime"])[0] == 1


@pytest.mark.parametrize("version,glib", [("2.4-1", "2.74.6-2+deb12u9"), (None, "2.74.6-2+deb12u9"),
                                          ("2.2-1", "2.84.4-3~deb13u1")])
def test_other_versions_defer(tmp_path, version, glib):
    """An image whose shared-mime-info is not 2.2 or whose GLib is another one (other
    programs write other bytes), or whose dpkg database does not list shared-mime-info:
    deferred, nothing written."""
    from nuwa.fs.hostdir import HostDirFS
    from nuwa.script.context import Invocation
    from nuwa.script.commands.registries.mimedb import update_mime_database

    paras = [f"Package: libglib2.0-0\nStatus: install ok installed\nVersion: {glib}\n",
             "Package: libxml2\nStatus: install ok installed\nVersion: 2.9.14+dfsg-1.3~deb12u6\n"]
    if version:
        paras.append(f"Package: shared-mime-info\nStatus: install ok half-configured\nVersion: {version}\n")
    write(str(tmp_path), "var/lib/dpkg/status", "\n".join(paras))
    write(str(tmp_path), PKGS + "/x.xml", CORNERS)
    inv = Invocation(argv=[UMD, "/usr/share/mime"], fs=HostDirFS(str(tmp_path), writable=True), env=dict(ENV))
    with pytest.raises(Defer, match="shared-mime-info 2.2" if glib.startswith("2.74") else "libglib2.0-0 2.74"):
        update_mime_database(inv)
    assert os.listdir(os.path.join(tmp_path, MIME)) == ["packages"]
