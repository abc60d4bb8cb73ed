"""``gettext`` (gettext-base 0.21 of Debian 12): translate a message, or print it unchanged.

Shell scripts print their messages through ``gettext`` (``grub-mkconfig``'s ``gettext_printf``
and ``grub_warn``, ``gettext.sh``). Under the C or POSIX locale -- what maintainer scripts and
``update-grub`` run with unless the image sets another -- GNU gettext returns the message id
itself, so the model prints it; under any other locale a translation catalogue may apply and
the invocation is deferred. Mirrors ``gettext-runtime/src/gettext.c`` (``main``, ``expand_escape``).
"""

from __future__ import annotations

from nuwa.script.context import Defer, Invocation

#: gettext.c ``expand_escape``: the escapes -e understands
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def message_locale(env: dict[str, str]) -> str:
    """The LC_MESSAGES locale setlocale(3) would pick from ``env`` (LC_ALL, LC_MESSAGES, LANG)."""
    for k in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(k):
            return env[k]
    return "C"


def _expand(s: str) -> tuple[str, bool]:
    """``-e``: backslash escapes; returns (text, whether a ``\\c`` was seen: it is dropped and
    suppresses the final newline of ``-s``, as gettext.c's ``expand_escape`` does)."""
    out, i, stop = [], 0, False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "c":
                stop = True
                i += 2
                continue
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            if n in "01234567":
                j, v = i + 1, 0
                while j < len(s) and j < i + 4 and s[j] in "01234567":
                    v = v * 8 + int(s[j])
                    j += 1
                out.append(chr(v))
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out), stop


def gettext(inv: Invocation) -> int:
    """The ``gettext`` model (see the module note)."""
    args = inv.argv[1:]
    escapes = newline_mode = False
    no_newline = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        a = args.pop(0)
        if a == "--":
            break
        if a.startswith("--domain=") or a == "-d" or (a.startswith("-d") and len(a) > 2):
            if a == "-d":
                if not args:
                    raise Defer("gettext -d without a domain")
                args.pop(0)
            continue
        if set(a[1:]) <= set("eEns"):
            escapes = escapes or "e" in a
            escapes = escapes and "E" not in a
            no_newline = no_newline or "n" in a
            newline_mode = newline_mode or "s" in a
            continue
        raise Defer(f"gettext {a}: option not modelled")
    loc = message_locale(inv.env)
    if loc not in ("C", "POSIX") and not loc.startswith("C."):
        raise Defer(f"gettext: translations for the locale {loc!r} are not modelled")
    if not newline_mode:
        if not args:
            inv.err("gettext: missing arguments\n")
            return 1
        if len(args) > 2:
            inv.err(f"gettext: too many arguments\n")
            return 1
        msg = args[-1]  # [TEXTDOMAIN] MSGID: the C locale returns MSGID untranslated
        if escapes:
            msg, _ = _expand(msg)
        inv.out(msg)
        return 0
    # -s: like echo, every argument a message, a newline unless -n
    parts = []
    for a in args:
        if escapes:
            a, stop = _expand(a)
            no_newline = no_newline or stop
        parts.append(a)
    inv.out(" ".join(parts) + ("" if no_newline else "\n"))
    return 0
