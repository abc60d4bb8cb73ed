"""Model of GNU xargs 4.9 (findutils) for the forms maintainer scripts use.

Commands run through ``inv.run`` (the interpreter's own lookup), so they are simulated too;
exit statuses 123/124/126/127 as xargs gives them. Arguments are batched as findutils'
``bc_push_arg`` does, against the booted system's limits (see ``_ARG_MAX``).
"""

from __future__ import annotations

from nuwa.script.commands import _args
from nuwa.script.commands._common import err
from nuwa.script.context import Defer, Invocation


class _Usage(Exception):
    """An input error xargs reports (status 1)."""

_XARGS = _args.spec("0d:rn:I:i::L:s:tpxa:P:E:e::", {
    "null": "0", "delimiter": "d", "no-run-if-empty": "r", "max-args": "n", "replace": ("i", _args.OPT),
    "max-lines": ("L", _args.REQ), "max-chars": "s", "verbose": "t", "interactive": "p", "exit": "x",
    "arg-file": "a", "max-procs": "P", "show-limits": ("show-limits", _args.NO)}, in_order=True)
#: sysconf(_SC_ARG_MAX) on the booted system: a quarter of the default 8 MiB stack limit
#: (the kernel's _STK_LIM, which systemd and login sessions keep)
_ARG_MAX = 8 * 1024 * 1024 // 4
_XARGS_HEADROOM = 2048  # XARGS_POSIX_HEADROOM
_ARG_MAX_DEFAULT = 128 * 1024  # buildcmd's sensible default command-buffer size


def _xargs_limits(inv: Invocation, bufsize: int) -> str:
    """``--show-limits`` as findutils 4.9 prints it (``bc_init_controlinfo``: the environment
    is subtracted from ARG_MAX with the 2048 headroom, then once more for the usable length)."""
    env = sum(len(k.encode("utf-8", "surrogateescape")) + len(v.encode("utf-8", "surrogateescape")) + 2
              for k, v in inv.env.items())
    upper = _ARG_MAX - env - _XARGS_HEADROOM
    return (f"Your environment variables take up {env} bytes\n"
            f"POSIX upper limit on argument length (this system): {upper}\n"
            "POSIX smallest allowable upper limit on argument length (all systems): 4096\n"
            f"Maximum length of command we could actually use: {upper - env}\n"
            f"Size of command buffer we are actually using: {bufsize}\n"
            "Maximum parallelism (--max-procs must be no greater): 2147483647\n")


def _split_args(data: str) -> list[str]:
    """xargs' default parsing: blanks separate, quotes and backslash protect."""
    out, cur, have = [], [], False
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c in " \t\n":
            if have:
                out.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        if c in "'\"":
            j = data.find(c, i + 1)
            nl = data.find("\n", i + 1)
            if j < 0 or (0 <= nl < j):
                raise _Usage(f"unmatched {'single' if c == chr(39) else 'double'} quote; by default quotes are "
                             "special to xargs unless you use the -0 option")
            cur.append(data[i + 1:j])
            have = True
            i = j + 1
            continue
        if c == "\\" and i + 1 < n:
            cur.append(data[i + 1])
            have = True
            i += 2
            continue
        cur.append(c)
        have = True
        i += 1
    if have:
        out.append("".join(cur))
    return out


def xargs(inv: Invocation) -> int:
    """``xargs [-0] [-d DELIM] [-r] [-n N] [-I STR] [-L N] [COMMAND [ARG...]]``."""
    try:
        opts, cmd = _args.parse(inv, _XARGS)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    nul = norun = False
    delim = None
    maxn = maxl = None
    repl = None
    maxchars = None
    limits = False
    for k, v in opts:
        if k == "show-limits":
            limits = True
        elif k == "s":
            if not v.isdigit() or int(v) < 1:
                raise Defer(f"xargs -s {v!r}")
            maxchars = int(v)
        elif k == "0":
            nul = True
        elif k == "d":
            delim = v.encode().decode("unicode_escape") if v.startswith("\\") else v
        elif k == "r":
            norun = True
        elif k == "n":
            maxn = int(v)
        elif k in ("I", "i"):
            repl = v if v is not None else "{}"
        elif k == "L":
            maxl = int(v)
        elif k in ("x", "P"):
            pass
        else:
            raise Defer(f"xargs -{k} is not modelled")
    if inv.run is None:
        raise Defer("xargs needs the interpreter to run commands")
    env_size = sum(len(k.encode("utf-8", "surrogateescape")) + len(v.encode("utf-8", "surrogateescape")) + 2
                   for k, v in inv.env.items())
    if maxchars is not None and maxchars > _ARG_MAX - env_size - _XARGS_HEADROOM:
        raise Defer("xargs -s above the system's limit")
    bufsize = maxchars if maxchars is not None else min(_ARG_MAX_DEFAULT, _ARG_MAX - env_size - _XARGS_HEADROOM)
    if limits:
        inv.err(_xargs_limits(inv, bufsize))
    cmd = cmd or ["echo"]
    data = bytes(inv.stdin).decode("utf-8", "surrogateescape")
    try:
        if nul or delim is not None:
            d = "\0" if nul else delim
            items = data.split(d)
            if items and items[-1] == "":
                items.pop()
            if delim == "\n" or (delim is not None and not nul):
                pass
        elif repl is not None or maxl is not None:
            items = None
        else:
            items = _split_args(data)
    except _Usage as e:
        err(inv, str(e))
        return 1
    batches: list[list[str]] = []
    if repl is not None:
        lines = [ln.lstrip(" \t") for ln in data.split("\n")] if items is None else items
        for ln in lines:
            if ln == "" and items is None:
                continue
            batches.append([a.replace(repl, ln) for a in cmd])
    else:
        if items is None:
            lines = [ln for ln in data.split("\n") if ln.strip()]
            for i in range(0, len(lines), maxl):
                batches.append(cmd + [a for ln in lines[i:i + maxl] for a in _split_args(ln)])
        else:
            # buildcmd's bc_push_arg: a batch holds at most -n items and, counting every
            # argument with its terminating NUL, at most the command buffer's size
            base = sum(len(a.encode("utf-8", "surrogateescape")) + 1 for a in cmd)
            cur: list[str] = []
            size = base
            for it in items:
                n = len(it.encode("utf-8", "surrogateescape")) + 1
                if base + n > bufsize:
                    raise Defer("xargs: an argument longer than the command buffer")
                if cur and (size + n > bufsize or (maxn and len(cur) >= maxn)):
                    batches.append(cmd + cur)
                    cur, size = [], base
                cur.append(it)
                size += n
            if cur or (not items and not norun):
                batches.append(cmd + cur)
    status = 0
    for argv in batches:
        st, out, errb = inv.run(argv, b"")
        inv.out(out)
        inv.err(errb)
        if st == 255:
            err(inv, f"{argv[0]}: exited with status 255; aborting")
            return 124
        if st in (126, 127):
            return st
        if st != 0:
            status = 123
    return status
