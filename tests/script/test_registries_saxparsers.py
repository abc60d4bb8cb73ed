"""update-perl-sax-parsers: the model against libxml-sax-perl's real Perl script in a chroot.

The tree has XML::SAX::PurePerl, XML::LibXML::SAX(::Parser) and XML::SAX::Expat installed;
the cases run what their maintainer scripts run (``--remove``/``--add`` with and without
``--priority``, ``--update`` through ucf, libxml-sax-perl's preinst ``--update --file - |
md5sum``), ``--directory``/``--file`` without ucf, and the usage and error paths. Runs that
go through ucf are whole shell scripts on both sides (the model's ucf is the image's ucf
script, interpreted), with debconf noninteractive as under dpkg on a dormant image.
"""

from __future__ import annotations

import os

import pytest

from registry_harness import ENV, MODELS, make_pair, write
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.context import Defer
from nuwa.script.interp import run_script

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory)

NI = {**ENV, "DEBIAN_FRONTEND": "noninteractive"}
PARSERS = ["XML::SAX::PurePerl", "XML::LibXML::SAX::Parser", "XML::LibXML::SAX", "XML::SAX::Expat"]


def test_add_remove(pair):
    steps = [["update-perl-sax-parsers", "--remove", "XML::SAX::PurePerl"],
             ["update-perl-sax-parsers", "--add", "XML::SAX::PurePerl", "--priority", "10"]]
    steps += [["update-perl-sax-parsers", "--add", p] for p in PARSERS]
    steps += [["update-perl-sax-parsers", "--quiet", "--add", "XML::SAX::Expat", "--priority", "0"],
              ["update-perl-sax-parsers", "--remove", "XML::SAX::Expat", "--priority=0"],
              ["update-perl-sax-parsers", "--remove", "Not::There"],
              ["update-perl-sax-parsers", "--add", "XML::SAX::Expat", "--directory", "/srv/pd"],
              ["update-perl-sax-parsers", "--update", "--file", "/srv/pd.ini", "--directory", "/srv/pd",
               "--directory", "/var/lib/libxml-sax-perl/ParserDetails.d"],
              ["update-perl-sax-parsers", "--test", "--update", "--file", "/srv/out.ini"],
              ["update-perl-sax-parsers", "--quiet", "--update", "--file", "-"],
              ["update-perl-sax-parsers", "--version"],
              ["update-perl-sax-parsers", "--help"],
              ["update-perl-sax-parsers", "--bogus"],
              ["update-perl-sax-parsers", "--add"],
              ["update-perl-sax-parsers"]]
    pair.check(steps, setup=lambda root: os.makedirs(os.path.join(root, "srv/pd")))


def test_error_paths(pair):
    """A missing directory (opendir dies), a file that cannot be written (open dies)."""
    results = pair.check([["update-perl-sax-parsers", "--update", "--file", "/srv/x.ini", "--directory", "/nonexistent"],
                          ["update-perl-sax-parsers", "--update", "--file", "/nonexistent/x.ini"],
                          ["update-perl-sax-parsers", "--add", "XML::SAX::Expat", "--directory", "/nonexistent"]])
    assert [r[0] for r in results] == [2, 2, 2]


SCRIPT = """set -e
update-perl-sax-parsers --remove XML::LibXML::SAX::Parser
update-perl-sax-parsers --remove XML::LibXML::SAX
update-perl-sax-parsers --update
update-perl-sax-parsers --add XML::LibXML::SAX::Parser
update-perl-sax-parsers --add XML::LibXML::SAX
update-perl-sax-parsers --update
update-perl-sax-parsers --quiet --update --file - | md5sum - > /var/lib/libxml-sax-perl/ParserDetails.ini.md5sum
update-perl-sax-parsers --update
"""


def run_both(pair, script):
    with open(os.path.join(pair.real, "srv/t.sh"), "w") as f:
        f.write(script)
    real = pair.run_real(["sh", "/srv/t.sh"], NI)
    os.unlink(os.path.join(pair.real, "srv/t.sh"))
    ov = Overlay(HostDirFS(pair.model, writable=True))
    res = run_script(ov, script, env=dict(NI), models=MODELS)
    assert not res.deferred_whole and not res.deferred_commands, res.reason
    ov.commit()
    return real, (res.status, res.stdout, res.stderr)


def test_upgrade_through_ucf(pair):
    """libxml-libxml-perl's prerm upgrade and postinst configure, then the preinst's checksum:
    the ucf runs compared whole (messages, ParserDetails.ini, ucf's hashfile and cache)."""
    pair.reset(lambda root: os.makedirs(os.path.join(root, "srv"), exist_ok=True))
    real, model = run_both(pair, SCRIPT)
    assert model == real
    assert pair.facts(pair.real) == pair.facts(pair.model)
    assert not [n for n in os.listdir(os.path.join(pair.model, "tmp")) if len(n) == 10]


def test_locally_modified_ini(pair):
    """An admin's edit of ParserDetails.ini: ucf (noninteractive) keeps it and says so."""
    def setup(root):
        os.makedirs(os.path.join(root, "srv"), exist_ok=True)
        with open(os.path.join(root, "etc/perl/XML/SAX/ParserDetails.ini"), "ab") as f:
            f.write(b"# local edit\n")
    pair.reset(setup)
    real, model = run_both(pair, "update-perl-sax-parsers --update\n")
    assert model == real
    assert pair.facts(pair.real) == pair.facts(pair.model)


def test_modules_not_read_are_deferred(pair):
    def setup(root):
        write(root, "usr/share/perl5/My/Parser.pm",
              b"package My::Parser;\nuse base qw(XML::SAX::Base);\n"
              b"sub supported_features { my @f = ('a'); return @f; }\n1;\n")
    pair.reset(setup)
    before = pair.facts(pair.model)
    for module in ("My::Parser", "Not::Installed"):
        with pytest.raises(Defer):
            pair.run_model(["update-perl-sax-parsers", "--add", module])
    assert pair.facts(pair.model) == before
