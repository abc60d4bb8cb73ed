"""Differential tests of the sed model against GNU sed 4.9 (see cmdharness)."""

import os
import stat

import pytest

from cmdharness import compare, run_model
from nuwa.script.context import Defer

IN = b"alpha beta\ngamma delta\n# comment\nkey=value\n\nlast line\n"

CASES = [
    # update-ca-certificates: "add trailing newline to certificate, if it is missing"
    ("sed -e '$a\\'", b"no newline"), ("sed -e '$a\\'", IN), ("sed '1a\\'", b"x\ny"),
    ("sed p", IN), ("sed -n p", IN), ("sed -n 2p", IN), ("sed 2d", IN), ("sed '$d'", IN), ("sed -n '$p'", IN),
    ("sed 1,3d", IN), ("sed '2,$d'", IN), ("sed '/^#/d'", IN), ("sed '/^$/d'", IN), ("sed '/^#/!d'", IN),
    ("sed -n '/gamma/,/key/p'", IN), ("sed '/gamma/,+1d'", IN), ("sed '0,/a/s//X/'", IN), ("sed '1~2d'", IN),
    ("sed 's/a/X/'", IN), ("sed 's/a/X/g'", IN), ("sed 's/a/X/2'", IN), ("sed 's/a/X/2g'", IN),
    ("sed -n 's/a/X/p'", IN), ("sed 's/A/x/I'", IN), ("sed 's/\\(.*\\)=\\(.*\\)/\\2=\\1/'", IN),
    ("sed -E 's/(.*)=(.*)/\\2=\\1/'", IN), ("sed -r 's/(a|e)+/<&>/g'", IN), ("sed 's/a\\+/+/g'", IN),
    ("sed 's/[[:space:]]\\+/_/g'", IN), ("sed 's/^[^=]*=//'", IN), ("sed 's|/|:|g'", b"/usr/bin/x\n"),
    ("sed 's#a#\\##g'", IN), ("sed 's/.*/\\U&/'", IN), ("sed 's/\\w\\+/\\u&/g'", IN), ("sed 's/x*/-/g'", b"abc\n"),
    ("sed 's/b*/X/2'", b"abbc\n"), ("sed 's/$/ END/'", IN), ("sed 's/^/> /'", IN), ("sed 's/a/\\n/'", IN),
    ("sed 's/\\<a/A/g'", IN), ("sed 's/a\\>/A/g'", IN), ("sed 's/e\\{2\\}/E/'", b"ee e eee\n"),
    ("sed -E 's/e{2,}/E/'", b"ee e eee\n"), ("sed 's/\\./!/g'", b"a.b.c\n"), ("sed 's/[.]/!/g'", b"a.b.c\n"),
    ("sed 's/[]]/R/g'", b"a]b\n"), ("sed 's/a*b/X/'", b"aaab\n"), ("sed 's/*/S/'", b"a*b\n"),
    ("sed 's/^*/S/'", b"*b\n"), ("sed -e 's/a/1/' -e 's/b/2/'", IN), ("sed 's/a/1/;s/b/2/'", IN),
    ("sed '2i\\inserted'", IN), ("sed '2a appended'", IN), ("sed '$a\\\nnew last'", IN), ("sed '1i first'", IN),
    ("sed '/key/c\\changed'", IN), ("sed '2,3c\\changed'", IN), ("sed '/gamma/{s/a/A/g;p}'", IN),
    ("sed -n '/alpha/{n;p}'", IN), ("sed 'N;s/\\n/ /'", IN), ("sed '$!N;s/\\n/+/'", IN), ("sed =", IN),
    ("sed -n '$='", IN), ("sed 'y/abc/xyz/'", IN), ("sed '1!G;h;$!d'", IN), ("sed -n 'h;n;G;p'", IN),
    ("sed '/alpha/q'", IN), ("sed '2q5'", IN), ("sed '/gamma/Q'", IN), ("sed -n '/key/{p;q}'", IN),
    ("sed ':a;N;$!ba;s/\\n/,/g'", IN), ("sed -e :a -e '$!N;s/\\n//;ta'", IN), ("sed 's/a/A/;T;s/$/!/'", IN),
    ("sed 's/a/A/;tx;s/$/?/;:x'", IN), ("sed '$!{h;d};x;G'", IN), ("sed 'P;D'", IN), ("sed -s 1d f1 f2", b""),
    ("sed 1d f1 f2", b""), ("sed -n '$p' f1 f2", b""), ("sed p nonexist", b""), ("sed p nonexist f1", b""),
    ("sed p d", b""), ("sed 's/o/0/' nonl", b""), ("sed -n p nonl", b""), ("sed '$a x' nonl", b""),
    ("sed 'k'", IN), ("sed 's/a/b'", IN), ("sed -n '/x/{p'", IN), ("sed 'bfoo'", IN),
    ("sed --expression=p -n", IN), ("sed -n -e 2p -e 4p", IN), ("sed '/[0-9]\\{3\\}/d'", b"12\n123\n1234\n"),
    ("sed 's/\\(a\\)\\(b\\)/\\2\\1/g'", b"abab\n"), ("sed -E 's/^([^ ]+) (.*)$/\\2 \\1/'", IN),
    ("sed 's/#.*//'", IN), ("sed '/^\\s*#/d'", IN), ("sed 's/\\s\\+$//'", b"trail   \nx \n"),
    ("sed 's/^\\(PermitRootLogin\\).*/\\1 yes/'", b"PermitRootLogin no\n#PermitRootLogin no\n"),
    ("sed -e '/^Port/s/22/2222/'", b"Port 22\n"), ("sed 's,^\\(foo=\\).*,\\1new,'", b"foo=bar\nfoox=1\n"),
    ("sed -n 's/^Version: //p'", b"Package: x\nVersion: 1.2-3\n"), ("sed '/^$/N;/\\n$/D'", b"a\n\n\n\nb\n"),
    ("sed 's/[^[:alnum:]]//g'", b"a-b_c!1\n"), ("sed 's/[a-c]/X/g'", b"abcdef\n"), ("sed 's/[^a-c]/X/g'", b"abcdef\n"),
    ("sed '2,1d'", IN), ("sed '/gamma/,1d'", IN), ("sed '2,~4d'", IN), ("sed -n '2{p;p}'", IN), ("sed 'w out'", IN),
    ("sed -n '/a/w out'", IN), ("sed 's/a/A/w out'", IN), ("sed 'r f1'", b"x\ny\n"), ("sed '1r nonexist'", b"x\n"),
    ("sed -z 's/\\n/,/g'", IN), ("sed G", IN), ("sed -n 'x;p'", IN), ("sed '1h;2g'", IN), ("sed 's/.*/&&/'", IN),
    ("sed 's/l/L/3'", b"lllll\n"), ("sed 's/\\//|/g'", b"/a/b\n"), ("sed '\\,x,d'", b"x\ny\n"),
    ("sed '/A/Id'", b"a\nb\n"), ("sed 's/a\\|b/X/g'", b"abc\n"), ("sed -E 's/a|b/X/g'", b"abc\n"),
    ("sed 's/(a)/X/'", b"(a)\n"), ("sed -E 's/\\(a\\)/X/'", b"(a)\n"), ("sed 's/a{2}/X/'", b"a{2}\n"),
    ("sed 's/a?/X/'", b"a?\n"), ("sed 's/a\\?/X/g'", b"ba\n"), ("sed '/^key/ s/=.*/=new/'", IN),
    ("sed -n '/alpha/,$ p'", IN), ("sed '2 d'", IN), ("sed '$ !d'", IN), ("sed 'y/\\n/ /'", IN),
    # a label ends at white space and no ';' is needed after it (squid's postinst: ":end q")
    ("sed -ne 's/a/X/p; t end; d; :end q'", IN), ("sed -n 'b end x\n:end\np'", IN), ("sed -n ':a b;p'", IN),
    ("sed -n 'ba;:a\tp'", IN), ("sed ':x y;p'", IN), ("sed 'y/abc/'", IN), ("sed 'y'", IN),
]

