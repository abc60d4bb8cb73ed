"""Model of ``iconv`` (glibc 2.36 ``iconv/iconv_prog.c``) for the character sets whose
conversion Python's codecs perform exactly as glibc's gconv modules do.

Modelled: ``-f``/``--from-code``, ``-t``/``--to-code``, ``-c``, ``-o``/``--output``, ``-s``/
``--silent``, input files (``-`` or none: standard input), the ``//TRANSLIT`` and ``//IGNORE``
suffixes of the target. Character sets: UTF-8, ASCII (``ANSI_X3.4-1968``, what ``locale
charmap`` says in the C locale), ISO-8859-1, ISO-8859-15 and their glibc aliases, named in any
case. Everything else is deferred (UTF-16/32 byte-order marks, the legacy code pages, whose
tables are not checked against glibc's).

Errors are iconv's: an invalid or unconvertible input sequence writes what was converted
before it, then ``iconv: illegal input sequence at position N`` (N: the byte offset in that
input) and exit 1; an incomplete sequence at the end of the input gives ``iconv: incomplete
character or shift sequence at end of buffer``; ``-c`` (or ``//IGNORE``) drops what cannot
be converted: ``iconv -c`` exits 0; under ``//IGNORE`` glibc 2.36 still ends with "illegal
input sequence at position N" (N: the input's length) and exit 1 when something was dropped.

``//TRANSLIT`` replaces an unconvertible character by the transliteration of the process's
``LC_CTYPE`` locale. In the C/POSIX locale (what dpkg gives maintainer scripts unless the
image sets a default locale) that is glibc's built-in table (``c_translit.py``), and "?" for a
character it lacks, with exit 0: keyboard-configuration's ``iconv -t $(locale
charmap)//TRANSLIT`` of its layout names ("Latvian (ergonomic, ?GJRMV)"). Other locales' tables
(``translit_combining``... of the locale sources) are not modelled: an input that needs them is
deferred; one whose every character converts as is gets the exact answer.
"""

from __future__ import annotations

import os

from nuwa.script.commands import _args
from nuwa.script.commands.miscutils.c_translit import C_TRANSLIT
from nuwa.script.context import Defer, Invocation

#: glibc's names (gconv-modules aliases, normalised: upper case) -> Python codec
_CHARSETS = {}
for _names, _codec in (
        (("UTF-8", "UTF8", "ISO-10646/UTF8", "ISO-10646/UTF-8", "ISO-IR-193", "OSF05010001"), "utf-8"),
        (("ANSI_X3.4-1968", "ASCII", "US-ASCII", "ANSI_X3.4-1986", "ISO646-US", "ISO_646.IRV:1991", "US", "CP367",
          "IBM367", "CSASCII", "ISO-IR-6", "ISO646.IRV:1991", "ANSI_X3.4", "646"), "ascii"),
        (("ISO-8859-1", "ISO8859-1", "ISO88591", "ISO_8859-1", "ISO_8859-1:1987", "LATIN1", "L1", "IBM819", "CP819",
          "CSISOLATIN1", "ISO-IR-100", "8859_1", "OSF00010001"), "latin-1"),
        (("ISO-8859-15", "ISO8859-15", "ISO885915", "ISO_8859-15", "ISO_8859-15:1998", "LATIN-9", "LATIN9",
          "ISO-IR-203"), "iso8859-15")):
    for _n in _names:
        _CHARSETS[_n] = _codec

_SPEC = _args.spec("f:t:co:sl", {"from-code": "f", "to-code": "t", "output": "o", "silent": "s", "list": "l"})


def _codec(inv: Invocation, name: str) -> tuple[str, set[str]]:
    """(Python codec, suffixes like {"TRANSLIT"}) of a glibc charset name; defers for others."""
    base, *suffixes = name.upper().split("//")
    flags = set()
    for s in suffixes:
        flags |= {f for f in s.split(",") if f}
    if flags - {"TRANSLIT", "IGNORE"}:
        raise Defer(f"iconv: conversion suffix //{'//'.join(suffixes)}")
    codec = _CHARSETS.get(base)
    if codec is None:
        raise Defer(f"iconv: character set {name!r} is not modelled (only UTF-8, ASCII, ISO-8859-1/15)")
    return codec, flags


