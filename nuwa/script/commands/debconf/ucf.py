"""What the real ``ucf`` and ``ucfr`` shell scripts need to run in the simulator.

``ucf`` and ``ucfr`` (package ucf 3.0043) are ``#!/bin/sh`` scripts, so Nuwa does not model
them: the interpreter runs the image's own scripts atomically (``run_script_file``), with the
image's ``/etc/ucf.conf``, hashfile, registry and cache, and debconf through the frontend
model when ucf has to ask. That is exact by construction as long as the programs the scripts
call are exact. This module holds the ones no other family provides:

- ``getopt`` (util-linux 2.38 "enhanced" getopt): ``-o``/``--options``, ``-l``/``--longoptions``,
  ``-n``/``--name``, ``-a``/``--alternative`` (``getopt_long_only``), ``-q``, ``-Q``, ``-u``,
  ``--``; output quoted for sh, glibc's error messages;
- ``seq`` with integer arguments (``seq 6 -1 0`` in ucf's backup rotation);
- the single Perl one-liner ucf runs, ``perl -nle 'print "\\Q$_\\E\\n"'`` (quotemeta of
  each line): the ``perl`` model (``miscutils.perl_oneliners``) hands it to :func:`perl` here.

``ucfq`` (Perl) is modelled in ``ucfq.py``.
"""

from __future__ import annotations

import re

from nuwa.script.context import Defer, Invocation


def _sh_quote(s: str) -> str:
    """getopt's shell quoting for sh/bash: ``'...'`` with ``'`` written ``'\\''``."""
    return "'" + s.replace("'", "'\\''") + "'"


def _parse_long(spec: str) -> dict[str, int]:
    """``--longoptions`` text: ``name``, ``name:`` (required), ``name::`` (optional)."""
    out = {}
    for part in re.split(r"[,\s]+", spec):
        if not part:
            continue
        kind = 2 if part.endswith("::") else (1 if part.endswith(":") else 0)
        out[part.rstrip(":")] = kind
    return out


def _parse_short(spec: str) -> dict[str, int]:
    out, i = {}, 0
    if spec[:1] in "+-":
        spec = spec[1:]
    while i < len(spec):
        c = spec[i]
        kind = 2 if spec[i + 1 : i + 3] == "::" else (1 if spec[i + 1 : i + 2] == ":" else 0)
        out[c] = kind
        i += 1 + kind
    return out


class _Getopt:
    """glibc ``getopt_long``/``getopt_long_only`` over a parameter list, as getopt(1) uses it."""

    def __init__(self, name: str, shorts: dict[str, int], longs: dict[str, int], long_only: bool,
                 in_order: bool, quiet: bool):
        self.name, self.shorts, self.longs = name, shorts, longs
        self.long_only, self.in_order, self.quiet = long_only, in_order, quiet
        self.errors: list[str] = []
        self.out: list[str] = []

    def error(self, msg: str) -> None:
        if not self.quiet:
            self.errors.append(f"{self.name}: {msg}\n")

    def opt(self, text: str, kind: int, value: str | None) -> None:
        self.out.append(text)
        if kind == 1 or (kind == 2):
            self.out.append(_sh_quote(value if value is not None else ""))

    def long(self, body: str, dash: str, args: list[str], i: int) -> tuple[int, bool]:
        """Match ``body`` (``name[=value]``) as a long option; (next index, matched)."""
        name, eq, val = body.partition("=")
        if name in self.longs:
            cands = [name]
        else:
            cands = [n for n in self.longs if n.startswith(name)]
        if len(cands) > 1:
            self.error(f"option '{dash}{name}' is ambiguous; possibilities:" + "".join(f" '{dash}{c}'" for c in cands))
            return i, True
        if not cands:
            return i, False
        full, kind = cands[0], self.longs[cands[0]]
        if kind == 0 and eq:
            self.error(f"option '{dash}{full}' doesn't allow an argument")
            return i, True
        if kind == 1 and not eq:
            if i >= len(args):
                self.error(f"option '{dash}{full}' requires an argument")
                return i, True
            val, eq = args[i], "="
            i += 1
        self.opt("--" + full, kind, val if eq else None)
        return i, True

    def run(self, args: list[str]) -> list[str]:
        operands: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            i += 1
            if a == "--":
                operands += args[i:]
                break
            if a.startswith("--"):
                i, ok = self.long(a[2:], "--", args, i)
                if not ok:
                    self.error(f"unrecognized option '{a}'")
                continue
            if a.startswith("-") and a != "-":
                if self.long_only and (len(a) > 2 or a[1] not in self.shorts):
                    i2, ok = self.long(a[1:], "-", args, i)
                    if ok:
                        i = i2
                        continue
                    if a[1] not in self.shorts:
                        self.error(f"unrecognized option '{a}'")
                        continue
                j = 1
                while j < len(a):
                    c = a[j]
                    j += 1
                    if c not in self.shorts:
                        self.error(f"invalid option -- '{c}'")
                        continue
                    kind = self.shorts[c]
                    if kind == 0:
                        self.opt("-" + c, 0, None)
                        continue
                    if j < len(a):
                        self.opt("-" + c, kind, a[j:])
                    elif kind == 1:
                        if i >= len(args):
                            self.error(f"option requires an argument -- '{c}'")
                        else:
                            self.opt("-" + c, 1, args[i])
                            i += 1
                    else:
                        self.opt("-" + c, 2, None)
                    break
                continue
            operands.append(a)
            if self.in_order:
                operands += args[i:]
                break
        return self.out + ["--"] + [_sh_quote(x) for x in operands]


