"""``journalctl --update-catalog`` (systemd 252) against the real program in a chroot of a
bookworm tree with systemd (the tree test_machine_id.py uses).

Each case changes two hard-linked copies of the tree the same way (new files only: a file
of the cache is unlinked before it is replaced, never written through a link); the real
journalctl runs in one with ``chroot`` (no /proc, /sys or /dev, as under dpkg in a chroot),
the model on the other. Status, stdout, stderr and everything under ``/var/lib/systemd``
(types, modes, bytes; the database byte for byte) must agree. The pure parts (line
splitting, the string table, the database round trip) are checked on their own below.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from debian_tree import bookworm_tree, link_tree
from helpers.trees import content_facts, tree_facts
from helpers.treecopy import put_anew
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.commands.services import journal_catalog as jc
from nuwa.script.context import Defer, Invocation
from nuwa.script.interp import run_script

MODELS = default_models()
PACKAGES = ("chrony", "systemd")
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
CAT = "usr/lib/systemd/catalog"
LOCAL = "usr/local/lib/systemd/catalog"
DB = "var/lib/systemd/catalog/database"
#: IDs of systemd.catalog (the journal started; stopped) and new ones
STARTED = "f77379a8490b408bbe5f6940505a777b"
STOPPED = "d93fb3c9c24d451a97cea615ce59c00b"
NEW1 = "0123456789abcdef0123456789abcdef"
NEW2 = "FEDCBA9876543210FEDCBA9876543210"


@pytest.fixture(scope="module")
def base():
    return bookworm_tree(PACKAGES)


def _rm(root: str, rel: str) -> None:
    p = os.path.join(root, rel)
    if os.path.isdir(p) and not os.path.islink(p):
        for n in os.listdir(p):
            os.unlink(os.path.join(p, n))
        os.rmdir(p)
    elif os.path.lexists(p):
        os.unlink(p)


def _facts(root: str) -> dict:
    return tree_facts(root, content_facts, subs=("var/lib/systemd",), include_subs=True)


def _real(base, tmp_path, setup, args=("--update-catalog",)):
    root = link_tree(base, str(tmp_path / "real"))
    setup(root)
    r = subprocess.run([tool("chroot"), root, "journalctl", *args], capture_output=True, env=ENV,
                       preexec_fn=lambda: os.umask(0o022))
    return (r.returncode, r.stdout, r.stderr), _facts(root)


def _model(base, tmp_path, setup, args=("--update-catalog",)):
    root = link_tree(base, str(tmp_path / "model"))
    setup(root)
    inv = Invocation(argv=["journalctl", *args], fs=HostDirFS(root, writable=True), cwd="/", models=MODELS,
                     env=dict(ENV), umask=0o022)
    status = MODELS["journalctl"](inv)
    return (status, bytes(inv.stdout), bytes(inv.stderr)), _facts(root)


def entry(ident: str, body: str, lang: str = "", headers: str = "Subject: s\nDefined-By: test\n") -> str:
    head = f"-- {ident}" + (f" {lang}" if lang else "")
    return f"{head}\n{headers}\n{body}\n\n"


def _several_languages(root):
    put_anew(root, f"{CAT}/extra.catalog", (
        "# a comment\n; another\n\n"
        + entry(NEW1, "The C text.")
        + entry(NEW1, "Der Text.", "de")
        + entry(NEW1, "Le texte.", "fr")
        + entry(NEW2, "Second.\n\n  indented, two paragraphs.", "pt_BR")).encode())
    # a language from the name, a header naming it again (warning) and another one (warning)
    put_anew(root, f"{CAT}/extra.de.catalog", (
        entry(NEW2, "Zweiter.") + entry(NEW2, "Zweiter wieder.", "de") + entry(NEW1, "Anders.", "it")).encode())


def _override(root):
    # a later file repeating an ID: its header lines come first, then the old ones; its body wins
    put_anew(root, f"{CAT}/zz-override.catalog",
          entry(STARTED, "Overridden body.", headers="Subject: new subject\n").encode())
    # a header-only entry keeps the old body
    put_anew(root, f"{CAT}/zz-header-only.catalog", f"-- {STOPPED}\nDocumentation: man:x(1)\n".encode())
    # /usr/local wins over /usr/lib for the same basename (the whole file)
    put_anew(root, f"{LOCAL}/systemd.de.catalog", entry(NEW1, "Lokal.", "de").encode())


def _tails(root):
    # texts that are tails of texts stored before share their bytes in the string table
    put_anew(root, f"{CAT}/tails.catalog", (
        f"-- {NEW1}\nabc\nxyz tail\n\n"
        f"-- {NEW2}\nxyz tail\n\n"
        f"-- {NEW1} en\ntail\n\n"
        f"-- {NEW2} en\nabc\nxyz tail\n").encode())


def _line_endings(root):
    # CR LF, lone CR, NUL and LF CR end lines; a "-- " line whose ID is no ID is payload, cut
    # to its first 35 characters; a "--" line not after an empty line is payload
    put_anew(root, f"{CAT}/endings.catalog", (
        f"-- {NEW1}\r\nSubject: crlf\r\n\r\nbody\rsecond\0third\n\rfourth\n"
        f"-- {NEW2}\nafter no empty line\n\n"
        "-- 0123456789abcdef0123456789abcdeg and more words\n").encode() + b"\xc3\xa9 bytes\n")


def _no_items(root):
    for n in os.listdir(os.path.join(root, CAT)):
        os.unlink(os.path.join(root, CAT, n))
    put_anew(root, f"{CAT}/.hidden.catalog", entry(NEW1, "hidden").encode())
    put_anew(root, f"{CAT}/notes.txt", entry(NEW1, "not a catalog").encode())
    put_anew(root, f"{CAT}/comments.catalog", b"# only comments\n\n")


def _fresh(root):
    _rm(root, "var/lib/systemd/catalog")


def _old_database(root):
    # an existing database (even a symlink to one) is replaced by a new 0644 file
    put_anew(root, "var/lib/systemd/catalog/old", b"RHHHKSLP stale", 0o600)
    put_anew(root, DB, link="old")


EXACT = {
    "stock": lambda root: None,
    "fresh-directory": _fresh,
    "old-database-symlink": _old_database,
    "several-languages": _several_languages,
    "override-and-local": _override,
    "string-tails": _tails,
    "line-endings": _line_endings,
    "no-items": _no_items,
}

BAD = {
    "payload-before-id": b"# x\nSubject: no id\n",
    "no-payload": f"-- {NEW1}\n\n-- {NEW2}\ntext\n".encode(),
    "no-payload-at-end": f"-- {NEW1}\n\n\n".encode(),
    "language-too-short": f"-- {NEW1}  \ntext\n".encode(),
    "language-too-long": f"-- {NEW1} {'x' * 32}\ntext\n".encode(),
    "line-too-long": f"-- {NEW1}\n".encode() + b"x" * (1 << 20) + b"\n",
}


@pytest.mark.judge
@pytest.mark.parametrize("name", list(EXACT))
def test_update_catalog_matches_real(base, tmp_path, name):
    setup = EXACT[name]
    assert _model(base, tmp_path, setup) == _real(base, tmp_path, setup)


@pytest.mark.judge
@pytest.mark.parametrize("name", list(BAD))
def test_malformed_catalog_matches_real(base, tmp_path, name):
    def setup(root):
        put_anew(root, f"{CAT}/extra.de.catalog", entry(NEW1, "Warnung.", "de").encode())  # a warning first
        put_anew(root, f"{CAT}/zz-bad.catalog", BAD[name])
    model = _model(base, tmp_path, setup)
    assert model == _real(base, tmp_path, setup)
    assert model[0][0] == 1 and b"Failed to list catalog" in model[0][2]


@pytest.mark.judge
@pytest.mark.parametrize("kind", ["directory", "dangling"])
def test_unreadable_catalog_matches_real(base, tmp_path, kind):
    def setup(root):
        if kind == "directory":
            put_anew(root, f"{CAT}/zz.catalog")
        else:
            put_anew(root, f"{CAT}/zz.catalog", link="/nowhere")
    assert _model(base, tmp_path, setup) == _real(base, tmp_path, setup)


@pytest.mark.judge
@pytest.mark.parametrize("args", [("--root=/", "--update-catalog"), ("--update-catalog", "--root", "//."),
                                  ("--update-catalog", "stray")])
def test_arguments_match_real(base, tmp_path, args):
    assert _model(base, tmp_path, _fresh, args) == _real(base, tmp_path, _fresh, args)


@pytest.mark.judge
def test_one_letter_language_aborts_real_and_defers(base, tmp_path):
    def setup(root):
        put_anew(root, f"{CAT}/x.a.catalog", entry(NEW1, "text").encode())
    (status, _out, err), facts = _real(base, tmp_path, setup)
    assert status != 0 and b"Assertion" in err
    with pytest.raises(Defer, match="assertion"):
        _model(base, tmp_path, setup)


def test_other_forms_defer(tmp_path):
    fs = HostDirFS(str(tmp_path), writable=True)
    for argv in (["journalctl"], ["journalctl", "--list-catalog"], ["journalctl", "-x", "--update-catalog"],
                 ["journalctl", "--root=/srv", "--update-catalog"]):
        with pytest.raises(Defer):
            MODELS["journalctl"](Invocation(argv=argv, fs=fs, models=MODELS))
    assert os.listdir(tmp_path) == []


@pytest.mark.judge
def test_systemd_postinst_trigger_is_simulated(base, tmp_path):
    """systemd's own postinst, run for its catalog trigger, writes the real database."""
    root = link_tree(base, str(tmp_path / "model"))
    _fresh(root)
    _several_languages(root)
    with open(os.path.join(root, "var/lib/dpkg/info/systemd.postinst")) as f:
        text = f.read()
    r = run_script(HostDirFS(root, writable=True), text, ["triggered", "/usr/lib/systemd/catalog"],
                   models=MODELS, is_path=False)
    assert (r.status, r.deferred_whole, r.deferred_commands) == (0, False, []), r.reason
    (status, _o, _e), facts = _real(base, tmp_path, lambda rt: (_fresh(rt), _several_languages(rt)))
    assert status == 0 and facts == _facts(root)


