"""Differential tests of the text-utility models against GNU coreutils 9.1 / diffutils 3.8."""

import pytest

from cmdharness import compare

SORT_IN = (b"banana 3\napple 10\ncherry 2\napple 2\nBanana 1\n  date 7\n10 x\n9 y\n-1 z\n1.5 w\n"
           b"apple 10\n\nfoo-1.10\nfoo-1.9\nfoo-1.9~rc1\n")
COLON = b"root:x:0:0\nwww:x:33:33\nbin:x:2:2\nnobody:x:65534:65534\nsys:x:3:3\n"
UNIQ_IN = b"a\na\nb\nc\nc\nc\nA\na\n\n\nd d\nd  d\n"

CASES = [
    # cat
    ("cat f1", b""), ("cat f1 f2", b""), ("cat nonexist f1", b""), ("cat d", b""), ("cat", b"in\n"),
    ("cat - f1", b"stdin\n"), ("cat f1 - f1", b"x"), ("cat lf", b""), ("cat dangling", b""), ("cat nonl empty", b""),
    ("cat -u f1", b""),
    # head / tail
    ("head lines", b""), ("head -n 3 lines", b""), ("head -n3 lines", b""), ("head -3 lines", b""),
    ("head -n -3 lines", b""), ("head -c 5 lines", b""), ("head -c -5 lines", b""), ("head -n 0 lines", b""),
    ("head -1 f1 f2", b""), ("head -q -n1 f1 f2", b""), ("head -v f1", b""), ("head -n x lines", b""),
    ("head nonexist", b""), ("head d", b""), ("head -n 2", b"a\nb\nc\n"), ("head -n 1 nonl", b""),
    ("head -n 2 f1 nonexist f2", b""), ("head -c 1k lines", b""), ("head -n", b""),
    ("tail lines", b""), ("tail -n 3 lines", b""), ("tail -3 lines", b""), ("tail -n +3 lines", b""),
    ("tail +3 lines", b""), ("tail -c 5 lines", b""), ("tail -c +5 lines", b""), ("tail -n 0 lines", b""),
    ("tail -n 1 nonl", b""), ("tail -1 f1 f2", b""), ("tail -1 f1", b""), ("tail nonexist", b""), ("tail d", b""),
    ("tail -n 2", b"a\nb\nc"), ("tail -n +1 f1", b""), ("tail -n +0 f1", b""), ("tail -qn1 f1 f2", b""),
    # cut
    ("cut -d: -f1 etc/passwd", b""), ("cut -d : -f 1,3 table", b""), ("cut -d: -f3- table", b""),
    ("cut -d: -f-2 table", b""), ("cut -f1", b"a\tb\nc\n"), ("cut -s -f2", b"a\tb\nc\n"),
    ("cut -c1-3 lines", b""), ("cut -c2,4 lines", b""), ("cut -b1 lines", b""), ("cut -c3- lines", b""),
    ("cut -d' ' -f2", b"a b c\nd e\nf\n"), ("cut -d: --complement -f2 table", b""),
    ("cut -d: -f1,3 --output-delimiter=, table", b""), ("cut lines", b""), ("cut -f0 lines", b""),
    ("cut -d ab -f1 lines", b""), ("cut -f3-1 lines", b""), ("cut -d: -f1 nonexist", b""),
    ("cut -d= -f2", b"foo=bar=baz\nx=\n"), ("cut -c1-2,5-", b"abcdefgh\n"), ("cut -d: -f2 -s", b"nocolon\n"), ("cut -f a lines", b""), ("cut -f - lines", b""),
    ("cut -f 1,,2 lines", b""), ("cut -f 0-2 lines", b""), ("cut -f -0 lines", b""),
    # tsort (mkinitramfs: get_prereq_pairs | tsort)
    ("tsort", b"udev udev\ndmsetup dmsetup\nudev dmsetup\nfsck fsck\nkmod kmod\nzz zz\n"),
    ("tsort", b"a b b c a c d a e e\nf b f a\n"), ("tsort", b"x y y z w z q w\n"), ("tsort", b"a b c\n"),
    ("tsort", b""), ("tsort", b"c c b b a a\n"), ("tsort nonexist", b""), ("tsort -", b"b a\n"),
    # loops: reported and broken one relation at a time (emacsen-common's lib.pl meets them)
    ("tsort", b"a b b a"), ("tsort", b"a b b c c a d d"), ("tsort", b"a b b a c d d c"),
    ("tsort", b"x y y z z x y w w y q q"), ("tsort", b"a a b b a b b c c a c d d b"),
    ("tsort", b"elpa-f elpa-f emacsen-common elpa-f elpa-s elpa-f elpa-dash elpa-f emacsen-common emacsen-common "
              b"emacsen-common emacsen-common elpa-s emacsen-common elpa-dash emacsen-common elpa-s elpa-s "
              b"emacsen-common elpa-s elpa-dash elpa-dash emacsen-common elpa-dash\n"),
    # tr
    ("tr a-z A-Z", b"Hello World\n"), ("tr -d '\\n'", b"a\nb\n"), ("tr -s ' '", b"a   b  c\n"),
    ("tr -d '[:space:]'", b" a b\tc\n"), ("tr '[:upper:]' '[:lower:]'", b"HeLLo\n"), ("tr -cd '[:alnum:]'", b"a-b_c!1\n"),
    ("tr -c 'a-z' '_'", b"ab-CD\n"), ("tr abc xy", b"aabbcc\n"), ("tr -t abc xy", b"aabbcc\n"), ("tr -s a-z", b"aabbccdd\n"),
    ("tr '\\n' ' '", b"a\nb\n"), ("tr -d '\\r'", b"a\r\nb\r\n"), ("tr ',' '\\n'", b"a,b,c"), ("tr -ds a b", b"aabbcc"),
    ("tr", b""), ("tr a", b""), ("tr -d a b", b""), ("tr z-a x", b""), ("tr '[:foo:]' x", b""),
    ("tr '[a*]' x", b"a"), ("tr a '[x*]'", b"aaa"), ("tr abc '[x*2]y'", b"abc"), ("tr -d '\\055'", b"a-b"),
    ("tr '[=a=]' b", b"aa"), ("tr -s '\\n'", b"a\n\n\nb\n"), ("tr '[:lower:]' '[:upper:]'", b"mixed Case 1\n"),
    # sort
    ("sort", SORT_IN), ("sort -r", SORT_IN), ("sort -n", SORT_IN), ("sort -nr", SORT_IN), ("sort -u", SORT_IN),
    ("sort -k2", SORT_IN), ("sort -k2n", SORT_IN), ("sort -k2,2n", SORT_IN), ("sort -k2 -n", SORT_IN),
    ("sort -f", SORT_IN), ("sort -V", SORT_IN), ("sort -b", SORT_IN), ("sort -t: -k3n", COLON),
    ("sort -t: -k3,3n -r", COLON), ("sort -t : -k1,1", COLON), ("sort -t: -k3 -n -u", COLON),
    ("sort -k1,1 -k2,2nr", SORT_IN), ("sort -s -k1,1", SORT_IN), ("sort f2 f1", b""), ("sort nonexist", b""),
    ("sort -o out lines", b""), ("sort -c lines", b""), ("sort -c", b"a\nb\n"), ("sort -un", b"1\n01\n2\n1.0\n"),
    ("sort -t: -k2.2", b"a:xb\nb:ya\nc:za\n"), ("sort -k2b,2", b"x  b\ny a\nz   c\n"), ("sort -V", b"1.10\n1.9\n1.9.1\n1.a\n"),
    ("sort nonl lines", b""), ("sort -ru", b"b\na\nb\n"), ("sort -n", b"x\n-\n.5\n-0\n0\n"),
    # uniq
    ("uniq", UNIQ_IN), ("uniq -c", UNIQ_IN), ("uniq -d", UNIQ_IN), ("uniq -u", UNIQ_IN), ("uniq -i", UNIQ_IN),
    ("uniq -ci", UNIQ_IN), ("uniq -f1", UNIQ_IN), ("uniq -s1", UNIQ_IN), ("uniq -w1", UNIQ_IN), ("uniq lines", b""),
    ("uniq lines out", b""), ("uniq nonexist", b""), ("uniq -cd", UNIQ_IN), ("uniq", b"a\na"),
    # wc
    ("wc f1", b""), ("wc -l f1", b""), ("wc -l lines f1", b""), ("wc f1 f2", b""), ("wc", b"a b\nc\n"),
    ("wc -l", b"a\nb\n"), ("wc -c f1 f2", b""), ("wc -w conf", b""), ("wc d", b""), ("wc nonexist", b""),
    ("wc -lc lines", b""), ("wc -m f1", b""), ("wc -l nonl", b""), ("wc -l f1 -", b"x\n"), ("wc empty", b""),
    # digests
    ("md5sum f1", b""), ("md5sum f1 f2 nonexist", b""), ("md5sum", b"x"), ("md5sum - f1", b"x"), ("md5sum d", b""),
    ("sha256sum f1 lines", b""), ("sha1sum f1", b""), ("sha512sum f1", b""), ("md5sum -b f1", b""),
    ("md5sum -c", b"b1946ac92492d2347c6235b4d2611184  f1\n"), ("md5sum -c", b"00000000000000000000000000000000  f1\n"),
    ("md5sum -c --quiet", b"b1946ac92492d2347c6235b4d2611184  f1\n00000000000000000000000000000000  f2\n"),
    ("md5sum -c --status", b"00000000000000000000000000000000  f1\n"), ("md5sum -c", b"garbage\n"),
    ("md5sum -c", b"b1946ac92492d2347c6235b4d2611184  nonexist\n"),
    ("md5sum -c", b"b1946ac92492d2347c6235b4d2611184  f1\nbad line\n"),
    ("md5sum -c --strict", b"b1946ac92492d2347c6235b4d2611184  f1\nbad line\n"),
    ("md5sum -c --ignore-missing", b"b1946ac92492d2347c6235b4d2611184  nonexist\nb1946ac92492d2347c6235b4d2611184  f1\n"),
    ("sha256sum -c", b"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 *f1\n"),
    ("md5sum -c nonexist", b""),
    # cmp / diff
    ("cmp f1 f1", b""), ("cmp f1 f2", b""), ("cmp -s f1 f2", b""), ("cmp f1 nonexist", b""), ("cmp h1 h2", b""),
    ("cmp lines nonl", b""), ("cmp f1", b"hello\n"), ("cmp f1 -", b"hello\nmore"), ("cmp empty f1", b""),
    ("cmp f1 empty", b""), ("cmp -s f1 nonexist", b""), ("cmp d/a d/b", b""),
    ("diff f1 f1", b""), ("diff -q f1 f2", b""), ("diff -q f1 h1", b""), ("diff -q h1 h2", b""),
    ("diff f1 nonexist", b""), ("diff -q nonexist f1", b""), ("diff -s f1 f1", b""), ("diff -q f1 -", b"hello\n"),
    # stat
    ("stat -c '%a %A %U %G %u %g %s %n %F %h' f1 f2 exe d empty", b""), ("stat -c %N lf dangling f1", b""),
    ("stat -c %F lf fifo", b""), ("stat -L -c %F lf", b""), ("stat -c %a nonexist", b""), ("stat -L -c %a dangling", b""),
    ("stat -c '%U:%G' f2", b""), ("stat -c %Y f1", b""), ("stat --printf '%a\\n%s\\n' f1", b""),
    ("stat -c '%h' h1 f1", b""), ("stat --format=%n%% f1", b""), ("stat -c %y f1", b""), ("stat -c '%5a|%-5s|' f1", b""),
    ("stat -c %f d", b""),
]


@pytest.mark.parametrize("cmd,stdin", CASES)
def test_text(tmp_path, cmd, stdin):
    compare(tmp_path, cmd, stdin=stdin)
