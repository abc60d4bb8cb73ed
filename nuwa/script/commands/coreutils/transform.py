"""Models of tr, sort and tsort (GNU coreutils 9.1, C locale: characters are bytes).

tr: sets with escapes, ranges, ``[:class:]``, ``[=c=]``, ``[c*n]``; ``-d``, ``-s``, ``-c``, ``-t``.
sort: whole-line and ``-k`` keys with ``-t``, ``-b``, ``-f``, ``-n``, ``-r``, ``-V``; ``-u``, ``-s``,
``-o``, ``-c``; the last-resort byte comparison GNU sort applies when keys tie.
tsort: the order of ``tsort.c`` (initramfs-tools orders its hooks with it); a loop is deferred.
"""

from __future__ import annotations

import functools
import re

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, err, errno_text, quote, quotef
from nuwa.script.commands.coreutils.text import read_or_report, split_lines
from nuwa.script.context import Defer, Invocation

_CLASSES = {
    "alpha": lambda c: 65 <= c <= 90 or 97 <= c <= 122,
    "upper": lambda c: 65 <= c <= 90,
    "lower": lambda c: 97 <= c <= 122,
    "digit": lambda c: 48 <= c <= 57,
    "alnum": lambda c: 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122,
    "space": lambda c: c in (9, 10, 11, 12, 13, 32),
    "blank": lambda c: c in (9, 32),
    "punct": lambda c: 33 <= c <= 126 and not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122),
    "print": lambda c: 32 <= c <= 126,
    "graph": lambda c: 33 <= c <= 126,
    "cntrl": lambda c: c < 32 or c == 127,
    "xdigit": lambda c: 48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102,
}
_ESC = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


class _TrError(Exception):
    pass


def _unescape(s: bytes) -> list[tuple[str, int]]:
    """Tokens of a tr set: ("c", byte) for a literal, ("[", ...) markers kept as literals."""
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == 92 and i + 1 < len(s):
            n = chr(s[i + 1])
            if n in "01234567":
                j = i + 1
                while j < len(s) and j < i + 4 and chr(s[j]) in "01234567":
                    j += 1
                out.append(("e", int(s[i + 1:j], 8) & 0xFF))
                i = j
                continue
            out.append(("e", _ESC.get(n, ord(n))))
            i += 2
            continue
        out.append(("c", c))
        i += 1
    return out


def _expand(text: str, is_set2: bool) -> tuple[list[int], list[tuple[int, str]]]:
    """Expand a set into bytes; also return the class markers (position, name) for case maps."""
    toks = _unescape(text.encode("utf-8", "surrogateescape"))
    out: list[int] = []
    classes: list[tuple[int, str]] = []
    i = 0
    while i < len(toks):
        kind, c = toks[i]
        if kind == "c" and c == 91 and i + 1 < len(toks):  # '['
            rest = bytes(t[1] for t in toks[i:])
            m = re.match(rb"\[:([a-z]+):\]", rest)
            if m and all(t[0] == "c" for t in toks[i:i + len(m.group(0))]):
                name = m.group(1).decode()
                if name not in _CLASSES:
                    raise _TrError(f"invalid character class {quote(name)}")
                classes.append((len(out), name))
                out.extend(b for b in range(256) if _CLASSES[name](b))
                i += len(m.group(0))
                continue
            m = re.match(rb"\[=(.)=\]", rest, re.S)
            if m:
                out.append(m.group(1)[0])
                i += 3 + 1 + 1
                continue
            if i + 2 < len(toks) and toks[i + 2] == ("c", 42):  # [c*n]
                j = i + 3
                digits = b""
                while j < len(toks) and toks[j][0] == "c" and 48 <= toks[j][1] <= 57:
                    digits += bytes([toks[j][1]])
                    j += 1
                if j < len(toks) and toks[j] == ("c", 93):
                    if not is_set2:
                        raise _TrError("the [c*] repeat construct may not appear in string1")
                    ch = toks[i + 1][1]
                    n = int(digits, 8 if digits.startswith(b"0") else 10) if digits else -1
                    out.append(("R", ch, n))  # resolved after expansion
                    i = j + 1
                    continue
        if i + 2 < len(toks) and toks[i + 1] == ("c", 45):  # range a-z
            lo, hi = c, toks[i + 2][1]
            if hi < lo:
                raise _TrError(f"range-endpoints of {quote(chr(lo) + '-' + chr(hi))} are in reverse "
                               "collating sequence order")
            out.extend(range(lo, hi + 1))
            i += 3
            continue
        out.append(c)
        i += 1
    return out, classes