INPLACE = [
    "sed -i 's/hello/bye/' f1", "sed -i.bak 's/hello/bye/' f1", "sed -i -e '1d' f2", "sed -i '$a extra' lines",
    "sed -i 's/o/0/g' f1 f2", "sed -i 's/x/y/' nonexist", "sed -i 's/x/y/' d", "sed -i 1d lf",
    "sed -i --follow-symlinks 1d lf", "sed -i 's/e/E/' d/up", "sed -i '/^#/d' conf", "sed -i 's/^Port .*/Port 2222/' conf",
    "sed -i p", "sed p d f1", "sed -n p f1 d", "sed -i -n '2p' lines", "sed -i '2q' lines", "sed -i 's/a/b/' exe", "sed -ibak 1d f1",
    "sed --in-place=.orig '1d' f1", "sed -i 's/h/H/' h1", "sed -i 's/end/END/' nonl", "sed -i 1d empty",
    "sed -i '$!d' lines f1",
]


@pytest.mark.parametrize("cmd,stdin", CASES)
def test_sed(tmp_path, cmd, stdin):
    compare(tmp_path, cmd, stdin=stdin)


@pytest.mark.parametrize("cmd", INPLACE)
def test_sed_inplace(tmp_path, cmd):
    compare(tmp_path, cmd)


def _devices(root):
    os.mknod(os.path.join(root, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(os.path.join(root, "zero"), stat.S_IFCHR | 0o666, os.makedev(1, 5))


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
@pytest.mark.parametrize("cmd", [
    # ca-certificates' config reads /dev/null when /etc/ca-certificates.conf does not exist yet
    "sed -ne 's/^!\\(.*\\)/\\1/p' null", "sed -e '/^#/d' -e '/^!/d' null f1", "sed -n '$=' null",
])
def test_sed_reads_the_null_device_as_empty(tmp_path, cmd):
    compare(tmp_path, cmd, setup=_devices)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_sed_defers_on_another_device(tmp_path):
    root = str(tmp_path / "m")
    os.mkdir(root)
    _devices(root)
    with pytest.raises(Defer, match="special file 'zero'"):
        run_model(root, ["sed", "1q", "zero"], b"", 0o022)
