"""dash's builtins, simulated: special builtins (XCU 2.14) and the regular ones dash has.

Each builtin is ``f(sh, argv) -> status`` on a :class:`nuwa.script.interp.Shell`. Messages
and statuses follow dash 0.5.12 (``sh: LINE: name: message``); the differential table in
tests/script/test_dash_diff.py holds them to it. Output goes through the shell's fd table.
``test``/``[``, ``echo``, ``printf``, ``true`` and ``false`` live here (they are builtins in
dash, so a script never reaches ``/usr/bin/[``); the file tests ask the filesystem model.
"""

from __future__ import annotations

import re
import stat as _stat

from nuwa.script.arith import parse_number
from nuwa.script.expand import ExpansionError, match
from nuwa.script.record import CommandRecord, DROPPED

BUILTINS: dict = {}
SPECIAL: dict = {}
KEYWORDS = frozenset("if then else elif fi do done case esac while until for { } ! in".split())


def builtin(*names: str, special: bool = False):
    """Register ``f`` under ``names`` in the special or regular table."""
    def deco(f):
        for n in names:
            (SPECIAL if special else BUILTINS)[n] = f
        return f
    return deco


def _num(sh, name: str, s: str) -> int:
    if not re.fullmatch(r"[0-9]+", s):
        sh.fatal(f"{name}: Illegal number: {s}")
    return int(s)


# ---------------------------------------------------------------------------------------
# special builtins
# ---------------------------------------------------------------------------------------


@builtin(":", special=True)
@builtin("true")
def b_true(sh, argv):
    return 0


@builtin("false")
def b_false(sh, argv):
    return 1


@builtin("exit", special=True)
def b_exit(sh, argv):
    from nuwa.script.interp import ExitShell

    st = sh.status if len(argv) < 2 else _num(sh, "exit", argv[1]) & 0xFF
    raise ExitShell(st)


@builtin("return", special=True)
def b_return(sh, argv):
    from nuwa.script.interp import Return

    st = sh.status if len(argv) < 2 else _num(sh, "return", argv[1]) & 0xFF
    raise Return(st)


@builtin("break", "continue", special=True)
def b_break(sh, argv):
    from nuwa.script.interp import LoopControl

    n = 1 if len(argv) < 2 else _num(sh, argv[0], argv[1])
    if n == 0:
        sh.fatal(f"{argv[0]}: Illegal number: {argv[1]}")
    if sh.loop_depth == 0:
        return 0
    raise LoopControl(argv[0], min(n, sh.loop_depth))


@builtin("shift", special=True)
def b_shift(sh, argv):
    n = 1 if len(argv) < 2 else _num(sh, "shift", argv[1])
    if n > len(sh.positional):
        sh.fatal("shift: can't shift that many")
    sh.positional = sh.positional[n:]
    return 0


@builtin("eval", special=True)
def b_eval(sh, argv):
    text = " ".join(argv[1:])
    if not text.strip():
        return 0
    return sh.eval_text(text, "eval")


@builtin(".", special=True)
def b_dot(sh, argv):
    from nuwa.script.interp import Return
    from nuwa.script.lexer import ParseError
    from nuwa.script.parser import parse

    if len(argv) < 2:
        return 0
    name = argv[1]
    path = None
    if "/" in name:
        path = sh.abspath(name)
    else:
        for d in (sh.getvar("PATH") or "").split(":"):
            p = sh.abspath((d or ".") + "/" + name)
            try:
                if sh.fs.stat(p).is_reg:
                    path = p
                    break
            except OSError:
                continue
    try:
        if path is None:
            raise FileNotFoundError
        text = sh.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except OSError:
        sh.fatal(f".: cannot open {name}: No such file")
    try:
        prog = parse(text)
    except ParseError as e:
        sh.lineno = e.line
        sh.fatal(f"{name}: {e.dash_text()}")
    saved = sh.positional
    if len(argv) > 2:
        sh.positional = argv[2:]
    try:
        return sh.run_list(prog.body)
    except Return as r:
        return r.status
    finally:
        if len(argv) > 2:
            sh.positional = saved


