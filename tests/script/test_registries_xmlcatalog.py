"""update-xmlcatalog: the model against xml-core's real Perl script in a chroot of bookworm.

The sequences are what debhelper's snippets run (``--sort --add`` in postinst configure,
``--del ... || true`` in prerm), repeated and reordered, plus the error paths: a missing
package or local catalog, a missing data file (the script dies), an entity registered with
another value, a data directory that is gone (the script dies after making its backup).
"""

from __future__ import annotations

import os
import shutil

import pytest

from registry_harness import make_pair, write
from nuwa.script.context import Defer

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory)

LOCAL = "/usr/share/xml/schema/xml-core/catalog.xml"
IDS = [("system", "http://www.oasis-open.org/committees/entity/release/1.0/catalog.dtd"),
       ("public", "-//OASIS//DTD XML Catalogs V1.0//EN"),
       ("system", "http://globaltranscorp.org/oasis/catalog/xml/tr9401.dtd"),
       ("public", "-//GlobalTransCorp//DTD XML Catalogs V1.0-Based Extension V1.0//EN")]


def add_pkg(typ, ident, pkg="xml-core", local=LOCAL):
    return ["update-xmlcatalog", "--sort", "--add", "--type", typ, "--id", ident, "--package", pkg, "--local", local]


def add_root(typ, ident, pkg="xml-core"):
    return ["update-xmlcatalog", "--sort", "--add", "--type", typ, "--id", ident, "--package", pkg, "--root"]


def del_root(typ, ident):
    return ["update-xmlcatalog", "--del", "--type", typ, "--id", ident, "--root"]


def del_pkg(typ, ident, pkg="xml-core"):
    return ["update-xmlcatalog", "--del", "--type", typ, "--id", ident, "--package", pkg]


UNSORTED = ["etc/xml/catalog", "etc/xml/catalog.old", "etc/xml/xml-core.xml", "etc/xml/xml-core.xml.old",
            "var/lib/xml-core/catalog", "var/lib/xml-core/xml-core"]


def test_configure_again(pair):
    """xml-core's postinst configure on an installed system: every entity already there."""
    pair.check([add_pkg(t, i) for t, i in IDS] + [add_root(t, i) for t, i in IDS])


def test_upgrade_sequence(pair):
    """prerm upgrade (deletes, unsorted: compared as sets of lines), then postinst configure."""
    steps = [del_root(t, i) for t, i in IDS] + [del_pkg(t, i) for t, i in IDS]
    steps += [add_pkg(t, i) for t, i in IDS] + [add_root(t, i) for t, i in IDS]
    pair.check(steps, normalize=UNSORTED)


def test_remove_then_fresh_install(pair):
    """Everything deleted (catalogs and data files removed when empty), then added again."""
    steps = [del_root(t, i) for t, i in IDS] + [del_pkg(t, i) for t, i in IDS]
    results = pair.check(steps, normalize=UNSORTED)
    assert all(r[0] == 0 for r in results)
    assert not os.path.exists(os.path.join(pair.model, "etc/xml/catalog"))
    steps += [del_root(*IDS[0])]  # the root catalog is gone: the script's error
    steps += [add_pkg(t, i, "polkitd", "/usr/share/xml/polkit-1/catalog.xml") for t, i in IDS[:2]]

    def polkit(root):
        write(root, "usr/share/xml/polkit-1/catalog.xml", b"<catalog/>\n")
    pair.check(steps + [add_root(t, i, "polkitd") for t, i in IDS[:2]], setup=polkit, normalize=UNSORTED)


def test_verbose_and_local_catalogs(pair):
    def setup(root):
        write(root, "srv/local.xml", b"old content\n")
        write(root, "srv/thing.dtd", b"<!ELEMENT x ANY>\n")
    base = ["update-xmlcatalog", "--verbose", "--sort"]
    pair.check([base + ["--add", "--local", "/srv/local.xml", "--file", "/srv/thing.dtd", "--type", "public",
                        "--id", "-//X//Y"],
                base + ["--add", "--local", "/srv/local.xml", "--file", "/srv/thing.dtd", "--type", "uri",
                        "--id", "http://x/y"],
                base + ["--add", "--local", "/srv/local.xml", "--file", "/srv/thing.dtd", "--type", "uri",
                        "--id", "http://x/y"],
                base + ["--del", "--local", "/srv/local.xml", "--type", "public", "--id", "-//X//Y"],
                base + ["--del", "--local", "/srv/local.xml", "--type", "uri", "--id", "http://x/y"],
                ["update-xmlcatalog", "--verbose", "--add", "--type", "system", "--id", "s",
                 "--package", "xml-core", "--local", LOCAL],
                ["update-xmlcatalog", "--verbose", "--del", "--type", "system", "--id", "s",
                 "--package", "xml-core"]], setup=setup, normalize=UNSORTED)


