"""``perl``: the few Perl one-liners that tools generate into maintainer scripts, recognised
verbatim; every other Perl program is deferred.

Nuwa does not interpret Perl. But a handful of one-liners are boilerplate written by
debhelper-family tools into hundreds of packages, always byte for byte the same, and their
effect is small and exactly known. Each is recognised by its complete argument list:

- ``perl -ne 's,/([^/]*)\\.py$,/__pycache__/\\1.*, or next; unlink $_ or die $! foreach
  glob($_)'`` — dh_python3's prerm: for each ``*.py`` path read from stdin (``dpkg -L``),
  unlink what ``glob("DIR/__pycache__/NAME.*")`` finds. Perl's ``glob`` is File::Glob's
  ``csh_glob`` (words split on whitespace, braces, ``~``, ``[...]``, sorted
  case-insensitively); paths holding any of those characters, an empty NAME, or a match that
  is a directory (``unlink`` fails and the one-liner dies) are deferred.
- ``perl -e ""`` — libc6's preinst asks whether perl runs at all: exit 0.
- ucf's ``perl -nle 'print "\\Q$_\\E\\n"'`` — handled by :func:`nuwa.script.commands.debconf.ucf.perl`.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import stat as _stat

from nuwa.script.commands.debconf import ucf
from nuwa.script.context import Defer, Invocation

DH_PYTHON3_PRERM = r"s,/([^/]*)\.py$,/__pycache__/\1.*, or next; unlink $_ or die $! foreach glob($_)"
_PY_LINE = re.compile(rb"/([^/]*)\.py\n?\Z")
_GLOB_SPECIAL = set(" \t\n\r\f{}[]?*~\\")


def _dh_python3_prerm(inv: Invocation) -> int:
    """Unlink the byte-code files of each ``.py`` path on stdin (see the module docstring)."""
    data = bytes(inv.stdin)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    plan: list[str] = []
    for raw in lines:
        m = _PY_LINE.search(raw + b"\n")
        if m is None:
            continue  # "or next"
        name = m.group(1).decode("utf-8", "surrogateescape")
        head = raw[:m.start()].decode("utf-8", "surrogateescape")
        if not name or _GLOB_SPECIAL & set(head + name):
            raise Defer("perl (dh_python3 prerm): a path File::Glob would split or expand")
        cache = (head or "") + "/__pycache__"
        try:
            entries = inv.fs.readdir(inv.path(cache))
        except OSError:
            continue  # no directory: glob finds nothing
        hits = [e for e in entries if fnmatch.fnmatchcase(e, name + ".*") and not (e.startswith(".") and not name.startswith("."))]
        # File::Glob's GLOB_ALPHASORT: case-insensitive order, then bytewise
        hits.sort(key=lambda e: (e.lower(), e))
        for e in hits:
            p = posixpath.join(cache, e)
            try:
                st = inv.fs.lstat(inv.path(p))
            except OSError:
                continue
            if _stat.S_ISDIR(st.st_mode):
                raise Defer("perl (dh_python3 prerm): a directory would make unlink die")
            plan.append(p)
    for p in plan:
        inv.fs.unlink(inv.path(p))
    return 0


def perl(inv: Invocation) -> int:
    """The recognised one-liners; any other Perl program is deferred."""
    args = inv.argv[1:]
    if args == ["-ne", DH_PYTHON3_PRERM]:
        return _dh_python3_prerm(inv)
    if args == ["-e", ""]:
        return 0
    return ucf.perl(inv)
