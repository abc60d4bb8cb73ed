"""A model of locales' ``update-locale`` (Debian 12, glibc 2.36's ``debian/local/usr_sbin/update-locale``).

The Perl script reads ``/etc/default/locale`` (or ``--locale-file``), keeps its lines but
comments out every ``NAME=`` assignment, collects the variables it held (none with
``--reset``), applies the ``NAME=value`` arguments (a bare ``NAME`` deletes), then writes each
variable back -- uncommenting its first ``#NAME=`` line or appending ``NAME=value``. Unless
``--no-checks``, it asks ``locale charmap`` (run by the simulated shell with the new settings
on its command line; the ``locale`` model answers from the image's locale archive and
directories) and dies if glibc "Cannot set" a category, and it comments ``LANGUAGE`` out when
its first language does not match ``LANG``/``LC_MESSAGES``/``LC_ALL``.

The script walks its settings with Perl's ``each``, whose order is the per-process hash
seed's: the model computes the result in every order, and when the orders disagree (two
variables appended, say) it defers rather than pick one, since the real file would differ from
run to run. Unusual option forms are deferred too.
"""

from __future__ import annotations

import itertools
import os
import re
import stat as _stat

from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.context import Defer, Invocation

PROG = "update-locale"
USAGE = """Usage: update-locale [OPTIONS] [LANG=locale] [LC_NUMERIC=locale] ...
Options:
   --help              display this message and exit
   --reset             ignore variables defined in the locale file
   --locale-file=FILE  file containing locale variables
                       (Default: /etc/default/locale)
   --no-checks         do not perform sanity checks on locale variables
"""
_CATEGORIES = ("LANG", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER",
               "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION", "LC_ALL")
_MAX_ORDERS_OF = 5  # beyond this many variables the orders are not enumerated: deferred


def _options(inv: Invocation) -> tuple[dict, list[str]]:
    """Getopt::Long's defaults (no bundling, permute; single or double dash) for the script's options."""
    if "POSIXLY_CORRECT" in inv.env:
        raise Defer(f"{PROG}: Getopt::Long under POSIXLY_CORRECT")
    opts = {"reset": False, "no-checks": False, "help": False, "locale-file": "/etc/default/locale"}
    rest: list[str] = []
    args = inv.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            rest.extend(args[i:])
            break
        if not a.startswith("-") or a == "-":
            rest.append(a)
            continue
        word = a[2:] if a.startswith("--") else a[1:]
        name, eq, value = word.partition("=")
        name = name.lower()
        if name in ("reset", "remove", "no-checks", "help", "h") and not eq:
            opts["help" if name == "h" else name] = True
        elif name == "locale-file":
            if not eq:
                if i >= len(args):
                    raise Defer(f"{PROG}: --locale-file without its argument")
                value = args[i]
                i += 1
            opts["locale-file"] = value
        else:
            raise Defer(f"{PROG}: option {a!r} (Getopt::Long's abbreviations and errors are not modelled)")
    return opts, rest


def _render(content: str, order: list[tuple[str, str]]) -> str:
    """The ``while (each %arg)`` loop for one order of the variables."""
    for key, value in order:
        pat = re.compile(r"^#\s*" + key + r"=.*", re.M | re.ASCII)
        new, n = pat.subn(lambda _m, r=f"{key}={value}": r, content, count=1)
        content = new if n else content + f"{key}={value}\n"
    return content


@all_or_nothing  # a Defer while writing leaves the file as it was
def update_locale(inv: Invocation) -> int:
    """``update-locale [--reset] [--no-checks] [--locale-file=FILE] [NAME=value | NAME]...``.

    Mirrors Debian 12's ``/usr/sbin/update-locale`` line by line; see the module doc.
    """
    opts, operands = _options(inv)
    if opts["help"]:
        inv.err(USAGE)
        return 0
    path = inv.path(opts["locale-file"])
    fs = inv.fs
    args: dict[str, str] = {}
    mode = 0o644
    try:
        st = fs.stat(path)
    except OSError:
        st = None
    if st is not None:  # -r as root: whatever exists is readable
        if not _stat.S_ISREG(st.st_mode):
            raise Defer(f"{PROG}: {path} is not a regular file")
        mode = st.st_mode & 0o7777
        text = fs.read_bytes(path).decode("latin-1")  # Perl reads bytes: one character per byte
        # Perl's <IN> splits at "\n" only (str.splitlines would also split at \r, \f, ...)
        for line in re.findall(r"[^\n]*\n|[^\n]+\Z", text):
            m = re.match(r"(\w+)=(.*)", line, re.ASCII)
            if m and not opts["reset"]:
                args[m.group(1)] = m.group(2)
        content = re.sub(r"^(\s*\w+=)", r"#\1", text, flags=re.M | re.ASCII)
        if not content.endswith("\n"):
            content += "\n"
    else:
        content = f"#  File generated by {PROG}\n"
    for a in operands:
        m = re.search(r"(\w+)=(.*)", a, re.ASCII)
        if m:
            args[m.group(1)] = m.group(2)
        else:
            args.pop(a, None)
    items = list(args.items())
    if len(items) > _MAX_ORDERS_OF:
        raise Defer(f"{PROG}: {len(items)} variables: Perl's hash order decides the file")
    results = {_render(content, list(p)) for p in itertools.permutations(items)}
    if len(results) != 1:
        raise Defer(f"{PROG}: the written file depends on Perl's hash order (several variables appended)")
    content = results.pop()
    if not opts["no-checks"]:
        content = _checks(inv, args, items, content)
    try:
        fs.write_bytes(path, content.encode("latin-1"), 0o666 & ~inv.umask)
        fs.chmod(path, mode)
    except OSError as e:
        raise Defer(f"{PROG}: writing {path}: {os.strerror(e.errno)}") from None
    return 0


def _checks(inv: Invocation, args: dict[str, str], items: list, content: str) -> str:
    """The sanity checks: ``locale charmap`` under the new settings, then LANGUAGE's."""
    env_text = "".join(f" {k}={v}" for k, v in items)
    if inv.run is None:
        raise Defer(f"{PROG}: the locale check runs the shell")
    reset = " ".join(f"{c}=" for c in _CATEGORIES)
    _st, out, err = inv.run(["sh", "-c", f"{reset} {env_text} locale charmap 2>&1"], b"")
    if "Cannot set" in (out + err).decode("latin-1"):
        if len(items) > 1:
            raise Defer(f"{PROG}: the error names the settings in Perl's hash order")
        # die: the message, and Perl's exit status from $! (ENOENT left by glibc's failed locale load)
        raise Defer(f"{PROG}: invalid locale settings:{env_text} (the real script dies with an errno status)")
    if "LANGUAGE" in args:
        language = re.sub(r"[.:_].*", "", args["LANGUAGE"].replace('"', "").replace("'", ""), flags=re.S)
        var, msg = "", ""
        for name in ("LANG", "LC_MESSAGES", "LC_ALL"):
            if name in args:
                var, msg = name, args[name]
        msg = msg.replace('"', "").replace("'", "")
        try:
            matches = re.match(language, msg) is not None
        except re.error:
            raise Defer(f"{PROG}: LANGUAGE {language!r} is not a regex Python reads as Perl does") from None
        if not matches and var and msg not in ("C", "POSIX") and language not in ("C", "POSIX"):
            inv.out(f"*** {PROG}: Warning: LANGUAGE ({args['LANGUAGE']}) is not compatible with {var} ({msg}). "
                    "Disabling it.\n")
            content = re.sub(r"^(\s*LANGUAGE=)", r"#\1", content, flags=re.M | re.ASCII)
    return content