@builtin("exec", special=True)
def b_exec(sh, argv):
    from nuwa.script.interp import ExitShell

    args = argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        # redirections of `exec` stay: the caller's restore list must forget them
        sh.exec_keep = True
        return 0
    # the exec'd program takes the script's place, and its status is the script's: a deferred
    # one would leave the rest of the invocation undecided, so the whole script is deferred
    sh.exec_mode = True
    st = sh.run_external(args, [], prefix="exec: ")
    raise ExitShell(st)


@builtin("export", "readonly", special=True)
def b_export(sh, argv):
    from nuwa.script.interp import EXPORT, READONLY

    flag = EXPORT if argv[0] == "export" else READONLY
    args = argv[1:]
    if args and args[0] == "-p":
        args = args[1:]
    if not args:
        for k in sorted(sh.vars):
            v, f = sh.vars[k]
            if f & flag:
                sh.write(1, f"{argv[0]} {k}" + (f"={_quote(v)}" if v is not None else "") + "\n")
        return 0
    for a in args:
        name, eq, value = a.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", name):
            sh.fatal(f"{argv[0]}: {name}: bad variable name")
        sh.setvar_or_die(name, value if eq else None, flag)
    return 0


@builtin("unset", special=True)
def b_unset(sh, argv):
    funcs = False
    args = argv[1:]
    while args and args[0] in ("-f", "-v"):
        funcs = args[0] == "-f"
        args = args[1:]
    st = 0
    for n in args:
        if funcs:
            sh.functions.pop(n, None)
            continue
        try:
            sh.unsetvar(n)
        except ExpansionError as e:
            sh.error(f"unset: {e}")
            st = 1
            from nuwa.script.interp import ExitShell

            raise ExitShell(2)
    return st


@builtin("set", special=True)
def b_set(sh, argv):
    args = argv[1:]
    if not args:
        for k in sorted(sh.vars):
            v = sh.vars[k][0]
            if v is not None:
                sh.write(1, f"{k}={_quote(v)}\n")
        return 0
    names = {"errexit": "e", "noglob": "f", "noexec": "n", "xtrace": "x", "verbose": "v",
             "noclobber": "C", "allexport": "a", "nounset": "u", "ignoreeof": "I",
             "interactive": "i", "monitor": "m", "stdin": "s", "vi": "V", "emacs": "E",
             "notify": "b", "privileged": "p", "nolog": "q", "debug": "d"}
    while args:
        a = args[0]
        if a == "--":
            args = args[1:]
            sh.positional = list(args)
            return 0
        if a in ("-", "+"):
            args = args[1:]
            break
        if a[0] not in "-+" or len(a) < 2:
            break
        on = a[0] == "-"
        args = args[1:]
        for c in a[1:]:
            if c == "o":
                if not args:
                    if on:
                        sh.write(1, "Current option settings\n")
                        for n, l in names.items():
                            if n in ("debug",):
                                continue
                            sh.write(1, f"{n:<16}{'on' if l in sh.opts else 'off'}\n")
                    else:
                        for n, l in names.items():
                            if n != "debug":
                                sh.write(1, f"set {'-' if l in sh.opts else '+'}o {n}\n")
                    continue
                opt = args.pop(0)
                if opt not in names:
                    sh.fatal(f"set: Illegal option -o {opt}")
                c = names[opt]
            elif c not in "efnxvCauIimsVEbpq":
                sh.fatal(f"set: Illegal option {a[0]}{c}")
            if on:
                sh.opts.add(c)
            else:
                sh.opts.discard(c)
    else:
        return 0
    sh.positional = list(args)
    return 0


@builtin("trap", special=True)
def b_trap(sh, argv):
    args = argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        for sig, act in sh.traps.items():
            sh.write(1, f"trap -- {_quote(act)} {sig}\n")
        return 0
    if len(args) == 1 or re.fullmatch(r"[0-9]+", args[0]):
        action, sigs = "-", args
    else:
        action, sigs = args[0], args[1:]
    st = 0
    for s in sigs:
        sig = _signame(s)
        if sig is None:
            sh.write(2, f"trap: {s}: bad trap\n")
            st = 1
            continue
        if action == "-":
            sh.traps.pop(sig, None)
        else:
            sh.traps[sig] = action
            if sig != "EXIT" and action:
                # signals never arrive in a simulation: the trap is recorded, not run
                sh.record.ignored_traps.append(f"{sig}: {action}")
    return st


