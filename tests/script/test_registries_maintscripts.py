"""The packages' own maintainer scripts, as dpkg runs them for an upgrade: real ``sh`` in a
chroot against the simulator with the registry models, on two copies of one bookworm tree.

xml-core's prerm deletes its catalog entries (unsorted writes in between) and its postinst
adds them back with ``--sort``; sgml-base's postinst rebuilds the super catalog (also as its
``/etc/sgml`` trigger); libxml-libxml-perl and libxml-sax-perl re-register their parsers and
regenerate ParserDetails.ini through ucf; mailcap's postinst and its trigger run update-mime.
Every script must be simulated whole (no deferral), with the same status and output as real
sh, and the directories the programs own must end identical.
"""

from __future__ import annotations

import pytest

from registry_harness import MODELS, make_pair
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import dpkg_environment, run_script

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory)

INFO = "/var/lib/dpkg/info"
STEPS = [("xml-core", "prerm", ["upgrade", "0.18+nmu1+nuwa1"]),
         ("xml-core", "postinst", ["configure", "0.18+nmu1"]),
         ("sgml-base", "postinst", ["configure", "1.31"]),
         ("sgml-base", "postinst", ["triggered", "/etc/sgml"]),
         ("libxml-libxml-perl", "prerm", ["upgrade", "2.0207+dfsg+njh-1+nuwa1"]),
         ("libxml-libxml-perl", "postinst", ["configure", "2.0207+dfsg+njh-1"]),
         ("libxml-sax-perl", "postinst", ["configure", "1.02+dfsg-3"]),
         ("mailcap", "postinst", ["configure", "3.70+nmu1"]),
         ("mailcap", "postinst", ["triggered", "/usr/lib/mime/packages"])]


def test_upgrade_scripts(pair):
    pair.reset()
    ran: set[str] = set()
    for package, script, args in STEPS:
        path = f"{INFO}/{package}.{script}"
        env = {**dpkg_environment(script, package, "all"), "DEBIAN_FRONTEND": "noninteractive"}
        real = pair.run_real(["env", "-i", *(f"{k}={v}" for k, v in env.items()), "sh", path, *args], env)
        ov = Overlay(HostDirFS(pair.model, writable=True))
        res = run_script(ov, path, argv=args, env=dict(env), name=path, models=MODELS)
        assert not res.deferred_whole and not res.deferred_commands, (path, res.reason, res.deferred_commands)
        ov.commit()
        assert (res.status, res.stdout, res.stderr) == real, (package, script, args)
        assert real[0] == 0, real
        ran.update(r.argv[0] for r in res.record.entries if r.argv)
    assert {"update-xmlcatalog", "update-catalog", "update-perl-sax-parsers", "update-mime"} <= ran
    assert pair.facts(pair.real) == pair.facts(pair.model)
