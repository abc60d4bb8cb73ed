"""Differential tests of the awk model against Debian 12's awk (mawk 1.3.4) (see cmdharness)."""

import pytest

from cmdharness import compare, deferred

IN = b"root x 0 0\ndaemon x 1 1\nwww-data x 33 33\n\nlast  line   here\n"
PYFILES = (b"/.\n/usr\n/usr/lib/python3/dist-packages/foo\n/usr/lib/python3/dist-packages/foo/__init__.py\n"
           b"/usr/lib/python3/dist-packages/foo/bar.py\n/usr/share/doc/foo/x.pyc\n/usr/bin/tool.py\n")
KV = b"Package: foo\nVersion: 1.2-3\nStatus: install ok installed\n"

CASES = [
    ("awk '{print $1}'", IN), ("awk '{print $NF}'", IN), ("awk '{print NF}'", IN), ("awk '{print NR\": \"$0}'", IN),
    ("awk -F: '{print $1}' etc/passwd", b""), ("awk -F : '$3 == 0 {print $1}' etc/passwd", b""),
    ("awk -F: '$3 >= 1000' etc/passwd", b""), ("awk '/www/'", IN), ("awk '!/x/'", IN), ("awk '$1 ~ /^d/'", IN),
    ("awk '$1 !~ /^d/ {print $2}'", IN), ("awk 'NR==2'", IN), ("awk 'NR>1 && NR<4'", IN), ("awk 'END{print NR}'", IN),
    ("awk 'BEGIN{print \"start\"} {n++} END{print n}'", IN), ("awk '{s+=$3} END{print s}'", IN),
    ("awk '{printf \"%s=%d\\n\", $1, $3}'", IN), ("awk '{printf(\"%-10s|%5.2f\\n\", $1, $3)}'", IN),
    ("awk '/^Version:/ {print $2}'", KV), ("awk -F': ' '$1==\"Status\" {print $2}'", KV), ("awk 'NF'", IN),
    ("awk '{print length($1)}'", IN), ("awk '{print substr($1, 2, 3)}'", IN), ("awk '{print toupper($1)}'", IN),
    ("awk '{print index($1, \"a\")}'", IN), ("awk '{$2=\"Y\"; print}'", IN), ("awk '{print $1, $3}'", IN),
    ("awk 'BEGIN{OFS=\":\"} {$1=$1; print}'", IN), ("awk -v x=5 'BEGIN{print x+1}'", b""),
    ("awk '{if ($3 > 10) print \"big\"; else print \"small\"}'", IN), ("awk 'NR==1{next} {print}'", IN),
    ("awk '{print; exit}'", IN), ("awk 'BEGIN{exit 3}'", b""),
    ("awk 'BEGIN { printf \"%c%c\\n\", 65, \"bc\" }'", b""), ("awk 'NF {print $(NF-1)}'", IN), ("awk '$3%2==1'", IN),
    ("awk '{print 1/3}'", b"x\n"), ("awk '{print $3/2}'", IN), ("awk 'x == 0 {print \"unset\"}'", b"a\n"),
    ("awk '$1 == \"root\" || $1 == \"daemon\"'", IN), ("awk '{ print ($3 > 5 ? \"hi\" : \"lo\") }'", IN),
    ("awk 'length > 10'", IN), ("awk '{print}' f1 f2", b""), ("awk '{print FILENAME\":\"FNR}' f1 f2", b""),
    ("awk '{print $1}' nonexist", b""), ("awk -F, '{print $2}'", b"a,b,c\n,x\n"), ("awk '{ n = n $1 } END { print n }'", IN),
    ("awk 'BEGIN{x=\"10\"; y=9; print (x>y)}'", b""), ("awk '$3 > 9'", IN), ("awk '{print int($3/10)}'", IN),
    # sprintf, sub, gsub, NF assignment (dh_python3's prerm snippets, locales' config)
    ("awk -F/ 'BEGIN {OFS=\"/\"} /\\.py$/ {$NF=sprintf(\"__pycache__/%s.*.py[co]\", substr($NF,1,length($NF)-3)); print}'",
     PYFILES),
    ("awk -F/ 'BEGIN {OFS=\"/\"} /\\.py$/ {NF--; print}'", PYFILES),
    ("awk '/Maximum length/ {print int($NF / 4)}'", b"Maximum length of command we could actually use: 2090538\n"),
    ("awk '/^LANG=/ {gsub(\"\\\"\", \"\"); sub(\"LANG=\", \"\"); lang=$0;} END {print lang}'",
     b'FOO=1\nLANG="en_US.UTF-8"\nLANG=C.UTF-8x\n'),
    ("awk '{n=gsub(/o/,\"0\"); print n, $0}'", IN + KV), ("awk '{sub(/[0-9]+/,\"<&>\"); print}'", IN),
    ("awk '{gsub(/x*/,\"-\"); print}'", b"abxd\nxx\n\nabc\n"), ("awk '{gsub(/$/,\"!\"); print}'", b"ab\n"),
    ("awk '{gsub(/^/,\">\"); print}'", b"ab\n"), ("awk '{gsub(\"a\",\"\\\\&\"); print}'", b"banana\n"),
    ("awk '{gsub(/a/,\"[&&]\", $1); print; print $1}'", b"aa ba\n"), ("awk '{x=$0; sub(/o+/,\"\",x); print x}'", IN),
    ("awk '{print sprintf(\"%05d|%-4s|%x\", $3, $1, $3)}'", IN), ("awk '{NF=2; print; print NF}'", IN),
    ("awk 'BEGIN{OFS=\"-\"} {NF=5; print}'", IN), ("awk '{$5=\"e\"; print NF; print}'", IN),
]


@pytest.mark.parametrize("cmd,stdin", CASES)
def test_awk(tmp_path, cmd, stdin):
    compare(tmp_path, cmd, stdin=stdin)


@pytest.mark.parametrize("cmd", ["awk -f prog f1", "awk '{print | \"sort\"}' f1",
                                 "awk '{print $1 > \"/dev/null\"}' f1", "awk '{getline x; print x}' f1",
                                 "awk 'BEGIN{system(\"true\")}' f1", "awk 'BEGIN{srand(); print rand()}' f1",
                                 "awk 'BEGIN{printf \"x\" > \"out\"}' f1", "awk 'BEGIN{while (1) n++}' f1",
                                 "awk 'function f(n){return f(n+1)} BEGIN{f(1)}' f1",
                                 "awk 'BEGIN{print match(\"a\", \"*a\")}' f1"])
def test_awk_deferred(tmp_path, cmd):
    assert deferred(tmp_path, cmd)