def _resolve_repeats(set2: list, n1: int) -> list[int]:
    fixed = sum(1 if not isinstance(x, tuple) else max(x[2], 0) for x in set2)
    out = []
    for x in set2:
        if isinstance(x, tuple):
            n = x[2] if x[2] > 0 else max(0, n1 - fixed)
            out.extend([x[1]] * n)
        else:
            out.append(x)
    return out


_TR = _args.spec("cCdst", {"complement": "c", "delete": "d", "squeeze-repeats": "s", "truncate-set1": "t"})


def tr(inv: Invocation) -> int:
    """``tr [-cdst] SET1 [SET2]``."""
    try:
        opts, ops = _args.parse(inv, _TR)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = {k for k, _ in opts}
    comp, delete, squeeze, trunc = bool(keys & {"c", "C"}), "d" in keys, "s" in keys, "t" in keys
    if not ops:
        return _args.missing(inv)
    translating = not delete and len(ops) >= 2 or (not delete and not squeeze)
    if delete and squeeze and len(ops) < 2 or not delete and not squeeze and len(ops) < 2:
        err(inv, f"missing operand after {quote(ops[0])}")
        inv.err("Two strings must be given when " + ("both deleting and squeezing repeats.\n" if delete
                                                       else "translating.\n"))
        inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
        return 1
    if delete and not squeeze and len(ops) > 1:
        err(inv, f"extra operand {quote(ops[1])}")
        inv.err("Only one string may be given when deleting without squeezing repeats.\n")
        inv.err(f"Try '{inv.argv[0]} --help' for more information.\n")
        return 1
    if len(ops) > 2:
        return _args.usage(inv, _args.UsageError(f"extra operand {quote(ops[2])}"))
    try:
        s1, cls1 = _expand(ops[0], False)
        s2raw, cls2 = _expand(ops[1], True) if len(ops) > 1 else ([], [])
    except _TrError as e:
        err(inv, str(e))
        return 1
    if comp:
        members = set(s1)
        s1 = [b for b in range(256) if b not in members]
    data = bytes(inv.stdin)
    if translating and len(ops) > 1:
        s2 = _resolve_repeats(s2raw, len(s1))
        if not s2 and s1:
            err(inv, "when not truncating set1, string2 must be non-empty")
            return 1
        if trunc:
            s1 = s1[: len(s2)]
        elif len(s2) < len(s1):
            s2 = s2 + [s2[-1]] * (len(s1) - len(s2))
        table = list(range(256))
        for a, b in zip(s1, s2):
            table[a] = b
        data = data.translate(bytes(table))
        sq = set(s2) if squeeze else set()
    elif delete:
        data = data.translate(None, bytes(set(s1)))
        sq = set(_resolve_repeats(s2raw, 0)) if squeeze else set()
    else:
        sq = set(s1)
    if squeeze and sq:
        out = bytearray()
        for b in data:
            if out and out[-1] == b and b in sq:
                continue
            out.append(b)
        data = bytes(out)
    inv.out(data)
    return 0


#: tr writes as it reads and never opens a file (nuwa.script.endless: a filter the stream
#: flows through; a command line it rejects is an exit before reading, seen as such)
tr.pipe_streams = lambda argv: True


# ---- sort --------------------------------------------------------------------------------------

_SORT = _args.spec("bdfgiMhnRrVk:t:o:suczT:S:", {
    "ignore-leading-blanks": "b", "dictionary-order": "d", "ignore-case": "f", "numeric-sort": "n",
    "reverse": "r", "version-sort": "V", "key": "k", "field-separator": "t", "output": "o",
    "stable": "s", "unique": "u", "check": ("c", _args.OPT), "zero-terminated": "z",
    "temporary-directory": "T", "buffer-size": "S", "parallel": ("parallel", _args.REQ)})


