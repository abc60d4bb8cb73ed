"""Searching: GNU findutils 4.9 (``find``, ``xargs``) and GNU grep 3.8 (``grep``: grep,
egrep, fgrep). BusyBox keeps grep beside find in its ``findutils/`` folder too.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "find": "find.find",
    "xargs": "xargs.xargs",
    "grep": "grep.grep",
    "egrep": "grep.grep",
    "fgrep": "grep.grep",
})
