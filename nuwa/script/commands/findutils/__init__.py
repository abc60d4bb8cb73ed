"""Searching: GNU findutils 4.9 (``find``, ``xargs``) and GNU grep 3.8 (``grep``: grep,
egrep, fgrep). BusyBox keeps grep beside find in its ``findutils/`` folder too.
"""

from __future__ import annotations

from nuwa.script.commands.findutils import find, grep, xargs

#: program basename -> model: everything this family provides, declared here and nowhere else
MODELS = {
    "find": find.find,
    "xargs": xargs.xargs,
    "grep": grep.grep,
    "egrep": grep.grep,
    "fgrep": grep.grep,
}