def _numeric(s: bytes) -> float:
    m = re.match(rb"[ \t]*(-?)(\d*)(\.\d*)?", s)
    if not m or not (m.group(2) or (m.group(3) and len(m.group(3)) > 1)):
        return 0.0
    try:
        return float(m.group(1) + (m.group(2) or b"0") + (m.group(3) or b""))
    except ValueError:
        return 0.0


def _verrevcmp(a: bytes, b: bytes) -> int:
    """gnulib filevercmp's core (the dpkg version ordering: ~ sorts first, digits numerically)."""
    def order(c: int | None) -> int:
        if c is None:
            return 0
        if 48 <= c <= 57:
            return 0
        if 65 <= c <= 90 or 97 <= c <= 122:
            return c
        if c == 126:
            return -1
        return c + 256

    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not (48 <= a[i] <= 57)) or (j < len(b) and not (48 <= b[j] <= 57)):
            ac = order(a[i] if i < len(a) else None)
            bc = order(b[j] if j < len(b) else None)
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == 48:
            i += 1
        while j < len(b) and b[j] == 48:
            j += 1
        while i < len(a) and 48 <= a[i] <= 57 and j < len(b) and 48 <= b[j] <= 57:
            if not first_diff:
                first_diff = a[i] - b[j]
            i += 1
            j += 1
        if i < len(a) and 48 <= a[i] <= 57:
            return 1
        if j < len(b) and 48 <= b[j] <= 57:
            return -1
        if first_diff:
            return first_diff
    return 0


_SUFFIX_RE = re.compile(rb"(?:\.[A-Za-z~][A-Za-z0-9~]*)*$")


def filevercmp(a: bytes, b: bytes) -> int:
    """gnulib ``filevercmp``: version ordering of file names (``sort -V``, ``ls -v``)."""
    if a == b:
        return 0
    for special in (b"", b".", b".."):
        if a == special:
            return -1
        if b == special:
            return 1
    if a.startswith(b".") != b.startswith(b"."):
        return -1 if a.startswith(b".") else 1
    if a.startswith(b".") and b.startswith(b"."):
        a, b = a[1:], b[1:]
    ap = a[: _SUFFIX_RE.search(a).start()] or a
    bp = b[: _SUFFIX_RE.search(b).start()] or b
    r = _verrevcmp(ap, bp) if ap != bp else 0
    return r if r else _verrevcmp(a, b)


class _Key:
    """One ``-k`` key. A key with its own ordering letters inherits none of the global ones."""

    def __init__(self, f1: int, c1: int, f2: int | None, c2: int, opts: str, global_opts: str):
        self.f1, self.c1, self.f2, self.c2 = f1, c1, f2, c2
        self.opts = opts if opts else global_opts
        self.blanks = "b" in self.opts


def _fields(line: bytes, sep: bytes | None) -> list[tuple[int, int]]:
    """(start, end) of each field; without -t a field keeps its leading blanks."""
    if sep is not None:
        out, start = [], 0
        while True:
            i = line.find(sep, start)
            if i < 0:
                out.append((start, len(line)))
                return out
            out.append((start, i))
            start = i + 1
    out, i, n = [], 0, len(line)
    while i < n:
        s = i
        while i < n and line[i] in (9, 32):
            i += 1
        while i < n and line[i] not in (9, 32):
            i += 1
        out.append((s, i))
    return out or [(0, 0)]


def _key_text(line: bytes, k: _Key, sep: bytes | None) -> bytes:
    fs = _fields(line, sep)
    if k.f1 - 1 >= len(fs):
        return b""
    s = fs[k.f1 - 1][0]
    if k.blanks:
        while s < len(line) and line[s] in (9, 32):
            s += 1
    s = min(s + k.c1 - 1, len(line))
    if k.f2 is None:
        e = len(line)
    elif k.f2 - 1 >= len(fs):
        e = len(line)
    else:
        fs2, fe2 = fs[k.f2 - 1]
        if k.c2 == 0:
            e = fe2
        else:
            st = fs2
            if k.blanks:
                while st < len(line) and line[st] in (9, 32):
                    st += 1
            e = min(st + k.c2, len(line))
    return line[s:max(s, e)]