def test_errors(pair):
    pair.check([
        ["update-xmlcatalog"],
        ["update-xmlcatalog", "--add", "--del"],
        ["update-xmlcatalog", "--add", "--root"],
        ["update-xmlcatalog", "--add", "--root", "--package", "nosuch"],
        ["update-xmlcatalog", "--add", "--root", "--package", "xml-core", "--local", "/x"],
        ["update-xmlcatalog", "--add", "--package", "xml-core"],
        ["update-xmlcatalog", "--add", "--package", "xml-core", "--local", "/nonexistent.xml"],
        ["update-xmlcatalog", "--add", "--package", "xml-core", "--local", LOCAL, "--file", "/x"],
        ["update-xmlcatalog", "--add", "--local", LOCAL],
        ["update-xmlcatalog", "--add", "--local", LOCAL, "--file", "/nonexistent"],
        ["update-xmlcatalog", "--add"],
        ["update-xmlcatalog", "--del"],
        ["update-xmlcatalog", "--del", "--root", "--package", "xml-core"],
        ["update-xmlcatalog", "--del", "--package", "nosuch"],
        ["update-xmlcatalog", "--del", "--package", "xml-core", "--local", "/x"],
        ["update-xmlcatalog", "--del", "--local", "/nonexistent"],
        ["update-xmlcatalog", "--del", "--local", LOCAL, "--file", "/x"],
        ["update-xmlcatalog", "--del", "--root"],
        ["update-xmlcatalog", "--del", "--root", "--type", "delegate"],
        ["update-xmlcatalog", "--del", "--root", "--type", "public"],
        ["update-xmlcatalog", "--del", "--root", "--type", "public", "--id", "not-there"],
        # the same entity with another catalog: refused with the script's four lines
        ["update-xmlcatalog", "--add", "--root", "--type", "public", "--id", IDS[1][1], "--package", "sgml-base"],
        ["update-xmlcatalog", "--help"],
        ["update-xmlcatalog", "--bogus", "--add"],
        ["update-xmlcatalog", "--ADD", "--ro", "--ty=public", "--id", "new", "--pack", "xml-core", "--so"],
        ["update-xmlcatalog", "--add", "--root", "--type"],
    ], setup=lambda root: write(root, "etc/xml/sgml-base.xml", b""))


def test_missing_data_and_data_directory(pair):
    """The script dies: reading a missing data file (nothing written), and writing into a
    data directory that is gone (after the catalog was moved to its backup)."""
    def no_data(root):
        os.unlink(os.path.join(root, "var/lib/xml-core/catalog"))
    results = pair.check([del_root(*IDS[0])], setup=no_data)
    assert results[0][0] == 2 and b"line 475." in results[0][2]

    def no_dir(root):
        shutil.rmtree(os.path.join(root, "var/lib/xml-core"))
    results = pair.check([add_root("public", "-//NEW//EN")], setup=no_dir)
    assert results[0][0] == 2 and b"line 496." in results[0][2]


def test_malformed_data_lines(pair):
    """Lines without '>' or '<', an empty line, a last line without its newline (chop eats
    its last character): read and rewritten as the script does."""
    def setup(root):
        write(root, "var/lib/xml-core/catalog",
              b"<delegatePublic publicIdStartString=\"a\"><catalog=\"file:///etc/xml/a.xml\">\n"
              b"no angle brackets\n\n<x>y><z>\n<last><no newline>")
    pair.check([add_root("public", "zzz")], setup=setup)


def test_package_name_with_slash_defers(pair):
    pair.reset()
    with pytest.raises(Defer):
        pair.run_model(["update-xmlcatalog", "--add", "--root", "--package", "../x", "--type", "public", "--id", "i"])
