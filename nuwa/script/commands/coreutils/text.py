"""Models of the text filters: cat, head, tail, cut, tr, uniq, wc, yes (GNU coreutils 9.1, C locale).

Input is bytes (the C locale: a character is a byte). Standard input is ``inv.stdin``; a
pipe, so ``wc`` pads to width 7 for it as for any non-regular input. ``tail -f`` is deferred.
``yes`` and ``cat`` of the kernel's ``/dev/zero`` or ``/dev/urandom`` write without end: they
raise :class:`nuwa.script.endless.EndlessOutput`, which a pipeline may cut; ``head`` and
``cut``, ``cat`` and ``tr`` declare how they read a pipe (``pipe_stop``, ``pipe_streams``) for it.
"""

from __future__ import annotations

import os
import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands._common import apath, err, errno_text, quote, quotef
from nuwa.script.context import Defer, Invocation
from nuwa.script.endless import NEVER, EndlessOutput, EndlessStream, device_stream, memory_device


def read_or_report(inv: Invocation, name: str, style: str = "plain") -> bytes | None:
    """The bytes of input ``name`` or None after printing the program's error line.

    ``style``: "plain" (``cat: x: No such file``), "open" (``head: cannot open 'x' for
    reading: ...``, with ``error reading 'd'`` for a directory).
    """
    if name == "-":
        return bytes(inv.stdin)
    p = apath(inv, name)
    try:
        st = inv.fs.stat(p)
        if _stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory")
        if not (_stat.S_ISREG(st.st_mode)):
            raise Defer(f"{inv.name} reads a special file {name!r}")
        return inv.fs.read_bytes(p)
    except IsADirectoryError as e:
        if style == "open":
            err(inv, f"error reading {quote(name)}: {errno_text(e)}")
        else:
            err(inv, f"{quotef(name)}: {errno_text(e)}")
    except OSError as e:
        if style == "open":
            err(inv, f"cannot open {quote(name)} for reading: {errno_text(e)}")
        else:
            err(inv, f"{quotef(name)}: {errno_text(e)}")
    return None