def _cmp_text(a: bytes, b: bytes, opts: str) -> int:
    if "b" in opts:
        a, b = a.lstrip(b" \t"), b.lstrip(b" \t")
    if "n" in opts:
        x, y = _numeric(a), _numeric(b)
        return (x > y) - (x < y)
    if "V" in opts:
        return filevercmp(a, b)
    if "d" in opts:
        a = bytes(c for c in a if c in (9, 32) or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122)
        b = bytes(c for c in b if c in (9, 32) or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122)
    if "f" in opts:
        a, b = a.upper(), b.upper()
    return (a > b) - (a < b)


def sort(inv: Invocation) -> int:
    """``sort [-bdfnrVsu] [-k POS1[,POS2]]... [-t SEP] [-o FILE] [-c] [FILE...]``."""
    try:
        opts, ops = _args.parse(inv, _SORT)
    except _args.UsageError as e:
        return _args.usage(inv, e, 2)
    gopts = ""
    keys: list[tuple[int, int, int | None, int, str]] = []
    sep = None
    output = None
    stable = unique = check = False
    term = b"\n"
    for k, v in opts:
        if k in "bdfnrV" and len(k) == 1:
            gopts += k
        elif k == "k":
            m = re.fullmatch(r"(\d+)(?:\.(\d+))?([bdfnrV]*)(?:,(\d+)(?:\.(\d+))?([bdfnrV]*))?", v)
            if not m or int(m.group(1)) == 0:
                err(inv, f"invalid number at field start: invalid count at start of {quote(v)}")
                return 2
            keys.append((int(m.group(1)), int(m.group(2) or 1), int(m.group(4)) if m.group(4) else None,
                         int(m.group(5) or 0), (m.group(3) or "") + (m.group(6) or "")))
        elif k == "t":
            t = v.encode("utf-8", "surrogateescape")
            if len(t) != 1:
                err(inv, "multi-character tab " + quote(v) if t else "empty tab")
                return 2
            sep = t
        elif k == "o":
            output = v
        elif k == "s":
            stable = True
        elif k == "u":
            unique = True
        elif k == "c":
            check = True
        elif k == "z":
            term = b"\0"
        elif k in ("T", "S", "parallel"):
            pass
        else:
            raise Defer(f"sort -{k} is not modelled")
    data = bytearray()
    status = 0
    for name in ops or ["-"]:
        d = read_or_report(inv, name)
        if d is None:
            # sort stops at the first unreadable input, with its own wording
            inv.stderr[:] = inv.stderr[: len(inv.stderr) - len(inv.stderr.split(b"\n")[-2]) - 1]
            try:
                inv.fs.stat(apath(inv, name))
                err(inv, f"read failed: {quotef(name)}: Is a directory")
            except OSError as e:
                err(inv, f"cannot read: {quotef(name)}: {errno_text(e)}")
            return 2
        data += d
        if d and not d.endswith(term):
            data += term
    lines = [ln[:-1] if ln.endswith(term) else ln for ln in split_lines(bytes(data), term)]
    klist = [_Key(f1, c1, f2, c2, o, gopts) for f1, c1, f2, c2, o in keys]
    reverse_all = "r" in gopts

    def keycmp(a: bytes, b: bytes) -> int:
        for k in klist:
            r = _cmp_text(_key_text(a, k, sep), _key_text(b, k, sep), k.opts)
            if r:
                return -r if "r" in k.opts else r
        if not klist:
            r = _cmp_text(a, b, gopts)
            return -r if reverse_all else r
        return 0

    def fullcmp(a: bytes, b: bytes) -> int:
        r = keycmp(a, b)
        if r or stable or unique:
            return r
        r = (a > b) - (a < b)
        return -r if reverse_all else r

    if check:
        for i in range(1, len(lines)):
            r = fullcmp(lines[i - 1], lines[i])
            if r > 0 or (unique and r == 0):
                err(inv, f"{ops[0] if ops else '-'}:{i + 1}: disorder: "
                         f"{lines[i].decode('utf-8', 'surrogateescape')}")
                return 1
        return 0
    lines.sort(key=functools.cmp_to_key(fullcmp))
    if unique:
        out = []
        for ln in lines:
            if not out or keycmp(out[-1], ln) != 0:
                out.append(ln)
        lines = out
    text = b"".join(ln + term for ln in lines)
    if output is not None:
        try:
            inv.fs.write_bytes(apath(inv, output), text, 0o666 & ~inv.umask)
        except OSError as e:
            err(inv, f"open failed: {quotef(output)}: {errno_text(e)}")
            return 2
    else:
        inv.out(text)
    return status