_SIGNALS = ["EXIT", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1",
            "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP",
            "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"]


def _signame(s: str) -> str | None:
    if s.isdigit():
        n = int(s)
        return _SIGNALS[n] if n < len(_SIGNALS) else None
    s = s.upper()
    if s.startswith("SIG"):
        s = s[3:]
    return s if s in _SIGNALS else None


@builtin("times", special=True)
def b_times(sh, argv):
    sh.write(1, "0m0.000000s 0m0.000000s\n0m0.000000s 0m0.000000s\n")
    return 0


# ---------------------------------------------------------------------------------------
# regular builtins
# ---------------------------------------------------------------------------------------


@builtin("local")
def b_local(sh, argv):
    for a in argv[1:]:
        name, eq, value = a.partition("=")
        if name == "-":
            continue
        try:
            sh.make_local(name)
        except ExpansionError as e:
            sh.fatal(str(e))
        if eq:
            sh.setvar_or_die(name, value)
    return 0


@builtin("echo")
def b_echo(sh, argv):
    args = argv[1:]
    nl = True
    if args and args[0] == "-n":
        nl = False
        args = args[1:]
    out = []
    for i, a in enumerate(args):
        text, stop = _escapes(a, echo=True)
        out.append(text)
        if stop:
            sh.write(1, " ".join(out))
            return 0
    sh.write(1, " ".join(out) + ("\n" if nl else ""))
    return 0


def _escapes(s: str, echo: bool) -> tuple[str, bool]:
    """Backslash escapes of dash's echo and printf %b; returns (text, stop-at-\\c)."""
    if "\\" not in s:
        return s, False
    out = []
    i, n = 0, len(s)
    table = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = s[i + 1]
        if d == "c":
            return "".join(out), True
        if d in table:
            out.append(table[d])
            i += 2
        elif d == "0":
            m = re.match(r"[0-7]{0,3}", s[i + 2 :])
            out.append(chr(int(m.group() or "0", 8) & 0xFF))
            i += 2 + len(m.group())
        elif not echo and d in "1234567":
            m = re.match(r"[0-7]{1,3}", s[i + 1 :])
            out.append(chr(int(m.group(), 8) & 0xFF))
            i += 1 + len(m.group())
        else:
            out.append("\\" + d)
            i += 2
    return "".join(out), False


