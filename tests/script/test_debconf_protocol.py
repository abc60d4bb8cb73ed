"""The debconf protocol server against real debconf (``debconf-communicate`` in a chroot).

``debconf-communicate`` runs debconf's own ``ConfModule::process_command`` on lines read from
stdin and prints each reply. The same command sequences go to the real program in a chroot
of a bookworm tree and to Nuwa's model (inside the interpreter) on a copy of the same tree;
the replies, the exit status and the database files (bytes, and the ``-old`` backups) must
agree. Each sequence starts where the previous one left the databases, so later ones also
check state the earlier ones wrote.
"""

from __future__ import annotations

import os
import shlex
import time

import pytest

from debconf_oracle import debconf_records, diff_trees, environment, make_pair, put, run_nuwa, run_real
from debian_tree import bookworm_tree

TEMPLATES = b"""Template: nuwa-test/string
Type: string
Default: hello world
Description: A string ${thing}
 Extended text with ${thing} and \\${kept}.

Template: nuwa-test/bool
Type: boolean
Default: true
Description: A boolean

Template: nuwa-test/select
Type: select
Choices: one, two, three
Choices-de.UTF-8: eins, zwei, drei
Default: four
Description: A select

Template: nuwa-test/multi
Type: multiselect
Choices: a, b\\, c, d
Default: a, d
Description: A multiselect

Template: nuwa-test/note
Type: note
Description: A note

Template: nuwa-test/text
Type: text
Description: A text

Template: nuwa-test/pw
Type: password
Description: A password

Template: nuwa-test/error
Type: error
Description: Something went wrong
 This error explains itself at some length so that the noninteractive frontend has to wrap
 the paragraph over more than one line of seventy-five characters or so.
 .
 A second paragraph.
"""

