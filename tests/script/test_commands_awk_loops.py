"""Differential tests of the awk model's arrays, loops, user functions, match and split
against Debian 12's awk (mawk 1.3.4-20200120) run on the same input (see cmdharness).

``for (k in a)`` order is mawk's hash-table order, so every case that loops over an array
checks that the port of mawk's array.c replays the same chain history (inserts, lookups
moving nodes to the front, deletes, table doubling, split vectors turned into tables).
"""

import os
import random
import shlex

import pytest

from cmdharness import build_tree, compare, deferred, run_model
from nuwa.script.context import Defer

IN = b"root x 0 0\ndaemon x 1 1\nwww-data x 33 33\n\nlast  line   here\nroot y 2 2\n"

# auditd 3.0.9's augenrules (/sbin/augenrules in the auditd .deb): its awk program verbatim
AUGENRULES = r'''
BEGIN   {
        minus_e = "";
        minus_D = "";
        minus_f = "";
        minus_b = "";
        rest = 0;
} {
        if (length($0) < 1) { next; }
        if (match($0, "^\\s*#")) { next; }
        if (match($0, "^\\s*-e")) { minus_e = $0; next; }
        if (match($0, "^\\s*-D\\s*$")) { minus_D = $0; next; }
        if (match($0, "^\\s*-f")) { minus_f = $0; next; }
        if (match($0, "^\\s*-b")) { minus_b = $0; next; }
        rules[rest++] = $0;
}
END     {
        printf "%s\n%s\n%s\n", minus_D, minus_b, minus_f;
        for (i = 0; i < rest; i++) { printf "%s\n", rules[i]; }
        printf "%s\n", minus_e;
}'''
RULES = (b"## comment\n  # indented\n-D\n-b 8192\n-w /etc/passwd -p wa\ns# starts with s\n-e 2\n\n-f 1\n"
         b" -a always,exit\nss-e 1\n")

