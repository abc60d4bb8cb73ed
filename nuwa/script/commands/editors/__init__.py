"""The stream editors: GNU sed 4.9 (``sed``) and awk as Debian 12 ships it, mawk 1.3.4
(``awk``: awk, mawk, gawk, original-awk, nawk). Their regular expressions come from the shared
``nuwa.script.commands._regex`` (also used by grep, expr and pgrep).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "awk": "awk.awk",
    "mawk": "awk.awk",
    "gawk": "awk.awk",
    "original-awk": "awk.awk",
    "nawk": "awk.awk",
    "sed": "sed.sed",
})