def tsort(inv: Invocation) -> int:
    """``tsort [FILE]`` (coreutils 9.1 ``tsort.c``), in the exact order it prints.

    Items live in a search tree keyed by ``strcmp``; each round queues the items without
    predecessors in tree (byte) order (``scan_zeros``), prints the queue, and appends each
    printed item's successors whose count drops to zero -- successors in the reverse order
    their pairs were read (``record_relation`` prepends). A pair of equal tokens only
    declares the item. When items remain, the input has a loop: "input contains a loop:",
    then ``detect_loop`` walks the tree in order (repeatedly) until it finds one, prints its
    items and removes one relation, and the next round goes on; the status is then 1.
    """
    args = inv.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if any(a.startswith("-") and a != "-" for a in args) or len(args) > 1:
        raise Defer("tsort: options or several operands are not modelled")
    name = args[0] if args else "-"
    data = read_or_report(inv, name)
    if data is None:
        return 1
    tokens = data.split()
    if len(tokens) % 2:
        return inv.fail(f"{quotef(name)}: input contains an odd number of tokens")
    count: dict[bytes, int] = {}
    succ: dict[bytes, list[bytes]] = {}
    for j, k in zip(tokens[0::2], tokens[1::2]):
        count.setdefault(j, 0)
        count.setdefault(k, 0)
        succ.setdefault(j, [])
        succ.setdefault(k, [])
        if j != k:
            count[k] += 1
            succ[j].insert(0, k)
    order = sorted(count)  # the tree's in-order walk
    qlink: dict[bytes, bytes | None] = dict.fromkeys(order)
    out = bytearray()
    printed: set[bytes] = set()
    status = 0
    while len(printed) < len(order):
        queue = [t for t in order if count[t] == 0 and t not in printed]
        i = 0
        while i < len(queue):
            t = queue[i]
            i += 1
            out += t + b"\n"
            printed.add(t)
            for k in succ[t]:
                count[k] -= 1
                if count[k] == 0:
                    queue.append(k)
        if len(printed) < len(order):
            inv.err(f"tsort: {quotef(name)}: input contains a loop:\n")
            status = 1
            _break_loop(inv, order, count, succ, qlink)
    inv.out(bytes(out))
    return status


def _break_loop(inv: Invocation, order: list[bytes], count: dict, succ: dict, qlink: dict) -> None:
    """``do walk_tree (root, detect_loop); while (loop);`` of tsort.c: the items of the first
    loop found are printed and the relation that closes it is removed."""
    loop = None
    while True:
        for k in order:
            if count[k] <= 0:
                continue
            if loop is None:  # start traversing the graph at K
                loop = k
                continue
            for idx, s in enumerate(succ[k]):
                if s != loop:
                    continue
                if qlink[k] is not None:
                    # retrace the path taken through the graph, until K again
                    cur = loop
                    while cur is not None:
                        nxt = qlink[cur]
                        inv.err(b"tsort: " + cur + b"\n")
                        if cur == k:
                            count[s] -= 1
                            del succ[k][idx]
                            break
                        qlink[cur] = None
                        cur = nxt
                    while cur is not None:
                        nxt = qlink[cur]
                        qlink[cur] = None
                        cur = nxt
                    return
                qlink[k] = loop
                loop = k
                break
        if loop is None:
            return
