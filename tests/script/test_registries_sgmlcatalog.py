"""update-catalog: the model against sgml-base's real Perl script in a chroot of bookworm.

sgml-base's postinst runs ``update-catalog --quiet --update-super``; packages with SGML
catalogs (dh_installcatalogs) run ``--add``/``--remove CENTRALIZED ORDINARY`` and
``--add --super``, which hands over to the ``/etc/sgml`` trigger. The cases run those, the
test mode, a ``.cat`` that names a missing catalog (dropped with the warning), an unreadable
one, and the argument errors.
"""

from __future__ import annotations

import os

import pytest

from registry_harness import ENV, MODELS, make_pair, write
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.context import Defer
from nuwa.script.interp import run_script

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory)


def catalogs(root):
    write(root, "usr/share/sgml/foo/catalog", b"PUBLIC \"-//FOO//DTD Foo//EN\" foo.dtd\n")
    write(root, "usr/share/sgml/bar/catalog", b"PUBLIC \"-//BAR//DTD Bar//EN\" bar.dtd\n")
    write(root, "etc/sgml/broken.cat", b"-- a comment -- CATALOG '/usr/share/sgml/missing/catalog'\n")
    write(root, "etc/sgml/based.cat", b"BASE \"/usr/share/sgml\"\n  catalog foo/catalog\n")
    write(root, "etc/sgml/.hidden.cat", b"CATALOG /nonexistent\n")


def test_update_super(pair):
    pair.check([["update-catalog", "--quiet", "--update-super"],
                ["update-catalog", "--update-super"],
                ["update-catalog", "--test", "--update-super"]], setup=catalogs)


def test_add_remove_centralized(pair):
    steps = [["update-catalog", "--add", "/etc/sgml/foo.cat", "/usr/share/sgml/foo/catalog"],
             ["update-catalog", "--add", "/etc/sgml/foo.cat", "/usr/share/sgml/bar/catalog"],
             ["update-catalog", "--add", "/etc/sgml/foo.cat", "/usr/share/sgml/foo/catalog"],
             ["update-catalog", "--quiet", "--update-super"],
             ["update-catalog", "--test", "--add", "/etc/sgml/foo.cat", "/usr/share/sgml/new/catalog"],
             ["update-catalog", "--remove", "/etc/sgml/foo.cat", "/usr/share/sgml/foo/catalog"],
             ["update-catalog", "--quiet", "--remove", "/etc/sgml/foo.cat", "/usr/share/sgml/bar/catalog"],
             ["update-catalog", "--remove", "/etc/sgml/none.cat", "/usr/share/sgml/bar/catalog"],
             ["update-catalog", "--update-super"]]
    pair.check(steps, setup=catalogs)


def test_unreadable_and_directory_cats(pair):
    def setup(root):
        catalogs(root)
        os.symlink("/nonexistent", os.path.join(root, "etc/sgml/dangling.cat"))
        os.makedirs(os.path.join(root, "etc/sgml/dir.cat"))
    pair.check([["update-catalog", "--update-super"]], setup=setup)


def test_usage_errors(pair):
    pair.check([["update-catalog"],
                ["update-catalog", "--add", "--remove", "x", "y"],
                ["update-catalog", "--add"],
                ["update-catalog", "--add", "/etc/sgml/foo.cat"],
                ["update-catalog", "--add", "a", "b", "c"],
                ["update-catalog", "--update-super", "extra"],
                ["update-catalog", "--frobnicate"],
                ["update-catalog", "--help"],
                ["update-catalog", "--version"],
                ["update-catalog", "--add", "--super"]])


def test_missing_directories_die(pair):
    """No /etc/sgml: opendir dies (line 299); no data directory: the write dies (line 313)."""
    import shutil

    def no_dir(root):
        shutil.rmtree(os.path.join(root, "etc/sgml"))
        shutil.rmtree(os.path.join(root, "var/lib/sgml-base"))
    results = pair.check([["update-catalog", "--update-super"],
                          ["update-catalog", "--add", "/etc/sgml/x.cat", "/y"]], setup=no_dir)
    assert [r[0] for r in results] == [2, 2]


SUPER = """update-catalog --add --super /usr/share/sgml/foo/catalog; echo "status $?"
update-catalog --quiet --remove --super /usr/share/sgml/foo/catalog; echo "status $?"
"""


def test_super_runs_dpkg_trigger(pair):
    """``--super`` runs dpkg-trigger; outside a maintainer script it fails, and the script
    then rebuilds the super catalog itself."""
    pair.reset(catalogs)
    with open(os.path.join(pair.real, "tmp/super.sh"), "w") as f:
        f.write(SUPER)
    real = pair.run_real(["sh", "/tmp/super.sh"])
    os.unlink(os.path.join(pair.real, "tmp/super.sh"))
    res = run_script(HostDirFS(pair.model, writable=True), SUPER, env=dict(ENV), models=MODELS)
    assert not res.deferred_whole and not res.deferred_commands, res.reason
    assert (res.status, res.stdout, res.stderr) == real
    assert pair.facts(pair.real) == pair.facts(pair.model)
    assert b"Forcing update of the super catalog" in real[1]


def test_pattern_entries_defer(pair):
    pair.reset(catalogs)
    write(pair.model, "etc/sgml/foo.cat", b"CATALOG /x\n")
    with pytest.raises(Defer):
        pair.run_model(["update-catalog", "--add", "/etc/sgml/foo.cat", "/usr/share/sgml/(c++)/catalog"])
    assert open(os.path.join(pair.model, "etc/sgml/foo.cat"), "rb").read() == b"CATALOG /x\n"