SEQUENCES = {
    "basics": [
        "VERSION 2.0", "VERSION 1.0", "VERSION 3", "VERSION", "VERSION 2 3", "CAPB", "CAPB backup foo",
        "GET tzdata/Areas", "GET tzdata/Zones/Etc", "GET no/such", "GET", "GET a b",
        "FGET tzdata/Areas seen", "FGET tzdata/Areas other", "FGET no/such seen",
        "METAGET tzdata/Areas Type", "METAGET tzdata/Areas owners", "METAGET tzdata/Areas template",
        "METAGET tzdata/Areas name", "METAGET tzdata/Areas priority", "METAGET tzdata/Areas nofield",
        "METAGET tzdata/Areas extended_description", "METAGET tzdata/Areas Choices",
        "TITLE Some  title", "SETTITLE tzdata/Areas", "SETTITLE no/such", "BEGINBLOCK", "ENDBLOCK",
        "INFO", "INFO tzdata/Areas", "INFO no/such", "INFO a b", "CLEAR", "CLEAR x",
        "PROGRESS START 0 10 tzdata/Areas", "PROGRESS SET 5", "PROGRESS STEP 1", "PROGRESS INFO tzdata/Areas",
        "PROGRESS STOP", "PROGRESS START 5 1 tzdata/Areas", "PROGRESS bogus", "PROGRESS",
        "", "   ", "FROB x", "PREVIOUS_MODULE", "X_SAVE", "EXIST tzdata/Areas", "EXIST no/such",
    ],
    "templates": [
        "X_LOADTEMPLATEFILE /tmp/nuwa-test.templates nuwa-test",
        "X_LOADTEMPLATEFILE /tmp/missing.templates", "X_LOADTEMPLATEFILE",
        "SUBST nuwa-test/string thing a  thing", "SUBST nuwa-test/string", "SUBST no/such a b",
        "METAGET nuwa-test/string description", "METAGET nuwa-test/string extended_description",
        "GET nuwa-test/string", "GET nuwa-test/multi", "GET nuwa-test/note", "GET nuwa-test/pw",
        "INPUT high nuwa-test/string", "INPUT low nuwa-test/bool", "INPUT critical nuwa-test/select",
        "INPUT medium nuwa-test/multi", "INPUT high nuwa-test/note", "INPUT high nuwa-test/text",
        "INPUT critical nuwa-test/pw", "INPUT bogus nuwa-test/pw", "INPUT high", "INPUT high no/such",
        "INPUT high nuwa-test/string", "UNREGISTER nuwa-test/string", "GO", "GO now",
        "GET nuwa-test/select", "GET nuwa-test/text", "FGET nuwa-test/string seen",
        "FSET nuwa-test/bool seen true", "FSET nuwa-test/bool", "FGET nuwa-test/bool seen",
        "FSET nuwa-test/bool isdefault true", "FGET nuwa-test/bool isdefault", "FGET nuwa-test/bool seen",
        "SET nuwa-test/string  two   words ", "GET nuwa-test/string", "SET nuwa-test/string", "SET no/such x",
        "RESET nuwa-test/string", "GET nuwa-test/string", "RESET nuwa-test/text", "GET nuwa-test/text",
        "SET nuwa-test/pw s3cret", "GET nuwa-test/pw",
    ],
    "register": [
        "REGISTER nuwa-test/string nuwa-test/other", "REGISTER no/such nuwa-test/x", "REGISTER a",
        "GET nuwa-test/other", "METAGET nuwa-test/other owners", "METAGET nuwa-test/other template",
        "SUBST nuwa-test/other thing second", "METAGET nuwa-test/other description",
        "SET nuwa-test/other mine", "GET nuwa-test/string", "GET nuwa-test/other",
        "UNREGISTER nuwa-test/other", "GET nuwa-test/other", "UNREGISTER no/such",
        "DATA nuwa-test/new description New one", "DATA nuwa-test/new type string",
        "DATA nuwa-test/new description Made \\\"by\\\" DATA\\nline2", "DATA nuwa-test/new type note",
        "DATA nuwa-test/new default dflt", "GET nuwa-test/new", "METAGET nuwa-test/new description",
    ],
    "escape": [
        "CAPB escape", "SET nuwa-test/string multi\\nline\\\\back", "GET nuwa-test/string",
        "METAGET nuwa-test/string extended_description", "SET nuwa-test/string a\\ b  c", "GET nuwa-test/string",
        "CAPB", "GET nuwa-test/string",
    ],
    "error-note": [
        "INPUT critical nuwa-test/error", "GO", "FGET nuwa-test/error seen",
        "INPUT critical nuwa-test/error", "GO",
    ],
    "purge": ["PURGE x", "PURGE", "GET nuwa-test/string", "STOP", "GET tzdata/Areas"],
}
ORDER = ["basics", "templates", "register", "escape", "error-note", "purge"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    a, b = make_pair(bookworm_tree(), str(tmp_path_factory.mktemp("debconf-protocol")))
    put((a, b), "/tmp/nuwa-test.templates", TEMPLATES, 0o644)
    return a, b, time.time()


@pytest.fixture(scope="module")
def results(pair):
    """Each sequence run in order on both trees: {name: (real, nuwa)}."""
    a, b, _ = pair
    out = {}
    for name in ORDER:
        owner = "nuwa-test" if name != "basics" else ""
        body = "".join(line + "\n" for line in SEQUENCES[name])
        put((a, b), "/tmp/seq", body.encode(), 0o644)
        cmd = ["/bin/sh", "-c", "debconf-communicate " + shlex.quote(owner) + " < /tmp/seq" if owner
               else "debconf-communicate < /tmp/seq"]
        real = run_real(a, cmd, environment())
        put((a, b), "/tmp/run.sh", ("#!/bin/sh\n" + cmd[2] + "\n").encode())
        r = run_nuwa(b, ["/tmp/run.sh"], environment())
        assert not r.deferred_whole, r.reason
        out[name] = (real, (r.status, r.stdout, r.stderr), debconf_records(a), debconf_records(b))
    return out


@pytest.mark.parametrize("name", ORDER)
def test_replies_match_debconf(results, name):
    (rs, rout, rerr), (ns, nout, nerr), _, _ = results[name]
    assert nout.decode().splitlines() == rout.decode().splitlines()
    assert (ns, nerr) == (rs, rerr)


@pytest.mark.parametrize("name", ORDER)
def test_databases_match_debconf(results, name):
    _, _, real_db, nuwa_db = results[name]
    for f in real_db:
        assert nuwa_db[f] == real_db[f], f


def test_trees_match(results, pair):
    a, b, since = pair
    assert diff_trees(a, b, since) == []
    for n in ("config.dat", "templates.dat", "passwords.dat", "config.dat-old", "templates.dat-old"):
        pa, pb = (os.path.join(r, "var/cache/debconf", n) for r in (a, b))
        assert open(pa, "rb").read() == open(pb, "rb").read(), n