@builtin("printf")
def b_printf(sh, argv):
    if len(argv) < 2:
        sh.error("printf: usage: printf format [arg ...]")
        return 2
    fmt = argv[1]
    args = argv[2:]
    if fmt == "--" and args:
        fmt, args = args[0], args[1:]
    out: list[str] = []
    state = {"st": 0, "i": 0}
    total = [0]

    def nxt() -> str | None:
        if state["i"] < len(args):
            state["i"] += 1
            return args[state["i"] - 1]
        return None

    def number(a: str | None, conv) -> int | float:
        if a is None or a == "":
            return 0
        if a[0] in "'\"":
            return ord(a[1]) if len(a) > 1 else 0
        try:
            if conv is float:
                return float(a)
            v = parse_number(a)
            if v is None:
                m = re.match(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)", a)
                v = parse_number(m.group()) if m else 0
                sh.error(f"printf: {a}: {'expected numeric value' if not m else 'not completely converted'}")
                state["st"] = 1
            return v
        except ValueError:
            sh.error(f"printf: {a}: expected numeric value")
            state["st"] = 1
            return 0

    spec = re.compile(r"%([-+ #0]*)(\*|[0-9]*)(?:\.(\*|[0-9]*))?([a-zA-Z%])")
    while True:
        used_before = state["i"]
        i = 0
        while i < len(fmt):
            c = fmt[i]
            if c == "\\":
                j = i + 1
                if j < len(fmt) and fmt[j] == "c":
                    sh.write(1, "".join(out))
                    return state["st"]
                m = re.match(r"\\([0-7]{1,3}|.)", fmt[i:], re.S)
                text, _ = _escapes(m.group(), echo=False) if m else ("\\", False)
                out.append(text)
                i += len(m.group()) if m else 1
                continue
            if c != "%":
                j = fmt.find("%", i)
                k = fmt.find("\\", i)
                ends = [x for x in (j, k) if x >= 0]
                e = min(ends) if ends else len(fmt)
                out.append(fmt[i:e])
                i = e
                continue
            m = spec.match(fmt, i)
            if not m:
                sh.error(f"printf: %{fmt[i + 1 : i + 2]}: invalid directive")
                sh.write(1, "".join(out))
                return 1
            i = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue
            if width == "*":
                width = str(number(nxt(), int))
            if prec == "*":
                prec = str(number(nxt(), int))
            if width and width.lstrip("-").isdigit() and int(width.lstrip("-")) > 1 << 20:
                raise sh.limit("printf field width over 1 MiB")
            if prec and prec.isdigit() and int(prec) > 1 << 20:
                raise sh.limit("printf precision over 1 MiB")
            a = nxt()
            pyspec = "%" + flags + (width or "") + (("." + prec) if prec is not None else "")
            if conv == "s":
                out.append((pyspec + "s") % (a or ""))
            elif conv == "b":
                text, stop = _escapes(a or "", echo=False)
                out.append(_pad(flags, width, prec, text))
                if stop:
                    sh.write(1, "".join(out))
                    return state["st"]
            elif conv == "c":
                out.append(_pad(flags, width, None, (a or "")[:1]))
            elif conv in "diouxX":
                v = number(a, int)
                if conv in "ouxX" and v < 0:
                    v += 1 << 64
                out.append((pyspec + conv.replace("i", "d").replace("u", "d")) % v)
            elif conv in "eEfFgGaA":
                out.append((pyspec + conv) % float(number(a, float)))
            else:
                sh.error(f"printf: %{conv}: invalid directive")
                sh.write(1, "".join(out))
                return 1
            total[0] += len(out[-1])
            if total[0] > (16 << 20):
                raise sh.limit("printf output over 16 MiB")
        if state["i"] >= len(args) or state["i"] == used_before:
            break
    sh.write(1, "".join(out))
    return state["st"]


def _pad(flags: str, width: str | None, prec: str | None, text: str) -> str:
    if prec:
        text = text[: int(prec)]
    w = int(width) if width else 0
    return text.ljust(w) if "-" in flags else text.rjust(w)


@builtin("read")
def b_read(sh, argv):
    args = argv[1:]
    raw = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        opt = args.pop(0)
        if opt == "--":
            break
        if opt == "-r":
            raw = True
        elif opt == "-p":
            if args:
                args.pop(0)  # dash prompts only when stdin is a terminal: never here
        else:
            sh.error(f"read: Illegal option {opt}")
            return 2
    if not args:
        sh.error("read: arg count")
        return 2
    d = sh.fds.get(0)
    data = []
    eof = True
    while d is not None:
        line = d.readline()
        if not line:
            break
        text = line.decode("utf-8", "surrogateescape")
        if text.endswith("\n"):
            text = text[:-1]
            if not raw and len(text) - len(text.rstrip("\\")) % 2 == 1 and text.endswith("\\"):
                pass
            if not raw and _odd_backslash(text):
                data.append(text[:-1])
                continue
            data.append(text)
            eof = False
            break
        data.append(text)
        break
    line = "".join(data)
    ifs = sh.getvar("IFS")
    if ifs is None:
        ifs = " \t\n"
    fields = _read_split(line, ifs, len(args), raw)
    for i, name in enumerate(args):
        sh.setvar_or_die(name, fields[i] if i < len(fields) else "")
    return 1 if eof else 0


def _odd_backslash(text: str) -> bool:
    n = len(text) - len(text.rstrip("\\"))
    return n % 2 == 1


