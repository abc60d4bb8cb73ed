"""file (file 5.44) against the real one in a chroot of a bookworm tree (cracklib-runtime,
file, wamerican, xz-utils, bzip2, zstd installed).

Every path of a wide spread (all files under /usr/share/dict, /etc, /usr/share/doc,
/usr/share/common-licenses, every tenth entry of /usr/bin and /usr/lib, and crafted files:
JSON, CSV, scripts, CRLF and CR text, long lines, UTF-8 with and without a BOM, Latin-1,
escapes, NUL padding, compressed texts, empty and one-byte files, directories, symlinks, a
fifo) is described by the real ``file`` and by the model, with and without ``-z`` and
``-b``: where the model answers, the line is the real one; the counts of answered and
deferred paths are printed (``-s``/``-rA``) and the answered share must stay high, so a
model that defers everything fails.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import subprocess

import pytest

from debian_tree import bookworm_tree, link_tree, remove_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.commands.magic.ere import Unsupported, translate
from nuwa.script.context import Defer, Invocation

#: the tree the cracklib and file tests share (one cached tree, see debian_tree.bookworm_tree)
PACKAGES = ("bzip2", "cracklib-runtime", "file", "wamerican", "xz-utils", "zstd")
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
MODELS = default_models()

LATIN1 = "Stra\xdfe, na\xefve caf\xe9\n".encode("latin-1")
UTF8 = "Stra\xdfe, na\xefve caf\xe9 \u2014 \u65e5\u672c\n".encode()
SCRIPT = b"#!/bin/sh\nset -e\necho hello\n"
CRAFTED = {
    "json-object": b'{"a": [1, 2, {"b": null}], "c": "d"}\n',
    "json-array": b"[1, 2, 3]\n",
    "json-scalar": b'"just a string"\n',
    "ndjson": b'{"a": 1}\n{"b": [2, 3]}\n',
    "json-broken": b'{"a": [1, 2}\n',
    "json-deep": b"[" * 100 + b"]" * 100 + b"\n",
    "csv": b"name,age,city\nann,31,oslo\nbob,42,rome\ncid,25,lima\n",
    "csv-quoted": b'a,"b,c",d\n1,"x ""y""",3\n4,5,6\n7,8,9\n',
    "sh-script": SCRIPT,
    "bash-script": b"#!/bin/bash\nfor i in 1 2; do echo $i; done\n",
    "env-python": b"#!/usr/bin/env python3\nprint('hi')\n",
    "perl-script": b"#!/usr/bin/perl -w\nuse strict;\nprint \"x\\n\";\n",
    "crlf": b"line one\r\nline two\r\n",
    "cr-only": b"line one\rline two\r",
    "mixed-eol": b"a\r\nb\nc\rd\n",
    "no-eol": b"no newline at all",
    "long-line": b"x" * 400 + b"\nshort\n" + b"y" * 1000 + b"\n",
    "utf8": UTF8,
    "utf8-bom": b"\xef\xbb\xbf" + UTF8,
    "latin1": LATIN1,
    "extended": b"caf\x82 \x8a\n",
    "escapes": b"\x1b[1mbold\x1b[0m\n",
    "overstrike": b"b\bbo\bol\bld\bd\n",
    "nul-padded": b"text then nuls\n" + b"\0" * 10,
    "binary": bytes(range(256)) * 4,
    "zeros": b"\0" * 100,
    "one-byte": b"x",
    "two-bytes": b"xy",
    "empty": b"",
    "words": b"\n".join(b"word%d" % i for i in range(2000)) + b"\n",
    "c-source": b"#include <stdio.h>\nint main(void) { return 0; }\n",
    "html": b"<!DOCTYPE html>\n<html><head><title>t</title></head><body></body></html>\n",
    "xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<root><a/></root>\n',
    "diff": b"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
    "pem": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "ini": b"[section]\nkey=value\n",
    "tar-like": b"ustar" + b"\0" * 600,
    # a deflate header by chance ('8', '0'): with -z libmagic tries zlib and prints its error
    "zlib-header-text": b"80 is a number\n",
}
COMPRESSED = {
    "words.gz": gzip.compress(CRAFTED["words"], mtime=1700000000),
    "script.gz": gzip.compress(SCRIPT, mtime=0),
    "utf8.gz": gzip.compress(UTF8, mtime=1),
    "words.xz": lzma.compress(CRAFTED["words"]),
    "latin1.xz": lzma.compress(LATIN1),
    "words.bz2": bz2.compress(CRAFTED["words"]),
    "empty.gz": gzip.compress(b"", mtime=0),
    "words.zst": b"\x28\xb5\x2f\xfd" + b"\0" * 20,
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the tree with the crafted files in /srv/magic (the cached tree stays as it is)."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    base = bookworm_tree(extra=PACKAGES)
    root = link_tree(base, str(tmp_path_factory.mktemp("magic") / "tree"))
    srv = os.path.join(root, "srv/magic")
    os.makedirs(srv)
    for name, data in {**CRAFTED, **COMPRESSED}.items():
        with open(os.path.join(srv, name), "wb") as f:
            f.write(data)
    os.chmod(os.path.join(srv, "sh-script"), 0o755)
    os.symlink("csv", os.path.join(srv, "link"))
    os.symlink("/nonexistent", os.path.join(srv, "broken-link"))
    os.symlink("/srv/magic/sh-script", os.path.join(srv, "abs-link"))
    os.mkdir(os.path.join(srv, "dir"))
    os.mkfifo(os.path.join(srv, "fifo"))
    yield root
    remove_tree(root)


def spread(root: str) -> list[str]:
    """The paths described: the crafted ones, then the image's."""
    paths = ["/srv/magic/" + n for n in sorted(os.listdir(os.path.join(root, "srv/magic")))]
    paths.append("/srv/magic/missing")
    for top, every in (("usr/share/dict", 1), ("etc", 1), ("usr/share/doc", 1), ("usr/share/common-licenses", 1),
                       ("usr/bin", 10), ("usr/lib", 10)):
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for n in sorted(dirnames + filenames):
                found.append("/" + os.path.relpath(os.path.join(dirpath, n), root))
        paths += found[::every]
    return paths


def real_lines(root: str, opts: list[str], paths: list[str]) -> list[bytes]:
    out = []
    for i in range(0, len(paths), 400):
        chunk = paths[i:i + 400]
        p = subprocess.run(["chroot", root, "file", *opts, "--", *chunk], env=ENV, capture_output=True, timeout=300)
        assert p.returncode == 0 and not p.stderr, p.stderr
        lines = p.stdout.split(b"\n")[:-1]
        assert len(lines) == len(chunk)
        out += lines
    return out


def model(root: str, argv: list[str]) -> tuple[int, bytes] | None:
    inv = Invocation(argv=argv, fs=HostDirFS(root), env=dict(ENV), models=MODELS)
    try:
        status = MODELS["file"](inv)
    except Defer:
        return None
    assert not inv.stderr
    return status, bytes(inv.stdout)


@pytest.mark.parametrize("opts", [["-b"], ["-b", "-z"], ["-b", "-L"], ["-z", "-b", "-L"]])
def test_file_spread(tree, opts, capsys):
    """Each path alone (``-b``): the model's line is the real one wherever it answers."""
    paths = spread(tree)
    real = real_lines(tree, opts, paths)
    answered, deferred, wrong = [], [], []
    for path, line in zip(paths, real):
        got = model(tree, ["file", *opts, path])
        if got is None:
            deferred.append(path)
            continue
        answered.append(path)
        if got != (0, line + b"\n"):
            wrong.append((path, got, line))
    with capsys.disabled():
        print(f"\nfile {' '.join(opts)}: {len(answered)} answered, {len(deferred)} deferred of {len(paths)}")
    assert not wrong, wrong[:5]
    # every crafted text the dictionaries' check meets, and most of the image, is answered
    for name in ("words", "words.gz", "words.xz", "words.bz2", "crlf", "utf8", "latin1", "long-line", "csv",
                 "json-object", "ndjson", "sh-script"):
        assert "/srv/magic/" + name in answered
    assert len(answered) >= 0.8 * len(paths)


def test_file_names_padded(tree):
    """Without ``-b``, several names in one call: ``NAME:`` padded to the widest name, the
    real status; the model answers this set of paths."""
    names = ["/srv/magic/" + n for n in ("csv", "words", "dir", "link", "broken-link", "empty", "missing",
                                          "one-byte", "sh-script", "words.gz")] + ["/usr/share/dict", "/etc/passwd"]
    for opts in ([], ["-z"], ["-L"]):
        p = subprocess.run(["chroot", tree, "file", *opts, *names], env=ENV, capture_output=True, timeout=60)
        assert model(tree, ["file", *opts, *names]) == (p.returncode, p.stdout)


def test_file_dictionary_check(tree):
    """update-cracklib's question about each word list: ``file -z -b FILE | grep -q text``."""
    for name in ("/usr/share/dict/cracklib-small", "/usr/share/dict/american-english", "/srv/magic/words.gz"):
        p = subprocess.run(["chroot", tree, "file", "-z", "-b", name], env=ENV, capture_output=True, timeout=60)
        got = model(tree, ["file", "-z", "-b", name])
        assert got == (0, p.stdout) and b"text" in p.stdout


def test_file_defers(tree):
    """What is not modelled defers (an ELF file, JSON nested deeper than the model recurses,
    an option, a MAGIC variable)."""
    assert model(tree, ["file", "/usr/bin/ls"]) is None
    assert model(tree, ["file", "/srv/magic/json-deep"]) is None
    assert model(tree, ["file", "-z", "/srv/magic/zlib-header-text"]) is None
    assert model(tree, ["file", "-i", "/srv/magic/csv"]) is None
    inv = Invocation(argv=["file", "/srv/magic/csv"], fs=HostDirFS(tree), env={**ENV, "MAGIC": "/x"}, models=MODELS)
    with pytest.raises(Defer):
        MODELS["file"](inv)


def test_file_defers_another_database_version(tree):
    """A magic.mgc of another version (here 17) is not read: the invocation defers naming it;
    so does an /etc/magic with entries of its own."""
    fs = Overlay(HostDirFS(tree))
    data = bytearray(fs.read_bytes("/usr/lib/file/magic.mgc"))
    data[4] = 17
    fs.write_bytes("/usr/lib/file/magic.mgc", bytes(data))
    inv = Invocation(argv=["file", "/srv/magic/csv"], fs=fs, env=dict(ENV), models=MODELS)
    with pytest.raises(Defer, match="magic file version 17"):
        MODELS["file"](inv)
    fs = Overlay(HostDirFS(tree))
    fs.write_bytes("/etc/magic", b"# local\n0 string NUWA Nuwa test data\n")
    inv = Invocation(argv=["file", "/srv/magic/csv"], fs=fs, env=dict(ENV), models=MODELS)
    with pytest.raises(Defer, match="/etc/magic holds magic entries"):
        MODELS["file"](inv)


@pytest.mark.parametrize("pattern", [
    "(a*)*x",  # a repeated body that can match the empty string
    "(ab|c)+x",  # alternatives that are not single characters
    "(.*b*)*x",  # '.' repeated beside another unbounded atom
    "(a|)*x",  # an empty alternative
])
def test_ere_refuses_backtracking_groups(pattern):
    """A repeated group that makes Python's backtracking engine exponential on a failing
    search (glibc's matcher is not) is refused, so `file` defers instead of hanging on a
    hostile file or database: one such regex of the real database took minutes on a C++
    header before this rule."""
    with pytest.raises(Unsupported, match="backtracks|empty alternative"):
        translate(pattern)


def test_ere_keeps_safe_groups_and_rewrites_any_string():
    """Groups that cannot backtrack exponentially stay; ``(.*[\\n]*)*``, the one such group of
    the database, becomes the same language (any string) without the nested repetition."""
    assert re.fullmatch(translate("(ab)+c"), "ababc")
    assert re.fullmatch(translate("x(a|b)*y"), "xabbay")
    any_string = translate("(.*[\n]*)*")
    assert "[\\s\\S]*" in any_string
    assert re.fullmatch(any_string, "line one\nline two\n\n")
