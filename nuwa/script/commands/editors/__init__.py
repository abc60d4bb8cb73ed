"""The stream editors: GNU sed 4.9 (``sed``) and awk as Debian 12 ships it, mawk 1.3.4
(``awk``: awk, mawk, gawk, original-awk, nawk). Their regular expressions come from the shared
``nuwa.script.commands._regex`` (also used by grep, expr and pgrep).
"""

from __future__ import annotations

from nuwa.script.commands.editors import awk, sed

#: program basename -> model: everything this family provides, declared here and nowhere else
MODELS = {
    "awk": awk.awk,
    "mawk": awk.awk,
    "gawk": awk.awk,
    "original-awk": awk.awk,
    "nawk": awk.awk,
    "sed": sed.sed,
}