#: getopt(1)'s own long options (util-linux ``getopt.c``)
_OWN = ("options", "longoptions", "name", "alternative", "quiet", "quiet-output", "unquoted", "shell",
        "test", "help", "version")


def getopt(inv: Invocation) -> int:
    """util-linux ``getopt`` in its enhanced mode: ``getopt -o SHORT [-l LONG] -- ARGS`` or, without
    ``-o``, ``getopt [-l LONG] [--] SHORT ARGS`` (exim4's update scripts)."""
    args = inv.argv[1:]
    shorts_spec, longs, name, long_only, quiet, unquoted = None, {}, "getopt", False, False, False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a.startswith("--") and len(a) > 2:  # getopt's own long options, abbreviable
            body, eq, val0 = a[2:].partition("=")
            full = [n for n in _OWN if n.startswith(body)]
            full = [body] if body in _OWN else full
            if len(full) != 1:
                raise Defer(f"getopt {a}: not modelled")
            a = "--" + full[0] + (eq + val0)
        m = re.fullmatch(r"--(options|longoptions|name)(?:=(.*))?", a, re.S)
        if a in ("-o", "-l", "-n") or m:
            key = a[1] if not m else m.group(1)[0]
            val = m.group(2) if m and m.group(2) is not None else None
            if val is None:
                if i >= len(args):
                    raise Defer("getopt: missing option argument")
                val = args[i]
                i += 1
            if key == "o":
                shorts_spec = val
            elif key == "l":
                longs.update(_parse_long(val))
            else:
                name = val
        elif a in ("-a", "--alternative"):
            long_only = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-u", "--unquoted"):
            unquoted = True
        elif a == "--":
            break
        elif not a.startswith("-"):  # getopt's own parse stops at the first parameter
            i -= 1
            unquoted = unquoted or i == 0  # "getopt optstring parameters": the old, unquoted form
            break
        else:
            raise Defer(f"getopt {a}: not modelled")
    if shorts_spec is None and i < len(args):
        # no -o: "the first parameter of the second part is used as the short options string"
        shorts_spec = args[i]
        i += 1
    if shorts_spec is None or unquoted:
        raise Defer("getopt without a short options string (or unquoted output) is not modelled")
    shorts = _parse_short(shorts_spec)
    in_order = shorts_spec.startswith("+") or "POSIXLY_CORRECT" in inv.env
    g = _Getopt(name, shorts, longs, long_only, in_order, quiet)
    words = g.run(args[i:])
    inv.err("".join(g.errors))
    inv.out(" " + " ".join(words) + "\n")
    return 1 if g.errors or (quiet and g.errors) else 0


def seq(inv: Invocation) -> int:
    """``seq [FIRST [INCREMENT]] LAST`` with integers (coreutils' fast integer path)."""
    args = inv.argv[1:]
    if not 1 <= len(args) <= 3 or not all(re.fullmatch(r"[+-]?\d+", a) for a in args):
        raise Defer("seq: only integer FIRST/INCREMENT/LAST are modelled")
    nums = [int(a) for a in args]
    first, incr, last = (1, 1, nums[0]) if len(nums) == 1 else \
        ((nums[0], 1, nums[1]) if len(nums) == 2 else tuple(nums))
    if incr == 0:
        raise Defer("seq: zero increment")
    n = (last - first) // incr + 1 if (last - first) * incr >= 0 else 0
    if n > 1_000_000:
        raise Defer("seq: too many numbers")
    inv.out("".join(f"{first + k * incr}\n" for k in range(n)))
    return 0


_QUOTEMETA = re.compile(rb"[^A-Za-z0-9_]")


def perl(inv: Invocation) -> int:
    """Only ``perl -nle 'print "\\Q$_\\E\\n"'`` (ucf's ``safe_dest_file``); other Perl is deferred."""
    if inv.argv[1:] != ["-nle", 'print "\\Q$_\\E\\n"']:
        raise Defer("perl programs are not simulated")
    data = inv.stdin
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for line in lines:  # -n: each line; -l: chomped, and "\n" added to every print
        inv.out(_QUOTEMETA.sub(lambda m: b"\\" + m.group(0), line) + b"\n\n")
    return 0
