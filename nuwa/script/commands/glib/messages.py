"""How the glib tools' messages reach the terminal: gettext and ``g_printerr``'s charset.

Both programs call ``setlocale (LC_ALL, "")`` and translate their messages with the
``glib20`` domain. The models print the untranslated English text, which is what the C,
POSIX and C.UTF-8 locales give (always present in glibc 2.36); any other locale may
translate them, so a model with something to print defers there. ``g_printerr`` (unlike
``fprintf``) converts its UTF-8 text to the locale's charset with ``?`` for what ASCII cannot
hold (``strdup_convert`` in ``gmessages.c``), so under C a “quote” prints as ``?``.
"""

from __future__ import annotations

from nuwa.script.context import Defer, Invocation


def _ctype(inv: Invocation) -> str:
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        if inv.env.get(var):
            return inv.env[var]
    return "C"


def locale_kind(inv: Invocation) -> str | None:
    """"ascii" (C, POSIX), "utf8" (C.UTF-8) or None (another locale: messages may differ)."""
    value = _ctype(inv)
    if value in ("C", "POSIX"):
        return "ascii"
    if value in ("C.UTF-8", "C.utf8"):
        return "utf8"
    return None


def check_printable(inv: Invocation, prog: str) -> None:
    """Defer when messages are to be printed in a locale whose text this model cannot know."""
    if locale_kind(inv) is None:
        raise Defer(f"{prog}: messages in locale {_ctype(inv)!r} (gettext may translate them)")


def printerr_text(inv: Invocation, text: str) -> str:
    """``g_printerr``'s conversion of UTF-8 text to the locale charset."""
    if locale_kind(inv) == "ascii":
        return "".join(c if c.isascii() else "?" for c in text)
    return text