LOOPS = [
    "awk '{for (i = 1; i <= NF; i++) print i, $i}'",
    "awk '{i = NF; while (i > 0) { printf \"%s \", $i; i-- } print \"\"}'",
    "awk '{i = 0; do { i++; if (i == 2) continue; if (i > 3) break; print NR, i } while (i < 10)}'",
    "awk 'BEGIN{for (;;) { n++; if (n >= 5) break } print n}'",
    "awk 'BEGIN{for (i = 0; i < 3; i++) for (j = 0; j < 3; j++) { if (j == i) continue; printf \"%d%d \", i, j } print \"\"}'",
    "awk 'BEGIN { while (i < 3) i++; print i; for (k = 0; k < 4; k++); print k }'",
    "awk 'BEGIN { x = 2 ^ 10; y = 2 ^ 0.5; print x, y, -2 ^ 2, 2 ^ 3 ^ 2, 7 % 3, -7 % 3 }'",
]
ARRAYS = [
    "awk '{a[$1]++} END{for (k in a) print k, a[k]}'",
    "awk '{n[NR] = $0} END{for (i = NR; i >= 1; i--) print n[i]}'",
    "awk '{for (i = 1; i <= NF; i++) w[$i]++} END{for (k in w) print k, w[k]}'",
    "awk 'BEGIN{a[1,2] = 3; a[\"x\", \"y\"]; for (k in a) { split(k, p, SUBSEP); print p[1], p[2] } print ((1,2) in a), ((2,1) in a)}'",
    "awk 'BEGIN{a[\"x\"]; if (\"x\" in a) print \"yes\"; if (!(\"y\" in a)) print \"no\"; print length(a)}'",
    "awk 'BEGIN{for (i = 0; i < 200; i++) a[i] = i * i; for (k in a) s = s \" \" k; print s}'",
    "awk 'BEGIN{for (i = 0; i < 1000; i++) a[\"k\" i] = i; n = 0; for (k in a) if (n++ < 40) s = s \" \" k; print s, length(a)}'",
    "awk 'BEGIN{for (i = 0; i < 900; i++) a[i]; for (i = 0; i < 900; i += 3) delete a[i]; for (k in a) s = s \" \" k; print s}'",
    "awk 'BEGIN{a[\"10\"]; a[9]; a[2]; a[\"b\"]; a[\"B\"]; a[1]; a[100]; a[0.5]; a[-3]; a[2147483648]; a[\"\"]; for (k in a) print \"[\" k \"]\"}'",
    "awk 'BEGIN{n = split(\"a b c d e\", a); a[7] = \"g\"; for (k in a) print k, a[k]; print n}'",
    "awk 'BEGIN{n = split(\"a b c d e\", a); x = (\"3\" in a); y = (9 in a); for (k in a) print k, a[k]; print x, y}'",
    "awk 'BEGIN{split(\"p q r\", a); delete a[2]; for (k in a) print k, a[k]; delete a; print length(a)}'",
    "awk 'BEGIN{a[1]; a[\"1\"] = \"s\"; b[\"2\"]; b[2] = \"n\"; for (k in a) print k, a[k]; for (k in b) print k, b[k]}'",
    "awk '{a[$1] = a[$1] \" \" NR} END{for (k in a) { delete a[k]; print k } print length(a)}'",
    "awk 'BEGIN{for (i = 0; i < 30; i++) { a[i]; x = (5 in a); a[\"s\" i] } for (k in a) s = s \" \" k; print s}'",
    "awk 'BEGIN{CONVFMT = \"%.2f\"; a[0.1234]; a[12]; for (k in a) print k}'",
    "awk 'BEGIN{x = a[\"nothing\"]; print length(a), (\"nothing\" in a)}'",
    # the target element is found before the right-hand side runs (mawk's AE_PUSHA order)
    "awk 'BEGIN{for (i = 0; i < 150; i++) a[\"k\" i] = a[\"k\" (i * 7 % 150)] i; for (k in a) s = s \" \" k; print s}'",
    "awk 'BEGIN{for (i = 0; i < 150; i++) a[\"k\" i] += a[\"k\" (i * 3 % 150)]++; for (k in a) s = s \" \" k; print s}'",
]
FUNCTIONS = [
    "awk 'function max(a, b) { return a > b ? a : b } {m = max(m, $3)} END{print m}'",
    "awk 'function fill(arr, n,   i) { for (i = 1; i <= n; i++) arr[i] = i * 10; return n } BEGIN{k = fill(t, 3); print k, t[2], i \"|\"}'",
    "awk 'function inc(x) { x++; return x } BEGIN{y = 1; print inc(y), y}'",
    "awk 'function fact(n) { return n <= 1 ? 1 : n * fact(n - 1) } BEGIN{print fact(10)}'",
    "awk 'function clear(a) { delete a } function put(a, k) { a[k] = k } BEGIN{put(z, \"q\"); put(z, \"r\"); print length(z); clear(z); print length(z)}'",
    "awk 'function noret() { x = 5 } BEGIN{v = noret(); print \"[\" v \"]\", x}'",
    "awk 'function f(a) { return g(a) } function g(b) { b[\"k\"] = 1; return length(b) } BEGIN{print f(arr), (\"k\" in arr)}'",
    "awk 'function out(s) { print \"<\" s \">\"; exit 3 } NR == 2 { out($1) } END{print \"end\"}'",
    "awk 'function f() { return /o/ } { print /o/, f(), NF / 2 }'",
]
MATCH_SPLIT = [
    "awk '{print match($0, /[0-9]+/), RSTART, RLENGTH}'",
    "awk '{if (match($0, \"o+t\")) print substr($0, RSTART, RLENGTH); else print RSTART, RLENGTH}'",
    "awk 'BEGIN{print (\"ab\" ~ /a|ab/), (\"xabcd\" ~ \"(a|ab)(c|bcd)\"), match(\"ab\", \"\"), RLENGTH}'",
    "awk 'BEGIN{print match(\"xxab\", /^x*ab$/), RLENGTH, match(\"ab\", /(ab)+/), RLENGTH, match(\"b=1\", /^[a-z]+=[0-9]*$/), RLENGTH}'",
    "awk 'BEGIN{print match(\"  # x\", \"^\\\\s*#\"), match(\"ss#\", \"^\\\\s*#\"), RLENGTH, match(\"a b\", /a\\sb/), match(\"asb\", /a\\sb/)}'",
    "awk 'BEGIN{print match(\"a{2}\", \"a{2}\"), match(\"aa\", /a{2}/), match(\"a]b\", /[\\]]/), match(\"a.b\", \"[.]\"), match(\"x y\", \"[[:space:]]\")}'",
    "awk 'BEGIN{print match(\"a\\tb\", /a\\tb/), match(\"aAb\", \"a\\\\101b\"), match(\"a^b\", /a^b/), match(\"a$b\", \"a[$]b\"), (\"cb\" ~ /x|^b/)}'",
    "awk '{n = split($0, a); printf \"%d:\", n; for (i = 1; i <= n; i++) printf \" [%s]\", a[i]; print \"\"}'",
    "awk -F: '{n = split($0, a, \":\"); print n, a[1], a[n]}' etc/passwd",
    "awk 'BEGIN{n = split(\"a.b.c\", a, \".\"); print n, a[2]; n = split(\"a1b22c\", b, /[0-9]+/); print n, b[3]; n = split(\"abc\", c, \"\"); print n, c[3]}'",
    "awk 'BEGIN{n = split(\"\", a); print n, length(a); n = split(\" x  y \", b, \" \"); print n, b[1]; n = split(\",a,,b,\", c, \",\"); print n, \"[\" c[1] \"]\", \"[\" c[5] \"]\"}'",
    "awk 'BEGIN{n = split(\"a|b|c\", a, \"|\"); print n, a[3]; n = split(\"aXXbXc\", b, \"X*\"); print n, b[2]; n = split(\"a\\tb\\vc d\", c); print n, c[2]}'",
    "awk 'BEGIN{FS = \",\"} {n = split($0, a); print n, a[1]}'",
    "awk '{gsub(/\\s/, \"S\"); sub(/a+/, \"<&>\"); print}'",
    "awk '{printf \"%c|%c|%c|%3c|\", $3, $1, x, \"\"; print \"\"}'",
]