def iconv(inv: Invocation) -> int:
    """``iconv -f FROM -t TO [-c] [-s] [-o FILE] [FILE...]`` (see the module note)."""
    try:
        opts, files = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    src = dst = output = None
    omit = False
    for k, v in opts:
        if k == "f":
            src = v
        elif k == "t":
            dst = v
        elif k == "c":
            omit = True
        elif k == "o":
            output = v
        elif k == "l":
            raise Defer("iconv -l (the list of every gconv module)")
    if src is None or dst is None:
        raise Defer("iconv without -f and -t converts from/to the locale's charmap")
    from_codec, from_flags = _codec(inv, src)
    to_codec, to_flags = _codec(inv, dst)
    ignore = "IGNORE" in to_flags or "IGNORE" in from_flags
    if ignore and omit:
        raise Defer("iconv -c with //IGNORE")
    translit = "TRANSLIT" in to_flags
    out = bytearray()
    status = 0
    for name in files or ["-"]:
        if name == "-":
            data = bytes(inv.stdin)
        else:
            try:
                data = inv.fs.read_bytes(inv.path(name))
            except OSError as e:
                inv.err(f"iconv: cannot open input file `{name}': {e.strerror}\n")
                status = 1
                continue
        got, error = _convert(data, from_codec, to_codec, omit or ignore, _transliterator(inv, translit, to_codec))
        out += got
        if not error and ignore and got_dropped(data, from_codec, to_codec):
            # glibc 2.36: the IGNORE error handler skips, then the conversion call still
            # fails with EILSEQ at the end of the buffer
            error = f"illegal input sequence at position {len(data)}"
        if error:
            inv.err(f"iconv: {error}\n")
            status = 1
            break  # process_file failing ends the run: later files are not converted
    if output is not None:
        try:
            _write(inv, output, bytes(out))
        except OSError as e:  # iconv's message for an unwritable output is not modelled
            raise Defer(f"iconv -o {output}: {e.strerror}") from None
    else:
        inv.out(bytes(out))
    return status


def _transliterator(inv: Invocation, translit: bool, to_codec: str):
    """What //TRANSLIT does with a character the target lacks: in the C/POSIX locale (the
    process's LC_CTYPE from LC_ALL, LC_CTYPE, LANG) glibc's built-in table, else "?"; None
    without //TRANSLIT. Other locales' tables, and non-ASCII targets (whose conversion may
    pick another alternative of an entry), are deferred when a character needs them."""
    if not translit:
        return None
    ctype = next((inv.env[k] for k in ("LC_ALL", "LC_CTYPE", "LANG") if inv.env.get(k)), "C")
    if ctype in ("C", "POSIX") and to_codec == "ascii":
        return lambda ch: C_TRANSLIT.get(ord(ch), "?").encode("ascii")

    def defer(ch: str) -> bytes:
        raise Defer(f"iconv //TRANSLIT of a character the target lacks in the locale {ctype!r}: "
                    "only the C locale's table (to ASCII) is modelled")
    return defer


def _convert(data: bytes, from_codec: str, to_codec: str, omit: bool, translit) -> tuple[bytes, str]:
    """(the converted bytes, an error message or ''), stopping at the first error as iconv."""
    try:
        text = data.decode(from_codec)
        bad_at = None
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.end == len(data) and from_codec == "utf-8":
            incomplete = True
        else:
            incomplete = False
        if omit and not incomplete:
            text = data.decode(from_codec, "ignore")
            bad_at = None
        else:
            text = data[:e.start].decode(from_codec)
            bad_at = (e.start, incomplete)
    out = bytearray()
    pos = 0  # the input byte offset of each character, for the message
    for ch in text:
        try:
            enc = ch.encode(to_codec)
        except UnicodeEncodeError:
            if translit is not None:
                out += translit(ch)
                pos += len(ch.encode(from_codec))
                continue
            if omit:
                pos += len(ch.encode(from_codec))
                continue
            return bytes(out), f"illegal input sequence at position {pos}"
        out += enc
        pos += len(ch.encode(from_codec))
    if bad_at is not None:
        start, incomplete = bad_at
        if incomplete:
            return bytes(out), "incomplete character or shift sequence at end of buffer"
        return bytes(out), f"illegal input sequence at position {start}"
    return bytes(out), ""


def got_dropped(data: bytes, from_codec: str, to_codec: str) -> bool:
    """Whether converting ``data`` drops anything (an invalid or unconvertible sequence)."""
    try:
        data.decode(from_codec).encode(to_codec)
    except (UnicodeDecodeError, UnicodeEncodeError):
        return True
    return False


def _write(inv: Invocation, name: str, data: bytes) -> None:
    """``-o FILE``: created (0666 minus the umask) or truncated, written once at the end."""
    p = inv.path(name)
    h = inv.fs.open_handle(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 & ~inv.umask)
    try:
        h.pwrite(0, data)
    finally:
        h.close()