def _read_split(line: str, ifs: str, n: int, raw: bool) -> list[str]:
    """Split a line read by ``read`` into at most ``n`` fields (the last keeps the rest)."""
    ws = "".join(c for c in ifs if c in " \t\n")
    # backslash removal (not with -r): the escaped character is literal, never a separator
    chars: list[tuple[str, bool]] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and not raw and i + 1 < len(line):
            chars.append((line[i + 1], True))
            i += 2
            continue
        if c == "\\" and not raw:
            i += 1
            continue
        chars.append((c, False))
        i += 1
    fields: list[str] = []
    i = 0
    m = len(chars)
    while i < m and chars[i][0] in ws and not chars[i][1]:
        i += 1
    while i < m:
        if len(fields) == n - 1:
            rest = chars[i:]
            while rest and rest[-1][0] in ws and not rest[-1][1]:
                rest.pop()
            fields.append("".join(c for c, _ in rest))
            return fields
        cur = []
        while i < m and not (chars[i][0] in ifs and not chars[i][1]):
            cur.append(chars[i][0])
            i += 1
        fields.append("".join(cur))
        # skip one separator with surrounding whitespace
        while i < m and chars[i][0] in ws and not chars[i][1]:
            i += 1
        if i < m and chars[i][0] in ifs and chars[i][0] not in ws and not chars[i][1]:
            i += 1
            while i < m and chars[i][0] in ws and not chars[i][1]:
                i += 1
    return fields


@builtin("cd")
def b_cd(sh, argv):
    args = [a for a in argv[1:] if a not in ("-L", "-P")]
    target = args[0] if args else sh.getvar("HOME") or ""
    printit = False
    if target == "-":
        target = sh.getvar("OLDPWD") or ""
        printit = True
    new = _normalize(sh.abspath(target))
    try:
        if not sh.fs.stat(new).is_dir:
            raise NotADirectoryError
    except (OSError, ValueError):
        sh.error(f"cd: can't cd to {target}")
        return 2
    sh.setvar_or_die("OLDPWD", sh.cwd)
    sh.cwd = new
    sh.setvar_or_die("PWD", new)
    if printit:
        sh.write(1, new + "\n")
    return 0


def _normalize(p: str) -> str:
    parts: list[str] = []
    for c in p.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    return "/" + "/".join(parts)


@builtin("pwd")
def b_pwd(sh, argv):
    sh.write(1, sh.cwd + "\n")
    return 0


@builtin("umask")
def b_umask(sh, argv):
    args = argv[1:]
    sym = False
    if args and args[0] == "-S":
        sym = True
        args = args[1:]
    if not args:
        if sym:
            perm = ~sh.umask & 0o777
            parts = []
            for who, shift in (("u", 6), ("g", 3), ("o", 0)):
                bits = (perm >> shift) & 7
                parts.append(who + "=" + "".join(c for c, b in (("r", 4), ("w", 2), ("x", 1)) if bits & b))
            sh.write(1, ",".join(parts) + "\n")
        else:
            sh.write(1, f"{sh.umask:04o}\n")
        return 0
    a = args[0]
    if re.fullmatch(r"[0-7]+", a):
        sh.umask = int(a, 8) & 0o777
        return 0
    perm = ~sh.umask & 0o777
    for clause in a.split(","):
        m = re.fullmatch(r"([ugoa]*)([-+=])([rwx]*)", clause)
        if not m:
            sh.error(f"umask: Illegal mode: {a}")
            return 2
        who = m.group(1) or "a"
        mask = 0
        for w in who:
            mask |= {"u": 0o700, "g": 0o070, "o": 0o007, "a": 0o777}[w]
        bits = 0
        for c in m.group(3):
            bits |= {"r": 0o444, "w": 0o222, "x": 0o111}[c]
        bits &= mask
        if m.group(2) == "+":
            perm |= bits
        elif m.group(2) == "-":
            perm &= ~bits
        else:
            perm = (perm & ~mask) | bits
    sh.umask = ~perm & 0o777
    return 0


@builtin("wait")
def b_wait(sh, argv):
    if len(argv) > 1:
        st = 127
        for a in argv[1:]:
            st = sh.jobs.get(int(a), 127) if a.isdigit() else 127
        return st
    return 0


@builtin("kill")
def b_kill(sh, argv):
    # no process of the image runs during a simulation: signalling is for a running system
    sh.record.add(CommandRecord(sh.lineno, argv[:8], "builtin", DROPPED, "signals a running process"))
    return 0