#: what random catalogs are made of: IDs (some in upper case), languages, payload lines that
#: share tails, lines that look like headers and are not
_IDS = (NEW1, NEW2, NEW1.upper(), STARTED, "00000000000000000000000000000001")
_LANGS = ("", "", "de", "fr", "pt_BR", " de ", "de\t", "be@latin")
_WORDS = ("Subject: a", "Subject: b", "Defined-By: x", "body", "the body", "xt", "the text", "  ", "-- not an id",
          "-- 0123456789abcdef0123456789abcdeZ tail", "#x", "; y")
_EOLS = ("\n",) * 8 + ("\r\n", "\r", "\0", "\n\r", "\n\0")


def _random_catalog(rng: random.Random) -> bytes:
    """A catalog of entries, comments and blank lines, mostly valid, sometimes not."""
    lines = []
    if rng.random() < 0.1:
        lines.append(rng.choice(_WORDS))  # payload before any ID, now and then
    for _ in range(rng.randint(0, 5)):
        lines += [""] * rng.choice((0, 1, 1, 2)) + ["# c"] * rng.choice((0, 0, 1))
        lang = rng.choice(_LANGS)
        lines.append(f"-- {rng.choice(_IDS)}" + (f" {lang}" if lang else ""))
        for _ in range(rng.choice((0, 1, 2, 3, 4))):
            lines.append("" if rng.random() < 0.2 else rng.choice(_WORDS))
    return "".join(x + rng.choice(_EOLS) for x in lines).encode()


