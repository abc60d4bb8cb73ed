"""The lexgrog scanner of the mandb model against man-db's own ``lexgrog`` (2.11.2) in a chroot.

``lexgrog -m -f -w FILE...`` runs the same ``find_name`` and ``parse_descriptions`` mandb
runs and prints, per description, ``FILE (FILTERS): "NAME - WHATIS"`` (or ``FILE: parse
failed``). Each case below is a small page built around one construct of a NAME section (roff
escapes, glyphs, Pod::Man strings, mdoc macros, fill mode, separators, comments, other
languages' section names, preprocessor lines); the model's scanner must print the same lines.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import bookworm_tree, copy_tree
from nuwa.script.commands.mandb.lexgrog import Unsupported, find_name
from nuwa.script.commands.mandb.store import parse_descriptions

TH = ".TH X 1\n"
CASES = [
    TH + ".SH NAME\nls \\- list directory contents\n",
    TH + ".SH NAME\nls, dir, vdir \\- list directory contents\n.SH SYNOPSIS\n",
    TH + '.SH "NAME"\nfoo \\- quoted section name\n',
    TH + ".SH \\fBNAME\\fR\nfoo \\- styled section name\n",
    TH + ".SH NAME\n.B foo\n\\- typeface request first\n",
    TH + '.SH NAME\n.B "foo bar"\n\\- quoted typeface argument\n',
    TH + ".SH NAME\nfoo \\(em em dash separator\n",
    TH + ".SH NAME\nfoo \\[en] bracket dash\n",
    TH + ".SH NAME\nfoo -- double dash\n",
    TH + ".SH NAME\nfoo\\-bar \\- escaped hyphen in the name\n",
    TH + ".SH NAME\nfoo \\- glyphs \\(lqq\\(rq \\(:u \\[ss] \\(Fi \\(zz unknown\n",
    TH + ".SH NAME\nfoo \\- perldoc \\*(C`code\\*(C' and \\*(L\"x\\*(R\" and \\*[PI] and \\*Q\n",
    TH + ".SH NAME\nfoo \\- fonts \\fIit\\fP \\f(CWcw\\fR \\s-1small\\s0 \\s+2x\n",
    TH + ".SH NAME\nfoo \\- \\e backslash \\. dot \\' acute \\` grave \\(aa \\(ga\n",
    TH + ".SH NAME\nfoo \\- spaces\\ \\0\\~\\tend \\(ru \\(ul\n",
    TH + ".SH NAME\nfoo \\- funcs \\h'3m'x \\w'abc'y \\kxz \\nAa \\n(xyb \\o\"ab\" \\$1\n",
    TH + ".SH NAME\nfoo \\- controls \\&amp \\| \\^ \\% \\c\ncontinued \\{ \\}\n",
    TH + ".SH NAME\nfoo \\- comment \\\" trailing\nnext line\n",
    TH + ".SH NAME\nfoo \\- text\n.\\\" a comment line\nmore text\n",
    TH + ".SH NAME\nfoo \\- first\n.br\nbar \\- second\n.PP\nbaz \\- third\n",
    TH + ".SH NAME\nfoo \\- one\n.IP x\nbar \\- two\n.RS 4\nbaz \\- three\n.RE\n",
    TH + ".SH NAME\n.nf\nfoo \\- no fill\nbar \\- second line\n.fi\n",
    TH + ".SH NAME\nfoo \\- stops at\n.sp\nbar \\- not this\n",
    TH + ".SH NAME\nfoo \\- stops at a request\n.TP\nbar \\- no\n",
    TH + ".SH NAME\nfoo \\- ends at\n.SH DESCRIPTION\n.TS\nx\n.TE\n.EQ\n.EN\n.PS\n.G1\n.R1\n.vS\n",
    TH + ".SH NAME\nfoo \\- refer\n.SH X\n.[\nx\n.]\n",
    TH + ".SH NAME\nfoo \\- ends at an empty line\n\nbar \\- not this\n",
    TH + ".SH NAME\n.IX Title \"foo 1\"\n.IX Name \"foo - x\"\nfoo \\- after .IX\n",
    TH + ".SH NAME\n.PD 0\nfoo \\- after .PD\n",
    TH + ".SH NAME\nfoo , bar ,baz \\- commas\n",
    TH + ".SH NAME\nfoo bar \\- a name with a space\n",
    TH + ".SH NAME\nfoo\n.SH DESCRIPTION\n",
    TH + ".SH NAME\nfoo \\- x\nbar\n",
    TH + ".SH DESCRIPTION\nno name section\n",
    TH + ".SH NAME\n",
    TH + ".SH NOMBRE\nfoo \\- Spanish\n",
    TH + ".SH NOM\nfoo \\- French\n",
    TH + ".SH NOMEN\nfoo \\- Latin\n",
    TH + ".SH BEZEICHNUNG\nfoo \\- German\n",
    TH + ".SH НАЗВАНИЕ\nfoo \\- Russian\n",
    TH + ".SH 名前\nfoo \\- Japanese\n",
    TH + ".SH 名称\nfoo \\- Chinese\n",
    TH + ".SH NAME\n.if n .ds x y\nfoo \\- stops at .if\n",
    TH + ".SH NAME\nfoo \\- \\(hy\\(mi\\- dashes in the description\n",
    TH + "'\\\" t\n.SH NAME\nfoo \\- tbl comment line\n",
    TH + ".SH NAME\r\nfoo \\- carriage returns\r\n.SH X\r\n",
    TH + ".SH NAME\nfoo \\- function() \\(\\|\\) hpux\n",
    TH + ".SH NAME\nfoo \\- text .SH mid-line\n",
    "text before\n.SH NAME\nfoo \\- no .TH\n",
    ".Dd $Mdocdate$\n.Dt FOO 1\n.Os\n.Sh NAME\n.Nm foo ,\n.Nm bar\n.Nd mdoc names\n.Sh SYNOPSIS\n",
    ".Dd x\n.Sh NAME\n.Nm foo\n.Nd from\n.At v7\nand\n.Bx 4.4 Lite2\nand\n.Bsx\n.Fx 5.0\n.Nx\n.Ox 3.1\n.Ux\n",
    ".Dd x\n.Sh NAME\n.Nm foo\n.Nd a\n.Dq quoted words\nafter\n.Sh X\n",
    ".Dd x\n.Sh NAME\n.Nm foo\n.Nd b\n.Bx\n.At\n.At V.4\n.Bx -alpha\n",
    ".Dd x\n.Sh NAME\n.Nm foo\n.Nm bar\n.Nd c\n.Tn ASCII\ntext\n",
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return copy_tree(bookworm_tree(("man-db", "manpages", "manpages-de", "netcat-openbsd", "openssh-client")),
                     str(tmp_path_factory.mktemp("lexgrog") / "root"))


def model_lines(name: str, data: bytes) -> list[str]:
    """What ``lexgrog -m -f -w NAME`` prints for a page holding ``data``."""
    whatis, filters = find_name(data)
    out = []
    if whatis:
        for n, w in parse_descriptions(None, whatis.decode("latin-1")):
            if n and w is not None:
                out.append(f'{name} ({filters}): "{n} - {w}"')
    return out or [f"{name}: parse failed"]


def test_lexgrog_cases(root):
    names = []
    for i, text in enumerate(CASES):
        name = f"/tmp/lg/x{i}.1"
        os.makedirs(os.path.join(root, "tmp/lg"), exist_ok=True)
        with open(os.path.join(root, name[1:]), "wb") as f:
            f.write(text.encode())
        names.append(name)
    p = subprocess.run(["chroot", root, "lexgrog", "-m", "-f", "-w", *names], capture_output=True,
                       env={"LC_ALL": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    real = p.stdout.decode("utf-8", "surrogateescape").splitlines()
    model = []
    for name, text in zip(names, CASES):
        model += [line.encode("latin-1").decode("utf-8", "surrogateescape")
                  for line in model_lines(name, text.encode())]
    assert model == real


def test_default_rule_defers():
    """``.Dq`` at the end of a line: flex's default rule would echo the line break."""
    with pytest.raises(Unsupported):
        find_name(b".Dd x\n.Sh NAME\n.Nm foo\n.Nd a\n.Dq\nx\n")