@builtin("ulimit")
def b_ulimit(sh, argv):
    if len(argv) == 1 or argv[1:] in (["-f"], ["-n"], ["-c"]):
        sh.write(1, "unlimited\n")
    return 0


@builtin("hash")
def b_hash(sh, argv):
    return 0


@builtin("alias", "unalias")
def b_alias(sh, argv):
    # aliases are not expanded (maintainer scripts do not use them; dash only expands them
    # interactively in practice); defining one is accepted and recorded
    if argv[0] == "alias" and len(argv) > 1:
        sh.record.ignored_traps.append("alias " + " ".join(argv[1:]))
    return 0


@builtin("getopts")
def b_getopts(sh, argv):
    if len(argv) < 3:
        sh.error("getopts: usage: getopts optstring var [arg]")
        return 2
    optstring, var = argv[1], argv[2]
    args = argv[3:] if len(argv) > 3 else sh.positional
    silent = optstring.startswith(":")
    try:
        optind = int(sh.getvar("OPTIND") or "1")
    except ValueError:
        optind = 1
    sub = getattr(sh, "_getopts_sub", 0)
    if getattr(sh, "_getopts_ind", None) != optind:
        sub = 0
    if optind - 1 >= len(args) or sub == 0 and (not args[optind - 1].startswith("-") or args[optind - 1] == "-"):
        sh.setvar_or_die(var, "?")
        sh.vars.pop("OPTARG", None)
        return 1
    arg = args[optind - 1]
    if sub == 0 and arg == "--":
        sh.setvar_or_die("OPTIND", str(optind + 1))
        sh.setvar_or_die(var, "?")
        return 1
    pos = sub or 1
    c = arg[pos]
    pos += 1
    idx = optstring.find(c)
    def advance():
        nonlocal optind, pos
        if pos >= len(arg):
            optind += 1
            pos = 0
    if c == ":" or idx < 0:
        advance()
        if silent:
            sh.setvar_or_die("OPTARG", c)
        else:
            sh.write(2, f"Illegal option -{c}\n")
            sh.vars.pop("OPTARG", None)
        sh.setvar_or_die(var, "?")
    elif idx + 1 < len(optstring) and optstring[idx + 1] == ":":
        if pos < len(arg):
            sh.setvar_or_die("OPTARG", arg[pos:])
            optind += 1
            pos = 0
        elif optind < len(args):
            sh.setvar_or_die("OPTARG", args[optind])
            optind += 2
            pos = 0
        else:
            optind += 1
            pos = 0
            if silent:
                sh.setvar_or_die("OPTARG", c)
                sh.setvar_or_die(var, ":")
            else:
                sh.write(2, f"No arg for -{c} option\n")
                sh.vars.pop("OPTARG", None)
                sh.setvar_or_die(var, "?")
            sh.setvar_or_die("OPTIND", str(optind))
            sh._getopts_ind, sh._getopts_sub = optind, 0
            return 0
        sh.setvar_or_die(var, c)
    else:
        advance()
        sh.setvar_or_die(var, c)
        sh.vars.pop("OPTARG", None)
    sh.setvar_or_die("OPTIND", str(optind))
    sh._getopts_ind, sh._getopts_sub = optind, pos
    return 0


def describe(sh, name: str) -> tuple[str, str] | None:
    """What ``name`` is: (kind, text) for ``command -v``/``type``, None if not found."""
    if name in KEYWORDS:
        return "keyword", name
    if name in sh.functions:
        return "function", name
    if name in SPECIAL:
        return "special", name
    if name in BUILTINS:
        return "builtin", name
    p = sh.find_command(name)
    if p is not None:
        return "file", p
    return None