@pytest.mark.judge
def test_random_catalogs_match_real(base, tmp_path):
    """Seeded random catalogs (with /usr/local overriding stock names): the database, the
    messages and the status agree with the real program's on every one."""
    rng = random.Random(13)
    root = link_tree(base, str(tmp_path / "tree"))
    local = os.path.join(root, LOCAL)
    names = ("a.catalog", "b.de.catalog", "systemd.de.catalog", "c.pt_BR.catalog", ".hidden.catalog")

    def run(real: bool):
        put_anew(root, DB, b"stale", 0o600)
        if real:
            r = subprocess.run([tool("chroot"), root, "journalctl", "--update-catalog"], capture_output=True,
                               env=ENV, preexec_fn=lambda: os.umask(0o022))
            out = (r.returncode, r.stdout, r.stderr)
        else:
            inv = Invocation(argv=["journalctl", "--update-catalog"], fs=HostDirFS(root, writable=True),
                             models=MODELS, env=dict(ENV), umask=0o022)
            out = (MODELS["journalctl"](inv), bytes(inv.stdout), bytes(inv.stderr))
        return out, content_facts(os.path.join(root, DB), os.lstat(os.path.join(root, DB)))

    failures = 0
    for _ in range(40):
        _rm(root, LOCAL)
        os.makedirs(local)
        for name in rng.sample(names, rng.randint(1, 3)):
            put_anew(root, f"{LOCAL}/{name}", _random_catalog(rng))
        real = run(True)
        failures += real[0][0] != 0
        assert run(False) == real
    assert 0 < failures < 30  # both outcomes were judged
    # the run leaves no temporary file behind
    assert sorted(os.listdir(os.path.join(root, "var/lib/systemd/catalog"))) == ["database"]


