"""update-mime: the model against mailcap's real Perl script in a chroot of bookworm.

The cases give the tree more package entries (priorities, wildcards, a bad line, an
out-of-range priority), desktop files in nested directories (Exec field codes, Terminal,
Name/Icon substitution, empty MimeType fields, a group other than [Desktop Entry], a TryExec
line the script's unanchored pattern reads as Exec), an order file, a user section with the
old install-mime name, and the refusal for a mailcap without its user section. Each runs
``update-mime`` as dpkg's trigger does and as a plain call, and compares the results.
"""

from __future__ import annotations

import os

import pytest

from registry_harness import ENV, make_pair, write
from nuwa.script.context import Defer

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory)

DPKG = {**ENV, "DPKG_RUNNING_VERSION": "1.21.22", "DPKG_MAINTSCRIPT_PACKAGE": "unzip"}

VIEWERS = b"""# viewers of test types
text/x-test; testview '%s'; priority=7
text/*; testany %s; needsterminal
*/*; catchall %s; priority=1
image/png; pngview %s; priority=12
image/x-bad; bad %s; Priority = 3 ;
this is not a mailcap line
application/x-three; three %s; priority=3

"""
MORE = b"text/x-test; other '%s'\ntext/plain; otherplain %s; priority=5; copiousoutput\n"

DESKTOP = b"""[Desktop Entry]
Name=Test Viewer
Icon=testicon
TryExec=/usr/bin/tryexec
Exec=/usr/bin/testapp --name %c %i %U
Terminal=true
MimeType=text/x-desk;;image/x-desk;
# comment
[Desktop Action new]
Exec=/usr/bin/ignored
MimeType=text/ignored
"""
PLAIN = b"""[Desktop Entry]
Name=Plain
Exec=plain
MimeType=application/x-plain
"""
NOMIME = b"[Desktop Entry]\nName=No types\nExec=nomime %f\n"


def rich(root):
    write(root, "usr/lib/mime/packages/viewers", VIEWERS)
    write(root, "usr/lib/mime/packages/More", MORE)
    write(root, "usr/lib/mime/packages/backup~", b"text/x-backup; no %s\n")
    write(root, "usr/share/applications/testapp.desktop", DESKTOP)
    write(root, "usr/share/applications/kde/plain.desktop", PLAIN)
    write(root, "usr/share/applications/kde/sub/nomime.desktop", NOMIME)
    write(root, "usr/share/applications/viewers.desktop", PLAIN)  # a package file has that name
    write(root, "usr/share/applications/readme.txt", b"not a desktop file\n")


def test_plain_and_triggered(pair):
    pair.check([["update-mime"], ["update-mime", "--triggered"]], setup=rich)


def test_under_dpkg(pair):
    """mailcap's old-style call is ignored under dpkg; the trigger's --triggered runs."""
    results = pair.check([["update-mime", "configure"], ["update-mime", "--triggered"], ["update-mime"]],
                         setup=rich, env=DPKG)
    assert results[0] == (0, b"", b"")


def test_order_and_user_section(pair):
    def setup(root):
        rich(root)
        write(root, "etc/mailcap.order", b"# order\nMore:text/x-test\nviewers:text/*   # comment\n"
                                         b"testapp:\nnosuchpkg:image/png\n")
        p = os.path.join(root, "etc/mailcap")
        data = open(p, "rb").read().replace(b"# ----- User Section Begins ----- #\n",
                                            b"# ----- User Section Begins ----- #\n"
                                            b"text/x-mine; install-mime-made %s\n")
        open(p, "wb").write(data)
    pair.check([["update-mime"]], setup=setup)


def test_without_user_section_or_mailcap(pair):
    def broken(root):
        write(root, "etc/mailcap", b"text/plain; more %s\n", mode=0o600)
    pair.check([["update-mime"]], setup=broken)

    def none(root):
        os.unlink(os.path.join(root, "etc/mailcap"))
    pair.check([["update-mime"]], setup=none)  # made from /usr/lib/mime/mailcap

    def neither(root):
        os.unlink(os.path.join(root, "etc/mailcap"))
        os.rename(os.path.join(root, "usr/lib/mime/mailcap"), os.path.join(root, "usr/lib/mime/mailcap.off"))
    pair.check([["update-mime"]], setup=neither)


def test_unreadable_package_file(pair):
    def setup(root):
        rich(root)
        os.symlink("/nonexistent", os.path.join(root, "usr/lib/mime/packages/dangling"))
        os.makedirs(os.path.join(root, "usr/lib/mime/packages/adir"))
    pair.check([["update-mime"]], setup=setup)


def test_deferred_forms(pair):
    cases = [lambda r: write(r, "etc/update-mime.conf", b"$mailcap = '/tmp/x';\n"),
             lambda r: write(r, "usr/lib/mime/packages/two", b"a/b; x %s; priority=05\nc/d; y %s\n"),
             lambda r: write(r, "etc/mailcap.order", b"justapackage\n")]
    for setup in cases:
        pair.reset(setup)
        before = pair.facts(pair.model)
        with pytest.raises(Defer):
            pair.run_model(["update-mime"])
        assert pair.facts(pair.model) == before