@builtin("command")
def b_command(sh, argv):
    args = argv[1:]
    mode = ""
    while args and args[0].startswith("-") and len(args[0]) > 1:
        o = args.pop(0)
        if o == "--":
            break
        for ch in o[1:]:
            if ch in "vV":
                mode = ch
            elif ch != "p":
                sh.error(f"command: Illegal option -{ch}")
                return 2
    if not args:
        return 0
    if mode:
        st = 0
        for n in args:
            d = describe(sh, n)
            if d is None:
                if mode == "V":
                    sh.write(2 if False else 1, f"{n}: not found\n")
                st = 127
                continue
            sh.write(1, (d[1] if mode == "v" else _type_text(n, d)) + "\n")
        return st
    name = args[0]
    if name in SPECIAL:
        return SPECIAL[name](sh, args)
    if name in BUILTINS:
        return BUILTINS[name](sh, args)
    return sh.run_external(args, [])


def _type_text(name: str, d: tuple[str, str]) -> str:
    kind, text = d
    return {
        "keyword": f"{name} is a shell keyword",
        "function": f"{name} is a shell function",
        "special": f"{name} is a special shell builtin",
        "builtin": f"{name} is a shell builtin",
    }.get(kind, f"{name} is {text}")


@builtin("type")
def b_type(sh, argv):
    st = 0
    for n in argv[1:]:
        d = describe(sh, n)
        if d is None:
            sh.write(1, f"{n}: not found\n")
            st = 127
        else:
            sh.write(1, _type_text(n, d) + "\n")
    return st


def _quote(v: str) -> str:
    """dash's single-quote style for ``set``/``export -p``/``trap`` listings."""
    return "'" + v.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------------------------------
# test / [
# ---------------------------------------------------------------------------------------

_UNARY = set("bcdefghkLprsStuwxznOGN")
_BINARY = {"=", "!=", "==", "<", ">", "-eq", "-ne", "-gt", "-ge", "-lt", "-le", "-nt", "-ot", "-ef"}


class _TestError(Exception):
    pass