# ---- the pure parts ---------------------------------------------------------------------------------

def test_read_lines_follows_read_line_full():
    assert jc.read_lines(b"") == []
    assert jc.read_lines(b"a\nb") == [b"a", b"b"]
    assert jc.read_lines(b"a\n\nb\n") == [b"a", b"", b"b"]
    assert jc.read_lines(b"a\r\nb\n\rc\r\rd\0e\n\0f\r\n\0g") == [b"a", b"b", b"c", b"", b"d", b"e", b"f", b"g"]
    assert jc.read_lines(b"a\0\0b") == [b"a", b"", b"b"]
    with pytest.raises(OSError):
        jc.read_lines(b"x" * jc.LONG_LINE_MAX)
    assert len(jc.read_lines(b"x" * (jc.LONG_LINE_MAX - 1) + b"\r\n")) == 1


def test_file_language():
    assert jc.file_language("/usr/lib/systemd/catalog/systemd.catalog") is None
    assert jc.file_language("/usr/lib/systemd/catalog/systemd.be@latin.catalog") == b"be@latin"
    assert jc.file_language("/usr/lib/systemd/catalog/a.b.x.catalog") == b"x"
    assert jc.file_language("/d/n." + "y" * 31 + ".catalog") == b"y" * 31
    assert jc.file_language("/d/n." + "y" * 32 + ".catalog") is None


def test_strbuf_shares_tails():
    sb = jc.StrBuf()
    assert sb.add(b"") == 0
    a = sb.add(b"hello world")
    assert (a, sb.add(b"world"), sb.add(b"hello world"), sb.add(b"d")) == (1, 7, 1, 11)
    b = sb.add(b"new world")  # not a tail of anything: stored; "world" still found in the first
    assert b == 13 and sb.add(b"world") == 7 and bytes(sb.buf) == b"\0hello world\0new world\0"


def test_database_round_trip():
    items = {(bytes(range(16)), b""): b"Subject: a\n\nbody\n", (bytes(range(16)), b"de"): b"body\n",
             (b"\xff" * 16, b"pt_BR"): b"x\n"}
    data = jc.encode_database(items)
    assert data[:8] == b"RHHHKSLP" and len(data) == 40 + 3 * 56 + 1 + len(b"Subject: a\n\nbody\n") + 1 + 3
    rows = jc.decode_database(data)
    assert sorted((i, lng, t) for (i, lng), t in items.items()) == rows
    assert jc.encode_database({(i, lng): t for i, lng, t in rows}) == data
    with pytest.raises(ValueError):
        jc.decode_database(data[:100])


def test_combine_entries():
    assert jc.combine_entries(b"A: 1\n\nnew\n", b"B: 2\n\nold\n") == b"A: 1\nB: 2\n\nnew\n"
    assert jc.combine_entries(b"A: 1\n", b"B: 2\n\nold\n") == b"A: 1\nB: 2\n\nold\n"