def split_lines(data: bytes, sep: bytes = b"\n") -> list[bytes]:
    """Lines with their terminators kept (the last may lack one)."""
    parts = data.split(sep)
    out = [p + sep for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


# ---- cat ---------------------------------------------------------------------------------------

def _endless(inv: Invocation, name: str, kind: str) -> EndlessOutput:
    """What reading the kernel's zero or random device ``name`` to its end raises: its output
    is endless (what was written before it comes first); a pipeline may cut it
    (:mod:`nuwa.script.endless`)."""
    if inv.stderr:  # the endless path carries no error text: run it at boot
        raise Defer(f"{inv.name} reads {name} after an error")
    return EndlessOutput(inv, EndlessStream(name, b"\0" if kind == "zero" else None, bytes(inv.stdout)))


def cat(inv: Invocation) -> int:
    """``cat [-u] [FILE...]`` (numbering and display options are deferred). ``/dev/zero`` and
    ``/dev/random``/``urandom`` (the booted kernel's) are endless: :func:`_endless`."""
    try:
        opts, ops = _args.parse(inv, _args.spec("u"))
    except _args.UsageError as e:
        return _args.usage(inv, e)
    status = 0
    for name in ops or ["-"]:
        kind = memory_device(inv.fs, apath(inv, name)) if name != "-" else None
        if kind == "null":
            continue
        if kind is not None:
            raise _endless(inv, name, kind)
        data = read_or_report(inv, name)
        if data is None:
            status = 1
            continue
        inv.out(data)
    return status


def _reads_stdin_only(argv: list[str], sp) -> bool:
    """Does this command line parse and name no input but standard input?"""
    try:
        _, ops = _args.parse(Invocation(argv=list(argv), fs=None), sp)
    except (_args.UsageError, Defer):
        return False
    return all(o == "-" for o in ops)


#: cat writes as it reads (nuwa.script.endless: a filter the stream flows through)
cat.pipe_streams = lambda argv: _reads_stdin_only(argv, _args.spec("u"))


def yes(inv: Invocation) -> int:
    """``yes [STRING...]``: the line (``y`` by default) without end: :class:`EndlessOutput`
    (coreutils' ``yes`` takes only ``--help``/``--version``, deferred; getopt permutes, so a
    ``--`` after an operand is dropped too)."""
    _, ops = _args.parse(inv, _args.spec(""))
    line = (" ".join(ops) if ops else "y") + "\n"
    raise EndlessOutput(inv, EndlessStream(f"the line {line[:-1]!r}", line.encode("utf-8", "surrogateescape")))


# ---- head / tail -------------------------------------------------------------------------------

def _legacy_count(inv: Invocation) -> list[str]:
    """``head -5`` / ``tail -5`` / ``tail +5``: the obsolete forms rewritten as ``-n``."""
    argv = list(inv.argv[1:])
    if argv and re.fullmatch(r"-\d+[lcb]?", argv[0]):
        a = argv[0]
        unit = "-c" if a.endswith("c") else "-n"
        return [unit, a[1:].rstrip("lcb")] + argv[1:]
    if inv.name == "tail" and argv and re.fullmatch(r"\+\d+[lc]?", argv[0]):
        a = argv[0]
        unit = "-c" if a.endswith("c") else "-n"
        return [unit, "+" + a[1:].rstrip("lc")] + argv[1:]
    return argv


_SUFFIX = {"": 1, "b": 512, "kB": 1000, "K": 1024, "k": 1024, "MB": 1000**2, "M": 1024**2, "GB": 1000**3, "G": 1024**3}


def _count(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)(b|kB|K|k|MB|M|GB|G)?", text)
    if not m:
        return None
    return int(m.group(1)) * _SUFFIX[m.group(2) or ""]


_HEAD = _args.spec("n:c:qvz", {"lines": "n", "bytes": "c", "quiet": "q", "silent": "q", "verbose": "v",
                              "zero-terminated": "z"})
_TAIL = _args.spec("n:c:qvzfF", {"lines": "n", "bytes": "c", "quiet": "q", "silent": "q", "verbose": "v",
                                "zero-terminated": "z", "follow": ("f", _args.OPT)})


def _head_tail_args(inv: Invocation):
    """The parsed command line of ``head``/``tail``: (unit, count, mode, headers, sep, files),
    or the exit status after printing the usage error."""
    is_tail = inv.name == "tail"
    try:
        opts, ops = _args.parse(inv, _TAIL if is_tail else _HEAD, _legacy_count(inv))
    except _args.UsageError as e:
        return _args.usage(inv, e)
    unit, count, mode = "n", 10, "last" if is_tail else "first"
    headers = None
    sep = b"\n"
    for k, v in opts:
        if k in ("n", "c"):
            unit = k
            text = v
            sign = ""
            if text[:1] in "+-":
                sign, text = text[0], text[1:]
            n = _count(text)
            if n is None:
                what = "lines" if k == "n" else "bytes"
                err(inv, f"invalid number of {what}: {quote(v)}")
                return 1
            count = n
            if is_tail:
                mode = "from" if sign == "+" else "last"
            else:
                mode = "allbut" if sign == "-" else "first"
        elif k == "q":
            headers = False
        elif k == "v":
            headers = True
        elif k == "z":
            sep = b"\0"
        elif k in ("f", "F"):
            raise Defer("tail -f follows a live file")
    files = ops or ["-"]
    if is_tail and len(files) > 1 and inv.argv[1:2] and re.fullmatch(r"[-+]\d+[lcb]?", inv.argv[1]):
        err(inv, f"option used in invalid context -- {inv.argv[1][1:2]}")
        return 1
    if headers is None:
        headers = len(files) > 1
    return unit, count, mode, headers, sep, files


def _stop(unit: str, count: int, sep: bytes, data: bytes) -> int | None:
    """Where ``head -c/-n COUNT`` stops reading ``data`` (None: past its end)."""
    if unit == "c":
        return count if len(data) >= count else None
    pos = 0
    for _ in range(count):
        j = data.find(sep, pos)
        if j < 0:
            return None
        pos = j + 1
    return pos


def _head_of_device(inv: Invocation, name: str, kind: str, unit: str, count: int, mode: str, sep: bytes) -> bytes:
    """``head -c N`` / ``head -n N`` of the kernel's zero or random device: the bytes head reads
    before it stops; any other form reads the device to no end (deferred)."""
    if inv.name != "head" or mode != "first":
        raise Defer(f"{inv.name} {name} reads the device to its end: it would not end")
    stream = device_stream(kind, name)
    if unit == "c":
        if count > 1 << 24:
            raise Defer(f"head -c {count} of {name}: more bytes than modelled")
        return stream.take(count)
    if kind == "zero" and sep != b"\0" and count:
        raise Defer(f"head -n of {name}: no line ever ends, it would not end")
    n = 4096
    while n <= 1 << 24:  # about 256 random bytes per newline; more lines than that: at boot
        data = stream.take(n)
        pos = _stop(unit, count, sep, data)
        if pos is not None:
            return data[:pos]
        n *= 2
    raise Defer(f"head -n {count} of {name} needs more random bytes than modelled")


def head_tail(inv: Invocation) -> int:
    """``head``/``tail`` with ``-n [+-]N``, ``-c [+-]N``, ``-N``, ``-q``/``-v``, ``-z``; ``head``
    of the kernel's ``/dev/zero`` and ``/dev/urandom`` reads what head would."""
    parsed = _head_tail_args(inv)
    if isinstance(parsed, int):
        return parsed
    unit, count, mode, headers, sep, files = parsed
    status = 0
    first = True
    for name in files:
        kind = memory_device(inv.fs, apath(inv, name)) if name != "-" else None
        if kind == "null":
            data = b""
        elif kind is not None:
            data = _head_of_device(inv, name, kind, unit, count, mode, sep)
        else:
            data = read_or_report(inv, name, "open")
        if data is None:
            status = 1
            continue
        if headers:
            inv.out(("" if first else "\n") + f"==> {'standard input' if name == '-' else name} <==\n")
        first = False
        if unit == "c":
            if mode == "first":
                out = data[:count]
            elif mode == "allbut":
                out = data[: max(0, len(data) - count)]
            elif mode == "last":
                out = data[max(0, len(data) - count):] if count else b""  # all of it when N > size
            else:
                out = data[max(count, 1) - 1:]
        else:
            lines = split_lines(data, sep)
            if mode == "first":
                out = b"".join(lines[:count])
            elif mode == "allbut":
                out = b"".join(lines[: max(0, len(lines) - count)])
            elif mode == "last":
                out = b"".join(lines[max(0, len(lines) - count):]) if count else b""
            else:
                out = b"".join(lines[max(count, 1) - 1:])
        inv.out(out)
    return status


def _pipe_stop(argv: list[str], data: bytes) -> int | None:
    """nuwa.script.endless: how many bytes of its standard input ``data`` head reads before
    it exits on its own (``-c N``, ``-n N``); None: it reads past the end of ``data``; NEVER:
    it reads to the end (``tail``, ``head -c -N``)."""
    inv = Invocation(argv=list(argv), fs=None)
    if inv.name != "head":
        return NEVER
    try:
        parsed = _head_tail_args(inv)
    except Defer:
        return NEVER
    if isinstance(parsed, int):
        return NEVER
    unit, count, mode, _, sep, files = parsed
    if mode != "first" or files != ["-"]:
        return NEVER
    return _stop(unit, count, sep, data)


head_tail.pipe_stop = _pipe_stop


# ---- cut ---------------------------------------------------------------------------------------

_CUT = _args.spec("b:c:d:f:snz", {"bytes": "b", "characters": "c", "delimiter": "d", "fields": "f",
                                 "only-delimited": "s", "complement": ("complement", _args.NO),
                                 "output-delimiter": ("output-delimiter", _args.REQ), "zero-terminated": "z"})


def _ranges(inv: Invocation, text: str) -> list[tuple[int, int]] | str:
    """A cut LIST as (low, high) pairs, or the error message cut prints."""
    out = []
    for part in text.replace(" ", ",").split(","):
        m = re.fullmatch(r"(\d*)(-?)(\d*)", part)
        if not m or part in ("", "-"):
            return "invalid range with no endpoint: -" if part == "-" else \
                (f"invalid field value {quote(part)}" if part else "fields are numbered from 1")
        lo = int(m.group(1)) if m.group(1) else 1
        hi = (int(m.group(3)) if m.group(3) else 1 << 62) if m.group(2) else lo
        if (m.group(1) and lo == 0) or (m.group(3) and int(m.group(3)) == 0):
            return "fields are numbered from 1" if not m.group(2) or m.group(1) else "invalid decreasing range"
        if hi < lo:
            return "invalid decreasing range"
        out.append((lo, hi))
    return out


def cut(inv: Invocation) -> int:
    """``cut -b|-c|-f LIST [-d DELIM] [-s] [--complement] [--output-delimiter=S] [FILE...]``."""
    try:
        opts, ops = _args.parse(inv, _CUT)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    kind = lst = None
    delim = b"\t"
    only = complement = False
    outdelim = None
    sep = b"\n"
    for k, v in opts:
        if k in ("b", "c", "f"):
            if kind is not None:
                return _args.usage(inv, _args.UsageError("only one type of list may be specified"))
            kind, lst = k, v
        elif k == "d":
            d = v.encode("utf-8", "surrogateescape")
            if len(d) > 1:
                return _args.usage(inv, _args.UsageError("the delimiter must be a single character"))
            delim = d or b"\0"
        elif k == "s":
            only = True
        elif k == "complement":
            complement = True
        elif k == "output-delimiter":
            outdelim = v.encode("utf-8", "surrogateescape")
        elif k == "z":
            sep = b"\0"
    if kind is None:
        return _args.usage(inv, _args.UsageError("you must specify a list of bytes, characters, or fields"))
    ranges = _ranges(inv, lst)
    if isinstance(ranges, str):
        return _args.usage(inv, _args.UsageError(ranges))

    def picked(i: int) -> bool:
        hit = any(lo <= i <= hi for lo, hi in ranges)
        return hit != complement

    status = 0
    for name in ops or ["-"]:
        data = read_or_report(inv, name)
        if data is None:
            status = 1
            continue
        for line in split_lines(data, sep):
            body = line[:-1] if line.endswith(sep) else line
            if kind == "f":
                if delim not in body:
                    if not only:
                        inv.out(body + sep)
                    continue
                fields = body.split(delim)
                keep = [f for i, f in enumerate(fields, 1) if picked(i)]
                inv.out((outdelim if outdelim is not None else delim).join(keep) + sep)
            else:
                if outdelim is not None:
                    # contiguous picked runs joined by the output delimiter
                    runs, cur = [], b""
                    for i in range(1, len(body) + 1):
                        if picked(i):
                            cur += body[i - 1:i]
                        elif cur:
                            runs.append(cur)
                            cur = b""
                    if cur:
                        runs.append(cur)
                    inv.out(outdelim.join(runs) + sep)
                else:
                    inv.out(bytes(b for i, b in enumerate(body, 1) if picked(i)) + sep)
    return status


#: cut writes each line as it reads it (nuwa.script.endless: a filter the stream flows through)
cut.pipe_streams = lambda argv: _reads_stdin_only(argv, _CUT)


# ---- uniq --------------------------------------------------------------------------------------

_UNIQ = _args.spec("cdDuif:s:w:z", {"count": "c", "repeated": "d", "unique": "u", "ignore-case": "i",
                                   "skip-fields": "f", "skip-chars": "s", "check-chars": "w",
                                   "zero-terminated": "z"})


def uniq(inv: Invocation) -> int:
    """``uniq [-c] [-d|-u] [-i] [-f N] [-s N] [-w N] [INPUT [OUTPUT]]``."""
    try:
        opts, ops = _args.parse(inv, _UNIQ)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    count = repeated = unique = icase = False
    skip_f = skip_c = 0
    width = None
    sep = b"\n"
    for k, v in opts:
        if k == "c":
            count = True
        elif k == "d":
            repeated = True
        elif k == "u":
            unique = True
        elif k == "i":
            icase = True
        elif k in ("f", "s", "w"):
            if not v.isdigit():
                err(inv, f"{quote(v)}: invalid number of {'fields' if k == 'f' else 'bytes'} to "
                         f"{'skip' if k != 'w' else 'compare'}")
                return 1
            if k == "f":
                skip_f = int(v)
            elif k == "s":
                skip_c = int(v)
            else:
                width = int(v)
        elif k == "D":
            raise Defer("uniq -D")
        elif k == "z":
            sep = b"\0"
    if len(ops) > 2:
        return _args.usage(inv, _args.UsageError(f"extra operand {quote(ops[2])}"))
    data = read_or_report(inv, ops[0] if ops else "-")
    if data is None:
        return 1

    def key(line: bytes) -> bytes:
        s = line
        for _ in range(skip_f):
            s = s.lstrip(b" \t")
            i = 0
            while i < len(s) and s[i:i + 1] not in (b" ", b"\t"):
                i += 1
            s = s[i:]
        s = s[skip_c:]
        if width is not None:
            s = s[:width]
        return s.lower() if icase else s

    out = bytearray()
    groups: list[tuple[bytes, int]] = []
    for line in split_lines(data, sep):
        body = line[:-1] if line.endswith(sep) else line
        if groups and key(groups[-1][0]) == key(body):
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((body, 1))
    for body, n in groups:
        if (repeated and n < 2) or (unique and n > 1):
            continue
        out += (b"%7d " % n if count else b"") + body + sep
    if len(ops) == 2:
        try:
            inv.fs.write_bytes(apath(inv, ops[1]), bytes(out), 0o666 & ~inv.umask)
        except OSError as e:
            err(inv, f"{quotef(ops[1])}: {errno_text(e)}")
            return 1
    else:
        inv.out(bytes(out))
    return 0


# ---- wc ----------------------------------------------------------------------------------------

_WC = _args.spec("clwmL", {"bytes": "c", "lines": "l", "words": "w", "chars": "m", "max-line-length": "L"})


def wc(inv: Invocation) -> int:
    """``wc [-clwm] [FILE...]`` (C locale: characters are bytes)."""
    try:
        opts, ops = _args.parse(inv, _WC)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    want = {k for k, _ in opts}
    if "L" in want:
        raise Defer("wc -L")
    if not want:
        want = {"l", "w", "c"}
    order = [k for k in ("l", "w", "m", "c") if k in want]
    files = ops or ["-"]
    results = []
    status = 0
    min_width, total_size = 1, 0
    for name in files:
        if name == "-":
            min_width = 7
        else:
            try:
                st = inv.fs.stat(apath(inv, name))
                if _stat.S_ISREG(st.st_mode):
                    total_size += st.st_size
                else:
                    min_width = 7
            except OSError:
                pass
    for name in files:
        data = read_or_report(inv, name)
        if data is None:
            status = 1
            if name != "-" and inv.fs.exists(apath(inv, name)):
                results.append(((0, 0, 0, 0), name))  # wc still prints zeros for a directory
            continue
        counts = (data.count(b"\n"), len(data.split()), len(data), len(data))
        results.append((counts, name))
    if len(order) == 1 and len(files) == 1:
        width = 1
    else:
        width = max(len(str(total_size)), min_width)
    totals = [sum(r[0][i] for r in results) for i in range(4)]
    idx = {"l": 0, "w": 1, "c": 2, "m": 3}
    for counts, name in results:
        line = " ".join(f"{counts[idx[k]]:{width}d}" for k in order)
        inv.out(line + ("" if name == "-" and not ops else f" {name}") + "\n")
    if len(files) > 1:
        inv.out(" ".join(f"{totals[idx[k]]:{width}d}" for k in order) + " total\n")
    return status