@builtin("test", "[")
def b_test(sh, argv):
    name = argv[0]
    args = argv[1:]
    if name == "[":
        if not args or args[-1] != "]":
            sh.error("[: missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if _TestEval(sh, args, name).run() else 1
    except _TestError as e:
        sh.error(f"{name}: {e}")
        return 2


class _TestEval:
    """dash's test(1): POSIX's rules for up to four arguments, recursive descent beyond."""

    def __init__(self, sh, args: list[str], name: str, dbracket: bool = False):
        self.sh = sh
        self.a = args
        self.i = 0
        self.name = name
        self.dbracket = dbracket

    def run(self) -> bool:
        a = self.a
        n = len(a)
        if n == 0:
            return False
        if n == 1:
            return a[0] != ""
        if n == 2 and a[0] == "!":
            return a[1] == ""
        if n == 2 and _is_unary(a[0]):
            return self.unary(a[0][1], a[1])
        if n == 3 and a[1] in _BINARY | {"-a", "-o"}:
            return self.binary(a[0], a[1], a[2])
        if n == 3 and a[0] == "!":
            return not _TestEval(self.sh, a[1:], self.name).run()
        if n == 4 and a[0] == "!":
            return not _TestEval(self.sh, a[1:], self.name).run()
        v = self.oexpr()
        if self.i < n:
            # dash names the argument before the first one left over
            raise _TestError(f"{a[max(0, self.i - 1)]}: unexpected operator")
        return v

    def peek(self) -> str | None:
        return self.a[self.i] if self.i < len(self.a) else None

    def oexpr(self) -> bool:
        v = self.aexpr()
        while self.peek() in ("-o", "||") and (self.peek() == "-o" or self.dbracket):
            self.i += 1
            r = self.aexpr()
            v = v or r
        return v

    def aexpr(self) -> bool:
        v = self.nexpr()
        while self.peek() in ("-a", "&&") and (self.peek() == "-a" or self.dbracket):
            self.i += 1
            r = self.nexpr()
            v = v and r
        return v

    def nexpr(self) -> bool:
        if self.peek() == "!":
            self.i += 1
            return not self.nexpr()
        return self.primary()

    def primary(self) -> bool:
        t = self.peek()
        if t is None:
            raise _TestError("argument expected")
        if t == "(":
            self.i += 1
            v = self.oexpr()
            if self.peek() != ")":
                raise _TestError("closing paren expected")
            self.i += 1
            return v
        rest = len(self.a) - self.i
        if rest >= 3 and self.a[self.i + 1] in _BINARY:
            l, op, r = self.a[self.i : self.i + 3]
            self.i += 3
            return self.binary(l, op, r)
        if _is_unary(t) and rest >= 2:
            self.i += 2
            return self.unary(t[1], self.a[self.i - 1])
        self.i += 1
        return t != ""

    def num(self, s: str) -> int:
        t = s.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", t):
            raise _TestError(f"Illegal number: {s}")
        return int(t)

    def binary(self, l: str, op: str, r: str) -> bool:
        if op == "=" or op == "==":
            return match(r, l) if self.dbracket and getattr(self, "pattern_rhs", False) else l == r
        if op == "!=":
            return not match(r, l) if self.dbracket and getattr(self, "pattern_rhs", False) else l != r
        if op == "<":
            return l.encode("utf-8", "surrogateescape") < r.encode("utf-8", "surrogateescape")
        if op == ">":
            return l.encode("utf-8", "surrogateescape") > r.encode("utf-8", "surrogateescape")
        if op == "-a":
            return l != "" and r != ""
        if op == "-o":
            return l != "" or r != ""
        if op in ("-nt", "-ot", "-ef"):
            a, b = self.stat(l), self.stat(r)
            if op == "-ef":
                return a is not None and b is not None and (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
            if a is None or b is None:  # dash needs both files
                return False
            return a.st_mtime_ns > b.st_mtime_ns if op == "-nt" else a.st_mtime_ns < b.st_mtime_ns
        x, y = self.num(l), self.num(r)
        return {"-eq": x == y, "-ne": x != y, "-gt": x > y, "-ge": x >= y, "-lt": x < y, "-le": x <= y}[op]

    def stat(self, p: str, follow: bool = True):
        if p == "":
            return None
        try:
            path = self.sh.abspath(p)
            return self.sh.fs.stat(path) if follow else self.sh.fs.lstat(path)
        except (OSError, ValueError):
            return None

    def unary(self, op: str, arg: str) -> bool:
        if op == "z":
            return arg == ""
        if op == "n":
            return arg != ""
        if op == "t":
            return False  # no terminal in a simulation
        if op in "hL":
            st = self.stat(arg, follow=False)
            return st is not None and _stat.S_ISLNK(st.st_mode)
        st = self.stat(arg)
        if st is None:
            return False
        m = st.st_mode
        return {
            "e": True, "f": _stat.S_ISREG(m), "d": _stat.S_ISDIR(m), "b": _stat.S_ISBLK(m),
            "c": _stat.S_ISCHR(m), "p": _stat.S_ISFIFO(m), "S": _stat.S_ISSOCK(m),
            "s": st.st_size > 0, "g": bool(m & 0o2000), "u": bool(m & 0o4000), "k": bool(m & 0o1000),
            # the simulation runs as root: read/write always, execute if any x bit or a directory
            "r": True, "w": True, "x": bool(m & 0o111) or _stat.S_ISDIR(m),
            "O": st.st_uid == 0, "G": st.st_gid == 0, "N": st.st_mtime_ns > st.st_atime_ns,
        }[op]


def _is_unary(t: str) -> bool:
    return len(t) == 2 and t[0] == "-" and t[1] in _UNARY


def double_bracket(sh, words) -> int:
    """bash ``[[ ]]``: no splitting or globbing; ``==``/``!=`` match the right side as a pattern."""
    from nuwa.script.ast import Lit

    args = []
    pattern_positions = set()
    for i, w in enumerate(words):
        if i > 0 and words[i - 1].text in ("==", "!=", "=") and not (len(w.parts) == 1 and isinstance(w.parts[0], Lit) and w.parts[0].quoted):
            args.append(sh.exp.pattern(w))
            pattern_positions.add(i)
        else:
            args.append(sh.exp.string(w))
    ev = _TestEval(sh, args, "[[", dbracket=True)
    ev.pattern_rhs = True
    try:
        return 0 if ev.oexpr() and ev.i >= len(args) else (1 if ev.i >= len(args) else 2)
    except _TestError as e:
        sh.error(f"[[: {e}")
        return 2