def _history(seed: int) -> str:
    """A random history of inserts (int and string keys), lookups, deletes, splits and
    clears, ending in a for-in walk: the order depends on every step of it in mawk."""
    rnd = random.Random(seed)
    n = rnd.choice([5, 40, 300, 900, 2000])
    ops = []
    for _ in range(rnd.choice([3, 6, 10])):
        kind, a, b = rnd.random(), rnd.randint(0, n), rnd.randint(1, 7)
        loop = f"for (i = {a}; i < {a + n}; i += {b})"
        ops.append(loop + " a[i]" if kind < 0.3 else loop + ' a["k" i]' if kind < 0.45
                   else loop + " delete a[i]" if kind < 0.55 else loop + ' x += (i "") in a' if kind < 0.65
                   else loop + ' x += ("k" i) in a' if kind < 0.72
                   else f'split("{" ".join(str(j) for j in range(b * 3))}", a)' if kind < 0.8
                   else f'a[{a}.5]; a[-{a}]; a[""]' if kind < 0.85
                   else "for (k in a) if (k % 3 == 0) delete a[k]" if kind < 0.9
                   else f"a[{a},{b}]; x += (({a},{b}) in a)" if kind < 0.95 else "delete a")
    return ("awk 'BEGIN { " + "; ".join(ops)
            + '; for (k in a) s = s " " k; print length(a), x, length(s); print s }\'')


@pytest.mark.parametrize("seed", range(12))
def test_awk_for_in_order_after_random_histories(tmp_path, seed):
    compare(tmp_path, _history(seed))


@pytest.mark.parametrize("cmd", LOOPS + ARRAYS + FUNCTIONS + MATCH_SPLIT)
def test_awk_loops(tmp_path, cmd):
    compare(tmp_path, cmd, stdin=IN)


def test_augenrules(tmp_path):
    compare(tmp_path, ["awk", AUGENRULES], stdin=RULES)


@pytest.mark.parametrize("cmd", [
    "awk 'BEGIN{while (1) n++}'", "awk 'BEGIN{for (;;) {}}'", "awk 'BEGIN{do x++; while (x > 0)}'",
    "awk 'function f(n) { return f(n + 1) } BEGIN{f(1)}'",
    "awk 'BEGIN{print match(\"a\", \"*a\")}'", "awk 'BEGIN{print match(\"ab\", /a|ab/)}'",
    "awk 'BEGIN{print match(\"b.b..\", \".*.b?\")}'", "awk 'BEGIN{s = \"xxaaba\"; gsub(/b*b*/, \"-\", s)}'",
    "awk 'BEGIN{print match(\"ab\", \"(b|a*)\")}'", "awk 'BEGIN{print match(\"ab\", \"a$(b)\")}'", "awk 'BEGIN{print match(\"ab\", \"(ab\")}'",
    "awk 'BEGIN{split(\"a\", ENVIRON)}'", "awk 'BEGIN{RS = \"\"} {print}' f1",
    "awk 'BEGIN{x = 1; x[1] = 2}'", "awk 'BEGIN{a[1]; print a}'", "awk 'BEGIN{a[\"x\\0y\"] = 1}'",
])
def test_awk_loops_deferred(tmp_path, cmd):
    assert deferred(tmp_path, cmd)


def _gawk_alternative(root):
    os.makedirs(os.path.join(root, "etc/alternatives"), exist_ok=True)
    os.symlink("/usr/bin/gawk", os.path.join(root, "etc/alternatives/awk"))


@pytest.mark.parametrize("cmd", ["gawk 'BEGIN{a[1]; for (k in a) print k}'",
                                 "awk 'BEGIN{print match(\"a b\", /a\\sb/)}'", "awk 'BEGIN{a[1]; for (k in a) print k}'"])
def test_awk_under_gawk_defers_what_differs(tmp_path, cmd):
    """When the image's awk is gawk, what reads differently there than in mawk defers."""
    root = str(tmp_path / "t")
    build_tree(root)
    _gawk_alternative(root)
    with pytest.raises(Defer, match="gawk"):
        run_model(root, shlex.split(cmd), b"", 0o022)
