"""dash's builtins, simulated: special builtins (XCU 2.14) and the regular ones dash has.

Each builtin is ``f(sh, argv) -> status`` on a :class:`nuwa.script.interp.Shell`. Messages
and statuses follow dash 0.5.12 (``sh: LINE: name: message``); the differential table in
tests/script/test_dash_diff.py holds them to it. Output goes through the shell's fd table.
``test``/``[``, ``echo``, ``printf``, ``true`` and ``false`` live here (they are builtins in
dash, so a script never reaches ``/usr/bin/[``); the file tests ask the filesystem model.
"""

from __future__ import annotations

import re

from nuwa.script import builtins_alias as _alias, builtins_text as _text, testexpr as _testexpr
from nuwa.script.control import EXPORT, READONLY, ExitShell, LoopControl, Return
from nuwa.script.expand import ExpansionError
from nuwa.script.lexer import ParseError
from nuwa.script.parser import parse
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
    st = sh.status if len(argv) < 2 else _num(sh, "exit", argv[1]) & 0xFF
    raise ExitShell(st)


@builtin("return", special=True)
def b_return(sh, argv):
    st = sh.status if len(argv) < 2 else _num(sh, "return", argv[1]) & 0xFF
    raise Return(st)


@builtin("break", "continue", special=True)
def b_break(sh, argv):
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
                if opt == "pipefail" and sh.bash:
                    (sh.opts.add if on else sh.opts.discard)("P")
                    continue
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
    if "-r" in argv[1:]:
        sh.hashed.clear()
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
    # dash answers from its hash table without looking again (a removed program stays "a
    # tracked alias" until the table is cleared)
    p = sh.tracked(name)
    if p is not None:
        return "tracked", p
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
        "tracked": f"{name} is a tracked alias for {text}",
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
# builtins kept in their own modules
# ---------------------------------------------------------------------------------------

BUILTINS.update({"alias": _alias.b_alias, "unalias": _alias.b_unalias})
alias_words = _alias.alias_words
BUILTINS.update({"echo": _text.b_echo, "printf": _text.b_printf, "read": _text.b_read,
                 "test": _testexpr.b_test, "[": _testexpr.b_test})
double_bracket = _testexpr.double_bracket
